"""The committed exercise notebooks are generated, up to date, and shaped as the course promises.

- the instructor notebooks equal what ``grader.generate`` builds now from the exercise text and
  ``solutions/`` (the releases are compared with a fresh ``nbgrader generate_assignment`` in
  ``test_exercise_proofs.py``, which runs it anyway);
- the releases hold no solution code and no hidden tests;
- every graded function has its own grade cell with points, and a visible test;
- outputs are cleared and cell ids are stable.
"""

from __future__ import annotations

import json

import jupytext
import nbformat
import pytest

from grader import generate
from grader.engine import registry, verdict

pytestmark = pytest.mark.grading
ASSIGNMENTS = generate.ASSIGNMENTS


def _cells(path) -> list:
    return nbformat.read(path, as_version=4).cells


def _grade_cells(cells: list) -> dict[str, dict]:
    return {
        c.metadata["nbgrader"]["grade_id"]: c.metadata["nbgrader"]
        for c in cells
        if c.metadata.get("nbgrader", {}).get("grade")
    }


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_instructor_notebook_is_up_to_date(assignment: str) -> None:
    fresh = generate.dumps(generate.build_source(assignment))
    committed = generate.source_path(assignment).read_text()
    assert committed == fresh, f"stale: run `python -m grader.generate {assignment}`"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_check_mode_reports_a_stale_file(assignment: str, tmp_path, monkeypatch) -> None:
    stale = tmp_path / "stale.ipynb"
    stale.write_text("{}")
    monkeypatch.setattr(generate, "source_path", lambda a: stale)
    monkeypatch.setattr(generate, "nbgrader_generate", lambda nbs: {a: nb for a, nb in nbs.items()})
    monkeypatch.setattr(generate, "release_path", lambda a: tmp_path / "missing.ipynb")
    assert generate.main(["--check", assignment]) == 1
    assert stale.read_text() == "{}", "--check must not write"


def _solution_lines(assignment: str) -> set[str]:
    """Non-trivial code lines found only inside the solution regions of the instructor notebook."""
    nb = json.loads(generate.source_path(assignment).read_text())
    inside_lines: set[str] = set()
    outside_lines: set[str] = set()
    for cell in nb["cells"]:
        inside = False
        for line in "".join(cell["source"]).splitlines():
            if "### BEGIN SOLUTION" in line:
                inside = True
            elif "### END SOLUTION" in line:
                inside = False
            elif len(line.strip()) > 12 and not line.strip().startswith(("#", '"""')):
                (inside_lines if inside else outside_lines).add(line.strip())
    assert inside_lines, f"no solution regions in the instructor notebook of {assignment}"
    return inside_lines - outside_lines


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_holds_no_solution_and_no_hidden_tests(assignment: str) -> None:
    release = generate.release_path(assignment).read_text()
    code = "\n".join(
        "".join(c["source"]) for c in json.loads(release)["cells"] if c["cell_type"] == "code"
    )
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "import grader", "import solutions"):
        assert marker not in release
    leaked = [line for line in _solution_lines(assignment) if line in code]
    assert not leaked, f"solution code in the release: {leaked[:5]}"
    assert code.count("raise NotImplementedError()") >= len(registry.exercise(assignment).specs)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_graded_function_has_its_own_grade_cell_and_visible_test(assignment: str) -> None:
    for path in (generate.source_path(assignment), generate.release_path(assignment)):
        cells = _grade_cells(_cells(path))
        graded = registry.exercise(assignment).specs
        assert set(cells) == {verdict.grade_id(name) for name in graded}, path
        for grade_id, meta in cells.items():
            assert meta["points"] > 0, grade_id
            assert meta["locked"], grade_id
    release = generate.release_path(assignment).read_text()
    for name in registry.exercise(assignment).specs:
        assert f"def test_{name}(" in release, f"no visible test for {name}"
        assert f"test_{name}()" in release
        assert f"`{name}`" in release, f"{name} missing from the points table"
    assert "self_check()" in release


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_notebooks_have_cleared_outputs_stable_ids_and_python3(assignment: str) -> None:
    for path in (generate.source_path(assignment), generate.release_path(assignment)):
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        assert nb.metadata["kernelspec"]["name"] == "python3"
        ids = [c.id for c in nb.cells]
        assert len(set(ids)) == len(ids) and all(i.startswith(assignment) for i in ids)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, (path, cell.id)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_at_least_four_known_mistakes_per_chapter(assignment: str) -> None:
    known = registry.exercise(assignment).mistakes
    assert len(known) >= 4
    assert {m.function for m in known} <= set(registry.exercise(assignment).specs)
    for m in known:
        assert len(m.message) > 30 and "[[" not in m.message and "array(" not in m.message, m.id


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_exercise_text_and_checks_agree(assignment: str) -> None:
    exercise = registry.exercise(assignment)
    exercise.validate()  # graded functions == hidden cases; references call only notebook names
    text = jupytext.read(exercise.text_path)
    injected = [n for c in text.cells for n in generate._names(c.metadata.get("inject", []))]
    assert set(injected) <= set(exercise.specs)


