"""Hidden tests with diagnostic feedback, imported by the grade cells at grading time.

A grade cell of an exercise notebook runs::

    import grader.diagnose as _diagnose
    _problem = _diagnose.problem_with("ch2-sdpa", "softmax", globals())
    assert _problem is None, _problem

:func:`problem_with` runs the student's function on hidden random inputs (fixed seeds, so grading is
reproducible) and compares it with the reference in ``solutions``. When they differ it runs every
known mistake of that function (``solutions.mistakes``) on the same inputs; if one reproduces the
student's answer, the message names it in words ("your scores are not scaled by 1/sqrt(d_k)"). The
message describes inputs in words only: no arrays, no test code.

While the student's code runs, the other course functions defined in the notebook are replaced by the
reference ones (so a mistake in ``softmax`` costs the ``softmax`` points only, not those of
``scaled_dot_product_attention`` too), and a profiler watches for calls that earn no credit: the
course's reference package ``solutions``, ``torch.nn.functional.scaled_dot_product_attention`` and
``torch.nn.MultiheadAttention``.
"""

from __future__ import annotations

import sys

# Before anything here imports the reference package: did the student's notebook import it?
STUDENT_IMPORTED_SOLUTIONS = any(m == "solutions" or m.startswith("solutions.") for m in sys.modules)

import contextlib  # noqa: E402
import copy  # noqa: E402
import inspect  # noqa: E402
import textwrap  # noqa: E402
import types  # noqa: E402
import zlib  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

import solutions  # noqa: E402
from solutions import mistakes as _mistakes  # noqa: E402

SOLUTIONS_DIR = str(Path(solutions.__file__).resolve().parent)
REFUSE_SOLUTIONS = (
    "No credit: your notebook uses the course's reference package `solutions`. Write the function "
    "yourself and remove every import of `solutions`."
)
MAX_ERROR_TEXT = 150


# --------------------------------------------------------------------------------------------------
# Cases: hidden inputs, described in words
# --------------------------------------------------------------------------------------------------


@dataclass
class Case:
    """One hidden input. ``run(impl)`` calls the function or class ``impl`` on fresh copies of it."""

    what: str
    run: Callable[[Any], Any]
    expected: Any = None  # set when the answer is known without a reference (not part of solutions)


@dataclass
class Spec:
    """How to check one graded function or class."""

    cases: Callable[[np.random.Generator], list[Case]]
    items: tuple[str, ...] = ()  # names of the returned tuple's items, e.g. ("output", "weights")
    reference: bool = True  # False when cases carry ``expected`` (no reference in solutions)
    allow: tuple[str, ...] = ()  # reference classes the student may call (objects passed as inputs)
    rtol: float | None = None
    atol: float | None = None


def call(*args: Any, **kwargs: Any) -> Callable[[Any], Any]:
    """A case runner calling ``impl(*args, **kwargs)`` with deep copies (students may modify inputs)."""

    def run(impl: Any) -> Any:
        return impl(*copy.deepcopy(args), **copy.deepcopy(kwargs))

    return run


# ---- chapter 1 ------------------------------------------------------------------------------------


def _ch1_hard(rng: np.random.Generator) -> list[Case]:
    keys = rng.integers(-5, 6, size=(6, 3)).astype(float)
    keys[:, 0] = np.arange(6)  # distinct keys
    values = rng.normal(size=(6, 4))
    shared = keys.copy()
    shared[1, 0], shared[1, 1:] = shared[4, 0], shared[4, 1:] + 1  # key 1 agrees with key 4 in one coordinate
    floats = rng.normal(size=(5, 4))
    return [
        Case("a query equal to one of the keys", call(keys[3].copy(), keys, values)),
        Case("a query equal to the first key", call(keys[0].copy(), keys, values)),
        Case(
            "a key that agrees with the query in one coordinate but not in the others",
            call(shared[4].copy(), shared, values),
        ),
        Case("real-valued keys and values of another width", call(floats[2].copy(), floats, values[:5, :2])),
        Case("a query that equals no key (it must raise KeyError)", call(keys[2] + 0.5, keys, values)),
    ]


def _ch1_soft(rng: np.random.Generator) -> list[Case]:
    keys, values, query = rng.normal(size=(6, 4)), rng.normal(size=(6, 3)), rng.normal(size=4)
    big_q = query * (1e4 / np.abs(keys @ query).max())
    return [
        Case("temperature 1", call(query, keys, values)),
        Case("temperature 0.25 (sharper weights)", call(query, keys, values, temperature=0.25)),
        Case("temperature 4 (flatter weights)", call(query, keys, values, temperature=4.0)),
        Case("scores as large as 1e4", call(big_q, keys, values)),
        Case("a tiny temperature (1e-4)", call(query, keys, values, temperature=1e-4)),
    ]


