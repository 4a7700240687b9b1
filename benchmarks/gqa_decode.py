"""GQA decode lab: time per generated token and KV-cache memory of MHA vs GQA vs MQA at long context.

    python benchmarks/gqa_decode.py            # CPU: batch 1, context 16384, d_model 1024, 16 heads (< 1 min)
    python benchmarks/gqa_decode.py --quick    # a tiny smoke run (what the tests use)

One layer of the course's :class:`solutions.GroupedQueryAttention` decodes one token at a time with its
``kv_cache``, starting from a cache that already holds ``context`` positions (random keys and values: the
time of a decode step does not depend on their values). Only ``n_kv_heads`` changes between the rows:
``n_heads`` (MHA), a few (GQA) and 1 (MQA).

Beside the measured time the lab prints the memory-bandwidth bound of a decode step: every step must at
least read the whole KV cache once, so no implementation can beat ``kv_cache_bytes / bandwidth``. The
bandwidth is *measured* in the same run (the median time of copying a large tensor on the device: bytes
read + bytes written, divided by the time), never taken from a datasheet. Decoding is memory-bound,
which is why fewer key/value heads can make it faster. Two decoders are timed on the same weights:

- ``course``: the course's ``model(x, kv_cache=cache)``, written for clarity: every step grows the cache
  with ``torch.cat`` (a fresh allocation and a copy of the whole cache) and, for GQA/MQA, materialises
  ``repeat_kv`` (a copy as large as an MHA cache), so GQA saves memory but little time;
- ``grouped``: :func:`grouped_decode_step`, a preallocated cache written in place and the ``n_rep`` query
  heads of a group attending to their key/value head by broadcasting: its time follows the cache size.

Both give the same output (checked on the first step).

Prints a table and writes ``gqa_decode_<cpu|cuda>.csv`` to ``benchmarks/results/`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from course.measure import write_rows_csv
from solutions import GroupedQueryAttention, kv_cache_bytes

RESULTS = Path(__file__).resolve().parent / "results"
MIB = 2**20


@dataclass
class DecodeRow:
    """One attention variant decoded at one context length (a CSV row)."""

    device: str
    date: str
    variant: str
    batch: int
    context: int
    d_model: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    dtype: str
    kv_cache_mib: float
    ms_per_token: float
    grouped_ms_per_token: float
    bandwidth_gb_s: float
    bound_ms: float
    time_over_bound: float
    grouped_over_bound: float


def variant_name(n_heads: int, n_kv_heads: int) -> str:
    """``"MHA"``, ``"MQA"`` or ``"GQA-<n_kv_heads>"``."""
    if n_kv_heads == n_heads:
        return "MHA"
    return "MQA" if n_kv_heads == 1 else f"GQA-{n_kv_heads}"


def _synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _median_seconds(fn: Callable[[], object], device: str, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        _synchronize(device)
        start = time.perf_counter()
        fn()
        _synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure_bandwidth(device: str, nbytes: int) -> float:
    """Device memory bandwidth in bytes/s: a copy of ``nbytes`` reads and writes ``nbytes`` each."""
    src = torch.empty(nbytes // 4, dtype=torch.float32, device=device).uniform_()
    dst = torch.empty_like(src)
    dst.copy_(src)  # first touch of dst's pages
    seconds = _median_seconds(lambda: dst.copy_(src), device, repeat=7)
    return 2 * src.numel() * src.element_size() / seconds


def random_cache(
    batch: int, n_kv_heads: int, context: int, head_dim: int, dtype: torch.dtype, device: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """A KV cache of ``context`` random positions: ``(k, v)``, each ``(batch, n_kv_heads, context, head_dim)``."""
    gen = torch.Generator(device).manual_seed(0)
    shape = (batch, n_kv_heads, context, head_dim)
    return tuple(torch.randn(shape, generator=gen, device=device, dtype=dtype) for _ in range(2))


def grouped_decode_step(
    model: GroupedQueryAttention, x: torch.Tensor, k_buf: torch.Tensor, v_buf: torch.Tensor, pos: int
) -> torch.Tensor:
    """One decode step with a preallocated cache and no ``repeat_kv`` copy (how fast decoders do it).

    Args:
        model: supplies the projections (the same weights as the course's forward).
        x: ``(batch, 1, d_model)``, the new token.
        k_buf, v_buf: ``(batch, n_kv_heads, max_len, head_dim)``; positions ``< pos`` hold the cache.
            The new token's key and value are written in place at ``pos``.

    Returns:
        ``(batch, 1, d_model)``, equal to ``model(x, kv_cache=(k_buf[:, :, :pos], v_buf[:, :, :pos]))[0]``.
        The ``n_rep`` query heads of a group attend to their one key/value head together, by broadcasting.
    """
    batch, n_kv, n_rep, head_dim = x.shape[0], model.n_kv_heads, model.n_rep, model.head_dim
    q = model.q_proj(x).view(batch, n_kv, n_rep, head_dim)  # query head g * n_rep + r reads KV head g
    k_buf[:, :, pos] = model.k_proj(x).view(batch, n_kv, head_dim)
    v_buf[:, :, pos] = model.v_proj(x).view(batch, n_kv, head_dim)
    k, v = k_buf[:, :, : pos + 1], v_buf[:, :, : pos + 1]  # views: no copy
    scores = (q * head_dim**-0.5) @ k.transpose(-2, -1)  # (batch, n_kv, n_rep, pos + 1)
    out = torch.softmax(scores, dim=-1) @ v  # (batch, n_kv, n_rep, head_dim)
    return model.out_proj(out.reshape(batch, 1, n_kv * n_rep * head_dim))


def decode_times(
    model: GroupedQueryAttention, batch: int, context: int, steps: int, dtype: torch.dtype, device: str
) -> tuple[float, float, int]:
    """Median time of one decode step at ``context`` cached positions, two ways, and the cache's bytes.

    Returns:
        ``(course_ms, grouped_ms, cache_bytes)``: ``course_ms`` decodes with ``model(x, kv_cache=...)``
        (the cache grows by ``torch.cat``, GQA repeats K/V); ``grouped_ms`` with
        :func:`grouped_decode_step`. Each is the median over ``steps`` steps after two warm-up steps (the
        cache grows by one position per step, negligible next to ``context``). ``cache_bytes`` is the size
        of the ``(k, v)`` tensors the model holds for ``context`` positions. Raises if the two ways disagree.
    """
    cache = random_cache(batch, model.n_kv_heads, context, model.head_dim, dtype, device)
    cache_bytes = sum(t.numel() * t.element_size() for t in cache)
    gen = torch.Generator().manual_seed(1)
    tokens = torch.randn(steps + 2, batch, 1, model.d_model, generator=gen).to(device=device, dtype=dtype)
    k_buf = torch.empty(batch, model.n_kv_heads, context + steps + 2, model.head_dim, dtype=dtype, device=device)
    v_buf = torch.empty_like(k_buf)
    k_buf[:, :, :context], v_buf[:, :, :context] = cache
    course, grouped = [], []
    with torch.inference_mode():
        for i in range(steps + 2):
            _synchronize(device)
            start = time.perf_counter()
            out, cache = model(tokens[i], kv_cache=cache)
            _synchronize(device)
            course.append(time.perf_counter() - start)
            start = time.perf_counter()
            fast = grouped_decode_step(model, tokens[i], k_buf, v_buf, context + i)
            _synchronize(device)
            grouped.append(time.perf_counter() - start)
            if i == 0:
                tol = 1e-4 if dtype == torch.float32 else 1e-2
                if not torch.allclose(out, fast, rtol=tol, atol=tol):
                    err = (out - fast).abs().max().item()
                    raise AssertionError(f"grouped decode differs from the course's forward by {err:.2e}")
    return statistics.median(course[2:]) * 1e3, statistics.median(grouped[2:]) * 1e3, cache_bytes


def run(batch: int, context: int, d_model: int, n_heads: int, kv_heads: tuple[int, ...], steps: int,
        device: str) -> list[DecodeRow]:
    """Decode with every ``n_kv_heads`` in ``kv_heads`` and print a row per variant."""
    from course.gpu import device_label

    dtype = torch.float32 if device == "cpu" else torch.float16
    label = device_label(device)
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    bandwidth = measure_bandwidth(device, (256 if device == "cpu" else 2048) * MIB)
    warm = GroupedQueryAttention(64, 4, 2).to(device=device, dtype=dtype).eval()
    decode_times(warm, 1, 64, 2, dtype, device)  # first-call costs (thread pools, kernels) stay out of the table
    head_dim = d_model // n_heads
    print(f"# {label}; {date}")
    print(f"# one layer, batch={batch}, context={context}, d_model={d_model}, n_heads={n_heads}, "
          f"head_dim={head_dim}, {str(dtype).removeprefix('torch.')}; measured copy bandwidth "
          f"{bandwidth / 1e9:.1f} GB/s; bound = KV-cache bytes / bandwidth")
    print(f"{'variant':>8} {'kv heads':>8} {'KV cache MiB':>12} {'course ms/tok':>13} {'grouped ms/tok':>14} "
          f"{'bound ms':>9} {'course/bound':>12} {'grouped/bound':>13}")
    rows = []
    for n_kv in kv_heads:
        torch.manual_seed(0)
        model = GroupedQueryAttention(d_model, n_heads, n_kv).to(device=device, dtype=dtype).eval()
        course_ms, grouped_ms, cache_bytes = decode_times(model, batch, context, steps, dtype, device)
        expected = kv_cache_bytes(batch, context, 1, n_kv, head_dim, bytes_per_elem=torch.finfo(dtype).bits // 8)
        if cache_bytes != expected:
            raise AssertionError(f"the cache holds {cache_bytes} bytes, kv_cache_bytes says {expected}")
        bound_ms = expected / bandwidth * 1e3
        row = DecodeRow(device=label, date=date, variant=variant_name(n_heads, n_kv), batch=batch, context=context,
                        d_model=d_model, n_heads=n_heads, n_kv_heads=n_kv, head_dim=head_dim,
                        dtype=str(dtype).removeprefix("torch."), kv_cache_mib=expected / MIB,
                        ms_per_token=course_ms, grouped_ms_per_token=grouped_ms, bandwidth_gb_s=bandwidth / 1e9,
                        bound_ms=bound_ms, time_over_bound=course_ms / bound_ms,
                        grouped_over_bound=grouped_ms / bound_ms)
        rows.append(row)
        print(f"{row.variant:>8} {n_kv:>8} {row.kv_cache_mib:>12.1f} {course_ms:>13.2f} {grouped_ms:>14.2f} "
              f"{bound_ms:>9.3f} {row.time_over_bound:>12.1f} {row.grouped_over_bound:>13.1f}", flush=True)
    return rows


def write_csv(rows: list[DecodeRow], path: Path) -> None:
    """One line per :class:`DecodeRow`, with a header of the field names."""
    write_rows_csv(rows, DecodeRow, path)


def main(argv: list[str] | None = None) -> list[DecodeRow]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke run: context 512, d_model 256, 8 heads")
    parser.add_argument("--context", type=int, help="cached positions (default: CPU 16384, CUDA 32768)")
    parser.add_argument("--batch", type=int, help="sequences decoded together (default: CPU 1, CUDA 8)")
    parser.add_argument("--d-model", type=int, help="model width (default: CPU 1024, CUDA 4096)")
    parser.add_argument("--heads", type=int, help="query heads (default: CPU 16, CUDA 32)")
    parser.add_argument("--kv-heads", type=int, nargs="+", help="key/value head counts (default: heads, heads/4, 1)")
    parser.add_argument("--steps", type=int, default=10, help="timed decode steps per variant")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the CSV")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    if device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but torch.cuda.is_available() is False")
    gpu = device == "cuda"
    if args.quick:
        defaults = {"context": 512, "batch": 1, "d_model": 256, "heads": 8}
    else:
        defaults = {"context": 32768 if gpu else 16384, "batch": 8 if gpu else 1, "d_model": 4096 if gpu else 1024,
                    "heads": 32 if gpu else 16}
    context = args.context or defaults["context"]
    batch = args.batch or defaults["batch"]
    d_model = args.d_model or defaults["d_model"]
    heads = args.heads or defaults["heads"]
    kv_heads = tuple(args.kv_heads or dict.fromkeys((heads, max(1, heads // 4), 1)))
    steps = 3 if args.quick else args.steps

    start = time.perf_counter()
    rows = run(batch, context, d_model, heads, kv_heads, steps, device)
    path = args.out / f"gqa_decode_{device}.csv"
    write_csv(rows, path)
    print(f"wrote {path} ({time.perf_counter() - start:.0f} s in all)")
    return rows


if __name__ == "__main__":
    main()
