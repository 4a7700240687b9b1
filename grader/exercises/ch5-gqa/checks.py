"""Hidden checks of ch5-gqa: for each graded function, its hidden cases and its known mistakes.

Mistakes are patches of the reference's student form (``solutions/ch5_gqa.py`` without its
``@validated`` lines); see CONTRIBUTING.md.
"""

from __future__ import annotations

import numpy as np

from grader.engine.cases import Case, Spec, call, convert, decode_steps, forward, module, tensor
from grader.engine.mistakes import Mistake

# ---- repeat_kv ---------------------------------------------------------------------------------------


def repeat_kv_cases(rng: np.random.Generator) -> list[Case]:
    n_rep = int(rng.integers(2, 5))
    return [
        Case(f"2 KV heads repeated {n_rep} times", call(tensor(rng, 2, 2, 5, 4), n_rep)),
        Case("n_rep = 1", call(tensor(rng, 1, 4, 3, 2), 1)),
        Case("one KV head (MQA) repeated 4 times", call(tensor(rng, 2, 1, 4, 8), 4)),
        Case("4 KV heads repeated twice", call(tensor(rng, 1, 4, 3, 2), 2)),
    ]


_EXPAND = "x[:, :, None].expand(batch, n_kv, n_rep, seq, head_dim).reshape(batch, n_kv * n_rep, seq, head_dim)"
REPEAT_MISTAKES = [
    Mistake(
        "repeat-tile", "repeat_kv",
        "repeat_kv must interleave: query head h uses key/value head h // n_rep, so each KV head is repeated "
        "n_rep times in a row (like repeat_interleave), not the whole set of heads tiled n_rep times.",
        replace=((_EXPAND, "x.repeat(1, n_rep, 1, 1)"),),
    ),
    Mistake(
        "repeat-seq-axis", "repeat_kv",
        "repeat along the heads axis (dim 1) to get (batch, n_kv_heads * n_rep, seq, head_dim), not along "
        "the sequence axis.",
        replace=((_EXPAND, "x.repeat_interleave(n_rep, dim=2)"),),
    ),
]

# ---- GroupedQueryAttention ---------------------------------------------------------------------------


def gqa_cases(rng: np.random.Generator) -> list[Case]:
    """GQA, MQA and bias=True; an explicit (n, n) mask that replaces the causal one, and a (batch, n, n)
    mask that differs per sequence; new tokens after a cache; decoding token by token with the cache."""
    import torch

    seed = int(rng.integers(2**31))
    n, past = int(rng.integers(5, 8)), int(rng.integers(2, 5))
    x = tensor(rng, 2, n, 16)
    cache = (tensor(rng, 2, 2, past, 4), tensor(rng, 2, 2, past, 4))
    mask = torch.from_numpy(rng.random((n, n)) > 0.3) | torch.eye(n, dtype=torch.bool)
    per_sequence = torch.from_numpy(rng.random((2, n, n)) > 0.4) | torch.eye(n, dtype=torch.bool)
    gqa = module("GroupedQueryAttention", 16, 4, 2, seed=seed)
    return [
        Case("4 query heads sharing 2 KV heads, no cache", forward(gqa, x)),
        Case("MQA (one KV head)", forward(module("GroupedQueryAttention", 16, 4, 1, seed=seed), x)),
        Case("bias=True", forward(module("GroupedQueryAttention", 16, 4, 2, True, seed=seed), x)),
        Case("an explicit (n, n) mask", forward(gqa, x, mask=mask)),
        Case("an explicit (batch, n, n) mask", forward(gqa, x, mask=per_sequence)),
        Case(f"new tokens after a KV cache of {past} earlier tokens", forward(gqa, x[:, :2], kv_cache=cache)),
        Case(
            "decoding one token at a time with the cache (it must equal the full causal forward)",
            decode_steps(module("GroupedQueryAttention", 16, 8, 2, True, seed=seed), x),
        ),
    ]


