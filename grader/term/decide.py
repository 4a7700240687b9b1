"""``python -m grader extend | excuse | override | choose``: check a decision, record it, apply it at once.

Each command checks its input against the course (the assignment exists, the student is in the course's
roster or has a submission, days are positive, points lie between 0 and the function's or the
assignment's maximum, a chosen file is one the student sent), records it in ``decisions.toml``
(:mod:`grader.term.decisions`) and applies it (:func:`grader.term.apply.apply_decisions`): a changed score
is in the gradebook, and so in ``nbgrader export``, right away. ``choose`` imports the assignment again
from the download last imported (remembered in ``lms-assignments.json``) when it is still there.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

from grader.term.apply import apply_decisions, clear_override, import_report
from grader.term.decisions import Decision, DecisionError, Decisions
from grader.term.lms import lms_settings, load_roster
from grader.term.source import points


@dataclass
class Outcome:
    """What a decision command did, in lines to print."""

    lines: list[str] = field(default_factory=list)
    changed: bool = False  # the gradebook changed: the grades CSV is to be written again


def resolve_student(course: Path, given: str) -> tuple[str, str]:
    """``(student id, key)`` of the student ``given`` names (student id or LMS id); the key is what the
    decision records: the LMS id when the roster has one. An unknown student is a :class:`DecisionError`."""
    course = Path(course)
    roster = load_roster(course)
    for student, p in roster.items():
        if given in (student, p.lms_id):
            return student, p.lms_id or student
    submitted = course / "submitted"
    if (submitted / given).is_dir():
        return given, given
    known = sorted({*roster, *(p.lms_id for p in roster.values() if p.lms_id),
                    *(d.name for d in submitted.iterdir() if d.is_dir())} if submitted.is_dir() else
                   {*roster, *(p.lms_id for p in roster.values() if p.lms_id)})
    close = difflib.get_close_matches(given, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    if not known:
        raise DecisionError(f"unknown student {given!r}: the course has no roster yet; load the LMS's class list "
                            "first: python -m grader roster GRADEBOOK.csv (or import a download with --roster)")
    raise DecisionError(f"unknown student {given!r}{hint}: students are named by their LMS id "
                        f"(see {course / 'lms-roster.csv'})")


def _apply(course: Path, assignment: str, out: Outcome) -> None:
    changes = apply_decisions(course, assignments=[assignment])
    out.lines += [f"score changed: {c}" for c in changes]
    out.changed = (Path(course) / "gradebook.db").exists()


def extend(course: Path, assignment: str, given: str, days: float | None, reason: str, remove: bool) -> Outcome:
    student, key = resolve_student(course, given)
    decisions = Decisions.load(course)
    out = Outcome()
    if remove:
        old = decisions.remove("extension", assignment, key)
        out.lines.append(f"took back the extension of {key} for {assignment}" if old else
                         f"{key} had no extension for {assignment}")
    else:
        if days is None or days <= 0:
            raise DecisionError(f"--days must be a positive number of days (got {days}); "
                                "to take an extension back use --remove")
        old = decisions.record(Decision("extension", assignment, key, reason, days=float(days)))
        out.lines.append(f"{key} has {days:g} more days for {assignment}" +
                         (f" (was {old.days:g})" if old else ""))
    decisions.save()
    _apply(course, assignment, out)
    return out


def excuse(course: Path, assignment: str, given: str, reason: str, remove: bool) -> Outcome:
    student, key = resolve_student(course, given)
    decisions = Decisions.load(course)
    out = Outcome()
    if remove:
        old = decisions.remove("excused", assignment, key)
        out.lines.append(f"{key} is no longer excused from {assignment}" if old else
                         f"{key} was not excused from {assignment}")
    else:
        decisions.record(Decision("excused", assignment, key, reason))
        out.lines.append(f"{key} is excused from {assignment} (EX in Canvas's grade file)")
    decisions.save()
    _apply(course, assignment, out)
    return out


def override(course: Path, assignment: str, given: str, function: str, score: float | None, reason: str,
             remove: bool) -> Outcome:
    student, key = resolve_student(course, given)
    cells = points(course, assignment)
    functions = {g.removeprefix("test-"): p for g, p in cells.items()}
    if function and function not in functions:
        raise DecisionError(f"{assignment} has no graded function {function!r} (its functions: "
                            f"{', '.join(functions)})")
    top = functions[function] if function else sum(cells.values())
    what = f"{function} of {assignment}" if function else f"{assignment} (total)"
    decisions = Decisions.load(course)
    out = Outcome()
    if remove:
        old = decisions.remove("override", assignment, key, function)
        clear_override(course, assignment, student, function)
        out.lines.append(f"removed the override of {what} for {key}" if old else f"{key} had no override of {what}")
    else:
        if score is None or not 0 <= score <= top:
            raise DecisionError(f"--points must lie between 0 and {top:g}, the maximum of {what} (got {score})")
        if not reason.strip():
            raise DecisionError("an override needs --reason (it is written beside the score for whoever reads it)")
        decisions.record(Decision("override", assignment, key, reason, points=float(score), function=function))
        out.lines.append(f"{key}: {what} is {score:g} points (late penalty still applies), because: {reason}")
    decisions.save()
    _apply(course, assignment, out)
    return out


def choose_file(course: Path, assignment: str, given: str, file: str, reason: str, remove: bool) -> Outcome:
    """Record the instructor's choice of file and import again from the last download (when it is there)."""
    from grader.term.choose import matches
    from grader.term.lms import classify

    student, key = resolve_student(course, given)
    sent = [r["file"] for r in import_report(course, assignment) if r.get("student") == student
            and r.get("outcome") in ("imported", "superseded")]
    decisions = Decisions.load(course)
    out = Outcome()
    if remove:
        old = decisions.remove("choice", assignment, key)
        out.lines.append(f"{key}'s file for {assignment} is chosen automatically again" if old else
                         f"no file was chosen for {key} in {assignment}")
    else:
        if sent and not any(matches(file, classify(path)) for path in sent):
            raise DecisionError(f"{key} sent no notebook {file!r} in the last import of {assignment}; their notebooks: "
                                f"{'; '.join(sent)}")
        decisions.record(Decision("choice", assignment, key, reason, file=file))
        out.lines.append(f"{key}: {file} is graded for {assignment}")
    decisions.save()
    last = lms_settings(course, assignment).get("last_import")
    if last and Path(last["source"]).exists():
        from grader.term.collect import import_submissions

        report = import_submissions(Path(last["source"]), course, assignment,
                                    roster=Path(last["roster"]) if last.get("roster") else None,
                                    anonymous=last.get("anonymous", False), timezone=last.get("timezone", "UTC"))
        mine = [o for o in report.files if o.student == student and o.outcome in ("imported", "superseded")]
        out.lines += [f"{o.outcome}: {o.file}" + (f": {o.reason}" if o.reason else "") for o in mine]
        out.lines.append(f"imported {assignment} again from {last['source']}; grade it again: "
                         f"python -m grader grade {assignment} --student {key}")
    else:
        out.lines.append(f"it applies when {assignment} is imported again (python -m grader import DOWNLOAD "
                         f"--assignment {assignment}), then grade: python -m grader grade {assignment} --student {key}")
    return out
