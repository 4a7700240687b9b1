"""``python -m grader similarity``: a planted copy ranks first, honest work below, the reference copy flagged.

A ch2-sdpa class written here by hand: five students who solved the four functions each in their own way,
one more (``orig``), ``copy`` who took orig's work and renamed every variable, reordered the statements
that can be reordered and rewrote the comments, and ``refcopy`` who copied the public reference with new
names. No grading is needed: similarity reads ``submitted/``. The report is opened in Chromium.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from report_browser import look_at

from grader.coursedir import COURSE_DIR
from grader.term.similarity import REFERENCE, compare_class, normalise, winnow

pytestmark = pytest.mark.grading
A = "ch2-sdpa"
SOFTMAX, CAUSAL, PADDING, SDPA = ("answer-softmax", "answer-causal_mask", "answer-padding_mask",
                                  "answer-scaled_dot_product_attention")

HONEST = {
    "alice": {
        SOFTMAX: """m = x.max(axis=axis, keepdims=True)
m[~np.isfinite(m)] = 0
ex = np.exp(x - m)
s = ex.sum(axis=axis, keepdims=True)
with np.errstate(invalid="ignore", divide="ignore"):
    out = ex / s
return np.nan_to_num(out)""",
        CAUSAL: """i = np.arange(n_q)[:, None]
j = np.arange(n_k)[None, :]
return j <= i + (n_k - n_q)""",
        PADDING: """out = np.zeros((len(lengths), 1, n_k), dtype=bool)
for b, n in enumerate(lengths):
    out[b, 0, :n] = True
return out""",
        SDPA: """scale = 1.0 / np.sqrt(Q.shape[-1])
s = np.matmul(Q, np.swapaxes(K, -2, -1)) * scale
if mask is not None:
    s = np.where(mask, s, -np.inf)
w = softmax(s)
return np.matmul(w, V), w""",
    },
    "bob": {
        SOFTMAX: """shifted = x - np.max(np.where(np.isneginf(x), -1e300, x), axis=axis, keepdims=True)
weights = np.exp(shifted)
norm = weights.sum(axis=axis, keepdims=True)
norm = np.where(norm == 0, 1, norm)
return weights / norm""",
        CAUSAL: """return np.triu(np.ones((n_q, n_k), dtype=bool), k=n_k - n_q + 1) == False""",
        PADDING: """idx = np.arange(n_k)
valid = idx[np.newaxis, :] < np.asarray(lengths).reshape(-1, 1)
return valid.reshape(len(lengths), 1, n_k)""",
        SDPA: """d = K.shape[-1]
logits = np.einsum("...qd,...kd->...qk", Q, K) / d ** 0.5
if mask is not None:
    logits = np.where(mask, logits, float("-inf"))
attn = softmax(logits, axis=-1)
out = np.einsum("...qk,...kv->...qv", attn, V)
return out, attn""",
    },
    "carol": {
        SOFTMAX: """z = np.asarray(x, dtype=float)
top = np.amax(z, axis=axis, keepdims=True)
top = np.nan_to_num(top, neginf=0.0)
p = np.exp(z - top)
denom = np.sum(p, axis=axis, keepdims=True)
safe = np.maximum(denom, 1e-300)
return np.where(denom > 0, p / safe, 0.0)""",
        CAUSAL: """mask = np.zeros((n_q, n_k), dtype=bool)
for q in range(n_q):
    mask[q, : q + n_k - n_q + 1] = True
return mask""",
        PADDING: """return np.arange(n_k).reshape(1, 1, -1) < np.asarray(lengths).reshape(-1, 1, 1)""",
        SDPA: """K_t = K.swapaxes(-1, -2)
raw = Q @ K_t
raw = raw / np.sqrt(K.shape[-1])
if mask is not None:
    raw = np.where(mask.astype(bool), raw, -np.inf)
probs = softmax(raw, -1)
context = probs @ V
return context, probs""",
    },
    "dmitri": {
        SOFTMAX: """out = np.empty_like(x, dtype=float)
moved = np.moveaxis(x, axis, -1)
flat = moved.reshape(-1, moved.shape[-1])
res = []
for row in flat:
    if np.all(np.isneginf(row)):
        res.append(np.zeros_like(row))
        continue
    e = np.exp(row - row.max())
    res.append(e / e.sum())
