"""The zygote: a pre-imported interpreter that forks one fresh, sandboxed kernel per submission.

This file runs inside a bubblewrap sandbox of its own (started by :mod:`grader.sandbox.zygote`; it
is the only file of the grader bound into it). It imports the kernel machinery, NumPy and PyTorch
once, never runs student code itself, and stays single-threaded, so that it can ``fork``. For each
request it forks a child that, before any student code runs:

1. joins its control group (the submission's memory and process budget, grader/sandbox/cgroup.py), gets
   its own mount, PID, network, IPC, UTS and cgroup namespaces (``unshare``), and forks again, so that
   the kernel is PID 1 of a new PID namespace (and of its own session): when it exits, every process it
   started dies with it;
2. mounts its own view: a fresh in-memory ``/tmp`` and working directory ``/home/student`` (with a
   copy of this submission's files), its own ``/proc``, this submission's job folders at
   ``/grader/in`` (read-only) and ``/grader/out``, and its kernel sockets folder; the folders of the
   other submissions are not visible;
3. sets limits it cannot raise (soft = hard), drops every capability and switches to its own
   unprivileged uid (``no_new_privs``), closes every file descriptor it inherited, clears the
   environment, reseeds the random generators, and only then starts the Jupyter kernel, in process.

No state passes between two submissions: each child is a fresh fork of the same clean zygote, and
whatever a child changes (globals, NumPy, files) lives only in that child's memory and mounts.

The protocol with the grader is one JSON object per line on stdin/stdout.
"""

from __future__ import annotations

import ctypes
import json
import os
import random
import signal
import sys

CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWIPC, CLONE_NEWUTS = 0x00020000, 0x20000000, 0x08000000, 0x04000000
CLONE_NEWNET, CLONE_NEWCGROUP = 0x40000000, 0x02000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 1, 24, 38
WORK_DIR = "/home/student"
STAGE = "/grader/kernel-stage"

libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(src: str | None, dst: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = (lambda s: s.encode() if s is not None else None)  # noqa: E731
    _check(libc.mount(enc(src), enc(dst), enc(fstype), flags, enc(data)), f"mount {dst}")


# What ``IPKernelApp.initialize`` imports besides the kernel classes: 161 modules, 0.1 s of each kernel's
# start, most of it ipykernel's debugger (debugpy). Imported once here, each kernel only builds its objects
# (``tests/grading/test_zygote.py`` checks that a kernel start imports almost nothing more).
KERNEL_START_IMPORTS = (
    "ipykernel.debugger", "IPython.core.completerlib", "IPython.core.debugger", "IPython.core.oinspect",
    "IPython.extensions.storemagic", "IPython.utils.wildcard", "bdb", "cmd", "code", "email.parser",
    "encodings.idna", "encodings.latin_1", "faulthandler", "gzip", "http.server", "mimetypes", "pdb", "pkgutil",
    "pydoc", "sqlite3", "stringprep", "tornado.gen", "tornado.locks", "tornado.platform.asyncio",
    "tornado.queues", "unicodedata", "xml.parsers.expat", "xmlrpc.server",
)


def preload(torch: bool) -> None:
    """Import what every kernel needs, once (no threads may be started here)."""
    import importlib

    import ipykernel.ipkernel  # noqa: F401
    import ipykernel.kernelapp  # noqa: F401
    import ipykernel.zmqshell  # noqa: F401
    import IPython.core.interactiveshell  # noqa: F401
    import numpy  # noqa: F401

    for name in KERNEL_START_IMPORTS:
        importlib.import_module(name)

    if torch:
        import torch as _torch

        _torch.set_num_threads(1)
    import threading

    if threading.active_count() != 1:
        raise RuntimeError(f"the zygote must stay single-threaded to fork; it runs {threading.active_count()}")


def _enter_sandbox(req: dict) -> None:
    """In the kernel's process (PID 1 of its namespaces): mounts, files, limits, privileges."""
    import resource
    import shutil

    root, kernel_dir = req["root"], req["kernel_dir"]
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    for folder in req.get("cgroup_mounts", []):  # the control groups stay the grader's business
        _check(libc.umount2(folder.encode(), MNT_DETACH), f"umount {folder}")
    for sub, dst, read_only in (("in", "/grader/in", True), ("out", "/grader/out", False),
                                ("work", "/grader/submission", True), ("kernel", STAGE, False)):
        _mount(f"{root}/{sub}", dst, None, MS_BIND)
        if read_only:
            _mount(None, dst, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    size = f"size={int(req['scratch_mb'])}m,mode=1777"
    # The Python environment may live under /tmp (a checkout there): keep its folders across the new /tmp.
    kept = []
    for i, path in enumerate(req.get("keep", [])):
        hold = f"/grader/keep-{i}"
        os.makedirs(hold, exist_ok=True)
        _mount(path, hold, None, MS_BIND | MS_REC)
        kept.append((hold, path))
    _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, size)  # hides every other submission's folders
    for hold, path in kept:
        os.makedirs(path, exist_ok=True)
        _mount(hold, path, None, MS_BIND | MS_REC)
        _mount(None, path, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
        _check(libc.umount2(hold.encode(), MNT_DETACH), f"umount {hold}")
    os.makedirs(kernel_dir)
    _mount(STAGE, kernel_dir, None, MS_BIND)
    _check(libc.umount2(STAGE.encode(), MNT_DETACH), "umount stage")
    _mount("tmpfs", WORK_DIR, "tmpfs", MS_NOSUID | MS_NODEV, size)
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    # The grader copied only plain files there (grader/sandbox/files.py); never follow a link all the same.
    shutil.copytree("/grader/submission", WORK_DIR, dirs_exist_ok=True, symlinks=True)
    uid = int(req["uid"])
    for dirpath, dirnames, filenames in os.walk(WORK_DIR):
        for name in (dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)):
            os.lchown(name, uid, uid)
    for which, value in req["limits"]:
        resource.setrlimit(getattr(resource, which), (value, value))
    for cap in range(64):
        libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)  # from root to a nonzero uid: every capability is cleared
    # Changing credentials clears the parent-death signal (prctl(2)): set it again, so that the kernel (and
    # with it, as PID 1, its whole namespace) dies with its keeper whatever happens to the keeper.
    _check(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "pdeathsig")
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    os.chdir(WORK_DIR)
    os.environ.clear()
    os.environ.update(req["env"])


def _reseed() -> None:
    random.seed()
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed(int.from_bytes(os.urandom(4), "little"))
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(int.from_bytes(os.urandom(8), "little") & (2**63 - 1))


