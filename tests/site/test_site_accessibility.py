"""Every reader: the built site, its interactive figures and a student's feedback page pass an automated
accessibility audit (axe-core, WCAG 2.1 AA: tags wcag2a, wcag2aa, wcag21a, wcag21aa) with zero violations.

- every page of ``_toc.yml`` at desktop width (1280 px) and phone width (390 px), after MathJax typeset it
  and its interactive figures were drawn; at 390 px the page must not scroll sideways either (wide
  formulas and figures scroll in their own box);
- each interactive figure again after its control was moved with the keyboard (a new state is a new DOM),
  in the light and the dark theme;
- a feedback page rendered as ``nbgrader generate_feedback`` renders it (``feedback_page.py``), both widths;
- every figure a reading draws has an alt text that says what it shows (not a file name);
- copies broken on purpose are caught: an image without alt, a low-contrast colour injected into the
  site's CSS, a control without its label. Screenshots of the interactive chapters at both widths are
  saved in ``_build/screenshots/`` for review.

Exceptions would be listed, each a named rule on a named selector with its reason, in
``axe_audit.EXCEPTIONS``; there are none.
"""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path

import pytest
from axe_audit import EXCEPTIONS, alt_text_problems, axe_violations, describe, settle
from feedback_page import write_feedback_page
from plotly_page import open_figures
from site_audit import toc_docnames
from test_site_interactive import INTERACTIVE_PAGES

pytestmark = [pytest.mark.site, pytest.mark.slow]

PAGES = toc_docnames()
WIDTHS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}


@pytest.fixture(scope="module")
def contexts(browser):
    """One browser context per width, shared by the pages of this module (a page each)."""
    made = {name: browser.new_context(viewport=size) for name, size in WIDTHS.items()}
    yield made
    for context in made.values():
        context.close()


def open_settled(context, url: str):
    page = context.new_page()
    page.goto(url, wait_until="load")
    settle(page)
    return page


@pytest.mark.parametrize("width", list(WIDTHS))
@pytest.mark.parametrize("docname", PAGES)
def test_every_page_passes_axe(contexts, site_url: str, docname: str, width: str) -> None:
    page = open_settled(contexts[width], f"{site_url}{docname}.html")
    try:
        # Code colours do not depend on the width: the desktop audit checks them, the phone one the rest.
        violations = axe_violations(page, code_contrast=width == "desktop")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    finally:
        page.close()
    assert violations == [], f"{docname} at {width} width:\n{describe(violations)}"
    assert overflow <= 1, f"{docname} is {overflow}px wider than the {WIDTHS[width]['width']}px screen"


def test_no_style_locks_the_orientation(built_site: Path) -> None:
    """WCAG 1.3.4 (axe's css-orientation-lock, which needs the CSSOM preload the audit leaves off)."""
    sheets = list(built_site.joinpath("_static").rglob("*.css"))
    assert len(sheets) > 5
    locked = [p.name for p in sheets if re.search(r"@media[^{]*orientation", p.read_text(errors="replace"))]
    assert locked == []


def test_no_exceptions_are_claimed_without_a_reason() -> None:
    assert all(rule and selector and len(reason.split()) >= 5 for rule, selector, reason in EXCEPTIONS)


@pytest.mark.parametrize("docname", PAGES)
def test_every_figure_says_what_it_shows(built_site: Path, docname: str) -> None:
    html = (built_site / f"{docname}.html").read_text(encoding="utf-8")
    assert alt_text_problems(html) == []
    if docname.startswith("book/ch"):
        assert "_images/" in html, f"{docname} draws no figure: was the page built with its outputs?"


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("docname", sorted(INTERACTIVE_PAGES))
def test_interactive_figures_pass_axe_after_the_keyboard_moved_them(browser, site_url: str, docname: str,
                                                                    theme: str) -> None:
    """At phone width, in the light and the dark theme (the figure keeps its own light colours in both)."""
    key = {"range": "ArrowLeft", "select": "ArrowDown", "radio": "ArrowRight"}
    with open_figures(browser, f"{site_url}{docname}.html", viewport=WIDTHS["phone"], dark=theme == "dark") as fp:
        assert fp.page.evaluate("document.documentElement.dataset.theme") == theme
        before = fp.page.evaluate("() => document.querySelector('.course-plotly').getAttribute('data-state')")
        kind = fp.control(0).first.get_attribute("data-course-control")
        fp.press(0, key[kind])
        fp.page.wait_for_function("s => { const now = document.querySelector('.course-plotly')"
                                  ".getAttribute('data-state'); return now !== s && now !== 'moving'; }", arg=before)
        violations = axe_violations(fp.page, "figure.course-interactive")
    assert fp.problems == [], fp.problems
    assert violations == [], f"{docname}, figure after a key press:\n{describe(violations)}"


