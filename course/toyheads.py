"""Chapter 4's toy: a multi-head attention layer whose four heads are set by hand, so each head's job is known.

Tokens are embedded as ``[one-hot position | one-hot word | 1 | 0...]`` in ``d_model = 64`` features.
The projections are written, not learned, so that

* head 0 attends to the **previous token** (``<s>``, which has none, attends to itself),
* head 1 attends to the **next token** (the last token, which has none, falls back on ``<s>``),
* head 2 attends to **every occurrence of the same word**,
* head 3 attends to the **first token** ``<s>`` (a head with "nothing to do").

Values carry the word one-hot, so a head's output at a position is the mixture of the words it
attends to. Everything is deterministic. Works with any module that has ``nn.Linear`` layers named
``q_proj``, ``k_proj``, ``v_proj``, ``out_proj`` mapping ``d_model -> d_model`` (the chapter 4 contract).
"""

from __future__ import annotations

import torch
from torch import nn

SENTENCE = ["<s>", "the", "cat", "sat", "on", "the", "mat", "and", "the", "cat", "slept"]
HEAD_NAMES = ["previous token", "next token", "same word", "first token"]

N_HEADS = 4
HEAD_DIM = 16
D_MODEL = N_HEADS * HEAD_DIM  # 64
POS, WORD, ONE = 0, 16, 32  # feature offsets of the position one-hot, the word one-hot, the constant 1
GAIN = 8.0  # query and key gain: a match scores GAIN**2 / sqrt(HEAD_DIM) = 16 before the softmax


def vocabulary(tokens: list[str]) -> list[str]:
    """The distinct words of ``tokens`` in order of first appearance."""
    return list(dict.fromkeys(tokens))


def embed(tokens: list[str] = SENTENCE) -> torch.Tensor:
    """``(1, n, D_MODEL)`` float64 embeddings ``[one-hot position | one-hot word | 1]`` of ``tokens``."""
    words = vocabulary(tokens)
    if len(tokens) > HEAD_DIM - 2 or len(words) > HEAD_DIM:
        raise ValueError(f"the toy holds at most {HEAD_DIM - 2} tokens and {HEAD_DIM} distinct words")
    x = torch.zeros(1, len(tokens), D_MODEL, dtype=torch.float64)
    for i, token in enumerate(tokens):
        x[0, i, POS + i] = 1.0
        x[0, i, WORD + words.index(token)] = 1.0
        x[0, i, ONE] = 1.0
    return x


def _head_projections() -> tuple[torch.Tensor, torch.Tensor]:
    """Query and key weights ``(D_MODEL out, D_MODEL in)``: rows ``h*16 : (h+1)*16`` are head ``h``."""
    wq = torch.zeros(D_MODEL, D_MODEL, dtype=torch.float64)
    wk = torch.zeros(D_MODEL, D_MODEL, dtype=torch.float64)
    fallback = HEAD_DIM - 1  # a coordinate where every query meets key 0 at half strength
    for head, shift in ((0, -1), (1, +1)):  # previous / next token: query i looks for key i + shift
        r = head * HEAD_DIM
        for i in range(HEAD_DIM - 2):
            j = i + shift
            if 0 <= j < HEAD_DIM - 2:
                wq[r + i, POS + i] = GAIN  # query i points along coordinate i ...
                wk[r + i, POS + j] = GAIN  # ... which key j = i + shift also points along
        wq[r + fallback, ONE] = GAIN
        wk[r + fallback, POS + 0] = GAIN / 2  # no match: key 0 (<s>) wins with half the score
    r = 2 * HEAD_DIM  # same word: query and key are the word one-hot
    wq[r : r + HEAD_DIM, WORD : WORD + HEAD_DIM] = GAIN * torch.eye(HEAD_DIM, dtype=torch.float64)
    wk[r : r + HEAD_DIM, WORD : WORD + HEAD_DIM] = GAIN * torch.eye(HEAD_DIM, dtype=torch.float64)
    r = 3 * HEAD_DIM  # first token: every query asks "are you position 0?"
    wq[r, ONE] = GAIN
    wk[r, POS + 0] = GAIN
    return wq, wk


def set_heads_by_hand(mha: nn.Module) -> nn.Module:
    """Overwrite the projections of a 4-head, ``d_model=64`` attention module with the hand-made heads.

    Returns the module (converted to float64), ready for ``mha(x, x, x)`` with ``x = embed()``.
    """
    if getattr(mha, "n_heads", N_HEADS) != N_HEADS:
        raise ValueError(f"the toy needs {N_HEADS} heads, the module has {mha.n_heads}")
    mha = mha.double()
    wq, wk = _head_projections()
    wv = torch.zeros(D_MODEL, D_MODEL, dtype=torch.float64)
    for head in range(N_HEADS):  # every head's value is the word one-hot
        wv[head * HEAD_DIM : (head + 1) * HEAD_DIM, WORD : WORD + HEAD_DIM] = torch.eye(HEAD_DIM, dtype=torch.float64)
    with torch.no_grad():
        for name, weight in (("q_proj", wq), ("k_proj", wk), ("v_proj", wv),
                             ("out_proj", torch.eye(D_MODEL, dtype=torch.float64))):
            layer = getattr(mha, name)
            if layer.weight.shape != weight.shape:
                raise ValueError(f"{name} must be {tuple(weight.shape)}, got {tuple(layer.weight.shape)}")
            layer.weight.copy_(weight)
            if layer.bias is not None:
                layer.bias.zero_()
    return mha


def set_one_head_by_hand(mha: nn.Module) -> nn.Module:
    """Heads 0-2's similarities (previous, next, same word) squeezed into one head of width 64.

    Its score is the sum of the three heads' scores (scaled by ``1/sqrt(64)`` instead of
    ``1/sqrt(16)``; no fallback on ``<s>``), so one softmax has to share its weight between the
    previous word, the next word and the same word: its output is a blend of all three.
    """
    if getattr(mha, "n_heads", 1) != 1:
        raise ValueError(f"this variant needs 1 head, the module has {mha.n_heads}")
    mha = mha.double()
    wq, wk = _head_projections()
    for head in (0, 1):  # drop the fallback coordinates ...
        wq[head * HEAD_DIM + HEAD_DIM - 1] = 0.0
    wq[3 * HEAD_DIM :] = 0.0  # ... and the first-token head
    wv = torch.zeros(D_MODEL, D_MODEL, dtype=torch.float64)
    wv[:HEAD_DIM, WORD : WORD + HEAD_DIM] = torch.eye(HEAD_DIM, dtype=torch.float64)
    with torch.no_grad():
        for name, weight in (("q_proj", wq), ("k_proj", wk), ("v_proj", wv),
                             ("out_proj", torch.eye(D_MODEL, dtype=torch.float64))):
            layer = getattr(mha, name)
            layer.weight.copy_(weight)
            if layer.bias is not None:
                layer.bias.zero_()
    return mha


def read_words(output: torch.Tensor, tokens: list[str] = SENTENCE) -> list[list[str]]:
    """Decode a head-by-head output ``(n, N_HEADS, HEAD_DIM)`` into the dominant word per position and head."""
    words = vocabulary(tokens)
    best = output[..., : len(words)].argmax(dim=-1)  # (n, N_HEADS)
    return [[words[int(k)] for k in row] for row in best]
