"""Stand-ins for the reference functions the reading pages call, built on library calls.

The course package that students install (``pip install attention-course``, the readings' first cell
in Colab) does not contain ``solutions/``: the reference implementation stays with the instructors.
The readings still need working attention functions to draw their figures, so this module provides
the same names with the same signatures, return types and shapes (COURSE.md's contracts), written on
top of what the libraries already offer: NumPy for chapters 1-3 (``numpy.logaddexp.reduce`` for a stable
softmax, ``numpy.matmul``, complex multiplication for rotations), so that a page measuring NumPy's memory
measures them; PyTorch for chapters 4-6 (``torch.softmax``, ``Tensor.unflatten``, ``repeat_interleave``,
``torch.nn.functional.scaled_dot_product_attention``). They are not graded, and a test checks that no
block of the reference's code appears in them or anywhere else in the installable package.

``course.impl`` decides which one a page gets; ``tests/test_course_impl.py`` checks every stand-in
against the reference on random inputs within the course tolerances. Shapes follow COURSE.md:
``Q: (..., n_q, d_k)``, ``K: (..., n_k, d_k)``, ``V: (..., n_k, d_v)``, masks boolean with
``True`` = may attend, fully blocked rows give zero weights and zero outputs.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

KVCache = tuple[torch.Tensor, torch.Tensor]


# ----------------------------------------------------------------------------- shared checks


def _shape(x: Any) -> tuple[int, ...]:
    return tuple(int(s) for s in x.shape)


def _check_qkv(Q: Any, K: Any, V: Any) -> None:
    """Clear ``ValueError`` unless ``Q (..., n_q, d_k)``, ``K (..., n_k, d_k)``, ``V (..., n_k, d_v)``."""
    for name, x, layout in (("Q", Q, "(..., n_q, d_k)"), ("K", K, "(..., n_k, d_k)"), ("V", V, "(..., n_k, d_v)")):
        if x.ndim < 2:
            raise ValueError(f"{name} must have shape {layout} (at least 2 dims), got shape {_shape(x)}")
    if Q.shape[-1] != K.shape[-1]:
        raise ValueError(f"Q and K must share d_k (last dim): Q {_shape(Q)}, K {_shape(K)}")
    if K.shape[-2] != V.shape[-2]:
        raise ValueError(f"K and V must have the same number of keys n_k (dim -2): K {_shape(K)}, V {_shape(V)}")


def _check_mask(mask: Any, n_q: int, n_k: int) -> None:
    if "bool" not in str(mask.dtype):
        raise ValueError(f"mask must be boolean (True = may attend), got dtype {mask.dtype} with shape {_shape(mask)}")
    if mask.ndim < 2 or mask.shape[-2] not in (1, n_q) or mask.shape[-1] not in (1, n_k):
        raise ValueError(f"mask of shape {_shape(mask)} does not broadcast to (..., n_q, n_k) = (..., {n_q}, {n_k})")


def attend(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(output (..., n_q, d_v), weights (..., n_q, n_k))`` with ``torch.softmax``; blocked rows give 0.

    ``mask``: boolean, broadcastable to ``(..., n_q, n_k)``, True = may attend.
    """
    _check_qkv(q, k, v)
    scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
    if mask is not None:
        _check_mask(mask, q.shape[-2], k.shape[-2])
        scores = scores.masked_fill(~mask, float("-inf"))
    # A row that is -inf everywhere is NaN after the softmax: it gets zeros (the course's convention).
    weights = torch.nan_to_num(torch.softmax(scores, dim=-1), nan=0.0)
    return torch.matmul(weights, v), weights


