"""The attention core shared by the PyTorch chapters (4–6): masked, stable, NaN-free."""

from __future__ import annotations

import math

import torch

from ._checks import check_mask, check_qkv, shape_of


def lower_right_causal_mask(n_q: int, n_k: int, device: torch.device | None = None) -> torch.Tensor:
    """Boolean ``(n_q, n_k)``: query ``i`` may attend key ``j`` iff ``j <= i + (n_k - n_q)``."""
    return torch.ones(n_q, n_k, dtype=torch.bool, device=device).tril(diagonal=n_k - n_q)


def heads_mask(mask: torch.Tensor) -> torch.Tensor:
    """Lift a mask to broadcast against ``(batch, heads, n_q, n_k)``.

    Accepted: ``(n_q, n_k)``; ``(batch, n_q | 1, n_k)`` (e.g. a padding mask ``(batch, 1, n_k)``), which
    gains a heads axis; ``(batch | 1, heads | 1, n_q | 1, n_k)`` as is.
    """
    if mask.ndim == 3:
        return mask.unsqueeze(1)
    if mask.ndim in (2, 4):
        return mask
    raise ValueError(
        f"mask of shape {shape_of(mask)} must be (n_q, n_k), (batch, n_q, n_k) or (batch, heads, n_q, n_k)"
    )


def attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scaled dot-product attention in PyTorch.

    Args:
        q: ``(..., n_q, d_k)``; k: ``(..., n_k, d_k)``; v: ``(..., n_k, d_v)``.
        mask: optional boolean broadcastable to ``(..., n_q, n_k)``, True = may attend.

    Returns:
        ``(output (..., n_q, d_v), weights (..., n_q, n_k))``; fully blocked rows are zero (no NaN,
        also in the gradient).
    """
    n_q, n_k = check_qkv(q, k, v)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is None:
        weights = torch.softmax(scores, dim=-1)
    else:
        batch = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
        check_mask(mask, n_q, n_k, tuple(batch))
        # A large finite negative instead of -inf keeps fully blocked rows (and their gradients) free
        # of NaN; those rows are zeroed afterwards.
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        weights = torch.softmax(scores, dim=-1) * mask.any(dim=-1, keepdim=True)
        weights = weights.masked_fill(~mask, 0.0)
    return weights @ v, weights
