"""Driving the site's interactive figures (``course.interactive``, plotly) in Chromium like a reader.

``open_figures`` loads a page in a fresh browser context that blocks (and records) every request to
another host and every console error, and waits until each ``<div class="course-plotly">`` is drawn.
The other helpers act on figure ``i`` of the page with the mouse (a slider step, a button, a menu
entry, a hover) and read back what is drawn: the SVG of the bars, the picture of the heatmap, the
title, the hover label. ``FigurePage.problems`` lists what a reader would suffer from.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from site_audit import is_local

DRAW_TIMEOUT_MS = 20_000

# What figure i shows now: bar heights (px) and fills, the heatmap picture, the title, control state.
_STATE_JS = """
(gd) => {
  const bars = [...gd.querySelectorAll('g.trace.bars g.point path')];
  const heights = bars.map(p => {
    const m = /^M[^,]+,([-\\d.]+)V([-\\d.]+)/.exec(p.getAttribute('d') || '');
    return m ? Math.abs(parseFloat(m[1]) - parseFloat(m[2])) : 0;
  });
  const title = gd.querySelector('.gtitle');
  const current = [...gd.querySelectorAll('g.slider-group > text.slider-label')].map(t => t.textContent);
  return {
    bar_heights: heights,
    bar_fills: bars.map(p => getComputedStyle(p).fill),
    heatmaps: [...gd.querySelectorAll('g.hm image')].map(im => im.getAttribute('href')),
    title: title ? title.textContent : '',
    slider_value: current.length ? current[0] : '',
    drawn: gd.getAttribute('data-drawn') === 'true',
  };
}
"""


@dataclass
class FigurePage:
    page: object
    problems: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)

    def figure(self, index: int):
        return self.page.locator(".course-plotly").nth(index)

    def count(self) -> int:
        return self.page.locator(".course-plotly").count()

    def state(self, index: int) -> dict:
        figure = self.figure(index)
        figure.scroll_into_view_if_needed()
        return figure.evaluate(_STATE_JS)

    def click_slider_step(self, index: int, label: str) -> None:
        """Click the slider's rail under the step labelled ``label`` (as a reader clicks a tick)."""
        figure = self.figure(index)
        figure.scroll_into_view_if_needed()
        step = figure.locator("g.slider-labels text.slider-label", has_text=label)
        exact = [i for i in range(step.count()) if step.nth(i).text_content().strip() == label]
        if not exact:
            raise AssertionError(f"the slider has no step labelled {label!r}")
        box = step.nth(exact[0]).bounding_box()
        rail = figure.locator("rect.slider-rail-touch-rect").bounding_box()
        self.page.mouse.click(box["x"] + box["width"] / 2, rail["y"] + rail["height"] / 2)
        self.page.wait_for_timeout(150)

    def click_button(self, index: int, label: str) -> None:
        """Click the button (or, for a dropdown menu, open it and click the entry) labelled ``label``."""
        figure = self.figure(index)
        figure.scroll_into_view_if_needed()
        if figure.evaluate("gd => (gd.layout.updatemenus || [{}])[0].type") == "dropdown":
            figure.locator("g.updatemenu-header-group").first.click()  # open the menu first
            self.page.wait_for_timeout(150)
        buttons = figure.locator("g.updatemenu-button, g.updatemenu-dropdown-button")
        for i in range(buttons.count()):
            if buttons.nth(i).text_content().strip() == label:
                buttons.nth(i).click()
                self.page.wait_for_timeout(150)
                return
        names = [buttons.nth(i).text_content() for i in range(buttons.count())]
        raise AssertionError(f"no button {label!r} in figure {index}: {names}")

    def hover_cell(self, index: int, row: int, col: int, shape: tuple[int, int]) -> str:
        """Move the mouse over cell ``(row, col)`` of the shown heatmap of ``shape = (n_q, n_k)``; the label."""
        figure = self.figure(index)
        figure.scroll_into_view_if_needed()
        box = figure.locator("g.hm image").first.bounding_box()
        n_q, n_k = shape
        return self._hover(box["x"] + (col + 0.5) * box["width"] / n_k, box["y"] + (row + 0.5) * box["height"] / n_q)

    def hover_bar(self, index: int, bar: int) -> str:
        figure = self.figure(index)
        figure.scroll_into_view_if_needed()
        box = figure.locator("g.trace.bars g.point path").nth(bar).bounding_box()
        return self._hover(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)

    def _hover(self, x: float, y: float) -> str:
        label = self.page.locator("g.hoverlayer g.hovertext").first
        # Off every figure first, until the last label is gone: reading right after the move could catch the
        # previous cell's label still drawn (a flake seen once in CI: the label of the cell hovered before).
        self.page.mouse.move(0, 0)
        label.wait_for(state="detached", timeout=5_000)
        self.page.mouse.move(x - 3, y - 3)
        self.page.mouse.move(x, y, steps=3)
        label.wait_for(timeout=5_000)
        lines = label.evaluate("el => [...el.querySelectorAll('text.nums tspan.line')].map(t => t.textContent)")
        return " ".join(" ".join(lines or [label.text_content()]).split())


@contextmanager
def open_figures(browser, url: str, *, viewport: dict | None = None) -> Iterator[FigurePage]:
    """Load ``url`` offline-style and wait for every interactive figure on it to be drawn."""
    context = browser.new_context(viewport=viewport or {"width": 1280, "height": 900})
    result = None

    def gate(route) -> None:
        if is_local(route.request.url):
            route.continue_()
        else:
            result.outside.append(route.request.url)
            route.abort()

    try:
        page = context.new_page()
        result = FigurePage(page)
        context.route("**/*", gate)
        page.on("console", lambda m: m.type == "error" and result.problems.append(f"console error: {m.text}"))
        page.on("pageerror", lambda e: result.problems.append(f"uncaught JavaScript error: {e}"))
        page.on("response", lambda r: r.status >= 400 and result.problems.append(f"HTTP {r.status}: {r.url}"))
        page.goto(url, wait_until="load")
        figures = page.locator(".course-plotly")
        for i in range(figures.count()):
            try:
                figures.nth(i).locator("xpath=self::*[@data-drawn='true']").wait_for(timeout=DRAW_TIMEOUT_MS)
            except Exception:  # noqa: BLE001 (reported, not raised: the broken-on-purpose tests read it)
                text = figures.nth(i).text_content()
                result.problems.append(f"interactive figure {i} was not drawn: {text.strip()[:120]!r}")
        yield result
    finally:
        context.close()
