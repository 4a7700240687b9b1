"""The performance labs' benchmarks: their correctness checks, and their tables/CSVs in ``--quick`` mode.

The quick runs measure nothing worth reporting; they check that each benchmark runs from its command,
that the numbers it writes are physically sensible (naive attention holds the ``n x n`` weights, a KV
cache shrinks with the key/value heads) and that the GPU-only benchmark skips with one clear line here.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import math

import pytest
import torch

from benchmarks import attention, flash_triton, gqa_decode
from solutions import GroupedQueryAttention

pytestmark = pytest.mark.ch6


def read_csv(path):
    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


# --- benchmarks/attention.py ----------------------------------------------------------------------------


def test_the_three_attentions_agree_with_each_other():
    assert attention.check_agreement(batch=1, heads=2, head_dim=16, block_size=32, dtype=torch.float32,
                                     device="cpu", seq_len=77) < 1e-5


def test_naive_attention_is_softmax_of_scaled_scores():
    Q, K, V = attention.make_inputs(5, 1, 1, 4, torch.float64, "cpu")
    expected = torch.softmax(Q @ K.transpose(-2, -1) / 2.0, dim=-1) @ V
    torch.testing.assert_close(attention.naive_attention(Q, K, V), expected)


def _row(method: str, n: int, time_ms: float, peak_mib: float) -> attention.Row:
    return attention.Row(device="CPU: test", date="d", method=method, seq_len=n, batch=1, heads=4, head_dim=64,
                         dtype="float32", block_size=128, time_ms=time_ms, repeats=1, peak_mib=peak_mib,
                         peak_tensor_mib=peak_mib, mem_method="m")


def test_summary_judges_the_targets_at_the_longest_length():
    rows = [_row("naive", 8, 1.0, 1.0), _row("tiled", 8, 100.0, 100.0),  # shorter n: ignored
            _row("naive", 16, 10.0, 1000.0), _row("tiled", 16, 15.0, 20.0), _row("sdpa", 16, 1.0, 5.0)]
    text = "\n".join(attention.summary(rows))
    assert "tiled peak memory = 2.00% of naive (target < 5%: met)" in text
    assert "tiled time = 1.50x naive (target <= 2x: met)" in text
    assert "sdpa time = 0.10x naive" in text
    rows[3] = _row("tiled", 16, 25.0, 60.0)
    text = "\n".join(attention.summary(rows))
    assert "6.00% of naive (target < 5%: NOT met)" in text
    assert "2.50x naive (target <= 2x: NOT met)" in text


@pytest.mark.slow
def test_attention_quick_run_prints_table_and_writes_csv_and_png(tmp_path, capsys):
    rows = attention.main(["--quick", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert out.startswith("# CPU: ")
    table = [line.split() for line in out.splitlines() if line.split()[:1] and line.split()[0] in attention.METHODS]
    assert sorted((t[0], int(t[1])) for t in table) == sorted(
        (m, n) for m in attention.METHODS for n in attention.QUICK_LENGTHS)
    assert "tiled peak memory" in out and "tiled time" in out

    written = read_csv(tmp_path / "attention_cpu.csv")
    assert [r["method"] for r in written] == [r.method for r in rows]
    assert list(written[0]) == [f.name for f in dataclasses.fields(attention.Row)]
    for r in written:
        assert r["device"].startswith("CPU: ")
        dt.datetime.strptime(r["date"], "%Y-%m-%d %H:%M UTC")
        assert float(r["time_ms"]) > 0 and int(r["repeats"]) >= 1
        assert r["heads"] == "2" and r["head_dim"] == "64" and r["dtype"] == "float32"
    # Naive attention holds the scores and the weights: two (heads, n, n) float32 tensors at once.
    n = max(attention.QUICK_LENGTHS)
    by = {(r["method"], int(r["seq_len"])): r for r in written}
    weights_mib = 2 * n * n * 4 / 2**20
    assert float(by["naive", n]["peak_tensor_mib"]) >= 2 * weights_mib * 0.99
    assert float(by["tiled", n]["peak_tensor_mib"]) < float(by["naive", n]["peak_tensor_mib"]) / 2
    assert float(by["naive", n]["peak_mib"]) >= weights_mib  # the RSS measure sees at least one n x n tensor

    png = (tmp_path / "attention_cpu.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


# --- benchmarks/gqa_decode.py ---------------------------------------------------------------------------


@pytest.mark.parametrize("n_kv_heads", [4, 2, 1])
def test_grouped_decode_step_matches_the_course_forward(n_kv_heads):
    model = GroupedQueryAttention(32, 4, n_kv_heads).double().eval()
    k, v = gqa_decode.random_cache(2, n_kv_heads, 9, 8, torch.float64, "cpu")
    x = torch.randn(2, 1, 32, dtype=torch.float64)
    k_buf = torch.zeros(2, n_kv_heads, 12, 8, dtype=torch.float64)
    v_buf = torch.zeros_like(k_buf)
    k_buf[:, :, :9], v_buf[:, :, :9] = k, v
    with torch.no_grad():
        expected, (k_new, v_new) = model(x, kv_cache=(k, v))
        got = gqa_decode.grouped_decode_step(model, x, k_buf, v_buf, 9)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(k_buf[:, :, :10], k_new)
    torch.testing.assert_close(v_buf[:, :, :10], v_new)


def test_variant_names():
    assert [gqa_decode.variant_name(8, k) for k in (8, 2, 1)] == ["MHA", "GQA-2", "MQA"]


def test_measured_bandwidth_is_plausible():
    bandwidth = gqa_decode.measure_bandwidth("cpu", 16 * 2**20)
    assert 1e8 < bandwidth < 1e13  # between 0.1 GB/s and 10 TB/s


def test_gqa_quick_run_prints_table_and_writes_csv(tmp_path, capsys):
    rows = gqa_decode.main(["--quick", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "measured copy bandwidth" in out
    assert [r.variant for r in rows] == ["MHA", "GQA-2", "MQA"]
    for variant in ("MHA", "GQA-2", "MQA"):
        assert any(line.split()[:1] == [variant] for line in out.splitlines())
    written = read_csv(tmp_path / "gqa_decode_cpu.csv")
    assert list(written[0]) == [f.name for f in dataclasses.fields(gqa_decode.DecodeRow)]
    mha, gqa, mqa = (float(r["kv_cache_mib"]) for r in written)
    # batch 1 x context 512 x 8 heads x head_dim 32 x 2 (K and V) x 4 bytes = 1 MiB, then / 4 and / 8.
    assert (mha, gqa, mqa) == (1.0, 0.25, 0.125)
    for r in written:
        assert float(r["ms_per_token"]) > 0 and float(r["grouped_ms_per_token"]) > 0
        bound = float(r["kv_cache_mib"]) * 2**20 / (float(r["bandwidth_gb_s"]) * 1e9) * 1e3
        assert math.isclose(float(r["bound_ms"]), bound, rel_tol=1e-3)
        assert r["device"].startswith("CPU: ")


# --- benchmarks/flash_triton.py -------------------------------------------------------------------------


def test_flash_benchmark_prints_one_skip_line_without_cuda(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert flash_triton.main(["--out", str(tmp_path)]) == []
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("flash_triton benchmark skipped: no CUDA device")
    assert not list(tmp_path.iterdir())


FLASH_SKIP = flash_triton.skip_reason()


@pytest.mark.gpu
@pytest.mark.skipif(FLASH_SKIP is not None, reason=f"needs CUDA and Triton: {FLASH_SKIP}")
def test_flash_benchmark_quick_on_gpu(tmp_path):
    rows = flash_triton.main(["--quick", "--out", str(tmp_path)])
    assert len(rows) == 2 and all(r["triton_tflops"] > 0 and r["max_abs_diff"] < 5e-2 for r in rows)
    assert len(read_csv(tmp_path / "flash_triton_cuda.csv")) == 2
