"""The catalogue of known mistakes: plausible wrong implementations of every graded exercise.

One source for two uses:

- ``grader.diagnose`` runs each mistake on the hidden inputs; when a student's wrong answer matches a
  mistake's output, the feedback names the mistake in words (``Mistake.message``).
- The proof tests (``tests/grading/test_exercise_proofs.py``) paste each mistake into the student
  release (:func:`inject`) and check that ``nbgrader autograde`` takes the points away and that
  ``nbgrader generate_feedback`` shows the message.

Each implementation is written the way a student would write it in the notebook: plain NumPy or
PyTorch plus the notebook's own functions (``softmax``, ``split_heads``, ...), no private helpers, so its
source can be pasted into a notebook as is (renamed to the function it replaces). A mistake of a method
(target ``"Class.method"``) replaces that method of the reference class.
"""

from __future__ import annotations

import ast
import inspect
import math
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .ch2_sdpa import causal_mask, scaled_dot_product_attention, softmax

if TYPE_CHECKING:
    import torch

    from .ch4_multihead import merge_heads, split_heads
    from .ch5_gqa import GroupedQueryAttention, repeat_kv

TORCH_ASSIGNMENTS = ("ch4-multihead", "ch5-gqa", "ch6-tiled")


def _load_torch_names() -> None:
    """Bind ``torch`` and the PyTorch chapters' functions as globals of this module, on first need.

    The NumPy chapters' mistakes never need torch, so grading chapters 1-3 does not import it (about a
    second per notebook). Every PyTorch chapter's mistake is reached through :func:`mistakes_for` or
    :meth:`Mistake.build`, which call this first.
    """
    if "torch" in globals():
        return
    import torch

    from .ch4_multihead import merge_heads, split_heads
    from .ch5_gqa import GroupedQueryAttention, repeat_kv

    globals().update(
        torch=torch,
        merge_heads=merge_heads,
        split_heads=split_heads,
        GroupedQueryAttention=GroupedQueryAttention,
        repeat_kv=repeat_kv,
    )


@dataclass(frozen=True)
class Mistake:
    """One known wrong implementation of ``target`` (a function name or ``"Class.method"``)."""

    id: str
    assignment: str
    target: str
    message: str
    impl: Callable

    @property
    def function(self) -> str:
        """The graded function or class the mistake belongs to (``"MultiHeadAttention"``)."""
        return self.target.split(".")[0]

    def build(self) -> Callable | type:
        """The wrong callable: the function itself, or a subclass of the reference with the method replaced."""
        if self.assignment in TORCH_ASSIGNMENTS:
            _load_torch_names()
        if "." not in self.target:
            return self.impl
        import solutions

        cls_name, method = self.target.split(".")
        base = getattr(solutions, cls_name)
        return type(cls_name, (base,), {method: self.impl, "__module__": __name__})

    def source(self) -> str:
        """The mistake's source as a definition of ``target``'s own name, ready to paste."""
        lines = textwrap.dedent(inspect.getsource(self.impl)).splitlines()
        node = ast.parse("\n".join(lines)).body[0]
        assert isinstance(node, ast.FunctionDef)
        body = lines[node.lineno - 1 :]
        name = self.target.split(".")[-1]
        body[0] = body[0].replace(f"def {self.impl.__name__}(", f"def {name}(", 1)
        return "\n".join(body)


MISTAKES: list[Mistake] = []


def mistake(assignment: str, target: str, id: str, message: str) -> Callable[[Callable], Callable]:
    """Register the decorated function as the known mistake ``id`` of ``target``."""

    def register(impl: Callable) -> Callable:
        if any(m.id == id for m in MISTAKES):
            raise ValueError(f"duplicate mistake id {id!r}")
        MISTAKES.append(Mistake(id, assignment, target, message, impl))
        return impl

    return register


def mistakes_for(assignment: str, function: str | None = None) -> list[Mistake]:
    """The mistakes of one assignment, optionally only those of one graded function or class."""
    if assignment in TORCH_ASSIGNMENTS:
        _load_torch_names()
    return [m for m in MISTAKES if m.assignment == assignment and function in (None, m.function)]


def inject(cell_source: str, m: Mistake) -> str:
    """Replace the definition of ``m.target`` in a notebook cell's source by the mistake's source."""
    lines = cell_source.splitlines()
    tree = ast.parse(cell_source)
    scope: list[ast.stmt] = tree.body
    indent = ""
    parts = m.target.split(".")
    for cls_name in parts[:-1]:
        cls = next(n for n in scope if isinstance(n, ast.ClassDef) and n.name == cls_name)
        scope = cls.body
        indent = " " * cls.body[0].col_offset
    node = next(n for n in scope if isinstance(n, ast.FunctionDef) and n.name == parts[-1])
    start = node.lineno - 1 - len(node.decorator_list)
    new = [indent + line if line.strip() else "" for line in m.source().splitlines()]
    return "\n".join(lines[:start] + new + lines[node.end_lineno :])


# ==================================================================================================
# Chapter 1 — lookup tables
# ==================================================================================================


@mistake(
    "ch1-lookup",
    "hard_lookup",
    "hard-returns-key",
    "hard_lookup returns the matching key itself; it should return the value stored under that key.",
)
def hard_lookup_returns_key(query, keys, values):
    for i in range(len(keys)):
        if np.all(keys[i] == query):
            return keys[i]
    raise KeyError("no key equals the query")


@mistake(
    "ch1-lookup",
    "hard_lookup",
    "hard-nearest-key",
    "hard_lookup must match the query exactly and raise KeyError when no key equals it; yours returns "
    "the value of the most similar key instead (that is an argmax, not a lookup).",
)
def hard_lookup_nearest_key(query, keys, values):
    return values[np.argmax(keys @ query)]


