"""The LMS's own formats: downloads and rosters in, grade files and feedback archives out.

Students are identified by their LMS id, never by their name (``/work/shared/COURSE.md``):

- **Canvas** "Download Submissions" zip (``lib/content_zipper.rb`` of canvas-lms):
  ``<sortablename>[_LATE]_<user id>_<file id>_<file as uploaded>`` for an upload
  (``smithjohn_LATE_12345_678901_ch2-sdpa-1.ipynb``: the sortable name lower-cased with every non-word
  character removed; ``LATE`` when Canvas marks the submission late; the *file id* grows with every
  upload), ``<sortablename>[_LATE]_<user id>_text.html`` for a text entry and ``..._link.html`` for a URL
  submission. Canvas renames an upload whose name the student already used to ``<name>-1.<ext>``,
  ``-2`` ... (``Attachment.make_unique_filename``). The student is the Canvas **user id** (``12345``), the
  column ``ID`` of Canvas's gradebook CSV. Canvas's own *Test Student* (Student View; "Student, Test" in
  the gradebook, ``studenttest`` in the download) is no student: left out of roster and download alike.
- **Moodle** "Download all submissions" zip: one folder per submission,
  ``<Full name>_<participant id>_assignsubmission_file_/<file>``. The student is the Moodle
  **participant id**, the ``Identifier`` ("Participant 1234567") of Moodle's grading worksheet.
- **Plain** folder or zip of ``<student>.ipynb`` or ``<student>/<file>``: the name is the id (Unicode
  letters kept, lower case, other runs of characters become ``-``).

Rosters (``--roster``), recognised by their header: Canvas's gradebook CSV export (``Student``, ``ID``,
``SIS User ID``, ``SIS Login ID``, ``Section``, one column ``<name> (<Canvas assignment id>)`` per
assignment, a "Points Possible" row), Moodle's grading worksheet (``Identifier``, ``Full name``, ``Email
address``, ``Status``, ``Grade``, ...; with blind marking only ``Identifier``, ``Status``, ``Grade``, ...;
in the instructor's language: :data:`MOODLE_HEADERS`; Moodle's participants table export carries no
participant id, so it cannot be used), or a plain CSV with ``id`` and ``name`` columns (``email`` optional).

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
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from grader import csvsafe

#: The course's record of who is who (nbgrader student id <-> LMS id, names): kept in the course
#: directory only, never written into feedback or reports when grading anonymously.
ROSTER_FILE = "lms-roster.csv"
#: What the LMS said about each assignment (its column and points, the worksheet's header, the last
#: import's arguments): remembered so that ``return`` and ``choose`` need not be told again.
SETTINGS_FILE = "lms-assignments.json"

CANVAS_FILE = re.compile(r"^(?P<sortable>.+?)_(?P<late>LATE_)?(?P<uid>\d+)_(?P<fid>\d+)_(?P<file>.+)$", re.S)
CANVAS_ONLINE = re.compile(r"^(?P<sortable>.+?)_(?P<late>LATE_)?(?P<uid>\d+)_(?P<kind>text|link)\.html$", re.S)
#: Canvas's Test Student (Student View): its gradebook name and its sortable name in a download.
CANVAS_TEST_STUDENT = {"Student, Test", "Test Student"}
CANVAS_TEST_SORTABLE = {"studenttest", "teststudent"}
CANVAS_COLUMN = re.compile(r"^(?P<name>.*\S)\s*\((?P<id>\d+)\)$")
#: Moodle's grading worksheet columns in the languages read (Moodle's language packs: ``recordid``,
#: ``lastmodifiedsubmission``, ``lastmodifiedgrade``, ``maxgrade``, ``gradecanbechanged`` of mod_assign;
#: ``fullname``, ``email``, ``status``, ``grade`` of core; the comments plugin's name).
MOODLE_HEADERS = {
    "identifier": ("Identifier", "ID", "Identifiant", "Identificador"),
    "fullname": ("Full name", "Vollständiger Name", "Nom complet", "Nombre completo"),
    "email": ("Email address", "E-Mail-Adresse", "Adresse de courriel", "Dirección de correo", "Dirección Email"),
    "status": ("Status", "Statut", "Estado"),
    "grade": ("Grade", "Bewertung", "Note", "Calificación"),
    "maxgrade": ("Maximum Grade", "Maximum grade", "Bestwertung", "Note maximale", "Calificación máxima"),
    "canchange": ("Grade can be changed", "Bewertung kann geändert werden", "La note peut être modifiée",
                  "La calificación puede ser cambiada"),
    "submitted": ("Last modified (submission)", "Zuletzt geändert (Abgabe)", "Dernière modification (travail remis)",
                  "Última modificación (entrega)"),
    "graded": ("Last modified (grade)", "Zuletzt geändert (Bewertung)", "Dernière modification (note)",
               "Última modificación (calificación)"),
    "feedback": ("Feedback comments", "Feedback als Kommentar", "Commentaires de feedback",
                 "Comentarios de retroalimentación"),
}
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
    file_id: int = 0  # Canvas's file id (grows with each upload); 0 when the LMS gives none
    online: str = ""  # "text" or "link": a Canvas text entry or URL submission (an .html page, no notebook)


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
        entry.filename, entry.late, entry.file_id = m["file"], bool(m["late"]), int(m["fid"])
        return entry
    m = CANVAS_ONLINE.match(filename)
    if m:
        entry.lms, entry.lms_id, entry.name = "canvas", m["uid"], m["sortable"]
        entry.filename, entry.late, entry.online = filename, bool(m["late"]), m["kind"]
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


@dataclass
class Roster:
    """An LMS's class list as exported: who is in it, and what it says about the assignments."""

    lms: str
    people: list[Person]
    header: list[str]
    #: Canvas: assignment column -> its points possible (None when the export has no points row).
    columns: dict[str, float | None] = field(default_factory=dict)
    #: Moodle: canonical column (:data:`MOODLE_HEADERS`) -> the header as the worksheet writes it.
    fields: dict[str, str] = field(default_factory=dict)
    max_grade: float | None = None  # Moodle's "Maximum Grade"
    id_prefix: str = "Participant "  # Moodle's identifiers: "Participant 1234567", "Teilnehmer/in1234567"
    decimal: str = "."  # Moodle's decimal separator in this language ("3,00")
    test_students: set[str] = field(default_factory=set)  # Canvas's Test Student's user id(s)


