"""GPU helpers for the optional performance cells of the book and the exercise notebooks.

Every GPU cell starts with ``if cuda_available_or_skip("what this cell measures"):`` so that, on a
machine without CUDA, it prints one clear line and does nothing else. Figures measured on a GPU are
labelled with :func:`device_label`, so the book never shows a number without the machine it came from.

    >>> from course.gpu import cuda_available_or_skip, cuda_time_ms
    >>> if cuda_available_or_skip("the heads loop vs batched heads timing"):
    ...     ms = cuda_time_ms(lambda: model(x))
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

import torch

from course.claims import cpu_name as _cpu_name

SKIP_PREFIX = "GPU cell skipped: no CUDA device"


def cuda_available_or_skip(what: str) -> bool:
    """True when a CUDA device is usable; otherwise print exactly one line saying what was skipped.

    Args:
        what: a few words naming what the cell would measure, e.g. ``"decode-step timing"``; keep the
            whole line under 80 characters so that it fits a book page.

    Returns:
        ``torch.cuda.is_available()``.
    """
    if torch.cuda.is_available():
        return True
    print(f"{SKIP_PREFIX} ({what}).")
    return False


def device_label(device: str | torch.device | None = None) -> str:
    """A one-line description of the machine a figure was measured on.

    Args:
        device: ``"cuda"``, ``"cuda:1"``, ``"cpu"`` or ``None`` (CUDA device 0 when available, else CPU).

    Returns:
        e.g. ``"NVIDIA H100 80GB HBM3 (CUDA 12.8, torch 2.13.0)"`` or
        ``"CPU: AMD EPYC 7B13, 2 threads (torch 2.13.0+cpu)"``.
    """
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        return f"{name} (CUDA {torch.version.cuda}, torch {torch.__version__})"
    threads = torch.get_num_threads()
    return f"CPU: {_cpu_name()}, {threads} thread{'s' if threads != 1 else ''} (torch {torch.__version__})"


def cuda_time_ms(fn: Callable[[], object], *, warmup: int = 3, repeat: int = 10) -> float:
    """Median wall time of ``fn()`` on the current CUDA device, in milliseconds.

    CUDA kernels run asynchronously, so a Python timer alone measures only the launch. This helper
    runs ``warmup`` untimed calls (kernel selection, caches), then times each of ``repeat`` calls with
    CUDA events, calling ``torch.cuda.synchronize()`` before reading them.

    Raises:
        RuntimeError: when CUDA is not available.
    """
    if not torch.cuda.is_available():
        raise RuntimeError("cuda_time_ms needs a CUDA device; guard the cell with cuda_available_or_skip()")
    if repeat < 1:
        raise ValueError(f"repeat must be >= 1, got {repeat}")
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeat):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def cuda_peak_bytes(fn: Callable[[], object]) -> int:
    """Peak CUDA memory allocated while ``fn()`` runs, above what was allocated before it, in bytes.

    The result of ``fn`` is dropped before returning, but it counts toward the peak.
    """
    if not torch.cuda.is_available():
        raise RuntimeError("cuda_peak_bytes needs a CUDA device; guard the cell with cuda_available_or_skip()")
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    result = fn()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated()
    del result
    return int(peak - before)

