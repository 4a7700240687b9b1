"""Hidden checks of ch2-sdpa: for each graded function, its hidden cases and its known mistakes.

Mistakes are patches of the reference's student form (``solutions/ch2_sdpa.py`` without its
``@validated`` lines); see CONTRIBUTING.md.
"""

from __future__ import annotations

import numpy as np

from grader.engine.cases import Case, Spec, call
from grader.engine.mistakes import Mistake

# ---- softmax -----------------------------------------------------------------------------------------


def softmax_cases(rng: np.random.Generator) -> list[Case]:
    """Several axes and shapes, logits of both signs as large as 1e4, logits that are all negative down to
    -1e4 and below (a shift by anything but the maximum under- or overflows), -inf entries, float32."""
    rows, cols = (int(v) for v in rng.integers(3, 7, size=2))
    blocked = rng.normal(size=(rows, cols))
    blocked[0, 1] = blocked[2, :2] = -np.inf
    blocked[-1] = -np.inf
    negative = -np.abs(rng.normal(size=(3, cols))) * 1e4 - 1e4
    large = rng.normal(size=(3, cols)) * 1e4
    large[:, 0] = np.abs(large[:, 0]) + 1e4  # every row has a logit of 1e4 or more: np.exp overflows in each
    return [
        Case("a 2-D array, axis=-1", call(rng.normal(size=(rows, cols + 2)))),
        Case("a square 2-D array, axis=-1", call(rng.normal(size=(rows, rows)))),
        Case("a 3-D array, axis=1", call(rng.normal(size=(2, rows, 3)), axis=1)),
        Case("a 2-D array, axis=0", call(rng.normal(size=(rows, 3)), axis=0)),
        Case("a vector", call(rng.normal(size=cols))),
        Case("logits as large as 1e4", call(large)),
        Case("logits that are all negative, -1e4 and below", call(negative)),
        Case("some -inf entries and a row that is -inf everywhere", call(blocked)),
        Case("float32 input", call(rng.normal(size=(3, cols)).astype(np.float32))),
    ]


SOFTMAX_MISTAKES = [
    Mistake(
        "softmax-unstable", "softmax",
        "your softmax overflows for large logits (e.g. 1e4): np.exp(1e4) is inf, and inf / inf is NaN. "
        "Subtract the maximum along the axis before calling np.exp.",
        rewrite='''
        def softmax(x, axis=-1):
            e = np.exp(x)
            return e / e.sum(axis=axis, keepdims=True)
        ''',
    ),
    Mistake(
        "softmax-ignores-axis", "softmax",
        "your softmax always normalises over the last axis and ignores its `axis` argument.",
        replace=(("np.max(x, axis=axis,", "np.max(x, axis=-1,"), ("np.sum(e, axis=axis,", "np.sum(e, axis=-1,")),
    ),
    Mistake(
        "softmax-no-keepdims", "softmax",
        "each slice must be divided by its own sum: compute the max and the sum with keepdims=True so they "
        "broadcast along `axis` (without it a 2-D input is divided by the wrong sums).",
        replace=(("total = np.sum(e, axis=axis, keepdims=True)", "total = np.sum(e, axis=axis)"),),
    ),
    Mistake(
        "softmax-blocked-row-nan", "softmax",
        "a slice whose logits are all -inf (a fully blocked row) must give all zeros, not NaN: its maximum "
        "is -inf, and -inf - (-inf) is NaN. Treat an infinite maximum as 0 and divide only where the sum is > 0.",
        rewrite='''
        def softmax(x, axis=-1):
            e = np.exp(x - x.max(axis=axis, keepdims=True))
            return e / e.sum(axis=axis, keepdims=True)
        ''',
    ),
    Mistake(
        "softmax-shift-by-abs-max", "softmax",
        "subtract the maximum itself, not its absolute value: when every logit is negative (say -1e4), "
        "x - abs(max) is around -2e4, np.exp gives 0 everywhere and the row cannot be normalised.",
        replace=(("e = np.exp(x - peak)", "e = np.exp(x - np.abs(peak))"),),
    ),
    Mistake(
        "softmax-in-place", "softmax",
        "your softmax changes its input: `x -= ...` (or `x[...] = ...`) writes into the caller's array. "
        "Compute into a new array: e = np.exp(x - peak).",
        replace=(("e = np.exp(x - peak)", "x -= peak\n    e = np.exp(x)"),),
    ),
]

# ---- causal_mask -------------------------------------------------------------------------------------


def causal_mask_cases(rng: np.random.Generator) -> list[Case]:
    n = int(rng.integers(4, 8))
    n_q, extra = int(rng.integers(2, 5)), int(rng.integers(2, 5))
    return [
        Case("n_q == n_k", call(n, n)),
        Case("n_q < n_k (earlier tokens in a cache)", call(n_q, n_q + extra)),
        Case("a single query", call(1, n)),
        Case("n_q > n_k", call(n_q + extra, n_q)),
    ]


