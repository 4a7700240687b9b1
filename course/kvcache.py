"""Real model shapes for chapter 5's KV-cache figures (no weights: only the numbers that size a cache).

Sources, as published with the models (``config.json`` of ``meta-llama/Llama-2-7b-hf`` and
``meta-llama/Llama-2-70b-hf`` on the Hugging Face Hub; Touvron et al. 2023, "Llama 2: Open Foundation
and Fine-Tuned Chat Models", arXiv:2307.09288, Table 1 and Section 2.2):

- Llama-2-7B: ``hidden_size`` 4096, ``num_hidden_layers`` 32, ``num_attention_heads`` 32,
  ``num_key_value_heads`` 32 (plain multi-head attention), so ``head_dim = 4096 / 32 = 128``;
  context length 4096.
- Llama-2-70B: ``hidden_size`` 8192, ``num_hidden_layers`` 80, ``num_attention_heads`` 64,
  ``num_key_value_heads`` 8 (grouped-query attention, 8 query heads per key/value head), so
  ``head_dim = 8192 / 64 = 128``; context length 4096.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class AttentionConfig:
    """The attention shape of a decoder-only transformer, as far as the KV cache is concerned."""

    name: str
    n_layers: int
    n_heads: int  # query heads per layer
    n_kv_heads: int  # key/value heads per layer: n_heads (MHA), 1 (MQA), or in between (GQA)
    head_dim: int
    context_length: int
    source: str

    def __post_init__(self) -> None:
        if min(self.n_layers, self.n_heads, self.n_kv_heads, self.head_dim) < 1:
            raise ValueError(f"every size must be >= 1: {self}")
        if self.n_heads % self.n_kv_heads:
            raise ValueError(f"n_heads={self.n_heads} is not a multiple of n_kv_heads={self.n_kv_heads}")

    @property
    def d_model(self) -> int:
        """Width of the residual stream, ``n_heads * head_dim``."""
        return self.n_heads * self.head_dim

    @property
    def kind(self) -> str:
        """``"MHA"``, ``"MQA"`` or ``"GQA-<n_kv_heads>"``."""
        if self.n_kv_heads == self.n_heads:
            return "MHA"
        if self.n_kv_heads == 1:
            return "MQA"
        return f"GQA-{self.n_kv_heads}"

    def with_kv_heads(self, n_kv_heads: int) -> AttentionConfig:
        """The same model with ``n_kv_heads`` key/value heads (a hypothetical variant)."""
        return replace(self, n_kv_heads=n_kv_heads)


_HUB = "config.json of meta-llama/{} on the Hugging Face Hub; Touvron et al. 2023 (arXiv:2307.09288)"

LLAMA2_7B = AttentionConfig(
    name="Llama-2-7B", n_layers=32, n_heads=32, n_kv_heads=32, head_dim=128, context_length=4096,
    source=_HUB.format("Llama-2-7b-hf"),
)
LLAMA2_70B = AttentionConfig(
    name="Llama-2-70B", n_layers=80, n_heads=64, n_kv_heads=8, head_dim=128, context_length=4096,
    source=_HUB.format("Llama-2-70b-hf"),
)


def attention_variants(config: AttentionConfig) -> list[AttentionConfig]:
    """MHA, the published GQA grouping (8 KV heads unless the model uses another), and MQA of one model.

    Ordered from most to fewest key/value heads, without duplicates.
    """
    gqa = config.n_kv_heads if 1 < config.n_kv_heads < config.n_heads else min(8, config.n_heads)
    counts = sorted({config.n_heads, gqa, 1}, reverse=True)
    return [config.with_kv_heads(k) for k in counts]
