"""The LMS's own formats: downloads and rosters in, grade files and feedback archives out.

Students are identified by their LMS id, never by their name (``/work/shared/COURSE.md``):

- **Canvas** "Download Submissions" zip: ``<sortablename>_<user id>_<submission id>_<file>``, with
  ``_LATE_`` after the name for a late submission (``smithjohn_LATE_12345_678901_ch2-sdpa-1.ipynb``); a
  re-upload of a file with the same name gets ``-1``, ``-2`` ... before the extension. The student is
  the Canvas **user id** (``12345``), the column ``ID`` of Canvas's gradebook CSV.
- **Moodle** "Download all submissions" zip: one folder per submission,
  ``<Full name>_<participant id>_assignsubmission_file_/<file>``. The student is the Moodle
  **participant id**, the ``Identifier`` ("Participant 1234567") of Moodle's grading worksheet.
- **Plain** folder or zip of ``<student>.ipynb`` or ``<student>/<file>``: the name is the id (Unicode
  letters kept, lower case, other runs of characters become ``-``).

Rosters (``--roster``), recognised by their header: Canvas's gradebook CSV export (``Student``, ``ID``,
``SIS User ID``, ``SIS Login ID``, ``Section``, one column per assignment, an optional "Points Possible"
row), Moodle's grading worksheet (``Identifier``, ``Full name``, ``Email address``, ``Status``, ``Grade``,
...; Moodle's participants table export carries no participant id, so it cannot be used), or a plain CSV
with ``id`` and ``name`` columns (``email`` optional).

Back to the LMS (written by ``python -m grader return``):

- Canvas gradebook import CSV: ``Student``, ``ID``, ``SIS User ID``, ``SIS Login ID``, ``Section`` and
  one assignment column ``<name> (<Canvas assignment id>)`` (``--column``; a column without an id makes
  Canvas create a new assignment), a "Points Possible" row; Canvas matches rows on ``ID``.
- Moodle grading worksheet CSV with its columns in its order; Moodle matches rows on ``Identifier``.
- Feedback archives: Moodle's "Upload multiple feedback files in a zip" wants the download's folder
  names, ``<Full name>_<participant id>_assignsubmission_file_/<file>``. Canvas has no bulk upload of
  feedback files for assignments; the archive follows the common convention of Canvas bulk feedback
  tools: one file per student named like the download, ``<sortablename>_<user id>_<file>``, at the top
  of the zip (each tool, or the instructor, attaches it to the submission of that user id).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import io
import re
import unicodedata
import zipfile
import zlib
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from grader import csvsafe

#: The course's record of who is who (nbgrader student id <-> LMS id, names): kept in the course
#: directory only, never written into feedback or reports when grading anonymously.
ROSTER_FILE = "lms-roster.csv"

CANVAS_FILE = re.compile(r"^(?P<sortable>.+?)_(?P<late>LATE_)?(?P<uid>\d+)_(?P<sid>\d+)_(?P<file>.+)$", re.S)
MOODLE_DIR = re.compile(r"^(?P<name>.+)_(?P<pid>\d+)_assignsubmission_(?P<plugin>[a-z]+)_?$", re.S)
ATTEMPT = re.compile(r"^(?P<stem>.+)-(?P<n>\d+)(?P<ext>\.[^.]+)$")
#: Entries every zip tool adds that are no one's submission.
JUNK = re.compile(r"(^|/)(__MACOSX/|\.DS_Store$|Thumbs\.db$|desktop\.ini$|\._)")
MOODLE_WORKSHEET = ["Identifier", "Full name", "Email address", "Status", "Grade", "Maximum Grade",
                    "Grade can be changed", "Last modified (submission)", "Last modified (grade)", "Feedback comments"]
CANVAS_FIXED = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
LMS_KINDS = ("canvas", "moodle", "plain")


class LMSError(Exception):
    """An expected mistake in the instructor's input (a corrupt zip, an unknown roster format...)."""


@dataclass
class Person:
    """One student as the LMS knows them, and their id in the course's gradebook (``student``)."""

    student: str
    lms: str
    lms_id: str
    name: str = ""
    sortable: str = ""  # Canvas's sortable name as in its download ("smithjohn")
    email: str = ""
    sis_user_id: str = ""
    sis_login_id: str = ""
    section: str = ""
    folder: str = ""  # Moodle's download folder of this student
    status: str = ""  # Moodle worksheet columns, returned as they came
    submitted_at: str = ""
    graded_at: str = ""
    anonymous: str = ""  # "yes" when ``student`` is a pseudonym


@dataclass
class Entry:
    """One file of a download, attributed to an LMS identity where its name says who sent it."""

    path: str
    data: bytes | None
    time: dt.datetime | None  # naive: the zip's local time, or a file's mtime (UTC)
    lms: str = ""
    lms_id: str = ""  # "" when the name does not say who sent it
    name: str = ""  # display name as the download writes it
    filename: str = ""  # the file as the student uploaded it (after the LMS's prefix)
    late: bool = False
    folder: str = ""
    junk: bool = False


