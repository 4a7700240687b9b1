"""Chapter 6 stretch reference: a FlashAttention forward kernel in Triton (the optional GPU lab).

The same online-softmax recurrence as :func:`solutions.tiled_attention`, but one GPU program per
``(query block, batch * head)``: the program loads its ``BLOCK_M`` queries once, streams the keys and
values through on-chip memory ``BLOCK_N`` rows at a time, and writes only the ``(BLOCK_M, head_dim)``
output. The ``(n_q, n_k)`` matrix never exists, not even in the GPU's main memory.

Details that make it fast (Dao et al. 2022, "FlashAttention"; Dao 2023, "FlashAttention-2"):

- the running max ``m`` and sum ``l`` are kept in float32 registers; the output accumulator is
  rescaled only by ``exp(m_old - m_new)``, once per key block;
- ``exp2`` instead of ``exp``: ``exp(x) = exp2(x * log2(e))``, and ``log2(e) / sqrt(d)`` is folded into one
  multiplication of the scores;
- key blocks that lie entirely above the causal diagonal are never visited, and the key blocks that
  need no mask at all (every block of a non-causal row, and the blocks left of the diagonal) are
  processed by a loop without masking; only the diagonal blocks and the ragged tail are masked.

Triton is imported lazily (inside :func:`flash_attention`), so ``import solutions`` never needs it.
The kernel runs where Triton can run it: on CUDA tensors, or on CPU tensors under Triton's
interpreter (``TRITON_INTERPRET=1`` set before Triton is imported; slow, for small correctness tests).
"""

from __future__ import annotations

import functools
import importlib.util
import math
import os
from typing import Any

import torch

from ._checks import require_ndim, shape_of

SUPPORTED_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
SUPPORTED_HEAD_DIMS = (16, 32, 64, 128)
TRITON_PIN = "triton==3.7.1"  # the version torch 2.13.0's CUDA wheels depend on
LOG2_E = 1.4426950408889634


def triton_available() -> bool:
    """True when the ``triton`` package can be imported (it does not say whether a GPU is present)."""
    return importlib.util.find_spec("triton") is not None


