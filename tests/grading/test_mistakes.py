"""The known mistakes stay what they claim to be: small patches that apply and change the answer.

Every mistake of every exercise folder is a patch of its reference's student form. If a reference
changes so that a patch no longer applies exactly once, or so that the patched code answers like the
reference on every hidden case, this fails and names the mistake (see CONTRIBUTING.md).
"""

from __future__ import annotations

import pytest

from grader.engine import checker, registry
from grader.engine.compare import same
from grader.engine.mistakes import Mistake, MistakeError, apply
from grader.engine.reference import student_source

pytestmark = pytest.mark.grading
SECRET = b"a fixed test secret, 32 bytes.."
ALL = [pytest.param(m, id=m.id) for ex in registry.exercises() for m in ex.mistakes]


@pytest.mark.parametrize("mistake", ALL)
def test_each_mistake_applies_exactly_once_and_changes_the_answer(mistake: Mistake) -> None:
    ex = registry.exercise(mistake.assignment)
    source = mistake.source()  # raises MistakeError when a patch does not apply exactly once
    assert source != student_source(ex.reference(mistake.function))
    namespace = checker.reference_namespace(ex)
    cases = checker.hidden_cases(ex, mistake.function, SECRET)
    theirs = checker.local_outcomes(mistake.build(namespace), namespace, cases)
    ours = checker.local_outcomes(ex.reference(mistake.function), namespace, cases)
    spec = ex.specs[mistake.function]
    assert not all(same(t, o, spec) for t, o in zip(theirs, ours, strict=True)), f"{mistake.id} changes nothing"


def test_a_patch_that_no_longer_matches_is_an_error() -> None:
    source = "def f(x):\n    return x + 1\n"
    with pytest.raises(MistakeError, match="occurs 0 times"):
        apply(source, Mistake("gone", "f", "message", replace=(("x - 1", "x"),)))
    with pytest.raises(MistakeError, match="occurs 2 times"):
        twice = "def f(x):\n    y = x + 1\n    return x + 1\n"
        apply(twice, Mistake("twice", "f", "message", replace=(("x + 1", "x"),)))
    with pytest.raises(MistakeError, match="changes nothing"):
        apply(source, Mistake("empty", "f", "message"))


def test_patches_match_code_not_docstrings() -> None:
    source = 'def f(x):\n    """Returns x + 1."""\n    return x + 1\n'
    patched = apply(source, Mistake("m", "f", "message", replace=(("x + 1", "x + 2"),)))
    assert '"""Returns x + 1."""' in patched and "return x + 2" in patched


def test_the_catalogue_is_patches_mostly() -> None:
    """Whole rewrites stay only where a mistake is not a small change of the reference."""
    everything = [m for ex in registry.exercises() for m in ex.mistakes]
    rewrites = [m.id for m in everything if m.rewrite is not None]
    assert len(rewrites) <= len(everything) // 5, rewrites
