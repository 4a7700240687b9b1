"""Small, honest measurements for the figures of chapters 4-6: wall time and peak memory of a call.

On a CUDA device these defer to :mod:`course.gpu` (CUDA events, ``max_memory_allocated``). On the CPU,
time is the median of ``time.perf_counter`` over repeats, and peak memory is read from the PyTorch
profiler's record of every tensor allocation and free made by the call: the largest total of live
bytes it reached. That counts tensors only (what attention's ``n x n`` matrix costs), not Python or
allocator overhead.
"""

from __future__ import annotations

import contextlib
import csv
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, fields
from pathlib import Path

import torch

from course import gpu


@contextlib.contextmanager
def _quiet_stderr_fd() -> Iterator[None]:
    """Silence file descriptor 2 (the profiler's C++ start/stop log lines) for the duration."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def cpu_time_ms(fn: Callable[[], object], *, warmup: int = 1, repeat: int = 5) -> float:
    """Median wall time of ``fn()`` on the CPU, in milliseconds (after ``warmup`` untimed calls)."""
    if repeat < 1:
        raise ValueError(f"repeat must be >= 1, got {repeat}")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def cpu_peak_bytes(fn: Callable[[], object]) -> int:
    """Peak bytes of CPU tensors alive at once while ``fn()`` runs (its result included).

    Tensors that existed before the call are not counted; every allocation and free made during the
    call is replayed in time order and the running total's maximum is returned.
    """
    from torch.profiler import ProfilerActivity, profile

    with _quiet_stderr_fd(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        result = fn()
        del result
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    events.sort(key=lambda e: e.start_ns())
    live = peak = 0
    for event in events:
        live += event.nbytes()
        peak = max(peak, live)
    return int(peak)


def time_ms(fn: Callable[[], object], device: str | torch.device = "cpu", **kwargs: int) -> float:
    """Median time of ``fn()`` in ms on ``device`` (CUDA events on a GPU, ``perf_counter`` on the CPU)."""
    if torch.device(device).type == "cuda":
        return gpu.cuda_time_ms(fn, **kwargs)
    return cpu_time_ms(fn, **kwargs)


def peak_bytes(fn: Callable[[], object], device: str | torch.device = "cpu") -> int:
    """Peak tensor memory of ``fn()`` in bytes on ``device``, above what was allocated before."""
    if torch.device(device).type == "cuda":
        return gpu.cuda_peak_bytes(fn)
    return cpu_peak_bytes(fn)


def write_rows_csv(rows: Sequence, row_type: type, path: Path) -> None:
    """Write dataclass ``rows`` (of ``row_type``) as a CSV: a header of its field names, floats to 4 digits."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=[field.name for field in fields(row_type)])
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in asdict(row).items()})
