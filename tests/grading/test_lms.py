"""A class round trip that loses no one: LMS download in, grades and feedback back to the LMS.

The commands are read from the instructor guide's section "A term with Canvas or Moodle" and run as
written (from the root of a repository whose ``grader/`` is the tiny synthetic course, with ``ch2-sdpa``
read as its assignment ``tiny``) on realistic downloads built here: a Canvas class of 18 with two
students of the same name, names in Chinese, Cyrillic and German, a resubmission, late files, a PDF, a
stray text file, a broken notebook, zip-tool junk and display names that are spreadsheet formulas, an
extension given before the import and an excused student; a Moodle class with the same, graded
anonymously, with submission times from the grading worksheet and an extension given after the import.
The LMS formats are checked against the columns and names as the LMSs document them (written out here,
not imported from the code), and no cell of any CSV the course writes can start a formula.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import re
import shlex
import subprocess
import sys
import zipfile
from pathlib import Path
from zoneinfo import ZoneInfo

import nbformat
import pytest

from grader import csvsafe, synthetic
from grader.term.deadlines import penalty
from grader.term.lms import LMSError, classify, read_download, read_roster

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
ENV = {**os.environ, "PATH": str(Path(PY).parent) + os.pathsep + os.environ.get("PATH", "")}
A = synthetic.ASSIGNMENT
GUIDE = (ROOT / "book" / "instructors.md").read_text()
SECTION = GUIDE.split("## A term with Canvas or Moodle", 1)[1].split("\n## ", 1)[0]
CANVAS_PART, MOODLE_PART = SECTION.split("**Moodle, graded anonymously.**")

# As documented by Canvas (gradebook import/export) and Moodle (offline grading worksheet).
CANVAS_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
MOODLE_COLUMNS = ["Identifier", "Full name", "Email address", "Status", "Grade", "Maximum Grade",
                  "Grade can be changed", "Last modified (submission)", "Last modified (grade)", "Feedback comments"]


def blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, re.S)


def commands(text: str) -> list[str]:
    """The command lines of the bash blocks of ``text``, in order."""
    return [ln.split("  #")[0].strip() for b in blocks(text, "bash") for ln in b.splitlines()
            if ln.strip() and not ln.lstrip().startswith("#")]


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "-m", "grader", *args], cwd=cwd, capture_output=True, text=True, env=ENV, timeout=300)


def run_guide_command(line: str, repo: Path, downloads: Path) -> subprocess.CompletedProcess:
    """Run one command of the guide in ``repo`` (assignment ch2-sdpa -> tiny, ~/Downloads -> ``downloads``)."""
    line = line.replace("ch2-sdpa", A).replace("~/Downloads", str(downloads))
    cwd = repo
    if line.startswith("cd grader && "):
        cwd, line = repo / "grader", line.removeprefix("cd grader && ")
    argv = shlex.split(line)
    if argv[:3] == ["python", "-m", "grader"]:
        argv = [PY, *argv[1:]]
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, env=ENV, timeout=300)


def make_repo(base: Path) -> Path:
    """A repository root whose grader/ is the tiny course, with the guide's calendar in its config."""
    repo = base / "repo"
    course = synthetic.make_course(repo / "grader", timeout=10)
    (config,) = blocks(SECTION, "python")
    with open(course / "nbgrader_config.py", "a") as f:
        f.write("\n" + config.replace("ch2-sdpa", A))
    return repo


def notebook(course: Path, kind: str) -> str:
    if kind == "invalid_json":
        return '{"cells": [ not json'
    return nbformat.writes(synthetic.submission_notebook(course, kind))


def read_rows(path: Path, key: str = "student") -> dict[str, dict[str, str]]:
    with open(path, encoding="utf-8") as f:
        return {row[key]: row for row in csv.DictReader(f)}