# ----------------------------------------------------------------------------- chapters 1-3 (NumPy in, NumPy out)


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Stable softmax along ``axis``: ``exp(x - logsumexp(x))`` with ``numpy.logaddexp.reduce``.

    A slice that is ``-inf`` everywhere gives zeros. Same shape as ``x``; integers become float64.
    """
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    log_total = np.logaddexp.reduce(x, axis=axis, keepdims=True)  # never overflows, -inf for an all -inf slice
    with np.errstate(invalid="ignore"):
        return np.nan_to_num(np.exp(x - log_total), nan=0.0)


def soft_lookup(
    query: np.ndarray, keys: np.ndarray, values: np.ndarray, temperature: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """``(output (d_v,), weights (n,))`` for ``query (d,)``, ``keys (n, d)``, ``values (n, d_v)``."""
    query, keys, values = (np.asarray(a) for a in (query, keys, values))
    if query.ndim != 1 or keys.ndim != 2 or values.ndim != 2:
        raise ValueError(
            f"need query (d,), keys (n, d), values (n, d_v); got {_shape(query)}, {_shape(keys)}, {_shape(values)}"
        )
    if keys.shape[1] != query.shape[0] or keys.shape[0] != values.shape[0]:
        raise ValueError(f"query {_shape(query)}, keys {_shape(keys)} and values {_shape(values)} do not fit")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    weights = softmax(np.matmul(keys, query) / temperature)
    return np.matmul(weights, values), weights


def causal_mask(n_q: int, n_k: int) -> np.ndarray:
    """Boolean ``(n_q, n_k)``: query ``i`` may attend key ``j`` iff ``j <= i + (n_k - n_q)`` (broadcast compare)."""
    if n_q < 0 or n_k < 0:
        raise ValueError(f"n_q and n_k must be >= 0, got n_q={n_q}, n_k={n_k}")
    return np.arange(n_k)[None, :] <= np.arange(n_q)[:, None] + (n_k - n_q)


def padding_mask(lengths: np.ndarray, n_k: int) -> np.ndarray:
    """Boolean ``(batch, 1, n_k)``: key ``j`` of sequence ``b`` is allowed iff ``j < lengths[b]``."""
    lengths = np.asarray(lengths)
    if lengths.ndim != 1:
        raise ValueError(f"lengths must have shape (batch,), got shape {_shape(lengths)}")
    if lengths.size and (lengths.min() < 0 or lengths.max() > n_k):
        raise ValueError(f"lengths must lie in [0, n_k={n_k}], got {lengths.tolist()}")
    return np.greater.outer(lengths, np.arange(n_k))[:, None, :]


def scaled_dot_product_attention(
    Q: np.ndarray, K: np.ndarray, V: np.ndarray, mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(output (..., n_q, d_v), weights (..., n_q, n_k))`` of NumPy arrays (``numpy.matmul`` and :func:`softmax`)."""
    Q, K, V = (np.asarray(a) for a in (Q, K, V))
    _check_qkv(Q, K, V)
    dtype = np.result_type(Q, K, V, np.float32)
    keys_t = np.swapaxes(K.astype(dtype, copy=False), -2, -1)
    logits = np.matmul(Q.astype(dtype, copy=False), keys_t) * dtype.type(1.0 / math.sqrt(Q.shape[-1]))
    if mask is not None:
        mask = np.asarray(mask)
        _check_mask(mask, Q.shape[-2], K.shape[-2])
        logits = np.where(mask, logits, dtype.type(-np.inf))
    weights = softmax(logits).astype(dtype, copy=False)
    return np.matmul(weights, V.astype(dtype, copy=False)), weights


def _project(name: str, X: np.ndarray, W: np.ndarray) -> np.ndarray:
    W = np.asarray(W)
    if W.ndim != 2 or W.shape[0] != X.shape[-1]:
        raise ValueError(f"{name} {_shape(W)} does not fit an input of shape {_shape(X)}: need (d_model, d_out)")
    return np.matmul(X, W)


