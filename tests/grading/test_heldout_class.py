"""The held-out class, graded by the grader's own checks: right code never fails, wrong code never passes.

The class (``tests/grading/heldout/``) was written from the release notebooks and the readings alone,
before its author looked at the hidden checks, so it measures them honestly: each variant is a correct
alternative or a realistic wrong version of one graded function, in an otherwise correct notebook.
This fast subset grades each variant's own function under one course secret; the full run (every
function of the notebook, several secrets, every message, misleading ones flagged) is
``scripts/heldout_class.py``. The share of caught wrong variants whose message names the misconception
is reported, not asserted.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from heldout import all_variants
from heldout.measure import measure, secrets

from grader.engine import checker

pytestmark = pytest.mark.grading
SECRET = secrets(1)[0]
#: Wrong variants of these functions are graded by the script only: each check decodes several random
#: models with the reference and the student's code, then with every known mistake (seconds each).
SCRIPT_ONLY = {"greedy_decode"}
#: For wrong variants of these, only the verdict is computed here: the diagnosis that names the mistake
#: (every known mistake run on the hidden cases) is skipped; it never changes whether points are lost.
VERDICT_ONLY = {"DecoderLayer"}
CLASS = [
    pytest.param(assignment, v, id=v.name)
    for assignment, variants in all_variants().items()
    for v in variants
    if v.kind == "correct" or v.function not in SCRIPT_ONLY
]


@pytest.fixture(scope="module")
def naming(request: pytest.FixtureRequest) -> Iterator[dict[str, bool]]:
    """``{wrong variant: its message names the misconception}``, printed when the module ends."""
    named: dict[str, bool] = {}
    yield named
    if named:
        share = sum(named.values()) / len(named)
        unnamed = ", ".join(sorted(k for k, v in named.items() if not v))
        line = (f"held-out class: {sum(named.values())}/{len(named)} caught wrong variants ({share:.0%}) got a "
                f"message naming the misconception; not named: {unnamed or 'none'}")
        capture = request.config.pluginmanager.get_plugin("capturemanager")
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            print(f"\n{line}")


@pytest.mark.parametrize(("assignment", "variant"), CLASS)
def test_heldout_variant(
    assignment: str, variant, naming: dict[str, bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    verdict_only = variant.kind == "wrong" and variant.function in VERDICT_ONLY
    if verdict_only:
        monkeypatch.setattr(checker, "diagnose", lambda *args: None)
    outcome = measure(assignment, variant, [SECRET], only_own=True)
    if variant.kind == "correct" and outcome.lost:
        pytest.fail(f"a correct {variant.function} lost its points: {outcome.lost[0][2]}", pytrace=False)
    if variant.kind == "wrong":
        if outcome.kept:
            pytest.fail(f"a wrong {variant.function} kept full marks: {variant.misconception}", pytrace=False)
        if not verdict_only:
            naming[variant.name] = outcome.named


def test_the_class_is_as_written() -> None:
    """Every variant parses, names a graded function of its exercise, and the class has its size."""
    from grader.engine import registry

    classes = all_variants()
    assert set(classes) == set(registry.assignment_ids())
    for assignment, variants in classes.items():
        graded = set(registry.exercise(assignment).points)
        assert {v.function for v in variants} == graded, assignment
        for v in variants:
            compile(v.source, v.name, "exec")
        assert len({v.name for v in variants}) == len(variants), assignment
    kinds = [v.kind for vs in classes.values() for v in vs]
    assert kinds.count("correct") >= 45 and kinds.count("wrong") >= 90


def test_a_message_names_a_misconception_only_in_its_own_words() -> None:
    """Keywords count outside the failing case's description, the function's name and generic phrases."""
    from heldout import Variant
    from heldout.measure import names_misconception

    v = Variant("softmax", "wrong", "softmax/x", "", misconception="m", keywords=("max", "value", "-inf"))
    assert names_misconception("softmax looks wrong: subtract the max along the axis.", v)
    assert not names_misconception("softmax is not right yet with big logits: the result has wrong values.", v)
    assert not names_misconception("softmax is not right yet with a row of -inf: it is wrong.", v, ["a row of -inf"])
    assert names_misconception("softmax is not right yet: a fully blocked row (all -inf) must give zeros.", v)
