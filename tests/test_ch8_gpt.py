"""Chapter 8: sliding-window masks, the rolling KV cache, sampling, induction scores, and the tiny GPT.

Every exercise function is checked against a plain PyTorch formulation of its definition (the mask
inside ``F.scaled_dot_product_attention``, the nucleus as "the mass of the strictly more probable
tokens", the induction stripe as a diagonal, the draws against ``torch.multinomial``'s distribution by a
chi-square test). The trained models are the page's own (``course.tinygpt.trained_induction()``: same
seed, same budget), trained once per test session; the thresholds are the chapter's
(``tinygpt.INDUCTION_THRESHOLD``): the two-layer model must have an induction head, the one-layer
control must not.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course import tinygpt as tg
from solutions import (
    GroupedQueryAttention,
    apply_rope,
    induction_score,
    kv_cache_bytes,
    next_token_probs,
    rolling_cache_update,
    sample_next,
    sliding_window_mask,
)

pytestmark = pytest.mark.ch8


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --- sliding_window_mask ------------------------------------------------------------------------------


@pytest.mark.parametrize(("n_q", "n_k", "window"), [(6, 6, 1), (6, 6, 3), (6, 6, 6), (6, 6, 9), (3, 8, 4),
                                                     (1, 9, 4), (7, 4, 2), (0, 5, 2), (5, 0, 2)])
def test_sliding_window_mask_is_the_band_of_its_definition(n_q: int, n_k: int, window: int) -> None:
    mask = sliding_window_mask(n_q, n_k, window)
    want = [[i + n_k - n_q - window < j <= i + n_k - n_q for j in range(n_k)] for i in range(n_q)]
    assert mask.dtype == torch.bool and mask.shape == (n_q, n_k)
    assert mask.tolist() == want
    assert torch.equal(mask, torch.ones(n_q, n_k, dtype=torch.bool).tril(n_k - n_q).triu(n_k - n_q - window + 1))


def test_a_long_window_is_the_causal_mask_of_sdpa() -> None:
    q, k, v = (torch.randn(2, 3, 5, 8, dtype=torch.float64) for _ in range(3))
    window = sliding_window_mask(5, 5, 5)
    torch.testing.assert_close(F.scaled_dot_product_attention(q, k, v, attn_mask=window),
                               F.scaled_dot_product_attention(q, k, v, is_causal=True))


@pytest.mark.parametrize("window", [1, 2, 5])
@pytest.mark.parametrize("n_kv_heads", [4, 2])
def test_gqa_with_the_window_mask_equals_sdpa_with_the_same_boolean_mask(window: int, n_kv_heads: int) -> None:
    """Chapter 5's GQA given the window as its explicit mask, against SDPA given the same mask."""
    torch.manual_seed(window)
    gqa = GroupedQueryAttention(16, 4, n_kv_heads).double()
    x = torch.randn(2, 7, 16, dtype=torch.float64)
    mask = sliding_window_mask(7, 7, window)
    with torch.no_grad():
        out, _ = gqa(x, mask=mask)
        q = gqa.q_proj(x).unflatten(-1, (4, 4)).transpose(1, 2)
        k, v = (p(x).unflatten(-1, (n_kv_heads, 4)).transpose(1, 2) for p in (gqa.k_proj, gqa.v_proj))
        want = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True)
        want = gqa.out_proj(want.transpose(1, 2).flatten(-2))
    torch.testing.assert_close(out, want)


# --- rolling_cache_update -----------------------------------------------------------------------------


@pytest.mark.parametrize("window", [1, 3, 8])
def test_rolling_one_step_at_a_time_keeps_the_last_window_of_everything(window: int) -> None:
    keys, values = torch.randn(2, 2, 12, 4), torch.randn(2, 2, 12, 4)
    cache = None
    for t in range(12):
        cache = rolling_cache_update(cache, keys[..., t : t + 1, :], values[..., t : t + 1, :], window)
        start = max(0, t + 1 - window)
        assert torch.equal(cache[0], keys[..., start : t + 1, :])
        assert torch.equal(cache[1], values[..., start : t + 1, :])


