"""Chapter 2: scaled dot-product attention, softmax and masks, against PyTorch.

``torch.nn.functional.scaled_dot_product_attention`` returns only the output; its attention weights
are recovered exactly by attending over the identity: with ``V = I_{n_k}`` the output *is* the weight
matrix. Boolean ``attn_mask`` in torch has the same polarity as the course (True = may attend).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from strategies import (
    assert_close,
    attention_cases,
    broadcast_mask_shapes,
    float_dtypes,
    lengths_and_width,
    random_mask,
    seeds,
    to_torch,
)
from torch.nn.attention.bias import causal_lower_right

from solutions import causal_mask, padding_mask, scaled_dot_product_attention, softmax

pytestmark = pytest.mark.ch2


def torch_sdpa(
    Q: np.ndarray, K: np.ndarray, V: np.ndarray, attn_mask=None, is_causal: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """PyTorch's ``(output, weights)``; batch dims are broadcast first (CausalBias needs equal ones)."""
    batch = np.broadcast_shapes(Q.shape[:-2], K.shape[:-2], V.shape[:-2])
    q, k, v = (to_torch(a).expand(*batch, *a.shape[-2:]) for a in (Q, K, V))
    if isinstance(attn_mask, np.ndarray):
        attn_mask = to_torch(attn_mask)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal)
    eye = torch.eye(k.shape[-2], dtype=k.dtype).expand(*batch, -1, -1)
    weights = F.scaled_dot_product_attention(q, k, eye, attn_mask=attn_mask, is_causal=is_causal)
    return out, weights


def explicit_lower_right(n_q: int, n_k: int) -> np.ndarray:
    """The COURSE.md definition, written as a loop: query i may attend key j iff j <= i + (n_k - n_q)."""
    return np.array([[j <= i + (n_k - n_q) for j in range(n_k)] for i in range(n_q)], dtype=bool).reshape(n_q, n_k)


# --- softmax --------------------------------------------------------------------------------------


@given(
    shape=st.lists(st.integers(1, 5), min_size=1, max_size=4).map(tuple),
    seed=seeds,
    scale=st.sampled_from([1.0, 30.0, 1e4]),
    dtype=float_dtypes,
    data=st.data(),
)
def test_softmax_matches_torch(shape, seed, scale, dtype, data):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    x = (scale * np.random.default_rng(seed).standard_normal(shape)).astype(dtype)
    y = softmax(x, axis=axis)
    assert y.shape == x.shape
    assert np.all(np.isfinite(y))
    assert_close(y, torch.softmax(to_torch(x), dim=axis), dtype)
    np.testing.assert_allclose(y.sum(axis=axis), 1.0, rtol=1e-5)


def test_softmax_default_axis_is_last():
    x = np.random.default_rng(0).standard_normal((3, 4))
    np.testing.assert_array_equal(softmax(x), softmax(x, axis=-1))
    np.testing.assert_allclose(softmax(x).sum(axis=-1), 1.0)


@given(seed=seeds, shift=st.sampled_from([-1e4, -3.0, 0.5, 1e4]), dtype=float_dtypes)
def test_softmax_ignores_a_constant_added_to_the_logits(seed, shift, dtype):
    # Multiples of 1/64 stay exact in float32 after adding 1e4, so the shifted input is the same problem.
    x = (np.round(64 * np.random.default_rng(seed).standard_normal((4, 6))) / 64).astype(dtype)
    assert np.all((x + dtype(shift)) - dtype(shift) == x)
    assert_close(softmax(x + dtype(shift)), softmax(x), dtype)


def test_softmax_is_stable_for_logits_of_1e4():
    x = np.array([[1e4, 0.0, -1e4], [1e4, 1e4, 1e4 - 1.0]])
    y = softmax(x)
    assert np.all(np.isfinite(y))
    e = np.exp(-1.0)
    np.testing.assert_allclose(y, [[1.0, 0.0, 0.0], [1 / (2 + e), 1 / (2 + e), e / (2 + e)]], rtol=1e-12)


def test_softmax_gives_minus_inf_zero_weight_and_no_nan():
    y = softmax(np.array([[0.0, -np.inf, 0.0], [-np.inf, -np.inf, -np.inf]]))
    np.testing.assert_array_equal(y, [[0.5, 0.0, 0.5], [0.0, 0.0, 0.0]])


# --- masks ----------------------------------------------------------------------------------------


