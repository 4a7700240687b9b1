"""Build the exercise notebooks from one source of truth.

For every exercise ``<id>`` (one folder ``grader/exercises/<id>/`` each, found by
:mod:`grader.engine.registry`):

1. ``grader/exercises/<id>/exercise.md`` (MyST markdown read by jupytext) holds the text, the setup
   code and the visible tests. Code cells carry small directives in their metadata:

   - ``inject: [name, ...]`` -- a graded answer cell. The generator pastes the reference of each name
     from ``solutions/`` in the form students write it (:func:`grader.engine.reference.student_source`:
     its ``@validated`` input checks dropped) and wraps every function or method body in
     ``### BEGIN SOLUTION`` / ``### END SOLUTION`` (signature and docstring stay visible). A reference
     may only call what the notebook defines, so the release holds no reference code at all.
   - ``helpers: [name, ...]`` -- the same for earlier chapters' functions that this chapter needs
     (students paste their own); not graded; the grader uses the reference while it checks.
   - ``given: [name, ...]`` -- code the notebook hands to students whole (a model to run their
     functions on): the source of each name (``checks.REFERENCES`` or ``solutions``) in a locked cell,
     with no solution region; not graded; while it checks, the grader uses it like a helper.
   - ``grade: name`` + ``points: n`` -- the body of the visible test of ``name``
     (:mod:`grader.visible_tests`: inputs as literals or ``draw(...)``, ``check("what", value)`` calls
     whose expected values the generator computes with the reference and embeds). It becomes two
     locked cells after the answer: the test ``test_<name>`` and the grade cell (``grade_id`` from
     :func:`grader.engine.verdict.grade_id`), which runs it. At grading time the grader replaces the
     grade cell's outputs by the verdict of the hidden checks, computed outside the student's kernel
     (``grader/execute.py``).
   - ``selfcheck: true`` -- the self-check harness (``grader/exercises/_selfcheck.py``), locked and
     collapsed (its source hidden in JupyterLab, Colab and on the website).
   - ``locked: true`` -- a read-only cell (restored by ``nbgrader autograde`` if a student edits it).
   - ``solution: true`` -- an answer cell whose solution region is written in the exercise text
     itself (only for code that is not part of the ``solutions`` contract).

   ``{points_table}`` in a markdown cell becomes the table of graded functions and their points.

2. The instructor notebook ``grader/source/<id>/<id>.ipynb`` is written from that, and the student
   release ``grader/release/<id>/<id>.ipynb`` is made from it by stock ``nbgrader generate_assignment``
   (run in a temporary copy of the course directory, so the real gradebook is untouched).

Usage::

    python -m grader.generate            # regenerate every committed notebook
    python -m grader.generate ch2-sdpa   # one assignment
    python -m grader.generate --check    # exit 1 if a committed notebook is stale
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat

from grader import visible_tests
from grader.engine import reference as ref
from grader.engine import registry, verdict
from grader.engine.mistakes import Mistake, inject

GRADER_DIR = Path(__file__).resolve().parent
EXERCISES_DIR = registry.EXERCISES_DIR
ASSIGNMENTS = tuple(registry.assignment_ids())
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}
LANGUAGE_INFO = {"name": "python"}


# --------------------------------------------------------------------------------------------------
# Reference code in the student's form, with solution regions
# --------------------------------------------------------------------------------------------------


def _body_start(node: ast.FunctionDef | ast.ClassDef) -> int:
    """0-based index of the first body line after the docstring (if any)."""
    first = node.body[0]
    is_doc = isinstance(first, ast.Expr) and isinstance(getattr(first, "value", None), ast.Constant) and (
        isinstance(first.value.value, str)
    )
    return first.end_lineno if is_doc else first.lineno - 1  # type: ignore[return-value]


def _wrap_function(lines: list[str], node: ast.FunctionDef) -> list[str]:
    """Lines of one function with its body (after the docstring) inside a solution region."""
    head_end = _body_start(node)
    body_indent = " " * node.body[0].col_offset
    out = lines[node.lineno - 1 - len(node.decorator_list) : head_end]
    out.append(body_indent + BEGIN)
    out += lines[head_end : node.end_lineno]
    out.append(body_indent + END)
    return out


def solution_code(name: str, available: Iterable[str]) -> str:
    """The reference ``name`` as students write it, with every function body in a solution region."""
    obj = ref.reference(name)
    ref.course_names_used(obj, available)  # raises if it calls something the notebook lacks
    lines = ref.student_source(obj).splitlines()
    node = ast.parse("\n".join(lines)).body[0]
    if isinstance(node, ast.FunctionDef):
        return "\n".join(_wrap_function(lines, node))
    if not isinstance(node, ast.ClassDef):
        raise TypeError(f"cannot inject {name}")
    out: list[str] = []
    cursor = 0
    for item in node.body:
        if not isinstance(item, ast.FunctionDef):
            continue
        first = item.lineno - 1 - len(item.decorator_list)
        out += lines[cursor:first]
        out += _wrap_function(lines, item)
        cursor = item.end_lineno  # type: ignore[assignment]
    out += lines[cursor:]
    return "\n".join(out)


# --------------------------------------------------------------------------------------------------
# Exercise text -> instructor notebook
# --------------------------------------------------------------------------------------------------


def _nbgrader_meta(grade_id: str, *, solution: bool, grade: bool, locked: bool, points: float = 0) -> dict:
    meta = {
        "grade": grade,
        "grade_id": grade_id,
        "locked": locked,
        "schema_version": 3,
        "solution": solution,
        "task": False,
    }
    if grade:
        meta["points"] = points
    return meta


def _names(meta_value: object) -> list[str]:
    return [meta_value] if isinstance(meta_value, str) else list(meta_value)  # type: ignore[arg-type]


def graded_points(assignment: str) -> dict[str, float]:
    """``{function name: points}`` of an assignment, in notebook order, from its exercise text."""
    return registry.exercise(assignment).points


def points_table(points: dict[str, float]) -> str:
    rows = "\n".join(f"| `{name}` | {pts:g} |" for name, pts in points.items())
    total = sum(points.values())
    return f"| graded function | points |\n| --- | --- |\n{rows}\n| **total** | **{total:g}** |"


def grade_cell_source(name: str, points: float) -> str:
    plural = "" if points == 1 else "s"
    return "\n".join(
        [
            f"# Graded: {name} ({points:g} point{plural}). This cell runs the visible test above; the grader",
            "# checks your function again, outside this notebook, on hidden inputs.",
            f"test_{name}()",
        ]
    )


def test_cell_source(name: str, test: str) -> str:
    return f"# The visible test of {name}: fixed inputs, expected values from the reference solution.\n{test}"


def selfcheck_source(points: dict[str, float], calls: dict[str, list[str]] | None = None) -> str:
    return visible_tests.harness_source(points, calls or {})


#: Cell metadata that shows a cell collapsed: JupyterLab / Notebook 7 / VS Code, Colab, and the website.
COLLAPSED = {"jupyter": {"source_hidden": True}, "cellView": "form", "tags": ["hide-input"]}


def build_source(assignment: str) -> nbformat.NotebookNode:
    """The instructor notebook of ``assignment``, built from its exercise text and ``solutions/``."""
    exercise = registry.exercise(assignment)
    exercise.validate()
    points = exercise.points
    defined = set(exercise.course_names)
    builder = visible_tests.Builder(exercise)
    last_grade = max(i for i, c in enumerate(exercise.cells) if "grade" in c.metadata)
    cells = []
    counter = 0
    for index, cell in enumerate(exercise.cells):
        meta = dict(cell.metadata)
        if cell.cell_type == "markdown":
            counter += 1
            source = cell.source.replace("{points_table}", points_table(points))
            cells.append(nbformat.v4.new_markdown_cell(source, id=f"{assignment}-md-{counter:02d}"))
            continue
        new_meta: dict = {}
        if "inject" in meta or "helpers" in meta:
            key = "inject" if "inject" in meta else "helpers"
            names = _names(meta[key])
            parts = [solution_code(n, defined) for n in names]
            prefix = cell.source.strip()
            source = "\n\n\n".join(([prefix] if prefix else []) + parts)
            grade_id = ("answer-" if key == "inject" else "helpers-") + "-".join(names)
            new_meta["nbgrader"] = _nbgrader_meta(grade_id, solution=True, grade=False, locked=False)
        elif "given" in meta:
            names = _names(meta["given"])
            parts = [ref.student_source(exercise.reference(n)) for n in names]
            prefix = cell.source.strip()
            source = "\n\n\n".join(([prefix] if prefix else []) + parts)
            grade_id = "given-" + "-".join(names)
            new_meta["nbgrader"] = _nbgrader_meta(grade_id, solution=False, grade=False, locked=True)
        elif "solution" in meta:
            source = cell.source
            grade_id = "answer-" + meta["solution"]
            new_meta["nbgrader"] = _nbgrader_meta(grade_id, solution=True, grade=False, locked=False)
        elif "grade" in meta:
            name = meta["grade"]
            test = builder.finished_test(name, cell.source)
            test_meta = {"nbgrader": _nbgrader_meta(f"visible-test-{name}", solution=False, grade=False, locked=True)}
            test_id = f"{assignment}-visible-test-{name}"[:64]
            cells.append(nbformat.v4.new_code_cell(test_cell_source(name, test), id=test_id, metadata=test_meta))
            source = grade_cell_source(name, points[name])
            grade_id = verdict.grade_id(name)
            new_meta["nbgrader"] = _nbgrader_meta(
                grade_id, solution=False, grade=True, locked=True, points=points[name]
            )
        elif meta.get("selfcheck"):
            prefix = cell.source.strip()
            harness = selfcheck_source(points, visible_tests.graded_callees(exercise))
            source = "\n\n".join(([prefix] if prefix else []) + [harness])
            grade_id = "selfcheck-harness"
            new_meta.update(copy.deepcopy(COLLAPSED))
            new_meta["nbgrader"] = _nbgrader_meta(grade_id, solution=False, grade=False, locked=True)
        elif meta.get("locked"):
            counter += 1
            source = cell.source
            grade_id = meta.get("id", f"locked-{counter:02d}")
            new_meta["nbgrader"] = _nbgrader_meta(grade_id, solution=False, grade=False, locked=True)
        else:
            counter += 1
            source = cell.source
            grade_id = f"code-{counter:02d}"
        if "grade" not in meta and index < last_grade:  # the kernel's state the next tests run in
            builder.run(source)
        cells.append(nbformat.v4.new_code_cell(source, id=f"{assignment}-{grade_id}"[:64], metadata=new_meta))
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": dict(LANGUAGE_INFO)}
    nb.nbformat, nb.nbformat_minor = 4, 5
    nbformat.validate(nb)
    return nb


# --------------------------------------------------------------------------------------------------
# Instructor notebook -> student release (stock nbgrader), and deterministic files
# --------------------------------------------------------------------------------------------------


def dumps(nb: nbformat.NotebookNode) -> str:
    """Deterministic JSON text of a notebook (sorted keys, one-space indent, trailing newline)."""
    return json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def normalize_release(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Clear what nbgrader or nbformat may vary between runs (outputs, counts, metadata order)."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nb.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": dict(LANGUAGE_INFO)}
    return nb


def venv_env() -> dict[str, str]:
    """The environment with this interpreter's bin folder first on PATH (nbgrader runs `alembic`)."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def _nbgrader_generate_one(assignment: str, nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    with tempfile.TemporaryDirectory(prefix="nbgrader-generate-") as tmp:
        course = Path(tmp)
        shutil.copy(GRADER_DIR / "nbgrader_config.py", course / "nbgrader_config.py")
        folder = course / "source" / assignment
        folder.mkdir(parents=True)
        (folder / f"{assignment}.ipynb").write_text(dumps(nb))
        proc = subprocess.run(
            [sys.executable, "-m", "nbgrader", "generate_assignment", assignment, "--force"],
            cwd=course,
            capture_output=True,
            text=True,
            env=venv_env(),
        )
        if proc.returncode != 0:
            raise RuntimeError(f"nbgrader generate_assignment {assignment} failed:\n{proc.stderr}")
        return normalize_release(nbformat.read(course / "release" / assignment / f"{assignment}.ipynb", 4))


