"""Mutants of the references: every small automatic change of a graded function's student form.

A *mutant* is the reference's student form (:func:`grader.engine.reference.student_source`, the text
the known mistakes patch) with one small change made by an operator: ``+`` for ``-``, ``<`` for ``<=``,
a constant moved by one or its sign flipped, an ``axis``/``dim`` argument replaced by ``-1``, a keyword
argument (``keepdims``, ``axis``, ``bias``, ``out``, ...) dropped, two arguments or two names swapped
(``Q`` for ``K``, ``d_k`` for ``d_v``, ``self.head_dim`` for ``self.d_model``), a statement dropped,
``-inf`` replaced by a large finite number, a ``tril``/``triu`` offset moved by one, a slice bound
dropped, a reduction swapped (``mean`` for ``sum``, ``all`` for ``any``), a call unwrapped
(``np.exp(x)`` to ``x``), a condition negated. :mod:`grader.engine.mutation` runs each mutant through
the hidden checks; every mutant must lose its points for every secret, be a known mistake, or be
recorded in its exercise's ``checks.py`` as equivalent (``EQUIVALENT_MUTANTS = {id: reason}``).

**Why not mutmut or cosmic-ray.** Their operator tables are the model for ours (mutmut's
``operator_mutation`` and ``number_mutation``: ``+ <-> -``, ``* <-> /``, ``< <-> <=``, ``n -> n + 1``;
cosmic-ray's number replacer, comparison and boolean replacers and its rule of skipping replacements
that are almost always equivalent), but both mutate the files of an installed package and judge a
mutant by running a test command in a fresh process. Here the code under test is a text (a function
as a student writes it in a notebook cell), the judge is the hidden checks run in-process over many
course secrets (tens of thousands of mutant x secret runs), and each mutant needs an id that reads as
what changed and stays the same from run to run, so that an equivalent mutant can be recorded by id.
So this is a small ``ast`` module, with operators that also speak attention (axes, masks, scales).

**Ids** are ``<target>:<operator>@L<line>:<what changed>``, e.g. ``softmax:axis@L14:axis=axis->-1``,
where ``target`` is the graded function (or ``Class.method``) and ``line`` counts from its ``def`` or
``class`` line (1) in the student form. They follow the code: an edit elsewhere in ``solutions/``
changes no id, and an equivalence record whose mutant no longer exists is reported as stale.

**Left out on purpose** (each would only add mutants equivalent on every input the contract allows):
docstrings, annotations (never evaluated), ``device=`` arguments (the checks run on the CPU), the
message of a raised exception (only its type is compared), the argument order of
``transpose``/``swapaxes`` and of commutative calls (``max``, ``min``, ``np.maximum``,
``np.result_type``, ``torch.broadcast_shapes``), a lower slice bound of 0 (``x[0:]`` is ``x[:]``), and
string constants.
"""

from __future__ import annotations

import ast
import copy
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from grader.engine import reference as ref

