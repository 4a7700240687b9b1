"""Chapter 1: a lookup table is hard attention; soft attention is its differentiable relaxation.

Tied to code no one here wrote: a Python ``dict`` for the hard lookup, ``torch.softmax`` and
``torch.autograd`` for the soft one.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from strategies import assert_close, float_dtypes, seeds

from solutions import hard_lookup, soft_lookup

pytestmark = pytest.mark.ch1


def _table(seed: int, n: int, d: int, d_v: int, dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
    """``keys (n, d)`` distinct small integers (exact equality is meaningful), ``values (n, d_v)``."""
    rng = np.random.default_rng(seed)
    keys = rng.permutation(np.array(np.meshgrid(*[range(4)] * d)).reshape(d, -1).T)[:n]
    return keys.astype(dtype), rng.standard_normal((n, d_v)).astype(dtype)


def _unit_keys(seed: int, n: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct keys of equal (unit) norm and their values, float64."""
    rng = np.random.default_rng(seed)
    keys = rng.standard_normal((n, d))
    keys /= np.linalg.norm(keys, axis=1, keepdims=True)
    return keys, rng.standard_normal((n, 3))


@given(seed=seeds, n=st.integers(1, 12), d=st.integers(2, 3), d_v=st.integers(1, 4), dtype=float_dtypes)
def test_hard_lookup_is_a_dict_lookup(seed, n, d, d_v, dtype):
    keys, values = _table(seed, n, d, d_v, dtype)
    table = {tuple(k): v for k, v in zip(keys.tolist(), values, strict=True)}
    for key in keys:
        np.testing.assert_array_equal(hard_lookup(key, keys, values), table[tuple(key.tolist())])
    missing = np.full(d, 7.0, dtype=dtype)  # outside the grid {0..3}^d
    with pytest.raises(KeyError):
        table[tuple(missing.tolist())]
    with pytest.raises(KeyError):
        hard_lookup(missing, keys, values)


def test_hard_lookup_is_not_even_continuous_in_the_query():
    """Nudging the query off a key does not change the answer a little: there is no answer at all."""
    keys, values = _table(0, 5, 2, 3)
    assert hard_lookup(keys[2], keys, values).shape == (3,)
    with pytest.raises(KeyError):
        hard_lookup(keys[2] + 1e-9, keys, values)


def test_hard_selection_gives_the_query_no_gradient_in_torch():
    """Chapter 1's point, checked with torch.autograd: selection by equality or argmax is not differentiable."""
    keys, values = (torch.from_numpy(a) for a in _table(1, 6, 2, 3))
    query = keys[4].clone().requires_grad_(True)

    one_hot = (keys == query).all(dim=-1).to(values.dtype)  # the indicator function
    by_equality = one_hot @ values
    reference = hard_lookup(query.detach().numpy(), keys.numpy(), values.numpy())
    np.testing.assert_array_equal(by_equality.numpy(), reference)
    assert not by_equality.requires_grad  # autograd has no path from the output back to the query

    by_argmax = values[torch.argmax(keys @ query)]
    assert not by_argmax.requires_grad
    assert query.grad is None


@given(seed=seeds, n=st.integers(1, 10), d=st.integers(1, 6), temperature=st.floats(0.05, 20.0), dtype=float_dtypes)
def test_soft_lookup_matches_torch_softmax(seed, n, d, temperature, dtype):
    rng = np.random.default_rng(seed)
    query, keys, values = (rng.standard_normal(s).astype(dtype) for s in ((d,), (n, d), (n, 4)))
    out, weights = soft_lookup(query, keys, values, temperature=temperature)
    assert out.shape == (4,) and weights.shape == (n,)
    q, k, v = (torch.from_numpy(a) for a in (query, keys, values))
    expected_w = torch.softmax(k @ q / temperature, dim=-1)
    assert_close(weights, expected_w, dtype)
    assert_close(out, expected_w @ v, dtype)
    assert np.all(weights >= 0)
    np.testing.assert_allclose(weights.sum(), 1.0, rtol=1e-5)


def test_soft_lookup_default_temperature_is_one():
    keys, values = _unit_keys(3, 5, 4)
    out_default, w_default = soft_lookup(keys[0], keys, values)
    out_one, w_one = soft_lookup(keys[0], keys, values, temperature=1.0)
    np.testing.assert_array_equal(w_default, w_one)
    np.testing.assert_array_equal(out_default, out_one)


