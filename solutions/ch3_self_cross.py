"""Chapter 3 — self-attention and cross-attention (NumPy).

Self-attention: queries, keys and values are projections of the same sequence ``X``.
Cross-attention: queries come from one sequence (the decoder), keys and values from another
(the encoder), so ``n_q != n_k`` in general.
"""

from __future__ import annotations

import numpy as np

from ._checks import require_min_ndim, require_ndim, shape_of
from .ch2_sdpa import causal_mask, scaled_dot_product_attention


def _project(name: str, X: np.ndarray, W: np.ndarray, x_name: str) -> np.ndarray:
    require_ndim(name, W, 2, "(d_model, d_out)")
    if W.shape[0] != X.shape[-1]:
        raise ValueError(f"{name} {shape_of(W)} does not fit {x_name} {shape_of(X)}: need W.shape[0] == d_model")
    return X @ W


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
    require_min_ndim("X", X, 2, "(..., n, d_model)")
    Q, K, V = (_project(nm, X, W, "X") for nm, W in (("W_q", W_q), ("W_k", W_k), ("W_v", W_v)))
    n = X.shape[-2]
    return scaled_dot_product_attention(Q, K, V, causal_mask(n, n) if causal else None)


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
    require_min_ndim("X_q", X_q, 2, "(..., n_q, d_model)")
    require_min_ndim("X_kv", X_kv, 2, "(..., n_k, d_model_kv)")
    Q = _project("W_q", X_q, W_q, "X_q")
    K = _project("W_k", X_kv, W_k, "X_kv")
    V = _project("W_v", X_kv, W_v, "X_kv")
    return scaled_dot_product_attention(Q, K, V, kv_mask)
