"""A hostile class, graded by stock ``nbgrader autograde`` (serial) and by ``python -m grader grade``.

The class (chapter 2, 8 points): honest students graded first and last, an untouched release, one
student per attack of ``attacks.ATTACKS`` (each an unsolved release plus one cheat) and the solved
notebooks with one hang or crash of ``attacks.RESILIENCE``. Proved here, for both ways of grading:
every attack scores 0 with a message, honest students keep full marks, untouched releases score 0,
a hang or crash costs only its own function; ``solutions/`` and ``grader/`` are byte-identical before
and after; no process a submission started is alive afterwards; no attacker's feedback or autograded
notebook holds another student's code or the reference; no autograded notebook or feedback page holds
anything that could run a script or load something (``attacks.live_content``), and in Chromium the
attackers' feedback pages run nothing and load nothing; the feedback pages render offline.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import attacks
import nbformat
import pytest

from grader import generate, synthetic
from grader.coursedir import COURSE_DIR
from grader.engine import reference as ref
from grader.engine.secret import SECRET_FILE, course_secret

pytestmark = [pytest.mark.grading, pytest.mark.slow]

A = "ch2-sdpa"
ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
ENV = {**os.environ, "PATH": str(Path(PY).parent) + os.pathsep + os.environ.get("PATH", "")}
TIMEOUT_S = 5
MEMORY_MB = 1024
BUDGET_S = 30  # c.TrustedExecute.notebook_timeout of this class: cells, replays and hidden checks of a notebook
BUDGET_MARGIN_S = 12  # what may follow the budget: the last interrupt's grace, killing the kernel, a busy machine
MAX_FILE_BYTES = 5_000_000  # an autograded notebook or feedback page the formgrader can open
MAX_GROWTH_MB = 300  # how much one notebook may raise the grading process's peak memory
HONEST = ("aaa-honest", "zzz-honest")
UNTOUCHED = "mmm-untouched"
WAYS = ("stock", "cli")


def digest(folder: Path) -> str:
    """One hash of every file under ``folder`` that git tracks or does not ignore (names and bytes)."""
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", folder.name],
                           cwd=folder.parent, capture_output=True, text=True, check=True).stdout.split()
    h = hashlib.sha256()
    for name in sorted(files):
        path = folder.parent / name
        if path.is_file():
            h.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def sleepers() -> list[str]:
    """Command lines of live processes that carry the attacker's sleeper marker."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if attacks.SLEEPER_MARKER in cmdline and "pytest" not in cmdline:
            found.append(f"{proc.name}: {cmdline[:120]}")
    return found


def _insert(nb: nbformat.NotebookNode, attack: attacks.Attack) -> nbformat.NotebookNode:
    new = {"code": nbformat.v4.new_code_cell, "markdown": nbformat.v4.new_markdown_cell,
           "raw": nbformat.v4.new_raw_cell}[attack.cell_type]
    cell, where = new(attack.code, metadata=dict(attack.metadata)), attack.where
    first_code = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    nb.cells.insert(first_code + 1 if where == "start" else len(nb.cells), cell)
    return nb


def submissions(course: Path) -> dict[str, nbformat.NotebookNode]:
    release = course / "release" / A / f"{A}.ipynb"
    subs: dict[str, nbformat.NotebookNode] = {}
    for student in HONEST:
        nb = synthetic.filled_release(course, A)
        answer = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "answer-softmax")
        answer.source = f"# {attacks.HONEST_MARKER}\n" + answer.source
        subs[student] = nb
    subs[UNTOUCHED] = nbformat.read(release, as_version=4)
    for name, attack in attacks.ATTACKS.items():
        subs[f"attack-{name}"] = _insert(nbformat.read(release, as_version=4), attack)
    for name, (cell, code, _) in attacks.RESILIENCE.items():
        subs[f"fault-{name}"] = synthetic.filled_release(course, A, {cell: code})
    for name, (cells, _) in attacks.SLOW_CELLS.items():
        nb = synthetic.filled_release(course, A)
        nb.cells += [nbformat.v4.new_code_cell(code) for code in cells]
        subs[f"budget-{name}"] = nb
    return subs


