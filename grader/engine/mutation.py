"""Mutation testing of the hidden checks: does every small change of a reference lose its points?

For each graded function, every mutant of its reference (:mod:`grader.engine.mutants`) is run on the
hidden cases of many course secrets, here in the grader's process (mutants are trusted code, like the
known mistakes), and compared with the reference exactly as a student's answer is (same runners, same
tolerances, same ``same``). A mutant is

- **killed** when, for *every* secret tried, some hidden case tells it from the reference: it would
  lose its points whatever secret a course draws. It is **named** when, on the first secret, the
  diagnosis finds a known mistake that reproduces it (the student would be told what is wrong).
- **equivalent** when it answers like the reference for some secret and the exercise's ``checks.py``
  says why in ``EQUIVALENT_MUTANTS = {id: reason}``.
- **surviving** otherwise: a hole in the hidden cases. The target is none.

An equivalence record is itself checked: a record whose mutant no longer exists (the reference changed)
or whose mutant is killed under every secret tried is reported as *stale*, like a known mistake whose
patch no longer applies. ``scripts/mutation_score.py`` prints the table; the suite runs a sample.
"""

from __future__ import annotations

import copy
import hashlib
import signal
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from grader.engine import checker, probe
from grader.engine.cases import Case
from grader.engine.compare import same
from grader.engine.mutants import Mutant, mutants
from grader.engine.registry import Exercise
from grader.engine.transport import Outcome, plain_value

STATUSES = ("killed", "named", "equivalent", "surviving")


class MutantTimeout(Exception):
    """A mutant ran longer than its time limit on one case (the real grader would stop it: killed)."""


def course_secrets(count: int, label: str = "mutation") -> list[bytes]:
    """``count`` fixed secrets (the same on every run and machine, so the table is reproducible)."""
    return [hashlib.sha256(f"{label} secret {i}".encode()).digest() for i in range(count)]


@contextmanager
def _one_thread() -> Iterator[None]:
    """PyTorch on one thread while mutants run: their tensors are tiny, and threads only contend."""
    import sys

    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Raise :class:`MutantTimeout` in the code below after ``seconds`` (main thread only)."""
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise MutantTimeout(f"longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _outcome(impl: Any, namespace: dict, case: Case, timeout: float) -> Outcome:
    """One case run on trusted code, in the plain form the grader compares (like ``local_outcomes``)."""
    run = (case.run.runner, copy.deepcopy(case.run.args), copy.deepcopy(case.run.kwargs))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with _deadline(timeout):
                (status, value, modified), = probe.run_cases(impl, namespace, [run], watch_library=False)[0]
        except MutantTimeout as err:
            status, value, modified = "error", err, []
    return checker.outcome(status, value, modified)


@dataclass
class Verdict:
    """What became of one mutant."""

    mutant: Mutant
    status: str  # one of STATUSES
    survived: bytes | None = None  # a secret under which it answers like the reference
    mistake: str | None = None  # the known mistake that names it
    reason: str | None = None  # why it is equivalent


@dataclass
class FunctionScore:
    """The mutants of one graded function and what became of them."""

    exercise: str
    function: str
    secrets: int
    verdicts: list[Verdict] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)  # equivalence records that are wrong, in words

    def count(self, status: str) -> int:
        return sum(v.status == status for v in self.verdicts)

    @property
    def surviving(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.status == "surviving"]

    @property
    def ok(self) -> bool:
        return not self.surviving and not self.stale


def equivalent_mutants(exercise: Exercise) -> dict[str, str]:
    """The exercise's records ``{mutant id: why it is equivalent}`` (``EQUIVALENT_MUTANTS`` in checks.py)."""
    return dict(getattr(exercise.checks, "EQUIVALENT_MUTANTS", {}))


def function_of_id(mutant_id: str) -> str:
    """``"MultiHeadAttention.forward:arith@L3:+->-"`` -> ``"MultiHeadAttention"``."""
    return mutant_id.split(":", 1)[0].split(".", 1)[0]


