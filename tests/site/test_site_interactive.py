"""The interactive figures of the built site work in Chromium, offline, with no kernel.

For each figure: moving its control (a slider step, a button, a menu entry, clicked with the mouse)
changes what is drawn, and what is drawn then is what the page's own functions compute for that
setting; hovering shows the expected text; plotly.js comes from the site's ``_static/`` and no request
leaves 127.0.0.1. The controls are native HTML (``course.interactive``): the keyboard reaches each one
with Tab, moves it with the arrow keys (Home/End on the slider), its focus is drawn, and the sentence
that describes the plot for screen readers follows it. Copies of the site broken on purpose (plotly.js
removed, a control that does nothing) prove that these checks fail when they should.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from plotly_page import open_figures

import solutions
from course import interactive, toydata, toyheads

pytestmark = [pytest.mark.site, pytest.mark.slow]

# page -> the number of interactive figures its text announces
INTERACTIVE_PAGES = {
    "book/ch1_lookup": 1,  # temperature slider: weights and the mixed colour
    "book/ch2_sdpa": 1,  # masks: none / causal / padding / both, hover = query, key, weight
    "book/ch4_multihead": 1,  # attention viewer over the hand-set heads
    "book/ch7_transformer": 1,  # per-layer/per-head cross-attention viewer of the trained model
    "book/ch8_gpt": 1,  # per-layer/per-head viewer of the trained induction model
}


def figure_count(built_site: Path, docname: str) -> int:
    return (built_site / f"{docname}.html").read_text(encoding="utf-8").count(f'class="{interactive.FIGURE_CLASS}"')


@pytest.mark.parametrize("docname", sorted(INTERACTIVE_PAGES))
def test_interactive_figures_draw_from_the_sites_own_plotly(browser, site_url: str, built_site: Path,
                                                            docname: str) -> None:
    html = (built_site / f"{docname}.html").read_text(encoding="utf-8")
    assert figure_count(built_site, docname) == INTERACTIVE_PAGES[docname]
    assert re.search(r'<script defer="defer" src="\.\./_static/plotly/plotly\.min\.js(\?v=\w+)?"></script>', html)
    with open_figures(browser, f"{site_url}{docname}.html") as fp:
        assert fp.count() == INTERACTIVE_PAGES[docname]
        states = [fp.state(i) for i in range(fp.count())]
    assert fp.problems == [] and fp.outside == [], fp.problems + fp.outside
    assert all(s["drawn"] and (s["bar_heights"] or s["heatmaps"]) for s in states), states


def test_pages_without_figures_do_not_load_plotly(built_site: Path) -> None:
    assert (built_site / "_static" / "plotly" / "plotly.min.js").stat().st_size > 1_000_000
    for html in built_site.joinpath("book").glob("*.html"):
        if f"book/{html.stem}" not in INTERACTIVE_PAGES:
            assert "plotly.min.js" not in html.read_text(encoding="utf-8"), html.name


# ----------------------------------------------------------------------------- chapter 1: temperature slider


def ch1_lookup(temperature: float) -> tuple[np.ndarray, np.ndarray]:
    """What chapter 1's slider shows at ``temperature``: (mixed colour (3,), weights (5,))."""
    palette = toydata.paint_palette()
    return solutions.soft_lookup(toydata.wheel_direction(20.0), palette.keys, palette.values, temperature=temperature)


def css_rgb(rgb: np.ndarray) -> str:
    r, g, b = (int(round(255 * c)) for c in np.clip(rgb, 0, 1))
    return f"rgb({r}, {g}, {b})"


def test_temperature_slider_changes_the_weights_and_the_mixed_colour(browser, site_url: str) -> None:
    with open_figures(browser, f"{site_url}book/ch1_lookup.html") as fp:
        before = fp.state(0)
        fp.click_slider_step(0, "0.02")
        cold = fp.state(0)
        cold_hover = fp.hover_bar(0, 0)
        fp.click_slider_step(0, "10")
        hot = fp.state(0)
    assert fp.problems == [] and fp.outside == [], fp.problems + fp.outside
    assert before["slider_value"].endswith("0.3") and cold["slider_value"].endswith("0.02"), (before, cold)
    assert cold["bar_heights"] != before["bar_heights"] and cold["bar_fills"][-1] != before["bar_fills"][-1]
    for state, T in ((before, 0.3), (cold, 0.02), (hot, 10.0)):
        mix, weights = ch1_lookup(T)
        heights = np.array(state["bar_heights"][:5])  # the 5 weight bars; the last bar is the colour swatch
        np.testing.assert_allclose(heights / heights.sum(), weights, atol=0.01, err_msg=f"T={T}")
        assert state["bar_fills"][-1] == css_rgb(mix), (T, state["bar_fills"][-1], css_rgb(mix))
    assert cold_hover == f"key red: weight {ch1_lookup(0.02)[1][0]:.3f}", cold_hover


