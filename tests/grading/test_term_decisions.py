"""A Canvas term where the instructor decides things in every order, graded for real.

One Canvas class of nine (and Canvas's Test Student) on the tiny course, with a scratch notebook beside
the real one, late files, an extension given before the import and one after the grading, a file chosen
by hand, an override, an excused student, a ``.py`` upload and another assignment's notebook. After every
step the grades are checked: who is graded on which file, with which penalty, and stock ``nbgrader
export`` agreeing with ``course-grades.csv``; then a re-import and a full regrade must change nothing the
instructor decided. Finally the class report of this term (``report --html``) is opened in Chromium.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
from report_browser import look_at

from grader import synthetic

pytestmark = [pytest.mark.grading, pytest.mark.slow]
A = synthetic.ASSIGNMENT
PY = sys.executable
ENV = {**os.environ, "PATH": str(Path(PY).parent) + os.pathsep + os.environ.get("PATH", "")}
COLUMN = "Tiny: add and mul (4711)"
ROSTER = ("Student,ID,SIS User ID,SIS Login ID,Section,Chapter 1 (11)," + f'"{COLUMN}"' + ",Current Score\n"
          "    Points Possible,,,,,5,{points},(read only)\n"
          + "".join(f'"{name}",{uid},,,A,,,\n' for uid, name in [
              ("61", "Scratch, Sam"), ("62", "Early, Ext"), ("63", "Late, Ext"), ("64", "Chosen, Chris"),
              ("65", "Override, Olga"), ("66", "Other, Otto"), ("67", "Python, <b>Pat</b>"), ("68", "Excused, Eve"),
              ("69", "Late, Lou"), ("99", "Student, Test")]))


def notebook(course: Path, kind: str) -> str:
    return nbformat.writes(synthetic.submission_notebook(course, kind))


def other_notebook(course: Path) -> str:
    n = synthetic.submission_notebook(course, "correct")
    for cell in n.cells:
        cell.source += "\n# chapter 9"
        if cell.metadata.get("nbgrader"):
            cell.metadata["nbgrader"]["grade_id"] = "other-" + cell.metadata["nbgrader"]["grade_id"]
    return nbformat.writes(n)


def make_term(base: Path) -> tuple[Path, Path, Path]:
    """The course (tiny, with the due date and 10 % per day; ``other`` as a second assignment), the Canvas
    download and the gradebook export."""
    course = synthetic.make_course(base / "course", timeout=10)
    with open(course / "nbgrader_config.py", "a") as f:
        f.write('\nc.Term.due_dates = {"tiny": "2026-10-05 23:59:00 UTC"}\nc.LatePenalty.percent_per_day = 10\n')
    other = synthetic.source_notebook()
    for cell in other.cells:
        cell.source += "\n# chapter 9"
        if cell.metadata.get("nbgrader"):
            cell.metadata["nbgrader"]["grade_id"] = "other-" + cell.metadata["nbgrader"]["grade_id"]
    (course / "source" / "other").mkdir()
    nbformat.write(other, course / "source" / "other" / "other.ipynb")
    scratch = nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")]))
    files = {
        "scratchsam_61_101_tiny.ipynb": notebook(course, "correct"),
        "scratchsam_61_102_Untitled-1.ipynb": scratch,  # uploaded later, with a "-1"
        "earlyext_LATE_62_201_tiny.ipynb": notebook(course, "correct"),
        "lateext_LATE_63_301_tiny.ipynb": notebook(course, "correct"),
        "chosenchris_64_401_tiny.ipynb": notebook(course, "wrong"),
        "chosenchris_64_402_tiny-final.ipynb": notebook(course, "correct"),
        "overrideolga_65_501_tiny.ipynb": notebook(course, "wrong"),
        "otherotto_66_601_tiny.ipynb": other_notebook(course),
        "pythonpat_67_701_tiny.py": "def add(a, b):\n    return a + b\n",
        "latelou_LATE_69_901_tiny.ipynb": notebook(course, "correct"),
        "studenttest_99_991_tiny.ipynb": notebook(course, "correct"),
    }
    download = base / "submissions.zip"
    with zipfile.ZipFile(download, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    roster = base / "gradebook.csv"
    roster.write_text(ROSTER.format(points=3), encoding="utf-8-sig")
    return course, download, roster


def cli(course: Path, *args: str) -> subprocess.CompletedProcess:
    """``python -m grader`` in this process (quick); ``grade`` in its own process, as an instructor runs it."""
    argv = ["--course-dir", str(course), *args]
    if args[0] == "grade":
        res = subprocess.run([PY, "-m", "grader", *argv, "--jobs", "2"], capture_output=True, text=True, env=ENV,
                             timeout=600)
    else:
        from grader.cli import main

        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
        res = subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())
    assert "Traceback" not in res.stderr, res.stderr
    return res


def ok(course: Path, *args: str) -> subprocess.CompletedProcess:
    res = cli(course, *args)
    assert res.returncode == 0, (args, res.stdout[-3000:], res.stderr[-3000:])
    return res


def grades(course: Path) -> dict[str, dict[str, str]]:
    with open(course / "course-grades.csv", encoding="utf-8") as f:
        return {r["student"]: r for r in csv.DictReader(f) if r["assignment"] == A}


def scores(course: Path) -> dict[str, tuple[float, float]]:
    """student -> (score, late penalty) from course-grades.csv, checked equal to stock ``nbgrader export``."""
    ours = grades(course)
    res = subprocess.run([PY, "-m", "nbgrader", "export"], cwd=course, capture_output=True, text=True, env=ENV)
    assert res.returncode == 0, res.stderr[-2000:]
    with open(course / "grades.csv", encoding="utf-8") as f:
        stock = {r["student_id"]: r for r in csv.DictReader(f) if r["assignment"] == A}
    assert set(stock) == set(ours)
    for student, row in ours.items():
        s = stock[student]
        assert (float(s["score"]), float(s["late_submission_penalty"])) == pytest.approx(
            (float(row["score"]), float(row["late_penalty"]))), student
    return {s: (float(r["score"]), float(r["late_penalty"])) for s, r in ours.items()}


def graded_file(course: Path, student: str) -> str:
    return (course / "submitted" / student / A / f"{A}.ipynb").read_text()


@pytest.fixture(scope="module")
def term(tmp_path_factory):
    """The term up to its first grading: roster, an extension before import, import, grade."""
    base = tmp_path_factory.mktemp("decisions")
    course, download, roster = make_term(base)
    steps = {"roster": ok(course, "roster", str(roster)),
             "extend before": ok(course, "extend", A, "62", "--days", "2", "--reason", "ill before the deadline"),
             "import": cli(course, "import", str(download), "--assignment", A, "--roster", str(roster)),
             "grade": ok(course, "grade", A)}
    return course, download, roster, steps


def test_first_grading_picks_the_right_files_and_penalties(term):
    course, _, _, steps = term
    imported = steps["import"]
    assert imported.returncode == 1 and "pythonpat_67_701_tiny.py" in imported.stdout  # the .py: a skipped file
    assert "superseded: scratchsam_61_102_Untitled-1.ipynb [61 (Scratch, Sam)]: holds 0 of 4 cells" in imported.stdout
    assert "ignored: studenttest_99_991_tiny.ipynb" in imported.stdout
    got = scores(course)
    assert "99" not in got  # Canvas's Test Student: neither in the roster nor graded from the download
    assert got["61"] == (3, 0)  # the assignment, not the newer scratch notebook
    assert got["62"] == (3, 0)  # Canvas's late marker, lifted by the extension given before the import
    assert got["63"] == pytest.approx((2.7, 0.3)) and got["69"] == pytest.approx((2.7, 0.3))  # late, no extension
    assert got["64"] == (3, 0)  # the newest upload (tiny-final.ipynb), until the instructor chooses
    assert got["65"] == (1, 0)
    rows = grades(course)
    assert rows["66"]["status"] == "error"
    assert rows["66"]["message"] == "this is the notebook of other, not tiny; graded 0 (ask the student for tiny.ipynb)"
    assert rows["67"]["status"] == "missing"
    assert rows["67"]["message"].startswith("sent no notebook: tiny.py is a Python file")
    assert rows["68"]["status"] == "missing" and rows["68"]["message"] == "nothing submitted"


@pytest.fixture(scope="module")
def decided(term):
    """The instructor's decisions after the first grading, then a re-import and a full regrade."""
    course, download, roster, _ = term
    steps = {
        "extend after": ok(course, "extend", A, "63", "--days", "1", "--reason", "network outage"),
        "override": ok(course, "override", A, "65", "--function", "add", "--points", "2", "--reason",
                       "add is right for the inputs the exercise asks for"),
        "excuse": ok(course, "excuse", A, "68", "--reason", "joined late"),
    }
    steps["after decisions"] = scores(course)
    steps["choose"] = ok(course, "choose", A, "64", "tiny.ipynb", "--reason", "tiny-final.ipynb came after the "
                                                                             "deadline by mail, by mistake")
    steps["regrade one"] = ok(course, "grade", A, "--student", "64")
    steps["after choose"] = scores(course)
    steps["reimport"] = cli(course, "import", str(download), "--assignment", A, "--roster", str(roster),
                            "--allow-skipped")
    steps["regrade all"] = ok(course, "grade", A)
    steps["after regrade"] = scores(course)
    steps["return"] = ok(course, "return", A)
    return course, steps


