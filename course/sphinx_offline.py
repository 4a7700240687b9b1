"""Sphinx extension that makes ``jupyter-book build .`` give the whole, self-contained site (listed in
``_config.yml``'s extra_extensions).

At the start of a build (``builder-inited``):
- copies MathJax and plotly.js from their pinned wheels into ``<build>/.course-static`` and adds it to
  ``html_static_path`` (``course.site.stage_assets``), so every build serves them from ``_static/``, with
  the site's own ``course.css`` and ``course.js`` (``course/static/``, on every page);
- stops with a clear error when a reading page's ``.ipynb`` twin is stale (its ``.md`` was edited and
  ``python -m course.notebooks sync`` not run), so the site never shows older text than its sources;
- ``setup`` sets ``COURSE_SITE_BUILD=1``, which the notebooks executed by the build inherit:
  ``course.interactive`` then writes figures as HTML that draws with the site's own plotly.js.

On every page (``html-page-context``):
- adds ``_static/plotly/plotly.min.js`` (deferred) to pages that hold an interactive figure, only those;
- repairs what an accessibility audit finds in the theme's HTML (``course/accessible.py``): the sidebar's
  expand/collapse toggles get names, the bibliography's entries proper list roles;
- drops sphinx-thebe's assets. Jupyter Book always loads the sphinx-thebe extension; with
  ``launch_buttons.thebe: false`` its script is dead weight that names a CDN (unpkg) and, in the pinned
  versions, declares ``const THEBE_JS_URL`` twice per page, a JavaScript error in every console;
- sets the theme's ``default_mode`` (an html_context value) to ``auto`` (light/dark from the reader's
  system): left empty, the theme logs "Got invalid theme mode" as a console error on a first visit;
- warns (an error under ``-W``) when a page would still load a script or stylesheet from another host,
  in its head or in a notebook output (e.g. plotly's own ``notebook_connected`` output).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.errors import ExtensionError
from sphinx.util import logging

from course import accessible, interactive, site

logger = logging.getLogger(__name__)
STAGE_DIR = ".course-static"
#: The site's own style sheet and script (``course/static/``), served from ``_static/`` on every page:
#: wide formulas and figures scroll in their box on a phone, visible keyboard focus, interactive figures
#: drawn with native controls (``course/interactive.py``).
STATIC = Path(__file__).resolve().parent / "static"
CSS_FILE = "course.css"
JS_FILE = "course.js"
_SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script>", re.S | re.I)
_REMOTE_SRC = re.compile(r"""\bsrc\s*=\s*["']?(?:https?:)?//""", re.I)
_REMOTE_IN_CODE = re.compile(r"""require\.config|["'](?:https?:)?//[^"']+\.js["']""", re.I)


def _is_thebe(asset: Any) -> bool:
    name = getattr(asset, "filename", str(asset)) or ""
    body = (getattr(asset, "attributes", None) or {}).get("body", "") or ""
    return "sphinx-thebe" in name or "THEBE_JS_URL" in body


def _is_remote(asset: Any) -> bool:
    name = getattr(asset, "filename", str(asset)) or ""
    return "://" in name or name.startswith("//")


def remote_scripts_in(body: str) -> list[str]:
    """The ``<script>`` tags of a page body that would load code from another host (shortened)."""
    found = []
    for attrs, code in _SCRIPT.findall(body):
        if _REMOTE_SRC.search(attrs) or _REMOTE_IN_CODE.search(code):
            found.append(f"<script{attrs}>{code[:80]}")
    return found


def _stage_assets(app: Sphinx) -> None:
    if app.builder.format != "html":
        return
    stage = Path(app.outdir).parent / STAGE_DIR
    try:
        site.stage_assets(stage)
    except FileNotFoundError as err:
        raise ExtensionError(f"the site cannot serve its own MathJax/plotly.js: {err}") from err
    for name in (CSS_FILE, JS_FILE):
        own, served = STATIC / name, stage / name
        if not served.exists() or served.read_bytes() != own.read_bytes():
            served.write_bytes(own.read_bytes())
    if str(stage) not in app.config.html_static_path:
        app.config.html_static_path.append(str(stage))


def _check_twins(app: Sphinx) -> None:
    from course import notebooks

    srcdir = Path(app.srcdir)
    if not (srcdir / "book").is_dir() or not (srcdir / "_config.yml").is_file():
        return
    stale = notebooks.stale(srcdir / "book", notebooks.read_config(srcdir / "_config.yml"))
    if stale:
        names = ", ".join(p.name for p in stale)
        raise ExtensionError(
            f"reading notebooks out of date with their .md sources: {names}. The book is built from the .ipynb "
            "twins: run `python -m course.notebooks sync` (or `bash scripts/build.sh`, which does) and build again."
        )


def _builder_inited(app: Sphinx) -> None:
    _check_twins(app)
    _stage_assets(app)


def _fix_page_context(app: Sphinx, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    context["default_mode"] = context.get("default_mode") or "auto"
    if callable(context.get("generate_toctree_html")):  # the theme's sidebar: toggles named (course/accessible.py)
        context["generate_toctree_html"] = _named_toggles(context["generate_toctree_html"])
    if context.get("body"):
        context["body"] = accessible.fix_citation_roles(context["body"])
    body = context.get("body", "") or ""
    if app is not None and f'class="{interactive.FIGURE_CLASS}"' in body:
        app.add_js_file(interactive.PLOTLY_STATIC_PATH, defer="defer")  # this page only (Sphinx >= 3.5)
        if not any((getattr(a, "filename", "") or "").endswith(interactive.PLOTLY_STATIC_PATH)
                   for a in context.get("script_files", [])):
            logger.warning(f"page {pagename} has an interactive figure but plotly.js could not be added to it")
    for script in remote_scripts_in(body):
        logger.warning(f"page {pagename} has a script that loads from another host: {script}")
    for key in ("script_files", "css_files"):
        if key not in context:
            continue
        kept = [asset for asset in context[key] if not _is_thebe(asset)]
        for asset in kept:
            if _is_remote(asset):
                logger.warning(f"page {pagename} would load {asset.filename} from another host at load time")
        context[key] = kept


def _named_toggles(generate: Any) -> Any:
    """The theme's ``generate_toctree_html`` (a BeautifulSoup for the sidebar, a string elsewhere), its
    chevron-only toggles named."""
    from markupsafe import Markup

    def generate_named(*args: Any, **kwargs: Any) -> Any:
        nav = generate(*args, **kwargs)
        return Markup(accessible.name_nav_toggles(str(nav))) if nav else nav

    return generate_named


def setup(app: Sphinx) -> dict[str, Any]:
    os.environ[interactive.SITE_ENV] = "1"  # read by course.interactive in the notebooks this build executes
    app.connect("builder-inited", _builder_inited)
    app.connect("html-page-context", _fix_page_context, priority=900)
    app.add_css_file(CSS_FILE)
    app.add_js_file(JS_FILE, defer="defer")
    return {"parallel_read_safe": True, "parallel_write_safe": True}
