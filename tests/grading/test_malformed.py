"""Malformed notebooks are graded when they can be, and told in words when they cannot.

- Each repair and each message category, one notebook at a time (grader/normalize.py,
  grader/restore_cells.py, grader/failures.py, grader/failure_page.py).
- A fuzz test: every kind of tests/grading/mangle.py (truncated JSON, byte flips, other nbformat versions,
  changed cell types, missing or colliding ids, list sources, odd outputs, edited nbgrader metadata,
  reordered and duplicated cells, kernelspec changes, formatting-only changes, deep nesting, non-UTF-8
  bytes...) made 6 times from the ch2-sdpa release, the release solved and the instructor's notebook:
  all of them read in-process and put through nbgrader's own checks, one of each kind graded by the CLI
  (then two students regraded: nothing else changes), and three by stock ``nbgrader autograde``.
"""

from __future__ import annotations

import csv
import hashlib
import html
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from grader import synthetic
from grader.coursedir import COURSE_DIR, db_url, load_config
from grader.failure_page import page
from grader.failures import explain, quote, read_records, write_record
from grader.normalize import NOTE_KEY, read_notebook, read_submission, repairs_in
from grader.restore_cells import Reference

sys.path.insert(0, str(Path(__file__).parent))
from mangle import KINDS, mangle  # noqa: E402

CH2 = "ch2-sdpa"
PY = sys.executable
ENV = {**os.environ, "PATH": str(Path(PY).parent) + os.pathsep + os.environ.get("PATH", "")}
#: What no message a student or the CSV sees may contain: exception class names, tracebacks, nbgrader's name.
EXCEPTION_TEXT = re.compile(r"Traceback|Exception|NbGrader|[A-Za-z]+Error\b|File \"|\w+\.\w+\.\w+:")
#: Characters no message may contain (markup, formulas, control characters).
UNSAFE = set("<>`$\\") | {chr(c) for c in range(32)}
#: Copies of each kind read in-process (54 kinds x 6 = 324 notebooks); MANGLE_COPIES=100 hunts further.
COPIES = int(os.environ.get("MANGLE_COPIES", "6"))


def course_copy(root: Path) -> Path:
    """A course with ch2-sdpa only (source, release, its hidden checks), generated into its gradebook."""
    from grader.cli import ensure_generated

    for part in ("source", "release"):
        shutil.copytree(COURSE_DIR / part / CH2, root / part / CH2)
    shutil.copy(COURSE_DIR / "nbgrader_config.py", root / "nbgrader_config.py")
    shutil.copytree(COURSE_DIR / "exercises" / CH2, root / "exercises" / CH2)
    ensure_generated(root, CH2)
    return root


def bases(course: Path) -> dict[str, dict]:
    """The notebooks mangled: the release solved (8 points), the release (0) and the instructor's (8)."""
    return {"correct": json.loads(nbformat.writes(synthetic.filled_release(course, CH2))),
            "release": json.loads((course / "release" / CH2 / f"{CH2}.ipynb").read_text()),
            "instructor": json.loads((course / "source" / CH2 / f"{CH2}.ipynb").read_text())}


BASE_SCORE = {"correct": 8.0, "release": 0.0, "instructor": 8.0}


def assert_words(message: str) -> None:
    """A message a student may read: no exception text, nothing unsafe, bounded."""
    assert not EXCEPTION_TEXT.search(message), message
    assert not set(message) & UNSAFE, message
    assert len(message) <= 1200, message


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    return course_copy(tmp_path_factory.mktemp("malformed") / "course")


@pytest.fixture(scope="module")
def reference(course) -> Reference:
    return Reference.for_notebook({"db_url": db_url(course), "assignment": CH2, "notebook": CH2})


@pytest.fixture(scope="module")
def good(course) -> dict:
    return bases(course)["correct"]


