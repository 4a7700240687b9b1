"""Hidden checks of ch6-tiled: the hidden cases of tiled_attention and its known mistakes.

Mistakes are patches of the reference's student form (``solutions/ch6_tiled.py`` without its
``@validated`` lines); see CONTRIBUTING.md.
"""

from __future__ import annotations

import numpy as np

from grader.engine.cases import Case, Spec, call, tensor, tiles
from grader.engine.mistakes import Mistake


def tiled_attention_cases(rng: np.random.Generator) -> list[Case]:
    """Tiles that do not divide the lengths (and lengths one past a whole number of tiles), n_q != n_k
    with and without causal=True, tiles of 2 across the diagonal, scores as large as 1e3 and all negative
    down to -1e4, float64, the default block_size, and the memory check. (Q, K and V share their batch
    dims and their dtype: the exercise does not ask for broadcasting or mixed dtypes.)"""

    n = int(rng.integers(9, 14))
    Q, K, V = tensor(rng, 2, 3, n, 8), tensor(rng, 2, 3, n, 8), tensor(rng, 2, 3, n, 5)
    n_q, n_k = int(rng.integers(5, 8)), int(rng.integers(10, 14))
    q7, k12, v12 = tensor(rng, n_q, 8, dtype="float64"), tensor(rng, n_k, 8, dtype="float64"), tensor(
        rng, n_k, 4, dtype="float64"
    )
    Qm, Km, Vm = tensor(rng, 1, 2, 64, 8), tensor(rng, 1, 2, 64, 8), tensor(rng, 1, 2, 64, 8)
    bs = int(rng.integers(3, 6))
    m_q, m_k = bs * int(rng.integers(1, 3)) + 1, bs * int(rng.integers(3, 5)) + 1  # one past whole tiles
    Qr, Kr, Vr = tensor(rng, 2, m_q, 6), tensor(rng, 2, m_k, 6), tensor(rng, 2, m_k, 3)
    up, down = Q.abs() + 0.1, -K.abs() - 0.1  # every score negative
    low = up * (1e4 * np.sqrt(8) / (up @ down.transpose(-2, -1)).abs().min())
    return [
        Case("one tile covering everything (the default block_size)", call(Q, K, V)),
        Case(f"tiles of 4 that do not divide the length {n}", call(Q, K, V, block_size=4)),
        Case("causal=True with tiles of 3", call(Q, K, V, block_size=3, causal=True)),
        Case("causal=True with tiles of 2", call(Q, K, V, block_size=2, causal=True)),
        Case("n_q < n_k, causal=True, float64", call(q7, k12, v12, block_size=4, causal=True)),
        Case("n_q > n_k, causal=True (some queries see no key, in a tile where others see some)",
             call(k12, q7, q7[:, :4], block_size=n_k - n_q + 1, causal=True)),
        Case("n_q < n_k without a mask, each length one past a whole number of tiles",
             call(Qr, Kr, Vr, block_size=bs)),
        Case("large scores (around 1e3) across tiles", call(Q * 10, K * 10, V, block_size=4)),
        # float64: in float32 the scores themselves carry rounding errors of ~1e-3 at this size, more than the
        # float32 tolerance lets the weights move (and exp(-1e4) underflows to 0 in float64 too)
        Case("scores that are all negative, down to -1e4, causal=True, float64",
             call(low.double(), down.double(), V.double(), block_size=3, causal=True)),
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
    Mistake(
        "tiled-large-negative-mask", "tiled_attention",
        "inside a tile, block the future keys with -inf, not a large negative number: a query that sees no key "
        "of the tile then gets uniform weights over blocked keys instead of none (and no key at all must give "
        "an output of 0).",
        replace=(("masked_fill(cols > rows + offset, -math.inf)", "masked_fill(cols > rows + offset, -1e9)"),),
    ),
    Mistake(
        "tiled-causal-top-left", "tiled_attention",
        "with n_q != n_k the causal mask is aligned to the bottom-right: query i sees keys j <= i + (n_k - n_q), "
        "as causal_mask(n_q, n_k) of chapter 2; yours aligns it to the top-left (j <= i).",
        replace=(("offset = n_k - n_q", "offset = 0"),),
    ),
    Mistake(
        "tiled-scales-q-in-place", "tiled_attention",
        "your function changes the caller's Q: `Q *= scale` (or `Q.mul_`) writes into the input tensor. Scale "
        "a new tensor instead: q = Q[..., q0:q1, :] * scale.",
        replace=(("scale = 1.0 / math.sqrt(Q.shape[-1])", "scale = 1.0 / math.sqrt(Q.shape[-1])\n    Q *= scale"),
                 ("q = Q[..., q0:q1, :] * scale", "q = Q[..., q0:q1, :]")),
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

#: Mutants of the references (``scripts/mutation_score.py``) that no hidden case can tell from them, and why.
_SAME_SHAPES = "Q, K and V share their batch dims (the exercise asks for no broadcasting), so the broadcast is Q's own"
_SAME_DTYPE = "Q, K and V share one dtype (the exercise asks for no mixing), so the promotion is that dtype"
_SHARED = "the contract gives Q and K the same d_k, and K and V the same n_k"
_SKIPS = "this only skips work on key blocks wholly past the diagonal; visiting them adds masked scores, weight 0"
_MASKS = "the test only saves masking a tile that lies wholly below the diagonal; masking more tiles changes nothing"
_EMPTY = "a row that sees no key has lse = 0 and gets the output 0 however the division is guarded"
EQUIVALENT_MUTANTS = {
    "tiled_attention:name-swap@L16:K->V": _SHARED,
    "tiled_attention:call-dropped@L17:broadcast_shapes(...)": _SAME_SHAPES,
    "tiled_attention:name-swap@L17:Q->K": _SAME_SHAPES,
    "tiled_attention:name-swap@L17:Q->V": _SAME_SHAPES,
    "tiled_attention:name-swap@L17:K->Q": _SAME_SHAPES,
    "tiled_attention:name-swap@L17:K->V": _SAME_SHAPES,
    "tiled_attention:name-swap@L17:V->Q": _SAME_SHAPES,
    "tiled_attention:name-swap@L17:V->K": _SAME_SHAPES,
    "tiled_attention:call-dropped@L18:promote_types(...)": _SAME_DTYPE,
    "tiled_attention:call-dropped@L18:promote_types(...)#2": _SAME_DTYPE,
    "tiled_attention:name-swap@L18:Q->K": _SAME_DTYPE,
    "tiled_attention:name-swap@L18:Q->V": _SAME_DTYPE,
    "tiled_attention:name-swap@L18:K->Q": _SAME_DTYPE,
    "tiled_attention:name-swap@L18:K->V": _SAME_DTYPE,
    "tiled_attention:name-swap@L18:V->Q": _SAME_DTYPE,
    "tiled_attention:name-swap@L18:V->K": _SAME_DTYPE,
    "tiled_attention:statement-dropped@L19:Q, K, V = (t.to(dtype).expand(*batch,...": f"{_SAME_SHAPES}; {_SAME_DTYPE}",
    "tiled_attention:call-dropped@L19:.expand(...)": _SAME_SHAPES,
    "tiled_attention:call-dropped@L19:.to(...)": _SAME_DTYPE,
    "tiled_attention:name-swap@L20:Q->K": _SHARED,
    "tiled_attention:name-swap@L22:Q->K": "K.new_zeros makes the same zeros as Q.new_zeros: " + _SAME_DTYPE,
    "tiled_attention:name-swap@L22:Q->V": "V.new_zeros makes the same zeros as Q.new_zeros: " + _SAME_DTYPE,
    "tiled_attention:offset@L24:n_q+1": "the extra query block starts at n_q and is empty",
    "tiled_attention:inf@L27:-math.inf->-1e+09":
        "the running maximum starts below every score either way (the contract's scores reach -1e4, not -1e9)",
    "tiled_attention:function-swap@L30:min->max": _SKIPS,
    "tiled_attention:call-dropped@L30:min(...)": _SKIPS,
    "tiled_attention:call-dropped@L31:max(...)": "range(0, k_end) is empty for k_end <= 0, as range(0, 0) is",
    "tiled_attention:number@L31:0->1#2": "a row that sees no key gets one key block, wholly masked: still output 0",
    "tiled_attention:number@L31:0->-1#2": "range(0, k_end) is empty for k_end <= 0 either way",
    "tiled_attention:compare@L34:>->>=": _MASKS,
    "tiled_attention:arith@L34:-->+": _MASKS,
    "tiled_attention:number@L34:1->0": _MASKS,
    "tiled_attention:call-dropped@L39:zeros_like(...)":
        "the running maximum is -inf only for a row that has seen no key; key 0 comes first and every row that sees "
        "any key sees key 0, so only rows that see nothing keep it, and their output is 0 either way",
    "tiled_attention:compare@L45:>->>=": _EMPTY,
    "tiled_attention:number@L45:0->-1": _EMPTY,
    "tiled_attention:call-dropped@L45:.clamp_min(...)": _EMPTY + " (torch.where discards the 0 / 0 of that row)",
    "tiled_attention:number@L2:128->129": "every block size gives the same attention; the default only sets the tile",
    "tiled_attention:number@L2:128->127": "every block size gives the same attention; the default only sets the tile",
    "sdpa_backward:name-swap@L20:Q->K": "the contract gives Q and K the same d_k, so K.shape[-1] is Q.shape[-1]",
}