def _soft_jacobian(query: np.ndarray, keys: np.ndarray, values: np.ndarray, t: float) -> np.ndarray:
    s = keys @ query / t
    w = np.exp(s - s.max())
    w /= w.sum()
    return values.T @ (np.diag(w) - np.outer(w, w)) @ keys / t


def _ch1_gradient(rng: np.random.Generator) -> list[Case]:
    A, b = rng.normal(size=(3, 4)), rng.normal(size=3)
    keys, values, query = rng.normal(size=(5, 4)), rng.normal(size=(5, 2)), rng.normal(size=4)

    def linear(q: np.ndarray) -> np.ndarray:
        return A @ q + b

    def soft(q: np.ndarray, t: float = 0.7) -> np.ndarray:
        s = keys @ q / t
        w = np.exp(s - s.max())
        return (w / w.sum()) @ values

    def scalar_out(q: np.ndarray) -> np.ndarray:
        return np.array([np.sum(q**2)])

    q1 = rng.normal(size=4)
    return [
        Case("a linear function f(q) = A q + b", call(linear, query), expected=A),
        Case("a soft lookup", call(soft, query), expected=_soft_jacobian(query, keys, values, 0.7)),
        Case("f(q) = [sum(q**2)] (one output)", call(scalar_out, q1), expected=2 * q1[None, :]),
    ]


# ---- chapter 2 ------------------------------------------------------------------------------------


def _ch2_softmax(rng: np.random.Generator) -> list[Case]:
    blocked = rng.normal(size=(4, 5))
    blocked[0, 1] = blocked[2, :2] = -np.inf
    blocked[3] = -np.inf
    return [
        Case("a 2-D array, axis=-1", call(rng.normal(size=(4, 7)))),
        Case("a square 2-D array, axis=-1", call(rng.normal(size=(5, 5)))),
        Case("a 3-D array, axis=1", call(rng.normal(size=(2, 6, 3)), axis=1)),
        Case("a 2-D array, axis=0", call(rng.normal(size=(4, 3)), axis=0)),
        Case("a vector", call(rng.normal(size=6))),
        Case("logits as large as 1e4", call(rng.normal(size=(3, 5)) * 1e4)),
        Case("some -inf entries and a row that is -inf everywhere", call(blocked)),
        Case("float32 input", call(rng.normal(size=(3, 4)).astype(np.float32))),
    ]


def _ch2_causal(rng: np.random.Generator) -> list[Case]:
    del rng
    return [
        Case("n_q == n_k", call(5, 5)),
        Case("n_q < n_k (earlier tokens in a cache)", call(3, 7)),
        Case("a single query", call(1, 4)),
        Case("n_q > n_k", call(6, 4)),
    ]


def _ch2_padding(rng: np.random.Generator) -> list[Case]:
    return [
        Case("a batch of lengths between 0 and n_k", call(np.array([3, 0, 5, 1]), 5)),
        Case("a batch of random lengths", call(rng.integers(1, 8, size=6), 8)),
        Case("a single full-length sequence", call(np.array([4]), 4)),
    ]


def _ch2_sdpa(rng: np.random.Generator) -> list[Case]:
    n = rng.normal
    Qb, Kb, Vb = n(size=(2, 3, 4, 5)), n(size=(2, 3, 6, 5)), n(size=(2, 3, 6, 7))
    lengths = np.array([4, 0])
    pad = (np.arange(6)[None, :] < lengths[:, None])[:, None, None, :]  # (2, 1, 1, 6)
    causal = np.tril(np.ones((5, 5), dtype=bool))
    X = n(size=(5, 8))
    return [
        Case("2-D inputs without a mask", call(n(size=(3, 4)), n(size=(5, 4)), n(size=(5, 2)))),
        Case("batch dimensions (2, 3) with n_q != n_k and d_v != d_k", call(Qb, Kb, Vb)),
        Case("self-attention with a causal mask", call(X, X.copy(), n(size=(5, 3)), causal)),
        Case("a padding mask with a fully blocked sequence", call(Qb, Kb, Vb, pad)),
        Case("scores as large as 1e4", call(n(size=(4, 4)) * 100, n(size=(4, 4)) * 100, n(size=(4, 3)))),
        Case("float32 inputs", call(*(a.astype(np.float32) for a in (Qb, Kb, Vb)))),
    ]


