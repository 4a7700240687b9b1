"""Chapter 4's hand-made heads do the jobs the book says they do (with the reference MultiHeadAttention)."""

from __future__ import annotations

import pytest
import torch

from course import toyheads
from solutions import MultiHeadAttention


@pytest.fixture(scope="module")
def weights() -> torch.Tensor:
    mha = toyheads.set_heads_by_hand(MultiHeadAttention(toyheads.D_MODEL, toyheads.N_HEADS))
    x = toyheads.embed()
    _, w = mha(x, x, x)
    return w[0].detach()  # (heads, n, n)


def test_each_head_attends_where_its_name_says(weights):
    tokens = toyheads.SENTENCE
    n = len(tokens)
    top = weights.argmax(dim=-1)  # (heads, n)
    assert top[0].tolist() == [0] + list(range(n - 1))  # previous token (<s> on itself)
    assert top[1].tolist() == list(range(1, n)) + [0]  # next token (last one falls back on <s>)
    assert top[3].tolist() == [0] * n  # first token
    for i, word in enumerate(tokens):  # same word: equal weight on every occurrence, nothing else
        same = torch.tensor([t == word for t in tokens], dtype=torch.float64)
        torch.testing.assert_close(weights[2, i], same / same.sum(), atol=1e-5, rtol=0)
    assert weights[[0, 1, 3]].max(dim=-1).values.min() > 0.99  # the others are sharp


def test_head_outputs_read_back_as_words():
    mha = toyheads.set_heads_by_hand(MultiHeadAttention(toyheads.D_MODEL, toyheads.N_HEADS))
    x = toyheads.embed()
    out, _ = mha(x, x, x)
    words = toyheads.read_words(out[0].detach().reshape(len(toyheads.SENTENCE), toyheads.N_HEADS, -1))
    assert words[2] == ["the", "sat", "cat", "<s>"]  # "cat": previous, next, same word, first


def test_one_head_blends_the_three_similarities():
    mha = toyheads.set_one_head_by_hand(MultiHeadAttention(toyheads.D_MODEL, 1))
    x = toyheads.embed()
    _, w = mha(x, x, x)
    row = w[0, 0, 3].detach()  # "sat": previous "cat", itself, next "on", a third each
    torch.testing.assert_close(row[[2, 3, 4]], torch.full((3,), 1 / 3, dtype=torch.float64), atol=1e-3, rtol=0)


def test_toy_rejects_modules_of_the_wrong_shape():
    with pytest.raises(ValueError, match="4 heads"):
        toyheads.set_heads_by_hand(MultiHeadAttention(toyheads.D_MODEL, 2))
    with pytest.raises(ValueError, match="at most"):
        toyheads.embed(["w"] * 20)
