"""Held-out class, exercise 4 (ch4-multihead): split_heads, merge_heads, MultiHeadAttention."""

from __future__ import annotations

from . import Variant, edit

# A correct module written with einsum, the most negative finite number instead of -inf and an explicit
# zeroing of fully blocked rows; several wrong variants below are one small change to it.
MHA_EINSUM = '''
class MultiHeadAttention(nn.Module):
    def __init__(self, d_model, n_heads, bias=True):
        super().__init__()
        assert d_model % n_heads == 0
        self.d_model, self.n_heads, self.head_dim = d_model, n_heads, d_model // n_heads
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.k_proj = nn.Linear(d_model, d_model, bias=bias)
        self.v_proj = nn.Linear(d_model, d_model, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)

    def forward(self, query, key, value, mask=None):
        b, n_q, _ = query.shape
        n_k = key.shape[1]
        H, hd = self.n_heads, self.head_dim
        q = self.q_proj(query).view(b, n_q, H, hd)
        k = self.k_proj(key).view(b, n_k, H, hd)
        v = self.v_proj(value).view(b, n_k, H, hd)
        scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(hd)
        if mask is not None:
            if mask.dim() == 3:
                mask = mask.unsqueeze(1)
            scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        weights = torch.softmax(scores, dim=-1)
        if mask is not None:
            weights = weights.masked_fill(~mask.any(dim=-1, keepdim=True), 0.0)
        out = torch.einsum("bhqk,bkhd->bqhd", weights, v).reshape(b, n_q, H * hd)
        return self.out_proj(out), weights
'''

