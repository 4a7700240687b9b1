"""Hidden checks of ch7-transformer: for each graded function, its hidden cases and its known mistakes.

Mistakes are patches of the reference's student form (``solutions/ch7_transformer.py`` without its
``@validated`` lines); see CONTRIBUTING.md. The model ``greedy_decode`` runs on is chapter 7's
``TinyTransformer`` (with its ``EncoderLayer``), given whole in the notebook: its source is
``course/tinyformer.py``, named here in ``REFERENCES``.
"""

from __future__ import annotations

import numpy as np

from course import tinyformer
from grader.engine.cases import Case, Spec, convert, forward, module, tensor, traced
from grader.engine.mistakes import Mistake
from grader.engine.probe import ModuleSpec

#: Given code of the notebook that is not in ``solutions/`` (the ``given:`` cell pastes its source).
REFERENCES = {"EncoderLayer": tinyformer.EncoderLayer, "TinyTransformer": tinyformer.TinyTransformer}

# ---- DecoderLayer ------------------------------------------------------------------------------------


def _layer(rng: np.random.Generator, d_model: int, n_heads: int, n_kv_heads: int, d_ff: int) -> ModuleSpec:
    """A DecoderLayer's parameters, with norms that are not the identity (so that each norm matters)."""
    import torch

    spec = module("DecoderLayer", d_model, n_heads, n_kv_heads, d_ff, seed=int(rng.integers(2**31)))
    for name in ("norm1", "norm2", "norm3"):
        spec.state[f"{name}.weight"] = torch.from_numpy(rng.uniform(0.5, 1.5, d_model)).float()
        spec.state[f"{name}.bias"] = tensor(rng, d_model) * 0.3
    return spec


def decoder_layer_cases(rng: np.random.Generator) -> list[Case]:
    import torch

    n, n_src, past = int(rng.integers(4, 7)), int(rng.integers(4, 7)), int(rng.integers(2, 5))
    x, memory = tensor(rng, 2, n, 16), tensor(rng, 2, n_src, 16)
    lengths = torch.tensor([n_src, n_src - 2])
    padding = (torch.arange(n_src)[None, :] < lengths[:, None])[:, None, :]  # (2, 1, n_src)
    cache = (tensor(rng, 2, 2, past, 4), tensor(rng, 2, 2, past, 4))
    return [
        Case("4 query heads sharing 2 KV heads, no cache, no mask", forward(_layer(rng, 16, 4, 2, 32), x, memory)),
        Case("a source sentence with padding (memory_mask)",
             forward(_layer(rng, 16, 4, 2, 32), x, memory, memory_mask=padding)),
        Case(f"one new token after a KV cache of {past} earlier tokens",
             forward(_layer(rng, 16, 4, 2, 24), x[:, :1], memory, memory_mask=padding, kv_cache=cache)),
        Case("two new tokens after a KV cache", forward(_layer(rng, 16, 4, 2, 24), x[:, :2], memory, kv_cache=cache)),
        Case("MQA self-attention (one KV head)", forward(_layer(rng, 16, 4, 1, 32), x, memory, memory_mask=padding)),
        Case("MHA self-attention (as many KV heads as query heads)", forward(_layer(rng, 16, 2, 2, 16), x, memory)),
    ]


DECODER_MISTAKES = [
    Mistake(
        "decoder-cache-ignored", "DecoderLayer.forward",
        "pass kv_cache to the self-attention: the new tokens must attend over the cached tokens too, and "
        "the layer must return the longer cache.",
        replace=(("self.self_attn(self.norm1(x), kv_cache=kv_cache)", "self.self_attn(self.norm1(x))"),),
    ),
    Mistake(
        "decoder-memory-mask-ignored", "DecoderLayer.forward",
        "pass memory_mask to the cross-attention: padded source tokens must get no attention.",
        replace=(("self.cross_attn(self.norm2(x), memory, memory, memory_mask)",
                  "self.cross_attn(self.norm2(x), memory, memory)"),),
    ),
    Mistake(
        "decoder-cross-not-normalised", "DecoderLayer.forward",
        "pre-norm: the cross-attention's queries are norm2(x), not x (every block reads a normalised input "
        "and adds its result to the unnormalised x).",
        replace=(("self.cross_attn(self.norm2(x), memory, memory, memory_mask)",
                  "self.cross_attn(x, memory, memory, memory_mask)"),),
    ),
    Mistake(
        "decoder-no-cross-residual", "DecoderLayer.forward",
        "keep the residual connection around the cross-attention: x = x + cross-attention(norm2(x), ...), "
        "not x = cross-attention(...).",
        replace=(("x = x + crossed", "x = crossed"),),
    ),
    Mistake(
        "decoder-post-norm", "DecoderLayer.forward",
        "use pre-norm blocks, x = x + block(norm(x)); yours normalises after adding (post-norm, "
        "x = norm(x + block(x))).",
        rewrite='''
        def forward(self, x, memory, memory_mask=None, kv_cache=None):
            attended, new_kv_cache = self.self_attn(x, kv_cache=kv_cache)
            x = self.norm1(x + attended)
            crossed, cross_weights = self.cross_attn(x, memory, memory, memory_mask)
            x = self.norm2(x + crossed)
            x = self.norm3(x + self.ff2(torch.relu(self.ff1(x))))
            return x, new_kv_cache, cross_weights
        ''',
    ),
    Mistake(
        "decoder-no-relu", "DecoderLayer.forward",
        "the feed-forward block is ff2(relu(ff1(norm3(x)))): without the ReLU the two linear layers collapse "
        "into one.",
        replace=(("self.ff2(torch.relu(self.ff1(self.norm3(x))))", "self.ff2(self.ff1(self.norm3(x)))"),),
    ),
]

