"""The verdict on one graded function: hidden cases, the student's answers, comparison, diagnosis.

:func:`check` draws the hidden cases, asks ``answer`` (the sandboxed kernel, see
:mod:`grader.execute`; or, in tests, an in-process stand-in) for the student's results as plain
data, computes the reference's results here, and compares. When they differ it runs every known
mistake of the function on the same inputs; the mistake that reproduces the student's answers is
named in the message. The message describes the inputs in words only.

Isolation: the kernel receives, as helpers, the reference of every course function that was already
checked (and of the earlier chapters' functions the notebook pastes), so a mistake in ``softmax``
costs the points of ``softmax`` only, not those of ``scaled_dot_product_attention`` too. Functions
are checked in :attr:`~grader.engine.registry.Exercise.check_order`, so a function's own reference
never reaches the kernel before it is checked.
"""

from __future__ import annotations

import copy
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from grader.engine import probe, refusals
from grader.engine import reference as ref
from grader.engine.cases import Case, Spec
from grader.engine.compare import difference, same
from grader.engine.mistakes import Mistake
from grader.engine.registry import Exercise
from grader.engine.secret import seed_for
from grader.engine.transport import KernelResult, Outcome, plain_value


class NoAnswer(Exception):
    """The kernel gave no usable answer; the message says why, for the student."""


#: ``answer(job, cases) -> KernelResult``: run the cases in the student's kernel (may raise NoAnswer).
Answer = Callable[[dict, list], KernelResult]


@dataclass
class Report:
    """What :func:`check` found; ``problem`` is the student-facing message (None = all checks pass)."""

    function: str
    problem: str | None
    mistake: str | None = None  # a known mistake's id, or a kind: timed-out, library-attention, ...
    failed: list[str] = field(default_factory=list)  # the failing cases, in words (for the instructor)

    @property
    def passed(self) -> bool:
        return self.problem is None


def hidden_cases(exercise: Exercise, name: str, secret: bytes) -> list[Case]:
    return exercise.specs[name].cases(np.random.default_rng(seed_for(secret, exercise.id, name)))


def reference_namespace(exercise: Exercise) -> dict[str, Any]:
    """Imports plus the reference of every course name of the notebook (what a mistake sees)."""
    objs = [exercise.reference(n) for n in exercise.course_names]
    scope: dict[str, Any] = {}
    exec(ref.prelude(objs), scope)
    scope.update({n: exercise.reference(n) for n in exercise.course_names})
    return scope


def kernel_job(exercise: Exercise, name: str, checked: Sequence[str]) -> dict:
    """The job for the kernel: the function's name and the references it may use as helpers."""
    helpers = [n for n in (*exercise.helpers, *checked) if n != name]
    objs = [exercise.reference(n) for n in helpers]
    return {
        "function": name,
        "prelude": ref.prelude(objs),
        "helpers": {n: ref.student_source(exercise.reference(n)) for n in helpers},
        "no_autograd": exercise.specs[name].no_autograd,
    }


def local_outcomes(impl: Any, namespace: dict[str, Any], cases: list[Case]) -> list[Outcome]:
    """Run ``impl`` on the cases here in the grader (reference and mistakes are trusted code)."""
    runs = [(c.run.runner, copy.deepcopy(c.run.args), copy.deepcopy(c.run.kwargs)) for c in cases]
    results, _ = probe.run_cases(impl, namespace, runs, watch_library=False)
    return [outcome(status, value, modified) for status, value, modified in results]


def outcome(status: str, value: Any, modified: Sequence = ()) -> Outcome:
    """One result of :func:`grader.engine.probe.run_cases` on trusted code, in the plain form compared."""
    if status == "ok":
        try:
            return Outcome(value=plain_value(value), modified=tuple(modified))
        except Exception as err:  # noqa: BLE001 - a value the transport cannot carry is an error, as in a kernel
            value = err
    name = getattr(value, "name", None) if isinstance(value, NameError) else None
    return Outcome(error_type=type(value).__name__, error_message=_first_line(value),
                   error_name=name if isinstance(name, str) else None)


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0][:300] if lines else ""


@dataclass
class Pending:
    """A check prepared for the kernel: its hidden cases and the job that runs them there."""

    name: str
    cases: list[Case]
    job: dict
    runs: list
    decided: Report | None = None  # set when no kernel run is needed (a static refusal)
    source_names: frozenset[str] | None = None  # identifiers of the submitted code (None: not known)


def prepare(
    exercise: Exercise,
    name: str,
    secret: bytes,
    checked: Sequence[str] = (),
    static_refusals: dict[str, str] | None = None,
    source_names: frozenset[str] | None = None,
) -> Pending:
    """The hidden cases of ``name`` and the kernel job that runs them (with earlier references as helpers).

    ``source_names`` (:func:`identifiers` of the submitted code cells), when given, bounds what a message
    may quote: a ``NameError``'s missing name is shown only if the submitted code itself spells it.
    """
    library = (static_refusals or {}).get(name)
    if library:
        refusal = Report(name, refusals.refusal_message(name, library), mistake=refusals.refusal_kind(library))
        return Pending(name, [], {}, [], decided=refusal)
    cases = hidden_cases(exercise, name, secret)
    runs = [(c.run.runner, c.run.args, c.run.kwargs) for c in cases]
    return Pending(name, cases, kernel_job(exercise, name, checked), runs, source_names=source_names)


