"""Held-out class, exercise 6 (ch6-tiled): tiled_attention and sdpa_backward."""

from __future__ import annotations

from . import Variant, edit

# A correct online softmax with -inf masks, a guard for rows whose maximum is still -inf and a zero
# output where nothing was seen; most wrong variants below are one small change to it.
TILED = '''
def tiled_attention(Q, K, V, block_size=128, causal=False):
    n_q, d_k = Q.shape[-2], Q.shape[-1]
    n_k = K.shape[-2]
    scale = 1.0 / math.sqrt(d_k)
    offset = n_k - n_q
    out = Q.new_zeros(Q.shape[:-1] + (V.shape[-1],))
    for q0 in range(0, n_q, block_size):
        q = Q[..., q0:q0 + block_size, :]
        bq = q.shape[-2]
        m = torch.full(q.shape[:-1] + (1,), float("-inf"), dtype=Q.dtype, device=Q.device)
        l = torch.zeros_like(m)
        acc = torch.zeros(q.shape[:-1] + (V.shape[-1],), dtype=Q.dtype, device=Q.device)
        rows = torch.arange(q0, q0 + bq, device=Q.device)[:, None]
        for k0 in range(0, n_k, block_size):
            if causal and k0 > q0 + bq - 1 + offset:
                break
            k = K[..., k0:k0 + block_size, :]
            v = V[..., k0:k0 + block_size, :]
            s = q @ k.transpose(-2, -1) * scale
            if causal:
                cols = torch.arange(k0, k0 + k.shape[-2], device=Q.device)[None, :]
                s = s.masked_fill(cols > rows + offset, float("-inf"))
            m_new = torch.maximum(m, s.amax(dim=-1, keepdim=True))
            m_safe = torch.where(torch.isinf(m_new), torch.zeros_like(m_new), m_new)
            alpha = torch.exp(m - m_safe)
            p = torch.exp(s - m_safe)
            l = l * alpha + p.sum(dim=-1, keepdim=True)
            acc = acc * alpha + p @ v
            m = m_new
        out[..., q0:q0 + bq, :] = torch.where(l > 0, acc / l, torch.zeros_like(acc))
    return out
'''

