"""Chapter 5 — grouped-query and multi-query attention, and the KV cache (PyTorch).

``n_heads`` query heads share ``n_kv_heads`` key/value heads: query head ``h`` reads key/value head
``h // (n_heads // n_kv_heads)``. ``n_kv_heads == n_heads`` is MHA, ``n_kv_heads == 1`` is MQA.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ._checks import check_mask, require_ndim, shape_of, validated
from ._torch_attention import heads_mask
from .ch4_multihead import MultiHeadAttention, merge_heads, split_heads

KVCache = tuple[torch.Tensor, torch.Tensor]


def _check_repeat(x: torch.Tensor, n_rep: int) -> None:
    require_ndim("x", x, 4, "(batch, n_kv_heads, seq, head_dim)")
    if n_rep < 1:
        raise ValueError(f"n_rep must be >= 1, got {n_rep}")


def _check_groups(self: nn.Module, d_model: int, n_heads: int, n_kv_heads: int, bias: bool = False) -> None:
    if n_heads <= 0 or d_model % n_heads:
        raise ValueError(f"n_heads={n_heads} must divide d_model={d_model}")
    if n_kv_heads <= 0 or n_heads % n_kv_heads:
        raise ValueError(f"n_kv_heads={n_kv_heads} must divide n_heads={n_heads}")


def _check_gqa_forward(
    self: GroupedQueryAttention, x: torch.Tensor, mask: torch.Tensor | None = None, kv_cache: KVCache | None = None
) -> None:
    require_ndim("x", x, 3, "(batch, n_new, d_model)")
    if x.shape[-1] != self.d_model:
        raise ValueError(f"x has shape {shape_of(x)}, expected last dim d_model={self.d_model}")
    n_past = 0
    if kv_cache is not None:
        past_k, past_v = kv_cache
        n_past = past_k.shape[-2]
        expected = (x.shape[0], self.n_kv_heads, n_past, self.head_dim)
        if shape_of(past_k) != expected or shape_of(past_v) != expected:
            raise ValueError(
                f"kv_cache tensors must have shape (batch, n_kv_heads, n_past, head_dim) = {expected}, "
                f"got k {shape_of(past_k)}, v {shape_of(past_v)}"
            )
    if mask is not None:
        check_mask(heads_mask(mask), x.shape[1], n_past + x.shape[1], (x.shape[0], self.n_heads))


def _check_convert(mha: MultiHeadAttention, n_kv_heads: int) -> None:
    if n_kv_heads <= 0 or mha.n_heads % n_kv_heads:
        raise ValueError(f"n_kv_heads={n_kv_heads} must divide n_heads={mha.n_heads}")


@validated(_check_repeat)
def repeat_kv(x: torch.Tensor, n_rep: int) -> torch.Tensor:
    """``(batch, n_kv_heads, seq, head_dim)`` -> ``(batch, n_kv_heads * n_rep, seq, head_dim)``.

    Interleaved: output head ``h`` is input head ``h // n_rep`` (like ``repeat_interleave`` on dim 1),
    not tiled.
    """
    batch, n_kv, seq, head_dim = x.shape
    return x[:, :, None].expand(batch, n_kv, n_rep, seq, head_dim).reshape(batch, n_kv * n_rep, seq, head_dim)


class GroupedQueryAttention(nn.Module):
    """Causal grouped-query self-attention with a KV cache.

    Projections: ``q_proj: d_model -> n_heads * head_dim``, ``k_proj``/``v_proj: d_model ->
    n_kv_heads * head_dim``, ``out_proj: n_heads * head_dim -> d_model``, with
    ``head_dim = d_model // n_heads``.
    """

    @validated(_check_groups)
    def __init__(self, d_model: int, n_heads: int, n_kv_heads: int, bias: bool = False) -> None:
        super().__init__()
        self.d_model, self.n_heads, self.n_kv_heads = d_model, n_heads, n_kv_heads
        self.head_dim = d_model // n_heads
        self.n_rep = n_heads // n_kv_heads
        self.q_proj = nn.Linear(d_model, n_heads * self.head_dim, bias=bias)
        self.k_proj = nn.Linear(d_model, n_kv_heads * self.head_dim, bias=bias)
        self.v_proj = nn.Linear(d_model, n_kv_heads * self.head_dim, bias=bias)
        self.out_proj = nn.Linear(n_heads * self.head_dim, d_model, bias=bias)

    @validated(_check_gqa_forward)
    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None, kv_cache: KVCache | None = None
    ) -> tuple[torch.Tensor, KVCache]:
        """Attend over the cached tokens plus the new ones.

        Args:
            x: ``(batch, n_new, d_model)``, the new tokens.
            mask: optional boolean, True = may attend, over ``(n_new, n_past + n_new)`` (shapes as in
                ``MultiHeadAttention``). ``None`` means causal: new token ``i`` sees every cached token
                and the new tokens ``<= i`` (a lower-right aligned causal mask).
            kv_cache: ``(k, v)``, each ``(batch, n_kv_heads, n_past, head_dim)``, or None.

        Returns:
            ``(output (batch, n_new, d_model), new_kv_cache)`` where the new cache holds
            ``n_past + n_new`` positions. Decoding one token at a time gives the full causal forward.
        """
        batch, n_new, _ = x.shape
        q = split_heads(self.q_proj(x), self.n_heads)  # (batch, n_heads, n_new, head_dim)
        k = split_heads(self.k_proj(x), self.n_kv_heads)  # (batch, n_kv_heads, n_new, head_dim)
        v = split_heads(self.v_proj(x), self.n_kv_heads)
        if kv_cache is not None:
            k = torch.cat([kv_cache[0], k], dim=-2)  # (batch, n_kv_heads, n_past + n_new, head_dim)
            v = torch.cat([kv_cache[1], v], dim=-2)
        n_total = k.shape[-2]
        if mask is None:  # causal, aligned to the bottom right: new token i sees the cache and new tokens <= i
            mask = torch.ones(n_new, n_total, dtype=torch.bool, device=x.device).tril(n_total - n_new)
        if mask.ndim == 3:  # (batch, n_new | 1, n_total): one mask for every head
            mask = mask.unsqueeze(1)
        # The n_rep query heads of group g all read key/value head g: seen as n_rep * n_new query rows
        # against that one head, each key/value head is read in place (no repeat_kv copy).
        rows = q.reshape(batch, self.n_kv_heads, self.n_rep * n_new, self.head_dim)
        scores = rows @ k.transpose(-2, -1) / math.sqrt(self.head_dim)
        scores = scores.view(batch, self.n_heads, n_new, n_total)  # back to one row per head and query
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        weights = torch.softmax(scores, dim=-1) * mask  # a fully blocked row: zeros
        out = weights.view(batch, self.n_kv_heads, self.n_rep * n_new, n_total) @ v
        out = out.view(batch, self.n_heads, n_new, self.head_dim)
        return self.out_proj(merge_heads(out)), (k, v)


def kv_cache_bytes(
    batch: int, seq_len: int, n_layers: int, n_kv_heads: int, head_dim: int, bytes_per_elem: int = 2
) -> int:
    """Bytes of a KV cache: keys and values (2) for every layer, KV head, position and feature."""
    return 2 * batch * seq_len * n_layers * n_kv_heads * head_dim * bytes_per_elem


@validated(_check_convert)
def mha_to_gqa(mha: MultiHeadAttention, n_kv_heads: int) -> GroupedQueryAttention:
    """Convert an MHA checkpoint to GQA by mean-pooling key and value heads within each group.

    Group ``g`` holds query heads ``g * n_rep ... (g + 1) * n_rep - 1`` (the heads that read KV head ``g``).
    Query and output projections are copied unchanged; biases are pooled like weights when present.
    """
    n_heads, head_dim, d_model = mha.n_heads, mha.head_dim, mha.d_model
    # Build in the MHA's dtype/device before copying: copying float64 weights into float32 parameters
    # would round them.
    gqa = GroupedQueryAttention(d_model, n_heads, n_kv_heads, bias=mha.q_proj.bias is not None)
    gqa = gqa.to(dtype=mha.q_proj.weight.dtype, device=mha.q_proj.weight.device)
    n_rep = n_heads // n_kv_heads

    def pool(t: torch.Tensor) -> torch.Tensor:  # (n_heads * head_dim, ...) -> (n_kv_heads * head_dim, ...)
        return t.reshape(n_kv_heads, n_rep, head_dim, *t.shape[1:]).mean(dim=1).reshape(-1, *t.shape[1:])

    with torch.no_grad():
        for name in ("q_proj", "out_proj"):
            getattr(gqa, name).load_state_dict(getattr(mha, name).state_dict())
        for name in ("k_proj", "v_proj"):
            src, dst = getattr(mha, name), getattr(gqa, name)
            dst.weight.copy_(pool(src.weight))
            if src.bias is not None:
                dst.bias.copy_(pool(src.bias))
    return gqa
