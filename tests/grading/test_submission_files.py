"""A submission's links and special files are refused on every path, and every sandbox has one budget.

- :func:`grader.sandbox.files.copy_tree` (every copy of a submission) copies folders and single-named
  regular files, and refuses symbolic links (to files and folders), hard links, FIFOs, devices and sockets
  without reading through them; a link as the submission's folder itself is refused as a whole.
- stock ``nbgrader autograde`` (``grader/nbgrader_links.py``) and ``nbgrader collect`` from a real exchange
  folder (``grader/term/exchange.py``) refuse the same, and say so in their logs.
- a sandbox's cgroup (``grader/sandbox/cgroup.py``) holds all its processes to one memory limit and is
  emptied and removed with it; without cgroups, the rlimits are the fallback the README describes.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from grader import synthetic
from grader.sandbox import cgroup
from grader.sandbox.bwrap import Limits
from grader.sandbox.files import RefusedFileError, copy_tree, open_regular, read_regular

PY = sys.executable
ENV = {**os.environ, "PATH": str(Path(PY).parent) + os.pathsep + os.environ.get("PATH", "")}
SECRET = b"COURSE-SECRET-4e1d"


def hostile_folder(tmp: Path) -> tuple[Path, Path]:
    """A submission folder with one of everything a student could leave there, and the course file it targets."""
    secret = tmp / "course" / ".grading-secret"
    secret.parent.mkdir()
    secret.write_bytes(SECRET)
    sub = tmp / "submission"
    (sub / "data").mkdir(parents=True)
    (sub / "nb.ipynb").write_text("{}")
    (sub / "data" / "ok.csv").write_text("a,b\n")
    (sub / ".ipynb_checkpoints").mkdir()
    (sub / ".ipynb_checkpoints" / "nb-checkpoint.ipynb").write_text("{}")
    os.symlink(secret, sub / "secret.txt")
    os.symlink(secret.parent, sub / "data" / "course")
    os.symlink("../../course/.grading-secret", sub / "data" / "relative.txt")
    os.link(secret, sub / "hard.txt")
    os.mkfifo(sub / "pipe")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(sub / "sock"))
    sock.close()
    if os.geteuid() == 0:
        os.mknod(sub / "zero", 0o20644, os.makedev(1, 5))
    return sub, secret


def test_copy_tree_copies_plain_files_and_refuses_the_rest(tmp_path: Path) -> None:
    sub, _ = hostile_folder(tmp_path)
    refused = copy_tree(sub, tmp_path / "out", ignore=[".ipynb_checkpoints"])
    kinds = {r.path: r.kind for r in refused}
    expected = {"secret.txt": "symlink", "data/course": "symlink", "data/relative.txt": "symlink",
                "hard.txt": "hardlink", "pipe": "fifo", "sock": "socket"}
    if os.geteuid() == 0:
        expected["zero"] = "device"
    assert kinds == expected
    copied = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*"))
    assert copied == ["data", "data/ok.csv", "nb.ipynb"]
    for path in (tmp_path / "out").rglob("*"):
        assert not path.is_symlink() and (path.is_dir() or path.stat().st_nlink == 1)
        assert path.is_dir() or SECRET not in path.read_bytes()
    words = {r.words() for r in refused}
    assert "'hard.txt' is a hard link (the same file has another name elsewhere)" in words


def test_a_linked_submission_folder_and_linked_files_are_refused_whole(tmp_path: Path) -> None:
    sub, secret = hostile_folder(tmp_path)
    os.symlink(sub, tmp_path / "link-to-folder")
    with pytest.raises(RefusedFileError, match="symbolic link"):
        copy_tree(tmp_path / "link-to-folder", tmp_path / "out")
    for name in ("secret.txt", "hard.txt", "pipe"):
        with pytest.raises(RefusedFileError):
            open_regular(sub / name)
    assert read_regular(sub / "nb.ipynb", 1) == b"{"
    with pytest.raises(RefusedFileError, match="hard link"):  # the secret now has two names
        read_regular(secret, 5)


def test_nbgrader_reads_no_linked_timestamp(tmp_path: Path) -> None:
    """A ``timestamp.txt`` that links to /dev/zero (or is a pipe) would never finish reading: refused at once."""
    from nbgrader.coursedir import CourseDirectory

    from grader.nbgrader_links import install

    install()
    folder = tmp_path / "s1"
    folder.mkdir()
    os.symlink("/dev/zero", folder / "timestamp.txt")
    done: list[BaseException] = []

    def read() -> None:
        try:
            CourseDirectory().get_existing_timestamp(str(folder))
        except BaseException as err:  # noqa: BLE001 - nbgrader's self.fail raises SystemExit
            done.append(err)

    worker = threading.Thread(target=read, daemon=True)
    worker.start()
    worker.join(10)
    assert done, "reading a timestamp.txt linked to /dev/zero did not stop"
    (folder / "timestamp.txt").unlink()
    (folder / "timestamp.txt").write_text("2026-10-05 12:00:00 UTC")
    assert CourseDirectory().get_existing_timestamp(str(folder)).year == 2026


@pytest.mark.grading
@pytest.mark.slow
def test_exchange_collect_refuses_links_from_the_inbound_folder(tmp_path: Path) -> None:
    """``nbgrader collect`` with the course's config, from a real exchange: links never reach submitted/."""
    course = synthetic.make_course(tmp_path / "course")
    from grader.engine.secret import SECRET_FILE, course_secret

    secret = course_secret(course).hex()
    exchange = tmp_path / "exchange"
    inbound = exchange / "attention" / "inbound"
    inbound.mkdir(parents=True)
    stamp = "2026-10-05 12:00:00.000000 UTC"
    good = inbound / f"s1+{synthetic.ASSIGNMENT}+{stamp}"
    synthetic.write_submission(course, "s1", "correct", folder=good).rename(good / f"{synthetic.ASSIGNMENT}.ipynb")
    os.symlink(course / SECRET_FILE, good / "secret.txt")
    os.symlink(course / "gradebook.db", good / "gradebook.db")
    os.link(course / SECRET_FILE, good / "hard.txt")
    os.mkfifo(good / "pipe")
    (good / "timestamp.txt").write_text(stamp)
    os.symlink(good, inbound / f"s2+{synthetic.ASSIGNMENT}+{stamp}")  # a whole submission that is a link
    with open(course / "nbgrader_config.py", "a") as f:
        f.write(f"\nc.Exchange.root = {str(exchange)!r}\nc.ExchangeCollect.check_owner = False\n")
    res = subprocess.run([PY, "-m", "nbgrader", "collect", synthetic.ASSIGNMENT], cwd=course, capture_output=True,
                         text=True, env=ENV, timeout=300)
    log = res.stdout + res.stderr
    collected = course / "submitted" / "s1" / synthetic.ASSIGNMENT
    assert sorted(p.name for p in collected.iterdir()) == ["timestamp.txt", f"{synthetic.ASSIGNMENT}.ipynb"], log
    for path in collected.iterdir():
        assert secret not in path.read_text(errors="replace")
    for name in ("secret.txt", "gradebook.db", "hard.txt", "pipe"):
        assert f"Refused {name} in" in log, log
    assert not (course / "submitted" / "s2" / synthetic.ASSIGNMENT).exists()
    assert "Refused the submission s2+" in log


