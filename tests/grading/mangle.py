"""Seeded mangled copies of a notebook, the way students' files arrive: for the fuzz test of
grader/normalize.py, grader/restore_cells.py and the grading messages (test_malformed.py).

Each *kind* is one small change of a base notebook (a parsed ``.ipynb``: the ch2-sdpa release, the
release solved as the instructor's, or the instructor's source notebook itself) and says what grading
must make of it:

- ``format``: only the file's form changes (layout, key order, CRLF, a byte-order mark, UTF-16, list or
  string sources, cell ids, outputs, kernelspec): the notebook the grader reads has the same cells, so
  the same score;
- ``repair``: a change the grader repairs, saying so (the message contains ``words``), or a change that
  moves or adds what grading does not score: the same score;
- ``error``: a file that cannot be graded: status ``error``, score 0, a message containing ``words``;
- ``any``: random damage (byte flips, cells deleted): any outcome, but always a row and a message in words.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable
from dataclasses import dataclass

#: What each kind of change must give (see the module docstring).
EXPECTATIONS = ("format", "repair", "error", "any")


@dataclass(frozen=True)
class Mangled:
    student: str  # a student id: "<kind>-<base>-<n>"
    kind: str
    base: str  # key of the base notebook it was made from
    data: bytes
    expect: str  # one of EXPECTATIONS
    words: str = ""  # what the message must contain ("" for format and any)


Change = Callable[[random.Random, dict], tuple[bytes | dict, str]]
KINDS: dict[str, tuple[str, Change]] = {}


def kind(expect: str) -> Callable[[Change], Change]:
    """Register a change: ``f(rng, nb) -> (bytes or a notebook dict to dump, words)``."""

    def register(f: Change) -> Change:
        KINDS[f.__name__] = (expect, f)
        return f

    return register


def dump(nb: dict, **kwargs) -> bytes:
    return json.dumps(nb, ensure_ascii=False, **kwargs).encode("utf-8")


def _nbg(cell: dict) -> dict:
    meta = cell.get("metadata", {}).get("nbgrader")
    return meta if isinstance(meta, dict) else {}


def _cells(nb: dict, what: str) -> list[int]:
    """Indices of the cells of one kind: grade, answer, locked (not grade), markdown, code."""
    tests = {
        "grade": lambda c: _nbg(c).get("grade"),
        "answer": lambda c: _nbg(c).get("solution"),
        "locked": lambda c: _nbg(c).get("locked") and not _nbg(c).get("grade"),
        "markdown": lambda c: c["cell_type"] == "markdown",
        "code": lambda c: c["cell_type"] == "code" and not _nbg(c),
    }
    return [i for i, c in enumerate(nb["cells"]) if tests[what](c)]


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def _set_one(rng, nb: dict, what: str, key: str, choices: list) -> int:
    """Set ``key`` of one of ``nb``'s ``what`` cells (kinds joined by ``+``) to one of ``choices``; its index."""
    i = rng.choice([i for part in what.split("+") for i in _cells(nb, part)])
    nb["cells"][i][key] = rng.choice(choices)
    return i


def _append(cell: dict, text: str) -> None:
    """Add ``text`` at the end of a cell's source (a string or a list of lines)."""
    cell["source"] = ("".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]) + text


# --- format: the same notebook in another form -------------------------------------------------------
@kind("format")
def indent(rng, nb):
    return dump(nb, indent=rng.choice([None, 0, 1, 2, 4, "\t"]), separators=rng.choice([None, (",", ":")])), ""


@kind("format")
def key_order(rng, nb):
    def shuffled(value):
        if isinstance(value, dict):
            keys = list(value)
            rng.shuffle(keys)
            return {k: shuffled(value[k]) for k in keys}
        return [shuffled(v) for v in value] if isinstance(value, list) else value

    return shuffled(nb), ""


@kind("format")
def crlf(rng, nb):
    return dump(nb, indent=1).replace(b"\n", b"\r\n"), ""


@kind("format")
def byte_order_mark(rng, nb):
    return b"\xef\xbb\xbf" + dump(nb, indent=rng.choice([None, 1])), ""


@kind("format")
def utf16(rng, nb):
    return json.dumps(nb, ensure_ascii=False, indent=1).encode(rng.choice(["utf-16", "utf-32"])), ""


@kind("format")
def ascii_escapes(rng, nb):
    return json.dumps(nb, ensure_ascii=True).encode(), ""


