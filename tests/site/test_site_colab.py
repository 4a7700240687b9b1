"""A reading notebook runs where Colab runs it: outside the repository, course package not installed.

The test makes a fresh virtual environment that sees the pinned third-party packages (NumPy,
Matplotlib, PyTorch, Jupyter: Colab has them) but not the course, runs a committed reading notebook
there from an empty folder, and checks that its first cell installed the course package with pip from
git, that what it installed is the public ``course`` package only (``import solutions`` fails: the
reference stays in the repository), and that every cell ran and drew its figures (with ``course.impl``'s
stand-ins). ``test_student_package.py`` checks the wheel itself and runs every reading.

Offline, the install cell's GitHub URL is swapped for this repository's own git URL (same
``pip install "attention-course @ git+..."`` mechanism) and pip gets ``--no-deps --no-build-isolation``
(no package index here; Colab has one).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

from course import notebooks

pytestmark = [pytest.mark.site, pytest.mark.slow]

NOTEBOOK = notebooks.ROOT / "book" / "ch1_lookup.ipynb"

RUNNER = textwrap.dedent(
    """
    import json, sys
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(sys.argv[1], as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3").execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    print(json.dumps({
        "install_output": "".join(o.get("text", "") for o in code[0].outputs),
        "figures": sum("image/png" in o.get("data", {}) for c in code for o in c.outputs),
        "errors": [o.get("ename") for c in code for o in c.outputs if o.output_type == "error"],
    }))
    """
)


def test_reading_notebook_installs_the_course_and_runs_outside_the_repo(tmp_path: Path) -> None:
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=notebooks.ROOT, capture_output=True, text=True)
    if head.returncode != 0:
        pytest.fail(f"needs the git repository to install from: {head.stderr}")
    venv = tmp_path / "colab"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    # Third-party packages only: a plain path entry, so the repo's attention_course.pth is not processed.
    Path(purelib, "zz_third_party.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    workdir = tmp_path / "content"
    workdir.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "MPLBACKEND", "COURSE_IMPL", "COURSE_SITE_BUILD")}
    env.update(PIP_NO_INDEX="1", PATH=f"{venv / 'bin'}:{env.get('PATH', '')}")
    check = subprocess.run([python, "-c", "import course"], cwd=workdir, env=env, capture_output=True, text=True)
    assert check.returncode != 0, "the course must not be importable before the install cell runs"

    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    source = "".join(nb["cells"][0]["source"])
    local = f"git+file://localhost{notebooks.ROOT}@{head.stdout.strip()}"
    patched, n = re.subn(r'"attention-course @ git\+[^"]+"',
                         f'--no-deps --no-build-isolation "attention-course @ {local}"', source)
    assert n == 1, source
    nb["cells"][0]["source"] = patched
    copy = workdir / NOTEBOOK.name
    copy.write_text(json.dumps(nb), encoding="utf-8")

    run = subprocess.run([python, "-c", RUNNER, str(copy)], cwd=workdir, env=env, capture_output=True, text=True,
                         timeout=900)
    assert run.returncode == 0, run.stderr[-4000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["errors"] == []
    assert result["figures"] >= 1
    installed = subprocess.run([python, "-c", "import course; print(course.__file__)"],
                               cwd=workdir, env=env, capture_output=True, text=True)
    assert installed.returncode == 0 and str(venv) in installed.stdout, installed.stdout + installed.stderr
    for private in ("solutions", "grader"):
        gone = subprocess.run([python, "-c", f"import {private}"], cwd=workdir, env=env, capture_output=True,
                              text=True)
        assert gone.returncode != 0 and "ModuleNotFoundError" in gone.stderr, f"{private} was installed too"