def safe_id(name: str) -> str:
    """A student id from a plain name: NFKC, lower case, runs of non-letters/digits -> ``-``.
    Unicode letters are kept (``王芳`` stays ``王芳``); ``""`` when nothing is left."""
    text = unicodedata.normalize("NFKC", name).lower()
    return re.sub(r"[\W_]+", "-", text).strip("-")


def pseudonym(secret: bytes, lms: str, lms_id: str) -> str:
    """A stable pseudonymous student id for anonymous grading (HMAC of the LMS id with the course secret)."""
    return "anon-" + hmac.new(secret, f"{lms}:{lms_id}".encode(), hashlib.sha256).hexdigest()[:10]


def classify(path: str) -> Entry:
    """What the name of a download's entry says (who sent it, late or not); no data read."""
    parts = [p for p in path.replace("\\", "/").split("/") if p and p != "."]
    entry = Entry(path=path, data=None, time=None)
    if not parts or JUNK.search("/".join(parts)) or parts[-1].startswith("."):
        entry.junk = True
        return entry
    filename = parts[-1]
    if len(parts) >= 2:
        folder = parts[-2]
        m = MOODLE_DIR.match(folder)
        if m:
            entry.lms, entry.lms_id, entry.name, entry.folder = "moodle", m["pid"], m["name"], folder
        else:
            entry.lms, entry.name = "plain", folder
            entry.lms_id = safe_id(folder)
        entry.filename = filename
        return entry
    m = CANVAS_FILE.match(filename)
    if m:
        entry.lms, entry.lms_id, entry.name = "canvas", m["uid"], m["sortable"]
        entry.filename, entry.late = m["file"], bool(m["late"])
        return entry
    stem = filename.rsplit(".", 1)[0] if "." in filename else filename
    entry.lms, entry.name, entry.filename, entry.lms_id = "plain", stem, filename, safe_id(stem)
    return entry


def read_download(source: Path) -> list[Entry]:
    """Every file of a zip or folder, classified, with its bytes and time. Raises :class:`LMSError` for
    a path that does not exist, a corrupt zip, or a download with no file in it."""
    source = Path(source)
    entries: list[Entry] = []
    if source.is_dir():
        for path in sorted(source.rglob("*")):
            rel = path.relative_to(source).as_posix()
            if not path.is_file() or ".ipynb_checkpoints" in path.parts:
                continue
            e = classify(rel)
            e.data = path.read_bytes()
            e.time = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC).replace(tzinfo=None)
            entries.append(e)
    elif source.is_file():
        try:
            with zipfile.ZipFile(source) as zf:
                for info in zf.infolist():
                    if info.is_dir():
                        continue
                    e = classify(info.filename)
                    e.data = zf.read(info)
                    e.time = dt.datetime(*info.date_time)
                    entries.append(e)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as err:
            raise LMSError(f"{source}: corrupt zip, nothing imported ({err}); download it again") from None
    else:
        raise LMSError(f"{source}: no such zip file or folder")
    if not entries:
        raise LMSError(f"{source}: the download holds no file, nothing imported")
    return entries


def attempt(filename: str) -> int:
    """Canvas's re-upload number: ``x-1.ipynb`` is attempt 1 of ``x.ipynb`` (attempt 0)."""
    m = ATTEMPT.match(filename)
    return int(m["n"]) if m else 0


def base_name(filename: str) -> str:
    """The file name without Canvas's ``-N`` re-upload suffix."""
    m = ATTEMPT.match(filename)
    return m["stem"] + m["ext"] if m else filename


# --- rosters ----------------------------------------------------------------------------------
def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise LMSError(f"{path}: no such roster file") from None
    except UnicodeDecodeError:
        raise LMSError(f"{path}: not a UTF-8 CSV file (export it from the LMS as CSV, UTF-8)") from None
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    rows = [{(k or "").strip(): (v or "").strip() for k, v in row.items() if k is not None} for row in reader]
    return header, rows


def split_name(name: str) -> tuple[str, str]:
    """``(first, last)`` from "Last, First" (Canvas) or a full name (kept whole as the last name)."""
    if ", " in name:
        last, first = name.split(", ", 1)
        return first, last
    return "", name