#: Arithmetic operator swaps (mutmut's table, plus ``@``).
ARITH = {
    ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Div,
    ast.Pow: ast.Mult, ast.MatMult: ast.Mult, ast.BitAnd: ast.BitOr, ast.BitOr: ast.BitAnd, ast.Mod: ast.FloorDiv,
}
#: Operators whose operands may not be swapped without changing the result.
NON_COMMUTATIVE = (ast.Sub, ast.Div, ast.FloorDiv, ast.Pow, ast.MatMult, ast.Mod)
#: Comparison swaps: the boundary (``<`` to ``<=``) and the negation (``<`` to ``>=``).
COMPARE = {
    ast.Lt: (ast.LtE, ast.GtE), ast.LtE: (ast.Lt, ast.Gt), ast.Gt: (ast.GtE, ast.LtE), ast.GtE: (ast.Gt, ast.Lt),
    ast.Eq: (ast.NotEq,), ast.NotEq: (ast.Eq,), ast.Is: (ast.IsNot,), ast.IsNot: (ast.Is,),
    ast.In: (ast.NotIn,), ast.NotIn: (ast.In,),
}
SYMBOL = {
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Pow: "**", ast.MatMult: "@",
    ast.BitAnd: "&", ast.BitOr: "|", ast.Mod: "%", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
    ast.Eq: "==", ast.NotEq: "!=", ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in",
    ast.And: "and", ast.Or: "or",
}
#: Functions and methods a student confuses with each other (the name after the last dot).
SWAPPED_FUNCTIONS = {
    "max": "min", "min": "max", "amax": "amin", "amin": "amax", "maximum": "minimum", "minimum": "maximum",
    "argmax": "argmin", "argmin": "argmax", "sum": "mean", "mean": "sum", "all": "any", "any": "all",
    "tril": "triu", "triu": "tril", "sin": "cos", "cos": "sin",
}
#: Keyword arguments that name an axis.
AXIS_KEYWORDS = ("axis", "dim", "axes", "dims")
#: Keyword arguments never mutated (see the module docstring).
IGNORED_KEYWORDS = ("device",)
#: Calls whose positional arguments are never swapped (the order does not matter).
ORDERLESS_CALLS = ("transpose", "swapaxes", "max", "min", "maximum", "minimum", "logical_and", "logical_or",
                   "result_type", "promote_types", "broadcast_shapes")
#: Names of modules: calls on them are library functions, not methods of a value.
MODULE_NAMES = ("np", "numpy", "torch", "math", "nn", "F")
#: A finite stand-in for an infinite constant.
LARGE = 1e9


@dataclass(frozen=True)
class Mutant:
    """One mutant of the graded object ``function``: its id, what changed, and its whole source."""

    id: str
    function: str
    operator: str
    line: int
    before: str  # the changed code as it was (one line, shortened)
    after: str  # ... and as the mutant has it
    source: str

    def build(self, namespace: Mapping[str, Any]) -> Any:
        """Compile the mutant with ``namespace`` (imports, the other course names) as its globals."""
        scope = dict(namespace)
        scope["__name__"] = "mutant"
        exec(ref.compile_student(self.source, f"<mutant {self.id}>"), scope)
        return scope[self.function]


@dataclass(frozen=True)
class _Site:
    """One change: ``node``'s text becomes ``text`` (``None`` for a statement: it becomes ``pass``)."""

    node: ast.AST
    text: str
    operator: str
    detail: str


def _short(text: str, width: int = 44) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= width else text[: width - 3] + "..."


def _unparse(node: ast.AST) -> str:
    return ast.unparse(node)


def _with(node: ast.AST, **changes: Any) -> ast.AST:
    new = copy.deepcopy(node)
    for key, value in changes.items():
        setattr(new, key, value)
    return new


