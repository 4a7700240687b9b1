"""Held-out class, exercise 5 (ch5-gqa): repeat_kv, GroupedQueryAttention, kv_cache_bytes, mha_to_gqa.

The exercise-4 helpers in the notebook (split_heads, merge_heads, MultiHeadAttention) are the grader's
correct copies, and so are the other graded functions of this notebook, so a variant may call them.
"""

from __future__ import annotations

from . import Variant, edit

# A correct module with its own interleaved repeat (expand), -1e30 instead of -inf and an explicit
# zeroing of fully blocked rows; most wrong variants below are one small change to it.
GQA_EXPAND = '''
class GroupedQueryAttention(nn.Module):
    def __init__(self, d_model, n_heads, n_kv_heads, bias=False):
        super().__init__()
        assert d_model % n_heads == 0 and n_heads % n_kv_heads == 0
        self.d_model, self.n_heads, self.n_kv_heads = d_model, n_heads, n_kv_heads
        self.head_dim = d_model // n_heads
        self.n_rep = n_heads // n_kv_heads
        self.q_proj = nn.Linear(d_model, n_heads * self.head_dim, bias=bias)
        self.k_proj = nn.Linear(d_model, n_kv_heads * self.head_dim, bias=bias)
        self.v_proj = nn.Linear(d_model, n_kv_heads * self.head_dim, bias=bias)
        self.out_proj = nn.Linear(n_heads * self.head_dim, d_model, bias=bias)

    def forward(self, x, mask=None, kv_cache=None):
        b, n_new, _ = x.shape
        hd = self.head_dim
        q = self.q_proj(x).view(b, n_new, self.n_heads, hd).transpose(1, 2)
        k = self.k_proj(x).view(b, n_new, self.n_kv_heads, hd).transpose(1, 2)
        v = self.v_proj(x).view(b, n_new, self.n_kv_heads, hd).transpose(1, 2)
        if kv_cache is not None:
            k = torch.cat([kv_cache[0], k], dim=2)
            v = torch.cat([kv_cache[1], v], dim=2)
        n_total = k.shape[2]
        causal = torch.ones(n_new, n_total, dtype=torch.bool, device=x.device).tril(diagonal=n_total - n_new)
        if mask is None:
            mask = causal
        elif mask.dim() == 3:
            mask = mask.unsqueeze(1)

        def repeat(t):
            repeated = t[:, :, None].expand(b, self.n_kv_heads, self.n_rep, n_total, hd)
            return repeated.reshape(b, self.n_heads, n_total, hd)

        k_all, v_all = repeat(k), repeat(v)
        scores = q @ k_all.transpose(-2, -1) / math.sqrt(hd)
        scores = scores.masked_fill(~mask, -1e30)
        weights = torch.softmax(scores, dim=-1).masked_fill(~mask.any(dim=-1, keepdim=True), 0.0)
        out = (weights @ v_all).transpose(1, 2).reshape(b, n_new, self.n_heads * hd)
        return self.out_proj(out), (k, v)
'''

# A correct conversion by reshaping the heads into groups and averaging; wrong variants edit it.
MHA_TO_GQA_VIEW = '''
def mha_to_gqa(mha, n_kv_heads):
    d_model, n_heads, hd = mha.d_model, mha.n_heads, mha.head_dim
    n_rep = n_heads // n_kv_heads
    bias = mha.k_proj.bias is not None
    gqa = GroupedQueryAttention(d_model, n_heads, n_kv_heads, bias=bias).to(mha.q_proj.weight.dtype)

    def pool(t):
        grouped = t.reshape(n_kv_heads, n_rep, hd, *t.shape[1:])
        return grouped.mean(dim=1).reshape(n_kv_heads * hd, *t.shape[1:])

    with torch.no_grad():
        gqa.q_proj.weight.copy_(mha.q_proj.weight)
        gqa.out_proj.weight.copy_(mha.out_proj.weight)
        if bias:
            gqa.q_proj.bias.copy_(mha.q_proj.bias)
            gqa.out_proj.bias.copy_(mha.out_proj.bias)
        for name in ("k_proj", "v_proj"):
            src, dst = getattr(mha, name), getattr(gqa, name)
            dst.weight.copy_(pool(src.weight))
            if bias:
                dst.bias.copy_(pool(src.bias))
    return gqa
'''