def test_causal_mask_hand_examples():
    np.testing.assert_array_equal(causal_mask(3, 3), [[1, 0, 0], [1, 1, 0], [1, 1, 1]])
    np.testing.assert_array_equal(causal_mask(2, 4), [[1, 1, 1, 0], [1, 1, 1, 1]])  # 2 cached keys
    np.testing.assert_array_equal(causal_mask(3, 2), [[0, 0], [1, 0], [1, 1]])  # first query sees nothing
    np.testing.assert_array_equal(causal_mask(1, 5), [[1, 1, 1, 1, 1]])  # decoding one token


@given(n_q=st.integers(1, 12), n_k=st.integers(1, 12))
def test_causal_mask_contents(n_q, n_k):
    mask = causal_mask(n_q, n_k)
    assert mask.shape == (n_q, n_k) and mask.dtype == np.bool_
    np.testing.assert_array_equal(mask, explicit_lower_right(n_q, n_k))
    if n_q <= n_k:  # torch warns (NaN rows) for n_q > n_k, where the loop above is the reference
        np.testing.assert_array_equal(mask, causal_lower_right(n_q, n_k)._materialize().numpy())
    if n_q == n_k:
        np.testing.assert_array_equal(mask, np.tril(np.ones((n_q, n_k), dtype=bool)))


def test_padding_mask_hand_example():
    mask = padding_mask(np.array([2, 0, 3]), 3)
    assert mask.shape == (3, 1, 3) and mask.dtype == np.bool_
    np.testing.assert_array_equal(mask[:, 0], [[1, 1, 0], [0, 0, 0], [1, 1, 1]])


@given(lengths_and_width)
def test_padding_mask_contents(case):
    lengths, n_k = case
    mask = padding_mask(np.array(lengths), n_k)
    assert mask.shape == (len(lengths), 1, n_k) and mask.dtype == np.bool_
    for b, length in enumerate(lengths):
        np.testing.assert_array_equal(mask[b, 0], [j < length for j in range(n_k)])


# --- scaled dot-product attention against torch ---------------------------------------------------


@given(attention_cases())
def test_sdpa_matches_torch_without_mask(case):
    Q, K, V = case.arrays()
    out, weights = scaled_dot_product_attention(Q, K, V)
    expected_out, expected_w = torch_sdpa(Q, K, V)
    assert out.shape == (*case.batch, case.n_q, case.d_v) and weights.shape == (*case.batch, case.n_q, case.n_k)
    assert out.dtype == case.dtype and weights.dtype == case.dtype
    assert_close(out, expected_out, case.dtype, "output")
    assert_close(weights, expected_w, case.dtype, "weights")


@given(attention_cases(), st.data())
def test_sdpa_matches_torch_with_a_broadcast_mask(case, data):
    shape = data.draw(broadcast_mask_shapes(case.batch, case.n_q, case.n_k), label="mask shape")
    mask = random_mask(np.random.default_rng(case.seed + 1), shape)
    Q, K, V = case.arrays()
    out, weights = scaled_dot_product_attention(Q, K, V, mask=mask)
    expected_out, expected_w = torch_sdpa(Q, K, V, attn_mask=mask)
    assert_close(out, expected_out, case.dtype, "output")
    assert_close(weights, expected_w, case.dtype, "weights")
    assert np.all(weights[~np.broadcast_to(mask, weights.shape)] == 0)


@given(attention_cases(square=True))
def test_sdpa_with_causal_mask_matches_torch_is_causal(case):
    Q, K, V = case.arrays()
    out, weights = scaled_dot_product_attention(Q, K, V, mask=causal_mask(case.n_q, case.n_k))
    expected_out, expected_w = torch_sdpa(Q, K, V, is_causal=True)
    assert_close(out, expected_out, case.dtype, "output")
    assert_close(weights, expected_w, case.dtype, "weights")


@given(attention_cases())
def test_sdpa_with_causal_mask_matches_torch_lower_right(case):
    Q, K, V = case.arrays()
    out, weights = scaled_dot_product_attention(Q, K, V, mask=causal_mask(case.n_q, case.n_k))
    if case.n_q <= case.n_k:
        expected_out, expected_w = torch_sdpa(Q, K, V, attn_mask=causal_lower_right(case.n_q, case.n_k))
        assert_close(out, expected_out, case.dtype, "output")
        assert_close(weights, expected_w, case.dtype, "weights")
    else:  # the first n_q - n_k queries see no key; the last n_k are an ordinary square causal problem
        blind = case.n_q - case.n_k
        np.testing.assert_array_equal(out[..., :blind, :], 0.0)
        np.testing.assert_array_equal(weights[..., :blind, :], 0.0)
        expected_out, expected_w = torch_sdpa(Q[..., blind:, :], K, V, is_causal=True)
        assert_close(out[..., blind:, :], expected_out, case.dtype, "output")
        assert_close(weights[..., blind:, :], expected_w, case.dtype, "weights")