def test_rolling_chunks_equal_the_concatenation_cut_to_the_window() -> None:
    past, new = (torch.randn(1, 2, 5, 3), torch.randn(1, 2, 5, 3)), (torch.randn(1, 2, 4, 3), torch.randn(1, 2, 4, 3))
    copies = [t.clone() for t in (*past, *new)]
    for window in (1, 4, 6, 9, 20):
        k, v = rolling_cache_update(past, *new, window)
        torch.testing.assert_close(k, torch.cat([past[0], new[0]], dim=2)[:, :, -window:])
        torch.testing.assert_close(v, torch.cat([past[1], new[1]], dim=2)[:, :, -window:])
    assert all(torch.equal(a, b) for a, b in zip(copies, (*past, *new), strict=True)), "inputs not modified"


# --- next_token_probs ---------------------------------------------------------------------------------


def by_definition(logits: torch.Tensor, temperature: float, top_k: int | None, top_p: float | None) -> torch.Tensor:
    """The contract written as plainly as possible (no sorting, no cumulative sums), for one row."""
    if temperature == 0:
        out = torch.zeros_like(logits)
        out[int(np.argmax(logits.numpy()))] = 1.0
        return out
    z = logits / temperature
    if top_k is not None:
        kth = sorted(z.tolist(), reverse=True)[min(top_k, len(z)) - 1]
        z = torch.where(z >= kth, z, torch.tensor(float("-inf"), dtype=z.dtype))
    p = torch.exp(z - z.max())
    p = p / p.sum()
    if top_p is not None:
        above = torch.stack([p[p > p[i]].sum() for i in range(len(p))])  # mass strictly more probable than i
        p = torch.where(above < top_p, p, torch.zeros_like(p))
        p = p / p.sum()
    return p


SETTINGS = [(1.0, None, None), (0.5, None, None), (2.0, None, None), (0.0, 3, 0.5), (1.0, 3, None), (1.0, 50, None),
            (1.0, None, 0.6), (1.0, None, 1.0), (0.7, None, 0.9), (1.5, 5, 0.75), (1.0, 4, 0.8)]


@pytest.mark.parametrize(("temperature", "top_k", "top_p"), SETTINGS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_next_token_probs_follows_its_definition(temperature: float, top_k: int | None, top_p: float | None,
                                                 dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(0)
    logits = (torch.randn(40, 12, generator=g, dtype=torch.float64) * 2).to(dtype)
    tied = logits.round()  # exact ties at the top-k and top-p boundaries
    for x in (logits, tied):
        got = next_token_probs(x, temperature, top_k, top_p)
        assert got.dtype == dtype and got.shape == x.shape
        want = torch.stack([by_definition(row.double(), temperature, top_k, top_p) for row in x])
        if top_p is not None:  # rows where float rounding could decide the crossing token are left out
            scaled = x.double() / max(temperature, 1e-9)
            if top_k is not None:
                kth = scaled.topk(min(top_k, x.shape[-1]), dim=-1).values[:, -1:]
                scaled = scaled.masked_fill(scaled < kth, float("-inf"))
            ranked = scaled.softmax(-1).sort(-1, descending=True).values
            safe = ((ranked.cumsum(-1) - ranked - top_p).abs().min(-1).values > 1e-4) | (temperature == 0)
            got, want = got[safe], want[safe]
            assert len(got) > 20
        torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(got.sum(-1), torch.ones(got.shape[0], dtype=dtype))


def test_next_token_probs_keeps_its_input_and_the_crossing_token() -> None:
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.2], [0.3, 0.2, 0.5]]))
    copy = logits.clone()
    torch.testing.assert_close(next_token_probs(logits, top_p=0.6), torch.tensor([[0.625, 0.375, 0.0],
                                                                                  [0.375, 0.0, 0.625]]))
    torch.testing.assert_close(next_token_probs(logits, top_p=0.5), torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]))
    assert torch.equal(logits, copy)
    ties = torch.tensor([1.0, 3.0, 3.0, 0.0])
    assert next_token_probs(ties, temperature=0).tolist() == [0.0, 1.0, 0.0, 0.0], "greedy: the first largest"
    assert next_token_probs(ties, top_k=1).tolist() == [0.0, 0.5, 0.5, 0.0], "top-k keeps ties with the k-th"