def _number(node: ast.AST) -> float | int | None:
    """The value of a number literal, ``-1`` included; None for anything else (booleans too)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _number(node.operand)
        return None if inner is None else -inner
    return None


def _literal(value: float | int) -> str:
    return repr(value) if value >= 0 else f"({value!r})"


def _call_name(call: ast.Call) -> str:
    """``np.swapaxes`` -> ``swapaxes``; ``x.transpose`` -> ``transpose``; ``softmax`` -> ``softmax``."""
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return ""


def _is_infinite(node: ast.AST) -> bool:
    """``np.inf``, ``math.inf``, ``torch.inf``, ``float("inf")``, ``torch.finfo(t).max``."""
    if isinstance(node, ast.Attribute) and node.attr == "inf":
        return True
    if isinstance(node, ast.Attribute) and node.attr in ("max", "min") and isinstance(node.value, ast.Call):
        return _call_name(node.value) in ("finfo", "iinfo")
    return (
        isinstance(node, ast.Call) and _call_name(node) == "float" and len(node.args) == 1
        and isinstance(node.args[0], ast.Constant)
        and str(node.args[0].value).strip("+-").lower() in ("inf", "infinity")
    )


def _neighbours_swapped(items: list[ast.expr]) -> Iterator[tuple[ast.expr, ast.expr, list[ast.expr]]]:
    """Each pair of neighbours ``(a, b)`` of ``items`` and the list with the two swapped (not starred or
    identical ones)."""
    for i in range(len(items) - 1):
        a, b = items[i], items[i + 1]
        if isinstance(a, ast.Starred) or isinstance(b, ast.Starred) or _unparse(a) == _unparse(b):
            continue
        swapped = list(items)
        swapped[i], swapped[i + 1] = b, a
        yield a, b, swapped


def _plus(node: ast.AST, delta: int) -> ast.BinOp:
    """``node + 1`` or ``node - 1``."""
    return ast.BinOp(left=copy.deepcopy(node), op=ast.Add() if delta > 0 else ast.Sub(), right=ast.Constant(1))


def _infinity_sign(node: ast.AST) -> int:
    if isinstance(node, ast.Attribute) and node.attr == "min":
        return -1
    if isinstance(node, ast.Call):
        return -1 if str(node.args[0].value).strip().startswith("-") else 1
    return 1


class _Function:
    """The mutation sites of one function (a graded function, a method, or a function nested in one)."""

    def __init__(self, fn: ast.FunctionDef, attributes: dict[str, str]) -> None:
        self.fn = fn
        self.attributes = attributes  # self.<name> -> "module" | "value"
        args = fn.args
        every = [*args.posonlyargs, *args.args, *args.kwonlyargs]
        self.params = [a.arg for a in every if a.arg not in ("self", "cls")]
        self.siblings: dict[str, list[str]] = {}  # names bound by one tuple unpacking
        self.negated: set[int] = set()  # operands of a unary minus (mutated together with the minus)
        for node in self.nodes():
            if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
                self.negated.add(id(node.operand))
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Tuple):
                names = [e.id for e in node.targets[0].elts if isinstance(e, ast.Name)]
                for name in names:
                    self.siblings.setdefault(name, [])
                    self.siblings[name] += [n for n in names if n != name and n not in self.siblings[name]]

    def nodes(self) -> Iterator[ast.AST]:
        """Every node of the function's own code: no docstring, annotation, decorator or nested def."""
        skip: set[int] = set()
        fn = self.fn
        body = fn.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            skip.add(id(body[0]))
        for arg in [*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs, fn.args.vararg, fn.args.kwarg]:
            if arg is not None and arg.annotation is not None:
                skip.add(id(arg.annotation))
        if fn.returns is not None:
            skip.add(id(fn.returns))
        skip |= {id(d) for d in fn.decorator_list}

        def walk(node: ast.AST) -> Iterator[ast.AST]:
            if id(node) in skip:
                return
            if isinstance(node, ast.AnnAssign):
                skip.add(id(node.annotation))
            if isinstance(node, ast.Raise) and node.exc is not None:  # only the exception's type is compared
                skip.add(id(node.exc))
            if isinstance(node, ast.Call):
                skip.update(id(k.value) for k in node.keywords if k.arg in IGNORED_KEYWORDS)
            yield node
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
                    continue
                yield from walk(child)

        for stmt in fn.body:
            yield from walk(stmt)
        for default in [*fn.args.defaults, *fn.args.kw_defaults]:
            if default is not None:
                yield from walk(default)

    # ---- the operators ------------------------------------------------------------------------------

    def sites(self) -> Iterator[_Site]:
        for node in self.nodes():
            yield from self.node_sites(node)

    def node_sites(self, node: ast.AST) -> Iterator[_Site]:  # noqa: C901 - one table of operators
        if isinstance(node, ast.BinOp):
            op = type(node.op)
            if op in ARITH:
                new = _with(node, op=ARITH[op]())
                yield _Site(node, _unparse(new), "arith", f"{SYMBOL[op]}->{SYMBOL[ARITH[op]]}")
            if op in NON_COMMUTATIVE:
                new = _with(node, left=node.right, right=node.left)
                yield _Site(node, _unparse(new), "operands-swapped",
                            f"{_short(_unparse(node.left), 20)}<->{_short(_unparse(node.right), 20)}")
        elif isinstance(node, ast.AugAssign) and type(node.op) in ARITH:
            op = type(node.op)
            yield _Site(node, _unparse(_with(node, op=ARITH[op]())), "arith", f"{SYMBOL[op]}=->{SYMBOL[ARITH[op]]}=")
        elif isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in COMPARE:
            op = type(node.ops[0])
            for to in COMPARE[op]:
                yield _Site(node, _unparse(_with(node, ops=[to()])), "compare", f"{SYMBOL[op]}->{SYMBOL[to]}")
        elif isinstance(node, ast.BoolOp):
            to = ast.Or if isinstance(node.op, ast.And) else ast.And
            yield _Site(node, _unparse(_with(node, op=to())), "boolop", f"{SYMBOL[type(node.op)]}->{SYMBOL[to]}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
            yield _Site(node, repr(not node.value), "bool", f"{node.value}->{not node.value}")

        value = _number(node)
        if value is not None and not (isinstance(node, ast.Constant) and self._negated(node)):
            yield from self.number_sites(node, value)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.Invert, ast.Not)):
            if not _is_infinite(node.operand):
                sign = {ast.USub: "-", ast.Invert: "~", ast.Not: "not"}[type(node.op)]
                operand = _unparse(node.operand)
                yield _Site(node, f"({operand})", "unary-dropped", f"{sign}{_short(operand, 30)}")
        finite = None
        if _is_infinite(node) and not self._negated(node):
            finite = _infinity_sign(node) * LARGE
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and _is_infinite(node.operand):
            finite = -_infinity_sign(node.operand) * LARGE
        if finite is not None:
            yield _Site(node, _literal(finite), "inf", f"{_short(_unparse(node), 30)}->{finite:g}")

        if isinstance(node, ast.Call):
            yield from self.call_sites(node)
        if isinstance(node, (ast.Tuple, ast.List)) and isinstance(node.ctx, ast.Load):
            for a, b, elts in _neighbours_swapped(node.elts):
                yield _Site(node, _unparse(_with(node, elts=elts)), "elements-swapped",
                            f"{_short(_unparse(a), 20)}<->{_short(_unparse(b), 20)}")
        if isinstance(node, ast.Slice):
            yield from self.slice_sites(node)
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            for other in self._confusable(node.id):
                yield _Site(node, other, "name-swap", f"{node.id}->{other}")
        if (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load) and isinstance(node.value, ast.Name)
                and node.value.id == "self" and node.attr in self.attributes):
            kind = self.attributes[node.attr]
            for other, other_kind in self.attributes.items():
                if other != node.attr and other_kind == kind:
                    yield _Site(node, f"self.{other}", "name-swap", f"self.{node.attr}->self.{other}")
        if isinstance(node, (ast.If, ast.IfExp, ast.While)) and not isinstance(node.test, ast.Compare):
            test = node.test
            yield _Site(test, f"(not {_unparse(test)})", "condition-negated", _short(_unparse(test), 30))
        droppable = not isinstance(node, (ast.Return, ast.Pass, ast.Raise)) and not self._is_super_init(node)
        if isinstance(node, ast.stmt) and droppable:
            yield _Site(node, "", "statement-dropped", _short(_unparse(node).splitlines()[0], 40))

    def _negated(self, node: ast.AST) -> bool:
        """Whether ``node`` is the operand of a unary minus (handled together with the minus)."""
        return id(node) in self.negated

    @staticmethod
    def _is_super_init(node: ast.stmt) -> bool:
        return isinstance(node, ast.Expr) and "super()" in _unparse(node)

    def _confusable(self, name: str) -> list[str]:
        if name in self.params:
            return [p for p in self.params if p != name]
        return list(self.siblings.get(name, []))

    def number_sites(self, node: ast.AST, value: float | int) -> Iterator[_Site]:
        if isinstance(value, int):
            options = [value + 1, value - 1]
        elif value == 0:
            options = [1.0]
        else:
            options = [-value, value * 2]
        for new in dict.fromkeys(options):
            yield _Site(node, _literal(new), "number", f"{value!r}->{new!r}")

    def call_sites(self, call: ast.Call) -> Iterator[_Site]:
        name = _call_name(call)
        func = call.func
        # a keyword argument dropped, an axis argument replaced by -1
        for kw in call.keywords:
            if kw.arg is None or kw.arg in IGNORED_KEYWORDS:
                continue
            rest = [k for k in call.keywords if k is not kw]
            said = f"{kw.arg}={_short(_unparse(kw.value), 24)}"
            yield _Site(call, _unparse(_with(call, keywords=rest)), "keyword-dropped", said)
            if kw.arg in AXIS_KEYWORDS and _number(kw.value) is None:
                new_kw = ast.keyword(arg=kw.arg, value=ast.Constant(-1))
                keywords = [new_kw if k is kw else k for k in call.keywords]
                yield _Site(call, _unparse(_with(call, keywords=keywords)), "axis", f"{said}->-1")
        # two positional arguments swapped
        if name not in ORDERLESS_CALLS:
            for a, b, args in _neighbours_swapped(call.args):
                yield _Site(call, _unparse(_with(call, args=args)), "args-swapped",
                            f"{name}({_short(_unparse(a), 16)}<->{_short(_unparse(b), 16)})")
        # a function a student confuses with this one
        if name in SWAPPED_FUNCTIONS and isinstance(func, (ast.Attribute, ast.Name)):
            to = SWAPPED_FUNCTIONS[name]
            new_func = _with(func, attr=to) if isinstance(func, ast.Attribute) else _with(func, id=to)
            yield _Site(call, _unparse(_with(call, func=new_func)), "function-swap", f"{name}->{to}")
        # the call left out: x.method(...) -> x; lib.f(x, ...) -> x
        receiver = func.value if isinstance(func, ast.Attribute) else None
        named = receiver.id if isinstance(receiver, ast.Name) else ""
        is_method = receiver is not None and named not in (*MODULE_NAMES, "self") and not named[:1].isupper()
        if is_method:
            yield _Site(call, f"({_unparse(receiver)})", "call-dropped", f".{name}(...)")
        elif call.args and not isinstance(call.args[0], ast.Starred) and name not in ("range", "float", "int", "len"):
            yield _Site(call, f"({_unparse(call.args[0])})", "call-dropped", f"{name}(...)")
        # a tril/triu offset or a range bound moved by one
        offset = self._offset_argument(call, name)
        if offset is not None and _number(offset) is None:
            for delta in (1, -1):
                new = _plus(offset, delta)
                yield _Site(offset, f"({_unparse(new)})", "offset", f"{_short(_unparse(offset), 24)}{delta:+d}")

    @staticmethod
    def _offset_argument(call: ast.Call, name: str) -> ast.AST | None:
        if name in ("tril", "triu"):
            for kw in call.keywords:
                if kw.arg in ("k", "diagonal"):
                    return kw.value
            index = 1 if isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Name) and \
                call.func.value.id in MODULE_NAMES else 0
            return call.args[index] if len(call.args) > index else None
        if name == "range":
            return call.args[1] if len(call.args) >= 2 else (call.args[0] if call.args else None)
        return None

    def slice_sites(self, node: ast.Slice) -> Iterator[_Site]:
        for part in ("lower", "upper", "step"):
            bound = getattr(node, part)
            if bound is None or (part == "lower" and _number(bound) == 0):  # x[0:] is x[:]
                continue
            said = _short(_unparse(bound), 20)
            yield _Site(node, _unparse(_with(node, **{part: None})), "slice-bound", f"drop {part} {said}")
            if _number(bound) is None and part != "step":
                for delta in (1, -1):
                    moved = _plus(bound, delta)
                    yield _Site(node, _unparse(_with(node, **{part: moved})), "slice-bound",
                                f"{part} {_short(_unparse(bound), 20)}{delta:+d}")


