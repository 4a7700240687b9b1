"""Chapter 6: tiled attention (online softmax) against ``F.scaled_dot_product_attention``, and the
hand-written backward pass ``sdpa_backward`` against ``torch.autograd``.

Besides the values, one test watches every tensor the computation creates (a ``TorchDispatchMode``)
to check the promise of COURSE.md: no score matrix bigger than ``(block_size, block_size)`` per batch
element and head is ever held.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from strategies import assert_close, batch_shapes, broadcast_mask_shapes, random_mask, seeds, torch_float_dtypes
from torch.nn.attention.bias import causal_lower_right
from torch.utils._python_dispatch import TorchDispatchMode

from solutions import sdpa_backward, tiled_attention

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


# ---- the backward pass --------------------------------------------------------------------------------


def attention_by_autograd(Q, K, V, dO, mask=None):
    """``(dQ, dK, dV)`` from ``torch.autograd`` through the forward pass (fully blocked rows: zeros)."""
    q, k, v = (t.detach().clone().requires_grad_(True) for t in (Q, K, V))
    scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    out = torch.softmax(scores, dim=-1).nan_to_num(0.0) @ v
    return torch.autograd.grad(out, (q, k, v), dO)


@st.composite
def backward_inputs(draw):
    """Q, K, V, dO with any batch dims, n_q != n_k allowed, and a mask (None, random with blocked rows,
    or broadcast like a padding or causal mask)."""
    batch = draw(batch_shapes(max_dims=2))
    n_q, n_k, d_k, d_v = (draw(st.integers(1, 7)) for _ in range(4))
    dtype, seed = draw(torch_float_dtypes), draw(seeds)
    g = torch.Generator().manual_seed(seed)
    Q, K, V, dO = (2 * torch.randn(*batch, n_q, d_k, generator=g, dtype=dtype),
                   torch.randn(*batch, n_k, d_k, generator=g, dtype=dtype),
                   torch.randn(*batch, n_k, d_v, generator=g, dtype=dtype),
                   torch.randn(*batch, n_q, d_v, generator=g, dtype=dtype))
    mask = None
    if draw(st.booleans()):
        shape = draw(broadcast_mask_shapes(batch, n_q, n_k))
        keep_one = draw(st.booleans())  # False: some rows may be fully blocked
        mask = torch.from_numpy(random_mask(np.random.default_rng(seed), shape, keep_one=keep_one))
    return Q, K, V, dO, mask


@given(inputs=backward_inputs())
def test_sdpa_backward_matches_autograd(inputs):
    Q, K, V, dO, mask = inputs
    originals = [t.clone() for t in (Q, K, V, dO)]
    grads = sdpa_backward(Q, K, V, dO, mask=mask)
    assert isinstance(grads, tuple) and len(grads) == 3
    for name, mine, theirs, x in zip(("dQ", "dK", "dV"), grads, attention_by_autograd(Q, K, V, dO, mask), (Q, K, V),
                                     strict=True):
        assert mine.shape == x.shape and mine.dtype == x.dtype, name
        assert torch.isfinite(mine).all(), name
        assert_close(mine, theirs, Q.dtype, name)
    for before, after in zip(originals, (Q, K, V, dO), strict=True):
        assert torch.equal(before, after), "sdpa_backward modified an input"


def test_sdpa_backward_matches_a_finite_difference_without_autograd():
    """An independent check: <dQ, U> is the derivative of <O, dO> along U (central difference, float64);
    the forward pass is chapter 6's tiled attention with a causal mask, so no autograd is involved."""
    Q, K, V = _qkv(3, (2,), 4, 6, 3, 5, torch.float64)
    g = torch.Generator().manual_seed(4)
    dO = torch.randn(2, 4, 5, generator=g, dtype=torch.float64)
    causal = torch.ones(4, 6, dtype=torch.bool).tril(diagonal=2)  # tiled_attention's causal=True

    def loss(*qkv):
        return (tiled_attention(*qkv, block_size=2, causal=True) * dO).sum().item()

    eps = 1e-6
    for which, grad in enumerate(sdpa_backward(Q, K, V, dO, causal)):
        U = torch.randn(grad.shape, generator=g, dtype=torch.float64)
        step = [eps * U if i == which else 0.0 for i in range(3)]
        numeric = (loss(*(t + d for t, d in zip((Q, K, V), step, strict=True)))
                   - loss(*(t - d for t, d in zip((Q, K, V), step, strict=True)))) / (2 * eps)
        assert abs(numeric - (grad * U).sum().item()) < 1e-6 * max(1.0, abs(numeric)), ("dQ", "dK", "dV")[which]


