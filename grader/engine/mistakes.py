"""Known mistakes: the small changes a student makes to a reference, named in words.

A mistake is a patch of the reference's student form (:func:`grader.engine.reference.student_source`):
a few ``(old, new)`` replacements inside its target, each of which must match exactly once, or, where
a mistake is not a small change, a whole rewrite of the target. It is applied and compiled when it is
first needed, so when a reference changes, every mistake follows it, and a test
(``tests/grading/test_mistakes.py``) fails if a patch no longer applies exactly once or no longer
changes the answer.

The grader runs each mistake of a function on the hidden inputs; when one reproduces the student's
answers, the feedback names it (``Mistake.message``). The proofs paste each mistake's source into the
student release and check that autograding takes that function's points away.
"""

from __future__ import annotations

import ast
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from grader.engine import reference as ref


class MistakeError(Exception):
    """A mistake's patch does not apply to the reference (the reference changed)."""


@dataclass(frozen=True)
class Mistake:
    """The known mistake ``id`` of ``target`` (a function, class, or ``"Class.method"``)."""

    id: str
    target: str
    message: str
    replace: tuple[tuple[str, str], ...] = ()
    rewrite: str | None = None  # the whole target, as a student would write it (when not a small change)
    assignment: str = field(default="", compare=False)
    reference_of: Callable[[str], object] = field(default=ref.reference, compare=False, repr=False)

    @property
    def function(self) -> str:
        """The graded function or class the mistake belongs to (``"MultiHeadAttention"``)."""
        return self.target.split(".")[0]

    def source(self) -> str:
        """The student-form source of the graded object with this mistake made."""
        return apply(ref.student_source(self.reference_of(self.function)), self)

    def build(self, namespace: Mapping[str, Any]) -> Any:
        """Compile :meth:`source` with ``namespace`` (imports and the other course names) as globals."""
        scope = dict(namespace)
        scope["__name__"] = f"mistake_{self.id.replace('-', '_')}"
        exec(ref.compile_student(self.source(), f"<mistake {self.id}>"), scope)
        return scope[self.function]


def _target_span(tree: ast.Module, target: str) -> tuple[int, int, int]:
    """``(first line, end line, indent)`` (0-based, end exclusive) of ``target`` in a parsed source."""
    scope: list[ast.stmt] = tree.body
    node: ast.AST | None = None
    for part in target.split("."):
        node = next(
            (n for n in scope if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == part), None
        )
        if node is None:
            raise MistakeError(f"{target}: no definition of {part}")
        scope = node.body  # type: ignore[attr-defined]
    assert isinstance(node, (ast.FunctionDef, ast.ClassDef))
    first = min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1
    return first, node.end_lineno or node.lineno, node.col_offset


def _mask_docstrings(segment: str) -> tuple[str, dict[str, str]]:
    """``segment`` with each docstring's lines replaced by a token (patches match code only)."""
    lines = segment.splitlines()
    try:
        tree = ast.parse(textwrap.dedent(segment))
    except SyntaxError:
        return segment, {}
    masked: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(
                first.value.value, str
            ):
                for i in range(first.lineno - 1, first.end_lineno or first.lineno):
                    token = f"\x00docstring line {i}\x00"
                    masked[token] = lines[i]
                    lines[i] = token
    return "\n".join(lines), masked


def apply(source: str, m: Mistake) -> str:
    """``source`` (a whole function or class) with the mistake's patch applied inside its target."""
    lines = source.splitlines()
    if "." in m.target:
        first, end, indent = _target_span(ast.parse(source), m.target)
    else:
        first, end, indent = 0, len(lines), 0
    segment = "\n".join(lines[first:end])
    if m.rewrite is not None:
        body = textwrap.indent(textwrap.dedent(m.rewrite).strip("\n"), " " * indent)
        new_segment = body
    else:
        if not m.replace:
            raise MistakeError(f"mistake {m.id} changes nothing (give `replace` or `rewrite`)")
        new_segment, docstrings = _mask_docstrings(segment)
        for old, new in m.replace:
            count = new_segment.count(old)
            if count != 1:
                raise MistakeError(
                    f"mistake {m.id}: {old!r} occurs {count} times in the code of {m.target} "
                    "(it must occur exactly once)"
                )
            new_segment = new_segment.replace(old, new)
        for token, text in docstrings.items():
            new_segment = new_segment.replace(token, text)
    patched = "\n".join(lines[:first] + new_segment.splitlines() + lines[end:])
    try:
        ast.parse(patched)
    except SyntaxError as err:
        raise MistakeError(f"mistake {m.id} does not compile: {err}") from None
    return patched


def inject(cell_source: str, m: Mistake) -> str:
    """Replace the definition of ``m.function`` in a notebook cell's source by the mistake's source."""
    tree = ast.parse(cell_source)
    lines = cell_source.splitlines()
    first, end, _ = _target_span(tree, m.function)
    return "\n".join(lines[:first] + m.source().splitlines() + lines[end:])
