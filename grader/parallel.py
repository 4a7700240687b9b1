"""Autograde many submissions at once: one shard course directory per worker process, then merge.

Each worker process gets its own copy of the course (``nbgrader_config.py``, ``source/`` and a
snapshot of ``gradebook.db``) in a temporary folder and runs nbgrader's own ``autograde`` and
``generate_feedback`` there, one submission at a time, with the course's configuration (same
preprocessors, timeout and limits as stock ``nbgrader autograde``). Workers never touch the main
gradebook; when all are done, :func:`grader.merge.merge_shards` copies their results into it in
one process. A submission that crashes nbgrader is reported and the others go on.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

from traitlets.config import Config

from grader.coursedir import db_url, ensure_tools_on_path, open_api
from grader.engine.secret import SECRET_FILE, course_secret
from grader.failures import CRASHED, explain
from grader.merge import merge_shards
from grader.nbgrader_links import STAGED
from grader.nbgrader_speedups import speed_up_nbgrader
from grader.sandbox.bwrap import debugging
from grader.sandbox.files import RefusedFileError, copy_tree


@dataclass
class Outcome:
    """What happened to one submission (before its grades are read from the gradebook)."""

    assignment: str
    student: str
    graded: bool
    message: str = ""
    log: str = field(default="", repr=False)


def available_cores() -> int:
    """Cores this process may run on (respects taskset/cpusets, unlike ``os.cpu_count``)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def snapshot_gradebook(course: Path, dest: Path) -> None:
    """A consistent copy of ``course/gradebook.db`` at ``dest`` (SQLite's backup API)."""
    with sqlite3.connect(Path(course) / "gradebook.db") as src, sqlite3.connect(dest) as dst:
        src.backup(dst)


