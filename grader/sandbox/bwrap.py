"""One grading kernel's sandbox, built with bubblewrap (``bwrap``).

What the sandboxed kernel sees and may do:

- a **read-only** view of the system (``/usr`` and its ``/bin``, ``/lib*`` links, the dynamic linker's
  cache) and of the Python environment that grades (its base installation and virtual environment);
  nothing else of the host: not the course directory (``solutions/``, ``grader/``, the gradebook,
  other submissions), not the instructor's home;
- one fresh writable working directory, ``/home/student``, holding a copy of this submission's
  files only, plus a private ``/tmp``: both in memory and size-limited (``scratch_mb``);
- no network (its own empty network namespace), its own PID namespace (it cannot see or signal the
  grader, and every process it starts dies with it), IPC and UTS namespaces;
- an unprivileged user: when the grader runs as root, the kernel runs as a dedicated unprivileged uid
  (one per concurrent sandbox, 61000-61999) with every capability dropped and ``no_new_privs``; as any
  other user, bubblewrap maps it to ``nobody`` in a new user namespace;
- limits it cannot lift (soft = hard): address space and data memory, processes (threads count),
  file size, CPU seconds, no core dumps;
- one memory and process budget for the whole sandbox: its own control group (:mod:`grader.sandbox.cgroup`),
  which the starting shell joins before it becomes bubblewrap, emptied and removed with the sandbox.

What a submission holds is copied in by :func:`grader.sandbox.files.copy_tree` (links and special files
refused, never followed).

The grader talks to the kernel over Unix sockets in a folder bound into the sandbox, and exchanges
hidden-check jobs through two more: ``/grader/in`` (read-only for the kernel) and ``/grader/out``.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import uuid
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from grader.sandbox import cgroup
from grader.sandbox.files import Refused, copy_tree

WORK_DIR = "/home/student"
SUBMISSION = "/grader/submission"
JOB_IN = "/grader/in"
JOB_OUT = "/grader/out"
UID_RANGE = range(61000, 62000)
SANDBOX_TOOLS = ("bwrap", "prlimit", "setpriv")


def debugging() -> bool:
    """``GRADER_ZYGOTE_DEBUG=1``: keep the kernels' stderr and the zygote's log in the temp folder (for the
    grader's developers; nothing of it reaches feedback)."""
    return bool(os.environ.get("GRADER_ZYGOTE_DEBUG"))


class SandboxUnavailable(RuntimeError):
    """Bubblewrap cannot start a sandbox on this machine (the message says why and what to do)."""


@dataclass(frozen=True)
class Limits:
    memory_mb: int = 4096  # the sandbox's memory (its cgroup); each process's address space and data too
    processes: int = 64  # processes and threads of the sandbox (its cgroup, and its user's rlimit)
    file_mb: int = 64  # largest file it may write
    cpu_seconds: int = 600  # CPU time of each process
    scratch_mb: int = 256  # size of the working directory and of /tmp (each)
    cgroups: bool = True  # one control group per sandbox where the machine has them (grader/sandbox/cgroup.py)
    fallback_tasks: int = 24  # without a cgroup: processes and threads of the sandbox's user (rlimit)
    split_memory: bool = False  # without a cgroup: each process gets memory_mb / fallback_tasks

    def prlimit_args(self, grouped: bool = True) -> list[str]:
        """``prlimit`` options of every process of the sandbox. ``grouped``: the sandbox has its own cgroup,
        which holds the whole sandbox to ``memory_mb`` and ``processes``; without one, the rlimits are all
        there is: ``fallback_tasks`` tasks, each with ``memory_mb`` (or, ``split_memory``, a share of it, so
        that tasks x memory stays within ``memory_mb``)."""
        # Data memory (heap and private mappings: what arrays use) is the real limit. The address space
        # limit, with headroom for thread stacks and allocator reservations, also bounds shared mappings,
        # which RLIMIT_DATA does not count.
        tasks = self.processes if grouped else min(self.processes, self.fallback_tasks)
        if not grouped and self.split_memory:
            mem = space = self.memory_mb * 2**20 // tasks
        else:
            mem = self.memory_mb * 2**20
            space = (self.memory_mb + max(1024, self.memory_mb // 2)) * 2**20
        fsize = self.file_mb * 2**20
        return [
            f"--as={space}:{space}",
            f"--data={mem}:{mem}",
            f"--nproc={tasks}:{tasks}",
            f"--fsize={fsize}:{fsize}",
            f"--cpu={self.cpu_seconds}:{self.cpu_seconds}",
            "--core=0:0",
            "--nofile=1024:1024",
        ]


_WARNED: set[str] = set()


def sandbox_group(limits: Limits, name: str, parent: cgroup.Group | None = None,
                  log: logging.Logger | None = None) -> cgroup.Group | None:
    """A control group for one sandbox with its budget, or None (rlimits only; said once per process)."""
    found, why = cgroup.hierarchy()
    if not limits.cgroups:
        found, why = None, why or "turned off (SandboxedKernelManager.cgroups)"
    if found is None:
        if why not in _WARNED:
            _WARNED.add(why)
            (log or logging.getLogger("grader.sandbox")).warning(
                "no cgroup per sandbox (%s): each sandbox is limited by rlimits only, %d processes and threads "
                "of %s MiB each, not one budget for the whole sandbox (grade as root where cgroup v1 or v2 has "
                "the memory and pids controllers)", why, min(limits.processes, limits.fallback_tasks),
                limits.memory_mb // limits.fallback_tasks if limits.split_memory else limits.memory_mb)
        return None
    group = found.group(f"{name}-{uuid.uuid4().hex[:8]}", parent)
    try:
        group.limit(limits.memory_mb * 2**20, limits.processes)
    except BaseException:
        group.remove()
        raise
    return group


def _python_roots() -> list[Path]:
    """Folders of the grading Python environment the kernel needs (read-only): base install and venv."""
    roots = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve()}
    for key in ("purelib", "platlib", "stdlib", "platstdlib"):
        path = Path(sysconfig.get_paths()[key]).resolve()
        if not any(path.is_relative_to(r) for r in roots):
            roots.add(path)
    return sorted(roots)


def sandbox_python() -> str:
    """The grading interpreter by a path that exists inside the sandbox.

    The sandbox binds the environment's real folders; a virtual environment reached through a
    symbolic link (``.venv -> /elsewhere/.venv``) is run by its real path, so that Python still finds
    its ``pyvenv.cfg`` and site-packages there.
    """
    real = Path(os.path.realpath(sys.prefix)) / "bin" / Path(sys.executable).name
    return str(real) if real.exists() else os.path.realpath(sys.executable)


def _tool(name: str) -> str:
    path = shutil.which(name, path="/usr/bin:/bin:/usr/sbin:/sbin")
    if path is None:
        raise SandboxUnavailable(
            f"`{name}` is not installed, so grading kernels cannot be sandboxed. Install it with "
            "`bash scripts/install-sandbox.sh` (Debian packages bubblewrap and util-linux), or grade "
            "without a sandbox with `--no-sandbox` (not recommended: a submission then runs as you)."
        )
    return path


class _UidClaim:
    """An unprivileged uid reserved for one sandbox while it runs (a lock file per uid)."""

    def __init__(self) -> None:
        folder = Path(tempfile.gettempdir()) / "attention-grader-uids"
        folder.mkdir(mode=0o700, exist_ok=True)
        for uid in UID_RANGE:
            fd = os.open(folder / f"{uid}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            self.uid, self._fd = uid, fd
            return
        raise SandboxUnavailable(f"all {len(UID_RANGE)} sandbox uids are in use")

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


@dataclass
class Box:
    """The host folders of one sandbox and the command that starts a process inside it."""

    root: Path
    limits: Limits = field(default_factory=Limits)
    uid: int | None = None  # the unprivileged uid (grader running as root), else None
    refused: list[Refused] = field(default_factory=list)  # links and special files not copied in
    group: cgroup.Group | None = None  # the whole sandbox's memory and process budget (None: rlimits only)
    usage: dict = field(default_factory=dict)  # the group's peak memory etc., read when the box is removed
    _claim: _UidClaim | None = None

    @classmethod
    def create(cls, files_from: str | os.PathLike | None, limits: Limits | None = None,
               parent: Path | None = None, cgroup_parent: cgroup.Group | None = None,
               log: logging.Logger | None = None) -> Box:
        """A fresh sandbox whose working directory holds a copy of the files in ``files_from``."""
        # short: Unix socket paths must stay < 108 bytes
        root = Path(tempfile.mkdtemp(prefix="gk-", dir=parent))
        box = cls(root, limits or Limits())
        try:
            box._fill(files_from, cgroup_parent, log)
        except BaseException:
            box.remove()
            raise
        return box

    def _fill(self, files_from: str | os.PathLike | None, cgroup_parent: cgroup.Group | None,
              log: logging.Logger | None) -> None:
        box, root = self, self.root
        if os.geteuid() == 0:
            box._claim = _UidClaim()
            box.uid = box._claim.uid
        for sub in ("kernel", "work", "in", "out", "etc"):
            (root / sub).mkdir(mode=0o755)
        if files_from is not None and Path(files_from).is_dir():  # no link followed, none copied (files.py)
            box.refused = copy_tree(files_from, root / "work", ignore=[".ipynb_checkpoints"])
        box.group = sandbox_group(box.limits, root.name, cgroup_parent, log)
        (root / "etc" / "passwd").write_text(f"student:x:{box.inner_uid}:{box.inner_uid}:student:{WORK_DIR}:/bin/sh\n")
        (root / "etc" / "group").write_text(f"student:x:{box.inner_uid}:\n")
        if box.uid is not None:
            for sub in ("kernel", "out"):
                for dirpath, dirnames, filenames in os.walk(root / sub):
                    for name in (dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)):
                        os.lchown(name, box.uid, box.uid)

    @property
    def inner_uid(self) -> int:
        return self.uid if self.uid is not None else 65534

    @property
    def kernel_dir(self) -> Path:
        return self.root / "kernel"

    def job_dirs(self, name: str) -> tuple[Path, Path, str, str]:
        """``(host in, host out, sandbox in, sandbox out)`` folders of one hidden-check job."""
        out = self.root / "out" / name
        out.mkdir(mode=0o755)
        if self.uid is not None:
            os.chown(out, self.uid, self.uid)
        return self.root / "in" / name, out, f"{JOB_IN}/{name}", f"{JOB_OUT}/{name}"

    def rlimit_args(self) -> list[str]:
        return self.limits.prlimit_args(grouped=self.group is not None)

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` (a command whose files are in the Python environment) run inside this sandbox (and its
        control group, which the starting shell joins before it becomes bubblewrap)."""
        prlimit = _tool("prlimit")
        size = str(self.limits.scratch_mb * 2**20)
        cmd = base_view(user_namespace=self.uid is None, passwd=self.root / "etc", scratch_mb=self.limits.scratch_mb,
                        visible=[self.kernel_dir])
        cmd += ["--bind", str(self.kernel_dir), str(self.kernel_dir),
                "--perms", "0755", "--dir", "/home",
                "--perms", "1777", "--size", size, "--tmpfs", WORK_DIR,
                "--perms", "0755", "--dir", "/grader",
                "--ro-bind", str(self.root / "work"), SUBMISSION,
                "--ro-bind", str(self.root / "in"), JOB_IN,
                "--bind", str(self.root / "out"), JOB_OUT,
                "--chdir", WORK_DIR,
                "--clearenv"]
        for key, value in kernel_env().items():
            cmd += ["--setenv", key, value]
        if self.uid is not None:
            setpriv = _tool("setpriv")
            cmd += [setpriv, f"--reuid={self.uid}", f"--regid={self.uid}", "--clear-groups",
                    "--bounding-set=-all", "--inh-caps=-all", "--no-new-privs"]
        # The submission's files are copied into the (size-limited) working directory inside the sandbox.
        copy_in = f'cp -R -P {SUBMISSION}/. {WORK_DIR}/ 2>/dev/null; exec "$@"'
        cmd += [prlimit, *self.rlimit_args(), "--", "/bin/sh", "-c", copy_in, "sh", *argv]
        return self.in_group(cmd)

    def in_group(self, cmd: list[str]) -> list[str]:
        """``cmd`` started by a shell that first joins this sandbox's control group (if it has one)."""
        if self.group is None:
            return cmd
        join = 'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 125; shift; n=$((n-1)); done; exec "$@"'
        files = [str(f) for f in self.group.procs_files]
        return ["/bin/sh", "-c", join, "sh", str(len(files)), *files, *cmd]

    def remove(self) -> None:
        """Delete every folder of the sandbox (its processes are already gone with its PID namespace)."""
        log = self.root / "out" / "kernel-stderr.log"  # the kernel's own stderr, kept when debugging
        if debugging() and log.exists():
            shutil.copy(log, Path(tempfile.gettempdir()) / f"kernel-stderr-{self.root.name}.log")
        def retry(func, path, _exc):  # a submission may have made its files read-only
            os.chmod(os.path.dirname(path), 0o700)
            func(path)

        if self.group is not None:  # kill whatever is left in the sandbox's group (before its uid is reused)
            self.group.remove()
            self.usage = self.group.usage()
            self.group = None
        if self.root.exists():
            shutil.rmtree(self.root, onerror=retry)
        if self._claim is not None:
            self._claim.release()
            self._claim = None


def kernel_env() -> dict[str, str]:
    """The whole environment of a grading kernel (nothing of the grader's own is passed on)."""
    return {
        "HOME": WORK_DIR, "USER": "student", "LOGNAME": "student", "LANG": "C.UTF-8",
        "PATH": f"{Path(sandbox_python()).parent}:/usr/bin:/bin",
        "PYTHONNOUSERSITE": "1", "PYTHONDONTWRITEBYTECODE": "1", "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": "/tmp/matplotlib", "IPYTHONDIR": "/tmp/ipython", "JUPYTER_RUNTIME_DIR": "/tmp/jupyter",
        "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2",
        # ipykernel: a parent of pid 1 means "started by a frontend, no parent poller" (no banner either).
        "JPY_PARENT_PID": "1",
    }


def base_view(user_namespace: bool, passwd: Path, scratch_mb: int, visible: list[Path],
              cgroup_namespace: bool = True) -> list[str]:
    """bubblewrap arguments of the read-only world every grading process sees.

    New PID, network, IPC, UTS and cgroup namespaces (and a user namespace when not grading as root); the
    system (``/usr`` and its links) and the Python environment read-only; a private ``/proc``, ``/dev`` and
    a size-limited ``/tmp``; the parent folders of ``visible`` (paths bound later at the same place).
    ``cgroup_namespace=False`` for the zygote, whose kernels join groups outside its own.
    """
    cmd = [_tool("bwrap"), "--die-with-parent", "--unshare-pid", "--unshare-net", "--unshare-ipc",
           "--unshare-uts", *(["--unshare-cgroup-try"] if cgroup_namespace else [])]
    if user_namespace:
        cmd += ["--unshare-user", "--uid", "65534", "--gid", "65534"]
    cmd += ["--ro-bind", "/usr", "/usr"]
    for top in ("bin", "lib", "lib32", "lib64", "libx32", "sbin"):
        path = Path("/") / top
        if path.is_symlink():
            cmd += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            cmd += ["--ro-bind", str(path), str(path)]
    for etc in ("/etc/ld.so.cache", "/etc/localtime"):
        if Path(etc).exists():
            cmd += ["--ro-bind", etc, etc]
    cmd += ["--ro-bind", str(passwd / "passwd"), "/etc/passwd", "--ro-bind", str(passwd / "group"), "/etc/group"]
    size = str(scratch_mb * 2**20)
    cmd += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--size", size, "--tmpfs", "/tmp"]
    # After /tmp's tmpfs, so that a Python environment or kernel folder under /tmp stays visible.
    made: set[Path] = {Path("/"), Path("/tmp")}
    for path in [*_python_roots(), *visible]:
        for parent in reversed(path.parents):
            if parent not in made:
                cmd += ["--perms", "0755", "--dir", str(parent)]
                made.add(parent)
    for path in _python_roots():
        cmd += ["--ro-bind", str(path), str(path)]
    return cmd


@lru_cache(maxsize=1)
def check_available() -> None:
    """Start one trivial sandbox; raise :class:`SandboxUnavailable` with the reason if that fails."""
    box = Box.create(None)
    try:
        cmd = box.command([sandbox_python(), "-c", "import numpy"])
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as err:
            raise SandboxUnavailable(f"bubblewrap could not start a sandbox: {err}") from None
        if proc.returncode != 0:
            reason = (proc.stderr.strip().splitlines() or ["no message"])[-1]
            raise SandboxUnavailable(
                f"bubblewrap could not start a sandbox on this machine ({reason}). Grading refuses to run "
                "submissions unsandboxed; fix the sandbox (user namespaces must be allowed, see "
                "book/instructors.md), or grade without it with `--no-sandbox` "
                "(c.SandboxedKernelManager.sandbox = False), which the grades CSV records."
            )
    finally:
        box.remove()