GQA_MISTAKES = [
    Mistake(
        "gqa-tiled-heads", "GroupedQueryAttention.forward",
        "query head h must read key/value head h // n_rep (consecutive query heads share a KV head); your "
        "forward tiles the KV heads instead of interleaving them.",
        replace=(
            ("rows = q.reshape(batch, self.n_kv_heads, self.n_rep * n_new, self.head_dim)",
             "rows = q.view(batch, self.n_rep, self.n_kv_heads, n_new, self.head_dim).transpose(1, 2)\n"
             "        rows = rows.reshape(batch, self.n_kv_heads, self.n_rep * n_new, self.head_dim)"),
            ("out = out.view(batch, self.n_heads, n_new, self.head_dim)",
             "out = out.view(batch, self.n_kv_heads, self.n_rep, n_new, self.head_dim).transpose(1, 2)\n"
             "        out = out.reshape(batch, self.n_heads, n_new, self.head_dim)"),
        ),
    ),
    Mistake(
        "gqa-cache-ignored", "GroupedQueryAttention.forward",
        "with a kv_cache, attend over the cached keys/values plus the new ones (concatenate them along the "
        "sequence axis) and return the longer cache.",
        replace=(
            ("        if kv_cache is not None:\n"
             "            k = torch.cat([kv_cache[0], k], dim=-2)  # (batch, n_kv_heads, n_past + n_new, head_dim)\n"
             "            v = torch.cat([kv_cache[1], v], dim=-2)\n", ""),
        ),
    ),
    Mistake(
        "gqa-causal-top-left", "GroupedQueryAttention.forward",
        "with a cache, the causal mask must be aligned to the bottom-right: new token i sees every cached "
        "token and the new tokens up to itself (keys j <= i + n_past).",
        replace=((".tril(n_total - n_new)", ".tril()"),),
    ),
    Mistake(
        "gqa-cache-repeated", "GroupedQueryAttention.forward",
        "store the cache with n_kv_heads heads, before repeat_kv: keeping only the shared heads is exactly "
        "the memory GQA saves.",
        rewrite='''
        def forward(self, x, mask=None, kv_cache=None):
            q = split_heads(self.q_proj(x), self.n_heads)
            k = repeat_kv(split_heads(self.k_proj(x), self.n_kv_heads), self.n_rep)
            v = repeat_kv(split_heads(self.v_proj(x), self.n_kv_heads), self.n_rep)
            if kv_cache is not None:
                k, v = torch.cat([kv_cache[0], k], dim=-2), torch.cat([kv_cache[1], v], dim=-2)
            n_new, n_total = q.shape[-2], k.shape[-2]
            if mask is None:
                mask = torch.ones(n_new, n_total, dtype=torch.bool).tril(diagonal=n_total - n_new)
            mask = mask.unsqueeze(1) if mask.ndim == 3 else mask
            scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)
            weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1).nan_to_num(0.0)
            return self.out_proj(merge_heads(weights @ v)), (k, v)
        ''',
    ),
    Mistake(
        "gqa-bias-ignored", "GroupedQueryAttention.__init__",
        "with bias=True every projection has a bias: pass the `bias` argument on to each nn.Linear (yours "
        "builds them without biases whatever `bias` says).",
        replace=tuple(
            (f"self.{p}_proj = nn.Linear({a}, bias=bias)", f"self.{p}_proj = nn.Linear({a}, bias=False)")
            for p, a in (("q", "d_model, n_heads * self.head_dim"), ("k", "d_model, n_kv_heads * self.head_dim"),
                         ("v", "d_model, n_kv_heads * self.head_dim"), ("out", "n_heads * self.head_dim, d_model"))
        ),
    ),
    Mistake(
        "gqa-mask-combined", "GroupedQueryAttention.forward",
        "an explicit mask replaces the causal default, it is not combined with it: use `mask` as given, "
        "and build the causal mask only when mask is None.",
        replace=(("if mask is None:  # causal", "if True:  # causal"),
                 ("mask = torch.ones(n_new, n_total, dtype=torch.bool, device=x.device).tril(n_total - n_new)",
                  "mask = torch.ones(n_new, n_total, dtype=torch.bool, device=x.device).tril(n_total - n_new) & "
                  "(True if mask is None else mask)")),
    ),
]

# ---- kv_cache_bytes ----------------------------------------------------------------------------------


def kv_cache_bytes_cases(rng: np.random.Generator) -> list[Case]:
    b, n, layers, kv, hd = (int(v) for v in rng.integers([1, 64, 2, 1, 16], [9, 8192, 96, 33, 257]))
    return [
        Case("a Llama-2-7B-like configuration (32 layers, 32 KV heads)", call(1, 4096, 32, 32, 128)),
        Case("a Llama-2-70B-like configuration (80 layers, 8 KV heads)", call(8, 4096, 80, 8, 128)),
        Case("4 bytes per element", call(b, n, layers, kv, hd, bytes_per_elem=4)),
        Case("bytes_per_elem=1", call(b + 2, n + 7, layers, 1, 64, 1)),
    ]


KVBYTES_MISTAKES = [
    Mistake(
        "kvbytes-no-values", "kv_cache_bytes",
        "the cache stores keys AND values: count a factor 2.",
        replace=(("return 2 * ", "return "),),
    ),
    Mistake(
        "kvbytes-no-layers", "kv_cache_bytes",
        "every layer has its own cache: multiply by n_layers.",
        replace=(("* n_layers ", ""),),
    ),
    Mistake(
        "kvbytes-bits", "kv_cache_bytes",
        "the result is in bytes: multiply the number of elements by bytes_per_elem (not by 8 * bytes_per_elem bits).",
        replace=(("* bytes_per_elem", "* bytes_per_elem * 8"),),
    ),
]

# ---- mha_to_gqa --------------------------------------------------------------------------------------


