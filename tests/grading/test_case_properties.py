"""The hidden cases separate what a student could confuse, for every course secret.

Each course draws its own secret and its hidden cases from it, so a guarantee of the cases must hold
for every secret, not for the few a test happened to use: these are properties over random secrets
(hypothesis; CI runs the fixed-seed ``ci`` profile, ``HYPOTHESIS_PROFILE=dev`` many more). Found by a
red team when they did not hold: cross-attention with ``d_k == d_v`` (a scale by ``sqrt(d_v)`` passed),
keys that never repeat (a hard lookup returning the *last* match passed), a largest score that was
always positive (a softmax shifted by ``abs(max)`` passed).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grader.engine import checker, registry
from grader.engine.cases import Case
from grader.engine.probe import ModuleSpec

pytestmark = pytest.mark.grading
secrets = st.binary(min_size=32, max_size=32)


def cases(assignment: str, name: str, secret: bytes) -> list[Case]:
    return checker.hidden_cases(registry.exercise(assignment), name, secret)


def arrays(case: Case) -> list:
    return [a for a in (*case.run.args, *case.run.kwargs.values()) if hasattr(a, "shape")]


def kw(case: Case, key: str, default: object = None) -> object:
    return case.run.kwargs.get(key, default)


def as_np(x: object) -> np.ndarray:
    return x.numpy() if hasattr(x, "numpy") else np.asarray(x)


# ---- chapter 1 --------------------------------------------------------------------------------------


@given(secrets)
def test_ch1_keys_repeat_values_differ_and_scores_go_both_ways(secret: bytes) -> None:
    hard = cases("ch1-lookup", "hard_lookup", secret)
    repeated = []
    for c in hard:
        query, keys, values = c.run.args
        assert values.shape[1] != keys.shape[1], "a key and a value must not have the same width"
        matches = np.flatnonzero(np.all(keys == query, axis=-1))
        if len(matches) >= 2 and matches[0] > 0 and not np.allclose(values[matches[0]], values[matches[-1]]):
            repeated.append(c)
    assert repeated, "a query that several keys equal, the first of them not at position 0"
    assert any(not np.all(k == q, axis=-1).any() for q, k, _ in (c.run.args for c in hard)), "a query no key equals"
    assert any(c.run.args[1].dtype == np.float32 for c in hard)

    soft = cases("ch1-lookup", "soft_lookup", secret)
    scores = [c.run.args[1] @ c.run.args[0] / kw(c, "temperature", 1.0) for c in soft]
    assert any(s.max() >= 1e4 * (1 - 1e-9) for s in scores), "a score of +1e4"
    assert any(s.max() <= -1e4 * (1 - 1e-9) for s in scores), "scores that are all <= -1e4"
    assert {kw(c, "temperature", 1.0) for c in soft} - {1.0}, "a temperature other than the default"
    assert all(c.run.args[2].shape[1] != c.run.args[1].shape[1] for c in soft)
    assert any(c.run.args[0].dtype == np.float32 for c in soft)

    grads = cases("ch1-lookup", "numerical_gradient", secret)
    assert any(np.issubdtype(np.asarray(c.run.args[2]).dtype, np.integer) for c in grads), "an integer query"
    assert any(kw(c, "eps", 1e-6) >= 1e-2 for c in grads), "a step other than the default that shows"


# ---- chapter 2 --------------------------------------------------------------------------------------


def _scores(Q: np.ndarray, K: np.ndarray) -> np.ndarray:
    return Q @ np.swapaxes(K, -1, -2) / np.sqrt(Q.shape[-1])


@given(secrets)
def test_ch2_axes_signs_masks_and_shapes_are_all_tried(secret: bytes) -> None:
    soft = cases("ch2-sdpa", "softmax", secret)
    xs = [c.run.args[0] for c in soft]
    assert any((x.max(axis=-1) >= 1e4).all() for x in xs), "a logit of 1e4 or more in every row"
    assert any(np.isfinite(x).all() and x.max() <= -1e4 for x in xs), "logits that are all <= -1e4"
    assert {kw(c, "axis", -1) for c in soft} >= {-1, 0, 1}
    assert any(np.isneginf(x).all(axis=-1).any() for x in xs), "a row that is -inf everywhere"
    assert any(x.dtype == np.float32 for x in xs)

    sdpa = cases("ch2-sdpa", "scaled_dot_product_attention", secret)
    shapes = [(c.run.args[0].shape, c.run.args[1].shape, c.run.args[2].shape) for c in sdpa]
    assert any(len({q[-2], k[-2], q[-1], v[-1]}) == 4 and len(q) > 2 for q, k, v in shapes), \
        "n_q, n_k, d_k, d_v all different, with batch dims"
    assert all(q[-1] != v[-1] for q, _, v in shapes), "d_k != d_v in every case (1/sqrt(d_v) must not pass)"
    masked = [c for c in sdpa if len(c.run.args) > 3]
    assert any((_scores(*c.run.args[:2]) <= -1e4 * (1 - 1e-9) / np.sqrt(c.run.args[0].shape[-1])).all()
               for c in masked), "scores that are all negative, down to -1e4, under a mask"
    assert any(not np.asarray(c.run.args[3]).any(axis=-1).all() for c in masked), "a fully blocked row"
    assert any(c.run.args[0].dtype == np.float32 for c in sdpa)

    sizes = [c.run.args for c in cases("ch2-sdpa", "causal_mask", secret)]
    assert any(q < k for q, k in sizes) and any(q > k for q, k in sizes) and any(q == k for q, k in sizes)
    lengths = [(c.run.args[0], c.run.args[1]) for c in cases("ch2-sdpa", "padding_mask", secret)]
    assert any((lens == 0).any() for lens, _ in lengths) and any((lens == n).any() for lens, n in lengths)


# ---- chapter 3 --------------------------------------------------------------------------------------


@given(secrets)
def test_ch3_widths_lengths_and_masks_are_never_confusable(secret: bytes) -> None:
    for c in cases("ch3-self-cross", "self_attention", secret):
        X, W_q, _, W_v = c.run.args
        assert W_q.shape[1] != W_v.shape[1] and len({X.shape[-1], W_q.shape[1], W_v.shape[1], X.shape[-2]}) == 4
    self_cases = cases("ch3-self-cross", "self_attention", secret)
    assert any(kw(c, "causal") and (c.run.args[0] @ c.run.args[1] @ (c.run.args[0] @ c.run.args[2]).swapaxes(-1, -2)
                                    <= -1e4).all() for c in self_cases), "all-negative scores with causal=True"
    assert any(c.run.args[0].dtype == np.float32 for c in self_cases)
    cross = cases("ch3-self-cross", "cross_attention", secret)
    for c in cross:
        X_q, X_kv, W_q, W_k, W_v = c.run.args
        assert W_q.shape[1] != W_v.shape[1], "d_k != d_v in every case"
        assert len({X_q.shape[-2], X_kv.shape[-2], W_q.shape[1], W_v.shape[1]}) == 4, "n_q, n_k, d_k, d_v differ"
    assert any(c.run.args[0].shape[-1] != c.run.args[1].shape[-1] for c in cross), "d_model_kv != d_model"
    masks = [np.asarray(kw(c, "kv_mask")) for c in cross if kw(c, "kv_mask") is not None]
    assert any(not m.any(axis=-1).all() for m in masks), "a fully padded sequence"
    assert any(c.run.args[0].dtype == np.float32 for c in cross)
    rope = cases("ch3-self-cross", "apply_rope", secret)
    assert any(kw(c, "base", 10000.0) != 10000.0 for c in rope)
    assert any(np.asarray(c.run.args[1])[0] > 0 for c in rope), "positions after a cache"
    assert any(c.run.args[0].dtype == np.float32 for c in rope)


# ---- chapters 4 and 5 -------------------------------------------------------------------------------


def _module(case: Case) -> ModuleSpec:
    return case.run.args[0]


@given(secrets)
def test_ch4_key_value_lengths_and_masks_differ(secret: bytes) -> None:
    mha = cases("ch4-multihead", "MultiHeadAttention", secret)
    tensors = [c.run.args[1:4] for c in mha]
    assert any(q.shape[1] != k.shape[1] and not np.allclose(as_np(k), as_np(v)) for q, k, v in tensors)
    masks = [as_np(kw(c, "mask")) for c in mha if kw(c, "mask") is not None]
    assert any(m.ndim == 3 and m.shape[1] > 1 and (m[0] != m[1]).any() for m in masks), "a (batch, n_q, n_k) mask"
    assert any(not m.any(axis=-1).all() for m in masks), "a fully padded sequence"
    assert any(_module(c).init[2:] == (False,) for c in mha), "bias=False"


@given(secrets)
def test_ch5_bias_masks_cache_and_dtype_are_tried(secret: bytes) -> None:
    gqa = cases("ch5-gqa", "GroupedQueryAttention", secret)
    forwards = [c for c in gqa if c.run.runner == "forward"]
    assert any(_module(c).init[3:] == (True,) for c in forwards), "bias=True in a plain forward"
    assert {_module(c).init[2] for c in gqa} >= {1, 2}, "MQA and GQA"
    masks = [as_np(kw(c, "mask")) for c in forwards if kw(c, "mask") is not None]
    assert {m.ndim for m in masks} >= {2, 3}
    assert any(kw(c, "kv_cache") is not None for c in forwards) and any(c.run.runner == "decode_steps" for c in gqa)
    convert = cases("ch5-gqa", "mha_to_gqa", secret)
    dtypes = {str(next(iter(_module(c).state.values())).dtype) for c in convert}
    assert dtypes >= {"torch.float32", "torch.float64"}, "a float64 checkpoint"


# ---- chapters 6 and 7 -------------------------------------------------------------------------------


@given(secrets)
def test_ch6_tiles_and_lengths_are_at_every_boundary(secret: bytes) -> None:
    tiled = [c for c in cases("ch6-tiled", "tiled_attention", secret) if c.run.runner == "call"]

    def lengths(c: Case) -> tuple[int, int, int, bool]:
        Q, K = c.run.args[:2]
        return Q.shape[-2], K.shape[-2], int(kw(c, "block_size", 128)), bool(kw(c, "causal", False))

    shapes = [lengths(c) for c in tiled]
    assert any(q != k and not causal and q % b == 1 and k % b == 1 for q, k, b, causal in shapes)
    assert any(causal and b == 2 for _, _, b, causal in shapes)
    assert any(causal and q > k and (q - k) % b for q, k, b, causal in shapes), "rows that see no key, tile shared"
    assert any(causal and q < k for q, k, _, causal in shapes)
    assert any(b >= max(q, k) and "block_size" not in c.run.kwargs for c, (q, k, b, _) in zip(tiled, shapes,
                                                                                               strict=True))
    assert any(str(c.run.args[0].dtype) == "torch.float64" for c in tiled)


@settings(max_examples=5)
@given(secrets)
def test_ch7_greedy_decoding_is_watched_with_and_without_the_cache(secret: bytes) -> None:
    greedy = cases("ch7-transformer", "greedy_decode", secret)
    traced = [c.run.args[4:] for c in greedy if c.run.runner == "traced"]
    assert {a[0] if a else "default" for a in traced} >= {True, False, "default"}


# ---- chapter 8 --------------------------------------------------------------------------------------


def _mass_before(logits: np.ndarray, temperature: float, top_k: int | None) -> np.ndarray:
    """The probability mass ranked before each token, after temperature and top-k (float64)."""
    scaled = logits / temperature
    if top_k is not None:
        scaled = np.where(scaled >= np.sort(scaled, axis=-1)[..., -min(top_k, scaled.shape[-1])][..., None],
                          scaled, -np.inf)
    p = np.exp(scaled - scaled.max(axis=-1, keepdims=True))
    ranked = -np.sort(-p / p.sum(axis=-1, keepdims=True), axis=-1)
    return np.cumsum(ranked, axis=-1) - ranked


@given(secrets)
def test_ch8_windows_caches_sampling_rules_and_periods_are_never_confusable(secret: bytes) -> None:
    sizes = [c.run.args for c in cases("ch8-gpt", "sliding_window_mask", secret)]
    assert any(q < k for q, k, _ in sizes) and any(q > k for q, k, _ in sizes) and any(q == k for q, k, _ in sizes)
    assert any(w >= k for _, k, w in sizes) and any(w == 1 for _, _, w in sizes)
    assert any(1 < w < k and q > w for q, k, w in sizes), "a window shorter than the queries that see it"

    rolling = cases("ch8-gpt", "rolling_cache_update", secret)
    assert any(c.run.args[0] is None and c.run.args[1].shape[-2] > c.run.args[3] for c in rolling), \
        "a prompt longer than the window, no cache yet"
    cached = [c for c in rolling if c.run.args[0] is not None]
    assert any(c.run.args[0][0].shape[-2] + c.run.args[1].shape[-2] > c.run.args[3] > c.run.args[0][0].shape[-2]
               for c in cached), "a cache that overflows only with the new positions"
    for c in cached:
        (k, v), k_new, v_new, _ = c.run.args
        assert len(set(k.shape[:2]) | {k.shape[-1]}) == 3, "batch, heads and head_dim all different"
        assert not np.allclose(as_np(k), as_np(v)) and not np.allclose(as_np(k_new), as_np(v_new)), "keys != values"
    assert {str(c.run.args[1].dtype) for c in rolling} >= {"torch.float32", "torch.float64"}

    probs = [c.run.args for c in cases("ch8-gpt", "next_token_probs", secret)]

    temps = {(args[1] if len(args) > 1 else 1.0) for args in probs}
    assert temps >= {0.0, 1.0} and len(temps - {0.0, 1.0}) >= 2, "greedy, the default and other temperatures"
    assert any(len(a) > 2 and a[1] != 1.0 and len(a) > 3 and a[3] is not None for a in probs), \
        "a temperature before top-p"
    assert any(len(a) > 3 and a[2] is not None and a[3] is not None and a[1] != 0 for a in probs), "top-k then top-p"
    assert any(len(a) > 2 and a[2] is not None and a[2] > a[0].shape[-1] for a in probs), "top_k > vocab"
    greedy_ties = [a[0] for a in probs if len(a) > 1 and a[1] == 0.0]
    assert any(((x == x.max(dim=-1, keepdim=True).values).sum(-1) > 1).all() for x in greedy_ties), \
        "greedy where the largest logit is tied"
    assert any(float(a[0].min()) >= 1e4 - 50 for a in probs), "logits near +1e4"
    assert any(float(a[0].max()) <= -1e4 + 50 for a in probs), "logits near -1e4"
    for a in probs:
        t = a[1] if len(a) > 1 else 1.0
        top_p = a[3] if len(a) > 3 else None
        if top_p is not None and t != 0 and len(np.unique(as_np(a[0]))) == as_np(a[0]).size:
            top_k = a[2] if len(a) > 2 else None
            before = _mass_before(as_np(a[0]).astype(np.float64), t, top_k)
            assert np.abs(before - top_p).min() > 5e-4, "no top-p threshold within float rounding of a boundary"
    assert {str(a[0].dtype) for a in probs} >= {"torch.float32", "torch.float64"}
    assert {a[0].ndim for a in probs} >= {1, 2, 3}

    samples = cases("ch8-gpt", "sample_next", secret)
    assert all(c.run.args[2] >= 5 for c in samples), "several draws from one generator"
    assert {k for c in samples for k in c.run.kwargs} >= {"temperature", "top_k", "top_p"}
    assert len({c.run.args[1] for c in samples}) == len(samples), "a seed per case"

    induction = [c.run.args for c in cases("ch8-gpt", "induction_score", secret)]
    assert any(p == 1 for _, p in induction) and any(p > 2 for _, p in induction)
    assert any(w.shape[-1] % p for w, p in induction), "a length that is not a whole number of periods"
    assert any(w.shape[-1] >= 3 * p for w, p in induction), "three repeats"
    assert any(w.ndim == 2 for w, _ in induction) and any(w.ndim == 4 for w, _ in induction)
    assert any(bool((w.triu(1) > 0).any()) for w, _ in induction), "weights on later keys (not causal)"


# ---- every exercise ---------------------------------------------------------------------------------


@settings(max_examples=3)
@given(secrets)
@pytest.mark.parametrize("assignment", registry.assignment_ids())
def test_the_reference_answers_every_case_keeps_dtypes_and_changes_no_input(assignment: str, secret: bytes) -> None:
    ex = registry.exercise(assignment)
    namespace = checker.reference_namespace(ex)
    for name in ex.check_order:
        if not ex.specs[name].reference:
            continue
        hidden = checker.hidden_cases(ex, name, secret)
        for case, out in zip(hidden, checker.local_outcomes(ex.reference(name), namespace, hidden), strict=True):
            assert not out.failed or out.error_type == "KeyError", (name, case.what, out.error_type)
            assert not out.modified, (name, case.what)
            inputs = {str(a.dtype).removeprefix("torch.") for a in arrays(case) if "float" in str(a.dtype)}
            results = out.value if isinstance(out.value, tuple) else (out.value,)
            if inputs == {"float32"}:
                floats = [r for r in results if isinstance(r, np.ndarray) and r.dtype.kind == "f"]
                assert all(r.dtype == np.float32 for r in floats), (name, case.what)
