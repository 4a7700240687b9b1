"""The Triton FlashAttention kernel against PyTorch SDPA's flash backend: forward TFLOP/s and their ratio.

    python benchmarks/flash_triton.py           # GPU only: n = 4096, 8192, 16384; head_dim 64 and 128
    python benchmarks/flash_triton.py --quick   # one small shape (a GPU smoke run)

Needs a CUDA GPU and Triton (``pip install triton==3.7.1``, the version torch 2.13.0's CUDA wheels use);
elsewhere it prints one line saying why it was skipped and exits 0. Shapes follow the FlashAttention
papers: ``batch * n = 16384`` tokens and ``heads * head_dim = 2048``. FLOPs are ``4 * batch * heads * n^2 *
head_dim``, halved for causal attention. Both kernels are checked against each other before timing, and
timed in the same run (median of CUDA-event timings after warm-up; the Triton kernel's first call
autotunes its tile sizes). Writes ``flash_triton_cuda.csv`` to ``benchmarks/results/`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
from pathlib import Path

import torch
import torch.nn.functional as F

from solutions import triton_flash

RESULTS = Path(__file__).resolve().parent / "results"
TARGET_RATIO = 0.70  # the course's goal: at least 70% of SDPA's flash backend
COLUMNS = ("device", "date", "dtype", "causal", "batch", "heads", "seq_len", "head_dim",
           "triton_ms", "sdpa_flash_ms", "triton_tflops", "sdpa_flash_tflops", "ratio", "max_abs_diff")


def skip_reason() -> str | None:
    """Why this benchmark cannot run here, or None."""
    if not torch.cuda.is_available():
        return "no CUDA device (torch.cuda.is_available() is False)"
    return triton_flash.unavailable_reason("cuda")


def sdpa_flash(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool) -> torch.Tensor:
    """PyTorch SDPA restricted to its FlashAttention backend (raises if that backend cannot run)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal)


def measure(seq_len: int, head_dim: int, causal: bool, dtype: torch.dtype, label: str, date: str,
            tokens: int = 16384, width: int = 2048) -> dict:
    """One row: both kernels on the same ``(batch, heads, seq_len, head_dim)`` inputs."""
    from course.gpu import cuda_time_ms

    batch, heads = max(1, tokens // seq_len), max(1, width // head_dim)
    q, k, v = (torch.randn(batch, heads, seq_len, head_dim, device="cuda", dtype=dtype) for _ in range(3))
    ours = triton_flash.flash_attention(q, k, v, causal=causal)  # also autotunes
    ref = sdpa_flash(q, k, v, causal)
    diff = (ours.float() - ref.float()).abs().max().item()
    if diff > 5e-2:
        raise AssertionError(f"Triton kernel differs from SDPA by {diff:.3e} at n={seq_len}, d={head_dim}")
    triton_ms = cuda_time_ms(lambda: triton_flash.flash_attention(q, k, v, causal=causal), warmup=5, repeat=20)
    sdpa_ms = cuda_time_ms(lambda: sdpa_flash(q, k, v, causal), warmup=5, repeat=20)
    flops = triton_flash.attention_flops(batch, heads, seq_len, seq_len, head_dim, causal)
    return {"device": label, "date": date, "dtype": str(dtype).removeprefix("torch."), "causal": causal,
            "batch": batch, "heads": heads, "seq_len": seq_len, "head_dim": head_dim,
            "triton_ms": triton_ms, "sdpa_flash_ms": sdpa_ms, "triton_tflops": flops / triton_ms / 1e9,
            "sdpa_flash_tflops": flops / sdpa_ms / 1e9, "ratio": sdpa_ms / triton_ms, "max_abs_diff": diff}


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one small shape: n=1024, head_dim 64, fp16")
    parser.add_argument("--dtype", choices=("float16", "bfloat16"), default="float16")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the CSV")
    args = parser.parse_args(argv)

    reason = skip_reason()
    if reason is not None:
        print(f"flash_triton benchmark skipped: {reason}. No GPU figures are measured here.")
        return []
    from course.gpu import device_label

    dtype = getattr(torch, args.dtype)
    label, date = device_label("cuda"), dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    shapes = [(1024, 64)] if args.quick else [(n, d) for d in (64, 128) for n in (4096, 8192, 16384)]
    print(f"# {label}; {date}; {args.dtype}; forward only; TFLOP/s = 4*b*h*n^2*d (/2 if causal) / time")
    print(f"{'causal':>6} {'n':>6} {'d':>4} {'triton ms':>10} {'sdpa ms':>9} {'triton TF/s':>11} "
          f"{'sdpa TF/s':>10} {'ratio':>6}")
    rows = []
    for causal in (False, True):
        for seq_len, head_dim in shapes:
            row = measure(seq_len, head_dim, causal, dtype, label, date)
            rows.append(row)
            print(f"{causal!s:>6} {seq_len:>6} {head_dim:>4} {row['triton_ms']:>10.3f} {row['sdpa_flash_ms']:>9.3f} "
                  f"{row['triton_tflops']:>11.1f} {row['sdpa_flash_tflops']:>10.1f} {row['ratio']:>6.2f}", flush=True)
    worst = min(rows, key=lambda r: r["ratio"])
    print(f"lowest ratio {worst['ratio']:.2f} (n={worst['seq_len']}, d={worst['head_dim']}, causal={worst['causal']}); "
          f"target >= {TARGET_RATIO:.2f}: {'met' if worst['ratio'] >= TARGET_RATIO else 'NOT met'}")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "flash_triton_cuda.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in row.items()})
    print(f"wrote {path}")
    return rows


if __name__ == "__main__":
    main()
