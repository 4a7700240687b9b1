"""Whatever a student controls, made safe to render before anyone opens it.

A submission reaches three renderers: nbgrader's formgrader (nbconvert's HTML of the autograded notebook,
served by the instructor's JupyterLab, where a script would act with the instructor's session: write
``nbgrader_config.py`` through the contents API, open a terminal), the feedback page, and JupyterLab.
nbconvert's templates put HTML outputs, the raw HTML of markdown, ``javascript:`` links and some
metadata into the page as they are. :class:`SanitizeNotebook` rewrites the notebook so that nothing in
it can run a script, submit a form or load anything: stock ``nbgrader autograde`` runs it after the
cells ran, and every HTML page nbgrader makes of a notebook (the formgrader's view of a submission,
``generate_feedback``'s page) runs it again first, where it also escapes the display names the formgrader
prints (``grader/nbgrader_config.py``). The notebook's cells, outputs and grades are otherwise untouched.

- ``text/html``: kept through an allowlist sanitiser, `nh3 <https://nh3.readthedocs.io>`_ (the Rust
  ``ammonia`` library, which parses HTML as a browser does): text formatting, lists, tables (pandas'
  ``class="dataframe"`` and ``border``, inline styles limited to properties that cannot load anything),
  links to ``http(s):``, ``mailto:`` or relative addresses, images whose source is a ``data:image``.
  Scripts, ``<style>``, event handlers, forms, frames, ``<object>``/``<embed>``, SVG and MathML islands,
  ``id``/``name`` attributes (which could clobber the formgrader's own elements) and any remote source
  are removed. An HTML output that had a script or a remote source (a plotly figure, say) is
  replaced by its ``text/plain`` form when it has one: without them it would show nothing.
- ``image/svg+xml``: *converted*, not sanitised: it becomes ``<img src="data:image/svg+xml;base64,...">``
  (``text/html``). A browser runs no script and loads nothing for an SVG shown as an image (its
  secure mode), which holds for every trick SVG has (``<script>``, ``on*``, ``<animate>``/``<set>``
  writing an ``href``, ``<foreignObject>``, ``<use>``/``<image>``/``<feImage>``/CSS loading URLs), where an
  allowlist of SVG's elements and namespaced attributes would have to know them all; and the figure
  looks the same.
- ``image/png``, ``jpeg``, ``gif``: kept when their data is base64; their metadata keeps numbers only
  (nbconvert writes ``width={{ width }}`` unquoted).
- ``text/markdown`` outputs and markdown cells: left as they are when their rendering (nbconvert's
  own markdown parser) has no raw HTML, no mermaid block, only ``http(s)``/``mailto``/relative links and only
  images from their attachments or ``data:``; otherwise replaced by their sanitised rendering, one
  HTML block (formulas stay ``$...$`` text). Attachments keep base64 images only.
- raw cells that nbconvert would paste into the page (no ``raw_mimetype``, ``text/html`` or
  ``text/markdown``) are sanitised like ``text/html``; others (LaTeX for a PDF, say) stay as they are.
- TeX commands with which MathJax makes links, styles or loads (``\\href``, ``\\url``, ``\\style``,
  ``\\class``, ``\\cssId``, ``\\require``, ...) are made plain text in every string MathJax typesets.
- Other outputs (JavaScript, widgets, unknown types) are dropped, with a ``text/plain`` note; cell and
  notebook metadata keep what nbgrader and the templates need, with strings that cannot break out of
  an attribute; a cell id that is not nbformat's pattern is replaced.

:func:`clean_mathml` does the same for the MathML that ``grader/feedback.py`` makes from the
student's formulas (``latex2mathml`` copies ``\\text{...}`` verbatim).
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import re
import uuid
from typing import Any

import nh3
from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath
from nbconvert.preprocessors import Preprocessor
from traitlets import Bool

from grader.engine.verdict import META as VERDICT
from grader.normalize import NOTE_KEY

HTML_TAGS = {
    "a", "abbr", "b", "bdi", "bdo", "blockquote", "br", "caption", "center", "cite", "code", "col", "colgroup",
    "dd", "del", "details", "dfn", "div", "dl", "dt", "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5",
    "h6", "hr", "i", "img", "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "samp", "small", "span",
    "strike", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "tt", "u",
    "ul", "var", "wbr",
}
#: Tags removed with their content (the rest of a removed tag's text stays, as text).
DROPPED_WITH_CONTENT = {"script", "style", "template", "noscript", "svg", "math", "iframe", "object", "textarea",
                        "select", "title"}
_CELL = {"align", "valign", "colspan", "rowspan", "headers", "scope"}
HTML_ATTRIBUTES = {
    "*": {"title", "lang", "dir", "style"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "table": {"border", "cellpadding", "cellspacing", "align", "summary"},
    "td": _CELL, "th": _CELL, "tr": {"align", "valign"}, "thead": {"align", "valign"}, "tbody": {"align", "valign"},
    "tfoot": {"align", "valign"}, "col": {"span", "align", "width"}, "colgroup": {"span", "align", "width"},
    "ol": {"start", "type", "reversed"}, "ul": {"type"}, "li": {"value"}, "details": {"open"},
    "blockquote": {"cite"}, "q": {"cite"}, "del": {"cite", "datetime"}, "ins": {"cite", "datetime"},
    "hr": {"width", "size", "align"},
}
#: CSS properties kept in ``style`` attributes: none of them can load a URL or move an element out of
#: its output (no ``background``, ``position``, ``transform``, ``content``, ``cursor``, ``list-style``...).
STYLE_PROPERTIES = {
    "color", "background-color", "text-align", "vertical-align", "font-weight", "font-style", "font-size",
    "font-family", "font-variant", "text-decoration", "text-transform", "white-space", "word-break",
    "line-height", "letter-spacing", "padding", "padding-top", "padding-right", "padding-bottom", "padding-left",
    "margin", "margin-top", "margin-right", "margin-bottom", "margin-left", "border", "border-top", "border-right",
    "border-bottom", "border-left", "border-color", "border-style", "border-width", "border-collapse",
    "border-spacing", "width", "height", "min-width", "max-width", "min-height", "max-height", "text-indent",
}
#: Classes kept: those of pandas' tables (nothing of the formgrader's own classes, e.g. ``navbar-fixed-top``).
ALLOWED_CLASSES = {"table": {"dataframe"}}
MATHML_TAGS = {
    "math", "mrow", "mi", "mn", "mo", "ms", "mtext", "mspace", "msup", "msub", "msubsup", "mfrac", "msqrt", "mroot",
    "mover", "munder", "munderover", "mtable", "mtr", "mtd", "mstyle", "mpadded", "mphantom", "menclose",
    "merror", "mmultiscripts", "mprescripts", "none", "semantics", "annotation",
}
MATHML_ATTRIBUTES = {
    "math": {"display"}, "mi": {"mathvariant"}, "mn": {"mathvariant"}, "mtext": {"mathvariant"},
    "mo": {"stretchy", "fence", "separator", "lspace", "rspace", "form", "largeop", "movablelimits", "symmetric",
           "minsize", "maxsize", "accent", "mathvariant"},
    "mstyle": {"mathcolor", "mathbackground", "displaystyle", "scriptlevel", "mathsize", "mathvariant"},
    "mfrac": {"linethickness"}, "mspace": {"width", "height", "depth", "linebreak"},
    "mtable": {"columnalign", "rowspacing", "columnspacing", "displaystyle", "columnlines", "rowlines"},
    "mtd": {"columnalign", "columnspan", "rowspan"}, "mover": {"accent"}, "munder": {"accentunder"},
    "munderover": {"accent", "accentunder"}, "menclose": {"notation"}, "mpadded": {"width", "height", "depth",
                                                                                      "lspace", "voffset"},
    "annotation": {"encoding"},
}

DATA_IMAGE = re.compile(r"data:image/(?:png|jpeg|gif|webp|svg\+xml);base64,[A-Za-z0-9+/=\s]*\Z", re.I)
SCHEME = re.compile(r"[a-zA-Z][a-zA-Z0-9+.\-]*:")
NUMBER = re.compile(r"\s*\d{1,5}(?:\.\d{1,4})?\s*(?:px|%)?\s*\Z")
UNSAFE_CSS = re.compile(r"url\s*\(|image|expression|@import|\\|javascript:", re.I)
BASE64 = re.compile(r"[A-Za-z0-9+/=\s]*\Z")
#: TeX commands with which MathJax makes a link, a style, a CSS class or id, or loads an extension.
TEX_ACTIONS = re.compile(r"\\(href|url|style|class|cssId|require|unicode|bbox|data|html|mmlToken)(?![A-Za-z])")
BLANK_LINES = re.compile(r"\n(?:[ \t]*\n)+")
CELL_ID = re.compile(r"[a-zA-Z0-9\-_]{1,64}\Z")
PLAIN_WORD = re.compile(r"[\w .+\-/=:]{0,200}\Z")
RASTER = ("image/png", "image/jpeg", "image/gif")
#: Output metadata kept per MIME type (the rest, e.g. nbconvert's ``filenames`` or ``isolated``, dropped).
IMAGE_METADATA_NUMBERS = ("width", "height")
REMOVED_NOTE = "(an output that could run a script or load content was removed by the grader)"


def _url(value: str) -> str:
    """A URL as a browser reads it: without tabs and newlines, and without leading or trailing controls."""
    return re.sub(r"[\t\n\r]", "", value).strip("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e\x0f\x10\x11"
                                                "\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f ")


def safe_link(url: str) -> bool:
    """``http(s):``, ``mailto:`` or a relative address (never ``javascript:``, ``data:``, ``file:``...)."""
    url = _url(url)
    scheme = SCHEME.match(url)
    return scheme is None or scheme.group(0).lower() in ("http:", "https:", "mailto:")


def _attribute(tag: str, name: str, value: str) -> str | None:
    """nh3's attribute filter: ``value`` (already entity-decoded) kept, or ``None`` to drop the attribute."""
    if name == "src":
        return value if DATA_IMAGE.match(_url(value)) else None
    if name in ("href", "cite"):
        return value if safe_link(value) else None
    if name == "style":
        return None if UNSAFE_CSS.search(value) else value
    if name in ("width", "height") and tag != "mspace":
        return value if NUMBER.match(value) else None
    return value


