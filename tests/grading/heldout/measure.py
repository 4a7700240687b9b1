"""Grading the held-out class with the grader's own verdict, in-process.

Each variant's notebook is the solved release (the instructor's answers, as
:func:`grader.generate.filled_release` fills it) with the variant's answer cell instead; its cells run
in one namespace as a kernel would run them, and each graded function is checked by
:func:`grader.engine.checker.check` through :func:`grader.engine.local.local_answer`: the same hidden
cases, jobs, probe, helpers, comparison and messages as a sandboxed kernel gets, without the sandbox
(so this is for the course's own test code, never for submissions). Used by
``scripts/heldout_class.py`` (every variant, many secrets) and ``tests/grading/test_heldout_class.py``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import re
from dataclasses import dataclass, field
from functools import cache

from grader import generate
from grader.engine import checker, refusals, registry
from grader.engine.local import local_answer
from grader.engine.reference import compile_student

from . import Variant


def secrets(n: int) -> list[bytes]:
    """``n`` fixed course secrets (the same on every run, so a table can be reproduced)."""
    return [hashlib.sha256(f"held-out class, secret {i}".encode()).digest() for i in range(n)]


@cache
def _solved_cells(assignment: str) -> tuple[tuple[dict, str], ...]:
    """The solved release's code cells, read once per assignment (callers copy the metadata)."""
    release = generate.filled_release(assignment)
    return tuple((dict(c.metadata.get("nbgrader", {})), c.source) for c in release.cells if c.cell_type == "code")


def notebook_cells(assignment: str, variant: Variant | None = None) -> list[tuple[dict, str]]:
    """The code cells of the solved release, ``(nbgrader metadata, source)``, with ``variant``'s cell."""
    cells = []
    for solved_meta, source in _solved_cells(assignment):
        meta = dict(solved_meta)
        if variant is not None and meta.get("grade_id") == f"answer-{variant.function}":
            source = variant.source
        cells.append((meta, source))
    if variant is not None and not any(m.get("grade_id") == f"answer-{variant.function}" for m, _ in cells):
        raise ValueError(f"{assignment} has no answer cell answer-{variant.function}")
    return cells


def namespace_of(cells: list[tuple[dict, str]]) -> dict:
    """Run the cells as the student's kernel would (grade cells skipped: the grader replaces them).

    A cell that raises does not stop the others, as in a kernel; its output is discarded.
    """
    namespace: dict = {"__name__": "__main__"}
    for meta, source in cells:
        if meta.get("grade") or source.strip() == "self_check()":
            continue
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            try:
                exec(compile_student(source, "<cell>"), namespace)
            except Exception:  # noqa: BLE001 - a failing cell, as in the kernel
                pass
    return namespace


def grade(assignment: str, variant: Variant, secret: bytes, only: str | None = None) -> dict[str, checker.Report]:
    """``{graded function: the grader's report}`` for the notebook with ``variant`` (``only``: one function)."""
    exercise = registry.exercise(assignment)
    cells = notebook_cells(assignment, variant)
    namespace = namespace_of(cells)
    sources = [s for m, s in cells if not m.get("grade") and not m.get("locked")]
    static = refusals.library_attention_in(sources, exercise.points)
    answer = local_answer(namespace)
    reports, done = {}, []
    for name in exercise.check_order:
        if only is None or name == only:
            reports[name] = checker.check(exercise, name, answer, secret, done, static)
        done.append(name)
    return reports


@dataclass
class Outcome:
    """What the grader did with one variant over all secrets."""

    assignment: str
    variant: Variant
    lost: list[tuple[int, str, str]] = field(default_factory=list)  # (secret, function, message) that failed
    kept: list[int] = field(default_factory=list)  # secrets under which the variant's own function passed
    message: str | None = None  # the first failing message of the variant's own function
    mistake: str | None = None  # the known mistake (or kind) the grader named
    whats: list[str] = field(default_factory=list)  # that report's failing cases, in words

    @property
    def named(self) -> bool:
        return names_misconception(self.message or "", self.variant, self.whats)

    @property
    def collateral(self) -> list[str]:
        """Other functions that lost points (the student is told to fix code that is fine)."""
        return sorted({f for _, f, _ in self.lost if f != self.variant.function})

    @property
    def suspect(self) -> str:
        """Why the message may mislead ("" when nothing looks off); a human judges the list."""
        if self.collateral:
            return f"points lost by {', '.join(self.collateral)}"
        if self.variant.kind == "wrong" and self.message and self.mistake and not self.named:
            known = self.mistake not in ("no-answer", "missing", "not-implemented", "library-attention")
            if known:
                return f"names the known mistake {self.mistake!r}, not this misconception"
        return ""


#: The checker's fixed words for a difference it cannot explain ("value" must not be found in them).
GENERIC = re.compile(r"wrong (values|entries|result)|not the right number|not right yet")


def names_misconception(message: str, variant: Variant, whats: list[str] = ()) -> bool:
    """Whether ``message`` contains one of the variant's keywords, outside the words that only say which
    input failed (the cases' descriptions), the function's own name and the checker's generic phrases
    ("has wrong values"), and not inside a longer word ("max" is not found in "softmax")."""
    text = " ".join(message.lower().split())
    for what in whats:
        text = text.replace(" ".join(what.lower().split()), " ")
    text = text.replace(variant.function.lower(), " ")
    text = GENERIC.sub(" ", text)
    return any(re.search(r"(?<![a-z0-9_])" + re.escape(k.lower()), text) for k in variant.keywords)


def measure(assignment: str, variant: Variant, keys: list[bytes], only_own: bool = False) -> Outcome:
    out = Outcome(assignment, variant)
    for i, secret in enumerate(keys):
        reports = grade(assignment, variant, secret, variant.function if only_own else None)
        for name, report in reports.items():
            if not report.passed:
                out.lost.append((i, name, report.problem or ""))
        own = reports[variant.function]
        if own.passed:
            out.kept.append(i)
        elif out.message is None:
            out.message, out.mistake, out.whats = own.problem, own.mistake, list(own.failed)
    return out
