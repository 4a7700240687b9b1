"""What the website tests check on a page, written once and used both on the real site and on copies
broken on purpose (to prove the checks can fail).

``audit_page`` loads one URL in a fresh browser context that blocks (and records) every request to a
host other than 127.0.0.1, then reports, as a list of sentences, everything a reader would suffer from:
console errors, failed requests, HTTP errors, outside requests, images that do not load, equations
that MathJax did not typeset (or typeset as an error), and raw TeX left in the text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import yaml

ROOT = Path(__file__).resolve().parents[2]
LOCAL_HOSTS = {"127.0.0.1"}
MATHJAX_LOAD_MS = 3_000  # MathJax is a deferred script: after the load event it has run, or it never will
MATHJAX_TYPESET_MS = 15_000

# Raw TeX a reader should never see in the text (code blocks excluded): display/inline delimiters,
# and a few commands that only appear when an equation was not typeset.
RAW_TEX = re.compile(r"\$\$|\\\(|\\\)|\\\[|\\\]|\\(?:frac|mathbb|sqrt|operatorname|begin|mathrm)\b")

# Waits until every <img> is settled (lazy ones forced to load), then lists those that did not load.
_BROKEN_IMAGES_JS = """
async () => {
  const imgs = [...document.images];
  imgs.forEach(img => { img.loading = 'eager'; });
  await Promise.all(imgs.map(img => img.complete ? null :
    new Promise(done => { img.addEventListener('load', done); img.addEventListener('error', done);
                          setTimeout(done, 10000); })));
  return {count: imgs.length,
          broken: imgs.filter(img => !(img.complete && img.naturalWidth > 0)).map(img => img.src)};
}
"""

# Waits for MathJax (when the page has math) and reports what is not typeset.
_MATH_JS = """
async ([loadMs, typesetMs]) => {
  const nodes = [...document.querySelectorAll('span.math, div.math')];
  if (nodes.length === 0) return {count: 0, loaded: true, untypeset: [], errors: []};
  const start = Date.now();
  while (!(window.MathJax && MathJax.startup && MathJax.startup.promise)) {
    if (Date.now() - start > loadMs) break;
    await new Promise(r => setTimeout(r, 100));
  }
  const loaded = !!(window.MathJax && MathJax.startup && MathJax.startup.promise);
  if (loaded) {
    await Promise.race([MathJax.startup.promise, new Promise(r => setTimeout(r, typesetMs))]);
  }
  return {
    count: nodes.length,
    loaded: loaded,
    untypeset: nodes.filter(n => !n.querySelector('mjx-container')).map(n => n.textContent.slice(0, 60)),
    errors: [...document.querySelectorAll('mjx-merror')].map(n => (n.getAttribute('data-mjx-error') || '?')),
  };
}
"""

# The text a reader sees outside code blocks and typeset math. Search-result snippets are left out: Sphinx
# cuts them from the pages' text, TeX source included, and they are never typeset.
_PROSE_TEXT_JS = """
() => {
  const main = (document.querySelector('main') || document.body).cloneNode(true);
  main.querySelectorAll('pre, code, script, style, textarea, mjx-container, .highlight, #search-results')
    .forEach(n => n.remove());
  return main.innerText;
}
"""

_SIDEBAR_JS = """
() => [...document.querySelectorAll('.bd-docs-nav a.reference.internal')].map(a => a.href)
"""


@dataclass
class PageReport:
    url: str
    problems: list[str] = field(default_factory=list)
    math_count: int = 0
    image_count: int = 0
    sidebar: list[str] = field(default_factory=list)


def toc_docnames(toc_path: Path = ROOT / "_toc.yml") -> list[str]:
    """Every page of ``_toc.yml`` in reading order (root, then chapters with their sections)."""
    toc = yaml.safe_load(toc_path.read_text(encoding="utf-8"))
    names = [toc["root"]]

    def walk(entries: list[dict]) -> None:
        for entry in entries or []:
            if "file" in entry:
                names.append(entry["file"])
            walk(entry.get("sections", []))
            walk(entry.get("chapters", []))

    walk(toc.get("parts", []))
    walk(toc.get("chapters", []))
    return [str(Path(n).with_suffix("")) for n in names]


def is_local(url: str) -> bool:
    parsed = urlparse(url)
    return parsed.scheme not in ("http", "https", "ws", "wss") or parsed.hostname in LOCAL_HOSTS


def audit_page(browser, url: str, *, context_options: dict | None = None) -> PageReport:
    """Load ``url`` offline-style in a new context and report every problem a reader would meet."""
    report = PageReport(url)
    outside: list[str] = []
    context = browser.new_context(**(context_options or {}))

    def gate(route) -> None:
        if is_local(route.request.url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", gate)
    page = context.new_page()
    page.on("console", lambda m: m.type == "error" and report.problems.append(f"console error: {m.text}"))
    page.on("pageerror", lambda e: report.problems.append(f"uncaught JavaScript error: {e}"))
    page.on(
        "requestfailed",
        lambda r: is_local(r.url) and report.problems.append(f"request failed: {r.url} ({r.failure})"),
    )
    page.on("response", lambda r: r.status >= 400 and report.problems.append(f"HTTP {r.status}: {r.url}"))
    try:
        page.goto(url, wait_until="load")
        images = page.evaluate(_BROKEN_IMAGES_JS)
        report.image_count = images["count"]
        report.problems += [f"image did not load: {src}" for src in images["broken"]]

        math = page.evaluate(_MATH_JS, [MATHJAX_LOAD_MS, MATHJAX_TYPESET_MS])
        report.math_count = math["count"]
        if not math["loaded"]:
            report.problems.append(f"MathJax did not load, so {math['count']} equations stay raw TeX")
        if math["untypeset"]:
            report.problems.append(f"{len(math['untypeset'])} equations not typeset, e.g. {math['untypeset'][:3]}")
        if math["errors"]:
            report.problems.append(f"MathJax errors in equations: {math['errors'][:5]}")

        prose = page.evaluate(_PROSE_TEXT_JS)
        raw = sorted({m.group(0) for m in RAW_TEX.finditer(prose)})
        if raw:
            report.problems.append(f"raw TeX left in the text: {raw}")
        report.sidebar = page.evaluate(_SIDEBAR_JS)
    finally:
        context.close()
    report.problems += [f"request to a host other than 127.0.0.1 at load: {u}" for u in outside]
    return report
