"""No reference solution leaks into the built website (pages, ``_sources/``, downloads, search index).

For every graded function and class of ``solutions/`` (the names COURSE.md lists, re-exported by
``solutions/__init__.py``), the implementation body (every function and method, without its docstring
and comments) is cut into its significant lines. A file of the built site leaks the solution when it
holds a run of ``RUN`` consecutive body lines (or the whole body, if shorter), whitespace aside. A
single line shared with a reading (``scores = Q @ K.T``) is fine; a block of the implementation is not.
"""

from __future__ import annotations

import ast
import html
import inspect
import json
import re
import textwrap
from pathlib import Path

import pytest

import solutions

pytestmark = [pytest.mark.site, pytest.mark.slow]

RUN = 3
TEXT_SUFFIXES = {".html", ".ipynb", ".md", ".txt", ".py", ".js"}


def normalize(line: str) -> str:
    return re.sub(r"\s+", " ", line).strip()


def body_blocks(obj: object) -> dict[str, list[str]]:
    """``{qualified name: significant body lines}`` for a function, or for each method of a class."""
    source = textwrap.dedent(inspect.getsource(obj))
    tree = ast.parse(source)
    lines = source.splitlines()
    blocks: dict[str, list[str]] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        body = node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
            body = body[1:]  # the docstring may be quoted in the book; the code may not
        if not body:
            continue
        code = lines[body[0].lineno - 1 : body[-1].end_lineno]
        significant = [normalize(x) for x in code if normalize(x) and not normalize(x).startswith("#")]
        if significant:
            blocks[f"{getattr(obj, '__name__', obj)}.{node.name}"] = significant
    return blocks


def graded_bodies() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name in solutions.__all__:
        out.update(body_blocks(getattr(solutions, name)))
    return out


def text_lines(path: Path) -> list[str]:
    """The lines a reader (or a download) gets from one built file, normalized."""
    raw = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix == ".ipynb":
        try:
            cells = json.loads(raw)["cells"]
            raw = "\n".join("".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in cells)
        except (ValueError, KeyError, TypeError):
            pass
    elif path.suffix == ".html":
        raw = html.unescape(re.sub(r"<[^>]+>", "", raw))
    return [n for n in (normalize(x) for x in raw.splitlines()) if n]


def leaks(lines: list[str], body: list[str]) -> bool:
    """True when ``lines`` holds ``min(RUN, len(body))`` consecutive lines of ``body`` in a row."""
    k = min(RUN, len(body))
    windows = {tuple(body[i : i + k]) for i in range(len(body) - k + 1)}
    return any(tuple(lines[i : i + k]) in windows for i in range(len(lines) - k + 1))


def find_leaks(site: Path, bodies: dict[str, list[str]]) -> list[str]:
    found = []
    for path in sorted(site.rglob("*")):
        if path.suffix not in TEXT_SUFFIXES or "_static" in path.parts or not path.is_file():
            continue
        lines = text_lines(path)
        found += [f"{name} in {path.relative_to(site)}" for name, body in bodies.items() if leaks(lines, body)]
    return found


def test_every_graded_item_has_a_body_to_look_for() -> None:
    bodies = graded_bodies()
    for name in solutions.__all__:
        assert any(key.startswith(f"{name}.") for key in bodies), f"no implementation found for {name}"


def test_no_solution_code_in_the_built_site(built_site: Path) -> None:
    assert (built_site / "_sources").is_dir()
    assert find_leaks(built_site, graded_bodies()) == []


def test_a_leaked_solution_would_be_caught(tmp_path: Path) -> None:
    """Proof the check can fail: a page and a notebook quoting a solution, as HTML and as JSON."""
    source = inspect.getsource(solutions.scaled_dot_product_attention)
    (tmp_path / "page.html").write_text(f"<pre><span>{html.escape(source)}</span></pre>", encoding="utf-8")
    nb = {"cells": [{"cell_type": "code", "source": inspect.getsource(solutions.repeat_kv).splitlines(True)}]}
    (tmp_path / "nb.ipynb").write_text(json.dumps(nb), encoding="utf-8")
    found = find_leaks(tmp_path, graded_bodies())
    assert "scaled_dot_product_attention.scaled_dot_product_attention in page.html" in found, found
    assert "repeat_kv.repeat_kv in nb.ipynb" in found, found
