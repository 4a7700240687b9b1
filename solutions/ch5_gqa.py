"""Chapter 5 — grouped-query and multi-query attention, and the KV cache (PyTorch).

``n_heads`` query heads share ``n_kv_heads`` key/value heads: query head ``h`` reads key/value head
``h // (n_heads // n_kv_heads)``. ``n_kv_heads == n_heads`` is MHA, ``n_kv_heads == 1`` is MQA.
"""

from __future__ import annotations

import torch
from torch import nn

from ._checks import check_mask, require_ndim, shape_of
from ._torch_attention import attention, heads_mask, lower_right_causal_mask
from .ch4_multihead import MultiHeadAttention, merge_heads, split_heads

KVCache = tuple[torch.Tensor, torch.Tensor]


def repeat_kv(x: torch.Tensor, n_rep: int) -> torch.Tensor:
    """``(batch, n_kv_heads, seq, head_dim)`` -> ``(batch, n_kv_heads * n_rep, seq, head_dim)``.

    Interleaved: output head ``h`` is input head ``h // n_rep`` (like ``repeat_interleave`` on dim 1),
    not tiled.
    """
    require_ndim("x", x, 4, "(batch, n_kv_heads, seq, head_dim)")
    if n_rep < 1:
        raise ValueError(f"n_rep must be >= 1, got {n_rep}")
    batch, n_kv, seq, head_dim = x.shape
    return x[:, :, None].expand(batch, n_kv, n_rep, seq, head_dim).reshape(batch, n_kv * n_rep, seq, head_dim)


def _grouped_rows_mask(mask: torch.Tensor, n_kv_heads: int, n_rep: int, n_q: int) -> torch.Tensor:
    """A per-head mask rearranged for :func:`_grouped_attention`'s query rows.

    Args:
        mask: boolean, True = may attend: ``(n_q | 1, n_k)`` or ``(batch | 1, n_heads | 1, n_q | 1, n_k)``.

    Returns:
        ``(batch | 1, n_kv_heads | 1, n_rep * n_q | 1, n_k)``: row ``r * n_q + i`` of group ``g`` is
        query ``i`` of head ``g * n_rep + r``. Only the (small, boolean) mask is ever repeated.
    """
    if mask.ndim == 2:
        mask = mask[None, None]
    batch, heads, rows, n_k = mask.shape
    if heads == 1 and rows == 1:
        return mask  # one row for every head and query: broadcasts as it is
    if heads == 1:
        return mask.repeat(1, 1, n_rep, 1)  # the same rows for each of the n_rep heads of a group
    return mask.expand(batch, heads, n_q, n_k).reshape(batch, n_kv_heads, n_rep * n_q, n_k)


def _grouped_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Attention of ``n_heads`` query heads over ``n_kv_heads`` shared key/value heads, without copying them.

    Args:
        q: ``(batch, n_heads, n_q, head_dim)``; k, v: ``(batch, n_kv_heads, n_k, head_dim)``, where
            ``n_kv_heads`` divides ``n_heads``.
        mask: optional boolean, True = may attend: ``(n_q, n_k)`` or ``(batch | 1, n_heads | 1, n_q | 1, n_k)``.

    Returns:
        ``(batch, n_heads, n_q, head_dim)``, the same as
        ``attention(q, repeat_kv(k, n_rep), repeat_kv(v, n_rep), mask)[0]``: query head ``h`` reads key/value
        head ``h // n_rep``.
    """
    batch, n_heads, n_q, head_dim = q.shape
    n_kv_heads, n_k = k.shape[1], k.shape[-2]
    n_rep = n_heads // n_kv_heads
    # The n_rep query heads of group g become n_rep * n_q query rows against the one key/value head g:
    # one ordinary matrix product per key/value head reads it once. (Broadcasting k as
    # (batch, n_kv_heads, 1, n_k, head_dim) against q as (batch, n_kv_heads, n_rep, n_q, head_dim) would
    # not do: torch.matmul copies a broadcast operand to its full n_rep-fold size.)
    rows = q.reshape(batch, n_kv_heads, n_rep * n_q, head_dim)
    if mask is not None:
        check_mask(mask, n_q, n_k, (batch, n_heads))
        mask = _grouped_rows_mask(mask, n_kv_heads, n_rep, n_q)
    out, _ = attention(rows, k, v, mask)  # (batch, n_kv_heads, n_rep * n_q, head_dim)
    return out.reshape(batch, n_heads, n_q, head_dim)


class GroupedQueryAttention(nn.Module):
    """Causal grouped-query self-attention with a KV cache.

    Projections: ``q_proj: d_model -> n_heads * head_dim``, ``k_proj``/``v_proj: d_model ->
    n_kv_heads * head_dim``, ``out_proj: n_heads * head_dim -> d_model``, with
    ``head_dim = d_model // n_heads``.
    """

    def __init__(self, d_model: int, n_heads: int, n_kv_heads: int, bias: bool = False) -> None:
        super().__init__()
        if n_heads <= 0 or d_model % n_heads:
            raise ValueError(f"n_heads={n_heads} must divide d_model={d_model}")
        if n_kv_heads <= 0 or n_heads % n_kv_heads:
            raise ValueError(f"n_kv_heads={n_kv_heads} must divide n_heads={n_heads}")
        self.d_model, self.n_heads, self.n_kv_heads = d_model, n_heads, n_kv_heads
        self.head_dim = d_model // n_heads
        self.n_rep = n_heads // n_kv_heads
        self.q_proj = nn.Linear(d_model, n_heads * self.head_dim, bias=bias)
        self.k_proj = nn.Linear(d_model, n_kv_heads * self.head_dim, bias=bias)
        self.v_proj = nn.Linear(d_model, n_kv_heads * self.head_dim, bias=bias)
        self.out_proj = nn.Linear(n_heads * self.head_dim, d_model, bias=bias)

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
        require_ndim("x", x, 3, "(batch, n_new, d_model)")
        if x.shape[-1] != self.d_model:
            raise ValueError(f"x has shape {shape_of(x)}, expected last dim d_model={self.d_model}")
        q = split_heads(self.q_proj(x), self.n_heads)
        k = split_heads(self.k_proj(x), self.n_kv_heads)
        v = split_heads(self.v_proj(x), self.n_kv_heads)
        if kv_cache is not None:
            past_k, past_v = kv_cache
            expected = (x.shape[0], self.n_kv_heads, past_k.shape[-2], self.head_dim)
            if shape_of(past_k) != expected or shape_of(past_v) != expected:
                raise ValueError(
                    f"kv_cache tensors must have shape (batch, n_kv_heads, n_past, head_dim) = {expected}, "
                    f"got k {shape_of(past_k)}, v {shape_of(past_v)}"
                )
            k, v = torch.cat([past_k, k], dim=-2), torch.cat([past_v, v], dim=-2)
        n_new, n_total = q.shape[-2], k.shape[-2]
        if mask is None:
            mask = lower_right_causal_mask(n_new, n_total, device=x.device)
        # Each group of n_rep query heads reads its one key/value head in place: no repeat_kv copy.
        out = _grouped_attention(q, k, v, heads_mask(mask))
        return self.out_proj(merge_heads(out)), (k, v)


def kv_cache_bytes(
    batch: int, seq_len: int, n_layers: int, n_kv_heads: int, head_dim: int, bytes_per_elem: int = 2
) -> int:
    """Bytes of a KV cache: keys and values (2) for every layer, KV head, position and feature."""
    return 2 * batch * seq_len * n_layers * n_kv_heads * head_dim * bytes_per_elem


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