def test_an_extension_after_grading_lifts_the_penalty_at_once(decided):
    _, steps = decided
    assert "score changed: tiny 63: 2.7 -> 3" in steps["extend after"].stdout
    assert steps["after decisions"]["63"] == (3, 0)
    assert steps["after decisions"]["65"] == (2 + 1, 0)  # the override, in nbgrader's own manual score


def test_a_chosen_file_is_graded_and_survives_reimport(decided):
    course, steps = decided
    assert "imported: chosenchris_64_401_tiny.ipynb: chosen by the instructor" in steps["choose"].stdout
    assert steps["after choose"]["64"] == (1, 0)  # the older file, with its wrong add
    assert "a - b" in graded_file(course, "64")  # still the chosen one after the re-import
    assert steps["after regrade"]["64"] == (1, 0)


def test_nothing_decided_is_undone_by_reimport_and_regrade(decided):
    course, steps = decided
    final = steps["after regrade"]
    assert final["62"] == (3, 0) and final["63"] == (3, 0)  # both extensions, whatever their order
    assert final["69"] == pytest.approx((2.7, 0.3))
    assert final["65"] == (3, 0)  # the override survives the regrade
    rows = grades(course)
    assert rows["68"]["status"] == "excused" and rows["68"]["message"] == "excused: joined late (nothing submitted)"
    text = (course / "decisions.toml").read_text()
    for expected in ('student = "62"', "days = 2", 'student = "63"', "days = 1", 'function = "add"', "points = 2",
                     'file = "tiny.ipynb"', 'reason = "joined late"'):
        assert expected in text


