"""Import a class's submissions into ``submitted/<student>/<assignment>/<assignment>.ipynb``.

Accepted inputs (one assignment at a time, given with ``--assignment``):

- **A folder or zip of ``<student>.ipynb`` files**: the file name (without ``.ipynb``) is the student id.
- **A folder or zip of ``<student>/<anything>.ipynb``**: one sub-folder per student.
- **Canvas "Download Submissions" zip**: ``<lastfirst>_<userid>_<submissionid>_<filename>.ipynb``,
  also with ``_LATE_`` after the name (``doejane_LATE_123_456_ch2-sdpa-1.ipynb``); the student id is
  ``<lastfirst>``.
- **Moodle "Download all submissions" zip**: ``<Full Name>_<participantid>_assignsubmission_file_/<file>.ipynb``;
  the student id is the full name in lower case with non-alphanumerics replaced by ``-`` (``jane-doe``).

Whatever the uploaded file was called, it is saved under the assignment's notebook name. When a
student has several notebooks, the one named ``<assignment>.ipynb`` wins, otherwise the newest
(zip entry time or file mtime) is kept and the others are reported. Files that are not valid
notebooks are imported as they are (nbgrader then grades them 0 with a clear message) and reported.
Importing again replaces the student's previous import.
"""

from __future__ import annotations

import re
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

CANVAS = re.compile(r"^(?P<student>[A-Za-z0-9]+)_(?:LATE_)?\d+_\d+_(?P<file>.+)$")
MOODLE_DIR = re.compile(r"^(?P<name>.+?)_\d+_assignsubmission_(?:file|onlinetext)_?$")
SAFE_ID = re.compile(r"[^a-z0-9]+")


@dataclass
class Upload:
    student: str
    name: str  # the file name as uploaded
    data: bytes
    mtime: float


@dataclass
class ImportReport:
    imported: dict[str, Path] = field(default_factory=dict)  # student -> notebook path
    notes: list[str] = field(default_factory=list)


def student_id(name: str) -> str:
    """A safe student id from a name: lower case, runs of other characters -> ``-``."""
    return SAFE_ID.sub("-", name.lower()).strip("-") or "unknown"


def identify(path_parts: list[str]) -> tuple[str, str] | None:
    """``(student, file name)`` for an entry at ``path_parts`` (relative, split on '/'), or None."""
    parts = [p for p in path_parts if p and p not in (".", "__MACOSX")]
    if not parts or not parts[-1].endswith(".ipynb") or parts[-1].startswith("."):
        return None
    filename = parts[-1]
    if len(parts) >= 2:  # <student folder>/<file>
        folder = parts[-2]
        m = MOODLE_DIR.match(folder)
        return (student_id(m["name"]) if m else student_id(folder)), filename
    m = CANVAS.match(filename)
    if m:
        return m["student"].lower(), m["file"]
    return student_id(filename[: -len(".ipynb")]), filename


def read_uploads(source: Path) -> list[Upload]:
    """Every notebook in a zip file or folder, attributed to a student."""
    source = Path(source)
    uploads = []
    if source.is_file() and zipfile.is_zipfile(source):
        import datetime as dt

        with zipfile.ZipFile(source) as zf:
            for info in zf.infolist():
                if info.is_dir():
                    continue
                found = identify(info.filename.split("/"))
                if found:
                    mtime = dt.datetime(*info.date_time).timestamp()
                    uploads.append(Upload(found[0], found[1], zf.read(info), mtime))
    elif source.is_dir():
        for path in sorted(source.rglob("*.ipynb")):
            if ".ipynb_checkpoints" in path.parts:
                continue
            found = identify(list(path.relative_to(source).parts))
            if found:
                uploads.append(Upload(found[0], found[1], path.read_bytes(), path.stat().st_mtime))
    else:
        raise FileNotFoundError(f"{source} is neither a zip file nor a folder")
    return uploads


def is_valid_notebook(data: bytes) -> bool:
    try:
        nbformat.reads(data.decode("utf-8"), as_version=4)
        return True
    except Exception:
        return False


def import_submissions(source: Path, course: Path, assignment: str) -> ImportReport:
    """Import every student's notebook from ``source`` into ``course/submitted/``."""
    report = ImportReport()
    by_student: dict[str, list[Upload]] = {}
    for up in read_uploads(source):
        by_student.setdefault(up.student, []).append(up)
    expected = f"{assignment}.ipynb"
    for student, ups in sorted(by_student.items()):
        exact = [u for u in ups if u.name == expected]
        chosen = exact[0] if exact else max(ups, key=lambda u: (u.mtime, u.name))
        if len(ups) > 1:
            others = ", ".join(sorted(u.name for u in ups if u is not chosen))
            report.notes.append(f"{student}: {len(ups)} notebooks, kept {chosen.name}, ignored {others}")
        if chosen.name != expected:
            report.notes.append(f"{student}: {chosen.name} saved as {expected}")
        if not is_valid_notebook(chosen.data):
            report.notes.append(f"{student}: {chosen.name} is not a valid notebook (it will be graded 0)")
        folder = Path(course) / "submitted" / student / assignment
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        (folder / expected).write_bytes(chosen.data)
        report.imported[student] = folder / expected
    return report