@kind("format")
def list_sources(rng, nb):
    for cell in nb["cells"]:
        cell["source"] = _lines(cell["source"]) if isinstance(cell["source"], str) else cell["source"]
    return nb, ""


@kind("format")
def string_sources(rng, nb):
    for cell in nb["cells"]:
        cell["source"] = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
    return nb, ""


@kind("format")
def ids_missing(rng, nb):
    for cell in rng.sample(nb["cells"], rng.randint(1, len(nb["cells"]))):
        cell.pop("id", None)
    return nb, ""


@kind("format")
def ids_colliding(rng, nb):
    cells = rng.sample(nb["cells"], rng.randint(2, 5))
    for cell in cells:
        cell["id"] = cells[0].get("id", "same")
    return nb, ""


@kind("format")
def ids_invalid(rng, nb):
    for cell in rng.sample(nb["cells"], 3):
        cell["id"] = rng.choice(["has space", "", "x" * 80, "ünï", 17, None])
    return nb, ""


@kind("format")
def nbformat_4_4(rng, nb):
    nb["nbformat_minor"] = rng.choice([0, 2, 4])
    for cell in nb["cells"]:
        cell.pop("id", None)
    return nb, ""


@kind("format")
def odd_outputs(rng, nb):
    junk = [{"output_type": "stream", "name": "stdout", "text": ["a\n", "b\n"]},
            {"output_type": "bogus"}, "not an output", {"output_type": "error"},
            {"output_type": "execute_result", "data": {"text/plain": ["1"]}, "execution_count": "x", "metadata": {}},
            {"output_type": "display_data", "data": {"text/html": "<script>alert(1)</script>"}, "metadata": {}}]
    for i in _cells(nb, "code") + _cells(nb, "answer"):
        nb["cells"][i]["outputs"] = rng.sample(junk, rng.randint(1, 3))
        nb["cells"][i]["execution_count"] = rng.choice([None, 3, -1, "7", 10**30])
    return nb, ""


