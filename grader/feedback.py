"""Feedback pages that render offline and run nothing: formulas as MathML, no script, nothing from another host.

nbgrader's feedback template loads MathJax from a CDN, so offline its formulas stay raw ``$...$``.
``grader/nbgrader_config.py`` puts this folder's templates first (``feedback_templates/base/
mathjax.html.j2`` replaces the MathJax macro by nothing) and adds :class:`OfflineMath` to
``nbgrader generate_feedback``: every ``$...$`` and ``$$...$$`` of the markdown cells becomes MathML
(``latex2mathml``, its output through :func:`grader.sanitize.clean_mathml`), which browsers display
natively. Before that, :class:`grader.sanitize.SanitizeNotebook` has made every output, markdown cell
and metadata of the student's notebook safe to render. :class:`FeedbackExporter` puts a
Content-Security-Policy first in the page's head (:data:`CSP`): the page needs no script, so none runs
(not even one a sanitiser missed), and it loads nothing but its own ``data:`` images.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from nbconvert.exporters import HTMLExporter
from nbconvert.preprocessors import Preprocessor
from traitlets import Bool

from grader.engine.verdict import name_grade_cells
from grader.sanitize import clean_mathml

TEMPLATES = Path(__file__).resolve().parent / "feedback_templates"
# $$...$$ first (display), then $...$ (inline, not across blank lines); \$ is a literal dollar.
DISPLAY = re.compile(r"\$\$(.+?)\$\$", re.S)
INLINE = re.compile(r"(?<![\\$])\$(?!\$)([^$\n]+?)(?<!\\)\$")
CODE = re.compile(r"(```.*?```|`[^`\n]*`)", re.S)
#: The feedback page's policy: no script at all, styles only from the page itself, images only ``data:``,
#: nothing else loaded, no form sent, no ``<base>``. (A ``<meta>`` cannot say ``frame-ancestors``.)
CSP = ("default-src 'none'; script-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; "
       "form-action 'none'; base-uri 'none'")
CSP_META = f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
HEAD = re.compile(r"<head(?:\s[^>]*)?>", re.I)


def _mathml(tex: str, display: bool) -> str:
    from latex2mathml.converter import convert

    tex = html.unescape(tex)  # a formula in a cell the sanitiser rewrote as HTML has its < & > escaped
    try:
        return clean_mathml(convert(tex.strip(), display="block" if display else "inline"))
    except Exception:  # noqa: BLE001 - a formula latex2mathml cannot read stays readable as code
        return f"<code>{html.escape(tex)}</code>"


def render_math(markdown: str) -> str:
    """``markdown`` with its formulas replaced by MathML (code spans and blocks left alone)."""
    parts = CODE.split(markdown)
    for i in range(0, len(parts), 2):  # even parts are outside code
        text = DISPLAY.sub(lambda m: "\n\n" + _mathml(m.group(1), True) + "\n\n", parts[i])
        parts[i] = INLINE.sub(lambda m: _mathml(m.group(1), False), text)
    return "".join(parts)


class OfflineMath(Preprocessor):
    """Render the markdown cells' formulas to MathML for the feedback page."""

    enabled = Bool(True).tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "markdown" and "$" in cell.source:
            cell.source = render_math(cell.source)
        return cell, resources


class _MemoryBytecodeCache:
    """Compiled Jinja templates kept for the life of the process (same source, same code)."""

    def __new__(cls):  # one shared instance
        from jinja2 import BytecodeCache

        class Cache(BytecodeCache):
            store: dict[str, bytes] = {}

            def load_bytecode(self, bucket):  # noqa: ANN001
                if bucket.key in self.store:
                    bucket.bytecode_from_string(self.store[bucket.key])

            def dump_bytecode(self, bucket):  # noqa: ANN001
                self.store[bucket.key] = bucket.bytecode_to_string()

        if not hasattr(cls, "_instance"):
            cls._instance = Cache()
        return cls._instance


# What nbconvert's HTMLExporter changes with BeautifulSoup after rendering (accessibility): every
# image without an alt attribute gets one, and under an element of class jp-Notebook (JupyterLab's
# template; nbgrader's feedback template has none) cell inputs and outputs get tabindex="0".
NO_ALT = "No description has been provided for this image"
LAB_NOTEBOOK = re.compile("jp-notebook", re.I)


