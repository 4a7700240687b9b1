"""Chapter 8 — a tiny GPT: sliding-window attention, its rolling KV cache, sampling, and induction heads.

- ``sliding_window_mask``: the causal mask of a window of ``window`` keys (Longformer, Mistral), lower-right
  aligned like chapter 2's ``causal_mask``.
- ``rolling_cache_update``: the KV cache of a sliding-window layer keeps the last ``window`` positions only,
  so its size stops growing.
- ``next_token_probs`` and ``sample_next``: the next token's distribution after temperature, top-k and
  top-p (in that order), and one draw from it with a seeded ``torch.Generator``.
- ``induction_score``: how much a head attends, on a sequence that repeats with period ``period``, from
  each position of the repeat to the token that followed the same token one period earlier.
"""

from __future__ import annotations

import numbers
from types import SimpleNamespace

import torch

from ._checks import require_min_ndim, require_ndim, shape_of, validated

KVCache = tuple[torch.Tensor, torch.Tensor]


def _require_int(name: str, value: object, minimum: int) -> None:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _check_window_mask(a: SimpleNamespace) -> None:
    _require_int("n_q", a.n_q, 0)
    _require_int("n_k", a.n_k, 0)
    _require_int("window", a.window, 1)


def _check_rolling(a: SimpleNamespace) -> None:
    _require_int("window", a.window, 1)
    require_ndim("k_new", a.k_new, 4, "(batch, n_kv_heads, n_new, head_dim)")
    if shape_of(a.v_new)[:3] != shape_of(a.k_new)[:3] or a.v_new.ndim != 4:
        raise ValueError(f"v_new {shape_of(a.v_new)} must be (batch, n_kv_heads, n_new, head_dim) like "
                         f"k_new {shape_of(a.k_new)}")
    if a.kv_cache is not None:
        past_k, past_v = a.kv_cache
        for name, past, new in (("k", past_k, a.k_new), ("v", past_v, a.v_new)):
            if past.ndim != 4 or shape_of(past)[:2] != shape_of(new)[:2] or past.shape[-1] != new.shape[-1]:
                raise ValueError(f"the cached {name} {shape_of(past)} and the new {name} {shape_of(new)} must both "
                                 f"be (batch, n_kv_heads, seq, head_dim) with the same batch, heads and head_dim")


def _check_probs(a: SimpleNamespace) -> None:
    require_min_ndim("logits", a.logits, 1, "(..., vocab)")
    if a.logits.shape[-1] == 0:
        raise ValueError(f"logits {shape_of(a.logits)} must have at least one token (last dim vocab > 0)")
    if not a.logits.is_floating_point():
        raise ValueError(f"logits must be floating point, got dtype {a.logits.dtype}")
    if not isinstance(a.temperature, numbers.Real) or isinstance(a.temperature, bool) or a.temperature < 0:
        raise ValueError(f"temperature must be a number >= 0 (0 = greedy), got {a.temperature!r}")
    if a.top_k is not None:
        _require_int("top_k", a.top_k, 1)
    if a.top_p is not None and (not isinstance(a.top_p, numbers.Real) or not 0 < a.top_p <= 1):
        raise ValueError(f"top_p must be a number in (0, 1], got {a.top_p!r}")


