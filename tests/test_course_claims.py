"""``course.claims``: the readings' glued numbers and checked claims (the build-level proof is
``tests/site/test_site_claims.py``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course import claims


def test_glue_returns_plain_python_numbers_and_strings() -> None:
    assert claims.glue("a", np.float64(0.5)) == 0.5 and type(claims.glue("a", np.float64(0.5))) is float
    assert type(claims.glue("b", torch.tensor(3))) is int
    assert claims.glue("c", "less") == "less"


def test_glue_refuses_what_the_prose_cannot_show() -> None:
    with pytest.raises(TypeError, match="give a number or a string"):
        claims.glue("array", np.arange(3))


def test_a_false_check_raises_naming_the_claim_and_a_true_one_does_not() -> None:
    claims.check(np.float64(2.0) > 1, "two is more than one")
    with pytest.raises(claims.ClaimError, match="the loop takes more than 3 times as long"):
        claims.check(2.5 > 3, "the loop takes more than 3 times as long")
    assert issubclass(claims.ClaimError, AssertionError)


def test_conditions_name_the_machine_and_its_load() -> None:
    numpy_side = claims.conditions()
    assert numpy_side.startswith("CPU: ") and "cores" in numpy_side and "load average" in numpy_side
    torch_side = claims.conditions("cpu")
    assert "thread" in torch_side and torch.__version__ in torch_side


def test_glue_sends_what_myst_nb_glue_sends(monkeypatch) -> None:
    """``claims.glue`` writes myst-nb's display bundle itself (no slow import): the same bundle, prefix and
    metadata as ``myst_nb.glue(name, value, display=False)``."""
    import IPython.display
    from myst_nb.ext import glue as myst_glue

    sent = []
    monkeypatch.setattr(IPython.display, "display", lambda *a, **k: sent.append((a, k)))
    monkeypatch.setattr(myst_glue, "ipy_display", lambda *a, **k: sent.append((a, k)))
    claims.glue("ratio", 2.5)
    myst_glue.glue("ratio", 2.5, display=False)
    assert claims.GLUE_PREFIX == myst_glue.GLUE_PREFIX
    assert len(sent) == 2 and sent[0] == sent[1] and "application/papermill.record/text/plain" in sent[0][0][0]
