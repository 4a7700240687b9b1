"""Naive vs tiled vs PyTorch attention: forward time and peak memory against sequence length, in one run.

    python benchmarks/attention.py              # n = 512 ... 16384, d = 64, 4 heads (CPU: about 2-3 min, 2 cores)
    python benchmarks/attention.py --quick      # a tiny smoke run (what the tests use)

Three implementations of the same exact attention, ``softmax(Q K^T / sqrt(d)) V``:

- ``naive``: materialises the ``(heads, n, n)`` scores and weights (chapter 2's recipe);
- ``tiled``: the course's :func:`solutions.tiled_attention` (chapter 6), never more than a
  ``(block_size, block_size)`` score tile per head;
- ``sdpa``: :func:`torch.nn.functional.scaled_dot_product_attention`, PyTorch's fused kernel.

How it is measured (say it beside every figure):

- CPU: every (method, n) runs in a fresh Python subprocess. After the inputs exist and one small warm-up
  call has run, the process's peak resident set size (``VmHWM``) is reset through
  ``/proc/self/clear_refs``; the peak RSS reached by the forward call above the RSS before it is
  ``peak_mib`` (tracemalloc cannot see torch's allocations). ``peak_tensor_mib`` is a second, independent
  measure: the largest total of live tensor bytes recorded by the PyTorch profiler during the call.
  Time is the median of ``time.perf_counter`` over repeated calls (one call when a call takes > 1 s).
- CUDA: in-process; time is the median of CUDA-event timings, memory is
  ``torch.cuda.max_memory_allocated`` above what was allocated before the call (both columns).

Prints a table and a summary against the targets, and writes ``attention_<cpu|cuda>.csv`` and ``.png`` to
``benchmarks/results/`` (or ``--out``); each CSV row names the device and the date.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import math
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from course.measure import write_rows_csv
from solutions import tiled_attention

RESULTS = Path(__file__).resolve().parent / "results"
METHODS = ("naive", "tiled", "sdpa")
FULL_LENGTHS = (512, 1024, 2048, 4096, 8192, 16384)
QUICK_LENGTHS = (256, 512)
MIB = 2**20
CPU_MEM_METHOD = "peak RSS delta in a fresh subprocess (VmHWM reset); tensor peak from torch.profiler"
CUDA_MEM_METHOD = "torch.cuda.max_memory_allocated delta"


@dataclass
class Row:
    """One measurement: one method at one sequence length (a CSV row)."""

    device: str
    date: str
    method: str
    seq_len: int
    batch: int
    heads: int
    head_dim: int
    dtype: str
    block_size: int
    time_ms: float
    repeats: int
    peak_mib: float
    peak_tensor_mib: float
    mem_method: str


def naive_attention(Q: torch.Tensor, K: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
    """Textbook attention that materialises the weights.

    ``Q, K, V: (batch, heads, n, d)`` -> ``(batch, heads, n, d)``.
    """
    scores = (Q * (1.0 / math.sqrt(Q.shape[-1]))) @ K.transpose(-2, -1)  # (batch, heads, n, n)
    weights = torch.softmax(scores, dim=-1)  # a second (batch, heads, n, n) tensor
    return weights @ V


def attention_fn(method: str, block_size: int) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
    """The forward function named ``method`` (one of :data:`METHODS`)."""
    if method == "naive":
        return naive_attention
    if method == "tiled":
        return lambda Q, K, V: tiled_attention(Q, K, V, block_size=block_size)
    if method == "sdpa":
        return F.scaled_dot_product_attention
    raise ValueError(f"unknown method {method!r}; choose from {METHODS}")


def make_inputs(
    seq_len: int, batch: int, heads: int, head_dim: int, dtype: torch.dtype, device: str, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random ``Q, K, V``, each ``(batch, heads, seq_len, head_dim)``."""
    gen = torch.Generator().manual_seed(seed)
    shape = (batch, heads, seq_len, head_dim)
    return tuple(torch.randn(shape, generator=gen).to(device=device, dtype=dtype) for _ in range(3))


def check_agreement(
    batch: int, heads: int, head_dim: int, block_size: int, dtype: torch.dtype, device: str, seq_len: int = 300
) -> float:
    """Largest |difference| of ``tiled`` and ``sdpa`` from ``naive`` on one input; raises if they disagree."""
    Q, K, V = make_inputs(seq_len, batch, heads, head_dim, dtype, device, seed=1)
    with torch.inference_mode():
        ref = naive_attention(Q, K, V).float()
        err = max((attention_fn(m, block_size)(Q, K, V).float() - ref).abs().max().item() for m in METHODS[1:])
    tol = 1e-4 if dtype == torch.float32 else 2e-2
    if not err <= tol:
        raise AssertionError(f"tiled/sdpa differ from naive attention by {err:.2e} (> {tol:.0e}) at n={seq_len}")
    return err