# ---- chapter 3 ------------------------------------------------------------------------------------


def _ch3_self(rng: np.random.Generator) -> list[Case]:
    n = rng.normal
    W = (n(size=(6, 4)), n(size=(6, 4)), n(size=(6, 5)))
    X2, X3 = n(size=(5, 6)), n(size=(2, 7, 6))
    return [
        Case("one sequence (2-D X)", call(X2, *W)),
        Case("a batch of sequences with d_k != d_v != d_model", call(X3, *W)),
        Case("causal=True", call(X2, *W, causal=True)),
        Case("a batch with causal=True", call(X3, *W, causal=True)),
        Case("large inputs (scores around 1e3)", call(X2 * 10, *W)),
    ]


def _ch3_cross(rng: np.random.Generator) -> list[Case]:
    n = rng.normal
    Ws = (n(size=(6, 4)), n(size=(6, 4)), n(size=(6, 3)))
    Wd = (n(size=(6, 4)), n(size=(5, 4)), n(size=(5, 3)))  # encoder width 5 != decoder width 6
    Xq, Xkv, Xkv5 = n(size=(2, 3, 6)), n(size=(2, 7, 6)), n(size=(2, 7, 5))
    pad = (np.arange(7)[None, :] < np.array([5, 0])[:, None])[:, None, :]
    pad_full = (np.arange(7)[None, :] < np.array([5, 7])[:, None])[:, None, :]
    return [
        Case("n_q != n_k, same widths", call(Xq, Xkv, *Ws)),
        Case("2-D inputs", call(Xq[0], Xkv[0], *Ws)),
        Case("an encoder of another width (d_model_kv != d_model)", call(Xq, Xkv5, *Wd)),
        Case("a padding kv_mask", call(Xq, Xkv, *Ws, kv_mask=pad_full)),
        Case("a kv_mask with a fully padded sequence", call(Xq, Xkv5, *Wd, kv_mask=pad)),
    ]


# ---- chapters 4-6 (PyTorch) -----------------------------------------------------------------------


def _torch() -> types.ModuleType:
    import torch

    return torch


def _tensor(rng: np.random.Generator, *shape: int, dtype: Any = None) -> Any:
    torch = _torch()
    return torch.from_numpy(rng.normal(size=shape)).to(dtype or torch.float32)


def _module_run(seed: int, init: tuple, method: Callable[[Any], Any], ref_cls: str) -> Callable[[Any], Any]:
    """Build ``impl(*init)`` with the reference's (seeded) parameters, then call ``method(module)``.

    The reference module is built here, outside the student's run, where calling it is no offence.
    """
    torch = _torch()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        ref = getattr(solutions, ref_cls)(*init)
    state = {k: v.detach().clone() for k, v in ref.state_dict().items()}
    shapes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in state.items())

    def run(impl: Any) -> Any:
        module = impl(*init)
        try:
            module.load_state_dict(copy.deepcopy(state))
        except Exception as err:
            raise _ParameterMismatch(ref_cls, shapes, err) from None
        with torch.no_grad():
            return method(module)

    return run


class _ParameterMismatch(Exception):
    def __init__(self, cls: str, shapes: str, err: Exception) -> None:
        super().__init__(
            f"the parameters of your {cls} do not match the expected ones ({shapes}); use nn.Linear "
            f"layers named q_proj, k_proj, v_proj, out_proj ({type(err).__name__})"
        )


def _ch4_split(rng: np.random.Generator) -> list[Case]:
    return [
        Case("x of shape (2, 5, 12) and 3 heads", call(_tensor(rng, 2, 5, 12), 3)),
        Case("x of shape (1, 4, 8) and 2 heads", call(_tensor(rng, 1, 4, 8), 2)),
        Case("one head", call(_tensor(rng, 3, 2, 6), 1)),
        Case("as many heads as features", call(_tensor(rng, 2, 3, 4), 4)),
    ]


def _ch4_merge(rng: np.random.Generator) -> list[Case]:
    return [
        Case("x of shape (2, 3, 5, 4)", call(_tensor(rng, 2, 3, 5, 4))),
        Case("x of shape (1, 2, 4, 6)", call(_tensor(rng, 1, 2, 4, 6))),
        Case("one head", call(_tensor(rng, 2, 1, 3, 5))),
    ]


