"""Reading a submitted notebook the way the grader can grade it, and saying what was repaired.

Students' notebooks arrive saved by other editors, hand-edited, copy-pasted or cut short. Before
nbgrader sees a submission, :func:`read_notebook` turns its bytes into a valid nbformat 4.5 notebook,
or into one sentence saying why it cannot be graded; every change it makes is said in words:

1. **Bytes to text.** A UTF-8 byte-order mark (some Windows editors write one) is dropped; UTF-16 and
   UTF-32 text with a byte-order mark is decoded; bytes that are not UTF-8 become U+FFFD.
2. **Text to JSON.** Any layout is JSON (indentation, key order, CRLF line ends, raw tabs inside
   strings); an error names its line and column and, when the text ends early, says the file may be
   truncated. JSON nested deeper than Python's parser goes is refused in words, and metadata nested
   deeper than :data:`MAX_DEPTH` is left out.
3. **JSON to a notebook.** A list, a string, a number or an object without cells is "JSON but not a
   notebook"; nbformat 1 to 3 are converted with nbformat's own converter ("could not be converted"
   when it fails); a version the grader does not know is refused.
4. **Cells.** List or string sources; ``heading`` cells (nbformat 3) become markdown; a cell type in
   other letter case is read as itself; a cell that is not a cell (not an object, an unknown type, a
   source that is not text) is left out; metadata entries and fields that nbformat's schema rejects
   are left out; outputs and execution counts are cleared (nbgrader's ``ClearOutput`` clears them
   anyway); missing, invalid or repeated cell ids get new ones, made from the cell's place in the file
   (never random, so grading twice writes the same notebook).

Then :func:`grader.restore_cells.restore` checks the nbgrader cells against the gradebook (duplicated,
edited or removed grade, answer and locked cells), and :class:`SubmissionExporter` (``nbgrader
autograde``'s exporter in ``grader/nbgrader_config.py``, so stock ``nbgrader autograde`` and ``python -m
grader grade`` read submissions the same way) puts what was repaired in a note at the top of the
notebook, which the feedback page shows and the grades report reads back. The submitted file itself is
never changed: it stays the record of what the student sent.

Cells are named by their place in the submitted file, counting from 1 ("cell 7"), as Jupyter shows them.
"""

from __future__ import annotations

import codecs
import copy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat
from nbconvert.exporters import NotebookExporter
from nbformat.notebooknode import NotebookNode, from_dict

from grader.failures import a_json_value, quote

if TYPE_CHECKING:
    from grader.restore_cells import Reference

CELL_TYPES = ("code", "markdown", "raw")
ID_PATTERN = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
#: Deepest metadata value kept (a notebook's own metadata is a few levels deep).
MAX_DEPTH = 32
#: Fields a v4 cell may have (others are left out, and said).
CELL_FIELDS = {"id", "cell_type", "metadata", "source", "outputs", "execution_count", "attachments"}
#: Fields of nbformat 3 cells that the conversion of a heading cell uses (not reported when left out).
_V3_FIELDS = {"level", "prompt_number", "input", "language", "collapsed"}
#: Metadata key (and cell id) of the grader's note that lists the repairs, first cell of the notebook.
NOTE_KEY = "grader_repairs"
NOTE_ID = "grader-repairs"
NOTE_TITLE = "**Before grading, the grader repaired this notebook:**"
#: At most this many repairs are quoted in the grades CSV (all are in the feedback page's note).
CSV_REPAIRS = 3


class UnreadableNotebook(Exception):
    """A submitted file that cannot be graded; its message is the reason in words."""


@dataclass
class Reading:
    """What the grader made of a submitted file."""

    notebook: NotebookNode | None  # valid nbformat 4.5; None when it cannot be graded
    repairs: list[str] = field(default_factory=list)  # every change, in words ("" -> nothing changed)
    problem: str = ""  # why it cannot be graded, in words ("" when it can)
    positions: list[int] = field(default_factory=list)  # place in the file (from 1) of each cell of notebook


