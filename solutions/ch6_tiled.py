"""Chapter 6 — attention without the n^2 matrix: tiling, the online softmax and the backward pass (PyTorch).

Keys and values are visited block by block. For every query block we keep a running row maximum
``m``, a running normaliser ``l`` and an unnormalised output ``acc``; when a new key block raises the
maximum, the old ``l`` and ``acc`` are rescaled by ``exp(m_old - m_new)`` (Milakov & Gimelshein's online
softmax, the recurrence behind FlashAttention). No score matrix larger than
``(block_size, block_size)`` per batch element and head is ever held.

``sdpa_backward`` is the gradient of scaled dot-product attention written out by hand (no autograd):
it recomputes the weights from ``Q`` and ``K``, as FlashAttention's backward pass does, and applies the
softmax Jacobian in its row form ``dS = A * (dA - rowsum(dA * A))``.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import torch

from ._checks import check_mask, check_qkv, require_min_ndim, shape_of, validated


def _check_tiled(a: SimpleNamespace) -> None:
    check_qkv(a.Q, a.K, a.V)
    if a.block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {a.block_size}")


@validated(_check_tiled)
def tiled_attention(
    Q: torch.Tensor, K: torch.Tensor, V: torch.Tensor, block_size: int = 128, causal: bool = False
) -> torch.Tensor:
    """Exact scaled dot-product attention computed tile by tile.

    Args:
        Q: ``(..., n_q, d_k)``; K: ``(..., n_k, d_k)``; V: ``(..., n_k, d_v)``.
        block_size: rows of Q and of K/V handled per tile (need not divide the sequence lengths).
        causal: lower-right aligned causal mask, as ``causal_mask(n_q, n_k)``: query ``i`` sees keys
            ``j <= i + (n_k - n_q)``; queries that see no key get a zero output.

    Returns:
        ``(..., n_q, d_v)``, equal to the output of scaled dot-product attention. (The weights are
        not returned: materialising them is exactly what tiling avoids.)
    """
    n_q, n_k = Q.shape[-2], K.shape[-2]
    batch = torch.broadcast_shapes(Q.shape[:-2], K.shape[:-2], V.shape[:-2])
    dtype = torch.promote_types(torch.promote_types(Q.dtype, K.dtype), V.dtype)
    Q, K, V = (t.to(dtype).expand(*batch, *t.shape[-2:]) for t in (Q, K, V))
    scale = 1.0 / math.sqrt(Q.shape[-1])
    offset = n_k - n_q  # causal: key j visible to query i iff j <= i + offset
    out = Q.new_zeros(*batch, n_q, V.shape[-1])

    for q0 in range(0, n_q, block_size):
        q1 = min(q0 + block_size, n_q)
        q = Q[..., q0:q1, :] * scale
        m = q.new_full((*batch, q1 - q0, 1), -math.inf)  # running row max
        lse = q.new_zeros((*batch, q1 - q0, 1))  # running sum of exp(score - m)
        acc = q.new_zeros((*batch, q1 - q0, V.shape[-1]))  # running sum of exp(score - m) * v
        k_end = min(n_k, q1 + offset) if causal else n_k  # later key blocks are fully masked
        for k0 in range(0, max(k_end, 0), block_size):
            k1 = min(k0 + block_size, n_k)
            s = q @ K[..., k0:k1, :].transpose(-2, -1)  # (..., bq, bk): the only score tile
            if causal and k1 - 1 > q0 + offset:  # tile crosses the diagonal
                rows = torch.arange(q0, q1, device=Q.device)[:, None]
                cols = torch.arange(k0, k1, device=Q.device)[None, :]
                s = s.masked_fill(cols > rows + offset, -math.inf)
            m_new = torch.maximum(m, s.amax(dim=-1, keepdim=True))
            m_safe = torch.where(torch.isfinite(m_new), m_new, torch.zeros_like(m_new))
            p = torch.exp(s - m_safe)
            rescale = torch.exp(m - m_safe)  # 0 when m was -inf
            lse = lse * rescale + p.sum(dim=-1, keepdim=True)
            acc = acc * rescale + p @ V[..., k0:k1, :]
            m = m_new
        out[..., q0:q1, :] = torch.where(lse > 0, acc / lse.clamp_min(torch.finfo(dtype).tiny), 0.0)
    return out


def _check_backward(a: SimpleNamespace) -> None:
    n_q, _ = check_qkv(a.Q, a.K, a.V)
    require_min_ndim("dO", a.dO, 2, "(..., n_q, d_v)")
    q, k, v, do = (shape_of(t) for t in (a.Q, a.K, a.V, a.dO))
    if do[-2:] != (n_q, v[-1]):
        raise ValueError(f"dO must have the shape of the output, (..., n_q, d_v) = (..., {n_q}, {v[-1]}): "
                         f"got dO {do} (Q {q}, V {v})")
    if not q[:-2] == k[:-2] == v[:-2] == do[:-2]:
        raise ValueError("Q, K, V and dO must have the same batch dimensions (each gradient has the shape of "
                         f"its input): Q {q}, K {k}, V {v}, dO {do}")
    if a.mask is not None:
        check_mask(a.mask, n_q, k[-2], q[:-2])
        m = shape_of(a.mask)
        if len(m) > len(q):
            raise ValueError(f"mask of shape {m} has more batch dimensions than Q {q}: the gradients "
                             "would not have the shapes of Q, K and V")


@validated(_check_backward)
def sdpa_backward(
    Q: torch.Tensor, K: torch.Tensor, V: torch.Tensor, dO: torch.Tensor, mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The gradients of scaled dot-product attention, without autograd.

    The forward pass is ``O = A V`` with ``A = softmax(S)`` over the keys and ``S = Q K^T / sqrt(d_k)``
    (blocked scores set to -inf; a fully blocked row has ``A = 0``). Given the upstream gradient
    ``dO = dL/dO``, the chain rule gives ``dV = A^T dO``, ``dA = dO V^T``, the softmax Jacobian's row
    form ``dS = A * (dA - rowsum(dA * A))``, then ``dQ = dS K / sqrt(d_k)``, ``dK = dS^T Q / sqrt(d_k)``.

    Args:
        Q: ``(..., n_q, d_k)``; K: ``(..., n_k, d_k)``; V: ``(..., n_k, d_v)``; the same batch dims.
        dO: ``(..., n_q, d_v)``, the gradient of the loss with respect to the attention output.
        mask: boolean, broadcastable to ``(..., n_q, n_k)``, True = may attend.

    Returns:
        ``(dQ, dK, dV)`` with the shapes and dtype of ``Q``, ``K`` and ``V``; zeros where a query row is
        fully blocked (it influences nothing).
    """
    scale = 1.0 / math.sqrt(Q.shape[-1])
    scores = (Q @ K.transpose(-2, -1)) * scale  # (..., n_q, n_k), recomputed rather than stored
    if mask is not None:
        scores = scores.masked_fill(~mask, -math.inf)
    weights = torch.softmax(scores, dim=-1).nan_to_num(0.0)  # a fully blocked row: 0, not NaN
    dV = weights.transpose(-2, -1) @ dO
    dA = dO @ V.transpose(-2, -1)
    dS = weights * (dA - (dA * weights).sum(dim=-1, keepdim=True))
    dQ = (dS @ K) * scale
    dK = (dS.transpose(-2, -1) @ Q) * scale
    return dQ, dK, dV
