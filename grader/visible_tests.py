"""Visible tests: written in the exercise text, their expected values computed by the reference.

In ``exercise.md`` the grade cell of a graded function holds the BODY of its visible test, e.g.::

    ```{code-cell} ipython3
    ---
    grade: softmax
    points: 2
    ---
    check("softmax([0, ln 3])", softmax(np.array([0.0, math.log(3.0)])))
    check("softmax([1e4, 1e4 - ln 3])", softmax(np.array([1e4, 1e4 - math.log(3.0)])))
    ```

Inputs are Python literals or ``draw(*shape, seed=...)`` (numbers that are the same on every
computer); a torch module gets its numbers from ``set_weights(module, seed)``. The generator
(:meth:`Builder.finished_test`) runs the body with the reference in place of the student's function
and writes what each ``check(what, got)`` call received into the notebook as a literal,
``check(what, got, expected=[0.75, 0.25])``, rounded to 6 significant digits (the notebook compares
within ``rtol=1e-4, atol=1e-5``). So a test checks its function alone: the expected values are
constants, never computed by the student's other functions, and ``python -m grader.generate --check``
fails when a constant drifts from the reference.

Rules the generator enforces (it fails with the reason):

- a test names no other course function than its own and those its reference calls; it runs with
  every other course name replaced by one that raises;
- every ``assert`` has a message, and every ``check`` starts with a string that says what was called;
- each ``check`` without ``expected`` runs exactly once (not in a loop);
- with PyTorch, the body gives the same values with float32 and float64 default tensors (the expected
  values are computed in float64; a student computes in float32), so no rounding can flip a result;
- the reference passes the finished test.
"""

from __future__ import annotations

import ast
import contextlib
import io
import textwrap
from collections.abc import Callable
from typing import Any

from grader.engine import reference as ref
from grader.engine import registry

HARNESS = registry.EXERCISES_DIR / "_selfcheck.py"
#: Significant digits of the embedded expected values (relative error 5e-7, well inside ``rtol=1e-4``).
DIGITS = 6
#: How close the float32 and float64 runs of a test must agree, so a correct float32 answer passes.
DTYPE_RTOL, DTYPE_ATOL = 2e-5, 2e-6
WIDTH = 110
PENDING = object()


class VisibleTestError(ValueError):
    """A visible test in an exercise text breaks a rule (the message says which and how to fix it)."""


def harness_source(points: dict[str, float], calls: dict[str, list[str]]) -> str:
    """The harness cell: ``grader/exercises/_selfcheck.py`` after its marker, with POINTS and CALLS."""
    body = HARNESS.read_text().split("# --- harness ---\n", 1)[1]
    body = body.replace("POINTS: dict[str, float] = {}", f"POINTS: dict[str, float] = {_one_line(points)}")
    body = body.replace("CALLS: dict[str, list[str]] = {}", f"CALLS: dict[str, list[str]] = {_one_line(calls)}")
    return body.rstrip()


def _one_line(value: dict) -> str:
    return "{" + ", ".join(f"{k!r}: {v!r}" for k, v in value.items()) + "}"


def callees(exercise: registry.Exercise, name: str) -> set[str]:
    """Course names the reference of ``name`` calls, directly or through other course names."""
    found: set[str] = set()
    todo = [name]
    while todo:
        for callee in ref.course_names_used(exercise.reference(todo.pop()), exercise.course_names):
            if callee not in found and callee != name:
                found.add(callee)
                todo.append(callee)
    return found


def graded_callees(exercise: registry.Exercise) -> dict[str, list[str]]:
    """``{graded function: graded functions its reference calls}``, callees in check order."""
    order = exercise.check_order
    return {
        name: [c for c in order if c in callees(exercise, name)]
        for name in exercise.points
        if callees(exercise, name) & set(order)
    }


# --------------------------------------------------------------------------------------------------
# Literals
# --------------------------------------------------------------------------------------------------


def number(x: float) -> str:
    """A float as a short literal that reads back as a float (6 significant digits)."""
    if x != x:
        return 'float("nan")'
    if x in (float("inf"), float("-inf")):
        return 'float("inf")' if x > 0 else '-float("inf")'
    text = f"{x + 0.0:.{DIGITS}g}"
    return text if any(c in text for c in ".e") else text + ".0"


