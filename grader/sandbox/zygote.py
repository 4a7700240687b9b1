"""Fresh sandboxed kernels without paying interpreter start-up: the grader's side of the zygote.

``python -m grader grade`` starts one zygote per worker process (:mod:`grader.sandbox.zygote_server`,
inside a bubblewrap sandbox that sees the system and the Python environment read-only, nothing of the
course, and no network). The zygote imports the kernel machinery, NumPy and PyTorch once; for each
submission it forks a brand-new kernel that enters namespaces of its own (mount, PID, IPC, UTS),
mounts a fresh view, takes limits it cannot raise and its own unprivileged uid, and only then runs
the student's code. A kernel starts in tens of milliseconds instead of a second or more, and the
``import numpy`` / ``import torch`` of the notebook's first cell cost nothing.

:class:`ZygoteKernelManager` is a :class:`~grader.sandbox.kernel.SandboxedKernelManager` whose
kernels come from the zygote (its provisioner asks the zygote instead of starting a process);
interrupts go through the kernel's control channel. The zygote needs to run as root (the kernels get
dedicated uids, as in the per-kernel sandbox); elsewhere :func:`available` is false and the grader
keeps starting one bubblewrap sandbox per kernel. Stock ``nbgrader autograde`` never uses it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import typing as t
from pathlib import Path

from jupyter_client.provisioning.local_provisioner import LocalProvisioner
from traitlets import Bool

from grader.sandbox import cgroup
from grader.sandbox.bwrap import WORK_DIR, Box, _python_roots, _tool, base_view, debugging, kernel_env, sandbox_python
from grader.sandbox.kernel import SandboxedKernelManager

SERVER = Path(__file__).with_name("zygote_server.py")
SERVER_IN_SANDBOX = "/grader/zygote_server.py"
CGROUPS_IN_SANDBOX = "/grader/cgroup"


class ZygoteError(RuntimeError):
    pass


def available() -> bool:
    """Whether zygote kernels can be used here (the grader runs as root on Linux)."""
    return sys.platform.startswith("linux") and os.geteuid() == 0


class Zygote:
    """One zygote process and the folder that holds its kernels' sandboxes."""

    def __init__(self, scratch_mb: int = 256, torch: bool = True) -> None:
        self.parent = Path(tempfile.mkdtemp(prefix="gz-"))
        etc = self.parent / ".etc"
        etc.mkdir()
        (etc / "passwd").write_text(f"student:x:65534:65534:student:{WORK_DIR}:/bin/sh\n")
        (etc / "group").write_text("student:x:65534:\n")
        # The kernels' control groups are made in this one (grader/sandbox/cgroup.py); each keeper joins its
        # kernel's group through the folders bound at /grader/cgroup/<i>, which the kernel unmounts.
        found, _ = cgroup.hierarchy()
        self.group = found.group(f"{self.parent.name}-{os.getpid()}", for_children=True) if found else None
        cmd = base_view(user_namespace=False, passwd=etc, scratch_mb=scratch_mb, visible=[self.parent / "x"],
                        cgroup_namespace=self.group is None)
        cmd += ["--bind", str(self.parent), str(self.parent),
                "--perms", "0755", "--dir", "/grader",
                "--ro-bind", str(SERVER), SERVER_IN_SANDBOX]
        for i, folder in enumerate(self.group.dirs if self.group else ()):
            cmd += ["--bind", str(folder), f"{CGROUPS_IN_SANDBOX}/{i}"]
        for folder in ("/grader/in", "/grader/out", "/grader/submission", "/grader/kernel-stage", "/home/student"):
            cmd += ["--perms", "0755", "--dir", folder]
        cmd += ["--clearenv"]
        for key, value in kernel_env().items():
            cmd += ["--setenv", key, value]
        cmd += [sandbox_python(), "-I", SERVER_IN_SANDBOX, *(["--torch"] if torch else [])]
        self.lock = threading.Lock()
        log = Path(tempfile.gettempdir()) / f"zygote-{os.getpid()}{'-torch' if torch else ''}.log"
        with open(log if debugging() else os.devnull, "a") as stderr:  # the child keeps its own copy
            self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
                                         text=True, bufsize=1, start_new_session=True)
        first = self.proc.stdout.readline()
        if not first or not json.loads(first).get("ready"):
            self.close()
            raise ZygoteError("the zygote did not start")

    def request(self, **req: t.Any) -> dict:
        with self.lock:
            if self.proc.poll() is not None:
                raise ZygoteError("the zygote is gone")
            self.proc.stdin.write(json.dumps(req) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        if not line:
            raise ZygoteError("the zygote stopped answering")
        answer = json.loads(line)
        if not answer.get("ok"):
            raise ZygoteError(answer.get("error", "the zygote refused"))
        return answer

    def spawn(self, box: Box, connection_file: str) -> int:
        limits = []
        for arg in box.rlimit_args():
            name, value = arg.lstrip("-").split("=")
            soft = value.split(":")[0]
            limits.append([{"as": "RLIMIT_AS", "data": "RLIMIT_DATA", "nproc": "RLIMIT_NPROC", "fsize": "RLIMIT_FSIZE",
                            "cpu": "RLIMIT_CPU", "core": "RLIMIT_CORE", "nofile": "RLIMIT_NOFILE"}[name], int(soft)])
        answer = self.request(op="spawn", root=str(box.root), kernel_dir=str(box.kernel_dir),
                              connection_file=connection_file, uid=box.uid, limits=limits,
                              scratch_mb=box.limits.scratch_mb, env=kernel_env(), keep=python_roots_under_tmp(),
                              debug=debugging(), cgroup_procs=self.inner_procs_files(box),
                              cgroup_mounts=[f"{CGROUPS_IN_SANDBOX}/{i}" for i in range(len(self.group.dirs))]
                              if self.group else [])
        return int(answer["id"])

    def inner_procs_files(self, box: Box) -> list[str]:
        """The ``cgroup.procs`` files of ``box``'s group as the zygote sees them (its keeper writes there)."""
        if box.group is None or self.group is None:
            return []
        return [f"{CGROUPS_IN_SANDBOX}/{i}/{d.name}/cgroup.procs" for i, d in enumerate(box.group.dirs)]

    def poll(self, kernel: int) -> int | None:
        return self.request(op="poll", id=kernel)["code"]

    def kill(self, kernel: int) -> None:
        self.request(op="kill", id=kernel)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=5)
            except Exception:  # noqa: BLE001
                self.proc.kill()
        if self.group is not None:
            self.group.remove()
        shutil.rmtree(self.parent, ignore_errors=True)


