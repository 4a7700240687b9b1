"""Grading one notebook: run it in a sandboxed kernel, then check every graded function from outside.

:class:`TrustedExecute` is the execute step of ``nbgrader autograde`` (``grader/nbgrader_config.py``
puts it in place of nbgrader's ``Execute``), so stock nbgrader and ``python -m grader grade`` grade
the same way:

1. A fresh sandboxed kernel (:mod:`grader.sandbox`) runs the notebook's cells in order, except the
   grade cells, with nbgrader's per-cell time limit. A cell that runs too long is interrupted; if the
   kernel does not stop (it ignores the interrupt), or dies, the grader kills its whole sandbox,
   starts a new one, replays the cells that had run (without the one that hung or crashed) and goes
   on. The outputs kept are those of the first run, at most ``max_output_chars`` per cell.
2. For each graded function, in :attr:`~grader.engine.registry.Exercise.check_order`, the grader
   writes the hidden inputs into the sandbox, asks the kernel (with :mod:`grader.engine.probe`) to
   call the student's function on them, and reads back plain data. Comparison with the reference
   and diagnosis of known mistakes happen here (:mod:`grader.engine.checker`); whatever the kernel
   prints meanwhile is discarded. A function that does not answer in time, or kills the kernel,
   scores 0 with a message, and the others are still checked.
3. Each grade cell's outputs are replaced by its verdict (:mod:`grader.engine.verdict`); nbgrader's
   ``SaveAutoGrades`` then scores them. Nothing the kernel does to its own cells, its hooks, NumPy or
   the visible tests changes a score.
"""

from __future__ import annotations

import copy
import inspect
import json
import math
import os
import shutil
import time
from pathlib import Path
from queue import Empty

from jupyter_core.utils import ensure_async, run_sync
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.notebooknode import NotebookNode, from_dict
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import Execute
from nbgrader.utils import is_grade, is_locked
from traitlets import Bool, Float, Integer

from grader.engine import checker, probe, refusals, registry, transport, verdict
from grader.engine.secret import course_secret
from grader.sandbox.bwrap import check_available
from grader.sandbox.kernel import SandboxedKernelManager

PROBE_SOURCE = inspect.getsource(probe)
TRUNCATION_NOTE = "\n... output truncated by the grader (more than {limit} characters in this cell) ...\n"


class _CellTimedOut(Exception):
    pass


class _GiveUp(Exception):
    pass


class _Phases:
    """Wall time of each phase of grading one notebook, written as one JSON line to the file named by
    ``$GRADER_TIMING`` when it is set (``benchmarks/grading.py`` reads them)."""

    def __init__(self) -> None:
        self.t0 = self.last = time.perf_counter()
        self.phases: dict[str, float] = {}
        self.maxrss_start_mb = _maxrss_mb()  # the grading process's peak memory before this notebook

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.phases[name] = self.phases.get(name, 0.0) + now - self.last
        self.last = now

    def write(self, who: dict, **extra: object) -> None:
        path = os.environ.get("GRADER_TIMING")
        if not path:
            return
        record = {"assignment": who.get("assignment"), "student": who.get("student"), "pid": os.getpid(),
                  "total": time.perf_counter() - self.t0, **self.phases, **extra}
        with open(path, "a") as f:
            f.write(json.dumps(record) + "\n")


def error_output(ename: str, message: str) -> NotebookNode:
    """An error output with the grader's own message (no traceback from the grader's code)."""
    return from_dict({"output_type": "error", "ename": ename, "evalue": message, "traceback": [message]})


def _stream(text: str) -> NotebookNode:
    return from_dict({"output_type": "stream", "name": "stdout", "text": text})


def _maxrss_mb() -> float:
    """This (grading) process's peak resident memory so far, in MiB."""
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


