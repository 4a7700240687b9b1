"""Hidden checks of ch3-self-cross: for each graded function, its hidden cases and its known mistakes.

Mistakes are patches of the reference's student form (``solutions/ch3_*.py`` without their
``@validated`` lines); see CONTRIBUTING.md.
"""

from __future__ import annotations

import numpy as np

from grader.engine.cases import Case, Spec, call
from grader.engine.mistakes import Mistake

# ---- self_attention ----------------------------------------------------------------------------------


def _qk_widths(rng: np.random.Generator) -> tuple[int, int]:
    """``(d_k, d_v)``, never equal: a scale by 1/sqrt(d_v) must not pass for 1/sqrt(d_k)."""
    d_k, d_v = (int(v) for v in rng.choice(np.arange(3, 8), size=2, replace=False))
    return d_k, d_v


def self_attention_cases(rng: np.random.Generator) -> list[Case]:
    """d_k != d_v != d_model in every secret; batches, causal=True, large scores, scores that are all
    negative (down to -1e4) with causal=True, float32."""
    n = rng.normal
    d_model = int(rng.integers(8, 11))  # wider than d_k, d_v and every sequence length
    d_k, d_v = _qk_widths(rng)
    W = (n(size=(d_model, d_k)), n(size=(d_model, d_k)), n(size=(d_model, d_v)))
    lengths = [v for v in range(3, 8) if v not in (d_k, d_v)]  # no length equals a width: n apart from d_k
    n2, n3 = (int(v) for v in rng.choice(lengths, size=2))
    X2, X3 = n(size=(n2, d_model)), n(size=(2, n3, d_model))
    # positive X and W_q, negative W_k: every query is positive and every key negative, so every score < 0
    Xp, Wq, Wk = np.abs(X3) + 0.1, np.abs(W[0]) + 0.1, -np.abs(W[1]) - 0.1
    Xp = Xp * np.sqrt(1e4 * np.sqrt(d_k) / np.abs((Xp @ Wq) @ np.swapaxes(Xp @ Wk, -1, -2)).min())
    f32 = [a.astype(np.float32) for a in (X3, *W)]
    return [
        Case("one sequence (2-D X)", call(X2, *W)),
        Case("a batch of sequences with d_k != d_v != d_model", call(X3, *W)),
        Case("causal=True", call(X2, *W, causal=True)),
        Case("a batch with causal=True", call(X3, *W, causal=True)),
        Case("large inputs (scores around 1e3)", call(X2 * 10, *W)),
        Case("scores that are all negative, down to -1e4, with causal=True", call(Xp, Wq, Wk, W[2], causal=True)),
        Case("float32 inputs", call(*f32, causal=True)),
    ]


SELF_MISTAKES = [
    Mistake(
        "self-causal-ignored", "self_attention",
        "with causal=True each token may attend only itself and earlier tokens: pass a causal mask to "
        "the attention.",
        replace=(("causal_mask(n, n) if causal else None", "None"),),
    ),
    Mistake(
        "self-causal-inverted", "self_attention",
        "your causal mask is inverted: with causal=True a token attends the past (j <= i), not the "
        "future.",
        replace=(("causal_mask(n, n) if causal else None", "~causal_mask(n, n) if causal else None"),),
    ),
    Mistake(
        "self-q-k-swapped", "self_attention",
        "queries and keys are swapped: queries are X @ W_q and keys X @ W_k (the weights matrix is then "
        "transposed).",
        replace=(("Q, K, V = X @ W_q, X @ W_k, X @ W_v", "Q, K, V = X @ W_k, X @ W_q, X @ W_v"),),
    ),
    Mistake(
        "self-no-scale", "self_attention",
        "your scores are not scaled by 1/sqrt(d_k), where d_k is the width of the projected queries "
        "(W_q.shape[1]), not d_model.",
        rewrite='''
        def self_attention(X, W_q, W_k, W_v, causal=False):
            Q, K, V = X @ W_q, X @ W_k, X @ W_v
            scores = Q @ np.swapaxes(K, -1, -2)
            if causal:
                n = X.shape[-2]
                scores = np.where(causal_mask(n, n), scores, -np.inf)
            weights = softmax(scores, axis=-1)
            return weights @ V, weights
        ''',
    ),
    Mistake(
        "self-scale-d-model", "self_attention",
        "scale the scores by 1/sqrt(d_k), the width of the projected queries and keys (W_q.shape[1]), "
        "not by 1/sqrt(d_model), the width of X.",
        replace=(("Q, K, V = X @ W_q, X @ W_k, X @ W_v",
                  "Q, K, V = X @ W_q * np.sqrt(W_q.shape[1] / X.shape[-1]), X @ W_k, X @ W_v"),),
    ),
]