def cells_without_ids(nb) -> list[dict]:
    """The cells as grading sees them, without ids and without the grader's note."""
    return [{k: v for k, v in c.items() if k != "id"} for c in nb.cells if NOTE_KEY not in c.metadata]


# --- one repair or message at a time -----------------------------------------------------------------
def test_a_byte_order_mark_is_ignored_and_said(good):
    plain = read_notebook(json.dumps(good).encode())
    bom = read_notebook(b"\xef\xbb\xbf" + json.dumps(good, indent=1).encode())
    assert plain.repairs == [] and bom.problem == ""
    assert bom.repairs == ["the file began with a byte-order mark (as some Windows editors write); it was ignored"]
    assert bom.notebook == plain.notebook


def test_a_duplicated_grade_cell_keeps_the_first(good, reference):
    i = next(i for i, c in enumerate(good["cells"]) if c["metadata"].get("nbgrader", {}).get("grade_id")
             == "test-softmax")
    twice = json.loads(json.dumps(good))
    twice["cells"].insert(i + 1, json.loads(json.dumps(good["cells"][i])))
    reading = read_submission(json.dumps(twice).encode(), reference)
    assert reading.repairs == [
        "1 cell had a missing, invalid or repeated id; it was given a new one",
        f"cell {i + 2} repeats the grade cell for softmax (cell {i + 1}); the copy was left out",
    ]
    assert cells_without_ids(reading.notebook) == cells_without_ids(read_submission(json.dumps(good).encode(),
                                                                                    reference).notebook)
    assert repairs_in(json.loads(nbformat.writes(reading.notebook))["cells"]) == reading.repairs


def test_edited_and_removed_grade_cells_are_restored_and_said(good, reference):
    nb = json.loads(json.dumps(good))
    at = {c["metadata"].get("nbgrader", {}).get("grade_id"): i for i, c in enumerate(nb["cells"])}
    nb["cells"][at["test-softmax"]]["source"] = "assert True"
    nb["cells"][at["answer-causal_mask"]]["metadata"]["nbgrader"]["grade_id"] = "mine"
    del nb["cells"][at["test-padding_mask"]]
    reading = read_submission(json.dumps(nb).encode(), reference)
    assert reading.repairs == [
        f"the grade cell for softmax (cell {at['test-softmax'] + 1}) was edited; it was restored",
        f"cell {at['answer-causal_mask'] + 1} had nbgrader metadata for a cell the assignment does not have ('mine'); "
        "it was treated as an ordinary cell",
        "the grade cell for padding_mask was removed; it was restored",
    ]
    restored = [c.metadata["nbgrader"]["grade_id"] for c in reading.notebook.cells if "nbgrader" in c.metadata]
    assert restored == [c.grade_id for c in reference.cells if c.grade_id != "answer-causal_mask"]


@pytest.mark.parametrize(("data", "problem"), [
    (b"", "the file is empty"),
    (b'{"cells": [ this is not json', "the file is not valid JSON (line 1, column 13: expecting value)"),
    (b'{\n "cells": [\n  {"cell_type": "code", "sour', "the file is not valid JSON (line 3, column 30): it ends too "
                                                      "early, so it may be truncated"),
    (b"[" * 5000, "the file's JSON is nested too deeply to be a notebook"),
    (b"[1, 2]", "this is JSON but not a notebook (a list)"),
    (b'"a notebook"', "this is JSON but not a notebook (a string)"),
    (b'{"name": "x"}', "this is JSON but not a notebook (an object without 'cells')"),
    (b'{"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": "x"}',
     "this notebook is nbformat 3 and could not be converted"),
    (b'{"nbformat": 5, "nbformat_minor": 0, "metadata": {}, "cells": []}',
     "this notebook says it is nbformat 5, which the grader cannot read (it reads 1 to 4)"),
    (b'{"nbformat": "<b>four</b>", "metadata": {}, "cells": []}',
     "this notebook's nbformat version ('?b?four?/b?') is not a version number"),
    (b'{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": {}}',
     "this is not a valid notebook (it has 'cells' that is an object, not a list)"),
])
def test_each_unreadable_file_gets_its_reason(data, problem):
    reading = read_notebook(data)
    assert reading.notebook is None and reading.problem == problem
    assert_words(problem)


