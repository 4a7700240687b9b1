"""Grades CSV and per-question summary, read from the gradebook and the autograded notebooks.

The hidden tests raise ``AssertionError`` with a message that names the student's mistake (e.g.
"your weights are not scaled by 1/sqrt(d_k)"); those messages are read back from the error outputs
of each grade cell of the autograded notebooks, so the summary can say which mistakes are common.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from grader import csvsafe
from grader.coursedir import db_url, ensure_tools_on_path
from grader.engine.verdict import FAILED as VERDICT_FAILED
from grader.engine.verdict import META as VERDICT_META
from grader.normalize import repair_message, repairs_in

#: The CLI's CSV (``course-grades.csv``: never ``grades.csv``, which stock ``nbgrader export`` writes). ``score``
#: is after the late penalty, as ``nbgrader export``'s; one ``points:<grade cell>`` column per graded function.
CSV_FILE = "course-grades.csv"
CSV_COLUMNS = ["assignment", "student", "lms_id", "name", "status", "score", "max_score", "raw_score", "late_penalty",
               "submitted_at", "due", "message", "mistakes", "sandbox"]
#: The message of a student of the gradebook (the roster) who submitted nothing.
NOT_SUBMITTED = "nothing submitted"


@dataclass
class Row:
    assignment: str
    student: str
    score: float
    max_score: float
    status: str  # graded | error | missing
    message: str = ""
    cell_scores: dict[str, tuple[float, float]] = field(default_factory=dict)  # grade id -> (score, max)
    mistakes: dict[str, str] = field(default_factory=dict)  # grade id -> diagnosed message
    sandbox: str = ""  # "on" / "off": whether its kernel ran sandboxed ("" when it was not graded)
    name: str = ""  # display name from the gradebook (none when grading anonymously)
    lms_id: str = ""
    raw_score: float = 0.0  # before the late penalty
    late_penalty: float = 0.0
    submitted_at: str = ""  # nbgrader's timestamp (UTC), when known
    due: str = ""  # due date plus the student's extension (UTC), when set
    submitted: bool = True  # False for a student of the gradebook who sent nothing


#: Errors that say more about the grader's limits than about the student's function.
LIMIT_MESSAGES = {
    "KeyboardInterrupt": "interrupted: the code ran longer than the time limit per cell (an infinite loop?)",
    "CellTimeoutError": "interrupted: the code ran longer than the time limit per cell (an infinite loop?)",
    "MemoryError": "MemoryError: the code needed more memory than the grader allows",
    "DeadKernelError": "the kernel died while running this cell (out of memory or a crash)",
}


MAX_MESSAGE = 300


def _one_line(text: str) -> str:
    """A message on one line (hidden tests wrap long messages), at most ``MAX_MESSAGE`` characters."""
    text = " ".join((text or "").split())
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


def _cells(notebook: Path) -> list[dict]:
    try:  # plain JSON: nbformat's schema validation costs more than the whole report
        return json.loads(Path(notebook).read_bytes())["cells"]
    except Exception:
        return []


def sandbox_state(notebook: Path) -> str:
    """``"on"`` or ``"off"``: whether the grade cells' verdicts say the kernel ran in the sandbox."""
    states = {c.get("metadata", {}).get(VERDICT_META, {}).get("sandboxed") for c in _cells(notebook)} - {None}
    if not states:
        return ""
    return "on" if states == {True} else "off"


def notebook_notices(notebook: Path) -> list[str]:
    """The grader's notes about a whole autograded notebook (refused files, its time budget, its memory)."""
    try:
        meta = json.loads(Path(notebook).read_bytes()).get("metadata", {}).get(VERDICT_META, {})
        return [str(n) for n in meta.get("notices", [])]
    except Exception:
        return []


def cell_errors(notebook: Path) -> dict[str, str]:
    """Grade id -> one-line error of each failing autograder-test cell of an autograded notebook."""
    cells = _cells(notebook)
    errors = {}
    for cell in cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.get("cell_type") != "code" or not meta.get("grade") or meta.get("solution"):
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                evalue = _one_line(out.get("evalue") or "")
                ename = out.get("ename", "Error")
                if ename in LIMIT_MESSAGES:
                    errors[meta["grade_id"]] = LIMIT_MESSAGES[ename]
                elif ename in ("AssertionError", VERDICT_FAILED) and evalue:
                    errors[meta["grade_id"]] = evalue
                else:
                    errors[meta["grade_id"]] = f"{ename}: {evalue}" if evalue else ename
                break
    return errors