VARIANTS = [
    Variant(function="tiled_attention", kind="correct", name="tiled_attention/online-softmax-inf-guard",
            source=TILED),
    Variant(
        function="tiled_attention", kind="correct", name="tiled_attention/float64-tiles-minus-1e30",
        source='''
def tiled_attention(Q, K, V, block_size=128, causal=False):
    *batch, n_q, d_k = Q.shape
    n_k, d_v = K.shape[-2], V.shape[-1]
    out = torch.empty(*batch, n_q, d_v, dtype=Q.dtype, device=Q.device)
    for qs in range(0, n_q, block_size):
        qe = min(qs + block_size, n_q)
        q = Q[..., qs:qe, :].double() / math.sqrt(d_k)
        m = torch.full((*batch, qe - qs, 1), -1e30, dtype=torch.float64, device=Q.device)
        l = torch.zeros_like(m)
        o = torch.zeros(*batch, qe - qs, d_v, dtype=torch.float64, device=Q.device)
        for ks in range(0, n_k, block_size):
            ke = min(ks + block_size, n_k)
            if causal and ks > qe - 1 + n_k - n_q:
                continue
            s = q @ K[..., ks:ke, :].double().transpose(-1, -2)
            allowed = torch.ones(qe - qs, ke - ks, dtype=torch.bool, device=Q.device)
            if causal:
                i = torch.arange(qs, qe, device=Q.device).unsqueeze(1)
                j = torch.arange(ks, ke, device=Q.device).unsqueeze(0)
                allowed = j <= i + (n_k - n_q)
            s = torch.where(allowed, s, -1e30)
            m_new = torch.maximum(m, s.max(dim=-1, keepdim=True).values)
            p = torch.exp(s - m_new) * allowed
            correction = torch.exp(m - m_new)
            l = l * correction + p.sum(dim=-1, keepdim=True)
            o = o * correction + p @ V[..., ks:ke, :].double()
            m = m_new
        o = torch.where(l > 0, o / l.clamp_min(1e-300), torch.zeros_like(o))
        out[..., qs:qe, :] = o.to(Q.dtype)
    return out
''',
    ),
    Variant(
        function="tiled_attention", kind="correct", name="tiled_attention/logsumexp-merge",
        source='''
def tiled_attention(Q, K, V, block_size=128, causal=False):
    n_q, n_k = Q.shape[-2], K.shape[-2]
    scale = Q.shape[-1] ** -0.5
    blocks = []
    for i0 in range(0, n_q, block_size):
        q = Q[..., i0:i0 + block_size, :] * scale
        rows = torch.arange(i0, i0 + q.shape[-2], device=Q.device).unsqueeze(-1)
        lse = torch.full(q.shape[:-1] + (1,), float("-inf"), dtype=Q.dtype, device=Q.device)
        o = torch.zeros(q.shape[:-1] + (V.shape[-1],), dtype=Q.dtype, device=Q.device)
        for j0 in range(0, n_k, block_size):
            s = q @ K[..., j0:j0 + block_size, :].transpose(-1, -2)
            if causal:
                cols = torch.arange(j0, j0 + s.shape[-1], device=Q.device)
                s = s.masked_fill(cols > rows + (n_k - n_q), float("-inf"))
            new_lse = torch.logaddexp(lse, torch.logsumexp(s, dim=-1, keepdim=True))
            safe = torch.where(torch.isinf(new_lse), torch.zeros_like(new_lse), new_lse)
            o = o * torch.exp(lse - safe) + torch.exp(s - safe) @ V[..., j0:j0 + block_size, :]
            lse = new_lse
        blocks.append(o)
    return torch.cat(blocks, dim=-2)
''',
    ),
    Variant(
        function="tiled_attention", kind="wrong", name="tiled_attention/acc-not-rescaled",
        misconception="Rescales the running sum l by exp(m_old - m_new) but not the running output acc.",
        keywords=("rescale", "exp(m_old - m_new)", "running", "acc"),
        source=edit(TILED, ("acc = acc * alpha + p @ v", "acc = acc + p @ v")),
    ),
    Variant(
        function="tiled_attention", kind="wrong", name="tiled_attention/local-positions",
        misconception="Builds the causal mask of each tile from tile-local indices instead of global positions.",
        keywords=("global", "position", "causal", "tile"),
        source=edit(TILED, ("rows = torch.arange(q0, q0 + bq, device=Q.device)[:, None]",
                            "rows = torch.arange(bq, device=Q.device)[:, None]"),
                    ("cols = torch.arange(k0, k0 + k.shape[-2], device=Q.device)[None, :]",
                     "cols = torch.arange(k.shape[-2], device=Q.device)[None, :]")),
    ),
    Variant(
        function="tiled_attention", kind="wrong", name="tiled_attention/top-left-causal",
        misconception="Aligns the causal mask to the top-left (j <= i) instead of the lower-right "
        "(j <= i + n_k - n_q).",
        keywords=("lower-right", "bottom-right", "lower right", "bottom right", "align", "n_k - n_q"),
        source=edit(TILED, ("offset = n_k - n_q", "offset = 0")),
    ),
    Variant(
        function="tiled_attention", kind="wrong", name="tiled_attention/no-scale",
        misconception="Forgets to scale the scores by 1/sqrt(d_k).",
        keywords=("sqrt", "scale"),
        source=edit(TILED, ("scale = 1.0 / math.sqrt(d_k)", "scale = 1.0")),
    ),
    Variant(
        function="tiled_attention", kind="wrong", name="tiled_attention/drops-partial-blocks",
        misconception="Loops over n // block_size full blocks only, dropping the last partial block when "
        "block_size does not divide the length.",
        keywords=("divide", "last block", "remainder", "partial", "block_size"),
        source=edit(TILED, ("for q0 in range(0, n_q, block_size):",
                            "for q0 in range(0, n_q - block_size + 1, block_size):"),
                    ("for k0 in range(0, n_k, block_size):", "for k0 in range(0, n_k - block_size + 1, block_size):")),
    ),
    Variant(
        function="tiled_attention", kind="wrong", name="tiled_attention/no-zero-guard",
        misconception="Divides acc by l without a guard, so a query that sees no key gets NaN instead of 0.",
        keywords=("no key", "zero", "nan", "sees nothing"),
        source=edit(TILED, ("torch.where(l > 0, acc / l, torch.zeros_like(acc))", "acc / l")),
    ),
    Variant(
        function="tiled_attention", kind="wrong", name="tiled_attention/full-matrix",
        misconception="Computes ordinary attention on the whole (n_q, n_k) score matrix, ignoring block_size.",
        keywords=("block_size", "tile", "matrix", "memory", "larger"),
        source='''
def tiled_attention(Q, K, V, block_size=128, causal=False):
    n_q, n_k = Q.shape[-2], K.shape[-2]
    s = Q @ K.transpose(-2, -1) / math.sqrt(Q.shape[-1])
    if causal:
        allowed = torch.ones(n_q, n_k, dtype=torch.bool, device=Q.device).tril(diagonal=n_k - n_q)
        s = s.masked_fill(~allowed, float("-inf"))
    w = torch.nan_to_num(torch.softmax(s, dim=-1), nan=0.0)
    return w @ V
''',
    ),
    Variant(
        function="tiled_attention", kind="wrong", name="tiled_attention/rescale-inverted",
        misconception="Rescales by exp(m_new - m_old) instead of exp(m_old - m_new).",
        keywords=("rescale", "exp(m_old - m_new)", "m_old", "nan"),
        source=edit(TILED, ("alpha = torch.exp(m - m_safe)", "alpha = torch.exp(m_safe - m)")),
    ),
    Variant(
        function="tiled_attention", kind="wrong", name="tiled_attention/float32-output",
        misconception="Allocates the output with torch.zeros (float32), so float64 inputs come back as float32.",
        keywords=("dtype", "float64", "float32"),
        source=edit(TILED, ("out = Q.new_zeros(Q.shape[:-1] + (V.shape[-1],))",
                            "out = torch.zeros(Q.shape[:-1] + (V.shape[-1],))")),
    ),
    Variant(
        function="tiled_attention", kind="wrong", name="tiled_attention/square-tile-skip",
        misconception="Skips key tiles with k0 > q0 (right only when n_q == n_k), dropping visible keys when "
        "there are more keys than queries.",
        keywords=("skip", "tile", "future", "lower-right", "n_k - n_q", "align"),
        source=edit(TILED, ("if causal and k0 > q0 + bq - 1 + offset:", "if causal and k0 > q0:")),
    ),
]

