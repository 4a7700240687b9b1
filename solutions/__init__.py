"""Reference solutions for every graded exercise of the course (instructor-only: keep private).

NumPy for chapters 1–3, PyTorch for chapters 4–6; names and shapes as in ``COURSE.md``.
Names are imported lazily (PEP 562), so ``from solutions import softmax`` does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_WHERE = {
    "hard_lookup": "ch1_lookup",
    "soft_lookup": "ch1_lookup",
    "numerical_gradient": "ch1_lookup",
    "softmax": "ch2_sdpa",
    "causal_mask": "ch2_sdpa",
    "padding_mask": "ch2_sdpa",
    "scaled_dot_product_attention": "ch2_sdpa",
    "self_attention": "ch3_self_cross",
    "cross_attention": "ch3_self_cross",
    "split_heads": "ch4_multihead",
    "merge_heads": "ch4_multihead",
    "MultiHeadAttention": "ch4_multihead",
    "repeat_kv": "ch5_gqa",
    "GroupedQueryAttention": "ch5_gqa",
    "kv_cache_bytes": "ch5_gqa",
    "mha_to_gqa": "ch5_gqa",
    "tiled_attention": "ch6_tiled",
}

__all__ = [
    "hard_lookup",
    "soft_lookup",
    "numerical_gradient",
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


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'solutions' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))


if TYPE_CHECKING:
    from .ch1_lookup import hard_lookup, numerical_gradient, soft_lookup
    from .ch2_sdpa import causal_mask, padding_mask, scaled_dot_product_attention, softmax
    from .ch3_self_cross import cross_attention, self_attention
    from .ch4_multihead import MultiHeadAttention, merge_heads, split_heads
    from .ch5_gqa import GroupedQueryAttention, kv_cache_bytes, mha_to_gqa, repeat_kv
    from .ch6_tiled import tiled_attention