class _Budget:
    """One notebook's wall clock: ``seconds`` in all (0: no limit), of which ``checks_share`` is kept for the
    hidden checks. The cells run until ``cells_end``; replays after a restart and the checks until ``end``."""

    def __init__(self, seconds: int, checks_share: float) -> None:
        now = time.monotonic()
        self.seconds = seconds
        self.end = now + seconds if seconds > 0 else math.inf
        self.cells_end = self.end - seconds * min(max(checks_share, 0.0), 0.9) if seconds > 0 else math.inf
        self.checking = False

    def checks_begin(self) -> None:
        self.checking = True

    def left(self) -> float:
        return self.end - time.monotonic()

    def cells_left(self) -> float:
        return (self.end if self.checking else self.cells_end) - time.monotonic()

    def words(self) -> str:
        return f"the notebook's time budget ({self.seconds} s for its cells, replays and hidden checks) was spent"


class TrustedExecute(Execute):
    """nbgrader's execute step, with a sandboxed kernel and verdicts computed outside it."""

    check_timeout = Integer(
        0, help="Seconds for all hidden cases of one graded function (0: the same as Execute.timeout)."
    ).tag(config=True)
    interrupt_grace = Float(3.0, help="Seconds a kernel gets to stop after an interrupt before it is killed.").tag(
        config=True
    )
    max_restarts = Integer(4, help="Kernel restarts per notebook (after hangs or crashes) before giving up.").tag(
        config=True
    )
    max_output_chars = Integer(
        100_000, help="Characters of output kept per cell, every kind counted (streams, results, displays and their "
        "updates, errors with their tracebacks); -1 means no limit."
    ).tag(config=True)
    notebook_timeout = Integer(
        600, help="Seconds for the whole notebook: its cells, replays after restarts and hidden checks (0: no limit). "
        "When they are spent the remaining cells are not run and the functions are checked with what was defined."
    ).tag(config=True)
    checks_share = Float(
        0.25, help="Part of notebook_timeout kept for the hidden checks: the cells may use the rest."
    ).tag(config=True)

    zygote = Bool(
        False, help="Fork each sandboxed kernel from a pre-imported zygote (python -m grader grade sets it "
        "where it can: Linux, as root)."
    ).tag(config=True)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._iopub_configured = self.iopub_timeout
        self._budget = _Budget(0, 0.0)
        self._managers: list = []  # every kernel manager of the notebook being graded
        self._replaying = self._cut_by_budget = False
        if "kernel_manager_class" not in kwargs:
            from grader.sandbox import zygote

            use_zygote = self.zygote and self._sandboxed_config() and zygote.zygote_kernels_possible()
            self.kernel_manager_class = zygote.ZygoteKernelManager if use_zygote else SandboxedKernelManager
            if use_zygote:  # its state is thrown away anyway: kill it at once (a request to the zygote)
                self.shutdown_kernel = "immediate"

    # ---- entry point ------------------------------------------------------------------------------

    def preprocess(self, nb, resources, km=None):
        from nbclient import NotebookClient

        NotebookClient.__init__(self, nb, km)
        self.reset_execution_trackers()
        self._check_assign_resources(resources)
        self._notices: list[str] = []  # what the feedback's note and the grades CSV say about the whole notebook
        self._managers: list = []  # every kernel manager of this notebook (their sandboxes' usage is read at the end)
        self._budget = _Budget(self.notebook_timeout, self.checks_share)
        self._budget_hit = False  # a cell was stopped by the budget, not by its own time limit
        self._checks_cut = False  # a function was not checked: the budget was spent
        self._gave_up: _GiveUp | None = None  # no kernel could be restarted after a function's checks
        self._refused: list[str] = []  # links and special files of the submission, not used (in words)
        for words in resources["nbgrader"].get("refused_files", []):  # grader/nbgrader_links.py (which logs them)
            self._refuse(words)
        course = Path(CourseDirectory(config=self.config).root).resolve()
        assignment = resources["nbgrader"]["assignment"]
        exercise = registry.exercise(assignment, course / "exercises")
        secret = course_secret(course)
        self.sandboxed = self._sandboxed()
        self._uses_torch = exercise.uses_torch
        if self.sandboxed:
            check_available()
        else:
            self.log.warning("grading %s WITHOUT a sandbox: its code runs as you, with your files", assignment)
        run_sync(self._async_grade)(exercise, secret)
        return self.nb, self.resources

    def create_kernel_manager(self):  # noqa: ANN201
        km = super().create_kernel_manager()
        self._managers.append(km)
        if hasattr(km, "preload_torch"):  # a zygote kernel: from the zygote with PyTorch only where needed
            km.preload_torch = getattr(self, "_uses_torch", True)
        return km

    def _sandboxed_config(self) -> bool:
        return bool(self.config.get("SandboxedKernelManager", {}).get("sandbox", True))

    def _sandboxed(self) -> bool:
        return self._sandboxed_config() and issubclass(self.kernel_manager_class, SandboxedKernelManager)

    # ---- running the notebook ---------------------------------------------------------------------

    async def _async_grade(self, exercise: registry.Exercise, secret: bytes) -> None:
        self._cwd = self.resources.get("metadata", {}).get("path") or None
        self._skip: set[int] = set()  # cells not replayed after a restart (they hung or killed the kernel)
        self._ran: list[int] = []
        self._restarts = 0
        self._jobs = 0
        self._chars_by_cell: dict[int, int] = {}
        reports: dict[str, checker.Report] = {}
        clock = _Phases()
        async with self.async_setup_kernel(cwd=self._cwd):
            clock.lap("kernel start")
            for refused in getattr(getattr(self.km, "box", None), "refused", []):  # the sandbox's copy-in
                self.log.warning("refused %s: %s (graded without it)", refused.path, refused.words())
                self._refuse(refused.words())
            try:
                first = True
                cells = [i for i, c in enumerate(self.nb.cells)
                         if c.cell_type == "code" and c.source.strip() and not is_grade(c)]
                skipped: list[int] = []
                for n, index in enumerate(cells):
                    if self._budget.cells_left() <= 0:
                        skipped = cells[n:]
                        break
                    await self._run_cell(index, self.nb.cells[index])
                    clock.lap("setup cell" if first else "other cells")
                    first = False
                if skipped or self._budget_hit:
                    self._not_run(skipped)
                self._budget.checks_begin()
                await self._run_checks(exercise, secret, reports)
                clock.lap("hidden checks")
            except _GiveUp as err:
                if self._budget.left() <= 0:
                    self._notices.append(f"{self._budget.words().capitalize()}: the functions not checked by then "
                                         "score 0.")
                for name in exercise.check_order:
                    reports.setdefault(name, checker.Report(name, f"{name}: {err}", mistake="no-answer"))
            finally:
                if self.km is None:  # a failed restart: leave a manager for the cleanup to find
                    self.km = self.create_kernel_manager()
        clock.lap("kernel shutdown")
        self._write_verdicts(exercise, reports)
        usage = self._sandbox_usage()
        self._write_notices(usage)
        clock.write(self.resources.get("nbgrader", {}), restarts=self._restarts, sandbox=usage,
                    maxrss_start_mb=clock.maxrss_start_mb, maxrss_mb=_maxrss_mb(), budget_s=self.notebook_timeout)

    # ---- what the whole notebook's feedback says --------------------------------------------------------

    def _refuse(self, words: str) -> None:
        if not self._refused:
            self._notices.append("")  # its place among the notices; written by _write_notices
        self._refused.append(words)

    def _not_run(self, indices: list[int]) -> None:
        """The cells' part of the notebook's time budget is spent: say so, and in each cell that is not run."""
        for index in indices:
            self.nb.cells[index].outputs = [_stream(f"Not run: the notebook's time budget ({self.notebook_timeout} s) "
                                                    "was spent before this cell.\n")]
        self._notices.append(
            f"The notebook's time budget ({self.notebook_timeout} s for its cells, replays and hidden checks) ran "
            f"out while its cells ran: a cell was stopped or {len(indices)} cell(s) were not run, and the functions "
            "were checked with what had been defined by then.")

    def _sandbox_usage(self) -> dict:
        """The largest peak memory of this notebook's sandboxes, from their control groups (empty without one)."""
        usages = [u for km in self._managers for u in getattr(km, "sandbox_usages", []) if u.get("peak_mb") is not None]
        if not usages:
            return {}
        top = max(usages, key=lambda u: u["peak_mb"])
        return {**top, "oom_kills": sum(u.get("oom_kills", 0) for u in usages), "sandboxes": len(usages)}

    def _write_notices(self, usage: dict) -> None:
        """The notices (in words) in the notebook's metadata and, for people, in a note cell at the top."""
        if self._refused:
            self._notices[self._notices.index("")] = (
                "Files of the submission were not used (links and special files are refused, never read; the "
                f"notebook was graded without them): {'; '.join(self._refused)}.")
        if usage.get("oom_kills"):
            self._notices.append(f"The notebook's sandbox reached its memory limit ({usage['limit_mb']:g} MiB for all "
                                 "its processes together): the operating system stopped processes in it.")
        record = {"notices": self._notices, "sandbox": usage, "notebook_timeout": self.notebook_timeout}
        self.nb.metadata[verdict.META] = record
        if self._notices:
            text = "**A note from the grader about this notebook**\n\n" + "\n".join(f"- {n}" for n in self._notices)
            cell = from_dict({"cell_type": "markdown", "metadata": {verdict.META: {"notices": True}}, "source": text})
            if any("id" in c for c in self.nb.cells):  # nbformat 4.5 cell ids
                cell["id"] = "grader-note"
            self.nb.cells.insert(0, cell)

    async def _run_cell(self, index: int, cell: NotebookNode) -> None:
        try:
            await self.async_execute_cell(cell, index, store_history=True)
            self._ran.append(index)
        except _CellTimedOut:
            cell.outputs.append(error_output("CellTimeoutError", (
                f"This cell was stopped: {self._budget.words()}." if self._cut_by_budget else
                f"This cell ran longer than the time limit ({self.timeout} s) and was stopped.")))
            self._skip.add(index)
            self._budget_hit = self._budget_hit or self._cut_by_budget
            if not await self._responsive():
                await self._restart()
        except (DeadKernelError, CellTimeoutError):
            cell.outputs.append(error_output(
                "DeadKernelError",
                "The kernel died or stopped answering while running this cell (it ran out of memory, crashed, "
                "exited or ignored the interrupt); the grader restarted it without this cell and went on.",
            ))
            self._skip.add(index)
            await self._restart()

    def _get_timeout(self, cell):  # noqa: ANN202
        """A cell's time limit: ``Execute.timeout``, or less where the notebook's budget has less left (the cells'
        share while they first run; all of it for replays). Waiting for a cell's last outputs is bounded too."""
        timeout = super()._get_timeout(cell)
        left = self._budget.left() if self._replaying else self._budget.cells_left()
        self._cut_by_budget = left < (timeout or math.inf)
        self.iopub_timeout = max(1, min(self._iopub_configured, math.ceil(left))) if left < math.inf else \
            self._iopub_configured
        return timeout if left == math.inf else max(0.1, min(timeout or math.inf, left))

    async def _async_handle_timeout(self, timeout, cell=None):
        """nbclient's timeout handler: interrupt the kernel, then let the caller decide what follows."""
        try:
            await ensure_async(self.km.interrupt_kernel())
        except Exception:  # noqa: BLE001 - a dead kernel cannot be interrupted; the caller kills it
            pass
        raise _CellTimedOut()

    async def _responsive(self) -> bool:
        """After an interrupt: does the kernel answer a trivial request within ``interrupt_grace``?"""
        try:
            msg_id = self.kc.execute("", silent=True, store_history=False)
            return await self._reply(msg_id, self.interrupt_grace) is not None
        except Exception:  # noqa: BLE001
            return False

    async def _kill(self) -> None:
        km, kc = self.km, self.kc
        self.km = self.kc = None
        if kc is not None:
            kc.stop_channels()
        if km is not None:
            try:
                await ensure_async(km.shutdown_kernel(now=True))  # SIGKILL: the whole sandbox goes with it
            except Exception:  # noqa: BLE001
                await ensure_async(km.cleanup_resources())

    async def _restart(self) -> None:
        """A new sandboxed kernel in which the cells that had run are replayed (outputs discarded)."""
        while True:
            if self._restarts >= self.max_restarts:
                raise _GiveUp("the kernel had to be restarted too often (hangs or crashes), so grading stopped")
            if self._budget.left() <= 0:
                raise _GiveUp(f"{self._budget.words()} before the kernel could be restarted")
            self._restarts += 1
            await self._kill()
            self.km = self.create_kernel_manager()
            await self.async_start_new_kernel(cwd=self._cwd)
            await self.async_start_new_kernel_client()
            if await self._replay():
                return

    async def _replay(self) -> bool:
        saved_map, saved_chars = self._display_id_map, self._chars_by_cell
        self._display_id_map, self._chars_by_cell = {}, {}
        self._replaying = True
        try:
            for index in self._ran:
                if index in self._skip:
                    continue
                if self._budget.left() <= 0:
                    return False
                try:
                    await self.async_execute_cell(copy.deepcopy(self.nb.cells[index]), index, store_history=False)
                except (_CellTimedOut, DeadKernelError, CellTimeoutError):
                    self._skip.add(index)
                    return False
            return True
        finally:
            self._display_id_map, self._chars_by_cell = saved_map, saved_chars
            self._replaying = False

    # ---- the hidden checks ------------------------------------------------------------------------

    async def _run_checks(self, exercise: registry.Exercise, secret: bytes, reports: dict) -> None:
        sources = [c.source for c in self.nb.cells if c.cell_type == "code" and not is_grade(c) and not is_locked(c)]
        no_autograd = [n for n in exercise.points if exercise.specs[n].no_autograd]
        static = refusals.static_refusals(sources, exercise.points, no_autograd)
        names = checker.identifiers(sources)  # what a message may quote of the student's own names
        done: list[str] = []
        for n, name in enumerate(exercise.check_order):
            pending = checker.prepare(exercise, name, secret, done, static, names)
            if pending.decided:
                result = None
            elif self._budget.left() <= 0:
                result = checker.NoAnswer(f"{self._budget.words()} before it could be checked.")
                if not self._checks_cut:
                    self._checks_cut = True
                    self._notices.append(f"{self._budget.words().capitalize()} before every function could be "
                                         "checked: those not checked score 0.")
            else:  # its share: what is left, split among the functions still to check
                result = await self._answer(pending, self._budget.left() / (len(exercise.check_order) - n))
            reports[name] = checker.judge(exercise, pending, result)
            done.append(name)
            if self._gave_up is not None:
                raise self._gave_up

    async def _answer(self, pending: checker.Pending,
                      share: float = math.inf) -> transport.KernelResult | checker.NoAnswer:
        """Run one function's hidden cases in the kernel and read its answer back as plain data, in at most the
        check time limit or ``share`` seconds (its part of what is left of the notebook's budget)."""
        self._jobs += 1
        name = f"job-{self._jobs}"
        box = getattr(self.km, "box", None) if self.sandboxed else None
        if box is not None:
            host_in, host_out, kernel_in, kernel_out = box.job_dirs(name)
        else:  # unsandboxed: the kernel sees the grader's own paths
            import tempfile

            root = Path(tempfile.mkdtemp(prefix="grader-job-"))
            host_in, host_out = root / "in", root / "out"
            host_out.mkdir()
            kernel_in, kernel_out = str(host_in), str(host_out)
        limit = self.check_timeout or self.timeout or 30
        timeout = min(limit, max(share, 0.1))
        try:
            transport.write_job(host_in, pending.job, pending.runs)
            msg_id = self.kc.execute(probe.kernel_code(PROBE_SOURCE, kernel_in, kernel_out), silent=True,
                                     store_history=False)
            reply = await self._reply(msg_id, timeout)
            shutil.rmtree(host_in, ignore_errors=True)  # the hidden inputs leave the sandbox at once
            if reply is None:
                alive = await ensure_async(self.km.is_alive())
                if alive:
                    await ensure_async(self.km.interrupt_kernel())
                if not alive or not await self._responsive():
                    try:
                        await self._restart()
                    except _GiveUp as err:  # this function's verdict first; _run_checks then stops
                        self._gave_up = err
                if not alive:
                    return checker.NoAnswer("the kernel died while the grader ran it on the hidden tests (it ran "
                                            "out of memory, crashed or exited).")
                if timeout < limit:
                    return checker.NoAnswer("it ran longer than its share of the notebook's time budget "
                                            f"({timeout:.0f} s) on the hidden tests, and was stopped.")
                return checker.NoAnswer(f"it ran longer than the time limit ({timeout} s) on the hidden tests, "
                                        "and was stopped.")
            try:
                return transport.read_result(host_out, len(pending.runs), pending.name)
            except transport.BadResult:
                return checker.NoAnswer("no usable answer came back from your kernel (did your notebook change how "
                                        "code runs, exit, or replace the function while it ran?).")
        finally:
            shutil.rmtree(host_in, ignore_errors=True)
            shutil.rmtree(host_out, ignore_errors=True)
            if box is None:
                shutil.rmtree(host_in.parent, ignore_errors=True)

    def _write_verdicts(self, exercise: registry.Exercise, reports: dict) -> None:
        for cell in self.nb.cells:
            if cell.cell_type != "code" or not is_grade(cell):
                continue
            name = verdict.function_of(cell.metadata["nbgrader"].get("grade_id", ""))
            points = float(cell.metadata["nbgrader"].get("points", 0))
            report = reports.get(name) or checker.Report(
                name or "?", "The grader has no hidden checks for this cell; it scores 0.", mistake="no-checks"
            )
            verdict.record(cell, report, points, self.sandboxed)

    # ---- output limit -----------------------------------------------------------------------------
    # Every kind of output a cell sends counts against its max_output_chars, cumulatively (clearing the
    # outputs gives no new room): streams, execute results, displays and their updates, errors with their
    # tracebacks, and output metadata. Past the limit the grader keeps a note and drops the rest at once.
    # Comm (widget) messages are discarded: the grader renders no widget, and keeping their state let one
    # notebook grow the grading process by gigabytes.

    def process_message(self, msg, cell, cell_index):  # noqa: ANN201
        self._cell_index = cell_index  # for _update_display_id, which nbclient does not tell
        return super().process_message(msg, cell, cell_index)

    def output(self, outs, msg, display_id, cell_index):
        out = super().output(outs, msg, display_id, cell_index)
        if out is None or self.max_output_chars < 0:
            return out
        keep = self._room(cell_index, _text_size(out))
        if keep is None:
            return out
        if keep <= 0:  # already truncated: drop everything that follows (the note stays, even after a clear)
            if outs and outs[-1] is out:
                outs.pop()
            note = TRUNCATION_NOTE.format(limit=self.max_output_chars)
            last = outs[-1] if outs else {}
            if note not in str(last.get("text", "")) + str(last.get("data", {}).get("text/plain", "")):
                outs.append(_stream(note))
            return None
        _truncate(out, keep, TRUNCATION_NOTE.format(limit=self.max_output_chars))
        return out

    def _update_display_id(self, display_id, msg):  # noqa: ANN001
        """An ``update_display_data`` (or a new display with an existing id) replaces earlier outputs' data:
        it counts like a new output, and past the limit it is dropped."""
        if self.max_output_chars >= 0:
            content = msg.get("content", {})
            size = _text_size({"output_type": "display_data", "data": content.get("data", {}),  # no copy
                               "metadata": content.get("metadata", {})})
            keep = self._room(getattr(self, "_cell_index", -1), size)
            if keep is not None:
                return None
        return super()._update_display_id(display_id, msg)

    def _room(self, cell_index: int, size: int) -> int | None:
        """Count ``size`` characters against the cell's limit: None if they fit, else how many may still be kept."""
        used = self._chars_by_cell.get(cell_index, 0)
        if used + size <= self.max_output_chars:
            self._chars_by_cell[cell_index] = used + size
            return None
        self._chars_by_cell[cell_index] = self.max_output_chars + 1
        return self.max_output_chars - used if used <= self.max_output_chars else 0

    def handle_comm_msg(self, outs, msg, cell_index):  # noqa: ANN001
        return None

    async def _reply(self, msg_id: str, timeout: float) -> dict | None:
        """The shell reply to ``msg_id``, or None when none came in ``timeout`` seconds or the kernel died.
        What the kernel publishes meanwhile (prints during the hidden checks) is read and dropped, so that it
        never piles up in the grader."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            await self._drain_iopub()
            try:
                msg = await ensure_async(self.kc.shell_channel.get_msg(timeout=min(remaining, 0.2)))
            except Empty:
                if not await ensure_async(self.km.is_alive()):
                    return None
                continue
            if msg.get("parent_header", {}).get("msg_id") == msg_id:
                return msg

    async def _drain_iopub(self, most: int = 1000) -> None:
        for _ in range(most):
            try:
                await ensure_async(self.kc.iopub_channel.get_msg(timeout=0))
            except Empty:
                return
            except Exception:  # noqa: BLE001 - a closed channel: nothing to drain
                return


def _text_size(out: dict) -> int:
    """Characters of one output: its text, data, error (name, value, traceback) and metadata."""
    kind = out.get("output_type")
    if kind == "stream":
        size = len(out.get("text", ""))
    elif kind == "error":
        size = len(str(out.get("ename", ""))) + len(str(out.get("evalue", "")))
        size += sum(len(str(line)) for line in out.get("traceback", []) or [])
    else:
        data = out.get("data", {})
        size = sum(len(v) if isinstance(v, str) else len(str(v)) for v in data.values())
    meta = out.get("metadata")
    return size + (len(str(meta)) if meta else 0)


def _truncate(out: NotebookNode, keep: int, note: str) -> None:
    if out.get("metadata"):
        out["metadata"] = {}
    kind = out.get("output_type")
    if kind == "stream":
        out["text"] = out.get("text", "")[:keep] + note
        return
    if kind == "error":
        out["ename"] = str(out.get("ename", ""))[:200]
        out["evalue"] = str(out.get("evalue", ""))[:keep] + note
        lines, left = [], max(keep - len(out["evalue"]), 0)
        for line in out.get("traceback", []) or []:
            line = str(line)
            if len(line) > left:
                break
            lines.append(line)
            left -= len(line)
        out["traceback"] = [*lines, note]
        return
    data = out.get("data", {})
    for mime in list(data):
        if mime == "text/plain":
            text = data[mime] if isinstance(data[mime], str) else str(data[mime])
            data[mime] = text[:keep] + note
        else:  # rich outputs (HTML, images) cannot be cut meaningfully: drop them
            del data[mime]
    if "text/plain" not in data:
        data["text/plain"] = note


__all__ = ["TrustedExecute"]
