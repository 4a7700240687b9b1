"""Hidden cases: the inputs a graded function is checked on, as data, described in words.

An exercise's ``checks.py`` writes, for each graded function, a function of a random generator that
returns a list of :class:`Case`. The generator is seeded from the course's secret (see
:mod:`grader.engine.secret`), so the inputs cannot be precomputed from the public repository, and the
same secret gives the same inputs (serial and parallel grading agree). A case is pure data (arrays,
tensors, numbers, module parameters): it is encoded and sent to the sandboxed kernel, and its runner
(:mod:`grader.engine.probe`) calls the student's function there the same way the grader calls the
reference and the known mistakes. ``what`` is the only part a student ever sees.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from grader.engine.probe import ModuleSpec


@dataclass(frozen=True)
class Run:
    """How a case calls the function under test: a runner of :data:`grader.engine.probe.RUNNERS`."""

    runner: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Case:
    """One hidden input. ``expected`` is set when the answer is known without a reference."""

    what: str
    run: Run
    expected: Any = None


@dataclass(frozen=True)
class Spec:
    """How to check one graded function or class."""

    cases: Callable[[np.random.Generator], list[Case]]
    items: tuple[str, ...] = ()  # names of the returned tuple's items, e.g. ("output", "weights")
    reference: bool = True  # False when the cases carry ``expected`` (no reference in solutions)
    rtol: float | None = None
    atol: float | None = None
    no_autograd: bool = False  # a gradient written by hand: autograd inside it earns no credit


def call(*args: Any, **kwargs: Any) -> Run:
    """``f(*args, **kwargs)``."""
    return Run("call", args, kwargs)


def sample(logits: Any, seed: int, draws: int, **kwargs: Any) -> Run:
    """``draws`` calls ``f(logits, generator=g, **kwargs)`` with one ``torch.Generator`` seeded ``seed``."""
    return Run("sample", (logits, seed, draws), kwargs)


def forward(module: ModuleSpec, *args: Any, **kwargs: Any) -> Run:
    """Build the student's class with ``module``'s parameters and call it on ``args``."""
    return Run("forward", (module, *args), kwargs)


def decode_steps(module: ModuleSpec, x: Any) -> Run:
    """The full causal forward, and the same tokens decoded one at a time with the KV cache."""
    return Run("decode_steps", (module, x))


def convert(source: ModuleSpec, *args: Any) -> Run:
    """``f(module built from source, *args)``, compared by the returned module's parameters."""
    return Run("convert", (source, *args))


def traced(model: ModuleSpec, *args: Any) -> Run:
    """``(f(model, *args), the number of tokens of each call of model.decode)``."""
    return Run("traced", (model, *args))


def tiles(Q: Any, K: Any, V: Any, block_size: int) -> Run:
    """``f(Q, K, V, block_size=...)`` watched for any score block larger than a tile."""
    return Run("tiles", (Q, K, V, block_size))


def gradient(recipe: str, params: tuple, query: np.ndarray, **kwargs: Any) -> Run:
    """``f(g, query, **kwargs)`` for a function ``g`` given by a recipe of :func:`grader.engine.probe._recipe`."""
    return Run("gradient", (recipe, params, query), kwargs)


# ---- inputs -----------------------------------------------------------------------------------------


def tensor(rng: np.random.Generator, *shape: int, dtype: str = "float32") -> Any:
    """A standard-normal torch tensor drawn from ``rng``."""
    import torch

    return torch.from_numpy(rng.normal(size=shape)).to(getattr(torch, dtype))


def module(cls: str, *init: Any, seed: int) -> ModuleSpec:
    """The parameters of ``solutions.<cls>(*init)`` initialised with ``seed``, as an input module."""
    import torch

    import solutions

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        ref = getattr(solutions, cls)(*init)
    return ModuleSpec(cls, init, {k: v.detach().clone() for k, v in ref.state_dict().items()})


__all__ = ["Case", "Run", "Spec", "call", "convert", "decode_steps", "forward", "gradient", "module",
           "sample", "tensor", "tiles", "traced"]