@mistake(
    "ch1-lookup",
    "hard_lookup",
    "hard-any-coordinate",
    "a key matches only if it equals the query in every coordinate (np.all); yours accepts a key that "
    "agrees with the query in a single coordinate (np.any).",
)
def hard_lookup_any_coordinate(query, keys, values):
    matches = np.flatnonzero(np.any(keys == query, axis=-1))
    if matches.size == 0:
        raise KeyError("no key equals the query")
    return values[matches[0]]


@mistake(
    "ch1-lookup",
    "soft_lookup",
    "soft-temperature-multiplied",
    "the scores must be divided by the temperature (keys @ query / temperature); yours multiplies them, "
    "so a small temperature flattens the weights instead of sharpening them.",
)
def soft_lookup_temperature_multiplied(query, keys, values, temperature=1.0):
    scores = keys @ query * temperature
    weights = np.exp(scores - scores.max())
    weights = weights / weights.sum()
    return weights @ values, weights


@mistake(
    "ch1-lookup",
    "soft_lookup",
    "soft-unstable",
    "your softmax overflows (NaN or inf) when the scores are large, e.g. for a small temperature: "
    "subtract the largest score before calling np.exp.",
)
def soft_lookup_unstable(query, keys, values, temperature=1.0):
    weights = np.exp(keys @ query / temperature)
    weights = weights / weights.sum()
    return weights @ values, weights


@mistake(
    "ch1-lookup",
    "soft_lookup",
    "soft-not-normalised",
    "your weights do not sum to 1: after np.exp, divide by their sum (that is what makes it a softmax).",
)
def soft_lookup_not_normalised(query, keys, values, temperature=1.0):
    scores = keys @ query / temperature
    weights = np.exp(scores - scores.max())
    return weights @ values, weights


@mistake(
    "ch1-lookup",
    "soft_lookup",
    "soft-sqrt-d-scale",
    "chapter 1's soft lookup has no 1/sqrt(d) scale: the weights are softmax(keys @ query / temperature) "
    "(the 1/sqrt(d_k) scale comes in chapter 2).",
)
def soft_lookup_sqrt_d_scale(query, keys, values, temperature=1.0):
    scores = keys @ query / temperature / np.sqrt(query.shape[-1])
    weights = np.exp(scores - scores.max())
    weights = weights / weights.sum()
    return weights @ values, weights


@mistake(
    "ch1-lookup",
    "numerical_gradient",
    "grad-transposed",
    "your Jacobian is transposed: row i must hold the derivatives of output i, so its shape is "
    "(d_v, d), one column per coordinate of the query.",
)
def numerical_gradient_transposed(f, query, eps=1e-6):
    query = np.asarray(query, dtype=float)
    rows = []
    for i in range(query.size):
        step = np.zeros_like(query)
        step[i] = eps
        rows.append((f(query + step) - f(query - step)) / (2 * eps))
    return np.stack(rows, axis=0)


@mistake(
    "ch1-lookup",
    "numerical_gradient",
    "grad-not-halved",
    "a central difference (f(q + eps) - f(q - eps)) spans a step of 2 * eps: divide by 2 * eps, not eps.",
)
def numerical_gradient_not_halved(f, query, eps=1e-6):
    query = np.asarray(query, dtype=float)
    columns = []
    for i in range(query.size):
        step = np.zeros_like(query)
        step[i] = eps
        columns.append((f(query + step) - f(query - step)) / eps)
    return np.stack(columns, axis=-1)


# ==================================================================================================
# Chapter 2 — scaled dot-product attention
# ==================================================================================================


@mistake(
    "ch2-sdpa",
    "softmax",
    "softmax-unstable",
    "your softmax overflows for large logits (e.g. 1e4): np.exp(1e4) is inf, and inf / inf is NaN. "
    "Subtract the maximum along the axis before calling np.exp.",
)
def softmax_unstable(x, axis=-1):
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


@mistake(
    "ch2-sdpa",
    "softmax",
    "softmax-ignores-axis",
    "your softmax always normalises over the last axis and ignores its `axis` argument.",
)
def softmax_ignores_axis(x, axis=-1):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@mistake(
    "ch2-sdpa",
    "softmax",
    "softmax-no-keepdims",
    "each slice must be divided by its own sum: compute the max and the sum with keepdims=True so they "
    "broadcast along `axis` (without it a 2-D input is divided by the wrong sums).",
)
def softmax_no_keepdims(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis)


