"""Interactive figures on the static website: a plotly figure as a notebook output that needs no kernel.

A reading page ends a cell with ``interactive.show(fig)`` (``fig`` a ``plotly.graph_objects.Figure``;
``course.iplots`` builds the course's figures). What the output is depends on where the notebook runs:

- **while the website is built** (``course.sphinx_offline`` sets ``COURSE_SITE_BUILD=1`` before any
  page executes): an HTML ``<figure class="course-interactive">`` holding the title (HTML, so it wraps
  on a phone), a native labelled control in place of plotly's own slider or menu (``<input
  type="range">``, ``<select>`` or radio buttons: keyboard, touch and screen readers work as with any
  form), the plot ``<div class="course-plotly" role="img">`` described by a sentence per state that is
  read out when the control moves, and the figure as JSON. ``_static/course.js`` (every page) draws it
  with ``Plotly.newPlot`` and makes each state's plotly call (the one plotly's control would have made).
  Every state is precomputed in the page, so moving a control needs no kernel. plotly.js itself is
  served by the site: ``course.sphinx_offline`` copies ``plotly.min.js`` from the plotly wheel to
  ``_static/plotly/`` and adds it, deferred, to the pages that hold such a figure (Sphinx writes the
  relative URL for every page depth). No CDN, no require.js, nothing from another host; on the site
  the figure has no toolbar and no drag-to-zoom (a finger scrolling the page must not zoom it).
- **anywhere else** (Jupyter, Colab, VS Code): plotly's own output for that front end
  (``fig._repr_mimebundle_``), so the figure is interactive there too.

Why not plotly's default outputs on the site: myst-nb ignores ``application/vnd.plotly.v1+json``
(an unknown MIME type to it) and keeps ``text/html``, which plotly writes either with the 4.8 MB
plotly.js inlined into every output (``notebook``) or with a ``<script>`` that loads plotly.js from a
CDN through require.js (``notebook_connected``, the default in a kernel).
"""

from __future__ import annotations

import hashlib
import html
import itertools
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

SITE_ENV = "COURSE_SITE_BUILD"
#: Where the site serves plotly.js, relative to ``_static/``.
PLOTLY_STATIC_PATH = "plotly/plotly.min.js"
#: The CSS class of every figure's plot ``<div>``: pages holding it get plotly.js.
FIGURE_CLASS = "course-plotly"
#: plotly's options for every figure: no link to plotly's website, resizes with the page.
CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["select2d", "lasso2d"]}
#: On the site the figure is not a zoom/pan canvas: no toolbar (its buttons cannot take the keyboard, and it
#: covered titles on a phone), no drag (a finger scrolling the page must not zoom the figure). Hover stays.
SITE_CONFIG = {**CONFIG, "displayModeBar": False, "scrollZoom": False, "doubleClick": False}
#: Top margin left on the site once the title (now HTML above the plot) and the menus are out of the figure:
#: room for a colour bar's title or subplot titles.
SITE_MARGIN_TOP = 36
#: About the height a plotly slider took below the plot (its rail, ticks and labels).
SLIDER_HEIGHT = 80
#: At most this many step labels under a slider (a phone's width holds about that many).
MAX_TICK_LABELS = 7
_TAG = re.compile(r"<[^>]+>")

_counter = itertools.count()


def plotly_js() -> Path:
    """``plotly.min.js`` inside the installed plotly wheel (what the site serves)."""
    import plotly

    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise FileNotFoundError(f"plotly.min.js not found at {path}: is the plotly package installed completely?")
    return path


def on_site() -> bool:
    """True while ``jupyter-book`` builds the website (the course's Sphinx extension says so)."""
    return os.environ.get(SITE_ENV) == "1"


def plain_text(plotly_text: str) -> list[str]:
    """plotly's label markup (``a<br><sup>b</sup>``, ``&lt;s&gt;``) as the plain lines a page shows."""
    lines = re.split(r"<br\s*/?>", plotly_text or "", flags=re.I)
    return [t for t in (html.unescape(_TAG.sub("", line)).strip() for line in lines) if t]


def _title_lines(layout_update: dict[str, Any] | None) -> list[str] | None:
    """The title lines a control's ``update``/``relayout`` arguments set (``None``: the title stays)."""
    if not layout_update:
        return None
    if "title.text" in layout_update:
        return plain_text(layout_update.pop("title.text"))
    title = layout_update.get("title")
    if isinstance(title, dict) and "text" in title:
        return plain_text(title.pop("text"))
    if isinstance(title, str):
        layout_update.pop("title")
        return plain_text(title)
    return None