# --- sample_next --------------------------------------------------------------------------------------


def chi_square_p_value(counts: torch.Tensor, probs: torch.Tensor) -> float:
    """Pearson's chi-square test of ``counts`` against ``probs`` (tokens with probability 0 left out)."""
    kept = probs > 0
    expected = probs[kept] * counts.sum()
    statistic = float(((counts[kept] - expected) ** 2 / expected).sum())
    df = int(kept.sum()) - 1
    return float(torch.special.gammaincc(torch.tensor(df / 2, dtype=torch.float64),
                                         torch.tensor(statistic / 2, dtype=torch.float64)))


@pytest.mark.parametrize(("temperature", "top_k", "top_p"), [(1.0, None, None), (0.6, None, None), (1.0, 3, None),
                                                             (1.3, None, 0.8), (1.0, 4, 0.7)])
def test_sample_next_draws_follow_the_distribution(temperature: float, top_k: int | None, top_p: float | None) -> None:
    """20,000 seeded draws of each of 3 rows: a chi-square test against next_token_probs (p > 1e-4 with a
    fixed seed: the outcome is fixed, not a flake), and never a token of probability 0."""
    logits = torch.tensor([[1.0, 0.5, 0.0, -0.5, -1.0, 0.2], [0.0, 0.1, 0.2, 2.0, -1.0, 0.3],
                           [-0.3, 0.0, 0.9, 0.4, 0.6, -2.0]])
    generator = torch.Generator().manual_seed(2026)
    many = logits.repeat(20_000, 1)  # (60000, 6): row r of logits repeated
    draws = sample_next(many, temperature, top_k, top_p, generator=generator).view(20_000, 3)
    probs = next_token_probs(logits, temperature, top_k, top_p)
    for r in range(3):
        counts = torch.bincount(draws[:, r], minlength=6).double()
        assert counts[probs[r] == 0].sum() == 0, "a token of probability 0 was drawn"
        assert chi_square_p_value(counts, probs[r].double()) > 1e-4, (r, counts, probs[r])


def test_the_chi_square_test_can_fail() -> None:
    probs = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    assert chi_square_p_value(torch.tensor([5000.0, 3000.0, 2000.0]), probs) > 0.99
    assert chi_square_p_value(torch.tensor([5300.0, 2800.0, 1900.0]), probs) < 1e-4


def test_sample_next_is_reproducible_and_shaped_like_the_rows() -> None:
    logits = torch.randn(2, 3, 7)
    a = sample_next(logits, top_p=0.9, generator=torch.Generator().manual_seed(1))
    b = sample_next(logits, top_p=0.9, generator=torch.Generator().manual_seed(1))
    assert a.dtype == torch.long and a.shape == (2, 3) and torch.equal(a, b)
    want = torch.multinomial(next_token_probs(logits, top_p=0.9).view(6, 7), 1,
                             generator=torch.Generator().manual_seed(1)).view(2, 3)
    assert torch.equal(a, want)
    assert sample_next(logits[0, 0], generator=torch.Generator().manual_seed(1)).shape == ()
    assert torch.equal(sample_next(logits, temperature=0), logits.argmax(-1))


# --- induction_score ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "period"), [(8, 4), (9, 3), (5, 1), (7, 6)])
def test_induction_score_is_the_mean_of_its_stripe(n: int, period: int) -> None:
    weights = torch.softmax(torch.randn(2, 3, n, n, dtype=torch.float64), dim=-1)
    plain = torch.stack([weights[..., i, i - period + 1] for i in range(period, n)], dim=-1).mean(-1)
    stripe = torch.diagonal(weights, offset=1 - period, dim1=-2, dim2=-1)[..., 1:]  # TransformerLens's stripe
    got = induction_score(weights, period)
    assert got.shape == (2, 3) and got.dtype == torch.float64
    torch.testing.assert_close(got, plain)
    torch.testing.assert_close(got, stripe.mean(-1))


# --- the model: RoPE, cached decoding, windows --------------------------------------------------------


