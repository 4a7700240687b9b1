"""Held-out class, exercise 2 (ch2-sdpa): softmax, causal_mask, padding_mask, scaled_dot_product_attention."""

from __future__ import annotations

from . import Variant, edit

# The plain attention a student writes first (correct with the notebook's softmax); the wrong variants
# of scaled_dot_product_attention below are one change to it.
SDPA_PLAIN = '''
def scaled_dot_product_attention(Q, K, V, mask=None):
    scores = Q @ np.swapaxes(K, -1, -2) / np.sqrt(Q.shape[-1])
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    weights = softmax(scores, axis=-1)
    return weights @ V, weights
'''

VARIANTS = [
    # ---------------------------------------------------------------- softmax
    Variant(
        function="softmax", kind="correct", name="softmax/where-divide",
        source='''
def softmax(x, axis=-1):
    top = np.max(x, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0)
    e = np.exp(x - top)
    total = np.sum(e, axis=axis, keepdims=True)
    return np.divide(e, total, out=np.zeros_like(e), where=total > 0)
''',
    ),
    Variant(
        function="softmax", kind="correct", name="softmax/float64-logsumexp-cast-back",
        source='''
def softmax(x, axis=-1):
    dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64
    z = x.astype(np.float64)
    top = np.max(z, axis=axis, keepdims=True)
    safe = np.where(np.isneginf(top), 0.0, top)
    total = np.sum(np.exp(z - safe), axis=axis, keepdims=True)
    with np.errstate(divide="ignore"):
        log_total = safe + np.log(total)
    out = np.where(total > 0, np.exp(z - np.where(total > 0, log_total, 0.0)), 0.0)
    return out.astype(dtype)
''',
    ),
    Variant(
        function="softmax", kind="correct", name="softmax/nan_to_num",
        source='''
def softmax(x, axis=-1):
    with np.errstate(invalid="ignore"):
        e = np.exp(x - np.max(x, axis=axis, keepdims=True))
        out = e / np.sum(e, axis=axis, keepdims=True)
    return np.nan_to_num(out, nan=0.0)
''',
    ),
    Variant(
        function="softmax", kind="wrong", name="softmax/ignores-axis",
        misconception="Always normalises over the last axis, ignoring the axis argument.",
        keywords=("axis",),
        source='''
def softmax(x, axis=-1):
    top = np.max(x, axis=-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0)
    e = np.exp(x - top)
    total = e.sum(axis=-1, keepdims=True)
    return np.divide(e, total, out=np.zeros_like(e), where=total > 0)
''',
    ),
    Variant(
        function="softmax", kind="wrong", name="softmax/no-max-shift",
        misconception="Does not subtract the maximum before exp, so logits of 1e4 overflow to inf and give NaN.",
        keywords=("overflow", "stable", "max", "nan", "1e4"),
        source='''
def softmax(x, axis=-1):
    e = np.exp(x)
    total = e.sum(axis=axis, keepdims=True)
    return np.divide(e, total, out=np.zeros_like(e), where=total > 0)
''',
    ),
    Variant(
        function="softmax", kind="wrong", name="softmax/blocked-row-nan",
        misconception="A stable softmax with no special case for a slice that is -inf everywhere, which "
        "therefore comes out NaN instead of zeros.",
        keywords=("blocked", "-inf", "nan", "zero"),
        source='''
def softmax(x, axis=-1):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)
''',
    ),
    Variant(
        function="softmax", kind="wrong", name="softmax/global-max",
        misconception="Subtracts the maximum of the whole array instead of the maximum along axis, so a row "
        "whose logits are far below another row's underflows to 0/0.",
        keywords=("axis", "max", "underflow", "nan", "along"),
        source='''
def softmax(x, axis=-1):
    finite = x[np.isfinite(x)]
    top = finite.max() if finite.size else 0.0
    e = np.exp(x - top)
    total = e.sum(axis=axis, keepdims=True)
    return np.divide(e, total, out=np.zeros_like(e), where=total > 0)
''',
    ),
    Variant(
        function="softmax", kind="wrong", name="softmax/blocked-row-uniform",
        misconception="Replaces -inf by -1e9 before a stable softmax, so a fully blocked slice gets uniform "
        "weights instead of zeros.",
        keywords=("blocked", "zero", "-inf", "uniform"),
        source='''
def softmax(x, axis=-1):
    x = np.where(np.isneginf(x), -1e9, x)
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)
''',
    ),
    Variant(
        function="softmax", kind="wrong", name="softmax/abs-max-shift",
        misconception="Shifts by the largest absolute value, so slices whose logits are all very negative "
        "underflow to 0/0 (NaN or zeros) instead of a proper softmax.",
        keywords=("max", "negative", "underflow", "nan", "stable"),
        source='''
def softmax(x, axis=-1):
    finite = np.where(np.isfinite(x), np.abs(x), 0.0)
    e = np.exp(x - finite.max(axis=axis, keepdims=True))
    total = e.sum(axis=axis, keepdims=True)
    return np.divide(e, total, out=np.zeros_like(e), where=total > 0)
''',
    ),
    # ---------------------------------------------------------------- causal_mask
    Variant(
        function="causal_mask", kind="correct", name="causal_mask/tril-k",
        source='''
def causal_mask(n_q, n_k):
    return np.tril(np.ones((n_q, n_k), dtype=bool), k=n_k - n_q)
''',
    ),
    Variant(
        function="causal_mask", kind="correct", name="causal_mask/loops",
        source='''
def causal_mask(n_q, n_k):
    mask = np.zeros((n_q, n_k), dtype=bool)
    for i in range(n_q):
        for j in range(n_k):
            mask[i, j] = j - i <= n_k - n_q
    return mask
''',
    ),
    Variant(
        function="causal_mask", kind="correct", name="causal_mask/outer-comparison",
        source='''
def causal_mask(n_q, n_k):
    return np.greater_equal.outer(np.arange(n_q) + (n_k - n_q), np.arange(n_k))
''',
    ),
    Variant(
        function="causal_mask", kind="wrong", name="causal_mask/top-left",
        misconception="Aligns the diagonal to the top-left corner (j <= i) instead of the bottom-right "
        "(j <= i + n_k - n_q), wrong whenever n_q != n_k.",
        keywords=("bottom-right", "bottom right", "align", "n_k - n_q", "offset"),
        source='''
def causal_mask(n_q, n_k):
    return np.tril(np.ones((n_q, n_k), dtype=bool))
''',
    ),
    Variant(
        function="causal_mask", kind="wrong", name="causal_mask/strict",
        misconception="Uses a strict inequality (j < i + offset), so a query cannot attend its own position.",
        keywords=("diagonal", "itself", "own", "<="),
        source='''
def causal_mask(n_q, n_k):
    i = np.arange(n_q)[:, None]
    j = np.arange(n_k)[None, :]
    return j < i + (n_k - n_q)
''',
    ),
    Variant(
        function="causal_mask", kind="wrong", name="causal_mask/float-mask",
        misconception="Returns a float 0/1 mask instead of a boolean one.",
        keywords=("bool", "dtype", "boolean"),
        source='''
def causal_mask(n_q, n_k):
    return np.tril(np.ones((n_q, n_k)), k=n_k - n_q)
''',
    ),
    Variant(
        function="causal_mask", kind="wrong", name="causal_mask/offset-sign",
        misconception="Shifts the diagonal the wrong way (j <= i + n_q - n_k), so with a cache the queries see "
        "fewer keys than they should.",
        keywords=("bottom-right", "bottom right", "align", "n_k - n_q", "offset"),
        source='''
def causal_mask(n_q, n_k):
    return np.tril(np.ones((n_q, n_k), dtype=bool), k=n_q - n_k)
''',
    ),
    Variant(
        function="causal_mask", kind="wrong", name="causal_mask/inverted",
        misconception="Marks the future as True (True = blocked, the opposite convention).",
        keywords=("true", "invert", "future", "opposite", "may attend"),
        source='''
def causal_mask(n_q, n_k):
    return np.triu(np.ones((n_q, n_k), dtype=bool), k=n_k - n_q + 1)
''',
    ),
    # ---------------------------------------------------------------- padding_mask
    Variant(
        function="padding_mask", kind="correct", name="padding_mask/broadcast",
        source='''
def padding_mask(lengths, n_k):
    lengths = np.asarray(lengths)
    return (np.arange(n_k)[None, :] < lengths[:, None])[:, None, :]
''',
    ),
    Variant(
        function="padding_mask", kind="correct", name="padding_mask/loop-fill",
        source='''
def padding_mask(lengths, n_k):
    mask = np.zeros((len(lengths), 1, n_k), dtype=bool)
    for b, length in enumerate(lengths):
        mask[b, 0, : int(length)] = True
    return mask
''',
    ),
    Variant(
        function="padding_mask", kind="wrong", name="padding_mask/off-by-one",
        misconception="Uses j <= lengths[b], letting every sequence attend one padding position.",
        keywords=("off by one", "off-by-one", "j < length", "length", "<"),
        source='''
def padding_mask(lengths, n_k):
    return (np.arange(n_k)[None, :] <= np.asarray(lengths)[:, None])[:, None, :]
''',
    ),
    Variant(
        function="padding_mask", kind="wrong", name="padding_mask/no-query-axis",
        misconception="Returns shape (batch, n_k), forgetting the size-1 query axis.",
        keywords=("shape", "(batch, 1, n_k)", "axis"),
        source='''
def padding_mask(lengths, n_k):
    return np.arange(n_k)[None, :] < np.asarray(lengths)[:, None]
''',
    ),
    Variant(
        function="padding_mask", kind="wrong", name="padding_mask/axis-at-end",
        misconception="Puts the size-1 axis last, (batch, n_k, 1), so it broadcasts over the keys instead of "
        "the queries.",
        keywords=("shape", "(batch, 1, n_k)", "axis"),
        source='''
def padding_mask(lengths, n_k):
    return (np.arange(n_k)[None, :] < np.asarray(lengths)[:, None])[:, :, None]
''',
    ),
    Variant(
        function="padding_mask", kind="wrong", name="padding_mask/left-padding",
        misconception="Assumes the padding is at the start of each sequence (left padding) instead of the end.",
        keywords=("end", "start", "left"),
        source='''
def padding_mask(lengths, n_k):
    lengths = np.asarray(lengths)
    return (np.arange(n_k)[None, :] >= n_k - lengths[:, None])[:, None, :]
''',
    ),
    # ---------------------------------------------------------------- scaled_dot_product_attention
    Variant(
        function="scaled_dot_product_attention", kind="correct", name="sdpa/einsum-minus-1e30",
        source='''
def scaled_dot_product_attention(Q, K, V, mask=None):
    d_k = Q.shape[-1]
    scores = np.einsum("...qd,...kd->...qk", Q, K) / math.sqrt(d_k)
    if mask is not None:
        scores = np.where(mask, scores, -1e30)
    weights = softmax(scores, axis=-1)
    if mask is not None:
        seen = np.broadcast_to(mask, scores.shape).any(axis=-1, keepdims=True)
        weights = np.where(seen, weights, 0.0).astype(weights.dtype)
    return weights @ V, weights
''',
    ),
    Variant(
        function="scaled_dot_product_attention", kind="correct", name="sdpa/float64-inline-cast-back",
        source='''
def scaled_dot_product_attention(Q, K, V, mask=None):
    dtype = np.result_type(Q, K, V)
    q, k, v = (np.asarray(a, dtype=np.float64) for a in (Q, K, V))
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    with np.errstate(invalid="ignore"):
        e = np.exp(scores - scores.max(axis=-1, keepdims=True))
        weights = np.nan_to_num(e / e.sum(axis=-1, keepdims=True), nan=0.0)
    return (weights @ v).astype(dtype), weights.astype(dtype)
''',
    ),
    Variant(
        function="scaled_dot_product_attention", kind="correct", name="sdpa/finfo-min-zero-rows",
        source='''
def scaled_dot_product_attention(Q, K, V, mask=None):
    scores = np.matmul(Q, np.moveaxis(K, -1, -2)) * (1.0 / np.sqrt(K.shape[-1]))
    scores = scores.astype(np.result_type(Q, K), copy=False)
    if mask is not None:
        scores = np.where(mask, scores, np.finfo(scores.dtype).min)
    with np.errstate(over="ignore"):
        weights = softmax(scores, axis=-1)
    if mask is not None:
        weights = weights * np.any(np.broadcast_to(mask, scores.shape), axis=-1, keepdims=True)
    return weights @ V, weights
''',
    ),
    Variant(
        function="scaled_dot_product_attention", kind="wrong", name="sdpa/no-scale",
        misconception="Forgets to divide the scores by sqrt(d_k).",
        keywords=("sqrt", "scale", "scaled"),
        source=edit(SDPA_PLAIN, (" / np.sqrt(Q.shape[-1])", "")),
    ),
    Variant(
        function="scaled_dot_product_attention", kind="wrong", name="sdpa/sqrt-d_v",
        misconception="Scales by sqrt(d_v), the width of the values, instead of sqrt(d_k).",
        keywords=("d_k", "d_v"),
        source=edit(SDPA_PLAIN, ("np.sqrt(Q.shape[-1])", "np.sqrt(V.shape[-1])")),
    ),
    Variant(
        function="scaled_dot_product_attention", kind="wrong", name="sdpa/softmax-over-queries",
        misconception="Takes the softmax over the queries axis (-2) instead of over the keys (-1).",
        keywords=("axis", "keys", "last axis", "sum to 1", "rows"),
        source=edit(SDPA_PLAIN, ("softmax(scores, axis=-1)", "softmax(scores, axis=-2)")),
    ),
    Variant(
        function="scaled_dot_product_attention", kind="wrong", name="sdpa/mask-after-softmax",
        misconception="Applies the mask by multiplying the weights after the softmax, without renormalising, so "
        "the rows no longer sum to 1.",
        keywords=("before the softmax", "before softmax", "renormal", "sum to 1", "-inf"),
        source=edit(SDPA_PLAIN, (
            "    if mask is not None:\n        scores = np.where(mask, scores, -np.inf)\n"
            "    weights = softmax(scores, axis=-1)\n",
            "    weights = softmax(scores, axis=-1)\n    if mask is not None:\n        weights = weights * mask\n",
        )),
    ),
    Variant(
        function="scaled_dot_product_attention", kind="wrong", name="sdpa/K.T-all-axes",
        misconception="Uses K.T, which reverses ALL axes, instead of transposing only the last two, so batch "
        "dimensions are mixed up.",
        keywords=("transpose", "batch", "last two"),
        source=edit(SDPA_PLAIN, ("np.swapaxes(K, -1, -2)", "K.T")),
    ),
    Variant(
        function="scaled_dot_product_attention", kind="wrong", name="sdpa/mask-inverted",
        misconception="Treats True in the mask as 'blocked' (the opposite convention).",
        keywords=("true", "may attend", "invert", "opposite"),
        source=edit(SDPA_PLAIN, ("np.where(mask, scores, -np.inf)", "np.where(mask, -np.inf, scores)")),
    ),
    Variant(
        function="scaled_dot_product_attention", kind="wrong", name="sdpa/minus-1e9-blocked-uniform",
        misconception="Blocks with a large negative number (-1e9) and no special case, so a fully blocked row "
        "gets uniform weights and a non-zero output instead of zeros.",
        keywords=("blocked", "zero", "uniform"),
        source=edit(SDPA_PLAIN, ("np.where(mask, scores, -np.inf)", "np.where(mask, scores, -1e9)")),
    ),
]
