"""Class-wide grading speed: serial stock nbgrader vs ``python -m grader grade`` (parallel), same run.

    python benchmarks/grading.py                      # 32 submissions of the tiny synthetic assignment
    python benchmarks/grading.py -n 24 --assignment ch2-sdpa   # the real chapter 2 exercise
    python benchmarks/grading.py --jobs 1 2 4         # the CLI with several worker counts
    python benchmarks/grading.py --repeat 3           # best of 3 interleaved runs (shared machines)

N synthetic submissions (a fixed mix of correct, wrong, unsolved and broken ones: invalid JSON, an
infinite loop, a memory hog, 100 MB of output, deleted test cells) are graded in two copies of a fresh
course: once by stock ``nbgrader autograde`` followed by ``nbgrader generate_feedback`` (serial), once
by ``python -m grader grade`` (autograde + feedback + CSV, ``--jobs`` workers). Prints notebooks per
minute for each, their ratio, and whether every grade cell's score is identical.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grader import synthetic  # noqa: E402
from grader.coursedir import COURSE_DIR  # noqa: E402

PY = sys.executable
ENV = {**os.environ, "PATH": str(Path(PY).parent) + os.pathsep + os.environ.get("PATH", "")}
#: The mix, repeated to N submissions: mostly ordinary work, one in four broken.
TINY_MIX = ["correct", "wrong", "correct", "half", "unsolved", "correct", "wrong", "correct",
            "invalid_json", "correct", "wrong", "infinite_loop", "correct", "memory_hog", "huge_output",
            "deleted_tests"]
CH2_WRONG_SOFTMAX = (  # a classic: softmax over the wrong axis
    "import numpy as np\n\n"
    "def softmax(x, axis=-1):\n"
    "    e = np.exp(x - x.max(axis=0, keepdims=True))\n"
    "    return e / e.sum(axis=0, keepdims=True)\n"
)
CH2_MIX = ["correct", "wrong", "correct", "unsolved", "correct", "invalid_json", "wrong", "infinite_loop"]


def make_tiny(course: Path, n: int, timeout: int) -> tuple[str, list[str]]:
    synthetic.make_course(course, timeout=timeout)
    kinds = [TINY_MIX[i % len(TINY_MIX)] for i in range(n)]
    for i, kind in enumerate(kinds):
        synthetic.write_submission(course, f"s{i:03d}-{kind}", kind)
    return synthetic.ASSIGNMENT, kinds


def make_real(course: Path, assignment: str, n: int, timeout: int) -> tuple[str, list[str]]:
    for part in ("source", "release"):
        shutil.copytree(COURSE_DIR / part / assignment, course / part / assignment)
    config = (COURSE_DIR / "nbgrader_config.py").read_text() + f"\nc.Execute.timeout = {timeout}\n"
    (course / "nbgrader_config.py").write_text(config)
    release = nbformat.read(course / "release" / assignment / f"{assignment}.ipynb", as_version=4)
    first_answer = next(c.metadata["nbgrader"]["grade_id"] for c in release.cells
                        if c.metadata.get("nbgrader", {}).get("solution"))
    kinds = [CH2_MIX[i % len(CH2_MIX)] for i in range(n)]
    for i, kind in enumerate(kinds):
        path = course / "submitted" / f"s{i:03d}-{kind}" / assignment / f"{assignment}.ipynb"
        path.parent.mkdir(parents=True)
        if kind == "invalid_json":
            path.write_text("{ not json")
            continue
        answers = {"correct": {}, "wrong": {"answer-softmax": CH2_WRONG_SOFTMAX},
                   "infinite_loop": {first_answer: "while True:\n    pass\n"}}.get(kind)
        nb = release if kind == "unsolved" else synthetic.filled_release(course, assignment, answers)
        nbformat.write(nb, path)
    # record the assignment in the gradebook (what `nbgrader generate_assignment` does)
    subprocess.run(["nbgrader", "generate_assignment", assignment, "--force"], cwd=course, env=ENV,
                   check=True, capture_output=True)
    return assignment, kinds


def timed(cmd: list[str], cwd: Path) -> float:
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if res.returncode != 0 and "autograde" not in cmd:  # stock autograde exits 1 when one submission fails
        sys.exit(f"{' '.join(cmd)} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    return elapsed


def grades(course: Path, assignment: str) -> dict[tuple[str, str], float]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        return {(s.student.id, g.name): float(g.score) for s in gb.assignment_submissions(assignment)
                for nb in s.notebooks for g in nb.grades}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-n", type=int, default=32, help="number of submissions (default 32)")
    p.add_argument("--assignment", default=synthetic.ASSIGNMENT,
                   help="tiny (synthetic, default) or a real id such as ch2-sdpa")
    p.add_argument("--jobs", type=int, nargs="+", default=[os.cpu_count() or 1],
                   help="worker counts for the CLI (default: all cores)")
    p.add_argument("--repeat", type=int, default=1, help="runs of each method, interleaved; best counts")
    p.add_argument("--timeout", type=int, default=5, help="cell timeout in seconds for both (default 5)")
    args = p.parse_args()

    with tempfile.TemporaryDirectory(prefix="grading-bench-") as tmp:
        base = Path(tmp) / "base"
        if args.assignment == synthetic.ASSIGNMENT:
            assignment, kinds = make_tiny(base, args.n, args.timeout)
        else:
            assignment, kinds = make_real(base, args.assignment, args.n, args.timeout)
        mix = ", ".join(f"{kinds.count(k)} {k}" for k in dict.fromkeys(kinds))
        print(f"{args.n} submissions of {assignment} ({mix}); cell timeout {args.timeout} s; "
              f"{os.cpu_count()} cores")

        # Each method runs `--repeat` times, interleaved, each time on a fresh copy; the best time counts
        # (on a shared machine, the run least disturbed by other work is the closest to the truth).
        t_auto, t_fb, t_cli = [], [], {jobs: [] for jobs in args.jobs}
        cli_grades = {}
        for r in range(args.repeat):
            stock = Path(tmp) / f"stock-{r}"
            shutil.copytree(base, stock)
            t_auto.append(timed(["nbgrader", "autograde", assignment], stock))
            t_fb.append(timed(["nbgrader", "generate_feedback", assignment], stock))
            reference = grades(stock, assignment)
            shutil.rmtree(stock)
            for jobs in args.jobs:
                course = Path(tmp) / f"cli-{jobs}-{r}"
                shutil.copytree(base, course)
                t_cli[jobs].append(timed([PY, "-m", "grader", "--course-dir", str(course), "grade", assignment,
                                          "--jobs", str(jobs)], course))
                same = grades(course, assignment) == reference
                cli_grades[jobs] = cli_grades.get(jobs, True) and same
                shutil.rmtree(course)

        serial = min(a + f for a, f in zip(t_auto, t_fb, strict=True))
        rows = [("stock nbgrader autograde (serial)", min(t_auto), None),
                ("stock autograde + generate_feedback (serial)", serial, None)]
        for jobs in args.jobs:
            rows.append((f"python -m grader grade --jobs {jobs} (+ feedback, CSV)", min(t_cli[jobs]), cli_grades[jobs]))

        n = args.n
        width = max(len(r[0]) for r in rows)
        print(f"\n{'method (best of ' + str(args.repeat) + ')':<{width}}  {'seconds':>8}  {'nb/min':>7}  "
              f"{'speed-up':>8}  identical grades")
        for name, t, g in rows:
            same = "-" if g is None else ("yes" if g else "NO")
            print(f"{name:<{width}}  {t:8.1f}  {60 * n / t:7.1f}  {serial / t:7.2f}x  {same}")
        print(f"(speed-up relative to serial autograde + feedback; autograde alone: {60 * n / min(t_auto):.1f} nb/min)")
        if any(g is False for _, _, g in rows):
            sys.exit("grades differ from serial stock nbgrader")


if __name__ == "__main__":
    main()
