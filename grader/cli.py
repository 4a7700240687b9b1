"""``python -m grader``: what stock nbgrader lacks, on top of the course in ``grader/``.

  python -m grader import SUBMISSIONS.zip --assignment ch2-sdpa   # LMS zip or folder -> submitted/
  python -m grader grade [ch2-sdpa ...] [--jobs N]                # parallel autograde + feedback + CSV
  python -m grader merge SHARD_DIR... [--into grader]             # merge shards graded elsewhere
  python -m grader report                                         # CSV + summary from the gradebook

Grading uses nbgrader itself with the course's ``nbgrader_config.py`` (see grader/parallel.py), so
grades are the ones serial ``nbgrader autograde`` gives.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import warnings
from pathlib import Path

from grader.coursedir import COURSE_DIR, assignment_ids, db_url, ensure_tools_on_path, open_api
from grader.parallel import INVALID_JSON

#: Folder (in the course directory) with nbgrader's log of each submission that failed to grade.
LOG_DIR = "grading-logs"


def is_notebook(path: Path) -> bool:
    """Whether ``path`` parses as a notebook's JSON (cheap: no schema validation)."""
    try:
        return isinstance(json.loads(path.read_bytes()).get("cells"), list)
    except Exception:
        return False


def find_tasks(course: Path, assignments: list[str], students: list[str] | None):
    """``(tasks, messages)``: the submissions to grade, and those that cannot be, with reasons."""
    tasks, messages = [], {}
    submitted = course / "submitted"
    for student_dir in sorted(submitted.iterdir()) if submitted.exists() else []:
        if not student_dir.is_dir() or (students and student_dir.name not in students):
            continue
        for assignment in assignments:
            folder = student_dir / assignment
            if not folder.is_dir():
                continue
            key = (assignment, student_dir.name)
            notebooks = sorted(p.name for p in folder.glob("*.ipynb"))
            if not notebooks:
                messages[key] = ("missing", "no notebook submitted; graded 0")
                continue
            if f"{assignment}.ipynb" not in notebooks:
                messages[key] = (
                    "error",
                    f"found {', '.join(notebooks)} but expected {assignment}.ipynb; graded 0 "
                    "(rename it, or import with `python -m grader import`)",
                )
            elif not is_notebook(folder / f"{assignment}.ipynb"):
                messages[key] = ("error", INVALID_JSON)
            tasks.append(key)
    return tasks, messages


def ensure_generated(course: Path, assignment: str) -> None:
    """Record the assignment's source in the gradebook if it is not there yet (``release/`` untouched)."""
    from nbgrader.api import Gradebook, MissingEntry

    ensure_tools_on_path()
    if (course / "gradebook.db").exists():
        with Gradebook(db_url(course)) as gb:
            try:
                if gb.find_assignment(assignment).notebooks:
                    return
            except MissingEntry:
                pass
    from traitlets.config import Config

    with tempfile.TemporaryDirectory() as tmp:
        cfg = Config()
        cfg.CourseDirectory.release_directory = tmp  # absolute: generate_assignment writes there
        result = open_api(course, cfg).generate_assignment(assignment, force=True, create=True)
    if not result["success"]:
        raise SystemExit(f"could not generate {assignment}:\n{result.get('log', '')}")


def cmd_import(args) -> int:
    from grader.collect import import_submissions

    report = import_submissions(Path(args.source), Path(args.course_dir), args.assignment)
    for note in report.notes:
        print("note:", note)
    print(f"imported {len(report.imported)} submissions of {args.assignment} into {args.course_dir}/submitted/")
    return 0


