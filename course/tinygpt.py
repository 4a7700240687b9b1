"""Chapter 8's tiny GPT: a decoder-only transformer, its training, and what its attention learns.

Everything chapter 8 computes lives here, once: the reading (``book/ch8_gpt.md``) and its tests
(``tests/test_ch8_gpt.py``) import it. The model is assembled from the course's own modules through
``course.impl`` (the reference solutions in the repository, their stand-ins in the installed package):
chapter 5's ``GroupedQueryAttention`` with its KV cache, chapter 3's ``apply_rope`` for the positions,
and chapter 8's exercise functions ``sliding_window_mask``, ``rolling_cache_update``, ``sample_next``
and ``induction_score``.

Two models are trained while the book is built, both small enough for one CPU thread:

- **attention-only models** (no feed-forward blocks) with one or two layers, on sequences of random
  tokens whose second half repeats the first: two layers learn an *induction head* and copy the
  repeat; one layer cannot (:func:`train_induction`);
- a **character-level model** on the docstrings of this package, to sample text from
  (:func:`train_chars`).
"""

from __future__ import annotations

import ast
import functools
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from course.impl import (
    GroupedQueryAttention,
    apply_rope,
    induction_score,
    rolling_cache_update,
    sample_next,
    sliding_window_mask,
)

KVCache = tuple[torch.Tensor, torch.Tensor]

# ----------------------------------------------------------------------------- positions: chapter 3's RoPE


