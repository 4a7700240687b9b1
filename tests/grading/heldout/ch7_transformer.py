"""Held-out class, exercise 7 (ch7-transformer): DecoderLayer, greedy_decode.

The pasted helpers (sinusoidal_positions, split_heads, merge_heads, MultiHeadAttention,
GroupedQueryAttention) and the given EncoderLayer/TinyTransformer are the grader's correct copies.
"""

from __future__ import annotations

from . import Variant, edit

# A correct pre-norm decoder layer; most wrong variants below are one small change to it.
DECODER = '''
class DecoderLayer(nn.Module):
    def __init__(self, d_model, n_heads, n_kv_heads, d_ff):
        super().__init__()
        self.self_attn = GroupedQueryAttention(d_model, n_heads, n_kv_heads)
        self.cross_attn = MultiHeadAttention(d_model, n_heads)
        self.ff1 = nn.Linear(d_model, d_ff)
        self.ff2 = nn.Linear(d_ff, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)

    def forward(self, x, memory, memory_mask=None, kv_cache=None):
        h = self.norm1(x)
        attended, new_cache = self.self_attn(h, kv_cache=kv_cache)
        x = x + attended
        h2 = self.norm2(x)
        crossed, cross_weights = self.cross_attn(h2, memory, memory, mask=memory_mask)
        x = x + crossed
        x = x + self.ff2(torch.relu(self.ff1(self.norm3(x))))
        return x, new_cache, cross_weights
'''

# A correct greedy decoder that grows the prefix with torch.cat; most wrong variants edit it.
GREEDY = '''
def greedy_decode(model, src, bos_id, max_len, use_cache=True):
    memory, memory_mask = model.encode(src)
    tokens = torch.full((src.shape[0], 1), bos_id, dtype=torch.long, device=src.device)
    caches = None
    for _ in range(max_len):
        if use_cache:
            logits, caches = model.decode(tokens[:, -1:], memory, memory_mask, caches)
        else:
            logits, _ = model.decode(tokens, memory, memory_mask)
        next_token = logits[:, -1].argmax(dim=-1, keepdim=True)
        tokens = torch.cat([tokens, next_token], dim=1)
    return tokens[:, 1:]
'''

