"""Chapter 1 — a lookup table is hard attention (NumPy).

A Python dict answers a query with the value whose key *equals* it: a one-hot weight over the keys.
Relaxing "equal" to "similar" (dot products) and the one-hot to a softmax gives soft attention.
"""

from __future__ import annotations

import numpy as np

from ._checks import require_ndim, shape_of, validated


def _check_lookup(query: np.ndarray, keys: np.ndarray, values: np.ndarray, temperature: float = 1.0) -> None:
    require_ndim("query", query, 1, "(d,)")
    require_ndim("keys", keys, 2, "(n, d)")
    require_ndim("values", values, 2, "(n, d_v)")
    if keys.shape[1] != query.shape[0]:
        raise ValueError(f"query {shape_of(query)} and keys {shape_of(keys)} must share d")
    if keys.shape[0] != values.shape[0]:
        raise ValueError(f"keys {shape_of(keys)} and values {shape_of(values)} must have the same n")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")


@validated(_check_lookup)
def hard_lookup(query: np.ndarray, keys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Return the value whose key equals ``query`` exactly, like ``dict[query]``.

    Args:
        query: ``(d,)``.
        keys: ``(n, d)``, one key per row.
        values: ``(n, d_v)``, the value stored under each key.

    Returns:
        ``(d_v,)``: the value of the first key equal to ``query``.

    Raises:
        KeyError: when no key equals ``query``.
    """
    matches = np.flatnonzero(np.all(keys == query, axis=-1))  # the one-hot selection
    if matches.size == 0:
        raise KeyError(f"no key equals the query {query.tolist()}")
    return values[matches[0]]


@validated(_check_lookup)
def soft_lookup(
    query: np.ndarray, keys: np.ndarray, values: np.ndarray, temperature: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """A differentiable lookup: a softmax-weighted mix of all values.

    ``weights = softmax(keys @ query / temperature)``; ``output = weights @ values``.
    As ``temperature -> 0`` (distinct keys of equal norm) it approaches :func:`hard_lookup`.

    Args:
        query: ``(d,)``.
        keys: ``(n, d)``.
        values: ``(n, d_v)``.
        temperature: ``> 0``; small values sharpen the weights, large values flatten them.

    Returns:
        ``(output (d_v,), weights (n,))``; the weights are non-negative and sum to 1.
    """
    scores = keys @ query / temperature
    weights = np.exp(scores - scores.max())  # subtracting the max keeps exp from overflowing
    weights = weights / weights.sum()
    return weights @ values, weights


def numerical_gradient(f, query: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Jacobian of ``f`` at ``query`` by central differences.

    Args:
        f: a function from a ``(d,)`` array to a ``(d_v,)`` array.
        query: ``(d,)``, the point where the derivative is taken.
        eps: the step.

    Returns:
        ``(d_v, d)``: column ``i`` is ``(f(query + eps e_i) - f(query - eps e_i)) / (2 eps)``.
    """
    query = np.asarray(query, dtype=float)
    columns = []
    for i in range(query.size):
        step = np.zeros_like(query)
        step[i] = eps
        columns.append((f(query + step) - f(query - step)) / (2 * eps))
    return np.stack(columns, axis=-1)
