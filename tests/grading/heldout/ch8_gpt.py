"""Held-out class, exercise 8 (ch8-gpt): sliding_window_mask, rolling_cache_update, next_token_probs,
sample_next, induction_score.

Written from the release notebook ``grader/release/ch8-gpt/ch8-gpt.ipynb``, the reading ``book/ch8_gpt.md``
and COURSE.md's chapter 8 only (not from ``solutions/``, the checks or the known mistakes).
"""

from __future__ import annotations

from . import Variant, edit

# The first version a student writes of each function (correct); most wrong variants are one change to it.
WINDOW_BROADCAST = '''
def sliding_window_mask(n_q, n_k, window):
    p = torch.arange(n_q)[:, None] + (n_k - n_q)
    j = torch.arange(n_k)[None, :]
    return (j <= p) & (j > p - window)
'''

ROLLING_CAT = '''
def rolling_cache_update(kv_cache, k_new, v_new, window):
    if kv_cache is not None:
        k_new = torch.cat([kv_cache[0], k_new], dim=2)
        v_new = torch.cat([kv_cache[1], v_new], dim=2)
    return k_new[:, :, -window:].clone(), v_new[:, :, -window:].clone()
'''

PROBS_SORTED = '''
def next_token_probs(logits, temperature=1.0, top_k=None, top_p=None):
    if temperature == 0:
        first = logits.argmax(dim=-1, keepdim=True)
        return torch.zeros_like(logits).scatter(-1, first, 1.0)
    logits = logits / temperature
    if top_k is not None:
        k = min(top_k, logits.shape[-1])
        kth = torch.topk(logits, k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    if top_p is not None:
        sorted_p = torch.sort(probs, dim=-1, descending=True).values
        before = torch.cumsum(sorted_p, dim=-1) - sorted_p
        n_kept = (before < top_p).sum(dim=-1, keepdim=True)
        smallest_kept = sorted_p.gather(-1, n_kept - 1)
        probs = torch.where(probs >= smallest_kept, probs, torch.zeros_like(probs))
        probs = probs / probs.sum(dim=-1, keepdim=True)
    return probs
'''

SAMPLE_RESHAPE = '''
def sample_next(logits, temperature=1.0, top_k=None, top_p=None, generator=None):
    probs = next_token_probs(logits, temperature, top_k, top_p)
    rows = probs.reshape(-1, probs.shape[-1])
    tokens = torch.multinomial(rows, num_samples=1, generator=generator)
    return tokens.reshape(logits.shape[:-1])
'''

INDUCTION_INDEX = '''
def induction_score(weights, period):
    n = weights.shape[-1]
    rows = torch.arange(period, n)
    return weights[..., rows, rows - period + 1].mean(dim=-1)
'''

