"""CONTRIBUTING.md's steps work as written: a throwaway mistake added in a temporary copy of the repository.

The snippet and the command of "Add a known mistake" are read from CONTRIBUTING.md itself, applied to
a copy of the tracked files, and run there: the new mistake is found, named and proved; the same
mistake with a patch that does not match makes the command fail.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.grading, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
GUIDE = (ROOT / "CONTRIBUTING.md").read_text()


def _section(title: str) -> str:
    return GUIDE.split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def _blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, re.S)


def _copy_repo(dest: Path) -> Path:
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / name).is_file():
            shutil.copy2(ROOT / name, target)
    return dest


def _add_mistake(repo: Path, snippet: str) -> None:
    checks = repo / "grader" / "exercises" / "ch2-sdpa" / "checks.py"
    text = checks.read_text()
    anchor = "SOFTMAX_MISTAKES = [\n"
    assert anchor in text
    checks.write_text(text.replace(anchor, anchor + "    " + snippet.strip().replace("\n", "\n    ") + "\n", 1))


def _run(repo: Path, command: str) -> subprocess.CompletedProcess:
    args = shlex.split(command)
    assert args[0] == "python"
    env = {**os.environ, "PYTHONPATH": str(repo)}
    return subprocess.run([sys.executable, *args[1:], "-q", "-p", "no:cacheprovider"], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=600)


def test_adding_a_mistake_as_contributing_says(tmp_path: Path) -> None:
    section = _section("Add a known mistake")
    snippet = _blocks(section, "python")[0]
    command = _blocks(section, "bash")[0].strip()
    mistake_id = re.search(r'Mistake\(\s*"([^"]+)"', snippet).group(1)
    assert mistake_id in command

    good = _copy_repo(tmp_path / "good")
    _add_mistake(good, snippet)
    res = _run(good, command)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    # the new mistake's case in each module: it applies and changes the answer, and it is diagnosed by name
    assert re.search(r"\b2 passed\b", res.stdout) and "failed" not in res.stdout, res.stdout[-2000:]


def test_a_patch_that_does_not_apply_fails_the_same_command(tmp_path: Path) -> None:
    section = _section("Add a known mistake")
    snippet = _blocks(section, "python")[0]
    command = _blocks(section, "bash")[0].strip()
    broken = _copy_repo(tmp_path / "broken")
    _add_mistake(broken, snippet.replace("np.sum(e, axis=axis, keepdims=True)", "np.sum(e, axis=axis, keepdims=False)"))
    res = _run(broken, command)
    assert res.returncode != 0
    assert "occurs 0 times" in res.stdout + res.stderr
