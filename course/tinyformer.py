"""Chapter 7's tiny transformer: a synthetic translation task, the model, its training and its measurements.

Everything chapter 7 computes lives here, once: the reading (``book/ch7_transformer.md``), its tests
(``tests/test_ch7_transformer.py``) and the benchmark (``benchmarks/tinyformer.py``) import it, and the
exercise pastes :class:`EncoderLayer` and :class:`TinyTransformer` as given code. The model is
assembled from the course's own modules through ``course.impl`` (the reference solutions in the
repository, their stand-ins in the installed package): chapter 4's ``MultiHeadAttention`` (encoder
self-attention, and cross-attention inside the decoder layer), chapter 5's ``GroupedQueryAttention``
with its KV cache (decoder self-attention), chapter 3's ``sinusoidal_positions``, and chapter 7's
exercise functions ``DecoderLayer`` and ``greedy_decode``.

**The task.** A toy language with sentences ``[ADJ] NOUN VERB [ADJ] NOUN [ADV]`` ("big cat chases
small dog quickly") is translated word by word into a toy target language with another word order:
``[ADV'] NOUN' [ADJ'] NOUN' [ADJ'] VERB'`` (adverb first, adjectives after their noun, verb last). Each
target word translates exactly one source word, so the true alignment is known for every sentence.
"""

from __future__ import annotations

import functools
import itertools
import math
import time
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import nn

from course.impl import DecoderLayer, MultiHeadAttention, greedy_decode, kv_cache_bytes, sinusoidal_positions

KVCache = tuple[torch.Tensor, torch.Tensor]

# ----------------------------------------------------------------------------- the task

NOUNS = ("cat", "dog", "bird", "fish", "fox", "horse", "mouse", "frog")
ADJECTIVES = ("red", "big", "small", "old", "young", "green")
VERBS = ("sees", "chases", "likes", "eats", "follows")
ADVERBS = ("quickly", "slowly", "often")
#: Target-language word of each source word (made-up words: nothing to guess from spelling).
LEXICON = dict(zip(
    NOUNS + ADJECTIVES + VERBS + ADVERBS,
    ("neko", "inu", "tori", "sakana", "kitsune", "uma", "nezumi", "kaeru",
     "aka", "oki", "chiisa", "furu", "waka", "midori",
     "miru", "oou", "suku", "taberu", "tsuku",
     "hayaku", "osoku", "yoku"),
    strict=True,
))
PAD, BOS, EOS = 0, 1, 2
SRC_WORDS = ("<pad>", *LEXICON)
TGT_WORDS = ("<pad>", "<bos>", "<eos>", *LEXICON.values())
SRC_ID = {w: i for i, w in enumerate(SRC_WORDS)}
TGT_ID = {w: i for i, w in enumerate(TGT_WORDS)}
MAX_SRC = 6  # ADJ NOUN VERB ADJ NOUN ADV
MAX_TGT = MAX_SRC + 1  # the translation and <eos>


@dataclass(frozen=True)
class Sentence:
    """A source sentence, its translation, and ``alignment[t]`` = the source position of target word ``t``."""

    src: tuple[str, ...]
    tgt: tuple[str, ...]
    alignment: tuple[int, ...]


def translate(adj1: str | None, noun1: str, verb: str, adj2: str | None, noun2: str, adv: str | None) -> Sentence:
    """The sentence ``[adj1] noun1 verb [adj2] noun2 [adv]`` and its word-by-word, reordered translation."""
    src: list[str] = []
    pos: dict[str, int] = {}
    for role, word in (("adj1", adj1), ("noun1", noun1), ("verb", verb), ("adj2", adj2), ("noun2", noun2),
                       ("adv", adv)):
        if word is not None:
            pos[role] = len(src)
            src.append(word)
    order = [r for r in ("adv", "noun1", "adj1", "noun2", "adj2", "verb") if r in pos]
    return Sentence(tuple(src), tuple(LEXICON[src[pos[r]]] for r in order), tuple(pos[r] for r in order))


def all_sentences() -> list[Sentence]:
    """Every sentence of the grammar (8 * 7 * 5 * 7 * 8 * 4 = 62,720), in a fixed order."""
    optional = lambda words: (None, *words)  # noqa: E731
    return [translate(*words) for words in itertools.product(
        optional(ADJECTIVES), NOUNS, VERBS, optional(ADJECTIVES), NOUNS, optional(ADVERBS))]


