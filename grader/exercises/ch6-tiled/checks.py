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
