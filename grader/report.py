"""Grades CSV and per-question summary, read from the gradebook and the autograded notebooks.

The hidden tests raise ``AssertionError`` with a message that names the student's mistake (e.g.
"your weights are not scaled by 1/sqrt(d_k)"); those messages are read back from the error outputs
of each grade cell of the autograded notebooks, so the summary can say which mistakes are common.
"""

from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from grader.coursedir import db_url, ensure_tools_on_path
from grader.engine.verdict import FAILED as VERDICT_FAILED
from grader.engine.verdict import META as VERDICT_META

CSV_COLUMNS = ["assignment", "student", "score", "max_score", "status", "message", "mistakes", "sandbox"]


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
    """One row per submission in the gradebook, plus one per ``messages`` key not in it.

    ``messages`` maps ``(assignment, student)`` to ``(status, message)`` from the grading run."""
    from nbgrader.api import Gradebook

    ensure_tools_on_path()
    course = Path(course)
    messages = dict(messages or {})
    rows: dict[tuple[str, str], Row] = {}
    with Gradebook(db_url(course)) as gb:
        for assignment in gb.assignments:
            for sub in gb.assignment_submissions(assignment.name):
                key = (assignment.name, sub.student.id)
                folder = course / "autograded" / sub.student.id / assignment.name
                status, message = messages.pop(key, ("graded" if folder.exists() else "error", ""))
                if status == "graded" and not folder.exists():
                    status = "error"
                if status == "error" and not message:
                    message = "not autograded (see the nbgrader log); graded 0"
                row = Row(assignment.name, sub.student.id, float(sub.score), float(sub.max_score), status, message)
                for nb in sub.notebooks:
                    for grade in nb.grades:
                        row.cell_scores[grade.name] = (float(grade.score), float(grade.max_score))
                    row.mistakes.update(cell_errors(folder / f"{nb.name}.ipynb"))
                    row.sandbox = sandbox_state(folder / f"{nb.name}.ipynb") or row.sandbox
                rows[key] = row
            max_score = float(assignment.max_score)
            for key in [k for k in messages if k[0] == assignment.name]:
                status, message = messages.pop(key)
                rows[key] = Row(key[0], key[1], 0.0, max_score, status, message)
    for key, (status, message) in messages.items():  # assignments unknown to the gradebook
        rows[key] = Row(key[0], key[1], 0.0, 0.0, status, message)
    return [rows[k] for k in sorted(rows)]


def write_csv(rows: list[Row], path: Path) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_COLUMNS)
        for r in rows:
            mistakes = "; ".join(f"{cell}: {msg}" for cell, msg in sorted(r.mistakes.items()))
            w.writerow([r.assignment, r.student, f"{r.score:g}", f"{r.max_score:g}", r.status, r.message, mistakes,
                        r.sandbox])


def summary(rows: list[Row], top: int = 3) -> str:
    """Per assignment and grade cell: mean score and the most common diagnosed mistakes."""
    lines = []
    by_assignment: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        by_assignment[r.assignment].append(r)
    for assignment, group in sorted(by_assignment.items()):
        graded = [r for r in group if r.status == "graded"]
        mean_total = sum(r.score for r in group) / len(group)
        max_total = max(r.max_score for r in group)
        lines.append(
            f"{assignment}: {len(group)} submissions, {len(graded)} graded, "
            f"mean {mean_total:.2f} / {max_total:g}"
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
        problems = Counter(r.message for r in group if r.status != "graded")
        for msg, n in problems.most_common():
            lines.append(f"  not graded: {n:3d} x {msg}")
    return "\n".join(lines)