def interpreting() -> bool:
    """True when Triton's CPU interpreter is switched on (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "on", "yes")


def unavailable_reason(device: torch.device | str = "cuda") -> str | None:
    """Why :func:`flash_attention` cannot run on ``device`` here, or ``None`` when it can."""
    if not triton_available():
        return f"Triton is not installed (pip install {TRITON_PIN}; it runs on a CUDA GPU)"
    if torch.device(device).type == "cuda":
        return None if torch.cuda.is_available() else "no CUDA device (torch.cuda.is_available() is False)"
    if interpreting():
        return None
    return "CPU tensors need Triton's interpreter: set TRITON_INTERPRET=1 before Triton is imported"


@functools.cache
def _kernels() -> tuple[Any, Any]:
    """``(kernel, autotuned_kernel)``; imports Triton (and so reads ``TRITON_INTERPRET``) on first call."""
    from . import _triton_flash_kernels as kernels

    return kernels.flash_forward_kernel, kernels.flash_forward_autotuned


def _check_inputs(Q: torch.Tensor, K: torch.Tensor, V: torch.Tensor) -> None:
    for name, t, layout in (("Q", Q, "(batch, heads, n_q, head_dim)"), ("K", K, "(batch, kv_heads, n_k, head_dim)"),
                            ("V", V, "(batch, kv_heads, n_k, head_dim)")):
        require_ndim(name, t, 4, layout)
    q, k, v = shape_of(Q), shape_of(K), shape_of(V)
    if k != v:
        raise ValueError(f"K and V must have the same shape: K {k}, V {v}")
    if q[0] != k[0] or q[3] != k[3]:
        raise ValueError(f"Q and K must share batch and head_dim: Q {q}, K {k}")
    if k[1] < 1 or q[1] % k[1]:
        raise ValueError(f"the {q[1]} query heads must be a multiple of the {k[1]} key/value heads")
    if q[3] not in SUPPORTED_HEAD_DIMS:
        raise ValueError(f"head_dim {q[3]} is not supported; use one of {SUPPORTED_HEAD_DIMS}")
    if not (Q.dtype == K.dtype == V.dtype) or Q.dtype not in SUPPORTED_DTYPES:
        raise ValueError(f"Q, K, V must share one dtype of {SUPPORTED_DTYPES}; got {Q.dtype}, {K.dtype}, {V.dtype}")
    if not (Q.device == K.device == V.device):
        raise ValueError(f"Q, K, V must be on one device; got {Q.device}, {K.device}, {V.device}")


def flash_attention(
    Q: torch.Tensor,
    K: torch.Tensor,
    V: torch.Tensor,
    causal: bool = False,
    sm_scale: float | None = None,
    block_m: int | None = None,
    block_n: int | None = None,
) -> torch.Tensor:
    """FlashAttention forward: ``softmax(Q K^T * sm_scale [+ causal mask]) V`` without the score matrix.

    Args:
        Q: ``(batch, heads, n_q, head_dim)``; K, V: ``(batch, kv_heads, n_k, head_dim)`` with ``kv_heads``
            dividing ``heads`` (query head ``h`` reads key/value head ``h // (heads // kv_heads)``, as
            ``repeat_kv``). float16 or bfloat16 (float32 is accepted, computed with IEEE float32 dots;
            it is meant for interpreter tests). ``head_dim`` in :data:`SUPPORTED_HEAD_DIMS`.
        causal: lower-right aligned causal mask (``causal_mask(n_q, n_k)``); queries that see no key
            get a zero output.
        sm_scale: score scale, ``1 / sqrt(head_dim)`` by default.
        block_m, block_n: tile sizes (powers of two >= 16). ``None`` lets Triton's autotuner choose on a
            GPU; under the interpreter the default is 16 x 16.

    Returns:
        ``(batch, heads, n_q, head_dim)``, the dtype of ``Q``. Accumulation is in float32.

    Raises:
        RuntimeError: when Triton or a device it can run on is missing (see :func:`unavailable_reason`).
    """
    _check_inputs(Q, K, V)
    reason = unavailable_reason(Q.device)
    if reason is not None:
        raise RuntimeError(f"flash_attention cannot run here: {reason}")
    import triton

    kernel, autotuned = _kernels()
    batch, heads, n_q, head_dim = Q.shape
    kv_heads, n_k = K.shape[1], K.shape[2]
    out = torch.empty_like(Q)
    if n_q == 0:
        return out
    scale = 1.0 / math.sqrt(head_dim) if sm_scale is None else float(sm_scale)
    args = (Q, K, V, out, scale * LOG2_E, *Q.stride(), *K.stride(), *V.stride(), *out.stride(),
            heads, heads // kv_heads, n_q, n_k)
    meta = {"HEAD_DIM": head_dim, "CAUSAL": bool(causal), "PRECISION": "ieee" if Q.dtype == torch.float32 else "tf32"}
    if block_m is None and block_n is None and not interpreting():
        autotuned[lambda cfg: (triton.cdiv(n_q, cfg["BLOCK_M"]), batch * heads)](*args, **meta)
    else:
        bm, bn = block_m or (16 if interpreting() else 128), block_n or (16 if interpreting() else 64)
        for name, size in (("block_m", bm), ("block_n", bn)):
            if size < 16 or size & (size - 1):
                raise ValueError(f"{name} must be a power of two >= 16, got {size}")
        kernel[(triton.cdiv(n_q, bm), batch * heads)](*args, BLOCK_M=bm, BLOCK_N=bn, **meta)
    return out


def attention_flops(batch: int, heads: int, n_q: int, n_k: int, head_dim: int, causal: bool = False) -> float:
    """Floating-point operations of an attention forward pass: two matmuls of ``2 * n_q * n_k * head_dim``.

    With ``causal`` (and ``n_q == n_k``) about half the score matrix is skipped, so half the work counts,
    the convention of the FlashAttention papers' TFLOP/s figures.
    """
    flops = 4.0 * batch * heads * n_q * n_k * head_dim
    return flops / 2 if causal else flops