def _finish(into: Path, messages: dict, csv_path: Path | None, assignments: set[str] | None) -> None:
    """Write the CSV (every submission of the gradebook at ``into``) and print the summary.

    Reasons for submissions that could not be graded come from the submitted files themselves (so the
    CSV is the same however the grading was split), then from this run's ``messages``."""
    from grader.report import read_rows, summary, write_csv

    _, found = find_tasks(into, assignment_ids(into), None)
    rows = read_rows(into, {**messages, **found})
    csv_path = csv_path or into / "grades.csv"
    write_csv(rows, csv_path)
    shown = [r for r in rows if assignments is None or r.assignment in assignments]
    print(summary(shown))
    print(f"grades: {csv_path}")


def cmd_grade(args) -> int:
    import tqdm as tqdm_module
    from tqdm import tqdm

    from grader.parallel import grade_parallel, make_shard, snapshot_gradebook

    course = Path(args.course_dir).resolve()
    known = assignment_ids(course)
    assignments = args.assignments or known
    unknown = sorted(set(assignments) - set(known))
    if unknown:
        raise SystemExit(f"no source for {', '.join(unknown)} in {course}/source (known: {', '.join(known)})")
    if args.no_sandbox:
        print("warning: grading WITHOUT a sandbox (--no-sandbox): every submission runs as you, with your "
              "files; the grades CSV records it", file=sys.stderr)
    else:
        from grader.sandbox.bwrap import SandboxUnavailable, check_available

        try:
            check_available()
        except SandboxUnavailable as err:
            raise SystemExit(f"error: {err}") from None
    tasks, messages = find_tasks(course, assignments, args.student)
    if args.shard:
        index, count = (int(x) for x in args.shard.split("/"))
        if index >= count:
            raise SystemExit(f"--shard {args.shard}: I must be below N")
        tasks = tasks[index::count]
        keep = set(tasks)
        messages = {k: v for k, v in messages.items() if k in keep}
    into = course
    if args.out:  # a shard directory: the course itself is only read (it may be a read-only volume)
        into = Path(args.out).resolve()
        from grader.engine.secret import NoSecret

        try:
            make_shard(course, into, None, create_secret=False)
        except NoSecret as err:
            raise SystemExit(f"error: {err}") from None
        if (course / "gradebook.db").exists():
            snapshot_gradebook(course, into / "gradebook.db")
    for assignment in sorted({a for a, _ in tasks}):
        ensure_generated(into, assignment)
    if tasks:
        tqdm_module.tqdm.monitor_interval = 0  # no monitor thread in the process that forks workers
        with tqdm(total=len(tasks), unit="nb", desc="autograding", file=sys.stderr) as bar:
            outcomes = grade_parallel(
                course, tasks, jobs=args.jobs, timeout=args.timeout, memory_mb=args.memory_mb,
                feedback=not args.no_feedback, into=into, on_done=lambda _o: bar.update(1),
                sandbox=False if args.no_sandbox else None, zygote=not args.no_zygote,
            )
        logs = into / LOG_DIR
        for o in outcomes:
            log = logs / f"{o.assignment}-{o.student}.log"
            if not o.graded or o.message:
                messages.setdefault((o.assignment, o.student), ("error" if not o.graded else "graded", o.message))
                logs.mkdir(exist_ok=True)
                log.write_text(o.log)
            elif log.exists():
                log.unlink()
        if logs.exists() and any(logs.iterdir()):
            print(f"nbgrader's logs of the submissions that failed: {logs}/", file=sys.stderr)
    _finish(into, messages, Path(args.csv) if args.csv else None, set(assignments))
    return 0


def cmd_secret(args) -> int:
    from grader.engine.secret import SECRET_FILE, course_secret

    course = Path(args.course_dir).resolve()
    existed = (course / SECRET_FILE).exists()
    course_secret(course)
    print(f"{'grading secret: ' if existed else 'created the grading secret '}{course / SECRET_FILE} "
          "(keep it private; copy it with the course to every machine that grades)")
    return 0


