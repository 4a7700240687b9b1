"""Chapter 4: multi-head attention against ``torch.nn.MultiheadAttention`` with the same weights copied in.

Mask polarity differs: the course (and ``F.scaled_dot_product_attention``) use True = may attend,
``nn.MultiheadAttention`` uses True = NOT allowed for boolean ``attn_mask`` and ``key_padding_mask``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from strategies import assert_close, random_mask, seeds, to_torch, torch_float_dtypes
from torch import nn

from solutions import MultiHeadAttention, merge_heads, split_heads

pytestmark = pytest.mark.ch4

head_shapes = st.tuples(st.integers(1, 4), st.integers(1, 4))  # (n_heads, head_dim)


def torch_copy(mha: MultiHeadAttention) -> nn.MultiheadAttention:
    """An ``nn.MultiheadAttention`` holding exactly ``mha``'s weights."""
    has_bias = mha.q_proj.bias is not None
    ref = nn.MultiheadAttention(mha.d_model, mha.n_heads, bias=has_bias, batch_first=True)
    ref = ref.to(mha.q_proj.weight.dtype)
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([mha.q_proj.weight, mha.k_proj.weight, mha.v_proj.weight]))
        ref.out_proj.weight.copy_(mha.out_proj.weight)
        if has_bias:
            ref.in_proj_bias.copy_(torch.cat([mha.q_proj.bias, mha.k_proj.bias, mha.v_proj.bias]))
            ref.out_proj.bias.copy_(mha.out_proj.bias)
    return ref.eval()


def _module(n_heads: int, head_dim: int, bias: bool, dtype: torch.dtype, seed: int) -> MultiHeadAttention:
    torch.manual_seed(seed)
    mha = MultiHeadAttention(n_heads * head_dim, n_heads, bias=bias).to(dtype)
    if bias:  # nn.Linear biases start small; make them matter
        with torch.no_grad():
            for lin in (mha.q_proj, mha.k_proj, mha.v_proj, mha.out_proj):
                lin.bias.normal_()
    return mha


def _tensors(seed: int, dtype: torch.dtype, *shapes: tuple[int, ...]) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g, dtype=dtype) for s in shapes]


# --- split and merge ------------------------------------------------------------------------------


@given(b=st.integers(1, 3), seq=st.integers(1, 5), heads=head_shapes, seed=seeds)
def test_split_heads_layout_and_merge_inverse(b, seq, heads, seed):
    n_heads, head_dim = heads
    (x,) = _tensors(seed, torch.float64, (b, seq, n_heads * head_dim))
    split = split_heads(x, n_heads)
    assert split.shape == (b, n_heads, seq, head_dim)
    for h in range(n_heads):  # head h holds features h*head_dim:(h+1)*head_dim of every token
        torch.testing.assert_close(split[:, h], x[..., h * head_dim : (h + 1) * head_dim], rtol=0, atol=0)
    torch.testing.assert_close(split, x.view(b, seq, n_heads, head_dim).transpose(1, 2), rtol=0, atol=0)
    torch.testing.assert_close(merge_heads(split), x, rtol=0, atol=0)
    torch.testing.assert_close(split_heads(merge_heads(split), n_heads), split, rtol=0, atol=0)


# --- against nn.MultiheadAttention ----------------------------------------------------------------


@given(b=st.integers(1, 3), n=st.integers(1, 6), heads=head_shapes, bias=st.booleans(), dtype=torch_float_dtypes,
       seed=seeds)
def test_self_attention_matches_nn_multiheadattention(b, n, heads, bias, dtype, seed):
    mha = _module(*heads, bias, dtype, seed)
    (x,) = _tensors(seed, dtype, (b, n, mha.d_model))
    out, weights = mha(x, x, x)
    assert out.shape == (b, n, mha.d_model) and weights.shape == (b, mha.n_heads, n, n)
    expected_out, expected_w = torch_copy(mha)(x, x, x, need_weights=True, average_attn_weights=False)
    assert_close(out, expected_out, dtype, "output")
    assert_close(weights, expected_w, dtype, "weights")


@given(b=st.integers(1, 3), n_q=st.integers(1, 6), n_k=st.integers(1, 6), heads=head_shapes, bias=st.booleans(),
       dtype=torch_float_dtypes, seed=seeds)
def test_cross_attention_matches_nn_multiheadattention(b, n_q, n_k, heads, bias, dtype, seed):
    mha = _module(*heads, bias, dtype, seed)
    q, k, v = _tensors(seed, dtype, (b, n_q, mha.d_model), (b, n_k, mha.d_model), (b, n_k, mha.d_model))
    out, weights = mha(q, k, v)
    expected_out, expected_w = torch_copy(mha)(q, k, v, need_weights=True, average_attn_weights=False)
    assert weights.shape == (b, mha.n_heads, n_q, n_k)
    assert_close(out, expected_out, dtype, "output")
    assert_close(weights, expected_w, dtype, "weights")


@given(b=st.integers(1, 3), n_q=st.integers(1, 6), n_k=st.integers(1, 6), heads=head_shapes, dtype=torch_float_dtypes,
       seed=seeds, layout=st.sampled_from(["(n_q, n_k)", "(batch, n_q, n_k)", "(batch, heads, n_q, n_k)"]))