def _check_sample(a: SimpleNamespace) -> None:
    _check_probs(a)
    if a.generator is not None and not isinstance(a.generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator or None, got {type(a.generator).__name__}")


def _check_induction(a: SimpleNamespace) -> None:
    require_min_ndim("weights", a.weights, 2, "(..., n, n)")
    n_q, n_k = shape_of(a.weights)[-2:]
    if n_q != n_k:
        raise ValueError(f"weights {shape_of(a.weights)} must be self-attention weights (..., n, n)")
    _require_int("period", a.period, 1)
    if a.period >= n_k:
        raise ValueError(f"period={a.period} must be shorter than the sequence (n={n_k}): the sequence must repeat")


@validated(_check_window_mask)
def sliding_window_mask(n_q: int, n_k: int, window: int) -> torch.Tensor:
    """Causal sliding-window mask, ``(n_q, n_k)`` boolean, True = may attend.

    The queries are the last ``n_q`` of the ``n_k`` positions (lower-right aligned, as chapter 2's
    ``causal_mask``): query ``i`` sits at position ``p = i + (n_k - n_q)`` and sees the ``window`` keys
    ``p - window < j <= p``, itself included. ``window >= n_k`` gives the plain causal mask.
    """
    position = torch.arange(n_q)[:, None] + (n_k - n_q)  # (n_q, 1): where each query sits
    key = torch.arange(n_k)[None, :]  # (1, n_k)
    return (key <= position) & (key > position - window)


@validated(_check_rolling)
def rolling_cache_update(kv_cache: KVCache | None, k_new: torch.Tensor, v_new: torch.Tensor,
                         window: int) -> KVCache:
    """Append the new keys and values to a sliding-window layer's cache and keep its last ``window`` positions.

    Args:
        kv_cache: ``(k, v)``, each ``(batch, n_kv_heads, n_past, head_dim)``, oldest position first; or None.
        k_new, v_new: ``(batch, n_kv_heads, n_new, head_dim)``, the new positions, oldest first.
        window: how many positions the cache keeps.

    Returns:
        ``(k, v)``, each ``(batch, n_kv_heads, min(n_past + n_new, window), head_dim)``: the most recent
        positions, still oldest first. The inputs are not modified.
    """
    if kv_cache is not None:
        k_new = torch.cat([kv_cache[0], k_new], dim=-2)
        v_new = torch.cat([kv_cache[1], v_new], dim=-2)
    return k_new[..., -window:, :], v_new[..., -window:, :]


@validated(_check_probs)
def next_token_probs(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                     top_p: float | None = None) -> torch.Tensor:
    """The distribution the next token is drawn from, ``(..., vocab)``, in the dtype of ``logits``.

    In this order: divide the logits by ``temperature`` (0 means greedy: all the mass on the first
    largest logit); keep the tokens whose logit is at least the ``top_k``-th largest (ties with it
    are kept); softmax; keep the most probable tokens until their probability reaches ``top_p``: token
    ``i`` stays when the tokens strictly more probable than it hold less than ``top_p`` (so the token
    that crosses ``top_p`` stays, and so do tokens tied with it); renormalise.
    """
    if temperature == 0:
        return torch.nn.functional.one_hot(logits.argmax(dim=-1), logits.shape[-1]).to(logits.dtype)
    scaled = logits / temperature
    if top_k is not None:
        kth = torch.topk(scaled, min(top_k, scaled.shape[-1]), dim=-1).values[..., -1:]  # the k-th largest
        scaled = scaled.masked_fill(scaled < kth, float("-inf"))
    probs = torch.softmax(scaled, dim=-1)
    if top_p is not None:
        ranked = probs.sort(dim=-1, descending=True).values
        before = ranked.cumsum(dim=-1) - ranked  # the mass ranked before each token
        smallest = ranked.masked_fill(before >= top_p, float("inf")).min(dim=-1, keepdim=True).values
        probs = probs.masked_fill(probs < smallest, 0.0)
        probs = probs / probs.sum(dim=-1, keepdim=True)
    return probs


@validated(_check_sample)
def sample_next(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                top_p: float | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw one next token per row of ``logits (..., vocab)`` -> int64 ``(...)``.

    The distribution is ``next_token_probs(logits, temperature, top_k, top_p)``; the draw is one call
    ``torch.multinomial(probs, num_samples=1, generator=generator)`` on the rows (flattened to 2-D), so
    that the same generator state gives the same tokens.
    """
    probs = next_token_probs(logits, temperature, top_k, top_p)
    rows = probs.reshape(-1, probs.shape[-1])  # (rows, vocab)
    tokens = torch.multinomial(rows, num_samples=1, generator=generator)  # (rows, 1)
    return tokens.reshape(probs.shape[:-1])


@validated(_check_induction)
def induction_score(weights: torch.Tensor, period: int) -> torch.Tensor:
    """Mean attention from each position of the repeat to the token after that position's earlier copy.

    Args:
        weights: ``(..., n, n)`` attention weights of a head on sequences whose token ``i`` equals token
            ``i - period`` for every ``i >= period``.
        period: the length of the repeated block.

    Returns:
        ``(...)``: the mean over query positions ``i = period, ..., n - 1`` of ``weights[..., i, i - period + 1]``,
        in the dtype of ``weights``.
    """
    queries = torch.arange(period, weights.shape[-1])  # the positions of the repeat
    return weights[..., queries, queries - period + 1].mean(dim=-1)
