"""What a reading page says about its own numbers holds on every build: glue the number, or check the claim.

A reading computes its figures while the website is built, on whatever machine builds it. A number typed
into the prose ("about 18 %", "2.8x faster") is true on the machine it was typed on and silently wrong
elsewhere. So the pages never type a computed number; they use the two tools of this module:

- :func:`glue` hands a computed value to the prose: ``glue("speedup_64", t_loop / t_batched)`` in a code
  cell, ``{glue:text}`speedup_64:.1f`x`` in the text (myst-nb's ``glue`` role, with a format spec). A word
  chosen by a measurement is glued the same way: ``glue("verdict", "faster" if a < b else "slower")``.
- :func:`check` states a claim of the prose as a condition, in a hidden (``remove-cell``) cell:
  ``check(share_after >= 0.9, "after training, at least 90 % of the target words look at their source")``.
  When it is false the cell raises :class:`ClaimError`, the page's execution fails, and the build fails
  (``jupyter-book build -W``: a failed execution is a warning, and warnings are errors).

Outside the website build (Colab, Jupyter without myst-nb) :func:`glue` does nothing visible and the
prose shows the role's raw text; :func:`check` still checks. Machine-dependent comparisons are worded as
measurements, with :func:`conditions` saying where they were taken.
"""

from __future__ import annotations

import os
import platform
from typing import Any

#: The MIME prefix myst-nb reads glued values under (``myst_nb.ext.glue.GLUE_PREFIX``; a test checks they agree).
GLUE_PREFIX = "application/papermill.record/"


class ClaimError(AssertionError):
    """A sentence of a reading page is false for the numbers this build computed."""


def _plain(value: Any) -> Any:
    """Python scalars for NumPy/PyTorch ones (their repr, ``np.float64(0.5)``, is not a number to myst-nb)."""
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    return value


def glue(name: str, value: Any) -> Any:
    """Make ``value`` (a number or a string) available to the page's ``{glue:text}`name``` roles; returns it.

    Nothing is displayed in the cell. Without myst-nb (e.g. in Colab) this only returns ``value``.
    """
    value = _plain(value)
    if not isinstance(value, int | float | str):
        raise TypeError(f"glue {name!r}: give a number or a string, got {type(value).__name__}")
    import importlib.util

    if importlib.util.find_spec("myst_nb") is None:  # not building the site: the prose shows the raw role
        return value
    # What ``myst_nb.glue(name, value, display=False)`` sends, without importing myst_nb (its import pulls in
    # nbformat's schema validation, seconds per page).
    from IPython.core.formatters import format_display_data
    from IPython.display import display

    bundle, metadata = format_display_data(value)
    metadata["scrapbook"] = {"name": name, "mime_prefix": GLUE_PREFIX}
    display({GLUE_PREFIX + kind: data for kind, data in bundle.items()}, raw=True, metadata=metadata)
    return value


def check(condition: object, claim: str) -> None:
    """Raise :class:`ClaimError` naming ``claim`` (the sentence of the page) when ``condition`` is false."""
    if not bool(condition):
        raise ClaimError(f"the page claims: {claim!r}, but this build's numbers say otherwise")


def cpu_name() -> str:
    """The processor's model name from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def conditions(device: str | None = None) -> str:
    """Where a measurement was taken, in words: the machine (and, Linux, its load average now).

    ``device=None`` is the CPU as NumPy uses it (no PyTorch import); ``"cpu"`` or ``"cuda"`` adds what
    :func:`course.gpu.device_label` says (PyTorch's threads and version, or the GPU).
    """
    if device is None:
        where = f"CPU: {cpu_name()}, {os.cpu_count()} cores"
    else:
        from course.gpu import device_label

        where = device_label(device)
    try:
        load = os.getloadavg()[0]
    except OSError:  # pragma: no cover - not on Linux
        return where
    return f"{where}; load average {load:.1f} when measured"
