"""Grading beyond one machine: the Kubernetes Indexed Job and the Slurm job array in ``deploy/``.

The manifests are validated against the Kubernetes API schema (``kubernetes-validate``, strict), and the
shard commands are run here exactly as the cluster would run them: the manifest's container command with
its own environment plus ``JOB_COMPLETION_INDEX``, or the Slurm script with ``SLURM_ARRAY_TASK_ID`` and
``SLURM_ARRAY_TASK_COUNT`` for each task of its ``--array``; each into its own folder, then the merge step.
Only the mount points differ (``COURSE_DIR`` and ``RESULTS_DIR`` point at temporary folders, as the
volumes would). The merged grades must equal one local ``python -m grader grade`` run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from grader import synthetic

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "kubernetes"
SLURM = ROOT / "deploy" / "slurm"
PY = sys.executable
A = synthetic.ASSIGNMENT
KINDS = ["correct", "wrong", "half", "unsolved", "edited_tests"]
BASE_ENV = {**os.environ, "PATH": str(Path(PY).parent) + os.pathsep + os.environ.get("PATH", "")}


def manifest(name: str) -> dict:
    (doc,) = list(yaml.safe_load_all((K8S / name).read_text()))
    return doc


def container(doc: dict) -> dict:
    (box,) = doc["spec"]["template"]["spec"]["containers"]
    return box


@pytest.mark.parametrize("name", ["grade-shards.yaml", "merge-shards.yaml"])
def test_manifests_validate_against_the_kubernetes_api_schema(name: str) -> None:
    import kubernetes_validate

    doc = manifest(name)
    version = kubernetes_validate.latest_version()
    assert version.startswith(kubernetes_validate.validate(doc, version, strict=True))  # raises when invalid
    for broken in ({**doc, "spec": {**doc["spec"], "completions": "four"}},  # a wrong type
                   {**doc, "spec": {**doc["spec"], "parallelizm": 4}}):  # a misspelt field (strict)
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(broken, version, strict=True)


def test_the_shard_count_is_written_once_per_engine() -> None:
    job = manifest("grade-shards.yaml")
    env = {e["name"]: e["value"] for e in container(job)["env"]}
    assert job["spec"]["completionMode"] == "Indexed"
    assert int(env["SHARDS"]) == job["spec"]["completions"] == job["spec"]["parallelism"]
    assert "$JOB_COMPLETION_INDEX/$SHARDS" in container(job)["command"][-1]
    assert "$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT" in (SLURM / "grade-array.sh").read_text()


@pytest.fixture(scope="module")
def course_and_local(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A prepared course (submissions and secret, no gradebook) and the grades of one local CLI run."""
    base = tmp_path_factory.mktemp("cluster")
    course = base / "course"
    synthetic.make_course(course, timeout=10)
    for kind in KINDS:
        synthetic.write_submission(course, kind, kind)
    subprocess.run([PY, "-m", "grader", "--course-dir", str(course), "secret"], env=BASE_ENV, check=True,
                   capture_output=True)
    local = base / "local"
    shutil.copytree(course, local)
    res = subprocess.run([PY, "-m", "grader", "--course-dir", str(local), "grade", A, "--jobs", "2"],
                         env=BASE_ENV, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    return course, grades(local)


def grades(course: Path) -> dict[tuple[str, str], float]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        return {(s.student.id, g.name): float(g.score) for s in gb.assignment_submissions(A)
                for nb in s.notebooks for g in nb.grades}


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def volumes(prepared: Path, tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    """A fresh copy of the prepared course, an empty results folder, and the variables that point at them."""
    course, results = tmp_path / "course", tmp_path / "results"
    shutil.copytree(prepared, course)
    results.mkdir()
    return course, results, {"COURSE_DIR": str(course), "RESULTS_DIR": str(results), "ASSIGNMENT": A}


def run_shell(command: list[str] | str, env: dict[str, str]) -> None:
    argv = command if isinstance(command, list) else ["bash", command]
    res = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]


@pytest.mark.grading
@pytest.mark.slow
def test_kubernetes_shards_then_merge_equal_one_local_run(course_and_local, tmp_path: Path) -> None:
    course, results, mounts = volumes(course_and_local[0], tmp_path)
    job = manifest("grade-shards.yaml")
    env = {e["name"]: e["value"] for e in container(job)["env"]}
    before = snapshot(course)
    for index in range(job["spec"]["completions"]):
        run_shell(container(job)["command"], {**BASE_ENV, **env, **mounts, "JOB_COMPLETION_INDEX": str(index)})
    assert sorted(p.name for p in results.iterdir()) == [f"shard-{i}" for i in range(job["spec"]["completions"])]
    assert snapshot(course) == before  # the shards only read the course (it may be a read-only volume)
    merge = container(manifest("merge-shards.yaml"))
    merge_env = {e["name"]: e["value"] for e in merge["env"]}
    run_shell(merge["command"], {**BASE_ENV, **merge_env, **mounts})
    assert grades(course) == course_and_local[1]
    assert len(course_and_local[1]) == 2 * len(KINDS)


@pytest.mark.grading
@pytest.mark.slow
def test_slurm_array_then_merge_equal_one_local_run(course_and_local, tmp_path: Path) -> None:
    course, results, mounts = volumes(course_and_local[0], tmp_path)
    script = (SLURM / "grade-array.sh").read_text()
    first, last = (int(x) for x in re.search(r"^#SBATCH --array=(\d+)-(\d+)$", script, re.M).groups())
    cpus = re.search(r"^#SBATCH --cpus-per-task=(\d+)$", script, re.M).group(1)
    for task in range(first, last + 1):
        slurm = {"SLURM_ARRAY_TASK_ID": str(task), "SLURM_ARRAY_TASK_COUNT": str(last - first + 1),
                 "SLURM_CPUS_PER_TASK": cpus}
        run_shell(str(SLURM / "grade-array.sh"), {**BASE_ENV, **mounts, **slurm})
    run_shell(str(SLURM / "merge.sh"), {**BASE_ENV, **mounts})
    assert grades(course) == course_and_local[1]