def literal(value: Any) -> str:
    """One-line Python literal of a value made of lists, tuples, numbers, booleans, strings and None."""
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return repr(value)
    if isinstance(value, float):
        return number(value)
    if isinstance(value, list):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    if isinstance(value, tuple):
        inner = ", ".join(literal(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    raise VisibleTestError(f"cannot embed a {type(value).__name__} as an expected value: check an array, "
                           "a tensor, a number or a tuple of those")


def render(value: Any, indent: int, room: int) -> str:
    """``value`` as a literal that fits in ``room`` characters on its first line, wrapped below it at
    ``indent`` (rows of an array one per line, long rows of numbers packed)."""
    one = literal(value)
    if len(one) <= room or not isinstance(value, (list, tuple)) or not value:
        return one
    opening, closing = ("[", "]") if isinstance(value, list) else ("(", ")")
    pad = " " * (indent + 4)
    if all(not isinstance(v, (list, tuple)) for v in value):
        lines, line = [], ""
        for item in (literal(v) + "," for v in value):
            if line and len(pad) + len(line) + 1 + len(item) > WIDTH:
                lines.append(line)
                line = item
            else:
                line = f"{line} {item}" if line else item
        lines.append(line)
    else:
        lines = [render(v, indent + 4, WIDTH - indent - 5) + "," for v in value]
    return opening + "\n" + "".join(pad + line + "\n" for line in lines) + " " * indent + closing


# --------------------------------------------------------------------------------------------------
# Building one test
# --------------------------------------------------------------------------------------------------


def _is_check(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "check"


def _has_expected(call: ast.Call) -> bool:
    return len(call.args) >= 3 or any(k.arg == "expected" for k in call.keywords)


def _offset(lines: list[str], lineno: int, col: int) -> int:
    """Character offset in the text of ``lines`` of an AST position (1-based line, UTF-8 byte column)."""
    before = sum(len(line) + 1 for line in lines[: lineno - 1])
    return before + len(lines[lineno - 1].encode()[:col].decode())


class Builder:
    """Runs a notebook's cells, as a student's kernel would with the reference answers, and turns the
    test bodies of the exercise text into finished visible tests."""

    def __init__(self, exercise: registry.Exercise) -> None:
        self.exercise = exercise
        self.namespace: dict[str, Any] = {"__name__": "__main__"}

    def run(self, source: str) -> None:
        """Execute a cell (setup, answers, the harness) in the notebook's namespace, quietly."""
        with contextlib.redirect_stdout(io.StringIO()):
            exec(ref.compile_student(source, "<cell>"), self.namespace)

    # ---- rules --------------------------------------------------------------------------------------

    def _fail(self, name: str, why: str) -> VisibleTestError:
        return VisibleTestError(f"{self.exercise.id}: the visible test of {name} (its grade cell in "
                                f"exercise.md): {why}")

    def _validate(self, name: str, tree: ast.Module) -> None:
        allowed = {name} | callees(self.exercise, name)
        others = set(self.exercise.course_names) - allowed
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and node.id in others:
                raise self._fail(name, f"it uses {node.id}; a visible test calls only its own function (write "
                                       "the inputs as literals or draw(...), and let the generator compute the "
                                       "expected values)")
            if isinstance(node, ast.Assert) and node.msg is None:
                raise self._fail(name, f"the assert on line {node.lineno} has no message; say what was "
                                       "expected and what came back")
            if _is_check(node) and not (
                len(node.args) >= 2 and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
            ):
                raise self._fail(name, f"check(...) on line {node.lineno} must be check(\"what was called\", value)")

    def _scope(self, name: str) -> dict[str, Any]:
        """The namespace with every course name the test may not use replaced by one that raises."""
        scope = dict(self.namespace)
        allowed = {name} | callees(self.exercise, name)
        for other in set(self.exercise.course_names) - allowed:
            if other in scope:
                scope[other] = _forbidden(other)
        return scope

    # ---- recording ------------------------------------------------------------------------------------

    def _record(self, name: str, source: str, sites: list[ast.Call]) -> list[Any]:
        """Run the test with the reference; return what each pending ``check`` site received."""
        tree = ast.parse(source)
        positions = {(c.lineno, c.col_offset): i for i, c in enumerate(sites)}
        for node in ast.walk(tree):
            if _is_check(node) and (node.lineno, node.col_offset) in positions:
                node.keywords.append(ast.keyword("_site", ast.Constant(positions[(node.lineno, node.col_offset)])))
        code = compile(ast.fix_missing_locations(tree), f"<visible test of {name}>", "exec", flags=ref.FUTURE_FLAGS,
                       dont_inherit=True)
        values: dict[int, Any] = {}
        plain: Callable[[Any], Any] = self.namespace["plain"]
        real_check = self.namespace["check"]

        def check(what, got, expected=PENDING, rtol=1e-4, atol=1e-5, _site=None):
            if _site is None:
                return real_check(what, got, expected, rtol, atol)
            if _site in values:
                raise self._fail(name, f"check({what!r}, ...) runs more than once; write one check per value")
            values[_site] = plain(got)

        scope = self._scope(name)
        scope.update(check=check, visible_test=lambda test: test)
        exec(code, scope)
        self._call(name, scope)
        missing = [sites[i] for i in range(len(sites)) if i not in values]
        if missing:
            raise self._fail(name, f"the check on line {missing[0].lineno - 2} never ran")
        return [values[i] for i in range(len(sites))]

    def _record_both_dtypes(self, name: str, source: str, sites: list[ast.Call]) -> list[Any]:
        """Values in float64 (what is embedded), after checking that float32 gives the same ones."""
        if not self.exercise.uses_torch:
            return self._record(name, source, sites)
        import torch

        as_student = self._record(name, source, sites)
        previous = torch.get_default_dtype()
        torch.set_default_dtype(torch.float64)
        try:
            precise = self._record(name, source, sites)
        finally:
            torch.set_default_dtype(previous)
        mismatch = self.namespace["_mismatch"]
        for site, low, high in zip(sites, as_student, precise, strict=True):
            problem = mismatch(low, high, DTYPE_RTOL, DTYPE_ATOL, "")
            if problem:
                raise self._fail(name, f"the check on line {site.lineno - 2} gives different values in float32 and "
                                       f"float64 ({problem[:200]}); choose inputs whose answer does not hinge on "
                                       "rounding (smaller scores, no near-ties)")
        return precise

    # ---- the finished test ----------------------------------------------------------------------------

    def finished_test(self, name: str, body: str) -> str:
        """The code of ``test_<name>``: ``body`` wrapped in a decorated function, every pending
        ``check`` given the ``expected=`` literal the reference computed. Defines it in the namespace."""
        if not body.strip():
            raise self._fail(name, "it is empty; write the test's body in the grade cell (see CONTRIBUTING.md)")
        source = f"@visible_test\ndef test_{name}():\n" + textwrap.indent(textwrap.dedent(body).strip("\n"), "    ")
        try:
            tree = ast.parse(source)
        except SyntaxError as err:
            raise self._fail(name, f"it does not compile: {err}") from None
        self._validate(name, tree)
        sites = sorted((n for n in ast.walk(tree) if _is_check(n) and not _has_expected(n)),
                       key=lambda n: (n.lineno, n.col_offset))
        values = self._record_both_dtypes(name, source, sites)
        lines = source.split("\n")
        text = source
        last_first = sorted(zip(sites, values, strict=True), key=lambda cv: (cv[0].end_lineno, cv[0].end_col_offset))
        for call, value in reversed(last_first):
            end = _offset(lines, call.end_lineno, call.end_col_offset) - 1  # the closing parenthesis
            assert text[end] == ")", (name, text[end - 20 : end + 1])
            before = text[:end].rstrip()
            line = before[before.rfind("\n") + 1 :]
            indent = len(line) - len(line.lstrip())
            comma = "" if before.endswith(",") else ","
            one, align = literal(value), call.col_offset + len("check(")
            if len(line) + len(comma) + len(" expected=") + len(one) + 1 <= WIDTH:  # on the same line
                tail = f"{comma} expected={one}"
            elif align + len("expected=") + len(one) + 1 <= WIDTH:  # alone on the next line
                tail = f"{comma}\n{' ' * align}expected={one}"
            else:  # an array: one row per line
                tail = f"{comma} expected=" + render(value, indent, 0)
            text = before + tail + text[end:]
        self._verify(name, text)
        return text

    def _call(self, name: str, scope: dict[str, Any]) -> None:
        """Run ``test_<name>`` of ``scope`` with the reference; a failure is the author's to fix."""
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                scope[f"test_{name}"]()
        except VisibleTestError:
            raise
        except _Forbidden as err:
            raise self._fail(name, f"it calls {err}; a visible test calls only its own function (write the "
                                   "inputs as literals or draw(...))") from None
        except Exception as err:  # noqa: BLE001 - report why the reference fails its own test
            raise self._fail(name, f"the reference fails it: {type(err).__name__}: {err}") from None

    def _verify(self, name: str, source: str) -> None:
        """The reference passes the finished test, calling no other course function; then define it."""
        scope = self._scope(name)
        exec(ref.compile_student(source, f"<visible test of {name}>"), scope)
        self._call(name, scope)
        self.run(source)


class _Forbidden(Exception):
    """A visible test called a course function other than its own (the message names it)."""


def _forbidden(name: str) -> Callable[..., Any]:
    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise _Forbidden(name)

    forbidden.__name__ = name
    return forbidden