def self_attention(
    X: np.ndarray, W_q: np.ndarray, W_k: np.ndarray, W_v: np.ndarray, causal: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """``X (..., n, d_model)``, ``W_* (d_model, d_k | d_v)`` -> ``(output (..., n, d_v), weights (..., n, n))``."""
    X = np.asarray(X)
    if X.ndim < 2:
        raise ValueError(f"X must have shape (..., n, d_model), got shape {_shape(X)}")
    Q, K, V = _project("W_q", X, W_q), _project("W_k", X, W_k), _project("W_v", X, W_v)
    n = X.shape[-2]
    return scaled_dot_product_attention(Q, K, V, causal_mask(n, n) if causal else None)


def cross_attention(
    X_q: np.ndarray,
    X_kv: np.ndarray,
    W_q: np.ndarray,
    W_k: np.ndarray,
    W_v: np.ndarray,
    kv_mask: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Queries from ``X_q (..., n_q, d_model)``, keys/values from ``X_kv (..., n_k, d_model_kv)``."""
    X_q, X_kv = np.asarray(X_q), np.asarray(X_kv)
    if X_q.ndim < 2 or X_kv.ndim < 2:
        raise ValueError(f"X_q and X_kv must be (..., n, d_model), got shapes {_shape(X_q)} and {_shape(X_kv)}")
    Q, K, V = _project("W_q", X_q, W_q), _project("W_k", X_kv, W_k), _project("W_v", X_kv, W_v)
    return scaled_dot_product_attention(Q, K, V, kv_mask)


def _pair_angles(n_positions: np.ndarray, d: int, base: float) -> np.ndarray:
    """``(n, d // 2)`` angles ``position * base ** (-2i / d)``."""
    return np.multiply.outer(n_positions, base ** (-np.arange(0, d, 2) / d))


def sinusoidal_positions(n: int, d: int) -> np.ndarray:
    """``(n, d)``, ``d`` even: ``P[p, 2i] = sin(p / 10000**(2i/d))``, ``P[p, 2i+1] = cos(...)``."""
    if n < 0 or d <= 0 or d % 2:
        raise ValueError(f"need n >= 0 and an even d > 0, got n={n}, d={d}")
    angles = _pair_angles(np.arange(n, dtype=np.float64), d, 10000.0)
    return np.stack([np.sin(angles), np.cos(angles)], axis=-1).reshape(n, d)


def apply_rope(x: np.ndarray, positions: np.ndarray, base: float = 10000.0) -> np.ndarray:
    """Rotate each pair ``(x[..., 2i], x[..., 2i+1])`` of ``x (..., n, d)`` by the angle ``positions * base**(-2i/d)``.

    Written as a complex multiplication: pair ``i`` is ``x[..., 2i] + 1j * x[..., 2i+1]``.
    """
    x, positions = np.asarray(x), np.asarray(positions)
    if x.ndim < 2 or x.shape[-1] % 2:
        raise ValueError(f"x must have shape (..., n, d) with d even, got shape {_shape(x)}")
    if positions.shape != (x.shape[-2],) or not np.issubdtype(positions.dtype, np.integer):
        raise ValueError(f"positions must be ({x.shape[-2]},) integers, got {_shape(positions)} {positions.dtype}")
    dtype = np.result_type(x, np.float32)
    pairs = x.astype(dtype).reshape(*x.shape[:-1], -1, 2)
    z = pairs[..., 0] + 1j * pairs[..., 1]
    z = z * np.exp(1j * _pair_angles(positions.astype(np.float64), x.shape[-1], base))
    return np.stack([z.real, z.imag], axis=-1).reshape(x.shape).astype(dtype)


# ----------------------------------------------------------------------------- chapters 4-6 (PyTorch)


def _check_heads(d_model: int, n_heads: int, n_kv_heads: int | None = None) -> None:
    if n_heads <= 0 or d_model % n_heads:
        raise ValueError(f"n_heads={n_heads} must divide d_model={d_model}")
    if n_kv_heads is not None and (n_kv_heads <= 0 or n_heads % n_kv_heads):
        raise ValueError(f"n_kv_heads={n_kv_heads} must divide n_heads={n_heads}")


def _linear_layers(module: nn.Module, sizes: dict[str, tuple[int, int]], bias: bool) -> None:
    """``module.<name> = nn.Linear(d_in, d_out)`` for every ``name: (d_in, d_out)``."""
    for name, (d_in, d_out) in sizes.items():
        setattr(module, name, nn.Linear(d_in, d_out, bias=bias))


def _to_heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """``(batch, seq, n_heads * head_dim)`` -> ``(batch, n_heads, seq, head_dim)`` (``Tensor.unflatten``)."""
    return x.unflatten(-1, (n_heads, -1)).transpose(1, 2)


def _from_heads(x: torch.Tensor) -> torch.Tensor:
    """``(batch, n_heads, seq, head_dim)`` -> ``(batch, seq, n_heads * head_dim)`` (``Tensor.flatten``)."""
    return x.transpose(1, 2).flatten(-2)


def _heads_mask(mask: torch.Tensor) -> torch.Tensor:
    """``(n_q, n_k)`` or ``(batch, n_q|1, n_k)`` or ``(batch, heads|1, n_q|1, n_k)`` -> broadcastable to 4 dims."""
    if mask.ndim == 3:
        return mask.unsqueeze(1)
    if mask.ndim in (2, 4):
        return mask
    raise ValueError(f"mask of shape {_shape(mask)} must be (n_q, n_k), (batch, n_q, n_k) or (batch, heads, n_q, n_k)")


class MultiHeadAttention(nn.Module):
    """Multi-head attention with ``nn.Linear`` layers ``q_proj``, ``k_proj``, ``v_proj``, ``out_proj``.

    ``forward(query (batch, n_q, d_model), key (batch, n_k, d_model), value, mask=None)`` returns
    ``(output (batch, n_q, d_model), weights (batch, n_heads, n_q, n_k))``.
    """

    def __init__(self, d_model: int, n_heads: int, bias: bool = True) -> None:
        super().__init__()
        _check_heads(d_model, n_heads)
        self.d_model = d_model
        self.n_heads = n_heads
        self.head_dim = d_model // n_heads
        _linear_layers(self, {name: (d_model, d_model) for name in ("q_proj", "k_proj", "v_proj", "out_proj")}, bias)

    def forward(
        self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        for name, t in (("query", query), ("key", key), ("value", value)):
            if t.ndim != 3 or t.shape[-1] != self.d_model:
                raise ValueError(f"{name} must be (batch, seq, d_model={self.d_model}), got shape {_shape(t)}")
        q, k, v = (
            _to_heads(proj(t), self.n_heads)
            for proj, t in ((self.q_proj, query), (self.k_proj, key), (self.v_proj, value))
        )
        out, weights = attend(q, k, v, None if mask is None else _heads_mask(mask))
        return self.out_proj(_from_heads(out)), weights


class GroupedQueryAttention(nn.Module):
    """Causal grouped-query self-attention with a KV cache ``(k, v)``, each ``(batch, n_kv_heads, n_past, head_dim)``.

    ``forward(x (batch, n_new, d_model), mask=None, kv_cache=None)`` returns
    ``(output (batch, n_new, d_model), new_kv_cache)``; ``mask=None`` is the lower-right causal mask.
    """

    def __init__(self, d_model: int, n_heads: int, n_kv_heads: int, bias: bool = False) -> None:
        super().__init__()
        _check_heads(d_model, n_heads, n_kv_heads)
        self.d_model = d_model
        self.n_heads = n_heads
        self.n_kv_heads = n_kv_heads
        self.head_dim = d_model // n_heads
        self.n_rep = n_heads // n_kv_heads
        q_width, kv_width = n_heads * self.head_dim, n_kv_heads * self.head_dim
        sizes = {"q_proj": (d_model, q_width), "k_proj": (d_model, kv_width), "v_proj": (d_model, kv_width),
                 "out_proj": (q_width, d_model)}
        _linear_layers(self, sizes, bias)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None, kv_cache: KVCache | None = None
    ) -> tuple[torch.Tensor, KVCache]:
        if x.ndim != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"x must be (batch, n_new, d_model={self.d_model}), got shape {_shape(x)}")
        q = _to_heads(self.q_proj(x), self.n_heads)
        new_kv = (_to_heads(self.k_proj(x), self.n_kv_heads), _to_heads(self.v_proj(x), self.n_kv_heads))
        if kv_cache is None:
            k, v = new_kv
        else:
            self._check_cache(kv_cache, x.shape[0])
            k, v = (torch.cat(pair, dim=2) for pair in zip(kv_cache, new_kv, strict=True))
        if mask is None:  # lower-right causal: the cached tokens are all in the past
            mask = torch.ones(q.shape[2], k.shape[2], dtype=torch.bool, device=x.device).tril(k.shape[2] - q.shape[2])
        out, _ = attend(q, k.repeat_interleave(self.n_rep, dim=1), v.repeat_interleave(self.n_rep, dim=1),
                        _heads_mask(mask))
        return self.out_proj(_from_heads(out)), (k, v)

    def _check_cache(self, kv_cache: KVCache, batch: int) -> None:
        shapes = [_shape(t) for t in kv_cache]
        n_past = shapes[0][2] if len(shapes[0]) == 4 else -1
        expected = (batch, self.n_kv_heads, n_past, self.head_dim)
        if any(s != expected for s in shapes):
            raise ValueError(f"kv_cache tensors must have shape (batch, n_kv_heads, n_past, head_dim) = {expected}, "
                             f"got {shapes}")


def kv_cache_bytes(
    batch: int, seq_len: int, n_layers: int, n_kv_heads: int, head_dim: int, bytes_per_elem: int = 2
) -> int:
    """Bytes of a KV cache: keys and values for every layer, KV head, position and feature."""
    return math.prod((2, batch, seq_len, n_layers, n_kv_heads, head_dim, bytes_per_elem))


def mha_to_gqa(mha: nn.Module, n_kv_heads: int) -> GroupedQueryAttention:
    """A ``GroupedQueryAttention`` whose key/value heads are the means of ``mha``'s heads in each group.

    Group ``g`` holds query heads ``g * n_rep ... (g + 1) * n_rep - 1``; query and output projections are copied.
    """
    n_heads, head_dim = mha.n_heads, mha.head_dim
    if n_kv_heads <= 0 or n_heads % n_kv_heads:
        raise ValueError(f"n_kv_heads={n_kv_heads} must divide n_heads={n_heads}")
    weight = mha.q_proj.weight  # build in the MHA's dtype first: float64 copied into float32 would be rounded
    gqa = GroupedQueryAttention(mha.d_model, n_heads, n_kv_heads, bias=mha.q_proj.bias is not None)
    gqa = gqa.to(dtype=weight.dtype, device=weight.device)
    state = {key: t.detach().clone() for key, t in mha.state_dict().items()}
    for key in state:
        if key.startswith(("k_proj.", "v_proj.")):  # rows are (head, feature): average the heads of a group
            grouped = state[key].unflatten(0, (n_kv_heads, n_heads // n_kv_heads, head_dim))
            state[key] = grouped.mean(dim=1).flatten(0, 1)
    gqa.load_state_dict(state)
    return gqa


def tiled_attention(
    Q: torch.Tensor, K: torch.Tensor, V: torch.Tensor, block_size: int = 128, causal: bool = False
) -> torch.Tensor:
    """``(..., n_q, d_v)``: blocks of ``block_size`` queries, each through PyTorch's fused SDPA.

    PyTorch's fused kernel itself never holds the ``(n_q, n_k)`` matrix. ``causal`` is lower-right
    aligned (query ``i`` sees keys ``j <= i + n_k - n_q``); queries that see no key get zeros.
    """
    _check_qkv(Q, K, V)
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")
    dtype = functools.reduce(torch.promote_types, (Q.dtype, K.dtype, V.dtype))
    leading = torch.broadcast_shapes(*(t.shape[:-2] for t in (Q, K, V)))
    Q, K, V = (t.to(dtype).broadcast_to((*leading, *t.shape[-2:])) for t in (Q, K, V))
    n_q, n_k = Q.shape[-2], K.shape[-2]
    blocks = []
    for start in range(0, n_q, block_size):
        rows = torch.arange(start, min(start + block_size, n_q), device=Q.device)
        if not causal:
            blocks.append(F.scaled_dot_product_attention(Q[..., rows, :], K, V))
            continue
        allowed = torch.arange(n_k, device=Q.device) <= (rows + n_k - n_q)[:, None]  # lower-right causal
        block = F.scaled_dot_product_attention(Q[..., rows, :], K, V, attn_mask=allowed)
        blocks.append(torch.where(allowed.any(dim=-1)[:, None], block, 0.0))  # no visible key: zeros, not NaN
    return torch.cat(blocks, dim=-2) if blocks else Q.new_zeros((*leading, 0, V.shape[-1]))


def sdpa_backward(
    Q: torch.Tensor, K: torch.Tensor, V: torch.Tensor, dO: torch.Tensor, mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(dQ, dK, dV)`` of scaled dot-product attention given ``dO (..., n_q, d_v)``, by ``torch.autograd``.

    The stand-in differentiates :func:`attend` with autograd (the exercise writes the gradients by hand).
    Q, K, V and dO share their batch dims; ``mask`` broadcasts to ``(..., n_q, n_k)``, True = may attend;
    a fully blocked row gets zero gradients.
    """
    _check_qkv(Q, K, V)
    if dO.shape != (*Q.shape[:-1], V.shape[-1]) or not Q.shape[:-2] == K.shape[:-2] == V.shape[:-2]:
        raise ValueError(f"dO must have the output's shape (..., n_q, d_v) and Q, K, V, dO the same batch dims: "
                         f"Q {_shape(Q)}, K {_shape(K)}, V {_shape(V)}, dO {_shape(dO)}")
    with torch.enable_grad():
        leaves = [t.detach().requires_grad_(True) for t in (Q, K, V)]
        output, _ = attend(*leaves, mask)
        return tuple(g.detach() for g in torch.autograd.grad(output, leaves, dO))  # type: ignore[return-value]


# ----------------------------------------------------------------------------- chapter 7 (PyTorch)


class DecoderLayer(nn.Module):
    """Pre-norm decoder layer: GQA self-attention with a KV cache, multi-head cross-attention, feed-forward.

    Submodules ``self_attn``, ``cross_attn``, ``ff1``, ``ff2``, ``norm1``-``norm3`` (the reference's names).
    ``forward(x (batch, n_new, d_model), memory (batch, n_src, d_model), memory_mask=None, kv_cache=None)``
    returns ``(output (batch, n_new, d_model), new_kv_cache, cross_weights (batch, n_heads, n_new, n_src))``.
    """

    def __init__(self, d_model: int, n_heads: int, n_kv_heads: int, d_ff: int) -> None:
        super().__init__()
        _check_heads(d_model, n_heads, n_kv_heads)
        if d_ff <= 0:
            raise ValueError(f"d_ff must be > 0, got {d_ff}")
        self.d_model = d_model
        self.add_module("self_attn", GroupedQueryAttention(d_model, n_heads, n_kv_heads))
        self.add_module("cross_attn", MultiHeadAttention(d_model, n_heads))
        _linear_layers(self, {"ff1": (d_model, d_ff), "ff2": (d_ff, d_model)}, bias=True)
        for name in ("norm1", "norm2", "norm3"):
            self.add_module(name, nn.LayerNorm(d_model))

    def forward(
        self, x: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor | None = None,
        kv_cache: KVCache | None = None,
    ) -> tuple[torch.Tensor, KVCache, torch.Tensor]:
        if x.ndim != 3 or memory.ndim != 3 or x.shape[-1] != self.d_model or memory.shape[-1] != self.d_model:
            raise ValueError(f"x and memory must be (batch, seq, d_model={self.d_model}), got shapes "
                             f"{_shape(x)} and {_shape(memory)}")
        attended, new_cache = self.self_attn(self.norm1(x), kv_cache=kv_cache)
        x = attended + x
        queries = self.norm2(x)
        crossed, weights = self.cross_attn(queries, memory, memory, mask=memory_mask)
        x = crossed + x
        hidden = F.relu(self.ff1(self.norm3(x)))
        return self.ff2(hidden) + x, new_cache, weights


@torch.no_grad()
def greedy_decode(
    model: nn.Module, src: torch.Tensor, bos_id: int, max_len: int, use_cache: bool = True
) -> torch.Tensor:
    """``(batch, max_len)`` tokens: start from ``bos_id``, append the argmax of the last logits ``max_len`` times.

    ``model`` offers ``encode(src) -> (memory, memory_mask)`` and ``decode(tokens, memory, memory_mask,
    kv_caches=None) -> (logits, new_kv_caches)``; with ``use_cache`` only the newest token is decoded.
    """
    if src.ndim != 2 or max_len < 0:
        raise ValueError(f"need src (batch, n_src) and max_len >= 0, got shape {_shape(src)} and max_len={max_len}")
    memory, memory_mask = model.encode(src)
    out = src.new_full((src.shape[0], max_len + 1), bos_id)
    caches = None
    for step in range(1, max_len + 1):
        if use_cache:
            logits, caches = model.decode(out[:, step - 1 : step], memory, memory_mask, caches)
        else:
            logits = model.decode(out[:, :step], memory, memory_mask)[0]
        out[:, step] = torch.argmax(logits[:, -1], dim=-1)
    return out[:, 1:]


# ----------------------------------------------------------------------------- chapter 8 (PyTorch)


def sliding_window_mask(n_q: int, n_k: int, window: int) -> torch.Tensor:
    """``(n_q, n_k)`` boolean: query ``i`` (at position ``i + n_k - n_q``) sees the ``window`` keys up to itself.

    The band between two diagonals: ``tril`` keeps keys at or before the query, ``triu`` drops those
    ``window`` or more positions back.
    """
    if min(n_q, n_k) < 0 or window < 1:
        raise ValueError(f"need n_q, n_k >= 0 and window >= 1, got n_q={n_q}, n_k={n_k}, window={window}")
    offset = n_k - n_q
    return torch.ones(n_q, n_k, dtype=torch.bool).tril(offset).triu(offset - window + 1)


def rolling_cache_update(kv_cache: KVCache | None, k_new: torch.Tensor, v_new: torch.Tensor,
                         window: int) -> KVCache:
    """The cache ``(k, v)`` with the new positions appended, cut to its last ``window`` positions (oldest first)."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    pairs = [(k_new, v_new)] if kv_cache is None else [tuple(kv_cache), (k_new, v_new)]
    k, v = (torch.cat(parts, dim=2) for parts in zip(*pairs, strict=True))
    keep = min(window, k.shape[2])
    return k.narrow(2, k.shape[2] - keep, keep), v.narrow(2, v.shape[2] - keep, keep)


def next_token_probs(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                     top_p: float | None = None) -> torch.Tensor:
    """``(..., vocab)``: softmax of ``logits / temperature`` (0: greedy), then top-k (ties kept), then top-p
    (a token stays while the tokens strictly more probable hold less than ``top_p``), renormalised."""
    if temperature < 0 or (top_k is not None and top_k < 1) or (top_p is not None and not 0 < top_p <= 1):
        raise ValueError(f"need temperature >= 0, top_k >= 1, 0 < top_p <= 1; got {temperature}, {top_k}, {top_p}")
    if temperature == 0:
        return F.one_hot(torch.argmax(logits, dim=-1), logits.shape[-1]).to(logits.dtype)
    logits = logits / temperature
    if top_k is not None:
        threshold = logits.topk(min(top_k, logits.shape[-1]), dim=-1).values.amin(dim=-1, keepdim=True)
        logits = torch.where(logits >= threshold, logits, float("-inf"))
    probs = logits.softmax(dim=-1)
    if top_p is not None:
        descending, _ = torch.sort(probs, dim=-1, descending=True)
        mass_before = torch.cumsum(descending, dim=-1).roll(1, dims=-1)
        mass_before[..., 0] = 0
        last_kept = torch.where(mass_before < top_p, descending, float("inf")).amin(dim=-1, keepdim=True)
        probs = torch.where(probs >= last_kept, probs, 0.0)
        probs = probs / probs.sum(dim=-1, keepdim=True)
    return probs


def sample_next(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                top_p: float | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """``(...)`` int64: one ``torch.multinomial`` draw per row of ``next_token_probs(logits, ...)``."""
    probs = next_token_probs(logits, temperature, top_k, top_p)
    drawn = torch.multinomial(probs.flatten(0, -2) if probs.ndim > 1 else probs[None], 1, generator=generator)
    return drawn.view(probs.shape[:-1])


def induction_score(weights: torch.Tensor, period: int) -> torch.Tensor:
    """``(...)``: the mean of ``weights[..., i, i - period + 1]`` over ``i = period ... n - 1`` (a diagonal)."""
    n = weights.shape[-1]
    if weights.ndim < 2 or weights.shape[-2] != n or not 1 <= period < n:
        raise ValueError(f"need weights (..., n, n) and 1 <= period < n, got {_shape(weights)} and period={period}")
    stripe = torch.diagonal(weights, offset=1 - period, dim1=-2, dim2=-1)  # rows period - 1 ... n - 1
    return stripe[..., 1:].mean(dim=-1)