@pytest.mark.grading
@pytest.mark.slow
def test_a_linked_notebook_is_refused_by_stock_nbgrader_and_the_cli(tmp_path: Path) -> None:
    base = synthetic.make_course(tmp_path / "base", timeout=5)
    for student in ("honest", "linked"):
        synthetic.write_submission(base, student, "correct")
    notebook = f"{synthetic.ASSIGNMENT}.ipynb"
    outcomes = {}
    for way in ("stock", "cli"):
        course = tmp_path / way
        subprocess.run(["cp", "-a", str(base), str(course)], check=True)
        linked = course / "submitted" / "linked" / synthetic.ASSIGNMENT / notebook
        honest = course / "submitted" / "honest" / synthetic.ASSIGNMENT / notebook
        linked.unlink()
        os.symlink(honest, linked)  # another student's work, by link
        cmd = ([PY, "-m", "nbgrader", "autograde", synthetic.ASSIGNMENT, "--force"] if way == "stock" else
               [PY, "-m", "grader", "--course-dir", str(course), "grade", "--jobs", "1"])
        res = subprocess.run(cmd, cwd=course, capture_output=True, text=True, env=ENV, timeout=600)
        outcomes[way] = res.stdout + res.stderr
        assert (course / "autograded" / "honest" / synthetic.ASSIGNMENT / notebook).exists(), outcomes[way]
        assert not (course / "autograded" / "linked" / synthetic.ASSIGNMENT / notebook).exists()
        assert f"the notebook '{notebook}' is a symbolic link" in outcomes[way]
    import csv

    with open(tmp_path / "cli" / "course-grades.csv") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    assert rows["linked"]["status"] == "error" and rows["linked"]["score"] == "0"
    assert "symbolic link" in rows["linked"]["message"] and rows["honest"]["score"] == "3"


# --- one budget per sandbox ---------------------------------------------------------------------------------

