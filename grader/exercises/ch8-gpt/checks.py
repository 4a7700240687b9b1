"""Hidden checks of ch8-gpt: for each graded function, its hidden cases and its known mistakes.

Mistakes are patches of the reference's student form (``solutions/ch8_gpt.py`` without its
``@validated`` lines); see CONTRIBUTING.md. Sampling is checked draw by draw (the ``sample`` runner):
the student's ``sample_next`` and the reference get generators seeded alike, and the student's
function runs with the reference ``next_token_probs`` (checked before it), so a correct answer gives
exactly the reference's tokens. Random logits are drawn with a margin around every top-p threshold, so
that float rounding never decides which token crosses it.
"""

from __future__ import annotations

import numpy as np

from grader.engine.cases import Case, Spec, call, sample, tensor
from grader.engine.mistakes import Mistake

# ---- sliding_window_mask -----------------------------------------------------------------------------


def window_mask_cases(rng: np.random.Generator) -> list[Case]:
    n = int(rng.integers(7, 10))
    n_k = int(rng.integers(8, 12))
    return [
        Case(f"{n} queries over {n} keys, window 3", call(n, n, 3)),
        Case("3 queries that are the last of more keys, window 4", call(3, n_k, 4)),
        Case("one new token after cached ones (n_q = 1), window 4", call(1, n_k, 4)),
        Case("a window longer than the sequence, n_q < n_k", call(4, n_k, n_k + 2)),
        Case("window 1 (each query sees only itself), n_q < n_k", call(4, n_k, 1)),
        Case("more queries than keys (some see nothing), window 2", call(6, 4, 2)),
    ]


_WINDOW = "(key <= position) & (key > position - window)"
WINDOW_MISTAKES = [
    Mistake(
        "window-one-too-many", "sliding_window_mask",
        "a query sees exactly `window` keys, itself included: keys j with p - window < j <= p (strictly "
        "greater than p - window); yours lets in one key more.",
        replace=(("(key > position - window)", "(key >= position - window)"),),
    ),
    Mistake(
        "window-one-too-few", "sliding_window_mask",
        "a query sees exactly `window` keys, itself included: keys j with p - window < j <= p; yours lets in "
        "one key fewer.",
        replace=(("(key > position - window)", "(key > position - window + 1)"),),
    ),
    Mistake(
        "window-top-left", "sliding_window_mask",
        "the queries are the LAST n_q of the n_k positions: query i sits at position i + (n_k - n_q) "
        "(bottom-right alignment, as chapter 2's causal mask), not at position i.",
        replace=(("torch.arange(n_q)[:, None] + (n_k - n_q)", "torch.arange(n_q)[:, None]"),),
    ),
    Mistake(
        "window-two-sided", "sliding_window_mask",
        "the window is causal: a query sees the window - 1 keys BEFORE it and itself, never a later key "
        "(a two-sided window is an encoder's).",
        replace=((_WINDOW, "(key - position).abs() < window"),),
    ),
    Mistake(
        "window-inverted", "sliding_window_mask",
        "True means 'may attend': the mask is True inside the window and False outside; yours is the "
        "other way round.",
        replace=((_WINDOW, "(key > position) | (key <= position - window)"),),
    ),
]

# ---- rolling_cache_update ----------------------------------------------------------------------------


def rolling_cases(rng: np.random.Generator) -> list[Case]:
    def kv(n: int, dtype: str = "float32") -> tuple:  # batch 2, heads 3, head_dim 4: no two axes alike
        return tensor(rng, 2, 3, n, 4, dtype=dtype), tensor(rng, 2, 3, n, 4, dtype=dtype)

    return [
        Case("no cache yet, fewer new positions than the window", call(None, *kv(3), 5)),
        Case("no cache yet, a prompt longer than the window", call(None, *kv(7), 4)),
        Case("a cache that is not full yet, one new position", call(kv(2), *kv(1), 5)),
        Case("a full cache and one new position (the oldest must go)", call(kv(5), *kv(1), 5)),
        Case("a cache of 4 and 3 new positions, window 5", call(kv(4), *kv(3), 5)),
        Case("window 1", call(kv(3), *kv(2), 1)),
        Case("float64 keys and values", call(kv(4, "float64"), *kv(2, "float64"), 3)),
    ]