def add_files(course: Path, folder: Path, files: tuple[tuple[str, str], ...]) -> None:
    """Put an attacker's links and special files beside its notebook (attacks.LINK_TARGETS)."""
    targets = {"symlink-secret": course / ".grading-secret", "symlink-gradebook": course / "gradebook.db",
               "symlink-reference": ROOT / "solutions" / "ch2_sdpa.py", "symlink-course-dir": course}
    for name, what in files:
        if what in targets:
            os.symlink(targets[what], folder / name)
        elif what == "hardlink-secret":
            os.link(course / ".grading-secret", folder / name)
        elif what == "fifo":
            os.mkfifo(folder / name)
        elif what == "device" and os.geteuid() == 0:  # /dev/zero's twin: only root may make a device
            os.mknod(folder / name, 0o20644, os.makedev(1, 5))


def make_course(course: Path) -> None:
    (course / "source").mkdir(parents=True)
    shutil.copytree(COURSE_DIR / "source" / A, course / "source" / A)
    shutil.copytree(COURSE_DIR / "exercises" / A, course / "exercises" / A)
    config = (COURSE_DIR / "nbgrader_config.py").read_text()
    config += f"\nc.Execute.timeout = {TIMEOUT_S}\nc.SandboxedKernelManager.memory_limit_mb = {MEMORY_MB}\n"
    config += f"c.TrustedExecute.notebook_timeout = {BUDGET_S}\n"
    (course / "nbgrader_config.py").write_text(config)
    run(course, PY, "-m", "nbgrader", "generate_assignment", A, "--force")
    course_secret(course)
    for student, nb in submissions(course).items():
        path = course / "submitted" / student / A / f"{A}.ipynb"
        path.parent.mkdir(parents=True)
        nbformat.write(nb, path)


def add_attack_files(course: Path) -> None:
    """Each course's attackers get their links to that course's own secret and gradebook (after the copy)."""
    for name, attack in attacks.ATTACKS.items():
        add_files(course, course / "submitted" / f"attack-{name}" / A, attack.files)


def run(cwd: Path, *cmd: str, ok: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env={**ENV, **(env or {})}, timeout=1200)
    if ok:
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res


def cell_results(course: Path) -> dict[str, dict[str, float]]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        return {
            s.student.id: {g.name: float(g.score) for nb in s.notebooks for g in nb.grades}
            for s in gb.assignment_submissions(A)
        }


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> dict:
    before = {name: digest(ROOT / name) for name in ("solutions", "grader")}
    base = tmp_path_factory.mktemp("hostile") / "base"
    make_course(base)
    courses = {way: base.parent / way for way in WAYS}
    for course in courses.values():
        shutil.copytree(base, course)
        add_attack_files(course)
    stock = courses["stock"]
    timing = {way: base.parent / f"timing-{way}.jsonl" for way in WAYS}

    def grade_stock() -> None:
        run(stock, PY, "-m", "nbgrader", "autograde", A, "--force", ok=False,  # exits 1 if any notebook failed
            env={"GRADER_TIMING": str(timing["stock"])})
        run(stock, PY, "-m", "nbgrader", "generate_feedback", A, "--force", ok=False)

    # the two ways side by side, on their own copies of the course: stock nbgrader grades one notebook at a
    # time and mostly waits on the hung attacks' budgets, so the CLI's run fits in its waits
    with ThreadPoolExecutor(max_workers=1) as pool:
        stock_done = pool.submit(grade_stock)
        cli = run(ROOT, PY, "-m", "grader", "--course-dir", str(courses["cli"]), "grade", A, "--jobs", "2",
                  env={"GRADER_TIMING": str(timing["cli"])})
        stock_done.result()
    return {
        "timing": {way: {r["student"]: r for r in map(json.loads, timing[way].read_text().splitlines())}
                   for way in WAYS},
        "courses": courses,
        "scores": {way: cell_results(c) for way, c in courses.items()},
        "cli": cli,
        "before": before,
        "after": {name: digest(ROOT / name) for name in ("solutions", "grader")},
        "sleepers": sleepers(),
        "subs": sorted(submissions(base)),
    }