def nbgrader_generate(source_nbs: dict[str, nbformat.NotebookNode]) -> dict[str, nbformat.NotebookNode]:
    """Run stock ``nbgrader generate_assignment`` on instructor notebooks, each in its own temp course."""
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        futures = {a: pool.submit(_nbgrader_generate_one, a, nb) for a, nb in source_nbs.items()}
        return {a: f.result() for a, f in futures.items()}


def source_path(assignment: str) -> Path:
    return GRADER_DIR / "source" / assignment / f"{assignment}.ipynb"


def release_path(assignment: str) -> Path:
    return GRADER_DIR / "release" / assignment / f"{assignment}.ipynb"


def generate(assignments: Iterable[str]) -> dict[Path, str]:
    """``{path: text}`` of every derived file of ``assignments``, freshly generated (nothing written)."""
    sources = {a: build_source(a) for a in assignments}
    releases = nbgrader_generate(sources)
    files: dict[Path, str] = {}
    for a in sources:
        files[source_path(a)] = dumps(sources[a])
        files[release_path(a)] = dumps(releases[a])
    return files


def _show(path: Path) -> str:
    return str(path.relative_to(GRADER_DIR.parent)) if path.is_relative_to(GRADER_DIR.parent) else str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader.generate", description=__doc__.split("\n")[0])
    parser.add_argument("assignments", nargs="*", help=f"default: all of {', '.join(ASSIGNMENTS)}")
    parser.add_argument("--check", action="store_true", help="exit 1 if a committed notebook is stale")
    args = parser.parse_args(argv)
    unknown = set(args.assignments) - set(ASSIGNMENTS)
    if unknown:
        parser.error(f"unknown assignment(s): {', '.join(sorted(unknown))}")
    files = generate(args.assignments or ASSIGNMENTS)
    stale = [p for p, text in files.items() if not p.exists() or p.read_text() != text]
    if args.check:
        for path in stale:
            print(f"stale: {_show(path)} (run: python -m grader.generate)")
        print("all generated notebooks are up to date" if not stale else f"{len(stale)} stale file(s)")
        return 1 if stale else 0
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[path])
        print(f"wrote {_show(path)}")
    print(f"{len(files) - len(stale)} file(s) already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())


# --------------------------------------------------------------------------------------------------
# Submissions for the proofs and benchmarks: the release filled in, optionally with a known mistake
# --------------------------------------------------------------------------------------------------


def filled_release(assignment: str, mistakes: Iterable[Mistake] = ()) -> nbformat.NotebookNode:
    """The committed release with every answer cell filled in, as a student who solved it would.

    The answers are the instructor notebook's (the reference). Each of ``mistakes`` (known mistakes
    of this assignment, at most one per function) replaces the definition of its function in the
    answer cell that defines it.
    """
    release = nbformat.read(release_path(assignment), as_version=4)
    source = nbformat.read(source_path(assignment), as_version=4)
    answers = {
        c.metadata["nbgrader"]["grade_id"]: c.source
        for c in source.cells
        if c.metadata.get("nbgrader", {}).get("solution")
    }
    pending = list(mistakes)
    for cell in release.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id not in answers:
            continue
        cell.source = "\n".join(
            line for line in answers[grade_id].splitlines() if line.strip() not in (BEGIN, END)
        )
        if grade_id.startswith("answer-"):
            defined = grade_id.removeprefix("answer-").split("-")
            for m in [m for m in pending if m.function in defined]:
                cell.source = inject(cell.source, m)
                pending.remove(m)
    if pending:
        raise ValueError(f"no answer cell of {assignment} defines {[m.target for m in pending]}")
    return release