def test_the_models_rotation_is_chapter_3s_rope() -> None:
    x = np.random.default_rng(0).standard_normal((2, 11, 8))
    got = tg.rotate(torch.from_numpy(x), tg.rope_table(11, 8).double()).numpy()
    np.testing.assert_allclose(got, apply_rope(x, np.arange(11)), atol=1e-6)


def test_recorded_weights_reproduce_the_attention_output() -> None:
    """The weights the page shows are the ones the GQA used: weights @ values gives its output."""
    torch.manual_seed(0)
    attn = tg.Attention(16, 4, 2, 64, window=3).double().eval()
    x = torch.randn(2, 6, 16, dtype=torch.float64)
    attn.record = True
    with torch.no_grad():
        out, _ = attn(x, start=5)
        v = attn.gqa.v_proj(x).unflatten(-1, (2, 4)).transpose(1, 2).repeat_interleave(2, dim=1)
        mixed = (attn.weights @ v).transpose(1, 2).flatten(-2)
        torch.testing.assert_close(attn.gqa.out_proj(mixed), out)
    assert torch.all(attn.weights.masked_select(~sliding_window_mask(6, 6, 3)) == 0)


@pytest.mark.parametrize("window", [None, 1, 4])
@pytest.mark.parametrize("d_ff", [0, 32])
def test_cached_and_uncached_decoding_give_the_same_tokens(window: int | None, d_ff: int) -> None:
    torch.manual_seed(1)
    model = tg.TinyGPT(tg.GPTConfig(vocab=11, d_model=16, n_heads=4, n_kv_heads=2, n_layers=2, d_ff=d_ff,
                                    window=window, max_positions=64)).eval()
    with torch.no_grad():
        model.out.weight.mul_(6)  # confident logits: few near-ties for greedy decoding
    prompt = torch.randint(0, 11, (3, 6), generator=torch.Generator().manual_seed(0))  # longer than the window
    for rule in ({"temperature": 0.0}, {"temperature": 1.0, "top_p": 0.9}):
        runs = [tg.generate(model, prompt, 20, use_cache=c, generator=torch.Generator().manual_seed(3), **rule)
                for c in (True, False)]
        assert runs[0].shape == (3, 26) and torch.equal(runs[0][:, :6], prompt)
        assert torch.equal(*runs), (window, d_ff, rule)


def test_the_rolling_cache_stops_growing_at_the_window() -> None:
    config = tg.GPTConfig(vocab=11, d_model=16, n_heads=4, n_kv_heads=2, n_layers=3, window=5, max_positions=64)
    model = tg.TinyGPT(config).eval()
    sizes, lengths = [], []
    tg.generate(model, torch.zeros(1, 2, dtype=torch.long), 12, temperature=0.0,
                on_step=lambda caches: (sizes.append(tg.cache_nbytes(caches)), lengths.append(caches[0][0].shape[2])))
    assert lengths == [min(n, 5) for n in range(3, 15)]
    assert sizes == [kv_cache_bytes(1, min(n, 5), 3, 2, 4, 4) for n in range(3, 15)]


@pytest.mark.parametrize(("n_layers", "window"), [(1, 4), (2, 4), (3, 2), (2, 16), (2, None)])
def test_receptive_field_from_the_masks_and_from_gradients(n_layers: int, window: int | None) -> None:
    n = 40
    want = n - 1 if window is None else min(n - 1, n_layers * (window - 1))
    assert tg.receptive_field(n_layers, window, n) == want
    torch.manual_seed(n_layers)
    model = tg.TinyGPT(tg.GPTConfig(vocab=9, d_model=16, n_heads=2, n_kv_heads=2, n_layers=n_layers, d_ff=16,
                                    window=window, max_positions=64))
    assert tg.gradient_reach(model, torch.randint(0, 9, (1, n))) == want


