"""Chapter 3: self-attention and cross-attention, against PyTorch's SDPA on torch-computed projections;
positions: sinusoidal encodings against their formula, RoPE against complex multiplication and by properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from strategies import assert_close, batch_shapes, float_dtypes, random_mask, seeds, to_torch

from solutions import apply_rope, cross_attention, padding_mask, self_attention, sinusoidal_positions

pytestmark = pytest.mark.ch3

dims = st.integers(1, 6)


def _weights(rng: np.random.Generator, d_in: int, d_k: int, d_v: int, dtype) -> tuple[np.ndarray, ...]:
    """``W_q (d_q_in, d_k)``-style projection matrices, scaled like a standard initialisation."""
    return tuple((rng.standard_normal((d_in, d)) / np.sqrt(d_in)).astype(dtype) for d in (d_k, d_k, d_v))


def torch_attention(x_q, x_kv, W_q, W_k, W_v, attn_mask=None, is_causal=False) -> tuple[torch.Tensor, torch.Tensor]:
    """Project in torch, then ``F.scaled_dot_product_attention``; the weights come from attending over I."""
    x_q, x_kv, W_q, W_k, W_v = (to_torch(a) for a in (x_q, x_kv, W_q, W_k, W_v))
    q, k, v = x_q @ W_q, x_kv @ W_k, x_kv @ W_v
    if isinstance(attn_mask, np.ndarray):
        attn_mask = to_torch(attn_mask)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal)
    eye = torch.eye(k.shape[-2], dtype=k.dtype).expand(*k.shape[:-2], -1, -1)
    return out, F.scaled_dot_product_attention(q, k, eye, attn_mask=attn_mask, is_causal=is_causal)


@given(batch=batch_shapes(), n=st.integers(1, 8), d_model=dims, d_k=dims, d_v=dims, seed=seeds, dtype=float_dtypes,
       causal=st.booleans())
def test_self_attention_matches_torch(batch, n, d_model, d_k, d_v, seed, dtype, causal):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((*batch, n, d_model)).astype(dtype)
    W_q, W_k, W_v = _weights(rng, d_model, d_k, d_v, dtype)
    out, weights = self_attention(X, W_q, W_k, W_v, causal=causal)
    assert out.shape == (*batch, n, d_v) and weights.shape == (*batch, n, n)
    expected_out, expected_w = torch_attention(X, X, W_q, W_k, W_v, is_causal=causal)
    assert_close(out, expected_out, dtype, "output")
    assert_close(weights, expected_w, dtype, "weights")


def test_self_attention_is_not_causal_by_default():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((4, 3))
    W = _weights(rng, 3, 2, 2, np.float64)
    _, weights = self_attention(X, *W)
    assert np.all(weights > 0)  # every token sees every token, including later ones
    _, causal_weights = self_attention(X, *W, causal=True)
    np.testing.assert_array_equal(np.triu(causal_weights, k=1), 0.0)


@given(b=st.integers(1, 3), n_q=st.integers(1, 7), n_k=st.integers(1, 7), d_model=dims, d_model_kv=dims, d_k=dims,
       d_v=dims, seed=seeds, dtype=float_dtypes, masked=st.booleans())
def test_cross_attention_matches_torch(b, n_q, n_k, d_model, d_model_kv, d_k, d_v, seed, dtype, masked):
    rng = np.random.default_rng(seed)
    X_q = rng.standard_normal((b, n_q, d_model)).astype(dtype)
    X_kv = rng.standard_normal((b, n_k, d_model_kv)).astype(dtype)
    W_q = _weights(rng, d_model, d_k, d_v, dtype)[0]
    _, W_k, W_v = _weights(rng, d_model_kv, d_k, d_v, dtype)
    kv_mask = padding_mask(rng.integers(1, n_k + 1, size=b), n_k) if masked else None
    out, weights = cross_attention(X_q, X_kv, W_q, W_k, W_v, kv_mask=kv_mask)
    assert out.shape == (b, n_q, d_v) and weights.shape == (b, n_q, n_k)
    expected_out, expected_w = torch_attention(X_q, X_kv, W_q, W_k, W_v, attn_mask=kv_mask)
    assert_close(out, expected_out, dtype, "output")
    assert_close(weights, expected_w, dtype, "weights")


@given(batch=batch_shapes(max_dims=2), n_q=st.integers(1, 6), n_k=st.integers(1, 6), seed=seeds, dtype=float_dtypes)
def test_cross_attention_with_a_general_mask_matches_torch(batch, n_q, n_k, seed, dtype):
    rng = np.random.default_rng(seed)
    X_q = rng.standard_normal((*batch, n_q, 4)).astype(dtype)
    X_kv = rng.standard_normal((*batch, n_k, 5)).astype(dtype)
    W_q, W_k, W_v = _weights(rng, 4, 3, 2, dtype)[0], *_weights(rng, 5, 3, 2, dtype)[1:]
    kv_mask = random_mask(rng, (*batch, n_q, n_k))
    out, weights = cross_attention(X_q, X_kv, W_q, W_k, W_v, kv_mask=kv_mask)
    expected_out, expected_w = torch_attention(X_q, X_kv, W_q, W_k, W_v, attn_mask=kv_mask)
    assert_close(out, expected_out, dtype, "output")
    assert_close(weights, expected_w, dtype, "weights")


def test_cross_attention_to_an_all_padding_sequence_gives_zeros():
    rng = np.random.default_rng(1)
    X_q, X_kv = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 5, 4))
    W = _weights(rng, 4, 3, 2, np.float64)
    out, weights = cross_attention(X_q, X_kv, *W, kv_mask=padding_mask(np.array([0, 5]), 5))
    assert np.all(np.isfinite(out)) and np.all(np.isfinite(weights))
    np.testing.assert_array_equal(out[0], 0.0)
    np.testing.assert_array_equal(weights[0], 0.0)
    np.testing.assert_allclose(weights[1].sum(axis=-1), 1.0)


@given(batch=batch_shapes(max_dims=2), n=st.integers(2, 8), seed=seeds, dtype=float_dtypes)
def test_self_attention_is_permutation_equivariant(batch, n, seed, dtype):
    """Shuffling the tokens shuffles the outputs the same way, and the weights on both axes."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((*batch, n, 5)).astype(dtype)
    W = _weights(rng, 5, 4, 3, dtype)
    perm = rng.permutation(n)
    out, weights = self_attention(X, *W)
    out_p, weights_p = self_attention(X[..., perm, :], *W)
    assert_close(out_p, out[..., perm, :], dtype)
    assert_close(weights_p, weights[..., perm, :][..., perm], dtype)