def python_roots_under_tmp() -> list[str]:
    """Folders of the grading Python environment below the temp folder, which each kernel's fresh /tmp
    would otherwise hide (a checkout or virtual environment under /tmp)."""
    tmp = Path(tempfile.gettempdir()).resolve()
    return [str(r) for r in _python_roots() if r.is_relative_to(tmp)]


_ZYGOTES: dict[tuple[int, bool], Zygote] = {}


def zygote_for_this_process(scratch_mb: int, torch: bool = True) -> Zygote:
    """The zygote of this (worker) process, started on first use: one that has imported PyTorch for the
    PyTorch chapters, one without it for the others (importing it costs each worker seconds)."""
    key = (os.getpid(), torch)
    if key not in _ZYGOTES or _ZYGOTES[key].proc.poll() is not None:
        _ZYGOTES[key] = Zygote(scratch_mb, torch=torch)
    return _ZYGOTES[key]


def close_all() -> None:
    for key in [k for k in _ZYGOTES if k[0] == os.getpid()]:
        _ZYGOTES.pop(key).close()


class ZygoteProvisioner(LocalProvisioner):
    """Starts the kernel by asking the zygote to fork it; poll/kill go to the zygote too."""

    kernel: int | None = None

    @property
    def has_process(self) -> bool:
        return self.kernel is not None

    async def launch_kernel(self, cmd: list[str], **kwargs: t.Any):  # noqa: ANN201
        km = self.parent
        self.kernel = km.zygote.spawn(km.box, km.connection_file)
        return self.connection_info

    async def poll(self) -> int | None:
        if self.kernel is None:
            return 0
        try:
            return self.parent.zygote.poll(self.kernel)
        except ZygoteError:
            return -1

    async def wait(self) -> int | None:
        import asyncio

        while (code := await self.poll()) is None:
            await asyncio.sleep(0.05)
        return code

    async def send_signal(self, signum: int) -> None:
        import signal

        if signum == signal.SIGKILL:
            await self.kill()

    async def kill(self, restart: bool = False) -> None:
        if self.kernel is not None:
            try:
                self.parent.zygote.kill(self.kernel)
            except ZygoteError:
                pass

    async def terminate(self, restart: bool = False) -> None:
        await self.kill(restart)

    async def cleanup(self, restart: bool = False) -> None:
        self.kernel = None


class ZygoteKernelManager(SandboxedKernelManager):
    """Sandboxed kernels forked from this worker's zygote."""

    zygote_enabled = Bool(True, help="Fork kernels from a pre-imported zygote when possible.").tag(config=True)
    preload_torch = Bool(True, help="Fork from a zygote that has imported PyTorch (the grader sets it per "
                         "assignment: only the PyTorch chapters need it).").tag(config=True)

    @property
    def zygote(self) -> Zygote:
        return zygote_for_this_process(self.scratch_mb, self.preload_torch)

    async def _async_pre_start_kernel(self, **kw: t.Any) -> tuple[list[str], dict[str, t.Any]]:
        import uuid

        self._remove_box()
        zygote = self.zygote  # its kernels' groups live in the zygote's group (none: rlimits only)
        limits = self.limits if zygote.group is not None else dataclasses.replace(self.limits, cgroups=False)
        self.box = Box.create(kw.get("cwd"), limits, parent=zygote.parent, cgroup_parent=zygote.group, log=self.log)
        self.transport = "ipc"
        self.ip = str(self.box.kernel_dir / "k")
        self.connection_file = str(self.box.kernel_dir / "connection.json")
        kw["cwd"] = str(self.box.root / "work")
        self.kernel_id = self.kernel_id or str(uuid.uuid4())
        self.provisioner = ZygoteProvisioner(kernel_id=self.kernel_id, kernel_spec=self.kernel_spec, parent=self)
        return await super(SandboxedKernelManager, self)._async_pre_start_kernel(**kw)

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        if self.box is not None and self.box.uid is not None:
            os.chmod(self.connection_file, 0o644)  # the kernel's unprivileged user reads it
        return [sandbox_python(), "-m", "ipykernel_launcher", "-f", self.connection_file]  # never run


def zygote_kernels_possible() -> bool:
    """Root, Linux, bubblewrap present: what :class:`ZygoteKernelManager` needs."""
    try:
        _tool("bwrap")
    except Exception:  # noqa: BLE001
        return False
    return available()