def read_notebook(data: bytes, cell_types: dict[str, str] | None = None) -> Reading:
    """Read the bytes of a submitted notebook (steps 1-4 of the module's docstring).

    ``cell_types`` (grade id -> cell type, from the assignment) gives a cell of the assignment whose
    cell type is not valid its own type back instead of leaving it out."""
    repairs: list[str] = []
    text = _decode(data, repairs)
    value, problem = _parse(text, repairs)
    if problem:
        return Reading(None, repairs, problem)
    value, converted, problem = _as_v4(value, repairs)
    if problem:
        return Reading(None, repairs, problem)
    top = _top_level(value, repairs)
    cells, positions = [], []
    for pos, raw in enumerate(value["cells"], start=1):
        cell = _cell(raw, pos, repairs, cell_types or {})
        if cell is not None:
            cells.append(cell)
            positions.append(pos)
    _fix_ids(cells, positions, repairs, report=not converted and value.get("nbformat_minor") == 5)
    if not _valid({**top, "cells": cells}):  # the slow path: find what nbformat's schema rejects, and where
        _valid_metadata(top, repairs)
        kept = [(c, pos) for c, pos in zip(cells, positions, strict=True) if _schema_valid(c, pos, repairs)]
        cells, positions = [c for c, _ in kept], [pos for _, pos in kept]
        if not _valid({**top, "cells": cells}):  # never expected after the repairs; said, never raised
            return Reading(None, repairs, "the notebook's structure is damaged in a way the grader cannot repair")
    return Reading(from_dict({**top, "cells": cells}), repairs, "", positions)


def _valid(nb: dict) -> bool:
    """Whether ``nb`` is a valid nbformat 4.5 notebook (nbformat's own validator: fast when it is)."""
    try:
        nbformat.validator.get_validator(version=4, version_minor=5).validate(nb)
        return True
    except Exception:  # noqa: BLE001 - any validation error means "not valid"
        return False


# --- 1. bytes to text ---------------------------------------------------------------------------------
def _decode(data: bytes, repairs: list[str]) -> str:
    for bom, codec, name in ((codecs.BOM_UTF32_LE, "utf-32", "UTF-32"), (codecs.BOM_UTF32_BE, "utf-32", "UTF-32"),
                             (codecs.BOM_UTF16_LE, "utf-16", "UTF-16"), (codecs.BOM_UTF16_BE, "utf-16", "UTF-16")):
        if data.startswith(bom) and not data.startswith(codecs.BOM_UTF8):
            text = data.decode(codec, errors="replace")
            repairs.append(f"the file was saved as {name} text (not UTF-8); it was read as {name}")
            return text
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
        repairs.append("the file began with a byte-order mark (as some Windows editors write); it was ignored")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        text = data.decode("utf-8", errors="replace")
        bad = text.count("\ufffd") - data.count("\ufffd".encode())
        line = data[: err.start].count(b"\n") + 1
        repairs.append(f"the file has {bad} byte{'s' if bad != 1 else ''} that {'are' if bad != 1 else 'is'} not "
                       f"UTF-8 text (the first on line {line}); each was replaced by the character \ufffd")
        return text


# --- 2. text to JSON ----------------------------------------------------------------------------------
def _parse(text: str, repairs: list[str]) -> tuple[object, str]:
    start = len(text) - len(text.lstrip())
    if start == len(text):
        return None, "the file is empty" if not text else "the file holds only blank space"
    try:
        value, end = json.JSONDecoder(strict=False).raw_decode(text, start)
    except RecursionError:
        return None, "the file's JSON is nested too deeply to be a notebook"
    except json.JSONDecodeError as err:
        if err.pos >= len(text.rstrip()) or err.msg.startswith("Unterminated string"):  # the text ends inside it
            body = text.rstrip()
            where = f"line {body.count(chr(10)) + 1}, column {len(body) - body.rfind(chr(10))}"
            return None, f"the file is not valid JSON ({where}): it ends too early, so it may be truncated"
        where = f"line {err.lineno}, column {err.colno}"
        what = err.msg.replace("\\uXXXX escape", "unicode escape").replace("\\escape", "backslash escape")
        return None, f"the file is not valid JSON ({where}: {what[0].lower() + what[1:]})"
    if text[end:].strip():
        line = text.count("\n", 0, end) + 1
        repairs.append(f"the file has more text after the notebook's JSON (from line {line}); it was ignored")
    return value, ""


