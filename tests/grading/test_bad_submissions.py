"""Bad submissions never stop the others and never corrupt gradebook.db; each gets a clear message.

One CLI run grades every kind of grader/synthetic.py's tiny assignment (invalid JSON, a renamed
notebook, an empty folder, deleted / edited / reordered test cells, an infinite loop, a memory hog,
100 MB of output) next to correct and wrong ones; another grades the real ch2-sdpa with answers that
import `solutions` (absent from the sandbox) or call torch's SDPA (refused by the hidden checks).
Deliberately hostile submissions: test_hostile.py.
"""

from __future__ import annotations

import csv
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from grader import synthetic
from grader.coursedir import COURSE_DIR

A = synthetic.ASSIGNMENT
PY = sys.executable
ENV = {**os.environ, "PATH": str(Path(PY).parent) + os.pathsep + os.environ.get("PATH", "")}
TIMEOUT_S = 5  # short, so the infinite loop costs little; long enough for a loaded CI machine
MEMORY_MB = 1024


def grade(course: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [PY, "-m", "grader", "--course-dir", str(course), "grade", *args]
    res = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=400)
    assert res.returncode == 0, res.stdout + res.stderr
    return res


def read_csv(path: Path) -> dict[str, dict[str, str]]:
    with open(path) as f:
        return {row["student"]: row for row in csv.DictReader(f)}


def test_kernel_launcher_applies_the_memory_limit_for_good():
    """Without a sandbox (--no-sandbox) the launcher caps memory; soft = hard, so it cannot be lifted."""
    code = "import resource; print(*resource.getrlimit(resource.RLIMIT_DATA), *resource.getrlimit(resource.RLIMIT_AS))"
    cmd = [PY, "-m", "grader.kernel_launcher", "--memory-mb", "300", "--", PY, "-c", code]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.split()
    assert [int(v) for v in out] == [300 * 2**20] * 4


def test_grading_kernels_are_sandboxed_and_limited_by_the_course_config():
    from grader.coursedir import load_config
    from grader.sandbox.kernel import SandboxedKernelManager

    cfg = load_config(COURSE_DIR)
    assert cfg.Autograde.autograde_preprocessors[0] == "grader.execute.TrustedExecute"
    km = SandboxedKernelManager(config=cfg)
    assert km.sandbox is True
    limits = km.limits.prlimit_args()
    assert f"--data={km.memory_limit_mb * 2**20}:{km.memory_limit_mb * 2**20}" in limits
    assert f"--nproc={km.max_processes}:{km.max_processes}" in limits


@pytest.fixture(scope="module")
def bad_class(tmp_path_factory):
    course = tmp_path_factory.mktemp("bad") / "course"
    synthetic.make_course(course)
    for kind in synthetic.KINDS:
        synthetic.write_submission(course, kind, kind)
    res = grade(course, "--jobs", "2", "--timeout", str(TIMEOUT_S), "--memory-mb", str(MEMORY_MB))
    return course, res, read_csv(course / "course-grades.csv")


@pytest.mark.grading
@pytest.mark.slow
def test_every_kind_gets_its_score_and_the_others_are_unaffected(bad_class):
    _, _, rows = bad_class
    assert sorted(rows) == sorted(synthetic.KINDS)
    scores = {s: float(r["score"]) for s, r in rows.items()}
    assert scores == {k: float(points) for k, (points, _) in synthetic.KINDS.items()}


@pytest.mark.grading
@pytest.mark.slow
@pytest.mark.parametrize(
    ("student", "status", "text"),
    [
        ("invalid_json", "error", "message:the file is not valid JSON (line 1, column 13: expecting value); graded 0"),
        ("renamed", "error", "message:found 'my_work.ipynb' but expected tiny.ipynb"),
        ("missing", "missing", "message:no notebook submitted"),
        ("infinite_loop", "graded", "mistakes:test-add: add: it ran longer than the time limit (5 s)"),
        ("memory_hog", "graded", "mistakes:test-add: add raised MemoryError"),
        ("edited_tests", "graded", "mistakes:test-add: add looks wrong: your add subtracts instead of adding"),
        ("reordered_tests", "graded", "mistakes:"),
        ("deleted_tests", "graded", "mistakes:"),
    ],
)
def test_each_bad_submission_gets_a_clear_message(bad_class, student, status, text):
    _, res, rows = bad_class
    column, expected = text.split(":", 1)
    assert rows[student]["status"] == status
    assert rows[student][column].startswith(expected) if expected else rows[student][column] == ""
    if column == "message":
        assert "graded 0" in rows[student]["message"] and "not graded:" in res.stdout
        page = bad_class[0] / "feedback" / student / A / f"{A}.html"  # nbgrader writes none: the grader's says why
        assert status == "missing" or "your notebook could not be graded" in page.read_text(encoding="utf-8")