@dataclass(frozen=True)
class Batch:
    """Sentences as padded token tensors.

    ``src (batch, MAX_SRC)``; ``tgt_in (batch, MAX_TGT)`` = ``<bos>`` + translation (teacher forcing);
    ``tgt_out (batch, MAX_TGT)`` = translation + ``<eos>`` (what each position must predict);
    ``alignment (batch, MAX_TGT)``: source position of each ``tgt_out`` word, -1 for ``<eos>`` and padding.
    """

    src: torch.Tensor
    tgt_in: torch.Tensor
    tgt_out: torch.Tensor
    alignment: torch.Tensor


def encode_batch(sentences: list[Sentence]) -> Batch:
    """Token ids of ``sentences`` (padded with ``PAD``), see :class:`Batch`."""
    n = len(sentences)
    src = np.full((n, MAX_SRC), PAD)
    tgt_in = np.full((n, MAX_TGT), PAD)
    tgt_out = np.full((n, MAX_TGT), PAD)
    alignment = np.full((n, MAX_TGT), -1)
    for b, s in enumerate(sentences):
        src[b, : len(s.src)] = [SRC_ID[w] for w in s.src]
        tgt = [TGT_ID[w] for w in s.tgt]
        tgt_in[b, : len(tgt) + 1] = [BOS, *tgt]
        tgt_out[b, : len(tgt) + 1] = [*tgt, EOS]
        alignment[b, : len(tgt)] = s.alignment
    as_long = lambda a: torch.from_numpy(a).long()  # noqa: E731
    return Batch(as_long(src), as_long(tgt_in), as_long(tgt_out), as_long(alignment))


def split(seed: int = 0, n_test: int = 500) -> tuple[list[Sentence], list[Sentence]]:
    """``(train, test)``: ``n_test`` sentences held out (never trained on), the rest to train on."""
    sentences = all_sentences()
    order = np.random.default_rng(seed).permutation(len(sentences))
    return [sentences[i] for i in order[n_test:]], [sentences[i] for i in order[:n_test]]


def words(tokens: torch.Tensor | list[int], vocabulary: tuple[str, ...] = TGT_WORDS) -> list[str]:
    """The words of a token sequence, up to (without) ``<eos>`` or padding."""
    out = []
    for t in (tokens.tolist() if isinstance(tokens, torch.Tensor) else tokens):
        if t in (PAD, EOS):
            break
        out.append(vocabulary[t])
    return out


# ----------------------------------------------------------------------------- the model


class EncoderLayer(nn.Module):
    """Pre-norm encoder layer: multi-head self-attention (chapter 4), then a feed-forward block.

    ``forward(x (batch, n_src, d_model), mask (batch, 1, n_src))`` -> ``(output (batch, n_src, d_model),
    weights (batch, n_heads, n_src, n_src))``.
    """

    def __init__(self, d_model: int, n_heads: int, d_ff: int) -> None:
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, n_heads)
        self.ff1, self.ff2 = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model)
        self.norm1, self.norm2 = (nn.LayerNorm(d_model) for _ in range(2))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.norm1(x)
        h, weights = self.self_attn(h, h, h, mask)
        x = h + x
        return x + self.ff2(torch.relu(self.ff1(self.norm2(x)))), weights


