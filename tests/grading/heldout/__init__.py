"""A held-out class of students: correct and wrong versions of every graded function.

Written from what a student has (the release notebooks, the readings and COURSE.md), before and
without looking at the hidden checks, the known-mistake catalogue or the reference solutions, so that
grading them measures the grader honestly: ``scripts/heldout_class.py`` and
``tests/grading/test_heldout_class.py``. Each variant replaces ONE graded function (or class) of an
otherwise correct notebook. Do not edit a variant to make it pass; a label found wrong by the contract
is fixed with a one-line justification next to it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path

ASSIGNMENTS = (
    "ch1-lookup", "ch2-sdpa", "ch3-self-cross", "ch4-multihead", "ch5-gqa", "ch6-tiled", "ch7-transformer", "ch8-gpt",
)


@dataclass(frozen=True)
class Variant:
    """One student's version of one graded function.

    ``kind`` is ``"correct"`` (a different way to satisfy the contract exactly) or ``"wrong"`` (a
    realistic misconception, said in words by ``misconception``); a feedback message names the
    mistake when it contains one of ``keywords`` (case-insensitive).
    """

    function: str
    kind: str
    name: str
    source: str
    misconception: str = ""
    keywords: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.kind not in ("correct", "wrong"):
            raise ValueError(f"{self.name}: kind must be 'correct' or 'wrong', not {self.kind!r}")
        if self.kind == "wrong" and not (self.misconception and self.keywords):
            raise ValueError(f"{self.name}: a wrong variant needs its misconception and keywords")


def edit(source: str, *changes: tuple[str, str]) -> str:
    """``source`` with each ``(old, new)`` change made; every ``old`` must occur exactly once.

    A wrong variant of a long function is written as the student's small change to a correct one.
    """
    for old, new in changes:
        if source.count(old) != 1:
            raise ValueError(f"{old!r} occurs {source.count(old)} times in the source, not once")
        source = source.replace(old, new)
    return source


def variants(assignment: str) -> list[Variant]:
    """The variants of one assignment (``ch2-sdpa`` -> ``heldout/ch2_sdpa.py``)."""
    module = importlib.import_module(f"{__name__}.{assignment.replace('-', '_')}")
    return list(module.VARIANTS)


def all_variants() -> dict[str, list[Variant]]:
    """Every assignment's variants, in course order."""
    here = Path(__file__).parent
    return {a: variants(a) for a in ASSIGNMENTS if (here / f"{a.replace('-', '_')}.py").exists()}