def _run_kernel(req: dict, ready_fd: int) -> None:
    """Enter the sandbox, start the kernel, say "ok" (or why not) on ``ready_fd``, then serve."""
    import traceback

    try:
        _enter_sandbox(req)
        devnull = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        if req.get("debug"):  # the kernel's own errors, for the grader's developers (never in feedback)
            os.dup2(os.open("/grader/out/kernel-stderr.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644), 2)
            import faulthandler

            faulthandler.enable(all_threads=True)  # a crash in C code (zmq, torch) shows where it happened
        os.closerange(3, ready_fd)
        os.closerange(ready_fd + 1, 65536)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        _reseed()
        from ipykernel.kernelapp import IPKernelApp

        app = IPKernelApp.instance()
        app.initialize(["-f", req["connection_file"], "--HistoryManager.hist_file=:memory:"])
    except BaseException:  # noqa: BLE001 - report why (the grader logs it), then die
        os.write(ready_fd, ("error: " + traceback.format_exc(limit=4)[-1500:]).encode())
        os._exit(71)
    os.write(ready_fd, b"ok")
    os.close(ready_fd)
    app.start()
    os._exit(0)


def _keep(req: dict, write_fd: int) -> None:
    """The keeper: in the zygote's PID namespace, parent of the kernel; exits with the kernel's code.

    SIGTERM asks it to end its kernel: it kills the kernel and exits only once the kernel is reaped, which,
    the kernel being PID 1 of its own namespace, is when every process of that namespace is gone. So when
    the zygote has reaped the keeper, nothing of the submission runs any more (and its uid may be reused).
    """
    kernel = 0

    def end_kernel(_signum: int, _frame: object) -> None:
        if kernel > 0:
            os.kill(kernel, signal.SIGKILL)
        else:  # not forked yet: nothing to wait for
            os._exit(75)

    signal.signal(signal.SIGTERM, end_kernel)
    try:
        for procs in req.get("cgroup_procs", []):  # the submission's budget: its control group, before the fork
            with open(procs, "w") as f:
                f.write("0")
        spaces = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS
        _check(libc.unshare(spaces | (CLONE_NEWCGROUP if req.get("cgroup_procs") else 0)), "unshare")
        kernel = os.fork()
    except BaseException as err:  # noqa: BLE001
        os.write(write_fd, f"error: {err}".encode()[:1000])
        return
    if kernel == 0:  # PID 1 of the new namespace; dies when its keeper dies
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            os.setsid()  # its own session and process group: no signal to the zygote's group reaches it
            _run_kernel(req, write_fd)
        finally:  # never return into the zygote's code: this process must not serve requests
            os._exit(72)
    os.close(write_fd)
    _, status = os.waitpid(kernel, 0)  # a SIGTERM meanwhile kills the kernel; waitpid then returns
    os._exit(os.waitstatus_to_exitcode(status) & 0xFF)


def spawn(req: dict) -> int:
    """Fork the kernel of one submission; return the pid (in the zygote's namespace) that stands for it."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        try:
            _keep(req, write_fd)
        finally:  # whatever happened, the keeper never returns into the zygote's request loop
            os._exit(70)
    os.close(write_fd)
    answer = b""
    while chunk := os.read(read_fd, 4096):  # until the kernel (or the keeper) closes its end
        answer += chunk
    os.close(read_fd)
    if not answer.startswith(b"ok"):
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise RuntimeError(answer.decode(errors="replace") or "the kernel's sandbox could not be set up")
    return pid


def end(keeper: int, patience_s: float = 10.0) -> None:
    """End one submission's kernel through its keeper; return once the keeper is gone (not reaped)."""
    import time

    os.kill(keeper, signal.SIGTERM)
    deadline = time.monotonic() + patience_s
    while time.monotonic() < deadline:
        try:
            if os.waitid(os.P_PID, keeper, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return
        except ChildProcessError:
            return
        time.sleep(0.002)
    os.kill(keeper, signal.SIGKILL)  # the keeper did not answer: its kernel still dies by PDEATHSIG


def serve() -> None:
    preload(torch="--torch" in sys.argv)
    children: dict[int, int | None] = {}  # keeper pid -> exit code (None while alive)
    out = sys.stdout

    def reply(obj: dict) -> None:
        out.write(json.dumps(obj) + "\n")
        out.flush()

    def reap(pid: int, block: bool = False) -> None:
        if children.get(pid) is None:
            done, status = os.waitpid(pid, 0 if block else os.WNOHANG)
            if done:
                children[pid] = os.waitstatus_to_exitcode(status)

    reply({"ready": True, "pid": os.getpid()})
    for line in sys.stdin:
        req = json.loads(line)
        op = req.get("op")
        try:
            if op == "spawn":
                pid = spawn(req)
                children[pid] = None
                reply({"ok": True, "id": pid})
            elif op == "poll":
                reap(req["id"])
                reply({"ok": True, "code": children.get(req["id"], -1)})
            elif op == "kill":
                if children.get(req["id"], -1) is None:
                    end(req["id"])
                    reap(req["id"], block=True)
                reply({"ok": True, "code": children.get(req["id"])})
            else:
                reply({"ok": False, "error": f"unknown request {op!r}"})
        except Exception as err:  # noqa: BLE001 - the grader decides what to do
            reply({"ok": False, "error": f"{type(err).__name__}: {err}"})
    for pid, code in children.items():  # the grader went away: nothing may outlive it
        if code is None:
            end(pid)


if __name__ == "__main__":
    serve()
