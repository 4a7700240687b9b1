"""Reference solutions for every graded exercise of the course (instructor-only: keep private).

NumPy for chapters 1–3, PyTorch for chapters 4–6; names and shapes as in ``COURSE.md``.
"""

from .ch1_lookup import hard_lookup, soft_lookup
from .ch2_sdpa import causal_mask, padding_mask, scaled_dot_product_attention, softmax
from .ch3_self_cross import cross_attention, self_attention
from .ch4_multihead import MultiHeadAttention, merge_heads, split_heads
from .ch5_gqa import GroupedQueryAttention, kv_cache_bytes, mha_to_gqa, repeat_kv
from .ch6_tiled import tiled_attention

__all__ = [
    "hard_lookup",
    "soft_lookup",
    "softmax",
    "causal_mask",
    "padding_mask",
    "scaled_dot_product_attention",
    "self_attention",
    "cross_attention",
    "split_heads",
    "merge_heads",
    "MultiHeadAttention",
    "repeat_kv",
    "GroupedQueryAttention",
    "kv_cache_bytes",
    "mha_to_gqa",
    "tiled_attention",
]