class TinyTransformer(nn.Module):
    """Encoder-decoder: token embeddings plus sinusoidal positions (chapter 3), ``n_layers`` encoder
    layers, ``n_layers`` decoder layers (``DecoderLayer``: GQA self-attention with a KV cache and
    multi-head cross-attention), a final LayerNorm on each side, and a linear map to target logits.
    Source tokens equal to ``pad_id`` are hidden from attention.
    """

    def __init__(self, src_vocab: int, tgt_vocab: int, d_model: int = 64, n_heads: int = 4, n_kv_heads: int = 2,
                 n_layers: int = 2, d_ff: int = 128, max_positions: int = 128, pad_id: int = 0) -> None:
        super().__init__()
        self.n_heads, self.n_kv_heads, self.n_layers, self.pad_id = n_heads, n_kv_heads, n_layers, pad_id
        self.src_embed = nn.Embedding(src_vocab, d_model)
        self.tgt_embed = nn.Embedding(tgt_vocab, d_model)
        positions = torch.as_tensor(sinusoidal_positions(max_positions, d_model), dtype=torch.float32)
        self.register_buffer("positions", positions, persistent=False)  # (max_positions, d_model)
        self.encoder = nn.ModuleList(EncoderLayer(d_model, n_heads, d_ff) for _ in range(n_layers))
        self.decoder = nn.ModuleList(DecoderLayer(d_model, n_heads, n_kv_heads, d_ff) for _ in range(n_layers))
        self.enc_norm = nn.LayerNorm(d_model)
        self.dec_norm = nn.LayerNorm(d_model)
        self.out = nn.Linear(d_model, tgt_vocab)

    def encode(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``src (batch, n_src)`` -> ``(memory (batch, n_src, d_model), memory_mask (batch, 1, n_src))``."""
        mask = (src != self.pad_id)[:, None, :]  # (batch, 1, n_src): True = a real token
        x = self.src_embed(src) + self.positions[: src.shape[1]]
        for layer in self.encoder:
            x, _ = layer(x, mask)
        return self.enc_norm(x), mask

    def decode_all(
        self, tokens: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor,
        kv_caches: list[KVCache] | None = None,
    ) -> tuple[torch.Tensor, list[KVCache], list[torch.Tensor]]:
        """``(logits (batch, n_new, tgt_vocab), new_kv_caches, cross_weights)`` for new tokens ``(batch, n_new)``.

        Positions continue after the cached ones; ``cross_weights[l]`` is layer ``l``'s
        ``(batch, n_heads, n_new, n_src)``.
        """
        start = 0 if kv_caches is None else kv_caches[0][0].shape[-2]
        x = self.tgt_embed(tokens) + self.positions[start : start + tokens.shape[1]]
        new_caches, cross = [], []
        for i, layer in enumerate(self.decoder):
            x, cache, weights = layer(x, memory, memory_mask, None if kv_caches is None else kv_caches[i])
            new_caches.append(cache)
            cross.append(weights)
        return self.out(self.dec_norm(x)), new_caches, cross

    def decode(
        self, tokens: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor,
        kv_caches: list[KVCache] | None = None,
    ) -> tuple[torch.Tensor, list[KVCache]]:
        """``(logits (batch, n_new, tgt_vocab), new_kv_caches)``: one cache ``(k, v)`` per decoder layer."""
        logits, new_caches, _ = self.decode_all(tokens, memory, memory_mask, kv_caches)
        return logits, new_caches

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Teacher forcing: ``(logits (batch, n_tgt, tgt_vocab), cross_weights per layer)``."""
        memory, mask = self.encode(src)
        logits, _, cross = self.decode_all(tgt_in, memory, mask)
        return logits, cross


# ----------------------------------------------------------------------------- training


@dataclass(frozen=True)
class Config:
    """Model size and training budget (the same for every attention variant).

    ``lr_decay``: the learning rate falls linearly from ``lr`` to 0 over the ``steps`` (with a constant
    rate the loss spikes now and then late in training; chapter 7 shows both).
    """

    d_model: int = 64
    n_heads: int = 4
    n_kv_heads: int = 2
    n_layers: int = 2
    d_ff: int = 128
    steps: int = 120
    batch_size: int = 64
    lr: float = 3e-3
    lr_decay: bool = True
    seed: int = 0


@dataclass
class Trained:
    """A trained model, its loss after each step, its initial weights, and the seconds training took."""

    config: Config
    model: TinyTransformer
    losses: list[float]
    initial_state: dict[str, torch.Tensor]
    seconds: float
    test: list[Sentence] = field(repr=False, default_factory=list)

    def initial_model(self) -> TinyTransformer:
        """The same model before training (its weights at step 0)."""
        model = build_model(self.config)
        model.load_state_dict(self.initial_state)
        return model.eval()


def build_model(config: Config) -> TinyTransformer:
    """A fresh model of ``config``, its weights drawn from ``config.seed``."""
    torch.manual_seed(config.seed)
    return TinyTransformer(len(SRC_WORDS), len(TGT_WORDS), config.d_model, config.n_heads, config.n_kv_heads,
                           config.n_layers, config.d_ff)


def train(config: Config = Config()) -> Trained:
    """Train with Adam and teacher forcing (cross-entropy on every real target position) for ``config.steps``."""
    train_set, test_set = split(config.seed)
    model = build_model(config)
    initial = {k: v.detach().clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    decay = 1.0 / config.steps if config.lr_decay else 0.0
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 - decay * step)
    rng = np.random.default_rng(config.seed)
    loss_fn = nn.CrossEntropyLoss(ignore_index=PAD)
    losses = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: one thread is fastest, and steady on a shared machine
    start = time.perf_counter()
    model.train()
    for _ in range(config.steps):
        batch = encode_batch([train_set[i] for i in rng.integers(len(train_set), size=config.batch_size)])
        logits, _ = model(batch.src, batch.tgt_in)
        loss = loss_fn(logits.flatten(0, 1), batch.tgt_out.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
    seconds = time.perf_counter() - start
    torch.set_num_threads(threads)
    return Trained(config, model.eval(), losses, initial, seconds, test_set)


@functools.lru_cache(maxsize=8)
def trained_with(config: Config) -> Trained:
    """:func:`train`, computed once per process and ``config`` (the page, the tests and the benchmark share it)."""
    return train(config)


def trained(n_kv_heads: int = 2, seed: int = 0) -> Trained:
    """The chapter's model: the default budget, ``n_kv_heads`` key/value heads (2: GQA), trained once per process."""
    return trained_with(Config(n_kv_heads=n_kv_heads, seed=seed))


def loss_spikes(losses: list[float], factor: float = 3.0) -> list[int]:
    """The training steps (1-based) whose loss is more than ``factor`` times the previous step's."""
    return [step + 1 for step in range(1, len(losses)) if losses[step] > factor * losses[step - 1]]


def final_loss(losses: list[float], last: int = 20) -> float:
    """The mean loss of the last ``last`` steps (one step's loss is one batch's: noisy)."""
    return float(np.mean(losses[-last:]))


# ----------------------------------------------------------------------------- measurements


@torch.no_grad()
def cross_attention(model: TinyTransformer, batch: Batch) -> list[torch.Tensor]:
    """Teacher-forced cross-attention weights, per decoder layer ``(batch, n_heads, MAX_TGT, MAX_SRC)``."""
    return model(batch.src, batch.tgt_in)[1]


def alignment_share(weights: torch.Tensor, alignment: torch.Tensor) -> float:
    """Share of target words whose strongest cross-attention falls on their aligned source word.

    ``weights (batch, n_tgt, n_src)`` (one head, or heads averaged); ``alignment (batch, n_tgt)``, -1 to skip.
    """
    real = alignment >= 0
    return float((weights.argmax(dim=-1) == alignment)[real].float().mean())


def chance_share(batch: Batch) -> float:
    """The share a uniformly random choice of a real source word would get: mean of ``1 / source length``."""
    lengths = (batch.src != PAD).sum(dim=1, keepdim=True).expand_as(batch.alignment)
    return float((1.0 / lengths[batch.alignment >= 0]).mean())


def layer_alignment(model: TinyTransformer, batch: Batch) -> list[float]:
    """:func:`alignment_share` of each decoder layer's cross-attention, averaged over its heads."""
    return [alignment_share(w.mean(dim=1), batch.alignment) for w in cross_attention(model, batch)]


@torch.no_grad()
def sentence_accuracy(model: TinyTransformer, sentences: list[Sentence], use_cache: bool = True) -> float:
    """Share of ``sentences`` whose greedy translation (up to ``<eos>``) is exactly right, ``<eos>`` included."""
    batch = encode_batch(sentences)
    out = greedy_decode(model, batch.src, BOS, MAX_TGT, use_cache=use_cache)
    right = (out == batch.tgt_out) | (batch.tgt_out == PAD)  # what follows <eos> does not count
    return float(right.all(dim=1).float().mean())


@torch.no_grad()
def decode_tokens_per_second(model: TinyTransformer, src: torch.Tensor, max_len: int, use_cache: bool,
                             repeat: int = 3) -> float:
    """Generated tokens per second of :func:`greedy_decode` (best of ``repeat`` runs)."""
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        greedy_decode(model, src, BOS, max_len, use_cache=use_cache)
        best = min(best, time.perf_counter() - start)
    return src.shape[0] * max_len / best


def cache_bytes(model: TinyTransformer, batch: int, seq_len: int, bytes_per_elem: int = 4) -> int:
    """Bytes of the decoder's KV cache (chapter 5's ``kv_cache_bytes``; float32 by default)."""
    head_dim = model.positions.shape[1] // model.n_heads
    return kv_cache_bytes(batch, seq_len, model.n_layers, model.n_kv_heads, head_dim, bytes_per_elem)


@torch.no_grad()
def self_attention_weights(model: TinyTransformer, batch: Batch, layer: int = 0) -> torch.Tensor:
    """Decoder layer ``layer``'s causal self-attention weights ``(batch, n_heads, n_tgt, n_tgt)``.

    ``GroupedQueryAttention`` returns no weights, so they are recomputed from its projections and the
    normalised input it received (captured with a forward hook): query head ``h`` reads key head
    ``h // (n_heads // n_kv_heads)``.
    """
    attn = model.decoder[layer].self_attn
    seen: list[torch.Tensor] = []
    handle = attn.register_forward_hook(lambda module, args, output: seen.append(args[0]))
    try:
        model(batch.src, batch.tgt_in)
    finally:
        handle.remove()
    x = seen[0]  # (batch, n_tgt, d_model), after norm1
    n_heads, n_kv = attn.n_heads, attn.n_kv_heads
    q = attn.q_proj(x).unflatten(-1, (n_heads, -1)).transpose(1, 2)
    k = attn.k_proj(x).unflatten(-1, (n_kv, -1)).transpose(1, 2).repeat_interleave(n_heads // n_kv, dim=1)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    n = x.shape[1]
    causal = torch.ones(n, n, dtype=torch.bool).tril()
    return torch.softmax(scores.masked_fill(~causal, float("-inf")), dim=-1)


# ----------------------------------------------------------------------------- MHA vs GQA vs MQA


def variant_name(n_heads: int, n_kv_heads: int) -> str:
    """``"MHA"``, ``"MQA"`` or ``"GQA-<n_kv_heads>"``."""
    if n_kv_heads == n_heads:
        return "MHA"
    return "MQA" if n_kv_heads == 1 else f"GQA-{n_kv_heads}"


@dataclass(frozen=True)
class VariantRow:
    """One attention variant trained with the chapter's budget, and what it gives."""

    variant: str
    n_kv_heads: int
    train_seconds: float
    final_loss: float  # mean of the last 20 steps
    accuracy: float  # held-out sentences translated exactly right (greedy, with the cache)
    alignment: float  # last decoder layer's cross-attention, heads averaged
    cache_bytes: int  # float32 KV cache of the decoder for ``batch`` sentences of ``seq_len`` tokens
    tokens_per_s_cached: float
    tokens_per_s_uncached: float


@dataclass(frozen=True)
class SeedRun:
    """One attention variant trained from one seed with the chapter's budget."""

    variant: str
    n_kv_heads: int
    seed: int
    final_loss: float  # mean of the last 20 steps
    accuracy: float  # held-out sentences translated exactly right
    alignment: float  # last decoder layer's cross-attention, heads averaged
    spikes: int  # steps whose loss jumped to more than 3 times the previous step's


def seed_runs(kv_heads: tuple[int, ...] = (4, 2, 1), seeds: tuple[int, ...] = (0, 1, 2),
              config: Config = Config()) -> list[SeedRun]:
    """Train every ``n_kv_heads`` from every seed (the seed draws the weights, the batches and the split)."""
    runs = []
    for kv in kv_heads:
        for seed in seeds:
            run = trained_with(replace(config, n_kv_heads=kv, seed=seed))
            test = encode_batch(run.test)
            runs.append(SeedRun(variant_name(config.n_heads, kv), kv, seed, final_loss(run.losses),
                                sentence_accuracy(run.model, run.test), layer_alignment(run.model, test)[-1],
                                len(loss_spikes(run.losses))))
    return runs


def compare_variants(
    kv_heads: tuple[int, ...] = (4, 2, 1), batch: int = 64, seq_len: int = 64, config: Config = Config(),
) -> list[VariantRow]:
    """Train one model per ``n_kv_heads`` with the same budget and measure each (decoding ``batch`` held-out
    sentences for ``seq_len`` steps, on one thread)."""
    rows = []
    threads = torch.get_num_threads()
    for kv in kv_heads:
        run = trained_with(replace(config, n_kv_heads=kv))
        test = encode_batch(run.test)
        torch.set_num_threads(1)
        try:
            speeds = [decode_tokens_per_second(run.model, test.src[:batch], seq_len, c) for c in (True, False)]
        finally:
            torch.set_num_threads(threads)
        rows.append(VariantRow(
            variant_name(run.config.n_heads, kv), kv, run.seconds, final_loss(run.losses),
            sentence_accuracy(run.model, run.test), layer_alignment(run.model, test)[-1],
            cache_bytes(run.model, batch, seq_len), *speeds,
        ))
    return rows