@mistake(
    "ch2-sdpa",
    "softmax",
    "softmax-blocked-row-nan",
    "a slice whose logits are all -inf (a fully blocked row) must give all zeros, not NaN: its maximum "
    "is -inf, and -inf - (-inf) is NaN. Treat an infinite maximum as 0 and divide only where the sum is > 0.",
)
def softmax_blocked_row_nan(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@mistake(
    "ch2-sdpa",
    "causal_mask",
    "causal-off-by-one",
    "your causal mask is off by one: a query may attend its own position (the diagonal is allowed, "
    "j <= i), not only earlier ones.",
)
def causal_mask_off_by_one(n_q, n_k):
    return np.tril(np.ones((n_q, n_k), dtype=bool), k=n_k - n_q - 1)


@mistake(
    "ch2-sdpa",
    "causal_mask",
    "causal-inverted",
    "your causal mask is inverted: True must mean 'may attend', i.e. the past (lower triangle), and "
    "False the future.",
)
def causal_mask_inverted(n_q, n_k):
    return ~np.tril(np.ones((n_q, n_k), dtype=bool), k=n_k - n_q)


@mistake(
    "ch2-sdpa",
    "causal_mask",
    "causal-top-left",
    "when n_k > n_q your causal mask is aligned to the top-left corner; align it to the bottom-right "
    "(query i sees keys j <= i + (n_k - n_q)), so the last query sees every key.",
)
def causal_mask_top_left(n_q, n_k):
    return np.tril(np.ones((n_q, n_k), dtype=bool))


@mistake(
    "ch2-sdpa",
    "padding_mask",
    "padding-inverted",
    "your padding mask is inverted: True must mark the real tokens (j < length), False the padding.",
)
def padding_mask_inverted(lengths, n_k):
    return (np.arange(n_k)[None, :] >= np.asarray(lengths)[:, None])[:, None, :]


@mistake(
    "ch2-sdpa",
    "padding_mask",
    "padding-off-by-one",
    "your padding mask is off by one: a sequence of length L has valid keys 0 ... L - 1 (j < L, not j <= L).",
)
def padding_mask_off_by_one(lengths, n_k):
    return (np.arange(n_k)[None, :] <= np.asarray(lengths)[:, None])[:, None, :]


@mistake(
    "ch2-sdpa",
    "padding_mask",
    "padding-no-query-axis",
    "the padding mask must have shape (batch, 1, n_k): the axis of size 1 lets it broadcast over the queries.",
)
def padding_mask_no_query_axis(lengths, n_k):
    return np.arange(n_k)[None, :] < np.asarray(lengths)[:, None]


@mistake(
    "ch2-sdpa",
    "scaled_dot_product_attention",
    "sdpa-no-scale",
    "your scores are not scaled by 1/sqrt(d_k): use Q @ K^T / sqrt(d_k), where d_k is the last dimension of Q.",
)
def sdpa_no_scale(Q, K, V, mask=None):
    scores = Q @ np.swapaxes(K, -1, -2)
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    weights = softmax(scores, axis=-1)
    return weights @ V, weights


@mistake(
    "ch2-sdpa",
    "scaled_dot_product_attention",
    "sdpa-mask-after-softmax",
    "the mask is applied after the softmax: the remaining weights then no longer sum to 1. Set the "
    "blocked scores to -inf before the softmax instead.",
)
def sdpa_mask_after_softmax(Q, K, V, mask=None):
    scores = Q @ np.swapaxes(K, -1, -2) / np.sqrt(Q.shape[-1])
    weights = softmax(scores, axis=-1)
    if mask is not None:
        weights = np.where(mask, weights, 0.0)
    return weights @ V, weights


@mistake(
    "ch2-sdpa",
    "scaled_dot_product_attention",
    "sdpa-mask-inverted",
    "the mask polarity is inverted: True means 'may attend', so block the entries where the mask is False.",
)
def sdpa_mask_inverted(Q, K, V, mask=None):
    scores = Q @ np.swapaxes(K, -1, -2) / np.sqrt(Q.shape[-1])
    if mask is not None:
        scores = np.where(mask, -np.inf, scores)
    weights = softmax(scores, axis=-1)
    return weights @ V, weights


@mistake(
    "ch2-sdpa",
    "scaled_dot_product_attention",
    "sdpa-k-transpose-all-axes",
    "K is not transposed correctly: K.T reverses all axes, the batch axes included. Swap only the last "
    "two axes (np.swapaxes(K, -1, -2)).",
)
def sdpa_k_transpose_all_axes(Q, K, V, mask=None):
    scores = Q @ K.T / np.sqrt(Q.shape[-1])
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    weights = softmax(scores, axis=-1)
    return weights @ V, weights


@mistake(
    "ch2-sdpa",
    "scaled_dot_product_attention",
    "sdpa-softmax-over-queries",
    "the softmax is taken over the wrong axis: each query's weights over the keys (the last axis) must "
    "sum to 1, not each key's weights over the queries.",
)
def sdpa_softmax_over_queries(Q, K, V, mask=None):
    scores = Q @ np.swapaxes(K, -1, -2) / np.sqrt(Q.shape[-1])
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    weights = softmax(scores, axis=-2)
    return weights @ V, weights


@mistake(
    "ch2-sdpa",
    "scaled_dot_product_attention",
    "sdpa-large-negative-mask",
    "a fully blocked query row must get zero weights and a zero output. Masking with a large negative "
    "number instead of -inf gives such a row uniform weights; use -inf (with a softmax that returns "
    "zeros for an all -inf row).",
)
def sdpa_large_negative_mask(Q, K, V, mask=None):
    scores = Q @ np.swapaxes(K, -1, -2) / np.sqrt(Q.shape[-1])
    if mask is not None:
        scores = np.where(mask, scores, -1e9)
    weights = softmax(scores, axis=-1)
    return weights @ V, weights


# ==================================================================================================
# Chapter 3 — self- and cross-attention
# ==================================================================================================


@mistake(
    "ch3-self-cross",
    "self_attention",
    "self-causal-ignored",
    "with causal=True each token may attend only itself and earlier tokens: pass a causal mask to the attention.",
)
def self_attention_causal_ignored(X, W_q, W_k, W_v, causal=False):
    return scaled_dot_product_attention(X @ W_q, X @ W_k, X @ W_v)


@mistake(
    "ch3-self-cross",
    "self_attention",
    "self-causal-inverted",
    "your causal mask is inverted: with causal=True a token attends the past (j <= i), not the future.",
)
def self_attention_causal_inverted(X, W_q, W_k, W_v, causal=False):
    n = X.shape[-2]
    mask = np.triu(np.ones((n, n), dtype=bool)) if causal else None
    return scaled_dot_product_attention(X @ W_q, X @ W_k, X @ W_v, mask)


@mistake(
    "ch3-self-cross",
    "self_attention",
    "self-q-k-swapped",
    "queries and keys are swapped: queries are X @ W_q and keys X @ W_k (the weights matrix is then "
    "transposed).",
)
def self_attention_q_k_swapped(X, W_q, W_k, W_v, causal=False):
    n = X.shape[-2]
    return scaled_dot_product_attention(X @ W_k, X @ W_q, X @ W_v, causal_mask(n, n) if causal else None)


@mistake(
    "ch3-self-cross",
    "self_attention",
    "self-no-scale",
    "your scores are not scaled by 1/sqrt(d_k), where d_k is the width of the projected queries "
    "(W_q.shape[1]), not d_model.",
)
def self_attention_no_scale(X, W_q, W_k, W_v, causal=False):
    Q, K, V = X @ W_q, X @ W_k, X @ W_v
    scores = Q @ np.swapaxes(K, -1, -2)
    if causal:
        n = X.shape[-2]
        scores = np.where(causal_mask(n, n), scores, -np.inf)
    weights = softmax(scores, axis=-1)
    return weights @ V, weights


@mistake(
    "ch3-self-cross",
    "self_attention",
    "self-scale-d-model",
    "scale the scores by 1/sqrt(d_k), the width of the projected queries and keys (W_q.shape[1]), not "
    "by 1/sqrt(d_model), the width of X.",
)
def self_attention_scale_d_model(X, W_q, W_k, W_v, causal=False):
    Q, K, V = X @ W_q, X @ W_k, X @ W_v
    scores = Q @ np.swapaxes(K, -1, -2) / np.sqrt(X.shape[-1])
    if causal:
        n = X.shape[-2]
        scores = np.where(causal_mask(n, n), scores, -np.inf)
    weights = softmax(scores, axis=-1)
    return weights @ V, weights


@mistake(
    "ch3-self-cross",
    "cross_attention",
    "cross-kv-from-queries",
    "in cross-attention the keys and values come from the other sequence: K = X_kv @ W_k and "
    "V = X_kv @ W_v (only the queries come from X_q).",
)
def cross_attention_kv_from_queries(X_q, X_kv, W_q, W_k, W_v, kv_mask=None):
    return scaled_dot_product_attention(X_q @ W_q, X_q @ W_k, X_q @ W_v, None)


@mistake(
    "ch3-self-cross",
    "cross_attention",
    "cross-directions-swapped",
    "the two sequences are swapped: queries come from X_q (e.g. the decoder) and keys/values from X_kv "
    "(the encoder), so the weights have shape (..., n_q, n_k).",
)
def cross_attention_directions_swapped(X_q, X_kv, W_q, W_k, W_v, kv_mask=None):
    return scaled_dot_product_attention(X_kv @ W_q, X_q @ W_k, X_q @ W_v, None)


@mistake(
    "ch3-self-cross",
    "cross_attention",
    "cross-mask-ignored",
    "kv_mask is ignored: pass it to the attention so padded encoder positions get zero weight.",
)
def cross_attention_mask_ignored(X_q, X_kv, W_q, W_k, W_v, kv_mask=None):
    return scaled_dot_product_attention(X_q @ W_q, X_kv @ W_k, X_kv @ W_v)


@mistake(
    "ch3-self-cross",
    "cross_attention",
    "cross-mask-inverted",
    "kv_mask is inverted: True means 'may attend', so the positions where it is False get zero weight.",
)
def cross_attention_mask_inverted(X_q, X_kv, W_q, W_k, W_v, kv_mask=None):
    mask = None if kv_mask is None else ~np.asarray(kv_mask)
    return scaled_dot_product_attention(X_q @ W_q, X_kv @ W_k, X_kv @ W_v, mask)


@mistake(
    "ch3-self-cross",
    "cross_attention",
    "cross-no-scale",
    "your scores are not scaled by 1/sqrt(d_k), where d_k is the width of the projected queries (W_q.shape[1]).",
)
def cross_attention_no_scale(X_q, X_kv, W_q, W_k, W_v, kv_mask=None):
    Q, K, V = X_q @ W_q, X_kv @ W_k, X_kv @ W_v
    scores = Q @ np.swapaxes(K, -1, -2)
    if kv_mask is not None:
        scores = np.where(kv_mask, scores, -np.inf)
    weights = softmax(scores, axis=-1)
    return weights @ V, weights


# ==================================================================================================
# Chapter 4 — multi-head attention
# ==================================================================================================


@mistake(
    "ch4-multihead",
    "split_heads",
    "split-no-transpose",
    "reshaping straight to (batch, n_heads, seq, head_dim) mixes tokens across heads: reshape to "
    "(batch, seq, n_heads, head_dim) first, then swap the seq and heads axes.",
)
def split_heads_no_transpose(x, n_heads):
    batch, seq, d_model = x.shape
    return x.reshape(batch, n_heads, seq, d_model // n_heads)


@mistake(
    "ch4-multihead",
    "split_heads",
    "split-strided-features",
    "head h must hold the consecutive features h * head_dim ... (h + 1) * head_dim - 1, not every "
    "n_heads-th feature: reshape the last axis as (n_heads, head_dim), not (head_dim, n_heads).",
)
def split_heads_strided_features(x, n_heads):
    batch, seq, d_model = x.shape
    return x.reshape(batch, seq, d_model // n_heads, n_heads).permute(0, 3, 1, 2)


@mistake(
    "ch4-multihead",
    "split_heads",
    "split-heads-last",
    "split_heads must return (batch, n_heads, seq, head_dim): move the heads axis in front of the "
    "sequence axis (.transpose(1, 2)).",
)
def split_heads_heads_last(x, n_heads):
    batch, seq, d_model = x.shape
    return x.reshape(batch, seq, n_heads, d_model // n_heads)


@mistake(
    "ch4-multihead",
    "merge_heads",
    "merge-no-transpose",
    "merge_heads must undo split_heads: swap the heads and seq axes back (.transpose(1, 2)) before "
    "reshaping to (batch, seq, n_heads * head_dim); reshaping directly mixes tokens.",
)
def merge_heads_no_transpose(x):
    batch, n_heads, seq, head_dim = x.shape
    return x.reshape(batch, seq, n_heads * head_dim)


@mistake(
    "ch4-multihead",
    "merge_heads",
    "merge-strided-features",
    "merge_heads puts the features of one head next to each other (head h at h * head_dim ...); yours "
    "interleaves the heads' features.",
)
def merge_heads_strided_features(x):
    batch, n_heads, seq, head_dim = x.shape
    return x.permute(0, 2, 3, 1).reshape(batch, seq, n_heads * head_dim)


@mistake(
    "ch4-multihead",
    "MultiHeadAttention.forward",
    "mha-scale-d-model",
    "each head's scores must be scaled by 1/sqrt(head_dim) (head_dim = d_model // n_heads), not by "
    "1/sqrt(d_model).",
)
def mha_forward_scale_d_model(self, query, key, value, mask=None):
    q = split_heads(self.q_proj(query), self.n_heads)
    k = split_heads(self.k_proj(key), self.n_heads)
    v = split_heads(self.v_proj(value), self.n_heads)
    scores = q @ k.transpose(-2, -1) / math.sqrt(self.d_model)
    if mask is not None:
        mask = mask.unsqueeze(1) if mask.ndim == 3 else mask
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1).nan_to_num(0.0)
    return self.out_proj(merge_heads(weights @ v)), weights


@mistake(
    "ch4-multihead",
    "MultiHeadAttention.forward",
    "mha-no-scale",
    "your scores are not scaled by 1/sqrt(head_dim) (head_dim = d_model // n_heads).",
)
def mha_forward_no_scale(self, query, key, value, mask=None):
    q = split_heads(self.q_proj(query), self.n_heads)
    k = split_heads(self.k_proj(key), self.n_heads)
    v = split_heads(self.v_proj(value), self.n_heads)
    scores = q @ k.transpose(-2, -1)
    if mask is not None:
        mask = mask.unsqueeze(1) if mask.ndim == 3 else mask
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1).nan_to_num(0.0)
    return self.out_proj(merge_heads(weights @ v)), weights


@mistake(
    "ch4-multihead",
    "MultiHeadAttention.forward",
    "mha-no-out-proj",
    "after merging the heads, apply the output projection out_proj.",
)
def mha_forward_no_out_proj(self, query, key, value, mask=None):
    q = split_heads(self.q_proj(query), self.n_heads)
    k = split_heads(self.k_proj(key), self.n_heads)
    v = split_heads(self.v_proj(value), self.n_heads)
    scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)
    if mask is not None:
        mask = mask.unsqueeze(1) if mask.ndim == 3 else mask
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1).nan_to_num(0.0)
    return merge_heads(weights @ v), weights