# --- 3. JSON to a notebook ----------------------------------------------------------------------------
def _as_v4(value: object, repairs: list[str]) -> tuple[dict, bool, str]:
    """``(notebook dict, converted from an older nbformat, problem)``."""
    if not isinstance(value, dict):
        return {}, False, f"this is JSON but not a notebook ({a_json_value(value)})"
    major = value.get("nbformat")
    if major is None:
        if isinstance(value.get("cells"), list):
            major = 4
        elif isinstance(value.get("worksheets"), list):
            major = 3
        else:
            return {}, False, "this is JSON but not a notebook (an object without 'cells')"
        repairs.append(f"the notebook did not say its nbformat version; it was read as nbformat {major}")
    elif isinstance(major, str) and major.strip().isdigit():
        major = int(major)
    if not isinstance(major, int) or isinstance(major, bool):
        return {}, False, f"this notebook's nbformat version ({quote(major)}) is not a version number"
    if major in (1, 2, 3):
        try:
            legacy = nbformat.versions[major].to_notebook_json(copy.deepcopy(value))
            value = json.loads(json.dumps(nbformat.converter.convert(legacy, 4)))
            for cell in value["cells"]:  # nbformat's converter draws random ids: the grader's are made from places
                cell.pop("id", None)
        except Exception:  # noqa: BLE001 - nbformat's converter raises many kinds; said in words
            return {}, False, f"this notebook is nbformat {major} and could not be converted"
        repairs.append(f"the notebook was nbformat {major} (an older format); it was converted to nbformat 4")
        return value, True, ""
    if major != 4:
        return {}, False, f"this notebook says it is nbformat {major}, which the grader cannot read (it reads 1 to 4)"
    cells = value.get("cells")
    if not isinstance(cells, list):
        what = "no 'cells' list" if cells is None else f"'cells' that is {a_json_value(cells)}, not a list"
        return {}, False, f"this is not a valid notebook (it has {what})"
    return value, False, ""


def _top_level(value: dict, repairs: list[str]) -> dict:
    """The notebook's own fields: nbformat 4.5 and metadata that nbformat's schema accepts."""
    extra = sorted(k for k in value if k not in ("nbformat", "nbformat_minor", "metadata", "cells"))
    if extra:
        repairs.append(f"the notebook had fields a notebook does not have ({_names(extra)}); they were left out")
    meta = value.get("metadata", {})
    if not isinstance(meta, dict):
        repairs.append(f"the notebook's metadata was {a_json_value(meta)}, not an object; it was left out")
        meta = {}
    meta = {k: v for k, v in meta.items() if isinstance(k, str)}
    _prune_deep(meta, "the notebook's", repairs)
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": meta}


def _valid_metadata(top: dict, repairs: list[str]) -> None:
    """Leave out (and say) each entry of the notebook's metadata that nbformat's schema rejects."""
    meta = top["metadata"]
    for _ in range(len(meta) + 1):
        errors = list(nbformat.validator.iter_validate({**top, "cells": []}, version=4, version_minor=5))
        bad = next((e for e in errors if len(e.path) >= 2 and e.path[0] == "metadata"), None)
        if bad is None:
            break
        del meta[bad.path[1]]
        repairs.append(f"the notebook's metadata {quote(bad.path[1])} was not valid; it was left out")


# --- 4. cells -----------------------------------------------------------------------------------------
def _cell(raw: object, pos: int, repairs: list[str], cell_types: dict[str, str]) -> dict | None:
    """A valid v4 cell from ``raw`` (the ``pos``-th of the file), or None (said) when it is not a cell."""
    if not isinstance(raw, dict):
        repairs.append(f"cell {pos} is not a valid notebook cell ({a_json_value(raw)}); it was left out")
        return None
    meta = raw.get("metadata", {})
    if not isinstance(meta, dict):
        repairs.append(f"cell {pos}'s metadata was {a_json_value(meta)}, not an object; it was left out")
        meta = {}
    meta = {k: v for k, v in meta.items() if isinstance(k, str)}
    source = raw.get("source")
    if isinstance(source, list) and all(isinstance(s, str) for s in source):
        source = "".join(source)
    elif source is None:
        repairs.append(f"cell {pos} had no source; it was read as empty")
        source = ""
    elif not isinstance(source, str):
        repairs.append(f"cell {pos} is not a valid notebook cell (its source is {a_json_value(source)}, not text); "
                       "it was left out")
        return None
    cell_type = _cell_type(raw, pos, meta, cell_types, repairs)
    if cell_type is None:
        return None
    if raw.get("cell_type") == "heading" and cell_type == "markdown":
        level = raw.get("level") if isinstance(raw.get("level"), int) else 1
        source = "#" * min(max(level, 1), 6) + " " + " ".join(source.splitlines())
    extra = sorted(str(k) for k in raw if k not in CELL_FIELDS | _V3_FIELDS)
    if extra:
        repairs.append(f"cell {pos} had fields a notebook cell does not have ({_names(extra)}); they were left out")
    _prune_deep(meta, f"cell {pos}'s", repairs)
    cell = {"id": raw.get("id"), "cell_type": cell_type, "metadata": meta, "source": source}
    if cell_type == "code":
        cell.update(outputs=[], execution_count=None)
    elif "attachments" in raw:
        cell["attachments"] = raw["attachments"]
    return cell