# sdpa_backward, added after the rest of the class, written the same way (from the release notebook's
# contract and visible test, the reading's backward-pass section and COURSE.md only). A correct
# student's version of the formulas as the notebook states them (-inf for blocked scores, NaN of a
# fully blocked row's softmax turned into 0); the wrong variants below are one small change to it.
BACKWARD = '''
def sdpa_backward(Q, K, V, dO, mask=None):
    scale = 1.0 / math.sqrt(Q.shape[-1])
    S = Q @ K.transpose(-2, -1) * scale
    if mask is not None:
        S = S.masked_fill(~mask, float("-inf"))
    A = torch.softmax(S, dim=-1)
    A = torch.nan_to_num(A, nan=0.0)
    dV = A.transpose(-2, -1) @ dO
    dA = dO @ V.transpose(-2, -1)
    dS = A * (dA - (dA * A).sum(dim=-1, keepdim=True))
    dQ = dS @ K * scale
    dK = dS.transpose(-2, -1) @ Q * scale
    return dQ, dK, dV
'''

VARIANTS += [
    Variant(function="sdpa_backward", kind="correct", name="sdpa_backward/formulas-as-written",
            source=BACKWARD),
    Variant(
        function="sdpa_backward", kind="correct", name="sdpa_backward/einsum-rowsum-dO-O",
        source='''
def sdpa_backward(Q, K, V, dO, mask=None):
    d_k = Q.shape[-1]
    S = torch.einsum("...qd,...kd->...qk", Q, K) / math.sqrt(d_k)
    if mask is not None:
        S = torch.where(mask, S, torch.tensor(float("-inf"), dtype=S.dtype))
    A = torch.softmax(S, dim=-1)
    A = torch.where(torch.isnan(A), torch.zeros_like(A), A)
    O = torch.einsum("...qk,...kv->...qv", A, V)
    D = (dO * O).sum(dim=-1, keepdim=True)  # FlashAttention-2: rowsum(dO * O) == rowsum(dA * A)
    dA = torch.einsum("...qv,...kv->...qk", dO, V)
    dS = A * (dA - D)
    dQ = torch.einsum("...qk,...kd->...qd", dS, K) / math.sqrt(d_k)
    dK = torch.einsum("...qk,...qd->...kd", dS, Q) / math.sqrt(d_k)
    dV = torch.einsum("...qk,...qv->...kv", A, dO)
    return dQ, dK, dV
''',
    ),
    Variant(
        function="sdpa_backward", kind="correct", name="sdpa_backward/float64-minus-1e30-row-jacobian",
        source='''
def sdpa_backward(Q, K, V, dO, mask=None):
    q, k, v, do = Q.double(), K.double(), V.double(), dO.double()
    S = q @ k.transpose(-2, -1) / math.sqrt(Q.shape[-1])
    if mask is not None:
        S = S.masked_fill(~mask, -1e30)
    A = torch.softmax(S, dim=-1)
    if mask is not None:
        A = A * mask.any(dim=-1, keepdim=True)  # a fully blocked row got uniform weights: zero it
    dA = do @ v.transpose(-2, -1)
    dS = torch.zeros_like(A)
    for i in range(A.shape[-2]):  # one query row at a time: its softmax Jacobian diag(a) - a a^T
        a = A[..., i, :]
        J = torch.diag_embed(a) - a.unsqueeze(-1) * a.unsqueeze(-2)
        dS[..., i, :] = (J @ dA[..., i, :].unsqueeze(-1)).squeeze(-1)
    dQ = dS @ k / math.sqrt(Q.shape[-1])
    dK = dS.transpose(-2, -1) @ q / math.sqrt(Q.shape[-1])
    dV = A.transpose(-2, -1) @ do
    return dQ.to(Q.dtype), dK.to(K.dtype), dV.to(V.dtype)
''',
    ),
    Variant(
        function="sdpa_backward", kind="wrong", name="sdpa_backward/no-scale-in-grads",
        misconception="Uses 1/sqrt(d_k) when recomputing the scores but forgets it in dQ and dK.",
        keywords=("sqrt", "scale"),
        source=edit(BACKWARD, ("dQ = dS @ K * scale", "dQ = dS @ K"),
                    ("dK = dS.transpose(-2, -1) @ Q * scale", "dK = dS.transpose(-2, -1) @ Q")),
    ),
    Variant(
        function="sdpa_backward", kind="wrong", name="sdpa_backward/no-rowsum-term",
        misconception="Keeps only the diagonal of the softmax Jacobian, dS = A * dA, dropping the "
        "subtracted rowsum(dA * A) term.",
        keywords=("rowsum", "row sum", "jacobian"),
        source=edit(BACKWARD, ("dS = A * (dA - (dA * A).sum(dim=-1, keepdim=True))", "dS = A * dA")),
    ),
    Variant(
        function="sdpa_backward", kind="wrong", name="sdpa_backward/rowsum-over-queries",
        misconception="Takes the rowsum(dA * A) over the queries (dim=-2) instead of over the keys (the "
        "last axis).",
        keywords=("axis", "dim=-1", "over the keys", "wrong dim"),
        source=edit(BACKWARD, ("(dA * A).sum(dim=-1, keepdim=True)", "(dA * A).sum(dim=-2, keepdim=True)")),
    ),
    Variant(
        function="sdpa_backward", kind="wrong", name="sdpa_backward/nan-on-blocked-rows",
        misconception="Masks with -inf but does not turn a fully blocked row's softmax (0/0) into zeros, "
        "so that row's gradients are NaN.",
        keywords=("nan", "fully blocked", "blocked row"),
        source=edit(BACKWARD, ("    A = torch.nan_to_num(A, nan=0.0)\n", "")),
    ),
    Variant(
        function="sdpa_backward", kind="wrong", name="sdpa_backward/blocked-rows-uniform",
        misconception="Masks with a large negative number (-1e9) and never zeroes a fully blocked row, "
        "which gets uniform weights and non-zero gradients instead of none.",
        keywords=("fully blocked", "blocked row", "uniform", "zero"),
        source=edit(BACKWARD, ('S = S.masked_fill(~mask, float("-inf"))', "S = S.masked_fill(~mask, -1e9)"),
                    ("    A = torch.nan_to_num(A, nan=0.0)\n", "")),
    ),
    Variant(
        function="sdpa_backward", kind="wrong", name="sdpa_backward/dot-T-with-batch",
        misconception="Transposes with .T, which reverses every axis of a batched tensor, instead of "
        ".transpose(-2, -1); right on the 2-D visible test, wrong with batch dimensions.",
        keywords=("transpose(-2, -1)", "batch", "reverses"),
        source=edit(BACKWARD, ("S = Q @ K.transpose(-2, -1) * scale", "S = Q @ K.T * scale"),
                    ("dV = A.transpose(-2, -1) @ dO", "dV = A.T @ dO"),
                    ("dA = dO @ V.transpose(-2, -1)", "dA = dO @ V.T"),
                    ("dK = dS.transpose(-2, -1) @ Q * scale", "dK = dS.T @ Q * scale")),
    ),
]