@mistake(
    "ch4-multihead",
    "MultiHeadAttention.forward",
    "mha-weights-averaged",
    "return the weights of every head, shape (batch, n_heads, n_q, n_k), not their average over the heads.",
)
def mha_forward_weights_averaged(self, query, key, value, mask=None):
    q = split_heads(self.q_proj(query), self.n_heads)
    k = split_heads(self.k_proj(key), self.n_heads)
    v = split_heads(self.v_proj(value), self.n_heads)
    scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)
    if mask is not None:
        mask = mask.unsqueeze(1) if mask.ndim == 3 else mask
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1).nan_to_num(0.0)
    return self.out_proj(merge_heads(weights @ v)), weights.mean(dim=1)


@mistake(
    "ch4-multihead",
    "MultiHeadAttention.forward",
    "mha-mask-inverted",
    "the mask polarity is inverted: True means 'may attend', so block the scores where the mask is False.",
)
def mha_forward_mask_inverted(self, query, key, value, mask=None):
    q = split_heads(self.q_proj(query), self.n_heads)
    k = split_heads(self.k_proj(key), self.n_heads)
    v = split_heads(self.v_proj(value), self.n_heads)
    scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)
    if mask is not None:
        mask = mask.unsqueeze(1) if mask.ndim == 3 else mask
        scores = scores.masked_fill(mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1).nan_to_num(0.0)
    return self.out_proj(merge_heads(weights @ v)), weights


