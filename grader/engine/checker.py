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
    out = []
    for status, value in results:
        if status == "ok":
            out.append(Outcome(value=plain_value(value)))
        else:
            out.append(Outcome(error_type=type(value).__name__, error_message=_first_line(value)))
    return out


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


def prepare(
    exercise: Exercise,
    name: str,
    secret: bytes,
    checked: Sequence[str] = (),
    static_refusals: dict[str, str] | None = None,
) -> Pending:
    """The hidden cases of ``name`` and the kernel job that runs them (with earlier references as helpers)."""
    library = (static_refusals or {}).get(name)
    if library:
        refusal = Report(name, refusals.refusal_message(name, library), mistake=refusals.refusal_kind(library))
        return Pending(name, [], {}, [], decided=refusal)
    cases = hidden_cases(exercise, name, secret)
    runs = [(c.run.runner, c.run.args, c.run.kwargs) for c in cases]
    return Pending(name, cases, kernel_job(exercise, name, checked), runs)


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
        # The first line names the mistake on its own: grade reports show only that line.
        return Report(name, f"{name} looks wrong [mistake: {mistake.id}]:\n{wrap(mistake.message)}", mistake.id, whats)
    i = failing[0]
    return Report(name, wrap(describe(name, spec, cases[i], got[i], want[i])), None, whats)


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
    if o.error_type == "ParameterMismatch":
        return ("an error loading the expected parameters (use nn.Linear layers named q_proj, k_proj, v_proj, "
                "out_proj, with the shapes the contract gives)")
    return o.error_type if o.error_type in KNOWN_ERRORS else "an exception"


def describe(name: str, spec: Spec, case: Case, got: Outcome, want: Outcome) -> str:
    if got.failed:
        hint = " (run your function on a similar input to see the message)"
        if want.failed:
            return f"{name} raised {_error_words(got)} with {case.what}; expected {want.error_type}{hint}."
        return f"{name} raised {_error_words(got)} with {case.what}{hint}."
    if want.failed:
        return f"{name} should raise {want.error_type} with {case.what}, but it returned a result."
    words = difference(got.value, want.value, spec) or "a wrong result"
    return f"{name} is not right yet with {case.what}: {words}."
