"""Sphinx extension that keeps every page self-contained (listed in ``_config.yml``'s extra_extensions).

- Drops sphinx-thebe's assets from the pages. Jupyter Book always loads the sphinx-thebe extension;
  with ``launch_buttons.thebe: false`` its script is dead weight that names a CDN (unpkg) and, in the
  pinned versions, declares ``const THEBE_JS_URL`` twice per page, a JavaScript error in every console.
- Sets the theme's ``default_mode`` (an html_context value) to ``auto`` (light/dark from the reader's
  system): left empty, the theme logs "Got invalid theme mode" as a console error on a first visit.
- Warns (an error under ``-W``) when a page would still load a script or stylesheet from another host.
"""

from __future__ import annotations

from typing import Any

from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)


def _is_thebe(asset: Any) -> bool:
    name = getattr(asset, "filename", str(asset)) or ""
    body = (getattr(asset, "attributes", None) or {}).get("body", "") or ""
    return "sphinx-thebe" in name or "THEBE_JS_URL" in body


def _is_remote(asset: Any) -> bool:
    name = getattr(asset, "filename", str(asset)) or ""
    return "://" in name or name.startswith("//")


def _fix_page_context(app: Sphinx, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    context["default_mode"] = context.get("default_mode") or "auto"
    for key in ("script_files", "css_files"):
        if key not in context:
            continue
        kept = [asset for asset in context[key] if not _is_thebe(asset)]
        for asset in kept:
            if _is_remote(asset):
                logger.warning(f"page {pagename} would load {asset.filename} from another host at load time")
        context[key] = kept


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("html-page-context", _fix_page_context, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