def _number(text: str) -> float | None:
    """``3``, ``3.00`` or Moodle's German ``3,00`` as a number; None for anything else."""
    try:
        return float(text.strip().replace(",", "."))
    except (ValueError, AttributeError):
        return None


def moodle_fields(header: list[str]) -> dict[str, str]:
    """Canonical Moodle column -> the header naming it (any language of :data:`MOODLE_HEADERS`)."""
    known = {name.casefold(): key for key, names in MOODLE_HEADERS.items() for name in names}
    found: dict[str, str] = {}
    for h in header:
        key = known.get(h.casefold())
        if key and key not in found:
            found[key] = h
    return found


def read_roster_info(path: Path) -> Roster:
    """The roster of an LMS export (see the module docstring); each person's ``student`` is left to set."""
    header, rows = _read_csv(path)
    people: list[Person] = []
    if {"Student", "ID"} <= set(header):
        roster = Roster("canvas", people, header)
        points = next((r for r in rows if r.get("Student", "").strip() == "Points Possible"), {})
        for h in header:
            if h not in CANVAS_FIXED and CANVAS_COLUMN.match(h):
                roster.columns[h] = _number(points.get(h, ""))
        for row in rows:
            student = row.get("Student", "").strip()
            if student in CANVAS_TEST_STUDENT and row.get("ID"):
                roster.test_students.add(row["ID"])
                continue
            if not row.get("ID") or student in ("Points Possible", ""):
                continue  # the points row (and Canvas's "Manual Posting" row)
            if not row["ID"].isdigit():
                raise LMSError(f"{path}: Canvas ID {row['ID']!r} of {row.get('Student')!r} is not a number")
            people.append(Person("", "canvas", row["ID"], name=row["Student"], email="",
                                 sis_user_id=row.get("SIS User ID", ""), sis_login_id=row.get("SIS Login ID", ""),
                                 section=row.get("Section", "")))
        return roster
    found = moodle_fields(header)
    if "identifier" in found and {"status", "grade"} & set(found):
        roster = Roster("moodle", people, header, fields=found)
        column = {key: found.get(key, "") for key in MOODLE_HEADERS}
        for row in rows:
            ident = row.get(column["identifier"], "")
            m = re.fullmatch(r"\D*?(\d+)", ident)
            if not m:
                raise LMSError(f"{path}: Moodle identifier {ident!r} (column {column['identifier']!r}) has no "
                               "participant id")
            people.append(Person("", "moodle", m[1], name=row.get(column["fullname"], ""),
                                 email=row.get(column["email"], ""), status=row.get(column["status"], ""),
                                 submitted_at=row.get(column["submitted"], ""),
                                 graded_at=row.get(column["graded"], "")))
            roster.max_grade = roster.max_grade or _number(row.get(column["maxgrade"], ""))
            roster.id_prefix = ident[: m.start(1)]
            roster.decimal = "," if "," in row.get(column["maxgrade"], "") else roster.decimal
        return roster
    lower = {h.lower(): h for h in header}
    if "id" in lower and "name" in lower:
        for row in rows:
            if row[lower["id"]]:
                people.append(Person("", "plain", row[lower["id"]], name=row[lower["name"]],
                                     email=row.get(lower.get("email", ""), "")))
        return Roster("plain", people, header)
    hint = ""
    if {"First name", "Email address"} & set(header) or {"First name", "Surname"} <= set(header):
        hint = (" This looks like Moodle's participants table, which has no participant ids: download the "
                "assignment's grading worksheet instead (View all submissions -> Download grading worksheet).")
    raise LMSError(f"{path}: not a roster I know (columns: {', '.join(header) or 'none'}). Expected Canvas's "
                   f"gradebook CSV (Student, ID, ...), Moodle's grading worksheet (Identifier, Status, Grade, ..., "
                   f"in English, German, French or Spanish) or a CSV with id and name columns.{hint}")


