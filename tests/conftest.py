"""Shared pytest setup: a reproducible hypothesis profile for CI and a fixed torch seed per test.

Profiles (pick one with ``HYPOTHESIS_PROFILE=...``):
- ``ci`` (default): few examples, derandomized, no deadline: fast and the same on every run.
- ``dev``: many more random examples, for hunting bugs locally.

The chapter tests import their strategies with ``from strategies import ...``: pytest puts this
directory on ``sys.path`` (it has no ``__init__.py``).
"""

from __future__ import annotations

import os
import sys

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=20,
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=300, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _seed_torch() -> None:
    """Every test starts from the same torch RNG state, so module initialisation is reproducible.

    Only when some test module has imported torch: tests that do not need it stay free of its import.
    """
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(0)
