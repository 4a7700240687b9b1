"""Chapter 5: grouped-query attention, the KV cache and MHA -> GQA conversion.

``GroupedQueryAttention`` is checked against ``F.scaled_dot_product_attention(..., enable_gqa=True)``
fed with the module's own projections, and its cached one-token-at-a-time decoding against its full
causal forward.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from strategies import assert_close, head_configs, random_mask, seeds, to_torch, torch_float_dtypes
from torch.utils._python_dispatch import TorchDispatchMode

import solutions.ch5_gqa
from solutions import GroupedQueryAttention, MultiHeadAttention, kv_cache_bytes, mha_to_gqa, repeat_kv

pytestmark = pytest.mark.ch5


def _module(cfg: tuple[int, int, int], bias: bool, dtype: torch.dtype, seed: int) -> GroupedQueryAttention:
    torch.manual_seed(seed)
    gqa = GroupedQueryAttention(*cfg, bias=bias).to(dtype)
    if bias:
        with torch.no_grad():
            for lin in (gqa.q_proj, gqa.k_proj, gqa.v_proj, gqa.out_proj):
                lin.bias.normal_()
    return gqa


def torch_gqa(gqa: GroupedQueryAttention, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
    """The same layer through PyTorch's SDPA with ``enable_gqa=True`` (causal unless a mask is given)."""
    b, n, _ = x.shape
    hd = gqa.head_dim
    q = gqa.q_proj(x).view(b, n, gqa.n_heads, hd).transpose(1, 2)
    k = gqa.k_proj(x).view(b, n, gqa.n_kv_heads, hd).transpose(1, 2)
    v = gqa.v_proj(x).view(b, n, gqa.n_kv_heads, hd).transpose(1, 2)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=attn_mask is None, enable_gqa=True)
    return gqa.out_proj(out.transpose(1, 2).reshape(b, n, gqa.n_heads * hd))


# --- repeat_kv ------------------------------------------------------------------------------------