@pytest.mark.parametrize(("change", "repair"), [
    ({"cell_type": "heading", "level": 2}, "cell {n} was a heading cell (an older format); it became a markdown cell"),
    ({"cell_type": "Markdown"}, "cell {n} had cell_type 'Markdown'; it was read as 'markdown'"),
    ({"cell_type": "<img src=x onerror=alert(1)>" * 5},
     "cell {n} is not a valid notebook cell (cell_type '?img src?x onerror?alert(1)??img src?...'); it was left out"),
    ({"source": 5}, "cell {n} is not a valid notebook cell (its source is a number, not text); it was left out"),
    ({"metadata": {"tags": 5}}, "cell {n}'s metadata 'tags' was not valid; it was left out"),
    ({"outputs": [{"output_type": "bogus"}]}, ""),  # outputs are cleared anyway (nbgrader clears them too)
])
def test_each_cell_repair_is_said_with_safe_quotes(good, change, repair):
    nb = json.loads(json.dumps(good))
    n = next(i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "markdown") + 1
    nb["cells"][n - 1].update(change)
    reading = read_notebook(json.dumps(nb).encode())
    assert reading.repairs == ([repair.format(n=n)] if repair else []) and reading.problem == ""
    for text in reading.repairs:
        assert_words(text)


def test_quotes_are_printable_short_and_inert():
    assert quote("code") == "'code'"
    quoted = quote("=cmd|' /C calc'!A0\x00\n" + "x" * 100)
    assert quoted == "'?cmd?' /C calc'!A0??xxxxxxxxxxxxxxxxx...'" and len(quoted) == 40 + 2
    assert quote(["nested"] * 10**6) == "'list'" and quote(None) == "'null'" and quote(10**100) == "'a large number'"
    assert quote("王芳 Анна") == "'王芳 Анна'"  # letters of any script stay


def test_failures_are_explained_in_words_from_the_file_or_the_log(tmp_path):
    nb = tmp_path / "a.ipynb"
    nb.write_bytes(b'{"cells": [')
    assert explain(nb, "") == ("the file is not valid JSON (line 1, column 12): it ends too early, so it may be "
                               "truncated; graded 0")
    nb.write_text(json.dumps(nbformat.v4.new_notebook()))
    log = "Traceback ...\nnbgrader.converters.base.NbGraderException: Please see the the above traceback"
    assert explain(nb, log) == ("the grader could not grade it (an unexpected problem; the instructor has the "
                                "details in grading-logs/); graded 0")
    assert explain(tmp_path / "none.ipynb", "[ERROR] No notebooks found") == (
        "no notebook with the expected name was found; graded 0")


def test_records_keep_each_message_for_later_reports(tmp_path):
    (tmp_path / "submitted" / "ann" / CH2).mkdir(parents=True)
    write_record(tmp_path, CH2, "ann", "error", "the file is empty; graded 0", "Traceback (most recent call last)")
    write_record(tmp_path, CH2, "gone", "error", "x; graded 0", "")  # no longer submitted: not reported
    assert read_records(tmp_path) == {(CH2, "ann"): ("error", "the file is empty; graded 0")}
    (tmp_path / "autograded" / "ann" / CH2).mkdir(parents=True)  # graded since (by stock nbgrader)
    assert read_records(tmp_path) == {}


