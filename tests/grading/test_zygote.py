"""Zygote kernels: fresh, sandboxed, and nothing passes from one submission to the next.

``python -m grader grade`` forks each kernel from its worker's pre-imported zygote
(``grader/sandbox/zygote.py``). With one worker, a polluter is graded right before a detector by the
same zygote: the detector must see none of the polluter's globals, patched modules, environment or
files, and must itself run as PID 1 of its own namespace, with its own uid and no capabilities.
(The hostile class of ``test_hostile.py`` is graded by the CLI too, so with zygote kernels.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from grader import synthetic
from grader.sandbox.zygote import zygote_kernels_possible

pytestmark = [pytest.mark.grading, pytest.mark.slow]
PY = sys.executable
ENV = {**os.environ, "PATH": str(Path(PY).parent) + os.pathsep + os.environ.get("PATH", "")}
A = synthetic.ASSIGNMENT

POLLUTE = """
import builtins, os, sys
import numpy as np
builtins.LEFT_BEHIND = 'polluted'
np.allclose = lambda *a, **k: 'polluted'
sys.modules['numpy'].POLLUTED = True
os.environ['POLLUTED'] = '1'
for folder in ('/tmp', os.getcwd(), os.path.expanduser('~')):
    try:
        open(os.path.join(folder, 'left-behind.txt'), 'w').write('polluted')
    except OSError:
        pass
import random; random.seed(1234)
print('polluted', random.random())
"""

DETECT = """
import builtins, os, sys, glob, json, random
import numpy as np
found = {
    'builtin': hasattr(builtins, 'LEFT_BEHIND'),
    'numpy_patched': np.allclose(1, 1) == 'polluted' or hasattr(np, 'POLLUTED'),
    'env': 'POLLUTED' in os.environ,
    'files': [p for f in ('/tmp', os.getcwd(), os.path.expanduser('~'))
              for p in glob.glob(os.path.join(f, 'left-behind.txt'))],
    'pid': os.getpid(),
    'uid': os.getuid(),
    'caps': [l.split()[1] for l in open('/proc/self/status') if l.startswith('CapEff')][0],
    'processes': sorted(int(p) for p in os.listdir('/proc') if p.isdigit()),
    'random': random.random(),
}
print('DETECTED ' + json.dumps(found))
"""


@pytest.mark.skipif(not zygote_kernels_possible(), reason="zygote kernels need Linux, bubblewrap and root")
def test_nothing_passes_between_submissions_graded_by_the_same_zygote(tmp_path: Path) -> None:
    course = tmp_path / "course"
    synthetic.make_course(course)
    for student, code in (("a-polluter", POLLUTE), ("b-detector", DETECT), ("c-detector", DETECT)):
        nb = synthetic.filled_release(course, A)
        nb.cells.insert(1, nbformat.v4.new_code_cell(code))
        path = course / "submitted" / student / A / f"{A}.ipynb"
        path.parent.mkdir(parents=True)
        nbformat.write(nb, path)
    res = subprocess.run([PY, "-m", "grader", "--course-dir", str(course), "grade", "--jobs", "1"],
                         capture_output=True, text=True, env=ENV, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    seen = {}
    for student in ("b-detector", "c-detector"):
        nb = nbformat.read(course / "autograded" / student / A / f"{A}.ipynb", as_version=4)
        text = "".join(o.get("text", "") for o in nb.cells[1].outputs)
        assert "DETECTED " in text, nb.cells[1].outputs
        seen[student] = json.loads(text.split("DETECTED ", 1)[1])
    for student, found in seen.items():
        assert not found["builtin"] and not found["numpy_patched"] and not found["env"], (student, found)
        assert found["files"] == [], (student, found)
        assert found["pid"] == 1 and found["processes"][0] == 1, found  # PID 1 of its own namespace
        assert 61000 <= found["uid"] < 62000 and found["caps"] == "0000000000000000", found
    assert seen["b-detector"]["random"] != seen["c-detector"]["random"], "every kernel gets fresh random seeds"
    rows = res.stdout
    assert "tiny: 3 submissions, 3 graded, mean 3.00 / 3" in rows


def _tasks_of(uid: int) -> list[str]:
    """Every task (process or thread) on this machine that runs as ``uid``, seen from the host."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for task in (proc / "task").iterdir():
                status = (task / "status").read_text()
                if int(status.split("Uid:")[1].split()[0]) == uid:
                    found.append(f"{proc.name}/{task.name}: {status.split()[1]}")
        except (OSError, IndexError, ValueError):
            continue
    return found