# ---- cross_attention ---------------------------------------------------------------------------------


def cross_attention_cases(rng: np.random.Generator) -> list[Case]:
    """n_q != n_k and d_k != d_v in every case of every secret; an encoder of another width; padding
    masks, one hiding a whole sequence; scores all negative (down to -1e4) under a mask; float32."""
    n = rng.normal
    d_k, d_v = _qk_widths(rng)
    n_q = int(rng.choice([v for v in range(2, 6) if v not in (d_k, d_v)]))  # no length equals a width
    n_k = int(rng.choice([v for v in range(6, 10) if v not in (d_k, d_v)]))
    Ws = (n(size=(6, d_k)), n(size=(6, d_k)), n(size=(6, d_v)))
    Wd = (n(size=(6, d_k)), n(size=(5, d_k)), n(size=(5, d_v)))  # encoder width 5 != decoder width 6
    Xq, Xkv, Xkv5 = n(size=(2, n_q, 6)), n(size=(2, n_k, 6)), n(size=(2, n_k, 5))
    pad = (np.arange(n_k)[None, :] < np.array([n_k - 2, 0])[:, None])[:, None, :]
    pad_full = (np.arange(n_k)[None, :] < np.array([n_k - 2, n_k])[:, None])[:, None, :]
    Xp, Wq, Wk = np.abs(Xq) + 0.1, np.abs(Wd[0]) + 0.1, -np.abs(Wd[1]) - 0.1  # every score < 0
    Yp = np.abs(Xkv5) + 0.1
    Xp = Xp * (1e4 * np.sqrt(d_k) / np.abs((Xp @ Wq) @ np.swapaxes(Yp @ Wk, -1, -2)).min())
    f32 = [a.astype(np.float32) for a in (Xq, Xkv, *Ws)]
    return [
        Case("n_q != n_k, same widths", call(Xq, Xkv, *Ws)),
        Case("2-D inputs", call(Xq[0], Xkv[0], *Ws)),
        Case("an encoder of another width (d_model_kv != d_model)", call(Xq, Xkv5, *Wd)),
        Case("a padding kv_mask", call(Xq, Xkv, *Ws, kv_mask=pad_full)),
        Case("a kv_mask with a fully padded sequence", call(Xq, Xkv5, *Wd, kv_mask=pad)),
        Case("scores that are all negative, down to -1e4, with a kv_mask",
             call(Xp, Yp, Wq, Wk, Wd[2], kv_mask=pad_full)),
        Case("float32 inputs", call(*f32, kv_mask=pad_full)),
    ]


