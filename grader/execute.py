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
        100_000, help="Characters of output kept per cell (streams and text results); -1 means no limit."
    ).tag(config=True)

    zygote = Bool(
        False, help="Fork each sandboxed kernel from a pre-imported zygote (python -m grader grade sets it "
        "where it can: Linux, as root)."
    ).tag(config=True)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
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
            try:
                first = True
                for index, cell in enumerate(self.nb.cells):
                    if cell.cell_type == "code" and cell.source.strip() and not is_grade(cell):
                        await self._run_cell(index, cell)
                        clock.lap("setup cell" if first else "other cells")
                        first = False
                await self._run_checks(exercise, secret, reports)
                clock.lap("hidden checks")
            except _GiveUp as err:
                for name in exercise.check_order:
                    reports.setdefault(name, checker.Report(name, f"{name}: {err}", mistake="no-answer"))
            finally:
                if self.km is None:  # a failed restart: leave a manager for the cleanup to find
                    self.km = self.create_kernel_manager()
        clock.lap("kernel shutdown")
        self._write_verdicts(exercise, reports)
        clock.write(self.resources.get("nbgrader", {}), restarts=self._restarts)

    async def _run_cell(self, index: int, cell: NotebookNode) -> None:
        try:
            await self.async_execute_cell(cell, index, store_history=True)
            self._ran.append(index)
        except _CellTimedOut:
            cell.outputs.append(error_output(
                "CellTimeoutError", f"This cell ran longer than the time limit ({self.timeout} s) and was stopped."
            ))
            self._skip.add(index)
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

    async def _reply(self, msg_id: str, timeout: float) -> dict | None:
        """The shell reply to ``msg_id``, or None when none came in ``timeout`` seconds or the kernel died."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                msg = await ensure_async(self.kc.shell_channel.get_msg(timeout=min(remaining, 1.0)))
            except Empty:
                if not await ensure_async(self.km.is_alive()):
                    return None
                continue
            if msg.get("parent_header", {}).get("msg_id") == msg_id:
                return msg

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
        try:
            for index in self._ran:
                if index in self._skip:
                    continue
                try:
                    await self.async_execute_cell(copy.deepcopy(self.nb.cells[index]), index, store_history=False)
                except (_CellTimedOut, DeadKernelError, CellTimeoutError):
                    self._skip.add(index)
                    return False
            return True
        finally:
            self._display_id_map, self._chars_by_cell = saved_map, saved_chars

    # ---- the hidden checks ------------------------------------------------------------------------

    async def _run_checks(self, exercise: registry.Exercise, secret: bytes, reports: dict) -> None:
        sources = [c.source for c in self.nb.cells if c.cell_type == "code" and not is_grade(c) and not is_locked(c)]
        no_autograd = [n for n in exercise.points if exercise.specs[n].no_autograd]
        static = refusals.static_refusals(sources, exercise.points, no_autograd)
        done: list[str] = []
        for name in exercise.check_order:
            pending = checker.prepare(exercise, name, secret, done, static)
            result = None if pending.decided else await self._answer(pending)
            reports[name] = checker.judge(exercise, pending, result)
            done.append(name)

    async def _answer(self, pending: checker.Pending) -> transport.KernelResult | checker.NoAnswer:
        """Run one function's hidden cases in the kernel and read its answer back as plain data."""
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
        timeout = self.check_timeout or self.timeout or 30
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
                    await self._restart()
                if not alive:
                    return checker.NoAnswer("the kernel died while the grader ran it on the hidden tests (it ran "
                                            "out of memory, crashed or exited).")
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

    def output(self, outs, msg, display_id, cell_index):
        out = super().output(outs, msg, display_id, cell_index)
        if out is None or self.max_output_chars < 0 or out.get("output_type") == "error":
            return out
        used = self._chars_by_cell.get(cell_index, 0)
        size = _text_size(out)
        self._chars_by_cell[cell_index] = used + size
        if used + size <= self.max_output_chars:
            return out
        if used > self.max_output_chars:  # already truncated: drop everything that follows
            if outs and outs[-1] is out:
                outs.pop()
            return None
        _truncate(out, self.max_output_chars - used, TRUNCATION_NOTE.format(limit=self.max_output_chars))
        self._chars_by_cell[cell_index] = self.max_output_chars + 1
        return out


def _text_size(out: NotebookNode) -> int:
    if out.get("output_type") == "stream":
        return len(out.get("text", ""))
    data = out.get("data", {})
    return sum(len(v) if isinstance(v, str) else len(str(v)) for v in data.values())


def _truncate(out: NotebookNode, keep: int, note: str) -> None:
    if out.get("output_type") == "stream":
        out["text"] = out.get("text", "")[:keep] + note
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
