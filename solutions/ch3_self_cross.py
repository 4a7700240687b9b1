"""Chapter 3 — self-attention and cross-attention (NumPy).

Self-attention: queries, keys and values are projections of the same sequence ``X``.
Cross-attention: queries come from one sequence (the decoder), keys and values from another
(the encoder), so ``n_q != n_k`` in general.
Positions: both are permutation equivariant, so the order of the tokens must be injected, as sinusoidal
absolute encodings added to the embeddings or as rotary embeddings (RoPE) applied to queries and keys.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from ._checks import check_mask, require_min_ndim, require_ndim, shape_of, validated
from .ch2_sdpa import causal_mask, scaled_dot_product_attention


def _check_projection(name: str, X: np.ndarray, W: np.ndarray, x_name: str) -> None:
    require_ndim(name, W, 2, "(d_model, d_out)")
    if W.shape[0] != X.shape[-1]:
        raise ValueError(f"{name} {shape_of(W)} does not fit {x_name} {shape_of(X)}: need W.shape[0] == d_model")


def _check_qk_widths(W_q: np.ndarray, W_k: np.ndarray, n_q: int, n_k: int) -> None:
    if W_q.shape[1] != W_k.shape[1]:
        raise ValueError(
            f"W_q {shape_of(W_q)} and W_k {shape_of(W_k)} must give the same d_k: "
            f"Q would be {(n_q, W_q.shape[1])}, K {(n_k, W_k.shape[1])}"
        )


def _check_self(a: SimpleNamespace) -> None:
    require_min_ndim("X", a.X, 2, "(..., n, d_model)")
    for name, W in (("W_q", a.W_q), ("W_k", a.W_k), ("W_v", a.W_v)):
        _check_projection(name, a.X, W, "X")
    _check_qk_widths(a.W_q, a.W_k, a.X.shape[-2], a.X.shape[-2])


def _check_cross(a: SimpleNamespace) -> None:
    require_min_ndim("X_q", a.X_q, 2, "(..., n_q, d_model)")
    require_min_ndim("X_kv", a.X_kv, 2, "(..., n_k, d_model_kv)")
    _check_projection("W_q", a.X_q, a.W_q, "X_q")
    _check_projection("W_k", a.X_kv, a.W_k, "X_kv")
    _check_projection("W_v", a.X_kv, a.W_v, "X_kv")
    _check_qk_widths(a.W_q, a.W_k, a.X_q.shape[-2], a.X_kv.shape[-2])
    if a.kv_mask is not None:
        batch = np.broadcast_shapes(shape_of(a.X_q)[:-2], shape_of(a.X_kv)[:-2])
        check_mask(np.asarray(a.kv_mask), a.X_q.shape[-2], a.X_kv.shape[-2], batch)


@validated(_check_self)
def self_attention(
    X: np.ndarray, W_q: np.ndarray, W_k: np.ndarray, W_v: np.ndarray, causal: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Self-attention over one sequence.

    Args:
        X: ``(..., n, d_model)``.
        W_q: ``(d_model, d_k)``; W_k: ``(d_model, d_k)``; W_v: ``(d_model, d_v)``.
        causal: if True, token ``i`` attends only tokens ``j <= i``.

    Returns:
        ``(output (..., n, d_v), weights (..., n, n))``.
    """
    Q, K, V = X @ W_q, X @ W_k, X @ W_v
    n = X.shape[-2]
    return scaled_dot_product_attention(Q, K, V, causal_mask(n, n) if causal else None)


