"""What the course's source notebook of an assignment says: its graded functions and points, its cells.

Read from ``source/<id>/<id>.ipynb`` (and ``release/``) of the course directory, plain JSON, so the term
needs no gradebook to know an assignment: the import ranks a student's files by how much of the
assignment's notebook they hold (:class:`Landmarks`), and the LMS's points are checked against
:func:`max_score`.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Landmarks:
    """What identifies an assignment's notebook: its nbgrader cells, by grade id, cell id and locked text."""

    assignment: str
    grade_ids: tuple[str, ...]
    cell_ids: frozenset[str]
    locked_text: frozenset[str]

    def found_in(self, nb: dict | None) -> int:
        """How many of the assignment's nbgrader cells ``nb`` (parsed notebook JSON) holds."""
        if not nb:
            return 0
        cells = [c for c in nb.get("cells", []) if isinstance(c, dict)]
        ids = {c.get("id") for c in cells}
        grade_ids = {((c.get("metadata") or {}).get("nbgrader") or {}).get("grade_id") for c in cells}
        texts = {_squash(c.get("source")) for c in cells}
        if grade_ids - {None}:  # an nbgrader notebook: its cells say which assignment's they are
            return sum(g in grade_ids for g in self.grade_ids)
        return max(len(self.cell_ids & ids), len(self.locked_text & texts))  # metadata lost (a copy)


def _squash(source) -> str:
    text = "".join(source) if isinstance(source, list) else str(source or "")
    return " ".join(text.split())


def _read(path: Path) -> dict:
    return json.loads(Path(path).read_bytes())


@functools.cache
def _landmarks(source: Path, release: Path, assignment: str) -> Landmarks:
    if not source.exists():  # a folder that is no course yet: nothing to recognise a notebook by
        return Landmarks(assignment, (), frozenset(), frozenset())
    src = _read(source)
    grade_ids = tuple(((c.get("metadata") or {}).get("nbgrader") or {}).get("grade_id") for c in src["cells"])
    grade_ids = tuple(g for g in grade_ids if g)
    cell_ids, locked = set(), set()
    if release.exists():
        for c in _read(release)["cells"]:
            nbg = (c.get("metadata") or {}).get("nbgrader") or {}
            if nbg.get("grade_id"):
                cell_ids.add(c.get("id"))
                if nbg.get("locked") and _squash(c.get("source")):
                    locked.add(_squash(c.get("source")))
    return Landmarks(assignment, grade_ids, frozenset(cell_ids - {None}), frozenset(locked))


def landmarks(course: Path, assignment: str) -> Landmarks:
    """The landmarks of ``assignment`` from the course's source (and release) notebook."""
    course = Path(course)
    return _landmarks(course / "source" / assignment / f"{assignment}.ipynb",
                      course / "release" / assignment / f"{assignment}.ipynb", assignment)


def points(course: Path, assignment: str) -> dict[str, float]:
    """Grade cell id -> its points (``test-softmax`` -> 2.0), in notebook order ({} without a source)."""
    path = Path(course) / "source" / assignment / f"{assignment}.ipynb"
    if not path.exists():
        return {}
    nb = _read(path)
    found = {}
    for c in nb["cells"]:
        nbg = (c.get("metadata") or {}).get("nbgrader") or {}
        if nbg.get("grade") and nbg.get("grade_id"):
            found[nbg["grade_id"]] = float(nbg.get("points") or 0)
    return found


def max_score(course: Path, assignment: str) -> float:
    return sum(points(course, assignment).values())
