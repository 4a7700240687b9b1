"""Held-out class, exercise 3 (ch3-self-cross): self_attention, cross_attention, sinusoidal_positions, apply_rope.

The exercise-2 helpers in the notebook (softmax, causal_mask, scaled_dot_product_attention) are the
grader's correct copies, so a variant may call them.
"""

from __future__ import annotations

from . import Variant

VARIANTS = [
    # ---------------------------------------------------------------- self_attention
    Variant(
        function="self_attention", kind="correct", name="self_attention/einsum-tril",
        source='''
def self_attention(X, W_q, W_k, W_v, causal=False):
    Q = np.einsum("...nd,dk->...nk", X, W_q)
    K = np.einsum("...nd,dk->...nk", X, W_k)
    V = np.einsum("...nd,dv->...nv", X, W_v)
    n = X.shape[-2]
    mask = np.tril(np.ones((n, n), dtype=bool)) if causal else None
    return scaled_dot_product_attention(Q, K, V, mask)
''',
    ),
    Variant(
        function="self_attention", kind="correct", name="self_attention/via-cross_attention",
        source='''
def self_attention(X, W_q, W_k, W_v, causal=False):
    n = X.shape[-2]
    return cross_attention(X, X, W_q, W_k, W_v, kv_mask=causal_mask(n, n) if causal else None)
''',
    ),
    Variant(
        function="self_attention", kind="wrong", name="self_attention/ignores-causal",
        misconception="Never applies the causal mask, so with causal=True tokens still attend the future.",
        keywords=("causal", "future"),
        source='''
def self_attention(X, W_q, W_k, W_v, causal=False):
    return scaled_dot_product_attention(X @ W_q, X @ W_k, X @ W_v)
''',
    ),
    Variant(
        function="self_attention", kind="wrong", name="self_attention/keys-from-W_q",
        misconception="Copy-paste slip: the keys are projected with W_q instead of W_k.",
        keywords=("w_k", "key"),
        source='''
def self_attention(X, W_q, W_k, W_v, causal=False):
    n = X.shape[-2]
    mask = causal_mask(n, n) if causal else None
    return scaled_dot_product_attention(X @ W_q, X @ W_q, X @ W_v, mask)
''',
    ),
    Variant(
        function="self_attention", kind="wrong", name="self_attention/causal-triu",
        misconception="Builds the causal mask as the upper triangle, so each token sees itself and the future "
        "instead of the past.",
        keywords=("causal", "future", "j <= i", "past", "lower"),
        source='''
def self_attention(X, W_q, W_k, W_v, causal=False):
    n = X.shape[-2]
    mask = np.triu(np.ones((n, n), dtype=bool)) if causal else None
    return scaled_dot_product_attention(X @ W_q, X @ W_k, X @ W_v, mask)
''',
    ),
    Variant(
        function="self_attention", kind="wrong", name="self_attention/sqrt-d_model",
        misconception="Writes the attention inline and scales the scores by sqrt(d_model) instead of sqrt(d_k).",
        keywords=("sqrt", "d_k", "d_model", "scale"),
        source='''
def self_attention(X, W_q, W_k, W_v, causal=False):
    Q, K, V = X @ W_q, X @ W_k, X @ W_v
    scores = Q @ np.swapaxes(K, -1, -2) / np.sqrt(X.shape[-1])
    if causal:
        n = X.shape[-2]
        scores = np.where(causal_mask(n, n), scores, -np.inf)
    weights = softmax(scores, axis=-1)
    return weights @ V, weights
''',
    ),
    Variant(
        function="self_attention", kind="wrong", name="self_attention/values-from-W_k",
        misconception="Copy-paste slip: the values are projected with W_k instead of W_v.",
        keywords=("w_v", "value"),
        source='''
def self_attention(X, W_q, W_k, W_v, causal=False):
    n = X.shape[-2]
    mask = causal_mask(n, n) if causal else None
    return scaled_dot_product_attention(X @ W_q, X @ W_k, X @ W_k, mask)
''',
    ),
    # ---------------------------------------------------------------- cross_attention
    Variant(
        function="cross_attention", kind="correct", name="cross_attention/inline-nan_to_num",
        source='''
def cross_attention(X_q, X_kv, W_q, W_k, W_v, kv_mask=None):
    Q = np.matmul(X_q, W_q)
    K = np.matmul(X_kv, W_k)
    V = np.matmul(X_kv, W_v)
    scores = np.einsum("...qd,...kd->...qk", Q, K) / math.sqrt(W_q.shape[1])
    if kv_mask is not None:
        scores = np.where(kv_mask, scores, -np.inf)
    with np.errstate(invalid="ignore"):
        e = np.exp(scores - scores.max(axis=-1, keepdims=True))
        weights = np.nan_to_num(e / e.sum(axis=-1, keepdims=True), nan=0.0)
    return weights @ V, weights
''',
    ),
    Variant(
        function="cross_attention", kind="correct", name="cross_attention/float64-cast-back",
        source='''
def cross_attention(X_q, X_kv, W_q, W_k, W_v, kv_mask=None):
    dtype = np.result_type(X_q, X_kv, W_q, W_k, W_v)
    Q = X_q.astype(np.float64) @ W_q.astype(np.float64)
    K = X_kv.astype(np.float64) @ W_k.astype(np.float64)
    V = X_kv.astype(np.float64) @ W_v.astype(np.float64)
    mask = None if kv_mask is None else np.asarray(kv_mask, dtype=bool)
    output, weights = scaled_dot_product_attention(Q, K, V, mask=mask)
    return output.astype(dtype), weights.astype(dtype)
''',
    ),
    Variant(
        function="cross_attention", kind="wrong", name="cross_attention/sqrt-d_v",
        misconception="Writes the attention inline and scales by sqrt(d_v) (W_v's width) instead of sqrt(d_k).",
        keywords=("d_k", "d_v"),
        source='''
def cross_attention(X_q, X_kv, W_q, W_k, W_v, kv_mask=None):
    Q, K, V = X_q @ W_q, X_kv @ W_k, X_kv @ W_v
    scores = Q @ np.swapaxes(K, -1, -2) / np.sqrt(V.shape[-1])
    if kv_mask is not None:
        scores = np.where(kv_mask, scores, -np.inf)
    weights = softmax(scores, axis=-1)
    return weights @ V, weights
''',
    ),
    Variant(
        function="cross_attention", kind="wrong", name="cross_attention/kv-from-X_q",
        misconception="Copy-paste from self-attention: the keys and values are projected from X_q instead of "
        "X_kv (it only runs when the two widths agree).",
        keywords=("x_kv", "keys", "encoder"),
        source='''
def cross_attention(X_q, X_kv, W_q, W_k, W_v, kv_mask=None):
    return scaled_dot_product_attention(X_q @ W_q, X_q @ W_k, X_q @ W_v, kv_mask)
''',
    ),
    Variant(
        function="cross_attention", kind="wrong", name="cross_attention/ignores-kv_mask",
        misconception="Never passes kv_mask to the attention, so the encoder's padding is attended.",
        keywords=("kv_mask", "mask", "padding"),
        source='''
def cross_attention(X_q, X_kv, W_q, W_k, W_v, kv_mask=None):
    return scaled_dot_product_attention(X_q @ W_q, X_kv @ W_k, X_kv @ W_v)
''',
    ),
    Variant(
        function="cross_attention", kind="wrong", name="cross_attention/kv_mask-inverted",
        misconception="Inverts kv_mask (treats True as padding), hiding the real encoder tokens.",
        keywords=("true", "may attend", "invert", "opposite"),
        source='''
def cross_attention(X_q, X_kv, W_q, W_k, W_v, kv_mask=None):
    mask = None if kv_mask is None else ~np.asarray(kv_mask, dtype=bool)
    return scaled_dot_product_attention(X_q @ W_q, X_kv @ W_k, X_kv @ W_v, mask)
''',
    ),
    Variant(
        function="cross_attention", kind="wrong", name="cross_attention/causal-by-habit",
        misconception="Copies the causal mask from self-attention into cross-attention, so decoder query i "
        "only sees encoder positions j <= i + n_k - n_q.",
        keywords=("causal",),
        source='''
def cross_attention(X_q, X_kv, W_q, W_k, W_v, kv_mask=None):
    mask = causal_mask(X_q.shape[-2], X_kv.shape[-2])
    if kv_mask is not None:
        mask = mask & kv_mask
    return scaled_dot_product_attention(X_q @ W_q, X_kv @ W_k, X_kv @ W_v, mask)
''',
    ),
    # ---------------------------------------------------------------- sinusoidal_positions
    Variant(
        function="sinusoidal_positions", kind="correct", name="sinusoidal_positions/loops",
        source='''
def sinusoidal_positions(n, d):
    P = np.zeros((n, d))
    for p in range(n):
        for i in range(d // 2):
            angle = p / 10000 ** (2 * i / d)
            P[p, 2 * i] = math.sin(angle)
            P[p, 2 * i + 1] = math.cos(angle)
    return P
''',
    ),
    Variant(
        function="sinusoidal_positions", kind="correct", name="sinusoidal_positions/exp-log-strided",
        source='''
def sinusoidal_positions(n, d):
    inv_freq = np.exp(-math.log(10000.0) * np.arange(0, d, 2) / d)
    angles = np.arange(n)[:, None] * inv_freq[None, :]
    P = np.empty((n, d))
    P[:, 0::2] = np.sin(angles)
    P[:, 1::2] = np.cos(angles)
    return P
''',
    ),
    Variant(
        function="sinusoidal_positions", kind="wrong", name="sinusoidal_positions/halves-not-interleaved",
        misconception="Concatenates all the sines then all the cosines instead of interleaving them in pairs.",
        keywords=("interleav", "pair", "2i", "column"),
        source='''
def sinusoidal_positions(n, d):
    angles = np.arange(n)[:, None] / 10000 ** (np.arange(0, d, 2)[None, :] / d)
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=-1)
''',
    ),
    Variant(
        function="sinusoidal_positions", kind="wrong", name="sinusoidal_positions/exponent-i-over-d",
        misconception="Uses the pair index i in the exponent (10000**(i/d)) instead of 2i/d, so the frequencies "
        "decay too slowly.",
        keywords=("2i/d", "2i", "frequenc", "exponent", "wavelength"),
        source='''
def sinusoidal_positions(n, d):
    i = np.arange(d // 2)
    angles = np.arange(n)[:, None] / 10000 ** (i[None, :] / d)
    P = np.zeros((n, d))
    P[:, 0::2] = np.sin(angles)
    P[:, 1::2] = np.cos(angles)
    return P
''',
    ),
    Variant(
        function="sinusoidal_positions", kind="wrong", name="sinusoidal_positions/sin-cos-swapped",
        misconception="Puts the cosine in the even columns and the sine in the odd ones.",
        keywords=("sin", "cos", "even", "odd"),
        source='''
def sinusoidal_positions(n, d):
    angles = np.arange(n)[:, None] / 10000 ** (np.arange(0, d, 2)[None, :] / d)
    P = np.zeros((n, d))
    P[:, 0::2] = np.cos(angles)
    P[:, 1::2] = np.sin(angles)
    return P
''',
    ),
    Variant(
        function="sinusoidal_positions", kind="wrong", name="sinusoidal_positions/positions-from-1",
        misconception="Numbers the positions 1..n instead of 0..n-1.",
        keywords=("position 0", "start", "0, 1", "first row", "from 0"),
        source='''
def sinusoidal_positions(n, d):
    angles = np.arange(1, n + 1)[:, None] / 10000 ** (np.arange(0, d, 2)[None, :] / d)
    P = np.zeros((n, d))
    P[:, 0::2] = np.sin(angles)
    P[:, 1::2] = np.cos(angles)
    return P
''',
    ),
    Variant(
        function="sinusoidal_positions", kind="wrong", name="sinusoidal_positions/column-index-exponent",
        misconception="Uses the column index j in the exponent, 10000**(j/d), so the cosine column of a pair "
        "gets a different frequency from its sine column.",
        keywords=("2i", "pair", "same angle", "frequenc", "exponent"),
        source='''
def sinusoidal_positions(n, d):
    j = np.arange(d)
    angles = np.arange(n)[:, None] / 10000 ** (j[None, :] / d)
    return np.where(j % 2 == 0, np.sin(angles), np.cos(angles))
''',
    ),
    # ---------------------------------------------------------------- apply_rope
    Variant(
        function="apply_rope", kind="correct", name="apply_rope/complex",
        source='''
def apply_rope(x, positions, base=10000.0):
    dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64
    d = x.shape[-1]
    theta = np.asarray(positions, dtype=np.float64)[:, None] * base ** (-np.arange(0, d, 2) / d)
    z = (x[..., 0::2] + 1j * x[..., 1::2]) * np.exp(1j * theta)
    out = np.empty(x.shape, dtype=np.float64)
    out[..., 0::2] = z.real
    out[..., 1::2] = z.imag
    return out.astype(dtype)
''',
    ),
    Variant(
        function="apply_rope", kind="correct", name="apply_rope/reshape-pairs",
        source='''
def apply_rope(x, positions, base=10000.0):
    dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64
    d = x.shape[-1]
    pairs = x.reshape(*x.shape[:-1], d // 2, 2).astype(np.float64)
    i = np.arange(d // 2)
    t = np.asarray(positions)[:, None] * np.power(float(base), -2.0 * i / d)
    cos, sin = np.cos(t), np.sin(t)
    a, b = pairs[..., 0], pairs[..., 1]
    rotated = np.stack([a * cos - b * sin, a * sin + b * cos], axis=-1)
    return rotated.reshape(x.shape).astype(dtype)
''',
    ),
    Variant(
        function="apply_rope", kind="wrong", name="apply_rope/half-split",
        misconception="Uses the half-split convention (pairs x[i], x[i + d/2]) instead of the interleaved "
        "pairs x[2i], x[2i+1].",
        keywords=("interleav", "half", "pair", "2i"),
        source='''
def apply_rope(x, positions, base=10000.0):
    d = x.shape[-1]
    t = np.asarray(positions)[:, None] * base ** (-np.arange(0, d, 2) / d)
    a, b = x[..., : d // 2], x[..., d // 2 :]
    out = np.concatenate([a * np.cos(t) - b * np.sin(t), a * np.sin(t) + b * np.cos(t)], axis=-1)
    return out.astype(x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64)
''',
    ),
    Variant(
        function="apply_rope", kind="wrong", name="apply_rope/clockwise",
        misconception="Rotates clockwise (the sign of the sine terms flipped).",
        keywords=("counter-clockwise", "counterclockwise", "clockwise", "sign", "direction"),
        source='''
def apply_rope(x, positions, base=10000.0):
    d = x.shape[-1]
    t = np.asarray(positions)[:, None] * base ** (-np.arange(0, d, 2) / d)
    a, b = x[..., 0::2], x[..., 1::2]
    out = np.empty(x.shape, dtype=np.float64)
    out[..., 0::2] = a * np.cos(t) + b * np.sin(t)
    out[..., 1::2] = -a * np.sin(t) + b * np.cos(t)
    return out.astype(x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64)
''',
    ),
    Variant(
        function="apply_rope", kind="wrong", name="apply_rope/ignores-positions",
        misconception="Uses positions 0..n-1 (np.arange(n)) instead of the given positions, wrong after a cache.",
        keywords=("positions", "position"),
        source='''
def apply_rope(x, positions, base=10000.0):
    n, d = x.shape[-2], x.shape[-1]
    t = np.arange(n)[:, None] * base ** (-np.arange(0, d, 2) / d)
    a, b = x[..., 0::2], x[..., 1::2]
    out = np.empty(x.shape, dtype=np.float64)
    out[..., 0::2] = a * np.cos(t) - b * np.sin(t)
    out[..., 1::2] = a * np.sin(t) + b * np.cos(t)
    return out.astype(x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64)
''',
    ),
    Variant(
        function="apply_rope", kind="wrong", name="apply_rope/ignores-base",
        misconception="Hard-codes 10000 instead of using the base argument.",
        keywords=("base",),
        source='''
def apply_rope(x, positions, base=10000.0):
    d = x.shape[-1]
    t = np.asarray(positions)[:, None] * 10000.0 ** (-np.arange(0, d, 2) / d)
    a, b = x[..., 0::2], x[..., 1::2]
    out = np.empty(x.shape, dtype=np.float64)
    out[..., 0::2] = a * np.cos(t) - b * np.sin(t)
    out[..., 1::2] = a * np.sin(t) + b * np.cos(t)
    return out.astype(x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64)
''',
    ),
    Variant(
        function="apply_rope", kind="wrong", name="apply_rope/float64-for-float32",
        misconception="Computes in float64 and returns float64 even for a float32 x, instead of keeping x's dtype.",
        keywords=("dtype", "float32", "float64"),
        source='''
def apply_rope(x, positions, base=10000.0):
    d = x.shape[-1]
    t = np.asarray(positions)[:, None] * base ** (-np.arange(0, d, 2) / d)
    a, b = x[..., 0::2].astype(np.float64), x[..., 1::2].astype(np.float64)
    out = np.empty(x.shape, dtype=np.float64)
    out[..., 0::2] = a * np.cos(t) - b * np.sin(t)
    out[..., 1::2] = a * np.sin(t) + b * np.cos(t)
    return out
''',
    ),
]