def identifiers(sources: Sequence[str]) -> frozenset[str]:
    """Every name the code cells ``sources`` spell (parsed, never run; cells that do not parse add none)."""
    import ast

    found: set[str] = set()
    for source in sources:
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Name):
                found.add(node.id)
            elif isinstance(node, ast.Attribute):
                found.add(node.attr)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                found.add(node.name)
            elif isinstance(node, ast.arg):
                found.add(node.arg)
            elif isinstance(node, ast.alias):
                found.add((node.asname or node.name).split(".")[0])
    return frozenset(found)


def judge(exercise: Exercise, pending: Pending, result: KernelResult | NoAnswer) -> Report:
    """The verdict on the kernel's answer (or on its failure to answer), computed here."""
    name, cases = pending.name, pending.cases
    if pending.decided is not None:
        return pending.decided
    if isinstance(result, NoAnswer):
        return Report(name, f"{name}: {result}", mistake="no-answer")
    spec = exercise.specs[name]
    if result.missing:
        return Report(name, f"{name} is not defined: run the cell that defines it (keep its name).", "missing")
    if result.forbidden:
        library = _library(result.forbidden[0])
        return Report(name, refusals.refusal_message(name, library), refusals.refusal_kind(library))
    got = result.outcomes
    if any(o.error_type == "NotImplementedError" for o in got):
        return Report(name, f"{name} is not implemented yet (it raises NotImplementedError).", "not-implemented")
    if any(o.error_type == "LibraryAttention" for o in got):
        return Report(name, refusals.refusal_message(name, "torch.nn.MultiheadAttention"), "library-attention")
    namespace = reference_namespace(exercise)
    if spec.reference:
        want = local_outcomes(exercise.reference(name), namespace, cases)
        for case, w in zip(cases, want, strict=True):
            if w.failed and w.error_type != "KeyError":
                raise RuntimeError(f"the reference failed on hidden case {case.what!r}: {w.error_type}")
    else:
        want = [Outcome(value=plain_value(c.expected)) for c in cases]
    failing = [i for i in range(len(cases)) if not same(got[i], want[i], spec)]
    if not failing:
        return Report(name, None)
    whats = [cases[i].what for i in failing]
    mistake = diagnose(exercise, name, spec, cases, got, failing, namespace)
    if mistake is not None:
        # The message names the mistake in words; its id stays in the verdict's metadata (reports count by it).
        return Report(name, f"{name} looks wrong:\n{wrap(mistake.message)}", mistake.id, whats)
    i = min(failing, key=lambda j: _first_to_tell(got[j], want[j]))
    words = describe(name, spec, cases[i], got[i], want[i], argument_names(exercise, name, cases[i]),
                     pending.source_names)
    return Report(name, wrap(words), None, whats)


def _first_to_tell(got: Outcome, want: Outcome) -> int:
    """Which failing case the message describes: a missing name, then a parameter mismatch, then an input
    changed in place (each the cause of what follows it), then the first one."""
    if got.error_type == "NameError":
        return 0
    if got.error_type == "ParameterMismatch":
        return 1
    if set(got.modified) - set(want.modified):
        return 2
    return 3


def argument_names(exercise: Exercise, name: str, case: Case) -> dict:
    """``{position or keyword: parameter name}`` of the arguments ``case`` passes (from the reference's
    signature, which is public: the contract's names)."""
    import inspect

    obj = exercise.reference(name)
    runner = case.run.runner
    try:
        if runner in ("forward", "decode_steps"):
            params = list(inspect.signature(inspect.unwrap(obj.forward)).parameters)[1:]  # type: ignore[attr-defined]
            names = {i + 1: p for i, p in enumerate(params)}
        elif runner == "gradient":
            params = list(inspect.signature(inspect.unwrap(obj)).parameters)
            names = {2: params[1]} if len(params) > 1 else {}
        else:
            params = list(inspect.signature(inspect.unwrap(obj)).parameters)
            names = dict(enumerate(params))
    except (TypeError, ValueError, AttributeError):
        return {}
    names.update({p: p for p in params})
    return names


def check(
    exercise: Exercise,
    name: str,
    answer: Answer,
    secret: bytes,
    checked: Sequence[str] = (),
    static_refusals: dict[str, str] | None = None,
) -> Report:
    """The verdict on ``name`` with a synchronous ``answer`` (tests; the grader itself is asynchronous)."""
    pending = prepare(exercise, name, secret, checked, static_refusals)
    if pending.decided is not None:
        return pending.decided
    try:
        result: KernelResult | NoAnswer = answer(pending.job, pending.runs)
    except NoAnswer as err:
        result = err
    return judge(exercise, pending, result)


def _library(op: str) -> str:
    return refusals._label(op)