return np.moveaxis(np.array(res).reshape(moved.shape), -1, axis)""",
        CAUSAL: """allowed = np.greater_equal.outer(np.arange(n_q) + (n_k - n_q), np.arange(n_k))
return allowed""",
        PADDING: """batch = len(lengths)
m = np.tile(np.arange(n_k), (batch, 1)) < np.array(lengths)[:, np.newaxis]
return np.expand_dims(m, 1)""",
        SDPA: """dk = Q.shape[-1]
sc = np.einsum("...id,...jd->...ij", Q, K)
sc = sc / math.sqrt(dk)
if mask is not None:
    sc[..., :, :] = np.where(np.broadcast_to(mask, sc.shape), sc, -np.inf)
a = softmax(sc, axis=-1)
return a @ V, a""",
    },
    "eun": {
        SOFTMAX: """x = np.array(x, dtype=np.float64)
lim = np.max(x, axis, keepdims=True)
lim = np.where(lim == -np.inf, 0, lim)
num = np.exp(x - lim)
den = num.sum(axis, keepdims=True)
return np.divide(num, den, out=np.zeros_like(num), where=den != 0)""",
        CAUSAL: """shift = n_k - n_q
grid_q, grid_k = np.meshgrid(np.arange(n_q), np.arange(n_k), indexing="ij")
return grid_k - grid_q <= shift""",
        PADDING: """L = np.asarray(lengths)[:, None, None]
return np.broadcast_to(np.arange(n_k), (L.shape[0], 1, n_k)) < L""",
        SDPA: """n = Q.shape[-1] ** -0.5
S = (Q * n) @ K.transpose(*range(K.ndim - 2), K.ndim - 1, K.ndim - 2)
if mask is not None:
    S = np.where(mask == True, S, -np.inf)
P = softmax(S)
O = P @ V
return O, P""",
    },
    "orig": {
        SOFTMAX: """# subtract the biggest value so exp does not overflow
biggest = np.max(x, axis=axis, keepdims=True)
biggest[np.isinf(biggest)] = 0.0
numer = np.exp(x - biggest)
denom = np.sum(numer, axis=axis, keepdims=True)
result = np.zeros_like(numer)
np.divide(numer, denom, out=result, where=denom != 0)
return result""",
        CAUSAL: """rows = np.arange(n_q).reshape(n_q, 1)
cols = np.arange(n_k).reshape(1, n_k)
offset = n_k - n_q
return cols - rows <= offset""",
        PADDING: """lengths = np.array(lengths)
positions = np.arange(n_k)
keep = positions[None, None, :] < lengths[:, None, None]
return keep""",
        SDPA: """depth = Q.shape[-1]
factor = 1 / np.sqrt(depth)
energies = factor * (Q @ np.moveaxis(K, -1, -2))
if mask is not None:
    energies = np.where(mask, energies, -np.inf)
attention = softmax(energies, axis=-1)
mixed = attention @ V
return mixed, attention""",
    },
}
#: orig's work, every variable renamed, independent statements reordered, comments rewritten.
COPY = {
    SOFTMAX: """mx = np.max(x, axis=axis, keepdims=True)  # the row maximum
mx[np.isinf(mx)] = 0.0
upper = np.exp(x - mx)

lower = np.sum(upper, axis=axis, keepdims=True)
ans = np.zeros_like(upper)   # zeros where a row is blocked
np.divide(upper, lower, out=ans, where=lower != 0)
return ans""",
    CAUSAL: """shift = n_k - n_q
c = np.arange(n_k).reshape(1, n_k)
r = np.arange(n_q).reshape(n_q, 1)
return c - r <= shift""",
    PADDING: """pos = np.arange(n_k)
lengths = np.array(lengths)
ok = pos[None, None, :] < lengths[:, None, None]
return ok""",
    SDPA: """dim = Q.shape[-1]
scale = 1 / np.sqrt(dim)
e = scale * (Q @ np.moveaxis(K, -1, -2))
if mask is not None:
    e = np.where(mask, e, -np.inf)  # blocked keys