# ==================================================================================================
# Chapter 5 — grouped-query attention and the KV cache
# ==================================================================================================


@mistake(
    "ch5-gqa",
    "repeat_kv",
    "repeat-tile",
    "repeat_kv must interleave: query head h uses key/value head h // n_rep, so each KV head is repeated "
    "n_rep times in a row (like repeat_interleave), not the whole set of heads tiled n_rep times.",
)
def repeat_kv_tile(x, n_rep):
    return x.repeat(1, n_rep, 1, 1)


@mistake(
    "ch5-gqa",
    "repeat_kv",
    "repeat-seq-axis",
    "repeat along the heads axis (dim 1) to get (batch, n_kv_heads * n_rep, seq, head_dim), not along "
    "the sequence axis.",
)
def repeat_kv_seq_axis(x, n_rep):
    return x.repeat_interleave(n_rep, dim=2)


@mistake(
    "ch5-gqa",
    "GroupedQueryAttention.forward",
    "gqa-tiled-heads",
    "query head h must read key/value head h // n_rep (consecutive query heads share a KV head); your "
    "forward tiles the KV heads instead of interleaving them.",
)
def gqa_forward_tiled_heads(self, x, mask=None, kv_cache=None):
    q = split_heads(self.q_proj(x), self.n_heads)
    k = split_heads(self.k_proj(x), self.n_kv_heads)
    v = split_heads(self.v_proj(x), self.n_kv_heads)
    if kv_cache is not None:
        k, v = torch.cat([kv_cache[0], k], dim=-2), torch.cat([kv_cache[1], v], dim=-2)
    n_new, n_total = q.shape[-2], k.shape[-2]
    if mask is None:
        mask = torch.ones(n_new, n_total, dtype=torch.bool).tril(diagonal=n_total - n_new)
    mask = mask.unsqueeze(1) if mask.ndim == 3 else mask
    scores = q @ k.repeat(1, self.n_rep, 1, 1).transpose(-2, -1) / math.sqrt(self.head_dim)
    weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1).nan_to_num(0.0)
    out = weights @ v.repeat(1, self.n_rep, 1, 1)
    return self.out_proj(merge_heads(out)), (k, v)


