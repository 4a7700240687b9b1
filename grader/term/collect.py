"""Import a class's submissions into ``submitted/<student>/<assignment>/<assignment>.ipynb``.

Accepted downloads (one assignment at a time, ``--assignment``): Canvas "Download Submissions" and
Moodle "Download all submissions" zips, or a folder or zip of ``<student>.ipynb`` / ``<student>/<file>``
(formats and ids: ``grader/lms.py``). The student id is the LMS's own id (Canvas user id, Moodle
participant id), or a pseudonym with ``--anonymous``; names are display data, kept in the course's
roster (``lms-roster.csv``) and, unless anonymous, in the gradebook.

Every file of the download is accounted for in the import report (``lms-import-<assignment>.csv`` in
the course directory, and on screen):

- ``imported``: the student's submission, saved under the assignment's notebook name whatever it was
  called (a file that is not valid notebook JSON is imported too and graded 0 with a message);
- ``superseded``: another notebook of a student who has a newer one: the newest wins, by Canvas's
  re-upload number (``-1``, ``-2``), then the file's time (Moodle's zip keeps each file's time), then
  the assignment's own file name;
- ``skipped``: a file that is not a notebook, or whose name does not say who sent it;
- ``ignored``: what zip tools add (``__MACOSX/``, ``.DS_Store``).

The submission time goes to nbgrader's ``timestamp.txt``: Moodle's from its grading worksheet
(``--roster``) or the zip, Canvas's late marker as one second after the due date plus extension
(Canvas's download carries no submission time), none for plain folders. Importing again replaces the
student's previous import.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from grader import csvsafe
from grader.sanitize import plain_name
from grader.term.lms import (
    ROSTER_FILE,
    Entry,
    LMSError,
    Person,
    attempt,
    base_name,
    load_roster,
    pseudonym,
    read_download,
    read_roster,
    save_roster,
    split_name,
)

#: Outcomes of a file of the download that did not become a submission, and need the instructor.
PROBLEMS = ("skipped",)
REPORT_COLUMNS = ["file", "student", "lms_id", "name", "outcome", "reason"]


@dataclass
class FileOutcome:
    """What became of one file of the download."""

    file: str
    student: str
    lms_id: str
    name: str
    outcome: str  # imported | superseded | skipped | ignored
    reason: str = ""


@dataclass
class ImportReport:
    """The result of one import: who was imported from which file, and every file's outcome."""

    imported: dict[str, Path] = field(default_factory=dict)  # student -> notebook path
    files: list[FileOutcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    roster_only: list[str] = field(default_factory=list)  # roster students without a submission
    path: Path | None = None  # the report CSV

    @property
    def problems(self) -> list[FileOutcome]:
        """Files that were not imported and not superseded: the instructor must look at them."""
        return [f for f in self.files if f.outcome in PROBLEMS]


def is_valid_notebook(data: bytes) -> bool:
    """Whether ``data`` is a notebook nbformat reads (cheap enough for one download)."""
    import nbformat

    try:
        nbformat.reads(data.decode("utf-8"), as_version=4)
        return True
    except Exception:
        return False


def parse_lms_time(text: str) -> dt.datetime | None:
    """A Moodle worksheet time ("Monday, 5 October 2026, 11:59 PM") as naive UTC-less local time, or None."""
    from dateutil import parser

    text = (text or "").strip()
    if not text or text == "-":
        return None
    try:
        return parser.parse(text, fuzzy=True)
    except (ValueError, OverflowError):
        return None


def _to_utc(local: dt.datetime, timezone: str) -> dt.datetime:
    from zoneinfo import ZoneInfo

    if local.tzinfo is None:
        local = local.replace(tzinfo=ZoneInfo(timezone))
    return local.astimezone(dt.UTC).replace(tzinfo=None)


def _choose(expected: str, notebooks: list[Entry]) -> Entry:
    """The newest notebook: Canvas's re-upload number, then the file's time, then the assignment's own name."""
    return max(notebooks, key=lambda e: (attempt(e.filename) if e.lms == "canvas" else 0, e.time or dt.datetime.min,
                                          base_name(e.filename) == expected, e.filename))


def import_submissions(
    source: Path,
    course: Path,
    assignment: str,
    roster: Path | None = None,
    anonymous: bool = False,
    timezone: str = "UTC",
) -> ImportReport:
    """Import every student's newest notebook from ``source`` into ``course/submitted/`` and account
    for every other file. Raises :class:`grader.term.lms.LMSError` for unusable input (nothing written)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from grader.term.deadlines import due_date, extension_days, write_timestamp

    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise LMSError(f"--timezone {timezone!r}: not a time zone (e.g. UTC, Europe/Berlin)") from None
    course = Path(course)
    report = ImportReport()
    entries = read_download(source)
    lms_of_roster, people, _ = read_roster(roster) if roster else ("", [], [])
    kinds = {e.lms for e in entries if e.lms and e.lms != "plain"}
    if len(kinds) > 1:
        raise LMSError(f"{source}: mixes Canvas and Moodle file names; import each LMS's download on its own")
    kind = kinds.pop() if kinds else "plain"
    if lms_of_roster and lms_of_roster != "plain" and lms_of_roster != kind:
        raise LMSError(f"{roster} is a {lms_of_roster} roster but {source} is a {kind} download")

    known = load_roster(course)
    by_lms = {(p.lms, p.lms_id): p for p in known.values()}
    secret = None
    if anonymous:
        from grader.engine.secret import course_secret

        secret = course_secret(course)

    def person_for(lms: str, lms_id: str, name: str = "") -> Person:
        p = by_lms.get((lms, lms_id))
        if p is None:
            student = pseudonym(secret, lms, lms_id) if anonymous else lms_id
            p = Person(student, lms, lms_id, name=name, anonymous="yes" if anonymous else "")
            by_lms[(lms, lms_id)] = p
        elif anonymous and not p.anonymous:
            raise LMSError(f"{lms} id {lms_id} was imported before under its LMS id, not anonymously: "
                           "grade a whole assignment one way or the other")
        if name and not p.name:
            p.name = name
        return p

    roster_people = {}
    for rp in people:
        p = person_for(rp.lms if rp.lms != "plain" else kind, rp.lms_id, rp.name)
        for attr in ("name", "email", "sis_user_id", "sis_login_id", "section", "status", "submitted_at",
                     "graded_at"):
            if getattr(rp, attr):
                setattr(p, attr, getattr(rp, attr))
        roster_people[p.student] = p

    expected = f"{assignment}.ipynb"
    by_student: dict[str, list[Entry]] = {}
    raw_names: dict[str, str] = {}  # student id -> the name in the download it was first made from
    for e in entries:
        if e.junk:
            report.files.append(FileOutcome(e.path, "", "", "", "ignored", "added by the zip tool, not a submission"))
            continue
        if kind != "plain" and e.lms == "plain":  # in an LMS download, a name without the LMS's pattern
            e.lms_id = ""
        if not e.lms_id:
            report.files.append(FileOutcome(e.path, "", "", e.name, "skipped",
                                            "the file name does not say which student sent it"))
            continue
        p = person_for(e.lms, e.lms_id, e.name)
        if e.lms == "canvas" and not p.sortable:
            p.sortable = e.name
        if e.lms == "moodle":  # the feedback upload wants the folder of the file submission plugin
            p.folder = re.sub(r"_assignsubmission_[a-z]+_?$", "_assignsubmission_file_", e.folder)
        if not e.filename.lower().endswith(".ipynb"):
            report.files.append(FileOutcome(e.path, p.student, p.lms_id, p.name, "skipped",
                                            f"{e.filename} is not a notebook (.ipynb)"))
            continue
        first = raw_names.setdefault(p.student, e.name)
        if e.lms == "plain" and e.name != first:  # "Bob Smith.ipynb" and "bob-smith.ipynb": two people?
            report.files.append(FileOutcome(e.path, p.student, p.lms_id, e.name, "skipped",
                                            f"its name gives the same student id as {first!r}: rename one of them"))
            continue
        by_student.setdefault(p.student, []).append(e)

    people_by_student = {p.student: p for p in by_lms.values()}
    due = due_date(course, assignment)
    for student, notebooks in sorted(by_student.items()):
        p = people_by_student[student]
        chosen = _choose(expected, notebooks)
        for e in notebooks:
            if e is not chosen:
                report.files.append(FileOutcome(e.path, student, p.lms_id, p.name, "superseded",
                                                f"older than {chosen.filename}, which is graded"))
        reason = "" if chosen.filename == expected else f"saved as {expected}"
        if not is_valid_notebook(chosen.data or b""):
            reason = (reason + "; " if reason else "") + "not a valid notebook: it will be graded 0"
        folder = course / "submitted" / student / assignment
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        (folder / expected).write_bytes(chosen.data or b"")
        when = None
        if chosen.lms == "moodle":
            when = parse_lms_time(p.submitted_at)
            when = _to_utc(when or chosen.time, timezone) if (when or chosen.time) else None
        elif chosen.lms == "canvas" and chosen.late:
            if due is None:
                note = f"marked late by Canvas, but {assignment} has no due date in the course config: no penalty"
                reason = (reason + "; " if reason else "") + note
            else:
                ext = extension_days(course, assignment, [student, p.lms_id])
                when = due + dt.timedelta(days=ext, seconds=1)
                reason = (reason + "; " if reason else "") + "late (Canvas's marker): one day's penalty at least"
        if when is not None:
            write_timestamp(folder, when)
        report.files.append(FileOutcome(chosen.path, student, p.lms_id, p.name, "imported", reason))
        report.imported[student] = folder / expected

    for student in sorted(roster_people):
        if student not in report.imported:
            report.roster_only.append(student)
    unknown = sorted(s for s in report.imported if roster and s not in roster_people)
    for student in unknown:
        report.notes.append(f"{student} ({people_by_student[student].name}) is not in the roster {roster}")

    save_roster(course, {**known, **{p.student: p for p in by_lms.values()}})
    report.path = course / f"lms-import-{assignment}.csv"
    with open(report.path, "w", newline="", encoding="utf-8") as f:
        w = csvsafe.writer(f)
        w.writerow(REPORT_COLUMNS)
        for o in sorted(report.files, key=lambda o: (o.outcome != "imported", o.student, o.file)):
            w.writerow([o.file, o.student, o.lms_id, o.name, o.outcome, o.reason])
    return report


def record_students(course: Path, students: list[str]) -> None:
    """Put ``students`` in the gradebook with their names (none when anonymous), so that non-submitters
    are listed by the CLI's CSV and by ``nbgrader export`` alike."""
    from nbgrader.api import Gradebook

    from grader.coursedir import db_url, ensure_tools_on_path

    ensure_tools_on_path()
    roster = load_roster(course)
    with Gradebook(db_url(course)) as gb:
        for student in students:
            p = roster.get(student)
            if p is None or p.anonymous:
                gb.update_or_create_student(student)
                continue
            first, last = split_name(plain_name(p.name))  # the gradebook's names reach nbgrader's pages
            gb.update_or_create_student(student, first_name=first, last_name=last, email=p.email or None,
                                        lms_user_id=p.lms_id if p.lms in ("canvas", "moodle") else None)


__all__ = ["ROSTER_FILE", "ImportReport", "FileOutcome", "import_submissions", "record_students", "LMSError"]
