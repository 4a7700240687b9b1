"""Hidden checks of ch4-multihead: for each graded function, its hidden cases and its known mistakes.

Mistakes are patches of the reference's student form (``solutions/ch4_multihead.py`` without its
``@validated`` lines); see CONTRIBUTING.md.
"""

from __future__ import annotations

import numpy as np

from grader.engine.cases import Case, Spec, call, forward, module, tensor
from grader.engine.mistakes import Mistake

# ---- split_heads / merge_heads -----------------------------------------------------------------------


def split_heads_cases(rng: np.random.Generator) -> list[Case]:
    h = int(rng.integers(2, 5))
    return [
        Case(f"x of shape (2, 5, {4 * h}) and {h} heads", call(tensor(rng, 2, 5, 4 * h), h)),
        Case("x of shape (1, 4, 8) and 2 heads", call(tensor(rng, 1, 4, 8), 2)),
        Case("one head", call(tensor(rng, 3, 2, 6), 1)),
        Case("as many heads as features", call(tensor(rng, 2, 3, 4), 4)),
    ]


SPLIT_MISTAKES = [
    Mistake(
        "split-no-transpose", "split_heads",
        "reshaping straight to (batch, n_heads, seq, head_dim) mixes tokens across heads: reshape to "
        "(batch, seq, n_heads, head_dim) first, then swap the seq and heads axes.",
        replace=(("x.reshape(batch, seq, n_heads, d_model // n_heads).transpose(1, 2)",
                  "x.reshape(batch, n_heads, seq, d_model // n_heads)"),),
    ),
    Mistake(
        "split-strided-features", "split_heads",
        "head h must hold the consecutive features h * head_dim ... (h + 1) * head_dim - 1, not every "
        "n_heads-th feature: reshape the last axis as (n_heads, head_dim), not (head_dim, n_heads).",
        replace=(("x.reshape(batch, seq, n_heads, d_model // n_heads).transpose(1, 2)",
                  "x.reshape(batch, seq, d_model // n_heads, n_heads).permute(0, 3, 1, 2)"),),
    ),
    Mistake(
        "split-heads-last", "split_heads",
        "split_heads must return (batch, n_heads, seq, head_dim): move the heads axis in front of the "
        "sequence axis (.transpose(1, 2)).",
        replace=((".transpose(1, 2)", ""),),
    ),
]


def merge_heads_cases(rng: np.random.Generator) -> list[Case]:
    return [
        Case("x of shape (2, 3, 5, 4)", call(tensor(rng, 2, 3, 5, 4))),
        Case("x of shape (1, 2, 4, 6)", call(tensor(rng, 1, 2, 4, 6))),
        Case("one head", call(tensor(rng, 2, 1, 3, 5))),
    ]


MERGE_MISTAKES = [
    Mistake(
        "merge-no-transpose", "merge_heads",
        "merge_heads must undo split_heads: swap the heads and seq axes back (.transpose(1, 2)) before "
        "reshaping to (batch, seq, n_heads * head_dim); reshaping directly mixes tokens.",
        replace=(("x.transpose(1, 2).reshape(", "x.reshape("),),
    ),
    Mistake(
        "merge-strided-features", "merge_heads",
        "merge_heads puts the features of one head next to each other (head h at h * head_dim ...); yours "
        "interleaves the heads' features.",
        replace=(("x.transpose(1, 2).reshape(", "x.permute(0, 2, 3, 1).reshape("),),
    ),
]

# ---- MultiHeadAttention ------------------------------------------------------------------------------


def mha_cases(rng: np.random.Generator) -> list[Case]:
    """n_q != n_k and key != value in every secret; a causal mask, a padding mask hiding a whole
    sequence, a (batch, n_q, n_k) mask that differs per sequence and per query, scores as large as 1e3
    under a mask, and bias=False with one head."""
    import torch

    seed = int(rng.integers(2**31))
    n_q, n_k = (int(v) for v in rng.choice(np.arange(4, 9), size=2, replace=False))
    x, y, z = tensor(rng, 2, n_q, 16), tensor(rng, 2, n_k, 16), tensor(rng, 2, n_k, 16)
    causal = torch.ones(n_q, n_q, dtype=torch.bool).tril()
    pad = (torch.arange(n_k)[None, :] < torch.tensor([n_k - 3, 0])[:, None])[:, None, :]
    per_query = torch.from_numpy(rng.random((2, n_q, n_k)) < 0.6)
    per_query[..., 0] = True  # every query sees a key
    mha = module("MultiHeadAttention", 16, 4, seed=seed)
    return [
        Case("self-attention, 4 heads", forward(mha, x, x, x)),
        Case("cross-attention (n_q != n_k, key != value)", forward(mha, x, y, z)),
        Case("a causal mask", forward(module("MultiHeadAttention", 16, 2, seed=seed), x, x, x, mask=causal)),
        Case("a padding mask with a fully padded sequence", forward(mha, x, y, z, mask=pad)),
        Case("a (batch, n_q, n_k) mask", forward(mha, x, y, z, mask=per_query)),
        Case("large inputs (scores around 1e3) with a mask", forward(mha, x * 8, y * 8, z, mask=per_query)),
        Case("bias=False and one head", forward(module("MultiHeadAttention", 16, 1, False, seed=seed), x, y, z)),
    ]


