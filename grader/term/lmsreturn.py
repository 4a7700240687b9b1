"""``python -m grader return``: one assignment's grades and feedback, in the files the LMS imports.

Reads the gradebook (scores after the late penalty, as ``nbgrader export`` computes them), the
course's roster (``lms-roster.csv``: who is who at the LMS, also for pseudonymous students) and the
feedback pages, and writes into ``<course>/lms-return/<assignment>/`` (names no stock nbgrader
command writes):

- ``canvas-grades.csv`` or ``moodle-grades.csv``: the gradebook import file (``grader/lms.py``);
- ``canvas-feedback.zip`` or ``moodle-feedback.zip``: one feedback page per graded student, laid out
  as the LMS's bulk feedback upload expects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from grader.term.lms import (
    LMSError,
    Result,
    canvas_grades_csv,
    feedback_zip,
    lms_settings,
    load_roster,
    moodle_grades_csv,
    remember,
)
from grader.term.report import NOT_SUBMITTED, read_rows

RETURN_DIR = "lms-return"


@dataclass
class Returned:
    """What ``write_return`` wrote."""

    lms: str
    grades: Path
    archive: Path
    entries: list[str]
    rows: int
    missing: int
    left_out: list[str] = field(default_factory=list)  # graded students without an LMS id
    notes: list[str] = field(default_factory=list)


def comment(row) -> str:
    """A one-paragraph feedback comment: the score, the late penalty, each function's points and mistake."""
    parts = [f"Autograded: {row.score:g} / {row.max_score:g} points"]
    if row.late_penalty:
        parts[0] += f" ({row.raw_score:g} minus a late penalty of {row.late_penalty:g})"
    if row.status != "graded" and row.message:
        parts.append(row.message)
    for cell, (score, max_score) in sorted(row.cell_scores.items()):
        text = f"{cell.removeprefix('test-')}: {score:g} / {max_score:g}"
        if cell in row.mistakes:
            text += f" ({row.mistakes[cell]})"
        parts.append(text)
    return ". ".join(parts) + ". The feedback file shows the details."


def write_return(course: Path, assignment: str, lms: str | None = None, column: str | None = None,
                 missing_zero: bool = False, out: Path | None = None, scale: bool = False) -> Returned:
    """Write the grade file and feedback archive of ``assignment`` for ``lms`` (default: the roster's).

    The LMS's column and points come from what the import read in the roster (``lms-assignments.json``);
    a ``column`` given here is remembered. When the LMS's points differ from the assignment's, the grades
    are refused unless ``scale`` (each score times LMS points / the assignment's)."""
    from grader.term.apply import annotate_rows

    course = Path(course)
    if not (course / "gradebook.db").exists():
        raise LMSError(f"{course} has no gradebook yet: import and grade {assignment} first")
    rows = {r.student: r for r in annotate_rows(course, [r for r in read_rows(course) if r.assignment == assignment])}
    if not any(r.submitted for r in rows.values()):
        raise LMSError(f"nothing graded for {assignment} yet: run `python -m grader grade {assignment}` first")
    roster = load_roster(course)
    kinds = sorted({p.lms for p in roster.values() if p.lms in ("canvas", "moodle")})
    if lms is None:
        if len(kinds) != 1:
            raise LMSError(f"which LMS? the roster has students from {', '.join(kinds) or 'no LMS'}: pass --lms "
                           "canvas or --lms moodle (students are matched on their LMS id, so import the LMS's "
                           "download or roster first)")
        lms = kinds[0]
    people = {s: p for s, p in roster.items() if p.lms == lms}
    if not people:
        raise LMSError(f"no student of {course / 'lms-roster.csv'} has a {lms} id: import the {lms} download "
                       "or roster first")
    settings = lms_settings(course, assignment)
    if column:
        settings = remember(course, assignment, column=column)
    ours = max(r.max_score for r in rows.values())
    theirs = settings.get("points") if settings.get("lms", lms) == lms else None
    factor = 1.0
    if theirs is not None and abs(theirs - ours) > 1e-9:
        if not scale:
            where = f"Canvas's column {settings.get('column')!r}" if lms == "canvas" else "Moodle's worksheet"
            raise LMSError(f"{where} is worth {theirs:g} points but {assignment} is graded out of {ours:g}: change "
                           f"the points in {lms.capitalize()} (then import its roster again), or pass --scale to "
                           f"write each score times {theirs:g}/{ours:g}")
        factor = theirs / ours
    results = []
    for student, p in people.items():
        row = rows.get(student)
        submitted = row is not None and row.submitted
        fb = course / "feedback" / student / assignment / f"{assignment}.html"
        excused = row is not None and row.status == "excused"
        results.append(Result(p, round(row.score * factor, 6) if submitted else None,
                              (row.max_score if row is not None else ours) * factor,
                              comment(row) if submitted else (row.message if excused else NOT_SUBMITTED),
                              fb if submitted and fb.exists() else None, excused=excused))
    left_out = sorted(s for s, r in rows.items() if r.submitted and s not in people)
    folder = Path(out) if out else course / RETURN_DIR / assignment
    folder.mkdir(parents=True, exist_ok=True)
    notes = []
    if factor != 1.0:
        notes.append(f"scores scaled to the LMS's {theirs:g} points (times {factor:g})")
    if lms == "canvas":
        column = settings.get("column") or assignment
        if not column.rstrip().endswith(")"):
            notes.append(f"Canvas column {column!r} has no '(<Canvas assignment id>)': Canvas will create a new "
                         "assignment; pass --column as in your Canvas gradebook export to fill an existing one")
        grades = canvas_grades_csv(results, column, folder / "canvas-grades.csv", missing_zero)
    else:
        layout = settings if settings.get("lms") == "moodle" else None
        grades = moodle_grades_csv(results, folder / "moodle-grades.csv", missing_zero, layout)
    archive = folder / f"{lms}-feedback.zip"
    entries = feedback_zip(results, lms, assignment, archive)
    missing = sum(r.score is None and not r.excused for r in results)
    return Returned(lms, grades, archive, entries, len(results), missing, left_out, notes)