def rope_table(n_positions: int, head_dim: int, base: float = 10000.0) -> torch.Tensor:
    """``(n_positions, head_dim)``: ``cos`` of every RoPE angle in the even features, ``sin`` in the odd ones.

    Computed by chapter 3's ``apply_rope`` itself: rotating the vector ``(1, 0, 1, 0, ...)`` by the angle
    of pair ``i`` at position ``p`` gives ``(cos, sin)`` of that angle in pair ``i``.
    """
    unit = np.broadcast_to(np.tile([1.0, 0.0], head_dim // 2), (n_positions, head_dim))
    return torch.as_tensor(apply_rope(unit, np.arange(n_positions), base), dtype=torch.float32)


def rotate(x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Chapter 3's rotation in PyTorch (so that gradients flow): ``x (..., n, d)`` with ``table (n, d)``.

    Pair ``(x[..., 2i], x[..., 2i+1])`` of token ``t`` turns by the angle whose ``(cos, sin)`` is
    ``table[t, 2i], table[t, 2i+1]`` (the interleaved RoFormer convention of ``apply_rope``).
    """
    cos, sin = table[:, 0::2], table[:, 1::2]
    even, odd = x[..., 0::2], x[..., 1::2]
    return torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1).flatten(-2)


class RotaryProjection(nn.Module):
    """A query or key projection followed by RoPE: its output leaves already rotated.

    ``forward(x (batch, n, d_model))`` -> ``(batch, n, n_heads * head_dim)``, each head's features rotated
    at the positions ``start, ..., start + n - 1`` (``start`` is set by :class:`Attention` before each call).
    Keys therefore enter the KV cache rotated, as chapter 3 says they do.
    """

    def __init__(self, linear: nn.Linear, head_dim: int, table: torch.Tensor) -> None:
        super().__init__()
        self.linear, self.head_dim = linear, head_dim
        self.register_buffer("table", table, persistent=False)
        self.start = 0
        self.last: torch.Tensor | None = None  # the last output, kept for the attention weights

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[-2]
        if self.start + n > self.table.shape[0]:
            raise ValueError(f"positions up to {self.start + n - 1}, but the RoPE table has {self.table.shape[0]}")
        heads = self.linear(x).unflatten(-1, (-1, self.head_dim)).transpose(-3, -2)  # (batch, heads, n, head_dim)
        out = rotate(heads, self.table[self.start : self.start + n]).transpose(-3, -2).flatten(-2)
        self.last = out
        return out


# ----------------------------------------------------------------------------- the model


class Attention(nn.Module):
    """Causal self-attention: chapter 5's ``GroupedQueryAttention`` (its projections, its KV cache, its
    forward), with RoPE on queries and keys, an optional sliding window with a rolling cache, and heads
    that can be switched off.

    ``forward(x (batch, n_new, d_model), start, kv_cache)`` -> ``(output, new_kv_cache)``; ``start`` is the
    position of ``x``'s first token. Without a window the cache grows by ``n_new`` positions; with one,
    the mask is chapter 8's ``sliding_window_mask`` and the cache keeps the last ``window`` positions
    (``rolling_cache_update``). ``ablated`` heads have their output set to 0 before ``out_proj``.
    With ``record = True`` the last call's weights ``(batch, n_heads, n_new, n_keys)`` are kept in ``weights``.
    """

    def __init__(self, d_model: int, n_heads: int, n_kv_heads: int, max_positions: int,
                 window: int | None = None) -> None:
        super().__init__()
        self.gqa = GroupedQueryAttention(d_model, n_heads, n_kv_heads)
        self.n_heads, self.n_kv_heads, self.head_dim = n_heads, n_kv_heads, d_model // n_heads
        table = rope_table(max_positions, self.head_dim)
        self.gqa.q_proj = RotaryProjection(self.gqa.q_proj, self.head_dim, table)
        self.gqa.k_proj = RotaryProjection(self.gqa.k_proj, self.head_dim, table)
        self.window = window
        self.ablated: frozenset[int] = frozenset()
        self.record = False
        self.weights: torch.Tensor | None = None
        self.gqa.out_proj.register_forward_pre_hook(self._switch_off_heads)

    def _switch_off_heads(self, module: nn.Module, args: tuple[torch.Tensor]) -> tuple[torch.Tensor] | None:
        if not self.ablated:
            return None
        heads = args[0].unflatten(-1, (self.n_heads, self.head_dim))  # (batch, n, n_heads, head_dim)
        keep = torch.ones(self.n_heads, 1, dtype=heads.dtype)
        keep[sorted(self.ablated)] = 0.0
        return ((heads * keep).flatten(-2),)

    def mask(self, n_new: int, n_keys: int) -> torch.Tensor | None:
        """The boolean mask of ``n_new`` queries over ``n_keys`` keys (None: the GQA's own causal default)."""
        return None if self.window is None else sliding_window_mask(n_new, n_keys, self.window)

    def forward(self, x: torch.Tensor, start: int = 0,
                kv_cache: KVCache | None = None) -> tuple[torch.Tensor, KVCache]:
        n_new = x.shape[1]
        n_past = 0 if kv_cache is None else kv_cache[0].shape[-2]
        self.gqa.q_proj.start = self.gqa.k_proj.start = start  # RoPE positions
        mask = self.mask(n_new, n_past + n_new)  # None: the GQA's causal mask
        out, (k, v) = self.gqa(x, mask=mask, kv_cache=kv_cache)  # chapter 5
        if self.record:
            self.weights = self._weights(self.gqa.q_proj.last, k)
        if self.window is None:
            return out, (k, v)  # the cache grows by n_new positions
        k_new, v_new = k[..., n_past:, :], v[..., n_past:, :]
        return out, rolling_cache_update(kv_cache, k_new, v_new, self.window)

    def _weights(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """The weights the GQA used: softmax of the rotated scores under the same mask (it returns none)."""
        q = q.unflatten(-1, (self.n_heads, self.head_dim)).transpose(1, 2)  # (batch, n_heads, n_new, head_dim)
        k = k.repeat_interleave(self.n_heads // self.n_kv_heads, dim=1)  # query head h reads KV head h // n_rep
        n_new, n_keys = q.shape[-2], k.shape[-2]
        mask = self.mask(n_new, n_keys)
        if mask is None:
            mask = torch.ones(n_new, n_keys, dtype=torch.bool).tril(n_keys - n_new)
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)
        return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1).detach()


class Block(nn.Module):
    """A pre-norm decoder block: ``x = x + attn(norm1(x))``, then (unless attention-only, ``d_ff = 0``)
    ``x = x + ff2(gelu(ff1(norm2(x))))``."""

    def __init__(self, d_model: int, n_heads: int, n_kv_heads: int, d_ff: int, max_positions: int,
                 window: int | None) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attn = Attention(d_model, n_heads, n_kv_heads, max_positions, window)
        self.d_ff = d_ff
        if d_ff:
            self.norm2 = nn.LayerNorm(d_model)
            self.ff1, self.ff2 = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model)

    def forward(self, x: torch.Tensor, start: int = 0,
                kv_cache: KVCache | None = None) -> tuple[torch.Tensor, KVCache]:
        attended, new_cache = self.attn(self.norm1(x), start, kv_cache)
        x = x + attended
        if self.d_ff:  # not in the attention-only models
            x = x + self.ff2(nn.functional.gelu(self.ff1(self.norm2(x))))
        return x, new_cache


@dataclass(frozen=True)
class GPTConfig:
    """A model's shape. ``d_ff = 0``: attention-only blocks. ``window``: sliding-window attention in every layer."""

    vocab: int
    d_model: int = 64
    n_heads: int = 4
    n_kv_heads: int = 2
    n_layers: int = 2
    d_ff: int = 0
    window: int | None = None
    max_positions: int = 1024


class TinyGPT(nn.Module):
    """Decoder-only transformer: token embedding, ``n_layers`` pre-norm blocks, a final LayerNorm, logits.

    ``forward(tokens (batch, n_new), start=0, kv_caches=None)`` -> ``(logits (batch, n_new, vocab),
    new_kv_caches)``, one cache per layer; ``start`` is the position of the first new token (with a
    rolling cache it is not the cache's length). Positions enter through RoPE only.
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab, config.d_model)
        self.blocks = nn.ModuleList(
            Block(config.d_model, config.n_heads, config.n_kv_heads, config.d_ff, config.max_positions, config.window)
            for _ in range(config.n_layers)
        )
        self.norm = nn.LayerNorm(config.d_model)
        self.out = nn.Linear(config.d_model, config.vocab, bias=False)

    def forward(self, tokens: torch.Tensor, start: int = 0,
                kv_caches: list[KVCache] | None = None) -> tuple[torch.Tensor, list[KVCache]]:
        x = self.embed(tokens)
        new_caches = []
        for i, block in enumerate(self.blocks):
            x, cache = block(x, start, None if kv_caches is None else kv_caches[i])
            new_caches.append(cache)
        return self.out(self.norm(x)), new_caches

    @property
    def attentions(self) -> list[Attention]:
        return [block.attn for block in self.blocks]


@torch.no_grad()
def attention_weights(model: TinyGPT, tokens: torch.Tensor) -> torch.Tensor:
    """``(n_layers, batch, n_heads, n, n)``: every head's weights on ``tokens (batch, n)`` (one forward)."""
    for attn in model.attentions:
        attn.record = True
    try:
        model(tokens)
        return torch.stack([attn.weights for attn in model.attentions])
    finally:
        for attn in model.attentions:
            attn.record, attn.weights = False, None


class ablated:
    """``with ablated(model, {(layer, head), ...}):`` those heads output 0 inside the block."""

    def __init__(self, model: TinyGPT, heads: set[tuple[int, int]]) -> None:
        self.model, self.heads = model, heads

    def __enter__(self) -> TinyGPT:
        for layer, attn in enumerate(self.model.attentions):
            attn.ablated = frozenset(h for (l, h) in self.heads if l == layer)
        return self.model

    def __exit__(self, *exc: object) -> None:
        for attn in self.model.attentions:
            attn.ablated = frozenset()


@torch.no_grad()
def generate(model: TinyGPT, prompt: torch.Tensor, n_new: int, *, temperature: float = 1.0,
             top_k: int | None = None, top_p: float | None = None, generator: torch.Generator | None = None,
             use_cache: bool = True, on_step: Callable[[list[KVCache]], None] | None = None) -> torch.Tensor:
    """``prompt (batch, n)`` followed by ``n_new`` tokens drawn with ``sample_next`` -> ``(batch, n + n_new)``.

    The rules are ``sample_next``'s (``temperature = 0``: greedy decoding). With ``use_cache`` the prompt
    goes through the model once and every later step feeds only the newest token; without, the whole
    sequence is fed at every step.
    ``on_step(kv_caches)`` is called after every cached step (to measure the caches).
    """
    tokens = prompt
    logits, caches = model(prompt) if use_cache else (None, None)
    for _ in range(n_new):
        if not use_cache:
            logits, _ = model(tokens)
        token = sample_next(logits[:, -1], temperature, top_k, top_p, generator)  # (batch,)
        tokens = torch.cat([tokens, token[:, None]], dim=1)
        if use_cache:
            logits, caches = model(token[:, None], start=tokens.shape[1] - 1, kv_caches=caches)
            if on_step is not None:
                on_step(caches)
    return tokens


def cache_nbytes(caches: list[KVCache]) -> int:
    """Bytes held by the tensors of every layer's KV cache."""
    return sum(t.nbytes for k, v in caches for t in (k, v))


# ----------------------------------------------------------------------------- training


@dataclass(frozen=True)
class Budget:
    """A model's shape (the fields of :class:`GPTConfig` but the vocabulary) and its training budget."""

    n_layers: int = 2
    d_model: int = 64
    n_heads: int = 4
    n_kv_heads: int = 2
    d_ff: int = 0
    window: int | None = None
    steps: int = 500
    lr: float = 3e-3
    seed: int = 0

    def config(self, vocab: int, max_positions: int = 1024) -> GPTConfig:
        """The model of this budget for a vocabulary of ``vocab`` tokens."""
        return GPTConfig(vocab, self.d_model, self.n_heads, self.n_kv_heads, self.n_layers, self.d_ff, self.window,
                         max_positions)


@dataclass
class Trained:
    """A trained model, its loss curves, its initial weights and the seconds training took."""

    config: GPTConfig
    model: TinyGPT
    losses: dict[str, list[float]]
    initial_state: dict[str, torch.Tensor]
    seconds: float
    extra: dict = field(default_factory=dict)

    def initial_model(self) -> TinyGPT:
        """The same model before training (its weights at step 0)."""
        model = TinyGPT(self.config)
        model.load_state_dict(self.initial_state)
        return model.eval()


class _one_thread:
    """Tiny matrices: one torch thread is fastest, and steady on a shared machine."""

    def __enter__(self) -> None:
        self.threads = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc: object) -> None:
        torch.set_num_threads(self.threads)


def _fit(config: GPTConfig, seed: int, steps: int, lr: float, batches: Callable[[int], torch.Tensor],
         losses_of: Callable[[torch.Tensor, torch.Tensor], dict[str, torch.Tensor]],
         watch: Callable[[TinyGPT], dict[str, float]] | None = None, every: int = 10) -> Trained:
    """Adam on next-token cross-entropy: ``batches(step)`` gives the tokens, ``losses_of(logits, tokens)``
    the named losses to record, of which ``"loss"`` is minimised. Every ``every`` steps (and before the
    first), ``watch(model)`` measures the model; its values go to ``extra["watched"]``, with their steps."""
    torch.manual_seed(seed)
    model = TinyGPT(config)
    initial = {k: v.detach().clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    curves: dict[str, list[float]] = {}
    watched: dict[str, list[float]] = {}

    def look(step: int) -> None:
        if watch is not None and step % every == 0:
            model.eval()
            with torch.no_grad():
                for name, value in {"step": step, **watch(model)}.items():
                    watched.setdefault(name, []).append(value)
            model.train()

    with _one_thread():
        start = time.perf_counter()
        model.train()
        look(0)
        for step in range(steps):
            tokens = batches(step)
            logits, _ = model(tokens[:, :-1])
            named = losses_of(logits, tokens)
            optimizer.zero_grad()
            named["loss"].backward()
            optimizer.step()
            for name, value in named.items():
                curves.setdefault(name, []).append(value.item())
            look(step + 1)
        seconds = time.perf_counter() - start
    return Trained(config, model.eval(), curves, initial, seconds, {"watched": watched})


# ----------------------------------------------------------------------------- induction heads


@dataclass(frozen=True)
class InductionTask:
    """Sequences of ``2 T`` distinct random tokens whose second half repeats the first, ``T`` drawn per batch."""

    vocab: int = 64
    min_period: int = 8
    max_period: int = 16
    batch: int = 32


def repeated_tokens(task: InductionTask, period: int, batch: int, generator: torch.Generator) -> torch.Tensor:
    """``(batch, 2 * period)`` int64: ``period`` distinct random tokens, then the same tokens again."""
    first = torch.rand(batch, task.vocab, generator=generator).argsort(dim=-1)[:, :period]
    return torch.cat([first, first], dim=1)


def split_losses(logits: torch.Tensor, tokens: torch.Tensor, period: int) -> dict[str, torch.Tensor]:
    """Cross-entropy of predicting ``tokens[:, 1:]`` from ``logits (batch, n - 1, vocab)``, averaged over
    the whole sequence (``"loss"``), the first half (``"first"``: predicting tokens 1 ... T) and the
    repeated half (``"repeat"``: predicting tokens T + 1 ... 2T - 1, each a copy of an earlier one)."""
    per_token = nn.functional.cross_entropy(logits.transpose(1, 2), tokens[:, 1:], reduction="none")
    return {"loss": per_token.mean(), "first": per_token[:, :period].mean(), "repeat": per_token[:, period:].mean()}


@dataclass(frozen=True)
class InductionRun(Budget):
    """The chapter's budget for the induction experiment: attention-only, two heads per layer (MHA)."""

    n_heads: int = 2
    n_kv_heads: int = 2
    steps: int = 600
    task: InductionTask = InductionTask()


def train_induction(run: InductionRun = InductionRun()) -> Trained:
    """An attention-only model trained on :func:`repeated_tokens` (``"repeat"`` loss recorded per step)."""
    config = run.config(run.task.vocab, max_positions=2 * run.task.max_period)
    data = torch.Generator().manual_seed(run.seed + 1)
    periods = np.random.default_rng(run.seed).integers(run.task.min_period, run.task.max_period + 1, run.steps)
    batches = lambda step: repeated_tokens(run.task, int(periods[step]), run.task.batch, data)  # noqa: E731

    def losses_of(logits: torch.Tensor, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        return split_losses(logits, tokens, tokens.shape[1] // 2)

    probe = eval_batch(run.task, batch=32, seed=run.seed + 2)

    def watch(model: TinyGPT) -> dict[str, float]:  # the best induction score of the last layer
        return {"induction": head_scores(model, probe)["induction"][-1].max().item()}

    trained = _fit(config, run.seed, run.steps, run.lr, batches, losses_of, watch)
    trained.extra["run"] = run
    return trained


@functools.lru_cache(maxsize=8)
def trained_induction(n_layers: int = 2, seed: int = 0) -> Trained:
    """:func:`train_induction` with the chapter's budget, computed once per process (page and tests share it)."""
    return train_induction(InductionRun(n_layers=n_layers, seed=seed))


def eval_batch(task: InductionTask = InductionTask(), period: int = 12, batch: int = 200,
               seed: int = 1234) -> torch.Tensor:
    """Fresh repeated sequences (never trained on) for measurements."""
    return repeated_tokens(task, period, batch, torch.Generator().manual_seed(seed))


@torch.no_grad()
def copy_metrics(model: TinyGPT, tokens: torch.Tensor) -> dict[str, float]:
    """Loss and accuracy of the next-token guess on each half of repeated sequences ``(batch, 2T)``."""
    period = tokens.shape[1] // 2
    logits, _ = model(tokens[:, :-1])
    losses = split_losses(logits, tokens, period)
    right = logits.argmax(dim=-1) == tokens[:, 1:]
    return {"loss_first": losses["first"].item(), "loss_repeat": losses["repeat"].item(),
            "acc_first": right[:, :period].float().mean().item(), "acc_repeat": right[:, period:].float().mean().item()}


@torch.no_grad()
def head_scores(model: TinyGPT, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per layer and head ``(n_layers, n_heads)``, on repeated sequences ``tokens (batch, 2T)``:
    ``"induction"`` (``induction_score``, averaged over the batch) and ``"previous"`` (mean weight on
    the previous token)."""
    period = tokens.shape[1] // 2
    weights = attention_weights(model, tokens)  # (layers, batch, heads, n, n)
    previous = torch.diagonal(weights, offset=-1, dim1=-2, dim2=-1).mean(dim=-1)  # (layers, batch, heads)
    return {"induction": induction_score(weights, period).mean(dim=1), "previous": previous.mean(dim=1)}


#: The chapter's bar for "this head is an induction head": an induction score of at least this.
INDUCTION_THRESHOLD = 0.5


def copy_level(task: InductionTask = InductionTask()) -> float:
    """Half of ``log(min_period)``. Without induction a model can at best spread its guess over the ``T``
    tokens already seen (a loss of ``log T >= log(min_period)``); the phase change is the first step at
    which the repeated half's loss falls below half of that."""
    return math.log(task.min_period) / 2


def phase_change_step(curve: list[float], level: float, smooth: int = 10) -> int | None:
    """The first step (1-based) at which the mean of the last ``smooth`` values falls below ``level``."""
    values = np.asarray(curve)
    for step in range(smooth, len(values) + 1):
        if values[step - smooth : step].mean() < level:
            return step
    return None


def named_heads(scores: dict[str, torch.Tensor]) -> tuple[tuple[int, int], tuple[int, int]]:
    """``((0, h), (last layer, h'))``: the first layer's head with the most weight on the previous token, and
    the last layer's head with the highest induction score (from :func:`head_scores`)."""
    last = scores["induction"].shape[0] - 1
    return (0, int(scores["previous"][0].argmax())), (last, int(scores["induction"][last].argmax()))


# ----------------------------------------------------------------------------- sliding windows


def receptive_field(n_layers: int, window: int | None, n: int) -> int:
    """How many positions back the last of ``n`` positions can read after ``n_layers`` layers, computed by
    composing the layers' masks: the last position reads the positions its mask row allows; after one
    more layer, every position that one of those reads (a boolean vector-matrix product per layer)."""
    mask = torch.ones(n, n, dtype=torch.bool).tril() if window is None else sliding_window_mask(n, n, window)
    reach = torch.zeros(n, dtype=torch.bool)
    reach[-1] = True
    for _ in range(n_layers):
        reach = (reach.float() @ mask.float()) > 0
    return n - 1 - int(reach.nonzero().min())


def gradient_reach(model: TinyGPT, tokens: torch.Tensor) -> int:
    """How many positions before the last one change its logits, measured: the positions whose input
    embedding gets a non-zero gradient from the last position's logits (``tokens (1, n)``)."""
    seen: list[torch.Tensor] = []

    def keep(module: nn.Module, args: tuple, out: torch.Tensor) -> torch.Tensor:
        out.retain_grad()
        seen.append(out)
        return out

    handle = model.embed.register_forward_hook(keep)
    try:
        logits, _ = model(tokens)
        logits[0, -1].sum().backward()
    finally:
        handle.remove()
        model.zero_grad(set_to_none=True)
    touched = (seen[0].grad[0].abs().sum(dim=-1) > 0).nonzero()
    return tokens.shape[1] - 1 - int(touched.min())


def repeating_period(text: str, tail: int = 120, longest: int = 200) -> int | None:
    """The smallest ``p <= longest`` such that the last ``tail`` characters repeat with period ``p`` (they equal
    the ``tail`` characters ``p`` earlier), or None: how greedy decoding's loops are found."""
    end = text[-tail:]
    for p in range(1, min(longest, len(text) - tail) + 1):
        if text[-tail - p : -p] == end:
            return p
    return None


def words(text: str) -> list[str]:
    """The runs of letters in ``text``, lower-cased (how the chapter counts real words in a sample)."""
    return re.findall(r"[a-z]+", text.lower())


# ----------------------------------------------------------------------------- a character-level model


PACKAGE = Path(__file__).resolve().parent


def course_text(folder: Path = PACKAGE) -> str:
    """The docstrings of the course package's modules (``course/*.py``), in file order, joined by blank lines.

    This is the text the character model learns: prose about attention that ships with the package, so
    the page trains on the same text on the website, in Colab and on a laptop.
    """
    docs = []
    for path in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and ast.get_docstring(node):
                docs.append(ast.get_docstring(node))
    return "\n\n".join(docs)


@dataclass(frozen=True)
class Chars:
    """A character vocabulary: ``encode(text)`` -> int64 tensor, ``decode(tokens)`` -> text."""

    alphabet: str

    @classmethod
    def of(cls, text: str) -> Chars:
        return cls("".join(sorted(set(text))))

    def encode(self, text: str) -> torch.Tensor:
        index = {c: i for i, c in enumerate(self.alphabet)}
        return torch.tensor([index[c] for c in text], dtype=torch.long)

    def decode(self, tokens: torch.Tensor | list[int]) -> str:
        return "".join(self.alphabet[int(t)] for t in tokens)


@dataclass(frozen=True)
class CharRun(Budget):
    """The chapter's budget for the character model: GQA-2, feed-forward blocks, a sliding window of
    ``window`` characters, trained on ``batch`` windows of ``context`` characters per step."""

    d_ff: int = 128
    window: int | None = 16
    context: int = 64
    batch: int = 16
    steps: int = 500


def train_chars(run: CharRun = CharRun(), text: str | None = None) -> Trained:
    """A character model trained on :func:`course_text`; ``extra`` holds its ``chars`` and ``data``."""
    text = course_text() if text is None else text
    chars = Chars.of(text)
    data = chars.encode(text)
    config = run.config(len(chars.alphabet))
    rng = np.random.default_rng(run.seed)

    def batches(step: int) -> torch.Tensor:
        starts = torch.from_numpy(rng.integers(0, len(data) - run.context - 1, run.batch))
        return data[starts[:, None] + torch.arange(run.context + 1)]

    def losses_of(logits: torch.Tensor, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"loss": nn.functional.cross_entropy(logits.transpose(1, 2), tokens[:, 1:])}

    trained = _fit(config, run.seed, run.steps, run.lr, batches, losses_of)
    trained.extra.update(run=run, chars=chars, data=data)
    return trained


@functools.lru_cache(maxsize=2)
def trained_chars() -> Trained:
    """:func:`train_chars` with the chapter's budget, computed once per process."""
    return train_chars()
