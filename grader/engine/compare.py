"""Comparing answers: the student's (plain data from the kernel) against the reference's.

Values are in the plain form of :mod:`grader.engine.transport` (NumPy arrays for arrays and tensors,
tuples, dicts, numbers, strings). Tolerances follow COURSE.md: ``rtol=1e-5, atol=1e-6`` in float64,
``rtol=1e-4, atol=1e-5`` in float32, unless a spec sets its own.

Messages describe the difference in words built only from trusted data: how many dimensions the answer
should have and along which axis its length is wrong, a coarse kind of what came back ("a tuple", "an
array") and fixed phrases. Nothing the kernel chose (its shapes, its numbers, its strings, its type
names) is echoed, so a submission cannot smuggle the hidden inputs into its own feedback; and the
expected sizes are not printed either, since they are the hidden inputs' sizes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from grader.engine.cases import Spec
from grader.engine.probe import OtherValue
from grader.engine.transport import Outcome


def tolerance(want: np.ndarray, spec: Spec) -> tuple[float, float]:
    if spec.rtol is not None:
        return spec.rtol, spec.atol or 0.0
    if want.dtype == np.float32:
        return 1e-4, 1e-5
    return 1e-5, 1e-6


def difference(got: Any, want: Any, spec: Spec, label: str = "the result", top: bool = True) -> str | None:
    """Words for how ``got`` differs from ``want``, or None when they agree within tolerance. The spec's item
    names (``("output", "new_kv_cache")``) name the items of the returned tuple only (``top``); items of a
    tuple inside it are numbered (``new_kv_cache, item 0 of 2``)."""
    if isinstance(want, (tuple, list)):
        items = spec.items if top and len(spec.items) == len(want) else ()
        if not isinstance(got, (tuple, list)) or len(got) != len(want):
            names = ", ".join(items) if items else f"{len(want)} items"
            return f"{label} should be a tuple ({names}), got {kind(got)}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            name = items[i] if items else f"{label}, item {i} of {len(want)}"
            problem = difference(g, w, spec, name, top=False)
            if problem:
                return problem
        return None
    if isinstance(want, dict):
        if not isinstance(got, dict) or set(got) != set(want):
            return f"{label} should have the parameters {sorted(want)}"
        for k in sorted(want):
            problem = difference(got[k], want[k], spec, f"parameter {k}", top=False)
            if problem:
                return problem
        return None
    if isinstance(want, str):  # a property described in words by the case itself
        return None if got == want else f"{label} is not what it should be"
    if isinstance(want, (bool, np.bool_)):
        return None if isinstance(got, (bool, np.bool_)) and bool(got) == bool(want) else f"{label} is wrong"
    if isinstance(want, (int, np.integer)):
        if not isinstance(got, (int, np.integer)) or isinstance(got, (bool, np.bool_)):
            return f"{label} should be an integer, got {kind(got)}"
        return None if int(got) == int(want) else f"{label} is not the right number"
    want = np.asarray(want)
    if not isinstance(got, (np.ndarray, np.generic, float, int)) or isinstance(got, bool):
        return f"{label} should be an array, got {kind(got)}"
    got = np.asarray(got)
    if got.ndim != want.ndim:
        return f"{label} has the wrong shape: it should have {want.ndim} dimension{'s' * (want.ndim != 1)}"
    if got.shape != want.shape:
        axes = [i for i in range(want.ndim) if got.shape[i] != want.shape[i]]
        where = " and ".join(f"axis {i - want.ndim}" for i in axes)
        return f"{label} has the wrong shape: its length along {where} (counting from the end) is wrong"
    if want.dtype == bool:
        if got.dtype != bool:
            return f"{label} should be boolean (dtype bool)"
        return None if np.array_equal(got, want) else f"{label} has wrong entries"
    if not np.issubdtype(got.dtype, np.number):
        return f"{label} should hold numbers"
    if want.dtype.kind in "fc" and got.dtype.kind in "fc" and got.dtype != want.dtype:
        return f"{label} should keep the dtype {want.dtype.name}, got another floating-point dtype"
    if (want.dtype.kind in "fc") != (got.dtype.kind in "fc"):  # e.g. a one-hot left as int64
        return f"{label} should have the dtype {want.dtype.name}, got " + \
            ("integers" if want.dtype.kind in "fc" else "floating-point numbers")
    with np.errstate(all="ignore"):
        if np.isnan(got).any() and not np.isnan(want).any():
            return f"{label} contains NaN"
        if np.isinf(got).any() and not np.isinf(want).any():
            return f"{label} contains inf"
        rtol, atol = tolerance(want, spec)
        if np.allclose(got, want, rtol=rtol, atol=atol, equal_nan=True):
            return None
    return f"{label} has wrong values"


def kind(x: Any) -> str:
    """A coarse description of a value that came from the kernel (no detail the kernel chose)."""
    if isinstance(x, OtherValue):
        return "something that is not an array, a tensor, a number or a tuple"
    if isinstance(x, (np.ndarray, np.generic)):
        return "an array"
    if isinstance(x, tuple):
        return "a tuple"
    if isinstance(x, list):
        return "a list"
    if isinstance(x, dict):
        return "a dict"
    if isinstance(x, str):
        return "a string"
    if x is None:
        return "None"
    if isinstance(x, bool):
        return "a boolean"
    if isinstance(x, (int, float)):
        return "a number"
    return "something else"


def same(a: Outcome, b: Outcome, spec: Spec) -> bool:
    """Whether two outcomes agree: the same error type (not "not implemented"), or close values, and the
    same arguments changed in place (none, for the reference)."""
    if set(a.modified) != set(b.modified):
        return False
    if a.failed or b.failed:
        return a.failed and b.failed and a.error_type == b.error_type and a.error_type != "NotImplementedError"
    return difference(a.value, b.value, spec) is None
