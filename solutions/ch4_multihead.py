"""Chapter 4 — multi-head attention (PyTorch).

Split ``d_model`` into ``n_heads`` heads of ``head_dim = d_model // n_heads``, attend in every head
in parallel, concatenate (merge) the heads, and project. Matches ``torch.nn.MultiheadAttention``
(``batch_first=True, average_attn_weights=False``) given the same weights.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ._checks import check_mask, require_ndim, shape_of, validated
from ._torch_attention import heads_mask


def _check_split(x: torch.Tensor, n_heads: int) -> None:
    require_ndim("x", x, 3, "(batch, seq, d_model)")
    if n_heads <= 0 or x.shape[-1] % n_heads:
        raise ValueError(f"n_heads={n_heads} must divide d_model={x.shape[-1]} (x has shape {shape_of(x)})")


def _check_merge(x: torch.Tensor) -> None:
    require_ndim("x", x, 4, "(batch, n_heads, seq, head_dim)")


def _check_heads(self: nn.Module, d_model: int, n_heads: int, bias: bool = True) -> None:
    if n_heads <= 0 or d_model % n_heads:
        raise ValueError(f"n_heads={n_heads} must divide d_model={d_model}")


def _check_forward(
    self: MultiHeadAttention,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    mask: torch.Tensor | None = None,
) -> None:
    for name, t in (("query", query), ("key", key), ("value", value)):
        require_ndim(name, t, 3, "(batch, seq, d_model)")
        if t.shape[-1] != self.d_model:
            raise ValueError(f"{name} has shape {shape_of(t)}, expected last dim d_model={self.d_model}")
    if key.shape[:2] != value.shape[:2]:
        raise ValueError(f"key {shape_of(key)} and value {shape_of(value)} must share (batch, n_k)")
    if query.shape[0] != key.shape[0]:
        raise ValueError(f"query {shape_of(query)} and key {shape_of(key)} must share the batch size")
    if mask is not None:
        check_mask(heads_mask(mask), query.shape[1], key.shape[1], (query.shape[0], self.n_heads))


@validated(_check_split)
def split_heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """``(batch, seq, d_model)`` -> ``(batch, n_heads, seq, d_model // n_heads)``.

    Head ``h`` holds features ``h * head_dim : (h + 1) * head_dim`` of every token.
    """
    batch, seq, d_model = x.shape
    return x.reshape(batch, seq, n_heads, d_model // n_heads).transpose(1, 2)


@validated(_check_merge)
def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """``(batch, n_heads, seq, head_dim)`` -> ``(batch, seq, n_heads * head_dim)``; inverse of split_heads."""
    batch, n_heads, seq, head_dim = x.shape
    return x.transpose(1, 2).reshape(batch, seq, n_heads * head_dim)


class MultiHeadAttention(nn.Module):
    """Multi-head attention with projections ``q_proj``, ``k_proj``, ``v_proj``, ``out_proj``.

    The parameter count, ``4 * d_model * (d_model + bias)``, does not depend on ``n_heads``.
    """

    @validated(_check_heads)
    def __init__(self, d_model: int, n_heads: int, bias: bool = True) -> None:
        super().__init__()
        self.d_model, self.n_heads, self.head_dim = d_model, n_heads, d_model // n_heads
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.k_proj = nn.Linear(d_model, d_model, bias=bias)
        self.v_proj = nn.Linear(d_model, d_model, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)

    @validated(_check_forward)
    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Attend from ``query`` to ``key``/``value``.

        Args:
            query: ``(batch, n_q, d_model)``; key: ``(batch, n_k, d_model)``; value: ``(batch, n_k, d_model)``.
            mask: optional boolean, True = may attend: ``(n_q, n_k)``, ``(batch, n_q | 1, n_k)`` or
                ``(batch, n_heads | 1, n_q | 1, n_k)``.

        Returns:
            ``(output (batch, n_q, d_model), weights (batch, n_heads, n_q, n_k))``.
        """
        q = split_heads(self.q_proj(query), self.n_heads)  # (batch, n_heads, n_q, head_dim)
        k = split_heads(self.k_proj(key), self.n_heads)
        v = split_heads(self.v_proj(value), self.n_heads)
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)  # (batch, n_heads, n_q, n_k)
        if mask is not None:
            if mask.ndim == 3:  # (batch, n_q | 1, n_k): one mask for every head
                mask = mask.unsqueeze(1)
            # The most negative float rather than -inf keeps a fully blocked row free of NaN (also in
            # the gradient); multiplying by the mask then zeroes that row's weights.
            scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        weights = torch.softmax(scores, dim=-1)
        if mask is not None:
            weights = weights * mask
        return self.out_proj(merge_heads(weights @ v)), weights
