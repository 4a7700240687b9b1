"""Accessibility checks written once, used on the built site, its interactive figures, a feedback page and on
copies broken on purpose (which prove that the checks can fail).

- :func:`axe_violations` runs axe-core (the copy bundled in the pinned ``axe-playwright-python`` wheel,
  injected into the page: nothing is fetched) with the WCAG 2.1 AA rules (tags wcag2a, wcag2aa, wcag21a,
  wcag21aa) and returns its violations, minus the :data:`EXCEPTIONS` (each a named rule on a named
  selector with its reason; there are none today).
- :func:`settle` waits until a page looks as a reader sees it (MathJax typeset, interactive figures drawn),
  so that the audit judges the final page.
- :func:`alt_text_problems` reads a built page's HTML: every figure a notebook cell drew (``_images/``)
  must have an alt text that says what it shows, not a file name (myst-nb's default), and every other
  image a non-empty one.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import axe_playwright_python

AXE_JS = Path(axe_playwright_python.__file__).parent / "axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
#: (axe rule, CSS selector, why it is not fixed). Keep this rare; a violation on another selector still fails.
EXCEPTIONS: list[tuple[str, str, str]] = []
#: A figure's alt text must say what it shows: at least this many words.
MIN_ALT_WORDS = 6
_FILENAME = re.compile(r"(\.(png|jpe?g|svg|gif|webp)\b|_images/|^\.\./|^[\w.-]+$)", re.I)

_RUN_JS = """
async ([options, context]) => {
  const result = await axe.run(context || document, options);
  return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map(n => ({target: n.target.join(' '), html: n.html.slice(0, 160),
                              summary: (n.failureSummary || '').replace(/\\s+/g, ' ').slice(0, 240)}))}));
}
"""

_SETTLE_JS = """
async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; }
  const start = Date.now();
  while ([...document.querySelectorAll('.course-plotly')].some(d => d.getAttribute('data-drawn') !== 'true')) {
    if (Date.now() - start > 20000) break;
    await new Promise(r => setTimeout(r, 100));
  }
}
"""


def settle(page) -> None:
    """Wait until MathJax has typeset the page and every interactive figure is drawn."""
    page.evaluate(_SETTLE_JS)


def axe_violations(page, context: str | dict | None = None, *, code_contrast: bool = True) -> list[dict]:
    """axe-core's WCAG 2.1 AA violations on ``page`` (or inside ``context``, a CSS selector), exceptions removed.

    ``code_contrast=False`` leaves the syntax-highlighted code out of the colour-contrast rule only (most of
    axe's time on a page with code): its colours are the same at every width, so one width checks them.
    """
    if not page.evaluate("() => !!window.axe"):
        page.evaluate(AXE_JS.read_text(encoding="utf-8"))
    # preload off: axe's CSSOM fetch resolves the theme's relative @import ("../basic.css") against the page,
    # a 404 in the console; it feeds one rule, css-orientation-lock, and test_no_style_locks_the_orientation
    # checks the site's style sheets for that instead.
    options = {"runOnly": {"type": "tag", "values": WCAG_TAGS}, "resultTypes": ["violations"], "preload": False}
    if code_contrast:
        found = page.evaluate(_RUN_JS, [options, context])
    else:
        rest = {**options, "rules": {"color-contrast": {"enabled": False}}}
        contrast = {"runOnly": {"type": "rule", "values": ["color-contrast"]}, "resultTypes": ["violations"],
                    "preload": False}
        around_code = {"include": [[context]] if isinstance(context, str) else [["html"]],
                       "exclude": [["div.highlight"], ["pre"]]}
        found = page.evaluate(_RUN_JS, [rest, context]) + page.evaluate(_RUN_JS, [contrast, around_code])
    return _without_exceptions(found)


def _without_exceptions(violations: list[dict]) -> list[dict]:
    kept = []
    for violation in violations:
        excused = {sel for rule, sel, _ in EXCEPTIONS if rule == violation["id"]}
        nodes = [n for n in violation["nodes"] if n["target"] not in excused]
        if nodes:
            kept.append({**violation, "nodes": nodes})
    return kept


def describe(violations: list[dict]) -> str:
    """The violations in words, a few nodes each (for an assertion message)."""
    lines = []
    for v in violations:
        lines.append(f"{v['id']} ({v['impact']}, {len(v['nodes'])} nodes): {v['help']}")
        lines += [f"    {n['target']}: {n['html']} -- {n['summary']}" for n in v["nodes"][:4]]
    return "\n".join(lines)


class _Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.images.append(dict(attrs))


def alt_text_problems(page_html: str) -> list[str]:
    """What is wrong with the alt texts of one built page's images, in words (empty: nothing)."""
    parser = _Images()
    parser.feed(page_html)
    problems = []
    for image in parser.images:
        src, alt = image.get("src") or "", (image.get("alt") or "").strip()
        if not alt:
            problems.append(f"image without an alt text: {src}")
        elif _FILENAME.search(alt):
            problems.append(f"image whose alt text is a file name: {src} (alt={alt!r})")
        elif "_images/" in src and len(alt.split()) < MIN_ALT_WORDS:
            problems.append(f"figure whose alt text says too little to tell what it shows: {src} (alt={alt!r})")
    return problems