_KEEP = "return k_new[..., -window:, :], v_new[..., -window:, :]"
ROLLING_MISTAKES = [
    Mistake(
        "cache-keeps-oldest", "rolling_cache_update",
        "keep the LAST window positions (the most recent ones) and drop the oldest; yours keeps the first "
        "window positions, so the newest keys are lost.",
        replace=((_KEEP, "return k_new[..., :window, :], v_new[..., :window, :]"),),
    ),
    Mistake(
        "cache-new-first", "rolling_cache_update",
        "append the new positions AFTER the cached ones (oldest first): torch.cat([cached, new], dim=-2).",
        replace=(("torch.cat([kv_cache[0], k_new], dim=-2)", "torch.cat([k_new, kv_cache[0]], dim=-2)"),
                 ("torch.cat([kv_cache[1], v_new], dim=-2)", "torch.cat([v_new, kv_cache[1]], dim=-2)")),
    ),
    Mistake(
        "cache-one-short", "rolling_cache_update",
        "the cache keeps `window` positions, not window - 1.",
        replace=((_KEEP, "return k_new[..., -window + 1:, :], v_new[..., -window + 1:, :]"),),
    ),
    Mistake(
        "cache-values-not-rolled", "rolling_cache_update",
        "roll the values like the keys: both keep the last `window` positions.",
        replace=((_KEEP, "return k_new[..., -window:, :], v_new"),),
    ),
    Mistake(
        "cache-heads-axis", "rolling_cache_update",
        "append along the sequence axis (dim -2 of (batch, n_kv_heads, seq, head_dim)), not the heads axis.",
        replace=(("torch.cat([kv_cache[0], k_new], dim=-2)", "torch.cat([kv_cache[0], k_new], dim=1)"),
                 ("torch.cat([kv_cache[1], v_new], dim=-2)", "torch.cat([kv_cache[1], v_new], dim=1)")),
    ),
]

# ---- next_token_probs --------------------------------------------------------------------------------