VARIANTS = [
    # ---------------------------------------------------------------- sliding_window_mask
    Variant(function="sliding_window_mask", kind="correct", name="window/broadcast", source=WINDOW_BROADCAST),
    Variant(
        function="sliding_window_mask", kind="correct", name="window/loops",
        source='''
def sliding_window_mask(n_q, n_k, window):
    mask = torch.zeros(n_q, n_k, dtype=torch.bool)
    for i in range(n_q):
        p = i + n_k - n_q
        for j in range(max(0, p - window + 1), p + 1):
            mask[i, j] = True
    return mask
''',
    ),
    Variant(
        function="sliding_window_mask", kind="correct", name="window/tril-minus-tril",
        source='''
def sliding_window_mask(n_q, n_k, window):
    ones = torch.ones(n_q, n_k, dtype=torch.bool)
    return torch.tril(ones, diagonal=n_k - n_q) & ~torch.tril(ones, diagonal=n_k - n_q - window)
''',
    ),
    Variant(
        function="sliding_window_mask", kind="wrong", name="window/one-too-many",
        misconception="Counts the window as the keys before the query and adds the query itself "
        "(p - window <= j <= p), so every query sees window + 1 keys.",
        keywords=("window + 1", "one too many", "off by one", "off-by-one", "too many", "p - window <"),
        source=edit(WINDOW_BROADCAST, ("(j > p - window)", "(j >= p - window)")),
    ),
    Variant(
        function="sliding_window_mask", kind="wrong", name="window/excludes-itself",
        misconception="Uses a strict inequality on the causal side (j < p), so a query cannot attend its own "
        "position.",
        keywords=("itself", "own", "diagonal", "j <= p"),
        source=edit(WINDOW_BROADCAST, ("(j <= p)", "(j < p)")),
    ),
    Variant(
        function="sliding_window_mask", kind="wrong", name="window/top-left",
        misconception="Aligns the queries to the first positions (p = i) instead of the last n_q, wrong whenever "
        "n_q != n_k (a query after a cache).",
        keywords=("bottom-right", "bottom right", "lower-right", "align", "n_k - n_q", "last n_q", "offset"),
        source=edit(WINDOW_BROADCAST, (" + (n_k - n_q)", "")),
    ),
    Variant(
        function="sliding_window_mask", kind="wrong", name="window/lower-bound-from-i",
        misconception="Starts from a bottom-right causal mask but measures the window back from the query's "
        "index i instead of its position p = i + n_k - n_q, so queries after a cache see too many keys.",
        keywords=("align", "n_k - n_q", "position", "offset", "window"),
        source='''
def sliding_window_mask(n_q, n_k, window):
    i = torch.arange(n_q)[:, None]
    j = torch.arange(n_k)[None, :]
    return (j <= i + (n_k - n_q)) & (j > i - window)
''',
    ),
    Variant(
        function="sliding_window_mask", kind="wrong", name="window/symmetric-band",
        misconception="Builds a band |j - p| < window around the query, so it also sees the next window - 1 "
        "positions (not causal).",
        keywords=("future", "causal", "later", "after"),
        source=edit(WINDOW_BROADCAST, ("(j <= p) & (j > p - window)", "(j - p).abs() < window")),
    ),
    # ---------------------------------------------------------------- rolling_cache_update
    Variant(function="rolling_cache_update", kind="correct", name="rolling/cat-slice", source=ROLLING_CAT),
    Variant(
        function="rolling_cache_update", kind="correct", name="rolling/narrow",
        source='''
def rolling_cache_update(kv_cache, k_new, v_new, window):
    def roll(old, new):
        both = new if old is None else torch.cat((old, new), dim=-2)
        start = max(0, both.shape[-2] - window)
        return both.narrow(-2, start, both.shape[-2] - start).contiguous().clone()

    old_k, old_v = (None, None) if kv_cache is None else kv_cache
    return roll(old_k, k_new), roll(old_v, v_new)
''',
    ),
    Variant(
        function="rolling_cache_update", kind="correct", name="rolling/count-from-each",
        source='''
def rolling_cache_update(kv_cache, k_new, v_new, window):
    n_new = k_new.shape[2]
    from_new = min(n_new, window)
    if kv_cache is None:
        return k_new[:, :, n_new - from_new:].clone(), v_new[:, :, n_new - from_new:].clone()
    k_old, v_old = kv_cache
    n_past = k_old.shape[2]
    from_past = min(n_past, window - from_new)
    k = torch.cat([k_old[:, :, n_past - from_past:], k_new[:, :, n_new - from_new:]], dim=2)
    v = torch.cat([v_old[:, :, n_past - from_past:], v_new[:, :, n_new - from_new:]], dim=2)
    return k, v
''',
    ),
    Variant(
        function="rolling_cache_update", kind="wrong", name="rolling/keeps-oldest",
        misconception="Keeps the first window positions ([:window]) instead of the last ones, so the cache "
        "stops taking in new tokens once it is full.",
        keywords=("oldest", "most recent", "newest", "last window", "last `window`", "first"),
        source=edit(ROLLING_CAT, (
            "return k_new[:, :, -window:].clone(), v_new[:, :, -window:].clone()",
            "return k_new[:, :, :window].clone(), v_new[:, :, :window].clone()",
        )),
    ),
    Variant(
        function="rolling_cache_update", kind="wrong", name="rolling/new-first",
        misconception="Concatenates the new positions before the cached ones, so the cache is no longer "
        "oldest first (and the newest tokens are the ones dropped).",
        keywords=("order", "oldest first", "append", "after the cached", "before"),
        source=edit(ROLLING_CAT, (
            "torch.cat([kv_cache[0], k_new], dim=2)", "torch.cat([k_new, kv_cache[0]], dim=2)"), (
            "torch.cat([kv_cache[1], v_new], dim=2)", "torch.cat([v_new, kv_cache[1]], dim=2)",
        )),
    ),
    Variant(
        function="rolling_cache_update", kind="wrong", name="rolling/window-minus-one",
        misconception="Keeps window - 1 positions (the next token attends window - 1 cached ones plus itself), "
        "one fewer than the window; with window 1 the slice [-0:] keeps everything.",
        keywords=("window", "positions", "one fewer", "too few", "length", "off by one", "off-by-one"),
        source=edit(ROLLING_CAT, (
            "return k_new[:, :, -window:].clone(), v_new[:, :, -window:].clone()",
            "return k_new[:, :, -(window - 1):].clone(), v_new[:, :, -(window - 1):].clone()",
        )),
    ),
    Variant(
        function="rolling_cache_update", kind="wrong", name="rolling/trim-before-append",
        misconception="Trims the old cache to window positions and then appends the new ones, so the result "
        "holds up to window + n_new positions.",
        keywords=("window", "length", "positions", "too many", "after append", "min(n_past + n_new, window)"),
        source='''
def rolling_cache_update(kv_cache, k_new, v_new, window):
    if kv_cache is None:
        return k_new.clone(), v_new.clone()
    k = torch.cat([kv_cache[0][:, :, -window:], k_new], dim=2)
    v = torch.cat([kv_cache[1][:, :, -window:], v_new], dim=2)
    return k, v
''',
    ),
    Variant(
        function="rolling_cache_update", kind="wrong", name="rolling/no-empty-cache",
        misconception="Forgets that kv_cache may be None (nothing cached yet) and unpacks it anyway.",
        keywords=("none", "no cache", "empty", "nothing cached"),
        source='''
def rolling_cache_update(kv_cache, k_new, v_new, window):
    k_old, v_old = kv_cache
    k = torch.cat([k_old, k_new], dim=2)
    v = torch.cat([v_old, v_new], dim=2)
    return k[:, :, -window:].clone(), v[:, :, -window:].clone()
''',
    ),
    # ---------------------------------------------------------------- next_token_probs
    Variant(function="next_token_probs", kind="correct", name="probs/topk-sorted-cumsum", source=PROBS_SORTED),
    Variant(
        function="next_token_probs", kind="correct", name="probs/float64-pairwise-mass",
        source='''
def next_token_probs(logits, temperature=1.0, top_k=None, top_p=None):
    x = logits.double()
    if temperature == 0:
        best = x == x.max(dim=-1, keepdim=True).values
        first = best & (best.cumsum(dim=-1) == 1)
        return first.to(logits.dtype)
    x = x / temperature
    if top_k is not None and top_k < x.shape[-1]:
        kth = x.sort(dim=-1, descending=True).values[..., top_k - 1 : top_k]
        x = torch.where(x >= kth, x, torch.full_like(x, -math.inf))
    probs = torch.softmax(x, dim=-1)
    if top_p is not None:
        more_probable = probs.unsqueeze(-2) > probs.unsqueeze(-1)  # [..., i, j]: p_j > p_i
        mass_above = (more_probable * probs.unsqueeze(-2)).sum(dim=-1)
        probs = torch.where(mass_above < top_p, probs, torch.zeros_like(probs))
        probs = probs / probs.sum(dim=-1, keepdim=True)
    return probs.to(logits.dtype)
''',
    ),
    Variant(
        function="next_token_probs", kind="correct", name="probs/reciprocal-onehot-scatter",
        source='''
def next_token_probs(logits, temperature=1.0, top_k=None, top_p=None):
    vocab = logits.shape[-1]
    if temperature == 0:
        return torch.nn.functional.one_hot(logits.argmax(dim=-1), vocab).to(logits.dtype)
    scaled = logits * (1.0 / temperature)
    if top_k is not None and top_k < vocab:
        kth = scaled.sort(dim=-1, descending=True).values[..., [top_k - 1]]
        scaled = torch.where(scaled < kth, torch.tensor(-math.inf, dtype=scaled.dtype), scaled)
    shifted = scaled - scaled.max(dim=-1, keepdim=True).values
    e = shifted.exp()
    probs = e / e.sum(dim=-1, keepdim=True)
    if top_p is not None:
        sorted_p, order = probs.sort(dim=-1, descending=True)
        cum = sorted_p.cumsum(dim=-1)
        exclusive = torch.cat([torch.zeros_like(cum[..., :1]), cum[..., :-1]], dim=-1)
        keep_sorted = exclusive < top_p
        keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
        lowest_kept = torch.where(keep, probs, torch.full_like(probs, math.inf)).amin(dim=-1, keepdim=True)
        keep = keep | (probs == lowest_kept)
        probs = probs * keep
        probs = probs / probs.sum(dim=-1, keepdim=True)
    return probs
''',
    ),
    Variant(
        function="next_token_probs", kind="wrong", name="probs/top-p-drops-crossing-token",
        misconception="Keeps the tokens whose running total (including themselves) stays within top_p, so the "
        "token that crosses top_p is dropped (always keeping at least the most probable one).",
        keywords=("cross", "crosses", "reaches top_p", "strictly more probable"),
        source=edit(PROBS_SORTED, (
            "        before = torch.cumsum(sorted_p, dim=-1) - sorted_p\n"
            "        n_kept = (before < top_p).sum(dim=-1, keepdim=True)\n",
            "        running = torch.cumsum(sorted_p, dim=-1)\n"
            "        n_kept = (running <= top_p).sum(dim=-1, keepdim=True).clamp(min=1)\n",
        )),
    ),
    Variant(
        function="next_token_probs", kind="wrong", name="probs/temperature-after-top-p",
        misconception="Filters with top-k and top-p on the untempered distribution and applies the temperature "
        "last, so the temperature cannot change which tokens are kept.",
        keywords=("temperature", "order", "before top-p", "first", "tempered"),
        source='''
def next_token_probs(logits, temperature=1.0, top_k=None, top_p=None):
    if temperature == 0:
        first = logits.argmax(dim=-1, keepdim=True)
        return torch.zeros_like(logits).scatter(-1, first, 1.0)
    if top_k is not None:
        k = min(top_k, logits.shape[-1])
        kth = torch.topk(logits, k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None:
        probs = torch.softmax(logits, dim=-1)
        sorted_p = torch.sort(probs, dim=-1, descending=True).values
        before = torch.cumsum(sorted_p, dim=-1) - sorted_p
        n_kept = (before < top_p).sum(dim=-1, keepdim=True)
        smallest_kept = sorted_p.gather(-1, n_kept - 1)
        logits = logits.masked_fill(probs < smallest_kept, float("-inf"))
    return torch.softmax(logits / temperature, dim=-1)
''',
    ),
    Variant(
        function="next_token_probs", kind="wrong", name="probs/top-p-before-top-k",
        misconception="Applies top-p to the full distribution and top-k afterwards (then renormalises), instead "
        "of top-p on the distribution left by top-k.",
        keywords=("order", "top-k", "top_k", "after top-k", "before"),
        source='''
def next_token_probs(logits, temperature=1.0, top_k=None, top_p=None):
    if temperature == 0:
        first = logits.argmax(dim=-1, keepdim=True)
        return torch.zeros_like(logits).scatter(-1, first, 1.0)
    logits = logits / temperature
    probs = torch.softmax(logits, dim=-1)
    if top_p is not None:
        sorted_p = torch.sort(probs, dim=-1, descending=True).values
        before = torch.cumsum(sorted_p, dim=-1) - sorted_p
        n_kept = (before < top_p).sum(dim=-1, keepdim=True)
        smallest_kept = sorted_p.gather(-1, n_kept - 1)
        probs = torch.where(probs >= smallest_kept, probs, torch.zeros_like(probs))
    if top_k is not None:
        k = min(top_k, logits.shape[-1])
        kth = torch.topk(logits, k, dim=-1).values[..., -1:]
        probs = probs.masked_fill(logits < kth, 0.0)
    return probs / probs.sum(dim=-1, keepdim=True)
''',
    ),
    Variant(
        function="next_token_probs", kind="wrong", name="probs/top-k-exactly-k",
        misconception="Keeps exactly the k tokens torch.topk returns (scattering their indices), so a token tied "
        "with the k-th largest logit is dropped.",
        keywords=("tie", "ties", "tied", "equal"),
        source=edit(PROBS_SORTED, (
            "        kth = torch.topk(logits, k, dim=-1).values[..., -1:]\n"
            "        logits = logits.masked_fill(logits < kth, float(\"-inf\"))\n",
            "        top = torch.topk(logits, k, dim=-1).indices\n"
            "        keep = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, top, True)\n"
            "        logits = logits.masked_fill(~keep, float(\"-inf\"))\n",
        )),
    ),
    Variant(
        function="next_token_probs", kind="wrong", name="probs/top-p-sorted-no-ties",
        misconception="The usual sort-and-cumsum nucleus mapped back through the sort order, without keeping the "
        "tokens tied with the last kept one, so which of two equally probable tokens survives depends on the "
        "sort.",
        keywords=("tie", "ties", "tied", "equal"),
        source=edit(PROBS_SORTED, (
            "        sorted_p = torch.sort(probs, dim=-1, descending=True).values\n"
            "        before = torch.cumsum(sorted_p, dim=-1) - sorted_p\n"
            "        n_kept = (before < top_p).sum(dim=-1, keepdim=True)\n"
            "        smallest_kept = sorted_p.gather(-1, n_kept - 1)\n"
            "        probs = torch.where(probs >= smallest_kept, probs, torch.zeros_like(probs))\n",
            "        sorted_p, order = torch.sort(probs, dim=-1, descending=True)\n"
            "        before = torch.cumsum(sorted_p, dim=-1) - sorted_p\n"
            "        keep = torch.zeros_like(probs, dtype=torch.bool).scatter(-1, order, before < top_p)\n"
            "        probs = torch.where(keep, probs, torch.zeros_like(probs))\n",
        )),
    ),
    Variant(
        function="next_token_probs", kind="wrong", name="probs/greedy-as-top-1",
        misconception="Implements temperature 0 as 'keep the largest logit' (top-k = 1), so when several logits "
        "tie for the largest the mass is split between them instead of all going to the first.",
        keywords=("first", "tie", "tied", "argmax", "greedy"),
        source=edit(PROBS_SORTED, (
            "        first = logits.argmax(dim=-1, keepdim=True)\n"
            "        return torch.zeros_like(logits).scatter(-1, first, 1.0)\n",
            "        best = logits == logits.max(dim=-1, keepdim=True).values\n"
            "        return torch.softmax(logits.masked_fill(~best, float(\"-inf\")), dim=-1)\n",
        )),
    ),
    # ---------------------------------------------------------------- sample_next
    Variant(function="sample_next", kind="correct", name="sample/reshape", source=SAMPLE_RESHAPE),
    Variant(
        function="sample_next", kind="correct", name="sample/one-row-special-case",
        source='''
def sample_next(logits, temperature=1.0, top_k=None, top_p=None, generator=None):
    probs = next_token_probs(logits, temperature=temperature, top_k=top_k, top_p=top_p)
    if probs.dim() == 1:
        return torch.multinomial(probs[None, :], num_samples=1, generator=generator)[0, 0]
    flat = probs.flatten(0, -2)
    drawn = torch.multinomial(flat, num_samples=1, generator=generator).squeeze(-1)
    return drawn.view(*probs.shape[:-1]).to(torch.int64)
''',
    ),
    Variant(
        function="sample_next", kind="wrong", name="sample/no-generator",
        misconception="Calls torch.multinomial without passing the generator on, so the draw uses the global "
        "random state and is not reproducible from the seed.",
        keywords=("generator", "seed"),
        source=edit(SAMPLE_RESHAPE, (", generator=generator)", ")")),
    ),
    Variant(
        function="sample_next", kind="wrong", name="sample/argmax",
        misconception="Returns the most probable token of each row instead of drawing from the distribution.",
        keywords=("draw", "sample", "multinomial", "argmax", "greedy", "random"),
        source=edit(SAMPLE_RESHAPE, (
            "    tokens = torch.multinomial(rows, num_samples=1, generator=generator)\n",
            "    tokens = rows.argmax(dim=-1)\n",
        )),
    ),
    Variant(
        function="sample_next", kind="wrong", name="sample/drops-temperature",
        misconception="Passes top_k and top_p on to next_token_probs but forgets the temperature, so every "
        "draw is at temperature 1.",
        keywords=("temperature",),
        source=edit(SAMPLE_RESHAPE, (
            "next_token_probs(logits, temperature, top_k, top_p)", "next_token_probs(logits, top_k=top_k, top_p=top_p)",
        )),
    ),
    Variant(
        function="sample_next", kind="wrong", name="sample/top-k-top-p-swapped",
        misconception="Passes top_p and top_k positionally in the wrong order (next_token_probs(logits, "
        "temperature, top_p, top_k)).",
        keywords=("top_k", "top_p", "top-k", "top-p", "order", "swap"),
        source=edit(SAMPLE_RESHAPE, (
            "next_token_probs(logits, temperature, top_k, top_p)",
            "next_token_probs(logits, temperature, top_p, top_k)",
        )),
    ),
    Variant(
        function="sample_next", kind="wrong", name="sample/keeps-sample-axis",
        misconception="Returns multinomial's (rows, 1) result as it is, instead of shape logits.shape[:-1].",
        keywords=("shape", "logits.shape[:-1]", "axis", "0-d"),
        source=edit(SAMPLE_RESHAPE, ("    return tokens.reshape(logits.shape[:-1])\n", "    return tokens\n")),
    ),
    # ---------------------------------------------------------------- induction_score
    Variant(function="induction_score", kind="correct", name="induction/index-rows", source=INDUCTION_INDEX),
    Variant(
        function="induction_score", kind="correct", name="induction/diagonal",
        source='''
def induction_score(weights, period):
    stripe = torch.diagonal(weights, offset=-(period - 1), dim1=-2, dim2=-1)  # rows period - 1, ..., n - 1
    return stripe[..., 1:].mean(dim=-1)
''',
    ),
    Variant(
        function="induction_score", kind="correct", name="induction/float64-loop",
        source='''
def induction_score(weights, period):
    n = weights.shape[-1]
    total = torch.zeros(weights.shape[:-2], dtype=torch.float64)
    for i in range(period, n):
        total = total + weights[..., i, i - period + 1].double()
    return (total / (n - period)).to(weights.dtype)
''',
    ),
    Variant(
        function="induction_score", kind="wrong", name="induction/offset-period",
        misconception="Reads weights[..., i, i - period], the earlier copy of the current token (a "
        "duplicate-token head), instead of the token after it at i - period + 1.",
        keywords=("i - period + 1", "period - 1", "after", "duplicate", "earlier copy", "next"),
        source=edit(INDUCTION_INDEX, ("rows - period + 1]", "rows - period]")),
    ),
    Variant(
        function="induction_score", kind="wrong", name="induction/stripe-from-period-minus-one",
        misconception="Averages the whole stripe i - period + 1 from row period - 1 on (torch.diagonal without "
        "dropping its first entry), one row before the repeat starts.",
        keywords=("repeat", "i = period", "rows", "from period", "first"),
        source='''
def induction_score(weights, period):
    return torch.diagonal(weights, offset=-(period - 1), dim1=-2, dim2=-1).mean(dim=-1)
''',
    ),
    Variant(
        function="induction_score", kind="wrong", name="induction/divide-by-n",
        misconception="Sums the stripe over the repeat but divides by n (every row) instead of n - period.",
        keywords=("mean", "n - period", "average", "divide", "repeat", "rows"),
        source=edit(INDUCTION_INDEX, (".mean(dim=-1)", ".sum(dim=-1) / n")),
    ),
    Variant(
        function="induction_score", kind="wrong", name="induction/diagonal-wrong-sign",
        misconception="Gives torch.diagonal a positive offset (period - 1), so it reads "
        "weights[..., i - period + 1, i]: query and key swapped, the zeros above the causal diagonal.",
        keywords=("query", "key", "row", "transpose", "swapped", "below the diagonal"),
        source='''
def induction_score(weights, period):
    stripe = torch.diagonal(weights, offset=period - 1, dim1=-2, dim2=-1)
    return stripe[..., 1:].mean(dim=-1)
''',
    ),
    Variant(
        function="induction_score", kind="wrong", name="induction/one-number",
        misconception="Averages over the heads and sequences too, returning one number instead of one score per "
        "head and sequence (shape weights.shape[:-2]).",
        keywords=("shape", "per head", "one score", "weights.shape[:-2]", "axis"),
        source=edit(INDUCTION_INDEX, (".mean(dim=-1)", ".mean()")),
    ),
]
