"""Which of a student's files is their submission: the assignment's notebook, the newest upload, with a reason.

A download often holds several notebooks of one student: a scratch ``Untitled-1.ipynb`` beside the real
one, ``ch2-sdpa (2).ipynb`` and ``ch2-sdpa-2026-10-05.ipynb`` (a browser's and the student's own names),
Canvas's re-uploads. The candidates are ranked, in this order, by

1. whether the file is a notebook at all (valid JSON that nbformat reads);
2. how much of the *assignment's* notebook it holds: its nbgrader cells (``grade_id`` in the cell's
   metadata, the release's cell ids, or the locked cells' text), so a scratch notebook (0 of 8 cells)
   never beats the assignment (8 of 8), whatever its name or age. Files holding at least half of the
   cells count as the assignment's notebook, whatever else they changed;
3. the upload order the LMS records: Canvas's file id (the number before the file name, which grows
   with every upload), else the file's time (Moodle's zip, a folder's files);
4. Canvas's re-upload number, ``-N`` before the extension, but only where the student also sent the
   name without it (``ch2-sdpa.ipynb`` and ``ch2-sdpa-1.ipynb``): a ``-05`` in ``ch2-sdpa-2026-10-05.ipynb``
   is the student's own name;
5. the assignment's own file name, then the name (so the choice never depends on the zip's order).

An instructor's ``choice`` (``python -m grader choose``, in ``decisions.toml``) overrides the ranking.
Every candidate gets a reason in words, for the import report.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

from grader.term.lms import Entry, base_name
from grader.term.source import landmarks

#: A file holding at least this share of the assignment's nbgrader cells is the assignment's notebook.
ASSIGNMENT_SHARE = 0.5
_ATTEMPT = re.compile(r"^(?P<stem>.+)-(?P<n>\d+)(?P<ext>\.[^.]+)$")


def read_candidate(data: bytes | None) -> tuple[dict | None, str]:
    """``(notebook JSON, "")`` as the grader reads it (a byte-order mark, another layout or an older
    nbformat repaired: :mod:`grader.normalize`), or ``(None, why it cannot be graded, in words)``."""
    from grader.normalize import read_notebook

    reading = read_notebook(data or b"")
    return (dict(reading.notebook) if reading.notebook is not None else None), reading.problem


def other_assignment(course: Path, assignment: str, nb: dict | None) -> str | None:
    """Another assignment of the course whose notebook ``nb`` is (holds half its cells or more), if any."""
    from grader.coursedir import assignment_ids

    best, share = None, 0.0
    for other in assignment_ids(course):
        if other == assignment or not (Path(course) / "source" / other / f"{other}.ipynb").exists():
            continue
        marks = landmarks(course, other)
        if marks.grade_ids:
            s = marks.found_in(nb) / len(marks.grade_ids)
            if s >= ASSIGNMENT_SHARE and s > share:
                best, share = other, s
    return best


@dataclass
class Candidate:
    """One notebook a student sent, with what the ranking looks at."""

    entry: Entry
    notebook: dict | None
    holds: int  # of the assignment's nbgrader cells
    cells: int  # how many the assignment has
    attempt: int = 0  # Canvas's re-upload number, where it is one
    problem: str = ""  # why the file cannot be graded, in words (notebook is None)

    @property
    def is_assignment(self) -> bool:
        return self.notebook is not None and self.cells > 0 and self.holds >= ASSIGNMENT_SHARE * self.cells

    @property
    def upload(self) -> tuple[int, dt.datetime]:
        """The upload order: Canvas's file id, then the file's time."""
        return (self.entry.file_id, self.entry.time or dt.datetime.min)

    def rank(self, expected: str) -> tuple:
        return (self.notebook is not None, self.is_assignment, self.upload, self.attempt, self.holds,
                base_name(self.entry.filename) == expected, self.entry.filename)


def reupload_numbers(names: list[str]) -> dict[str, int]:
    """Canvas's ``-N`` of each name that has one *and* whose un-numbered name is among ``names`` too."""
    stems = {}
    for name in names:
        m = _ATTEMPT.match(name)
        stems[name] = (m["stem"] + m["ext"], int(m["n"])) if m else (name, 0)
    plain = {stem for name, (stem, n) in stems.items() if n == 0} | {name for name in names}
    return {name: n if n and stem in plain else 0 for name, (stem, n) in stems.items()}


def candidates(course: Path, assignment: str, entries: list[Entry]) -> list[Candidate]:
    marks = landmarks(course, assignment)
    numbers = reupload_numbers([e.filename for e in entries]) if any(e.lms == "canvas" for e in entries) else {}
    found = []
    for e in entries:
        nb, problem = read_candidate(e.data)
        found.append(Candidate(e, nb, marks.found_in(nb), len(marks.grade_ids), numbers.get(e.filename, 0), problem))
    return found


def matches(choice: str, entry: Entry) -> bool:
    """Whether the instructor's ``choice`` names ``entry`` (as uploaded, or the download's entry name)."""
    return choice in (entry.filename, entry.path, entry.path.rsplit("/", 1)[-1])


def choose(course: Path, assignment: str, entries: list[Entry], chosen_file: str | None = None
           ) -> tuple[Candidate, dict[int, str], str]:
    """``(graded, reasons, note)``: the candidate to grade, a reason for every candidate (by ``id`` of its
    entry), and a note for the instructor ("" when there is nothing to say)."""
    expected = f"{assignment}.ipynb"
    found = candidates(course, assignment, entries)
    note = ""
    graded = None
    if chosen_file:
        graded = next((c for c in found if matches(chosen_file, c.entry)), None)
        if graded is None:
            note = (f"decisions.toml chooses {chosen_file!r}, which is not among this student's files here "
                    f"({', '.join(sorted(c.entry.filename for c in found))}): chosen as usual instead")
    by_instructor = graded is not None
    graded = graded or max(found, key=lambda c: c.rank(expected))
    reasons = {id(graded.entry): _why_graded(graded, found, assignment, by_instructor)}
    for c in found:
        if c is not graded:
            reasons[id(c.entry)] = _why_not(c, graded, assignment, by_instructor)
    return graded, reasons, note


def _cells(c: Candidate, assignment: str) -> str:
    return f"holds {c.holds} of {c.cells} cells of {assignment}"


def _why_graded(c: Candidate, found: list[Candidate], assignment: str, by_instructor: bool) -> str:
    if by_instructor:
        return f"chosen by the instructor (decisions.toml); {_cells(c, assignment)}"
    if c.notebook is None:
        return f"not a valid notebook ({c.problem}): it will be graded 0"
    why = _cells(c, assignment)
    if len(found) > 1:
        rivals = [o for o in found if o is not c and o.is_assignment]
        if rivals:
            why += ", the newest upload of " + str(len(rivals) + 1) + " such notebooks"
    return why


def _why_not(c: Candidate, graded: Candidate, assignment: str, by_instructor: bool) -> str:
    name = graded.entry.filename
    if by_instructor:
        return f"the instructor chose {name} (decisions.toml)"
    if c.notebook is None:
        return f"not a valid notebook ({c.problem}); {name} is graded"
    if not c.is_assignment and graded.is_assignment:
        return f"{_cells(c, assignment)}, so it is not the assignment's notebook; {name} is graded"
    return f"an older upload than {name}, which is graded"