def cmd_merge(args) -> int:
    from grader.merge import graded_in, merge_shards

    into = Path(args.into).resolve()
    shards = [Path(s) for s in args.shards]
    for assignment in sorted({a for shard in shards for a, _ in graded_in(shard)}):
        ensure_generated(into, assignment)  # a fresh checkout has no gradebook yet
    merged = merge_shards(shards, into)
    print(f"merged {len(merged)} submissions into {into / 'gradebook.db'}")
    _finish(into, {}, Path(args.csv) if args.csv else None, None)
    return 0


def cmd_report(args) -> int:
    _finish(Path(args.course_dir).resolve(), {}, Path(args.csv) if args.csv else None, None)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m grader", description=__doc__.split("\n\n")[0])
    p.add_argument("--course-dir", default=str(COURSE_DIR), help="nbgrader course directory (default: grader/)")
    sub = p.add_subparsers(dest="command", required=True)

    imp = sub.add_parser("import", help="import an LMS zip or a folder of notebooks into submitted/")
    imp.add_argument("source", help="zip file (Canvas, Moodle, plain) or folder of <student>.ipynb")
    imp.add_argument("--assignment", "-a", required=True, help="assignment id, e.g. ch2-sdpa")
    imp.set_defaults(func=cmd_import)

    grade = sub.add_parser("grade", help="autograde in parallel, write feedback, grades CSV and a summary")
    grade.add_argument("assignments", nargs="*", help="assignment ids (default: all in source/)")
    grade.add_argument("--student", action="append", help="grade only this student (repeatable)")
    grade.add_argument("--jobs", "-j", type=int, default=None, help="worker processes (default: all cores)")
    grade.add_argument("--timeout", type=int, default=None, help="seconds per cell (default: the config's, 30)")
    grade.add_argument("--memory-mb", type=int, default=None, help="kernel memory limit (default: the config's)")
    grade.add_argument("--no-feedback", action="store_true", help="skip generate_feedback")
    grade.add_argument("--no-zygote", action="store_true",
                       help="start every kernel from scratch instead of forking it from a pre-imported zygote")
    grade.add_argument("--no-sandbox", action="store_true",
                       help="grade without the bubblewrap sandbox (not recommended; recorded in the CSV)")
    grade.add_argument("--csv", help="grades CSV path (default: <course>/grades.csv)")
    grade.add_argument("--shard", help="I/N: grade only every N-th submission starting at I (0-based)")
    grade.add_argument("--out", help="write results to this new shard directory instead of the course")
    grade.set_defaults(func=cmd_grade)

    secret = sub.add_parser("secret", help="create the course's grading secret (hidden inputs) if it is missing")
    secret.set_defaults(func=cmd_secret)

    merge = sub.add_parser("merge", help="merge shard directories into the course gradebook")
    merge.add_argument("shards", nargs="+", help="shard directories (from `grade --out`)")
    merge.add_argument("--into", default=str(COURSE_DIR), help="course directory to merge into (default: grader/)")
    merge.add_argument("--csv", help="grades CSV path (default: <into>/grades.csv)")
    merge.set_defaults(func=cmd_merge)

    report = sub.add_parser("report", help="grades CSV and summary from the gradebook")
    report.add_argument("--csv", help="grades CSV path (default: <course>/grades.csv)")
    report.set_defaults(func=cmd_report)
    return p


def main(argv: list[str] | None = None) -> int:
    warnings.filterwarnings("ignore", module="nbgrader")
    warnings.filterwarnings("ignore", message=".*not in session.*")
    args = build_parser().parse_args(argv)
    course = Path(args.into if args.command == "merge" else args.course_dir)
    if args.command != "import" and not (course / "nbgrader_config.py").exists():
        raise SystemExit(f"{course} is not an nbgrader course directory (no nbgrader_config.py)")
    if getattr(args, "shard", None) and not re.fullmatch(r"\d+/[1-9]\d*", args.shard):
        raise SystemExit(f"--shard wants I/N with 0 <= I < N, e.g. 0/4 (got {args.shard!r})")
    return args.func(args)
