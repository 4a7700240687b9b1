"""The term's import as LMSs really deliver it, without grading (fast): which file is a student's
submission and why, Canvas's text/link/.py uploads and Test Student, Moodle's blind-marking worksheet in
four languages, dates read exactly or refused, decisions written and read back.

The downloads are built here with the names Canvas (``lib/content_zipper.rb``:
``<sortable>[_LATE]_<user id>_<file id>_<file>``, ``..._text.html``, ``..._link.html``) and Moodle
(``<name>_<participant id>_assignsubmission_<plugin>_/<file>``) give them.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import nbformat
import pytest

from grader import synthetic
from grader.term.collect import import_submissions
from grader.term.decisions import Decision, Decisions
from grader.term.lms import LMSError, read_roster_info
from grader.term.lmsdates import DateError, month_names, parse_local_time, weekday_names

pytestmark = pytest.mark.grading
A = synthetic.ASSIGNMENT
PY = sys.executable
ENV = {**os.environ, "PATH": str(Path(PY).parent) + os.pathsep + os.environ.get("PATH", "")}


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    """The tiny course, plus a second assignment ``other`` (the tiny notebook under other cell ids)."""
    root = synthetic.make_course(tmp_path_factory.mktemp("term") / "course", timeout=10)
    other = synthetic.source_notebook()
    for cell in other.cells:
        cell.source += "\n# another assignment"
        nbg = cell.metadata.get("nbgrader")
        if nbg:
            nbg["grade_id"] = "other-" + nbg["grade_id"]
    (root / "source" / "other").mkdir()
    nbformat.write(other, root / "source" / "other" / "other.ipynb")
    return root


def nb(course: Path, kind: str = "correct") -> str:
    return nbformat.writes(synthetic.submission_notebook(course, kind))


def scratch() -> str:
    """A scratch notebook (JupyterLab's Untitled.ipynb): the student's own cells, no assignment's cell."""
    return nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("def add(a, b):\n    pass")]))


def other_assignment_nb(course: Path) -> str:
    n = synthetic.submission_notebook(course, "correct")
    for cell in n.cells:
        nbg = cell.metadata.get("nbgrader")
        if nbg:
            nbg["grade_id"] = "other-" + nbg["grade_id"]
        cell.pop("id", None)
    n.nbformat_minor = 4
    return nbformat.writes(n, version=4)