def _autograded(course: Path, student: str) -> nbformat.NotebookNode:
    return nbformat.read(course / "autograded" / student / A / f"{A}.ipynb", as_version=4)


def _grade_cells(nb: nbformat.NotebookNode) -> list:
    return [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]


@pytest.mark.parametrize("way", WAYS)
def test_every_submission_is_graded(graded: dict, way: str) -> None:
    assert sorted(graded["scores"][way]) == graded["subs"]


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("attack", sorted(attacks.ATTACKS))
def test_every_attack_scores_zero_with_a_message(graded: dict, way: str, attack: str) -> None:
    student = f"attack-{attack}"
    scores = graded["scores"][way][student]
    assert sum(scores.values()) == 0, scores
    for cell in _grade_cells(_autograded(graded["courses"][way], student)):
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert len(errors) == 1 and len(errors[0].evalue) > 20, (cell.metadata["nbgrader"]["grade_id"], cell.outputs)


@pytest.mark.parametrize("way", WAYS)
def test_honest_students_keep_full_marks_and_untouched_releases_score_zero(graded: dict, way: str) -> None:
    scores = graded["scores"][way]
    for student in HONEST:
        assert scores[student] == {"test-softmax": 2, "test-causal_mask": 1, "test-padding_mask": 1,
                                   "test-scaled_dot_product_attention": 4}, student
    assert sum(scores[UNTOUCHED].values()) == 0


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("fault", sorted(attacks.RESILIENCE))
def test_a_hang_or_crash_costs_only_its_own_function(graded: dict, way: str, fault: str) -> None:
    _, _, expected = attacks.RESILIENCE[fault]
    assert sum(graded["scores"][way][f"fault-{fault}"].values()) == expected


def test_stock_nbgrader_and_the_cli_give_identical_grades(graded: dict) -> None:
    assert graded["scores"]["stock"] == graded["scores"]["cli"]


def test_the_course_code_is_byte_identical_afterwards(graded: dict) -> None:
    assert graded["before"] == graded["after"]
    for folder in ("solutions", "grader"):
        for path in (ROOT / folder).rglob("*.py"):
            assert attacks.HACK_MARKER not in path.read_text(), path


def test_no_process_started_by_a_submission_is_alive(graded: dict) -> None:
    assert graded["sleepers"] == []
    assert sleepers() == []


def _reference_lines() -> set[str]:
    """Lines of the reference's function bodies (not the signatures and docstrings the release shows too)."""
    return {
        line.strip()
        for name in ("softmax", "padding_mask", "scaled_dot_product_attention")
        for line in ref.student_source(ref.reference(name)).split('"""')[-1].splitlines()
        if len(line.strip()) > 25
    }


@pytest.mark.parametrize("way", WAYS)
def test_no_attacker_sees_other_students_or_the_reference(graded: dict, way: str) -> None:
    course = graded["courses"][way]
    reference_lines = _reference_lines()
    assert reference_lines
    for student in graded["subs"]:
        if not student.startswith("attack-"):
            continue
        folders = (course / "autograded" / student / A, course / "feedback" / student / A)
        for path in (folders[0] / f"{A}.ipynb", folders[1] / f"{A}.html"):
            text = html.unescape(path.read_text(errors="replace"))
            assert attacks.HONEST_MARKER not in text, path
            leaked = [line for line in reference_lines if line in text]
            assert not leaked, (path, leaked)


