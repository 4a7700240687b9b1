"""Hypothesis strategies and small helpers shared by the chapter tests.

Random inputs are drawn from a seed (``numpy.random.default_rng(seed)``) rather than element by
element: the shapes, the seed and the dtype are what hypothesis explores and shrinks, and the arrays
stay cheap to build. Tolerances follow COURSE.md: ``rtol=1e-5, atol=1e-6`` in float64 and
``rtol=1e-4, atol=1e-5`` in float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from hypothesis import strategies as st

FLOAT_DTYPES = (np.float32, np.float64)

# COURSE.md tolerances, keyed by dtype (NumPy and torch spellings both work).
_TOLERANCES = {"float32": {"rtol": 1e-4, "atol": 1e-5}, "float64": {"rtol": 1e-5, "atol": 1e-6}}


def tolerance(dtype: object) -> dict[str, float]:
    """``{"rtol": ..., "atol": ...}`` for ``np.float32``/``np.float64`` or ``torch.float32``/``torch.float64``."""
    name = str(dtype).removeprefix("torch.")
    return _TOLERANCES[name if name in _TOLERANCES else np.dtype(dtype).name]


def assert_close(actual: object, expected: object, dtype: object, msg: str = "") -> None:
    """``numpy.testing.assert_allclose`` with the COURSE.md tolerance for ``dtype``; accepts tensors."""
    np.testing.assert_allclose(to_numpy(actual), to_numpy(expected), err_msg=msg, **tolerance(dtype))


def to_numpy(x: object) -> np.ndarray:
    """A NumPy copy of an array or a (possibly grad-requiring) tensor."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def to_torch(x: np.ndarray) -> torch.Tensor:
    """A torch tensor sharing dtype (float32/float64/bool) with ``x``."""
    return torch.from_numpy(np.ascontiguousarray(x))


# --- strategies -----------------------------------------------------------------------------------

seeds = st.integers(min_value=0, max_value=2**32 - 1)
float_dtypes = st.sampled_from(FLOAT_DTYPES)
torch_float_dtypes = st.sampled_from((torch.float32, torch.float64))


def batch_shapes(max_dims: int = 3, max_side: int = 3) -> st.SearchStrategy[tuple[int, ...]]:
    """Leading batch dims: ``()`` up to ``max_dims`` dims of size 1..``max_side``."""
    return st.lists(st.integers(1, max_side), min_size=0, max_size=max_dims).map(tuple)


@dataclass(frozen=True)
class AttentionCase:
    """Shapes of one scaled dot-product attention call and the seed that fills it."""

    batch: tuple[int, ...]
    n_q: int
    n_k: int
    d_k: int
    d_v: int
    seed: int
    dtype: type

    def arrays(self, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``Q (*batch, n_q, d_k)``, ``K (*batch, n_k, d_k)``, ``V (*batch, n_k, d_v)`` drawn N(0, 1); Q scaled."""
        rng = np.random.default_rng(self.seed)
        Q = scale * rng.standard_normal((*self.batch, self.n_q, self.d_k))
        K = rng.standard_normal((*self.batch, self.n_k, self.d_k))
        V = rng.standard_normal((*self.batch, self.n_k, self.d_v))
        return Q.astype(self.dtype), K.astype(self.dtype), V.astype(self.dtype)

    def mask(self, p_allowed: float = 0.6, keep_one: bool = True) -> np.ndarray:
        """A random boolean mask ``(*batch, n_q, n_k)``; with ``keep_one`` every row allows some key."""
        return random_mask(np.random.default_rng(self.seed + 1), (*self.batch, self.n_q, self.n_k), p_allowed, keep_one)


@st.composite
def attention_cases(
    draw: st.DrawFn,
    max_dims: int = 3,
    max_seq: int = 9,
    max_dim: int = 8,
    square: bool = False,
    dtypes: st.SearchStrategy = float_dtypes,
) -> AttentionCase:
    """Random attention shapes (several leading batch dims, ``n_q != n_k`` unless ``square``), seed, dtype."""
    n_q = draw(st.integers(1, max_seq))
    n_k = n_q if square else draw(st.integers(1, max_seq))
    return AttentionCase(
        batch=draw(batch_shapes(max_dims)),
        n_q=n_q,
        n_k=n_k,
        d_k=draw(st.integers(1, max_dim)),
        d_v=draw(st.integers(1, max_dim)),
        seed=draw(seeds),
        dtype=draw(dtypes),
    )


def random_mask(
    rng: np.random.Generator, shape: tuple[int, ...], p_allowed: float = 0.6, keep_one: bool = True
) -> np.ndarray:
    """Boolean mask, True = may attend. ``keep_one`` re-opens one random key in every fully blocked row."""
    mask = rng.random(shape) < p_allowed
    if keep_one and shape[-1] > 0:
        blocked = ~mask.any(axis=-1)
        cols = rng.integers(0, shape[-1], size=shape[:-1])
        mask[blocked, cols[blocked]] = True
    return mask


@st.composite
def broadcast_mask_shapes(draw: st.DrawFn, batch: tuple[int, ...], n_q: int, n_k: int) -> tuple[int, ...]:
    """A mask shape that broadcasts to ``(*batch, n_q, n_k)``: some leading dims dropped or set to 1,
    ``n_q`` possibly 1 (the same mask for every query, as a padding mask)."""
    n_lead = draw(st.integers(0, len(batch)))
    lead = tuple(draw(st.sampled_from((1, b))) for b in batch[len(batch) - n_lead :])
    return (*lead, draw(st.sampled_from((1, n_q))), n_k)


lengths_and_width = st.integers(1, 8).flatmap(
    lambda n_k: st.tuples(st.lists(st.integers(0, n_k), min_size=1, max_size=4), st.just(n_k))
)
"""``(lengths, n_k)``: valid lengths of a padded batch (each in ``[0, n_k]``) and the padded length."""


@st.composite
def head_configs(draw: st.DrawFn, max_heads: int = 6, max_head_dim: int = 4) -> tuple[int, int, int]:
    """``(d_model, n_heads, n_kv_heads)`` with ``n_heads | d_model`` and ``n_kv_heads | n_heads``."""
    n_heads = draw(st.integers(1, max_heads))
    n_kv_heads = draw(st.sampled_from([g for g in range(1, n_heads + 1) if n_heads % g == 0]))
    head_dim = draw(st.integers(1, max_head_dim))
    return n_heads * head_dim, n_heads, n_kv_heads