def zip_of(path: Path, files: dict[str, str | bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def outcomes(report) -> dict[str, tuple[str, str, str]]:
    return {o.file: (o.student, o.outcome, o.reason) for o in report.files}


def graded_bytes(course: Path, student: str) -> bytes:
    return (course / "submitted" / student / A / f"{A}.ipynb").read_bytes()


# --- 1. which file is the submission ---------------------------------------------------------------
def test_the_assignment_beats_a_newer_scratch_notebook_and_a_date_is_no_reupload_number(course, tmp_path):
    files = {
        # a scratch notebook uploaded after the real one (Canvas's file id 102 > 101), with a "-1" of its own
        "smithjohn_11_101_tiny.ipynb": nb(course, "correct"),
        "smithjohn_11_102_Untitled-1.ipynb": scratch(),
        # the student's own date in the name: "-05" is no re-upload number; the newest upload wins
        "doejane_12_201_tiny-2026-10-05.ipynb": nb(course, "wrong"),
        "doejane_12_202_tiny (2).ipynb": nb(course, "correct"),
        # ... whichever order they came in
        "roesam_13_301_tiny (2).ipynb": nb(course, "wrong"),
        "roesam_13_302_tiny-2026-10-05.ipynb": nb(course, "correct"),
        # Canvas's re-upload of the same name: tiny-1.ipynb is the later file
        "leekim_14_401_tiny.ipynb": nb(course, "unsolved"),
        "leekim_14_402_tiny-1.ipynb": nb(course, "correct"),
        # a copy into a new notebook: no nbgrader metadata, no cell ids, but the release's locked cells
        "brownbob_15_501_copy.ipynb": nbformat.writes(nbformat.v4.new_notebook(cells=[
            nbformat.v4.new_code_cell(c.source) for c in synthetic.submission_notebook(course, "correct").cells])),
        "brownbob_15_502_Untitled.ipynb": scratch(),
    }
    report = import_submissions(zip_of(tmp_path / "s.zip", files), course, A)
    got = outcomes(report)
    assert got["smithjohn_11_101_tiny.ipynb"][1] == "imported"
    assert "holds 4 of 4 cells of tiny" in got["smithjohn_11_101_tiny.ipynb"][2]
    assert got["smithjohn_11_102_Untitled-1.ipynb"][1:] == (
        "superseded", "holds 0 of 4 cells of tiny, so it is not the assignment's notebook; tiny.ipynb is graded")
    assert got["doejane_12_202_tiny (2).ipynb"][1] == "imported"
    assert got["doejane_12_201_tiny-2026-10-05.ipynb"][1:] == (
        "superseded", "an older upload than tiny (2).ipynb, which is graded")
    assert got["roesam_13_302_tiny-2026-10-05.ipynb"][1] == "imported"
    assert got["leekim_14_402_tiny-1.ipynb"][1] == "imported"
    assert got["brownbob_15_501_copy.ipynb"][1] == "imported"  # 4 of 4 by its locked cells' text
    for student in ("11", "12", "13", "14", "15"):
        assert nbformat.reads(graded_bytes(course, student).decode(), 4).cells[1].source.startswith("def add(a, b):\n")
    assert b"a - b" not in graded_bytes(course, "12") and b"a - b" not in graded_bytes(course, "13")
    written = {r["file"]: r for r in csv.DictReader(open(report.path, encoding="utf-8"))}
    assert written["smithjohn_11_102_Untitled-1.ipynb"]["reason"] == got["smithjohn_11_102_Untitled-1.ipynb"][2]


def test_a_notebook_of_another_assignment_is_imported_and_named(course, tmp_path):
    report = import_submissions(zip_of(tmp_path / "s.zip", {"okafor_21_1_tiny.ipynb": other_assignment_nb(course)}),
                                course, A)
    (o,) = report.files
    assert o.outcome == "imported" and "this is the notebook of other, not tiny: it will be graded 0" in o.reason


def test_an_instructor_choice_wins_and_an_unknown_choice_is_reported(course, tmp_path):
    files = {"garcia_31_1_tiny.ipynb": nb(course, "wrong"), "garcia_31_2_tiny-final.ipynb": nb(course, "correct")}
    download = zip_of(tmp_path / "s.zip", files)
    assert outcomes(import_submissions(download, course, A))["garcia_31_2_tiny-final.ipynb"][1] == "imported"
    decisions = Decisions.load(course)
    decisions.record(Decision("choice", A, "31", "asked by mail", file="tiny.ipynb"))
    decisions.save()
    got = outcomes(import_submissions(download, course, A))
    assert got["garcia_31_1_tiny.ipynb"][1] == "imported" and "chosen by the instructor" in got[
        "garcia_31_1_tiny.ipynb"][2]
    assert got["garcia_31_2_tiny-final.ipynb"][1:] == ("superseded", "the instructor chose tiny.ipynb (decisions.toml)")
    decisions.record(Decision("choice", A, "31", file="gone.ipynb"))
    decisions.save()
    report = import_submissions(download, course, A)
    assert any("chooses 'gone.ipynb', which is not among this student's files" in n for n in report.notes)
    decisions.remove("choice", A, "31")
    decisions.save()


# --- 3. Canvas and Moodle as they are ------------------------------------------------------------------
CANVAS_ROSTER = ("Student,ID,SIS User ID,SIS Login ID,Section,Chapter 1 (11),Tiny: add and mul (4711),Current Score\n"
                 "    Points Possible,,,,,5,3,(read only)\n"
                 "\"Smith, John\",41,,,A,,,\n\"Doe, Jane\",42,,,A,,,\n\"Roe, Sam\",43,,,A,,,\n"
                 "\"Student, Test\",99,,,A,,,\n")


def test_canvas_text_link_py_uploads_are_attributed_and_test_student_kept_out(course, tmp_path):
    roster = tmp_path / "gradebook.csv"
    roster.write_text(CANVAS_ROSTER, encoding="utf-8-sig")
    files = {"smithjohn_41_text.html": "<p>my answer</p>", "doejane_LATE_42_link.html": "<a href=x>colab</a>",
             "roesam_43_7001_tiny.py": "def add(a, b): return a + b",
             "studenttest_99_7002_tiny.ipynb": nb(course, "correct")}
    report = import_submissions(zip_of(tmp_path / "s.zip", files), course, A, roster=roster)
    got = outcomes(report)
    assert got["smithjohn_41_text.html"][:2] == ("41", "skipped") and "text entry" in got["smithjohn_41_text.html"][2]
    assert got["doejane_LATE_42_link.html"][:2] == ("42", "skipped") and "URL" in got["doejane_LATE_42_link.html"][2]
    assert got["roesam_43_7001_tiny.py"][:2] == ("43", "skipped") and "Python file" in got["roesam_43_7001_tiny.py"][2]
    assert got["studenttest_99_7002_tiny.ipynb"][1:] == (
        "ignored", "Canvas's Test Student (Student View), not a student")
    assert report.imported == {} and report.without_notebook == ["41", "42", "43"]
    assert sorted(report.roster_only) == ["41", "42", "43"]  # the Test Student is in neither list
    info = read_roster_info(roster)
    assert info.test_students == {"99"} and [p.lms_id for p in info.people] == ["41", "42", "43"]
    assert info.columns == {"Chapter 1 (11)": 5.0, "Tiny: add and mul (4711)": 3.0}
    from grader.term.lms import lms_settings

    assert lms_settings(course, A)["column"] == "Tiny: add and mul (4711)"  # the column named after it
    assert lms_settings(course, A)["points"] == 3.0 and not report.notes


def test_canvas_points_that_differ_are_reported(course, tmp_path):
    roster = tmp_path / "gradebook.csv"
    roster.write_text(CANVAS_ROSTER.replace(",5,3,(read only)", ",5,10,(read only)"), encoding="utf-8")
    report = import_submissions(zip_of(tmp_path / "s.zip", {"smithjohn_41_1_tiny.ipynb": nb(course)}), course, A,
                                roster=roster)
    assert any("is worth 10 points but tiny is graded out of 3" in n for n in report.notes)
    with pytest.raises(LMSError, match="--column 'nope' is not an assignment column"):
        import_submissions(tmp_path / "s.zip", course, A, roster=roster, column="nope")


#: Moodle's blind-marking worksheet (no name or email columns) in four languages, as its language packs
#: name the columns and write the time of a submission (``strftimedaydatetime``).
WORKSHEETS = {
    "en": (["Identifier", "Status", "Grade", "Maximum Grade", "Grade can be changed", "Last modified (submission)",
            "Last modified (grade)", "Feedback comments"], "Participant ", "Tuesday, 6 October 2026, 9:30 AM", "3.00"),
    "de": (["ID", "Status", "Bewertung", "Bestwertung", "Bewertung kann geändert werden", "Zuletzt geändert (Abgabe)",
            "Zuletzt geändert (Bewertung)", "Feedback als Kommentar"], "Teilnehmer/in",
           "Dienstag, 6. Oktober 2026, 09:30", "3,00"),
    "fr": (["Identifiant", "Statut", "Note", "Note maximale", "La note peut être modifiée",
            "Dernière modification (travail remis)", "Dernière modification (note)", "Commentaires de feedback"],
           "Participant", "mardi 6 octobre 2026, 09:30", "3,00"),
    "es": (["Identificador", "Estado", "Calificación", "Calificación máxima", "La calificación puede ser cambiada",
            "Última modificación (entrega)", "Última modificación (calificación)", "Comentarios de retroalimentación"],
           "Participante", "martes, 6 de octubre de 2026, 09:30", "3,00"),
}


def write_worksheet(path: Path, language: str, when: str | None = None) -> Path:
    header, prefix, time, maxgrade = WORKSHEETS[language]
    with open(path, "w", newline="", encoding="utf-8-sig") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerow([f"{prefix}5550001", "Submitted", "", maxgrade, "Yes", when or time, "-", ""])
        w.writerow([f"{prefix}5550002", "No submission", "", maxgrade, "Yes", "-", "-", ""])
    return path


@pytest.mark.parametrize("language", list(WORKSHEETS))
def test_moodle_blind_worksheet_in_four_languages(course, tmp_path, language):
    roster = write_worksheet(tmp_path / "worksheet.csv", language)
    info = read_roster_info(roster)
    assert info.lms == "moodle" and [p.lms_id for p in info.people] == ["5550001", "5550002"]
    assert info.max_grade == 3.0 and info.fields["grade"] == WORKSHEETS[language][0][2]
    download = zip_of(tmp_path / "m.zip", {"Participant_5550001_assignsubmission_file_/work.ipynb": nb(course)})
    report = import_submissions(download, course, A, roster=roster, timezone="Europe/Berlin", anonymous=True)
    (student,) = report.imported
    assert student.startswith("anon-") and len(report.roster_only) == 1
    # 09:30 in Berlin (summer time) is 07:30 UTC, whatever the language
    stamp = (course / "submitted" / student / A / "timestamp.txt").read_text()
    assert stamp.startswith("2026-10-06 07:30:00")


@pytest.mark.parametrize("when", ["Montag, 6. Oktober 2026, 09:30", "6/10/2026 09:30", "Mardi 6 octobr 2026, 09:30"])
def test_an_unreadable_or_wrong_moodle_date_is_refused_naming_it(course, tmp_path, when):
    roster = write_worksheet(tmp_path / "worksheet.csv", "de", when=when)
    download = zip_of(tmp_path / "m.zip", {"Participant_5550001_assignsubmission_file_/work.ipynb": nb(course)})
    with pytest.raises(LMSError, match="cannot read the time") as err:
        import_submissions(download, course, A, roster=roster, anonymous=True)
    assert repr(when) in str(err.value) and "Zuletzt geändert (Abgabe)" in str(err.value)


@pytest.mark.parametrize(("text", "expected"), [
    ("Monday, 5 October 2026, 11:59 PM", (2026, 10, 5, 23, 59)),
    ("Montag, 5. Oktober 2026, 23:59", (2026, 10, 5, 23, 59)),
    ("lundi 5 octobre 2026, 23:59", (2026, 10, 5, 23, 59)),
    ("lunes, 5 de octubre de 2026, 23:59", (2026, 10, 5, 23, 59)),
    ("lunes, 5 de octubre de 2026, 11:59 p. m.", (2026, 10, 5, 23, 59)),
    ("Friday, 1 January 2027, 12:05 AM", (2027, 1, 1, 0, 5)),
    ("2026-10-05 23:59", (2026, 10, 5, 23, 59)),
])
def test_dates_as_moodle_writes_them(text, expected):
    assert parse_local_time(text) == dt.datetime(*expected)


def test_month_and_weekday_names_are_unambiguous():
    assert {month_names()[m] for m in ("october", "oktober", "octobre", "octubre", "okt", "oct")} == {10}
    assert {weekday_names()[d] for d in ("monday", "montag", "lundi", "lunes")} == {0}
    with pytest.raises(DateError, match="2026-10-05 is a Monday"):
        parse_local_time("Sonntag, 5. Oktober 2026, 23:59")


# --- 2. decisions as data ------------------------------------------------------------------------------
def test_decisions_file_round_trips_any_text(tmp_path):
    decisions = Decisions.load(tmp_path)
    odd = 'ill "badly"\nsee\tnote \\ ü 王 \x7f [x] = 1'
    decisions.record(Decision("extension", A, "48206", odd, days=2.5))
    decisions.record(Decision("override", A, "48206", "regrade request", points=2.0, function="add"))
    decisions.record(Decision("extension", A, "48206", "more", days=3))  # replaces the first
    path = decisions.save()
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    assert [e["days"] for e in data["extension"]] == [3] and data["override"][0]["points"] == 2
    again = Decisions.load(tmp_path)
    assert again.extension_days(A, ["x", "48206"]) == 3.0
    decisions.about("extension", A, ["48206"])[0].reason = odd
    decisions.save()
    assert Decisions.load(tmp_path).about("extension", A, ["48206"])[0].reason == odd


def cli(course: Path, *args: str) -> subprocess.CompletedProcess:
    """``python -m grader --course-dir COURSE ARGS``, run in this process (the errors' path is the same)."""
    import contextlib
    import io

    from grader.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(["--course-dir", str(course), *args])
        except SystemExit as exit_:  # argparse
            code = exit_.code
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def test_bad_decisions_are_clear_errors(course, tmp_path):
    roster = tmp_path / "gradebook.csv"
    roster.write_text(CANVAS_ROSTER, encoding="utf-8")
    res = cli(course, "roster", str(roster))
    assert res.returncode == 0 and "3 students of canvas's class list" in res.stdout and "Test Student" in res.stdout
    cases = [
        (["extend", A, "041"], "unknown student '041' (did you mean '41'?)"),
        (["extend", A, "41", "--days", "-2"], "--days must be a positive number"),
        (["extend", "tyni", "41", "--days", "2"], "unknown assignment 'tyni'"),
        (["override", A, "41", "--points", "4", "--reason", "x"], "between 0 and 3, the maximum of tiny (total)"),
        (["override", A, "41", "--function", "add", "--points", "2.5", "--reason", "x"], "between 0 and 2"),
        (["override", A, "41", "--function", "sub", "--points", "1", "--reason", "x"], "no graded function 'sub'"),
        (["override", A, "41", "--points", "1"], "an override needs --reason"),
    ]
    for argv, phrase in cases:
        res = cli(course, *argv)
        assert res.returncode == 2 and phrase in res.stderr and "Traceback" not in res.stderr, (argv, res.stderr)
    before = (course / "decisions.toml").read_text() if (course / "decisions.toml").exists() else ""
    assert "days = -2" not in before and "points = 4" not in before
    res = cli(course, "extend", A, "42", "--days", "1.5", "--reason", "a note from the office")
    assert res.returncode == 0, res.stderr
    assert Decisions.load(course).extension_days(A, ["42"]) == 1.5
    res = cli(course, "extend", A, "42", "--remove")
    assert res.returncode == 0 and Decisions.load(course).extension_days(A, ["42"]) == 0
    (course / "decisions.toml").write_text("[[extension]]\nassignment = 1\n")
    res = cli(course, "extend", A, "41", "--days", "1")
    assert res.returncode == 2 and "decisions.toml" in res.stderr and "lacks ['days', 'student']" in res.stderr
    (course / "decisions.toml").unlink()