VARIANTS = [
    # ---------------------------------------------------------------- DecoderLayer
    Variant(function="DecoderLayer", kind="correct", name="DecoderLayer/pre-norm", source=DECODER),
    Variant(
        function="DecoderLayer", kind="correct", name="DecoderLayer/keywords-clamp",
        source='''
class DecoderLayer(nn.Module):
    def __init__(self, d_model, n_heads, n_kv_heads, d_ff):
        super().__init__()
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(d_model), nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.ff1, self.ff2 = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model)
        self.cross_attn = MultiHeadAttention(d_model, n_heads)
        self.self_attn = GroupedQueryAttention(d_model, n_heads, n_kv_heads)

    def forward(self, x, memory, memory_mask=None, kv_cache=None):
        residual = x
        out, cache = self.self_attn(self.norm1(residual), None, kv_cache)
        residual = residual + out
        out, weights = self.cross_attn(self.norm2(residual), key=memory, value=memory, mask=memory_mask)
        residual = residual + out
        hidden = self.ff1(self.norm3(residual)).clamp(min=0)
        return residual + self.ff2(hidden), cache, weights
''',
    ),
    Variant(
        function="DecoderLayer", kind="wrong", name="DecoderLayer/post-norm",
        misconception="Writes the original post-norm layer, x = norm(x + block(x)), instead of pre-norm "
        "x = x + block(norm(x)).",
        keywords=("pre-norm", "prenorm", "norm"),
        source=edit(DECODER, (
            "        h = self.norm1(x)\n"
            "        attended, new_cache = self.self_attn(h, kv_cache=kv_cache)\n"
            "        x = x + attended\n"
            "        h2 = self.norm2(x)\n"
            "        crossed, cross_weights = self.cross_attn(h2, memory, memory, mask=memory_mask)\n"
            "        x = x + crossed\n"
            "        x = x + self.ff2(torch.relu(self.ff1(self.norm3(x))))\n",
            "        attended, new_cache = self.self_attn(x, kv_cache=kv_cache)\n"
            "        x = self.norm1(x + attended)\n"
            "        crossed, cross_weights = self.cross_attn(x, memory, memory, mask=memory_mask)\n"
            "        x = self.norm2(x + crossed)\n"
            "        x = self.norm3(x + self.ff2(torch.relu(self.ff1(x))))\n",
        )),
    ),
    Variant(
        function="DecoderLayer", kind="wrong", name="DecoderLayer/no-memory_mask",
        misconception="Does not pass memory_mask to the cross-attention, so source padding is attended.",
        keywords=("memory_mask", "padding", "mask"),
        source=edit(DECODER, ("self.cross_attn(h2, memory, memory, mask=memory_mask)",
                              "self.cross_attn(h2, memory, memory)")),
    ),
    Variant(
        function="DecoderLayer", kind="wrong", name="DecoderLayer/drops-kv_cache",
        misconception="Never passes kv_cache to the self-attention, so a new token does not see the earlier ones.",
        keywords=("kv_cache", "cache"),
        source=edit(DECODER, ("self.self_attn(h, kv_cache=kv_cache)", "self.self_attn(h)")),
    ),
    Variant(
        function="DecoderLayer", kind="wrong", name="DecoderLayer/residual-from-normed",
        misconception="Adds the self-attention output to the normalised x (h + block(h)) instead of to x itself.",
        keywords=("residual", "norm"),
        source=edit(DECODER, ("x = x + attended", "x = h + attended")),
    ),
    Variant(
        function="DecoderLayer", kind="wrong", name="DecoderLayer/in-place-residual",
        misconception="Adds the first residual in place (x += ...), overwriting the caller's input tensor.",
        keywords=("in place", "in-place", "modif", "input"),
        source=edit(DECODER, ("x = x + attended", "x += attended")),
    ),
    Variant(
        function="DecoderLayer", kind="wrong", name="DecoderLayer/returns-old-cache",
        misconception="Returns the cache it was given instead of the new one from the self-attention.",
        keywords=("cache", "new"),
        source=edit(DECODER, ("return x, new_cache, cross_weights", "return x, kv_cache, cross_weights")),
    ),
    Variant(
        function="DecoderLayer", kind="wrong", name="DecoderLayer/normalises-memory",
        misconception="Also passes the encoder memory through norm2 before the cross-attention.",
        keywords=("memory", "norm"),
        source=edit(DECODER, ("self.cross_attn(h2, memory, memory, mask=memory_mask)",
                              "self.cross_attn(h2, self.norm2(memory), self.norm2(memory), mask=memory_mask)")),
    ),
    Variant(
        function="DecoderLayer", kind="wrong", name="DecoderLayer/gelu",
        misconception="Uses GELU in the feed-forward block (a modern habit) instead of the specified ReLU.",
        keywords=("relu", "gelu", "activation", "feed-forward"),
        source=edit(DECODER, ("torch.relu(self.ff1(", "torch.nn.functional.gelu(self.ff1(")),
    ),
    # ---------------------------------------------------------------- greedy_decode
    Variant(function="greedy_decode", kind="correct", name="greedy_decode/cat-prefix", source=GREEDY),
    Variant(
        function="greedy_decode", kind="correct", name="greedy_decode/preallocated-no_grad",
        source='''
def greedy_decode(model, src, bos_id, max_len, use_cache=True):
    batch = src.shape[0]
    generated = torch.empty(batch, max_len, dtype=torch.int64, device=src.device)
    with torch.no_grad():
        memory, memory_mask = model.encode(src)
        prefix = torch.full((batch, 1), bos_id, dtype=torch.int64, device=src.device)
        caches = None
        for t in range(max_len):
            if use_cache:
                logits, caches = model.decode(prefix[:, -1:], memory, memory_mask, kv_caches=caches)
            else:
                logits, _ = model.decode(prefix, memory, memory_mask)
            generated[:, t] = logits[:, -1, :].argmax(dim=-1)
            prefix = torch.cat((prefix, generated[:, t : t + 1]), dim=1)
    return generated
''',
    ),
    Variant(
        function="greedy_decode", kind="wrong", name="greedy_decode/first-position",
        misconception="Takes the argmax of the FIRST position's logits instead of the last.",
        keywords=("last position", "last"),
        source=edit(GREEDY, ("logits[:, -1].argmax", "logits[:, 0].argmax")),
    ),
    Variant(
        function="greedy_decode", kind="wrong", name="greedy_decode/keeps-bos",
        misconception="Returns the tokens with the leading bos_id.",
        keywords=("bos", "without"),
        source=edit(GREEDY, ("return tokens[:, 1:]", "return tokens")),
    ),
    Variant(
        function="greedy_decode", kind="wrong", name="greedy_decode/prefix-and-cache",
        misconception="With use_cache it feeds the whole prefix AND the caches, so earlier tokens are counted twice.",
        keywords=("newest", "cache", "only the new"),
        source=edit(GREEDY, ("model.decode(tokens[:, -1:], memory, memory_mask, caches)",
                             "model.decode(tokens, memory, memory_mask, caches)")),
    ),
    Variant(
        function="greedy_decode", kind="wrong", name="greedy_decode/cache-not-passed-back",
        misconception="With use_cache it feeds only the newest token but never passes the returned caches back, "
        "so the decoder forgets the prefix.",
        keywords=("cache", "pass", "caches"),
        source=edit(GREEDY, ("logits, caches = model.decode(tokens[:, -1:], memory, memory_mask, caches)",
                             "logits, _ = model.decode(tokens[:, -1:], memory, memory_mask, None)")),
    ),
    Variant(
        function="greedy_decode", kind="wrong", name="greedy_decode/ignores-use_cache",
        misconception="Always decodes with the cache and ignores use_cache=False (it never re-decodes the "
        "whole prefix).",
        keywords=("use_cache", "prefix", "without the cache"),
        source='''
def greedy_decode(model, src, bos_id, max_len, use_cache=True):
    memory, memory_mask = model.encode(src)
    tokens = torch.full((src.shape[0], 1), bos_id, dtype=torch.long, device=src.device)
    caches = None
    for _ in range(max_len):
        logits, caches = model.decode(tokens[:, -1:], memory, memory_mask, caches)
        tokens = torch.cat([tokens, logits[:, -1].argmax(dim=-1, keepdim=True)], dim=1)
    return tokens[:, 1:]
''',
    ),
    Variant(
        function="greedy_decode", kind="wrong", name="greedy_decode/float-tokens",
        misconception="Starts the prefix with a float tensor (torch.zeros(...) + bos_id), so the tokens are "
        "not int64.",
        keywords=("int64", "dtype", "long", "integer"),
        source=edit(GREEDY, ("torch.full((src.shape[0], 1), bos_id, dtype=torch.long, device=src.device)",
                             "torch.zeros(src.shape[0], 1) + bos_id")),
    ),
    Variant(
        function="greedy_decode", kind="wrong", name="greedy_decode/batch-of-one",
        misconception="Takes the next token with .item() of the first sentence, assuming a batch of one.",
        keywords=("batch",),
        source=edit(GREEDY, ("next_token = logits[:, -1].argmax(dim=-1, keepdim=True)",
                             "next_token = torch.tensor([[logits[0, -1].argmax().item()]])")),
    ),
]