def _cell_type(raw: dict, pos: int, meta: dict, cell_types: dict[str, str], repairs: list[str]) -> str | None:
    given = raw.get("cell_type")
    if given in CELL_TYPES:
        return given
    what = f"cell_type {quote(given)}" if isinstance(given, str) else (
        "no cell_type" if given is None else f"a cell_type that is {a_json_value(given)}")
    nbgrader = meta.get("nbgrader")
    grade_id = nbgrader.get("grade_id") if isinstance(nbgrader, dict) else None
    if isinstance(grade_id, str) and grade_id in cell_types:  # a cell of the assignment: its own type
        repairs.append(f"cell {pos} had {what}; it was made a {cell_types[grade_id]} cell, as the assignment's "
                       f"cell {quote(grade_id)} is")
        return cell_types[grade_id]
    if given == "heading":
        repairs.append(f"cell {pos} was a heading cell (an older format); it became a markdown cell")
        return "markdown"
    if isinstance(given, str) and given.strip().lower() in CELL_TYPES:
        repairs.append(f"cell {pos} had cell_type {quote(given)}; it was read as '{given.strip().lower()}'")
        return given.strip().lower()
    repairs.append(f"cell {pos} is not a valid notebook cell ({what}); it was left out")
    return None


def _schema_valid(cell: dict, pos: int, repairs: list[str]) -> bool:
    """Leave out (and say) what nbformat's schema rejects in ``cell``; False if it is no cell at all."""
    ref = f"{cell['cell_type']}_cell"
    for _ in range(len(cell["metadata"]) + 3):
        errors = list(nbformat.validator.iter_validate(cell, ref=ref, version=4, version_minor=5))
        if not errors:
            return True
        path = list(errors[0].path)
        if len(path) >= 2 and path[0] == "metadata" and path[1] in cell["metadata"]:
            del cell["metadata"][path[1]]
            repairs.append(f"cell {pos}'s metadata {quote(path[1])} was not valid; it was left out")
        elif path[:1] == ["attachments"] and "attachments" in cell:
            del cell["attachments"]
            repairs.append(f"cell {pos}'s attachments were not valid; they were left out")
        else:
            break
    repairs.append(f"cell {pos} is not a valid notebook cell; it was left out")
    return False


def _fix_ids(cells: list[dict], positions: list[int], repairs: list[str], report: bool) -> None:
    """Every cell gets a valid id that no other cell has: its own, else ``cell-<place in the file>``."""
    seen: set[str] = set()
    bad = []
    for i, cell in enumerate(cells):
        cid = cell.get("id")
        if isinstance(cid, str) and ID_PATTERN.match(cid) and cid not in seen:
            seen.add(cid)
        else:
            bad.append(i)
    taken = seen | {c["id"] for c in cells if isinstance(c.get("id"), str)}
    for i in bad:
        cells[i]["id"] = unique_id(f"cell-{positions[i]}", taken)
        taken.add(cells[i]["id"])
    if bad and report:
        repairs.append(f"{len(bad)} cell{'s' if len(bad) != 1 else ''} had a missing, invalid or repeated id; "
                       f"{'they were' if len(bad) != 1 else 'it was'} given a new one")


def unique_id(wanted: str, taken: set[str]) -> str:
    """``wanted`` (made a valid cell id), or ``wanted-2``, ``wanted-3``... if another cell has it."""
    base = re.sub(r"[^a-zA-Z0-9_-]", "-", wanted)[:56] or "cell"
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def _prune_deep(meta: dict, whose: str, repairs: list[str]) -> None:
    for key in list(meta):
        if _deeper_than(meta[key], MAX_DEPTH):
            del meta[key]
            repairs.append(f"{whose} metadata {quote(key)} was nested too deeply; it was left out")


