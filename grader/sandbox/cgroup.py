"""One memory and process budget per sandbox, enforced by the kernel of the OS: a control group each.

Per-process limits (``setrlimit``) do not add up: six forked children of one kernel each got the whole
memory limit. So every sandbox (a bubblewrap sandbox with its kernel, or a zygote-forked kernel with
all it starts) runs in a control group of its own, with

- ``memory``: the sandbox's whole memory (its processes' pages, its in-memory files, no swap) at most
  ``memory_limit_mb``; beyond it the OS reclaims, then kills a process of that group only;
- ``pids``: at most ``max_processes`` tasks (processes and threads) in the group;

and, when its kernel ends, everything left in the group is killed (``cgroup.kill`` on cgroup v2;
freeze, kill every task, thaw on v1) and the group removed. Its peak memory is read first
(:meth:`Group.usage`), for the feedback's record and the tests.

:func:`hierarchy` finds what this machine offers, once per process: cgroup v2 where a ``cgroup2``
mount has the ``memory`` and ``pids`` controllers to give (at or above this process's own group), else
cgroup v1 with writable ``memory`` and ``pids`` hierarchies (``freezer`` used when present), else none,
with the reason (not root, nothing mounted, read-only): the sandbox then falls back to rlimits
(:class:`grader.sandbox.bwrap.Limits`) and the grader says so once. Groups live in
``<base>/attention-grader/``, where ``<base>`` is this process's own group (v1) or the deepest ancestor
that delegates both controllers (v2).
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

PARENT = "attention-grader"
V1_CONTROLLERS = ("memory", "pids", "freezer")  # freezer is optional


@dataclass(frozen=True)
class Hierarchy:
    """Where this process may create sandbox groups: one folder per v1 controller, or one for v2."""

    version: int
    bases: tuple[Path, ...]  # v1: memory, pids[, freezer]; v2: one folder

    def group(self, name: str, parent: Group | None = None, for_children: bool = False) -> Group:
        """A new, empty group ``name`` (under ``parent``'s folders if given). ``for_children``: a group that
        holds no process itself, only groups with limits (a zygote's kernels); v2 must be told so."""
        tops = parent.dirs if parent is not None else self.bases
        dirs = tuple(top / name for top in tops)
        for d in dirs:
            d.mkdir()
        if self.version == 2 and for_children:
            _write(dirs[0] / "cgroup.subtree_control", "+memory +pids")
        return Group(self, dirs)


@dataclass
class Group:
    """One sandbox's control group (a folder per hierarchy)."""

    hierarchy: Hierarchy
    dirs: tuple[Path, ...]
    peak_bytes: int | None = None
    oom_kills: int = 0
    limit_bytes: int | None = None
    _removed: bool = field(default=False, repr=False)

    @property
    def _memory(self) -> Path:
        return self.dirs[0]

    def limit(self, memory_bytes: int, tasks: int) -> None:
        """The sandbox's budget: all its memory (no swap) and all its tasks."""
        self.limit_bytes = memory_bytes
        if self.hierarchy.version == 2:
            _write(self._memory / "memory.max", str(memory_bytes))
            _write(self._memory / "memory.swap.max", "0", missing_ok=True)
            _write(self._memory / "pids.max", str(tasks))
            return
        memory, pids = self.dirs[0], self.dirs[1]
        _write(memory / "memory.limit_in_bytes", str(memory_bytes))
        _write(memory / "memory.memsw.limit_in_bytes", str(memory_bytes), missing_ok=True)  # no swap either
        _write(memory / "memory.swappiness", "0", missing_ok=True)
        _write(pids / "pids.max", str(tasks))

    @property
    def procs_files(self) -> list[Path]:
        """A process joins the group by writing its pid (or ``0``: itself) into each of these."""
        return [d / "cgroup.procs" for d in self.dirs]

    def pids(self) -> list[int]:
        try:
            return [int(p) for p in (self._memory / "cgroup.procs").read_text().split()]
        except OSError:
            return []

    def usage(self) -> dict:
        """``{"peak_mb", "limit_mb", "oom_kills"}`` of the group so far (the peak: the OS's own high-water mark)."""
        if not self._removed:
            self._read_usage()
        mb = (lambda b: None if b is None else round(b / 2**20, 1))  # noqa: E731
        return {"peak_mb": mb(self.peak_bytes), "limit_mb": mb(self.limit_bytes), "oom_kills": self.oom_kills,
                "cgroup": f"v{self.hierarchy.version}"}

    def _read_usage(self) -> None:
        peak_file = "memory.peak" if self.hierarchy.version == 2 else "memory.max_usage_in_bytes"
        try:
            self.peak_bytes = max(self.peak_bytes or 0, int((self._memory / peak_file).read_text()))
        except (OSError, ValueError):
            pass
        events = "memory.events" if self.hierarchy.version == 2 else "memory.oom_control"
        try:
            for line in (self._memory / events).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    self.oom_kills = int(value)
        except (OSError, ValueError):
            pass

    def kill(self, patience_s: float = 5.0) -> None:
        """Kill every process left in the group; return once it is empty (or ``patience_s`` has passed)."""
        deadline = time.monotonic() + patience_s
        if self.hierarchy.version == 2 and (self._memory / "cgroup.kill").exists():
            _write(self._memory / "cgroup.kill", "1", missing_ok=True)
        else:
            freezer = self._freezer_state()
            if freezer is not None:  # frozen, nothing can fork while the tasks are killed
                _write(freezer, "FROZEN" if self.hierarchy.version == 1 else "1", missing_ok=True)
            for pid in self.pids():
                _kill(pid)
            if freezer is not None:
                _write(freezer, "THAWED" if self.hierarchy.version == 1 else "0", missing_ok=True)
        while self.pids() and time.monotonic() < deadline:
            for pid in self.pids():
                _kill(pid)
            time.sleep(0.01)

    def _freezer_state(self) -> Path | None:
        if self.hierarchy.version == 2:
            path = self._memory / "cgroup.freeze"
        elif len(self.dirs) > 2:
            path = self.dirs[2] / "freezer.state"
        else:
            return None
        return path if path.exists() else None

    def remove(self) -> None:
        """Kill what is left, keep the usage, delete the group's folders (children first)."""
        if self._removed:
            return
        self.kill()
        self._read_usage()
        for d in self.dirs:
            for child in sorted((p for p in d.iterdir() if p.is_dir()), reverse=True) if d.exists() else []:
                _rmdir(child)
            _rmdir(d)
        self._removed = True


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _rmdir(path: Path) -> None:
    for _ in range(200):  # a group empties a moment after its last task is reaped
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.01)


def _write(path: Path, text: str, missing_ok: bool = False) -> None:
    try:
        with open(path, "w") as f:
            f.write(text)
    except FileNotFoundError:
        if not missing_ok:
            raise
    except OSError:
        if not missing_ok:
            raise


# --- finding a usable hierarchy ------------------------------------------------------------------------

def _mounts() -> list[tuple[str, Path, str, set[str]]]:
    """``(root, mount point, fstype, super options)`` of every cgroup mount this process sees."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(tail) >= 3 and tail[0] in ("cgroup", "cgroup2"):
            found.append((fields[3], Path(fields[4].replace("\\040", " ")), tail[0], set(tail[2].split(","))))
    return found


def _own_groups() -> dict[str, str]:
    """Controller (``""`` for v2) -> this process's group path, from ``/proc/self/cgroup``."""
    groups = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            groups[name] = path
    return groups


def _inside(mount_root: str, own: str, point: Path) -> Path | None:
    if own != mount_root and not own.startswith(mount_root.rstrip("/") + "/"):
        return None
    return point / os.path.relpath(own, mount_root)


def _try_v2(mounts, own) -> tuple[Hierarchy | None, str]:
    for root, point, fstype, _ in mounts:
        if fstype != "cgroup2" or "" not in own:
            continue
        here = _inside(root, own[""], point)
        if here is None:
            continue
        for base in [here, *here.parents]:
            if not base.is_relative_to(point):
                break
            try:
                delegated = set((base / "cgroup.subtree_control").read_text().split())
            except OSError:
                continue
            if {"memory", "pids"} <= delegated and os.access(base, os.W_OK):
                top = base / PARENT
                try:
                    top.mkdir(exist_ok=True)
                    _write(top / "cgroup.subtree_control", "+memory +pids")
                except OSError as err:
                    return None, f"cgroup v2 at {base}: {err}"
                return Hierarchy(2, (top,)), ""
        return None, f"cgroup v2 at {point} has no memory and pids controllers to give to this process"
    return None, "no cgroup2 mount"


def _try_v1(mounts, own) -> tuple[Hierarchy | None, str]:
    bases = []
    for controller in V1_CONTROLLERS:
        hits = [(root, point) for root, point, fstype, opts in mounts if fstype == "cgroup" and controller in opts]
        here = _inside(hits[0][0], own[controller], hits[0][1]) if hits and controller in own else None
        if here is None:
            if controller == "freezer":
                continue
            return None, f"no cgroup v1 {controller} hierarchy"
        top = here / PARENT
        try:
            top.mkdir(exist_ok=True)
        except OSError as err:
            if controller == "freezer":
                continue
            return None, f"cannot create a {controller} group in {here} ({err.strerror})"
        bases.append(top)
    return Hierarchy(1, tuple(bases)), ""


STALE_S = 3600  # an empty sandbox group this old was left by a grader that died: removed at the next start


def _sweep(found: Hierarchy) -> None:
    """Remove the empty groups that a grader killed before its cleanup left behind (never a recent one, which
    another grader may be about to join)."""
    for top in found.bases:
        for group in top.iterdir():
            try:
                if group.is_dir() and time.time() - group.stat().st_mtime > STALE_S:
                    for child in (p for p in group.iterdir() if p.is_dir()):
                        child.rmdir()  # fails (kept) while it holds a process
                    group.rmdir()
            except OSError:
                pass


@lru_cache(maxsize=1)
def hierarchy() -> tuple[Hierarchy | None, str]:
    """This machine's cgroup hierarchy for sandboxes, or ``(None, why not)``."""
    if not os.path.exists("/proc/self/cgroup"):
        return None, "not Linux"
    try:
        mounts, own = _mounts(), _own_groups()
    except OSError as err:
        return None, f"cannot read this process's cgroups ({err})"
    found, why_v2 = _try_v2(mounts, own)
    if found is None:
        found, why_v1 = _try_v1(mounts, own)
    if found is not None:
        _sweep(found)
        return found, ""
    return None, f"{why_v2}; {why_v1}"