@pytest.mark.skipif(not zygote_kernels_possible(), reason="zygote kernels need Linux, bubblewrap and root")
def test_a_shut_down_zygote_kernel_leaves_no_task_of_its_uid(tmp_path: Path) -> None:
    """Shutting a kernel down returns only when every task of its sandbox is gone, so its uid can be reused.

    (A kernel that outlived its shutdown kept its threads under its uid: the next kernel given that uid
    then hit the per-uid process limit and crashed while starting.)
    """
    import asyncio

    from grader.coursedir import COURSE_DIR, load_config
    from grader.sandbox.zygote import ZygoteKernelManager, close_all

    async def one_kernel() -> tuple[int, list[str], list[str]]:
        km = ZygoteKernelManager(config=load_config(COURSE_DIR))
        await km.start_kernel(cwd=str(tmp_path))
        kc = km.client()
        kc.start_channels()
        await kc.wait_for_ready(timeout=60)
        idle = _tasks_of(km.box.uid)
        reply = await kc.execute("import threading, time; [threading.Thread(target=time.sleep, args=(600,), "
                                 "name='sleeper').start() for _ in range(5)]", reply=True, timeout=60)
        assert reply["content"]["status"] == "ok", reply["content"]
        uid = km.box.uid
        alive = _tasks_of(uid)
        assert len(alive) == len(idle) + 5, (idle, alive)  # the 5 sleeping threads were seen running
        kc.stop_channels()
        await km.shutdown_kernel(now=True)
        return uid, alive, _tasks_of(uid)

    try:
        for _ in range(3):  # the same uid is claimed again each time
            uid, alive, left = asyncio.run(one_kernel())
            assert len(alive) >= 6, alive
            assert left == [], f"uid {uid} still runs: {left}"
    finally:
        close_all()


KERNEL_START = """
import os, sys, tempfile
sys.path.insert(0, sys.argv[1])
import zygote_server
zygote_server.preload(torch=False)
from jupyter_client.connect import write_connection_file
folder = tempfile.mkdtemp()
connection = os.path.join(folder, "kernel.json")
write_connection_file(connection, transport="ipc", ip=os.path.join(folder, "kernel"))
before = set(sys.modules)
from ipykernel.kernelapp import IPKernelApp
IPKernelApp.instance().initialize(["-f", connection, "--HistoryManager.hist_file=:memory:"])
with open(sys.argv[2], "w") as f:
    f.write("\\n".join(sorted(set(sys.modules) - before)))
os._exit(0)
"""


def test_the_zygote_has_imported_what_a_kernel_start_imports(tmp_path: Path) -> None:
    """A kernel forked from the zygote imports (almost) nothing while it starts: KERNEL_START_IMPORTS is
    complete for the installed ipykernel (it imported 161 modules, 0.1 s per kernel, before)."""
    sandbox = Path(__file__).resolve().parents[2] / "grader" / "sandbox"
    out = tmp_path / "imported.txt"
    subprocess.run([PY, "-c", KERNEL_START, str(sandbox), str(out)], env=ENV, check=True, capture_output=True,
                   timeout=120)
    imported = [m for m in out.read_text().splitlines() if m]
    assert len(imported) <= 3, f"a kernel start imports {len(imported)} modules the zygote has not: {imported}"


@pytest.mark.skipif(not zygote_kernels_possible(), reason="zygote kernels need root and bubblewrap")
def test_only_the_pytorch_chapters_fork_from_a_zygote_that_imported_pytorch(tmp_path: Path) -> None:
    """Importing PyTorch costs each worker's zygote seconds: the NumPy chapters' zygote does without it.
    TrustedExecute asks for it per assignment (``Exercise.uses_torch``)."""
    import asyncio

    from grader.coursedir import COURSE_DIR, load_config
    from grader.engine import registry
    from grader.sandbox.zygote import ZygoteKernelManager, close_all

    async def torch_imported(preload_torch: bool) -> bool:
        km = ZygoteKernelManager(config=load_config(COURSE_DIR))
        km.preload_torch = preload_torch
        await km.start_kernel(cwd=str(tmp_path))
        kc = km.client()
        kc.start_channels()
        try:
            await kc.wait_for_ready(timeout=60)
            reply = await kc.execute("import sys; assert 'torch' in sys.modules", reply=True, timeout=60)
            return reply["content"]["status"] == "ok"
        finally:
            kc.stop_channels()
            await km.shutdown_kernel(now=True)

    try:
        assert asyncio.run(torch_imported(True)) is True
        assert asyncio.run(torch_imported(False)) is False
    finally:
        close_all()
    assert not registry.exercise("ch2-sdpa").uses_torch and registry.exercise("ch4-multihead").uses_torch
    from grader.execute import TrustedExecute

    cfg = load_config(COURSE_DIR)
    cfg.TrustedExecute.zygote = True
    for uses_torch in (False, True):
        execute = TrustedExecute(config=cfg)
        execute._uses_torch = uses_torch  # what preprocess() sets from the assignment's exercise
        execute.nb = nbformat.v4.new_notebook()
        km = execute.create_kernel_manager()
        assert isinstance(km, ZygoteKernelManager) and km.preload_torch is uses_torch