def site_states(spec: dict[str, Any], texts: Sequence[str] | None = None) -> tuple[str | None, dict[str, Any] | None]:
    """Hide plotly's own control in ``spec`` (edited in place) and describe it as ``(kind, control)``.

    ``kind`` is ``"range"`` (a plotly slider), ``"select"`` (a dropdown menu) or ``"radio"`` (a row of
    buttons), or None when the figure has no control. plotly's slider or menu stays in the layout, hidden
    (``visible: false``): each step or button keeps the plotly call it makes (``method``, ``args``), which
    the native control makes for it, less the title (HTML on the site). ``control["states"]`` lists, per
    step or button, its ``label``, the ``title`` lines it shows (or None) and the sentence that says what
    the figure shows then (``texts``).
    """
    layout = spec.setdefault("layout", {})
    sliders, menus = layout.get("sliders") or [], layout.get("updatemenus") or []
    if len(sliders) + len(menus) > 1:
        raise ValueError("course.interactive draws one control per figure on the site; this one has "
                         f"{len(sliders)} sliders and {len(menus)} menus")
    if not sliders and not menus:
        return None, None
    if sliders:
        kind, source, items = "range", sliders[0], sliders[0].setdefault("steps", [])
    else:
        kind = "select" if menus[0].get("type", "dropdown") == "dropdown" else "radio"
        source, items = menus[0], menus[0].setdefault("buttons", [])
    source["visible"] = False
    if texts is not None and len(texts) != len(items):
        raise ValueError(f"{len(texts)} state texts for a control of {len(items)} states")
    states = []
    for k, item in enumerate(items):
        method, args = item.get("method", "restyle"), item.get("args") or []
        update = args[1] if method == "update" and len(args) > 1 else args[0] if method == "relayout" and args else None
        states.append({"label": " ".join(plain_text(str(item.get("label", k)))), "title": _title_lines(update),
                       "text": texts[k] if texts else ""})
    prefix = " ".join(plain_text((source.get("currentvalue") or {}).get("prefix", ""))).rstrip(" =:")
    return kind, {"active": int(source.get("active") or 0), "states": states, "prefix": prefix}


def _control_html(div_id: str, kind: str, control: dict[str, Any], label: str) -> str:
    """A native, labelled HTML control for the figure (keyboard, touch and screen readers work as for any form)."""
    esc = html.escape
    states, active = control["states"], control["active"]
    name = esc(label)
    if kind == "select":
        options = "".join(f'<option value="{k}"{" selected" if k == active else ""}>{esc(s["label"])}</option>'
                          for k, s in enumerate(states))
        return (f'<div class="course-control"><label for="{div_id}-control">{name}</label> '
                f'<select id="{div_id}-control" data-course-control="select">{options}</select></div>')
    if kind == "radio":
        buttons = "".join(
            f'<input type="radio" class="course-radio" name="{div_id}-control" id="{div_id}-control-{k}" value="{k}"'
            f'{" checked" if k == active else ""} data-course-control="radio">'
            f'<label for="{div_id}-control-{k}">{esc(s["label"])}</label>'
            for k, s in enumerate(states)
        )
        return f'<fieldset class="course-control course-radios"><legend>{name}</legend>{buttons}</fieldset>'
    last = len(states) - 1
    shown_steps = sorted({round(i * last / (MAX_TICK_LABELS - 1)) for i in range(MAX_TICK_LABELS)}) if last else [0]
    ticks = "".join(  # the first, the last and evenly spaced steps between: the row must fit a phone
        f'<span class="course-tick{" course-tick-first" if k == 0 else " course-tick-last" if k == last else ""}"'
        f' style="--at: {k / max(last, 1):.4f}">{esc(states[k]["label"])}</span>'
        for k in shown_steps
    )
    shown = esc(states[active]["label"])
    return (
        f'<div class="course-control course-range"><label for="{div_id}-control">{name}</label> '
        f'<output id="{div_id}-value" for="{div_id}-control">{shown}</output>'
        f'<input type="range" id="{div_id}-control" min="0" max="{len(states) - 1}" step="1" value="{active}" '
        f'aria-valuetext="{shown}" data-course-control="range">'
        f'<div class="course-range-ticks" aria-hidden="true">{ticks}</div></div>'
    )


def _title_html(lines: list[str]) -> str:
    main, note = (lines[0] if lines else ""), " ".join(lines[1:])
    return (f'<span class="course-figure-main">{html.escape(main)}</span>'
            f'<span class="course-figure-note">{html.escape(note)}</span>')


def _site_layout(layout: dict[str, Any], had_slider: bool) -> None:
    """The layout on the site (edited in place): no title in the plot, no drag, less room above and below."""
    margin = layout.setdefault("margin", {})
    top = int(margin.get("t", 100))
    shrink = max(0, top - SITE_MARGIN_TOP) + (SLIDER_HEIGHT if had_slider else 0)
    margin["t"] = min(top, SITE_MARGIN_TOP)
    # The height goes to the <div> (course.css caps it on a phone) and plotly sizes the plot to the <div>.
    layout["height"] = max(200, int(layout.get("height") or 450) - shrink)
    layout["autosize"] = True
    layout["title"] = {**(layout.get("title") or {}), "text": ""}
    layout["dragmode"] = False
    for key, axis in layout.items():
        if re.fullmatch(r"[xy]axis\d*", key) and isinstance(axis, dict):
            axis["fixedrange"] = True