# ---- from sites to mutants -------------------------------------------------------------------------------


def _replace(source: str, node: ast.AST, text: str) -> str:
    """``source`` with the code of ``node`` replaced by ``text`` (``pass`` for a dropped statement)."""
    lines = source.splitlines(keepends=True)
    data = [line.encode() for line in lines]
    first, last = node.lineno - 1, node.end_lineno - 1  # type: ignore[attr-defined]
    start, end = node.col_offset, node.end_col_offset  # type: ignore[attr-defined]
    if isinstance(node, ast.stmt):
        new = "pass" if not text else text
    elif isinstance(node, ast.Slice):
        new = text
    else:
        new = f"({text})" if not (text.startswith("(") and text.endswith(")")) else text
    head, tail = data[first][:start], data[last][end:]
    replaced = head + new.encode() + tail
    out = [*lines[:first], replaced.decode(), *lines[last + 1:]]
    return "".join(out)


def _attributes(cls: ast.ClassDef) -> dict[str, str]:
    """``self.<name>`` assigned in ``__init__``: ``"module"`` for a layer, ``"value"`` for anything else."""
    found: dict[str, str] = {}
    for node in cls.body:
        if not (isinstance(node, ast.FunctionDef) and node.name == "__init__"):
            continue
        for stmt in ast.walk(node):
            if not isinstance(stmt, ast.Assign):
                continue
            for target in stmt.targets:
                pairs = zip(target.elts, stmt.value.elts, strict=False) if isinstance(target, ast.Tuple) and \
                    isinstance(stmt.value, ast.Tuple) else [(target, stmt.value)]
                for t, v in pairs:
                    if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self":
                        is_layer = isinstance(v, ast.Call) and _unparse(v.func).split(".")[0] in ("nn",) or (
                            isinstance(v, ast.Call) and _call_name(v)[:1].isupper())
                        found[t.attr] = "module" if is_layer else "value"
    return found


