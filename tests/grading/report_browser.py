"""Look at a report page of the term (class report, similarity) in headless Chromium, as a person would.

Debian's Chromium through Playwright (never a browser download), a fresh context per width, every request
recorded (a report is a local file: nothing may load from elsewhere), console errors, the numbers of its
rows, its images, whether it scrolls sideways, axe-core's WCAG 2.1 AA violations, and a full-page
screenshot in ``_build/screenshots/`` to look at.
"""

from __future__ import annotations

from pathlib import Path

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "_build" / "screenshots"
WCAG = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}


def look_at(page_path: Path, widths=(1280, 390)) -> list[dict]:
    """Open a local report in Chromium at each width: what it requested, its console errors, the rows'
    numbers, its images, axe-core's WCAG 2.1 AA violations; a full-page screenshot of each."""
    from axe_playwright_python.sync_playwright import Axe
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    seen = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        for width in widths:
            context = browser.new_context(viewport={"width": width, "height": 900})
            requests, errors = [], []
            context.on("request", lambda r, requests=requests: requests.append(r.url))
            page = context.new_page()
            page.on("console", lambda m, errors=errors: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
            page.goto(page_path.as_uri())
            page.wait_for_load_state("load")
            rows = page.eval_on_selector_all("tr[data-student]", """rows => Object.fromEntries(rows.map(r =>
                [r.dataset.student, Object.fromEntries([...r.querySelectorAll('[data-col]')].map(
                    c => [c.dataset.col, c.textContent.trim()]))]))""")
            stats = page.eval_on_selector_all("[data-stat]", "els => Object.fromEntries(els.map(e => "
                                                               "[e.dataset.stat, e.textContent.trim()]))")
            images = page.eval_on_selector_all("img", "imgs => imgs.map(i => [i.naturalWidth, i.alt])")
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            text = page.inner_text("body")
            violations = Axe().run(page, options=WCAG).response["violations"]
            shot = SCREENSHOTS / f"{page_path.parent.name}-{page_path.stem}-{width}.png"
            page.screenshot(path=str(shot), full_page=True)
            seen.append({"width": width, "requests": requests, "errors": errors, "rows": rows, "stats": stats,
                         "images": images, "overflow": overflow, "text": text, "shot": shot,
                         "violations": [(v["id"], v["help"], [n["html"][:120] for n in v["nodes"]][:3])
                                        for v in violations]})
            context.close()
        browser.close()
    return seen
