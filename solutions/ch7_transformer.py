"""Chapter 7 — a tiny transformer that learns: the decoder layer with its KV cache, and greedy decoding.

The decoder layer is assembled from the course's own modules: chapter 5's ``GroupedQueryAttention``
(causal self-attention over the target, with its KV cache) and chapter 4's ``MultiHeadAttention``
(cross-attention from the target to the encoder's output, the *memory*). Pre-norm residual blocks:
``x + sublayer(norm(x))``.

``greedy_decode`` works with any model that offers ``encode(src) -> (memory, memory_mask)`` and
``decode(tokens, memory, memory_mask, kv_caches=None) -> (logits, new_kv_caches)`` (the course's
``TinyTransformer`` in ``course/tinyformer.py``).
"""

from __future__ import annotations

from types import SimpleNamespace

import torch
from torch import nn

from ._checks import require_ndim, shape_of, validated
from .ch4_multihead import MultiHeadAttention
from .ch5_gqa import GroupedQueryAttention

KVCache = tuple[torch.Tensor, torch.Tensor]


def _check_layer(a: SimpleNamespace) -> None:
    if a.n_heads <= 0 or a.d_model % a.n_heads:
        raise ValueError(f"n_heads={a.n_heads} must divide d_model={a.d_model}")
    if a.n_kv_heads <= 0 or a.n_heads % a.n_kv_heads:
        raise ValueError(f"n_kv_heads={a.n_kv_heads} must divide n_heads={a.n_heads}")
    if a.d_ff <= 0:
        raise ValueError(f"d_ff must be > 0, got {a.d_ff}")


def _check_layer_forward(a: SimpleNamespace) -> None:
    d_model = a.self.d_model
    require_ndim("x", a.x, 3, "(batch, n_new, d_model)")
    require_ndim("memory", a.memory, 3, "(batch, n_src, d_model)")
    for name, t in (("x", a.x), ("memory", a.memory)):
        if t.shape[-1] != d_model:
            raise ValueError(f"{name} has shape {shape_of(t)}, expected last dim d_model={d_model}")
    if a.x.shape[0] != a.memory.shape[0]:
        raise ValueError(f"x {shape_of(a.x)} and memory {shape_of(a.memory)} must share the batch size")


def _check_decode(a: SimpleNamespace) -> None:
    require_ndim("src", a.src, 2, "(batch, n_src)")
    if a.max_len < 0:
        raise ValueError(f"max_len must be >= 0, got {a.max_len}")


class DecoderLayer(nn.Module):
    """One decoder layer: causal GQA self-attention (with a KV cache), cross-attention, feed-forward.

    Submodules: ``self_attn = GroupedQueryAttention(d_model, n_heads, n_kv_heads)``,
    ``cross_attn = MultiHeadAttention(d_model, n_heads)``, ``ff1 = nn.Linear(d_model, d_ff)``,
    ``ff2 = nn.Linear(d_ff, d_model)``, and ``norm1``, ``norm2``, ``norm3 = nn.LayerNorm(d_model)``.
    """

    @validated(_check_layer)
    def __init__(self, d_model: int, n_heads: int, n_kv_heads: int, d_ff: int) -> None:
        super().__init__()
        self.d_model = d_model
        self.self_attn = GroupedQueryAttention(d_model, n_heads, n_kv_heads)
        self.cross_attn = MultiHeadAttention(d_model, n_heads)
        self.ff1 = nn.Linear(d_model, d_ff)
        self.ff2 = nn.Linear(d_ff, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)

    @validated(_check_layer_forward)
    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor,
        memory_mask: torch.Tensor | None = None,
        kv_cache: KVCache | None = None,
    ) -> tuple[torch.Tensor, KVCache, torch.Tensor]:
        """Three pre-norm residual blocks: ``x = x + block(norm(x))``.

        Args:
            x: ``(batch, n_new, d_model)``, the new target positions.
            memory: ``(batch, n_src, d_model)``, the encoder's output.
            memory_mask: optional boolean ``(batch, 1, n_src)``, True = a real source token (may attend).
            kv_cache: the self-attention's cache ``(k, v)``, each ``(batch, n_kv_heads, n_past, head_dim)``.

        Returns:
            ``(output (batch, n_new, d_model), new_kv_cache, cross_weights (batch, n_heads, n_new, n_src))``.
        """
        attended, new_kv_cache = self.self_attn(self.norm1(x), kv_cache=kv_cache)  # causal over cache + new
        x = x + attended
        crossed, cross_weights = self.cross_attn(self.norm2(x), memory, memory, memory_mask)
        x = x + crossed
        x = x + self.ff2(torch.relu(self.ff1(self.norm3(x))))
        return x, new_kv_cache, cross_weights


@validated(_check_decode)
def greedy_decode(
    model: nn.Module, src: torch.Tensor, bos_id: int, max_len: int, use_cache: bool = True
) -> torch.Tensor:
    """Translate ``src (batch, n_src)`` token by token, always taking the most likely next token.

    Start every target with ``bos_id``; at each of ``max_len`` steps append ``argmax`` of the last
    position's logits. With ``use_cache`` only the newest token goes through the decoder (its layers'
    KV caches hold the rest); without it the whole prefix is decoded again at every step. Both give
    the same tokens.

    Returns:
        ``(batch, max_len)`` int64 tokens, without the leading ``bos_id``.
    """
    memory, memory_mask = model.encode(src)
    tokens = torch.full((src.shape[0], 1), bos_id, dtype=torch.long, device=src.device)
    kv_caches = None
    for _ in range(max_len):
        if use_cache:
            logits, kv_caches = model.decode(tokens[:, -1:], memory, memory_mask, kv_caches)
        else:
            logits, _ = model.decode(tokens, memory, memory_mask)
        next_token = logits[:, -1].argmax(dim=-1)  # (batch,)
        tokens = torch.cat([tokens, next_token[:, None]], dim=1)
    return tokens[:, 1:]
