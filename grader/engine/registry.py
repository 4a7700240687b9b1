"""The course's exercises, found from their folders: ``<course>/exercises/<id>/``.

One folder per assignment holds everything that belongs to it:

- ``exercise.md``: the notebook's text (MyST markdown; cells marked ``inject:``, ``helpers:``,
  ``grade:`` + ``points:`` ... see ``grader/generate.py``);
- ``checks.py``: its hidden cases (``SPECS``, one :class:`~grader.engine.cases.Spec` per graded
  function) and its known mistakes (``MISTAKES``, patches of the reference), side by side.

Nothing else lists the assignments: the generator, ``nbgrader_config.py``, the grader and the tests
all ask :func:`exercises`.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
import types
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

from grader.engine import reference as ref
from grader.engine.cases import Spec
from grader.engine.mistakes import Mistake

#: The exercises of this repository's course (``grader/exercises``).
EXERCISES_DIR = Path(__file__).resolve().parents[1] / "exercises"
TEXT = "exercise.md"
CHECKS = "checks.py"


@dataclass(frozen=True)
class Exercise:
    """One assignment: its id (``ch2-sdpa``), folder, text and checks."""

    id: str
    folder: Path

    @property
    def text_path(self) -> Path:
        return self.folder / TEXT

    @cached_property
    def checks(self) -> types.ModuleType:
        name = f"exercise_checks_{self.id.replace('-', '_')}_{abs(hash(self.folder))}"
        spec = importlib.util.spec_from_file_location(name, self.folder / CHECKS)
        if spec is None or spec.loader is None:
            raise FileNotFoundError(f"{self.folder / CHECKS} is missing")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module

    @cached_property
    def specs(self) -> dict[str, Spec]:
        return dict(self.checks.SPECS)

    @cached_property
    def mistakes(self) -> list[Mistake]:
        found = []
        for m in getattr(self.checks, "MISTAKES", []):
            if m.function not in self.specs:
                raise ValueError(f"{self.id}: mistake {m.id} targets {m.target}, which is not graded here")
            object.__setattr__(m, "assignment", self.id)
            object.__setattr__(m, "reference_of", self.reference)
            found.append(m)
        ids = [m.id for m in found]
        if len(ids) != len(set(ids)):
            raise ValueError(f"{self.id}: duplicate mistake ids in {sorted(i for i in ids if ids.count(i) > 1)}")
        return found

    def reference(self, name: str) -> object:
        """The reference of a course name: ``solutions.<name>``, unless ``checks.py`` gives its own
        (``REFERENCES``, for a course outside this repository such as the tests' tiny one)."""
        own = getattr(self.checks, "REFERENCES", {})
        return own[name] if name in own else ref.reference(name)

    def mistakes_of(self, function: str) -> list[Mistake]:
        return [m for m in self.mistakes if m.function == function]

    @cached_property
    def cells(self) -> list:
        import jupytext

        return jupytext.read(self.text_path).cells

    @cached_property
    def points(self) -> dict[str, float]:
        """``{graded function: points}`` in notebook order."""
        return {c.metadata["grade"]: c.metadata["points"] for c in self.cells if "grade" in c.metadata}

    @cached_property
    def helpers(self) -> tuple[str, ...]:
        """Earlier chapters' functions the notebook asks the student to paste, and code it gives whole
        (``given:`` cells); none of them graded here."""
        names: list[str] = []
        for c in self.cells:
            for key in ("helpers", "given"):
                value = c.metadata.get(key, [])
                names += [value] if isinstance(value, str) else list(value)
        return tuple(names)

    @property
    def course_names(self) -> tuple[str, ...]:
        """Every course function the notebook defines: helpers, then graded ones."""
        return (*self.helpers, *self.points)

    @cached_property
    def uses_torch(self) -> bool:
        """Whether the references of this notebook need PyTorch (chapters 4 and later)."""
        return any("torch" in ref.prelude([self.reference(n)]) for n in self.course_names)

    @cached_property
    def check_order(self) -> tuple[str, ...]:
        """Graded functions in notebook order, each after the graded functions its reference calls.

        The grader checks them in this order and sends the reference of a function to the kernel only
        after that function was checked, so no reference is ever in the kernel before its own check.
        """
        graded = list(self.points)
        deps = {n: set(ref.course_names_used(self.reference(n), self.course_names)) & set(graded) - {n} for n in graded}
        order: list[str] = []
        while graded:
            ready = next((n for n in graded if deps[n] <= set(order)), None)
            if ready is None:
                raise ValueError(f"{self.id}: graded functions call each other in a cycle: {graded}")
            order.append(ready)
            graded.remove(ready)
        return tuple(order)

    def validate(self) -> None:
        """Fail loudly when the text and the checks disagree."""
        if set(self.points) != set(self.specs):
            raise ValueError(
                f"{self.id}: graded functions {sorted(self.points)} in {TEXT} but hidden cases for "
                f"{sorted(self.specs)} in {CHECKS}"
            )
        for name in self.course_names:
            ref.course_names_used(self.reference(name), self.course_names)
        imported = set()
        for cell in self.cells:
            if cell.cell_type != "code" or {"inject", "helpers", "given"} & set(cell.metadata):
                continue
            try:
                tree = ast.parse(cell.source)
            except SyntaxError:
                continue
            for node in ast.walk(tree):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    imported |= {(a.asname or a.name).split(".")[0] for a in node.names}
        for name in self.course_names:
            missing = {m for m, v in ref.globals_used(self.reference(name)).items()
                       if isinstance(v, types.ModuleType)} - imported
            if missing:
                raise ValueError(f"{self.id}: the reference of {name} uses {sorted(missing)}, which the notebook's "
                                 f"setup cells do not import")


@lru_cache(maxsize=8)
def _exercises(folder: Path) -> tuple[Exercise, ...]:
    found = sorted(p.parent.name for p in folder.glob(f"*/{TEXT}"))
    return tuple(Exercise(a, folder / a) for a in found)


def exercises(folder: Path = EXERCISES_DIR) -> tuple[Exercise, ...]:
    """Every exercise under ``folder``, by id."""
    return _exercises(Path(folder).resolve())


def exercise(assignment: str, folder: Path = EXERCISES_DIR) -> Exercise:
    for ex in exercises(folder):
        if ex.id == assignment:
            return ex
    known = ", ".join(e.id for e in exercises(folder)) or "none"
    raise KeyError(f"no exercise {assignment!r} in {folder} (known: {known})")


def assignment_ids(folder: Path = EXERCISES_DIR) -> list[str]:
    return [e.id for e in exercises(folder)]
