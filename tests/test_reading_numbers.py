"""Every number a reading page types in its prose is glued from the computation, set or asserted by the page's
code, or a constant listed here with its reason (``tests/prose_numbers.py`` says how prose is read).

The build enforces the rest: a ``{glue:text}`` role whose value the page did not compute, or a hidden
``course.claims.check`` that is false for this build's numbers, fails ``jupyter-book build -W``
(``tests/site/test_site_claims.py`` proves it on a small book broken on purpose).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from prose_numbers import ProseNumber, code_literals, prose_numbers

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
#: The reading pages: every chapter and the introduction (the guides for students and instructors are not
#: readings; the teaching guide's counts are generated, see tests/test_teaching_guide.py).
READINGS = sorted(BOOK.glob("ch*_*.md")) + [BOOK / "intro.md"]
#: Numbers no page needs to justify: nothing, one, two ("two heads", "2 bytes", "sums to 1").
TRIVIAL = {0.0, 1.0, 2.0}
#: The authors' time estimates at the top of a chapter are estimates, not measurements.
ESTIMATE_LINE = re.compile(r"^\*\*Time:\*\*")


@dataclass(frozen=True)
class Allowed:
    page: str
    text: str
    reason: str
    holds: Callable[[], bool] = lambda: True


def _llama_head_dim() -> bool:
    from course import kvcache

    return kvcache.LLAMA2_7B.head_dim == kvcache.LLAMA2_70B.head_dim == 128


ALLOWED = [
    Allowed("ch4_multihead.md", "128", "the head width of published models (Llama-2's, chapter 5)", _llama_head_dim),
    Allowed("intro.md", "1024", "the definition of a KiB", lambda: 2**10 == 1024),
    Allowed("intro.md", "80", "a GPU sold as '80 GB' (its product name)"),
    Allowed("intro.md", "74.5", "80 GB in GiB", lambda: round(80e9 / 2**30, 1) == 74.5),
]


def unjustified(path: Path) -> list[ProseNumber]:
    """The prose numbers of ``path`` that are neither glued, nor literals of its code, nor allowed."""
    literals = code_literals(path)
    allowed = {a.text for a in ALLOWED if a.page == path.name}
    return [n for n in prose_numbers(path)
            if n.value not in TRIVIAL and n.value not in literals and n.text not in allowed
            and not ESTIMATE_LINE.match(n.context.strip())]


@pytest.mark.parametrize("page", READINGS, ids=lambda p: p.name)
def test_every_prose_number_is_glued_computed_or_allowed(page: Path) -> None:
    bad = unjustified(page)
    assert not bad, (
        "typed numbers that no computation backs: glue them ({glue:text}`name:fmt` + course.claims.glue), "
        "or set or check them in the page's code, or allow them in tests/test_reading_numbers.py:\n"
        + "\n".join(map(str, bad))
    )


@pytest.mark.parametrize("allowed", ALLOWED, ids=lambda a: f"{a.page}:{a.text}")
def test_allowed_constants_hold_and_are_still_used(allowed: Allowed) -> None:
    assert allowed.holds(), f"{allowed.page}: {allowed.text} ({allowed.reason}) is no longer true"
    assert allowed.text in {n.text for n in prose_numbers(BOOK / allowed.page)}, "unused: remove it from ALLOWED"


def test_the_time_lines_count_the_graded_functions_and_points() -> None:
    from grader.engine.registry import exercises

    by_chapter = {ex.id.split("-")[0]: ex for ex in exercises()}
    checked = 0
    for page in READINGS:
        for line in page.read_text(encoding="utf-8").splitlines():
            found = re.search(r"\((\d+) functions?, (\d+) points", line) if ESTIMATE_LINE.match(line) else None
            if found:
                ex = by_chapter[page.name.split("_")[0]]
                assert (int(found.group(1)), int(found.group(2))) == (len(ex.points), sum(ex.points.values())), (
                    f"{page.name}: {found.group(0)}) but {ex.id} grades {len(ex.points)} functions for "
                    f"{sum(ex.points.values()):g} points")
                checked += 1
    assert checked >= 5


def test_the_check_catches_a_typed_number_and_accepts_it_glued(tmp_path: Path) -> None:
    page = tmp_path / "ch9_broken.md"
    cell = "```{code-cell} ipython3\nspeedup = loop_ms / batched_ms\nn_heads = 64\n```\n"
    page.write_text(f"# A page\n\n{cell}\nWith 64 heads the loop took 2.8 times as long, or 2.8x.\n",
                    encoding="utf-8")
    assert [(n.text, n.line) for n in unjustified(page)] == [("2.8", 8), ("2.8", 8)]
    page.write_text(f"# A page\n\n{cell}\nWith 64 heads the loop took {{glue:text}}`speedup:.1f` times as long.\n",
                    encoding="utf-8")
    assert unjustified(page) == []


def test_prose_is_read_without_code_math_roles_and_references(tmp_path: Path) -> None:
    page = tmp_path / "ch9_reading.md"
    page.write_text(
        "---\nkernelspec:\n  name: python3\n---\n\n# Chapter 9\n\n"
        "```{code-cell} ipython3\n:tags: [remove-cell]\nfig, ax = plt.subplots(figsize=(7.5, 3))\n```\n\n"
        "```{code-cell} ipython3\n---\nmystnb:\n  image:\n    alt: a line crossing 9,000\n---\nx = 1\n```\n\n"
        "1. A question about chapter 4 and section 3.2.2 with $e^{-17}$, `(2, 10, 512)` and float32.\n\n"
        ":::{dropdown} Answer\nIt is 7.5 {cite}`vaswani2017attention`, see [here](https://x.org/1234), 9,000.\n:::\n",
        encoding="utf-8",
    )
    # a figure size or an alt text licenses nothing; the dropdown answer is prose
    assert [n.text for n in unjustified(page)] == ["7.5", "9,000"]
