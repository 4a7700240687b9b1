"""The known-mistake catalogue in numbers, for the teaching guide: ``python -m grader.catalogue``.

Every known mistake of every exercise (``grader/exercises/<id>/checks.py``, ``MISTAKES``) belongs to one
*theme*, a kind of error that recurs across chapters (a missing ``1/sqrt(d_k)``, an inverted mask, a
cache that is not passed back...). :data:`THEMES` assigns them; a test fails when a mistake is added
without a theme or a theme names a mistake that no longer exists.

The teaching guide (``book/teaching.md``) quotes these counts between markers
``<!-- catalogue:NAME -->`` and ``<!-- /catalogue:NAME -->``; the text between them is generated here:

    python -m grader.catalogue             # print the tables
    python -m grader.catalogue --write     # rewrite the generated blocks of book/teaching.md
    python -m grader.catalogue --check     # exit 1 when the page's blocks differ (the tests run it)

The counts say what the authors anticipated, not how often a class makes each mistake: ``python -m
grader grade`` prints a class's own most common mistakes after grading.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

from grader.engine.registry import Exercise, exercises

GUIDE = Path(__file__).resolve().parents[1] / "book" / "teaching.md"

#: theme -> (what it is, in a few words; the ids of its mistakes). Order: how the guide lists them.
THEMES: dict[str, tuple[str, tuple[str, ...]]] = {
    "scale": ("the 1/sqrt(d_k) scale missing, or taken from the wrong width, or a temperature multiplied", (
        "soft-temperature-multiplied", "soft-sqrt-d-scale", "sdpa-no-scale", "self-no-scale",
        "self-scale-d-model", "cross-no-scale", "mha-scale-d-model", "mha-no-scale", "tiled-no-scale",
        "sdpa-scale-d-v", "cross-scale-d-v", "probs-temperature-multiplies",
        "bwd-no-scale", "bwd-weights-unscaled",
    )),
    "masks": ("a mask inverted, ignored, or applied after the softmax", (
        "causal-inverted", "padding-inverted", "sdpa-mask-after-softmax", "sdpa-mask-inverted",
        "sdpa-large-negative-mask", "self-causal-ignored", "self-causal-inverted", "cross-mask-ignored",
        "cross-mask-inverted", "mha-mask-inverted", "decoder-memory-mask-ignored", "gqa-mask-combined",
        "tiled-large-negative-mask", "window-two-sided", "window-inverted",
        "bwd-mask-ignored",
    )),
    "off by one": ("a position off by one, or a causal triangle aligned to the wrong corner", (
        "causal-off-by-one", "causal-top-left", "padding-off-by-one", "gqa-causal-top-left",
        "sinusoidal-positions-from-1", "tiled-causal-local-index", "greedy-first-position", "greedy-one-token-short",
        "tiled-causal-top-left", "window-one-too-many", "window-one-too-few", "window-top-left", "cache-one-short",
        "probs-top-k-one-more", "probs-top-p-drops-crossing", "induction-duplicate-token", "induction-from-first-half",
    )),
    "axes and layout": ("the wrong axis, a missing transpose, or heads and groups laid out the wrong way", (
        "grad-transposed", "softmax-ignores-axis", "softmax-no-keepdims", "padding-no-query-axis",
        "sdpa-k-transpose-all-axes", "sdpa-softmax-over-queries", "self-q-k-swapped", "cross-directions-swapped",
        "sinusoidal-sin-cos-swapped", "sinusoidal-half-split", "rope-half-split", "split-no-transpose",
        "split-strided-features", "split-heads-last", "merge-no-transpose", "merge-strided-features",
        "mha-weights-averaged", "repeat-tile", "repeat-seq-axis", "gqa-tiled-heads", "mha2gqa-strided-groups",
        "cache-heads-axis", "sample-keeps-sample-axis", "induction-transposed", "induction-one-number",
        "bwd-rowsum-wrong-axis", "bwd-dk-no-transpose", "bwd-dv-no-transpose",
    )),
    "numerics": ("overflow, NaN, or the online softmax's rescaling and final division forgotten", (
        "soft-unstable", "soft-not-normalised", "softmax-unstable", "softmax-blocked-row-nan", "tiled-no-rescale",
        "tiled-no-final-divide", "soft-shift-by-abs-max", "softmax-shift-by-abs-max", "probs-greedy-not-special",
        "probs-softmax-overflows", "probs-top-p-not-renormalised",
        "bwd-blocked-row-nan",
    )),
    "inputs and dtypes": ("an input changed in place, or a result that does not keep the dtype of its input", (
        "softmax-in-place", "sdpa-float64-scale", "tiled-scales-q-in-place", "probs-modifies-logits",
        "probs-greedy-int-one-hot",
    )),
    "frequencies": ("a frequency, an exponent or a rotation direction of the position encodings", (
        "sinusoidal-exponent-i-over-d", "sinusoidal-frequency-inverted", "rope-rotation-reversed",
        "rope-exponent-i-over-d", "rope-positions-ignored", "rope-base-ignored",
    )),
    "the KV cache": ("the cache ignored, repeated, not passed back, or rolled the wrong way", (
        "gqa-cache-ignored", "gqa-cache-repeated", "decoder-cache-ignored", "greedy-cache-not-passed-back",
        "greedy-prefix-with-cache", "greedy-cache-unused", "cache-keeps-oldest", "cache-new-first",
        "cache-values-not-rolled",
    )),
    "the recipe": ("a step of the recipe left out, done differently or in another order (a projection, a residual, "
                   "a norm, the order of the sampling rules, which of tied keys wins...)", (
        "hard-returns-key", "hard-nearest-key", "hard-any-coordinate", "grad-not-halved", "cross-kv-from-queries",
        "mha-no-out-proj", "kvbytes-no-values", "kvbytes-no-layers", "kvbytes-bits", "mha2gqa-sum",
        "mha2gqa-first-head", "mha2gqa-pooled-queries", "decoder-cross-not-normalised", "decoder-no-cross-residual",
        "decoder-post-norm", "decoder-no-relu", "greedy-keeps-bos", "tiled-full-matrix",
        "hard-last-match", "mha-self-only", "mha-key-value-swapped", "gqa-bias-ignored",
        "probs-greedy-shares-ties", "probs-top-k-ties-dropped", "probs-top-p-before-temperature",
        "probs-top-p-before-top-k", "sample-no-generator", "sample-argmax", "sample-ignores-rules",
        "sample-softmax-twice", "induction-sum",
        "bwd-no-rowsum", "bwd-softmax-as-identity", "hard-close-enough",
    )),
}


def theme_of(mistake_id: str) -> str:
    """The theme of a known mistake; ``KeyError`` when :data:`THEMES` does not list it."""
    for theme, (_, ids) in THEMES.items():
        if mistake_id in ids:
            return theme
    raise KeyError(f"known mistake {mistake_id!r} has no theme: add it to grader/catalogue.py THEMES")


def _chapter(ex: Exercise) -> str:
    return ex.id.split("-")[0].replace("ch", "")


def _by_theme(ex: Exercise) -> str:
    themes = Counter(theme_of(m.id) for m in ex.mistakes)
    return ", ".join(f"{theme} {count}" for theme, count in sorted(themes.items(), key=lambda t: (-t[1], t[0])))


def chapter_table(course: tuple[Exercise, ...] | None = None) -> str:
    """Markdown: one row per assignment: its graded functions with their points, and its known mistakes."""
    course = course or exercises()
    lines = ["| assignment | graded functions (points) | known mistakes |", "| --- | --- | --- |"]
    for ex in course:
        graded = ", ".join(f"`{name}` ({points:g})" for name, points in ex.points.items())
        lines.append(f"| `{ex.id}` | {graded} | {len(ex.mistakes)} |")
    total = sum(len(ex.mistakes) for ex in course)
    lines.append(f"| all {len(course)} | {sum(len(ex.points) for ex in course)} functions, "
                 f"{sum(sum(ex.points.values()) for ex in course):g} points | {total} |")
    return "\n".join(lines)


def theme_table(course: tuple[Exercise, ...] | None = None) -> str:
    """Markdown: one row per theme: what it is, its known mistakes, and the chapters they appear in."""
    course = course or exercises()
    found = {theme: [(ex, m) for ex in course for m in ex.mistakes if theme_of(m.id) == theme] for theme in THEMES}
    lines = ["| theme | what goes wrong | known mistakes | in chapters |", "| --- | --- | --- | --- |"]
    for theme, items in sorted(found.items(), key=lambda t: (-len(t[1]), list(THEMES).index(t[0]))):
        chapters = sorted({_chapter(ex) for ex, _ in items}, key=int)
        lines.append(f"| {theme} | {THEMES[theme][0]} | {len(items)} | {', '.join(chapters)} |")
    return "\n".join(lines)


def chapter_mistakes(assignment: str, course: tuple[Exercise, ...] | None = None) -> str:
    """Markdown bullets: the known mistakes of one assignment, by graded function, as their ids."""
    course = course or exercises()
    (ex,) = [e for e in course if e.id == assignment]
    lead = (f"Its known mistakes by theme: {_by_theme(ex)}. By graded function (their ids; the message each one "
            f"shows in the feedback and the grading summary is in `grader/exercises/{ex.id}/checks.py`):\n\n")
    return lead + "\n".join(f"- `{name}`: " + ", ".join(f"`{m.id}`" for m in ex.mistakes_of(name))
                             for name in ex.points if ex.mistakes_of(name))


def blocks(course: tuple[Exercise, ...] | None = None) -> dict[str, str]:
    """``{marker name: generated markdown}`` for every block of the guide."""
    course = course or exercises()
    found = {"chapters": chapter_table(course), "themes": theme_table(course)}
    for ex in course:
        found[f"mistakes-{ex.id}"] = chapter_mistakes(ex.id, course)
    return found


_BLOCK = re.compile(r"(<!-- catalogue:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /catalogue:(?P=name) -->)", re.S)


def render(text: str, generated: dict[str, str]) -> str:
    """``text`` with every catalogue block's body replaced by its generated markdown."""
    def fill(match: re.Match[str]) -> str:
        name = match.group("name")
        if name not in generated:
            raise KeyError(f"{GUIDE.name}: unknown catalogue block {name!r}; known: {', '.join(generated)}")
        return f"{match.group(1)}\n{generated[name]}\n\n{match.group(4)}"

    return _BLOCK.sub(fill, text)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    generated = blocks()
    if not args:
        print(generated["chapters"], generated["themes"], sep="\n\n")
        return 0
    if args not in (["--write"], ["--check"]):
        print("usage: python -m grader.catalogue [--write | --check]", file=sys.stderr)
        return 2
    text = GUIDE.read_text(encoding="utf-8")
    # The two tables are required; a chapter's list of mistakes appears where the guide has its section.
    missing = [name for name in ("chapters", "themes") if f"<!-- catalogue:{name} -->" not in text]
    new = render(text, generated)
    if args == ["--write"]:
        GUIDE.write_text(new, encoding="utf-8")
        print(f"[catalogue] wrote {GUIDE}" + (f"; it lacks the blocks {', '.join(missing)}" if missing else ""))
        return 0
    if new != text or missing:
        print(f"[catalogue] {GUIDE} is stale (or lacks blocks {missing}): run `python -m grader.catalogue --write`",
              file=sys.stderr)
        return 1
    print(f"[catalogue] {GUIDE.name} is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