def _nucleus_margin(logits: np.ndarray, temperature: float, top_k: int | None, top_p: float) -> float:
    """The smallest distance between ``top_p`` and the mass ranked before any token, after temperature and
    top-k, in float64: a small one would let float rounding decide which token crosses ``top_p``."""
    scaled = logits / temperature
    if top_k is not None:
        kth = np.sort(scaled, axis=-1)[..., -top_k][..., None]
        scaled = np.where(scaled >= kth, scaled, -np.inf)
    p = np.exp(scaled - scaled.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    ranked = -np.sort(-p, axis=-1)
    before = np.cumsum(ranked, axis=-1) - ranked
    return float(np.abs(before - top_p).min())


def _logits(rng: np.random.Generator, shape: tuple[int, ...], temperature: float = 1.0, top_k: int | None = None,
            top_p: float | None = None, dtype: str = "float32", scale: float = 2.0):
    """Random logits ``shape``, redrawn until every top-p threshold is at least 1e-3 from a boundary."""
    import torch

    for _ in range(1000):
        x = rng.normal(size=shape) * scale
        x = x.astype(dtype).astype(np.float64)  # the margin is measured on the values the tensor will hold
        if top_p is None or _nucleus_margin(x, temperature, top_k, top_p) > 1e-3:
            return torch.from_numpy(x).to(getattr(torch, dtype))
    raise RuntimeError("no logits with a safe top-p margin")  # pragma: no cover - 1e-3 of 1 is easy to clear


def _tied(rng: np.random.Generator, values: list[float], rows: int):
    """Rows of log(``values``) in random orders: exact ties where ``values`` repeat."""
    import torch

    base = np.log(np.asarray(values))
    return torch.from_numpy(np.stack([rng.permutation(base) for _ in range(rows)])).float()


def probs_cases(rng: np.random.Generator) -> list[Case]:
    v = int(rng.integers(8, 12))
    return [
        Case("temperature 1, no filter", call(_logits(rng, (3, v)))),
        Case("temperature 0.5", call(_logits(rng, (3, v)), 0.5)),
        Case("temperature 2", call(_logits(rng, (3, v)), 2.0)),
        Case("temperature 0 (greedy), with top_k and top_p set too", call(_logits(rng, (3, v)), 0.0, 3, 0.5)),
        Case("temperature 0 where the largest logit is tied (the first one wins, like argmax)",
             call(_tied(rng, [0.3, 0.3, 0.2, 0.1, 0.1], 3), 0.0)),
        Case("logits near +1e4", call(_logits(rng, (3, v)) + 1e4)),
        Case("logits near -1e4 and top_k = 3", call(_logits(rng, (3, v)) - 1e4, 1.0, 3)),
        Case("top_k = 3", call(_logits(rng, (4, v)), 1.0, 3)),
        Case("top_k larger than the vocabulary", call(_logits(rng, (2, v)), 1.0, v + 3)),
        Case("top_k = 2 where the 2nd and 3rd largest logits are equal (ties stay)",
             call(_tied(rng, [0.4, 0.2, 0.2, 0.1, 0.1], 3), 1.0, 2)),
        Case("top_p = 0.6", call(_logits(rng, (4, v), top_p=0.6), 1.0, None, 0.6)),
        Case("top_p = 0.4 where the token that crosses it is tied with the next (ties stay)",
             call(_tied(rng, [0.3, 0.2, 0.2, 0.15, 0.15], 3), 1.0, None, 0.4)),
        Case("temperature 2 then top_p = 0.7",
             call(_logits(rng, (4, v), 2.0, None, 0.7, scale=3.0), 2.0, None, 0.7)),
        Case("temperature 0.5 then top_p = 0.9",
             call(_logits(rng, (4, v), 0.5, None, 0.9), 0.5, None, 0.9)),
        Case("top_k = 4 then top_p = 0.8 on the renormalised distribution",
             call(_logits(rng, (4, v), 1.0, 4, 0.8, scale=1.0), 1.0, 4, 0.8)),
        Case("temperature 1.5, top_k = 5 and top_p = 0.75, logits (2, 3, vocab) in float64",
             call(_logits(rng, (2, 3, v), 1.5, 5, 0.75, "float64"), 1.5, 5, 0.75)),
        Case("one row of logits (vocab,), temperature 0.7 and top_p = 0.8",
             call(_logits(rng, (v,), 0.7, None, 0.8), 0.7, None, 0.8)),
    ]


_GREEDY = ("    if temperature == 0:\n"
           "        return torch.nn.functional.one_hot(logits.argmax(dim=-1), logits.shape[-1]).to(logits.dtype)\n")
_RANKED = "ranked = probs.sort(dim=-1, descending=True).values"
_CUT = "probs = probs.masked_fill(probs < smallest, 0.0)"
PROBS_MISTAKES = [
    Mistake(
        "probs-temperature-multiplies", "next_token_probs",
        "divide the logits by the temperature (a low temperature sharpens the distribution); yours multiplies.",
        replace=(("scaled = logits / temperature", "scaled = logits * temperature"),),
    ),
    Mistake(
        "probs-greedy-not-special", "next_token_probs",
        "temperature 0 means greedy: return all the probability on the largest logit (dividing by 0 gives "
        "inf and NaN).",
        replace=((_GREEDY, ""),),
    ),
    Mistake(
        "probs-greedy-int-one-hot", "next_token_probs",
        "return the probabilities in the dtype of the logits, also for temperature 0: one_hot gives integers "
        "(int64), so convert its result with .to(logits.dtype).",
        replace=((").to(logits.dtype)\n", ")\n"),),
    ),
    Mistake(
        "probs-greedy-shares-ties", "next_token_probs",
        "temperature 0 puts all the probability on ONE token, the first largest logit (as argmax chooses), even "
        "when several logits are equal; yours shares it among the tied ones.",
        replace=(("return torch.nn.functional.one_hot(logits.argmax(dim=-1), logits.shape[-1]).to(logits.dtype)",
                  "top = (logits == logits.amax(dim=-1, keepdim=True)).to(logits.dtype)\n"
                  "        return top / top.sum(dim=-1, keepdim=True)"),),
    ),
    Mistake(
        "probs-softmax-overflows", "next_token_probs",
        "compute the softmax stably (torch.softmax, or subtract each row's largest logit before exp): exp of a "
        "logit near 1e4 overflows to inf, and of logits all near -1e4 underflows to 0, and the division gives NaN.",
        replace=(("probs = torch.softmax(scaled, dim=-1)",
                  "probs = scaled.exp() / scaled.exp().sum(dim=-1, keepdim=True)"),),
    ),
    Mistake(
        "probs-top-k-one-more", "next_token_probs",
        "top-k keeps the logits at least as large as the k-th largest; yours keeps one token more (the "
        "(k+1)-th largest is the threshold).",
        replace=(("torch.topk(scaled, min(top_k, scaled.shape[-1]), dim=-1)",
                  "torch.topk(scaled, min(top_k + 1, scaled.shape[-1]), dim=-1)"),),
    ),
    Mistake(
        "probs-top-k-ties-dropped", "next_token_probs",
        "top-k keeps every logit at least as large as the k-th largest, so tokens tied with it stay; yours "
        "keeps exactly k tokens.",
        replace=(("kth = torch.topk(scaled, min(top_k, scaled.shape[-1]), dim=-1).values[..., -1:]",
                  "keep = torch.topk(scaled, min(top_k, scaled.shape[-1]), dim=-1).indices"),
                 ('scaled = scaled.masked_fill(scaled < kth, float("-inf"))',
                  'scaled = torch.full_like(scaled, float("-inf")).scatter(-1, keep, scaled.gather(-1, keep))')),
    ),
    Mistake(
        "probs-top-p-drops-crossing", "next_token_probs",
        "top-p keeps the token that crosses top_p: a token stays when the tokens more probable than it hold "
        "LESS than top_p; yours drops the token whose own probability takes the total past top_p.",
        replace=(("ranked.masked_fill(before >= top_p, ", "ranked.masked_fill(before + ranked > top_p, "),),
    ),
    Mistake(
        "probs-top-p-before-temperature", "next_token_probs",
        "apply the temperature first, then top-p on the tempered distribution; yours chooses the nucleus "
        "from the distribution before the temperature.",
        replace=((_RANKED, "plain = torch.softmax(logits, dim=-1)\n"
                            "        ranked = plain.sort(dim=-1, descending=True).values"),
                 (_CUT, "probs = probs.masked_fill(plain < smallest, 0.0)")),
    ),
    Mistake(
        "probs-top-p-before-top-k", "next_token_probs",
        "apply top-p to the distribution renormalised after top-k; yours measures top_p on the distribution "
        "before top-k removed any token.",
        replace=((_RANKED, "full = torch.softmax(logits / temperature, dim=-1)\n"
                            "        ranked = full.sort(dim=-1, descending=True).values"),
                 (_CUT, "probs = probs.masked_fill(full < smallest, 0.0)")),
    ),
    Mistake(
        "probs-top-p-not-renormalised", "next_token_probs",
        "after top-p removes tokens, renormalise: the kept probabilities must sum to 1.",
        replace=(("        probs = probs / probs.sum(dim=-1, keepdim=True)\n", ""),),
    ),
    Mistake(
        "probs-modifies-logits", "next_token_probs",
        "do not modify the logits you are given (your function divides them in place): compute new tensors.",
        replace=(("scaled = logits / temperature", "scaled = logits.div_(temperature)"),),
    ),
]

# ---- sample_next -------------------------------------------------------------------------------------


def sample_cases(rng: np.random.Generator) -> list[Case]:
    v = int(rng.integers(6, 10))

    def seed() -> int:
        return int(rng.integers(2**31 - 2))

    return [
        Case("4 rows of logits, 25 draws with one generator", sample(_logits(rng, (4, v), scale=1.0), seed(), 25)),
        Case("temperature 0.7 and top_k = 3", sample(_logits(rng, (3, v)), seed(), 20, temperature=0.7, top_k=3)),
        Case("temperature 1.5 and top_p = 0.8",
             sample(_logits(rng, (3, v), 1.5, None, 0.8), seed(), 20, temperature=1.5, top_p=0.8)),
        Case("logits (2, 3, vocab): one token per row, shape (2, 3)", sample(_logits(rng, (2, 3, v)), seed(), 8)),
        Case("one row of logits (vocab,): a 0-d tensor", sample(_logits(rng, (v,), scale=1.0), seed(), 30)),
        Case("temperature 0 (greedy)", sample(_logits(rng, (3, v)), seed(), 5, temperature=0.0)),
        Case("float64 logits", sample(_logits(rng, (3, v), dtype="float64", scale=1.0), seed(), 20)),
    ]


_DRAW = "torch.multinomial(rows, num_samples=1, generator=generator)"
SAMPLE_MISTAKES = [
    Mistake(
        "sample-no-generator", "sample_next",
        "pass the generator to torch.multinomial (generator=generator): without it the draws come from the "
        "global random state and the same seed does not give the same tokens.",
        replace=((_DRAW, "torch.multinomial(rows, num_samples=1)"),),
    ),
    Mistake(
        "sample-argmax", "sample_next",
        "draw from the distribution with torch.multinomial; taking the most probable token is greedy "
        "decoding, not sampling.",
        replace=((_DRAW, "rows.argmax(dim=-1, keepdim=True)"),),
    ),
    Mistake(
        "sample-ignores-rules", "sample_next",
        "pass temperature, top_k and top_p on to next_token_probs: the draws must follow the filtered "
        "distribution.",
        replace=(("next_token_probs(logits, temperature, top_k, top_p)", "next_token_probs(logits)"),),
    ),
    Mistake(
        "sample-softmax-twice", "sample_next",
        "next_token_probs already returns probabilities: draw from them directly (a second softmax flattens "
        "the distribution).",
        replace=(("rows = probs.reshape(-1, probs.shape[-1])",
                  "rows = torch.softmax(probs, dim=-1).reshape(-1, probs.shape[-1])"),),
    ),
    Mistake(
        "sample-keeps-sample-axis", "sample_next",
        "return one token per row with shape logits.shape[:-1]: drop the sample axis torch.multinomial adds.",
        replace=(("return tokens.reshape(probs.shape[:-1])", "return tokens.reshape(*probs.shape[:-1], 1)"),),
    ),
]

# ---- induction_score ---------------------------------------------------------------------------------


def _weights(rng: np.random.Generator, *shape: int, causal: bool = True, dtype: str = "float32"):
    import torch

    scores = torch.from_numpy(rng.normal(size=shape) * 2)
    if causal:
        n = shape[-1]
        scores = scores.masked_fill(~torch.ones(n, n, dtype=torch.bool).tril(), float("-inf"))
    return torch.softmax(scores, dim=-1).to(getattr(torch, dtype))


def induction_cases(rng: np.random.Generator) -> list[Case]:
    t = int(rng.integers(3, 7))
    return [
        Case(f"causal weights (2, 3, n, n) of sequences repeated twice, period {t}",
             call(_weights(rng, 2, 3, 2 * t, 2 * t), t)),
        Case("period 1", call(_weights(rng, 3, 5, 5), 1)),
        Case("a sequence repeated three times", call(_weights(rng, 2, 3 * t, 3 * t), t)),
        Case("weights that are not causal (every key has weight)",
             call(_weights(rng, 2, 2 * t, 2 * t, causal=False), t)),
        Case("float64 weights (4, n, n)", call(_weights(rng, 4, 2 * t, 2 * t, dtype="float64"), t)),
        Case("one head (n, n)", call(_weights(rng, 2 * t + 1, 2 * t + 1), t)),
    ]


_PICK = "weights[..., queries, queries - period + 1].mean(dim=-1)"
INDUCTION_MISTAKES = [
    Mistake(
        "induction-duplicate-token", "induction_score",
        "an induction head attends to the token AFTER the earlier copy, position i - period + 1; yours "
        "measures attention to the earlier copy itself (i - period), a duplicate-token head.",
        replace=((_PICK, "weights[..., queries, queries - period].mean(dim=-1)"),),
    ),
    Mistake(
        "induction-from-first-half", "induction_score",
        "average over the positions of the repeat only, i = period ... n - 1; yours also counts position "
        "period - 1, which has no earlier copy.",
        replace=(("torch.arange(period, weights.shape[-1])", "torch.arange(period - 1, weights.shape[-1])"),),
    ),
    Mistake(
        "induction-transposed", "induction_score",
        "rows of the weights are queries and columns are keys: read weights[..., i, i - period + 1] (from "
        "query i to key i - period + 1), not the transposed entry.",
        replace=((_PICK, "weights[..., queries - period + 1, queries].mean(dim=-1)"),),
    ),
    Mistake(
        "induction-sum", "induction_score",
        "the score is the MEAN over the repeat's positions, not the sum.",
        replace=((_PICK, "weights[..., queries, queries - period + 1].sum(dim=-1)"),),
    ),
    Mistake(
        "induction-one-number", "induction_score",
        "return one score per head and sequence, shape weights.shape[:-2]: average over the positions only, "
        "not over the leading dimensions too.",
        replace=((_PICK, "weights[..., queries, queries - period + 1].mean()"),),
    ),
]

_DEFAULT_DIM = "-1 is the default dim of torch.topk and Tensor.sort"
EQUIVALENT_MUTANTS = {
    "next_token_probs:keyword-dropped@L15:dim=-1": _DEFAULT_DIM,
    "next_token_probs:keyword-dropped@L19:dim=-1": _DEFAULT_DIM,
    "next_token_probs:inf@L16:float('-inf')->-1e+09":
        "a logit of -1e9 gets probability exp(-1e9 - max) = 0 as -inf does (the contract's logits are at most 1e4 "
        "in size, and the tempered ones of the cases too)",
    "next_token_probs:inf@L21:float('inf')->1e+09":
        "it only hides tokens from a minimum over probabilities, which are at most 1, so 1e9 acts as +inf",
    "next_token_probs:compare@L21:>=->>":
        "differs only when the mass ranked before a token equals top_p exactly, which float rounding decides; the "
        "cases keep top_p 1e-3 from every such boundary so that right code summing in another order never loses",
    "induction_score:number@L13:-1->-2": "the weights are square, (..., n, n) (self-attention, validated)",
}

SPECS = {
    "sliding_window_mask": Spec(window_mask_cases),
    "rolling_cache_update": Spec(rolling_cases, items=("k", "v")),
    "next_token_probs": Spec(probs_cases),
    "sample_next": Spec(sample_cases),
    "induction_score": Spec(induction_cases),
}
MISTAKES = WINDOW_MISTAKES + ROLLING_MISTAKES + PROBS_MISTAKES + SAMPLE_MISTAKES + INDUCTION_MISTAKES