# ---- greedy_decode -----------------------------------------------------------------------------------


def _model(rng: np.random.Generator, n_kv_heads: int = 2, n_layers: int = 2) -> ModuleSpec:
    """A random TinyTransformer (source vocabulary 11, target 13) with spread-out logits (few near-ties)."""
    import torch

    init = (11, 13, 16, 4, n_kv_heads, n_layers, 32, 32)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(rng.integers(2**31)))
        model = tinyformer.TinyTransformer(*init)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    state["out.weight"] = state["out.weight"] * 4
    return ModuleSpec("TinyTransformer", init, state)


def greedy_decode_cases(rng: np.random.Generator) -> list[Case]:
    import torch

    src = torch.from_numpy(rng.integers(1, 11, size=(3, 6))).long()
    padded = src.clone()
    padded[1, 4:] = 0
    padded[2, 3:] = 0
    bos = int(rng.integers(0, 13))
    return [
        Case("3 sentences, 6 tokens with the cache", convert(_model(rng), src, bos, 6, True)),
        Case("3 sentences, 6 tokens without the cache", convert(_model(rng), src, bos, 6, False)),
        Case("padded sentences, 8 tokens with the cache", convert(_model(rng), padded, bos, 8, True)),
        Case("padded sentences, 8 tokens without the cache", convert(_model(rng), padded, bos, 8, False)),
        Case("an MQA decoder with 3 layers, 10 tokens with the cache", convert(_model(rng, 1, 3), src, bos, 10, True)),
        Case("one token (max_len = 1)", convert(_model(rng), src[:1], bos, 1, True)),
        Case("with the cache: each step gives the decoder only the newest token",
             traced(_model(rng), padded, bos, 5, True)),
        Case("without the cache: each step gives the decoder the whole prefix",
             traced(_model(rng), src, bos, 4, False)),
        Case("use_cache left at its default (True)", traced(_model(rng), src, bos, 3)),
    ]


GREEDY_MISTAKES = [
    Mistake(
        "greedy-cache-not-passed-back", "greedy_decode",
        "with use_cache, pass the caches that decode returned into the next call: the newest token must "
        "attend over every earlier token, not only over itself.",
        replace=(("logits, kv_caches = model.decode(tokens[:, -1:], memory, memory_mask, kv_caches)",
                  "logits, _ = model.decode(tokens[:, -1:], memory, memory_mask, kv_caches)"),),
    ),
    Mistake(
        "greedy-prefix-with-cache", "greedy_decode",
        "with use_cache, feed only the newest token (tokens[:, -1:]): the earlier ones are already in the "
        "cache, and feeding them again puts them in twice, at the wrong positions.",
        replace=(("model.decode(tokens[:, -1:], memory, memory_mask, kv_caches)",
                  "model.decode(tokens, memory, memory_mask, kv_caches)"),),
    ),
    Mistake(
        "greedy-first-position", "greedy_decode",
        "the next token is the argmax of the LAST position's logits (logits[:, -1]); without the cache the "
        "decoder returns logits for every position of the prefix.",
        replace=(("logits[:, -1].argmax(dim=-1)", "logits[:, 0].argmax(dim=-1)"),),
    ),
    Mistake(
        "greedy-keeps-bos", "greedy_decode",
        "return the max_len generated tokens without the leading bos_id: shape (batch, max_len).",
        replace=(("return tokens[:, 1:]", "return tokens"),),
    ),
    Mistake(
        "greedy-one-token-short", "greedy_decode",
        "generate exactly max_len tokens: one step per token, each appending one token after bos_id.",
        replace=(("for _ in range(max_len):", "for _ in range(max_len - 1):"),),
    ),
    Mistake(
        "greedy-cache-unused", "greedy_decode",
        "with use_cache=True give the decoder only the newest token and its caches (the earlier tokens are in "
        "the cache); yours decodes the whole prefix again at every step, as without the cache. The tokens are "
        "the same, but the point of the cache is not doing that work.",
        replace=(("if use_cache:", "if False:"),),
    ),
]

SPECS = {
    "DecoderLayer": Spec(decoder_layer_cases, items=("output", "new_kv_cache", "cross_weights")),
    "greedy_decode": Spec(greedy_decode_cases),
}
MISTAKES = DECODER_MISTAKES + GREEDY_MISTAKES

#: Mutants of the references (``scripts/mutation_score.py``) that no hidden case can tell from them, and why.
_UNREAD = "forward never reads self.d_model (only the input validation does, which is not the student's code)"
EQUIVALENT_MUTANTS = {
    "DecoderLayer.__init__:statement-dropped@L11:self.d_model = d_model": _UNREAD,
    "DecoderLayer.__init__:name-swap@L11:d_model->n_heads": _UNREAD,
    "DecoderLayer.__init__:name-swap@L11:d_model->n_kv_heads": _UNREAD,
    "DecoderLayer.__init__:name-swap@L11:d_model->d_ff": _UNREAD,
    "greedy_decode:keyword-dropped@L15:dtype=torch.long": "torch.full with an integer fill value is int64 already",
}