def _ch4_mha(rng: np.random.Generator) -> list[Case]:
    torch = _torch()
    seed = int(rng.integers(2**31))
    x, y = _tensor(rng, 2, 5, 16), _tensor(rng, 2, 7, 16)
    causal = torch.ones(5, 5, dtype=torch.bool).tril()
    pad = (torch.arange(7)[None, :] < torch.tensor([4, 0])[:, None])[:, None, :]

    def fwd(*args: Any, **kwargs: Any) -> Callable[[Any], Any]:
        return lambda m: m(*copy.deepcopy(args), **copy.deepcopy(kwargs))

    return [
        Case("self-attention, 4 heads", _module_run(seed, (16, 4), fwd(x, x, x), "MultiHeadAttention")),
        Case("cross-attention (n_q != n_k)", _module_run(seed, (16, 4), fwd(x, y, y), "MultiHeadAttention")),
        Case("a causal mask", _module_run(seed, (16, 2), fwd(x, x, x, mask=causal), "MultiHeadAttention")),
        Case(
            "a padding mask with a fully padded sequence",
            _module_run(seed, (16, 4), fwd(x, y, y, mask=pad), "MultiHeadAttention"),
        ),
        Case("bias=False and one head", _module_run(seed, (16, 1, False), fwd(x, y, y), "MultiHeadAttention")),
    ]


def _ch5_repeat(rng: np.random.Generator) -> list[Case]:
    return [
        Case("2 KV heads repeated 3 times", call(_tensor(rng, 2, 2, 5, 4), 3)),
        Case("n_rep = 1", call(_tensor(rng, 1, 4, 3, 2), 1)),
        Case("one KV head (MQA) repeated 4 times", call(_tensor(rng, 2, 1, 4, 8), 4)),
        Case("4 KV heads repeated twice", call(_tensor(rng, 1, 4, 3, 2), 2)),
    ]


def _ch5_gqa(rng: np.random.Generator) -> list[Case]:
    torch = _torch()
    seed = int(rng.integers(2**31))
    x = _tensor(rng, 2, 6, 16)
    cache = (_tensor(rng, 2, 2, 3, 4), _tensor(rng, 2, 2, 3, 4))
    mask = torch.rand(6, 6, generator=torch.Generator().manual_seed(seed)) > 0.3
    mask |= torch.eye(6, dtype=torch.bool)

    def fwd(*args: Any, **kwargs: Any) -> Callable[[Any], Any]:
        return lambda m: m(*copy.deepcopy(args), **copy.deepcopy(kwargs))

    def decode(m: Any) -> Any:
        full, _ = m(x.clone())
        steps, kv = [], None
        for t in range(x.shape[1]):
            out, kv = m(x[:, t : t + 1].clone(), kv_cache=kv)
            steps.append(out)
        return full, torch.cat(steps, dim=1)

    return [
        Case(
            "4 query heads sharing 2 KV heads, no cache", _module_run(seed, (16, 4, 2), fwd(x), "GroupedQueryAttention")
        ),
        Case("MQA (one KV head)", _module_run(seed, (16, 4, 1), fwd(x), "GroupedQueryAttention")),
        Case("an explicit mask", _module_run(seed, (16, 4, 2), fwd(x, mask=mask), "GroupedQueryAttention")),
        Case(
            "new tokens after a KV cache of 3 earlier tokens",
            _module_run(seed, (16, 4, 2), fwd(x[:, :2], kv_cache=cache), "GroupedQueryAttention"),
        ),
        Case(
            "decoding one token at a time with the cache (it must equal the full causal forward)",
            _module_run(seed, (16, 8, 2, True), decode, "GroupedQueryAttention"),
        ),
    ]


def _ch5_bytes(rng: np.random.Generator) -> list[Case]:
    del rng
    return [
        Case("a Llama-2-7B-like configuration (32 layers, 32 KV heads)", call(1, 4096, 32, 32, 128)),
        Case("a Llama-2-70B-like configuration (80 layers, 8 KV heads)", call(8, 4096, 80, 8, 128)),
        Case("4 bytes per element", call(2, 100, 3, 4, 16, bytes_per_elem=4)),
        Case("bytes_per_elem=1", call(3, 7, 2, 1, 64, 1)),
    ]


def _ch5_convert(rng: np.random.Generator) -> list[Case]:
    torch = _torch()
    cases = []
    for what, (d, h, bias), kv in [
        ("4 heads into 2 groups, with biases", (16, 4, True), 2),
        ("6 heads into 3 groups, without biases", (12, 6, False), 3),
        ("MQA: all 4 heads into 1 group", (8, 4, True), 1),
        ("8 heads into 2 groups", (16, 8, False), 2),
    ]:
        seed = int(rng.integers(2**31))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            mha = solutions.MultiHeadAttention(d, h, bias)
        cases.append(Case(what, _convert_run(mha, kv)))
    return cases