# --- measuring on the CPU, one fresh subprocess per measurement -----------------------------------------------


def _proc_status_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak_rss() -> bool:
    """Reset this process's peak RSS (``VmHWM``) to its current RSS; False where the kernel refuses."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def measure_cpu_here(
    method: str, seq_len: int, batch: int, heads: int, head_dim: int, block_size: int, threads: int | None = None
) -> dict:
    """Time and peak memory of one forward call in *this* process (run it in a fresh one: see module doc)."""
    from course.measure import cpu_peak_bytes

    if threads:
        torch.set_num_threads(threads)
    fn = attention_fn(method, block_size)
    Q, K, V = make_inputs(seq_len, batch, heads, head_dim, torch.float32, "cpu")
    with torch.inference_mode():
        fn(*make_inputs(min(seq_len, 256), batch, heads, head_dim, torch.float32, "cpu"))  # warm-up: threads, code
        gc.collect()
        rss_reset = _reset_peak_rss()
        rss_before = _proc_status_kib("VmRSS")
        start = time.perf_counter()
        out = fn(Q, K, V)
        times = [time.perf_counter() - start]
        peak_rss_kib = _proc_status_kib("VmHWM") - rss_before
        del out
        while sum(times) < 1.0 and len(times) < 5:
            start = time.perf_counter()
            fn(Q, K, V)
            times.append(time.perf_counter() - start)
        peak_tensor = cpu_peak_bytes(lambda: fn(Q, K, V))
    return {
        "time_ms": statistics.median(times) * 1e3,
        "repeats": len(times),
        "peak_mib": peak_rss_kib / 1024 if rss_reset else float("nan"),
        "peak_tensor_mib": peak_tensor / MIB,
    }


def measure_cpu(
    method: str, seq_len: int, batch: int, heads: int, head_dim: int, block_size: int, threads: int | None = None
) -> dict:
    """:func:`measure_cpu_here` in a fresh Python subprocess, so no earlier allocation hides this one's peak."""
    job = {"method": method, "seq_len": seq_len, "batch": batch, "heads": heads, "head_dim": head_dim,
           "block_size": block_size, "threads": threads}
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(job)],
        capture_output=True, text=True, check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"measuring {job} failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure_cuda(method: str, seq_len: int, batch: int, heads: int, head_dim: int, block_size: int,
                 dtype: torch.dtype) -> dict:
    """Time (CUDA events) and ``max_memory_allocated`` peak of one forward call on the current GPU."""
    from course.gpu import cuda_peak_bytes, cuda_time_ms

    fn = attention_fn(method, block_size)
    Q, K, V = make_inputs(seq_len, batch, heads, head_dim, dtype, "cuda")
    with torch.inference_mode():
        peak = cuda_peak_bytes(lambda: fn(Q, K, V))
        repeat = 3 if method == "tiled" and seq_len >= 8192 else 10
        ms = cuda_time_ms(lambda: fn(Q, K, V), warmup=1, repeat=repeat)
    return {"time_ms": ms, "repeats": repeat, "peak_mib": peak / MIB, "peak_tensor_mib": peak / MIB}


# --- the run: table, CSV, plot -----------------------------------------------------------------------------


def run(lengths: tuple[int, ...], batch: int, heads: int, head_dim: int, block_size: int, device: str,
        methods: tuple[str, ...] = METHODS) -> list[Row]:
    """Measure every method at every length on ``device`` (``"cpu"`` or ``"cuda"``), printing rows as they come."""
    from course.gpu import device_label

    dtype = torch.float32 if device == "cpu" else torch.float16
    label = device_label(device)
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    err = check_agreement(batch, heads, head_dim, block_size, dtype, device)
    print(f"# {label}; {date}")
    print(f"# batch={batch} heads={heads} head_dim={head_dim} dtype={str(dtype).removeprefix('torch.')} "
          f"tiled block_size={block_size}; outputs agree with naive within {err:.1e}")
    print(f"# memory: {CPU_MEM_METHOD if device == 'cpu' else CUDA_MEM_METHOD}")
    print(f"{'method':>6} {'n':>6} {'time ms':>10} {'peak MiB':>10} {'tensor MiB':>10}")
    rows = []
    for seq_len in lengths:
        for method in methods:
            if device == "cpu":
                got = measure_cpu(method, seq_len, batch, heads, head_dim, block_size, torch.get_num_threads())
            else:
                got = measure_cuda(method, seq_len, batch, heads, head_dim, block_size, dtype)
            row = Row(device=label, date=date, method=method, seq_len=seq_len, batch=batch, heads=heads,
                      head_dim=head_dim, dtype=str(dtype).removeprefix("torch."), block_size=block_size,
                      mem_method=CPU_MEM_METHOD if device == "cpu" else CUDA_MEM_METHOD, **got)
            rows.append(row)
            print(f"{method:>6} {seq_len:>6} {row.time_ms:>10.1f} {row.peak_mib:>10.1f} {row.peak_tensor_mib:>10.1f}",
                  flush=True)
    return rows