class _ImagesWithoutAlt(HTMLParser):
    """Where each ``<img>`` start tag without an alt attribute begins (the tokenizer BeautifulSoup uses)."""

    def __init__(self) -> None:
        super().__init__()
        self.spots: list[tuple[int, int]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img" and not any(name == "alt" for name, _ in attrs):
            self.spots.append(self.getpos())


def with_csp(page: str) -> str:
    """``page`` with :data:`CSP_META` as the first element of its head (before anything it applies to)."""
    head = HEAD.search(page)
    return page[:head.end()] + "\n" + CSP_META + page[head.end():] if head else CSP_META + "\n" + page


def with_alt_texts(page: str) -> tuple[str, int]:
    """``page`` with ``alt="..."`` added to each image that has none; also how many there were."""
    if "<img" not in page.lower():
        return page, 0
    parser = _ImagesWithoutAlt()
    parser.feed(page)
    parser.close()
    line_starts = [0] + [m.end() for m in re.finditer("\n", page)]
    offsets = [line_starts[line - 1] + col + len("<img") for line, col in parser.spots]
    for at in reversed(offsets):
        page = f'{page[:at]} alt="{NO_ALT}"{page[at:]}'
    return page, len(offsets)


def with_lang(page: str) -> str:
    """The page declared English (nbgrader's template writes a bare ``<html>``: screen readers would guess)."""
    return page.replace("<html>", '<html lang="en">', 1)


class _SameCellsOnce:
    """nbconvert's code highlighter, remembering its answers: most cells of a class's notebooks are the
    release's, unchanged, and highlighting them again was a third of a feedback page's time. The answer
    depends only on the cell's source, its language and the highlighter's settings (the key)."""

    answers: dict[tuple, str] = {}
    limit = 4096

    def __init__(self, highlight: Any) -> None:
        self.highlight = highlight

    def __call__(self, source: str, language: str | None = None, metadata: Any = None) -> str:
        magics = metadata.get("magics_language") if metadata else None
        options = repr(sorted(self.highlight.extra_formatter_options.items()))
        key = (source, language, magics, self.highlight.pygments_lexer, options)
        if key not in self.answers:
            if len(self.answers) >= self.limit:
                self.answers.clear()
            self.answers[key] = self.highlight(source, language, metadata)
        return self.answers[key]


class FeedbackExporter(HTMLExporter):
    """nbconvert's HTML exporter, made cheaper for one page after another; the page stays the same.

    - Its compiled Jinja templates are reused between notebooks (nbgrader makes a new exporter for
      every feedback page, and compiling them was most of the time of one page; the cache key is the
      template source's checksum, so the pages are byte-identical).
    - Code cells are highlighted once per worker (:class:`_SameCellsOnce`): a class's notebooks share
      most of their cells.
    - nbconvert parses the rendered page with BeautifulSoup to add alt texts and ``tabindex``
      attributes, then writes it out again: that round trip cost more than rendering the page. Here
      :func:`with_alt_texts` adds the alt texts to the rendered text, finding the images with the same
      tokenizer, and a page with JupyterLab markup (where the ``tabindex`` edits apply) takes
      nbconvert's own path. The document is the same (``tests/grading/test_feedback_page.py`` parses
      both pages and compares the trees); only BeautifulSoup's re-writing (``<br/>`` for ``<br>``,
      quoting, attribute order) is skipped.
    - Either way, the page's head starts with the Content-Security-Policy :data:`CSP_META`.
    """

    def _create_environment(self):  # noqa: ANN202
        environment = super()._create_environment()
        environment.bytecode_cache = _MemoryBytecodeCache()
        return environment

    def from_notebook_node(self, nb, resources=None, **kw):  # noqa: ANN001, ANN201
        from nbconvert.exporters.templateexporter import TemplateExporter
        from nbconvert.filters.highlight import Highlight2HTML
        from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter

        # HTMLExporter.from_notebook_node up to its BeautifulSoup pass
        langinfo = nb.metadata.get("language_info", {})
        lexer = langinfo.get("pygments_lexer", langinfo.get("name", None))
        highlight_code = self.filters.get("highlight_code", Highlight2HTML(pygments_lexer=lexer, parent=self))
        if isinstance(highlight_code, Highlight2HTML):
            highlight_code = _SameCellsOnce(highlight_code)
        resources = self._init_resources(resources)
        filter_data_type = WidgetsDataTypeFilter(notebook_metadata=self._nb_metadata, parent=self, resources=resources)
        self.register_filter("highlight_code", highlight_code)
        self.register_filter("filter_data_type", filter_data_type)
        page, resources = TemplateExporter.from_notebook_node(self, nb, resources, **kw)
        if LAB_NOTEBOOK.search(page):  # JupyterLab's markup (a lab template, or a student's output): exact path
            page, resources = super().from_notebook_node(nb, resources, **kw)
            return with_csp(with_lang(name_grade_cells(page))), resources
        page = with_lang(name_grade_cells(page))  # "softmax" where nbgrader's template says "Test cell"
        page, missing_alt = with_alt_texts(page)
        if missing_alt:
            self.log.warning("Alternative text is missing on %s image(s).", missing_alt)
        return with_csp(page), resources
