"""Driving the site's interactive figures (``course.interactive``, plotly) in Chromium like a reader.

``open_figures`` loads a page in a fresh browser context that blocks (and records) every request to
another host and every console error, and waits until each ``<div class="course-plotly">`` is drawn.
The other helpers act on figure ``i`` of the page as a reader does, with the mouse (a step of the slider,
a button, a menu entry, a hover) or with the keyboard (Tab to the control, then arrow keys), and read
back what is drawn: the SVG of the bars, the picture of the heatmap, the title, the control's value, the
sentence that describes the plot. ``FigurePage.problems`` lists what a reader would suffer from.
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
  const figure = gd.closest('figure.course-interactive');
  const bars = [...gd.querySelectorAll('g.trace.bars g.point path')];
  const heights = bars.map(p => {
    const m = /^M[^,]+,([-\\d.]+)V([-\\d.]+)/.exec(p.getAttribute('d') || '');
    return m ? Math.abs(parseFloat(m[1]) - parseFloat(m[2])) : 0;
  });
  const text = sel => { const el = figure && figure.querySelector(sel); return el ? el.textContent.trim() : ''; };
  return {
    bar_heights: heights,
    bar_fills: bars.map(p => getComputedStyle(p).fill),
    heatmaps: [...gd.querySelectorAll('g.hm image')].map(im => im.getAttribute('href')),
    title: [text('.course-figure-main'), text('.course-figure-note')].filter(t => t).join(' '),
    slider_value: text('output'),
    description: text('.course-figure-text'),
    drawn: gd.getAttribute('data-drawn') === 'true',
    state: gd.getAttribute('data-state'),
  };
}
"""
_LABELS_JS = """
gd => JSON.parse(gd.closest('figure').querySelector('script.course-figure-spec').textContent).states.map(s => s.label)
"""


# The focused element and how its focus is drawn (the outline of the element, or of a radio's label).
_FOCUS_JS = """
() => {
  const el = document.activeElement;
  const drawn = el.matches('input[type=radio]') ? document.querySelector(`label[for="${el.id}"]`) : el;
  const style = getComputedStyle(drawn);
  return {id: el.id, tag: el.tagName.toLowerCase(), type: el.type || '', value: el.value,
          focus_visible: el.matches(':focus-visible'), outline: style.outlineStyle + ' ' + style.outlineWidth,
          box_shadow: style.boxShadow};
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

    def labels(self, index: int) -> list[str]:
        """The labels of the states figure ``index``'s control can show, in order."""
        return self.figure(index).evaluate(_LABELS_JS)

    def control(self, index: int):
        """Figure ``index``'s native control: the range input, the select, or its group of radio buttons."""
        return self.figure(index).locator("xpath=ancestor::figure[1]").locator("[data-course-control]")

    def wait_for_state(self, index: int, k: int) -> None:
        """Wait until figure ``index`` shows state ``k`` (its plotly call has finished)."""
        self.figure(index).locator(f"xpath=self::*[@data-state='{k}']").wait_for(timeout=DRAW_TIMEOUT_MS)

    def click_slider_step(self, index: int, label: str) -> None:
        """Click the slider's track at the step labelled ``label`` (as a reader clicks a point of it)."""
        labels = self.labels(index)
        if label not in labels:
            raise AssertionError(f"the slider has no step labelled {label!r}: {labels}")
        k = labels.index(label)
        track = self.control(index).first
        track.scroll_into_view_if_needed()
        box = track.bounding_box()
        thumb = 16  # px: Chromium's range thumb; positions run from its half to the width minus its half
        x = box["x"] + thumb / 2 + k / (len(labels) - 1) * (box["width"] - thumb)
        self.page.mouse.click(x, box["y"] + box["height"] / 2)
        self.wait_for_state(index, k)

    def click_button(self, index: int, label: str) -> None:
        """Pick the entry labelled ``label``: click its radio button, or choose it in the menu."""
        labels = self.labels(index)
        if label not in labels:
            raise AssertionError(f"no entry {label!r} in figure {index}: {labels}")
        k = labels.index(label)
        control = self.control(index)
        kind = control.first.get_attribute("data-course-control")
        if kind == "select":
            control.first.select_option(value=str(k))
        else:
            figure = self.figure(index).locator("xpath=ancestor::figure[1]")
            figure.locator(f"label[for='{control.nth(k).get_attribute('id')}']").click()
        self.wait_for_state(index, k)

    def every_state(self, index: int) -> tuple[list[str], list[dict]]:
        """Pick each entry of figure ``index``'s control in turn: its labels, and what it showed for each."""
        labels, shown = self.labels(index), []
        for label in labels:
            self.click_button(index, label)
            shown.append(self.state(index))
        return labels, shown

    def press(self, index: int, *keys: str) -> dict:
        """Focus figure ``index``'s control (its checked radio button) and press ``keys``; returns what
        the focused element is and how its focus is drawn."""
        control = self.control(index)
        checked = [i for i in range(control.count()) if control.nth(i).is_checked()] if control.count() > 1 else [0]
        target = control.nth(checked[0] if checked else 0)
        target.scroll_into_view_if_needed()
        target.focus()
        for key in keys:
            self.page.keyboard.press(key)
            self.page.wait_for_timeout(50)
        return self.page.evaluate(_FOCUS_JS)

    def tab_to(self, index: int, max_tabs: int = 400) -> bool:
        """Press Tab from the top of the page until figure ``index``'s control has the focus."""
        self.page.evaluate("() => { document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); }")
        ids = set(self.control(index).evaluate_all("els => els.map(e => e.id)"))
        for _ in range(max_tabs):
            self.page.keyboard.press("Tab")
            if self.page.evaluate("() => document.activeElement && document.activeElement.id") in ids:
                return True
        return False

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
def open_figures(browser, url: str, *, viewport: dict | None = None, dark: bool = False) -> Iterator[FigurePage]:
    """Load ``url`` offline-style (in the theme's dark mode if ``dark``) and wait until every interactive
    figure on it is drawn."""
    context = browser.new_context(viewport=viewport or {"width": 1280, "height": 900},
                                  color_scheme="dark" if dark else "light")
    if dark:
        context.add_init_script("localStorage.setItem('mode', 'dark'); localStorage.setItem('theme', 'dark');")
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