CROSS_MISTAKES = [
    Mistake(
        "cross-kv-from-queries", "cross_attention",
        "in cross-attention the keys and values come from the other sequence: K = X_kv @ W_k and V = "
        "X_kv @ W_v (only the queries come from X_q).",
        replace=(("X_kv @ W_k, X_kv @ W_v", "X_q @ W_k, X_q @ W_v"),),
    ),
    Mistake(
        "cross-directions-swapped", "cross_attention",
        "the two sequences are swapped: queries come from X_q (e.g. the decoder) and keys/values from X_kv "
        "(the encoder), so the weights have shape (..., n_q, n_k).",
        replace=(("Q, K, V = X_q @ W_q, X_kv @ W_k, X_kv @ W_v", "Q, K, V = X_kv @ W_q, X_q @ W_k, X_q @ W_v"),
                 ("(Q, K, V, kv_mask)", "(Q, K, V, None)")),
    ),
    Mistake(
        "cross-mask-ignored", "cross_attention",
        "kv_mask is ignored: pass it to the attention so padded encoder positions get zero weight.",
        replace=(("(Q, K, V, kv_mask)", "(Q, K, V)"),),
    ),
    Mistake(
        "cross-mask-inverted", "cross_attention",
        "kv_mask is inverted: True means 'may attend', so the positions where it is False get zero weight.",
        replace=(("(Q, K, V, kv_mask)", "(Q, K, V, None if kv_mask is None else ~np.asarray(kv_mask))"),),
    ),
    Mistake(
        "cross-no-scale", "cross_attention",
        "your scores are not scaled by 1/sqrt(d_k), where d_k is the width of the projected queries (W_q.shape[1]).",
        rewrite='''
        def cross_attention(X_q, X_kv, W_q, W_k, W_v, kv_mask=None):
            Q, K, V = X_q @ W_q, X_kv @ W_k, X_kv @ W_v
            scores = Q @ np.swapaxes(K, -1, -2)
            if kv_mask is not None:
                scores = np.where(kv_mask, scores, -np.inf)
            weights = softmax(scores, axis=-1)
            return weights @ V, weights
        ''',
    ),
    Mistake(
        "cross-scale-d-v", "cross_attention",
        "scale the scores by 1/sqrt(d_k), the width of the projected queries and keys (W_q.shape[1]), not by "
        "1/sqrt(d_v), the width of the values (W_v.shape[1]).",
        replace=(("Q, K, V = X_q @ W_q, X_kv @ W_k, X_kv @ W_v",
                  "Q, K, V = X_q @ W_q * np.sqrt(W_q.shape[1] / W_v.shape[1]), X_kv @ W_k, X_kv @ W_v"),),
    ),
]

# ---- sinusoidal_positions ----------------------------------------------------------------------------


def sinusoidal_positions_cases(rng: np.random.Generator) -> list[Case]:
    n, d = int(rng.integers(5, 11)), 2 * int(rng.integers(2, 6))
    return [
        Case("a small table (n positions, d even)", call(n, d)),
        Case("a single sin/cos pair (d = 2)", call(n + 2, 2)),
        Case("one position", call(1, d + 2)),
        Case("a long table of wide encodings", call(int(rng.integers(60, 130)), 2 * int(rng.integers(12, 33)))),
        Case("more features than positions (d > n)", call(3, 16)),
    ]


SINUSOIDAL_MISTAKES = [
    Mistake(
        "sinusoidal-sin-cos-swapped", "sinusoidal_positions",
        "sin and cos are swapped: the even columns (2i) hold the sine and the odd columns (2i+1) the cosine.",
        replace=(("P[:, 0::2] = np.sin(angle)", "P[:, 0::2] = np.cos(angle)"),
                 ("P[:, 1::2] = np.cos(angle)", "P[:, 1::2] = np.sin(angle)")),
    ),
    Mistake(
        "sinusoidal-exponent-i-over-d", "sinusoidal_positions",
        "the frequencies are off: pair i (columns 2i and 2i+1) divides the position by 10000**(2i/d), "
        "where i counts pairs, not columns; your exponent is half of that.",
        replace=(("10000 ** (2 * i / d)", "10000 ** (i / d)"),),
    ),
    Mistake(
        "sinusoidal-half-split", "sinusoidal_positions",
        "the sines and cosines must be interleaved (sin in column 2i, cos in column 2i+1), not all sines in "
        "the first half of the columns and all cosines in the second half.",
        replace=(("P[:, 0::2] = np.sin(angle)", "P[:, : d // 2] = np.sin(angle)"),
                 ("P[:, 1::2] = np.cos(angle)", "P[:, d // 2 :] = np.cos(angle)")),
    ),
    Mistake(
        "sinusoidal-positions-from-1", "sinusoidal_positions",
        "positions start at 0: the first row is the encoding of position 0 (sines 0, cosines 1).",
        replace=(("np.arange(n)[:, None]", "np.arange(1, n + 1)[:, None]"),),
    ),
    Mistake(
        "sinusoidal-frequency-inverted", "sinusoidal_positions",
        "the angle is the position divided by 10000**(2i/d), so later pairs turn more slowly; you multiply "
        "by it instead.",
        replace=(("position / 10000", "position * 10000"),),
    ),
]