def _deeper_than(value: object, limit: int) -> bool:
    """Whether ``value`` nests lists and objects more than ``limit`` levels (iterative: no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            stack.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict) else item))
    return False


def _names(keys: list[str]) -> str:
    shown = ", ".join(quote(k) for k in keys[:3])
    return shown + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")


# --- the grader's note ---------------------------------------------------------------------------------
def drop_notes(nb: NotebookNode, positions: list[int]) -> None:
    """Remove note cells a submitted notebook brings along (an old autograded notebook, or a forged one)."""
    keep = [i for i, c in enumerate(nb.cells) if NOTE_KEY not in c.metadata]
    nb.cells = [nb.cells[i] for i in keep]
    positions[:] = [positions[i] for i in keep]


def add_note(nb: NotebookNode, repairs: list[str]) -> None:
    """A markdown cell first in ``nb`` that lists ``repairs`` (their quoted parts are already safe text)."""
    text = "\n".join([NOTE_TITLE, ""] + [f"- {r}" for r in repairs])
    taken = {c.get("id") for c in nb.cells}
    cell = nbformat.v4.new_markdown_cell(text, metadata={NOTE_KEY: list(repairs)}, id=unique_id(NOTE_ID, taken))
    nb.cells.insert(0, cell)


def repairs_in(cells: list[dict]) -> list[str]:
    """The repairs listed in the note of an autograded notebook's ``cells`` (plain JSON), or []."""
    for cell in cells[:1]:
        found = cell.get("metadata", {}).get(NOTE_KEY) if isinstance(cell, dict) else None
        if isinstance(found, list):
            return [str(r) for r in found]
    return []


def repair_message(repairs: list[str]) -> str:
    """The grades CSV's message for a notebook graded after ``repairs`` ("" when there were none)."""
    if not repairs:
        return ""
    more = len(repairs) - CSV_REPAIRS
    return "graded after repairs: " + "; ".join(repairs[:CSV_REPAIRS]) + (
        f"; and {more} more (listed in the feedback)" if more > 0 else "")


def read_submission(data: bytes, reference: Reference | None) -> Reading:
    """What nbgrader grades of a submitted file: :func:`read_notebook`, then the nbgrader cells checked
    against ``reference`` (the assignment's, from the gradebook; None: not checked), with a note listing
    every repair first in the notebook (and no note the file brought along)."""
    from grader.restore_cells import restore

    reading = read_notebook(data, reference.cell_types() if reference else None)
    if reading.notebook is None:
        return reading
    drop_notes(reading.notebook, reading.positions)
    if reference is not None:
        reading.repairs += restore(reading.notebook, reading.positions, reference)
    if reading.repairs:
        add_note(reading.notebook, reading.repairs)
        reading.positions.insert(0, 0)
    return reading


# --- nbgrader autograde's exporter ---------------------------------------------------------------------
class SubmissionExporter(NotebookExporter):
    """``c.Autograde.exporter_class``: reads each submitted notebook with :func:`read_notebook`, checks its
    nbgrader cells against the gradebook (:func:`grader.restore_cells.restore`) and lists the repairs in
    a note cell. A file that cannot be graded is logged in words and raises :class:`UnreadableNotebook`
    (nbgrader then reports the submission as failed). nbgrader's second pass over the notebook it wrote
    itself (``autograded/``) reads it as nbconvert does."""

    def from_file(self, file_stream, resources=None, **kw):  # noqa: ANN001, ANN201 - nbconvert's signature
        if not getattr(self.parent, "_sanitizing", True):
            return super().from_file(file_stream, resources=resources, **kw)
        from grader.restore_cells import Reference

        raw = file_stream.buffer if hasattr(file_stream, "buffer") else file_stream
        data = raw.read()
        data = data.encode("utf-8") if isinstance(data, str) else data
        who = (resources or {}).get("nbgrader", {})
        reading = read_submission(data, Reference.for_notebook(who) if who else None)
        name = Path((resources or {}).get("metadata", {}).get("path", "")) / f"{who.get('notebook', '?')}.ipynb"
        if reading.problem:
            self.log.error("%s cannot be graded: %s", name, reading.problem)
            raise UnreadableNotebook(reading.problem)
        if reading.repairs:
            self.log.warning("%s was repaired before grading: %s", name, "; ".join(reading.repairs))
        return self.from_notebook_node(reading.notebook, resources=resources, **kw)


__all__ = ["Reading", "SubmissionExporter", "UnreadableNotebook", "read_notebook", "read_submission", "repair_message",
           "repairs_in"]