# --- properties -----------------------------------------------------------------------------------


@given(attention_cases())
def test_rows_sum_to_one_and_fully_blocked_rows_are_zero(case):
    Q, K, V = case.arrays()
    mask = case.mask(p_allowed=0.3, keep_one=False)
    mask[(0,) * len(case.batch) + (0,)] = False  # at least one fully blocked row
    out, weights = scaled_dot_product_attention(Q, K, V, mask=mask)
    assert np.all(np.isfinite(out)) and np.all(np.isfinite(weights))
    assert np.all(weights >= 0)
    open_rows = mask.any(axis=-1)
    np.testing.assert_allclose(weights.sum(axis=-1)[open_rows], 1.0, rtol=1e-5)
    np.testing.assert_array_equal(weights[~open_rows], 0.0)
    np.testing.assert_array_equal(out[~open_rows], 0.0)
    assert np.all(weights[~mask] == 0)


@given(attention_cases(dtypes=st.just(np.float64)), st.sampled_from([0.3, 5.0, 100.0]))
def test_adding_the_same_vector_to_every_key_changes_nothing(case, size):
    """``Q (K + u)^T = Q K^T + (Q u) 1^T``: a constant added to each query's logits, which softmax ignores."""
    Q, K, V = case.arrays()
    u = size * np.random.default_rng(case.seed + 2).standard_normal(case.d_k)
    out, weights = scaled_dot_product_attention(Q, K, V)
    out_shifted, weights_shifted = scaled_dot_product_attention(Q, K + u, V)
    np.testing.assert_allclose(weights_shifted, weights, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out_shifted, out, rtol=1e-5, atol=1e-6)


@given(attention_cases(dtypes=st.just(np.float64), max_dims=1))
def test_sdpa_is_stable_for_logits_of_1e4(case):
    Q, K, V = case.arrays()
    scores = Q @ np.swapaxes(K, -1, -2) / np.sqrt(case.d_k)
    Q = Q * (1e4 / max(np.abs(scores).max(), 1e-12))  # the largest logit is now 1e4 in magnitude
    out, weights = scaled_dot_product_attention(Q, K, V)
    assert np.all(np.isfinite(out)) and np.all(np.isfinite(weights))
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, rtol=1e-12)
    expected_out, expected_w = torch_sdpa(Q, K, V)
    assert_close(out, expected_out, np.float64)
    assert_close(weights, expected_w, np.float64)


@given(attention_cases(dtypes=st.just(np.float64), max_dims=1, max_seq=4, max_dim=3), st.booleans())
def test_sdpa_gradients_match_torch_autograd(case, masked):
    """Central differences of the NumPy reference agree with torch.autograd through torch's SDPA."""
    Q, K, V = case.arrays()
    mask = case.mask() if masked else None
    G = np.random.default_rng(case.seed + 3).standard_normal((*case.batch, case.n_q, case.d_v))

    q, k, v = (to_torch(a).requires_grad_(True) for a in (Q, K, V))
    attn_mask = None if mask is None else to_torch(mask)
    (F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask) * to_torch(G)).sum().backward()

    def loss(Q_, K_, V_) -> float:
        return float((scaled_dot_product_attention(Q_, K_, V_, mask=mask)[0] * G).sum())

    eps = 1e-6
    for i, (x, grad) in enumerate(((Q, q.grad), (K, k.grad), (V, v.grad))):
        numeric = np.zeros_like(x)
        for idx in np.ndindex(*x.shape):
            plus, minus = [Q.copy(), K.copy(), V.copy()], [Q.copy(), K.copy(), V.copy()]
            plus[i][idx] += eps
            minus[i][idx] -= eps
            numeric[idx] = (loss(*plus) - loss(*minus)) / (2 * eps)
        np.testing.assert_allclose(numeric, grad.numpy(), rtol=1e-5, atol=1e-7, err_msg="dQ dK dV".split()[i])
