"""Plotting helpers shared by every chapter of the book.

Each function draws on a Matplotlib ``Axes`` (made for you when ``ax`` is None) and returns it, so
figures compose with ``plt.subplots``. Conventions everywhere: rows are **queries**, columns are
**keys**, and every axis that indexes tokens is labelled with the tokens themselves.

Sections: attention weights (heatmaps, bars), masks, shapes, colours. Add new helpers to the section
they belong to, with a test in ``tests/test_course_helpers.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch, Rectangle

#: Colours of a boolean mask grid: index 0 = blocked (False), index 1 = may attend (True). Blocked cells are
#: also hatched (:data:`BLOCKED_HATCH`), so that "blocked" never rests on colour alone.
MASK_COLORS = ("#d9d9d9", "#2f7ebc")
MASK_CMAP = ListedColormap(MASK_COLORS, name="attention_mask")
BLOCKED_HATCH = "///"
BLOCKED_HATCH_COLOR = "#767676"
#: Colour map for attention weights (white = 0).
WEIGHTS_CMAP = "Blues"


def _axes(ax: Axes | None, figsize: tuple[float, float] = (4.5, 4.0)) -> Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def _labels(labels: Sequence[str] | None, n: int, name: str) -> list[str]:
    if labels is None:
        return [str(i) for i in range(n)]
    labels = [str(s) for s in labels]
    if len(labels) != n:
        raise ValueError(f"{name} has {len(labels)} labels for {n} rows/columns")
    return labels


def _token_axes(ax: Axes, row_labels: list[str], col_labels: list[str], xlabel: str, ylabel: str) -> None:
    """Put the tokens on both axes: keys along the top, queries down the left side."""
    ax.set_xticks(range(len(col_labels)), col_labels, rotation=45 if max(map(len, col_labels), default=0) > 4 else 0)
    ax.set_yticks(range(len(row_labels)), row_labels)
    ax.xaxis.tick_top()
    ax.xaxis.set_label_position("top")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.tick_params(length=0)


def _hatch_blocked(ax: Axes, allowed: np.ndarray) -> None:
    """Hatch every blocked cell (``allowed`` False) of an ``imshow`` grid."""
    for i, j in zip(*np.nonzero(~allowed), strict=True):
        ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch=BLOCKED_HATCH,
                               edgecolor=BLOCKED_HATCH_COLOR, linewidth=0))


def _weight_text(value: float) -> str:
    """A weight in two decimals without the leading zero: ``.25``, ``1``, ``0``."""
    if value < 0.005:
        return "0"
    if value > 0.995:
        return "1"
    return f"{value:.2f}".lstrip("0")


# --------------------------------------------------------------------------------------------------
# Attention weights
# --------------------------------------------------------------------------------------------------


def attention_heatmap(
    weights: np.ndarray,
    row_labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    annotate: bool = True,
    xlabel: str = "keys",
    ylabel: str = "queries",
    vmax: float = 1.0,
    colorbar: bool = False,
    mask: np.ndarray | None = None,
) -> Axes:
    """Draw attention weights ``(n_q, n_k)`` as a heatmap with the tokens on both axes.

    Args:
        weights: ``(n_q, n_k)``; row ``i`` is how query ``i`` spreads its attention over the keys.
        row_labels: ``n_q`` query tokens (default: positions).
        col_labels: ``n_k`` key tokens (default: positions).
        annotate: write each weight in its cell (to 2 decimals) when the grid is small.
        vmax: weight shown darkest; 1.0 keeps heatmaps comparable across figures.
        mask: optional boolean, broadcastable to ``(n_q, n_k)``; blocked cells (False) are drawn in the
            mask grid's grey (:data:`MASK_COLORS`), hatched, with no number, to tell "blocked" from "weight 0".
    """
    w = np.asarray(weights, dtype=float)
    if w.ndim != 2:
        raise ValueError(f"weights must be (n_q, n_k), got shape {w.shape}")
    rows = _labels(row_labels, w.shape[0], "row_labels")
    cols = _labels(col_labels, w.shape[1], "col_labels")
    allowed = np.ones(w.shape, dtype=bool) if mask is None else np.broadcast_to(np.asarray(mask, dtype=bool), w.shape)
    ax = _axes(ax, (0.55 * w.shape[1] + 1.6, 0.5 * w.shape[0] + 1.4))
    image = ax.imshow(w, cmap=WEIGHTS_CMAP, vmin=0.0, vmax=vmax, aspect="equal")
    if not allowed.all():
        ax.imshow(np.ma.masked_array(np.zeros(w.shape), mask=allowed), cmap=ListedColormap([MASK_COLORS[0]]),
                  vmin=0, vmax=1, aspect="equal")
        _hatch_blocked(ax, allowed)
    _token_axes(ax, rows, cols, xlabel, ylabel)
    if annotate and w.size <= 12 * 12:
        for (i, j), value in np.ndenumerate(w):
            if allowed[i, j]:
                ax.text(j, i, _weight_text(value), ha="center", va="center",
                        fontsize=8, color="white" if value > 0.55 * vmax else "black")
    if title:
        ax.set_title(title, fontsize=11)
    if colorbar:
        ax.figure.colorbar(image, ax=ax, shrink=0.8, label="weight")
    return ax


def weight_bars(
    weights: np.ndarray,
    labels: Sequence[str] | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    colors: Sequence | None = None,
    ylim: float = 1.0,
) -> Axes:
    """Draw one query's weights ``(n,)`` over ``n`` keys as bars labelled with the keys."""
    w = np.asarray(weights, dtype=float)
    if w.ndim != 1:
        raise ValueError(f"weights must be (n,), got shape {w.shape}")
    names = _labels(labels, w.shape[0], "labels")
    ax = _axes(ax, (0.6 * len(names) + 1.5, 2.4))
    ax.bar(range(len(names)), w, color=colors if colors is not None else MASK_COLORS[1], edgecolor="black",
           linewidth=0.5)
    ax.set_xticks(range(len(names)), names)
    ax.set_ylim(0, ylim)
    ax.set_ylabel("weight")
    ax.spines[["top", "right"]].set_visible(False)
    if title:
        ax.set_title(title, fontsize=11)
    return ax


