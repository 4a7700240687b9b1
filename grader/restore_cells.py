"""The nbgrader cells of a submitted notebook, checked against the assignment in the gradebook.

nbgrader restores edited locked cells itself, but some edits make it fail instead (a grade cell
copy-pasted right after itself, a grade id or a ``points`` value edited by hand: a ``KeyError`` or
``ValueError`` inside its cell restoring, and the submission scored 0). :func:`restore` runs before
nbgrader's own steps (from :class:`grader.normalize.SubmissionExporter`) and leaves nbgrader nothing to
fail on, saying each change in words:

- a cell that repeats a grade, answer or locked cell of the assignment (same ``grade_id``): the first
  one is kept; a repeated grade or locked cell is left out, a repeated answer cell is kept as an
  ordinary cell (its code still runs, so an answer written in the copy still counts);
- nbgrader metadata for a cell the assignment does not have (an edited ``grade_id``), or that is not
  an object: the cell becomes an ordinary cell;
- a cell of the assignment whose type or nbgrader metadata was changed: the assignment's are put back;
- an edited grade or locked cell: its text is put back (nbgrader would do the same);
- a removed grade cell: put back after the assignment cell that comes before it.

The grade cells never run at grading time (the verdicts come from the hidden checks,
``grader/execute.py``), so none of this changes what a correct answer scores.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from nbformat.notebooknode import NotebookNode, from_dict

from grader.engine.verdict import function_of
from grader.failures import quote

#: nbgrader's metadata schema version (nbgrader 0.9).
SCHEMA_VERSION = 3


@dataclass(frozen=True)
class RefCell:
    """One nbgrader cell of the assignment, as the gradebook records it."""

    grade_id: str
    cell_type: str
    source: str
    kind: str  # grade | solution | task | locked
    nbgrader: dict  # the metadata its release notebook has

    def described(self) -> str:
        """The cell in words: "the grade cell for softmax", "the answer cell for softmax", ..."""
        name = function_of(self.grade_id) or self.grade_id.removeprefix("answer-")
        if self.kind == "grade":
            return f"the grade cell for {name}"
        if self.kind == "solution":
            return f"the answer cell for {name}" if self.grade_id.startswith("answer-") else \
                f"the answer cell '{self.grade_id}'"
        return f"the {'task' if self.kind == 'task' else 'locked'} cell '{self.grade_id}'"


@dataclass(frozen=True)
class Reference:
    """The assignment's nbgrader cells of one notebook, in the order of its source notebook."""

    cells: tuple[RefCell, ...]

    @property
    def by_id(self) -> dict[str, RefCell]:
        return {c.grade_id: c for c in self.cells}

    def cell_types(self) -> dict[str, str]:
        return {c.grade_id: c.cell_type for c in self.cells}

    @classmethod
    def for_notebook(cls, who: dict) -> Reference | None:
        """The reference of ``who`` (nbgrader's resources: ``db_url``, ``assignment``, ``notebook``), or
        None when the gradebook does not have that notebook."""
        from nbgrader.api import Gradebook, MissingEntry

        try:
            with Gradebook(who["db_url"]) as gb:
                notebook = gb.find_notebook(who["notebook"], who["assignment"])
                return cls.from_gradebook_notebook(notebook)
        except (MissingEntry, KeyError):
            return None

    @classmethod
    def from_gradebook_notebook(cls, notebook) -> Reference:  # noqa: ANN001 - nbgrader.api.Notebook
        points = {g.name: g.max_score for g in notebook.grade_cells}
        solutions = {s.name for s in notebook.solution_cells}
        tasks = {t.name for t in notebook.task_cells}
        cells = []
        for src in notebook.source_cells:  # nbgrader's order (the one its missing-cell restoring uses)
            kind = "grade" if src.name in points else "solution" if src.name in solutions else (
                "task" if src.name in tasks else "locked")
            meta = {"cell_type": src.cell_type, "checksum": src.checksum, "grade": kind == "grade",
                    "grade_id": src.name, "locked": bool(src.locked), "schema_version": SCHEMA_VERSION,
                    "solution": kind == "solution", "task": kind == "task"}
            if kind in ("grade", "task"):
                score = float(points.get(src.name, 0) or 0)
                meta["points"] = int(score) if score.is_integer() else score
            cells.append(RefCell(src.name, src.cell_type, src.source, kind, meta))
        return cls(tuple(cells))


def restore(nb: NotebookNode, positions: list[int], reference: Reference) -> list[str]:
    """Check ``nb``'s nbgrader cells against ``reference`` in place (``positions``: each cell's place in
    the submitted file, 0 for cells the grader added; kept in step). Returns the repairs, in words."""
    repairs: list[str] = []
    known = reference.by_id
    first: dict[str, int] = {}  # grade id -> place of the cell kept for it
    cells, places = [], []
    for cell, pos in zip(nb.cells, positions, strict=True):
        keep = _check(cell, pos, known, first, repairs)
        if keep:
            cells.append(cell)
            places.append(pos)
    nb.cells, positions[:] = cells, places
    _put_back_grade_cells(nb, positions, reference, repairs)
    return repairs


