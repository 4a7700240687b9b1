"""Right code never fails: correct implementations that differ from the reference score full marks.

Each answer below is written the way another student might: loops instead of vectorised code, einsum,
float64 inside (cast back), ``-1e30`` instead of ``-inf``, ``repeat_interleave``/``expand``,
``nan_to_num``, complex numbers for RoPE, a list of tokens, a sort for ``topk``, a nucleus found in plain
Python, a diagonal for the induction score. Each is checked in-process (the same checks
as the sandboxed kernel, ``grader.engine.local``) on several course secrets, so that the cases made
stricter against wrong answers (dtypes kept, inputs unchanged, all-negative and huge scores) never
take a point from a right one.
"""

from __future__ import annotations

import pytest
from test_diagnose import check, namespace

from grader.engine.mutation import course_secrets

pytestmark = pytest.mark.grading
SECRETS = course_secrets(3, "alternatives")

ALTERNATIVES: dict[str, list[tuple[str, str]]] = {
    "ch1-lookup": [
        ("hard_lookup", """
def hard_lookup(query, keys, values):
    for i in range(len(keys)):
        if np.array_equal(keys[i], query):
            return values[i]
    raise KeyError("no key equals the query")
"""),
        ("hard_lookup", """
def hard_lookup(query, keys, values):
    hit = (keys == query).all(axis=1)
    if not hit.any():
        raise KeyError(query)
    return values[np.argmax(hit)]  # argmax returns the first True
"""),
        ("soft_lookup", """
def soft_lookup(query, keys, values, temperature=1.0):
    s = keys.astype(np.float64) @ query.astype(np.float64) / temperature
    w = np.exp(s - np.log(np.sum(np.exp(s - s.max()))) - s.max())  # a log-sum-exp, in float64
    return (w @ values).astype(values.dtype), w.astype(np.result_type(keys, query))
"""),
        ("numerical_gradient", """
def numerical_gradient(f, query, eps=1e-6):
    q = np.array(query, dtype=np.float64)
    rows = np.size(f(q))
    J = np.zeros((rows, q.size))
    for i, e in enumerate(np.eye(q.size)):
        J[:, i] = (f(q + eps * e) - f(q - eps * e)) / (2 * eps)
    return J
"""),
    ],
    "ch2-sdpa": [
        ("softmax", """
def softmax(x, axis=-1):
    m = np.nan_to_num(np.max(x, axis=axis, keepdims=True), neginf=0.0)
    e = np.exp(x - m)
    s = e.sum(axis=axis, keepdims=True)
    return np.where(s > 0, e / np.where(s > 0, s, 1), 0).astype(x.dtype)
"""),
        ("causal_mask", """
def causal_mask(n_q, n_k):
    m = np.zeros((n_q, n_k), dtype=bool)
    for i in range(n_q):
        for j in range(n_k):
            m[i, j] = j <= i + (n_k - n_q)
    return m
"""),
        ("padding_mask", """
def padding_mask(lengths, n_k):
    return np.arange(n_k) < np.asarray(lengths)[:, None, None]
"""),
        ("scaled_dot_product_attention", """
def scaled_dot_product_attention(Q, K, V, mask=None):
    scores = np.einsum("...qd,...kd->...qk", Q, K) / Q.shape[-1] ** 0.5
    if mask is not None:
        scores = np.where(mask, scores, -1e30)
    weights = softmax(scores)
    if mask is not None:
        weights = np.where(mask, weights, 0.0)
    return weights @ V, weights
"""),
        ("scaled_dot_product_attention", """
def scaled_dot_product_attention(Q, K, V, mask=None):
    Q64, K64, V64 = (np.asarray(a, dtype=np.float64) for a in (Q, K, V))
    scores = Q64 @ np.swapaxes(K64, -1, -2) / math.sqrt(Q.shape[-1])
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    weights = softmax(scores, axis=-1)
    dtype = np.result_type(Q, K, V)
    return (weights @ V64).astype(dtype), weights.astype(dtype)
"""),
    ],
    "ch3-self-cross": [
        ("self_attention", """
def self_attention(X, W_q, W_k, W_v, causal=False):
    n = X.shape[-2]
    mask = np.tril(np.ones((n, n), dtype=bool)) if causal else None
    return scaled_dot_product_attention(X @ W_q, X @ W_k, X @ W_v, mask=mask)
"""),
        ("cross_attention", """
def cross_attention(X_q, X_kv, W_q, W_k, W_v, kv_mask=None):
    Q = np.einsum("...nd,dk->...nk", X_q, W_q)
    K = np.einsum("...nd,dk->...nk", X_kv, W_k)
    V = np.einsum("...nd,dk->...nk", X_kv, W_v)
    scores = np.einsum("...qk,...nk->...qn", Q, K) / np.float32(W_q.shape[1]) ** 0.5
    if kv_mask is not None:
        scores = np.where(kv_mask, scores, -np.inf)
    weights = softmax(scores, axis=-1)
    return (weights @ V).astype(Q.dtype), weights.astype(Q.dtype)
"""),
        ("sinusoidal_positions", """
def sinusoidal_positions(n, d):
    P = np.zeros((n, d))
    for p in range(n):
        for i in range(d // 2):
            angle = p / 10000 ** (2 * i / d)
            P[p, 2 * i], P[p, 2 * i + 1] = np.sin(angle), np.cos(angle)
    return P
"""),
        ("apply_rope", """
def apply_rope(x, positions, base=10000.0):
    d = x.shape[-1]
    angle = np.outer(positions, base ** (-np.arange(0, d, 2) / d))
    z = (x[..., 0::2] + 1j * x[..., 1::2]) * np.exp(1j * angle)  # each pair as a complex number, turned
    out = np.empty(x.shape, dtype=x.dtype if x.dtype.kind == "f" else np.float64)
    out[..., 0::2], out[..., 1::2] = z.real, z.imag
    return out
"""),
    ],
    "ch4-multihead": [
        ("split_heads", """
def split_heads(x, n_heads):
    b, s, d = x.shape
    return x.view(b, s, n_heads, -1).permute(0, 2, 1, 3)
"""),
        ("merge_heads", """
def merge_heads(x):
    b, h, s, hd = x.shape
    return x.permute(0, 2, 1, 3).contiguous().view(b, s, h * hd)
"""),
        ("MultiHeadAttention", """
class MultiHeadAttention(nn.Module):
    def __init__(self, d_model, n_heads, bias=True):
        super().__init__()
        self.n_heads = n_heads
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (
            nn.Linear(d_model, d_model, bias=bias) for _ in range(4))

    def forward(self, query, key, value, mask=None):
        B, Nq, D = query.shape
        H, hd = self.n_heads, D // self.n_heads
        q = self.q_proj(query).view(B, Nq, H, hd).transpose(1, 2)
        k = self.k_proj(key).view(B, -1, H, hd).transpose(1, 2)
        v = self.v_proj(value).view(B, -1, H, hd).transpose(1, 2)
        scores = torch.einsum("bhqd,bhkd->bhqk", q, k) / hd**0.5
        if mask is not None:
            scores = scores.masked_fill(~(mask[:, None] if mask.dim() == 3 else mask), float("-inf"))
        w = torch.softmax(scores, dim=-1).nan_to_num(0.0)
        return self.out_proj((w @ v).transpose(1, 2).reshape(B, Nq, D)), w
"""),
    ],
    "ch5-gqa": [
        ("repeat_kv", """
def repeat_kv(x, n_rep):
    return x.repeat_interleave(n_rep, dim=1)
"""),
        ("GroupedQueryAttention", """
class GroupedQueryAttention(nn.Module):
    def __init__(self, d_model, n_heads, n_kv_heads, bias=False):
        super().__init__()
        self.n_heads, self.n_kv_heads = n_heads, n_kv_heads
        self.head_dim = d_model // n_heads
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.k_proj = nn.Linear(d_model, n_kv_heads * self.head_dim, bias=bias)
        self.v_proj = nn.Linear(d_model, n_kv_heads * self.head_dim, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)

    def forward(self, x, mask=None, kv_cache=None):
        q = split_heads(self.q_proj(x), self.n_heads)
        k = split_heads(self.k_proj(x), self.n_kv_heads)
        v = split_heads(self.v_proj(x), self.n_kv_heads)
        if kv_cache is not None:
            k, v = torch.cat([kv_cache[0], k], dim=2), torch.cat([kv_cache[1], v], dim=2)
        rep = self.n_heads // self.n_kv_heads
        kr = k[:, :, None].expand(-1, -1, rep, -1, -1).flatten(1, 2)
        vr = v[:, :, None].expand(-1, -1, rep, -1, -1).flatten(1, 2)
        n_new, n_total = q.shape[2], kr.shape[2]
        if mask is None:
            mask = torch.ones(n_new, n_total, dtype=torch.bool).tril(n_total - n_new)
        elif mask.dim() == 3:
            mask = mask.unsqueeze(1)
        scores = (q @ kr.transpose(-1, -2) / math.sqrt(self.head_dim)).masked_fill(~mask, -1e30)
        w = torch.softmax(scores, dim=-1) * mask
        return self.out_proj(merge_heads(w @ vr)), (k, v)
"""),
        ("kv_cache_bytes", """
def kv_cache_bytes(batch, seq_len, n_layers, n_kv_heads, head_dim, bytes_per_elem=2):
    return math.prod([2, batch, seq_len, n_layers, n_kv_heads, head_dim, bytes_per_elem])
"""),
        ("mha_to_gqa", """
def mha_to_gqa(mha, n_kv_heads):
    H, hd, D = mha.n_heads, mha.head_dim, mha.d_model
    has_bias = mha.q_proj.bias is not None
    gqa = GroupedQueryAttention(D, H, n_kv_heads, bias=has_bias).to(mha.q_proj.weight.dtype)
    g = H // n_kv_heads
    with torch.no_grad():
        gqa.q_proj.load_state_dict(mha.q_proj.state_dict())
        gqa.out_proj.load_state_dict(mha.out_proj.state_dict())
        for name in ("k_proj", "v_proj"):
            src, dst = getattr(mha, name), getattr(gqa, name)
            dst.weight.copy_(src.weight.view(n_kv_heads, g, hd, D).mean(1).reshape(-1, D))
            if has_bias:
                dst.bias.copy_(src.bias.view(n_kv_heads, g, hd).mean(1).reshape(-1))
    return gqa
"""),
    ],
    "ch6-tiled": [
        ("tiled_attention", """
def tiled_attention(Q, K, V, block_size=128, causal=False):
    n_q, n_k = Q.shape[-2], K.shape[-2]
    out = torch.zeros(*Q.shape[:-1], V.shape[-1], dtype=Q.dtype)
    for q0 in range(0, n_q, block_size):
        q = Q[..., q0:q0 + block_size, :].double() / math.sqrt(Q.shape[-1])  # float64 inside
        m = torch.full((*q.shape[:-1], 1), float("-inf"), dtype=torch.float64)
        l = torch.zeros_like(m)
        acc = torch.zeros(*q.shape[:-1], V.shape[-1], dtype=torch.float64)
        for k0 in range(0, n_k, block_size):
            s = q @ K[..., k0:k0 + block_size, :].double().transpose(-1, -2)
            if causal:
                i = torch.arange(q0, q0 + q.shape[-2])[:, None]
                j = torch.arange(k0, k0 + s.shape[-1])[None, :]
                s = s.masked_fill(j > i + (n_k - n_q), float("-inf"))
            m_new = torch.maximum(m, s.max(dim=-1, keepdim=True).values)
            safe = m_new.nan_to_num(neginf=0.0)
            p = torch.exp(s - safe)
            l = l * torch.exp(m - safe) + p.sum(-1, keepdim=True)
            acc = acc * torch.exp(m - safe) + p @ V[..., k0:k0 + block_size, :].double()
            m = m_new
        out[..., q0:q0 + block_size, :] = (acc / l).nan_to_num(0.0).to(Q.dtype)
    return out
"""),
        ("sdpa_backward", """
def sdpa_backward(Q, K, V, dO, mask=None):
    # einsum, FlashAttention-2's D = rowsum(dO * O), and a where for the blocked rows
    S = torch.einsum("...qd,...kd->...qk", Q, K) / math.sqrt(Q.shape[-1])
    if mask is not None:
        S = torch.where(mask, S, torch.tensor(float("-inf"), dtype=S.dtype))
    m = S.amax(dim=-1, keepdim=True)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    E = torch.exp(S - m)
    total = E.sum(dim=-1, keepdim=True)
    A = torch.where(total > 0, E / total.clamp_min(1e-30), torch.zeros_like(E))
    O = torch.einsum("...qk,...kv->...qv", A, V)
    D = (dO * O).sum(dim=-1, keepdim=True)
    dA = torch.einsum("...qv,...kv->...qk", dO, V)
    dS = A * (dA - D)
    dQ = torch.einsum("...qk,...kd->...qd", dS, K) / math.sqrt(Q.shape[-1])
    dK = torch.einsum("...qk,...qd->...kd", dS, Q) / math.sqrt(Q.shape[-1])
    dV = torch.einsum("...qk,...qv->...kv", A, dO)
    return dQ, dK, dV
"""),
        ("sdpa_backward", """
def sdpa_backward(Q, K, V, dO, mask=None):
    # float64 inside, the Jacobian's row form with dA, cast back at the end
    q, k, v, do = (t.double() for t in (Q, K, V, dO))
    scale = 1.0 / math.sqrt(q.shape[-1])
    scores = (q @ k.transpose(-2, -1)) * scale
    if mask is not None:
        scores = scores.masked_fill(~mask, -1e30)
    A = torch.softmax(scores, dim=-1)
    if mask is not None:
        A = A * mask  # a fully blocked row: uniform over -1e30 scores, zeroed here
    dA = do @ v.transpose(-2, -1)
    dS = A * (dA - (dA * A).sum(-1, keepdim=True))
    return tuple(t.to(Q.dtype) for t in (dS @ k * scale, dS.transpose(-2, -1) @ q * scale, A.transpose(-2, -1) @ do))
"""),
    ],
    "ch7-transformer": [
        ("DecoderLayer", """
class DecoderLayer(nn.Module):
    def __init__(self, d_model, n_heads, n_kv_heads, d_ff):
        super().__init__()
        self.self_attn = GroupedQueryAttention(d_model, n_heads, n_kv_heads)
        self.cross_attn = MultiHeadAttention(d_model, n_heads)
        self.ff1, self.ff2 = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model)
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(d_model) for _ in range(3))

    def forward(self, x, memory, memory_mask=None, kv_cache=None):
        h, cache = self.self_attn(self.norm1(x), None, kv_cache)
        x = x + h
        h, weights = self.cross_attn(self.norm2(x), memory, memory, mask=memory_mask)
        x = x + h
        return x + self.ff2(torch.relu(self.ff1(self.norm3(x)))), cache, weights
"""),
        ("greedy_decode", """
def greedy_decode(model, src, bos_id, max_len, use_cache=True):
    memory, memory_mask = model.encode(src)
    out = [torch.full((src.shape[0],), bos_id)]
    caches = None
    for _ in range(max_len):
        if use_cache:
            logits, caches = model.decode(out[-1][:, None], memory, memory_mask, caches)
        else:
            logits, _ = model.decode(torch.stack(out, dim=1), memory, memory_mask)
        out.append(logits[:, -1].argmax(-1))
    return torch.stack(out[1:], dim=1) if max_len else torch.zeros(src.shape[0], 0, dtype=torch.long)
"""),
    ],
    "ch8-gpt": [
        ("sliding_window_mask", """
def sliding_window_mask(n_q, n_k, window):
    mask = torch.zeros(n_q, n_k, dtype=torch.bool)  # built in loops
    for i in range(n_q):
        p = i + n_k - n_q
        for j in range(max(0, p - window + 1), min(p, n_k - 1) + 1):
            mask[i, j] = True
    return mask
"""),
        ("rolling_cache_update", """
def rolling_cache_update(kv_cache, k_new, v_new, window):
    k, v = k_new, v_new
    if kv_cache is not None:
        k, v = (torch.cat((past, new), 2) for past, new in zip(kv_cache, (k_new, v_new)))
    start = max(0, k.shape[2] - window)
    return k.narrow(2, start, k.shape[2] - start).clone(), v[:, :, start:].clone()
"""),
        ("next_token_probs", """
def next_token_probs(logits, temperature=1.0, top_k=None, top_p=None):
    if temperature == 0:  # scatter a 1 at the argmax
        return torch.zeros_like(logits).scatter(-1, logits.argmax(-1, keepdim=True), 1.0)
    x = logits.double() / temperature  # float64 inside
    if top_k is not None and top_k < x.shape[-1]:
        kth = x.sort(dim=-1, descending=True).values[..., top_k - 1 : top_k]  # sort, not topk
        x = torch.where(x >= kth, x, torch.tensor(-1e30, dtype=x.dtype))
    e = torch.exp(x - x.amax(dim=-1, keepdim=True))  # softmax by hand, stable
    p = e / e.sum(dim=-1, keepdim=True)
    if top_p is not None:
        ranked, order = p.sort(dim=-1, descending=True)
        cum = torch.cumsum(ranked, dim=-1)
        keep_sorted = torch.cat([torch.ones_like(cum[..., :1], dtype=torch.bool), cum[..., :-1] < top_p], dim=-1)
        kept = torch.zeros_like(p, dtype=torch.bool).scatter(-1, order, keep_sorted)
        threshold = torch.where(kept, p, torch.full_like(p, 2.0)).amin(dim=-1, keepdim=True)
        p = torch.where(p >= threshold, p, torch.zeros_like(p))  # tokens tied with a kept one stay
        p = p / p.sum(dim=-1, keepdim=True)
    return p.to(logits.dtype)
"""),
        ("next_token_probs", """
def next_token_probs(logits, temperature=1.0, top_k=None, top_p=None):
    flat = logits.reshape(-1, logits.shape[-1])
    rows = []
    for row in flat:  # one row at a time, plain Python for the nucleus
        if temperature == 0:
            rows.append(torch.nn.functional.one_hot(row.argmax(), row.shape[-1]).to(row.dtype))
            continue
        s = row / temperature
        if top_k is not None:
            s = s.masked_fill(s < torch.topk(s, min(top_k, len(s))).values.min(), -math.inf)
        p = torch.softmax(s, dim=-1)
        if top_p is not None:
            values = sorted(p.tolist(), reverse=True)
            total, smallest = 0.0, values[0]
            for v in values:
                if total >= top_p:
                    break
                smallest, total = v, total + v
            p = torch.where(p >= smallest, p, torch.zeros_like(p))
            p = p / p.sum()
        rows.append(p)
    return torch.stack(rows).reshape(logits.shape)
"""),
        ("sample_next", """
def sample_next(logits, temperature=1.0, top_k=None, top_p=None, generator=None):
    probs = next_token_probs(logits, temperature=temperature, top_k=top_k, top_p=top_p)
    tokens = torch.multinomial(probs.view(-1, probs.size(-1)), 1, generator=generator)
    return tokens.squeeze(-1).view(logits.shape[:-1])
"""),
        ("induction_score", """
def induction_score(weights, period):
    # the diagonal i - period + 1 below the main one, without its first entry (i = period - 1)
    return weights.diagonal(offset=1 - period, dim1=-2, dim2=-1)[..., 1:].mean(-1)
"""),
        ("induction_score", """
def induction_score(weights, period):
    n = weights.shape[-1]
    total = torch.zeros(weights.shape[:-2], dtype=weights.dtype)
    for i in range(period, n):
        total = total + weights[..., i, i - period + 1]
    return total / (n - period)
"""),
    ],
}
CASES = [pytest.param(a, name, source, id=f"{a}-{name}-{i}")
         for a, answers in ALTERNATIVES.items() for i, (name, source) in enumerate(answers)]


@pytest.mark.parametrize(("assignment", "name", "source"), CASES)
def test_a_correct_alternative_scores_full_marks(assignment: str, name: str, source: str) -> None:
    ns = namespace(assignment)
    exec(source, ns)
    for secret in SECRETS:
        report = check(assignment, name, ns, secret)
        assert report.problem is None, f"secret {secret.hex()}: {report.problem}"


def test_every_exercise_has_alternatives() -> None:
    from grader.engine import registry

    assert set(ALTERNATIVES) >= set(registry.assignment_ids())