def read_rows(course: Path, messages: dict[tuple[str, str], tuple[str, str]] | None = None) -> list[Row]:
    """One row per submission in the gradebook, one per ``messages`` key not in it, and one (``missing``)
    per student of the gradebook who submitted nothing, for every assignment of the gradebook.

    ``messages`` maps ``(assignment, student)`` to ``(status, message)`` from the grading run."""
    from nbgrader.api import Gradebook

    ensure_tools_on_path()
    course = Path(course)
    messages = dict(messages or {})
    rows: dict[tuple[str, str], Row] = {}
    with Gradebook(db_url(course)) as gb:
        people = {s.id: s for s in gb.students}
        for assignment in gb.assignments:
            for sub in gb.assignment_submissions(assignment.name):
                key = (assignment.name, sub.student.id)
                folder = course / "autograded" / sub.student.id / assignment.name
                status, message = messages.pop(key, ("graded" if folder.exists() else "error", ""))
                if status == "graded" and not folder.exists():
                    status = "error"
                if status == "error" and not message:
                    message = "not autograded (see the nbgrader log); graded 0"
                raw, late = float(sub.score), float(sub.late_submission_penalty or 0.0)
                row = Row(assignment.name, sub.student.id, max(0.0, raw - late), float(sub.max_score), status,
                          message, raw_score=raw, late_penalty=late, submitted_at=_time(sub.timestamp),
                          due=_time(sub.duedate))
                for nb in sub.notebooks:
                    for grade in nb.grades:
                        row.cell_scores[grade.name] = (float(grade.score), float(grade.max_score))
                    row.mistakes.update(cell_errors(folder / f"{nb.name}.ipynb"))
                    row.sandbox = sandbox_state(folder / f"{nb.name}.ipynb") or row.sandbox
                    if not row.message:  # what the grader repaired before grading, files it refused, its budget
                        graded_nb = folder / f"{nb.name}.ipynb"
                        notes = [repair_message(repairs_in(_cells(graded_nb))), *notebook_notices(graded_nb)]
                        row.message = _one_line(" ".join(n for n in notes if n))
                rows[key] = row
            max_score = float(assignment.max_score)
            for key in [k for k in messages if k[0] == assignment.name]:
                status, message = messages.pop(key)
                rows[key] = Row(key[0], key[1], 0.0, max_score, status, message, due=_time(assignment.duedate))
            for student in people:  # the gradebook's students who sent nothing (nbgrader export lists them too)
                if (assignment.name, student) not in rows:
                    rows[(assignment.name, student)] = Row(assignment.name, student, 0.0, max_score, "missing",
                                                           NOT_SUBMITTED, due=_time(assignment.duedate),
                                                           submitted=False)
        for (_, student), row in rows.items():
            p = people.get(student)
            if p is not None:
                row.name = " ".join(x for x in (p.first_name, p.last_name) if x)
                row.lms_id = p.lms_user_id or ""
    return [rows[k] for k in sorted(rows)]


def _time(value) -> str:
    """A gradebook time (naive UTC) as text, ``""`` for none."""
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value is not None else ""


def write_csv(rows: list[Row], path: Path) -> None:
    """The CLI's CSV: :data:`CSV_COLUMNS`, then one ``points:<grade cell>`` column per graded function."""
    cells = sorted({c for r in rows for c in r.cell_scores})
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csvsafe.writer(f)
        w.writerow(CSV_COLUMNS + [f"points:{c}" for c in cells])
        for r in rows:
            mistakes = "; ".join(f"{cell}: {msg}" for cell, msg in sorted(r.mistakes.items()))
            points = [f"{r.cell_scores[c][0]:g}" if c in r.cell_scores else "" for c in cells]
            w.writerow([r.assignment, r.student, r.lms_id, r.name, r.status, f"{r.score:g}", f"{r.max_score:g}",
                        f"{r.raw_score:g}", f"{r.late_penalty:g}", r.submitted_at, r.due, r.message, mistakes,
                        r.sandbox, *points])


def summary(rows: list[Row], top: int = 3) -> str:
    """Per assignment and grade cell: mean score and the most common diagnosed mistakes."""
    lines = []
    by_assignment: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        by_assignment[r.assignment].append(r)
    for assignment, everyone in sorted(by_assignment.items()):
        group = [r for r in everyone if r.submitted]
        absent = sorted(r.student for r in everyone if not r.submitted)
        if not group:
            lines.append(f"{assignment}: no submissions, {len(absent)} students sent nothing")
            continue
        graded = [r for r in group if r.status == "graded"]
        mean_total = sum(r.score for r in group) / len(group)
        max_total = max(r.max_score for r in group)
        late = [r for r in group if r.late_penalty > 0]
        lines.append(
            f"{assignment}: {len(group)} submissions, {len(graded)} graded, "
            f"mean {mean_total:.2f} / {max_total:g}"
            + (f", {len(late)} late (penalty applied)" if late else "")
            + (f", {len(absent)} sent nothing: {', '.join(absent[:10])}{', ...' if len(absent) > 10 else ''}"
               if absent else "")
        )
        cells = sorted({c for r in group for c in r.cell_scores})
        width = max([len(c) for c in cells] + [10])
        for cell in cells:
            scored = [r.cell_scores[cell] for r in group if cell in r.cell_scores]
            mean = sum(s for s, _ in scored) / len(scored)
            max_score = max(m for _, m in scored)
            lines.append(f"  {cell:<{width}}  mean {mean:5.2f} / {max_score:g}")
            counts = Counter(r.mistakes[cell] for r in group if cell in r.mistakes)
            for msg, n in counts.most_common(top):
                short = msg if len(msg) <= 150 else msg[:147] + "..."
                lines.append(f"  {'':<{width}}  {n:3d} x {short}")
        repaired = sum(r.status == "graded" and r.message.startswith("graded after repairs") for r in group)
        if repaired:
            lines.append(f"  graded after repairs: {repaired:3d} (the message column and the feedback say what)")
        problems = Counter(r.message for r in group if r.status != "graded")
        for msg, n in problems.most_common():
            lines.append(f"  not graded: {n:3d} x {msg}")
    return "\n".join(lines)
