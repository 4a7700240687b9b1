"""The reference solutions as students write them.

Every reference in ``solutions/`` is written once, in the form a student writes it in the notebook,
with its input validation in ``@validated(...)`` decorators (``solutions._checks.validated``). This
module turns a reference into that student form, which three places use:

- ``grader.generate`` pastes it into the instructor notebook (the answer cells);
- the known mistakes (:mod:`grader.engine.mistakes`) are small patches of it;
- the hidden checks send it to the kernel as the reference version of functions already checked
  (:mod:`grader.engine.checker`), so a mistake in one function costs that function's points only.
"""

from __future__ import annotations
import __future__

import ast
import importlib
import inspect
import textwrap
import types
from collections.abc import Iterable


def reference(name: str) -> object:
    """The public reference object ``solutions.<name>``."""
    solutions = importlib.import_module("solutions")
    if name not in solutions.__all__:
        raise KeyError(f"{name!r} is not exported by solutions/__init__.py")
    return getattr(solutions, name)


def _is_validation(decorator: ast.expr) -> bool:
    func = decorator.func if isinstance(decorator, ast.Call) else decorator
    return isinstance(func, ast.Name) and func.id == "validated"


def student_source(obj: object) -> str:
    """The source of a reference function or class, dedented, without its ``@validated`` lines."""
    lines = textwrap.dedent(inspect.getsource(obj)).splitlines()  # type: ignore[arg-type]
    tree = ast.parse("\n".join(lines))
    drop: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for dec in node.decorator_list:
                if _is_validation(dec):
                    drop |= set(range(dec.lineno - 1, dec.end_lineno or dec.lineno))
    return "\n".join(line for i, line in enumerate(lines) if i not in drop)


def _functions(obj: object) -> list[types.FunctionType]:
    if inspect.isclass(obj):
        return [inspect.unwrap(v) for v in vars(obj).values() if inspect.isfunction(v)]
    return [inspect.unwrap(obj)]  # type: ignore[arg-type, list-item]


def _code_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return names


def globals_used(obj: object) -> dict[str, object]:
    """Module-level names the student-form code of ``obj`` refers to, with their values."""
    used: dict[str, object] = {}
    for fn in _functions(obj):
        for name in sorted(_code_names(fn.__code__)):
            if name in fn.__globals__:
                used[name] = fn.__globals__[name]
    return used


def _is_reference_code(value: object) -> bool:
    return (inspect.isfunction(value) or inspect.isclass(value)) and str(
        getattr(value, "__module__", "")
    ).startswith("solutions")


def course_names_used(obj: object, available: Iterable[str]) -> list[str]:
    """The notebook's course names (``available``) that ``obj`` calls; raise if it needs any other one.

    A reference must only call what the notebook itself defines (graded functions and helpers pasted
    from earlier chapters), NumPy/PyTorch and the standard library: that is what a student can write.
    """
    available = set(available)
    found = []
    for name, value in globals_used(obj).items():
        if name in available:
            found.append(name)
        elif _is_reference_code(value):
            raise ValueError(
                f"{getattr(obj, '__name__', obj)} calls {name} from solutions/, which the notebook does not "
                f"define: write the reference in the form a student writes it (validation goes in "
                f"@validated), or list {name} under `helpers:` in the exercise text"
            )
    return sorted(found)


#: Compile flags of the notebooks' first line, ``from __future__ import annotations`` (annotations such
#: as ``KVCache | None`` stay unevaluated), for code compiled outside a notebook.
FUTURE_FLAGS = __future__.annotations.compiler_flag


def prelude(objs: Iterable[object]) -> str:
    """Import lines for the modules the student-form code of ``objs`` uses (``import numpy as np``)."""
    lines = set()
    for obj in objs:
        for name, value in globals_used(obj).items():
            if isinstance(value, types.ModuleType):
                module = value.__name__
                lines.add(f"import {module}" if module == name else f"import {module} as {name}")
    return "\n".join(["from __future__ import annotations", *sorted(lines)])


def compile_student(source: str, filename: str) -> types.CodeType:
    """Compile student-form code as a notebook cell after ``from __future__ import annotations``."""
    return compile(source, filename, "exec", flags=FUTURE_FLAGS, dont_inherit=True)
