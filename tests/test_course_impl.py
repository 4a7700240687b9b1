"""``course.impl``: the reference in the repository, stand-ins built on library calls elsewhere, and both agree.

Every name a reading imports from ``course.impl`` has a case below that runs the stand-in of
``course.standins`` and the reference of ``solutions`` on the same random inputs (several shapes, masks
with fully blocked rows, float32 and float64) and compares them within COURSE.md's tolerances; the
positions are also checked against COURSE.md's formula, entry by entry.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from strategies import assert_close

import solutions
from course import impl, standins

ROOT = Path(__file__).resolve().parents[1]
DTYPES = (np.float32, np.float64)
TORCH = {np.float32: torch.float32, np.float64: torch.float64}


def rand(rng: np.random.Generator, *shape: int, dtype=np.float64) -> np.ndarray:
    return rng.standard_normal(shape).astype(dtype)


def random_mask(rng: np.random.Generator, *shape: int, blocked_row: bool = True) -> np.ndarray:
    mask = rng.random(shape) < 0.6
    if blocked_row and shape[-2] > 1:
        mask[..., 0, :] = False  # a fully blocked query row: zero weights and output
    return mask


def both(name: str) -> tuple[Callable, Callable]:
    return getattr(standins, name), getattr(solutions, name)


def assert_pairs_close(ours, ref, dtype, what: str) -> None:
    ours, ref = (ours, ref) if isinstance(ref, tuple) else ((ours,), (ref,))
    assert len(ours) == len(ref), what
    for a, b in zip(ours, ref, strict=True):
        assert type(a) is type(b), f"{what}: {type(a).__name__} instead of {type(b).__name__}"
        assert tuple(a.shape) == tuple(b.shape), f"{what}: shape {tuple(a.shape)} instead of {tuple(b.shape)}"
        assert a.dtype == b.dtype, f"{what}: dtype {a.dtype} instead of {b.dtype}"
        assert_close(a, b, dtype, what)


# ----------------------------------------------------------------------------- chapters 1-3


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(3))
def test_soft_lookup(seed: int, dtype) -> None:
    rng = np.random.default_rng(seed)
    ours, ref = both("soft_lookup")
    q, k, v = rand(rng, 4, dtype=dtype), rand(rng, 7, 4, dtype=dtype), rand(rng, 7, 3, dtype=dtype)
    for T in (0.05, 1.0, 10.0):
        assert_pairs_close(ours(q, k, v, temperature=T), ref(q, k, v, temperature=T), dtype, f"T={T}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_any_axis_large_logits_and_blocked_slices(dtype) -> None:
    rng = np.random.default_rng(0)
    ours, ref = both("softmax")
    x = rand(rng, 3, 4, 5, dtype=dtype) * 1e4
    x[0, 1, :] = -np.inf
    for axis in (-1, 0, 1):
        assert_pairs_close(ours(x, axis=axis), ref(x, axis=axis), dtype, f"axis={axis}")
    ints = np.arange(6).reshape(2, 3)
    assert_pairs_close(ours(ints), ref(ints), np.float64, "integer input")


def test_masks() -> None:
    for n_q, n_k in ((6, 6), (2, 6), (4, 2), (0, 3)):
        np.testing.assert_array_equal(standins.causal_mask(n_q, n_k), solutions.causal_mask(n_q, n_k))
    for lengths, n_k in (([6, 3, 0], 6), ([1], 1)):
        np.testing.assert_array_equal(standins.padding_mask(lengths, n_k), solutions.padding_mask(lengths, n_k))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(3))
def test_scaled_dot_product_attention(seed: int, dtype) -> None:
    rng = np.random.default_rng(seed)
    ours, ref = both("scaled_dot_product_attention")
    Q, K, V = rand(rng, 2, 1, 5, 8, dtype=dtype), rand(rng, 3, 7, 8, dtype=dtype), rand(rng, 1, 7, 4, dtype=dtype)
    assert_pairs_close(ours(Q, K, V), ref(Q, K, V), dtype, "no mask")
    for mask in (random_mask(rng, 5, 7), random_mask(rng, 3, 1, 7, blocked_row=False), random_mask(rng, 2, 3, 5, 7)):
        assert_pairs_close(ours(Q, K, V, mask), ref(Q, K, V, mask), dtype, f"mask {mask.shape}")
    big = rand(rng, 4, 3, dtype=dtype) * 1e4
    assert_pairs_close(ours(big, big, big), ref(big, big, big), dtype, "logits of 1e4")


def test_numpy_stand_ins_allocate_with_numpy_so_tracemalloc_sees_the_n_squared_weights() -> None:
    """Chapter 2 measures attention's memory with ``tracemalloc``, which sees NumPy's allocations only."""
    import tracemalloc

    n = 256
    Q, K, V = (rand(np.random.default_rng(7), n, 64, dtype=np.float32) for _ in range(3))
    tracemalloc.start()
    standins.scaled_dot_product_attention(Q, K, V)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak >= 2 * 4 * n * n, f"peak {peak} B: the (n, n) scores and weights are not NumPy arrays"


@pytest.mark.parametrize("dtype", DTYPES)
def test_self_and_cross_attention(dtype) -> None:
    rng = np.random.default_rng(1)
    X, X_kv = rand(rng, 2, 5, 6, dtype=dtype), rand(rng, 2, 7, 3, dtype=dtype)
    W_q, W_k, W_v = rand(rng, 6, 4, dtype=dtype), rand(rng, 6, 4, dtype=dtype), rand(rng, 6, 2, dtype=dtype)
    for causal in (False, True):
        assert_pairs_close(standins.self_attention(X, W_q, W_k, W_v, causal=causal),
                           solutions.self_attention(X, W_q, W_k, W_v, causal=causal), dtype, f"causal={causal}")
    W_kx, W_vx = rand(rng, 3, 4, dtype=dtype), rand(rng, 3, 2, dtype=dtype)
    kv_mask = solutions.padding_mask(np.array([7, 0]), 7)  # the second sentence is all padding
    for mask in (None, kv_mask):
        assert_pairs_close(standins.cross_attention(X, X_kv, W_q, W_kx, W_vx, kv_mask=mask),
                           solutions.cross_attention(X, X_kv, W_q, W_kx, W_vx, kv_mask=mask), dtype, "cross")


def test_sinusoidal_positions_follow_course_md() -> None:
    n, d = 9, 6
    P = standins.sinusoidal_positions(n, d)
    for p in range(n):
        for i in range(d // 2):
            assert P[p, 2 * i] == pytest.approx(np.sin(p / 10000 ** (2 * i / d)), abs=1e-12)
            assert P[p, 2 * i + 1] == pytest.approx(np.cos(p / 10000 ** (2 * i / d)), abs=1e-12)
    for size, width in ((9, 6), (1, 2), (0, 4), (64, 32)):
        assert_pairs_close(standins.sinusoidal_positions(size, width), solutions.sinusoidal_positions(size, width),
                           np.float64, f"n={size}, d={width}")


def test_apply_rope_follows_course_md() -> None:
    rng = np.random.default_rng(2)
    x, positions, base = rand(rng, 2, 5, 4), np.array([0, 3, 4, 10, 100]), 10000.0
    out = standins.apply_rope(x, positions, base)
    for p_index, p in enumerate(positions):
        for i in range(2):
            angle = p * base ** (-2 * i / 4)
            a, b = x[..., p_index, 2 * i], x[..., p_index, 2 * i + 1]
            assert_close(out[..., p_index, 2 * i], a * np.cos(angle) - b * np.sin(angle), np.float64)
            assert_close(out[..., p_index, 2 * i + 1], a * np.sin(angle) + b * np.cos(angle), np.float64)
    assert out.dtype == np.float64 and standins.apply_rope(x.astype(np.float32), positions).dtype == np.float32
    ours, ref = both("apply_rope")
    for dtype in DTYPES:
        y = rand(rng, 3, 2, 5, 8, dtype=dtype)
        for pos, b in ((np.arange(5), 10000.0), (np.arange(7, 12), 10000.0), (np.array([9, 0, 3, 3, 500]), 100.0)):
            assert_pairs_close(ours(y, pos, b), ref(y, pos, b), dtype, f"positions {pos}, base {b}")


# ----------------------------------------------------------------------------- chapters 4-6


def copied(module_class, reference: torch.nn.Module, *args) -> torch.nn.Module:
    ours = module_class(*args).to(reference.q_proj.weight.dtype)
    ours.load_state_dict(reference.state_dict())  # same layer names, same shapes
    return ours


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", (True, False))
def test_multi_head_attention(dtype, bias: bool) -> None:
    rng = np.random.default_rng(3)
    ref = solutions.MultiHeadAttention(12, 3, bias=bias).to(TORCH[dtype])
    ours = copied(standins.MultiHeadAttention, ref, 12, 3, bias)
    q, kv = (torch.as_tensor(rand(rng, 2, n, 12, dtype=dtype)) for n in (5, 7))
    masks = [None] + [torch.as_tensor(m) for m in (random_mask(rng, 5, 7), random_mask(rng, 2, 1, 7, blocked_row=False),
                                                   random_mask(rng, 2, 3, 5, 7))]
    with torch.no_grad():
        for mask in masks:
            assert_pairs_close(ours(q, kv, kv, mask=mask), ref(q, kv, kv, mask=mask), dtype,
                               f"mask {None if mask is None else tuple(mask.shape)}")
    assert (ours.d_model, ours.n_heads, ours.head_dim) == (12, 3, 4)


@pytest.mark.parametrize("n_kv_heads", (4, 2, 1))
def test_grouped_query_attention_full_and_cached(n_kv_heads: int) -> None:
    rng = np.random.default_rng(4)
    ref = solutions.GroupedQueryAttention(16, 4, n_kv_heads).double()
    ours = copied(standins.GroupedQueryAttention, ref, 16, 4, n_kv_heads)
    x = torch.as_tensor(rand(rng, 2, 6, 16))
    with torch.no_grad():
        out, cache = ours(x)
        ref_out, ref_cache = ref(x)
        assert_pairs_close((out, *cache), (ref_out, *ref_cache), np.float64, "full causal forward")
        step_cache, steps = None, []
        for t in range(6):  # one token at a time with the cache: the same as the full forward
            y, step_cache = ours(x[:, t : t + 1], kv_cache=step_cache)
            steps.append(y)
        assert_close(torch.cat(steps, dim=1), ref_out, np.float64, "cached decoding")
        mask = torch.as_tensor(random_mask(rng, 6, 6))
        assert_pairs_close(ours(x, mask=mask)[0], ref(x, mask=mask)[0], np.float64, "explicit mask")
    assert (ours.n_rep, ours.head_dim) == (4 // n_kv_heads, 4)


def test_mha_to_gqa_gives_the_reference_conversion() -> None:
    rng = np.random.default_rng(5)
    mha = solutions.MultiHeadAttention(16, 4, bias=True).double()
    x = torch.as_tensor(rand(rng, 1, 5, 16))
    with torch.no_grad():
        for n_kv in (4, 2, 1):
            ours, ref = standins.mha_to_gqa(mha, n_kv), solutions.mha_to_gqa(mha, n_kv)
            assert isinstance(ours, standins.GroupedQueryAttention) and ours.n_kv_heads == n_kv
            assert ours.q_proj.weight.dtype == torch.float64
            np.testing.assert_allclose(ours(x)[0].numpy(), ref(x)[0].numpy(), rtol=1e-12, atol=1e-12)
            ours_from_ours = standins.mha_to_gqa(copied(standins.MultiHeadAttention, mha, 16, 4, True), n_kv)
            assert_close(ours_from_ours(x)[0], ref(x)[0], np.float64, "from a stand-in MHA")


def test_kv_cache_bytes() -> None:
    for args in ((1, 4096, 32, 8, 128), (2, 10, 3, 1, 64, 4)):
        assert standins.kv_cache_bytes(*args) == solutions.kv_cache_bytes(*args)
        assert isinstance(standins.kv_cache_bytes(*args), int)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("causal", (False, True))
def test_tiled_attention(dtype, causal: bool) -> None:
    rng = np.random.default_rng(6)
    for n_q, n_k, block in ((9, 9, 4), (3, 10, 2), (10, 4, 3), (5, 5, 128)):
        Q = torch.as_tensor(rand(rng, 2, 1, n_q, 8, dtype=dtype))
        K, V = (torch.as_tensor(rand(rng, 1, 3, n_k, 8, dtype=dtype)) for _ in range(2))
        assert_pairs_close(standins.tiled_attention(Q, K, V, block_size=block, causal=causal),
                           solutions.tiled_attention(Q, K, V, block_size=block, causal=causal), dtype,
                           f"n_q={n_q} n_k={n_k} block={block} causal={causal}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_sdpa_backward(dtype) -> None:
    rng = np.random.default_rng(7)
    for n_q, n_k, mask_shape in ((4, 6, None), (5, 5, (5, 5)), (3, 7, (2, 1, 1, 7))):
        Q, K, V, dO = (torch.as_tensor(rand(rng, 2, 3, n, d, dtype=dtype))
                       for n, d in ((n_q, 4), (n_k, 4), (n_k, 5), (n_q, 5)))
        mask = None if mask_shape is None else torch.as_tensor(random_mask(rng, *mask_shape, blocked_row=True))
        ours, ref = standins.sdpa_backward(Q, K, V, dO, mask), solutions.sdpa_backward(Q, K, V, dO, mask)
        assert all(g.dtype == Q.dtype and not g.requires_grad for g in ours)
        assert_pairs_close(ours, ref, dtype, f"n_q={n_q} n_k={n_k} mask {mask_shape}")


@pytest.mark.parametrize("n_kv_heads", (4, 2, 1))
def test_decoder_layer_full_and_cached(n_kv_heads: int) -> None:
    rng = np.random.default_rng(6)
    ref = solutions.DecoderLayer(16, 4, n_kv_heads, 24).double()
    ours = standins.DecoderLayer(16, 4, n_kv_heads, 24).double()
    ours.load_state_dict(ref.state_dict())  # same submodule names, same shapes
    x, memory = torch.as_tensor(rand(rng, 2, 5, 16)), torch.as_tensor(rand(rng, 2, 7, 16))
    mask = torch.as_tensor(random_mask(rng, 2, 1, 7, blocked_row=False))
    with torch.no_grad():
        out, cache, cross = ours(x, memory, mask)
        ref_out, ref_cache, ref_cross = ref(x, memory, mask)
        assert_pairs_close((out, *cache, cross), (ref_out, *ref_cache, ref_cross), np.float64, "full forward")
        step_cache, steps = None, []
        for t in range(5):
            y, step_cache, _ = ours(x[:, t : t + 1], memory, mask, kv_cache=step_cache)
            steps.append(y)
        assert_close(torch.cat(steps, dim=1), ref_out, np.float64, "cached decoding")


def test_greedy_decode_gives_the_reference_tokens() -> None:
    from course import tinyformer

    model = tinyformer.build_model(tinyformer.Config(seed=3)).eval()
    src = tinyformer.encode_batch(tinyformer.all_sentences()[::4001]).src
    with torch.no_grad():
        for use_cache in (True, False):
            ours = standins.greedy_decode(model, src, tinyformer.BOS, 9, use_cache=use_cache)
            assert torch.equal(ours, solutions.greedy_decode(model, src, tinyformer.BOS, 9, use_cache=use_cache))


# ----------------------------------------------------------------------------- chapter 8


def test_sliding_window_masks() -> None:
    for n_q, n_k, window in ((5, 5, 1), (5, 5, 3), (5, 5, 9), (3, 7, 2), (1, 6, 4), (6, 3, 2), (0, 4, 2)):
        ours, ref = standins.sliding_window_mask(n_q, n_k, window), solutions.sliding_window_mask(n_q, n_k, window)
        assert ours.dtype == ref.dtype == torch.bool and torch.equal(ours, ref), (n_q, n_k, window)


@pytest.mark.parametrize("window", [1, 3, 6, 20])
def test_rolling_cache_update(window: int) -> None:
    g = torch.Generator().manual_seed(window)
    past = (torch.randn(2, 2, 5, 4, generator=g), torch.randn(2, 2, 5, 4, generator=g))
    new = (torch.randn(2, 2, 3, 4, generator=g), torch.randn(2, 2, 3, 4, generator=g))
    for cache in (None, past):
        ours = standins.rolling_cache_update(cache, *new, window)
        ref = solutions.rolling_cache_update(cache, *new, window)
        assert all(torch.equal(a, b) for a, b in zip(ours, ref, strict=True)), (window, cache is None)


@pytest.mark.parametrize("dtype", DTYPES)
def test_next_token_probs_and_sample_next(dtype) -> None:
    g = torch.Generator().manual_seed(0)
    settings = ({}, {"temperature": 0.5}, {"temperature": 0}, {"top_k": 3}, {"top_p": 0.6},
                {"temperature": 2.0, "top_k": 5, "top_p": 0.5})
    for vocab in (2, 7, 30):
        logits = (torch.randn(3, 4, vocab, generator=g) * 3).to(TORCH[dtype])
        tied = logits.round()  # ties at the top-k and top-p boundaries
        for kwargs in settings:
            for x in (logits, tied):
                assert_pairs_close(standins.next_token_probs(x, **kwargs), solutions.next_token_probs(x, **kwargs),
                                   dtype, f"next_token_probs {kwargs}")
            draws = [f(logits, generator=torch.Generator().manual_seed(7), **kwargs)
                     for f in (standins.sample_next, solutions.sample_next)]
            assert draws[0].dtype == torch.long and torch.equal(*draws), kwargs


def test_induction_score() -> None:
    weights = torch.softmax(torch.randn(2, 3, 12, 12, dtype=torch.float64), dim=-1)
    for period in (1, 4, 6, 11):
        assert_pairs_close(standins.induction_score(weights, period), solutions.induction_score(weights, period),
                           np.float64, f"period {period}")


# ----------------------------------------------------------------------------- dispatch and bad input


# Which test compares each name of course.impl: a name added there without a case here fails below.
CASES = {
    "soft_lookup": test_soft_lookup,
    "softmax": test_softmax_any_axis_large_logits_and_blocked_slices,
    "causal_mask": test_masks,
    "padding_mask": test_masks,
    "scaled_dot_product_attention": test_scaled_dot_product_attention,
    "self_attention": test_self_and_cross_attention,
    "cross_attention": test_self_and_cross_attention,
    "sinusoidal_positions": test_sinusoidal_positions_follow_course_md,
    "apply_rope": test_apply_rope_follows_course_md,
    "MultiHeadAttention": test_multi_head_attention,
    "GroupedQueryAttention": test_grouped_query_attention_full_and_cached,
    "kv_cache_bytes": test_kv_cache_bytes,
    "mha_to_gqa": test_mha_to_gqa_gives_the_reference_conversion,
    "tiled_attention": test_tiled_attention,
    "sdpa_backward": test_sdpa_backward,
    "DecoderLayer": test_decoder_layer_full_and_cached,
    "greedy_decode": test_greedy_decode_gives_the_reference_tokens,
    "sliding_window_mask": test_sliding_window_masks,
    "rolling_cache_update": test_rolling_cache_update,
    "next_token_probs": test_next_token_probs_and_sample_next,
    "sample_next": test_next_token_probs_and_sample_next,
    "induction_score": test_induction_score,
}


def test_every_name_has_a_stand_in_and_a_case_here() -> None:
    assert sorted(CASES) == sorted(impl.NAMES)
    for name in impl.NAMES:
        assert hasattr(standins, name), name


def test_in_the_repository_the_pages_get_the_reference() -> None:
    assert impl.SOURCE == "reference"
    assert impl.soft_lookup is solutions.soft_lookup
    assert impl.MultiHeadAttention is solutions.MultiHeadAttention
    assert impl.triton_flash() is not None


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k != "COURSE_IMPL"}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**clean, "PYTHONPATH": str(ROOT), **env},
                          capture_output=True, text=True, timeout=120)


def test_course_impl_can_be_forced_to_the_stand_ins() -> None:
    code = ("from course import impl, standins; assert impl.SOURCE == 'standins'; "
            "assert impl.scaled_dot_product_attention is standins.scaled_dot_product_attention; "
            "assert impl.triton_flash() is None; print('ok')")
    result = run_python(code, COURSE_IMPL="standins")
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr
    bad = run_python("import course.impl", COURSE_IMPL="solutions")
    assert bad.returncode != 0 and "COURSE_IMPL must be one of" in bad.stderr


def test_unknown_names_are_clear_errors() -> None:
    with pytest.raises(AttributeError, match="no attribute 'hard_lookup'"):
        impl.hard_lookup  # noqa: B018 (the attribute access is the test)
    with pytest.raises(AttributeError, match="provides soft_lookup"):
        impl.source_of("hard_lookup")


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: standins.scaled_dot_product_attention(np.ones((2, 3)), np.ones((4, 2)), np.ones((4, 1))), "share d_k"),
        (lambda: standins.scaled_dot_product_attention(np.ones((2, 3)), np.ones((4, 3)), np.ones((5, 1))), "same n"),
        (lambda: standins.scaled_dot_product_attention(np.ones((2, 3)), np.ones((4, 3)), np.ones((4, 1)),
                                                      np.ones((2, 4))), "boolean"),
        (lambda: standins.soft_lookup(np.ones(2), np.ones((3, 2)), np.ones((3, 1)), temperature=0), "temperature"),
        (lambda: standins.padding_mask([7], 6), r"\[0, n_k=6\]"),
        (lambda: standins.MultiHeadAttention(10, 3), "must divide"),
        (lambda: standins.GroupedQueryAttention(8, 4, 3), "must divide"),
        (lambda: standins.tiled_attention(torch.ones(2, 3), torch.ones(2, 3), torch.ones(2, 3), block_size=0),
         "block_size"),
        (lambda: standins.sdpa_backward(torch.ones(2, 3), torch.ones(4, 3), torch.ones(4, 2), torch.ones(4, 2)),
         "output's shape"),
        (lambda: standins.apply_rope(np.ones((3, 5)), np.arange(3)), "d even"),
        (lambda: standins.sinusoidal_positions(3, 5), "even d"),
        (lambda: standins.sliding_window_mask(3, 3, 0), "window >= 1"),
        (lambda: standins.next_token_probs(torch.ones(3), top_p=0.0), "top_p"),
        (lambda: standins.induction_score(torch.ones(2, 4, 4), 4), "period < n"),
    ],
)
def test_stand_ins_reject_bad_input_with_a_clear_message(call: Callable, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()