def summary(rows: list[Row]) -> list[str]:
    """Lines comparing tiled (and sdpa) with naive at the longest sequence, against the course's CPU targets."""
    n = max(r.seq_len for r in rows)
    at = {r.method: r for r in rows if r.seq_len == n}
    if "naive" not in at or "tiled" not in at:
        return []
    naive, tiled = at["naive"], at["tiled"]
    mem = tiled.peak_mib / naive.peak_mib
    slow = tiled.time_ms / naive.time_ms
    lines = [
        f"at n={n}: tiled peak memory = {100 * mem:.2f}% of naive (target < 5%: {'met' if mem < 0.05 else 'NOT met'})",
        f"at n={n}: tiled time = {slow:.2f}x naive (target <= 2x: {'met' if slow <= 2 else 'NOT met'})",
    ]
    if "sdpa" in at:
        sdpa = at["sdpa"]
        lines.append(f"at n={n}: sdpa time = {sdpa.time_ms / naive.time_ms:.2f}x naive, "
                     f"peak memory = {100 * sdpa.peak_mib / naive.peak_mib:.2f}% of naive")
    return lines


def write_csv(rows: list[Row], path: Path) -> None:
    """One line per :class:`Row`, with a header of the field names."""
    write_rows_csv(rows, Row, path)


def plot(rows: list[Row], path: Path) -> None:
    """Two log-log panels, forward time and peak memory against n, one line per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullLocator

    styles = {"naive": ("tab:red", "o"), "tiled": ("tab:blue", "s"), "sdpa": ("tab:green", "^")}
    names = {"naive": "naive (materialised weights)", "tiled": f"tiled_attention (block {rows[0].block_size})",
             "sdpa": "PyTorch SDPA"}
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(10, 4.2))
    for method in dict.fromkeys(r.method for r in rows):
        mine = sorted((r for r in rows if r.method == method), key=lambda r: r.seq_len)
        color, marker = styles.get(method, ("black", "x"))
        n = [r.seq_len for r in mine]
        ax_t.plot(n, [r.time_ms for r in mine], marker=marker, color=color, label=names.get(method, method))
        ax_m.plot(n, [r.peak_mib for r in mine], marker=marker, color=color, label=names.get(method, method))
    lengths = sorted({r.seq_len for r in rows})
    for ax, ylabel in ((ax_t, "forward time (ms)"), (ax_m, "peak memory (MiB)")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticks(lengths, [str(n) for n in lengths], fontsize=8)
        ax.set_xlabel("sequence length n")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
    ax_t.legend(fontsize=8)
    r0 = rows[0]
    fig.suptitle(f"batch {r0.batch}, {r0.heads} heads, head_dim {r0.head_dim}, {r0.dtype} - {r0.device}, {r0.date}",
                 fontsize=9)
    ax_m.set_title("CPU: peak RSS above the inputs" if r0.dtype == "float32" and r0.device.startswith("CPU")
                   else "max_memory_allocated above the inputs", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke run: n = 256, 512, 2 heads")
    parser.add_argument("--lengths", type=int, nargs="+", help="sequence lengths (default 512 ... 16384)")
    parser.add_argument("--heads", type=int, help="heads (default 4; --quick: 2)")
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--block-size", type=int, default=128, help="tiled_attention's block_size (default 128)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the CSV and PNG")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # internal: one CPU measurement, JSON in and out
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    if args.worker:
        print(json.dumps(measure_cpu_here(**json.loads(args.worker))))
        return []
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    if device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but torch.cuda.is_available() is False")
    lengths = tuple(args.lengths or (QUICK_LENGTHS if args.quick else FULL_LENGTHS))
    heads = args.heads or (2 if args.quick else 4)

    start = time.perf_counter()
    rows = run(lengths, args.batch, heads, args.head_dim, args.block_size, device, tuple(args.methods))
    for line in summary(rows):
        print(line)
    csv_path, png_path = args.out / f"attention_{device}.csv", args.out / f"attention_{device}.png"
    write_csv(rows, csv_path)
    plot(rows, png_path)
    print(f"wrote {csv_path} and {png_path} ({time.perf_counter() - start:.0f} s in all)")
    return rows


if __name__ == "__main__":
    main()
