"""The course's interactive figures (plotly): heatmaps to switch between, and a temperature slider.

Every function returns a ``course.interactive.Interactive`` (end a cell with it; ``.figure`` is the
plotly figure). Everything a control can show is computed in Python first and stored in the figure,
so the website needs no kernel: a button, menu entry or slider step only switches what is drawn.
Conventions as in ``course.plots``: rows are queries, columns are keys, axes labelled with tokens,
weights from 0 (white) to 1 (dark blue), blocked cells grey.

- :func:`attention_viewer` — one heatmap per entry of ``{name: weights (n_q, n_k)}`` and a menu (or
  buttons, or a slider) to pick one; hovering a cell shows its query, key and weight. Chapter 4 shows
  its hand-set heads with it; for a trained model, :func:`layer_head_weights` names the heads.
- :func:`temperature_slider` — chapter 1's soft lookup: the weights (bars) and the mixed colour for
  each temperature of a slider.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from course.interactive import Interactive
from course.plots import MASK_COLORS

#: plotly's version of matplotlib's "Blues" (``course.plots.WEIGHTS_CMAP``).
WEIGHTS_COLORSCALE = "Blues"
BLOCKED_COLOR = MASK_COLORS[0]
#: The cross drawn on a blocked cell.
BLOCKED_MARK = "#595959"
CONTROLS = ("dropdown", "buttons", "slider")


def as_array(x: Any) -> np.ndarray:
    """A float NumPy array from an array or a (grad-requiring) tensor."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=float)


def _text(value: object) -> str:
    """Plain text for plotly, which reads a few HTML tags in labels: ``<pad>`` would vanish unescaped."""
    return html.escape(str(value), quote=False)


def _plain(text: str) -> str:
    return " ".join(str(text).split())


def _labels(labels: Sequence[str] | None, n: int, name: str) -> list[str]:
    if labels is None:
        return [str(i) for i in range(n)]
    labels = [_text(s) for s in labels]
    if len(labels) != n:
        raise ValueError(f"{name} has {len(labels)} labels for {n} rows/columns of weights")
    return labels


def _cell_texts(weights: np.ndarray, allowed: np.ndarray, queries: list[str], keys: list[str]) -> list[list[str]]:
    """The hover text of every cell: its query, its key and its weight (or that the mask blocks it)."""
    return [
        [
            f"query {i}: <b>{queries[i]}</b><br>key {j}: <b>{keys[j]}</b><br>"
            + (f"weight {weights[i, j]:.3f}" if allowed[i, j] else "blocked by the mask (weight 0)")
            for j in range(weights.shape[1])
        ]
        for i in range(weights.shape[0])
    ]