def _convert_run(mha: Any, n_kv: int) -> Callable[[Any], Any]:
    def run(impl: Any) -> Any:
        gqa = impl(copy.deepcopy(mha), n_kv)
        return {k: v.detach().clone() for k, v in sorted(gqa.state_dict().items())}

    return run


def _ch6_tiled(rng: np.random.Generator) -> list[Case]:
    torch = _torch()
    f64 = torch.float64
    Q, K, V = _tensor(rng, 2, 3, 10, 8), _tensor(rng, 2, 3, 10, 8), _tensor(rng, 2, 3, 10, 5)
    q7, k12, v12 = _tensor(rng, 7, 8, dtype=f64), _tensor(rng, 12, 8, dtype=f64), _tensor(rng, 12, 4, dtype=f64)
    return [
        Case("one tile covering everything", call(Q, K, V)),
        Case("tiles of 4 that do not divide the length 10", call(Q, K, V, block_size=4)),
        Case("causal=True with tiles of 3", call(Q, K, V, block_size=3, causal=True)),
        Case("n_q < n_k, causal=True, float64", call(q7, k12, v12, block_size=4, causal=True)),
        Case("n_q > n_k, causal=True (some queries see no key)", call(k12, q7, q7[:, :4], block_size=5, causal=True)),
        Case("large scores (around 1e3) across tiles", call(Q * 10, K * 10, V, block_size=4)),
        Case("memory: no score matrix larger than a tile", _memory_run(rng)),
    ]