def test_ablating_a_head_zeroes_its_share_of_the_output() -> None:
    torch.manual_seed(0)
    model = tg.TinyGPT(tg.GPTConfig(vocab=9, d_model=16, n_heads=2, n_kv_heads=2, n_layers=1, max_positions=32))
    tokens = torch.randint(0, 9, (2, 10))
    with torch.no_grad():
        full = model(tokens)[0]
        with tg.ablated(model, {(0, 0), (0, 1)}):
            silent = model(tokens)[0]
        with tg.ablated(model, {(0, 1)}):
            half = model(tokens)[0]
        embedded = model.out(model.norm(model.embed(tokens)))  # the attention block adds nothing
    torch.testing.assert_close(silent, embedded)
    assert not torch.allclose(half, full) and not torch.allclose(half, silent)
    torch.testing.assert_close(model(tokens)[0], full)  # switched back on afterwards


def test_helpers_of_the_page() -> None:
    assert tg.repeating_period("x" * 50 + "abc" * 60) == 3
    assert tg.repeating_period("".join(np.random.default_rng(0).choice(list("abcdef"), 300))) is None
    assert tg.phase_change_step([5.0] * 20 + [0.1] * 20, 1.0, smooth=10) == 29  # 9 of the last 10 are low
    assert tg.phase_change_step([5.0] * 40, 1.0) is None
    assert tg.words("The KV-cache, 2 times") == ["the", "kv", "cache", "times"]
    text = tg.course_text()
    assert len(text) > 10_000 and "attention" in text
    chars = tg.Chars.of(text)
    assert chars.decode(chars.encode(text[:500])) == text[:500]


# --- induction heads, trained -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def induction() -> dict:
    two, one = tg.trained_induction(2), tg.trained_induction(1)
    evaluation = tg.eval_batch()
    return {"two": two, "one": one, "eval": evaluation,
            "scores": tg.head_scores(two.model, evaluation), "control": tg.head_scores(one.model, evaluation)}


def test_two_layers_learn_an_induction_head_and_one_layer_does_not(induction: dict) -> None:
    scores, control = induction["scores"], induction["control"]
    assert scores["induction"][1].max() >= tg.INDUCTION_THRESHOLD
    assert control["induction"].max() < tg.INDUCTION_THRESHOLD
    previous, ind = tg.named_heads(scores)
    assert scores["previous"][previous] >= 0.5, "the first layer has a previous-token head"
    level = tg.copy_level()
    assert tg.phase_change_step(induction["two"].losses["repeat"], level) is not None
    assert tg.phase_change_step(induction["one"].losses["repeat"], level) is None
    assert tg.copy_metrics(induction["two"].model, induction["eval"])["acc_repeat"] > 0.95
    assert tg.copy_metrics(induction["one"].model, induction["eval"])["acc_repeat"] < 0.5


def test_switching_off_the_previous_token_head_stops_the_copying(induction: dict) -> None:
    two, evaluation = induction["two"], induction["eval"]
    previous, ind = tg.named_heads(induction["scores"])
    with tg.ablated(two.model, {previous}):
        assert tg.copy_metrics(two.model, evaluation)["acc_repeat"] < 0.5
    with tg.ablated(two.model, {(1, 0), (1, 1)}):
        assert tg.copy_metrics(two.model, evaluation)["acc_repeat"] < 0.5
    with tg.ablated(two.model, {(0, 1 - previous[1])}):
        assert tg.copy_metrics(two.model, evaluation)["acc_repeat"] > 0.9


def test_before_training_no_head_is_an_induction_head(induction: dict) -> None:
    before = tg.head_scores(induction["two"].initial_model(), induction["eval"])
    assert before["induction"].max() < 0.2
    assert math.isclose(induction["two"].losses["repeat"][0], math.log(64), abs_tol=0.5)


def test_induction_benchmark_quick_run_prints_its_table(capsys) -> None:
    from benchmarks import induction

    rows = induction.main(["--quick"])
    out = capsys.readouterr().out.splitlines()
    assert [r.seed for r in rows] == [0, 1] and all(r.seconds > 0 for r in rows)
    assert all(0 <= r.induction <= 1 and 0 <= r.control_accuracy <= 1 for r in rows)
    assert out[1].split()[:2] == ["seed", "phase"] and out[-1].endswith("none in one")
    assert out[-1].startswith(f"{sum(r.induction >= tg.INDUCTION_THRESHOLD > r.control_induction for r in rows)} of 2")
