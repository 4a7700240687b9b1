"""Interactive figures on the static website: a plotly figure as a notebook output that needs no kernel.

A reading page ends a cell with ``interactive.show(fig)`` (``fig`` a ``plotly.graph_objects.Figure``;
``course.iplots`` builds the course's figures). What the output is depends on where the notebook runs:

- **while the website is built** (``course.sphinx_offline`` sets ``COURSE_SITE_BUILD=1`` before any
  page executes): an HTML output, a ``<div class="course-plotly">`` and a short script that draws the
  figure with ``Plotly.newPlot``. The figure's data, frames and controls (sliders, buttons, menus) are
  all inside the page, so moving a control needs no kernel. plotly.js itself is served by the site:
  ``course.sphinx_offline`` copies ``plotly.min.js`` from the plotly wheel to ``_static/plotly/`` and
  adds it, deferred, to the pages that hold such a figure (Sphinx writes the relative URL for every
  page depth). No CDN, no require.js, nothing from another host.
- **anywhere else** (Jupyter, Colab, VS Code): plotly's own output for that front end
  (``fig._repr_mimebundle_``), so the figure is interactive there too.

Why not plotly's default outputs on the site: myst-nb ignores ``application/vnd.plotly.v1+json``
(an unknown MIME type to it) and keeps ``text/html``, which plotly writes either with the 4.8 MB
plotly.js inlined into every output (``notebook``) or with a ``<script>`` that loads plotly.js from a
CDN through require.js (``notebook_connected``, the default in a kernel).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from pathlib import Path
from typing import Any

SITE_ENV = "COURSE_SITE_BUILD"
#: Where the site serves plotly.js, relative to ``_static/``.
PLOTLY_STATIC_PATH = "plotly/plotly.min.js"
#: The CSS class of every figure's ``<div>``: pages holding it get plotly.js.
FIGURE_CLASS = "course-plotly"
#: plotly's options for every figure: no link to plotly's website, resizes with the page.
CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["select2d", "lasso2d"]}

_counter = itertools.count()

_DRAW_JS = """(function () {
  var id = %(id)s, spec = %(spec)s;
  function draw() {
    var div = document.getElementById(id);
    if (!window.Plotly) {
      div.textContent = "This interactive figure needs plotly.js, which the site serves as "
        + "_static/%(path)s; it did not load.";
      console.error("course.interactive: plotly.js did not load, figure " + id + " is not drawn");
      return;
    }
    Plotly.newPlot(div, spec.data, spec.layout, spec.config).then(function () {
      if (spec.frames && spec.frames.length) { return Plotly.addFrames(div, spec.frames); }
    }).then(function () { div.setAttribute("data-drawn", "true"); });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", draw); } else { draw(); }
})();"""


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


def figure_html(fig: Any, div_id: str | None = None) -> str:
    """The site's HTML for ``fig``: a ``<div class="course-plotly">`` and the script that draws it."""
    import plotly.io as pio

    spec = json.loads(pio.to_json(fig, validate=True))
    spec["config"] = {**CONFIG, **spec.get("config", {})}
    text = json.dumps(spec, separators=(",", ":"), sort_keys=True)
    if div_id is None:
        digest = hashlib.sha1(text.encode()).hexdigest()[:10]
        div_id = f"{FIGURE_CLASS}-{digest}-{next(_counter)}"
    height = int(spec.get("layout", {}).get("height") or 450)
    script = _DRAW_JS % {"id": json.dumps(div_id), "spec": text.replace("</", "<\\/"), "path": PLOTLY_STATIC_PATH}
    return (
        f'<div class="{FIGURE_CLASS}" id="{div_id}" style="width:100%;height:{height}px"></div>\n'
        f"<script>\n{script}\n</script>"
    )


class Interactive:
    """A displayable plotly figure: the site's HTML while the book is built, plotly's own output elsewhere.

    ``figure`` is the ``plotly.graph_objects.Figure`` (tests and pages may read its data).
    """

    def __init__(self, figure: Any, description: str = "") -> None:
        self.figure = figure
        self.description = description or "an interactive plotly figure"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        if on_site():
            return {"text/html": figure_html(self.figure), "text/plain": f"<{self.description}>"}
        bundle = self.figure._repr_mimebundle_(include, exclude)
        return bundle or {"text/html": self.figure.to_html(include_plotlyjs=True, full_html=False)}

    def __repr__(self) -> str:
        return f"<Interactive: {self.description}>"


def show(figure: Any, description: str = "") -> Interactive:
    """Wrap a plotly figure for display; end a notebook cell with it."""
    if isinstance(figure, Interactive):
        return figure
    return Interactive(figure, description)
