"""Hidden checks of ch6-tiled: the hidden cases of tiled_attention and its known mistakes.

Mistakes are patches of the reference's student form (``solutions/ch6_tiled.py`` without its
``@validated`` lines); see CONTRIBUTING.md.
"""

from __future__ import annotations

import numpy as np

from grader.engine.cases import Case, Spec, call, tensor, tiles
from grader.engine.mistakes import Mistake


def tiled_attention_cases(rng: np.random.Generator) -> list[Case]:
    n = int(rng.integers(9, 14))
    Q, K, V = tensor(rng, 2, 3, n, 8), tensor(rng, 2, 3, n, 8), tensor(rng, 2, 3, n, 5)
    n_q, n_k = int(rng.integers(5, 8)), int(rng.integers(10, 14))
    q7, k12, v12 = tensor(rng, n_q, 8, dtype="float64"), tensor(rng, n_k, 8, dtype="float64"), tensor(
        rng, n_k, 4, dtype="float64"
    )
    Qm, Km, Vm = tensor(rng, 1, 2, 64, 8), tensor(rng, 1, 2, 64, 8), tensor(rng, 1, 2, 64, 8)
    return [
        Case("one tile covering everything", call(Q, K, V)),
        Case(f"tiles of 4 that do not divide the length {n}", call(Q, K, V, block_size=4)),
        Case("causal=True with tiles of 3", call(Q, K, V, block_size=3, causal=True)),
        Case("n_q < n_k, causal=True, float64", call(q7, k12, v12, block_size=4, causal=True)),
        Case("n_q > n_k, causal=True (some queries see no key)",
             call(k12, q7, q7[:, :4], block_size=5, causal=True)),
        Case("large scores (around 1e3) across tiles", call(Q * 10, K * 10, V, block_size=4)),
        Case("memory: no score matrix larger than a tile", tiles(Qm, Km, Vm, 16)),
    ]


MISTAKES = [
    Mistake(
        "tiled-no-rescale", "tiled_attention",
        "when a new key block raises the running maximum m, the running sum and the running output must be "
        "rescaled by exp(m_old - m_new) (the online-softmax correction); yours adds blocks computed "
        "against different maxima.",
        replace=(("lse = lse * rescale + ", "lse = lse + "), ("acc = acc * rescale + ", "acc = acc + ")),
    ),
    Mistake(
        "tiled-no-final-divide", "tiled_attention",
        "at the end of each query block, divide the accumulated output by the running sum of exponentials "
        "(the softmax denominator).",
        replace=(("torch.where(lse > 0, acc / lse.clamp_min(torch.finfo(dtype).tiny), 0.0)", "acc"),),
    ),
    Mistake(
        "tiled-causal-local-index", "tiled_attention",
        "inside a tile, the causal mask must compare global positions (q0 + i against k0 + j), not the "
        "positions within the tile.",
        replace=(("rows = torch.arange(q0, q1, device=Q.device)", "rows = torch.arange(q1 - q0, device=Q.device)"),
                 ("cols = torch.arange(k0, k1, device=Q.device)", "cols = torch.arange(k1 - k0, device=Q.device)")),
    ),
    Mistake(
        "tiled-no-scale", "tiled_attention",
        "your scores are not scaled by 1/sqrt(d_k): scale the queries (or each score tile) by 1/sqrt(Q.shape[-1]).",
        replace=(("q = Q[..., q0:q1, :] * scale", "q = Q[..., q0:q1, :]"),),
    ),
    Mistake(
        "tiled-full-matrix", "tiled_attention",
        "your function builds the whole (n_q, n_k) score matrix at once; the point of tiling is to hold "
        "at most a (block_size, block_size) tile of scores per batch element and head.",
        rewrite='''
        def tiled_attention(Q, K, V, block_size=128, causal=False):
            scores = Q @ K.transpose(-2, -1) / math.sqrt(Q.shape[-1])
            if causal:
                n_q, n_k = Q.shape[-2], K.shape[-2]
                keep = torch.ones(n_q, n_k, dtype=torch.bool).tril(diagonal=n_k - n_q)
                scores = scores.masked_fill(~keep, float("-inf"))
            return torch.softmax(scores, dim=-1).nan_to_num(0.0) @ V
        ''',
    ),
]

SPECS = {"tiled_attention": Spec(tiled_attention_cases)}

# ---- sdpa_backward (the backward pass of attention) ------------------------------------------------


def _bottom_right_causal(n_q: int, n_k: int) -> np.ndarray:
    return np.tril(np.ones((n_q, n_k), dtype=bool), k=n_k - n_q)


