"""Class-wide grading speed: serial stock nbgrader vs ``python -m grader grade``, in one run.

    python benchmarks/grading.py                                  # 32 submissions of ch2-sdpa
    python benchmarks/grading.py --assignment ch4-multihead -n 32
    python benchmarks/grading.py --assignment tiny                # the synthetic two-function course
    python benchmarks/grading.py --jobs 1 2 4 --repeat 2          # several worker counts, best of 2

N submissions (a fixed mix of correct ones, known mistakes, unsolved releases, invalid JSON and, unless
``--mix ordinary``, one infinite loop in eight) are graded in fresh copies of one course:

- **stock**: ``nbgrader autograde`` then ``nbgrader generate_feedback``, serially, sandbox on (the
  course's ``nbgrader_config.py``: every kernel in bubblewrap, verdicts from outside the kernel);
- **stock, no sandbox**: the same with ``c.SandboxedKernelManager.sandbox = False``, to show what the
  sandbox costs per notebook;
- **CLI**: ``python -m grader grade`` (autograde + feedback + CSV) with ``--jobs`` workers, sandbox on.

It prints notebooks per minute, the speed-up over stock, whether every grade cell is identical to
stock's, and the mean time per notebook of each phase (from ``grader/execute.py``'s ``$GRADER_TIMING``
log): kernel start (sandbox + interpreter), the setup cell (imports), the other cells, the hidden
checks and diagnosis, kernel shutdown, then what nbgrader does around them (bookkeeping: reading,
sanitising, the gradebook, writing) and the feedback pages.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grader import generate, synthetic  # noqa: E402
from grader.coursedir import COURSE_DIR  # noqa: E402
from grader.engine import registry  # noqa: E402

PY = sys.executable
ENV = {**os.environ, "PATH": str(Path(PY).parent) + os.pathsep + os.environ.get("PATH", "")}
TINY_MIX = ["correct", "wrong", "correct", "half", "unsolved", "correct", "wrong", "correct",
            "invalid_json", "correct", "wrong", "infinite_loop", "correct", "memory_hog", "huge_output",
            "deleted_tests"]
#: The real chapters' mixes: mostly ordinary work (right, one known mistake, untouched), a few broken;
#: "loops" has one infinite loop in eight (each costs a cell timeout, the same for every grader).
MIXES = {
    "loops": ["correct", "mistake", "correct", "unsolved", "correct", "invalid_json", "mistake", "infinite_loop"],
    "ordinary": ["correct", "mistake", "correct", "unsolved", "correct", "invalid_json", "mistake", "correct"],
}
PHASES = ["kernel start", "setup cell", "other cells", "hidden checks", "kernel shutdown"]


def make_tiny(course: Path, n: int, timeout: int) -> tuple[str, list[str]]:
    synthetic.make_course(course, timeout=timeout)
    kinds = [TINY_MIX[i % len(TINY_MIX)] for i in range(n)]
    for i, kind in enumerate(kinds):
        synthetic.write_submission(course, f"s{i:03d}-{kind}", kind)
    return synthetic.ASSIGNMENT, kinds


def make_real(course: Path, assignment: str, n: int, timeout: int, mix: str = "loops") -> tuple[str, list[str]]:
    exercise = registry.exercise(assignment)
    for part in ("source", "release"):
        shutil.copytree(COURSE_DIR / part / assignment, course / part / assignment)
    shutil.copytree(exercise.folder, course / "exercises" / assignment)
    config = (COURSE_DIR / "nbgrader_config.py").read_text() + f"\nc.Execute.timeout = {timeout}\n"
    (course / "nbgrader_config.py").write_text(config)
    release = nbformat.read(course / "release" / assignment / f"{assignment}.ipynb", as_version=4)
    first_answer = next(c.metadata["nbgrader"]["grade_id"] for c in release.cells
                        if c.metadata.get("nbgrader", {}).get("solution"))
    mistakes = exercise.mistakes
    kinds = [MIXES[mix][i % len(MIXES[mix])] for i in range(n)]
    for i, kind in enumerate(kinds):
        path = course / "submitted" / f"s{i:03d}-{kind}" / assignment / f"{assignment}.ipynb"
        path.parent.mkdir(parents=True)
        if kind == "invalid_json":
            path.write_text("{ not json")
            continue
        if kind == "unsolved":
            nb = release
        elif kind == "mistake":
            nb = generate.filled_release(assignment, [mistakes[i % len(mistakes)]])
        else:
            answers = {first_answer: "while True:\n    pass\n"} if kind == "infinite_loop" else {}
            nb = synthetic.filled_release(course, assignment, answers)
        nbformat.write(nb, path)
    subprocess.run([PY, "-m", "nbgrader", "generate_assignment", assignment, "--force"], cwd=course, env=ENV,
                   check=True, capture_output=True)
    return assignment, kinds


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if res.returncode != 0 and "autograde" not in cmd:  # stock autograde exits 1 when one submission fails
        sys.exit(f"{' '.join(cmd)} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    return elapsed


def grades(course: Path, assignment: str) -> dict[tuple[str, str], float]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        return {(s.student.id, g.name): float(g.score) for s in gb.assignment_submissions(assignment)
                for nb in s.notebooks for g in nb.grades}


def phases(log: Path) -> dict[str, float]:
    """Mean seconds per notebook of each phase, from a $GRADER_TIMING log."""
    records = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    out = {p: statistics.fmean(r.get(p, 0.0) for r in records) if records else 0.0 for p in PHASES}
    out["executed total"] = statistics.fmean(r["total"] for r in records) if records else 0.0
    out["_n"] = len(records)
    out["_sum"] = sum(r["total"] for r in records)
    return out


def run_stock(base: Path, work: Path, assignment: str, sandbox: bool) -> dict:
    course = work / ("stock" if sandbox else "stock-nosandbox")
    shutil.copytree(base, course)
    if not sandbox:
        with open(course / "nbgrader_config.py", "a") as f:
            f.write("\nc.SandboxedKernelManager.sandbox = False\n")
    log = course / "timing.jsonl"
    env = {**ENV, "GRADER_TIMING": str(log)}
    auto = timed([PY, "-m", "nbgrader", "autograde", assignment], course, env)
    feedback = timed([PY, "-m", "nbgrader", "generate_feedback", assignment], course, env)
    result = {"autograde": auto, "feedback": feedback, "total": auto + feedback, "phases": phases(log),
              "grades": grades(course, assignment)}
    shutil.rmtree(course)
    return result


def run_cli(base: Path, work: Path, assignment: str, jobs: int) -> dict:
    course = work / f"cli-{jobs}"
    shutil.copytree(base, course)
    log = course / "timing.jsonl"
    env = {**ENV, "GRADER_TIMING": str(log)}
    total = timed([PY, "-m", "grader", "--course-dir", str(course), "grade", assignment, "--jobs", str(jobs)],
                  course, env)
    result = {"total": total, "phases": phases(log), "grades": grades(course, assignment)}
    shutil.rmtree(course)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-n", type=int, default=32, help="number of submissions (default 32)")
    p.add_argument("--assignment", default="ch2-sdpa", help="a real id such as ch2-sdpa (default), or tiny")
    p.add_argument("--jobs", type=int, nargs="+", default=[os.cpu_count() or 1],
                   help="worker counts for the CLI (default: all cores)")
    p.add_argument("--repeat", type=int, default=1, help="runs of each method, interleaved; best counts")
    p.add_argument("--timeout", type=int, default=5, help="cell timeout in seconds for all (default 5)")
    p.add_argument("--no-unsandboxed", action="store_true", help="skip the stock run without the sandbox")
    p.add_argument("--mix", choices=list(MIXES), default="loops",
                   help="the real chapters' class: 'loops' (default, one infinite loop in eight) or 'ordinary' (none)")
    args = p.parse_args()

    with tempfile.TemporaryDirectory(prefix="grading-bench-") as tmp:
        work = Path(tmp)
        base = work / "base"
        if args.assignment == synthetic.ASSIGNMENT:
            assignment, kinds = make_tiny(base, args.n, args.timeout)
        else:
            assignment, kinds = make_real(base, args.assignment, args.n, args.timeout, args.mix)
        subprocess.run([PY, "-m", "grader", "--course-dir", str(base), "secret"], env=ENV, check=True,
                       capture_output=True)  # one secret for every copy: the same hidden inputs
        mix = ", ".join(f"{kinds.count(k)} {k}" for k in dict.fromkeys(kinds))
        load = os.getloadavg()[0]
        print(f"{args.n} submissions of {assignment} ({mix}); cell timeout {args.timeout} s; "
              f"{os.cpu_count()} cores; load average {load:.1f} at the start")

        runs: dict[str, list[dict]] = {}
        for _ in range(args.repeat):  # interleaved, a fresh copy each time; the best run of each counts
            runs.setdefault("stock", []).append(run_stock(base, work, assignment, sandbox=True))
            if not args.no_unsandboxed:
                runs.setdefault("stock-nosandbox", []).append(run_stock(base, work, assignment, sandbox=False))
            for jobs in args.jobs:
                runs.setdefault(f"cli-{jobs}", []).append(run_cli(base, work, assignment, jobs))
        best = {name: min(rs, key=lambda r: r["total"]) for name, rs in runs.items()}
        reference = best["stock"]["grades"]
        serial = best["stock"]["total"]
        n = args.n

        labels = {"stock": "stock autograde + generate_feedback (serial, sandbox)",
                  "stock-nosandbox": "stock autograde + generate_feedback (serial, no sandbox)"}
        labels.update({f"cli-{j}": f"python -m grader grade --jobs {j} (sandbox)" for j in args.jobs})
        width = max(len(v) for v in labels.values())
        print(f"\n{'method (best of ' + str(args.repeat) + ')':<{width}}  {'seconds':>8}  {'nb/min':>7}  "
              f"{'vs stock':>8}  identical grades")
        for name, r in best.items():
            same = "-" if name == "stock" else ("yes" if r["grades"] == reference else "NO")
            print(f"{labels[name]:<{width}}  {r['total']:8.1f}  {60 * n / r['total']:7.1f}  "
                  f"{serial / r['total']:7.2f}x  {same}")
        if "stock-nosandbox" in best:
            cost = (best["stock"]["total"] - best["stock-nosandbox"]["total"]) / n
            print(f"sandbox cost per notebook (serial stock, with minus without): {cost:+.3f} s")

        print("\nmean seconds per notebook, by phase (from the grader's timing log)")
        cols = list(best)
        print(f"{'phase':<28}" + "".join(f"{c:>17}" for c in cols))
        for ph in [*PHASES, "executed total"]:
            print(f"{ph:<28}" + "".join(f"{best[c]['phases'][ph]:17.3f}" for c in cols))
        row = []
        for c in cols:
            r = best[c]
            if c.startswith("stock"):
                row.append((r["autograde"] - r["phases"]["_sum"]) / n)
            else:
                row.append(float("nan"))
        print(f"{'nbgrader bookkeeping':<28}" + "".join(f"{v:17.3f}" for v in row))
        print(f"{'feedback page':<28}" + "".join(
            f"{(best[c]['feedback'] / n if 'feedback' in best[c] else float('nan')):17.3f}" for c in cols))
        print("(bookkeeping = autograde's wall time minus the executed notebooks', per notebook, nbgrader's "
              "start-up included; not separable in the parallel CLI)")
        work = ("setup cell", "other cells", "hidden checks")
        over = []
        for c in cols:  # core-seconds per notebook that are not the notebook's cells and its hidden checks
            cores = 1 if c.startswith("stock") else int(c.split("-")[1])
            over.append(cores * best[c]["total"] / n - sum(best[c]["phases"][w] for w in work))
        print(f"{'overhead (core-s/notebook)':<28}" + "".join(f"{v:17.3f}" for v in over))
        print("(overhead = workers x wall time / notebooks - setup, other cells and hidden checks: kernel start and "
              "shutdown, nbgrader, feedback, start-up and merge)")
        if any(r["grades"] != reference for r in best.values()):
            sys.exit("grades differ from serial stock nbgrader")


if __name__ == "__main__":
    main()