a = softmax(e, axis=-1)
out = a @ V
return out, a""",
}


def reference_bodies() -> dict[str, str]:
    """The public reference (the source notebook's solutions), every variable renamed: a copy of it."""
    nb = json.loads((COURSE_DIR / "source" / A / f"{A}.ipynb").read_text())
    bodies = {}
    for c in nb["cells"]:
        nbg = c["metadata"].get("nbgrader", {})
        if nbg.get("solution"):
            text = "".join(c["source"]).split("### BEGIN SOLUTION\n", 1)[1].split("    ### END SOLUTION")[0]
            for old, new in (("peak", "hi"), ("total", "tot"), ("e =", "ex ="), ("e,", "ex,"), ("(e)", "(ex)"),
                             ("scores", "sc"), ("weights", "wts"), ("d_k", "dim")):
                text = text.replace(old, new)
            bodies[nbg["grade_id"]] = "\n".join(line[4:] for line in text.splitlines())
    return bodies


def cell_with(release_cell: str, body: str) -> str:
    """The release's answer cell (signature and docstring) with the student's body instead of the stub."""
    head = release_cell.split("    # YOUR CODE HERE")[0].rstrip() + "\n"
    return head + "".join(f"    {line}\n" for line in body.splitlines())


def write_class(root: Path, answers: dict[str, dict[str, str]]) -> Path:
    """A ch2-sdpa course at ``root`` (source, release, config) with one submission per student of
    ``answers`` (student -> answer cell grade id -> the body they wrote)."""
    for part in ("source", "release"):
        shutil.copytree(COURSE_DIR / part / A, root / part / A)
    shutil.copy(COURSE_DIR / "nbgrader_config.py", root / "nbgrader_config.py")
    release = json.loads((root / "release" / A / f"{A}.ipynb").read_text())
    for student, bodies in answers.items():
        nb = json.loads(json.dumps(release))
        for c in nb["cells"]:
            gid = c["metadata"].get("nbgrader", {}).get("grade_id")
            if gid in bodies:
                c["source"] = cell_with("".join(c["source"]), bodies[gid])
        folder = root / "submitted" / student / A
        folder.mkdir(parents=True)
        (folder / f"{A}.ipynb").write_text(json.dumps(nb))
    return root


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    return write_class(tmp_path_factory.mktemp("similarity") / "course",
                       {**HONEST, "copy": COPY, "refcopy": reference_bodies()})


def test_normalising_forgets_names_comments_and_layout():
    a = normalise("total = np.sum(e, axis=axis)  # sum\n", 0)
    b = normalise("s=np.sum( ex ,axis = ax)\n\n", 0)
    assert [t.text for t in a] == [t.text for t in b] == ["V", "=", "V", ".", "sum", "(", "V", ",", "V", "=", "V",
                                                          ")"]
    assert winnow(normalise("x = 1\n" * 30, 0)) and not winnow(normalise("x = 1\n", 0))


def test_the_planted_copy_ranks_first_and_the_reference_copy_is_flagged(course):
    result = compare_class(course, A)
    assert len(result.students) == 8 and result.pairs == 28
    first = result.ranked[0]
    assert {first.a, first.b} == {"copy", "orig"}, [(p.a, p.b, round(p.score, 2)) for p in result.ranked[:5]]
    honest = [p for p in result.ranked if {p.a, p.b} != {"copy", "orig"}]
    assert first.score >= 0.6 and all(p.score < first.score - 0.25 for p in honest), (
        first.score, [(p.a, p.b, round(p.score, 2)) for p in honest[:5]])
    closest = result.to_reference[0]
    assert closest.a == "refcopy" and closest.b == REFERENCE and closest.score >= 0.6
    assert all(p.score < closest.score - 0.25 for p in result.to_reference[1:])


@pytest.mark.site
def test_the_report_in_chromium(course):
    from grader.cli import main

    assert main(["--course-dir", str(course), "similarity", A, "--top", "5"]) == 0
    page = course / "similarity" / f"{A}.html"
    text = page.read_text()
    assert "This report flags; it does not decide." in text
    assert "<mark>" in text and re.search(r"<mark>\s*mx = np\.max\(x, axis=axis, keepdims=True\)", text)
    for view in look_at(page):
        assert all(u.startswith(("file://", "data:")) for u in view["requests"]), view["requests"]
        assert view["errors"] == [] and view["violations"] == [], (view["errors"], view["violations"])
        assert view["overflow"] <= 0, f"the page scrolls sideways at {view['width']} px"
        assert "copy" in view["text"] and "orig" in view["text"]
