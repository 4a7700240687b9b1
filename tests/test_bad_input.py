"""Bad input raises ``ValueError`` with a message that names the shapes (or sizes) involved.

Each case is ``(chapter, call, fragments)``: calling ``call()`` must raise ``ValueError`` whose message
contains every fragment (shapes written as Python tuples, e.g. ``(2, 3, 4)``). Cases carry their
chapter's marker, so ``pytest -m ch2`` runs chapter 2's share.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pytest
import torch

from solutions import (
    DecoderLayer,
    GroupedQueryAttention,
    MultiHeadAttention,
    apply_rope,
    cross_attention,
    greedy_decode,
    hard_lookup,
    induction_score,
    merge_heads,
    mha_to_gqa,
    next_token_probs,
    repeat_kv,
    rolling_cache_update,
    sample_next,
    scaled_dot_product_attention,
    sdpa_backward,
    self_attention,
    sinusoidal_positions,
    sliding_window_mask,
    soft_lookup,
    split_heads,
    tiled_attention,
)


def z(*shape: int) -> np.ndarray:
    return np.zeros(shape)


def t(*shape: int) -> torch.Tensor:
    return torch.zeros(shape)


def allowed(*shape: int, tensor: bool = False):
    """An all-True (may attend) boolean mask, NumPy or torch."""
    return torch.ones(shape, dtype=torch.bool) if tensor else np.ones(shape, dtype=bool)


def mentions_all(*fragments: object) -> str:
    """A regex that matches a message containing every fragment (in any order)."""
    return "(?s)" + "".join(f"(?=.*{re.escape(str(f))})" for f in fragments)


_mha = MultiHeadAttention(8, 2)
_gqa = GroupedQueryAttention(8, 4, 2)  # head_dim 2, n_rep 2
_dec = DecoderLayer(8, 4, 2, 16)

CASES: list[tuple[str, str, Callable[[], object], tuple[object, ...]]] = [
    # chapter 1
    ("ch1", "query d != keys d", lambda: hard_lookup(z(3), z(4, 2), z(4, 5)), ((3,), (4, 2))),
    ("ch1", "keys n != values n", lambda: soft_lookup(z(2), z(4, 2), z(3, 5)), ((4, 2), (3, 5))),
    ("ch1", "query not a vector", lambda: soft_lookup(z(1, 2), z(4, 2), z(4, 5)), ((1, 2),)),
    # chapter 2
    ("ch2", "Q and K d_k differ", lambda: scaled_dot_product_attention(z(2, 3, 4), z(2, 5, 3), z(2, 5, 6)),
     ((2, 3, 4), (2, 5, 3))),
    ("ch2", "K and V n_k differ", lambda: scaled_dot_product_attention(z(3, 4), z(5, 4), z(6, 2)), ((5, 4), (6, 2))),
    ("ch2", "batch dims do not broadcast", lambda: scaled_dot_product_attention(z(2, 3, 4), z(3, 5, 4), z(3, 5, 2)),
     ((2, 3, 4), (3, 5, 4))),
    ("ch2", "Q is a vector", lambda: scaled_dot_product_attention(z(4), z(5, 4), z(5, 2)), ((4,),)),
    ("ch2", "mask (n_k, n_q) instead of (n_q, n_k)",
     lambda: scaled_dot_product_attention(z(3, 4), z(5, 4), z(5, 2), mask=allowed(5, 3)), ((5, 3), 3, 5)),
    ("ch2", "mask batch does not broadcast",
     lambda: scaled_dot_product_attention(z(2, 3, 4), z(2, 5, 4), z(2, 5, 2), mask=allowed(3, 3, 5)), ((3, 3, 5),)),
    ("ch2", "mask is not boolean",
     lambda: scaled_dot_product_attention(z(3, 4), z(5, 4), z(5, 2), mask=np.ones((3, 5))), ((3, 5), "bool")),
    # chapter 3
    ("ch3", "W_q rows != d_model", lambda: self_attention(z(2, 6, 4), z(5, 3), z(4, 3), z(4, 3)), ((5, 3), (2, 6, 4))),
    ("ch3", "W_q and W_k give different d_k", lambda: self_attention(z(6, 4), z(4, 3), z(4, 2), z(4, 3)),
     ((6, 3), (6, 2))),
    ("ch3", "W_k rows != d_model of X_kv", lambda: cross_attention(z(2, 4), z(7, 5), z(4, 3), z(4, 3), z(5, 2)),
     ((4, 3), (7, 5))),
    ("ch3", "kv_mask of the wrong shape",
     lambda: cross_attention(z(2, 3, 4), z(2, 7, 4), z(4, 3), z(4, 3), z(4, 2), kv_mask=allowed(2, 1, 6)),
     ((2, 1, 6), 7)),
    ("ch3", "sinusoidal_positions: odd d", lambda: sinusoidal_positions(4, 5), ("d=5", "even", (4, 5))),
    ("ch3", "sinusoidal_positions: negative n", lambda: sinusoidal_positions(-1, 4), ("n=-1",)),
    ("ch3", "sinusoidal_positions: float n", lambda: sinusoidal_positions(3.5, 4), ("n must be an integer", 3.5)),
    ("ch3", "apply_rope: odd d", lambda: apply_rope(z(2, 3, 5), np.arange(3)), ((2, 3, 5), "even", "d=5")),
    ("ch3", "apply_rope: x is a vector", lambda: apply_rope(z(4), np.arange(1)), ((4,), "(..., n, d)")),
    ("ch3", "apply_rope: positions length != n", lambda: apply_rope(z(2, 3, 4), np.arange(4)),
     ((4,), (2, 3, 4), "(3,)")),
    ("ch3", "apply_rope: positions (1, n)", lambda: apply_rope(z(3, 4), np.arange(3)[None]), ((1, 3), "(n,)")),
    ("ch3", "apply_rope: float positions", lambda: apply_rope(z(3, 4), np.arange(3.0)), ((3,), "integers", "float64")),
    ("ch3", "apply_rope: base 0", lambda: apply_rope(z(3, 4), np.arange(3), base=0.0), ("base", "> 0")),
    # chapter 4
    ("ch4", "split_heads: n_heads does not divide d_model", lambda: split_heads(t(2, 3, 10), 3), (3, 10)),
    ("ch4", "split_heads: not (batch, seq, d_model)", lambda: split_heads(t(3, 10), 2), ((3, 10),)),
    ("ch4", "merge_heads: not 4-D", lambda: merge_heads(t(2, 3, 4)), ((2, 3, 4),)),
    ("ch4", "MultiHeadAttention: n_heads does not divide d_model", lambda: MultiHeadAttention(10, 3), (3, 10)),
    ("ch4", "query last dim != d_model", lambda: _mha(t(2, 3, 6), t(2, 3, 8), t(2, 3, 8)), ((2, 3, 6), 8)),
    ("ch4", "key and value lengths differ", lambda: _mha(t(2, 3, 8), t(2, 4, 8), t(2, 5, 8)), ((2, 4, 8), (2, 5, 8))),
    ("ch4", "query and key batch sizes differ", lambda: _mha(t(2, 3, 8), t(3, 5, 8), t(3, 5, 8)),
     ((2, 3, 8), (3, 5, 8))),
    ("ch4", "mask (n_k, n_q)", lambda: _mha(t(2, 3, 8), t(2, 5, 8), t(2, 5, 8), mask=allowed(5, 3, tensor=True)),
     ((5, 3), 3, 5)),
    ("ch4", "mask with 3 heads for 2",
     lambda: _mha(t(2, 3, 8), t(2, 5, 8), t(2, 5, 8), mask=allowed(2, 3, 3, 5, tensor=True)), ((2, 3, 3, 5),)),
    ("ch4", "mask with 5 dims",
     lambda: _mha(t(2, 3, 8), t(2, 5, 8), t(2, 5, 8), mask=allowed(1, 2, 2, 3, 5, tensor=True)),
     ((1, 2, 2, 3, 5),)),
    # chapter 5
    ("ch5", "n_kv_heads does not divide n_heads", lambda: GroupedQueryAttention(8, 4, 3), (3, 4)),
    ("ch5", "n_heads does not divide d_model", lambda: GroupedQueryAttention(10, 4, 2), (4, 10)),
    ("ch5", "mha_to_gqa: n_kv_heads does not divide n_heads", lambda: mha_to_gqa(MultiHeadAttention(8, 4), 3), (3, 4)),
    ("ch5", "repeat_kv: not 4-D", lambda: repeat_kv(t(2, 3, 4), 2), ((2, 3, 4),)),
    ("ch5", "x last dim != d_model", lambda: _gqa(t(1, 3, 6)), ((1, 3, 6), 8)),
    ("ch5", "kv_cache with 4 KV heads for 2", lambda: _gqa(t(1, 1, 8), kv_cache=(t(1, 4, 5, 2), t(1, 4, 5, 2))),
     ((1, 4, 5, 2), (1, 2, 5, 2))),
    ("ch5", "kv_cache batch differs", lambda: _gqa(t(3, 1, 8), kv_cache=(t(1, 2, 5, 2), t(1, 2, 5, 2))),
     ((1, 2, 5, 2), (3, 2, 5, 2))),
    ("ch5", "mask (n, n + 1)", lambda: _gqa(t(1, 3, 8), mask=allowed(3, 4, tensor=True)), ((3, 4), 3)),
    # chapter 6
    ("ch6", "Q and K d_k differ", lambda: tiled_attention(t(2, 3, 4), t(2, 5, 3), t(2, 5, 6)), ((2, 3, 4), (2, 5, 3))),
    ("ch6", "K and V n_k differ", lambda: tiled_attention(t(3, 4), t(5, 4), t(6, 4)), ((5, 4), (6, 4))),
    ("ch6", "block_size 0", lambda: tiled_attention(t(3, 4), t(5, 4), t(5, 4), block_size=0), ("block_size", 0)),
    ("ch6", "sdpa_backward: Q and K d_k differ", lambda: sdpa_backward(t(3, 4), t(5, 3), t(5, 2), t(3, 2)),
     ((3, 4), (5, 3))),
    ("ch6", "sdpa_backward: dO is not the output's shape", lambda: sdpa_backward(t(3, 4), t(5, 4), t(5, 2), t(5, 2)),
     ((5, 2), "dO", "(..., 3, 2)")),
    ("ch6", "sdpa_backward: dO 1-D", lambda: sdpa_backward(t(3, 4), t(5, 4), t(5, 2), t(2)), ((2,), "dO")),
    ("ch6", "sdpa_backward: batch dims differ", lambda: sdpa_backward(t(2, 3, 4), t(1, 5, 4), t(1, 5, 2), t(2, 3, 2)),
     ((2, 3, 4), (1, 5, 4), "batch")),
    ("ch6", "sdpa_backward: mask (3, 4) for n_k 5",
     lambda: sdpa_backward(t(3, 4), t(5, 4), t(5, 2), t(3, 2), allowed(3, 4, tensor=True)), ((3, 4), 5)),
    ("ch6", "sdpa_backward: mask with more batch dims than Q",
     lambda: sdpa_backward(t(3, 4), t(5, 4), t(5, 2), t(3, 2), allowed(2, 3, 5, tensor=True)), ((2, 3, 5), (3, 4))),
    # chapter 7
    ("ch7", "DecoderLayer: n_kv_heads does not divide n_heads", lambda: DecoderLayer(8, 4, 3, 16), (3, 4)),
    ("ch7", "DecoderLayer: d_ff 0", lambda: DecoderLayer(8, 4, 2, 0), ("d_ff", 0)),
    ("ch7", "DecoderLayer: x last dim != d_model", lambda: _dec(t(1, 3, 6), t(1, 5, 8)), ((1, 3, 6), 8)),
    ("ch7", "DecoderLayer: memory not 3-D", lambda: _dec(t(1, 3, 8), t(5, 8)), ((5, 8), "memory")),
    ("ch7", "DecoderLayer: batch differs", lambda: _dec(t(2, 3, 8), t(1, 5, 8)), ((2, 3, 8), (1, 5, 8))),
    ("ch7", "greedy_decode: src not 2-D", lambda: greedy_decode(None, t(5), 1, 3), ((5,), "src")),
    ("ch7", "greedy_decode: max_len < 0", lambda: greedy_decode(None, t(1, 5), 1, -1), ("max_len", -1)),
    ("ch8", "sliding_window_mask: window 0", lambda: sliding_window_mask(3, 3, 0), ("window", 0)),
    ("ch8", "sliding_window_mask: n_k negative", lambda: sliding_window_mask(3, -1, 2), ("n_k", -1)),
    ("ch8", "rolling_cache_update: k_new not 4-D", lambda: rolling_cache_update(None, t(2, 3, 4), t(2, 3, 4), 2),
     ((2, 3, 4), "k_new")),
    ("ch8", "rolling_cache_update: cache heads differ",
     lambda: rolling_cache_update((t(1, 2, 3, 4), t(1, 2, 3, 4)), t(1, 1, 1, 4), t(1, 1, 1, 4), 2), ((1, 2, 3, 4),
                                                                                                  (1, 1, 1, 4))),
    ("ch8", "rolling_cache_update: window 0", lambda: rolling_cache_update(None, t(1, 1, 1, 4), t(1, 1, 1, 4), 0),
     ("window", 0)),
    ("ch8", "next_token_probs: negative temperature", lambda: next_token_probs(t(5), temperature=-1.0),
     ("temperature", -1.0)),
    ("ch8", "next_token_probs: top_k 0", lambda: next_token_probs(t(5), top_k=0), ("top_k", 0)),
    ("ch8", "next_token_probs: top_p 1.5", lambda: next_token_probs(t(5), top_p=1.5), ("top_p", 1.5)),
    ("ch8", "next_token_probs: integer logits", lambda: next_token_probs(torch.ones(5, dtype=torch.long)),
     ("floating point", "int64")),
    ("ch8", "next_token_probs: empty vocabulary", lambda: next_token_probs(t(2, 0)), ((2, 0), "vocab")),
    ("ch8", "sample_next: generator not a Generator", lambda: sample_next(t(5), generator=3), ("generator", "int")),
    ("ch8", "induction_score: not square", lambda: induction_score(t(2, 4, 5), 2), ((2, 4, 5),)),
    ("ch8", "induction_score: period too long", lambda: induction_score(t(4, 4), 4), ("period=4", "n=4")),
    ("ch8", "induction_score: period 0", lambda: induction_score(t(4, 4), 0), ("period", 0)),
]


@pytest.mark.parametrize(
    ("call", "fragments"),
    [pytest.param(call, frags, marks=getattr(pytest.mark, ch), id=f"{ch}: {name}") for ch, name, call, frags in CASES],
)
def test_bad_input_raises_a_value_error_naming_the_shapes(call, fragments):
    with pytest.raises(ValueError, match=mentions_all(*fragments)):
        call()


@pytest.mark.ch1
def test_a_missing_key_is_a_key_error_not_a_value_error():
    with pytest.raises(KeyError):
        hard_lookup(np.array([9.0, 9.0]), np.eye(2), np.eye(2))
