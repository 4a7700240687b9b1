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


def _decide(course: Path, assignment: str, key: str, kind: str, new: Decision | None, said: str,
            function: str = "") -> Outcome:
    """Record ``new`` (or, when None, take back the decision of ``kind``), save, apply; ``said`` is the line
    to print (a take-back that found nothing says so instead)."""
    decisions = Decisions.load(course)
    out = Outcome()
    if new is None:
        if decisions.remove(kind, assignment, key, function) is None:
            said = f"{key} had no {kind} decision for {assignment}" + (f" ({function})" if function else "")
    else:
        decisions.record(new)
    out.lines.append(said)
    decisions.save()
    out.lines += [f"score changed: {c}" for c in apply_decisions(course, assignments=[assignment])]
    out.changed = (Path(course) / "gradebook.db").exists()
    return out


def extend(course: Path, assignment: str, given: str, days: float | None, reason: str, remove: bool) -> Outcome:
    _, key = resolve_student(course, given)
    if remove:
        return _decide(course, assignment, key, "extension", None, f"took back the extension of {key} for {assignment}")
    if days is None or days <= 0:
        raise DecisionError(f"--days must be a positive number of days (got {days}); "
                            "to take an extension back use --remove")
    return _decide(course, assignment, key, "extension", Decision("extension", assignment, key, reason, days=days),
                   f"{key} has {days:g} more days for {assignment}")


def excuse(course: Path, assignment: str, given: str, reason: str, remove: bool) -> Outcome:
    _, key = resolve_student(course, given)
    if remove:
        return _decide(course, assignment, key, "excused", None, f"{key} is no longer excused from {assignment}")
    return _decide(course, assignment, key, "excused", Decision("excused", assignment, key, reason),
                   f"{key} is excused from {assignment} (EX in Canvas's grade file)")


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
    if remove:
        clear_override(course, assignment, student, function)
        return _decide(course, assignment, key, "override", None, f"removed the override of {what} for {key}",
                       function)
    if score is None or not 0 <= score <= top:
        raise DecisionError(f"--points must lie between 0 and {top:g}, the maximum of {what} (got {score})")
    if not reason.strip():
        raise DecisionError("an override needs --reason (it is written beside the score for whoever reads it)")
    return _decide(course, assignment, key, "override",
                   Decision("override", assignment, key, reason, points=float(score), function=function),
                   f"{key}: {what} is {score:g} points (late penalty still applies), because: {reason}", function)


def choose_file(course: Path, assignment: str, given: str, file: str, reason: str, remove: bool) -> Outcome:
    """Record the instructor's choice of file and import again from the last download (when it is there)."""
    from grader.term.choose import matches
    from grader.term.lms import classify

    student, key = resolve_student(course, given)
    sent = [r["file"] for r in import_report(course, assignment) if r.get("student") == student
            and r.get("outcome") in ("imported", "superseded")]
    if remove:
        out = _decide(course, assignment, key, "choice", None,
                      f"{key}'s file for {assignment} is chosen automatically again")
    else:
        if sent and not any(matches(file, classify(path)) for path in sent):
            raise DecisionError(f"{key} sent no notebook {file!r} in the last import of {assignment}; their notebooks: "
                                f"{'; '.join(sent)}")
        out = _decide(course, assignment, key, "choice", Decision("choice", assignment, key, reason, file=file),
                      f"{key}: {file} is graded for {assignment}")
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
