"""Held-out class, exercise 1 (ch1-lookup): hard_lookup, soft_lookup, numerical_gradient."""

from __future__ import annotations

from . import Variant

VARIANTS = [
    # ---------------------------------------------------------------- hard_lookup
    Variant(
        function="hard_lookup", kind="correct", name="hard_lookup/loop-array_equal",
        source='''
def hard_lookup(query, keys, values):
    for i in range(keys.shape[0]):
        if np.array_equal(keys[i], query):
            return values[i]
    raise KeyError(f"no key equals {query}")
''',
    ),
    Variant(
        function="hard_lookup", kind="correct", name="hard_lookup/one-hot-matmul",
        source='''
def hard_lookup(query, keys, values):
    matches = np.flatnonzero(np.all(keys == query[None, :], axis=1))
    if matches.size == 0:
        raise KeyError(tuple(query.tolist()))
    weights = np.zeros(keys.shape[0], dtype=values.dtype)
    weights[matches[0]] = 1
    return (weights @ values).astype(values.dtype, copy=False)
''',
    ),
    Variant(
        function="hard_lookup", kind="correct", name="hard_lookup/python-dict",
        source='''
def hard_lookup(query, keys, values):
    table = {}
    for key, value in zip(keys, values):
        table.setdefault(tuple(key.tolist()), value)
    return table[tuple(query.tolist())]
''',
    ),
    Variant(
        function="hard_lookup", kind="wrong", name="hard_lookup/last-match",
        misconception="When several keys equal the query it returns the value of the LAST one, not the first.",
        keywords=("first",),
        source='''
def hard_lookup(query, keys, values):
    result = None
    for i in range(len(keys)):
        if np.all(keys[i] == query):
            result = values[i]
    if result is None:
        raise KeyError("no key matches the query")
    return result
''',
    ),
    Variant(
        function="hard_lookup", kind="wrong", name="hard_lookup/argmax-similarity",
        misconception="Treats the hard lookup as 'most similar key' (argmax of dot products) instead of an exact "
        "match, so it never raises KeyError and picks the wrong key when a longer key scores higher.",
        keywords=("equal", "exact", "keyerror", "argmax", "similar"),
        source='''
def hard_lookup(query, keys, values):
    return values[np.argmax(keys @ query)]
''',
    ),
    Variant(
        function="hard_lookup", kind="wrong", name="hard_lookup/isclose",
        misconception="Matches keys within a floating-point tolerance (np.isclose) instead of exactly, so a "
        "key that is only close to the query is returned instead of raising KeyError.",
        keywords=("exact", "close", "tolerance", "keyerror"),
        source='''
def hard_lookup(query, keys, values):
    matches = np.all(np.isclose(keys, query), axis=1)
    if not matches.any():
        raise KeyError("no key matches the query")
    return values[np.argmax(matches)]
''',
    ),
    Variant(
        function="hard_lookup", kind="wrong", name="hard_lookup/any-coordinate",
        misconception="A key matches when ANY coordinate equals the query's (np.any) instead of every coordinate.",
        keywords=("every coordinate", "all coordinates", "every", "any"),
        source='''
def hard_lookup(query, keys, values):
    matches = np.any(keys == query, axis=1)
    if not matches.any():
        raise KeyError("no key matches the query")
    return values[np.argmax(matches)]
''',
    ),
    Variant(
        function="hard_lookup", kind="wrong", name="hard_lookup/zeros-instead-of-keyerror",
        misconception="Returns a zero vector (an all-zero one-hot) when no key matches instead of raising KeyError.",
        keywords=("keyerror", "raise"),
        source='''
def hard_lookup(query, keys, values):
    weights = np.all(keys == query, axis=1).astype(float)
    if weights.sum() > 1:
        weights[np.argmax(weights) + 1:] = 0.0
    return weights @ values
''',
    ),
    # ---------------------------------------------------------------- soft_lookup
    Variant(
        function="soft_lookup", kind="correct", name="soft_lookup/logsumexp",
        source='''
def soft_lookup(query, keys, values, temperature=1.0):
    scores = np.einsum("nd,d->n", keys, query) / temperature
    top = scores.max()
    log_total = top + np.log(np.sum(np.exp(scores - top)))
    weights = np.exp(scores - log_total)
    return weights @ values, weights
''',
    ),
    Variant(
        function="soft_lookup", kind="correct", name="soft_lookup/loops-query-over-T",
        source='''
def soft_lookup(query, keys, values, temperature=1.0):
    q = query / temperature
    scores = np.array([np.dot(k, q) for k in keys])
    exps = np.exp(scores - np.max(scores))
    weights = exps / exps.sum()
    output = np.sum(weights[:, None] * values, axis=0)
    return output, weights
''',
    ),
    Variant(
        function="soft_lookup", kind="wrong", name="soft_lookup/times-temperature",
        misconception="Multiplies the scores by the temperature instead of dividing by it.",
        keywords=("temperature", "divide", "divided"),
        source='''
def soft_lookup(query, keys, values, temperature=1.0):
    scores = keys @ query * temperature
    e = np.exp(scores - scores.max())
    weights = e / e.sum()
    return weights @ values, weights
''',
    ),
    Variant(
        function="soft_lookup", kind="wrong", name="soft_lookup/no-max-shift",
        misconception="Exponentiates the raw scores without subtracting the maximum, so large scores overflow to "
        "inf and the weights become NaN.",
        keywords=("overflow", "stable", "maximum", "max", "nan"),
        source='''
def soft_lookup(query, keys, values, temperature=1.0):
    e = np.exp(keys @ query / temperature)
    weights = e / e.sum()
    return weights @ values, weights
''',
    ),
    Variant(
        function="soft_lookup", kind="wrong", name="soft_lookup/sqrt-d-scale",
        misconception="Also scales the scores by 1/sqrt(d) as in scaled dot-product attention, which the soft "
        "lookup does not do.",
        keywords=("sqrt", "scale", "scaled"),
        source='''
def soft_lookup(query, keys, values, temperature=1.0):
    scores = keys @ query / np.sqrt(query.shape[0]) / temperature
    e = np.exp(scores - scores.max())
    weights = e / e.sum()
    return weights @ values, weights
''',
    ),
    Variant(
        function="soft_lookup", kind="wrong", name="soft_lookup/abs-max-shift",
        misconception="Shifts the scores by the largest ABSOLUTE score, so when every score is very negative "
        "all exponentials underflow to 0 and the weights are 0/0 = NaN.",
        keywords=("max", "negative", "underflow", "nan", "stable"),
        source='''
def soft_lookup(query, keys, values, temperature=1.0):
    scores = keys @ query / temperature
    e = np.exp(scores - np.abs(scores).max())
    weights = e / e.sum()
    return weights @ values, weights
''',
    ),
    Variant(
        function="soft_lookup", kind="wrong", name="soft_lookup/not-normalised",
        misconception="Forgets to divide the exponentials by their sum, so the weights do not sum to 1.",
        keywords=("sum to 1", "sum", "normalis", "normaliz"),
        source='''
def soft_lookup(query, keys, values, temperature=1.0):
    scores = keys @ query / temperature
    weights = np.exp(scores - scores.max())
    return weights @ values, weights
''',
    ),
    # ---------------------------------------------------------------- numerical_gradient
    Variant(
        function="numerical_gradient", kind="correct", name="numerical_gradient/eye-stack",
        source='''
def numerical_gradient(f, query, eps=1e-6):
    steps = np.eye(query.shape[0]) * eps
    columns = [(np.asarray(f(query + e)) - np.asarray(f(query - e))) / (2 * eps) for e in steps]
    return np.stack(columns, axis=1)
''',
    ),
    Variant(
        function="numerical_gradient", kind="correct", name="numerical_gradient/copies-fill",
        source='''
def numerical_gradient(f, query, eps=1e-6):
    q = np.array(query, dtype=float)
    d_v = np.asarray(f(q.copy())).shape[0]
    jac = np.zeros((d_v, q.shape[0]))
    for i in range(q.shape[0]):
        plus, minus = q.copy(), q.copy()
        plus[i] += eps
        minus[i] -= eps
        jac[:, i] = (np.asarray(f(plus)) - np.asarray(f(minus))) / (2 * eps)
    return jac
''',
    ),
    Variant(
        function="numerical_gradient", kind="wrong", name="numerical_gradient/forward-difference",
        misconception="Uses the forward difference (f(q + eps e_i) - f(q)) / eps instead of the central difference.",
        keywords=("central", "forward", "q - eps", "minus"),
        source='''
def numerical_gradient(f, query, eps=1e-6):
    base = np.asarray(f(query))
    cols = []
    for i in range(query.shape[0]):
        e = np.zeros_like(query, dtype=float)
        e[i] = eps
        cols.append((np.asarray(f(query + e)) - base) / eps)
    return np.stack(cols, axis=1)
''',
    ),
    Variant(
        function="numerical_gradient", kind="wrong", name="numerical_gradient/transposed",
        misconception="Stacks the differences as rows, returning the (d, d_v) transpose of the Jacobian.",
        keywords=("transpose", "(d_v, d)", "shape", "column"),
        source='''
def numerical_gradient(f, query, eps=1e-6):
    rows = []
    for i in range(query.shape[0]):
        e = np.zeros(query.shape[0])
        e[i] = eps
        rows.append((np.asarray(f(query + e)) - np.asarray(f(query - e))) / (2 * eps))
    return np.array(rows)
''',
    ),
    Variant(
        function="numerical_gradient", kind="wrong", name="numerical_gradient/divide-by-eps",
        misconception="Divides the central difference by eps instead of 2 eps, doubling the derivative.",
        keywords=("2 eps", "2*eps", "2 * eps", "twice", "factor"),
        source='''
def numerical_gradient(f, query, eps=1e-6):
    cols = []
    for i in range(query.shape[0]):
        e = np.zeros(query.shape[0])
        e[i] = eps
        cols.append((np.asarray(f(query + e)) - np.asarray(f(query - e))) / eps)
    return np.stack(cols, axis=1)
''',
    ),
    Variant(
        function="numerical_gradient", kind="wrong", name="numerical_gradient/in-place-perturbation",
        misconception="Perturbs the caller's query array in place (query[i] += eps ...), so f sees an aliased "
        "array and the query is left changed by round-off.",
        keywords=("in place", "in-place", "modif", "changed", "copy"),
        source='''
def numerical_gradient(f, query, eps=1e-6):
    cols = []
    for i in range(query.shape[0]):
        query[i] += eps
        plus = f(query)
        query[i] -= 2 * eps
        minus = f(query)
        query[i] += eps
        cols.append((np.asarray(plus) - np.asarray(minus)) / (2 * eps))
    return np.stack(cols, axis=1)
''',
    ),
    Variant(
        function="numerical_gradient", kind="wrong", name="numerical_gradient/ignores-eps",
        misconception="Ignores the eps argument and always steps by a fixed 1e-5.",
        keywords=("eps", "step"),
        source='''
def numerical_gradient(f, query, eps=1e-6):
    h = 1e-5
    cols = []
    for i in range(query.shape[0]):
        e = np.zeros(query.shape[0])
        e[i] = h
        cols.append((np.asarray(f(query + e)) - np.asarray(f(query - e))) / (2 * h))
    return np.stack(cols, axis=1)
''',
    ),
]
