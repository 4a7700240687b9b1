"""Bring the gradebook in line with the calendar and the instructor's decisions, whatever happened before.

:func:`apply_decisions` is called by ``import``, ``grade``, ``merge``, ``report``, ``return`` and by the
decision commands (``extend``, ``excuse``, ``override``, ``choose``); it is idempotent, so the order of
events never matters (an extension before or after import, an override before or after a regrade). For
each assignment of the gradebook it writes:

1. the due date from the config (``c.Term.due_dates``) and each submission's extension from
   ``decisions.toml`` into nbgrader's own columns (an extension taken back is cleared);
2. the submission time of a file Canvas marked late: Canvas's download says only *late*, so such a file
   counts as submitted one second after the due date (one started day late without an extension, on time
   with any extension); recomputed here, so a due date changed after import moves it too;
3. overrides: a function's manual score, or the total as extra credit of the first graded function;
4. the late penalty of every submitted notebook, recomputed from the score, submission time, due date and
   extension by nbgrader's own ``AssignLatePenalties`` with the course's plugin: the numbers stock
   ``nbgrader autograde`` would write, so ``nbgrader export`` and ``course-grades.csv`` agree.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from grader import csvsafe
from grader.coursedir import db_url, ensure_tools_on_path, load_config
from grader.engine.verdict import grade_id
from grader.term.deadlines import due_date, write_timestamp
from grader.term.decisions import Decisions
from grader.term.lms import load_roster

#: The import report's ``submitted_at`` for a file Canvas marked late (no time in its download).
CANVAS_LATE = "late (Canvas)"


def import_report(course: Path, assignment: str) -> list[dict[str, str]]:
    """The rows of the last import report of ``assignment`` (``lms-import-<assignment>.csv``), or []."""
    path = Path(course) / f"lms-import-{assignment}.csv"
    if not path.exists():
        return []
    with open(path, encoding="utf-8", newline="") as f:
        return csvsafe.read_dicts(f)


def canvas_late(course: Path, assignment: str) -> set[str]:
    """Students whose imported file Canvas marked late."""
    return {r["student"] for r in import_report(course, assignment)
            if r.get("outcome") == "imported" and r.get("submitted_at") == CANVAS_LATE}


def student_keys(course: Path) -> dict[str, list[str]]:
    """Student id -> the keys a decision may name them by (student id, LMS id)."""
    return {s: [s, p.lms_id] for s, p in load_roster(course).items()}


def apply_decisions(course: Path, into: Path | None = None, assignments: list[str] | None = None) -> list[str]:
    """Apply the calendar and ``course``'s decisions to the gradebook at ``into`` (default ``course``);
    returns one line per score that changed, e.g. ``"ch2-sdpa 48206: 2.7 -> 3"``."""
    from nbgrader.api import Gradebook
    from nbgrader.preprocessors import AssignLatePenalties

    course = Path(course)
    into = Path(into) if into else course
    if not (into / "gradebook.db").exists():
        return []
    ensure_tools_on_path()
    decisions = Decisions.load(course)
    keys = student_keys(course)
    late = AssignLatePenalties(config=load_config(into))
    late.init_plugin()
    changes = []
    with Gradebook(db_url(into)) as gb:
        for assignment in gb.assignments:
            name = assignment.name
            if assignments is not None and name not in assignments:
                continue
            due = due_date(course, name)
            if due is not None:
                assignment.duedate = due
            due = assignment.duedate
            marked_late = canvas_late(course, name)
            before = {s.student.id: _final(s) for s in gb.assignment_submissions(name)}
            for sub in gb.assignment_submissions(name):
                student = sub.student.id
                who = keys.get(student, [student])
                days = decisions.extension_days(name, who)
                sub.extension = dt.timedelta(days=days) if days else None
                if student in marked_late and due is not None:
                    sub.timestamp = due + dt.timedelta(seconds=1)
                    folder = into / "submitted" / student / name  # (a shard has none: the course is only read)
                    if folder.is_dir() and _stamp(folder) != sub.timestamp:
                        write_timestamp(folder, sub.timestamp)
                _override(sub, decisions.about("override", name, who))
            gb.db.commit()
            for sub in gb.assignment_submissions(name):
                seconds = sub.total_seconds_late
                for nb in sub.notebooks:
                    penalty = None
                    if seconds > 0:
                        penalty = late.plugin_inst.late_submission_penalty(sub.student.id, nb.score, seconds)
                        penalty = None if penalty is None else late._check_late_penalty(nb, penalty)
                    nb.late_submission_penalty = penalty
            gb.db.commit()
            for sub in gb.assignment_submissions(name):
                old, new = before.get(sub.student.id), _final(sub)
                if old is not None and abs(old - new) > 1e-9:
                    changes.append(f"{name} {sub.student.id}: {old:g} -> {new:g}")
    return changes


def _stamp(folder: Path) -> dt.datetime | None:
    """The time in a submission's ``timestamp.txt`` (None when there is none or it is unreadable)."""
    from grader.term.deadlines import parse_time

    try:
        return parse_time((folder / "timestamp.txt").read_text().strip())
    except (OSError, ValueError):
        return None