@validated(_check_cross)
def cross_attention(
    X_q: np.ndarray,
    X_kv: np.ndarray,
    W_q: np.ndarray,
    W_k: np.ndarray,
    W_v: np.ndarray,
    kv_mask: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Cross-attention: queries from ``X_q`` (decoder), keys and values from ``X_kv`` (encoder).

    Args:
        X_q: ``(..., n_q, d_model)``.
        X_kv: ``(..., n_k, d_model_kv)``; ``d_model_kv`` may differ from ``d_model``.
        W_q: ``(d_model, d_k)``; W_k: ``(d_model_kv, d_k)``; W_v: ``(d_model_kv, d_v)``.
        kv_mask: optional boolean mask broadcastable to ``(..., n_q, n_k)``, True = may attend,
            e.g. ``padding_mask(lengths, n_k)`` of shape ``(batch, 1, n_k)`` to hide encoder padding.

    Returns:
        ``(output (..., n_q, d_v), weights (..., n_q, n_k))``.
    """
    Q, K, V = X_q @ W_q, X_kv @ W_k, X_kv @ W_v
    return scaled_dot_product_attention(Q, K, V, kv_mask)


def _check_sinusoidal(a: SimpleNamespace) -> None:
    for name, value in (("n", a.n), ("d", a.d)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"{name} must be an integer, got {value!r} of type {type(value).__name__}")
    if a.n < 0:
        raise ValueError(f"n (the number of positions) must be >= 0, got n={a.n}")
    if a.d <= 0 or a.d % 2:
        raise ValueError(f"d must be even and > 0 (sin/cos pairs), got d={a.d}: P would be {(a.n, a.d)}")


def _check_rope(a: SimpleNamespace) -> None:
    x, positions = a.x, np.asarray(a.positions)
    require_min_ndim("x", x, 2, "(..., n, d)")
    if x.shape[-1] % 2:
        raise ValueError(f"x {shape_of(x)} must have an even last dimension d (pairs of features), got d={x.shape[-1]}")
    require_ndim("positions", positions, 1, "(n,)")
    if positions.shape[0] != x.shape[-2]:
        raise ValueError(
            f"positions {shape_of(positions)} must give one position per token of x {shape_of(x)}: "
            f"need positions.shape == (n,) = ({x.shape[-2]},)"
        )
    if not np.issubdtype(positions.dtype, np.integer):
        raise ValueError(f"positions {shape_of(positions)} must be integers, got dtype {positions.dtype}")
    if not (np.isscalar(a.base) and np.isreal(a.base) and a.base > 0):
        raise ValueError(f"base must be a number > 0, got {a.base!r}")


@validated(_check_sinusoidal)
def sinusoidal_positions(n: int, d: int) -> np.ndarray:
    """Sinusoidal absolute position encodings ("Attention Is All You Need").

    Pair ``i`` of features turns at the frequency ``1 / 10000**(2i/d)``: fast for the first pairs,
    slower and slower for the last ones.

    Args:
        n: number of positions ``0, 1, ..., n - 1``.
        d: width of the encodings, even.

    Returns:
        ``P (n, d)`` with ``P[p, 2i] = sin(p / 10000**(2i/d))`` and ``P[p, 2i+1] = cos(p / 10000**(2i/d))``.
    """
    position = np.arange(n)[:, None]  # (n, 1)
    i = np.arange(d // 2)[None, :]  # (1, d/2): the index of each pair
    angle = position / 10000 ** (2 * i / d)  # (n, d/2)
    P = np.zeros((n, d))
    P[:, 0::2] = np.sin(angle)
    P[:, 1::2] = np.cos(angle)
    return P


@validated(_check_rope)
def apply_rope(x: np.ndarray, positions: np.ndarray, base: float = 10000.0) -> np.ndarray:
    """Rotary position embedding (RoPE, RoFormer convention): rotate each pair of features of each token.

    The pair ``(x[..., 2i], x[..., 2i+1])`` of the token at position ``p`` turns by the angle
    ``p * base**(-2i/d)``. Apply it to queries and keys: their dot product then depends on the
    offset between their positions only.

    Args:
        x: ``(..., n, d)``, ``d`` even.
        positions: ``(n,)`` integers, the position of each token (e.g. ``np.arange(n_past, n_past + n)``
            for new tokens after ``n_past`` cached ones).
        base: the wavelength scale (10000 in RoFormer).

    Returns:
        ``(..., n, d)``, same dtype as ``x`` (float64 for integer input).
    """
    x = np.asarray(x)
    d = x.shape[-1]
    theta = base ** (-2 * np.arange(d // 2) / d)  # (d/2,): one frequency per pair
    angle = np.asarray(positions)[:, None] * theta[None, :]  # (n, d/2)
    cos, sin = np.cos(angle), np.sin(angle)
    x_even, x_odd = x[..., 0::2], x[..., 1::2]  # first and second coordinate of every pair
    out = np.empty(x.shape, dtype=np.result_type(x, np.float32))
    out[..., 0::2] = x_even * cos - x_odd * sin
    out[..., 1::2] = x_even * sin + x_odd * cos
    return out