HTML_CLEANER = nh3.Cleaner(
    tags=HTML_TAGS, clean_content_tags=DROPPED_WITH_CONTENT, attributes=HTML_ATTRIBUTES,
    attribute_filter=_attribute, url_schemes={"http", "https", "mailto", "data"},
    filter_style_properties=STYLE_PROPERTIES, allowed_classes=ALLOWED_CLASSES, link_rel="noopener noreferrer",
    strip_comments=True,
)
MATHML_CLEANER = nh3.Cleaner(
    tags=MATHML_TAGS, clean_content_tags={"script", "style", "template", "noscript", "svg", "iframe", "object",
                                          "textarea", "select", "title"},
    attributes=MATHML_ATTRIBUTES, attribute_filter=_attribute, url_schemes=set(), link_rel=None,
    strip_comments=True,
)


def neutralise_tex(text: str) -> str:
    r"""``text`` with MathJax's acting commands (``\href``, ``\style``, ...) turned into plain ``\text``."""
    return TEX_ACTIONS.sub(r"\\text{\1}", text)


def clean_html(fragment: str) -> str:
    """An HTML fragment through the allowlist (see the module's docstring)."""
    return neutralise_tex(HTML_CLEANER.clean(fragment))


def clean_mathml(fragment: str) -> str:
    """MathML (from ``latex2mathml``) through a MathML allowlist: no script, no link, no HTML island."""
    return MATHML_CLEANER.clean(fragment)