def attention_viewer(
    weights: Mapping[str, Any],
    query_labels: Sequence[str] | None = None,
    key_labels: Sequence[str] | None = None,
    *,
    masks: Mapping[str, Any] | None = None,
    notes: Mapping[str, str] | None = None,
    title: str = "",
    control: str = "dropdown",
    annotate: bool | None = None,
    height: int | None = None,
    control_label: str = "heatmap",
) -> Interactive:
    """One heatmap of attention weights per entry, and a control that picks which one is shown.

    Args:
        weights: ``{name: (n_q, n_k) weights}`` (NumPy arrays or tensors, all the same shape), in the order
            the control lists them, e.g. ``{"layer 0, head 1": w}``; the first is shown first.
        query_labels: ``n_q`` labels of the rows (the query tokens); key_labels: ``n_k`` labels of the
            columns (default: the query labels, for self-attention).
        masks: optional ``{name: boolean (n_q, n_k)}``, True = may attend; blocked cells are drawn grey with
            a cross (not by colour alone) and their hover text says so. Names without a mask are all allowed.
        notes: optional ``{name: one line}`` shown under the title when that entry is selected.
        control: ``"dropdown"`` (a menu), ``"buttons"`` (a row of buttons) or ``"slider"``.
        annotate: write the weight in every cell (default: when the matrix has at most 64 cells).
        height: pixels (default: from the number of rows).
        control_label: what the control picks, its label on the website (e.g. ``"mask"``, ``"head"``).

    Returns:
        An :class:`~course.interactive.Interactive` whose ``figure`` has one heatmap trace per entry (and,
        for an entry with blocked cells, one trace of crosses over them), and whose ``texts`` say in words
        what each entry shows (:func:`weights_in_words`).
    """
    import plotly.graph_objects as go

    if control not in CONTROLS:
        raise ValueError(f"control must be one of {CONTROLS}, got {control!r}")
    if not weights:
        raise ValueError("weights is empty: give at least one {name: (n_q, n_k) array}")
    arrays = {name: as_array(w) for name, w in weights.items()}
    shape = next(iter(arrays.values())).shape
    for name, w in arrays.items():
        if w.ndim != 2 or w.shape != shape:
            raise ValueError(f"weights[{name!r}] has shape {w.shape}; every entry must be (n_q, n_k) = {shape}")
    n_q, n_k = shape
    queries = _labels(query_labels, n_q, "query_labels")
    keys = _labels(key_labels if key_labels is not None else query_labels, n_k, "key_labels")
    unknown = set(masks or {}) - set(arrays)
    if unknown:
        raise ValueError(f"masks names entries that weights lacks: {sorted(unknown)}")
    annotate = n_q * n_k <= 64 if annotate is None else annotate

    names = list(arrays)
    fig = go.Figure()
    owner: list[int] = []  # the entry each trace belongs to (a control shows one entry's traces)
    texts = []
    for index, name in enumerate(names):
        w = arrays[name]
        allowed = np.ones(shape, dtype=bool) if (masks or {}).get(name) is None else np.asarray(masks[name], dtype=bool)
        if allowed.shape != shape:
            raise ValueError(f"masks[{name!r}] has shape {allowed.shape}, expected {shape}")
        shown = np.where(allowed, w, np.nan)  # blocked cells are gaps: the grey background shows through
        fig.add_trace(
            go.Heatmap(
                z=shown.tolist(),
                x=list(range(n_k)),
                y=list(range(n_q)),
                zmin=0.0,
                zmax=1.0,
                colorscale=WEIGHTS_COLORSCALE,
                colorbar={"title": {"text": "weight"}, "thickness": 12},
                customdata=_cell_texts(w, allowed, queries, keys),
                hovertemplate="%{customdata}<extra></extra>",
                hoverongaps=True,
                texttemplate="%{z:.2f}" if annotate else None,
                xgap=1,
                ygap=1,
                name=_text(name),
                visible=index == 0,
            )
        )
        owner.append(index)
        if not allowed.all():  # a cross on every blocked cell: grey alone would say it by colour only
            rows, cols = np.nonzero(~allowed)
            fig.add_trace(go.Scatter(x=cols.tolist(), y=rows.tolist(), mode="markers", hoverinfo="skip",
                                     marker={"symbol": "x-thin", "size": 9, "line": {"width": 1.5,
                                                                                      "color": BLOCKED_MARK}},
                                     showlegend=False, name="blocked", visible=index == 0))
            owner.append(index)
        label = f"{title}: {name}" if title else name
        texts.append(weights_in_words(w, allowed, [html.unescape(q) for q in queries],
                                      [html.unescape(k) for k in keys], label=label))

    def title_of(name: str) -> str:
        note = _text((notes or {}).get(name, ""))
        head = _text(f"{title}: {name}" if title else name)
        return f"{head}<br><sup>{note}</sup>" if note else head

    choices = [
        {
            "label": _text(name),
            "method": "update",
            "args": [{"visible": [j == i for j in owner]}, {"title.text": title_of(name)}],
        }
        for i, name in enumerate(names)
    ]
    layout: dict[str, Any] = {
        "title": {"text": title_of(names[0]), "x": 0.01, "xanchor": "left", "font": {"size": 14}},
        "height": height or int(180 + max(30, min(48, 420 // n_q)) * n_q + (60 if control == "slider" else 0)),
        "margin": {"l": 80, "r": 20, "t": 110, "b": 60 if control != "slider" else 110},
        "plot_bgcolor": BLOCKED_COLOR,
        "paper_bgcolor": "white",
        "xaxis": {"tickvals": list(range(n_k)), "ticktext": keys, "title": {"text": "keys"}, "side": "bottom",
                  "showgrid": False, "zeroline": False, "constrain": "domain"},
        "yaxis": {"tickvals": list(range(n_q)), "ticktext": queries, "title": {"text": "queries"},
                  "autorange": "reversed", "showgrid": False, "zeroline": False, "scaleanchor": "x",
                  "constrain": "domain"},
    }
    if control == "slider":
        layout["sliders"] = [{"active": 0, "steps": choices, "currentvalue": {"prefix": "showing: "}, "pad": {"t": 40}}]
    else:
        layout["updatemenus"] = [{
            "type": control,
            "direction": "right" if control == "buttons" else "down",
            "buttons": choices,
            "active": 0,
            "showactive": True,
            "x": 0.0,
            "xanchor": "left",
            "y": 1.0,
            "yanchor": "bottom",
            "pad": {"b": 8},
        }]
    # the narrowest plot whose key labels do not overlap (about 14 px a column besides the margins and the
    # colour bar): on a phone a wider grid keeps this width and scrolls sideways in its box (course.interactive)
    layout["meta"] = {"min_width": layout["margin"]["l"] + layout["margin"]["r"] + 70 + 14 * n_k}
    fig.update_layout(template="plotly_white", **layout)
    return Interactive(fig, f"attention viewer: {len(names)} heatmaps of {n_q} x {n_k} weights ({control})",
                       texts=texts, control_label=control_label)


def weights_in_words(weights: np.ndarray, allowed: np.ndarray, queries: Sequence[str], keys: Sequence[str],
                     label: str = "") -> str:
    """One sentence that says what a heatmap of ``weights (n_q, n_k)`` shows: per query, its strongest key.

    Read out on the website in place of the picture (screen readers, and anyone who cannot hover).
    """
    n_q, n_k = weights.shape
    parts = []
    for i in range(n_q):
        if not allowed[i].any():
            parts.append(f"{queries[i]}: every key blocked")
            continue
        j = int(np.argmax(np.where(allowed[i], weights[i], -np.inf)))
        parts.append(f"{queries[i]} → {keys[j]} {weights[i, j]:.2f}")
    blocked = int((~allowed).sum())
    return (
        (f"{label}. " if label else "")
        + f"Heatmap of attention weights, {n_q} queries (rows) by {n_k} keys (columns), from 0 (white) to 1 "
        + "(dark blue)"
        + (f"; {blocked} blocked cell{'s' if blocked > 1 else ''} drawn grey with a cross" if blocked else "")
        + ". Strongest key of each query: " + "; ".join(parts) + "."
    )


def layer_head_weights(
    weights: Any, head_names: Sequence[str] | None = None, layer_names: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """``{"layer l, head h": (n_q, n_k)}`` from weights ``(n_heads, n_q, n_k)`` or ``(n_layers, n_heads, n_q, n_k)``.

    A batch axis must be indexed away first (e.g. ``weights[0]`` of ``(batch, n_heads, n_q, n_k)``).
    ``head_names`` (one per head) are appended, e.g. ``"head 0: previous token"``.
    """
    w = as_array(weights)
    if w.ndim == 3:
        w = w[None]
        layer_names = [""] if layer_names is None else layer_names
    if w.ndim != 4:
        raise ValueError(f"weights must be (n_heads, n_q, n_k) or (n_layers, n_heads, n_q, n_k), got shape {w.shape}")
    n_layers, n_heads = w.shape[:2]
    layer_names = list(layer_names) if layer_names is not None else [f"layer {i}" for i in range(n_layers)]
    if len(layer_names) != n_layers or (head_names is not None and len(head_names) != n_heads):
        raise ValueError(f"need {n_layers} layer names and {n_heads} head names for weights of shape {w.shape}")
    out = {}
    for layer in range(n_layers):
        for head in range(n_heads):
            name = f"head {head}" + (f": {head_names[head]}" if head_names is not None else "")
            out[f"{layer_names[layer]}, {name}" if layer_names[layer] else name] = w[layer, head]
    return out


def temperature_slider(
    temperatures: Sequence[float],
    weights: Sequence[Any],
    mixes: Sequence[Any],
    names: Sequence[str],
    colors: Sequence[Any],
    *,
    active: int = 0,
    title: str = "",
) -> Interactive:
    """Soft-lookup weights as bars and their mixed colour as a swatch, one slider step per temperature.

    Args:
        temperatures: ``(s,)`` the slider's steps.
        weights: ``s`` arrays ``(n,)``, the weights at each temperature.
        mixes: ``s`` RGB colours ``(3,)`` in [0, 1], the output ``w^T V`` at each temperature.
        names: ``n`` key names (the bars); colors: ``n`` RGB colours ``(3,)`` of the bars.
        active: the step shown first.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    w = np.asarray(weights, dtype=float)
    mix = np.clip(np.asarray(mixes, dtype=float), 0.0, 1.0)
    s = len(temperatures)
    if w.ndim != 2 or w.shape != (s, len(names)) or mix.shape != (s, 3) or len(colors) != len(names):
        raise ValueError(
            f"need {s} weight vectors of {len(names)} and {s} RGB mixes, one per temperature; got weights {w.shape},"
            f" mixes {mix.shape}, {len(colors)} colours"
        )
    if not 0 <= active < s:
        raise ValueError(f"active={active} is not a step (0..{s - 1})")

    def css(rgb: Any) -> str:
        r, g, b = (int(round(255 * float(c))) for c in np.clip(rgb, 0, 1))
        return f"rgb({r},{g},{b})"

    def mix_text(k: int) -> str:
        return f"output w<sup>T</sup>V = ({mix[k, 0]:.2f}, {mix[k, 1]:.2f}, {mix[k, 2]:.2f})"

    fig = make_subplots(rows=1, cols=2, column_widths=[0.72, 0.28], horizontal_spacing=0.08,
                        subplot_titles=("weights w", "mixed colour"))
    fig.add_trace(go.Bar(x=[_text(n) for n in names], y=w[active].tolist(), marker_color=[css(c) for c in colors],
                         text=[f"{v:.2f}" for v in w[active]], textposition="outside", cliponaxis=False,
                         hovertemplate="key %{x}: weight %{y:.3f}<extra></extra>", name="weights"), row=1, col=1)
    fig.add_trace(go.Bar(x=["output"], y=[1.0], marker_color=[css(mix[active])], width=[0.9],
                         customdata=[mix_text(active)], hovertemplate="%{customdata}<extra></extra>", name="mix"),
                  row=1, col=2)
    steps = [
        {
            "label": f"{T:g}",
            "method": "restyle",
            "args": [{"y": [w[k].tolist(), [1.0]], "text": [[f"{v:.2f}" for v in w[k]], None],
                      "marker.color": [[css(c) for c in colors], [css(mix[k])]],
                      "customdata": [None, [mix_text(k)]]}, [0, 1]],
        }
        for k, T in enumerate(temperatures)
    ]
    fig.update_layout(
        template="plotly_white",
        title={"text": _text(title), "x": 0.01, "xanchor": "left", "font": {"size": 14}},
        height=430,
        margin={"l": 50, "r": 20, "t": 70, "b": 40},
        showlegend=False,
        paper_bgcolor="white",
        plot_bgcolor="white",
        sliders=[{"active": active, "steps": steps, "currentvalue": {"prefix": "temperature T = "},
                  "pad": {"t": 45}, "len": 1.0}],
    )
    fig.update_yaxes(range=[0, 1.12], title_text="weight", gridcolor="#eeeeee", row=1, col=1)
    fig.update_yaxes(visible=False, range=[0, 1], row=1, col=2)
    fig.update_xaxes(showticklabels=False, row=1, col=2)
    texts = [
        (f"{_plain(title)}, temperature T = {T:g}. " if title else f"Temperature T = {T:g}. ")
        + "Bars of the weights: " + ", ".join(f"{n} {v:.2f}" for n, v in zip(names, w[k], strict=True))
        + f". Mixed colour: red {mix[k, 0]:.2f}, green {mix[k, 1]:.2f}, blue {mix[k, 2]:.2f}."
        for k, T in enumerate(temperatures)
    ]
    return Interactive(fig, f"temperature slider: {s} temperatures from {min(temperatures):g} to {max(temperatures):g}",
                       texts=texts, control_label="temperature T")