def read_roster(path: Path) -> tuple[str, list[Person], list[str]]:
    """``(lms, people, header)`` of an LMS export (see the module docstring). ``student`` is left to set."""
    header, rows = _read_csv(path)
    people: list[Person] = []
    if {"Student", "ID"} <= set(header):
        for row in rows:
            if not row.get("ID") or row.get("Student", "").strip() in ("Points Possible", "", "Student, Test"):
                continue  # the points row, and Canvas's own "Test Student" (Student View)
            if not row["ID"].isdigit():
                raise LMSError(f"{path}: Canvas ID {row['ID']!r} of {row.get('Student')!r} is not a number")
            people.append(Person("", "canvas", row["ID"], name=row["Student"], email="",
                                 sis_user_id=row.get("SIS User ID", ""), sis_login_id=row.get("SIS Login ID", ""),
                                 section=row.get("Section", "")))
        return "canvas", people, header
    if {"Identifier", "Full name"} <= set(header):
        for row in rows:
            m = re.fullmatch(r"\D*?(\d+)", row["Identifier"])
            if not m:
                raise LMSError(f"{path}: Moodle identifier {row['Identifier']!r} has no participant id")
            people.append(Person("", "moodle", m[1], name=row["Full name"], email=row.get("Email address", ""),
                                 status=row.get("Status", ""), submitted_at=row.get("Last modified (submission)", ""),
                                 graded_at=row.get("Last modified (grade)", "")))
        return "moodle", people, header
    lower = {h.lower(): h for h in header}
    if "id" in lower and "name" in lower:
        for row in rows:
            if row[lower["id"]]:
                people.append(Person("", "plain", row[lower["id"]], name=row[lower["name"]],
                                     email=row.get(lower.get("email", ""), "")))
        return "plain", people, header
    hint = ""
    if {"First name", "Email address"} & set(header) or {"First name", "Surname"} <= set(header):
        hint = (" This looks like Moodle's participants table, which has no participant ids: download the "
                "assignment's grading worksheet instead (View all submissions -> Download grading worksheet).")
    raise LMSError(f"{path}: not a roster I know (columns: {', '.join(header) or 'none'}). Expected Canvas's "
                   f"gradebook CSV (Student, ID, ...), Moodle's grading worksheet (Identifier, Full name, ...) "
                   f"or a CSV with id and name columns.{hint}")


def load_roster(course: Path) -> dict[str, Person]:
    """The course's roster (student id -> Person), empty when there is none yet."""
    path = Path(course) / ROSTER_FILE
    if not path.exists():
        return {}
    _, rows = _read_csv(path)
    names = {f.name for f in fields(Person)}
    return {r["student"]: Person(**{k: csvsafe.restore(v) for k, v in r.items() if k in names})
            for r in rows if r.get("student")}


def save_roster(course: Path, people: dict[str, Person]) -> Path:
    """Write the course's roster (sorted by student id)."""
    path = Path(course) / ROSTER_FILE
    cols = [f.name for f in fields(Person)]
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csvsafe.DictWriter(f, cols)
        w.writeheader()
        for student in sorted(people):
            w.writerow(asdict(people[student]))
    return path


# --- back to the LMS --------------------------------------------------------------------------
@dataclass
class Result:
    """One student's result for the LMS: ``score`` None when nothing was submitted."""

    person: Person
    score: float | None
    max_score: float
    comment: str = ""
    feedback: Path | None = None


def _num(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".") if x != int(x) else str(int(x))


def canvas_grades_csv(results: list[Result], column: str, path: Path, missing_zero: bool = False) -> Path:
    """Canvas's gradebook import: its five fixed columns, ``column``, and a "Points Possible" row."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csvsafe.writer(f)
        w.writerow([*CANVAS_FIXED, column])
        max_score = max((r.max_score for r in results), default=0.0)
        w.writerow(["Points Possible", "", "", "", "", _num(max_score)])
        for r in sorted(results, key=lambda r: (r.person.name.casefold(), r.person.lms_id)):
            p = r.person
            score = r.score if r.score is not None else (0.0 if missing_zero else None)
            w.writerow([p.name or p.sortable, p.lms_id, p.sis_user_id, p.sis_login_id, p.section,
                        "" if score is None else _num(score)])
    return path


def moodle_grades_csv(results: list[Result], path: Path, missing_zero: bool = False) -> Path:
    """Moodle's grading worksheet with the grade and a feedback comment filled in."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csvsafe.writer(f)
        w.writerow(MOODLE_WORKSHEET)
        for r in sorted(results, key=lambda r: int(r.person.lms_id) if r.person.lms_id.isdigit() else 0):
            p = r.person
            score = r.score if r.score is not None else (0.0 if missing_zero else None)
            status = p.status or ("Submitted for grading" if r.score is not None else "No submission")
            w.writerow([f"Participant {p.lms_id}", p.name, p.email, status,
                        "" if score is None else f"{score:.2f}", f"{r.max_score:.2f}", "Yes",
                        p.submitted_at or "-", p.graded_at or "-", r.comment])
    return path


def moodle_folder(p: Person) -> str:
    """The student's folder as Moodle's download names it (Moodle replaces ``_`` in names by spaces)."""
    return p.folder or f"{p.name.replace('_', ' ')}_{p.lms_id}_assignsubmission_file_"


def feedback_zip(results: list[Result], lms: str, assignment: str, path: Path) -> list[str]:
    """The feedback archive for ``lms``; returns its entry names (one per student with a feedback page)."""
    names = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for r in sorted(results, key=lambda r: r.person.lms_id):
            if r.feedback is None:
                continue
            p = r.person
            if lms == "moodle":
                name = f"{moodle_folder(p)}/{assignment}-feedback.html"
            else:
                sortable = p.sortable or safe_id(p.name).replace("-", "") or "student"
                name = f"{sortable}_{p.lms_id}_{assignment}-feedback.html"
            zf.writestr(name, r.feedback.read_bytes())
            names.append(name)
    return names