def svg_as_image(svg: str) -> str:
    """An SVG document as an ``<img>`` of it: shown the same, with no script and nothing loaded."""
    data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    return f'<img src="data:image/svg+xml;base64,{data}" alt="SVG figure">'


def _is_base64(data: str) -> bool:
    if not BASE64.match(data):
        return False
    try:
        base64.b64decode(re.sub(r"\s", "", data), validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


# --- markdown ---------------------------------------------------------------------------------------------
class _Audit(IPythonRenderer):
    """nbconvert's markdown renderer, noting what it would paste into the page unescaped."""

    def __init__(self, attachments: dict) -> None:
        super().__init__(escape=False, attachments=attachments, exclude_anchor_links=True)
        self.unsafe: list[str] = []

    def block_html(self, html: str) -> str:
        self.unsafe.append("raw HTML")
        return ""

    def inline_html(self, html: str) -> str:
        self.unsafe.append("raw HTML")
        return ""

    def block_mermaidjs(self, code: str) -> str:
        self.unsafe.append("a mermaid block")
        return ""

    def link(self, text: str, url: str, title: str | None = None) -> str:
        if not safe_link(url):
            self.unsafe.append(f"a link to {url[:40]!r}")
        return text

    def image(self, text: str, url: str, title: str | None = None) -> str:
        name = url[len("attachment:"):] if url.startswith("attachment:") else None
        if not (name in self.attachments if name is not None else DATA_IMAGE.match(_url(url))):
            self.unsafe.append(f"an image from {url[:40]!r}")
        return ""


class _Rendering(IPythonRenderer):
    """nbconvert's markdown renderer that shows a missing attachment as its alt text instead of failing."""

    def image(self, text: str, url: str, title: str | None = None) -> str:
        if url.startswith("attachment:") and url[len("attachment:"):] not in self.attachments:
            return html.escape(text)
        return super().image(text, url, title)


def markdown_problems(source: str, attachments: dict | None = None) -> list[str]:
    """What nbconvert's rendering of ``source`` would put into a page unescaped (empty: nothing)."""
    audit = _Audit(attachments or {})
    MarkdownWithMath(renderer=audit).render(source)
    return audit.unsafe


def safe_markdown(source: str, attachments: dict | None = None) -> str:
    """``source`` itself when it renders safely, else its sanitised rendering as one HTML block."""
    if not markdown_problems(source, attachments):
        return neutralise_tex(source)
    if _is_sanitised_block(source):
        return source
    rendered = MarkdownWithMath(renderer=_Rendering(escape=False, attachments=attachments or {},
                                                    exclude_anchor_links=True)).render(source)
    # one HTML block: no blank line inside, so no markdown renderer reads any of it as markdown
    body = BLANK_LINES.sub("\n", clean_html(rendered)).strip()
    return f"<div>\n{body}\n</div>"


def _is_sanitised_block(source: str) -> bool:
    """Whether ``source`` is what :func:`safe_markdown` makes of an unsafe cell (so it stays the same)."""
    return (source.startswith("<div>\n") and source.endswith("\n</div>") and not BLANK_LINES.search(source)
            and clean_html(source) == source)


def safe_attachments(attachments: dict) -> dict:
    """Attachments that are base64 images (PNG, JPEG, GIF, SVG: shown as ``<img>``), names that are plain."""
    kept = {}
    for name, bundle in (attachments or {}).items():
        if not isinstance(name, str) or not re.fullmatch(r"[\w.\- ]{1,100}", name) or not isinstance(bundle, dict):
            continue
        images = {mime: _text(data) for mime, data in bundle.items()
                  if mime in (*RASTER, "image/svg+xml") and _is_base64(_text(data))}
        if images:
            kept[name] = images
    return kept


# --- outputs -----------------------------------------------------------------------------------------------
def _text(value: Any) -> str:
    if isinstance(value, list):
        return "".join(str(v) for v in value)
    return value if isinstance(value, str) else str(value)


def _output_metadata(metadata: dict, kept: set[str]) -> dict:
    """Per MIME type, only ``width``/``height`` numbers and the booleans nbconvert reads."""
    clean: dict = {}
    for mime, meta in (metadata or {}).items():
        if mime not in kept or not isinstance(meta, dict):
            continue
        entry = {k: meta[k] for k in IMAGE_METADATA_NUMBERS
                 if isinstance(meta.get(k), (int, float)) and not isinstance(meta.get(k), bool)}
        if isinstance(meta.get("unconfined"), bool):
            entry["unconfined"] = meta["unconfined"]
        if isinstance(meta.get("alt"), str):
            entry["alt"] = meta["alt"][:500]
        if entry:
            clean[mime] = entry
    return clean


REMOTE_OR_SCRIPT = re.compile(r"<\s*script|(?:src|href)\s*=\s*[\"']?\s*(?:https?:)?//", re.I)


def safe_bundle(data: dict, metadata: dict | None = None) -> tuple[dict, dict]:
    """A display's MIME bundle and metadata, each kept type made safe, the others dropped."""
    clean: dict = {}
    plain = data.get("text/plain")
    if plain is not None:
        clean["text/plain"] = _text(plain)
    if "text/html" in data:
        value = _text(data["text/html"])
        if not (REMOTE_OR_SCRIPT.search(value) and "text/plain" in clean):
            clean["text/html"] = clean_html(value)
    if "image/svg+xml" in data and "text/html" not in clean:
        clean["text/html"] = svg_as_image(_text(data["image/svg+xml"]))
    if "text/markdown" in data:
        clean["text/markdown"] = safe_markdown(_text(data["text/markdown"]))
    if "text/latex" in data:
        clean["text/latex"] = neutralise_tex(_text(data["text/latex"]))
    for mime in RASTER:
        if mime in data and _is_base64(_text(data[mime])):
            clean[mime] = _text(data[mime])
    if not clean:
        clean["text/plain"] = REMOVED_NOTE
    return clean, _output_metadata(metadata or {}, set(clean))


def safe_output(output: dict) -> dict | None:
    """One output made safe (``None``: an output type nbformat does not know, dropped)."""
    kind = output.get("output_type")
    if kind == "stream":
        name = output.get("name") if output.get("name") in ("stdout", "stderr") else "stdout"
        return {"output_type": "stream", "name": name, "text": _text(output.get("text", ""))}
    if kind == "error":
        return {"output_type": "error", "ename": _text(output.get("ename", "")),
                "evalue": _text(output.get("evalue", "")),
                "traceback": [_text(t) for t in output.get("traceback", []) if isinstance(t, (str, list))]}
    if kind in ("display_data", "execute_result"):
        data, metadata = safe_bundle(output.get("data") or {}, output.get("metadata") or {})
        clean = {"output_type": kind, "data": data, "metadata": metadata}
        if kind == "execute_result":
            count = output.get("execution_count")
            clean["execution_count"] = count if isinstance(count, int) and not isinstance(count, bool) else None
        return clean
    return None


# --- cells and the notebook --------------------------------------------------------------------------------
def _plain_strings(value: Any, depth: int = 0) -> Any:
    """``value`` (metadata) with every string that could leave an HTML attribute, and deep nesting, dropped."""
    if isinstance(value, str):
        return value if PLAIN_WORD.match(value) else None
    if isinstance(value, bool) or value is None or isinstance(value, (int, float)):
        return value
    if depth > 3:
        return None
    if isinstance(value, dict):
        kept = {k: _plain_strings(v, depth + 1) for k, v in value.items() if isinstance(k, str) and PLAIN_WORD.match(k)}
        return {k: v for k, v in kept.items() if v is not None}
    if isinstance(value, list):
        return [v for v in (_plain_strings(v, depth + 1) for v in value[:50]) if v is not None]
    return None


#: Cell metadata keys kept (what nbgrader and nbconvert's templates read); the rest is dropped.
CELL_METADATA = ("nbgrader", "tags", "editable", "deletable", "collapsed", "scrolled", "jupyter", "raw_mimetype")
NOTEBOOK_METADATA = ("kernelspec", "language_info")
#: Raw cells that nbconvert's HTML exporter pastes into the page (its ``raw_mimetypes``).
HTML_RAW_MIMETYPES = ("", "text/html", "text/markdown")


def sanitize_cell(cell: dict) -> None:
    """Make one cell safe to render, in place."""
    if not CELL_ID.match(str(cell.get("id", "x"))):
        cell["id"] = uuid.uuid4().hex[:8]
    meta = cell.get("metadata") or {}
    clean = {k: _plain_strings(meta[k]) for k in CELL_METADATA if k in meta and _plain_strings(meta[k]) is not None}
    if isinstance(meta.get(VERDICT), dict) and isinstance(meta.get("nbgrader"), dict) and meta["nbgrader"].get("grade"):
        clean[VERDICT] = meta[VERDICT]  # the grader's own verdict on a grade cell (read by the report, never shown)
    if cell.get("cell_type") == "markdown" and isinstance(meta.get(NOTE_KEY), list):
        # the grader's list of repairs on its note (the reader drops any note a file brings along)
        clean[NOTE_KEY] = [r for r in meta[NOTE_KEY][:50] if isinstance(r, str)]
    cell["metadata"] = clean
    kind = cell.get("cell_type")
    if kind == "markdown":
        if "attachments" in cell:
            cell["attachments"] = safe_attachments(cell["attachments"])
        cell["source"] = safe_markdown(_text(cell.get("source", "")), cell.get("attachments"))
    elif kind == "raw" and str(cell["metadata"].get("raw_mimetype", "")).lower() in HTML_RAW_MIMETYPES:
        cell["source"] = clean_html(_text(cell.get("source", "")))
    elif kind == "code":
        outputs = [safe_output(o) for o in cell.get("outputs", [])]
        cell["outputs"] = [o for o in outputs if o is not None]
        count = cell.get("execution_count")
        cell["execution_count"] = count if isinstance(count, int) and not isinstance(count, bool) else None


def grader_record(value: Any) -> dict:
    """The grader's record about a whole notebook (``metadata[VERDICT]``, written by the execute step after the
    student's cells ran, read by the grades CSV, never rendered): its notices as plain strings, its sandbox's
    numbers and its time budget; anything else dropped."""
    if not isinstance(value, dict):
        return {}
    record: dict[str, Any] = {}
    notices = value.get("notices")
    if isinstance(notices, list):
        record["notices"] = [n for n in notices[:50] if isinstance(n, str)]
    if isinstance(value.get("sandbox"), dict):
        record["sandbox"] = {k: v for k, v in value["sandbox"].items() if isinstance(k, str) and PLAIN_WORD.match(k)
                             and isinstance(v, (int, float, str)) and (not isinstance(v, str) or PLAIN_WORD.match(v))}
    if isinstance(value.get("notebook_timeout"), (int, float)):
        record["notebook_timeout"] = value["notebook_timeout"]
    return record


def sanitize_notebook(nb: dict) -> dict:
    """Make a whole notebook (plain dicts, as ``json.load`` gives) safe to render, in place; returns it."""
    meta = nb.get("metadata") or {}
    nb["metadata"] = {k: _plain_strings(meta[k]) for k in NOTEBOOK_METADATA if isinstance(meta.get(k), dict)}
    record = grader_record(meta.get(VERDICT))
    if record:
        nb["metadata"][VERDICT] = record
    for cell in nb.get("cells", []):
        sanitize_cell(cell)
    return nb


def plain_name(name: str) -> str:
    """A display name that no page can read as markup, wherever it pastes it (nbgrader's formgrader lists some
    names with jQuery's ``append``): ``<`` and ``>`` become the look-alike ``‹`` and ``›``."""
    return name.replace("<", "\u2039").replace(">", "\u203a")


#: What nbgrader's formgrader puts into its page from the gradebook unescaped: the LMS's display names.
RESOURCE_NAMES = ("first_name", "last_name", "student")


class SanitizeNotebook(Preprocessor):
    """The nbconvert/nbgrader step that makes a notebook safe to render (see :mod:`grader.sanitize`); it
    also escapes the names the formgrader's template prints as they are (:data:`RESOURCE_NAMES`)."""

    enabled = Bool(True).tag(config=True)

    def preprocess(self, nb, resources):  # noqa: ANN001, ANN201
        from nbformat import from_dict

        clean = from_dict(sanitize_notebook(json.loads(json.dumps(nb))))
        nb.clear()
        nb.update(clean)
        for key in RESOURCE_NAMES:
            if isinstance(resources.get(key), str):
                resources[key] = html.escape(resources[key])
        return nb, resources