def test_a_merge_brings_each_shards_record_along(tmp_path):
    """A shard's record of a failed submission replaces the course's; a shard that graded it replaces it
    with none (grader/merge.py), so the merged CSV shows the shard's message."""
    from grader.merge import _replace_record

    shard, course = tmp_path / "shard", tmp_path / "course"
    for root in (shard, course):
        (root / "submitted" / "ann" / CH2).mkdir(parents=True)
    write_record(shard, CH2, "ann", "error", "the file is empty; graded 0", "log")
    _replace_record(shard, course, CH2, "ann")
    assert read_records(course) == {(CH2, "ann"): ("error", "the file is empty; graded 0")}
    (shard / "grading-logs" / f"{CH2}-ann.log").unlink()
    _replace_record(shard, course, CH2, "ann")
    assert read_records(course) == {}


def test_the_failure_page_says_why_and_what_to_do():
    html = page(CH2, "this is JSON but not a notebook ('<script>'); graded 0")
    assert '<html lang="en">' in html and "<title>ch2-sdpa: not graded</title>" in html
    assert "this is JSON but not a notebook (&#x27;&lt;script&gt;&#x27;)." in html and "<script" not in html
    assert "download the assignment&#x27;s notebook again" in html and "ch2-sdpa.ipynb" in html
    assert "http" not in html and "<link" not in html  # nothing loads from anywhere
    crashed = page(CH2, "grading crashed (the process grading it stopped); graded 0")
    assert "You do not need to submit again." in crashed


# --- the fuzz test: ~300 mangled notebooks in-process ----------------------------------------------------
@pytest.fixture(scope="module")
def mangled(course):
    return mangle(bases(course), COPIES)


def test_fuzz_every_mangled_notebook_is_read_or_refused_in_words(course, reference, mangled):
    """Each of ~300 mangled notebooks is read (then nbgrader's own checks pass on it, and reading it again
    repairs nothing) or refused with the reason its kind expects, always in safe words."""
    from nbgrader.preprocessors import CheckCellMetadata, DeduplicateIds, OverwriteCells, OverwriteKernelspec

    from grader.nbgrader_speedups import speed_up_nbgrader

    speed_up_nbgrader()
    cfg = load_config(course)
    nbgrader_checks = [p(config=cfg) for p in (DeduplicateIds, OverwriteKernelspec, OverwriteCells, CheckCellMetadata)]
    who = {"nbgrader": {"db_url": db_url(course), "assignment": CH2, "notebook": CH2}}
    plain = {b: read_submission(json.dumps(nb).encode(), reference) for b, nb in bases(course).items()}
    assert len(mangled) >= 300 and {m.kind for m in mangled} == set(KINDS)
    for m in mangled:
        reading = read_submission(m.data, reference)
        said = [reading.problem] if reading.problem else reading.repairs
        for text in said:
            assert_words(text)
            assert len(text) <= 300, (m.student, text)
        if m.expect == "error":
            assert reading.notebook is None and m.words in reading.problem, (m.student, reading.problem)
            continue
        if m.expect in ("format", "repair"):
            assert reading.notebook is not None, (m.student, reading.problem)
        if m.expect == "repair":
            assert m.words in "; ".join(reading.repairs), (m.student, reading.repairs)
        if m.expect == "format":
            assert cells_without_ids(reading.notebook) == cells_without_ids(plain[m.base].notebook), m.student
        if reading.notebook is None:
            continue
        again = read_submission(nbformat.writes(reading.notebook).encode(), reference)
        assert again.repairs == [] and cells_without_ids(again.notebook) == cells_without_ids(reading.notebook)
        nb = reading.notebook
        for check in nbgrader_checks:  # nbgrader's sanitizing steps of `autograde`, as its first pass runs them
            nb, _ = check.preprocess(nb, json.loads(json.dumps(who)))


# --- the fuzz test: one of each kind graded by the CLI, then stock nbgrader ----------------------------
def run_cli(course: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [PY, "-m", "grader", "--course-dir", str(course), *args]
    res = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=900)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res


def read_csv(path: Path) -> dict[str, dict[str, str]]:
    with open(path, encoding="utf-8") as f:
        return {row["student"]: row for row in csv.DictReader(f)}