VARIANTS = [
    # ---------------------------------------------------------------- repeat_kv
    Variant(
        function="repeat_kv", kind="correct", name="repeat_kv/expand-reshape",
        source='''
def repeat_kv(x, n_rep):
    b, h, s, d = x.shape
    return x[:, :, None, :, :].expand(b, h, n_rep, s, d).reshape(b, h * n_rep, s, d)
''',
    ),
    Variant(
        function="repeat_kv", kind="correct", name="repeat_kv/index-h-div-n_rep",
        source='''
def repeat_kv(x, n_rep):
    index = torch.arange(x.shape[1] * n_rep, device=x.device) // n_rep
    return x[:, index]
''',
    ),
    Variant(
        function="repeat_kv", kind="wrong", name="repeat_kv/tile",
        misconception="Tiles the whole set of KV heads (x.repeat) instead of repeating each head n_rep times in "
        "a row, so query head h reads KV head h % n_kv_heads.",
        keywords=("interleav", "tile", "h // n_rep", "in a row"),
        source='''
def repeat_kv(x, n_rep):
    return x.repeat(1, n_rep, 1, 1)
''',
    ),
    Variant(
        function="repeat_kv", kind="wrong", name="repeat_kv/cat-copies",
        misconception="Concatenates n_rep copies of all the heads (tiling) instead of interleaving.",
        keywords=("interleav", "tile", "h // n_rep", "in a row"),
        source='''
def repeat_kv(x, n_rep):
    return torch.cat([x for _ in range(n_rep)], dim=1)
''',
    ),
    Variant(
        function="repeat_kv", kind="wrong", name="repeat_kv/sequence-axis",
        misconception="Repeats along the sequence axis (dim 2) instead of the heads axis.",
        keywords=("dim 1", "heads axis", "shape", "dim=1"),
        source='''
def repeat_kv(x, n_rep):
    return torch.repeat_interleave(x, n_rep, dim=2)
''',
    ),
    # ---------------------------------------------------------------- GroupedQueryAttention
    Variant(function="GroupedQueryAttention", kind="correct", name="GroupedQueryAttention/expand-minus-1e30",
            source=GQA_EXPAND),
    Variant(
        function="GroupedQueryAttention", kind="correct", name="GroupedQueryAttention/repeat_kv-where-nan_to_num",
        source='''
class GroupedQueryAttention(nn.Module):
    def __init__(self, d_model, n_heads, n_kv_heads, bias=False):
        super().__init__()
        self.d_model, self.n_heads, self.n_kv_heads = d_model, n_heads, n_kv_heads
        self.head_dim = d_model // n_heads
        kv_width = n_kv_heads * self.head_dim
        self.q_proj = nn.Linear(d_model, n_heads * self.head_dim, bias=bias)
        self.k_proj = nn.Linear(d_model, kv_width, bias=bias)
        self.v_proj = nn.Linear(d_model, kv_width, bias=bias)
        self.out_proj = nn.Linear(n_heads * self.head_dim, d_model, bias=bias)

    def forward(self, x, mask=None, kv_cache=None):
        n = x.shape[1]
        q = split_heads(self.q_proj(x), self.n_heads)
        k = split_heads(self.k_proj(x), self.n_kv_heads)
        v = split_heads(self.v_proj(x), self.n_kv_heads)
        if kv_cache is not None:
            past_k, past_v = kv_cache
            k, v = torch.cat((past_k, k), dim=-2), torch.cat((past_v, v), dim=-2)
        n_past = k.shape[-2] - n
        if mask is None:
            i = torch.arange(n, device=x.device)[:, None]
            j = torch.arange(k.shape[-2], device=x.device)[None, :]
            mask = j <= i + n_past
        elif mask.dim() == 3:
            mask = mask[:, None]
        n_rep = self.n_heads // self.n_kv_heads
        scores = q @ repeat_kv(k, n_rep).transpose(-1, -2) * self.head_dim**-0.5
        scores = torch.where(mask, scores, float("-inf"))
        weights = torch.nan_to_num(torch.softmax(scores, dim=-1), nan=0.0)
        return self.out_proj(merge_heads(weights @ repeat_kv(v, n_rep))), (k, v)
''',
    ),
    Variant(
        function="GroupedQueryAttention", kind="correct", name="GroupedQueryAttention/repeat_interleave-triu",
        source='''
class GroupedQueryAttention(nn.Module):
    def __init__(self, d_model, n_heads, n_kv_heads, bias=False):
        super().__init__()
        self.n_heads, self.n_kv_heads = n_heads, n_kv_heads
        self.head_dim = d_model // n_heads
        self.d_model = d_model
        self.q_proj = nn.Linear(d_model, self.head_dim * n_heads, bias=bias)
        self.k_proj = nn.Linear(d_model, self.head_dim * n_kv_heads, bias=bias)
        self.v_proj = nn.Linear(d_model, self.head_dim * n_kv_heads, bias=bias)
        self.out_proj = nn.Linear(self.head_dim * n_heads, d_model, bias=bias)

    def forward(self, x, mask=None, kv_cache=None):
        batch, n_new, _ = x.shape
        q = self.q_proj(x).reshape(batch, n_new, self.n_heads, self.head_dim).permute(0, 2, 1, 3)
        k = self.k_proj(x).reshape(batch, n_new, self.n_kv_heads, self.head_dim).permute(0, 2, 1, 3)
        v = self.v_proj(x).reshape(batch, n_new, self.n_kv_heads, self.head_dim).permute(0, 2, 1, 3)
        if kv_cache is not None:
            k = torch.cat((kv_cache[0], k), dim=2)
            v = torch.cat((kv_cache[1], v), dim=2)
        n_past = k.shape[2] - n_new
        if mask is None:
            future = torch.triu(torch.ones(n_new, n_new + n_past, dtype=torch.bool, device=x.device),
                                diagonal=n_past + 1)
            mask = ~future
        if mask.dim() == 3:
            mask = mask.unsqueeze(1)
        rep = self.n_heads // self.n_kv_heads
        k_rep = k.repeat_interleave(rep, dim=1)
        v_rep = v.repeat_interleave(rep, dim=1)
        scores = torch.einsum("bhqd,bhkd->bhqk", q, k_rep) / math.sqrt(self.head_dim)
        scores = scores.masked_fill(mask.logical_not(), -torch.inf)
        weights = torch.softmax(scores, dim=-1)
        weights = weights.masked_fill(mask.logical_not().all(dim=-1, keepdim=True), 0.0)
        out = torch.einsum("bhqk,bhkd->bqhd", weights, v_rep).reshape(batch, n_new, -1)
        return self.out_proj(out), (k, v)
''',
    ),
    Variant(
        function="GroupedQueryAttention", kind="wrong", name="GroupedQueryAttention/top-left-causal",
        misconception="Aligns the causal mask to the top-left (tril with no offset), so with a cache the new "
        "tokens do not see all the cached ones.",
        keywords=("bottom-right", "bottom right", "lower-right", "align", "cache"),
        source=edit(GQA_EXPAND, (".tril(diagonal=n_total - n_new)", ".tril()")),
    ),
    Variant(
        function="GroupedQueryAttention", kind="wrong", name="GroupedQueryAttention/caches-repeated-heads",
        misconception="Returns the repeated keys and values (n_heads heads) as the new cache instead of the "
        "n_kv_heads heads, losing the memory saving.",
        keywords=("n_kv_heads", "cache", "repeat"),
        source=edit(GQA_EXPAND, ("return self.out_proj(out), (k, v)", "return self.out_proj(out), (k_all, v_all)")),
    ),
    Variant(
        function="GroupedQueryAttention", kind="wrong", name="GroupedQueryAttention/mask-and-causal",
        misconception="Combines an explicit mask with the causal default (AND) instead of letting it replace it.",
        keywords=("replace", "explicit", "causal", "combine"),
        source=edit(GQA_EXPAND, (
            "        elif mask.dim() == 3:\n            mask = mask.unsqueeze(1)\n",
            "        else:\n            mask = (mask.unsqueeze(1) if mask.dim() == 3 else mask) & causal\n",
        )),
    ),
    Variant(
        function="GroupedQueryAttention", kind="wrong", name="GroupedQueryAttention/ignores-cache",
        misconception="Never uses kv_cache: the new tokens attend only each other, and the returned cache "
        "holds only them.",
        keywords=("cache", "kv_cache", "cached"),
        source=edit(GQA_EXPAND, (
            "        if kv_cache is not None:\n            k = torch.cat([kv_cache[0], k], dim=2)\n"
            "            v = torch.cat([kv_cache[1], v], dim=2)\n", "",
        )),
    ),
    Variant(
        function="GroupedQueryAttention", kind="wrong", name="GroupedQueryAttention/returns-only-new-kv",
        misconception="Attends over the cache correctly but returns only the new tokens' keys and values as the "
        "new cache, instead of the cache with them appended.",
        keywords=("cache", "append", "n_past + n_new", "positions"),
        source=edit(GQA_EXPAND,
                    ("        if kv_cache is not None:\n",
                     "        new_cache = (k, v)\n        if kv_cache is not None:\n"),
                    ("return self.out_proj(out), (k, v)", "return self.out_proj(out), new_cache")),
    ),
    Variant(
        function="GroupedQueryAttention", kind="wrong", name="GroupedQueryAttention/tiled-repeat",
        misconception="Shares the KV heads by tiling (query head h reads KV head h % n_kv_heads) instead of "
        "h // n_rep.",
        keywords=("interleav", "tile", "h // n_rep", "group"),
        source=edit(GQA_EXPAND, ("t[:, :, None].expand(b, self.n_kv_heads, self.n_rep, n_total, hd)",
                                 "t[:, None].expand(b, self.n_rep, self.n_kv_heads, n_total, hd)")),
    ),
    Variant(
        function="GroupedQueryAttention", kind="wrong", name="GroupedQueryAttention/sqrt-d_model",
        misconception="Scales the scores by 1/sqrt(d_model) instead of 1/sqrt(head_dim).",
        keywords=("head_dim", "sqrt", "d_model", "scale"),
        source=edit(GQA_EXPAND, ("/ math.sqrt(hd)", "/ math.sqrt(self.d_model)")),
    ),
    Variant(
        function="GroupedQueryAttention", kind="wrong", name="GroupedQueryAttention/ignores-bias-flag",
        misconception="Hard-codes bias=False in the projections, ignoring the bias argument.",
        keywords=("bias",),
        source=edit(GQA_EXPAND, ("        self.n_rep = n_heads // n_kv_heads\n",
                                 "        self.n_rep = n_heads // n_kv_heads\n        bias = False\n")),
    ),
    Variant(
        function="GroupedQueryAttention", kind="wrong", name="GroupedQueryAttention/cache-appended-first",
        misconception="Puts the new keys and values BEFORE the cached ones when concatenating, so positions are "
        "out of order.",
        keywords=("order", "append", "after", "cache"),
        source=edit(GQA_EXPAND, ("k = torch.cat([kv_cache[0], k], dim=2)", "k = torch.cat([k, kv_cache[0]], dim=2)"),
                    ("v = torch.cat([kv_cache[1], v], dim=2)", "v = torch.cat([v, kv_cache[1]], dim=2)")),
    ),
    # ---------------------------------------------------------------- kv_cache_bytes
    Variant(
        function="kv_cache_bytes", kind="correct", name="kv_cache_bytes/math.prod",
        source='''
def kv_cache_bytes(batch, seq_len, n_layers, n_kv_heads, head_dim, bytes_per_elem=2):
    return math.prod((2, batch, seq_len, n_layers, n_kv_heads, head_dim, bytes_per_elem))
''',
    ),
    Variant(
        function="kv_cache_bytes", kind="correct", name="kv_cache_bytes/per-token-sum",
        source='''
def kv_cache_bytes(batch, seq_len, n_layers, n_kv_heads, head_dim, bytes_per_elem=2):
    per_token = 0
    for _layer in range(n_layers):
        per_token += 2 * n_kv_heads * head_dim * bytes_per_elem
    return int(per_token * seq_len * batch)
''',
    ),
    Variant(
        function="kv_cache_bytes", kind="wrong", name="kv_cache_bytes/keys-only",
        misconception="Counts only the keys, forgetting the factor 2 for keys AND values.",
        keywords=("2", "keys and values", "both", "values"),
        source='''
def kv_cache_bytes(batch, seq_len, n_layers, n_kv_heads, head_dim, bytes_per_elem=2):
    return batch * seq_len * n_layers * n_kv_heads * head_dim * bytes_per_elem
''',
    ),
    Variant(
        function="kv_cache_bytes", kind="wrong", name="kv_cache_bytes/fp16-hard-coded",
        misconception="Hard-codes 2 bytes per element, ignoring bytes_per_elem.",
        keywords=("bytes_per_elem",),
        source='''
def kv_cache_bytes(batch, seq_len, n_layers, n_kv_heads, head_dim, bytes_per_elem=2):
    return 2 * batch * seq_len * n_layers * n_kv_heads * head_dim * 2
''',
    ),
    Variant(
        function="kv_cache_bytes", kind="wrong", name="kv_cache_bytes/float-result",
        misconception="Returns a float (computed through a float factor) instead of an int.",
        keywords=("int", "float", "type"),
        source='''
def kv_cache_bytes(batch, seq_len, n_layers, n_kv_heads, head_dim, bytes_per_elem=2):
    return 2.0 * batch * seq_len * n_layers * n_kv_heads * head_dim * bytes_per_elem
''',
    ),
    Variant(
        function="kv_cache_bytes", kind="wrong", name="kv_cache_bytes/ignores-batch",
        misconception="Computes the cache of one sequence, forgetting to multiply by the batch size.",
        keywords=("batch",),
        source='''
def kv_cache_bytes(batch, seq_len, n_layers, n_kv_heads, head_dim, bytes_per_elem=2):
    return 2 * seq_len * n_layers * n_kv_heads * head_dim * bytes_per_elem
''',
    ),
    # ---------------------------------------------------------------- mha_to_gqa
    Variant(function="mha_to_gqa", kind="correct", name="mha_to_gqa/view-mean", source=MHA_TO_GQA_VIEW),
    Variant(
        function="mha_to_gqa", kind="correct", name="mha_to_gqa/group-loop",
        source='''
def mha_to_gqa(mha, n_kv_heads):
    d_model = mha.q_proj.weight.shape[1]
    n_heads = mha.n_heads
    hd = d_model // n_heads
    n_rep = n_heads // n_kv_heads
    has_bias = mha.q_proj.bias is not None
    weight = mha.q_proj.weight
    gqa = GroupedQueryAttention(d_model, n_heads, n_kv_heads, bias=has_bias)
    gqa = gqa.to(dtype=weight.dtype, device=weight.device)
    with torch.no_grad():
        for name in ("q_proj", "out_proj"):
            getattr(gqa, name).weight.copy_(getattr(mha, name).weight)
            if has_bias:
                getattr(gqa, name).bias.copy_(getattr(mha, name).bias)
        for name in ("k_proj", "v_proj"):
            src, dst = getattr(mha, name), getattr(gqa, name)
            for g in range(n_kv_heads):
                rows = slice(g * hd, (g + 1) * hd)
                heads = [slice(h * hd, (h + 1) * hd) for h in range(g * n_rep, (g + 1) * n_rep)]
                dst.weight[rows] = sum(src.weight[r] for r in heads) / n_rep
                if has_bias:
                    dst.bias[rows] = sum(src.bias[r] for r in heads) / n_rep
    return gqa
''',
    ),
    Variant(
        function="mha_to_gqa", kind="wrong", name="mha_to_gqa/first-head",
        misconception="Keeps the first head of each group instead of the mean of the group's heads.",
        keywords=("mean", "average", "pool"),
        source=edit(MHA_TO_GQA_VIEW, ("grouped.mean(dim=1)", "grouped[:, 0]")),
    ),
    Variant(
        function="mha_to_gqa", kind="wrong", name="mha_to_gqa/strided-groups",
        misconception="Groups heads g, g + n_kv_heads, g + 2 n_kv_heads, ... (strided) instead of the n_rep "
        "consecutive heads that read KV head g.",
        keywords=("group", "consecutive", "h // n_rep", "g * n_rep"),
        source=edit(MHA_TO_GQA_VIEW, ("t.reshape(n_kv_heads, n_rep, hd, *t.shape[1:])",
                                      "t.reshape(n_rep, n_kv_heads, hd, *t.shape[1:])"),
                    ("grouped.mean(dim=1)", "grouped.mean(dim=0)")),
    ),
    Variant(
        function="mha_to_gqa", kind="wrong", name="mha_to_gqa/forgets-bias-argument",
        misconception="Builds the GroupedQueryAttention with its default bias=False, so the MHA's biases have "
        "nowhere to go.",
        keywords=("bias",),
        source=edit(MHA_TO_GQA_VIEW, ("GroupedQueryAttention(d_model, n_heads, n_kv_heads, bias=bias)",
                                      "GroupedQueryAttention(d_model, n_heads, n_kv_heads)")),
    ),
    Variant(
        function="mha_to_gqa", kind="wrong", name="mha_to_gqa/sum-not-mean",
        misconception="Sums the heads of a group instead of averaging them.",
        keywords=("mean", "average", "sum"),
        source=edit(MHA_TO_GQA_VIEW, ("grouped.mean(dim=1)", "grouped.sum(dim=1)")),
    ),
    Variant(
        function="mha_to_gqa", kind="wrong", name="mha_to_gqa/out_proj-not-copied",
        misconception="Copies q_proj but forgets out_proj, leaving its random initialisation.",
        keywords=("out_proj", "copied", "copy"),
        source=edit(MHA_TO_GQA_VIEW, ("        gqa.out_proj.weight.copy_(mha.out_proj.weight)\n", ""),
                    ("            gqa.out_proj.bias.copy_(mha.out_proj.bias)\n", "")),
    ),
]