def read_roster(path: Path) -> tuple[str, list[Person], list[str]]:
    """``(lms, people, header)`` of an LMS export (:func:`read_roster_info` has the rest)."""
    roster = read_roster_info(path)
    return roster.lms, roster.people, roster.header


def lms_settings(course: Path, assignment: str) -> dict:
    """What the course remembers about ``assignment`` at the LMS (:data:`SETTINGS_FILE`), {} when nothing."""
    import json

    path = Path(course) / SETTINGS_FILE
    data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    return data.get(assignment, {})


def remember(course: Path, assignment: str, **values) -> dict:
    """Merge ``values`` (None values left out) into what the course remembers about ``assignment``."""
    import json

    path = Path(course) / SETTINGS_FILE
    data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    data.setdefault(assignment, {}).update({k: v for k, v in values.items() if v is not None})
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
    return data[assignment]


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
    excused: bool = False  # Canvas's "EX"; an empty grade with the comment in Moodle


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
            value = "EX" if r.excused else ("" if score is None else _num(score))
            w.writerow([p.name or p.sortable, p.lms_id, p.sis_user_id, p.sis_login_id, p.section, value])
    return path


def moodle_grades_csv(results: list[Result], path: Path, missing_zero: bool = False,
                      layout: dict | None = None) -> Path:
    """Moodle's grading worksheet with the grade and a feedback comment filled in. ``layout`` is what the
    import remembered of the instructor's own worksheet (its ``header`` in their language, the ``fields``
    naming each column, the identifiers' ``id_prefix`` and the ``decimal`` separator): Moodle matches the
    uploaded columns by their names in the uploading user's language, so they are written back as they came."""
    layout = layout or {}
    header = layout.get("header") or MOODLE_WORKSHEET
    names = layout.get("fields") or dict(zip(MOODLE_HEADERS, MOODLE_WORKSHEET, strict=True))
    prefix, decimal = layout.get("id_prefix", "Participant "), layout.get("decimal", ".")
    column = {h: key for key, h in names.items()}

    def number(x: float) -> str:
        return f"{x:.2f}".replace(".", decimal)

    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csvsafe.writer(f)
        w.writerow(header)
        for r in sorted(results, key=lambda r: int(r.person.lms_id) if r.person.lms_id.isdigit() else 0):
            p = r.person
            score = r.score if r.score is not None else (0.0 if missing_zero else None)
            status = p.status or ("Submitted for grading" if r.score is not None else "No submission")
            values = {"identifier": f"{prefix}{p.lms_id}", "fullname": p.name, "email": p.email, "status": status,
                      "grade": "" if score is None or r.excused else number(score),
                      "maxgrade": number(r.max_score), "canchange": "Yes",
                      "submitted": p.submitted_at or "-", "graded": p.graded_at or "-", "feedback": r.comment}
            w.writerow([values.get(column.get(h, ""), "") for h in header])
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
