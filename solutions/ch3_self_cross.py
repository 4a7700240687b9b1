"""Chapter 3 — self-attention and cross-attention (NumPy).

Self-attention: queries, keys and values are projections of the same sequence ``X``.
Cross-attention: queries come from one sequence (the decoder), keys and values from another
(the encoder), so ``n_q != n_k`` in general.
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


def _check_positions(a: SimpleNamespace) -> None:
    if a.n < 0 or a.d <= 0 or a.d % 2:
        raise ValueError(f"need n >= 0 and an even d > 0, got n={a.n}, d={a.d}")


@validated(_check_positions)
def sinusoidal_positions(n: int, d: int) -> np.ndarray:
    """Sinusoidal absolute position encodings, ``(n, d)`` with ``d`` even (as in "Attention Is All You Need").

    ``P[p, 2i] = sin(p / 10000**(2i/d))`` and ``P[p, 2i+1] = cos(p / 10000**(2i/d))``.
    """
    angles = np.arange(n)[:, None] / 10000 ** (np.arange(0, d, 2)[None, :] / d)  # (n, d // 2)
    P = np.zeros((n, d))
    P[:, 0::2] = np.sin(angles)
    P[:, 1::2] = np.cos(angles)
    return P
