"""``python -m grader grade --notebook-timeout S``: one wall-clock budget for a notebook's cells, replays and checks.

A solved tiny notebook followed by ten cells that each sleep just under the 2 s cell timeout would take
20 s; with ``--notebook-timeout 8`` its cells stop when their share is spent, the hidden checks still run
in theirs (full marks), the grades CSV says so, and it ends within the budget. Its honest neighbour is
unaffected. (The hostile class of ``test_hostile.py`` proves the same with stock nbgrader and the config.)
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from grader import synthetic

pytestmark = [pytest.mark.grading, pytest.mark.slow]
PY = sys.executable
ENV = {**os.environ, "PATH": str(Path(PY).parent) + os.pathsep + os.environ.get("PATH", "")}
BUDGET_S = 8
MARGIN_S = 8  # the last interrupt and the kernel's end, on a busy machine


def test_the_cli_holds_a_notebook_to_its_budget(tmp_path: Path) -> None:
    course = synthetic.make_course(tmp_path / "course")
    synthetic.write_submission(course, "honest", "correct")
    slow = synthetic.submission_notebook(course, "correct")
    slow.cells += [nbformat.v4.new_code_cell("import time\ntime.sleep(1.8)\n") for _ in range(10)]
    path = course / "submitted" / "slow" / synthetic.ASSIGNMENT / f"{synthetic.ASSIGNMENT}.ipynb"
    path.parent.mkdir(parents=True)
    nbformat.write(slow, path)
    timing = tmp_path / "timing.jsonl"
    res = subprocess.run([PY, "-m", "grader", "--course-dir", str(course), "grade", "--jobs", "2", "--timeout", "2",
                          "--notebook-timeout", str(BUDGET_S)], capture_output=True, text=True,
                         env={**ENV, "GRADER_TIMING": str(timing)}, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    with open(course / "course-grades.csv") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    assert rows["honest"]["score"] == "3" and rows["honest"]["message"] == ""
    assert rows["slow"]["score"] == "3", rows["slow"]  # checked with what was defined, in the checks' share
    assert "time budget (8 s" in rows["slow"]["message"] and "not run" in rows["slow"]["message"]
    totals = {r["student"]: r["total"] for r in map(json.loads, timing.read_text().splitlines())}
    assert totals["slow"] < BUDGET_S + MARGIN_S, totals
    nb = nbformat.read(course / "autograded" / "slow" / synthetic.ASSIGNMENT / f"{synthetic.ASSIGNMENT}.ipynb", 4)
    assert "time budget" in nb.cells[0].source  # the note the feedback page shows first
    page = (course / "feedback" / "slow" / synthetic.ASSIGNMENT / f"{synthetic.ASSIGNMENT}.html").read_text()
    assert "Not run: the notebook&#39;s time budget" in page or "Not run: the notebook's time budget" in page
