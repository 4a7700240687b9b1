"""Import a class's submissions into ``submitted/<student>/<assignment>/<assignment>.ipynb``.

Accepted downloads (one assignment at a time, ``--assignment``): Canvas "Download Submissions" and
Moodle "Download all submissions" zips, or a folder or zip of ``<student>.ipynb`` / ``<student>/<file>``
(formats and ids: ``grader/lms.py``). The student id is the LMS's own id (Canvas user id, Moodle
participant id), or a pseudonym with ``--anonymous``; names are display data, kept in the course's
roster (``lms-roster.csv``) and, unless anonymous, in the gradebook.

Every file of the download is accounted for in the import report (``lms-import-<assignment>.csv`` in
the course directory, and on screen), with its reason in words:

- ``imported``: the student's submission, saved under the assignment's notebook name whatever it was
  called (a file that is not valid notebook JSON is imported too and graded 0 with a message; a notebook
  of another assignment is imported and reported as such);
- ``superseded``: another notebook of the same student: :mod:`grader.term.choose` ranks them (the
  assignment's notebook before a scratch one, then the newest upload) unless the instructor chose one
  (``python -m grader choose``, kept in ``decisions.toml``);
- ``skipped``: a file that is not a notebook (a ``.py``, a PDF, a Canvas text entry or URL, a Moodle
  online text: attributed to its student, who is then reported as having sent no notebook), or whose name
  does not say who sent it;
- ``ignored``: what zip tools add (``__MACOSX/``, ``.DS_Store``) and Canvas's Test Student.

The submission time goes to nbgrader's ``timestamp.txt`` and the report's ``submitted_at``: Moodle's from
its grading worksheet (``--roster``, read in the worksheet's language, :mod:`grader.term.lmsdates`) or
the zip, none for plain folders; Canvas's download has only its late marker, recorded as ``late
(Canvas)`` and timed one second after the due date (:mod:`grader.term.apply`). With a roster, the LMS's
points for the assignment (Canvas's column, Moodle's maximum grade) are compared with the assignment's and
remembered, with the column, for ``return``. Importing again replaces the student's previous import.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from grader import csvsafe
from grader.sanitize import plain_name
from grader.term.choose import choose, other_assignment
from grader.term.decisions import Decisions
from grader.term.lms import (
    CANVAS_TEST_SORTABLE,
    ROSTER_FILE,
    Entry,
    LMSError,
    Person,
    Roster,
    lms_settings,
    load_roster,
    pseudonym,
    read_download,
    read_roster_info,
    remember,
    save_roster,
    split_name,
)
from grader.term.lmsdates import DateError, parse_local_time

#: Outcomes of a file of the download that did not become a submission, and need the instructor.
PROBLEMS = ("skipped",)
REPORT_COLUMNS = ["file", "student", "lms_id", "name", "outcome", "reason", "submitted_at"]


@dataclass
class FileOutcome:
    """What became of one file of the download."""

    file: str
    student: str
    lms_id: str
    name: str
    outcome: str  # imported | superseded | skipped | ignored
    reason: str = ""
    submitted_at: str = ""  # the submission time recorded (UTC), or "late (Canvas)"


@dataclass
class ImportReport:
    """The result of one import: who was imported from which file, and every file's outcome."""

    imported: dict[str, Path] = field(default_factory=dict)  # student -> notebook path
    files: list[FileOutcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    roster_only: list[str] = field(default_factory=list)  # roster students without a submission
    without_notebook: list[str] = field(default_factory=list)  # students who sent files but no notebook
    path: Path | None = None  # the report CSV

    @property
    def problems(self) -> list[FileOutcome]:
        """Files that were not imported and not superseded: the instructor must look at them."""
        return [f for f in self.files if f.outcome in PROBLEMS]


def _to_utc(local: dt.datetime, timezone: str) -> dt.datetime:
    from zoneinfo import ZoneInfo

    if local.tzinfo is None:
        local = local.replace(tzinfo=ZoneInfo(timezone))
    return local.astimezone(dt.UTC).replace(tzinfo=None)


def not_a_notebook(e: Entry) -> str:
    """Why ``e`` (a file that is no ``.ipynb``) is not graded, in words."""
    if e.online == "text":
        return "a text entry typed into Canvas, not a notebook: ask the student to upload the .ipynb"
    if e.online == "link":
        return "a URL submitted in Canvas, not a notebook: ask the student to upload the .ipynb"
    if "_assignsubmission_onlinetext" in e.folder:
        return "an online text typed into Moodle, not a notebook"
    if e.filename.lower().endswith(".py"):
        return f"{e.filename} is a Python file, not a notebook (.ipynb): ask the student for the notebook"
    return f"{e.filename} is not a notebook (.ipynb)"


def _read_times(info: Roster | None, roster: Path | None) -> dict[str, dt.datetime | None]:
    """Moodle participant id -> the worksheet's submission time (naive local), every one read exactly."""
    times: dict[str, dt.datetime | None] = {}
    if info is None or info.lms != "moodle":
        return times
    column = info.fields.get("submitted", "Last modified (submission)")
    for p in info.people:
        try:
            times[p.lms_id] = parse_local_time(p.submitted_at)
        except DateError as err:
            raise LMSError(f"{roster}: column {column!r} of participant {p.lms_id}: {err}") from None
    return times


def _check_points(course: Path, assignment: str, info: Roster, column: str | None, report: ImportReport) -> None:
    """Read the assignment's column and points from the roster, remember them, and note a mismatch."""
    from grader.term.source import max_score

    ours = max_score(course, assignment)
    if info.lms == "canvas":
        columns = info.columns
        if column and column not in columns:
            raise LMSError(f"--column {column!r} is not an assignment column of the roster (its columns: "
                           f"{', '.join(columns) or 'none'})")
        if not column:
            column = lms_settings(course, assignment).get("column")
        if not column or column not in columns:
            named = [c for c in columns if assignment.casefold() in c.casefold()]
            column = named[0] if len(named) == 1 else (next(iter(columns)) if len(columns) == 1 else None)
        if column is None:
            if columns:
                report.notes.append(f"which column of the gradebook is {assignment}? pass --column with one of: "
                                    f"{'; '.join(columns)} (it is remembered for `return`)")
            return
        lms_points = columns[column]
        remember(course, assignment, lms="canvas", column=column, points=lms_points)
        where = f"Canvas's column {column!r}"
    else:
        lms_points = info.max_grade
        remember(course, assignment, lms="moodle", header=info.header, fields=info.fields, points=lms_points,
                 id_prefix=info.id_prefix, decimal=info.decimal)
        where = "Moodle's worksheet (Maximum Grade)"
    if lms_points is not None and abs(lms_points - ours) > 1e-9:
        report.notes.append(f"{where} is worth {lms_points:g} points but {assignment} is graded out of {ours:g}: "
                            "change the points in the LMS, or `return` with --scale to scale the scores to it")


class ClassList:
    """The course's people (``lms-roster.csv``), joined by those of a roster export or a download."""

    def __init__(self, course: Path, anonymous: bool = False) -> None:
        self.course, self.anonymous = Path(course), anonymous
        self.known = load_roster(course)
        self.by_lms = {(p.lms, p.lms_id): p for p in self.known.values()}
        self.secret = None
        if anonymous:
            from grader.engine.secret import course_secret

            self.secret = course_secret(course)

    def person(self, lms: str, lms_id: str, name: str = "") -> Person:
        """The person with this LMS id (a new one, under a pseudonym when anonymous, if unknown)."""
        p = self.by_lms.get((lms, lms_id))
        if p is None:
            student = pseudonym(self.secret, lms, lms_id) if self.anonymous else lms_id
            p = Person(student, lms, lms_id, name=name, anonymous="yes" if self.anonymous else "")
            self.by_lms[(lms, lms_id)] = p
        elif self.anonymous and not p.anonymous:
            raise LMSError(f"{lms} id {lms_id} was imported before under its LMS id, not anonymously: "
                           "grade a whole assignment one way or the other")
        if name and not p.name:
            p.name = name
        return p

    def add(self, info: Roster, kind: str = "plain") -> dict[str, Person]:
        """Everyone of a roster export (their LMS columns kept); returns them by student id."""
        added = {}
        for rp in info.people:
            p = self.person(rp.lms if rp.lms != "plain" else kind, rp.lms_id, rp.name)
            for attr in ("name", "email", "sis_user_id", "sis_login_id", "section", "status", "submitted_at",
                         "graded_at"):
                if getattr(rp, attr):
                    setattr(p, attr, getattr(rp, attr))
            added[p.student] = p
        return added

    def save(self) -> Path:
        return save_roster(self.course, {**self.known, **{p.student: p for p in self.by_lms.values()}})


def load_class_list(course: Path, roster: Path, anonymous: bool = False) -> tuple[Roster, list[str]]:
    """``python -m grader roster``: the class list of an LMS export into the course (before any download,
    so that decisions can name its students); returns the export and its students' ids."""
    info = read_roster_info(roster)
    people = ClassList(course, anonymous)
    added = people.add(info, info.lms)
    people.save()
    return info, sorted(added)


def import_submissions(
    source: Path,
    course: Path,
    assignment: str,
    roster: Path | None = None,
    anonymous: bool = False,
    timezone: str = "UTC",
    column: str | None = None,
) -> ImportReport:
    """Import every student's submission from ``source`` into ``course/submitted/`` (the file chosen by
    :mod:`grader.term.choose`, or by the instructor) and account for every other file. Raises
    :class:`grader.term.lms.LMSError` for unusable input (nothing written)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from grader.term.apply import CANVAS_LATE
    from grader.term.deadlines import due_date, write_timestamp

    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise LMSError(f"--timezone {timezone!r}: not a time zone (e.g. UTC, Europe/Berlin)") from None
    course = Path(course)
    report = ImportReport()
    entries = read_download(source)
    info = read_roster_info(roster) if roster else None
    lms_of_roster = info.lms if info else ""
    kinds = {e.lms for e in entries if e.lms and e.lms != "plain"}
    if len(kinds) > 1:
        raise LMSError(f"{source}: mixes Canvas and Moodle file names; import each LMS's download on its own")
    kind = kinds.pop() if kinds else "plain"
    if lms_of_roster and lms_of_roster != "plain" and lms_of_roster != kind:
        raise LMSError(f"{roster} is a {lms_of_roster} roster but {source} is a {kind} download")
    worksheet_times = _read_times(info, roster)
    decisions = Decisions.load(course)

    people_of = ClassList(course, anonymous)
    person_for = people_of.person
    roster_people = people_of.add(info, kind) if info else {}
    if info is not None and info.lms != "plain":
        _check_points(course, assignment, info, column, report)
    test_students = info.test_students if info else set()

    expected = f"{assignment}.ipynb"
    by_student: dict[str, list[Entry]] = {}
    raw_names: dict[str, str] = {}  # student id -> the name in the download it was first made from
    for e in entries:
        if e.junk:
            report.files.append(FileOutcome(e.path, "", "", "", "ignored", "added by the zip tool, not a submission"))
            continue
        if e.lms == "canvas" and (e.lms_id in test_students or e.name in CANVAS_TEST_SORTABLE):
            report.files.append(FileOutcome(e.path, "", e.lms_id, e.name, "ignored",
                                            "Canvas's Test Student (Student View), not a student"))
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
            report.files.append(FileOutcome(e.path, p.student, p.lms_id, p.name, "skipped", not_a_notebook(e)))
            continue
        first = raw_names.setdefault(p.student, e.name)
        if e.lms == "plain" and e.name != first:  # "Bob Smith.ipynb" and "bob-smith.ipynb": two people?
            report.files.append(FileOutcome(e.path, p.student, p.lms_id, e.name, "skipped",
                                            f"its name gives the same student id as {first!r}: rename one of them"))
            continue
        by_student.setdefault(p.student, []).append(e)

    people_by_student = {p.student: p for p in people_of.by_lms.values()}
    due = due_date(course, assignment)
    for student, notebooks in sorted(by_student.items()):
        p = people_by_student[student]
        decided = decisions.choice(assignment, [student, p.lms_id])
        graded, reasons, note = choose(course, assignment, notebooks, decided.file if decided else None)
        chosen = graded.entry
        if note:
            report.notes.append(f"{student} ({p.name}): {note}")
        for e in notebooks:
            if e is not chosen:
                report.files.append(FileOutcome(e.path, student, p.lms_id, p.name, "superseded", reasons[id(e)]))
        parts = [reasons[id(chosen)]] if len(notebooks) > 1 or decided or graded.notebook is None else []
        if graded.notebook is not None and graded.cells and not graded.is_assignment:
            other = other_assignment(course, assignment, graded.notebook)
            parts.append(f"this is the notebook of {other}, not {assignment}: it will be graded 0" if other else
                         f"it holds only {graded.holds} of {graded.cells} cells of {assignment}'s notebook")
        if chosen.filename != expected:
            parts.append(f"saved as {expected}")
        folder = course / "submitted" / student / assignment
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        (folder / expected).write_bytes(chosen.data or b"")
        when, submitted_at = None, ""
        if chosen.lms == "moodle":
            local = worksheet_times.get(p.lms_id) or chosen.time
            when = _to_utc(local, timezone) if local else None
        elif chosen.lms == "canvas" and chosen.late:
            submitted_at = CANVAS_LATE
            if due is None:
                parts.append(f"marked late by Canvas, but {assignment} has no due date in the course config: "
                             "no penalty")
            else:
                when = due + dt.timedelta(seconds=1)
                parts.append("late (Canvas's marker): one day's penalty unless the student has an extension")
        if when is not None:
            write_timestamp(folder, when)
            submitted_at = submitted_at or when.strftime("%Y-%m-%d %H:%M:%S UTC")
        report.files.append(FileOutcome(chosen.path, student, p.lms_id, p.name, "imported", "; ".join(parts),
                                        submitted_at))
        report.imported[student] = folder / expected

    for student in sorted(roster_people):
        if student not in report.imported:
            report.roster_only.append(student)
    report.without_notebook = sorted({o.student for o in report.files if o.student and o.outcome == "skipped"}
                                     - set(report.imported))
    unknown = sorted(s for s in report.imported if roster and s not in roster_people)
    for student in unknown:
        report.notes.append(f"{student} ({people_by_student[student].name}) is not in the roster {roster}")

    people_of.save()
    report.path = course / f"lms-import-{assignment}.csv"
    with open(report.path, "w", newline="", encoding="utf-8") as f:
        w = csvsafe.writer(f)
        w.writerow(REPORT_COLUMNS)
        for o in sorted(report.files, key=lambda o: (o.outcome != "imported", o.student, o.file)):
            w.writerow([o.file, o.student, o.lms_id, o.name, o.outcome, o.reason, o.submitted_at])
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