@mistake(
    "ch5-gqa",
    "GroupedQueryAttention.forward",
    "gqa-cache-ignored",
    "with a kv_cache, attend over the cached keys/values plus the new ones (concatenate them along the "
    "sequence axis) and return the longer cache.",
)
def gqa_forward_cache_ignored(self, x, mask=None, kv_cache=None):
    q = split_heads(self.q_proj(x), self.n_heads)
    k = split_heads(self.k_proj(x), self.n_kv_heads)
    v = split_heads(self.v_proj(x), self.n_kv_heads)
    n = q.shape[-2]
    if mask is None or mask.shape[-1] != n:
        mask = torch.ones(n, n, dtype=torch.bool).tril()
    mask = mask.unsqueeze(1) if mask.ndim == 3 else mask
    scores = q @ repeat_kv(k, self.n_rep).transpose(-2, -1) / math.sqrt(self.head_dim)
    weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1).nan_to_num(0.0)
    return self.out_proj(merge_heads(weights @ repeat_kv(v, self.n_rep))), (k, v)


@mistake(
    "ch5-gqa",
    "GroupedQueryAttention.forward",
    "gqa-causal-top-left",
    "with a cache, the causal mask must be aligned to the bottom-right: new token i sees every cached "
    "token and the new tokens up to itself (keys j <= i + n_past).",
)
def gqa_forward_causal_top_left(self, x, mask=None, kv_cache=None):
    q = split_heads(self.q_proj(x), self.n_heads)
    k = split_heads(self.k_proj(x), self.n_kv_heads)
    v = split_heads(self.v_proj(x), self.n_kv_heads)
    if kv_cache is not None:
        k, v = torch.cat([kv_cache[0], k], dim=-2), torch.cat([kv_cache[1], v], dim=-2)
    n_new, n_total = q.shape[-2], k.shape[-2]
    if mask is None:
        mask = torch.ones(n_new, n_total, dtype=torch.bool).tril()
    mask = mask.unsqueeze(1) if mask.ndim == 3 else mask
    scores = q @ repeat_kv(k, self.n_rep).transpose(-2, -1) / math.sqrt(self.head_dim)
    weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1).nan_to_num(0.0)
    return self.out_proj(merge_heads(weights @ repeat_kv(v, self.n_rep))), (k, v)


@mistake(
    "ch5-gqa",
    "GroupedQueryAttention.forward",
    "gqa-cache-repeated",
    "store the cache with n_kv_heads heads, before repeat_kv: keeping only the shared heads is exactly "
    "the memory GQA saves.",
)
def gqa_forward_cache_repeated(self, x, mask=None, kv_cache=None):
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


@mistake(
    "ch5-gqa",
    "kv_cache_bytes",
    "kvbytes-no-values",
    "the cache stores keys AND values: count a factor 2.",
)
def kv_cache_bytes_no_values(batch, seq_len, n_layers, n_kv_heads, head_dim, bytes_per_elem=2):
    return batch * seq_len * n_layers * n_kv_heads * head_dim * bytes_per_elem


@mistake(
    "ch5-gqa",
    "kv_cache_bytes",
    "kvbytes-no-layers",
    "every layer has its own cache: multiply by n_layers.",
)
def kv_cache_bytes_no_layers(batch, seq_len, n_layers, n_kv_heads, head_dim, bytes_per_elem=2):
    return 2 * batch * seq_len * n_kv_heads * head_dim * bytes_per_elem


@mistake(
    "ch5-gqa",
    "kv_cache_bytes",
    "kvbytes-bits",
    "the result is in bytes: multiply the number of elements by bytes_per_elem (not by 8 * bytes_per_elem bits).",
)
def kv_cache_bytes_bits(batch, seq_len, n_layers, n_kv_heads, head_dim, bytes_per_elem=2):
    return 2 * batch * seq_len * n_layers * n_kv_heads * head_dim * bytes_per_elem * 8


@mistake(
    "ch5-gqa",
    "mha_to_gqa",
    "mha2gqa-sum",
    "average (mean-pool) the key/value heads of a group; summing them makes the keys and values n_rep "
    "times too large.",
)
def mha_to_gqa_sum(mha, n_kv_heads):
    n_rep, hd = mha.n_heads // n_kv_heads, mha.head_dim
    gqa = GroupedQueryAttention(mha.d_model, mha.n_heads, n_kv_heads, bias=mha.q_proj.bias is not None)
    with torch.no_grad():
        gqa.q_proj.load_state_dict(mha.q_proj.state_dict())
        gqa.out_proj.load_state_dict(mha.out_proj.state_dict())
        for name in ("k_proj", "v_proj"):
            src, dst = getattr(mha, name), getattr(gqa, name)
            for p_src, p_dst in zip(src.parameters(), dst.parameters(), strict=True):
                p_dst.copy_(p_src.reshape(n_kv_heads, n_rep, hd, *p_src.shape[1:]).sum(1).flatten(0, 1))
    return gqa