# ----------------------------------------------------------------------------- chapter 2: masks


def ch2_weights(mask_name: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """What chapter 2's mask figure shows for sentence 1: (tokens, mask (6, 6), weights (6, 6))."""
    tokens = ["the", "dog", "slept", "<pad>", "<pad>", "<pad>"]
    W_q, W_k, W_v = toydata.grammar_projections()
    X = np.vstack([toydata.sentence_embeddings(tokens[:3]), np.zeros((3, W_q.shape[0]))])
    pad = np.broadcast_to(solutions.padding_mask(np.array([6, 3, 2]), 6)[1], (6, 6))
    causal = solutions.causal_mask(6, 6)
    mask = {"none": np.ones((6, 6), dtype=bool), "causal": causal, "padding": pad, "both": causal & pad}[mask_name]
    return tokens, mask, solutions.scaled_dot_product_attention(X @ W_q, X @ W_k, X @ W_v, mask=mask)[1]


def expected_hover(tokens_q: list[str], tokens_k: list[str], i: int, j: int, mask, weights) -> str:
    tail = f"weight {weights[i, j]:.3f}" if mask[i, j] else "blocked by the mask (weight 0)"
    return f"query {i}: {tokens_q[i]} key {j}: {tokens_k[j]} {tail}"


def test_mask_buttons_change_the_heatmap_and_hover_shows_query_key_weight(browser, site_url: str) -> None:
    shown, hovers = {}, {}
    with open_figures(browser, f"{site_url}book/ch2_sdpa.html") as fp:
        shown["none"] = fp.state(0)
        hovers["none"] = fp.hover_cell(0, 0, 3, (6, 6))
        for name in ("causal", "padding", "both"):
            fp.click_button(0, name)
            shown[name] = fp.state(0)
            hovers[name] = (fp.hover_cell(0, 0, 1, (6, 6)), fp.hover_cell(0, 2, 1, (6, 6)))
    assert fp.problems == [] and fp.outside == [], fp.problems + fp.outside
    pictures = [s["heatmaps"][0] for s in shown.values()]
    assert all(len(s["heatmaps"]) == 1 for s in shown.values()), "exactly one heatmap is shown at a time"
    assert len(set(pictures)) == 4, "each mask must draw a different heatmap"
    for name, state in shown.items():
        assert state["title"].startswith(f"sentence 1, mask: {name}"), state["title"]
    tokens, mask, weights = ch2_weights("none")
    assert hovers["none"] == expected_hover(tokens, tokens, 0, 3, mask, weights)
    for name in ("causal", "padding", "both"):
        tokens, mask, weights = ch2_weights(name)
        assert hovers[name] == tuple(expected_hover(tokens, tokens, i, 1, mask, weights) for i in (0, 2)), name
    assert "blocked" in hovers["causal"][0] and "weight 0." in hovers["padding"][0]  # "the" -> "dog"


# ----------------------------------------------------------------------------- chapter 4: attention viewer


def ch4_head_weights() -> torch.Tensor:
    """``(4, n, n)``: chapter 4's hand-set heads on its sentence."""
    x = toyheads.embed()
    mha = toyheads.set_heads_by_hand(solutions.MultiHeadAttention(toyheads.D_MODEL, toyheads.N_HEADS))
    with torch.no_grad():
        return mha(x, x, x)[1][0]


def test_attention_viewer_menu_switches_heads_and_hover_reads_the_weights(browser, site_url: str) -> None:
    n = len(toyheads.SENTENCE)
    weights = ch4_head_weights().numpy()
    labels = [f"head {h}: {name}" for h, name in enumerate(toyheads.HEAD_NAMES)]
    shown, hovers = [], []
    with open_figures(browser, f"{site_url}book/ch4_multihead.html") as fp:
        shown.append(fp.state(0))
        for label in labels:
            fp.click_button(0, label)
            shown.append(fp.state(0))
            hovers.append(fp.hover_cell(0, 3, 2, (n, n)))  # query "sat", key "cat"
    assert fp.problems == [] and fp.outside == [], fp.problems + fp.outside
    assert len({s["heatmaps"][0] for s in shown}) == len(shown), "every entry draws its own heatmap"
    for label, state, hover, head in zip(labels, shown[1:], hovers, range(4), strict=True):
        assert state["title"] == f"attention weights: {label}", state["title"]
        assert hover == f"query 3: sat key 2: cat weight {weights[head, 3, 2]:.3f}", hover
    assert hovers[0].endswith("weight 1.000")  # head 0 looks at the previous token


# ----------------------------------------------------------------------------- chapter 7: the trained model


def test_trained_model_viewer_menu_switches_layers_and_heads(browser, site_url: str) -> None:
    """Chapter 7's viewer: every layer and head of the trained model's cross-attention, then the true alignment."""
    with open_figures(browser, f"{site_url}book/ch7_transformer.html") as fp:
        labels, shown = fp.every_state(0)
    assert fp.problems == [] and fp.outside == [], fp.problems + fp.outside
    assert labels[-1] == "true alignment" and len(labels) >= 5, labels
    assert all(label.startswith("cross-attention, layer ") for label in labels[:-1]), labels
    assert len({s["heatmaps"][0] for s in shown}) == len(shown), "every entry draws its own heatmap"
    for label, state in zip(labels, shown, strict=True):
        assert label in state["title"], (label, state["title"])


# ----------------------------------------------------------------------------- chapter 8: the induction model


def test_induction_model_viewer_shows_the_trained_heads(browser, site_url: str) -> None:
    """Chapter 8's viewer: the 2 x 2 heads of the trained two-layer model on one sequence of period 12; the
    induction head's hover reads the weight the page's model computes from the repeat to the token after
    the earlier copy."""
    from course import tinygpt

    two = tinygpt.trained_induction(2)  # the page's model: same seed and budget
    evaluation = tinygpt.eval_batch(period=12)
    sequence = evaluation[:1]
    weights = tinygpt.attention_weights(two.model, sequence)[:, 0].numpy()  # (layers, heads, n, n)
    _, (layer, head) = tinygpt.named_heads(tinygpt.head_scores(two.model, evaluation))
    tokens, n, i = sequence[0].tolist(), sequence.shape[1], 17
    with open_figures(browser, f"{site_url}book/ch8_gpt.html") as fp:
        labels, shown = fp.every_state(0)
        fp.click_button(0, f"layer {layer}, head {head}")
        hover = fp.hover_cell(0, i, i - 12 + 1, (n, n))
    assert fp.problems == [] and fp.outside == [], fp.problems + fp.outside
    assert labels == [f"layer {l}, head {h}" for l in range(2) for h in range(2)], labels
    assert len({s["heatmaps"][0] for s in shown}) == len(shown), "every entry draws its own heatmap"
    for label, state in zip(labels, shown, strict=True):
        assert label in state["title"] and "induction score" in state["title"], (label, state["title"])
    want = f"query {i}: {tokens[i]} key {i - 11}: {tokens[i - 11]} weight {weights[layer, head, i, i - 11]:.3f}"
    assert hover == want and weights[layer, head, i, i - 11] > 0.5, (hover, want)


# ----------------------------------------------------------------------------- the keyboard


def _focus_is_drawn(focus: dict) -> bool:
    return focus["focus_visible"] and (not focus["outline"].startswith("none") or focus["box_shadow"] != "none")


def test_the_temperature_slider_works_from_the_keyboard(browser, site_url: str) -> None:
    with open_figures(browser, f"{site_url}book/ch1_lookup.html") as fp:
        labels = fp.labels(0)
        assert fp.tab_to(0), "Tab never reaches the temperature slider"
        focus = fp.press(0, "End")
        fp.wait_for_state(0, len(labels) - 1)
        hot = fp.state(0)
        fp.press(0, "Home", "ArrowRight")
        fp.wait_for_state(0, 1)
        cold = fp.state(0)
    assert fp.problems == [] and fp.outside == [], fp.problems + fp.outside
    assert focus["type"] == "range" and _focus_is_drawn(focus), focus
    for state, T in ((hot, float(labels[-1])), (cold, float(labels[1]))):
        assert state["slider_value"] == f"{T:g}", state
        mix, weights = ch1_lookup(T)
        heights = np.array(state["bar_heights"][:5])
        np.testing.assert_allclose(heights / heights.sum(), weights, atol=0.01, err_msg=f"T={T}")
        assert state["bar_fills"][-1] == css_rgb(mix)
        assert f"temperature T = {T:g}" in state["description"] and f"red {weights[0]:.2f}" in state["description"]


def test_the_mask_buttons_work_from_the_keyboard(browser, site_url: str) -> None:
    with open_figures(browser, f"{site_url}book/ch2_sdpa.html") as fp:
        assert fp.tab_to(0), "Tab never reaches the mask buttons"
        before = fp.state(0)
        focus = fp.press(0, "ArrowRight")  # none -> causal, as for any group of radio buttons
        fp.wait_for_state(0, 1)
        causal = fp.state(0)
    assert fp.problems == [] and fp.outside == [], fp.problems + fp.outside
    assert focus["type"] == "radio" and focus["value"] == "1" and _focus_is_drawn(focus), focus
    assert causal["heatmaps"] != before["heatmaps"] and causal["title"].startswith("sentence 1, mask: causal"), causal
    assert "blocked cells drawn grey with a cross" in causal["description"]
    assert "blocked" not in before["description"]


@pytest.mark.parametrize("docname", ["book/ch4_multihead", "book/ch7_transformer", "book/ch8_gpt"])
def test_the_viewer_menus_work_from_the_keyboard(browser, site_url: str, docname: str) -> None:
    with open_figures(browser, f"{site_url}{docname}.html") as fp:
        labels = fp.labels(0)
        assert fp.tab_to(0), "Tab never reaches the menu"
        first = fp.state(0)
        focus = fp.press(0, "ArrowDown")
        fp.wait_for_state(0, 1)
        second = fp.state(0)
        fp.press(0, "End")
        fp.wait_for_state(0, len(labels) - 1)
        last = fp.state(0)
    assert fp.problems == [] and fp.outside == [], fp.problems + fp.outside
    assert focus["tag"] == "select" and _focus_is_drawn(focus), focus
    assert len({first["heatmaps"][0], second["heatmaps"][0], last["heatmaps"][0]}) == 3
    for state, label in ((first, labels[0]), (second, labels[1]), (last, labels[-1])):
        assert label in state["title"] and f"{label}. Heatmap of attention weights" in state["description"]


# ----------------------------------------------------------------------------- broken on purpose


def copy_site(built_site: Path, dest: Path) -> Path:
    shutil.copytree(built_site, dest, ignore=shutil.ignore_patterns("_sources"))
    return dest


def test_missing_plotly_is_caught(browser, serve, built_site: Path, tmp_path: Path) -> None:
    broken = copy_site(built_site, tmp_path / "html")
    (broken / "_static" / "plotly" / "plotly.min.js").unlink()
    with open_figures(browser, f"{serve(broken)}book/ch2_sdpa.html") as fp:
        state = fp.state(0)
    text = "\n".join(fp.problems)
    assert "HTTP 404" in text and "plotly.min.js" in text, text
    assert "plotly.js did not load" in text, text  # the figure's own console error
    assert "interactive figure 0 was not drawn" in text and "needs plotly.js" in text, text
    assert not state["drawn"] and state["heatmaps"] == []


def test_a_control_that_changes_nothing_is_caught(browser, serve, built_site: Path, tmp_path: Path) -> None:
    """The button check compares pictures: buttons rewired to plotly's no-op method must look broken."""
    broken = copy_site(built_site, tmp_path / "html")
    page = broken / "book" / "ch2_sdpa.html"
    html, n = re.subn(r'"method":"update"', '"method":"skip"', page.read_text(encoding="utf-8"))
    assert n == 4, n
    page.write_text(html, encoding="utf-8")
    with open_figures(browser, f"{serve(broken)}book/ch2_sdpa.html") as fp:
        before = fp.state(0)
        fp.click_button(0, "causal")
        after = fp.state(0)
    assert fp.problems == []
    assert after["heatmaps"] == before["heatmaps"] and after["title"] == before["title"]