@pytest.mark.parametrize("way", WAYS)
def test_limits_and_isolation_held_inside_the_kernel(graded: dict, way: str) -> None:
    course = graded["courses"][way]

    def printed(student: str) -> str:
        return "\n".join(o.get("text", "") + str(o.get("evalue", "")) for c in _autograded(course, student).cells
                         if c.cell_type == "code" for o in c.outputs)

    assert attacks.LIFTED_MARKER not in printed("attack-lift-memory-limit")
    assert "MemoryError" in printed("attack-lift-memory-limit")
    assert "REACHED" not in printed("attack-network") and "no network" in printed("attack-network")
    assert "no reference on disk" in printed("attack-reference-from-disk")
    assert "files written: 0" in printed("attack-write-course-code")
    assert "edited" not in printed("attack-edit-gradebook")
    assert "ran longer than the time limit" in printed("attack-ignore-interrupts")


@pytest.mark.parametrize("way", WAYS)
def test_gradebook_is_intact(graded: dict, way: str) -> None:
    with sqlite3.connect(graded["courses"][way] / "gradebook.db") as db:
        assert db.execute("pragma integrity_check").fetchone()[0] == "ok"


@pytest.mark.parametrize("way", WAYS)
def test_no_script_in_any_autograded_notebook_or_feedback_page(graded: dict, way: str) -> None:
    from grader.feedback import CSP_META

    course = graded["courses"][way]
    for student in graded["subs"]:
        assert attacks.notebook_live_content(_autograded(course, student)) == [], student
        page = (course / "feedback" / student / A / f"{A}.html").read_text()
        assert attacks.live_content(page, page=True) == [], student
        assert page.count(CSP_META) == 1, student
    # the check can fail: the attackers' submitted markdown, raw and metadata cells are caught by it
    for attack in ("script-in-markdown", "script-in-raw-cell", "script-in-metadata"):
        submitted = nbformat.read(course / "submitted" / f"attack-{attack}" / A / f"{A}.ipynb", as_version=4)
        assert attacks.notebook_live_content(submitted), attack


def test_feedback_shows_trusted_messages_without_grader_internals(graded: dict) -> None:
    course = graded["courses"]["cli"]
    for student in graded["subs"]:
        text = (course / "feedback" / student / A / f"{A}.html").read_text()
        for internal in ("grader/execute.py", "grader/engine", "site-packages/nbclient", "site-packages/nbgrader"):
            assert internal not in text, (student, internal)
        assert "cdnjs" not in text and '<script src="http' not in text, student
    hang = (course / "feedback" / "fault-hang-in-a-check" / A / f"{A}.html").read_text()
    assert "ran longer than the time limit" in hang
    assert "not implemented yet" in (course / "feedback" / UNTOUCHED / A / f"{A}.html").read_text()


def test_the_grades_csv_records_the_sandbox(graded: dict) -> None:
    import csv

    with open(graded["courses"]["cli"] / "course-grades.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows and {r["sandbox"] for r in rows} == {"on"}


def test_feedback_renders_its_formulas_offline_in_chromium(graded: dict, tmp_path: Path) -> None:
    """Open an honest and an attacker's feedback page: formulas typeset as MathML, no request leaves."""
    from playwright.sync_api import sync_playwright

    course = graded["courses"]["cli"]
    pages = [course / "feedback" / s / A / f"{A}.html" for s in ("aaa-honest", "attack-read-other-submissions")]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        try:
            for path in pages:
                page = browser.new_page()
                remote: list[str] = []

                def block(route, remote=remote):
                    if route.request.url.startswith("file://"):
                        route.continue_()
                    else:
                        remote.append(route.request.url)
                        route.abort()

                page.route("**/*", block)
                page.goto(path.as_uri())
                math = page.locator("math")
                assert math.count() >= 1, path
                box = math.first.bounding_box()
                assert box and box["width"] > 20 and box["height"] > 5, box
                markdown = " ".join(page.locator(".text_cell_render").all_inner_texts())
                assert markdown and "$$" not in markdown and "\\sqrt" not in markdown
                assert remote == [], remote
                page.screenshot(path=str(tmp_path / f"{path.parent.parent.name}.png"), full_page=False)
                page.close()
        finally:
            browser.close()


@pytest.mark.parametrize("way", WAYS)
def test_the_attackers_feedback_pages_run_nothing_in_chromium(graded: dict, way: str) -> None:
    """Each page of an attack on its viewer, opened in Chromium: no payload ran, no dialog, no request."""
    from playwright.sync_api import sync_playwright

    course = graded["courses"][way]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=attacks.CHROMIUM_ARGS)
        try:
            for attack in ("script-in-outputs", "script-in-svg", "script-in-markdown", "script-in-raw-cell",
                           "script-in-metadata"):
                url = (course / "feedback" / f"attack-{attack}" / A / f"{A}.html").as_uri()
                assert attacks.what_ran(browser, url) == {"pwned": [], "dialogs": [], "requests": []}, attack
        finally:
            browser.close()


