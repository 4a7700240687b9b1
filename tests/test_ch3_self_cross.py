"""Chapter 3: self-attention and cross-attention, against PyTorch's SDPA on torch-computed projections."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from strategies import assert_close, batch_shapes, float_dtypes, random_mask, seeds, to_torch

from solutions import cross_attention, padding_mask, self_attention

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