@given(b=st.integers(1, 2), n_kv=st.integers(1, 4), n_rep=st.integers(1, 4), seq=st.integers(1, 4), seed=seeds)
def test_repeat_kv_matches_repeat_interleave(b, n_kv, n_rep, seq, seed):
    x = torch.randn(b, n_kv, seq, 3, generator=torch.Generator().manual_seed(seed))
    y = repeat_kv(x, n_rep)
    assert y.shape == (b, n_kv * n_rep, seq, 3)
    torch.testing.assert_close(y, torch.repeat_interleave(x, n_rep, dim=1), rtol=0, atol=0)
    for h in range(n_kv * n_rep):  # query head h reads key/value head h // n_rep
        torch.testing.assert_close(y[:, h], x[:, h // n_rep], rtol=0, atol=0)


# --- against F.scaled_dot_product_attention(enable_gqa=True) --------------------------------------


@given(cfg=head_configs(), b=st.integers(1, 3), n=st.integers(1, 7), bias=st.booleans(), dtype=torch_float_dtypes,
       seed=seeds)
def test_causal_forward_matches_torch_enable_gqa(cfg, b, n, bias, dtype, seed):
    gqa = _module(cfg, bias, dtype, seed)
    x = torch.randn(b, n, gqa.d_model, dtype=dtype)
    with torch.no_grad():
        out, (k, v) = gqa(x)
        expected = torch_gqa(gqa, x)
    assert out.shape == (b, n, gqa.d_model)
    assert_close(out, expected, dtype)
    # The returned cache is the keys and values of every position, one entry per KV head.
    assert k.shape == v.shape == (b, gqa.n_kv_heads, n, gqa.head_dim)
    assert_close(k, gqa.k_proj(x).view(b, n, gqa.n_kv_heads, -1).transpose(1, 2), dtype, "cached keys")
    assert_close(v, gqa.v_proj(x).view(b, n, gqa.n_kv_heads, -1).transpose(1, 2), dtype, "cached values")


@given(cfg=head_configs(), b=st.integers(1, 3), n=st.integers(1, 6), dtype=torch_float_dtypes, seed=seeds,
       per_batch=st.booleans())
def test_masked_forward_matches_torch_enable_gqa(cfg, b, n, dtype, seed, per_batch):
    gqa = _module(cfg, False, dtype, seed)
    x = torch.randn(b, n, gqa.d_model, dtype=dtype)
    shape = (b, n, n) if per_batch else (n, n)
    mask = to_torch(random_mask(np.random.default_rng(seed), shape))
    with torch.no_grad():
        out, _ = gqa(x, mask=mask)
        expected = torch_gqa(gqa, x, attn_mask=mask[:, None] if per_batch else mask)
    assert_close(out, expected, dtype)


@given(cfg=head_configs(), n=st.integers(1, 7), prefill=st.integers(0, 6), bias=st.booleans(),
       dtype=torch_float_dtypes, seed=seeds)
def test_cached_decoding_matches_the_full_causal_forward(cfg, n, prefill, bias, dtype, seed):
    """Prefill some tokens at once, then decode one token at a time with the cache."""
    gqa = _module(cfg, bias, dtype, seed)
    x = torch.randn(2, n, gqa.d_model, dtype=dtype)
    prefill = min(prefill, n)
    with torch.no_grad():
        full, full_cache = gqa(x)
        cache, pieces = None, []
        if prefill:
            out, cache = gqa(x[:, :prefill])
            pieces.append(out)
        for t in range(prefill, n):
            out, cache = gqa(x[:, t : t + 1], kv_cache=cache)
            assert cache[0].shape == (2, gqa.n_kv_heads, t + 1, gqa.head_dim)
            pieces.append(out)
    assert_close(torch.cat(pieces, dim=1), full, dtype, "decoded outputs")
    assert_close(cache[0], full_cache[0], dtype, "cached keys")
    assert_close(cache[1], full_cache[1], dtype, "cached values")


@given(cfg=head_configs(), b=st.integers(1, 3), n=st.integers(1, 6), dtype=torch_float_dtypes, seed=seeds,
       query_broadcast=st.booleans())
def test_per_head_mask_matches_torch_enable_gqa(cfg, b, n, dtype, seed, query_broadcast):
    """A mask with one row set per query head, ``(batch, n_heads, n_q | 1, n_k)``, reaches the right head."""
    gqa = _module(cfg, False, dtype, seed)
    x = torch.randn(b, n, gqa.d_model, dtype=dtype)
    mask = to_torch(random_mask(np.random.default_rng(seed), (b, gqa.n_heads, 1 if query_broadcast else n, n)))
    with torch.no_grad():
        out, _ = gqa(x, mask=mask)
        expected = torch_gqa(gqa, x, attn_mask=mask)
    assert_close(out, expected, dtype)


class _Allocations(TorchDispatchMode):
    """Records the shape and size of every tensor an operation allocates (views of existing memory excluded)."""

    def __init__(self, inputs: tuple[torch.Tensor, ...]) -> None:
        super().__init__()
        self.known = {t.untyped_storage().data_ptr() for t in inputs}
        self.allocated: list[tuple[str, tuple[int, ...], int]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor) and t.untyped_storage().data_ptr() not in self.known:
                self.known.add(t.untyped_storage().data_ptr())
                self.allocated.append((str(func), tuple(t.shape), t.untyped_storage().nbytes()))
        return out


@pytest.mark.parametrize("n_kv_heads", [4, 2, 1])  # n_rep 2 (GQA), 4 (GQA), 8 (MQA)
def test_decoding_never_materialises_repeated_keys_or_values(n_kv_heads, monkeypatch):
    """A decode step reads the shared key/value heads in place: no tensor as large as ``repeat_kv(k)``.

    ``repeat_kv`` stays the exercise's function, but the reference's forward must not call it, and nothing
    else (e.g. ``torch.matmul`` broadcasting a 5-D key tensor, which copies it) may allocate its size.
    """
    batch, n_heads, head_dim, n_past = 2, 8, 16, 256
    gqa = GroupedQueryAttention(n_heads * head_dim, n_heads, n_kv_heads)
    cache = tuple(torch.randn(batch, n_kv_heads, n_past, head_dim) for _ in range(2))
    x = torch.randn(batch, 1, gqa.d_model)
    monkeypatch.setattr(solutions.ch5_gqa, "repeat_kv", lambda *a: pytest.fail("the forward called repeat_kv"))
    with torch.no_grad():
        expected = torch_gqa_decode(gqa, x, cache)
        with _Allocations((x, *cache, *gqa.parameters())) as watch:
            out, (k, v) = gqa(x, kv_cache=cache)
    assert_close(out, expected, torch.float32)
    assert k.shape == (batch, n_kv_heads, n_past + 1, head_dim)
    repeated_bytes = batch * n_heads * (n_past + 1) * head_dim * k.element_size()  # one repeat_kv(k)
    largest = max(watch.allocated, key=lambda a: a[2])
    assert largest[2] < repeated_bytes, f"{largest} is as large as repeat_kv's copy ({repeated_bytes} bytes)"
    # The only cache-sized allocations are the new cache itself (torch.cat appends to a copy).
    cache_bytes = k.numel() * k.element_size()
    assert sum(nbytes >= cache_bytes for _, _, nbytes in watch.allocated) == 2


def test_the_allocation_watch_sees_a_repeat_kv_copy():
    """The check above can fail: the same watch catches the copies of a forward that does call repeat_kv."""
    k = torch.randn(2, 2, 256, 16)
    with _Allocations((k,)) as watch:
        repeated = repeat_kv(k, 4)
    assert max(nbytes for _, _, nbytes in watch.allocated) == repeated.numel() * repeated.element_size()


def torch_gqa_decode(gqa: GroupedQueryAttention, x: torch.Tensor, cache: tuple[torch.Tensor, torch.Tensor]):
    """One decode step through PyTorch's SDPA with ``enable_gqa=True``: the new token sees every position."""
    b = x.shape[0]
    q = gqa.q_proj(x).view(b, 1, gqa.n_heads, gqa.head_dim).transpose(1, 2)
    k = torch.cat([cache[0], gqa.k_proj(x).view(b, 1, gqa.n_kv_heads, gqa.head_dim).transpose(1, 2)], dim=-2)
    v = torch.cat([cache[1], gqa.v_proj(x).view(b, 1, gqa.n_kv_heads, gqa.head_dim).transpose(1, 2)], dim=-2)
    out = F.scaled_dot_product_attention(q, k, v, enable_gqa=True)
    return gqa.out_proj(out.transpose(1, 2).reshape(b, 1, gqa.d_model))


def test_mqa_and_mha_are_the_ends_of_the_range():
    for n_kv_heads in (1, 4):  # MQA, MHA
        gqa = GroupedQueryAttention(8, 4, n_kv_heads)
        assert gqa.k_proj.weight.shape == gqa.v_proj.weight.shape == (n_kv_heads * 2, 8)
        assert gqa.q_proj.weight.shape == gqa.out_proj.weight.shape == (8, 8)
        assert gqa.q_proj.bias is None  # bias defaults to False
        x = torch.randn(1, 5, 8)
        with torch.no_grad():
            assert_close(gqa(x)[0], torch_gqa(gqa, x), torch.float32)


# --- KV cache size --------------------------------------------------------------------------------


def test_kv_cache_bytes_for_real_configs():
    # Llama-2-7B: 32 layers, 32 KV heads (MHA) of dim 128; fp16; 4096 tokens -> 2 * 32*32*128*4096 * 2 B = 2 GiB.
    assert kv_cache_bytes(1, 4096, 32, 32, 128) == 2 * 1024**3
    assert kv_cache_bytes(1, 1, 32, 32, 128) == 512 * 1024  # 0.5 MiB per token
    # Llama-2-70B: 80 layers, GQA with 8 KV heads of dim 128; fp16; 4096 tokens -> 1.25 GiB.
    assert kv_cache_bytes(1, 4096, 80, 8, 128) == 1_342_177_280
    # Batch and precision scale it linearly; fp32 doubles it.
    assert kv_cache_bytes(8, 4096, 80, 8, 128, bytes_per_elem=4) == 16 * 1_342_177_280
    assert isinstance(kv_cache_bytes(1, 4096, 80, 8, 128), int)


@given(cfg=head_configs(), b=st.integers(1, 3), n=st.integers(1, 5), dtype=st.sampled_from([torch.float32,
       torch.float64, torch.bfloat16]))
def test_kv_cache_bytes_equals_the_memory_of_a_real_cache(cfg, b, n, dtype):
    gqa = GroupedQueryAttention(*cfg).to(dtype)
    with torch.no_grad():
        _, (k, v) = gqa(torch.randn(b, n, gqa.d_model, dtype=dtype))
    measured = k.numel() * k.element_size() + v.numel() * v.element_size()
    itemsize = torch.empty((), dtype=dtype).element_size()
    assert kv_cache_bytes(b, n, 1, gqa.n_kv_heads, gqa.head_dim, bytes_per_elem=itemsize) == measured
    assert kv_cache_bytes(b, n, 3, gqa.n_kv_heads, gqa.head_dim, bytes_per_elem=itemsize) == 3 * measured


# --- MHA -> GQA -----------------------------------------------------------------------------------


def _mha(d_model: int, n_heads: int, bias: bool, seed: int) -> MultiHeadAttention:
    torch.manual_seed(seed)
    mha = MultiHeadAttention(d_model, n_heads, bias=bias).double()
    if bias:
        with torch.no_grad():
            for lin in (mha.q_proj, mha.k_proj, mha.v_proj, mha.out_proj):
                lin.bias.normal_()
    return mha


def _causal(n: int) -> torch.Tensor:
    return torch.ones(n, n, dtype=torch.bool).tril()


@given(cfg=head_configs(), bias=st.booleans(), seed=seeds)
def test_mha_to_gqa_with_all_heads_reproduces_the_mha(cfg, bias, seed):
    d_model, n_heads, _ = cfg
    mha = _mha(d_model, n_heads, bias, seed)
    gqa = mha_to_gqa(mha, n_heads)
    assert isinstance(gqa, GroupedQueryAttention) and gqa.n_kv_heads == n_heads
    x = torch.randn(2, 5, d_model, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(gqa(x)[0], mha(x, x, x, mask=_causal(5))[0], rtol=1e-12, atol=1e-12)


@given(cfg=head_configs(), bias=st.booleans(), seed=seeds)
def test_mha_to_gqa_pools_each_group_by_the_mean(cfg, bias, seed):
    d_model, n_heads, n_kv_heads = cfg
    mha = _mha(d_model, n_heads, bias, seed)
    gqa = mha_to_gqa(mha, n_kv_heads)
    hd, n_rep = d_model // n_heads, n_heads // n_kv_heads
    assert gqa.n_kv_heads == n_kv_heads and gqa.k_proj.weight.dtype == torch.float64
    for name in ("k_proj", "v_proj"):
        src, dst = getattr(mha, name), getattr(gqa, name)
        for g in range(n_kv_heads):  # KV head g serves query heads g*n_rep ... (g+1)*n_rep - 1
            rows = [src.weight[h * hd : (h + 1) * hd] for h in range(g * n_rep, (g + 1) * n_rep)]
            torch.testing.assert_close(dst.weight[g * hd : (g + 1) * hd], sum(rows) / n_rep)
            if bias:
                cols = [src.bias[h * hd : (h + 1) * hd] for h in range(g * n_rep, (g + 1) * n_rep)]
                torch.testing.assert_close(dst.bias[g * hd : (g + 1) * hd], sum(cols) / n_rep)
    for name in ("q_proj", "out_proj"):  # copied unchanged
        torch.testing.assert_close(getattr(gqa, name).weight, getattr(mha, name).weight, rtol=0, atol=0)


@given(cfg=head_configs(), seed=seeds)
def test_mha_to_gqa_is_lossless_when_grouped_heads_already_agree(cfg, seed):
    """If the heads of each group share their key/value projection, pooling changes nothing."""
    d_model, n_heads, n_kv_heads = cfg
    mha = _mha(d_model, n_heads, True, seed)
    hd, n_rep = d_model // n_heads, n_heads // n_kv_heads
    with torch.no_grad():
        for lin in (mha.k_proj, mha.v_proj):
            for h in range(n_heads):
                leader = (h // n_rep) * n_rep
                lin.weight[h * hd : (h + 1) * hd] = lin.weight[leader * hd : (leader + 1) * hd].clone()
                lin.bias[h * hd : (h + 1) * hd] = lin.bias[leader * hd : (leader + 1) * hd].clone()
    gqa = mha_to_gqa(mha, n_kv_heads)
    x = torch.randn(1, 4, d_model, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(gqa(x)[0], mha(x, x, x, mask=_causal(4))[0], rtol=1e-12, atol=1e-12)
