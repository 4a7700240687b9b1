"""The numbers a reading page types in its prose, and where each may come from.

Every number a reading quotes must be the computed one (README, "Numbers that hold on every build"). A
page does that in one of three ways, and this module finds the numbers that do none of them:

1. **glued**: ``{glue:text}`name:.1f``` inserts a value the page computed (``course.claims.glue``);
   glued text is not a typed number, so it is removed before numbers are looked for;
2. **set or asserted by the page's code**: the number is a literal of one of the page's code cells: a
   parameter the reader sees the page compute with (``n_past=4096``), or a fact a hidden cell asserts
   (``assert kv_cache_bytes(...) == 10 * GiB``). Literals that only style a figure (``figsize``,
   ``fontsize``, ...) do not count;
3. **a constant of the mathematics or of the setting**, listed with its reason in ``ALLOWED``
   (``tests/test_reading_numbers.py``).

What counts as prose: everything outside code cells and code blocks, with inline math (``$...$``),
display math, inline code, roles (``{cite}``, ``{glue:text}``, ...), link targets and HTML comments
removed; dropdown answers and admonitions are prose. Numbers inside words (``float32``, ``Llama-2-7B``,
``k1``, ``ch5``) are names, not quantities. ``chapter 4`` and ``section 3.2.2`` are references.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

#: Keyword arguments whose numbers only style a figure: such literals never license a prose number.
STYLE_KEYWORDS = frozenset({
    "figsize", "fontsize", "lw", "linewidth", "ms", "markersize", "alpha", "dpi", "pad", "xytext", "xy",
    "width_ratios", "height_ratios", "gridspec_kw", "shrink", "y", "x", "zorder", "mutation_scale", "rotation",
    "labelsize", "title_fontsize", "markerscale", "mew", "s", "size", "width", "height", "va", "ha", "length",
    "edgecolor", "facecolor", "color", "xlim", "ylim", "aspect", "precision", "subs", "ncol", "loc",
})
STYLE_CALLS = frozenset({"subplots", "figure", "set_xlim", "set_ylim", "text", "annotate", "Rectangle",
                         "Circle", "add_patch", "hlines", "axhline", "axvline", "set_size_inches", "rcParams"})

_CODE_FENCE = re.compile(r"^(`{3,}|~{3,})\s*(\{code-cell\}|python|bash|sh|md|text|console|py|yaml|toml|ipython3)?")
_ROLE = re.compile(r"\{[a-z:\-]+\}`[^`]*`")
_INLINE_CODE = re.compile(r"`[^`]*`")
_INLINE_MATH = re.compile(r"(?<!\\)\$[^$]+\$")
_LINK_TARGET = re.compile(r"\]\([^)]*\)")
_HTML = re.compile(r"<!--.*?-->|<[^>]+>")
_REFERENCE = re.compile(
    r"\b(?:[Cc]hapters?|[Ss]ections?|ch)\s*\d+(?:\.\d+)*(?:\s*(?:–|-|,|and|to|or)\s*\d+(?:\.\d+)*)*"
)
_LIST_MARKER = re.compile(r"^\s*\d+\.\s")
_NUMBER = re.compile(r"(?<![\w\-.'’/^])(\d+(?:,\d{3})*(?:\.\d+)?)(?![\w%]*[A-WYZa-wyz_])(?!\.\d)")


@dataclass(frozen=True)
class ProseNumber:
    page: str  # the file name, e.g. "ch4_multihead.md"
    line: int  # 1-based line number in the .md
    text: str  # as written, e.g. "4,000"
    value: float
    context: str  # the prose line it sits in (roles, math and code removed)

    def __str__(self) -> str:
        return f"{self.page}:{self.line}: {self.text!r} in: {self.context.strip()[:110]}"


def _value(text: str) -> float:
    return float(text.replace(",", ""))


def split_page(md: str) -> tuple[list[tuple[int, str]], list[str]]:
    """``(prose lines with their 1-based numbers, code cell / code block sources)`` of a MyST page."""
    lines = md.splitlines()
    start = 0
    if lines and lines[0].strip() == "---":  # front matter
        start = next(i for i in range(1, len(lines)) if lines[i].strip() == "---") + 1
    prose: list[tuple[int, str]] = []
    code: list[str] = []
    fence: str | None = None  # the closing fence of the code block we are in
    block: list[str] = []
    options = False  # inside a code cell's YAML options (--- ... ---): metadata such as alt text, not code
    in_math = False
    for i in range(start, len(lines)):
        line = lines[i]
        stripped = line.strip()
        if fence is not None:
            if stripped == "---" and (options or not block):
                options = not options
            elif stripped == fence:
                code.append("\n".join(block))
                fence, block = None, []
            elif not options and not stripped.startswith(":"):  # cell options (:tags:) are not code
                block.append(line)
            continue
        match = _CODE_FENCE.match(stripped)
        if match and match.group(2):
            fence, block = match.group(1), []
            continue
        if stripped.startswith("$$"):
            in_math = not (in_math or (stripped.endswith("$$") and len(stripped) > 2))
            continue
        if in_math:
            continue
        if stripped.startswith(("```", ":::", "~~~", ":class:", ":name:", ":tags:")):
            continue  # directive fences (dropdown, admonition) and their options: their body is prose
        prose.append((i + 1, line))
    return prose, code


def clean(line: str) -> str:
    """A prose line without roles, inline code, inline math, link targets, HTML and cross-references."""
    for pattern in (_LIST_MARKER, _ROLE, _INLINE_CODE, _INLINE_MATH, _LINK_TARGET, _HTML, _REFERENCE):
        line = pattern.sub(" ", line)
    return line


def prose_numbers(path: Path) -> list[ProseNumber]:
    """Every number typed in the prose of ``path`` (see the module docstring for what is removed first)."""
    prose, _ = split_page(path.read_text(encoding="utf-8"))
    found = []
    for number, line in prose:
        text = clean(line)
        for match in _NUMBER.finditer(text):
            found.append(ProseNumber(path.name, number, match.group(1), _value(match.group(1)), text))
    return found


def _style_nodes(tree: ast.AST) -> set[int]:
    """ids of the constant nodes that only style a figure."""
    styled: set[int] = set()

    def mark(node: ast.AST) -> None:
        styled.update(id(n) for n in ast.walk(node) if isinstance(n, ast.Constant))

    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg in STYLE_KEYWORDS:
            mark(node.value)
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in STYLE_CALLS:
                for arg in node.args:
                    mark(arg)
        elif isinstance(node, ast.Subscript) and getattr(node.value, "attr", "") == "rcParams":
            mark(node)
    return styled


def code_literals(path: Path) -> set[float]:
    """The numeric literals of a page's code cells, figure styling excluded (and ``n`` for ``-n``)."""
    _, code = split_page(path.read_text(encoding="utf-8"))
    values: set[float] = set()
    for source in code:
        python = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
        try:
            tree = ast.parse(python)
        except SyntaxError:  # a bash or markdown block shown as code: take its numbers as written
            values.update(_value(m) for m in _NUMBER.findall(source))
            continue
        styled = _style_nodes(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and id(node) not in styled:
                if isinstance(node.value, bool):
                    continue
                if isinstance(node.value, int | float):
                    values.add(float(node.value))
                elif isinstance(node.value, str):  # numbers inside strings a cell prints or labels with
                    values.update(_value(m) for m in _NUMBER.findall(node.value))
    return values


_GLUE_CALL = re.compile(r"""\bglue(?:_text)?\(\s*["']([\w\-]+)["']""")
_GLUE_ROLE = re.compile(r"\{glue(?::\w+)?\}`([\w\-]+)")


def glued_names(path: Path) -> tuple[set[str], set[str]]:
    """``(names a code cell glues, names the prose uses)`` of a page."""
    md = path.read_text(encoding="utf-8")
    _, code = split_page(md)
    made = {name for source in code for name in _GLUE_CALL.findall(source)}
    used = set(_GLUE_ROLE.findall(md))
    return made, used