@given(seed=seeds, n=st.integers(2, 10), d=st.integers(2, 6))
def test_soft_lookup_tends_to_hard_lookup_as_temperature_goes_to_zero(seed, n, d):
    keys, values = _unit_keys(seed, n, d)
    i = seed % n
    query = keys[i]
    hard = hard_lookup(query, keys, values)
    # With unit keys the matching logit is 1 and the others are cosines < 1; the gap sets the scale.
    gap = 1.0 - np.max(np.delete(keys @ query, i))
    match_weight = []  # the weight of the matching key grows as the temperature falls
    for temperature in (10.0, 1.0, 0.1, 0.01, gap / 60):
        out, weights = soft_lookup(query, keys, values, temperature=temperature)
        assert np.all(np.isfinite(out)) and np.all(np.isfinite(weights))
        match_weight.append(weights[i])
    assert all(a <= b for a, b in zip(match_weight, match_weight[1:], strict=False)), match_weight
    np.testing.assert_allclose(out, hard, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(weights, np.eye(n)[i], atol=1e-6)


def test_soft_lookup_is_stable_for_logits_of_1e4():
    keys, values = _unit_keys(7, 6, 3)
    out, weights = soft_lookup(keys[2], keys, values, temperature=1e-4)  # matching logit = 1e4
    assert np.all(np.isfinite(out)) and np.all(np.isfinite(weights))
    np.testing.assert_allclose(weights.sum(), 1.0)
    np.testing.assert_allclose(out, values[2], rtol=1e-5, atol=1e-6)


def _torch_soft_lookup(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, temperature: float) -> torch.Tensor:
    return torch.softmax(k @ q / temperature, dim=-1) @ v


def _finite_difference_jacobian(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """``d f(x) / d x`` by central differences: ``(*f(x).shape, *x.shape)``."""
    f0 = f(x)
    jac = np.zeros((*f0.shape, *x.shape))
    for idx in np.ndindex(*x.shape):
        step = np.zeros_like(x)
        step[idx] = eps
        jac[(..., *idx)] = (f(x + step) - f(x - step)) / (2 * eps)
    return jac


@given(seed=seeds, n=st.integers(1, 6), d=st.integers(1, 4), temperature=st.floats(0.3, 3.0))
def test_soft_lookup_gradients_match_torch_autograd(seed, n, d, temperature):
    """Finite differences of the NumPy reference agree with torch.autograd, for the query and the keys."""
    rng = np.random.default_rng(seed)
    query, keys, values = rng.standard_normal((d,)), rng.standard_normal((n, d)), rng.standard_normal((n, 3))
    q, k, v = (torch.from_numpy(a) for a in (query, keys, values))

    jac_q = torch.autograd.functional.jacobian(lambda q_: _torch_soft_lookup(q_, k, v, temperature), q)
    fd_q = _finite_difference_jacobian(lambda x: soft_lookup(x, keys, values, temperature)[0], query)
    np.testing.assert_allclose(fd_q, jac_q.numpy(), rtol=1e-5, atol=1e-7)

    jac_k = torch.autograd.functional.jacobian(lambda k_: _torch_soft_lookup(q, k_, v, temperature), k)
    fd_k = _finite_difference_jacobian(lambda x: soft_lookup(query, x, values, temperature)[0], keys)
    np.testing.assert_allclose(fd_k, jac_k.numpy(), rtol=1e-5, atol=1e-7)


def test_soft_lookup_gives_the_query_a_nonzero_gradient():
    keys, values = _unit_keys(11, 5, 3)
    q = torch.from_numpy(keys[1].copy()).requires_grad_(True)
    _torch_soft_lookup(q, torch.from_numpy(keys), torch.from_numpy(values), 1.0).sum().backward()
    fd = _finite_difference_jacobian(lambda x: soft_lookup(x, keys, values)[0].sum(), keys[1])
    assert np.abs(fd).max() > 1e-3  # the reference's output really moves with the query
    np.testing.assert_allclose(fd, q.grad.numpy(), rtol=1e-5, atol=1e-8)