def make_shard(course: Path, shard: Path, gradebook: Path | None, create_secret: bool = True) -> Path:
    """Create the shard course directory ``shard`` from ``course`` and a gradebook snapshot (if any).

    A shard holds what grading needs: the config, the source notebooks, the exercises' hidden checks
    and the course's grading secret (the same secret gives the same hidden inputs, so every shard
    grades as the course would).
    """
    course = Path(course)
    shard.mkdir(parents=True, exist_ok=True)
    shutil.copy(course / "nbgrader_config.py", shard / "nbgrader_config.py")
    shutil.copytree(course / "source", shard / "source", dirs_exist_ok=True)
    if (course / "exercises").is_dir():
        shutil.copytree(course / "exercises", shard / "exercises", dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__"))
    secret = shard / SECRET_FILE
    if not secret.exists():
        secret.write_bytes(course_secret(course, create=create_secret).hex().encode() + b"\n")
        secret.chmod(0o600)
    if gradebook is not None:
        shutil.copy(gradebook, shard / "gradebook.db")
    return shard


def overrides_config(timeout: int | None = None, memory_mb: int | None = None, sandbox: bool | None = None,
                     notebook_timeout: int | None = None) -> Config:
    cfg = Config()
    if timeout is not None:
        cfg.Execute.timeout = timeout
    if notebook_timeout is not None:
        cfg.TrustedExecute.notebook_timeout = notebook_timeout
    if memory_mb is not None:
        cfg.SandboxedKernelManager.memory_limit_mb = memory_mb
    if sandbox is not None:
        cfg.SandboxedKernelManager.sandbox = sandbox
    return cfg


# --- worker process side -------------------------------------------------------------------------
_worker: dict = {}


def _init_worker(course: str, gradebook: str, shards_dir: str, timeout, memory_mb, sandbox, zygote,
                 notebook_timeout=None) -> None:
    ensure_tools_on_path()
    warnings.filterwarnings("ignore")  # nbgrader/SQLAlchemy/nbformat chatter; nbgrader's log is captured
    shard = Path(tempfile.mkdtemp(prefix=f"shard-{os.getpid()}-", dir=shards_dir))
    # kernels inherit stderr: keep their start-up warnings out of the progress bar
    stderr = os.open(shard / "stderr.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(stderr, 2)
    import faulthandler

    faulthandler.enable(all_threads=True)  # a worker that dies in C code says where, in its stderr.log
    make_shard(Path(course), shard, Path(gradebook))
    speed_up_nbgrader()  # one gradebook engine per database, one metadata validator per schema
    cfg = overrides_config(timeout, memory_mb, sandbox, notebook_timeout)
    # Kernels talk over Unix sockets in their own sandbox folder (grader/sandbox/kernel.py), never TCP
    # ports, which kernels started at the same time in different processes could pick twice. Each worker
    # forks its kernels from its own pre-imported zygote where it can (grader/sandbox/zygote.py).
    cfg.TrustedExecute.zygote = bool(zygote)
    if zygote:
        from multiprocessing.util import Finalize

        from grader.sandbox.zygote import close_all

        Finalize(None, close_all, exitpriority=10)
    _worker.update(course=Path(course), shard=shard, api=open_api(shard, cfg))


def grade_one(assignment: str, student: str, feedback: bool = True) -> Outcome:
    """Autograde (and write feedback for) one submission in this worker's shard."""
    course, shard, api = _worker["course"], _worker["shard"], _worker["api"]
    target = shard / "submitted" / student / assignment
    if target.exists():
        shutil.rmtree(target)
    # Staged without following links; what was refused is reported by the autograde (grader/nbgrader_links.py).
    try:
        refused = copy_tree(course / "submitted" / student / assignment, target)
    except RefusedFileError as err:
        return Outcome(assignment, student, False, f"{err.message}; graded 0")
    notebook = [r for r in refused if r.path == f"{assignment}.ipynb"]
    if notebook:  # as stock autograde says it (RefusedFileError from grader/nbgrader_links.py)
        return Outcome(assignment, student, False, f"{RefusedFileError(notebook[0], 'the notebook')}; graded 0")
    STAGED[(assignment, student)] = refused
    result = api.autograde(assignment, student, force=True, create=True)
    log = (result.get("log") or "") + (result.get("error") or "")
    if not result["success"]:
        return Outcome(assignment, student, False, explain(target / f"{assignment}.ipynb", log), log)
    if feedback:
        fb = api.generate_feedback(assignment, student, force=True)
        if not fb["success"]:
            return Outcome(assignment, student, True, "graded, but feedback failed", fb.get("log", ""))
    return Outcome(assignment, student, True, "", log)


# --- coordinator side ----------------------------------------------------------------------------
def grade_parallel(
    course: Path,
    tasks: Iterable[tuple[str, str]],
    jobs: int | None = None,
    timeout: int | None = None,
    memory_mb: int | None = None,
    feedback: bool = True,
    into: Path | None = None,
    on_done: Callable[[Outcome], None] | None = None,
    sandbox: bool | None = None,
    zygote: bool = True,
    notebook_timeout: int | None = None,
) -> list[Outcome]:
    """Grade ``(assignment, student)`` tasks of ``course`` with ``jobs`` worker processes (default:
    all cores) and merge the results into ``into`` (default: ``course`` itself; its gradebook must
    already hold the assignments, see ``grader.cli.ensure_generated``). ``course`` is only read."""
    course = Path(course).resolve()
    into = Path(into).resolve() if into is not None else course
    tasks = list(tasks)
    jobs = max(1, min(jobs or available_cores(), len(tasks) or 1))
    outcomes: list[Outcome] = []
    if debugging():  # keep the workers' shards (their stderr.log) for the grader's developers
        shards_dir = contextlib.nullcontext(tempfile.mkdtemp(prefix="grader-shards-kept-"))
        print(f"GRADER_ZYGOTE_DEBUG: the workers' shards are kept in {shards_dir.enter_result}", file=sys.stderr)
    else:
        shards_dir = tempfile.TemporaryDirectory(prefix="grader-shards-")
    with shards_dir as tmp:
        gradebook = Path(tmp) / "snapshot.db"
        snapshot_gradebook(into, gradebook)  # the gradebook the results go to knows the assignments
        # fork: workers start at once with nbgrader already imported (spawn costs seconds per worker)
        ctx = get_context("fork" if sys.platform.startswith("linux") else "spawn")
        init = (str(course), str(gradebook), tmp, timeout, memory_mb, sandbox, zygote, notebook_timeout)
        with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_init_worker, initargs=init) as pool:
            futures = {pool.submit(grade_one, a, s, feedback): (a, s) for a, s in tasks}
            for fut in as_completed(futures):
                try:
                    outcome = fut.result()
                except Exception as exc:  # a worker died (e.g. killed): report, keep the others
                    a, s = futures[fut]
                    outcome = Outcome(a, s, False, CRASHED, f"{type(exc).__name__}: {exc}\n")
                outcomes.append(outcome)
                if on_done is not None:
                    on_done(outcome)
        shards = sorted(p for p in Path(tmp).iterdir() if p.is_dir())
        crashed = [o for o in outcomes if o.message == CRASHED]
        if crashed:  # a worker died: what the workers wrote last goes into these submissions' logs
            last_words = "".join(f"--- stderr of worker {p.name} ---\n{_tail(p / 'stderr.log')}\n" for p in shards)
            for o in crashed:
                o.log += last_words
        t0 = time.perf_counter()
        merge_shards(shards, into)
        if os.environ.get("GRADER_TIMING"):
            print(f"merge: {time.perf_counter() - t0:.2f} s", file=sys.stderr)
    return sorted(outcomes, key=lambda o: (o.assignment, o.student))


def _tail(path: Path, size: int = 6000) -> str:
    try:
        return path.read_text(errors="replace")[-size:]
    except OSError:
        return "(no stderr.log)"


def gradebook_url(course: Path) -> str:
    return db_url(course)
