"""Chapter 6: tiled attention (online softmax) against ``F.scaled_dot_product_attention``.

Besides the values, one test watches every tensor the computation creates (a ``TorchDispatchMode``)
to check the promise of COURSE.md: no score matrix bigger than ``(block_size, block_size)`` per batch
element and head is ever held.
"""

from __future__ import annotations

import inspect

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from strategies import assert_close, batch_shapes, seeds, torch_float_dtypes
from torch.nn.attention.bias import causal_lower_right
from torch.utils._python_dispatch import TorchDispatchMode

from solutions import tiled_attention

pytestmark = pytest.mark.ch6

block_sizes = st.sampled_from([1, 2, 3, 5, 7, 16, 128])


def _qkv(seed, batch, n_q, n_k, d_k, d_v, dtype, scale=1.0, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    Q = scale * torch.randn(*batch, n_q, d_k, generator=g, dtype=dtype)
    K = torch.randn(*batch, n_k, d_k, generator=g, dtype=dtype)
    V = torch.randn(*batch, n_k, d_v, generator=g, dtype=dtype)
    return Q.to(device), K.to(device), V.to(device)


def sdpa_reference(Q, K, V, causal: bool) -> torch.Tensor:
    """PyTorch's SDPA with the course's lower-right causal convention; queries that see no key -> 0."""
    n_q, n_k = Q.shape[-2], K.shape[-2]
    if not causal:
        return F.scaled_dot_product_attention(Q, K, V)
    if n_q <= n_k:
        return F.scaled_dot_product_attention(Q, K, V, attn_mask=causal_lower_right(n_q, n_k))
    blind = n_q - n_k  # the first queries precede every key
    tail = F.scaled_dot_product_attention(Q[..., blind:, :], K, V, is_causal=True)
    return torch.cat([tail.new_zeros(*tail.shape[:-2], blind, tail.shape[-1]), tail], dim=-2)


def test_signature_defaults():
    params = inspect.signature(tiled_attention).parameters
    assert list(params)[:3] == ["Q", "K", "V"]
    assert params["block_size"].default == 128 and params["causal"].default is False


@given(batch=batch_shapes(max_dims=2), n_q=st.integers(1, 20), n_k=st.integers(1, 20), d_k=st.integers(1, 6),
       d_v=st.integers(1, 6), block_size=block_sizes, causal=st.booleans(), dtype=torch_float_dtypes, seed=seeds)
def test_matches_torch_sdpa(batch, n_q, n_k, d_k, d_v, block_size, causal, dtype, seed):
    Q, K, V = _qkv(seed, batch, n_q, n_k, d_k, d_v, dtype)
    out = tiled_attention(Q, K, V, block_size=block_size, causal=causal)
    assert isinstance(out, torch.Tensor) and out.shape == (*batch, n_q, d_v) and out.dtype == dtype
    assert torch.isfinite(out).all()
    assert_close(out, sdpa_reference(Q, K, V, causal), dtype)


@pytest.mark.parametrize("block_size", [1, 3, 4, 5, 8, 12, 13, 64])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize(("n_q", "n_k"), [(12, 12), (5, 12), (12, 5)])
def test_block_sizes_that_do_and_do_not_divide_the_lengths(block_size, causal, n_q, n_k):
    """(batch, heads, seq, head_dim) tensors, as in the multi-head chapters."""
    Q, K, V = _qkv(block_size + 100 * n_q + n_k, (2, 3), n_q, n_k, 4, 4, torch.float64)
    assert_close(tiled_attention(Q, K, V, block_size=block_size, causal=causal), sdpa_reference(Q, K, V, causal),
                 torch.float64)


def test_default_block_size_on_a_longer_sequence():
    Q, K, V = _qkv(0, (1, 2), 300, 300, 8, 8, torch.float32)  # 300 = 2 * 128 + 44
    for causal in (False, True):
        assert_close(tiled_attention(Q, K, V, causal=causal), sdpa_reference(Q, K, V, causal), torch.float32)


@given(dtype=torch_float_dtypes, causal=st.booleans(), block_size=block_sizes, seed=seeds)
def test_stable_for_logits_of_1e4(dtype, causal, block_size, seed):
    Q, K, V = _qkv(seed, (2,), 9, 11, 4, 3, torch.float64)
    scores = (Q @ K.transpose(-2, -1)) / 2.0
    Q = Q * (1e4 / scores.abs().max())  # the largest logit is now 1e4 in magnitude
    expected = sdpa_reference(Q, K, V, causal)  # in float64
    out = tiled_attention(Q.to(dtype), K.to(dtype), V.to(dtype), block_size=block_size, causal=causal)
    assert torch.isfinite(out).all()
    # Rounding Q to float32 moves logits of 1e4 by ~1e-3: compare float32 with a looser absolute bound.
    if dtype == torch.float64:
        assert_close(out, expected, dtype)
    else:
        torch.testing.assert_close(out.double(), expected, rtol=1e-3, atol=1e-2)


@given(causal=st.booleans(), block_size=st.sampled_from([1, 2, 3, 5]), seed=seeds)
def test_gradients_match_torch_sdpa(causal, block_size, seed):
    Q, K, V = _qkv(seed, (2,), 6, 7, 3, 2, torch.float64)
    G = torch.randn(2, 6, 2, dtype=torch.float64)
    grads = []
    for fn in (lambda q, k, v: tiled_attention(q, k, v, block_size=block_size, causal=causal),
               lambda q, k, v: sdpa_reference(q, k, v, causal)):
        q, k, v = (t.clone().requires_grad_(True) for t in (Q, K, V))
        (fn(q, k, v) * G).sum().backward()
        grads.append((q.grad, k.grad, v.grad))
    for name, mine, theirs in zip(("dQ", "dK", "dV"), *grads, strict=True):
        assert_close(mine, theirs, torch.float64, name)


class _ShapeRecorder(TorchDispatchMode):
    """Records the shape of every tensor produced by every aten op run inside the ``with`` block."""

    def __init__(self) -> None:
        super().__init__()
        self.shapes: list[tuple[str, tuple[int, ...]]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        for r in result if isinstance(result, (tuple, list)) else (result,):
            if isinstance(r, torch.Tensor):
                self.shapes.append((str(func), tuple(r.shape)))
        return result


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize(("n_q", "n_k"), [(24, 24), (20, 27)])
def test_never_holds_a_score_matrix_bigger_than_a_tile(causal, n_q, n_k):
    """With head_dim 2 and block 4, anything with more than max(4*4, n*2) entries in its last two dims is a
    (partial) score matrix wider than a tile: (n_q, n_k), (block, n_k) or (n_q, block)."""
    block, d = 4, 2
    Q, K, V = _qkv(0, (2, 3), n_q, n_k, d, d, torch.float32)
    with _ShapeRecorder() as recorder:
        out = tiled_attention(Q, K, V, block_size=block, causal=causal)
    assert_close(out, sdpa_reference(Q, K, V, causal), torch.float32)
    limit = max(block * block, max(n_q, n_k) * d)
    too_big = [(op, s) for op, s in recorder.shapes if len(s) >= 2 and s[-2] * s[-1] > limit]
    assert not too_big, f"tensors larger than a ({block}, {block}) tile per head: {too_big[:5]}"
    assert any(s[-2:] == (block, block) for _, s in recorder.shapes), "no (block, block) score tile was formed"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: no GPU on this machine")
@pytest.mark.parametrize("causal", [False, True])
def test_matches_torch_sdpa_on_gpu(causal):
    Q, K, V = _qkv(0, (2, 4), 200, 300, 64, 64, torch.float32, device="cuda")
    out = tiled_attention(Q, K, V, block_size=64, causal=causal)
    assert out.device.type == "cuda"
    assert_close(out.cpu(), sdpa_reference(Q.cpu(), K.cpu(), V.cpu(), causal), torch.float32)