@mistake(
    "ch5-gqa",
    "mha_to_gqa",
    "mha2gqa-strided-groups",
    "group g must hold the consecutive query heads g * n_rep ... (g + 1) * n_rep - 1 (the heads that "
    "read KV head g); yours pools heads g, g + n_kv_heads, g + 2 * n_kv_heads, ... (a strided grouping).",
)
def mha_to_gqa_strided_groups(mha, n_kv_heads):
    n_rep, hd = mha.n_heads // n_kv_heads, mha.head_dim
    gqa = GroupedQueryAttention(mha.d_model, mha.n_heads, n_kv_heads, bias=mha.q_proj.bias is not None)
    with torch.no_grad():
        gqa.q_proj.load_state_dict(mha.q_proj.state_dict())
        gqa.out_proj.load_state_dict(mha.out_proj.state_dict())
        for name in ("k_proj", "v_proj"):
            src, dst = getattr(mha, name), getattr(gqa, name)
            for p_src, p_dst in zip(src.parameters(), dst.parameters(), strict=True):
                p_dst.copy_(p_src.reshape(n_rep, n_kv_heads, hd, *p_src.shape[1:]).mean(0).flatten(0, 1))
    return gqa


@mistake(
    "ch5-gqa",
    "mha_to_gqa",
    "mha2gqa-first-head",
    "mean-pool all the key/value heads of a group; keeping only the first head of each group throws "
    "the others away.",
)
def mha_to_gqa_first_head(mha, n_kv_heads):
    n_rep, hd = mha.n_heads // n_kv_heads, mha.head_dim
    gqa = GroupedQueryAttention(mha.d_model, mha.n_heads, n_kv_heads, bias=mha.q_proj.bias is not None)
    with torch.no_grad():
        gqa.q_proj.load_state_dict(mha.q_proj.state_dict())
        gqa.out_proj.load_state_dict(mha.out_proj.state_dict())
        for name in ("k_proj", "v_proj"):
            src, dst = getattr(mha, name), getattr(gqa, name)
            for p_src, p_dst in zip(src.parameters(), dst.parameters(), strict=True):
                p_dst.copy_(p_src.reshape(n_kv_heads, n_rep, hd, *p_src.shape[1:])[:, 0].flatten(0, 1))
    return gqa


@mistake(
    "ch5-gqa",
    "mha_to_gqa",
    "mha2gqa-pooled-queries",
    "only the key and value projections are pooled; copy q_proj (and out_proj) unchanged: GQA keeps "
    "every query head.",
)
def mha_to_gqa_pooled_queries(mha, n_kv_heads):
    n_rep, hd = mha.n_heads // n_kv_heads, mha.head_dim
    gqa = GroupedQueryAttention(mha.d_model, mha.n_heads, n_kv_heads, bias=mha.q_proj.bias is not None)
    with torch.no_grad():
        gqa.out_proj.load_state_dict(mha.out_proj.state_dict())
        for name in ("k_proj", "v_proj"):
            src, dst = getattr(mha, name), getattr(gqa, name)
            for p_src, p_dst in zip(src.parameters(), dst.parameters(), strict=True):
                p_dst.copy_(p_src.reshape(n_kv_heads, n_rep, hd, *p_src.shape[1:]).mean(1).flatten(0, 1))
        for p_src, p_dst in zip(mha.q_proj.parameters(), gqa.q_proj.parameters(), strict=True):
            pooled = p_src.reshape(n_kv_heads, n_rep, hd, *p_src.shape[1:]).mean(1, keepdim=True)
            p_dst.copy_(pooled.expand(-1, n_rep, *pooled.shape[2:]).flatten(0, 2))
    return gqa


# ==================================================================================================
# Chapter 6 — tiled attention
# ==================================================================================================


@mistake(
    "ch6-tiled",
    "tiled_attention",
    "tiled-no-rescale",
    "when a new key block raises the running maximum m, the running sum and the running output must be "
    "rescaled by exp(m_old - m_new) (the online-softmax correction); yours adds blocks computed "
    "against different maxima.",
)
def tiled_attention_no_rescale(Q, K, V, block_size=128, causal=False):
    n_q, n_k = Q.shape[-2], K.shape[-2]
    offset = n_k - n_q
    out = torch.zeros(*Q.shape[:-1], V.shape[-1], dtype=Q.dtype)
    for q0 in range(0, n_q, block_size):
        q = Q[..., q0 : q0 + block_size, :] / math.sqrt(Q.shape[-1])
        m = torch.full((*q.shape[:-1], 1), float("-inf"), dtype=Q.dtype)
        total = torch.zeros(*q.shape[:-1], 1, dtype=Q.dtype)
        acc = torch.zeros(*q.shape[:-1], V.shape[-1], dtype=Q.dtype)
        for k0 in range(0, n_k, block_size):
            s = q @ K[..., k0 : k0 + block_size, :].transpose(-2, -1)
            if causal:
                rows = torch.arange(q0, q0 + s.shape[-2])[:, None]
                cols = torch.arange(k0, k0 + s.shape[-1])[None, :]
                s = s.masked_fill(cols > rows + offset, float("-inf"))
            m = torch.maximum(m, s.amax(dim=-1, keepdim=True))
            p = torch.exp(s - m.nan_to_num(neginf=0.0))
            total = total + p.sum(dim=-1, keepdim=True)
            acc = acc + p @ V[..., k0 : k0 + block_size, :]
        out[..., q0 : q0 + block_size, :] = torch.where(total > 0, acc / total, 0.0)
    return out