def _check(cell: NotebookNode, pos: int, known: dict[str, RefCell], first: dict[str, int],
           repairs: list[str]) -> bool:
    """Repair one cell; False when it is a repeated grade or locked cell, left out."""
    if "nbgrader" not in cell.metadata:
        return True
    meta = cell.metadata["nbgrader"]
    grade_id = meta.get("grade_id") if isinstance(meta, dict) else None
    ref = known.get(grade_id) if isinstance(grade_id, str) else None
    if ref is None:
        del cell.metadata["nbgrader"]
        named = f" ({quote(grade_id)})" if isinstance(grade_id, str) else ""
        repairs.append(f"cell {pos} had nbgrader metadata for a cell the assignment does not have{named}; "
                       "it was treated as an ordinary cell")
        return True
    if grade_id in first:
        if ref.kind == "solution":
            del cell.metadata["nbgrader"]
            repairs.append(f"cell {pos} repeats {ref.described()} (cell {first[grade_id]}); it was kept as an "
                           "ordinary cell")
            return True
        repairs.append(f"cell {pos} repeats {ref.described()} (cell {first[grade_id]}); the copy was left out")
        return False
    first[grade_id] = pos
    if cell.cell_type != ref.cell_type:
        repairs.append(f"cell {pos} ({ref.described()}) was changed to a {cell.cell_type} cell; it was made a "
                       f"{ref.cell_type} cell again")
        _set_type(cell, ref.cell_type)
    if not _same_metadata(meta, ref.nbgrader):
        repairs.append(f"the nbgrader metadata of cell {pos} ({ref.described()}) was edited; it was restored")
    cell.metadata["nbgrader"] = copy.deepcopy(ref.nbgrader)
    if ref.nbgrader["locked"] and cell.source != ref.source:
        repairs.append(f"{ref.described()} (cell {pos}) was edited; it was restored")
        cell.source = ref.source
    return True


def _same_metadata(meta: dict, ref: dict) -> bool:
    """Whether a cell's nbgrader metadata says what the assignment's does (same JSON types too, since
    nbgrader's schema checks them; the checksum is nbgrader's own and is always rewritten)."""
    for key in ("grade", "solution", "locked", "task"):
        if meta.get(key, False) is not ref[key]:
            return False
    if meta.get("grade_id") != ref["grade_id"] or meta.get("schema_version") != ref["schema_version"]:
        return False
    if "cell_type" in meta and meta["cell_type"] != ref["cell_type"]:
        return False
    if "points" in ref:
        points = meta.get("points")
        if isinstance(points, bool) or not isinstance(points, int | float) or float(points) != float(ref["points"]):
            return False
    return True


def _set_type(cell: NotebookNode, cell_type: str) -> None:
    cell.cell_type = cell_type
    if cell_type == "code":
        cell.outputs, cell.execution_count = [], None
        cell.pop("attachments", None)
    else:
        cell.pop("outputs", None)
        cell.pop("execution_count", None)


def _put_back_grade_cells(nb: NotebookNode, positions: list[int], reference: Reference, repairs: list[str]) -> None:
    """Insert each grade cell the notebook lacks after the assignment cell before it (else before the one
    after it, else at the end), as nbgrader's ``add_missing_cells`` would, without its failure when the
    cell before is missing too."""
    from grader.normalize import unique_id

    order = [c.grade_id for c in reference.cells]
    for index, ref in enumerate(reference.cells):
        present = {_grade_id(c): i for i, c in enumerate(nb.cells) if _grade_id(c)}
        if ref.kind != "grade" or ref.grade_id in present:
            continue
        before = [present[g] for g in order[:index] if g in present]
        after = [present[g] for g in order[index + 1:] if g in present]
        at = max(before) + 1 if before else min(after) if after else len(nb.cells)
        taken = {c.get("id") for c in nb.cells}
        cell = from_dict({"id": unique_id(f"restored-{ref.grade_id}", taken), "cell_type": ref.cell_type,
                          "metadata": {"deletable": False, "editable": False, "nbgrader": copy.deepcopy(ref.nbgrader)},
                          "source": ref.source})
        if ref.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        nb.cells.insert(at, cell)
        positions.insert(at, 0)
        repairs.append(f"{ref.described()} was removed; it was restored")


def _grade_id(cell: NotebookNode) -> str | None:
    meta = cell.metadata.get("nbgrader")
    return meta.get("grade_id") if isinstance(meta, dict) else None


__all__ = ["RefCell", "Reference", "restore"]
