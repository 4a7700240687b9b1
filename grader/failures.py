"""Every submission that could not be graded gets a reason in words, and that reason is kept.

Students and the grades CSV see sentences ("the file is not valid JSON (line 12, column 5): it ends
too early, so it may be truncated; graded 0"), never an exception's class name or a traceback; the
details (nbgrader's log) stay in the course's ``grading-logs/`` folder, for the instructor.

- :func:`quote`: student-controlled text (a cell type, a grade id, a file name) as it may appear in a
  message: printable, without markup characters, at most a few dozen characters.
- :func:`explain`: the reason for an ``nbgrader autograde`` that failed, from the submitted file
  itself (:func:`grader.normalize.read_notebook`: unreadable bytes, not JSON, not a notebook, an
  nbformat it cannot convert) or, failing that, from nbgrader's log.
- :func:`write_record` / :func:`read_records`: ``grading-logs/<assignment>-<student>.log`` starts with
  the submission's status and message (then nbgrader's log), so a report written later, a partial
  regrade or a merge of shards shows the same message for a submission it did not grade again.
"""

from __future__ import annotations

import re
from pathlib import Path

#: Folder (in the course directory) with nbgrader's log of each submission that failed to grade.
LOG_DIR = "grading-logs"
#: What a message of a submission that could not be graded ends with.
GRADED_ZERO = "graded 0"
#: Longest quoted student text in a message.
QUOTE_CHARS = 40
#: Characters kept in quoted text besides letters and digits (of any script): nothing a CSV, markdown,
#: HTML or a formula renderer treats specially (no ``= + < > & ` $ \\ * [ ] |``).
_SAFE = set(" .,:;-_()/'#@!?%")

#: nbgrader's log -> the reason in words, for failures that the submitted file does not explain.
_LOG_REASONS = [
    (("No notebooks found",), "no notebook with the expected name was found"),
    (("UnresponsiveKernelError", "kernel became unresponsive"),
     "its kernel stopped answering and could not be interrupted"),
    (("SchemaTooNewError", "SchemaTooOldError", "nbgrader metadata may be corrupted", "Duplicate grade id"),
     "the nbgrader metadata of its cells is damaged"),
    (("SandboxUnavailable",), "the grading sandbox could not start (a problem of the grading machine)"),
    (("No assignment with ID",), "the assignment is not in the gradebook (a problem of the course set-up)"),
]
UNEXPECTED = "the grader could not grade it (an unexpected problem; the instructor has the details in grading-logs/)"
#: A worker process that died while it held the submission (killed, or a crash in C code).
CRASHED = "grading crashed (the process grading it stopped); " + GRADED_ZERO


def quote(value: object, limit: int = QUOTE_CHARS) -> str:
    """``value`` for a message: ``'text'`` with only printable letters, digits and plain punctuation
    (anything else becomes ``?``), runs of spaces collapsed, at most ``limit`` characters (then ``...``)."""
    text = value if isinstance(value, str) else _kind(value)
    text = text[: limit * 4]  # a bound before the character loop, whatever the input's size
    safe = "".join(ch if ch.isalnum() or ch in _SAFE else "?" for ch in text)
    safe = re.sub(r"\s+", " ", safe).strip()
    if len(safe) > limit:
        safe = safe[: limit - 3].rstrip() + "..."
    return f"'{safe}'"


def _kind(value: object) -> str:
    """A JSON value named in words (never its repr, which could be huge or nested)."""
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, int | float):
        return str(value) if abs(value) < 1e15 else "a large number"
    return type(value).__name__


def a_json_value(value: object) -> str:
    """What kind of JSON value ``value`` is, as a noun phrase: "a list", "a string", "a number"..."""
    if isinstance(value, bool):
        return "true or false"
    names = {dict: "an object", list: "a list", str: "a string", int: "a number", float: "a number"}
    return "null" if value is None else names.get(type(value), "a value")


def explain(submitted: Path, log: str) -> str:
    """The reason in words why ``nbgrader autograde`` failed for the notebook ``submitted``, ending in
    ``graded 0``: the file's own problem when it has one, else what nbgrader's ``log`` shows."""
    from grader.normalize import read_notebook

    if submitted.is_file():
        try:
            problem = read_notebook(submitted.read_bytes()).problem
        except OSError:
            problem = "the file could not be read"
        if problem:
            return f"{problem}; {GRADED_ZERO}"
    for needles, reason in _LOG_REASONS:
        if any(n in log for n in needles):
            return f"{reason}; {GRADED_ZERO}"
    return f"{UNEXPECTED}; {GRADED_ZERO}"


# --- the record of each submission's message, in grading-logs/ ---------------------------------------
_HEADER = ("assignment", "student", "status", "message")


def record_path(course: Path, assignment: str, student: str) -> Path:
    return Path(course) / LOG_DIR / f"{assignment}-{student}.log"


def write_record(course: Path, assignment: str, student: str, status: str, message: str, log: str) -> Path:
    """``grading-logs/<assignment>-<student>.log``: four header lines, then nbgrader's log."""
    path = record_path(course, assignment, student)
    path.parent.mkdir(parents=True, exist_ok=True)
    values = (assignment, student, status, " ".join(message.split()))
    header = "".join(f"{key}: {value}\n" for key, value in zip(_HEADER, values, strict=True))
    path.write_text(header + "--- nbgrader's log ---\n" + log, encoding="utf-8")
    return path


def remove_record(course: Path, assignment: str, student: str) -> None:
    record_path(course, assignment, student).unlink(missing_ok=True)


def read_records(course: Path) -> dict[tuple[str, str], tuple[str, str]]:
    """``(assignment, student) -> (status, message)`` of every record in ``course/grading-logs/`` whose
    submission is still in ``submitted/`` (logs written before records had headers are skipped, and so is
    the record of a failure when an autograded notebook exists: it was graded since, e.g. by stock nbgrader,
    which removes the autograded notebook of a submission that fails)."""
    folder = Path(course) / LOG_DIR
    records = {}
    for path in sorted(folder.glob("*.log")) if folder.is_dir() else []:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                lines = [f.readline().rstrip("\n") for _ in _HEADER]
        except OSError:
            continue
        fields = dict(line.split(": ", 1) for line in lines if ": " in line)
        if set(fields) != set(_HEADER) or path != record_path(course, fields["assignment"], fields["student"]):
            continue
        folder = Path(fields["student"]) / fields["assignment"]
        stale = fields["status"] == "error" and (Path(course) / "autograded" / folder).is_dir()
        if (Path(course) / "submitted" / folder).is_dir() and not stale:
            records[(fields["assignment"], fields["student"])] = (fields["status"], fields["message"])
    return records


__all__ = ["CRASHED", "GRADED_ZERO", "LOG_DIR", "explain", "quote", "read_records", "write_record"]
