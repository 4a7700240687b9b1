"""Tests of the helpers behind the optional GPU cells and the measured figures of chapters 4-6.

``course.gpu`` (skip message, device label, CUDA timing), ``course.measure`` (CPU time and peak tensor
memory) and ``course.kvcache`` (the Llama-2 shapes of chapter 5). The CUDA-only checks skip with a
reason when no GPU is present; every other check runs everywhere.
"""

from __future__ import annotations

import time

import pytest
import torch

from course import gpu, kvcache, measure

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


# --- course.gpu -----------------------------------------------------------------------------------


def test_skip_prints_exactly_one_line_and_returns_false_without_cuda(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu.cuda_available_or_skip("the decode-step timing") is False
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("GPU cell skipped: no CUDA device (")
    assert "the decode-step timing" in lines[0]


def test_skip_is_silent_and_true_with_cuda(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert gpu.cuda_available_or_skip("anything") is True
    assert capsys.readouterr() == ("", "")


def test_cuda_helpers_refuse_to_run_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="cuda_available_or_skip"):
        gpu.cuda_time_ms(lambda: None)
    with pytest.raises(RuntimeError, match="cuda_available_or_skip"):
        gpu.cuda_peak_bytes(lambda: None)


def test_cpu_device_label_names_the_cpu_threads_and_torch():
    label = gpu.device_label("cpu")
    assert label.startswith("CPU: ")
    assert f"torch {torch.__version__}" in label
    assert f"{torch.get_num_threads()} thread" in label
    assert "\n" not in label


def test_default_device_label_follows_cuda_availability(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu.device_label().startswith("CPU: ")


@pytest.mark.gpu
@requires_cuda
def test_cuda_label_time_and_peak_memory_on_a_real_gpu():
    assert torch.cuda.get_device_name() in gpu.device_label("cuda")
    x = torch.randn(2048, 2048, device="cuda")
    small = gpu.cuda_time_ms(lambda: x[:64, :64] @ x[:64, :64], repeat=5)
    big = gpu.cuda_time_ms(lambda: x @ x @ x @ x, repeat=5)
    assert 0 < small < big
    nbytes = 4096 * 4096 * 4
    assert nbytes <= gpu.cuda_peak_bytes(lambda: torch.empty(4096, 4096, device="cuda")) < 2 * nbytes


# --- course.measure -------------------------------------------------------------------------------


def test_cpu_time_reports_milliseconds():
    ms = measure.cpu_time_ms(lambda: time.sleep(0.02), warmup=0, repeat=3)
    assert 20 <= ms < 1000


def test_cpu_time_rejects_zero_repeats():
    with pytest.raises(ValueError):
        measure.cpu_time_ms(lambda: None, repeat=0)


def test_cpu_peak_counts_the_tensors_a_call_allocates():
    nbytes = 1000 * 1000 * 4
    peak = measure.cpu_peak_bytes(lambda: torch.ones(1000, 1000))
    assert nbytes <= peak < nbytes * 1.05


def test_cpu_peak_sees_temporaries_freed_before_return():
    n = 1000

    def two_matrices_then_a_scalar():
        a = torch.ones(n, n)
        b = a * 2  # both alive here: 2 * n^2 floats
        return (a.sum() + b.sum()).item()

    assert measure.cpu_peak_bytes(two_matrices_then_a_scalar) >= 2 * n * n * 4


def test_cpu_peak_ignores_tensors_allocated_before_the_call():
    existing = torch.ones(2000, 2000)  # 16 MB that the call only reads
    assert measure.cpu_peak_bytes(lambda: existing[0, :10].clone()) < 1_000_000


def test_naive_attention_peak_grows_quadratically():
    def naive(n: int) -> int:
        q = torch.randn(1, 1, n, 32)
        return measure.cpu_peak_bytes(lambda: torch.softmax(q @ q.transpose(-1, -2), -1) @ q)

    small, large = naive(256), naive(1024)
    assert large > 10 * small  # 16x the n^2 matrix; the O(n) parts are negligible
    assert large >= 1024 * 1024 * 4


def test_time_and_peak_dispatch_to_the_cpu_helpers():
    assert measure.time_ms(lambda: None, "cpu", warmup=0, repeat=1) >= 0
    assert measure.peak_bytes(lambda: torch.zeros(100), "cpu") >= 400


# --- course.kvcache -------------------------------------------------------------------------------


def test_llama2_shapes_match_the_published_configs():
    assert (kvcache.LLAMA2_7B.d_model, kvcache.LLAMA2_7B.n_layers, kvcache.LLAMA2_7B.kind) == (4096, 32, "MHA")
    assert (kvcache.LLAMA2_70B.d_model, kvcache.LLAMA2_70B.n_layers) == (8192, 80)
    assert kvcache.LLAMA2_70B.kind == "GQA-8"
    for config in (kvcache.LLAMA2_7B, kvcache.LLAMA2_70B):
        assert config.head_dim == 128
        assert "config.json" in config.source


def test_variants_go_from_mha_to_mqa():
    kinds_7b = [c.kind for c in kvcache.attention_variants(kvcache.LLAMA2_7B)]
    kinds_70b = [c.kind for c in kvcache.attention_variants(kvcache.LLAMA2_70B)]
    assert kinds_7b == ["MHA", "GQA-8", "MQA"]
    assert kinds_70b == ["MHA", "GQA-8", "MQA"]
    assert [c.n_kv_heads for c in kvcache.attention_variants(kvcache.LLAMA2_70B)] == [64, 8, 1]
    assert all(c.n_heads == 64 for c in kvcache.attention_variants(kvcache.LLAMA2_70B))


def test_config_rejects_heads_that_do_not_group():
    with pytest.raises(ValueError, match="multiple"):
        kvcache.LLAMA2_7B.with_kv_heads(5)
    with pytest.raises(ValueError, match=">= 1"):
        kvcache.LLAMA2_7B.with_kv_heads(0)


# --- the rule for GPU cells in the reading pages --------------------------------------------------


def _code_cells(markdown: str) -> list[str]:
    """Source of every ``{code-cell}`` of a MyST notebook page (tags and options dropped)."""
    cells = []
    for block in markdown.split("```{code-cell}")[1:]:
        source = block.split("\n```", 1)[0].split("\n", 1)[1]
        cells.append("\n".join(line for line in source.splitlines() if not line.startswith(":")))
    return cells


def _unguarded_cuda_lines(cell: str) -> list[str]:
    """Lines that name the "cuda" device outside an ``if ...cuda_available_or_skip(...):`` block."""
    lines = cell.splitlines()
    guard = next((i for i, line in enumerate(lines)
                  if line.startswith("if ") and "cuda_available_or_skip(" in line), None)
    return [line for i, line in enumerate(lines)
            if ('"cuda"' in line or "'cuda'" in line)
            and (guard is None or i <= guard or not line[:1].isspace())]


def test_code_cells_and_unguarded_lines_are_found():
    page = ("text\n```{code-cell} ipython3\n:tags: [remove-input]\n\nx = 1\n```\n"
            "more\n```{code-cell} ipython3\ny = 2\n```\n")
    assert [c.strip() for c in _code_cells(page)] == ["x = 1", "y = 2"]
    assert _unguarded_cuda_lines('t = torch.ones(2, device="cuda")') == ['t = torch.ones(2, device="cuda")']
    guarded = 'from course.gpu import cuda_available_or_skip\nif cuda_available_or_skip("x"):\n    f("cuda")'
    assert _unguarded_cuda_lines(guarded) == []
    assert _unguarded_cuda_lines(guarded + '\nf("cuda")') == ['f("cuda")']


def test_every_cuda_cell_of_the_reading_pages_is_guarded():
    """Work on "cuda" in a reading page only runs under ``if cuda_available_or_skip(...):``."""
    from pathlib import Path

    pages = sorted((Path(__file__).resolve().parent.parent / "book").glob("ch*.md"))
    assert pages, "no reading pages found"
    unguarded = [f"{page.name}: {line.strip()}"
                 for page in pages
                 for cell in _code_cells(page.read_text(encoding="utf-8"))
                 for line in _unguarded_cuda_lines(cell)]
    assert unguarded == []