def figure_html(fig: Any, div_id: str | None = None, *, texts: Sequence[str] | None = None,
                control_label: str = "show") -> str:
    """The site's HTML for ``fig``: a ``<figure>`` with the title, a native control, the plot and its text.

    plotly's own slider or menu is replaced by a labelled HTML control (``<select>``, radio buttons or
    ``<input type="range">``) that makes the same plotly call for each state; the title is HTML above the
    plot (it wraps on a phone); ``texts[k]`` says in words what state ``k`` shows (the plot's accessible
    description, announced when the control moves). ``_static/course.js`` draws the figure from the JSON
    it carries and wires the control.
    """
    import plotly.io as pio

    spec = json.loads(pio.to_json(fig, validate=True))
    kind, control = site_states(spec, texts)
    layout = spec["layout"]
    title = plain_text(((layout.get("title") or {}).get("text")) or "")
    if control is not None:
        title = control["states"][control["active"]]["title"] or title
    _site_layout(layout, kind == "range")
    height = layout.pop("height")
    meta = layout.pop("meta", None)
    min_width = meta.get("min_width") if isinstance(meta, dict) else None
    spec["config"] = {**SITE_CONFIG, **spec.get("config", {})}
    spec["states"] = control["states"] if control else []
    text = json.dumps(spec, separators=(",", ":"), sort_keys=True)
    if div_id is None:
        digest = hashlib.sha1(text.encode()).hexdigest()[:10]
        div_id = f"{FIGURE_CLASS}-{digest}-{next(_counter)}"
    first_text = (control["states"][control["active"]]["text"] if control else (texts or [""])[0]) or " ".join(title)
    script = text.replace("</", "<\\/")  # no "</script>" inside the data
    controls = _control_html(div_id, kind, control, control_label or control["prefix"]) if control else ""
    # a plot that needs min_width to stay legible keeps it, and scrolls sideways in its box on a phone
    # (and no taller than that width allows a square grid, as course.css caps a plot by the screen's width)
    style = f"width:100%;height:{height}px"
    if min_width:
        style += f";min-width:{int(min_width)}px;max-height:max(calc(100vw + 40px), {int(min_width) + 40}px)"
    plot = (f'<div class="{FIGURE_CLASS}" id="{div_id}" role="img" aria-labelledby="{div_id}-text" '
            f'style="{style}"></div>')
    if min_width:
        plot = f'<div class="course-plot-box">{plot}</div>'
    return (
        f'<figure class="course-interactive" data-plotly-path="{PLOTLY_STATIC_PATH}">'
        f'<figcaption class="course-figure-title" id="{div_id}-title">{_title_html(title)}</figcaption>'
        + (plot + controls if kind == "range" else controls + plot)
        + f'<p class="course-figure-text visually-hidden" id="{div_id}-text" aria-live="polite">'
        f"{html.escape(first_text)}</p>"
        f'<script type="application/json" class="course-figure-spec">{script}</script>'
        "</figure>"
    )


class Interactive:
    """A displayable plotly figure: the site's HTML while the book is built, plotly's own output elsewhere.

    ``figure`` is the ``plotly.graph_objects.Figure`` (tests and pages may read its data). ``texts`` says in
    words what each state of its control shows (one sentence per slider step or menu entry; one in all for
    a figure without a control): on the site it is the plot's accessible description, read out when the
    control moves. ``control_label`` names the control (its ``<label>``).
    """

    def __init__(self, figure: Any, description: str = "", *, texts: Sequence[str] | None = None,
                 control_label: str = "show") -> None:
        self.figure = figure
        self.description = description or "an interactive plotly figure"
        self.texts = list(texts) if texts is not None else None
        self.control_label = control_label

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        if on_site():
            page = figure_html(self.figure, texts=self.texts, control_label=self.control_label)
            return {"text/html": page, "text/plain": f"<{self.description}>"}
        bundle = self.figure._repr_mimebundle_(include, exclude)
        return bundle or {"text/html": self.figure.to_html(include_plotlyjs=True, full_html=False)}

    def __repr__(self) -> str:
        return f"<Interactive: {self.description}>"


def show(figure: Any, description: str = "", *, texts: Sequence[str] | None = None,
         control_label: str = "show") -> Interactive:
    """Wrap a plotly figure for display; end a notebook cell with it."""
    if isinstance(figure, Interactive):
        return figure
    return Interactive(figure, description, texts=texts, control_label=control_label)