def test_assignments_are_the_exercise_folders() -> None:
    folders = sorted(p.name for p in registry.EXERCISES_DIR.iterdir() if (p / "exercise.md").exists())
    assert list(generate.ASSIGNMENTS) == folders
    assert sorted(p.name for p in (generate.GRADER_DIR / "source").iterdir()) == folders


def test_generation_is_deterministic() -> None:
    assert generate.dumps(generate.build_source("ch2-sdpa")) == generate.dumps(generate.build_source("ch2-sdpa"))


def test_self_check_prints_one_line_per_function(capsys: pytest.CaptureFixture[str]) -> None:
    ns: dict = {}
    exec(generate.selfcheck_source({"good": 2, "wrong": 1, "todo": 3, "broken": 1, "silent": 1, "later": 1}), ns)

    @ns["visible_test"]
    def test_good() -> None:
        pass

    @ns["visible_test"]
    def test_wrong() -> None:
        raise AssertionError("weights should sum to 1")

    @ns["visible_test"]
    def test_todo() -> None:
        raise NotImplementedError()

    @ns["visible_test"]
    def test_broken() -> None:
        raise ValueError("bad shape")

    @ns["visible_test"]
    def test_silent() -> None:  # e.g. a student's `assert` without a message: never an empty FAIL line
        raise AssertionError()

    ns["self_check"]()
    out = capsys.readouterr().out.splitlines()
    assert out[1:] == [
        "  PASS  good (2 points)",
        "  FAIL  wrong (1 point): weights should sum to 1",
        "  TODO  todo (3 points): not implemented yet",
        '  FAIL  broken (1 point): raised ValueError in test_broken at `raise ValueError("bad shape")`: bad shape',
        "  FAIL  silent (1 point): raised AssertionError in test_silent at `raise AssertionError()` (no message)",
        "  ----  later (1 point): its test has not run yet (run the cells above, down to the test after later)",
        "Visible tests pass for 1 of 6 functions (2 of 9 points).",
    ]


def test_given_code_is_handed_over_whole_and_locked() -> None:
    """A ``given:`` cell (chapter 7's model) holds the code itself, locked, in the release too."""
    from grader.engine import reference as ref

    exercise = registry.exercise("ch7-transformer")
    release = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in _cells(generate.release_path(exercise.id))}
    cell = release["given-EncoderLayer-TinyTransformer"]
    assert cell.metadata["nbgrader"]["locked"] and not cell.metadata["nbgrader"]["solution"]
    for name in ("EncoderLayer", "TinyTransformer"):
        assert ref.student_source(exercise.reference(name)) in cell.source
        assert name in exercise.helpers, "the grader installs given code like a helper while it checks"
    assert "NotImplementedError" not in cell.source