def files_of(course: Path, student: str) -> dict[str, str]:
    """Hash of every file the grading wrote for ``student``: autograded notebook, feedback, log record."""
    paths = [*(course / "autograded" / student).rglob("*"), *(course / "feedback" / student).rglob("*"),
             *(course / "grading-logs").glob(f"{CH2}-{student}.log")]
    return {str(p.relative_to(course)): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths if p.is_file()}


def autograded_without_times(course: Path, student: str) -> list[dict]:
    """The autograded notebook's cells without nbclient's execution timestamps (the one thing a regrade
    changes in it)."""
    nb = json.loads((course / "autograded" / student / CH2 / f"{CH2}.ipynb").read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        cell["metadata"].pop("execution", None)
    return nb["cells"]


def gradebook_rows(course: Path) -> dict[str, tuple]:
    """Each student's submission rows (timestamps, notebooks, every grade and comment) from gradebook.db."""
    from nbgrader.api import Gradebook

    with Gradebook(db_url(course)) as gb:
        return {sub.student.id: (str(sub.timestamp), sub.extension, [
            (nb.name, nb.flagged, nb.late_submission_penalty,
             sorted((g.name, g.auto_score, g.manual_score, g.extra_credit, g.needs_manual_grade) for g in nb.grades),
             sorted((c.name, c.auto_comment, c.manual_comment) for c in nb.comments)) for nb in sub.notebooks])
            for sub in gb.assignment_submissions(CH2)}


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory, mangled):
    """One mangled notebook of each kind (bases alternating), graded by the CLI in one run."""
    course = course_copy(tmp_path_factory.mktemp("fuzz") / "course")
    sample = [m for i, m in enumerate(mangled) if int(m.student.rsplit("-", 1)[1]) == (i // COPIES) % min(COPIES, 6)]
    assert len(sample) == len(KINDS)
    for m in sample:
        path = course / "submitted" / m.student / CH2 / f"{CH2}.ipynb"
        path.parent.mkdir(parents=True)
        path.write_bytes(m.data)
    res = run_cli(course, "grade", CH2, "--jobs", "2", "--timeout", "5")
    return course, {m.student: m for m in sample}, res


@pytest.mark.grading
@pytest.mark.slow
def test_fuzz_class_every_student_has_a_row_and_the_score_their_kind_expects(graded_class):
    course, sample, res = graded_class
    rows = read_csv(course / "course-grades.csv")
    assert sorted(rows) == sorted(sample)
    for student, m in sample.items():
        row = rows[student]
        assert_words(row["message"])
        page = course / "feedback" / student / CH2 / f"{CH2}.html"
        if row["status"] == "error":
            assert row["message"].endswith("graded 0") and float(row["score"]) == 0, (student, row)
            text = page.read_text(encoding="utf-8")
            assert html.escape(row["message"].removesuffix("; graded 0")) in text and not EXCEPTION_TEXT.search(text)
        else:
            assert row["status"] == "graded" and page.is_file(), (student, row)
        if m.expect == "error":
            assert row["status"] == "error" and m.words in row["message"], (student, row["message"])
        elif m.expect in ("format", "repair"):
            assert float(row["score"]) == BASE_SCORE[m.base], (student, row)
            if m.expect == "repair" and m.words:
                assert m.words in row["message"] or "more (listed in the feedback)" in row["message"], (student, row)
                autograded = json.loads((course / "autograded" / student / CH2 / f"{CH2}.ipynb").read_text())
                assert any(m.words in r for r in repairs_in(autograded["cells"])), student
                assert "the grader repaired this notebook" in page.read_text(encoding="utf-8"), student
    assert "not graded:" in res.stdout and "graded after repairs:" in res.stdout
    for line in res.stdout.splitlines():  # the summary's reasons (its mistakes are the hidden checks' verdicts)
        if line.lstrip().startswith(("not graded:", "graded after repairs:")):
            assert_words(line)


@pytest.mark.grading
@pytest.mark.slow
def test_fuzz_class_gradebook_agrees_with_nbgrader_export(graded_class):
    course, _, _ = graded_class
    res = subprocess.run([PY, "-m", "nbgrader", "export"], cwd=course, capture_output=True, text=True, env=ENV)
    assert res.returncode == 0, res.stderr[-2000:]
    with open(course / "grades.csv", encoding="utf-8") as f:
        stock = {r["student_id"]: float(r["score"]) for r in csv.DictReader(f)}
    assert stock == {s: float(r["score"]) for s, r in read_csv(course / "course-grades.csv").items()}


@pytest.mark.grading
@pytest.mark.slow
def test_fuzz_class_regrading_two_students_changes_nothing_else(graded_class):
    course, sample, _ = graded_class
    rows = read_csv(course / "course-grades.csv")
    failed = next(s for s, r in sorted(rows.items()) if r["status"] == "error")
    repaired = next(s for s, r in sorted(rows.items()) if r["message"].startswith("graded after repairs"))
    csv_before = (course / "course-grades.csv").read_bytes()
    files_before = {s: files_of(course, s) for s in sample}
    gradebook_before = gradebook_rows(course)
    repaired_before = autograded_without_times(course, repaired)
    run_cli(course, "grade", CH2, "--student", failed, "--student", repaired, "--jobs", "2", "--timeout", "5")
    assert (course / "course-grades.csv").read_bytes() == csv_before  # every row, the regraded ones too
    gradebook_after = gradebook_rows(course)
    for student in sample:
        if student in (failed, repaired):
            assert gradebook_after[student][2] == gradebook_before[student][2]
            assert files_of(course, failed).keys() == files_before[failed].keys()  # its failure page, its record
            continue
        assert files_of(course, student) == files_before[student], student
        assert gradebook_after[student] == gradebook_before[student], student
    assert read_records(course)[(CH2, failed)] == ("error", rows[failed]["message"])
    assert autograded_without_times(course, repaired) == repaired_before
    page = f"feedback/{failed}/{CH2}/{CH2}.html"
    assert files_of(course, failed)[page] == files_before[failed][page]


@pytest.mark.grading
@pytest.mark.slow
def test_stock_nbgrader_autograde_repairs_and_explains_too(tmp_path, good):
    """The course's config gives stock `nbgrader autograde` the same reading: a byte-order mark and a
    duplicated grade cell keep full marks, a truncated file is refused in words in its log."""
    course = course_copy(tmp_path / "course")
    data = json.dumps(good).encode()
    twice = json.loads(data)
    i = next(i for i, c in enumerate(twice["cells"]) if c["metadata"].get("nbgrader", {}).get("grade"))
    twice["cells"].insert(i + 1, twice["cells"][i])
    for student, content in {"bom": b"\xef\xbb\xbf" + data, "twice": json.dumps(twice).encode(),
                             "cut": data[: len(data) // 2]}.items():
        path = course / "submitted" / student / CH2 / f"{CH2}.ipynb"
        path.parent.mkdir(parents=True)
        path.write_bytes(content)
    res = subprocess.run(["nbgrader", "autograde", CH2], cwd=course, capture_output=True, text=True, env=ENV,
                         timeout=600)
    assert res.returncode != 0  # one submission failed, as nbgrader reports it
    log = res.stdout + res.stderr
    assert "cannot be graded: the file is not valid JSON (line 1, column" in log
    assert "it ends too early, so it may be truncated" in log
    assert "was repaired before grading: the file began with a byte-order mark" in log
    from nbgrader.api import Gradebook

    with Gradebook(db_url(course)) as gb:
        scores = {s.student.id: s.score for s in gb.assignment_submissions(CH2)}
    assert scores == {"bom": 8.0, "twice": 8.0, "cut": 0.0}