def mha_to_gqa_cases(rng: np.random.Generator) -> list[Case]:
    """Several group sizes, with and without biases, MQA, and a float64 checkpoint (its GQA stays float64)."""
    from grader.engine.probe import ModuleSpec

    cases = []
    for what, (d, h, bias), kv in [
        ("4 heads into 2 groups, with biases", (16, 4, True), 2),
        ("6 heads into 3 groups, without biases", (12, 6, False), 3),
        ("MQA: all 4 heads into 1 group", (8, 4, True), 1),
        ("8 heads into 2 groups", (16, 8, False), 2),
    ]:
        seed = int(rng.integers(2**31))
        cases.append(Case(what, convert(module("MultiHeadAttention", d, h, bias, seed=seed), kv)))
    mha = module("MultiHeadAttention", 12, 6, True, seed=int(rng.integers(2**31)))
    double = ModuleSpec(mha.cls, mha.init, {k: v.double() for k, v in mha.state.items()})
    cases.append(Case("a float64 checkpoint, 6 heads into 2 groups", convert(double, 2)))
    return cases


_POOL = "t.reshape(n_kv_heads, n_rep, head_dim, *t.shape[1:]).mean(dim=1)"
CONVERT_MISTAKES = [
    Mistake(
        "mha2gqa-sum", "mha_to_gqa",
        "average (mean-pool) the key/value heads of a group; summing them makes the keys and values n_rep "
        "times too large.",
        replace=((".mean(dim=1)", ".sum(dim=1)"),),
    ),
    Mistake(
        "mha2gqa-strided-groups", "mha_to_gqa",
        "group g must hold the consecutive query heads g * n_rep ... (g + 1) * n_rep - 1 (the heads that "
        "read KV head g); yours pools heads g, g + n_kv_heads, g + 2 * n_kv_heads, ... (a strided grouping).",
        replace=((_POOL, "t.reshape(n_rep, n_kv_heads, head_dim, *t.shape[1:]).mean(dim=0)"),),
    ),
    Mistake(
        "mha2gqa-first-head", "mha_to_gqa",
        "mean-pool all the key/value heads of a group; keeping only the first head of each group throws "
        "the others away.",
        replace=((".mean(dim=1)", "[:, 0]"),),
    ),
    Mistake(
        "mha2gqa-pooled-queries", "mha_to_gqa",
        "only the key and value projections are pooled; copy q_proj (and out_proj) unchanged: GQA keeps "
        "every query head.",
        replace=(
            ('for name in ("q_proj", "out_proj"):\n'
             '            getattr(gqa, name).load_state_dict(getattr(mha, name).state_dict())',
             'gqa.out_proj.load_state_dict(mha.out_proj.state_dict())\n'
             '        for src, dst in zip(mha.q_proj.parameters(), gqa.q_proj.parameters()):\n'
             '            pooled = pool(src).reshape(n_kv_heads, 1, head_dim, *src.shape[1:])\n'
             '            dst.copy_(pooled.expand(n_kv_heads, n_rep, head_dim, *src.shape[1:]).reshape(src.shape))'),
        ),
    ),
]

SPECS = {
    "repeat_kv": Spec(repeat_kv_cases),
    "GroupedQueryAttention": Spec(gqa_cases, items=("output", "new_kv_cache")),
    "kv_cache_bytes": Spec(kv_cache_bytes_cases),
    "mha_to_gqa": Spec(mha_to_gqa_cases),
}
MISTAKES = REPEAT_MISTAKES + GQA_MISTAKES + KVBYTES_MISTAKES + CONVERT_MISTAKES

#: Mutants of the references (``scripts/mutation_score.py``) that no hidden case can tell from them, and why.
_UNREAD = "forward never reads self.d_model (it is kept for the reader)"
_SQUARE = "n_heads * head_dim == d_model whenever n_heads divides d_model (the contract): the layer is square"
_ORDER = "the loop's two iterations are independent, so their order does not matter"
EQUIVALENT_MUTANTS = {
    "GroupedQueryAttention.__init__:name-swap@L11:d_model->n_heads": _UNREAD,
    "GroupedQueryAttention.__init__:name-swap@L11:d_model->n_kv_heads": _UNREAD,
    "GroupedQueryAttention.__init__:name-swap@L11:d_model->bias": _UNREAD,
    "GroupedQueryAttention.__init__:args-swapped@L14:Linear(d_model<->n_heads * sel...)": _SQUARE,
    "GroupedQueryAttention.__init__:args-swapped@L17:Linear(n_heads * sel...<->d_model)": _SQUARE,
    "GroupedQueryAttention.forward:inf@L52:torch.finfo(scores.dtype).min->-1e+09":
        "a blocked score of -1e9 gets weight exp(-1e9 - max) = 0 as the most negative float does, and a fully "
        "blocked row is zeroed by `* mask` either way",
    "mha_to_gqa:elements-swapped@L18:'q_proj'<->'out_proj'": _ORDER,
    "mha_to_gqa:elements-swapped@L20:'k_proj'<->'v_proj'": _ORDER,
    "mha_to_gqa:name-swap@L23:src->dst": "the GQA is built with biases exactly when the MHA has them",
}
