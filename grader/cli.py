"""``python -m grader``: what stock nbgrader lacks, on top of the course in ``grader/``.

  python -m grader import SUBMISSIONS.zip --assignment ch2-sdpa [--roster R.csv]  # LMS download -> submitted/
  python -m grader grade [ch2-sdpa ...] [--jobs N]                # parallel autograde + feedback + CSV
  python -m grader merge SHARD_DIR... [--into grader]             # merge shards graded elsewhere
  python -m grader report [--html]                                # CSV + summary (+ class report pages)
  python -m grader return ch2-sdpa [--lms canvas|moodle]          # LMS grade file + feedback archive
  python -m grader roster GRADEBOOK.csv                           # the LMS's class list, before any download
  python -m grader extend|excuse|override|choose ch2-sdpa ID ...  # decisions, kept in decisions.toml
  python -m grader similarity ch2-sdpa                            # pairs of similar solutions, HTML report

The course is ``--course-dir`` (before or after the command), else the current folder if it is one,
else ``./grader``. Expected mistakes (an unknown assignment or student, a corrupt zip, nothing to
grade...) stop with ``error: ...`` and a non-zero exit, never a traceback.

Grading uses nbgrader itself with the course's ``nbgrader_config.py`` (see grader/parallel.py), so
grades are the ones serial ``nbgrader autograde`` gives.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
import tempfile
import warnings
from pathlib import Path

from grader.coursedir import assignment_ids, db_url, ensure_tools_on_path, open_api
from grader.failures import LOG_DIR, quote, read_records, remove_record, write_record
from grader.term.decisions import DecisionError
from grader.term.lms import LMSError
from grader.term.report import CSV_FILE


class UsageError(Exception):
    """An expected mistake of the user: reported as ``error: <message>`` with exit status 2."""


def resolve_course(arg: str | None, option: str = "--course-dir") -> Path:
    """The course directory: ``arg``, else the current folder or its ``grader/`` (never the installed
    package's folder: running elsewhere must not grade some other course)."""
    if arg:
        path = Path(arg)
        if not (path / "nbgrader_config.py").is_file():
            raise UsageError(f"{path} is not an nbgrader course directory (no nbgrader_config.py in it)")
        return path.resolve()
    for candidate in (Path.cwd(), Path.cwd() / "grader"):
        if (candidate / "nbgrader_config.py").is_file():
            return candidate.resolve()
    raise UsageError(f"no nbgrader course in {Path.cwd()} or its grader/ folder: run from the repository root or "
                     f"the course directory, or pass {option} PATH")


def check_assignments(course: Path, wanted: list[str]) -> list[str]:
    """``wanted`` if every one is an assignment of the course, else a :class:`UsageError` naming the
    unknown ones and the closest known ids."""
    known = assignment_ids(course)
    unknown = [a for a in wanted if a not in known]
    if unknown:
        hints = []
        for a in unknown:
            close = difflib.get_close_matches(a, known, n=1, cutoff=0.5)
            hints.append(f"{a!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise UsageError(f"unknown assignment {', '.join(hints)}: the assignments of {course} are "
                         f"{', '.join(known) or 'none (its source/ folder is empty)'}")
    return wanted


def positive_int(text: str) -> int:
    """argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (got {value})")
    return value

def find_tasks(course: Path, assignments: list[str], students: list[str] | None):
    """``(tasks, messages)``: the submissions to grade, and those that cannot be, with reasons (a
    notebook that is there but cannot be read is a task: grading explains it, ``grader/failures.py``)."""
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
                    f"found {', '.join(quote(n) for n in notebooks[:3])} but expected {assignment}.ipynb; graded 0 "
                    "(rename it, or import with `python -m grader import`)",
                )
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


def remember_import(course: Path, assignment: str, args, roster: Path | None) -> None:
    """The import's arguments, for ``choose`` to import again from the same download."""
    from grader.term.lms import remember

    remember(course, assignment, last_import={"source": str(Path(args.source).resolve()), "anonymous": args.anonymous,
                                              "roster": str(roster) if roster else "", "timezone": args.timezone})


def cmd_import(args) -> int:
    from grader.term.apply import apply_decisions
    from grader.term.collect import import_submissions, record_students
    from grader.term.deadlines import apply_term
    from grader.term.lms import load_roster

    course = resolve_course(args.course_dir)
    assignment = check_assignments(course, [args.assignment])[0]
    roster = Path(args.roster).resolve() if args.roster else None
    report = import_submissions(Path(args.source), course, assignment, roster=roster, anonymous=args.anonymous,
                                timezone=args.timezone, column=args.column)
    remember_import(course, assignment, args, roster)
    ensure_generated(course, assignment)
    students = sorted(set(report.imported) | set(report.roster_only) | set(report.without_notebook))
    record_students(course, students)
    people = load_roster(course)
    apply_term(course, assignment, {s: [s, people[s].lms_id] if s in people else [s] for s in report.imported})
    apply_decisions(course, assignments=[assignment])
    for o in report.files:
        if o.outcome != "imported" or o.reason:
            who = f"{o.student} ({o.name})" if o.student else (o.name or "?")
            print(f"{o.outcome}: {o.file} [{who}]" + (f": {o.reason}" if o.reason else ""))
    for note in report.notes:
        print("note:", note)
    if report.roster_only:
        print(f"not submitted: {len(report.roster_only)} students of the roster: {', '.join(report.roster_only)}")
    print(f"imported {len(report.imported)} submissions of {assignment} into {course}/submitted/ "
          f"({len(report.files)} files in the download; every one listed in {report.path})")
    if report.problems and not args.allow_skipped:
        print(f"error: {len(report.problems)} files of the download were skipped (listed above): check them, "
              "then import again with --allow-skipped to accept that", file=sys.stderr)
        return 1
    return 0


def _finish(into: Path, messages: dict, csv_path: Path | None, assignments: set[str] | None) -> None:
    """Write the CSV (every submission of the gradebook at ``into``) and print the summary.

    Reasons for submissions that could not be graded come from the records of earlier runs in
    ``grading-logs/`` (so a partial regrade, a merge or a report shows every other submission's message
    as it was), then this run's ``messages``, then the submitted files themselves (missing or misnamed
    notebooks, another assignment's notebook: the same however the grading was split)."""
    from grader.term.apply import annotate_rows
    from grader.term.report import read_rows, summary, write_csv

    tasks, found = find_tasks(into, assignment_ids(into), None)
    found = {**wrong_notebooks(into, tasks), **found}
    rows = annotate_rows(into, read_rows(into, {**read_records(into), **messages, **found}))
    csv_path = csv_path or into / CSV_FILE
    write_csv(rows, csv_path)
    shown = [r for r in rows if assignments is None or r.assignment in assignments]
    print(summary(shown))
    print(f"grades: {csv_path}")


def check_tasks(course: Path, assignments: list[str], named: bool, students: list[str], tasks: list) -> None:
    """A :class:`UsageError` when there is nothing to grade, an asked-for student has no submission,
    or an assignment named on the command line has none."""
    submitted = course / "submitted"
    have = {s.name for s in submitted.iterdir() if s.is_dir()} if submitted.is_dir() else set()
    unknown = [s for s in students if s not in have]
    if unknown:
        close = {s: difflib.get_close_matches(s, sorted(have), n=1) for s in unknown}
        hints = ", ".join(f"{s!r}" + (f" (did you mean {close[s][0]!r}?)" if close[s] else "") for s in unknown)
        raise UsageError(f"no submission from student {hints} in {submitted}: students are LMS ids "
                         "(see lms-roster.csv in the course directory)")
    graded = {a for a, _ in tasks}
    empty = [a for a in assignments if a not in graded]
    if students and empty and named:
        raise UsageError(f"{', '.join(students)}: no submission of {', '.join(empty)}")
    if named and empty:
        raise UsageError(f"no submissions of {', '.join(empty)} in {submitted}: import them first "
                         "(python -m grader import DOWNLOAD.zip --assignment ID)")
    if not tasks:
        raise UsageError(f"nothing to grade: no submissions in {submitted}" + (
            f" from {', '.join(students)}" if students else "") + " (python -m grader import DOWNLOAD.zip ...)")


def apply_extensions(course: Path, into: Path, assignment: str, students: list[str]) -> None:
    """The config's due date and these students' extensions, into the gradebook at ``into``."""
    from grader.term.deadlines import apply_term
    from grader.term.lms import load_roster

    roster = load_roster(course)
    try:
        apply_term(into, assignment, {s: [s, roster[s].lms_id] if s in roster else [s] for s in students},
                   decided_in=course)
    except ValueError as err:
        raise UsageError(f"course config, c.Term.due_dates[{assignment!r}]: {err}") from None


def wrong_notebooks(course: Path, tasks: list) -> dict:
    """``(assignment, student) -> ("error", message)`` for submissions that are another assignment's notebook."""
    from grader.term.choose import other_assignment, read_candidate

    found = {}
    for assignment, student in tasks:
        path = course / "submitted" / student / assignment / f"{assignment}.ipynb"
        try:
            nb, _problem = read_candidate(path.read_bytes())  # as the grader reads it; unreadable: its own message
        except OSError:
            continue
        other = other_assignment(course, assignment, nb)
        if other:
            found[(assignment, student)] = ("error", f"this is the notebook of {other}, not {assignment}; graded 0 "
                                                     f"(ask the student for {assignment}.ipynb)")
    return found


def cmd_grade(args) -> int:
    import tqdm as tqdm_module
    from tqdm import tqdm

    from grader.parallel import grade_parallel, make_shard, snapshot_gradebook
    from grader.term.apply import apply_decisions

    course = resolve_course(args.course_dir)
    assignments = check_assignments(course, args.assignments) if args.assignments else assignment_ids(course)
    if not assignments:
        raise UsageError(f"{course} has no assignments (its source/ folder is empty)")
    if args.no_sandbox:
        print("warning: grading WITHOUT a sandbox (--no-sandbox): every submission runs as you, with your "
              "files; the grades CSV records it", file=sys.stderr)
    else:
        from grader.sandbox.bwrap import SandboxUnavailable, check_available

        try:
            check_available()
        except SandboxUnavailable as err:
            raise SystemExit(f"error: {err}") from None
    if args.student:  # an LMS id stands for its student (a pseudonym when grading anonymously)
        from grader.term.lms import load_roster

        by_lms_id = {p.lms_id: s for s, p in load_roster(course).items()}
        args.student = [s if (course / "submitted" / s).is_dir() else by_lms_id.get(s, s) for s in args.student]
    tasks, messages = find_tasks(course, assignments, args.student)
    check_tasks(course, assignments, bool(args.assignments), args.student or [], tasks)
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
        apply_extensions(course, into, assignment, [s for a, s in tasks if a == assignment])
    if tasks:
        tqdm_module.tqdm.monitor_interval = 0  # no monitor thread in the process that forks workers
        with tqdm(total=len(tasks), unit="nb", desc="autograding", file=sys.stderr) as bar:
            outcomes = grade_parallel(
                course, tasks, jobs=args.jobs, timeout=args.timeout, memory_mb=args.memory_mb,
                feedback=not args.no_feedback, into=into, on_done=lambda _o: bar.update(1),
                sandbox=False if args.no_sandbox else None, zygote=not args.no_zygote,
                notebook_timeout=args.notebook_timeout,
            )
        from grader.failure_page import write_failure_page

        logs = into / LOG_DIR
        for o in outcomes:
            if not o.graded or o.message:
                status, message = messages.setdefault((o.assignment, o.student),
                                                      ("error" if not o.graded else "graded", o.message))
                write_record(into, o.assignment, o.student, status, message, o.log)
                if not o.graded and not args.no_feedback:  # nbgrader writes no page for it: say why it got 0
                    write_failure_page(into, o.assignment, o.student, message)
            else:
                remove_record(into, o.assignment, o.student)
        if logs.exists() and any(logs.iterdir()):
            print(f"nbgrader's logs of the submissions that failed: {logs}/", file=sys.stderr)
    apply_decisions(course, into)
    _finish(into, messages, Path(args.csv) if args.csv else None, set(assignments))
    return 0


def cmd_secret(args) -> int:
    from grader.engine.secret import SECRET_FILE, course_secret

    course = resolve_course(args.course_dir)
    existed = (course / SECRET_FILE).exists()
    course_secret(course)
    print(f"{'grading secret: ' if existed else 'created the grading secret '}{course / SECRET_FILE} "
          "(keep it private; copy it with the course to every machine that grades)")
    return 0


def cmd_merge(args) -> int:
    from grader.merge import graded_in, merge_shards

    into = resolve_course(args.into, "--into")
    shards = [Path(s) for s in args.shards]
    for shard in shards:
        if not (shard / "gradebook.db").is_file():
            raise UsageError(f"{shard} is not a shard directory (no gradebook.db): give the folders of `grade --out`")
    for assignment in sorted({a for shard in shards for a, _ in graded_in(shard)}):
        ensure_generated(into, assignment)  # a fresh checkout has no gradebook yet
    merged = merge_shards(shards, into)
    print(f"merged {len(merged)} submissions into {into / 'gradebook.db'}")
    from grader.term.apply import apply_decisions

    apply_decisions(into)
    _finish(into, {}, Path(args.csv) if args.csv else None, None)
    return 0


def cmd_report(args) -> int:
    course = resolve_course(args.course_dir)
    from grader.term.report import read_rows

    if not (course / "gradebook.db").exists() or not any(r.submitted for r in read_rows(course)):
        raise UsageError(f"nothing graded yet in {course}: import and grade first")
    from grader.term.apply import apply_decisions

    apply_decisions(course)
    _finish(course, {}, Path(args.csv) if args.csv else None, None)
    if args.html:
        from grader.term.classreport import write_class_report

        pages = write_class_report(course)
        print(f"class report: {pages[0]} ({len(pages)} pages; open it in a browser, it needs no network)")
    return 0


def cmd_roster(args) -> int:
    from grader.term.collect import load_class_list, record_students

    course = resolve_course(args.course_dir)
    info, students = load_class_list(course, Path(args.roster), anonymous=args.anonymous)
    record_students(course, students)
    print(f"{len(students)} students of {info.lms}'s class list in {course / 'lms-roster.csv'}"
          + (f" (Canvas's Test Student left out: {', '.join(sorted(info.test_students))})" if info.test_students
             else ""))
    return 0


def _decided(course: Path, outcome) -> int:
    """Print a decision command's outcome and write the grades CSV again when the gradebook changed."""
    for line in outcome.lines:
        print(line)
    if outcome.changed:
        from grader.term.report import read_rows

        if any(r.submitted for r in read_rows(course)):
            _finish(course, {}, None, set())
    return 0


def cmd_extend(args) -> int:
    from grader.term.decide import extend

    course = resolve_course(args.course_dir)
    assignment = check_assignments(course, [args.assignment])[0]
    return _decided(course, extend(course, assignment, args.student, args.days, args.reason, args.remove))


def cmd_excuse(args) -> int:
    from grader.term.decide import excuse

    course = resolve_course(args.course_dir)
    assignment = check_assignments(course, [args.assignment])[0]
    return _decided(course, excuse(course, assignment, args.student, args.reason, args.remove))


def cmd_override(args) -> int:
    from grader.term.decide import override

    course = resolve_course(args.course_dir)
    assignment = check_assignments(course, [args.assignment])[0]
    return _decided(course, override(course, assignment, args.student, args.function or "", args.points,
                                     args.reason, args.remove))


def cmd_choose(args) -> int:
    from grader.term.decide import choose_file

    course = resolve_course(args.course_dir)
    assignment = check_assignments(course, [args.assignment])[0]
    return _decided(course, choose_file(course, assignment, args.student, args.file or "", args.reason, args.remove))


def cmd_similarity(args) -> int:
    from grader.term.similarity import compare_class, write_report

    course = resolve_course(args.course_dir)
    assignment = check_assignments(course, [args.assignment])[0]
    result = compare_class(course, assignment)
    if not result.students:
        raise UsageError(f"no submissions of {assignment} in {course / 'submitted'}: import them first")
    page = write_report(result, course, Path(args.out) if args.out else None, top=args.top)
    print(f"compared {len(result.students)} submissions of {assignment} ({result.pairs} pairs, and each with the "
          f"reference) in {result.seconds:.1f} s")
    for pair in result.ranked[:5]:
        print(f"  {pair.score:5.0%}  {pair.a} ~ {pair.b}")
    print(f"similarity report: {page} (it flags code to look at; it decides nothing)")
    return 0


def add_term_commands(sub) -> None:
    """The term's commands beyond import and return: the class list, decisions, similarity."""
    ros = sub.add_parser("roster", help="load the LMS's class list (before any download, so decisions can name "
                                        "its students)")
    ros.add_argument("roster", help="Canvas gradebook CSV, Moodle grading worksheet, or a CSV with id,name")
    ros.add_argument("--anonymous", action="store_true", help="pseudonyms, as `import --anonymous` makes them")
    ros.set_defaults(func=cmd_roster)

    def decision(name: str, help_text: str, func) -> argparse.ArgumentParser:
        d = sub.add_parser(name, help=help_text)
        d.add_argument("assignment", help="assignment id, e.g. ch2-sdpa")
        d.add_argument("student", help="LMS id (or student id) of the student")
        d.add_argument("--reason", default="", help="why (kept in decisions.toml)")
        d.add_argument("--remove", action="store_true", help="take the decision back")
        d.set_defaults(func=func)
        return d

    ext = decision("extend", "give a student more days (lifts a late penalty; kept in decisions.toml)", cmd_extend)
    ext.add_argument("--days", type=float, help="days of extension (may be fractional, e.g. 0.5)")
    decision("excuse", "excuse a student from an assignment (EX in Canvas)", cmd_excuse)
    ovr = decision("override", "override a score, with a reason (survives regrading)", cmd_override)
    ovr.add_argument("--points", type=float, help="the score (of --function, else of the whole assignment)")
    ovr.add_argument("--function", help="the graded function, e.g. softmax (default: the assignment's total)")
    cho = decision("choose", "grade this file of a student's download (survives re-import)", cmd_choose)
    cho.add_argument("file", nargs="?", help="the file as the student uploaded it, or the download's entry name")

    sim = sub.add_parser("similarity", help="rank pairs of submissions by similar solution code (flags, never "
                                            "decides); an offline HTML report")
    sim.add_argument("assignment", help="assignment id, e.g. ch2-sdpa")
    sim.add_argument("--out", help="the report's path (default: <course>/similarity/<assignment>.html)")
    sim.add_argument("--top", type=positive_int, default=50, help="pairs shown side by side (default 50)")
    sim.set_defaults(func=cmd_similarity)


def cmd_return(args) -> int:
    from grader.term.lmsreturn import write_return

    course = resolve_course(args.course_dir)
    assignment = check_assignments(course, [args.assignment])[0]
    from grader.term.apply import apply_decisions

    apply_decisions(course, assignments=[assignment])
    result = write_return(course, assignment, lms=args.lms, column=args.column, missing_zero=args.missing_zero,
                          out=Path(args.out) if args.out else None, scale=args.scale)
    print(f"grades for {result.lms}: {result.grades} ({result.rows} students, {result.missing} without a "
          f"submission{' (0)' if args.missing_zero else ' (left blank)'})")
    print(f"feedback for {result.lms}: {result.archive} ({len(result.entries)} students)")
    for line in result.notes:
        print("note:", line)
    if result.left_out:
        print(f"error: {len(result.left_out)} graded students have no {result.lms} id and are not in the files: "
              f"{', '.join(result.left_out)} (import their LMS download or roster)", file=sys.stderr)
        return 1
    return 0


class SubcommandParser(argparse.ArgumentParser):
    """A subcommand's parser: its options may come before, between or after its positional arguments
    (``grade ch2-sdpa --jobs 2 ch3-self-cross``), as a user types them."""

    _intermixing = False

    def parse_known_args(self, args=None, namespace=None):
        if self._intermixing:  # parse_known_intermixed_args calls back into this method
            return super().parse_known_args(args, namespace)
        self._intermixing = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False


def add_global_options(parser: argparse.ArgumentParser, *, sub_level: bool = False) -> None:
    """The options every command takes (``--course-dir``), on the main parser and on each subcommand's.

    On a subcommand the default is ``SUPPRESS``, so ``python -m grader --course-dir D grade`` keeps ``D``
    and ``python -m grader grade --course-dir D`` sets it: the option works before or after the command.
    """
    parser.add_argument("--course-dir", default=argparse.SUPPRESS if sub_level else None,
                        help="nbgrader course directory (default: the current folder if it is one, else ./grader)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m grader", description=__doc__.split("\n\n")[0])
    add_global_options(p)
    sub = p.add_subparsers(dest="command", required=True, parser_class=SubcommandParser)

    imp = sub.add_parser("import", help="import an LMS zip or a folder of notebooks into submitted/")
    imp.add_argument("source", help="zip file (Canvas, Moodle, plain) or folder of <student>.ipynb")
    imp.add_argument("--assignment", "-a", required=True, help="assignment id, e.g. ch2-sdpa")
    imp.add_argument("--roster", help="the LMS's class list: Canvas gradebook CSV, Moodle grading worksheet, "
                                      "or a CSV with id,name columns (lists non-submitters too)")
    imp.add_argument("--anonymous", action="store_true",
                     help="grade under pseudonyms; the mapping stays in the course's lms-roster.csv")
    imp.add_argument("--timezone", default="UTC", help="time zone of the download's times (default: UTC)")
    imp.add_argument("--allow-skipped", action="store_true",
                     help="exit 0 even when files of the download were skipped (they are still reported)")
    imp.add_argument("--column", help="Canvas: the roster's column of this assignment, '<name> (<id>)' "
                                      "(default: the one named after it, or the only one; remembered)")
    imp.set_defaults(func=cmd_import)

    grade = sub.add_parser("grade", help="autograde in parallel, write feedback, grades CSV and a summary")
    grade.add_argument("assignments", nargs="*", help="assignment ids (default: all in source/)")
    grade.add_argument("--student", action="append", help="grade only this student: student id or LMS id (repeatable)")
    grade.add_argument("--jobs", "-j", type=positive_int, default=None, help="worker processes (default: all cores)")
    grade.add_argument("--timeout", type=positive_int, default=None,
                       help="seconds per cell (default: the config's, 30)")
    grade.add_argument("--memory-mb", type=positive_int, default=None,
                       help="kernel memory limit (default: the config's)")
    grade.add_argument("--notebook-timeout", type=positive_int, default=None,
                       help="seconds per notebook: cells, replays and hidden checks (default: the config's, 600)")
    grade.add_argument("--no-feedback", action="store_true", help="skip generate_feedback")
    grade.add_argument("--no-zygote", action="store_true",
                       help="start every kernel from scratch instead of forking it from a pre-imported zygote")
    grade.add_argument("--no-sandbox", action="store_true",
                       help="grade without the bubblewrap sandbox (not recommended; recorded in the CSV)")
    grade.add_argument("--csv", help=f"grades CSV path (default: <course>/{CSV_FILE})")
    grade.add_argument("--shard", help="I/N: grade only every N-th submission starting at I (0-based)")
    grade.add_argument("--out", help="write results to this new shard directory instead of the course")
    grade.set_defaults(func=cmd_grade)

    secret = sub.add_parser("secret", help="create the course's grading secret (hidden inputs) if it is missing")
    secret.set_defaults(func=cmd_secret)
    add_term_commands(sub)

    merge = sub.add_parser("merge", help="merge shard directories into the course gradebook")
    merge.add_argument("shards", nargs="+", help="shard directories (from `grade --out`)")
    merge.add_argument("--into", default=None,
                       help="course directory to merge into (default: the current folder if it is one, else ./grader)")
    merge.add_argument("--csv", help=f"grades CSV path (default: <into>/{CSV_FILE})")
    merge.set_defaults(func=cmd_merge)

    report = sub.add_parser("report", help="grades CSV and summary from the gradebook")
    report.add_argument("--csv", help=f"grades CSV path (default: <course>/{CSV_FILE})")
    report.add_argument("--html", action="store_true",
                        help="also write the class report: one offline page per assignment and one for the term "
                             "(<course>/class-report/)")
    report.set_defaults(func=cmd_report)

    ret = sub.add_parser("return", help="the LMS's grade import file and feedback archive for one assignment")
    ret.add_argument("assignment", help="assignment id, e.g. ch2-sdpa")
    ret.add_argument("--lms", choices=["canvas", "moodle"], help="default: the LMS the students were imported from")
    ret.add_argument("--column", help="Canvas: the gradebook column, '<Assignment name> (<Canvas assignment id>)' "
                                      "as in Canvas's gradebook export (default: the one read from the roster at "
                                      "import, else the assignment id: a new column; remembered)")
    ret.add_argument("--missing-zero", action="store_true", help="0 for students who sent nothing (default: blank)")
    ret.add_argument("--scale", action="store_true",
                     help="scale the scores to the LMS's points when they differ from the assignment's")
    ret.add_argument("--out", help="folder for the files (default: <course>/lms-return/<assignment>/)")
    ret.set_defaults(func=cmd_return)

    for command in sub.choices.values():  # every subcommand, whoever added it
        add_global_options(command, sub_level=True)
    return p


def main(argv: list[str] | None = None) -> int:
    warnings.filterwarnings("ignore", module="nbgrader")
    warnings.filterwarnings("ignore", message=".*not in session.*")
    args = build_parser().parse_args(argv)
    if getattr(args, "shard", None) and not re.fullmatch(r"\d+/[1-9]\d*", args.shard):
        raise SystemExit(f"--shard wants I/N with 0 <= I < N, e.g. 0/4 (got {args.shard!r})")
    try:
        return args.func(args)
    except (UsageError, LMSError, DecisionError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