def nbgrader_export(course: Path) -> dict[str, dict[str, str]]:
    """Stock ``nbgrader export``'s rows (its own grades.csv), by student id."""
    res = subprocess.run([PY, "-m", "nbgrader", "export"], cwd=course, capture_output=True, text=True, env=ENV)
    assert res.returncode == 0, res.stderr[-2000:]
    return read_rows(course / "grades.csv", "student_id")


# --- the Canvas class ---------------------------------------------------------------------------
#: Canvas user id -> (name in Canvas's gradebook, sortable name in its download, what they uploaded)
CANVAS_CLASS = {
    "48201": ("Wang, Fang", "wangfang", [("tiny.ipynb", "correct")]),
    "48202": ("Wang, Fang", "wangfang", [("tiny.ipynb", "wrong")]),  # same name, another student
    "48203": ("王芳", "王芳", [("tiny.ipynb", "half")]),
    "48204": ("李娜", "李娜", [("李娜的作业.ipynb", "correct")]),
    "48205": ("Иванова, Анна", "ивановаанна", [("tiny.ipynb", "wrong")]),
    # a resubmission: Canvas renamed the newer upload tiny-1.ipynb, and it was late (with an extension)
    "48206": ("Smith, John", "smithjohn", [("tiny.ipynb", "unsolved"), ("LATE:tiny-1.ipynb", "correct")]),
    "48207": ("Doe, Jane", "doejane", [("report.pdf", None)]),  # no notebook at all
    "48208": ("Roe, Sam", "roesam", [("LATE:tiny.ipynb", "correct")]),  # late, no extension
    "48209": ("Brown, Bob", "brownbob", [("tiny.ipynb", "invalid_json")]),
    "48210": ("Lee, Kim", "leekim", [("Untitled.ipynb", "correct")]),
    "48211": ("Garcia, Ana", "garciaana", [("tiny.ipynb", "correct"), ("notes.txt", None)]),
    "48212": ("Müller, Jörg", "müllerjörg", [("tiny.ipynb", "half")]),
    "48213": ("Okafor, Chidi", "okaforchidi", [("tiny.ipynb", "unsolved")]),
    "48214": ("Nguyen, An", "nguyenan", []),  # sent nothing
    "48215": ("Kowalski, Ewa", "kowalskiewa", []),
    # display names that a spreadsheet would run as formulas (OWASP's CSV injection examples)
    "48216": ('=HYPERLINK("http://x","y")', "hyperlinkhttpxy", [("tiny.ipynb", "correct")]),
    "48217": ("+cmd|' /C calc'!A0", "cmdccalca0", [("tiny.ipynb", "wrong")]),
    "48218": ("@SUM(1)", "sum1", []),
}
#: Expected score after the late penalty (10 % per started day; a Canvas-late file counts one day, none with
#: an extension: 48206's, given before the import).
CANVAS_SCORES = {"48201": 3, "48202": 1, "48203": 2, "48204": 3, "48205": 1, "48206": 3, "48208": 2.7,
                 "48209": 0, "48210": 3, "48211": 3, "48212": 2, "48213": 0,
                 "48216": 3, "48217": 1}
#: Decided in the guide's commands: 48215 sent nothing and is excused.
EXCUSED = "48215"