def test_masked_attention_matches_nn_multiheadattention_attn_mask(b, n_q, n_k, heads, dtype, seed, layout):
    mha = _module(*heads, True, dtype, seed)
    h = mha.n_heads
    q, kv = _tensors(seed, dtype, (b, n_q, mha.d_model), (b, n_k, mha.d_model))
    rng = np.random.default_rng(seed)
    if layout == "(n_q, n_k)":
        mask = to_torch(random_mask(rng, (n_q, n_k)))
        torch_mask = ~mask
    elif layout == "(batch, n_q, n_k)":
        mask = to_torch(random_mask(rng, (b, n_q, n_k)))
        torch_mask = ~mask.repeat_interleave(h, dim=0)  # torch wants (batch * heads, n_q, n_k)
    else:
        mask = to_torch(random_mask(rng, (b, h, n_q, n_k)))
        torch_mask = ~mask.reshape(b * h, n_q, n_k)
    out, weights = mha(q, kv, kv, mask=mask)
    expected_out, expected_w = torch_copy(mha)(
        q, kv, kv, attn_mask=torch_mask, need_weights=True, average_attn_weights=False
    )
    assert_close(out, expected_out, dtype, "output")
    assert_close(weights, expected_w, dtype, "weights")


@given(b=st.integers(1, 3), n_q=st.integers(1, 6), n_k=st.integers(1, 6), heads=head_shapes, dtype=torch_float_dtypes,
       seed=seeds)
def test_padding_mask_matches_nn_multiheadattention_key_padding_mask(b, n_q, n_k, heads, dtype, seed):
    mha = _module(*heads, True, dtype, seed)
    q, kv = _tensors(seed, dtype, (b, n_q, mha.d_model), (b, n_k, mha.d_model))
    lengths = torch.from_numpy(np.random.default_rng(seed).integers(1, n_k + 1, size=b))
    valid = torch.arange(n_k)[None, :] < lengths[:, None]  # (batch, n_k), True = real token
    out, weights = mha(q, kv, kv, mask=valid[:, None, :])  # the course's padding mask (batch, 1, n_k)
    expected_out, expected_w = torch_copy(mha)(
        q, kv, kv, key_padding_mask=~valid, need_weights=True, average_attn_weights=False
    )
    assert_close(out, expected_out, dtype, "output")
    assert_close(weights, expected_w, dtype, "weights")


@given(heads=head_shapes, bias=st.booleans(), seed=seeds, masked=st.booleans())
def test_gradients_match_nn_multiheadattention(heads, bias, seed, masked):
    dtype = torch.float64
    mha = _module(*heads, bias, dtype, seed)
    ref = torch_copy(mha)
    q, kv, G = _tensors(seed, dtype, (2, 3, mha.d_model), (2, 4, mha.d_model), (2, 3, mha.d_model))
    mask = to_torch(random_mask(np.random.default_rng(seed), (3, 4))) if masked else None
    q_mine, kv_mine, q_ref, kv_ref = (t.clone().requires_grad_(True) for t in (q, kv, q, kv))

    (mha(q_mine, kv_mine, kv_mine, mask=mask)[0] * G).sum().backward()
    attn_mask = None if mask is None else ~mask
    (ref(q_ref, kv_ref, kv_ref, attn_mask=attn_mask, need_weights=False)[0] * G).sum().backward()

    assert_close(q_mine.grad, q_ref.grad, dtype, "d query")
    assert_close(kv_mine.grad, kv_ref.grad, dtype, "d key/value")
    in_grad = torch.cat([mha.q_proj.weight.grad, mha.k_proj.weight.grad, mha.v_proj.weight.grad])
    assert_close(in_grad, ref.in_proj_weight.grad, dtype, "d in_proj_weight")
    assert_close(mha.out_proj.weight.grad, ref.out_proj.weight.grad, dtype, "d out_proj.weight")


# --- properties -----------------------------------------------------------------------------------


def test_layers_are_named_as_in_course_md():
    mha = MultiHeadAttention(8, 2)
    for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
        layer = getattr(mha, name)
        assert isinstance(layer, nn.Linear) and layer.weight.shape == (8, 8) and layer.bias is not None
    assert all(getattr(MultiHeadAttention(8, 2, bias=False), n).bias is None for n in ("q_proj", "out_proj"))


def test_parameter_count_does_not_depend_on_the_number_of_heads():
    d_model = 12
    for bias in (True, False):
        counts = {h: sum(p.numel() for p in MultiHeadAttention(d_model, h, bias=bias).parameters())
                  for h in (1, 2, 3, 4, 6, 12)}
        assert set(counts.values()) == {4 * d_model * (d_model + bias)}, counts


def test_fully_blocked_query_gives_zeros_and_finite_gradients():
    mha = _module(2, 3, True, torch.float64, 0)
    x = torch.randn(2, 4, mha.d_model, dtype=torch.float64, requires_grad=True)
    mask = torch.ones(2, 4, 4, dtype=torch.bool)
    mask[0, 1] = False  # query 1 of sequence 0 may attend nothing
    out, weights = mha(x, x, x, mask=mask)
    torch.testing.assert_close(weights[0, :, 1], torch.zeros(2, 4, dtype=torch.float64), rtol=0, atol=0)
    # Zero attention output, so the token's output is just the output projection's bias.
    torch.testing.assert_close(out[0, 1], mha.out_proj.bias)
    torch.testing.assert_close(weights.sum(-1)[1], torch.ones(2, 4, dtype=torch.float64))
    out.sum().backward()
    assert torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in mha.parameters())