def test_grading_refuses_without_a_sandbox_and_says_why(tmp_path: Path) -> None:
    """Where bubblewrap cannot run, the CLI stops with a clear message (and --no-sandbox is the way out)."""
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "bwrap").write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    (fake_bin / "bwrap").chmod(0o755)
    course = tmp_path / "course"
    synthetic.make_course(course)
    synthetic.write_submission(course, "s1", "correct")
    env = {**ENV, "PATH": f"{fake_bin}{os.pathsep}{ENV['PATH']}"}
    code = ("import shutil, grader.sandbox.bwrap as b; _which = shutil.which; b.shutil.which = lambda n, path=None: "
            f"{str(fake_bin / 'bwrap')!r} if n == 'bwrap' else _which(n, path=path); "
            "import sys; sys.argv = ['grader', '--course-dir', sys.argv[1], 'grade']; "
            "sys.modules.setdefault('rfc3987_syntax', None); from grader.cli import main; sys.exit(main())")
    res = subprocess.run([PY, "-c", code, str(course)], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode != 0
    assert "could not start a sandbox" in res.stderr and "--no-sandbox" in res.stderr
    assert "Traceback" not in res.stderr
    assert not (course / "autograded").exists()
    res = subprocess.run([PY, "-m", "grader", "--course-dir", str(course), "grade", "--no-sandbox"],
                         capture_output=True, text=True, env=ENV, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "WITHOUT a sandbox" in res.stderr
    import csv

    with open(course / "course-grades.csv") as f:
        row = next(csv.DictReader(f))
    assert row["sandbox"] == "off" and float(row["score"]) == 3


# --- links, memory, output and time: one budget per sandbox and per notebook (issue 20) ----------------------

def _attackers(graded: dict) -> list[str]:
    return [s for s in graded["subs"] if s.startswith(("attack-", "budget-"))]


@pytest.mark.parametrize("way", WAYS)
def test_budget_attacks_keep_their_honest_score(graded: dict, way: str) -> None:
    for name, (_, expected) in attacks.SLOW_CELLS.items():
        assert sum(graded["scores"][way][f"budget-{name}"].values()) == expected, name


@pytest.mark.parametrize("way", WAYS)
def test_no_course_file_content_reaches_an_attacker(graded: dict, way: str) -> None:
    """Links to the secret, the gradebook and a reference were refused: their contents are in no autograded
    folder, notebook or feedback page of an attacker, and the refusal is said in words."""
    course = graded["courses"][way]
    secret = (course / SECRET_FILE).read_text().strip()
    reference = _reference_lines()
    for student in _attackers(graded):
        folder = course / "autograded" / student / A
        assert sorted(p.name for p in folder.iterdir()) == [f"{A}.ipynb"], student  # nothing was copied beside it
        for path in (folder / f"{A}.ipynb", course / "feedback" / student / A / f"{A}.html"):
            text = html.unescape(path.read_text(errors="replace"))
            assert secret[:16] not in text and "SQLite format 3" not in text, (student, path)
            if student.startswith("attack-"):  # the budget- notebooks are solved honestly
                assert not [ln for ln in reference if ln in text], (student, path)
    for name, attack in attacks.ATTACKS.items():
        if attack.files:
            page = (course / "feedback" / f"attack-{name}" / A / f"{A}.html").read_text()
            assert "links and special files are refused" in page and ("symbolic link" in page or "hard link" in page)
            printed = json.dumps(_autograded(course, f"attack-{name}").cells[1:], default=str)
            assert all(f"./{file}" not in printed for file, _ in attack.files), name  # absent from the sandbox
    import csv

    if way == "cli":
        with open(course / "course-grades.csv") as f:
            rows = {r["student"]: r for r in csv.DictReader(f)}
        assert "not used" in rows["attack-symlink-secret"]["message"]


@pytest.mark.parametrize("way", WAYS)
def test_autograded_notebooks_and_feedback_stay_small(graded: dict, way: str) -> None:
    course = graded["courses"][way]
    for student in graded["subs"]:
        for path in (course / "autograded" / student / A / f"{A}.ipynb",
                     course / "feedback" / student / A / f"{A}.html"):
            assert path.stat().st_size < MAX_FILE_BYTES, (path, path.stat().st_size)
    nb = _autograded(course, "attack-huge-display-updates")
    assert "output truncated by the grader" in json.dumps(nb.cells, default=str)


@pytest.mark.parametrize("way", WAYS)
def test_the_grading_process_memory_stays_flat(graded: dict, way: str) -> None:
    """No notebook raises the grading process's peak memory by more than MAX_GROWTH_MB (comm floods, huge
    errors and display updates included; measured by the grader itself, $GRADER_TIMING)."""
    growth = {s: r["maxrss_mb"] - r["maxrss_start_mb"] for s, r in graded["timing"][way].items()}
    assert set(growth) == set(graded["subs"])
    assert max(growth.values()) < MAX_GROWTH_MB, growth


@pytest.mark.parametrize("way", WAYS)
def test_each_sandbox_stays_within_its_memory_limit(graded: dict, way: str) -> None:
    """The cgroup of each sandbox holds all its processes to one limit: six children of 300 MB each under
    1024 MiB were stopped, and the sandbox's peak (the OS's own high-water mark) stayed under the limit."""
    from grader.sandbox import cgroup

    found, why = cgroup.hierarchy()
    if found is None:
        pytest.skip(f"no cgroup for sandboxes on this machine ({why}): the rlimit fallback is tested alone")
    usage = {s: r["sandbox"] for s, r in graded["timing"][way].items()}
    assert all(u["limit_mb"] == MEMORY_MB and u["peak_mb"] <= MEMORY_MB for u in usage.values()), usage
    forked = usage["attack-forked-children-memory"]
    assert forked["oom_kills"] >= 1 and forked["peak_mb"] > MEMORY_MB / 2, forked
    assert usage["aaa-honest"]["oom_kills"] == 0 and usage["aaa-honest"]["peak_mb"] < MEMORY_MB / 2


@pytest.mark.parametrize("way", WAYS)
def test_every_notebook_finishes_within_its_budget(graded: dict, way: str) -> None:
    totals = {s: round(r["total"], 1) for s, r in graded["timing"][way].items()}
    assert max(totals.values()) < BUDGET_S + BUDGET_MARGIN_S, totals
    slow = _autograded(graded["courses"][way], "budget-many-slow-cells")
    assert "time budget" in slow.cells[0].source  # the grader's note at the top says so in words
    assert "Not run: the notebook's time budget" in json.dumps(slow.cells, default=str)
    hung = [c.outputs[0].evalue for c in _grade_cells(_autograded(graded["courses"][way],
                                                                   "attack-hung-checks-and-restarts"))]
    assert any("time budget" in message for message in hung), hung


def test_generated_notebooks_are_those_graded_here() -> None:
    assert generate.source_path(A).exists()
