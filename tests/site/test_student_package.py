"""What a student can install from the site carries no reference: the wheel, in a fresh virtual environment.

The package is built the way pip builds it for the readings' install cell (``pip wheel --no-deps
--no-build-isolation`` on a copy of the repository's files), then:

- the wheel holds the public ``course`` package only: no ``solutions/``, no ``grader/``, no mistake
  catalogue, and no file of it contains a block of a reference implementation (the same check as
  ``test_site_no_solutions.py`` runs on the website);
- installed into a fresh ``python -m venv`` that sees the pinned third-party packages (NumPy, PyTorch,
  Jupyter... as Colab has them) but not the repository, ``import solutions`` fails, ``course.impl``
  gives the stand-ins, and every reading notebook runs top to bottom there (nbclient, that venv's
  Python as the kernel), its install cell doing nothing because the package is already installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import pytest
from test_site_no_solutions import graded_bodies, leaks, normalize

from course import notebooks

pytestmark = [pytest.mark.site, pytest.mark.slow]

ROOT = notebooks.ROOT
FORBIDDEN = ("solutions/", "grader/", "tests/", "benchmarks/")

RUNNER = textwrap.dedent(
    """
    import json, sys, time
    import nbformat
    from nbclient import NotebookClient

    results = {}
    for path in sys.argv[1:]:
        nb = nbformat.read(path, as_version=4)
        start = time.perf_counter()
        NotebookClient(nb, timeout=600, kernel_name="python3").execute()
        code = [c for c in nb.cells if c.cell_type == "code"]
        results[path] = {
            "seconds": round(time.perf_counter() - start, 1),
            "install_output": "".join(o.get("text", "") for o in code[0].outputs),
            "figures": sum("image/png" in o.get("data", {}) for c in code for o in c.outputs),
            "errors": [o.get("ename") for c in code for o in c.outputs if o.output_type == "error"],
        }
    print(json.dumps(results))
    """
)


def repository_files() -> list[str]:
    """The repository's files as a fresh clone has them (tracked or new, not ignored), from the work tree."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True,
                            text=True, check=True).stdout
    return [name for name in listed.split("\0") if name and (ROOT / name).is_file()]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    for name in repository_files():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes((ROOT / name).read_bytes())
    out = tmp / "dist"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                            "-w", str(out), str(source)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-4000:]
    (path,) = out.glob("attention_course-*.whl")
    return path


@pytest.fixture(scope="module")
def student_venv(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Path:
    """A fresh venv with the wheel installed; third-party packages visible, the repository not."""
    venv = tmp_path_factory.mktemp("student") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    # A plain path entry: the shared venv's own .pth files (attention_course.pth -> the repo) are not processed.
    Path(purelib, "zz_third_party.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run([python, "-m", "pip", "install", "--no-deps", "--no-index", str(wheel)],
                             capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-4000:]
    return venv


def clean_env(venv: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "MPLBACKEND", "COURSE_IMPL")}
    env.pop("COURSE_SITE_BUILD", None)
    return {**env, "PIP_NO_INDEX": "1", "PATH": f"{venv / 'bin'}:{env.get('PATH', '')}"}


def test_the_wheel_holds_the_course_package_only(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    packages = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert packages == {"course"}, packages
    assert not [n for n in names if n.startswith(FORBIDDEN) or "mistake" in n.lower()], names
    assert "course/impl.py" in names and "course/standins.py" in names


def test_no_file_of_the_wheel_holds_a_reference_implementation(wheel: Path) -> None:
    bodies = graded_bodies()
    found = []
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            if name.endswith((".py", ".txt", ".json", ".md")):
                text = archive.read(name).decode("utf-8", errors="replace")
                lines = [n for n in (normalize(x) for x in text.splitlines()) if n]
                found += [f"{ref} in {name}" for ref, body in bodies.items() if leaks(lines, body)]
    assert found == []


def test_in_the_student_venv_solutions_is_gone_and_course_impl_gives_stand_ins(student_venv: Path,
                                                                                tmp_path: Path) -> None:
    python = student_venv / "bin" / "python"
    code = textwrap.dedent(
        """
        import importlib.util, json
        import numpy as np, torch
        from course import impl, standins
        checks = {
            "solutions": importlib.util.find_spec("solutions") is not None,
            "grader": importlib.util.find_spec("grader") is not None,
            "source": impl.SOURCE,
            "same": impl.scaled_dot_product_attention is standins.scaled_dot_product_attention,
            "triton": impl.triton_flash() is None,
            "course": impl.__file__,
        }
        out, w = impl.scaled_dot_product_attention(np.eye(3), np.eye(3), np.arange(9.0).reshape(3, 3),
                                                   mask=impl.causal_mask(3, 3))
        checks["row_sums"] = np.round(w.sum(axis=-1), 12).tolist()
        mha = impl.MultiHeadAttention(8, 2)
        checks["mha"] = list(mha(torch.ones(1, 3, 8), torch.ones(1, 4, 8), torch.ones(1, 4, 8))[1].shape)
        print(json.dumps(checks))
        """
    )
    run = subprocess.run([python, "-c", code], cwd=tmp_path, env=clean_env(student_venv), capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-4000:]
    checks = json.loads(run.stdout.strip().splitlines()[-1])
    assert checks["solutions"] is False and checks["grader"] is False, checks
    assert checks["source"] == "standins" and checks["same"] and checks["triton"], checks
    assert checks["course"].startswith(str(student_venv)), checks
    assert checks["row_sums"] == [1.0, 1.0, 1.0] and checks["mha"] == [1, 2, 3, 4], checks


def test_every_reading_runs_top_to_bottom_in_the_student_venv(student_venv: Path, tmp_path: Path) -> None:
    readings = [notebooks.twin(md) for md in notebooks.paired_sources()]
    copies = []
    for path in readings:
        copies.append(tmp_path / path.name)
        copies[-1].write_bytes(path.read_bytes())
    # two runners side by side (the CI machine has two cores; each page trains on one thread), every other page
    # each, so that chapters 7 and 8, the two that train for longest, run at the same time
    runners = [subprocess.Popen([student_venv / "bin" / "python", "-c", RUNNER, *map(str, copies[half::2])],
                                cwd=tmp_path, env=clean_env(student_venv), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for half in (0, 1)]
    results = {}
    for runner in runners:
        out, err = runner.communicate(timeout=1800)
        assert runner.returncode == 0, err[-6000:]
        results.update(json.loads(out.strip().splitlines()[-1]))
    assert sorted(results) == sorted(map(str, copies))
    print(json.dumps({Path(k).name: v["seconds"] for k, v in results.items()}))
    for path, result in results.items():
        name = Path(path).name
        assert result["errors"] == [], (name, result)
        assert result["install_output"] == "", (name, "the install cell must do nothing: course is installed")
        assert result["figures"] >= 1, (name, result)
