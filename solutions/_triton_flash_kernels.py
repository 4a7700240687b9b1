"""The Triton kernels behind :func:`solutions.triton_flash.flash_attention` (imports Triton at import time).

Kept apart so that ``solutions.triton_flash`` imports without Triton; Triton resolves the names a kernel
calls from the module's globals, so the kernels live at module level here.
"""

import triton
import triton.language as tl


@triton.jit
def _attend_blocks(
    acc, m_i, l_i, q, k_base, v_base, stride_kn, stride_kd, stride_vn, stride_vd,
    offs_m, offs_d, lo, hi, n_k, diagonal, qk_scale,
    BLOCK_N: tl.constexpr, MASKED: tl.constexpr, CAUSAL: tl.constexpr, PRECISION: tl.constexpr,
):
    """Fold key/value rows ``lo .. hi`` into the running ``(acc, m_i, l_i)`` of one query block."""
    offs_n = tl.arange(0, BLOCK_N)
    for start_n in range(lo, hi, BLOCK_N):
        start_n = tl.multiple_of(start_n, BLOCK_N)
        cols = start_n + offs_n
        k_ptrs = k_base + offs_d[:, None] * stride_kd + cols[None, :] * stride_kn  # K^T: (HEAD_DIM, BLOCK_N)
        v_ptrs = v_base + cols[:, None] * stride_vn + offs_d[None, :] * stride_vd  # V: (BLOCK_N, HEAD_DIM)
        if MASKED:
            k = tl.load(k_ptrs, mask=cols[None, :] < n_k, other=0.0)
            v = tl.load(v_ptrs, mask=cols[:, None] < n_k, other=0.0)
        else:
            k = tl.load(k_ptrs)
            v = tl.load(v_ptrs)
        s = tl.dot(q, k, input_precision=PRECISION) * qk_scale  # scores in log2 units, float32
        if MASKED:
            visible = cols[None, :] < n_k
            if CAUSAL:
                visible = visible & (cols[None, :] <= offs_m[:, None] + diagonal)
            s = tl.where(visible, s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 1))
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)  # rows that have seen no key yet
        p = tl.math.exp2(s - m_safe[:, None])
        alpha = tl.math.exp2(m_i - m_safe)
        l_i = l_i * alpha + tl.sum(p, 1)
        acc = tl.dot(p.to(v.dtype), v, acc * alpha[:, None], input_precision=PRECISION)
        m_i = m_new
    return acc, m_i, l_i

@triton.jit
def flash_forward_kernel(
    Q, K, V, Out, qk_scale,
    stride_qb, stride_qh, stride_qm, stride_qd,
    stride_kb, stride_kh, stride_kn, stride_kd,
    stride_vb, stride_vh, stride_vn, stride_vd,
    stride_ob, stride_oh, stride_om, stride_od,
    n_heads, n_rep, n_q, n_k,
    HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    CAUSAL: tl.constexpr, PRECISION: tl.constexpr,
):
    """One program: ``BLOCK_M`` queries of one (batch, head) against all the keys they may see."""
    start_m = tl.program_id(0)
    off_bh = tl.program_id(1)
    off_b = off_bh // n_heads
    off_h = off_bh % n_heads
    off_kvh = off_h // n_rep  # grouped-query attention: query head h reads key/value head h // n_rep
    offs_m = start_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, HEAD_DIM)

    q_ptrs = Q + off_b * stride_qb + off_h * stride_qh + offs_m[:, None] * stride_qm + offs_d[None, :] * stride_qd
    q = tl.load(q_ptrs, mask=offs_m[:, None] < n_q, other=0.0)
    k_base = K + off_b * stride_kb + off_kvh * stride_kh
    v_base = V + off_b * stride_vb + off_kvh * stride_vh

    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, HEAD_DIM], dtype=tl.float32)

    diagonal = n_k - n_q  # causal, lower-right aligned: query i sees keys j <= i + diagonal
    full_blocks_end = (n_k // BLOCK_N) * BLOCK_N  # key blocks that need no bounds check
    if CAUSAL:
        # Keys every query of this block may see: j <= start_m * BLOCK_M + diagonal.
        first_row_sees = start_m * BLOCK_M + diagonal + 1
        unmasked_end = tl.minimum(tl.maximum(first_row_sees, 0) // BLOCK_N * BLOCK_N, full_blocks_end)
        # Keys no query of this block may see start at (last row) + diagonal + 1.
        masked_end = tl.minimum((start_m + 1) * BLOCK_M + diagonal, n_k)
    else:
        unmasked_end = full_blocks_end
        masked_end = n_k
    acc, m_i, l_i = _attend_blocks(
        acc, m_i, l_i, q, k_base, v_base, stride_kn, stride_kd, stride_vn, stride_vd,
        offs_m, offs_d, 0, unmasked_end, n_k, diagonal, qk_scale,
        BLOCK_N, False, CAUSAL, PRECISION,
    )
    acc, m_i, l_i = _attend_blocks(
        acc, m_i, l_i, q, k_base, v_base, stride_kn, stride_kd, stride_vn, stride_vd,
        offs_m, offs_d, unmasked_end, masked_end, n_k, diagonal, qk_scale,
        BLOCK_N, True, CAUSAL, PRECISION,
    )
    # Rows that saw no key at all (causal with n_q > n_k) have l_i == 0 and get a zero output.
    out = acc / tl.where(l_i > 0.0, l_i, 1.0)[:, None]
    o_ptrs = (Out + off_b * stride_ob + off_h * stride_oh
              + offs_m[:, None] * stride_om + offs_d[None, :] * stride_od)
    tl.store(o_ptrs, out.to(Out.dtype.element_ty), mask=offs_m[:, None] < n_q)


# Tile sizes and pipelining for Ampere/Hopper GPUs (BLOCK_M queries x BLOCK_N keys per step).
configs = [
    triton.Config({"BLOCK_M": bm, "BLOCK_N": bn}, num_warps=w, num_stages=s)
    for bm, bn, w, s in [
        (128, 64, 4, 3), (128, 64, 8, 3), (128, 64, 4, 4), (128, 128, 8, 3),
        (128, 32, 4, 4), (64, 64, 4, 3), (64, 32, 4, 4), (64, 128, 4, 3),
    ]
]
# On a GPU the tile sizes are chosen by timing these once per (n_q, n_k, head_dim, causal, precision).
flash_forward_autotuned = triton.autotune(configs, key=["n_q", "n_k", "HEAD_DIM", "CAUSAL", "PRECISION"])(
    flash_forward_kernel
)