VARIANTS = [
    # ---------------------------------------------------------------- split_heads
    Variant(
        function="split_heads", kind="correct", name="split_heads/chunk-stack",
        source='''
def split_heads(x, n_heads):
    return torch.stack(x.chunk(n_heads, dim=-1), dim=1)
''',
    ),
    Variant(
        function="split_heads", kind="correct", name="split_heads/unflatten-permute",
        source='''
def split_heads(x, n_heads):
    return x.unflatten(-1, (n_heads, -1)).permute(0, 2, 1, 3)
''',
    ),
    Variant(
        function="split_heads", kind="wrong", name="split_heads/reshape-no-transpose",
        misconception="Reshapes straight to (batch, n_heads, seq, head_dim) without moving the heads axis, "
        "mixing tokens into heads.",
        keywords=("transpose", "permute", "reshape", "heads axis", "token"),
        source='''
def split_heads(x, n_heads):
    b, s, d = x.shape
    return x.reshape(b, n_heads, s, d // n_heads)
''',
    ),
    Variant(
        function="split_heads", kind="wrong", name="split_heads/strided-heads",
        misconception="Splits the features as (head_dim, n_heads), so head h gets features h, h + n_heads, ... "
        "instead of a consecutive block.",
        keywords=("consecutive", "features", "order", "h * head_dim", "block"),
        source='''
def split_heads(x, n_heads):
    b, s, d = x.shape
    return x.view(b, s, d // n_heads, n_heads).permute(0, 3, 1, 2)
''',
    ),
    Variant(
        function="split_heads", kind="wrong", name="split_heads/heads-first",
        misconception="Permutes the heads axis to the front, returning (n_heads, batch, seq, head_dim).",
        keywords=("shape", "batch", "(batch, n_heads"),
        source='''
def split_heads(x, n_heads):
    b, s, d = x.shape
    return x.view(b, s, n_heads, d // n_heads).permute(2, 0, 1, 3)
''',
    ),
    # ---------------------------------------------------------------- merge_heads
    Variant(
        function="merge_heads", kind="correct", name="merge_heads/unbind-cat",
        source='''
def merge_heads(x):
    return torch.cat(x.unbind(dim=1), dim=-1)
''',
    ),
    Variant(
        function="merge_heads", kind="correct", name="merge_heads/permute-flatten",
        source='''
def merge_heads(x):
    return x.permute(0, 2, 1, 3).flatten(start_dim=2)
''',
    ),
    Variant(
        function="merge_heads", kind="wrong", name="merge_heads/reshape-no-transpose",
        misconception="Reshapes (batch, n_heads, seq, head_dim) straight to (batch, seq, d_model) without moving "
        "the heads axis back behind the sequence axis.",
        keywords=("transpose", "permute", "reshape", "heads axis"),
        source='''
def merge_heads(x):
    b, h, s, hd = x.shape
    return x.reshape(b, s, h * hd)
''',
    ),
    Variant(
        function="merge_heads", kind="wrong", name="merge_heads/interleaved",
        misconception="Moves head_dim before the heads axis before flattening, so the heads' features end up "
        "interleaved instead of concatenated.",
        keywords=("order", "consecutive", "concatenat", "interleav"),
        source='''
def merge_heads(x):
    b, h, s, hd = x.shape
    return x.permute(0, 2, 3, 1).reshape(b, s, h * hd)
''',
    ),
    Variant(
        function="merge_heads", kind="wrong", name="merge_heads/view-after-transpose",
        misconception="Calls .view on the transposed (non-contiguous) tensor, which raises a RuntimeError.",
        keywords=("contiguous", "view", "reshape"),
        source='''
def merge_heads(x):
    b, h, s, hd = x.shape
    return x.transpose(1, 2).view(b, s, h * hd)
''',
    ),
    # ---------------------------------------------------------------- MultiHeadAttention
    Variant(function="MultiHeadAttention", kind="correct", name="MultiHeadAttention/einsum-finfo-min",
            source=MHA_EINSUM),
    Variant(
        function="MultiHeadAttention", kind="correct", name="MultiHeadAttention/head-loop-nan_to_num",
        source='''
class MultiHeadAttention(nn.Module):
    def __init__(self, d_model, n_heads, bias=True):
        super().__init__()
        self.d_model, self.n_heads = d_model, n_heads
        self.head_dim = d_model // n_heads
        for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
            setattr(self, name, nn.Linear(d_model, d_model, bias=bias))

    def forward(self, query, key, value, mask=None):
        q, k, v = self.q_proj(query), self.k_proj(key), self.v_proj(value)
        hd = self.head_dim
        if mask is not None and mask.dim() == 3:
            mask = mask.unsqueeze(1)
        outputs, weights = [], []
        for h in range(self.n_heads):
            cols = slice(h * hd, (h + 1) * hd)
            s = q[..., cols] @ k[..., cols].transpose(-2, -1) / hd**0.5
            if mask is not None:
                m = mask if mask.dim() == 2 else mask[:, h if mask.shape[1] > 1 else 0]
                s = s.masked_fill(~m, float("-inf"))
            w = torch.nan_to_num(torch.softmax(s, dim=-1), nan=0.0)
            outputs.append(w @ v[..., cols])
            weights.append(w)
        return self.out_proj(torch.cat(outputs, dim=-1)), torch.stack(weights, dim=1)
''',
    ),
    Variant(
        function="MultiHeadAttention", kind="correct", name="MultiHeadAttention/split_heads-where",
        source='''
class MultiHeadAttention(nn.Module):
    def __init__(self, d_model, n_heads, bias=True):
        super().__init__()
        self.d_model = d_model
        self.n_heads = n_heads
        self.head_dim = d_model // n_heads
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (
            nn.Linear(d_model, d_model, bias=bias) for _ in range(4))

    def forward(self, query, key, value, mask=None):
        q = split_heads(self.q_proj(query), self.n_heads)
        k = split_heads(self.k_proj(key), self.n_heads)
        v = split_heads(self.v_proj(value), self.n_heads)
        scores = torch.matmul(q, k.transpose(-1, -2)) / self.head_dim**0.5
        if mask is not None:
            if mask.ndim == 3:
                mask = mask[:, None, :, :]
            scores = torch.where(mask, scores, torch.tensor(float("-inf"), dtype=scores.dtype))
        weights = torch.softmax(scores, dim=-1)
        weights = torch.where(torch.isnan(weights), torch.zeros_like(weights), weights)
        return self.out_proj(merge_heads(weights @ v)), weights
''',
    ),
    Variant(
        function="MultiHeadAttention", kind="wrong", name="MultiHeadAttention/sqrt-d_model",
        misconception="Scales the scores by 1/sqrt(d_model) instead of 1/sqrt(head_dim).",
        keywords=("head_dim", "sqrt", "d_model", "scale"),
        source=edit(MHA_EINSUM, ("/ math.sqrt(hd)", "/ math.sqrt(self.d_model)")),
    ),
    Variant(
        function="MultiHeadAttention", kind="wrong", name="MultiHeadAttention/ignores-bias-flag",
        misconception="Always builds the projections with a bias, ignoring bias=False.",
        keywords=("bias",),
        source=edit(MHA_EINSUM, ("def __init__(self, d_model, n_heads, bias=True):\n        super().__init__()",
                                 "def __init__(self, d_model, n_heads, bias=True):\n        super().__init__()\n"
                                 "        bias = True")),
    ),
    Variant(
        function="MultiHeadAttention", kind="wrong", name="MultiHeadAttention/torch-mask-convention",
        misconception="Uses torch.nn.MultiheadAttention's convention (True = blocked) for the mask, the opposite "
        "of the course's.",
        keywords=("true", "may attend", "invert", "opposite"),
        source=edit(MHA_EINSUM,
                    ("scores.masked_fill(~mask, torch.finfo", "scores.masked_fill(mask, torch.finfo"),
                    ("weights.masked_fill(~mask.any(", "weights.masked_fill(mask.all(")),
    ),
    Variant(
        function="MultiHeadAttention", kind="wrong", name="MultiHeadAttention/softmax-over-queries",
        misconception="Takes the softmax over the queries axis (dim=-2) instead of over the keys.",
        keywords=("dim", "keys", "axis", "sum to 1"),
        source=edit(MHA_EINSUM, ("torch.softmax(scores, dim=-1)", "torch.softmax(scores, dim=-2)")),
    ),
    Variant(
        function="MultiHeadAttention", kind="wrong", name="MultiHeadAttention/self-attention-only",
        misconception="Projects keys and values from the query argument (self-attention only), ignoring key and "
        "value, wrong for cross-attention.",
        keywords=("key", "value", "cross"),
        source=edit(MHA_EINSUM,
                    ("n_k = key.shape[1]", "n_k = n_q"),
                    ("self.k_proj(key)", "self.k_proj(query)"),
                    ("self.v_proj(value)", "self.v_proj(query)")),
    ),
    Variant(
        function="MultiHeadAttention", kind="wrong", name="MultiHeadAttention/no-out_proj",
        misconception="Forgets the output projection: returns the merged heads without applying out_proj.",
        keywords=("out_proj", "output projection"),
        source=edit(MHA_EINSUM, ("return self.out_proj(out), weights", "return out, weights")),
    ),
    Variant(
        function="MultiHeadAttention", kind="wrong", name="MultiHeadAttention/averaged-weights",
        misconception="Returns the weights averaged over the heads, (batch, n_q, n_k), as torch does by default, "
        "instead of every head's weights.",
        keywords=("head", "average", "shape", "n_heads"),
        source=edit(MHA_EINSUM, ("return self.out_proj(out), weights",
                                 "return self.out_proj(out), weights.mean(dim=1)")),
    ),
    Variant(
        function="MultiHeadAttention", kind="wrong", name="MultiHeadAttention/3d-mask-unsqueeze-0",
        misconception="Gives a (batch, n_q, n_k) mask its heads axis in front (unsqueeze(0)) instead of at "
        "dim 1, so the batch axis lines up with the heads.",
        keywords=("unsqueeze", "heads axis", "batch", "mask"),
        source=edit(MHA_EINSUM, ("mask = mask.unsqueeze(1)", "mask = mask.unsqueeze(0)")),
    ),
]