@pytest.mark.parametrize("width", list(WIDTHS))
def test_a_feedback_page_passes_axe(contexts, tmp_path: Path, screenshots_dir: Path, width: str) -> None:
    path = write_feedback_page(tmp_path / "ch2-sdpa.html")
    page = contexts[width].new_page()
    try:
        page.goto(path.as_uri(), wait_until="load")
        violations = axe_violations(page)
        shown = page.evaluate("() => ({math: document.querySelectorAll('math').length, "
                              "overflow: document.documentElement.scrollWidth - window.innerWidth, "
                              "text: document.body.innerText})")
        page.screenshot(path=str(screenshots_dir / f"feedback-{WIDTHS[width]['width']}px.png"))
    finally:
        page.close()
    assert violations == [], f"feedback page at {width} width:\n{describe(violations)}"
    assert shown["math"] > 0 and "divided by d_k instead of sqrt(d_k)" in shown["text"]  # the real page
    assert shown["overflow"] <= 1, shown["overflow"]


def test_screenshots_of_the_interactive_chapters(browser, site_url: str, screenshots_dir: Path) -> None:
    """Each interactive figure at both widths, for a person to look at (``_build/screenshots/``)."""
    for docname in sorted(INTERACTIVE_PAGES):
        for width, size in WIDTHS.items():
            with open_figures(browser, f"{site_url}{docname}.html", viewport=size) as fp:
                figure = fp.page.locator("figure.course-interactive").first
                figure.scroll_into_view_if_needed()
                out = screenshots_dir / f"{Path(docname).name}-figure-{size['width']}px.png"
                figure.screenshot(path=str(out))
                box = figure.bounding_box()
            assert fp.problems == [], fp.problems
            assert box["width"] <= size["width"] and out.stat().st_size > 5_000, (docname, width, box)


_TICKS = """gd => [...gd.querySelectorAll('.xtick text, .ytick text')].filter(t => t.textContent.trim())
    .map(t => { const r = t.getBoundingClientRect(), x = !!t.closest('.xtick');
                const turn = /rotate\\((-?[\\d.]+)/.exec(t.getAttribute('transform') || '');
                return {axis: x ? 'x' : 'y', lo: x ? r.left : r.top, hi: x ? r.right : r.bottom,
                        at: x ? (r.left + r.right) / 2 : (r.top + r.bottom) / 2,
                        angle: turn ? parseFloat(turn[1]) : 0, font: parseFloat(getComputedStyle(t).fontSize),
                        text: t.textContent}; })"""


def label_clashes(ticks: list[dict]) -> list[tuple[str, str]]:
    """Neighbouring tick labels of one axis that overlap: upright labels by their boxes; turned labels (a
    box of a turned label is wider than the label) when their spacing across the text is under a line."""
    clashes = []
    for axis in ("x", "y"):
        line = sorted((t for t in ticks if t["axis"] == axis), key=lambda t: t["at"])
        for a, b in zip(line, line[1:], strict=False):
            if a["angle"] == 0 and b["angle"] == 0:
                clash = b["lo"] < a["hi"] - 0.5
            else:
                clash = (b["at"] - a["at"]) * abs(math.sin(math.radians(a["angle"]))) < 0.9 * a["font"]
            if clash:
                clashes.append((a["text"], b["text"]))
    return clashes