def test_fully_blocked_rows_get_zero_gradients():
    Q, K, V = _qkv(5, (2,), 3, 4, 2, 3, torch.float32)
    dO = torch.randn(2, 3, 3, generator=torch.Generator().manual_seed(6))
    mask = torch.tensor([[True, False, True, True], [False] * 4, [True, False, True, False]])
    dQ, dK, dV = sdpa_backward(Q, K, V, dO, mask)
    assert torch.isfinite(dQ).all() and torch.isfinite(dK).all() and torch.isfinite(dV).all()
    assert (dQ[:, 1] == 0).all(), "a blocked query gets no gradient"
    assert (dK[:, 1] == 0).all() and (dV[:, 1] == 0).all(), "a key no query may see gets no gradient"
    everything_blocked = sdpa_backward(Q, K, V, dO, torch.zeros(3, 4, dtype=torch.bool))
    assert all((g == 0).all() for g in everything_blocked)


@given(dtype=torch_float_dtypes, seed=seeds)
def test_sdpa_backward_is_stable_for_logits_of_1e4(dtype, seed):
    Q, K, V = _qkv(seed, (2,), 5, 7, 4, 3, torch.float64)
    Q = Q * (1e4 / (Q @ K.transpose(-2, -1) / 2.0).abs().max())  # the largest logit is 1e4 in magnitude
    dO = torch.randn(2, 5, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    expected = attention_by_autograd(Q, K, V, dO)  # in float64
    grads = sdpa_backward(*(t.to(dtype) for t in (Q, K, V, dO)))
    for name, mine, theirs in zip(("dQ", "dK", "dV"), grads, expected, strict=True):
        assert torch.isfinite(mine).all(), name
        if dtype == torch.float64:
            assert_close(mine, theirs, dtype, name)


@given(inputs=backward_inputs())
def test_the_rowsum_term_is_flashattention2s_D(inputs):
    """rowsum(dA * A) = rowsum(dO * O): the form FlashAttention-2 computes once per query (D_i)."""
    Q, K, V, dO, mask = inputs
    scores = Q @ K.transpose(-2, -1) / Q.shape[-1] ** 0.5
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    A = torch.softmax(scores, dim=-1).nan_to_num(0.0)
    dA = dO @ V.transpose(-2, -1)
    assert_close((dA * A).sum(-1), (dO * (A @ V)).sum(-1), Q.dtype)


def test_sdpa_backward_signature():
    assert list(inspect.signature(sdpa_backward).parameters) == ["Q", "K", "V", "dO", "mask"]
    assert inspect.signature(sdpa_backward).parameters["mask"].default is None


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: no GPU on this machine")
def test_sdpa_backward_on_gpu_matches_autograd_on_cpu():
    Q, K, V = _qkv(0, (2, 4), 200, 300, 64, 32, torch.float32, device="cuda")
    g = torch.Generator().manual_seed(1)
    dO = torch.randn(2, 4, 200, 32, generator=g).cuda()
    mask = torch.rand(200, 300, generator=g) < 0.7
    mask[5] = False  # a fully blocked query
    grads = sdpa_backward(Q, K, V, dO, mask.cuda())
    assert all(grad.device.type == "cuda" for grad in grads)
    expected = attention_by_autograd(Q.cpu(), K.cpu(), V.cpu(), dO.cpu(), mask)
    for name, mine, theirs in zip(("dQ", "dK", "dV"), grads, expected, strict=True):
        assert_close(mine.cpu(), theirs, torch.float32, name)
