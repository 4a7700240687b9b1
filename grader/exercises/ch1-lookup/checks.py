"""Hidden checks of ch1-lookup: for each graded function, its hidden cases and its known mistakes.

Mistakes are patches of the reference's student form (``solutions/ch1_lookup.py`` without its
``@validated`` lines); see CONTRIBUTING.md.
"""

from __future__ import annotations

import numpy as np

from grader.engine.cases import Case, Spec, call, gradient
from grader.engine.mistakes import Mistake

# ---- hard_lookup -------------------------------------------------------------------------------------


def hard_lookup_cases(rng: np.random.Generator) -> list[Case]:
    """Keys of width d and values of another width d_v; one query that several keys equal (the first of
    them, not at position 0, is the answer); a key that agrees with a query in one coordinate only."""
    n, d = int(rng.integers(5, 9)), int(rng.integers(3, 6))
    d_v = d + int(rng.integers(1, 4))  # values wider than keys: returning a key has the wrong shape
    keys = rng.integers(-5, 6, size=(n, d)).astype(float)
    keys[:, 0] = rng.permutation(n)  # distinct keys
    values = rng.normal(size=(n, d_v))
    shared = keys.copy()
    shared[1, 0], shared[1, 1:] = shared[n - 2, 0], shared[n - 2, 1:] + 1  # agrees with key n-2 in one coordinate
    repeated = keys.copy()
    several = np.sort(rng.choice(np.arange(1, n), size=3, replace=False))  # three equal keys, none the first
    repeated[several] = keys[several[0]]
    floats = rng.normal(size=(n - 1, d_v))
    i = int(rng.integers(1, n - 1))
    return [
        Case("a query equal to one of the keys", call(keys[i].copy(), keys, values)),
        Case("a query equal to the first key", call(keys[0].copy(), keys, values)),
        Case(
            "a key that agrees with the query in one coordinate but not in the others",
            call(shared[n - 2].copy(), shared, values),
        ),
        Case("a query that several keys equal (the first of them counts)",
             call(repeated[several[0]].copy(), repeated, values)),
        Case("real-valued keys and values of another width", call(floats[2].copy(), floats, values[: n - 1, :2])),
        Case("float32 keys and values", call(keys[i].astype(np.float32), keys.astype(np.float32),
                                            values.astype(np.float32))),
        Case("a query that equals no key (it must raise KeyError)", call(keys[i] + 0.5, keys, values)),
        Case("a query within 1e-9 of a real-valued key but not equal to it (it must raise KeyError: the match "
             "is exact)", call(floats[i] + 1e-9 * (1 + np.abs(floats[i])), floats, values[: n - 1, :2])),
    ]


HARD_MISTAKES = [
    Mistake(
        "hard-close-enough", "hard_lookup",
        "hard_lookup must match the query exactly: a key that is only close to it (np.isclose, np.allclose, "
        "a tolerance) is not a match, and a query that equals no key raises KeyError.",
        replace=(("np.all(keys == query, axis=-1)", "np.all(np.isclose(keys, query), axis=-1)"),),
    ),
    Mistake(
        "hard-returns-key", "hard_lookup",
        "hard_lookup returns the matching key itself; it should return the value stored under that key.",
        replace=(("return values[matches[0]]", "return keys[matches[0]]"),),
    ),
    Mistake(
        "hard-nearest-key", "hard_lookup",
        "hard_lookup must match the query exactly and raise KeyError when no key equals it; yours returns "
        "the value of the most similar key instead (that is an argmax, not a lookup).",
        rewrite='''
        def hard_lookup(query, keys, values):
            return values[np.argmax(keys @ query)]
        ''',
    ),
    Mistake(
        "hard-any-coordinate", "hard_lookup",
        "a key matches only if it equals the query in every coordinate (np.all); yours accepts a key that "
        "agrees with the query in a single coordinate (np.any).",
        replace=(("np.all(keys == query, axis=-1)", "np.any(keys == query, axis=-1)"),),
    ),
    Mistake(
        "hard-last-match", "hard_lookup",
        "when several keys equal the query, return the value of the FIRST of them (as a dict keeps one "
        "entry per key, the lookup takes the first match); yours returns the last one.",
        replace=(("return values[matches[0]]", "return values[matches[-1]]"),),
    ),
]

# ---- soft_lookup -------------------------------------------------------------------------------------


def soft_lookup_cases(rng: np.random.Generator) -> list[Case]:
    """Values of another width than the keys; scores of +1e4, and scores that are all negative down to
    -1e4 and below (a softmax shifted by anything but the largest score under- or overflows there)."""
    n, d = (int(v) for v in rng.integers(4, 8, size=2))
    d_v = d + int(rng.integers(1, 4))
    keys, values, query = rng.normal(size=(n, d)), rng.normal(size=(n, d_v)), rng.normal(size=d)
    scores = keys @ query
    if scores.max() <= 0:  # make the largest score positive, so that scaling it up overflows np.exp
        query, scores = -query, -scores
    big_q = query * (1e4 / scores.max())  # the largest score is exactly +1e4 (np.exp overflows past ~709)
    below = -np.abs(rng.normal(size=(n, d))) - 0.1  # with a positive query every score is negative
    up = np.abs(rng.normal(size=d)) + 0.1
    low_q = up * (1e4 / -(below @ up).max())  # every score <= -1e4: the largest one is exactly -1e4
    f32 = [a.astype(np.float32) for a in (query, keys, values)]
    return [
        Case("temperature 1", call(query, keys, values)),
        Case("temperature 0.25 (sharper weights)", call(query, keys, values, temperature=0.25)),
        Case("temperature 4 (flatter weights)", call(query, keys, values, temperature=4.0)),
        Case("scores as large as 1e4", call(big_q, keys, values)),
        Case("scores that are all negative, down to -1e4 and below", call(low_q, below, values)),
        Case("a tiny temperature (1e-4)", call(query, keys, values, temperature=1e-4)),
        Case("float32 inputs", call(*f32, temperature=0.5)),
    ]