@pytest.mark.grading
@pytest.mark.slow
def test_huge_output_is_truncated_in_the_notebook_and_feedback(bad_class):
    course, _, _ = bad_class
    autograded = course / "autograded" / "huge_output" / A / f"{A}.ipynb"
    feedback = course / "feedback" / "huge_output" / A / f"{A}.html"
    assert autograded.stat().st_size < 300_000 and feedback.stat().st_size < 1_000_000
    nb = nbformat.read(autograded, as_version=4)
    assert "output truncated by the grader" in nb.cells[1].outputs[0]["text"]


@pytest.mark.grading
@pytest.mark.slow
def test_gradebook_is_intact_and_regrading_adds_no_rows(bad_class):
    course, _, _ = bad_class
    with sqlite3.connect(course / "gradebook.db") as db:
        assert db.execute("pragma integrity_check").fetchone()[0] == "ok"
        # every submission nbgrader saw has one row; the empty folder is not a submission
        assert db.execute("select count(*) from submitted_assignment").fetchone()[0] == len(synthetic.KINDS) - 1
    before = (course / "course-grades.csv").read_bytes()
    grade(course, "--student", "invalid_json", "--student", "correct", "--jobs", "2", "--timeout", str(TIMEOUT_S))
    assert (course / "course-grades.csv").read_bytes() == before
    with sqlite3.connect(course / "gradebook.db") as db:
        assert db.execute("select count(*) from submitted_assignment").fetchone()[0] == len(synthetic.KINDS) - 1


# --- the real chapter 2 exercise: answers that earn no credit ------------------------------------------
CH2 = "ch2-sdpa"
IMPORTS_SOLUTIONS = "from solutions import softmax\n"
CALLS_TORCH_SDPA = '''\
def scaled_dot_product_attention(Q, K, V, mask=None):
    import torch
    import torch.nn.functional as F

    q, k, v = (torch.as_tensor(a) for a in (Q, K, V))
    m = None if mask is None else torch.as_tensor(mask)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=m)
    scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5
    if m is not None:
        scores = scores.masked_fill(~m, float("-inf"))
    weights = torch.softmax(scores, dim=-1).nan_to_num(0.0)
    return out.numpy(), weights.numpy()
'''


@pytest.mark.grading
@pytest.mark.slow
def test_ch2_gives_no_credit_for_solutions_or_torch_sdpa(tmp_path):
    course = tmp_path / "course"
    for part in ("source", "release"):
        shutil.copytree(COURSE_DIR / part / CH2, course / part / CH2)
    shutil.copy(COURSE_DIR / "nbgrader_config.py", course / "nbgrader_config.py")
    shutil.copytree(COURSE_DIR / "exercises" / CH2, course / "exercises" / CH2)
    submissions = {
        "honest": {},
        "copier": {"answer-softmax": IMPORTS_SOLUTIONS},
        "torchy": {"answer-scaled_dot_product_attention": CALLS_TORCH_SDPA},
    }
    for student, answers in submissions.items():
        path = course / "submitted" / student / CH2 / f"{CH2}.ipynb"
        path.parent.mkdir(parents=True)
        nbformat.write(synthetic.filled_release(course, CH2, answers), path)
    res = grade(course, CH2, "--jobs", "2")
    rows = read_csv(course / "course-grades.csv")
    full = float(rows["honest"]["max_score"])
    assert float(rows["honest"]["score"]) == full and rows["honest"]["mistakes"] == ""
    # `solutions` does not exist in the sandbox: the import fails and softmax is never defined
    assert "test-softmax: softmax is not defined" in rows["copier"]["mistakes"]
    assert float(rows["copier"]["score"]) == full - 2
    torchy = rows["torchy"]["mistakes"]
    assert "test-scaled_dot_product_attention: No credit" in torchy
    assert "torch.nn.functional.scaled_dot_product_attention" in torchy
    assert float(rows["torchy"]["score"]) == full - 4  # only that function's 4 points are lost
    assert "No credit" in res.stdout  # the summary lists it among the common mistakes
