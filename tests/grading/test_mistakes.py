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
# Each course draws its own secret, so a mistake must change the answer whatever the secret: a case that
# catches it only for lucky inputs (a softmax that overflows only when some score is positive) fails
# here for one of these. ``scripts/probe_mistakes.py`` tries many more random secrets.
SECRETS = [f"fixed test secret number {i:02d}....".encode() for i in range(8)] + [
    # found by that script: chapter 1's cases let soft-unstable keep its points (all scores <= 0)
    bytes.fromhex("b1e3f0025c1abbd7c316c76abea70f01d36e064e73473fbc219efd1df6142d7b"),
]
ALL = [pytest.param(m, id=m.id) for ex in registry.exercises() for m in ex.mistakes]


@pytest.mark.parametrize("mistake", ALL)
def test_each_mistake_applies_exactly_once_and_changes_the_answer(mistake: Mistake) -> None:
    ex = registry.exercise(mistake.assignment)
    source = mistake.source()  # raises MistakeError when a patch does not apply exactly once
    assert source != student_source(ex.reference(mistake.function))
    namespace = checker.reference_namespace(ex)
    spec, built = ex.specs[mistake.function], mistake.build(namespace)
    for secret in SECRETS:
        cases = checker.hidden_cases(ex, mistake.function, secret)
        theirs = checker.local_outcomes(built, namespace, cases)
        ours = checker.local_outcomes(ex.reference(mistake.function), namespace, cases)
        changed = not all(same(t, o, spec) for t, o in zip(theirs, ours, strict=True))
        assert changed, f"{mistake.id} answers like the reference on every hidden case of secret {secret!r}"


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


def test_the_probe_script_tries_random_secrets_and_rejects_an_unknown_assignment() -> None:
    import subprocess
    import sys
    from pathlib import Path

    probe = Path(__file__).resolve().parents[2] / "scripts" / "probe_mistakes.py"
    script = [str(probe), "--secrets", "3", "--assignment"]
    ok = subprocess.run([sys.executable, *script, "ch1-lookup"], capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "soft-unstable" in ok.stdout and "kept its points for 0/3 secrets" in ok.stdout
    bad = subprocess.run([sys.executable, *script, "ch9-nothing"], capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "no assignment 'ch9-nothing'" in bad.stderr
