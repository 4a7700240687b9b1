"""The attention functions the reading pages call: ``from course.impl import soft_lookup``.

Every reading imports the functions it computes with from this one module, never from ``solutions/``
directly, so that the same page runs in two places:

=========================================================  ==============================================
where the page runs                                        what ``course.impl.<name>`` is
=========================================================  ==============================================
the course repository: the website build, the tests,       the reference implementation, ``solutions.<name>``
``bash scripts/build.sh``, an instructor's Jupyter         (``solutions`` is importable there)
the installed package: Colab, Binder, a student's          a stand-in from ``course.standins``, built on
``pip install attention-course``                           library calls (``torch.softmax``, PyTorch's
                                                           fused SDPA, ...); the package has no ``solutions``
=========================================================  ==============================================

Both have the same names, signatures, return types and shapes (COURSE.md's contracts), and
``tests/test_course_impl.py`` checks that they agree on random inputs within the course tolerances.
They differ in speed and memory only: a page's timing cells measure whichever one runs.
``COURSE_IMPL=standins`` (or ``reference``) in the environment forces one side, e.g. to build the site
with the stand-ins; ``course.impl.SOURCE`` says which side this process uses.

To add a function a reading needs: add it to ``NAMES`` here, write its stand-in in
``course/standins.py`` (library calls, same contract), and give it a case in
``tests/test_course_impl.py``.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Any

NAMES = (
    "soft_lookup",
    "softmax",
    "causal_mask",
    "padding_mask",
    "scaled_dot_product_attention",
    "self_attention",
    "cross_attention",
    "sinusoidal_positions",
    "apply_rope",
    "MultiHeadAttention",
    "GroupedQueryAttention",
    "kv_cache_bytes",
    "mha_to_gqa",
    "tiled_attention",
    "sdpa_backward",
    "DecoderLayer",
    "greedy_decode",
    "sliding_window_mask",
    "rolling_cache_update",
    "next_token_probs",
    "sample_next",
    "induction_score",
)
__all__ = [*NAMES, "SOURCE", "source_of", "triton_flash"]

_CHOICES = ("reference", "standins")


def _choose() -> str:
    forced = os.environ.get("COURSE_IMPL", "").strip()
    if forced and forced not in _CHOICES:
        raise ValueError(f"COURSE_IMPL must be one of {_CHOICES} (or unset), got {forced!r}")
    try:
        importlib.import_module("solutions")
    except ImportError:
        if forced == "reference":
            raise ImportError(
                "COURSE_IMPL=reference, but `solutions` (the course repository) is not importable"
            ) from None
        return "standins"
    return forced or "reference"


SOURCE = _choose()


def source_of(name: str) -> str:
    """``"reference"`` or ``"standins"``: where ``course.impl.<name>`` comes from in this process."""
    if name not in NAMES:
        raise AttributeError(f"course.impl has no function {name!r}; it provides {', '.join(NAMES)}")
    if SOURCE == "reference" and hasattr(importlib.import_module("solutions"), name):
        return "reference"
    return "standins"


def triton_flash() -> ModuleType | None:
    """The course's Triton FlashAttention module (``solutions/triton_flash.py``), or None outside the repository."""
    if SOURCE != "reference":
        return None
    return importlib.import_module("solutions.triton_flash")


def __getattr__(name: str) -> Any:
    if name not in NAMES:
        raise AttributeError(f"module 'course.impl' has no attribute {name!r}")
    where = "solutions" if source_of(name) == "reference" else "course.standins"
    value = getattr(importlib.import_module(where), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(NAMES))