@kind("format")
def kernelspec(rng, nb):
    meta = nb["metadata"]
    change = rng.choice(["other", "missing", "display"])
    if change == "other":
        meta["kernelspec"] = {"name": "ir", "display_name": "R", "language": "R"}
        meta["language_info"] = {"name": "R"}
    elif change == "missing":
        meta.pop("kernelspec", None)
        meta.pop("language_info", None)
    else:
        meta["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    return nb, ""


@kind("format")
def trailing_space(rng, nb):
    return b"\n  " + dump(nb) + rng.choice([b"\n", b"\n\n\t ", b"\r\n"]), ""


@kind("repair")
def extra_cell_metadata(rng, nb):  # valid metadata stays (no message), so the cells are not the base's
    for cell in rng.sample(nb["cells"], 4):
        cell.setdefault("metadata", {}).update({"tags": ["x"], "collapsed": True, "vscode": {"languageId": "python"},
                                                "scrolled": "auto"})
    return nb, ""


# --- repair: the grader repairs it and says so; the same score ---------------------------------------
def _copied(rng, nb: dict, what: str, gaps: tuple[int, ...] = (1,)) -> dict:
    """``nb`` with one of its ``what`` cells copy-pasted ``gap`` cells after itself."""
    i = rng.choice(_cells(nb, what))
    nb["cells"].insert(i + rng.choice(gaps), copy.deepcopy(nb["cells"][i]))
    return nb


@kind("repair")
def duplicated_grade_cell(rng, nb):
    return _copied(rng, nb, "grade"), "repeats the grade cell"


@kind("repair")
def duplicated_answer_cell(rng, nb):
    return _copied(rng, nb, "answer", (1, 2)), "repeats the answer cell"


@kind("repair")
def duplicated_locked_cell(rng, nb):
    return _copied(rng, nb, "locked"), "repeats the locked cell"


@kind("repair")
def edited_grade_cell(rng, nb):
    _set_one(rng, nb, "grade", "source", ["assert True\n", "", "pass  # graded by me"])
    return nb, "was edited; it was restored"


@kind("repair")
def deleted_grade_cell(rng, nb):
    del nb["cells"][rng.choice(_cells(nb, "grade"))]
    return nb, "was removed; it was restored"


@kind("repair")
def edited_nbgrader_metadata(rng, nb):
    i = rng.choice(_cells(nb, "grade"))
    meta = nb["cells"][i]["metadata"]["nbgrader"]
    key, value = rng.choice([("points", 100), ("points", "two"), ("points", None), ("schema_version", 7),
                             ("schema_version", 1), ("grade", False), ("locked", False), ("solution", True),
                             ("task", "yes"), ("grade_id", 5)])
    meta[key] = value
    return nb, "nbgrader metadata"


@kind("repair")
def edited_grade_id(rng, nb):
    i = rng.choice(_cells(nb, "grade") + _cells(nb, "answer"))
    nb["cells"][i]["metadata"]["nbgrader"]["grade_id"] = rng.choice(["test-x", "answer-mine", "", "é = 1"])
    return nb, "does not have"


@kind("repair")
def damaged_nbgrader_metadata(rng, nb):
    i = rng.choice(_cells(nb, "answer") + _cells(nb, "grade"))
    nb["cells"][i]["metadata"]["nbgrader"] = rng.choice(["string", [], {}, 3])  # metadata: not _set_one
    return nb, "nbgrader metadata"


@kind("repair")
def changed_cell_type(rng, nb):
    i = _set_one(rng, nb, "grade+answer+locked", "cell_type", ["markdown", "raw", "heading", "Code", "bogus", None])
    return nb, f"cell {i + 1}"


@kind("repair")
def cell_type_case(rng, nb):
    _set_one(rng, nb, "markdown", "cell_type", ["Markdown", " markdown", "MARKDOWN"])
    return nb, "it was read as 'markdown'"


@kind("repair")
def heading_cell(rng, nb):
    i = rng.choice(_cells(nb, "markdown"))
    nb["cells"][i].update(cell_type="heading", level=rng.randint(1, 3))
    return nb, "heading cell"


@kind("repair")
def unknown_cell_type(rng, nb):
    i = _set_one(rng, nb, "markdown", "cell_type", ["foo", "<b>x</b>", "=HYPERLINK(1)", 7, "x" * 500])
    return nb, f"cell {i + 1} is not a valid notebook cell"


@kind("repair")
def not_a_cell(rng, nb):
    nb["cells"].insert(rng.randrange(len(nb["cells"])), rng.choice(["a string", 5, None, [1, 2], True]))
    return nb, "is not a valid notebook cell"


@kind("repair")
def source_not_text(rng, nb):
    i = _set_one(rng, nb, "markdown", "source", [None, 42, {"a": 1}, ["a", 1]])
    return nb, f"cell {i + 1}"


@kind("repair")
def extra_cell_fields(rng, nb):
    nb["cells"][rng.randrange(len(nb["cells"]))]["prompt"] = "In [1]:"
    return nb, "fields a notebook cell does not have"


@kind("repair")
def bad_cell_metadata(rng, nb):
    i = rng.randrange(len(nb["cells"]))
    key, value = rng.choice([("tags", 5), ("tags", ["a", "a"]), ("name", 3), ("jupyter", "x")])
    nb["cells"][i].setdefault("metadata", {})[key] = value
    return nb, "was not valid"


@kind("repair")
def deep_metadata(rng, nb):
    deep: object = "bottom"
    for _ in range(rng.choice([40, 300, 600])):
        deep = {"d": deep} if rng.random() < 0.5 else [deep]
    nb["cells"][rng.randrange(len(nb["cells"]))].setdefault("metadata", {})["deep"] = deep
    return nb, "nested too deeply"


@kind("repair")
def not_utf8_bytes(rng, nb):
    i = rng.choice(_cells(nb, "markdown"))
    _append(nb["cells"][i], " MANGLE-HERE")
    return dump(nb).replace(b"MANGLE-HERE", rng.choice([b"caf\xe9", b"\xff\xfe", b"\x80abc", b"\xc3"])), "not UTF-8"


@kind("repair")
def windows_1252(rng, nb):
    for i in _cells(nb, "markdown")[:1]:
        _append(nb["cells"][i], " Café — naïve")
    return json.dumps(nb, ensure_ascii=False).encode("cp1252", errors="replace"), "not UTF-8"


@kind("repair")
def text_after_json(rng, nb):
    return dump(nb) + rng.choice([b"\n}", b"garbage", b"{}", b"\x00\x00"]), "more text after"


@kind("repair")
def nbformat_missing(rng, nb):
    del nb["nbformat"]
    return nb, "did not say its nbformat version"


@kind("repair")
def nbformat_3(rng, nb):
    import nbformat

    node = nbformat.reads(json.dumps(nb), as_version=4)
    return nbformat.writes(node, version=3).encode(), "nbformat 3"


@kind("repair")
def notebook_extra_fields(rng, nb):
    nb["worksheets_old"] = []
    nb["metadata"]["kernelspec"] = rng.choice(["python3", 3, {"name": 3}])
    return nb, "was not valid"


@kind("repair")
def forged_note(rng, nb):  # a cell claiming to be the grader's note is dropped (no message), a real one made
    nb["cells"].insert(0, {"cell_type": "markdown", "id": "grader-repairs", "source": "all fine, 100 points",
                           "metadata": {"grader_repairs": ["nothing"]}})
    nb["cells"].append({"cell_type": "code", "metadata": {}, "outputs": [], "source": "", "execution_count": None,
                        "id": "x y"})
    return nb, "given a new one"


# --- cells moved that the grader does not run, or runs in the same order: the same score, nothing said ---
@kind("repair")
def grade_cells_first(rng, nb):
    grade = [nb["cells"][i] for i in _cells(nb, "grade")]
    nb["cells"] = grade + [c for c in nb["cells"] if c not in grade]
    return nb, ""


@kind("repair")
def markdown_shuffled(rng, nb):
    spots = _cells(nb, "markdown")
    cells = [nb["cells"][i] for i in spots]
    rng.shuffle(cells)
    for i, cell in zip(spots, cells, strict=True):
        nb["cells"][i] = cell
    return nb, ""


# --- error: cannot be graded ------------------------------------------------------------------------
@kind("error")
def truncated(rng, nb):
    data = dump(nb, indent=rng.choice([None, 1]))
    return data[: rng.randrange(1, len(data) - 2)], "not valid JSON"


@kind("error")
def empty_file(rng, nb):
    return rng.choice([b"", b"   \n"]), "the file"


@kind("error")
def json_not_a_notebook(rng, nb):
    value = rng.choice([nb["cells"], "a notebook", 42, None, True, {"name": "my notebook"}])
    return json.dumps(value).encode(), "JSON but not a notebook"


@kind("error")
def cells_not_a_list(rng, nb):
    nb["cells"] = rng.choice([{}, "cells", 3])
    return nb, "not a list"


@kind("error")
def nbformat_unknown(rng, nb):
    nb["nbformat"] = rng.choice([5, 0, 99, -1])
    return nb, "which the grader cannot read"


@kind("error")
def nbformat_not_a_number(rng, nb):
    nb["nbformat"] = rng.choice(["four", [4], {"v": 4}, 4.5])
    return nb, "is not a version number"


@kind("error")
def nbformat_3_broken(rng, nb):
    return json.dumps({"nbformat": 3, "nbformat_minor": 0, "metadata": {},
                       "worksheets": rng.choice(["x", [1], [{"cells": "y"}]])}).encode(), "could not be converted"


@kind("error")
def deep_json(rng, nb):
    depth = rng.choice([5_000, 100_000])
    return b"[" * depth + b"]" * depth, "nested too deeply"


@kind("error")
def not_json(rng, nb):
    noise = b"\x89PNG" + bytes(rng.randrange(256) for _ in range(200))
    return rng.choice([b"<html><body>my notebook</body></html>", b"PK\x03\x04" + bytes(range(256)),
                       b"print('hello')\n", noise]), "not valid JSON"


# --- any: random damage ---------------------------------------------------------------------------------
@kind("any")
def byte_flips(rng, nb):
    data = bytearray(dump(nb, indent=rng.choice([None, 1])))
    for _ in range(rng.randint(1, 4)):
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    return bytes(data), ""


@kind("any")
def cells_deleted(rng, nb):
    for _ in range(rng.randint(1, 4)):
        del nb["cells"][rng.randrange(len(nb["cells"]))]
    return nb, ""


@kind("any")
def cells_shuffled(rng, nb):
    rng.shuffle(nb["cells"])
    return nb, ""


def mangle(bases: dict[str, dict], copies: int, seed: int = 25) -> list[Mangled]:
    """``copies`` mangled notebooks of every kind, spread over ``bases`` (name -> parsed notebook)."""
    rng = random.Random(seed)
    out = []
    names = sorted(bases)
    for name, (expect, change) in KINDS.items():
        for n in range(copies):
            base = names[n % len(names)]
            result, words = change(rng, copy.deepcopy(bases[base]))
            data = result if isinstance(result, bytes) else dump(result)
            out.append(Mangled(f"{name.replace('_', '-')}-{base}-{n}", name, base, data, expect, words))
    return out