# --------------------------------------------------------------------------------------------------
# Masks
# --------------------------------------------------------------------------------------------------


def mask_grid(
    mask: np.ndarray,
    row_labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    legend: bool = True,
    xlabel: str = "keys",
    ylabel: str = "queries",
) -> Axes:
    """Draw a boolean mask ``(n_q, n_k)`` as a grid: blue = may attend (True), grey and hatched = blocked (False).

    The colours are :data:`MASK_COLORS`; white lines separate the cells.
    """
    m = np.asarray(mask)
    if m.dtype != bool:
        raise ValueError(f"mask must be boolean (True = may attend), got dtype {m.dtype}")
    if m.ndim != 2:
        raise ValueError(f"mask must be (n_q, n_k), got shape {m.shape}")
    rows = _labels(row_labels, m.shape[0], "row_labels")
    cols = _labels(col_labels, m.shape[1], "col_labels")
    ax = _axes(ax, (0.5 * m.shape[1] + 1.6, 0.45 * m.shape[0] + 1.4))
    ax.imshow(m.astype(int), cmap=MASK_CMAP, vmin=0, vmax=1, aspect="equal")
    _hatch_blocked(ax, m)
    ax.set_xticks(np.arange(-0.5, m.shape[1]), minor=True)
    ax.set_yticks(np.arange(-0.5, m.shape[0]), minor=True)
    ax.grid(which="minor", color="white", linewidth=1.5)
    ax.tick_params(which="minor", length=0)
    _token_axes(ax, rows, cols, xlabel, ylabel)
    if title:
        ax.set_title(title, fontsize=11)
    if legend:
        ax.legend(handles=[Patch(color=MASK_COLORS[1], label="may attend (True)"),
                           Patch(facecolor=MASK_COLORS[0], hatch=BLOCKED_HATCH, edgecolor=BLOCKED_HATCH_COLOR,
                                 linewidth=0, label="blocked (False)")],
                  loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=2, fontsize=8, frameon=False)
    return ax


# --------------------------------------------------------------------------------------------------
# Shapes
# --------------------------------------------------------------------------------------------------


def shape_diagram(
    terms: Sequence[tuple[str, tuple[int, int]] | str],
    ax: Axes | None = None,
    dim_names: dict[int, str] | None = None,
    unit: float = 0.22,
    colors: Sequence[str] = ("#9ecae1", "#fdae6b", "#a1d99b", "#bcbddc", "#fc9272"),
) -> Axes:
    """Draw matrices as boxes whose sides are proportional to their shapes, e.g. ``Q @ Kᵀ = S``.

    Args:
        terms: a sequence of ``(name, (rows, cols))`` boxes and operator strings such as ``"@"`` or
            ``"="``, drawn left to right.
        dim_names: optional names for sizes, e.g. ``{6: "n_q", 4: "d_k"}``; each box is annotated with
            ``rows × cols`` using these names.
        unit: length of one element in inches-ish axis units.
    """
    ax = _axes(ax, (8, 2.6))
    names = dim_names or {}
    x, box_index, tallest = 0.0, 0, 0.0
    for term in terms:
        if isinstance(term, str):
            ax.text(x + 0.3, 0, term, ha="center", va="center", fontsize=16)
            x += 0.85
            continue
        label, (rows, cols) = term
        w, h = cols * unit, rows * unit
        tallest = max(tallest, h)
        ax.add_patch(Rectangle((x, -h / 2), w, h, facecolor=colors[box_index % len(colors)], edgecolor="black"))
        ax.text(x + w / 2, 0, label, ha="center", va="center", fontsize=12, weight="bold")
        ax.text(x + w / 2, h / 2 + 0.08, names.get(cols, str(cols)), ha="center", va="bottom", fontsize=9)
        ax.text(x - 0.06, 0, names.get(rows, str(rows)), ha="right", va="center", fontsize=9, rotation=90)
        x += w + 0.15
        box_index += 1
    ax.set_xlim(-0.4, x)
    ax.set_ylim(-tallest / 2 - 0.2, tallest / 2 + 0.4)
    ax.set_aspect("equal")
    ax.axis("off")
    return ax


# --------------------------------------------------------------------------------------------------
# Colours (chapter 1's paint mixing)
# --------------------------------------------------------------------------------------------------


def color_swatches(
    colors: np.ndarray,
    labels: Sequence[str] | None = None,
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    """Draw ``n`` RGB colours ``(n, 3)`` in ``[0, 1]`` as a row of labelled squares."""
    c = np.clip(np.asarray(colors, dtype=float), 0.0, 1.0)
    if c.ndim != 2 or c.shape[1] != 3:
        raise ValueError(f"colors must be (n, 3) RGB, got shape {c.shape}")
    names = _labels(labels, c.shape[0], "labels")
    ax = _axes(ax, (0.9 * len(names) + 0.5, 1.4))
    ax.imshow(c[None, :, :], aspect="equal")
    ax.set_xticks(range(len(names)), names)
    ax.set_yticks([])
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        ax.set_title(title, fontsize=11)
    return ax