def test_return_reads_the_column_from_the_roster_and_writes_ex(decided):
    course, steps = decided
    with open(course / "lms-return" / A / "canvas-grades.csv", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0][-1] == COLUMN and rows[1][-1] == "3"  # remembered from the import's roster, not given
    by_id = {r[1]: r[-1] for r in rows[2:]}
    assert by_id["68"] == "EX" and by_id["63"] == "3" and by_id["69"] == "2.7" and by_id["67"] == ""
    assert "99" not in by_id


def test_points_that_differ_from_canvas_are_refused_or_scaled(decided, tmp_path):
    course, _ = decided
    roster = tmp_path / "gradebook.csv"
    roster.write_text(ROSTER.format(points=10), encoding="utf-8")
    download = next(course.parent.glob("submissions.zip"))
    res = cli(course, "import", str(download), "--assignment", A, "--roster", str(roster), "--allow-skipped")
    assert res.returncode == 0 and f"Canvas's column '{COLUMN}' is worth 10 points but tiny is graded out of 3" in (
        res.stdout)
    res = cli(course, "return", A)
    assert res.returncode == 2 and "is worth 10 points but tiny is graded out of 3" in res.stderr
    assert "--scale" in res.stderr
    ok(course, "return", A, "--scale")
    with open(course / "lms-return" / A / "canvas-grades.csv", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[1][-1] == "10"  # Points Possible: Canvas's
    by_id = {r[1]: r[-1] for r in rows[2:]}
    assert by_id["63"] == "10" and by_id["69"] == "9" and by_id["68"] == "EX"


@pytest.mark.site
def test_class_report_in_chromium(decided):
    course, _ = decided
    res = ok(course, "report", "--html")
    assert "class report:" in res.stdout
    csv_rows = grades(course)
    index, page_a = course / "class-report" / "index.html", course / "class-report" / f"{A}.html"
    for view in look_at(page_a) + look_at(index):
        assert all(u.startswith(("file://", "data:")) for u in view["requests"]), view["requests"]
        assert view["errors"] == [] and view["violations"] == [], (view["errors"], view["violations"])
        assert view["images"] and all(w > 0 and len(alt) > 20 for w, alt in view["images"])
        assert view["overflow"] <= 0, f"the page scrolls sideways at {view['width']} px"
        assert view["shot"].stat().st_size > 10_000
        if "late_penalty" in next(iter(view["rows"].values())):  # the assignment's page
            # a name with markup is shown as text, never rendered (import makes its < > look-alikes: grader/sanitize.py)
            assert "‹b›Pat‹/b›" in view["text"] or "<b>Pat</b>" in view["text"]
            assert set(view["rows"]) == set(csv_rows)
            for student, cells in view["rows"].items():
                for col, text in cells.items():
                    assert float(text) == pytest.approx(float(csv_rows[student][col])), (student, col)
            graded = [float(r["score"]) for r in csv_rows.values() if r["status"] in ("graded", "error")]
            assert float(view["stats"]["mean"]) == pytest.approx(sum(graded) / len(graded), abs=0.005)
            assert int(view["stats"]["late"]) == sum(float(r["late_penalty"]) > 0 for r in csv_rows.values())
            assert int(view["stats"]["errors"]) == 1 and int(view["stats"]["missing"]) == 1
            assert "add-subtracts" in view["text"] and "this is the notebook of other" in view["text"]
        else:  # the term's page
            assert view["rows"]["68"][A] == "EX" and view["rows"]["63"][A] == csv_rows["63"]["score"]