CAUSAL_MISTAKES = [
    Mistake(
        "causal-off-by-one", "causal_mask",
        "your causal mask is off by one: a query may attend its own position (the diagonal is allowed, "
        "j <= i), not only earlier ones.",
        replace=(("k=n_k - n_q)", "k=n_k - n_q - 1)"),),
    ),
    Mistake(
        "causal-inverted", "causal_mask",
        "your causal mask is inverted: True must mean 'may attend', i.e. the past (lower triangle), and "
        "False the future.",
        replace=(("return np.tril(", "return ~np.tril("),),
    ),
    Mistake(
        "causal-top-left", "causal_mask",
        "when n_k > n_q your causal mask is aligned to the top-left corner; align it to the bottom-right "
        "(query i sees keys j <= i + (n_k - n_q)), so the last query sees every key.",
        replace=((", k=n_k - n_q)", ")"),),
    ),
]

# ---- padding_mask ------------------------------------------------------------------------------------


def padding_mask_cases(rng: np.random.Generator) -> list[Case]:
    n_k = int(rng.integers(5, 9))
    with_empty = rng.integers(1, n_k + 1, size=4)
    with_empty[1] = 0
    return [
        Case("a batch of lengths between 0 and n_k", call(with_empty, n_k)),
        Case("a batch of random lengths", call(rng.integers(1, n_k + 1, size=6), n_k)),
        Case("a single full-length sequence", call(np.array([n_k]), n_k)),
    ]


PADDING_MISTAKES = [
    Mistake(
        "padding-inverted", "padding_mask",
        "your padding mask is inverted: True must mark the real tokens (j < length), False the padding.",
        replace=(("np.arange(n_k)[None, :] < lengths[:, None]", "np.arange(n_k)[None, :] >= lengths[:, None]"),),
    ),
    Mistake(
        "padding-off-by-one", "padding_mask",
        "your padding mask is off by one: a sequence of length L has valid keys 0 ... L - 1 (j < L, not j <= L).",
        replace=(("np.arange(n_k)[None, :] < lengths[:, None]", "np.arange(n_k)[None, :] <= lengths[:, None]"),),
    ),
    Mistake(
        "padding-no-query-axis", "padding_mask",
        "the padding mask must have shape (batch, 1, n_k): the axis of size 1 lets it broadcast over the queries.",
        replace=(("[:, None, :]", ""),),
    ),
]

# ---- scaled_dot_product_attention --------------------------------------------------------------------


def sdpa_cases(rng: np.random.Generator) -> list[Case]:
    """Batch dims with n_q != n_k and d_k != d_v in every secret; a causal mask, a padding mask with a
    fully blocked sequence, scores of both signs as large as 1e4, scores that are all negative (down to
    -1e4) under a mask, and float32."""
    n = rng.normal
    n_q, n_k, d_k, d_v = (int(v) for v in rng.choice(np.arange(2, 10), size=4, replace=False))  # all different
    Qb, Kb, Vb = n(size=(2, 3, n_q, d_k)), n(size=(2, 3, n_k, d_k)), n(size=(2, 3, n_k, d_v))
    lengths = np.array([int(rng.integers(1, n_k)), 0])  # n_k >= 2
    pad = (np.arange(n_k)[None, :] < lengths[:, None])[:, None, None, :]  # (2, 1, 1, n_k)
    causal = np.tril(np.ones((n_q, n_q), dtype=bool))
    X = n(size=(n_q, 8))
    up, down = np.abs(n(size=(2, 3, n_q, d_k))) + 0.1, -np.abs(n(size=(2, 3, n_k, d_k))) - 0.1
    low = up * (1e4 / np.abs(up @ np.swapaxes(down, -1, -2)).min())  # every score <= -1e4 / sqrt(d_k)
    return [
        Case("2-D inputs without a mask", call(n(size=(n_q, d_k)), n(size=(n_k, d_k)), n(size=(n_k, d_v)))),
        Case("batch dimensions (2, 3) with n_q != n_k and d_v != d_k", call(Qb, Kb, Vb)),
        Case("self-attention with a causal mask", call(X, X.copy(), n(size=(n_q, 3)), causal)),
        Case("a padding mask with a fully blocked sequence", call(Qb, Kb, Vb, pad)),
        Case("scores as large as 1e4", call(n(size=(4, 4)) * 100, n(size=(4, 4)) * 100, n(size=(4, 3)))),
        Case("scores that are all negative, down to -1e4, with a padding mask", call(low, down, Vb, pad)),
        Case("float32 inputs", call(*(a.astype(np.float32) for a in (Qb, Kb, Vb)))),
    ]


