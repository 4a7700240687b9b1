"""Input validation shared by every reference: clear ``ValueError`` messages that name the shapes.

Works for NumPy arrays and torch tensors alike (only ``.shape`` and ``.ndim`` are used).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def shape_of(x: Any) -> tuple[int, ...]:
    """The shape of an array or tensor as a plain tuple of ints."""
    return tuple(int(s) for s in x.shape)


def require_ndim(name: str, x: Any, ndim: int, layout: str) -> None:
    """Raise unless ``x.ndim == ndim``; ``layout`` describes the expected axes, e.g. ``(batch, seq, d_model)``."""
    if x.ndim != ndim:
        raise ValueError(f"{name} must have shape {layout} ({ndim} dims), got shape {shape_of(x)}")


def require_min_ndim(name: str, x: Any, ndim: int, layout: str) -> None:
    """Raise unless ``x.ndim >= ndim``."""
    if x.ndim < ndim:
        raise ValueError(f"{name} must have shape {layout} (at least {ndim} dims), got shape {shape_of(x)}")


def broadcast_batch(*shapes: tuple[int, ...], names: tuple[str, ...]) -> tuple[int, ...]:
    """Broadcast leading (batch) shapes NumPy-style, or raise a ValueError naming every input."""
    ndim = max(len(s) for s in shapes)
    out = []
    for axis in range(-ndim, 0):
        sizes = {s[axis] for s in shapes if len(s) >= -axis and s[axis] != 1}
        if len(sizes) > 1:
            listed = ", ".join(f"{n} {s}" for n, s in zip(names, shapes, strict=True))
            raise ValueError(f"batch dimensions do not broadcast: {listed}")
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


def check_qkv(Q: Any, K: Any, V: Any) -> tuple[int, int]:
    """Validate ``Q: (..., n_q, d_k)``, ``K: (..., n_k, d_k)``, ``V: (..., n_k, d_v)``; return ``(n_q, n_k)``."""
    require_min_ndim("Q", Q, 2, "(..., n_q, d_k)")
    require_min_ndim("K", K, 2, "(..., n_k, d_k)")
    require_min_ndim("V", V, 2, "(..., n_k, d_v)")
    q, k, v = shape_of(Q), shape_of(K), shape_of(V)
    if q[-1] != k[-1]:
        raise ValueError(f"Q and K must share d_k (last dim): Q {q}, K {k}")
    if k[-2] != v[-2]:
        raise ValueError(f"K and V must have the same number of keys n_k (dim -2): K {k}, V {v}")
    try:
        broadcast_batch(q[:-2], k[:-2], v[:-2], names=("Q", "K", "V"))
    except ValueError as err:  # name the full shapes, not only their batch parts
        raise ValueError(f"{err} (full shapes: Q {q}, K {k}, V {v})") from None
    return q[-2], k[-2]


def check_mask(mask: Any, n_q: int, n_k: int, batch: tuple[int, ...]) -> None:
    """Validate a boolean mask broadcastable to ``(*batch, n_q, n_k)`` (True = may attend)."""
    m = shape_of(mask)
    dtype = str(getattr(mask, "dtype", ""))
    if "bool" not in dtype:
        raise ValueError(f"mask must be boolean (True = may attend), got dtype {dtype} with shape {m}")
    if mask.ndim < 2 or m[-2] not in (1, n_q) or m[-1] not in (1, n_k):
        raise ValueError(
            f"mask of shape {m} does not broadcast to (..., n_q, n_k) = (..., {n_q}, {n_k})"
        )
    try:
        broadcast_batch(m[:-2], batch, names=("mask", "batch of Q/K/V"))
    except ValueError as err:
        raise ValueError(f"mask of shape {m} does not broadcast to the batch {batch}: {err}") from None


def validated(check: Callable[..., None]) -> Callable[[F], F]:
    """Decorate a reference with its input validation, kept apart from the body students write.

    ``check`` receives the same arguments as the function (``self`` first for a method) and raises a
    ``ValueError`` that names the shapes. The body under the decorator is written exactly as a student
    writes it in the notebook: ``grader.generate`` drops ``@validated(...)`` lines when it pastes a
    reference into the instructor notebook, and the known mistakes are small patches of that body.
    """

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def checked(*args: Any, **kwargs: Any) -> Any:
            check(*args, **kwargs)
            return fn(*args, **kwargs)

        checked.__validated_by__ = check  # type: ignore[attr-defined]
        return checked  # type: ignore[return-value]

    return decorate
