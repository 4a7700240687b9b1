"""Feedback pages that render offline: formulas as MathML, no script or stylesheet from another host.

nbgrader's feedback template loads MathJax from a CDN, so offline its formulas stay raw ``$...$``.
``grader/nbgrader_config.py`` puts this folder's templates first (``feedback_templates/base/
mathjax.html.j2`` replaces the MathJax macro by nothing) and adds :class:`OfflineMath` to
``nbgrader generate_feedback``: every ``$...$`` and ``$$...$$`` of the markdown cells becomes MathML
(``latex2mathml``), which browsers display natively. :class:`NoRemoteOutputs` drops any output of the
student's kernel that would fetch something from another host (an ``<img src="https://...">``, a
plotly figure loading its library from a CDN), keeping its plain-text form.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from nbconvert.exporters import HTMLExporter
from nbconvert.preprocessors import Preprocessor
from traitlets import Bool

TEMPLATES = Path(__file__).resolve().parent / "feedback_templates"
# $$...$$ first (display), then $...$ (inline, not across blank lines); \$ is a literal dollar.
DISPLAY = re.compile(r"\$\$(.+?)\$\$", re.S)
INLINE = re.compile(r"(?<![\\$])\$(?!\$)([^$\n]+?)(?<!\\)\$")
CODE = re.compile(r"(```.*?```|`[^`\n]*`)", re.S)
REMOTE = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.I)


def _mathml(tex: str, display: bool) -> str:
    from latex2mathml.converter import convert

    try:
        return convert(tex.strip(), display="block" if display else "inline")
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


class NoRemoteOutputs(Preprocessor):
    """Drop rich outputs that would load anything from another host (their plain text stays)."""

    enabled = Bool(True).tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code":
            return cell, resources
        for out in cell.get("outputs", []):
            data = out.get("data")
            if not data:
                continue
            for mime in list(data):
                value = data[mime] if isinstance(data[mime], str) else "".join(data[mime])
                if mime != "text/plain" and (mime.endswith("javascript") or REMOTE.search(value)):
                    del data[mime]
            data.setdefault("text/plain", "(an output that would load content from another site was removed)")
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


class FeedbackExporter(HTMLExporter):
    """nbconvert's HTML exporter whose compiled templates are reused between notebooks.

    nbgrader makes a new exporter for every feedback page, and compiling the page's Jinja templates
    was most of the time of one page. The pages are byte-identical (the cache key is the template
    source's checksum).
    """

    def _create_environment(self):  # noqa: ANN202
        environment = super()._create_environment()
        environment.bytecode_cache = _MemoryBytecodeCache()
        return environment
