"""Calls that earn no credit: a library's attention inside a graded function, autograd inside a gradient.

Writing attention is the exercise, so a graded function that calls
``torch.nn.functional.scaled_dot_product_attention`` (or one of its ``torch.ops.aten`` forms, such as
``_scaled_dot_product_flash_attention_for_cpu``), ``torch.nn.functional.multi_head_attention_forward``
or ``torch.nn.MultiheadAttention`` gets no points. Two detectors, and what each can miss:

- **Static, in the grader** (:func:`library_attention_in`): the submitted code cells are parsed (never
  run) and every top-level definition that names one of these (an attribute ``x.scaled_dot_product_...``,
  an import of it from ``torch``, or a string naming it, as in ``getattr(F, "scaled_dot_...")``) is
  marked; a graded function is refused when it, or any top-level definition it refers to, is marked.
  A name built at run time (``"scaled_" + "dot..."``) is not seen here.
- **Dynamic, reported by the kernel** (:mod:`grader.engine.probe`): while the hidden cases run, a
  PyTorch dispatch mode records every aten operator whose name is one of these, and a module whose
  tree contains a ``torch.nn.MultiheadAttention`` is refused. This catches names built at run time,
  but it runs inside the student's kernel, so a submission written to defeat it (patching torch's
  dispatch machinery before the checks run) can hide from it. That is cheating by design rather than
  a mistake, and out of what an autograder can prove; the instructor guide says so.

The course's own function names (``scaled_dot_product_attention`` is chapter 2's exercise) are fine as
plain names: only attributes of other objects, imports from torch and strings are flagged.

**Autograd inside a gradient.** A function whose spec says ``no_autograd`` (chapter 6's
``sdpa_backward``: deriving the gradients is the exercise) earns no credit when it uses autograd, by
the same two detectors: statically (:func:`autograd_in`: ``.backward``, ``torch.autograd``,
``torch.func`` / ``functorch``, ``.requires_grad_``, an assignment to ``.requires_grad``, or a string
naming one of these), and in the kernel (the probe's torch-function mode sees ``torch.autograd.grad``,
``Tensor.backward`` and ``Tensor.requires_grad_``, through which ``torch.func`` and
``torch.autograd.functional`` also pass, and the setter of ``requires_grad``).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable

#: Substrings of library attention names (attributes, imported names, strings).
LIBRARY_ATTENTION = ("scaled_dot_product", "multi_head_attention", "MultiheadAttention", "flash_attention",
                     "efficient_attention")


#: What a gradient function must not use (attribute, imported or string names; exact matches).
AUTOGRAD_NAMES = frozenset({"autograd", "backward", "grad", "requires_grad_", "func", "functorch", "vjp", "jvp",
                            "jacrev", "jacfwd", "jacobian", "hessian", "enable_grad"})
#: Modules whose import means autograd.
AUTOGRAD_MODULES = ("torch.autograd", "torch.func", "functorch")
#: The label of an autograd refusal (the kernel reports ``autograd: <name>``).
AUTOGRAD = "autograd (torch.autograd, .backward() or torch.func)"


def _label(name: str) -> str:
    if name.startswith("autograd"):
        return AUTOGRAD
    if "MultiheadAttention" in name:
        return "torch.nn.MultiheadAttention"
    if "multi_head_attention" in name:
        return "torch.nn.functional.multi_head_attention_forward"
    return "torch.nn.functional.scaled_dot_product_attention"


def _is_library(name: str) -> bool:
    return any(s in name for s in LIBRARY_ATTENTION)


def _docstring_nodes(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def _autograd_hits(node: ast.AST, docstrings: set[int]) -> list[str]:
    """Autograd named anywhere inside ``node``."""
    found = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Attribute) and (
            sub.attr in AUTOGRAD_NAMES or sub.attr == "requires_grad" and isinstance(sub.ctx, ast.Store)
        ):
            found.append(sub.attr)
        elif isinstance(sub, ast.ImportFrom) and (sub.module or "").startswith(("torch", "functorch")):
            module = sub.module or ""
            if module.startswith(AUTOGRAD_MODULES) or any(a.name in AUTOGRAD_NAMES for a in sub.names):
                found.append(module)
        elif isinstance(sub, ast.Import):  # a plain `import torch.autograd` binds `torch`: its uses are attributes
            found += [a.name for a in sub.names
                      if a.name.startswith(AUTOGRAD_MODULES) and (a.asname or "." not in a.name)]
        elif isinstance(sub, ast.Constant) and isinstance(sub.value, str) and id(sub) not in docstrings:
            if sub.value in AUTOGRAD_NAMES or sub.value == "requires_grad":
                found.append(sub.value)
    return found


def _hits(node: ast.AST, docstrings: set[int]) -> list[str]:
    """Library attention named anywhere inside ``node``."""
    found = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Attribute) and _is_library(sub.attr):
            found.append(sub.attr)
        elif isinstance(sub, ast.ImportFrom) and (sub.module or "").split(".")[0] == "torch":
            found += [a.name for a in sub.names if _is_library(a.name)]
        elif isinstance(sub, ast.Import):
            found += [a.name for a in sub.names if _is_library(a.name)]
        elif isinstance(sub, ast.Constant) and isinstance(sub.value, str) and id(sub) not in docstrings:
            if _is_library(sub.value):
                found.append(sub.value)
    return found


def _free_names(stmt: ast.stmt) -> set[str]:
    """The names ``stmt`` refers to; for a function, not its parameters and locals (a local ``q`` is not
    the notebook's global ``q``, which a scratch cell may have made with autograd)."""
    names = {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name)}
    if not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return names
    args = stmt.args
    params = {a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg) if a}
    stored = {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    declared = {name for n in ast.walk(stmt) if isinstance(n, (ast.Global, ast.Nonlocal)) for name in n.names}
    return names - ((params | stored) - declared)


def _defined_names(stmt: ast.stmt) -> list[str]:
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [stmt.name]
    if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        return [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        return [(a.asname or a.name).split(".")[0] for a in stmt.names]
    return []


def library_attention_in(sources: Iterable[str], functions: Iterable[str]) -> dict[str, str]:
    """``{graded function: library it uses}`` for the functions whose definitions reach library attention.

    ``sources`` are the submission's code cells (cells that do not parse are skipped: they cannot
    define anything).
    """
    return _reaching(sources, functions, lambda stmt, docs: [_label(h) for h in _hits(stmt, docs)])


def autograd_in(sources: Iterable[str], functions: Iterable[str]) -> dict[str, str]:
    """``{function: AUTOGRAD}`` for the ``functions`` whose definitions reach autograd."""
    return _reaching(sources, functions, lambda stmt, docs: [AUTOGRAD] * bool(_autograd_hits(stmt, docs)))


def static_refusals(sources: Iterable[str], functions: Iterable[str], no_autograd: Iterable[str]) -> dict[str, str]:
    """``{graded function: what it must not use}``: library attention in any of ``functions``, autograd
    in those of ``no_autograd``."""
    sources = list(sources)
    return {**autograd_in(sources, no_autograd), **library_attention_in(sources, functions)}


def _reaching(sources: Iterable[str], functions: Iterable[str], labels) -> dict[str, str]:
    """``{function: label}`` for the functions that reach a top-level definition ``labels`` marks."""
    marked: dict[str, str] = {}  # top-level name -> library label
    refers: dict[str, set[str]] = {}  # top-level name -> names it refers to
    for source in sources:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        docstrings = _docstring_nodes(tree)
        for stmt in tree.body:
            names = _defined_names(stmt)
            if not names:
                continue
            hits = labels(stmt, docstrings)
            used = _free_names(stmt)
            for name in names:
                refers.setdefault(name, set()).update(used - {name})
                if hits:
                    marked[name] = hits[0]
    result = {}
    for function in functions:
        seen, todo = set(), [function]
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            if name in marked:
                result[function] = marked[name]
                break
            todo += sorted(refers.get(name, ()))
    return result


def refusal_message(function: str, library: str) -> str:
    if library == AUTOGRAD:
        return (f"No credit: {function} is the exercise, so it must not use {library}. Write the gradients "
                "yourself from the chain rule.")
    return f"No credit: {function} is the exercise, so it must not call {library}. Write it yourself."


def refusal_kind(library: str) -> str:
    """The report's mistake id for a refusal: ``autograd`` or ``library-attention``."""
    return "autograd" if library == AUTOGRAD else "library-attention"