@given(n_q=st.integers(1, 6), n_k=st.integers(2, 8), seed=seeds, dtype=float_dtypes)
def test_cross_attention_ignores_the_order_of_keys(n_q, n_k, seed, dtype):
    """Reordering the encoder tokens reorders the weights' columns and leaves the output unchanged."""
    rng = np.random.default_rng(seed)
    X_q, X_kv = rng.standard_normal((n_q, 4)).astype(dtype), rng.standard_normal((n_k, 3)).astype(dtype)
    W_q, W_k, W_v = _weights(rng, 4, 2, 3, dtype)[0], *_weights(rng, 3, 2, 3, dtype)[1:]
    perm = rng.permutation(n_k)
    out, weights = cross_attention(X_q, X_kv, W_q, W_k, W_v)
    out_p, weights_p = cross_attention(X_q, X_kv[perm], W_q, W_k, W_v)
    assert_close(out_p, out, dtype)
    assert_close(weights_p, weights[:, perm], dtype)


@given(n=st.integers(2, 8), seed=seeds)
def test_causal_self_attention_never_looks_ahead(n, seed):
    """Changing the last token changes no earlier token's output."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 4))
    W = _weights(rng, 4, 3, 3, np.float64)
    Y = X.copy()
    Y[-1] = rng.standard_normal(4)
    out_x, _ = self_attention(X, *W, causal=True)
    out_y, _ = self_attention(Y, *W, causal=True)
    np.testing.assert_allclose(out_x[:-1], out_y[:-1], rtol=1e-12, atol=1e-12)
    assert not np.allclose(out_x[-1], out_y[-1])


# ---- positions: sinusoidal encodings and RoPE --------------------------------------------------------

even_dims = st.integers(1, 8).map(lambda half: 2 * half)


def rope_by_complex_numbers(x: np.ndarray, positions: np.ndarray, base: float = 10000.0) -> np.ndarray:
    """An independent RoPE: pair ``i`` as the complex number ``x[2i] + 1j x[2i+1]``, times ``exp(1j * angle)``."""
    d = x.shape[-1]
    z = x[..., 0::2].astype(np.complex128) + 1j * x[..., 1::2]
    angles = np.outer(positions, [base ** (-2 * i / d) for i in range(d // 2)])  # (n, d/2)
    rotated = z * np.exp(1j * angles)
    return np.stack([rotated.real, rotated.imag], axis=-1).reshape(x.shape)


@given(n=st.integers(0, 12), d=even_dims)
def test_sinusoidal_positions_follow_the_formula_entry_by_entry(n, d):
    P = sinusoidal_positions(n, d)
    assert P.shape == (n, d)
    for p in range(n):
        for i in range(d // 2):
            angle = p / 10000 ** (2 * i / d)
            assert P[p, 2 * i] == pytest.approx(math.sin(angle), abs=1e-12)
            assert P[p, 2 * i + 1] == pytest.approx(math.cos(angle), abs=1e-12)


@given(n=st.integers(1, 40), d=even_dims)
def test_sinusoidal_positions_are_sin_cos_pairs(n, d):
    """Every pair is a point of the unit circle; position 0 is (0, 1) in every pair; the first pair turns 1 rad/step."""
    P = sinusoidal_positions(n, d)
    np.testing.assert_allclose(P[:, 0::2] ** 2 + P[:, 1::2] ** 2, 1.0, rtol=1e-12)
    np.testing.assert_array_equal(P[0, 0::2], 0.0)
    np.testing.assert_array_equal(P[0, 1::2], 1.0)
    np.testing.assert_allclose(P[:, 0], np.sin(np.arange(n)), atol=1e-12)
    if d >= 4:  # later pairs turn more slowly: the second pair's angle is below the first's
        assert np.all(np.abs(np.arctan2(P[1, 2], P[1, 3])) < 1.0)


@given(n=st.integers(1, 30), d=even_dims, shift=st.integers(0, 50))
def test_sinusoidal_shift_is_a_rotation_of_each_pair(n, d, shift):
    """``P[p + k]`` is ``P[p]`` with pair ``i`` rotated by ``k * w_i``: a fixed linear map for a fixed offset."""
    P = sinusoidal_positions(n + shift, d)
    w = 10000.0 ** (-np.arange(0, d, 2) / d)
    sin_p, cos_p = P[:n, 0::2], P[:n, 1::2]
    c, s = np.cos(shift * w), np.sin(shift * w)
    np.testing.assert_allclose(P[shift:, 0::2], sin_p * c + cos_p * s, atol=1e-9)
    np.testing.assert_allclose(P[shift:, 1::2], cos_p * c - sin_p * s, atol=1e-9)


@given(batch=batch_shapes(max_dims=2), n=st.integers(1, 7), d=even_dims, seed=seeds, dtype=float_dtypes,
       base=st.sampled_from((10000.0, 100.0, 10.0)))
def test_apply_rope_matches_complex_multiplication(batch, n, d, seed, dtype, base):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((*batch, n, d)).astype(dtype)
    positions = rng.integers(0, 2000, size=n)
    out = apply_rope(x, positions, base=base)
    assert out.shape == x.shape and out.dtype == dtype
    assert_close(out, rope_by_complex_numbers(x, positions, base), dtype)


@given(batch=batch_shapes(max_dims=2), n=st.integers(1, 7), d=even_dims, seed=seeds, dtype=float_dtypes)
def test_apply_rope_preserves_norms_and_position_zero_is_the_identity(batch, n, d, seed, dtype):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((*batch, n, d)).astype(dtype)
    out = apply_rope(x, rng.integers(0, 10**4, size=n))
    assert_close(np.linalg.norm(out, axis=-1), np.linalg.norm(x, axis=-1), dtype, "norms")
    assert_close(out[..., 0::2] ** 2 + out[..., 1::2] ** 2, x[..., 0::2] ** 2 + x[..., 1::2] ** 2, dtype, "pairs")
    assert_close(apply_rope(x, np.zeros(n, dtype=int)), x, dtype, "position 0")


@given(n=st.integers(1, 6), d=even_dims, seed=seeds)
def test_apply_rope_rotations_compose(n, d, seed):
    """Rotating by ``p`` and then by ``r`` is rotating by ``p + r``; rotating by ``-p`` undoes it."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    p, r = rng.integers(-500, 500, size=n), rng.integers(-500, 500, size=n)
    np.testing.assert_allclose(apply_rope(apply_rope(x, p), r), apply_rope(x, p + r), rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(apply_rope(apply_rope(x, p), -p), x, rtol=1e-9, atol=1e-10)


@given(d=even_dims, m=st.integers(0, 300), k=st.integers(0, 300), shift=st.integers(-200, 2000), seed=seeds)
def test_rope_scores_depend_only_on_the_offset(d, m, k, shift, seed):
    """``<R_m q, R_k key> == <R_{m+s} q, R_{k+s} key>``: the score sees ``m - k`` only."""
    rng = np.random.default_rng(seed)
    q, key = rng.standard_normal((1, d)), rng.standard_normal((1, d))
    score = (apply_rope(q, np.array([m])) @ apply_rope(key, np.array([k])).T).item()
    shifted = (apply_rope(q, np.array([m + shift])) @ apply_rope(key, np.array([k + shift])).T).item()
    assert shifted == pytest.approx(score, rel=1e-9, abs=1e-9)


@given(n_past=st.integers(0, 9), n_new=st.integers(1, 4), d=even_dims, seed=seeds)
def test_rope_with_a_kv_cache_gives_the_full_scores(n_past, n_new, d, seed):
    """Keys cached already rotated at their own positions, new tokens rotated at ``n_past + j``: same scores."""
    rng = np.random.default_rng(seed)
    n = n_past + n_new
    q, k = rng.standard_normal((2, n, d)), rng.standard_normal((2, n, d))
    full = apply_rope(q, np.arange(n)) @ np.swapaxes(apply_rope(k, np.arange(n)), -1, -2)
    cache = apply_rope(k[:, :n_past], np.arange(n_past))  # rotated once, when each token was new
    new_positions = np.arange(n_past, n)
    keys = np.concatenate([cache, apply_rope(k[:, n_past:], new_positions)], axis=-2)
    step = apply_rope(q[:, n_past:], new_positions) @ np.swapaxes(keys, -1, -2)
    np.testing.assert_allclose(step, full[:, n_past:], rtol=1e-10, atol=1e-10)


def test_apply_rope_turns_the_first_pair_by_one_radian_per_position():
    """A hand example: the unit vector (1, 0) of pair 0 at position p is (cos p, sin p) -- counter-clockwise."""
    x = np.tile([1.0, 0.0, 1.0, 0.0], (3, 1))
    out = apply_rope(x, np.array([0, 1, 2]), base=100.0)
    np.testing.assert_allclose(out[:, :2], np.stack([np.cos([0, 1, 2]), np.sin([0, 1, 2])], axis=-1))
    np.testing.assert_allclose(out[:, 2:], np.stack([np.cos([0, 0.1, 0.2]), np.sin([0, 0.1, 0.2])], axis=-1))