def sdpa_backward_cases(rng: np.random.Generator) -> list[Case]:
    import torch

    n_q = int(rng.integers(3, 6))
    n_k = n_q + int(rng.integers(2, 5))  # n_q != n_k: a missing transpose cannot go unnoticed
    d_k = int(rng.integers(4, 7))
    d_v = d_k + int(rng.integers(1, 3))  # d_k != d_v

    def qkv(*batch: int, n: tuple[int, int] = (n_q, n_k), dims: tuple[int, int] = (d_k, d_v),
            dtype: str = "float32", scale: float = 2.0) -> tuple:
        """Q (times ``scale``, so the weights are not uniform), K, V and a random upstream gradient dO."""
        shapes = ((n[0], dims[0]), (n[1], dims[0]), (n[1], dims[1]), (n[0], dims[1]))
        Q, K, V, dO = (tensor(rng, *batch, *shape, dtype=dtype) for shape in shapes)
        return scale * Q, K, V, dO

    causal = torch.from_numpy(_bottom_right_causal(n_q, n_k))
    holes = rng.random((2, 1, n_q, n_k)) < 0.6
    holes[..., 0] = True  # every row sees a key ...
    holes[0, 0, int(rng.integers(0, n_q))] = False  # ... but one, fully blocked
    lengths = np.array([int(rng.integers(1, n_k)), 0])  # the second sequence is empty: every row blocked
    padding = torch.from_numpy((np.arange(n_k)[None, :] < lengths[:, None])[:, None, None, :])
    n = n_q + 1
    big_q, big_k, big_v, big_do = qkv(2, dtype="float64", scale=1.0)
    peaked_q, peaked_k, peaked_v, peaked_do = qkv(2, 3, scale=3.0)
    return [
        Case("batch dimensions (2, 3), n_q != n_k, d_k != d_v (float32)", call(*qkv(2, 3))),
        Case("2-D inputs with n_q != n_k and d_k != d_v (float64)", call(*qkv(dtype="float64"))),
        Case("n_q == n_k and d_k == d_v (self-attention shapes, Q != K, float64)",
             call(*qkv(2, n=(n, n), dims=(d_k, d_k), dtype="float64"))),
        Case("a causal mask (n_q < n_k) shared by the batch", call(*qkv(2, 3), mask=causal)),
        Case("a mask (2, 1, n_q, n_k) with one fully blocked query row (float64)",
             call(*qkv(2, 3, dtype="float64"), mask=torch.from_numpy(holes))),
        Case("a padding mask (2, 1, 1, n_k) where one sequence is empty", call(*qkv(2, 3), mask=padding)),
        Case("scores as large as 1e4 (float64)", call(big_q * 60, big_k * 60, big_v, big_do)),
        # float32 rounds a score of 1e3 by ~1e-4, which moves correct gradients apart by more than the
        # tolerance; scores up to about 50 keep every correct order of operations within it.
        Case("peaked weights, scores up to about 50 (float32)", call(peaked_q, peaked_k * 3, peaked_v, peaked_do)),
    ]


BACKWARD_MISTAKES = [
    Mistake(
        "bwd-no-scale", "sdpa_backward",
        "dQ and dK miss the factor 1/sqrt(d_k): the scores are Q K^T / sqrt(d_k), so the chain rule multiplies "
        "dS K and dS^T Q by 1/sqrt(d_k) as well.",
        replace=(("dQ = (dS @ K) * scale", "dQ = dS @ K"), ("dK = (dS.transpose(-2, -1) @ Q) * scale",
                                                           "dK = dS.transpose(-2, -1) @ Q")),
    ),
    Mistake(
        "bwd-weights-unscaled", "sdpa_backward",
        "the weights you recompute must be those of the forward pass, softmax(Q K^T / sqrt(d_k)): yours leave "
        "out the 1/sqrt(d_k) in the scores.",
        replace=(("scores = (Q @ K.transpose(-2, -1)) * scale", "scores = Q @ K.transpose(-2, -1)"),),
    ),
    Mistake(
        "bwd-softmax-as-identity", "sdpa_backward",
        "the gradient does not go through the softmax: dS is not dA. Apply the softmax Jacobian row by row, "
        "dS = A * (dA - rowsum(dA * A)).",
        replace=(("dS = weights * (dA - (dA * weights).sum(dim=-1, keepdim=True))", "dS = dA"),),
    ),
    Mistake(
        "bwd-no-rowsum", "sdpa_backward",
        "dS misses the rowsum term: the softmax Jacobian is diag(a) - a a^T, so dS = A * (dA - rowsum(dA * A)), "
        "not A * dA (each weight depends on every score of its row).",
        replace=(("dS = weights * (dA - (dA * weights).sum(dim=-1, keepdim=True))", "dS = weights * dA"),),
    ),
    Mistake(
        "bwd-rowsum-wrong-axis", "sdpa_backward",
        "the rowsum in dS = A * (dA - rowsum(dA * A)) runs over the keys of each query (the last axis), not over "
        "the queries.",
        replace=(("(dA * weights).sum(dim=-1, keepdim=True)", "(dA * weights).sum(dim=-2, keepdim=True)"),),
    ),
    Mistake(
        "bwd-dk-no-transpose", "sdpa_backward",
        "dK is dS^T Q / sqrt(d_k): transpose dS (its rows are queries, the rows of dK are keys), not dS Q.",
        replace=(("dK = (dS.transpose(-2, -1) @ Q) * scale", "dK = (dS @ Q) * scale"),),
    ),
    Mistake(
        "bwd-dv-no-transpose", "sdpa_backward",
        "dV is A^T dO: transpose the weights (O = A V, so each value row collects the gradient of every query "
        "that used it), not A dO.",
        replace=(("dV = weights.transpose(-2, -1) @ dO", "dV = weights @ dO"),),
    ),
    Mistake(
        "bwd-blocked-row-nan", "sdpa_backward",
        "a fully blocked query row must give zero gradients, not NaN: the softmax of a row that is -inf "
        "everywhere is NaN; set those weights to 0 (the row influences nothing).",
        replace=(("torch.softmax(scores, dim=-1).nan_to_num(0.0)", "torch.softmax(scores, dim=-1)"),),
    ),
    Mistake(
        "bwd-mask-ignored", "sdpa_backward",
        "the weights you recompute ignore the mask: set the blocked scores to -inf before the softmax, as the "
        "forward pass does (blocked entries then get A = 0 and dS = 0).",
        replace=(("scores = scores.masked_fill(~mask, -math.inf)", "pass"),),
    ),
]

SPECS["sdpa_backward"] = Spec(sdpa_backward_cases, items=("dQ", "dK", "dV"), no_autograd=True)
MISTAKES += BACKWARD_MISTAKES
