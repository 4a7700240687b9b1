"""`python -m grader`: LMS import, parallel grading identical to serial stock nbgrader, shards + merge.

The end-to-end tests grade a tiny synthetic assignment (grader/synthetic.py: two functions, 2 + 1
points) so they run in seconds; tests/grading/test_bad_submissions.py covers broken submissions.
"""

from __future__ import annotations

import csv
import os
import shutil
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from grader import synthetic
from grader.term.collect import import_submissions
from grader.term.lms import classify

A = synthetic.ASSIGNMENT
PY = sys.executable
ENV = {**os.environ, "PATH": str(Path(PY).parent) + os.pathsep + os.environ.get("PATH", "")}


def run_cli(course: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [PY, "-m", "grader", "--course-dir", str(course), *args]
    res = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    return res


def cell_grades(course: Path) -> dict[tuple[str, str], float]:
    """(student, grade cell) -> score, straight from gradebook.db."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        return {
            (sub.student.id, g.name): float(g.score)
            for sub in gb.assignment_submissions(A)
            for nb in sub.notebooks
            for g in nb.grades
        }


def read_csv(path: Path) -> dict[str, dict[str, str]]:
    with open(path) as f:
        return {row["student"]: row for row in csv.DictReader(f)}


# --- import -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("doejane_12345_67890_ch2-sdpa.ipynb", ("canvas", "12345", "doejane", "ch2-sdpa.ipynb", False)),
        ("doejane_LATE_12345_67890_ch2-sdpa-1.ipynb", ("canvas", "12345", "doejane", "ch2-sdpa-1.ipynb", True)),
        ("王芳_777_888_ch2-sdpa.ipynb", ("canvas", "777", "王芳", "ch2-sdpa.ipynb", False)),
        ("Jane Doe_4242_assignsubmission_file_/my notebook.ipynb",
         ("moodle", "4242", "Jane Doe", "my notebook.ipynb", False)),
        ("Анна Иванова_31_assignsubmission_file_/a_1_2_b.ipynb", ("moodle", "31", "Анна Иванова", "a_1_2_b.ipynb",
                                                                  False)),
        ("submissions/alice/ch2-sdpa.ipynb", ("plain", "alice", "alice", "ch2-sdpa.ipynb", False)),
        ("Bob.Smith.ipynb", ("plain", "bob-smith", "Bob.Smith", "Bob.Smith.ipynb", False)),
        ("李娜.ipynb", ("plain", "李娜", "李娜", "李娜.ipynb", False)),
        ("alice/notes.txt", ("plain", "alice", "alice", "notes.txt", False)),
    ],
)
def test_classify_lms_names(path, expected):
    e = classify(path)
    assert (e.lms, e.lms_id, e.name, e.filename, e.late) == expected and not e.junk


@pytest.mark.parametrize("path", ["__MACOSX/._alice.ipynb", "x/.DS_Store", "._doejane_1_2_a.ipynb"])
def test_zip_tool_junk_is_recognised(path):
    assert classify(path).junk


def test_import_zip_and_folder(tmp_path):
    good = nbformat.v4.writes(nbformat.v4.new_notebook())
    zpath = tmp_path / "canvas.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("doejane_11_21_ch2-sdpa.ipynb", good)
        same_time = (2026, 10, 5, 12, 0, 0)  # same time: Canvas's file id (22 < 23) says which came later
        zf.writestr(zipfile.ZipInfo("roesam_12_22_Untitled.ipynb", same_time), good)
        zf.writestr(zipfile.ZipInfo("roesam_LATE_12_23_ch2-sdpa.ipynb", same_time), good)
        zf.writestr("brokenbob_13_24_ch2-sdpa.ipynb", "{not json")
        zf.writestr("__MACOSX/._doejane_11_21_ch2-sdpa.ipynb", "junk")
    course = tmp_path / "course"
    report = import_submissions(zpath, course, "ch2-sdpa")
    assert sorted(report.imported) == ["11", "12", "13"]
    for student in report.imported:
        assert (course / "submitted" / student / "ch2-sdpa" / "ch2-sdpa.ipynb").exists()
    outcomes = {o.file: (o.student, o.outcome, o.reason) for o in report.files}
    assert outcomes["roesam_12_22_Untitled.ipynb"] == (
        "12", "superseded", "an older upload than ch2-sdpa.ipynb, which is graded")
    assert "not a valid notebook" in outcomes["brokenbob_13_24_ch2-sdpa.ipynb"][2]
    assert outcomes["__MACOSX/._doejane_11_21_ch2-sdpa.ipynb"][1] == "ignored"
    assert len(outcomes) == 5 and not report.problems
    # importing again replaces, never duplicates
    import_submissions(zpath, course, "ch2-sdpa")
    assert sorted(p.name for p in (course / "submitted").iterdir()) == ["11", "12", "13"]
    # a folder of <student>.ipynb files, with a misnamed upload renamed to the assignment's name
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "carol.ipynb").write_text(good)
    report = import_submissions(folder, course, "ch2-sdpa")
    assert report.imported == {"carol": course / "submitted" / "carol" / "ch2-sdpa" / "ch2-sdpa.ipynb"}
    assert [(o.outcome, o.reason) for o in report.files] == [("imported", "saved as ch2-sdpa.ipynb")]
    # two names that give the same id are never merged into one student silently
    (folder / "Carol.ipynb").write_text(good)
    report = import_submissions(folder, course, "ch2-sdpa")
    assert list(report.imported) == ["carol"]
    assert [(o.file, o.outcome) for o in report.problems] == [("carol.ipynb", "skipped")]
    assert "same student id as 'Carol'" in report.problems[0].reason


# --- grading ------------------------------------------------------------------------------------
KINDS = ["correct", "wrong", "half", "unsolved"]


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """A tiny course whose submissions were imported from a folder and graded by the CLI (2 jobs),
    and a copy of it graded by serial stock `nbgrader autograde`."""
    base = tmp_path_factory.mktemp("cli")
    cli, stock = base / "cli", base / "stock"
    synthetic.make_course(cli, timeout=10)
    folder = base / "class"
    for kind in KINDS:
        synthetic.write_submission(cli, kind, kind, folder=folder)
    run_cli(cli, "import", str(folder), "--assignment", A)
    shutil.copytree(cli, stock)
    first = run_cli(cli, "grade", "--jobs", "2")
    subprocess.run(["nbgrader", "autograde", A], cwd=stock, env=ENV, capture_output=True, check=True)
    return cli, stock, first


@pytest.mark.grading
@pytest.mark.slow
def test_parallel_grades_equal_serial_stock_nbgrader(graded):
    cli, stock, _ = graded
    grades = cell_grades(cli)
    assert grades == cell_grades(stock)
    assert grades[("correct", "test-add")] == 2 and grades[("correct", "test-mul")] == 1
    assert grades[("wrong", "test-add")] == 0 and grades[("half", "test-mul")] == 0
    scores = {s: float(r["score"]) for s, r in read_csv(cli / "course-grades.csv").items()}
    assert scores == {k: float(synthetic.KINDS[k][0]) for k in KINDS}


@pytest.mark.grading
@pytest.mark.slow
def test_summary_csv_and_feedback_name_the_mistake(graded):
    cli, _, first = graded
    out = first.stdout
    assert "tiny: 4 submissions, 4 graded, mean 1.50 / 3" in out
    assert "test-add    mean  1.00 / 2" in out
    assert "1 x add looks wrong: your add subtracts instead of adding" in out
    rows = read_csv(cli / "course-grades.csv")
    assert rows["wrong"]["mistakes"] == (
        "test-add: add looks wrong: your add subtracts instead of adding"
    )
    assert rows["correct"]["mistakes"] == "" and rows["correct"]["status"] == "graded"
    feedback = (cli / "feedback" / "wrong" / A / f"{A}.html").read_text()
    assert "your add subtracts instead of adding" in feedback
    # its table of contents names the functions (nbgrader's template says "Test cell"), no internal ids
    assert '<a href="#test-add">add</a>' in feedback and "Test cell" not in feedback and "[mistake:" not in feedback
    assert "autograding: 100%" in first.stderr and "4/4" in first.stderr  # the tqdm progress bar


@pytest.mark.grading
@pytest.mark.slow
def test_regrading_is_idempotent(graded):
    cli, _, _ = graded
    before = (cli / "course-grades.csv").read_bytes()
    grades = cell_grades(cli)
    run_cli(cli, "grade", A, "--jobs", "2")
    assert (cli / "course-grades.csv").read_bytes() == before
    assert cell_grades(cli) == grades
    with sqlite3.connect(cli / "gradebook.db") as db:
        assert db.execute("select count(*) from submitted_assignment").fetchone()[0] == len(KINDS)
        assert db.execute("pragma integrity_check").fetchone()[0] == "ok"


@pytest.mark.grading
@pytest.mark.slow
def test_shards_graded_apart_merge_into_the_same_grades(graded, tmp_path):
    cli, stock, _ = graded
    course = tmp_path / "course"  # like a fresh checkout on each machine: no gradebook.db yet
    skip = shutil.ignore_patterns("gradebook.db", "autograded", "feedback", ".nbgrader.log")
    shutil.copytree(stock, course, ignore=skip)
    run_cli(course, "grade", A, "--shard", "0/2", "--out", str(tmp_path / "s0"), "--jobs", "1")
    run_cli(course, "grade", A, "--shard", "1/2", "--out", str(tmp_path / "s1"), "--jobs", "1")
    assert sorted(p.name for p in course.iterdir()) == [
        ".grading-secret", "exercises", "lms-assignments.json", "lms-import-tiny.csv", "lms-roster.csv",
        "nbgrader_config.py", "release",
        "source", "submitted",
    ]
    shards = [str(tmp_path / "s0"), str(tmp_path / "s1")]
    res = run_cli(course, "merge", *shards, "--into", str(course))
    assert "merged 4 submissions" in res.stdout
    assert cell_grades(course) == cell_grades(cli)
    assert (course / "feedback" / "wrong" / A / f"{A}.html").exists()
    csv_once = (course / "course-grades.csv").read_bytes()
    run_cli(course, "merge", *shards, "--into", str(course))  # merging twice changes nothing
    assert (course / "course-grades.csv").read_bytes() == csv_once
    assert cell_grades(course) == cell_grades(cli)
