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
from collections.abc import Mapping
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

    @property
    def function(self) -> str:
        """The graded function or class the mistake belongs to (``"MultiHeadAttention"``)."""
        return self.target.split(".")[0]

    def source(self) -> str:
        """The student-form source of the graded object with this mistake made."""
        return apply(ref.student_source(ref.reference(self.function)), self)

    def build(self, namespace: Mapping[str, Any]) -> Any:
        """Compile :meth:`source` with ``namespace`` (imports and the other course names) as globals."""
        scope = dict(namespace)
        scope["__name__"] = f"mistake_{self.id.replace('-', '_')}"
        exec(compile(self.source(), f"<mistake {self.id}>", "exec"), scope)
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
        new_segment = segment
        for old, new in m.replace:
            count = new_segment.count(old)
            if count != 1:
                raise MistakeError(
                    f"mistake {m.id}: {old!r} occurs {count} times in {m.target} (it must occur exactly once)"
                )
            new_segment = new_segment.replace(old, new)
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
