"""The built website in a real browser (Debian's Chromium through Playwright), served on 127.0.0.1.

Every page of ``_toc.yml``: no console errors, no failed requests, nothing requested from another
host at load, every image loads, every equation typeset by the site's own MathJax, the sidebar lists
every chapter in order. Plus: the search finds "grouped-query", exercise pages offer the notebook
download and the launch buttons, and dark-mode and 390 px mobile screenshots are saved for review in
``_build/screenshots/``. ``test_site_broken_on_purpose.py`` proves these checks fail when they should.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import pytest
from site_audit import ROOT, audit_page, is_local, toc_docnames

pytestmark = [pytest.mark.site, pytest.mark.slow]

PAGES = toc_docnames()
SCREENSHOT_PAGE = "book/ch2_sdpa"  # a chapter with equations, figures and code


def docname_of(url: str, site_url: str) -> str:
    path = urlparse(url).path.removeprefix(urlparse(site_url).path)
    return path.removesuffix(".html")


@pytest.mark.parametrize("docname", PAGES)
def test_page_loads_cleanly_offline(browser, site_url: str, built_site: Path, docname: str) -> None:
    report = audit_page(browser, f"{site_url}{docname}.html")
    assert report.problems == [], "\n".join(report.problems)
    source = (built_site / f"{docname}.html").read_text(encoding="utf-8")
    # The checks looked at what is there: every <img> and every equation in the HTML was seen loaded.
    assert report.image_count == source.count("<img ")
    assert report.math_count == source.count('class="math notranslate nohighlight"')
    # The sidebar lists every chapter (and its exercise) in the order of _toc.yml.
    listed = [docname_of(href, site_url) for href in report.sidebar]
    assert [d for d in listed if d in PAGES] == [d for d in PAGES if d in listed]
    assert set(PAGES) - {PAGES[0]} <= set(listed), f"missing from the sidebar: {set(PAGES) - set(listed)}"


def test_index_redirects_to_the_intro(browser, site_url: str) -> None:
    page = browser.new_page()
    try:
        page.goto(site_url, wait_until="load")
        page.wait_for_url(f"**/{PAGES[0]}.html", timeout=10_000)
    finally:
        page.close()


def test_search_finds_grouped_query(browser, site_url: str) -> None:
    report = audit_page(browser, f"{site_url}search.html?q=grouped-query")
    assert report.problems == [], "\n".join(report.problems)
    page = browser.new_page()
    try:
        page.goto(f"{site_url}search.html?q=grouped-query", wait_until="load")
        page.wait_for_selector("#search-results ul.search li", timeout=20_000)
        hits = page.eval_on_selector_all("#search-results ul.search li a", "els => els.map(a => a.href)")
    finally:
        page.close()
    assert any("book/ch5_gqa.html" in h for h in hits), hits


def test_math_uses_the_local_mathjax(built_site: Path) -> None:
    for docname in PAGES:
        html = (built_site / f"{docname}.html").read_text(encoding="utf-8")
        if 'class="math' in html:
            assert "_static/mathjax/tex-chtml.js" in html, docname
    assert (built_site / "_static" / "mathjax" / "tex-chtml.js").is_file()


def test_launch_and_download_buttons(browser, site_url: str, built_site: Path) -> None:
    """Notebook pages link to Colab/Binder/JupyterHub and offer the .ipynb download."""
    notebook_pages = [d for d in PAGES if (built_site / "_sources" / f"{d}.ipynb").is_file()]
    assert any(d.startswith("book/ch") for d in notebook_pages), "reading pages must be built from .ipynb"
    page = browser.new_page()
    try:
        for docname in notebook_pages:
            page.goto(f"{site_url}{docname}.html", wait_until="load")
            links = page.eval_on_selector_all("a", "els => els.map(a => a.href)")
            colab = [u for u in links if u.startswith("https://colab.research.google.com/github/")]
            assert colab and all(u.endswith(f"{docname}.ipynb") for u in colab), (docname, colab)
            assert any(u.startswith("https://mybinder.org/v2/gh/") for u in links), docname
            assert any("/hub/user-redirect/git-pull" in u for u in links), docname
            download = [u for u in links if u.endswith(f"_sources/{docname}.ipynb")]
            assert download and is_local(download[0]), docname
            response = page.request.get(download[0])
            # The download is the notebook itself: on exercise pages, the nbgrader student release.
            assert response.ok and response.body() == (ROOT / f"{docname}.ipynb").read_bytes(), docname
    finally:
        page.close()


def test_dark_mode_screenshot(browser, site_url: str, screenshots_dir: Path) -> None:
    context = browser.new_context(color_scheme="dark", viewport={"width": 1280, "height": 900})
    context.add_init_script("localStorage.setItem('mode', 'dark'); localStorage.setItem('theme', 'dark');")
    page = context.new_page()
    try:
        page.goto(f"{site_url}{SCREENSHOT_PAGE}.html", wait_until="load")
        page.evaluate("() => window.MathJax && MathJax.startup ? MathJax.startup.promise : null")
        assert page.evaluate("document.documentElement.dataset.theme") == "dark"
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        out = screenshots_dir / "dark-mode.png"
        page.screenshot(path=str(out))
    finally:
        context.close()
    assert _luminance(background) < 0.3, f"dark mode background is {background}"
    assert out.stat().st_size > 10_000


def test_mobile_screenshot(browser, site_url: str, screenshots_dir: Path) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                  device_scale_factor=2)
    page = context.new_page()
    try:
        page.goto(f"{site_url}{SCREENSHOT_PAGE}.html", wait_until="load")
        page.evaluate("() => window.MathJax && MathJax.startup ? MathJax.startup.promise : null")
        # The page itself does not scroll sideways (wide code, tables and equations scroll in their box).
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        sidebar_hidden = page.evaluate(
            "() => { const s = document.querySelector('.bd-sidebar-primary');"
            " return !s || s.getBoundingClientRect().right <= 0 || getComputedStyle(s).visibility === 'hidden'; }"
        )
        out = screenshots_dir / "mobile-390px.png"
        page.screenshot(path=str(out))
    finally:
        context.close()
    assert overflow <= 1, f"the page is {overflow}px wider than a 390px phone"
    assert sidebar_hidden, "the sidebar should fold away on a phone"
    assert out.stat().st_size > 10_000


def test_wide_formulas_scroll_instead_of_being_clipped_on_a_phone(browser, site_url: str) -> None:
    """Chapter 2's headline formula is wider than a 390 px screen: it must scroll in its box, not be cut off."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        page.goto(f"{site_url}book/ch2_sdpa.html", wait_until="load")
        page.evaluate("() => window.MathJax && MathJax.startup ? MathJax.startup.promise : null")
        boxes = page.evaluate(
            """() => [...document.querySelectorAll('mjx-container[display="true"]')].map(m => ({
                wide: m.scrollWidth > m.clientWidth + 1, overflow: getComputedStyle(m).overflowX,
                inside: m.getBoundingClientRect().right <= window.innerWidth + 1}))"""
        )
    finally:
        context.close()
    assert boxes, "no display formula found on chapter 2's page"
    assert any(b["wide"] for b in boxes), "expected at least one formula wider than a phone (the headline)"
    for box in boxes:
        assert box["inside"], box  # the box itself stays on the screen
        if box["wide"]:
            assert box["overflow"] in ("auto", "scroll"), box  # and what does not fit scrolls


def _luminance(css_color: str) -> float:
    """Relative brightness 0..1 of an ``rgb(...)``/``rgba(...)`` CSS colour."""
    r, g, b = (int(float(x)) for x in css_color[css_color.index("(") + 1 : -1].split(",")[:3])
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255
