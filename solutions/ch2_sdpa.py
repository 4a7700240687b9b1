"""Chapter 2 — scaled dot-product attention (NumPy).

``Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V`` with optional boolean masks
(True = may attend). Fully blocked query rows give zero weights and a zero output, never NaN.
"""

from __future__ import annotations

import math

import numpy as np

from ._checks import broadcast_batch, check_mask, check_qkv, require_ndim, shape_of, validated


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax along ``axis``.

    Subtracting the maximum first keeps ``exp`` from overflowing for logits as large as 1e4. Entries
    equal to ``-inf`` get weight 0; a slice that is ``-inf`` everywhere gives all zeros (not NaN).

    Args:
        x: any shape, floating point.
        axis: the axis that sums to 1.

    Returns:
        Same shape as ``x``.
    """
    peak = np.max(x, axis=axis, keepdims=True)
    peak = np.where(np.isfinite(peak), peak, 0)  # a row that is -inf everywhere: subtract 0
    e = np.exp(x - peak)
    total = np.sum(e, axis=axis, keepdims=True)
    return np.divide(e, total, out=np.zeros_like(e), where=total > 0)


def _check_sizes(n_q: int, n_k: int) -> None:
    if n_q < 0 or n_k < 0:
        raise ValueError(f"n_q and n_k must be >= 0, got n_q={n_q}, n_k={n_k}")


def _check_lengths(lengths: np.ndarray, n_k: int) -> None:
    lengths = np.asarray(lengths)
    require_ndim("lengths", lengths, 1, "(batch,)")
    if lengths.size and (lengths.min() < 0 or lengths.max() > n_k):
        raise ValueError(f"lengths must lie in [0, n_k={n_k}], got {lengths.tolist()}")


def _check_attention(Q: np.ndarray, K: np.ndarray, V: np.ndarray, mask: np.ndarray | None = None) -> None:
    n_q, n_k = check_qkv(Q, K, V)
    batch = broadcast_batch(shape_of(Q)[:-2], shape_of(K)[:-2], shape_of(V)[:-2], names=("Q", "K", "V"))
    if mask is not None:
        check_mask(np.asarray(mask), n_q, n_k, batch)


@validated(_check_sizes)
def causal_mask(n_q: int, n_k: int) -> np.ndarray:
    """Boolean ``(n_q, n_k)`` mask: query ``i`` may attend key ``j`` iff ``j <= i + (n_k - n_q)``.

    The diagonal is aligned to the bottom-right corner, so the last query sees every key (the
    convention for decoding with a cache of ``n_k - n_q`` earlier tokens). For ``n_q == n_k`` it is
    the usual lower-triangular mask.
    """
    return np.tril(np.ones((n_q, n_k), dtype=bool), k=n_k - n_q)


@validated(_check_lengths)
def padding_mask(lengths: np.ndarray, n_k: int) -> np.ndarray:
    """Boolean ``(batch, 1, n_k)`` mask from the valid length of each sequence in a padded batch.

    Key ``j`` of sequence ``b`` may be attended iff ``j < lengths[b]``. The middle axis of size 1
    broadcasts over the queries.

    Args:
        lengths: ``(batch,)`` integers in ``[0, n_k]``.
        n_k: padded length.
    """
    lengths = np.asarray(lengths)
    return (np.arange(n_k)[None, :] < lengths[:, None])[:, None, :]


@validated(_check_attention)
def scaled_dot_product_attention(
    Q: np.ndarray, K: np.ndarray, V: np.ndarray, mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Scaled dot-product attention.

    Args:
        Q: ``(..., n_q, d_k)`` queries.
        K: ``(..., n_k, d_k)`` keys.
        V: ``(..., n_k, d_v)`` values.
        mask: optional boolean, broadcastable to ``(..., n_q, n_k)``; True = may attend.

    Returns:
        ``(output (..., n_q, d_v), weights (..., n_q, n_k))``. Each unblocked row of weights sums
        to 1; fully blocked rows are all zero, and so is their output.
    """
    d_k = Q.shape[-1]
    scores = Q @ np.swapaxes(K, -1, -2) / math.sqrt(d_k)
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    weights = softmax(scores, axis=-1)
    return weights @ V, weights