MHA_MISTAKES = [
    Mistake(
        "mha-scale-d-model", "MultiHeadAttention.forward",
        "each head's scores must be scaled by 1/sqrt(head_dim) (head_dim = d_model // n_heads), not by "
        "1/sqrt(d_model).",
        replace=(("math.sqrt(self.head_dim)", "math.sqrt(self.d_model)"),),
    ),
    Mistake(
        "mha-no-scale", "MultiHeadAttention.forward",
        "your scores are not scaled by 1/sqrt(head_dim) (head_dim = d_model // n_heads).",
        replace=((" / math.sqrt(self.head_dim)", ""),),
    ),
    Mistake(
        "mha-no-out-proj", "MultiHeadAttention.forward",
        "after merging the heads, apply the output projection out_proj.",
        replace=(("return self.out_proj(merge_heads(weights @ v)), weights",
                  "return merge_heads(weights @ v), weights"),),
    ),
    Mistake(
        "mha-weights-averaged", "MultiHeadAttention.forward",
        "return the weights of every head, shape (batch, n_heads, n_q, n_k), not their average over the heads.",
        replace=(("merge_heads(weights @ v)), weights", "merge_heads(weights @ v)), weights.mean(dim=1)"),),
    ),
    Mistake(
        "mha-mask-inverted", "MultiHeadAttention.forward",
        "the mask polarity is inverted: True means 'may attend', so block the scores where the mask is False.",
        replace=(("masked_fill(~mask,", "masked_fill(mask,"),
                 ("weights = weights * mask", "weights = weights * ~mask")),
    ),
    Mistake(
        "mha-self-only", "MultiHeadAttention.forward",
        "keys and values are projections of the `key` and `value` arguments (in cross-attention another "
        "sequence than `query`); yours projects `query` for all three, which is self-attention only.",
        replace=(("self.k_proj(key)", "self.k_proj(query)"), ("self.v_proj(value)", "self.v_proj(query)")),
    ),
    Mistake(
        "mha-key-value-swapped", "MultiHeadAttention.forward",
        "keys come from the `key` argument (through k_proj) and values from `value` (through v_proj); yours "
        "takes them the other way round.",
        replace=(("self.k_proj(key)", "self.k_proj(value)"), ("self.v_proj(value)", "self.v_proj(key)")),
    ),
]

SPECS = {
    "split_heads": Spec(split_heads_cases),
    "merge_heads": Spec(merge_heads_cases),
    "MultiHeadAttention": Spec(mha_cases, items=("output", "weights")),
}
MISTAKES = SPLIT_MISTAKES + MERGE_MISTAKES + MHA_MISTAKES

#: Mutants of the references (``scripts/mutation_score.py``) that no hidden case can tell from them, and why.
_UNREAD = "forward never reads self.d_model (it is kept for the reader)"
_KEY_BIAS = ("a bias of the key projection adds q . b_k to every score of a query's row, a shift the softmax "
             "cancels: the layer's outputs do not depend on it")
EQUIVALENT_MUTANTS = {
    "MultiHeadAttention.__init__:name-swap@L9:d_model->n_heads": _UNREAD,
    "MultiHeadAttention.__init__:name-swap@L9:d_model->bias": _UNREAD,
    "MultiHeadAttention.__init__:arith@L9://->/":
        "n_heads divides d_model (the contract), so head_dim is the same number as a float; only math.sqrt reads it",
    "MultiHeadAttention.__init__:keyword-dropped@L11:bias=bias": _KEY_BIAS,
    "MultiHeadAttention.__init__:name-swap@L11:bias->d_model": _KEY_BIAS,
    "MultiHeadAttention.__init__:name-swap@L11:bias->n_heads": _KEY_BIAS,
    "MultiHeadAttention.forward:inf@L41:torch.finfo(scores.dtype).min->-1e+09":
        "a blocked score of -1e9 gets weight exp(-1e9 - max) = 0 as the most negative float does, and a fully "
        "blocked row is zeroed by `weights * mask` either way",
}
