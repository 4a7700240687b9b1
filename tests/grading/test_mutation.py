"""Mutation testing of the hidden checks: every mutant of every reference loses its points.

The fast CI run: every mutant of every graded function (``grader/engine/mutants.py``) on the first two
of the fixed secrets of ``scripts/mutation_score.py`` (which runs 10 to 50 of them and prints the
table). A mutant that keeps full marks must be killed by a new or wider hidden case, be a known
mistake, or be recorded with its reason in ``EQUIVALENT_MUTANTS`` of its exercise's ``checks.py``
(CONTRIBUTING.md, "Check the hidden cases"). The other tests check the tool itself: ids stay the
same from run to run, every operator family shows up, and a survivor or a stale record fails.
"""

from __future__ import annotations

import pytest

from grader.engine import mutation, registry
from grader.engine.mutants import mutants, mutants_of_source

pytestmark = pytest.mark.grading
SECRETS = mutation.course_secrets(2)


@pytest.mark.parametrize("assignment", registry.assignment_ids())
def test_every_mutant_is_killed_named_or_a_recorded_equivalent(assignment: str) -> None:
    ex = registry.exercise(assignment)
    problems = []
    for name in ex.check_order:
        score = mutation.score_function(ex, name, SECRETS, name_mistakes=False)
        assert score.verdicts, f"{name} has no mutants"
        problems += [f"{v.mutant.id} keeps full marks for secret {v.survived.hex()}:\n    {v.mutant.before}\n -> "
                     f"{v.mutant.after}" for v in score.surviving]
        problems += score.stale
    assert not problems, (
        "a mutant needs a new or wider hidden case, a known mistake, or a record in EQUIVALENT_MUTANTS:\n"
        + "\n".join(problems)
    )


def test_an_unexplained_survivor_fails_the_score(monkeypatch: pytest.MonkeyPatch) -> None:
    """Taking one equivalence record away turns its mutant into a survivor (and the score fails)."""
    ex = registry.exercise("ch2-sdpa")
    records = mutation.equivalent_mutants(ex)
    dropped = "scaled_dot_product_attention:name-swap@L16:Q->K"
    assert dropped in records
    monkeypatch.setattr(ex.checks, "EQUIVALENT_MUTANTS", {k: v for k, v in records.items() if k != dropped})
    score = mutation.score_function(ex, "scaled_dot_product_attention", SECRETS[:1], name_mistakes=False,
                                    select=lambda m: m.id == dropped)
    assert [v.mutant.id for v in score.surviving] == [dropped] and not score.ok


def test_a_record_of_a_killed_or_missing_mutant_is_stale(monkeypatch: pytest.MonkeyPatch) -> None:
    ex = registry.exercise("ch2-sdpa")
    killed = "causal_mask:compare@L1:x"  # no such mutant
    real = next(m.id for m in mutants(ex.reference("causal_mask"), "causal_mask") if m.operator == "offset")
    monkeypatch.setattr(ex.checks, "EQUIVALENT_MUTANTS", {killed: "made up", real: "made up"})
    score = mutation.score_function(ex, "causal_mask", SECRETS[:1], name_mistakes=False)
    assert any(killed in s and "no such mutant" in s for s in score.stale), score.stale
    assert any(real in s and "kill it" in s for s in score.stale), score.stale
    assert not score.ok


def test_mutant_ids_are_stable_unique_and_readable() -> None:
    ex = registry.exercise("ch2-sdpa")
    first = mutants(ex.reference("softmax"), "softmax")
    again = mutants(ex.reference("softmax"), "softmax")
    assert [m.id for m in first] == [m.id for m in again]
    assert len({m.id for m in first}) == len(first)
    assert len({m.source for m in first}) == len(first)
    ids = {m.id for m in first}
    assert "softmax:axis@L14:axis=axis->-1" in ids  # ignores its axis argument
    assert "softmax:keyword-dropped@L17:keepdims=True" in ids


def test_the_operators_cover_what_attention_code_gets_wrong() -> None:
    source = '''def f(Q, K, V, mask=None, causal=False, axis=-1):
    """A docstring is never mutated: 1 + 1."""
    d_k = Q.shape[-1]
    scores = Q @ np.swapaxes(K, -1, -2) / math.sqrt(d_k)
    keep = np.tril(np.ones((3, 3), dtype=bool), k=K.shape[-2] - Q.shape[-2])
    if mask is not None:
        scores = np.where(mask & keep, scores, -np.inf)
    if causal:
        scores = scores[..., 1:]
    return softmax(scores, axis=axis).mean(axis=0, keepdims=True) @ V, scores
'''
    found = mutants_of_source(source, "f")
    operators = {m.operator for m in found}
    assert operators >= {"arith", "operands-swapped", "compare", "number", "keyword-dropped", "axis", "name-swap",
                         "args-swapped", "elements-swapped", "call-dropped", "inf", "offset", "slice-bound",
                         "statement-dropped", "condition-negated", "function-swap", "bool"}, operators
    after = {m.after.strip() for m in found}
    assert "d_k = (V).shape[-1]" in after  # d_v for d_k
    assert any("-1000000000.0" in a for a in after)  # -inf for a large finite number
    assert any("K.shape[-2] - Q.shape[-2] + 1" in a for a in after)  # a tril offset moved by one
    assert not any("docstring" in m.id or "1 + 1" in m.after for m in found)
    assert not any(m.operator == "args-swapped" and "swapaxes" in m.id for m in found)  # the order does not matter
    for m in found:
        compile(m.source, m.id, "exec")