@pytest.mark.parametrize("docname", sorted(INTERACTIVE_PAGES))
def test_axis_labels_do_not_overlap_on_a_phone(browser, site_url: str, docname: str) -> None:
    """At 390 px every tick label of every interactive figure stands clear of its neighbours (a grid of
    many keys keeps a legible width and scrolls sideways in its own box, reachable with the keyboard)."""
    with open_figures(browser, f"{site_url}{docname}.html", viewport=WIDTHS["phone"]) as fp:
        ticks = [fp.figure(i).evaluate(_TICKS) for i in range(fp.count())]
        boxes = fp.page.evaluate("""() => [...document.querySelectorAll('div.course-plot-box')].map(b => ({
            scrolls: b.scrollWidth > b.clientWidth + 1, tabindex: b.getAttribute('tabindex'),
            label: b.getAttribute('aria-label') || ''}))""")
    assert fp.problems == [], fp.problems
    for figure in ticks:
        assert figure, f"{docname}: no tick labels found"
        assert label_clashes(figure) == [], f"{docname}: labels overlap at 390 px: {label_clashes(figure)[:5]}"
    for box in boxes:
        if box["scrolls"]:
            assert box["tabindex"] == "0" and box["label"].startswith("figure, scrolls sideways: "), box


def test_turned_labels_clash_only_when_closer_than_a_line() -> None:
    def tick(at: float, angle: float) -> dict:
        return {"axis": "x", "lo": at - 20, "hi": at + 20, "at": at, "angle": angle, "font": 10.0, "text": str(at)}

    assert label_clashes([tick(0, -30), tick(30, -30)]) == []  # boxes overlap, the turned texts do not
    assert label_clashes([tick(0, -90), tick(7.5, -90)]) == [("0", "7.5")]  # 24 keys squeezed into 390 px
    assert label_clashes([tick(0, 0), tick(30, 0)]) == [("0", "30")]  # upright: the boxes themselves


# ----------------------------------------------------------------------------- broken on purpose


def _copy_site(built_site: Path, dest: Path) -> Path:
    shutil.copytree(built_site, dest, ignore=shutil.ignore_patterns("_sources", "searchindex.js"))
    return dest


def _rule_ids(violations: list[dict]) -> set[str]:
    return {v["id"] for v in violations}


def test_an_image_without_alt_is_caught(browser, serve, built_site: Path, tmp_path: Path) -> None:
    broken = _copy_site(built_site, tmp_path / "html")
    page_file = broken / "book" / "ch2_sdpa.html"
    html, n = re.subn(r'<img alt="[^"]*" (src="\.\./_images/)', r"<img \1", page_file.read_text(encoding="utf-8"),
                      count=1)
    assert n == 1
    page_file.write_text(html, encoding="utf-8")
    assert any(p.startswith("image without an alt text") for p in alt_text_problems(html))
    page = open_settled(browser.new_context(viewport=WIDTHS["desktop"]), f"{serve(broken)}book/ch2_sdpa.html")
    try:
        assert "image-alt" in _rule_ids(axe_violations(page, "main"))
    finally:
        page.context.close()


def test_a_file_name_as_alt_text_is_caught(built_site: Path) -> None:
    """myst-nb's default alt text is the image's path: the page check refuses it (axe alone would not)."""
    html = (built_site / "book" / "ch2_sdpa.html").read_text(encoding="utf-8")
    named = re.sub(r'<img alt="[^"]*" src="(\.\./_images/[^"]+)"', r'<img alt="\1" src="\1"', html, count=1)
    problems = alt_text_problems(named)
    assert len(problems) == 1 and "file name" in problems[0], problems


def test_a_low_contrast_colour_is_caught(browser, serve, built_site: Path, tmp_path: Path) -> None:
    broken = _copy_site(built_site, tmp_path / "html")
    css = broken / "_static" / "course.css"
    css.write_text(css.read_text(encoding="utf-8") + "\narticle p { color: #b0b0b0 !important; }\n", encoding="utf-8")
    page = open_settled(browser.new_context(viewport=WIDTHS["desktop"]), f"{serve(broken)}book/intro.html")
    try:
        violations = axe_violations(page)
    finally:
        page.context.close()
    assert "color-contrast" in _rule_ids(violations), describe(violations)


def test_a_control_without_a_label_is_caught(browser, serve, built_site: Path, tmp_path: Path) -> None:
    broken = _copy_site(built_site, tmp_path / "html")
    page_file = broken / "book" / "ch4_multihead.html"
    html, n = re.subn(r'<label for="([^"]+-control)">[^<]*</label>', "", page_file.read_text(encoding="utf-8"))
    assert n == 1
    page_file.write_text(html, encoding="utf-8")
    with open_figures(browser, f"{serve(broken)}book/ch4_multihead.html") as fp:
        violations = axe_violations(fp.page, "figure.course-interactive")
    assert "select-name" in _rule_ids(violations), describe(violations)