@mistake(
    "ch6-tiled",
    "tiled_attention",
    "tiled-no-final-divide",
    "at the end of each query block, divide the accumulated output by the running sum of exponentials "
    "(the softmax denominator).",
)
def tiled_attention_no_final_divide(Q, K, V, block_size=128, causal=False):
    n_q, n_k = Q.shape[-2], K.shape[-2]
    offset = n_k - n_q
    out = torch.zeros(*Q.shape[:-1], V.shape[-1], dtype=Q.dtype)
    for q0 in range(0, n_q, block_size):
        q = Q[..., q0 : q0 + block_size, :] / math.sqrt(Q.shape[-1])
        m = torch.full((*q.shape[:-1], 1), float("-inf"), dtype=Q.dtype)
        acc = torch.zeros(*q.shape[:-1], V.shape[-1], dtype=Q.dtype)
        for k0 in range(0, n_k, block_size):
            s = q @ K[..., k0 : k0 + block_size, :].transpose(-2, -1)
            if causal:
                rows = torch.arange(q0, q0 + s.shape[-2])[:, None]
                cols = torch.arange(k0, k0 + s.shape[-1])[None, :]
                s = s.masked_fill(cols > rows + offset, float("-inf"))
            m_new = torch.maximum(m, s.amax(dim=-1, keepdim=True))
            m_safe = m_new.nan_to_num(neginf=0.0)
            acc = acc * torch.exp(m - m_safe) + torch.exp(s - m_safe) @ V[..., k0 : k0 + block_size, :]
            m = m_new
        out[..., q0 : q0 + block_size, :] = acc
    return out


@mistake(
    "ch6-tiled",
    "tiled_attention",
    "tiled-causal-local-index",
    "inside a tile, the causal mask must compare global positions (q0 + i against k0 + j), not the "
    "positions within the tile.",
)
def tiled_attention_causal_local_index(Q, K, V, block_size=128, causal=False):
    n_q, n_k = Q.shape[-2], K.shape[-2]
    offset = n_k - n_q
    out = torch.zeros(*Q.shape[:-1], V.shape[-1], dtype=Q.dtype)
    for q0 in range(0, n_q, block_size):
        q = Q[..., q0 : q0 + block_size, :] / math.sqrt(Q.shape[-1])
        m = torch.full((*q.shape[:-1], 1), float("-inf"), dtype=Q.dtype)
        total = torch.zeros(*q.shape[:-1], 1, dtype=Q.dtype)
        acc = torch.zeros(*q.shape[:-1], V.shape[-1], dtype=Q.dtype)
        for k0 in range(0, n_k, block_size):
            s = q @ K[..., k0 : k0 + block_size, :].transpose(-2, -1)
            if causal:
                rows = torch.arange(s.shape[-2])[:, None]
                cols = torch.arange(s.shape[-1])[None, :]
                s = s.masked_fill(cols > rows + offset, float("-inf"))
            m_new = torch.maximum(m, s.amax(dim=-1, keepdim=True))
            m_safe = m_new.nan_to_num(neginf=0.0)
            p = torch.exp(s - m_safe)
            rescale = torch.exp(m - m_safe)
            total = total * rescale + p.sum(dim=-1, keepdim=True)
            acc = acc * rescale + p @ V[..., k0 : k0 + block_size, :]
            m = m_new
        out[..., q0 : q0 + block_size, :] = torch.where(total > 0, acc / total, 0.0)
    return out


@mistake(
    "ch6-tiled",
    "tiled_attention",
    "tiled-no-scale",
    "your scores are not scaled by 1/sqrt(d_k): scale the queries (or each score tile) by 1/sqrt(Q.shape[-1]).",
)
def tiled_attention_no_scale(Q, K, V, block_size=128, causal=False):
    n_q, n_k = Q.shape[-2], K.shape[-2]
    offset = n_k - n_q
    out = torch.zeros(*Q.shape[:-1], V.shape[-1], dtype=Q.dtype)
    for q0 in range(0, n_q, block_size):
        q = Q[..., q0 : q0 + block_size, :]
        m = torch.full((*q.shape[:-1], 1), float("-inf"), dtype=Q.dtype)
        total = torch.zeros(*q.shape[:-1], 1, dtype=Q.dtype)
        acc = torch.zeros(*q.shape[:-1], V.shape[-1], dtype=Q.dtype)
        for k0 in range(0, n_k, block_size):
            s = q @ K[..., k0 : k0 + block_size, :].transpose(-2, -1)
            if causal:
                rows = torch.arange(q0, q0 + s.shape[-2])[:, None]
                cols = torch.arange(k0, k0 + s.shape[-1])[None, :]
                s = s.masked_fill(cols > rows + offset, float("-inf"))
            m_new = torch.maximum(m, s.amax(dim=-1, keepdim=True))
            m_safe = m_new.nan_to_num(neginf=0.0)
            p = torch.exp(s - m_safe)
            rescale = torch.exp(m - m_safe)
            total = total * rescale + p.sum(dim=-1, keepdim=True)
            acc = acc * rescale + p @ V[..., k0 : k0 + block_size, :]
            m = m_new
        out[..., q0 : q0 + block_size, :] = torch.where(total > 0, acc / total, 0.0)
    return out


@mistake(
    "ch6-tiled",
    "tiled_attention",
    "tiled-full-matrix",
    "your function builds the whole (n_q, n_k) score matrix at once; the point of tiling is to hold "
    "at most a (block_size, block_size) tile of scores per batch element and head.",
)
def tiled_attention_full_matrix(Q, K, V, block_size=128, causal=False):
    scores = Q @ K.transpose(-2, -1) / math.sqrt(Q.shape[-1])
    if causal:
        n_q, n_k = Q.shape[-2], K.shape[-2]
        keep = torch.ones(n_q, n_k, dtype=torch.bool).tril(diagonal=n_k - n_q)
        scores = scores.masked_fill(~keep, float("-inf"))
    return torch.softmax(scores, dim=-1).nan_to_num(0.0) @ V