# ---- apply_rope ----------------------------------------------------------------------------------------


def apply_rope_cases(rng: np.random.Generator) -> list[Case]:
    n = rng.normal
    d, seq = 2 * int(rng.integers(3, 7)), int(rng.integers(4, 8))
    offset = int(rng.integers(5, 40))
    return [
        Case("one sequence at positions 0, 1, ..., n-1", call(n(size=(seq, d)), np.arange(seq))),
        Case("a batch of heads (batch, heads, n, d)", call(n(size=(2, 3, seq, d)), np.arange(seq))),
        Case("new tokens after a KV cache: positions start at an offset",
             call(n(size=(2, 5, d)), np.arange(offset, offset + 5))),
        Case("one new token at the end of a KV cache", call(n(size=(2, 3, 1, d)), np.array([offset + seq]))),
        Case("positions in any order, some repeated", call(n(size=(seq, d)), rng.integers(0, 200, size=seq))),
        Case("another base", call(n(size=(2, seq, d)), np.arange(seq), base=float(rng.integers(50, 500)))),
        Case("float32 input", call(n(size=(seq, d)).astype(np.float32), np.arange(seq))),
    ]


ROPE_MISTAKES = [
    Mistake(
        "rope-rotation-reversed", "apply_rope",
        "your pairs turn the wrong way: (a, b) rotated by the angle t is (a cos t - b sin t, a sin t + b cos t).",
        replace=(("x_even * cos - x_odd * sin", "x_even * cos + x_odd * sin"),
                 ("x_even * sin + x_odd * cos", "-x_even * sin + x_odd * cos")),
    ),
    Mistake(
        "rope-half-split", "apply_rope",
        "the pairs are interleaved: pair i is (x[..., 2i], x[..., 2i+1]), not (x[..., i], x[..., i + d/2]) "
        "(that is the half-split layout of some libraries).",
        replace=(("x[..., 0::2], x[..., 1::2]", "x[..., : d // 2], x[..., d // 2 :]"),
                 ("out[..., 0::2] =", "out[..., : d // 2] ="), ("out[..., 1::2] =", "out[..., d // 2 :] =")),
    ),
    Mistake(
        "rope-exponent-i-over-d", "apply_rope",
        "the frequencies are off: pair i turns by position * base**(-2i/d), where i counts pairs, not "
        "features; your exponent is half of that.",
        replace=(("-2 * np.arange(d // 2) / d", "-np.arange(d // 2) / d"),),
    ),
    Mistake(
        "rope-positions-ignored", "apply_rope",
        "each token turns by the angle of its own position, taken from `positions`: tokens that come after a "
        "KV cache do not start at position 0.",
        replace=(("np.asarray(positions)[:, None]", "np.arange(x.shape[-2])[:, None]"),),
    ),
    Mistake(
        "rope-base-ignored", "apply_rope",
        "use the `base` argument in the frequencies base**(-2i/d), not a fixed 10000.",
        replace=(("base ** (", "10000.0 ** ("),),
    ),
]

SPECS = {
    "self_attention": Spec(self_attention_cases, items=("output", "weights")),
    "cross_attention": Spec(cross_attention_cases, items=("output", "weights")),
    "sinusoidal_positions": Spec(sinusoidal_positions_cases),
    "apply_rope": Spec(apply_rope_cases),
}
MISTAKES = SELF_MISTAKES + CROSS_MISTAKES + SINUSOIDAL_MISTAKES + ROPE_MISTAKES

#: Mutants of the references (``scripts/mutation_score.py``) that no hidden case can tell from them, and why.
_EVEN = "d is even (the contract), so np.arange(d / 2) holds the same numbers as np.arange(d // 2)"
_ARRAY = "the contract's inputs are arrays; np.asarray only adds support for lists"
EQUIVALENT_MUTANTS = {
    "sinusoidal_positions:arith@L15://->/": _EVEN,
    "apply_rope:arith@L19://->/": _EVEN,
    "apply_rope:statement-dropped@L17:x = np.asarray(x)": _ARRAY,
    "apply_rope:call-dropped@L17:asarray(...)": _ARRAY,
    "apply_rope:call-dropped@L20:asarray(...)": _ARRAY,
}