def _memory_run(rng: np.random.Generator) -> Callable[[Any], Any]:
    Q, K, V = _tensor(rng, 1, 2, 64, 8), _tensor(rng, 1, 2, 64, 8), _tensor(rng, 1, 2, 64, 8)

    def run(impl: Any) -> Any:
        from torch.utils._python_dispatch import TorchDispatchMode

        block, largest = 16, [0]

        class Watch(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
                out = func(*args, **(kwargs or {}))
                for t in out if isinstance(out, (tuple, list)) else (out,):
                    shape = getattr(t, "shape", ())
                    if len(shape) >= 2:
                        largest[0] = max(largest[0], min(shape[-2], shape[-1]))
                return out

        with Watch():
            impl(Q.clone(), K.clone(), V.clone(), block_size=block)
        if largest[0] <= block:
            return "no matrix larger than a tile"
        return f"it holds a {largest[0]} x {largest[0]} block of scores, more than a {block} x {block} tile"

    return run


# Earlier exercises' functions each notebook asks the student to paste (its `helpers:` cells).
HELPERS: dict[str, tuple[str, ...]] = {
    "ch1-lookup": (),
    "ch2-sdpa": (),
    "ch3-self-cross": ("softmax", "causal_mask", "scaled_dot_product_attention"),
    "ch4-multihead": (),
    "ch5-gqa": ("split_heads", "merge_heads", "MultiHeadAttention"),
    "ch6-tiled": (),
}

SPECS: dict[str, dict[str, Spec]] = {
    "ch1-lookup": {
        "hard_lookup": Spec(_ch1_hard),
        "soft_lookup": Spec(_ch1_soft, items=("output", "weights")),
        "numerical_gradient": Spec(_ch1_gradient, reference=False, rtol=1e-4, atol=1e-5),
    },
    "ch2-sdpa": {
        "softmax": Spec(_ch2_softmax),
        "causal_mask": Spec(_ch2_causal),
        "padding_mask": Spec(_ch2_padding),
        "scaled_dot_product_attention": Spec(_ch2_sdpa, items=("output", "weights")),
    },
    "ch3-self-cross": {
        "self_attention": Spec(_ch3_self, items=("output", "weights")),
        "cross_attention": Spec(_ch3_cross, items=("output", "weights")),
    },
    "ch4-multihead": {
        "split_heads": Spec(_ch4_split),
        "merge_heads": Spec(_ch4_merge),
        "MultiHeadAttention": Spec(_ch4_mha, items=("output", "weights")),
    },
    "ch5-gqa": {
        "repeat_kv": Spec(_ch5_repeat),
        "GroupedQueryAttention": Spec(_ch5_gqa, items=("output", "new_kv_cache")),
        "kv_cache_bytes": Spec(_ch5_bytes),
        "mha_to_gqa": Spec(_ch5_convert, allow=("MultiHeadAttention",)),
    },
    "ch6-tiled": {
        "tiled_attention": Spec(_ch6_tiled),
    },
}


# --------------------------------------------------------------------------------------------------
# Running code and comparing answers
# --------------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    value: Any = None
    error: BaseException | None = None


def _outcome(run: Callable[[Any], Any], impl: Any, guard: _Guard | None = None) -> Outcome:
    with np.errstate(all="ignore"):
        try:
            if guard is None:
                return Outcome(run(impl))
            with guard:
                return Outcome(_trampoline(run, impl))
        except Exception as err:  # noqa: BLE001 - any error of student code is an outcome
            return Outcome(error=err)


def _trampoline(run: Callable[[Any], Any], impl: Any) -> Any:
    return run(impl)


def _plain(x: Any) -> Any:
    """Tensors and arrays as NumPy arrays (keeping float32/float64), containers recursively."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        return x.detach().cpu().numpy()
    if isinstance(x, (tuple, list)):
        return tuple(_plain(i) for i in x)
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    return x


def _tolerance(ref: np.ndarray, spec: Spec) -> tuple[float, float]:
    if spec.rtol is not None:
        return spec.rtol, spec.atol or 0.0
    if ref.dtype == np.float32:
        return 1e-4, 1e-5
    return 1e-5, 1e-6


def difference(got: Any, want: Any, spec: Spec, label: str = "the result") -> str | None:
    """Words for how ``got`` differs from ``want``, or None when they agree within tolerance."""
    got, want = _plain(got), _plain(want)
    if isinstance(want, tuple):
        if not isinstance(got, tuple) or len(got) != len(want):
            names = ", ".join(spec.items) if len(spec.items) == len(want) else f"{len(want)} items"
            return f"{label} should be a tuple ({names}), got {type(got).__name__}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            name = spec.items[i] if i < len(spec.items) else f"item {i} of {label}"
            problem = difference(g, w, spec, name)
            if problem:
                return problem
        return None
    if isinstance(want, dict):
        if not isinstance(got, dict) or set(got) != set(want):
            have = sorted(got) if isinstance(got, dict) else type(got).__name__
            return f"{label} should have the parameters {sorted(want)}, got {have}"
        for k in want:
            problem = difference(got[k], want[k], spec, f"parameter {k}")
            if problem:
                return problem
        return None
    if isinstance(want, str):  # a property described in words by the case itself
        return None if got == want else str(got)
    if isinstance(want, (int, np.integer)) and not isinstance(want, bool):
        if not isinstance(got, (int, np.integer)) or isinstance(got, bool):
            return f"{label} should be an integer, got {type(got).__name__}"
        return None if int(got) == int(want) else f"{label} is {int(got)}, expected a different number"
    want = np.asarray(want)
    if got is None or not hasattr(got, "shape") and not np.isscalar(got):
        return f"{label} should be an array, got {type(got).__name__}"
    got = np.asarray(got)
    if got.shape != want.shape:
        return f"{label} has shape {got.shape}, expected {want.shape}"
    if want.dtype == bool:
        if got.dtype != bool:
            return f"{label} should be boolean (dtype bool), got dtype {got.dtype}"
        return None if np.array_equal(got, want) else f"{label} has {int((got != want).sum())} wrong entries"
    if not np.issubdtype(got.dtype, np.number):
        return f"{label} should hold numbers, got dtype {got.dtype}"
    if np.isnan(got).any() and not np.isnan(want).any():
        return f"{label} contains NaN"
    if np.isinf(got).any() and not np.isinf(want).any():
        return f"{label} contains inf"
    rtol, atol = _tolerance(want, spec)
    if np.allclose(got, want, rtol=rtol, atol=atol, equal_nan=True):
        return None
    finite = np.isfinite(got) & np.isfinite(want)
    worst = float(np.max(np.abs(got - want)[finite])) if finite.any() else float("nan")
    return f"{label} has wrong values (largest difference {worst:.2g})"


def _same(a: Outcome, b: Outcome, spec: Spec) -> bool:
    if a.error is not None or b.error is not None:
        return (
            a.error is not None
            and b.error is not None
            and type(a.error) is type(b.error)
            and not isinstance(a.error, NotImplementedError)
        )
    return difference(a.value, b.value, spec) is None


def _error_words(err: BaseException) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    if len(text) > MAX_ERROR_TEXT:
        text = text[:MAX_ERROR_TEXT] + "..."
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


# --------------------------------------------------------------------------------------------------
# Calls that earn no credit
# --------------------------------------------------------------------------------------------------


class _Forbidden(Exception):
    pass


class _Guard:
    """A profiler that notes forbidden calls while the student's code runs (one thread)."""

    def __init__(self, allowed: set[types.CodeType]) -> None:
        self.allowed = allowed
        self.found: str | None = None
        self.builtins: dict[int, str] = {}
        self.codes: dict[types.CodeType, str] = {}
        torch = sys.modules.get("torch")
        if torch is not None:
            F = torch.nn.functional
            self.builtins[id(F.scaled_dot_product_attention)] = "torch.nn.functional.scaled_dot_product_attention"
            for fn, label in [
                (getattr(F, "multi_head_attention_forward", None), "torch.nn.functional.multi_head_attention_forward"),
                (torch.nn.MultiheadAttention.__init__, "torch.nn.MultiheadAttention"),
                (torch.nn.MultiheadAttention.forward, "torch.nn.MultiheadAttention"),
            ]:
                if inspect.isfunction(fn):
                    self.codes[fn.__code__] = label
        self.trampoline = _trampoline.__code__

    def __enter__(self) -> _Guard:
        self.previous = sys.getprofile()
        sys.setprofile(self._profile)
        return self

    def __exit__(self, *exc: object) -> None:
        sys.setprofile(self.previous)

    def _profile(self, frame: types.FrameType, event: str, arg: Any) -> None:
        if event == "c_call":
            label = self.builtins.get(id(arg))
            if label:
                self.found = self.found or label
        elif event == "call":
            code = frame.f_code
            label = self.codes.get(code)
            if label:
                self.found = self.found or label
            elif code.co_filename.startswith(SOLUTIONS_DIR) and not self._allowed(frame):
                self.found = self.found or "solutions"

    def _allowed(self, frame: types.FrameType | None) -> bool:
        while frame is not None and frame.f_code is not self.trampoline:
            if frame.f_code in self.allowed:
                return True
            frame = frame.f_back
        return False


def _codes(obj: Any) -> set[types.CodeType]:
    found: set[types.CodeType] = set()
    fns = [v for v in vars(obj).values() if inspect.isfunction(v)] if inspect.isclass(obj) else [obj]
    for fn in fns:
        if inspect.isfunction(fn):
            found.add(fn.__code__)
    return found


def _uses_solutions(namespace: dict[str, Any]) -> bool:
    for value in list(namespace.values()):
        if isinstance(value, types.ModuleType) and value.__name__.split(".")[0] == "solutions":
            return True
        if (inspect.isfunction(value) or inspect.isclass(value)) and str(getattr(value, "__module__", "")).startswith(
            "solutions"
        ):
            return True
    return False


def _refusal(name: str, label: str) -> str:
    if label == "solutions":
        return REFUSE_SOLUTIONS
    return f"No credit: {name} is the exercise, so it must not call {label}. Write it yourself."


@contextlib.contextmanager
def _references_in(namespace: dict[str, Any], keep: str) -> Iterator[set[types.CodeType]]:
    """Put the reference version of the notebook's other course functions in place; yield their code.

    Only the names the notebook itself asks the student to define (graded or pasted from an earlier
    exercise) are replaced, never a student's own helper that happens to share a course name.
    """
    saved: dict[str, Any] = {}
    allowed: set[types.CodeType] = set()
    assignment = next(a for a, specs in SPECS.items() if keep in specs)
    try:
        for other in (*SPECS[assignment], *HELPERS[assignment]):
            if other != keep and other in namespace and other in solutions.__all__:
                saved[other] = namespace[other]
                namespace[other] = getattr(solutions, other)
                allowed |= _codes(namespace[other])
        yield allowed
    finally:
        namespace.update(saved)


# --------------------------------------------------------------------------------------------------
# The entry point used by the grade cells
# --------------------------------------------------------------------------------------------------


@dataclass
class Report:
    """Everything :func:`check` found; ``problem`` is the student-facing message (None = correct)."""

    problem: str | None
    mistake: str | None = None
    failed: list[str] = field(default_factory=list)


def seed_for(assignment: str, name: str) -> int:
    return zlib.crc32(f"{assignment}/{name}".encode())


def _known_mistakes(assignment: str, name: str) -> list[_mistakes.Mistake]:
    return _mistakes.mistakes_for(assignment, name)


def check(assignment: str, name: str, namespace: dict[str, Any]) -> Report:
    """Run the hidden tests of ``name`` against the student's ``namespace[name]``."""
    spec = SPECS[assignment][name]
    if STUDENT_IMPORTED_SOLUTIONS or _uses_solutions(namespace):
        return Report(REFUSE_SOLUTIONS, mistake="uses-solutions")
    impl = namespace.get(name)
    if impl is None:
        return Report(f"{name} is not defined: run the cell that defines it (keep its name).")
    cases = spec.cases(np.random.default_rng(seed_for(assignment, name)))
    results: list[tuple[Case, Outcome, Outcome]] = []
    with _references_in(namespace, keep=name) as allowed:
        for other in spec.allow:
            allowed |= _codes(getattr(solutions, other))
        for case in cases:
            guard = _Guard(allowed)
            got = _outcome(case.run, impl, guard)
            if guard.found:
                return Report(_refusal(name, guard.found), mistake="forbidden-call")
            if isinstance(got.error, NotImplementedError):
                return Report(f"{name} is not implemented yet (it raises NotImplementedError).")
            want = Outcome(case.expected) if not spec.reference else _outcome(case.run, getattr(solutions, name))
            if want.error is not None and not isinstance(want.error, KeyError):
                raise RuntimeError(f"the reference failed on hidden case {case.what!r}") from want.error
            results.append((case, got, want))
    failing = [(c, g, w) for c, g, w in results if not _same(g, w, spec)]
    if not failing:
        return Report(None)
    mistake = _diagnose(assignment, name, spec, results, failing)
    if mistake is not None:
        # The first line names the mistake on its own: grade reports show only that line.
        text = f"{name} looks wrong [mistake: {mistake.id}]:\n{_wrap(mistake.message)}"
        return Report(text, mistake.id, _whats(failing))
    return Report(_wrap(_describe(name, spec, failing[0])), None, _whats(failing))


def _wrap(text: str) -> str:
    """Lines short enough to read in a notebook's error box and in the feedback page."""
    return textwrap.fill(text, width=88, break_long_words=False, break_on_hyphens=False)


def _whats(failing: list[tuple[Case, Outcome, Outcome]]) -> list[str]:
    return [c.what for c, _, _ in failing]


def _diagnose(
    assignment: str,
    name: str,
    spec: Spec,
    results: list[tuple[Case, Outcome, Outcome]],
    failing: list[tuple[Case, Outcome, Outcome]],
) -> _mistakes.Mistake | None:
    """The known mistake that reproduces the student's answers: on every case, else on every failing one."""
    partial = None
    for m in _known_mistakes(assignment, name):
        wrong = m.build()
        agree = [_same(got, _outcome(case.run, wrong), spec) for case, got, _ in results]
        if all(agree):
            return m
        failing_ids = {id(c) for c, _, _ in failing}
        if partial is None and all(a for (c, _, _), a in zip(results, agree, strict=True) if id(c) in failing_ids):
            partial = m
    return partial


def _describe(name: str, spec: Spec, failure: tuple[Case, Outcome, Outcome]) -> str:
    case, got, want = failure
    if got.error is not None:
        if want.error is not None:
            return f"{name} raised {_error_words(got.error)} with {case.what}; expected {type(want.error).__name__}."
        return f"{name} raised {_error_words(got.error)} with {case.what}."
    if want.error is not None:
        return f"{name} should raise {type(want.error).__name__} with {case.what}, but it returned a result."
    words = difference(got.value, want.value, spec) or "a wrong result"
    return f"{name} is not right yet with {case.what}: {words}."


def isolate_visible_test(name: str, namespace: dict[str, Any]) -> None:
    """Make ``test_<name>()`` run with the reference versions of the other course functions.

    The grade cell calls the visible test right after the hidden ones; isolated like the hidden tests,
    it checks ``name`` alone, so a mistake in another function does not cost these points too.
    """
    test = namespace.get(f"test_{name}")
    if not callable(test) or getattr(test, "_isolated", False):
        return

    def isolated() -> None:
        with _references_in(namespace, keep=name):
            test()

    isolated._isolated = True  # type: ignore[attr-defined]
    isolated.__name__ = test.__name__
    namespace[f"test_{name}"] = isolated


def problem_with(assignment: str, name: str, namespace: dict[str, Any]) -> str | None:
    """The student-facing message for ``name`` (None when the hidden tests pass)."""
    problem = check(assignment, name, namespace).problem
    isolate_visible_test(name, namespace)
    return problem


__all__ = ["SPECS", "Report", "check", "difference", "problem_with"]