def _final(sub) -> float:
    """A submission's score after its late penalty, as ``nbgrader export`` computes it."""
    return max(0.0, float(sub.score) - float(sub.late_submission_penalty or 0.0))


def _override(sub, overrides: list) -> None:
    """Write ``overrides`` (decisions about this submission) into its grade cells."""
    grades = sorted((g for nb in sub.notebooks for g in nb.grades), key=lambda g: g.name)
    if not grades:
        return
    for d in overrides:
        if d.function:
            for g in grades:
                if g.name == grade_id(d.function):
                    g.manual_score = float(d.points)
        else:
            first, rest = grades[0], grades[1:]
            base = sum(float(g.manual_score if g.manual_score is not None else (g.auto_score or 0.0))
                       for g in grades) + sum(float(g.extra_credit or 0.0) for g in rest)
            first.extra_credit = float(d.points) - base


def clear_override(into: Path, assignment: str, student: str, function: str) -> None:
    """Undo an override in the gradebook (``override --remove``): the automatic score counts again."""
    from nbgrader.api import Gradebook, MissingEntry

    if not (Path(into) / "gradebook.db").exists():
        return
    ensure_tools_on_path()
    with Gradebook(db_url(into)) as gb:
        try:
            sub = gb.find_submission(assignment, student)
        except MissingEntry:
            return
        for nb in sub.notebooks:
            for g in nb.grades:
                if function and g.name == grade_id(function):
                    g.manual_score = None
                elif not function:
                    g.extra_credit = None
        gb.db.commit()


def annotate_rows(course: Path, rows: list) -> list:
    """The grades report's rows (:class:`grader.term.report.Row`) with the decisions and the import in words:
    ``excused`` students (status and reason), and for a student who sent files but no notebook, what they
    sent instead of "nothing submitted" (a ``.py``, a text entry, a link: the import report's reasons)."""
    decisions = Decisions.load(course)
    keys = student_keys(course)
    sent_instead: dict[tuple[str, str], list[str]] = {}
    for assignment in {r.assignment for r in rows}:
        report = import_report(course, assignment)
        imported = {r["student"] for r in report if r.get("outcome") == "imported"}
        for r in report:
            if r.get("outcome") == "skipped" and r.get("student") and r["student"] not in imported:
                sent_instead.setdefault((assignment, r["student"]), []).append(r["reason"])
    for row in rows:
        who = keys.get(row.student, [row.student])
        if row.status == "missing" and (row.assignment, row.student) in sent_instead:
            row.message = "sent no notebook: " + "; ".join(sent_instead[(row.assignment, row.student)])
        excused = decisions.excused(row.assignment, who)
        if excused is not None:
            row.status = "excused"
            row.message = "excused" + (f": {excused.reason}" if excused.reason else "") + (
                f" ({row.message})" if row.message else "")
    return rows