def diagnose(
    exercise: Exercise,
    name: str,
    spec: Spec,
    cases: list[Case],
    got: list[Outcome],
    failing: list[int],
    namespace: dict[str, Any],
) -> Mistake | None:
    """The known mistake that reproduces the student's answers: on every case, else on every failing one."""
    partial = None
    for m in exercise.mistakes_of(name):
        theirs = local_outcomes(m.build(namespace), namespace, cases)
        agree = [same(g, t, spec) for g, t in zip(got, theirs, strict=True)]
        if all(agree):
            return m
        if partial is None and all(agree[i] for i in failing):
            partial = m
    return partial


def wrap(text: str) -> str:
    """Lines short enough to read in a notebook's error box and in the feedback page."""
    return textwrap.fill(text, width=88, break_long_words=False, break_on_hyphens=False)


#: Exception names shown in feedback; any other name (the kernel chooses it) is not echoed.
KNOWN_ERRORS = frozenset({
    "ArithmeticError", "AssertionError", "AttributeError", "FloatingPointError", "ImportError", "IndexError",
    "KeyError", "LookupError", "MemoryError", "ModuleNotFoundError", "NameError", "NotImplementedError",
    "OverflowError", "RecursionError", "RuntimeError", "TypeError", "UnboundLocalError", "ValueError",
    "ZeroDivisionError", "ParameterMismatch", "LinAlgError",
})


def _error_words(o: Outcome) -> str:
    """The error's type, if it is a well-known one (the kernel's own text is never shown)."""
    return o.error_type if o.error_type in KNOWN_ERRORS else "an exception"


def _module_of(case: Case) -> probe.ModuleSpec | None:
    return next((a for a in case.run.args if isinstance(a, probe.ModuleSpec)), None)


def _parameter_problem(name: str, case: Case, got: Outcome) -> str:
    """Words for a :class:`~grader.engine.probe.ParameterMismatch`: the expected parameters the student's
    module lacks or has in another shape. Only names of the expected parameters are quoted (the kernel's
    text is read for them and nothing else)."""
    spec = _module_of(case)
    expected = sorted(spec.state) if spec is not None else []
    cls = spec.cls if spec is not None else name
    text = got.error_message
    missing_part, _, shape_part = text.partition("; shape:")
    if text.startswith("shape:"):
        missing_part, shape_part = "", text[len("shape:"):]

    def listed(part: str) -> list[str]:
        said = {w.strip() for w in part.replace("missing:", "").split(",")}
        return [k for k in expected if k in said]

    missing, misshapen = listed(missing_part), listed(shape_part)
    words = [f"the parameters of your {cls} do not match the contract"]
    if missing:
        words.append(f"it has no {', '.join(missing)}")
        if all(k.endswith(".bias") for k in missing):
            words.append("the layer was asked for biases (bias=True): pass `bias` on to every nn.Linear")
    if misshapen:
        words.append(f"{', '.join(misshapen)} {'has' if len(misshapen) == 1 else 'have'} another shape than the "
                     "contract gives (nn.Linear(in_features, out_features) stores its weight as (out, in))")
    if not missing and not misshapen:
        words.append(f"use the layers and names the contract gives ({', '.join(expected[:6])}"
                     f"{', ...' if len(expected) > 6 else ''})")
    return "; ".join(words)


def _name_error(got: Outcome, source_names: frozenset[str] | None) -> str | None:
    """The missing name of a NameError, if it is an identifier the submitted code itself spells."""
    missing = got.error_name
    if missing is None or not (missing.isascii() and missing.isidentifier()) or len(missing) > 60:
        return None
    if source_names is not None and missing not in source_names:
        return None
    return missing


def describe(
    name: str,
    spec: Spec,
    case: Case,
    got: Outcome,
    want: Outcome,
    arguments: dict | None = None,
    source_names: frozenset[str] | None = None,
) -> str:
    """Words for how the answer to ``case`` differs; ``arguments`` names the case's arguments."""
    if got.error_type == "NameError":
        missing = _name_error(got, source_names)
        if missing:
            return (f"{name} uses the name `{missing}`, which is not defined when it runs (a typo, a variable of "
                    "another cell or function, or a cell that was not run?).")
    if got.error_type == "ParameterMismatch":
        return f"{name}: {_parameter_problem(name, case, got)}."
    changed = [a for a in got.modified if a not in want.modified]
    if changed:
        names = [f"`{(arguments or {}).get(a, a)}`" if (arguments or {}).get(a) else "one of its arguments"
                 for a in changed]
        return (f"{name} changes its input {', '.join(dict.fromkeys(names))} in place (with {case.what}): the "
                "caller's arrays must be left as they were. Compute into new arrays (x = x - m, not x -= m).")
    if got.failed:
        hint = " (run your function on a similar input to see the message)"
        if want.failed:
            return f"{name} raised {_error_words(got)} with {case.what}; expected {want.error_type}{hint}."
        return f"{name} raised {_error_words(got)} with {case.what}{hint}."
    if want.failed:
        return f"{name} should raise {want.error_type} with {case.what}, but it returned a result."
    words = difference(got.value, want.value, spec) or "a wrong result"
    return f"{name} is not right yet with {case.what}: {words}."