def canvas_download(course: Path, downloads: Path) -> list[str]:
    """Canvas's zip and gradebook export for CANVAS_CLASS; returns the zip's entry names."""
    downloads.mkdir(parents=True, exist_ok=True)
    names = []
    with zipfile.ZipFile(downloads / "submissions.zip", "w") as zf:
        for n, (uid, (_, sortable, files)) in enumerate(CANVAS_CLASS.items()):
            for filename, kind in files:
                late = filename.startswith("LATE:")
                filename = filename.removeprefix("LATE:")
                name = f"{sortable}_{'LATE_' if late else ''}{uid}_{900000 + n}_{filename}"
                zf.writestr(name, notebook(course, kind) if kind else b"%PDF-1.4 not a notebook")
                names.append(name)
        for junk, data in (("__MACOSX/._wangfang_48201_900000_tiny.ipynb", b"\0"), ("readme.txt", b"hello")):
            zf.writestr(junk, data)
            names.append(junk)
    with open(downloads / "gradebook.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow([*CANVAS_COLUMNS, "Chapter 2: Scaled dot-product attention (4711)", "Current Score"])
        w.writerow(["    Points Possible", "", "", "", "", "3", "(read only)"])
        for uid, (name, _, _) in CANVAS_CLASS.items():
            w.writerow([name, uid, f"S{uid}", f"login{uid}", "Section A", "", ""])
    return names


def run_term(factory, name: str, download, part: str):
    """A fresh copy of the course, an LMS download made by ``download``, and the guide's commands of ``part``
    run in order: (repo, course, names, [(command, result)])."""
    base = factory.mktemp(name)
    repo = make_repo(base)
    names = download(repo / "grader", base / "Downloads")
    results = [(line, run_guide_command(line, repo, base / "Downloads")) for line in commands(part)]
    return repo, repo / "grader", names, results


@pytest.fixture(scope="module")
def canvas_term(tmp_path_factory):
    """The guide's Canvas commands, run in order; their results by command."""
    return run_term(tmp_path_factory, "canvas", canvas_download, CANVAS_PART)


@pytest.mark.grading
@pytest.mark.slow
def test_canvas_guide_commands_run_as_documented(canvas_term):
    _, _, _, results = canvas_term
    ran = [line for line, _ in results]
    assert any(" import " in f" {ln} " and "--roster" in ln for ln in ran), ran
    assert any(ln.startswith("python -m grader grade") for ln in ran)
    assert any(ln.startswith("python -m grader return") for ln in ran)
    assert any(ln.startswith("python -m grader extend") for ln in ran) and "python -m grader report --html" in ran
    assert ran.index("python -m grader roster ~/Downloads/gradebook.csv") < ran.index(next(
        ln for ln in ran if ln.startswith("python -m grader extend")))  # the class list first, then a decision
    assert "cd grader && nbgrader export" in ran
    for line, res in results:
        # the download holds a PDF and a text file: a plain import says so and exits 1; --allow-skipped accepts
        expected = 1 if " import " in f" {line} " and "--allow-skipped" not in line else 0
        assert res.returncode == expected, (line, res.stdout[-3000:], res.stderr[-3000:])
        assert "Traceback" not in res.stderr, line


@pytest.mark.grading
@pytest.mark.slow
def test_canvas_every_student_and_file_accounted_for(canvas_term):
    _, course, names, results = canvas_term
    report = list(csv.DictReader(open(course / f"lms-import-{A}.csv", encoding="utf-8")))
    assert sorted(r["file"] for r in report) == sorted(names)  # every file of the zip, once
    outcome = {r["file"]: r for r in report}
    assert outcome["smithjohn_LATE_48206_900005_tiny-1.ipynb"]["outcome"] == "imported"
    assert outcome["smithjohn_48206_900005_tiny.ipynb"]["outcome"] == "superseded"
    assert outcome["doejane_48207_900006_report.pdf"]["outcome"] == "skipped"
    assert outcome["garciaana_48211_900010_notes.txt"]["outcome"] == "skipped"
    assert outcome["readme.txt"]["outcome"] == "skipped" and outcome["readme.txt"]["student"] == ""
    assert outcome["__MACOSX/._wangfang_48201_900000_tiny.ipynb"]["outcome"] == "ignored"
    first_import = next(res for line, res in results if " import " in f" {line} ").stdout
    assert "skipped: doejane_48207_900006_report.pdf" in first_import and "not a notebook" in first_import
    assert "not submitted: 4 students of the roster" in first_import
    # submitted/ is keyed on the Canvas user id: same names and non-Latin names are all there
    submitted = sorted(p.name for p in (course / "submitted").iterdir())
    assert submitted == sorted(CANVAS_SCORES)
    # the newest attempt (tiny-1.ipynb, correct) is the one graded, not the older tiny.ipynb
    assert nbformat.reads((course / "submitted/48206" / A / f"{A}.ipynb").read_text(), 4) == nbformat.reads(
        notebook(course, "correct"), 4)


@pytest.mark.grading
@pytest.mark.slow
def test_canvas_grades_late_penalties_and_nbgrader_export_agree(canvas_term):
    _, course, _, _ = canvas_term
    ours = read_rows(course / "course-grades.csv")
    assert set(ours) == set(CANVAS_CLASS)  # non-submitters listed
    for uid, score in CANVAS_SCORES.items():
        assert float(ours[uid]["score"]) == pytest.approx(score), uid
    assert ours["48214"]["status"] == "missing" and ours["48214"]["message"] == "nothing submitted"
    assert ours["48207"]["status"] == "missing"  # a PDF, attributed: "sent no notebook", not "nothing submitted"
    assert ours["48207"]["message"] == "sent no notebook: report.pdf is not a notebook (.ipynb)"
    assert ours[EXCUSED]["status"] == "excused" and ours[EXCUSED]["message"].startswith("excused: ")
    for uid in ("48214", "48218"):
        assert ours[uid]["status"] == "missing" and ours[uid]["message"] == "nothing submitted"
    assert ours["48203"]["name"] == "王芳" and ours["48205"]["name"] == "Анна Иванова"
    assert float(ours["48206"]["late_penalty"]) == 0 and ours["48206"]["raw_score"] == "3"  # late, extended
    assert float(ours["48208"]["late_penalty"]) == pytest.approx(0.3)  # late, no extension
    # the extension of 48206 (2 days, decided with `extend` before the import) moves its due date
    assert ours["48206"]["due"] == "2026-10-07 21:59:00 UTC" and ours["48208"]["due"] == "2026-10-05 21:59:00 UTC"
    assert ours["48205"]["points:test-add"] == "0" and ours["48205"]["points:test-mul"] == "1"
    stock = nbgrader_export(course)
    assert set(stock) == set(ours)
    for uid, row in ours.items():
        s = stock[uid]
        assert (float(s["score"]), float(s["late_submission_penalty"]), float(s["raw_score"])) == pytest.approx(
            (float(row["score"]), float(row["late_penalty"]), float(row["raw_score"]))), uid
    assert (course / "course-grades.csv").read_text() != (course / "grades.csv").read_text()


@pytest.mark.grading
@pytest.mark.slow
def test_canvas_grade_file_and_feedback_archive(canvas_term):
    _, course, _, _ = canvas_term
    out = course / "lms-return" / A
    with open(out / "canvas-grades.csv", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    column = "Chapter 2: Scaled dot-product attention (4711)"
    assert rows[0] == [*CANVAS_COLUMNS, column]
    assert rows[1][0] == "Points Possible" and rows[1][-1] == "3"
    by_id = {r[1]: r for r in rows[2:]}
    assert set(by_id) == set(CANVAS_CLASS)  # matched on ID, every student of the gradebook
    for uid, (name, _, _) in CANVAS_CLASS.items():
        assert by_id[uid][0] == csvsafe.cell(name) and by_id[uid][2:4] == [f"S{uid}", f"login{uid}"]
        expected = CANVAS_SCORES.get(uid)
        assert by_id[uid][5] == ("EX" if uid == EXCUSED else "" if expected is None else f"{expected:g}"), uid
    with zipfile.ZipFile(out / "canvas-feedback.zip") as zf:
        entries = sorted(zf.namelist())
        page = zf.read("ивановаанна_48205_tiny-feedback.html").decode()
        broken = zf.read(f"brownbob_48209_{A}-feedback.html").decode()  # its page says why it scored 0
    assert "your notebook could not be graded" in broken and "the file is not valid JSON" in broken
    expected = sorted(f"{CANVAS_CLASS[u][1]}_{u}_{A}-feedback.html" for u in CANVAS_SCORES)
    assert entries == expected
    assert "your add subtracts instead of adding" in page


# --- the Moodle class, graded anonymously --------------------------------------------------------
BERLIN = ZoneInfo("Europe/Berlin")
DUE = dt.datetime(2026, 10, 5, 23, 59, tzinfo=BERLIN)
#: participant id -> (full name, files with their kind and the hours after the due date they were saved)
MOODLE_CLASS = {
    "1234561": ("Анна Иванова", [("tiny.ipynb", "correct", -3)]),
    "1234562": ("Анна Иванова", [("tiny.ipynb", "wrong", -2)]),  # same name, another student
    "1234563": ("李娜", [("作业.ipynb", "correct", 36)]),  # 1.5 days late: 2 started days, 20 %
    "1234564": ("Tom Baker", [("tiny.ipynb", "correct", 36)]),  # 1.5 days late with 2 days of extension
    "1234565": ("Eve Adams", [("draft.ipynb", "unsolved", -30), ("final.ipynb", "correct", -5)]),
    "1234566": ("Sam Roe", []),  # sent nothing
    "1234567": ("=1+2", [("tiny.ipynb", "correct", -1)]),  # display names a spreadsheet would run
    "1234568": ("@SUM(1)", []),
}
MOODLE_SCORES = {"1234561": 3, "1234562": 1, "1234563": 2.4, "1234564": 3, "1234565": 3, "1234567": 3}


def moodle_time(hours: float) -> str:
    when = DUE + dt.timedelta(hours=hours)
    return when.strftime("%A, %-d %B %Y, %-I:%M %p")


def moodle_download(course: Path, downloads: Path) -> list[str]:
    downloads.mkdir(parents=True, exist_ok=True)
    names = []
    with zipfile.ZipFile(downloads / "moodle.zip", "w") as zf:
        # an online text next to the file submission (first in the zip: the feedback goes to the file folder)
        entry = "Eve Adams_1234565_assignsubmission_onlinetext_/onlinetext.html"
        zf.writestr(entry, "<p>see my notebook</p>")
        names.append(entry)
        for pid, (name, files) in MOODLE_CLASS.items():
            for filename, kind, hours in files:
                entry = f"{name}_{pid}_assignsubmission_file_/{filename}"
                local = (DUE + dt.timedelta(hours=hours)).timetuple()[:6]
                zf.writestr(zipfile.ZipInfo(entry, local), notebook(course, kind))
                names.append(entry)
    with open(downloads / "worksheet.csv", "w", newline="", encoding="utf-8-sig") as f:
        w = csv.writer(f)
        w.writerow(MOODLE_COLUMNS)
        for pid, (name, files) in MOODLE_CLASS.items():
            last = max((h for _, _, h in files), default=None)
            w.writerow([f"Participant {pid}", name, f"{pid}@uni.example", "Submitted for grading" if files else
                        "No submission", "", "3.00", "Yes", moodle_time(last) if files else "-", "-", ""])
    return names


@pytest.fixture(scope="module")
def moodle_term(tmp_path_factory):
    """The guide's Moodle commands (anonymous grading), run in order; their results by command."""
    return run_term(tmp_path_factory, "moodle", moodle_download, MOODLE_PART)


@pytest.mark.grading
@pytest.mark.slow
def test_moodle_guide_commands_run_as_documented(moodle_term):
    _, _, _, results = moodle_term
    assert [ln.split()[3] for ln, _ in results] == ["import", "extend", "grade", "grade", "return"]
    assert "--anonymous" in results[0][0]
    assert "--student 1234563" in results[3][0] and "1/1" in results[3][1].stderr  # one regraded, by LMS id
    for line, res in results:
        assert res.returncode == 0, (line, res.stdout[-3000:], res.stderr[-3000:])
        assert "Traceback" not in res.stderr


@pytest.mark.grading
@pytest.mark.slow
def test_moodle_anonymous_grades_times_and_export_agree(moodle_term):
    _, course, names, results = moodle_term
    report = [{k: csvsafe.restore(v) for k, v in r.items()}  # "=1+2_1234567_..." is written "'=1+2_1234567_..."
              for r in csv.DictReader(open(course / f"lms-import-{A}.csv", encoding="utf-8"))]
    assert sorted(r["file"] for r in report) == sorted(names)
    outcome = {r["file"]: r["outcome"] for r in report}
    assert outcome["Eve Adams_1234565_assignsubmission_file_/final.ipynb"] == "imported"  # the newest file
    assert outcome["Eve Adams_1234565_assignsubmission_file_/draft.ipynb"] == "superseded"
    assert outcome["Eve Adams_1234565_assignsubmission_onlinetext_/onlinetext.html"] == "skipped"
    ours = read_rows(course / "course-grades.csv")
    roster = read_rows(course / "lms-roster.csv")
    by_pid = {p["lms_id"]: s for s, p in roster.items()}
    assert set(by_pid) == set(MOODLE_CLASS) and all(s.startswith("anon-") for s in by_pid.values())
    assert set(ours) == set(by_pid.values())  # pseudonyms only, non-submitter included
    for pid, score in MOODLE_SCORES.items():
        assert float(ours[by_pid[pid]]["score"]) == pytest.approx(score), pid
    row = ours[by_pid["1234563"]]
    assert float(row["late_penalty"]) == pytest.approx(0.6)
    assert row["submitted_at"] == "2026-10-07 09:59:00 UTC"  # the worksheet's time, Berlin -> UTC
    assert float(ours[by_pid["1234564"]]["late_penalty"]) == 0  # its extension (given after the import) covers it
    text = (course / "course-grades.csv").read_text(encoding="utf-8")
    for pid, (name, _) in MOODLE_CLASS.items():
        assert name not in text and pid not in text
    for page in (course / "feedback").rglob("*.html"):
        assert "Иванова" not in page.read_text(encoding="utf-8") and "1234561" not in page.read_text()
    assert sorted(p.name for p in (course / "submitted").iterdir()) == sorted(by_pid[p] for p in MOODLE_SCORES)
    stock = nbgrader_export(course)
    assert set(stock) == set(ours)
    for student, r in ours.items():
        assert float(stock[student]["score"]) == pytest.approx(float(r["score"]))
        assert stock[student]["first_name"] == stock[student]["last_name"] == ""


@pytest.mark.grading
@pytest.mark.slow
def test_moodle_worksheet_and_feedback_zip(moodle_term):
    _, course, names, _ = moodle_term
    out = course / "lms-return" / A
    with open(out / "moodle-grades.csv", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == MOODLE_COLUMNS
        rows = {r["Identifier"]: r for r in reader}
    assert set(rows) == {f"Participant {pid}" for pid in MOODLE_CLASS}
    for pid, (name, _) in MOODLE_CLASS.items():
        r = rows[f"Participant {pid}"]
        assert r["Full name"] == csvsafe.cell(name) and r["Maximum Grade"] == "3.00"
        assert r["Grade"] == (f"{MOODLE_SCORES[pid]:.2f}" if pid in MOODLE_SCORES else "")
    assert "late penalty of 0.6" in rows["Participant 1234563"]["Feedback comments"]
    assert "your add subtracts instead of adding" in rows["Participant 1234562"]["Feedback comments"]
    folders = {n.split("/")[0] for n in names if "_assignsubmission_file_/" in n}
    with zipfile.ZipFile(out / "moodle-feedback.zip") as zf:
        entries = sorted(zf.namelist())
    assert entries == sorted(f"{folder}/{A}-feedback.html" for folder in folders)  # one per graded student


# --- no CSV cell that a spreadsheet would run ----------------------------------------------------
FORMULA_NAMES = {"canvas_term": {"48216": '=HYPERLINK("http://x","y")', "48217": "+cmd|' /C calc'!A0",
                                 "48218": "@SUM(1)"},
                 "moodle_term": {"1234567": "=1+2", "1234568": "@SUM(1)"}}


@pytest.mark.grading
@pytest.mark.slow
@pytest.mark.parametrize("term", sorted(FORMULA_NAMES))
def test_no_csv_cell_can_start_a_formula(term, request):
    """Every CSV the course wrote (the CLI's grades, the roster, the import report, the LMS's grade file,
    stock ``nbgrader export``): no cell starts with = + - @ tab or CR unless it is a number; the formula
    names are there, quoted, and the roster gives them back as they were."""
    from grader.term.lms import load_roster

    _, course, _, _ = request.getfixturevalue(term)
    nbgrader_export(course)
    files = {p.relative_to(course).as_posix(): p for p in course.rglob("*.csv")}
    lms = "canvas" if term == "canvas_term" else "moodle"
    assert {"course-grades.csv", "grades.csv", "lms-roster.csv", f"lms-import-{A}.csv",
            f"lms-return/{A}/{lms}-grades.csv"} <= set(files), sorted(files)
    cells = []
    for name, path in files.items():
        with open(path, encoding="utf-8-sig", newline="") as f:
            cells += [(name, c) for row in csv.reader(f) for c in row]
    runnable = [(name, c) for name, c in cells if c[:1] in csvsafe.FORMULA_START and not csvsafe.NUMBER.match(c)]
    assert runnable == []
    written = {c for _, c in cells}
    roster = {p.lms_id: p for p in load_roster(course).values()}
    for lms_id, name in FORMULA_NAMES[term].items():
        assert "'" + name in written, name  # the names went through, quoted
        assert roster[lms_id].name == name  # and come back as they were


# --- clear errors for every misuse ---------------------------------------------------------------
@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    return synthetic.make_course(tmp_path_factory.mktemp("misuse") / "course", timeout=10)


def assert_error(res: subprocess.CompletedProcess, *phrases: str) -> None:
    assert res.returncode != 0, res.stdout
    assert "Traceback" not in res.stderr, res.stderr
    for phrase in phrases:
        assert phrase in res.stderr, (phrase, res.stderr)


@pytest.mark.grading
def test_misuse_is_a_clear_error(course, tmp_path):
    c = ["--course-dir", str(course)]
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w") as zf:
        zf.writestr("doejane_11_21_tiny.ipynb", notebook(course, "correct"))
    assert_error(cli(tmp_path, *c, "import", str(good), "--assignment", "tyni"),
                 "unknown assignment 'tyni' (did you mean 'tiny'?)")
    assert not (course / "submitted").exists()  # nothing imported under a typo
    corrupt = tmp_path / "corrupt.zip"
    corrupt.write_bytes(good.read_bytes()[:40])
    assert_error(cli(tmp_path, *c, "import", str(corrupt), "--assignment", A), "corrupt zip")
    bad_crc = tmp_path / "badcrc.zip"
    data = bytearray(good.read_bytes())
    data[data.index(b'"cells"') + 3] ^= 0xFF  # stored entry, one byte flipped: the CRC check fails
    bad_crc.write_bytes(bytes(data))
    assert_error(cli(tmp_path, *c, "import", str(bad_crc), "--assignment", A), "corrupt zip")
    assert_error(cli(tmp_path, *c, "import", str(tmp_path / "nope.zip"), "--assignment", A), "no such zip file")
    assert_error(cli(tmp_path, *c, "grade", A), "no submissions of tiny")
    assert_error(cli(tmp_path, *c, "grade"), "nothing to grade")
    assert_error(cli(tmp_path, *c, "grade", "--jobs", "0"), "--jobs", "must be at least 1")
    assert_error(cli(tmp_path, *c, "grade", "ch2-spda"), "unknown assignment 'ch2-spda'")
    assert_error(cli(tmp_path, *c, "return", A), "nothing graded for tiny yet")
    assert_error(cli(tmp_path, *c, "report"), "nothing graded yet")
    assert_error(cli(tmp_path, "--course-dir", str(tmp_path), "grade"), "is not an nbgrader course directory")
    assert_error(cli(tmp_path, "merge", str(tmp_path), "--into", str(course)), "is not a shard directory")
    # from a folder that is not a course (and has none in grader/), nothing is graded anywhere else
    assert_error(cli(tmp_path, "grade"), "no nbgrader course in", "--course-dir")
    assert_error(cli(tmp_path, *c, "import", str(good), "--assignment", A, "--roster", str(good)),
                 "not a UTF-8 CSV")
    res = cli(tmp_path, *c, "import", str(good), "--assignment", A)
    assert res.returncode == 0, res.stderr
    assert_error(cli(tmp_path, *c, "grade", "--student", "nobody"), "no submission from student 'nobody'")
    assert not (course / "autograded").exists()


def test_corrupt_and_empty_downloads(tmp_path):
    (tmp_path / "x.zip").write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(LMSError, match="corrupt zip"):
        read_download(tmp_path / "x.zip")
    (tmp_path / "empty").mkdir()
    with pytest.raises(LMSError, match="holds no file"):
        read_download(tmp_path / "empty")


def test_rosters_of_each_lms(tmp_path):
    canvas = tmp_path / "canvas.csv"
    canvas.write_text("Student,ID,SIS User ID,SIS Login ID,Section,Ch 2 (4711)\n    Points Possible,,,,,3\n"
                      "\"Wang, Fang\",1,S1,l1,A,\n\"Wang, Fang\",2,S2,l2,A,\n\"Student, Test\",9,,,A,\n",
                      encoding="utf-8-sig")
    lms, people, _ = read_roster(canvas)
    assert lms == "canvas" and [(p.lms_id, p.name, p.sis_user_id) for p in people] == [
        ("1", "Wang, Fang", "S1"), ("2", "Wang, Fang", "S2")]
    moodle = tmp_path / "moodle.csv"
    moodle.write_text(",".join(MOODLE_COLUMNS) + "\nParticipant 77,Анна Иванова,a@x,Submitted,,3.00,Yes,-,-,\n")
    lms, people, _ = read_roster(moodle)
    assert lms == "moodle" and (people[0].lms_id, people[0].name, people[0].email) == ("77", "Анна Иванова", "a@x")
    participants = tmp_path / "participants.csv"
    participants.write_text("First name,Last name,Email address\nAnna,Ivanova,a@x\n")
    with pytest.raises(LMSError, match="grading worksheet"):
        read_roster(participants)


def test_a_late_marker_without_a_due_date_is_reported(tmp_path):
    from grader.term.collect import import_submissions

    good = nbformat.v4.writes(nbformat.v4.new_notebook())
    download = tmp_path / "canvas.zip"
    with zipfile.ZipFile(download, "w") as zf:
        zf.writestr("roesam_LATE_12_22_tiny.ipynb", good)
    report = import_submissions(download, tmp_path / "course", A)
    (imported,) = report.files
    assert imported.outcome == "imported" and "marked late by Canvas, but tiny has no due date" in imported.reason
    assert not (tmp_path / "course/submitted/12/tiny/timestamp.txt").exists()


def test_late_penalty_policy():
    assert penalty(3.0, 0, 10) == 0 and penalty(3.0, -5, 10) == 0
    assert penalty(3.0, 1, 10) == pytest.approx(0.3)  # a second late is a started day
    assert penalty(3.0, 86400, 10) == pytest.approx(0.3)
    assert penalty(3.0, 86401, 10) == pytest.approx(0.6)
    assert penalty(3.0, 30 * 86400, 10) == 3.0  # never more than the score
    assert penalty(3.0, 600, 10, grace_minutes=15) == 0


def test_unicode_and_same_name_students_keep_their_ids():
    a, b = classify("wangfang_1_9_tiny.ipynb"), classify("wangfang_2_9_tiny.ipynb")
    assert (a.lms_id, b.lms_id) == ("1", "2") and a.name == b.name
    assert classify("Анна Иванова_5_assignsubmission_file_/x.ipynb").lms_id == "5"
    assert classify("王芳.ipynb").lms_id == "王芳" and classify("Анна Иванова.ipynb").lms_id == "анна-иванова"