def test_without_cgroups_the_rlimits_bound_the_tasks_and_can_split_the_memory() -> None:
    limits = Limits(memory_mb=4096, processes=64)
    grouped, alone = limits.prlimit_args(grouped=True), limits.prlimit_args(grouped=False)
    assert "--nproc=64:64" in grouped and f"--data={4096 * 2**20}:{4096 * 2**20}" in grouped
    assert "--nproc=24:24" in alone
    split = Limits(memory_mb=4096, processes=64, split_memory=True).prlimit_args(grouped=False)
    share = 4096 * 2**20 // 24
    assert "--nproc=24:24" in split and f"--as={share}:{share}" in split and f"--data={share}:{share}" in split
    assert 24 * share <= 4096 * 2**20  # tasks x address space within the one budget


def test_a_cgroup_holds_all_its_processes_to_one_limit_and_is_removed_with_them() -> None:
    found, why = cgroup.hierarchy()
    if found is None:
        pytest.skip(f"no cgroup for sandboxes on this machine ({why}); the rlimit fallback is tested above")
    group = found.group(f"test-{os.getpid()}")
    try:
        group.limit(96 * 2**20, 16)
        code = ("import os, time\nfor _ in range(4):\n    if os.fork() == 0:\n        b = bytearray(64 * 2**20)\n"
                "        time.sleep(30)\n        os._exit(0)\ntime.sleep(30)\n")
        join = " ; ".join(f"echo $$ > {f}" for f in group.procs_files)
        proc = subprocess.Popen(["/bin/sh", "-c", f"{join}; exec {PY} -c \"$0\"", code])
        deadline = time.monotonic() + 30
        while group.usage()["oom_kills"] < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert group.pids(), "the sandbox's processes are in its group"
    finally:
        group.remove()
    usage = group.usage()
    assert usage["oom_kills"] >= 2 and usage["peak_mb"] <= 96, usage  # 4 x 64 MB could not all live in 96 MB
    assert proc.wait(timeout=10) == -9  # removing the group killed what was left
    assert not any(d.exists() for d in group.dirs)


def test_cgroup_v2_is_found_where_an_ancestor_delegates_memory_and_pids(tmp_path: Path) -> None:
    """The v2 path on a fake hierarchy (this machine mounts v1): the deepest ancestor whose
    ``cgroup.subtree_control`` gives memory and pids is the base; limits go in the files cgroup v2 names."""
    root = tmp_path / "unified"
    (root / "system.slice" / "grader.service").mkdir(parents=True)
    (root / "cgroup.subtree_control").write_text("cpu io memory pids\n")
    (root / "system.slice" / "cgroup.subtree_control").write_text("cpu\n")
    (root / "system.slice" / "grader.service" / "cgroup.subtree_control").write_text("")
    mounts = [("/", root, "cgroup2", {"rw"})]
    found, why = cgroup._try_v2(mounts, {"": "/system.slice/grader.service"})
    assert why == "" and found is not None and found.version == 2
    assert found.bases == (root / cgroup.PARENT,)
    assert (root / cgroup.PARENT / "cgroup.subtree_control").read_text() == "+memory +pids"
    zygote = found.group("zygote", for_children=True)
    kernel = found.group("kernel", parent=zygote)
    kernel.limit(512 * 2**20, 64)
    assert (zygote.dirs[0] / "cgroup.subtree_control").read_text() == "+memory +pids"
    folder = kernel.dirs[0]
    assert folder == root / cgroup.PARENT / "zygote" / "kernel"
    assert [(folder / f).read_text() for f in ("memory.max", "memory.swap.max", "pids.max")] == [
        str(512 * 2**20), "0", "64"]
    assert kernel.procs_files == [folder / "cgroup.procs"]
    (root / "cgroup.subtree_control").write_text("cpu io\n")
    none, why = cgroup._try_v2(mounts, {"": "/system.slice/grader.service"})
    assert none is None and "no memory and pids controllers" in why


@pytest.mark.grading
@pytest.mark.slow
def test_without_a_cgroup_a_sandboxed_kernel_runs_under_the_fallback_rlimits() -> None:
    """``c.SandboxedKernelManager.cgroups = False`` (as on a machine without cgroups): the kernel still starts
    and answers, in no group of its own, limited to ``fallback_tasks`` tasks by its rlimit."""
    import asyncio

    from grader.sandbox.kernel import SandboxedKernelManager

    async def limits_seen() -> str:
        km = SandboxedKernelManager(cgroups=False, memory_limit_mb=1024)
        await km.start_kernel()
        assert km.box is not None and km.box.group is None
        kc = km.client()
        kc.start_channels()
        try:
            await kc.wait_for_ready(timeout=60)
            code = "import resource; print(resource.getrlimit(resource.RLIMIT_NPROC))"
            seen: list[str] = []
            await kc.execute_interactive(code, timeout=60, output_hook=lambda m: seen.append(
                m["content"].get("text", "")))
            return "".join(seen)
        finally:
            kc.stop_channels()
            await km.shutdown_kernel(now=True)

    assert asyncio.run(limits_seen()).strip() == "(24, 24)"
