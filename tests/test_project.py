"""The project keeps its promises: two README commands, CI runs the README's test command, pinned deps."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def quickstart_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "README Quickstart has no ```bash block"
    return [line.split("#", 1)[0].strip() for line in block.group(1).splitlines() if line.split("#", 1)[0].strip()]


def test_readme_quickstart_is_two_commands_build_then_test():
    commands = quickstart_commands()
    assert len(commands) == 2, commands
    build, test = commands
    assert "build" in build and (ROOT / build.split()[-1]).is_file()
    assert "test" in test and (ROOT / test.split()[-1]).is_file()


def test_ci_runs_exactly_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    body = [ln.strip() for ln in ci.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    body = [ln for ln in body if not ln.startswith(("set ", "cd "))]
    assert body == [quickstart_commands()[1]], body


def test_every_requirement_is_pinned_and_the_stack_is_right():
    lines = [ln.strip() for ln in (ROOT / "requirements.txt").read_text().splitlines()]
    reqs = [ln for ln in lines if ln and not ln.startswith("#")]
    unpinned = [r for r in reqs if "==" not in r]
    assert not unpinned, unpinned
    pins = dict(r.split("==", 1) for r in reqs)
    norm = {k.lower().replace("_", "-"): v for k, v in pins.items()}
    assert norm["torch"] == "2.13.0"
    assert norm["jupyter-book"].startswith("1.")
    assert norm["nbgrader"].startswith("0.9.")


def test_toc_lists_the_eight_chapters_in_order_each_with_its_exercise():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    entries = [c for part in toc["parts"] for c in part["chapters"] if re.fullmatch(r"book/ch\d_\w+", c["file"])]
    assert [int(c["file"][len("book/ch")]) for c in entries] == [1, 2, 3, 4, 5, 6, 7, 8]
    for c in entries:
        (section,) = c["sections"]
        assert re.fullmatch(rf"grader/release/(ch{c['file'][len('book/ch')]}-[\w-]+)/\1", section["file"]), section


def test_no_build_output_or_copies_committed():
    import subprocess

    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    bad = [f for f in tracked.splitlines() if f.startswith("_build/") or "-Copy" in f or ".ipynb_checkpoints" in f]
    assert not bad, bad


def test_the_grading_core_never_imports_the_instructors_term():
    """Two rooms: ``grader/term/`` (LMS, import, deadlines, report, return) may use the core, never the reverse;
    only ``grader/cli.py`` joins them."""
    import ast

    core = [p for p in (ROOT / "grader").rglob("*.py")
            if "term" not in p.relative_to(ROOT / "grader").parts[:1] and p.name != "cli.py"
            and "exercises" not in p.parts and "source" not in p.parts and "release" not in p.parts]
    assert len(core) > 10, core
    crossing = []
    for path in core:
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            crossing += [f"{path.relative_to(ROOT)} imports {n}" for n in names if n.startswith("grader.term")]
    assert not crossing, crossing