class _Judge:
    """The hidden cases and the reference's answers of one function, per secret (computed once)."""

    def __init__(self, exercise: Exercise, name: str, secrets: Sequence[bytes], timeout: float) -> None:
        self.exercise, self.name, self.timeout = exercise, name, timeout
        self.spec = exercise.specs[name]
        self.namespace = checker.reference_namespace(exercise)
        self.secrets = list(secrets)
        self._cases: dict[bytes, list[Case]] = {}
        self._want: dict[bytes, list[Outcome]] = {}

    def cases(self, secret: bytes) -> list[Case]:
        if secret not in self._cases:
            self._cases[secret] = checker.hidden_cases(self.exercise, self.name, secret)
        return self._cases[secret]

    def want(self, secret: bytes) -> list[Outcome]:
        if secret not in self._want:
            cases = self.cases(secret)
            if self.spec.reference:
                reference = self.exercise.reference(self.name)
                self._want[secret] = [_outcome(reference, self.namespace, c, 0) for c in cases]
            else:
                self._want[secret] = [Outcome(value=plain_value(c.expected)) for c in cases]
        return self._want[secret]

    def survives(self, impl: Any, secret: bytes) -> bool:
        """Whether ``impl`` answers like the reference on every hidden case of ``secret``."""
        for case, want in zip(self.cases(secret), self.want(secret), strict=True):
            if not same(_outcome(impl, self.namespace, case, self.timeout), want, self.spec):
                return False
        return True

    def named_by(self, impl: Any) -> str | None:
        """The known mistake that the diagnosis finds for ``impl`` on the first secret, if any."""
        secret = self.secrets[0]
        cases, want = self.cases(secret), self.want(secret)
        got = [_outcome(impl, self.namespace, c, self.timeout) for c in cases]
        failing = [i for i in range(len(cases)) if not same(got[i], want[i], self.spec)]
        if not failing:
            return None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mistake = checker.diagnose(self.exercise, self.name, self.spec, cases, got, failing, self.namespace)
        return mistake.id if mistake else None


def score_function(
    exercise: Exercise,
    name: str,
    secrets: Sequence[bytes],
    *,
    name_mistakes: bool = True,
    timeout: float = 10.0,
    select: Callable[[Mutant], bool] | None = None,
) -> FunctionScore:
    """Run every mutant of ``name`` (or those ``select`` keeps) on the hidden cases of ``secrets``."""
    with _one_thread():
        return _score(exercise, name, secrets, name_mistakes, timeout, select)


def _score(
    exercise: Exercise,
    name: str,
    secrets: Sequence[bytes],
    name_mistakes: bool,
    timeout: float,
    select: Callable[[Mutant], bool] | None,
) -> FunctionScore:
    judge = _Judge(exercise, name, secrets, timeout)
    records = {k: v for k, v in equivalent_mutants(exercise).items() if function_of_id(k) == name}
    all_mutants = mutants(exercise.reference(name), name)
    score = FunctionScore(exercise.id, name, len(secrets))
    known_ids = {m.id for m in all_mutants}
    score.stale += [f"{i}: no such mutant (the reference changed?)" for i in sorted(records) if i not in known_ids]
    for mutant in all_mutants:
        if select is not None and not select(mutant):
            continue
        try:
            impl = mutant.build(judge.namespace)
        except Exception:  # noqa: BLE001 - a mutant that does not even define the function is killed
            score.verdicts.append(Verdict(mutant, "killed"))
            continue
        survived = next((s for s in secrets if judge.survives(impl, s)), None)
        if survived is not None:
            reason = records.get(mutant.id)
            status = "equivalent" if reason else "surviving"
            score.verdicts.append(Verdict(mutant, status, survived=survived, reason=reason))
            continue
        if mutant.id in records:
            score.stale.append(f"{mutant.id}: recorded as equivalent, but the hidden cases kill it under every secret")
        mistake = judge.named_by(impl) if name_mistakes else None
        score.verdicts.append(Verdict(mutant, "named" if mistake else "killed", mistake=mistake))
    return score


def score_exercise(exercise: Exercise, secrets: Sequence[bytes], **kwargs: Any) -> list[FunctionScore]:
    """:func:`score_function` for every graded function of ``exercise``, in check order."""
    return [score_function(exercise, name, secrets, **kwargs) for name in exercise.check_order]


__all__ = ["FunctionScore", "MutantTimeout", "Verdict", "course_secrets", "equivalent_mutants", "score_exercise",
           "score_function"]