def _functions(tree: ast.Module, name: str) -> Iterator[tuple[str, _Function]]:
    """``(id prefix, function)`` for every function of the graded object ``name`` (methods, nested defs)."""
    top = next(n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == name)
    if isinstance(top, ast.ClassDef):
        attributes = _attributes(top)
        for method in top.body:
            if isinstance(method, ast.FunctionDef):
                for fn in (n for n in ast.walk(method) if isinstance(n, ast.FunctionDef)):
                    yield f"{name}.{method.name}", _Function(fn, attributes)
    else:
        for fn in (n for n in ast.walk(top) if isinstance(n, ast.FunctionDef)):
            yield name, _Function(fn, {})


def mutants_of_source(source: str, name: str) -> list[Mutant]:
    """Every mutant of the graded object ``name`` whose student form is ``source`` (ids unique, sources
    distinct from each other and from ``source``, each one compiles)."""
    tree = ast.parse(source)
    found: list[Mutant] = []
    seen_sources = {source}
    seen_ids: dict[str, int] = {}
    for prefix, fn in _functions(tree, name):
        for site in fn.sites():
            mutated = _replace(source, site.node, site.text)
            if mutated in seen_sources:
                continue
            try:
                ast.parse(mutated)
            except SyntaxError:
                continue
            seen_sources.add(mutated)
            line = site.node.lineno  # type: ignore[attr-defined]
            base = f"{prefix}:{site.operator}@L{line}:{_short(site.detail, 60)}"
            seen_ids[base] = seen_ids.get(base, 0) + 1
            mutant_id = base if seen_ids[base] == 1 else f"{base}#{seen_ids[base]}"
            before = _short(source.splitlines()[line - 1], 100)
            after = _short(mutated.splitlines()[line - 1], 100)
            found.append(Mutant(mutant_id, name, site.operator, line, before, after, mutated))
    return found


def mutants(obj: object, name: str) -> list[Mutant]:
    """Every mutant of a reference object (a function or a class) graded as ``name``."""
    return mutants_of_source(ref.student_source(obj), name)


__all__ = ["Mutant", "mutants", "mutants_of_source"]