SDPA_MISTAKES = [
    Mistake(
        "sdpa-no-scale", "scaled_dot_product_attention",
        "your scores are not scaled by 1/sqrt(d_k): use Q @ K^T / sqrt(d_k), where d_k is the last dimension of Q.",
        replace=((" / math.sqrt(d_k)", ""),),
    ),
    Mistake(
        "sdpa-mask-after-softmax", "scaled_dot_product_attention",
        "the mask is applied after the softmax: the remaining weights then no longer sum to 1. Set the "
        "blocked scores to -inf before the softmax instead.",
        replace=(
            ("        scores = np.where(mask, scores, -np.inf)\n    weights = softmax(scores, axis=-1)\n",
             "        pass\n    weights = softmax(scores, axis=-1)\n    if mask is not None:\n"
             "        weights = np.where(mask, weights, 0.0)\n"),
        ),
    ),
    Mistake(
        "sdpa-mask-inverted", "scaled_dot_product_attention",
        "the mask polarity is inverted: True means 'may attend', so block the entries where the mask is False.",
        replace=(("np.where(mask, scores, -np.inf)", "np.where(mask, -np.inf, scores)"),),
    ),
    Mistake(
        "sdpa-k-transpose-all-axes", "scaled_dot_product_attention",
        "K is not transposed correctly: K.T reverses all axes, the batch axes included. Swap only the last "
        "two axes (np.swapaxes(K, -1, -2)).",
        replace=(("np.swapaxes(K, -1, -2)", "K.T"),),
    ),
    Mistake(
        "sdpa-softmax-over-queries", "scaled_dot_product_attention",
        "the softmax is taken over the wrong axis: each query's weights over the keys (the last axis) must "
        "sum to 1, not each key's weights over the queries.",
        replace=(("softmax(scores, axis=-1)", "softmax(scores, axis=-2)"),),
    ),
    Mistake(
        "sdpa-large-negative-mask", "scaled_dot_product_attention",
        "a fully blocked query row must get zero weights and a zero output. Masking with a large negative "
        "number instead of -inf gives such a row uniform weights; use -inf (with a softmax that returns "
        "zeros for an all -inf row).",
        replace=(("np.where(mask, scores, -np.inf)", "np.where(mask, scores, -1e9)"),),
    ),
    Mistake(
        "sdpa-scale-d-v", "scaled_dot_product_attention",
        "scale the scores by 1/sqrt(d_k), where d_k is the width of the queries and keys (Q.shape[-1]), not by "
        "the width of the values d_v (V.shape[-1]).",
        replace=(("d_k = Q.shape[-1]", "d_k = V.shape[-1]"),),
    ),
    Mistake(
        "sdpa-float64-scale", "scaled_dot_product_attention",
        "float32 inputs must give float32 results: np.sqrt(d_k) is a float64 NumPy number, and dividing a "
        "float32 array by it makes the scores float64. Divide by math.sqrt(d_k) (a Python float) or cast back.",
        replace=(("/ math.sqrt(d_k)", "/ np.sqrt(d_k)"),),
    ),
]

SPECS = {
    "softmax": Spec(softmax_cases),
    "causal_mask": Spec(causal_mask_cases),
    "padding_mask": Spec(padding_mask_cases),
    "scaled_dot_product_attention": Spec(sdpa_cases, items=("output", "weights")),
}
MISTAKES = SOFTMAX_MISTAKES + CAUSAL_MISTAKES + PADDING_MISTAKES + SDPA_MISTAKES

#: Mutants of the references (``scripts/mutation_score.py``) that no hidden case can tell from them, and why.
_ALL_BLOCKED = "a row that is -inf everywhere gives zeros either way: np.divide leaves out= zeros where the sum is 0"
EQUIVALENT_MUTANTS = {
    "softmax:statement-dropped@L15:peak = np.where(np.isfinite(peak), pe...": _ALL_BLOCKED,
    "softmax:call-dropped@L15:isfinite(...)": "np.where(peak, peak, 0) is peak: a maximum of 0 is replaced by 0",
    "softmax:number@L15:0->1": _ALL_BLOCKED,
    "softmax:number@L15:0->-1": _ALL_BLOCKED,
    "softmax:call-dropped@L18:zeros_like(...)": "where the sum is 0 every e is 0 already, so out=e leaves zeros too",
    "padding_mask:statement-dropped@L11:lengths = np.asarray(lengths)":
        "lengths is an array in the contract; np.asarray only adds support for lists",
    "padding_mask:call-dropped@L11:asarray(...)": "lengths is an array in the contract; np.asarray only adds lists",
    "scaled_dot_product_attention:name-swap@L16:Q->K": "Q and K share their last dimension d_k (the contract)",
    "scaled_dot_product_attention:keyword-dropped@L20:axis=-1": "softmax's default axis is -1",
}