SOFT_MISTAKES = [
    Mistake(
        "soft-temperature-multiplied", "soft_lookup",
        "the scores must be divided by the temperature (keys @ query / temperature); yours multiplies them, "
        "so a small temperature flattens the weights instead of sharpening them.",
        replace=(("keys @ query / temperature", "keys @ query * temperature"),),
    ),
    Mistake(
        "soft-unstable", "soft_lookup",
        "your softmax overflows (NaN or inf) when the scores are large, e.g. for a small temperature: "
        "subtract the largest score before calling np.exp.",
        replace=(("np.exp(scores - scores.max())", "np.exp(scores)"),),
    ),
    Mistake(
        "soft-not-normalised", "soft_lookup",
        "your weights do not sum to 1: after np.exp, divide by their sum (that is what makes it a softmax).",
        replace=(("    weights = weights / weights.sum()\n", ""),),
    ),
    Mistake(
        "soft-sqrt-d-scale", "soft_lookup",
        "chapter 1's soft lookup has no 1/sqrt(d) scale: the weights are softmax(keys @ query / temperature) "
        "(the 1/sqrt(d_k) scale comes in chapter 2).",
        replace=(("keys @ query / temperature", "keys @ query / temperature / np.sqrt(query.shape[-1])"),),
    ),
    Mistake(
        "soft-shift-by-abs-max", "soft_lookup",
        "subtract the largest score itself before np.exp, not its absolute value: when every score is "
        "negative (say -1e4), scores - abs(max) are all around -2e4, np.exp gives 0 everywhere and 0 / 0 is NaN.",
        replace=(("np.exp(scores - scores.max())", "np.exp(scores - np.abs(scores.max()))"),),
    ),
]

# ---- numerical_gradient ------------------------------------------------------------------------------


def _soft_jacobian(query: np.ndarray, keys: np.ndarray, values: np.ndarray, t: float) -> np.ndarray:
    s = keys @ query / t
    w = np.exp(s - s.max())
    w /= w.sum()
    return values.T @ (np.diag(w) - np.outer(w, w)) @ keys / t


def gradient_cases(rng: np.random.Generator) -> list[Case]:
    """Known Jacobians: a linear map (also at an integer query: its steps must not be rounded to 0), a
    soft lookup, one output; and a cubic with a large eps = 0.1, where the central difference is
    3 q**2 + eps**2, so a function that ignores its eps argument answers 3 q**2 instead."""
    d, d_v = (int(v) for v in rng.integers(3, 6, size=2))
    A, b = rng.normal(size=(d_v, d)), rng.normal(size=d_v)
    keys, values, query = rng.normal(size=(5, d)), rng.normal(size=(5, 2)), rng.normal(size=d)
    q1, q3 = rng.normal(size=d), rng.normal(size=d)
    whole = rng.integers(-3, 4, size=d)
    eps = 0.1
    return [
        Case("a linear function f(q) = A q + b", gradient("linear", (A, b), query), expected=A),
        Case("a linear function at a query of integers", gradient("linear", (A, b), whole), expected=A),
        Case("a soft lookup", gradient("soft", (keys, values, 0.7), query),
             expected=_soft_jacobian(query, keys, values, 0.7)),
        Case("f(q) = [sum(q**2)] (one output)", gradient("sum_of_squares", (), q1), expected=2 * q1[None, :]),
        Case("f(q) = [sum(q**3)] with eps=0.1", gradient("sum_of_cubes", (), q3, eps=eps),
             expected=(3 * q3**2 + eps**2)[None, :]),
    ]


GRADIENT_MISTAKES = [
    Mistake(
        "grad-transposed", "numerical_gradient",
        "your Jacobian is transposed: row i must hold the derivatives of output i, so its shape is "
        "(d_v, d), one column per coordinate of the query.",
        replace=(("np.stack(columns, axis=-1)", "np.stack(columns, axis=0)"),),
    ),
    Mistake(
        "grad-not-halved", "numerical_gradient",
        "a central difference (f(q + eps) - f(q - eps)) spans a step of 2 * eps: divide by 2 * eps, not eps.",
        replace=(("/ (2 * eps)", "/ eps"),),
    ),
]

SPECS = {
    "hard_lookup": Spec(hard_lookup_cases),
    "soft_lookup": Spec(soft_lookup_cases, items=("output", "weights")),
    "numerical_gradient": Spec(gradient_cases, reference=False, rtol=1e-4, atol=1e-5),
}

#: Mutants of the references (``scripts/mutation_score.py``) that no hidden case can tell from them, and why.
EQUIVALENT_MUTANTS = {
    "numerical_gradient:number@L1:1e-06->-1e-06":
        "a negative step gives the same central difference: (f(q - e) - f(q + e)) / (-2 e)",
    "numerical_gradient:number@L1:1e-06->2e-06":
        "the default step only changes the rounding error, far below the tolerance (eps=0.1 is checked apart)",
}
MISTAKES = HARD_MISTAKES + SOFT_MISTAKES + GRADIENT_MISTAKES
