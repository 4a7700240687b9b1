"""``course.interactive`` and ``course.iplots``: what the figures hold before any browser draws them.

The browser side (controls change what is drawn, hover texts, offline) is tested on the built site in
``tests/site/test_site_interactive.py``.
"""

from __future__ import annotations

import html
import json
import re

import numpy as np
import pytest
import torch

from course import interactive, iplots


def spec_of(html: str) -> dict:
    """The figure JSON embedded in ``figure_html``'s data script."""
    text = re.search(r'<script type="application/json" class="course-figure-spec">(.*?)</script>', html, re.S).group(1)
    return json.loads(text.replace("<\\/", "</"))


def viewer(**kwargs) -> interactive.Interactive:
    weights = {"head 0": np.array([[1.0, 0.0], [0.25, 0.75]]), "head 1": np.array([[0.5, 0.5], [0.0, 1.0]])}
    return iplots.attention_viewer(weights, ["<s>", "cat"], **kwargs)


# ----------------------------------------------------------------------------- embedding


def test_site_html_draws_with_the_sites_plotly_and_names_no_other_host() -> None:
    shown = viewer(title="weights", notes={"head 1": "a note"})
    html = interactive.figure_html(shown.figure, div_id="fig-1", texts=shown.texts, control_label="head")
    assert html.startswith('<figure class="course-interactive"')
    assert f'<div class="{interactive.FIGURE_CLASS}" id="fig-1" role="img" aria-labelledby="fig-1-text"' in html
    assert "<script>" not in html  # data only: _static/course.js draws it
    assert "http://" not in html and "https://" not in html and "require" not in html
    assert f'data-plotly-path="{interactive.PLOTLY_STATIC_PATH}"' in html  # named when plotly.js is missing
    spec = spec_of(html)
    assert spec["config"]["displaylogo"] is False and spec["config"]["responsive"] is True
    assert spec["config"]["displayModeBar"] is False and spec["layout"]["dragmode"] is False
    assert spec["layout"]["xaxis"]["fixedrange"] is True and spec["layout"]["title"]["text"] == ""
    menu = spec["layout"]["updatemenus"][0]  # plotly's own menu stays, hidden: its buttons' calls are made
    assert menu["visible"] is False and [b["method"] for b in menu["buttons"]] == ["update", "update"]
    assert "title.text" not in menu["buttons"][1]["args"][1]  # the title is HTML on the site
    assert len(spec["data"]) == 2 and [s["label"] for s in spec["states"]] == ["head 0", "head 1"]
    assert spec["states"][1]["title"] == ["weights: head 1", "a note"]
    assert '<label for="fig-1-control">head</label>' in html and '<select id="fig-1-control"' in html
    assert '<span class="course-figure-main">weights: head 0</span>' in html
    assert html.count("Heatmap of attention weights") == 1 + 2  # the shown state's sentence, and both in the data


def test_site_controls_are_native_and_labelled() -> None:
    radios = interactive.figure_html(viewer(control="buttons").figure, div_id="b", control_label="mask")
    assert '<fieldset class="course-control course-radios"><legend>mask</legend>' in radios
    assert radios.count('type="radio"') == 2 and '<label for="b-control-1">head 1</label>' in radios
    sliding = slider(active=1)
    html = interactive.figure_html(sliding.figure, div_id="s", texts=sliding.texts, control_label="temperature T")
    assert '<input type="range" id="s-control" min="0" max="2" step="1" value="1" aria-valuetext="1"' in html
    assert '<label for="s-control">temperature T</label>' in html
    assert '<output id="s-value" for="s-control">1</output>' in html
    assert html.index('class="course-plotly"') < html.index('type="range"')  # the slider stays under the plot
    steps = spec_of(html)["layout"]["sliders"][0]
    assert steps["visible"] is False and [s["method"] for s in steps["steps"]] == ["restyle"] * 3


def test_site_refuses_two_controls_and_texts_that_do_not_match() -> None:
    fig = viewer().figure
    fig.update_layout(sliders=[{"steps": [{"label": "a", "method": "restyle", "args": [{}]}]}])
    with pytest.raises(ValueError, match="one control per figure"):
        interactive.figure_html(fig)
    with pytest.raises(ValueError, match="3 state texts for a control of 2 states"):
        interactive.figure_html(viewer().figure, texts=["a", "b", "c"])


def test_plotly_markup_becomes_plain_text() -> None:
    assert interactive.plain_text("a &lt;s&gt;<br><sup>note <b>x</b></sup>") == ["a <s>", "note x"]


def test_text_that_would_close_the_script_is_escaped() -> None:
    fig = iplots.attention_viewer({"</script><b>x": np.eye(2)}, ["a", "b"]).figure
    html = interactive.figure_html(fig)
    assert html.count("</script>") == 1  # only the script's own end tag


def test_the_div_ids_are_unique_and_follow_the_figure() -> None:
    a, b = interactive.figure_html(viewer().figure), interactive.figure_html(viewer().figure)
    ids = [re.search(r'class="course-plotly" id="([^"]+)"', h).group(1) for h in (a, b)]
    assert ids[0] != ids[1] and ids[0].rsplit("-", 1)[0] == ids[1].rsplit("-", 1)[0]


def test_output_is_the_site_html_while_the_book_builds_and_plotlys_own_elsewhere(monkeypatch) -> None:
    shown = viewer()
    monkeypatch.setenv(interactive.SITE_ENV, "1")
    bundle = shown._repr_mimebundle_()
    assert set(bundle) == {"text/html", "text/plain"} and f'class="{interactive.FIGURE_CLASS}"' in bundle["text/html"]
    assert shown.texts[0] in html.unescape(bundle["text/html"]) and "<label" in bundle["text/html"]
    monkeypatch.delenv(interactive.SITE_ENV)
    monkeypatch.setattr(type(shown.figure), "_repr_mimebundle_",
                        lambda self, include=None, exclude=None: {"application/vnd.plotly.v1+json": {"data": []}})
    assert shown._repr_mimebundle_() == {"application/vnd.plotly.v1+json": {"data": []}}


def test_plotly_js_is_the_one_inside_the_plotly_wheel() -> None:
    path = interactive.plotly_js()
    assert path.name == "plotly.min.js" and path.stat().st_size > 1_000_000
    shown = viewer()
    assert interactive.show(shown) is shown and isinstance(interactive.show(shown.figure), interactive.Interactive)


# ----------------------------------------------------------------------------- attention viewer


def test_viewer_has_one_heatmap_per_entry_and_a_control_that_shows_one_at_a_time() -> None:
    fig = viewer().figure
    assert [t.type for t in fig.data] == ["heatmap", "heatmap"]
    assert [t.visible for t in fig.data] == [True, False]
    buttons = fig.layout.updatemenus[0].buttons
    assert [b.label for b in buttons] == ["head 0", "head 1"]
    assert [b.args[0]["visible"] for b in buttons] == [[True, False], [False, True]]
    np.testing.assert_array_equal(np.array(fig.data[1].z, dtype=float), [[0.5, 0.5], [0.0, 1.0]])


@pytest.mark.parametrize("control", ["buttons", "dropdown"])
def test_viewer_menus(control: str) -> None:
    assert viewer(control=control).figure.layout.updatemenus[0].type == control


def test_viewer_slider() -> None:
    fig = viewer(control="slider").figure
    assert not fig.layout.updatemenus and [s.label for s in fig.layout.sliders[0].steps] == ["head 0", "head 1"]


def test_hover_names_query_key_and_weight_and_blocked_cells_say_so() -> None:
    mask = np.array([[True, False], [True, True]])
    fig = viewer(masks={"head 0": mask}).figure
    hover = fig.data[0].customdata
    assert hover[1][0] == "query 1: <b>cat</b><br>key 0: <b>&lt;s&gt;</b><br>weight 0.250"
    assert hover[0][1].endswith("blocked by the mask (weight 0)")
    assert fig.data[0].z[0][1] is None or np.isnan(fig.data[0].z[0][1])  # a gap: the grey background shows
    assert fig.data[0].hovertemplate == "%{customdata}<extra></extra>"
    assert list(fig.layout.yaxis.ticktext) == ["&lt;s&gt;", "cat"]  # plotly would swallow a raw <s>


def test_blocked_cells_get_crosses_that_follow_their_entry() -> None:
    mask = np.array([[True, False], [True, True]])
    fig = viewer(masks={"head 1": mask}).figure
    assert [t.type for t in fig.data] == ["heatmap", "heatmap", "scatter"]
    assert list(fig.data[2].x) == [1] and list(fig.data[2].y) == [0] and fig.data[2].visible is False
    buttons = fig.layout.updatemenus[0].buttons
    assert [b.args[0]["visible"] for b in buttons] == [[True, False, False], [False, True, True]]


def test_each_entry_is_said_in_words() -> None:
    mask = np.array([[True, False], [True, True]])
    shown = viewer(masks={"head 1": mask}, title="w")
    assert shown.texts[0] == ("w: head 0. Heatmap of attention weights, 2 queries (rows) by 2 keys (columns), from 0 "
                              "(white) to 1 (dark blue). Strongest key of each query: <s> → <s> 1.00; cat → cat 0.75.")
    assert "1 blocked cell drawn grey with a cross" in shown.texts[1] and "<s> → <s> 0.50" in shown.texts[1]
    none = iplots.weights_in_words(np.zeros((1, 2)), np.array([[False, False]]), ["q"], ["a", "b"])
    assert "q: every key blocked" in none


def test_viewer_takes_tensors_that_require_grad() -> None:
    w = torch.softmax(torch.randn(3, 3, requires_grad=True), dim=-1)
    fig = iplots.attention_viewer({"w": w}, ["a", "b", "c"]).figure
    np.testing.assert_allclose(np.array(fig.data[0].z, dtype=float), w.detach().numpy(), rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"weights": {}}, "empty"),
        ({"weights": {"a": np.eye(2), "b": np.eye(3)}}, "every entry must be"),
        ({"weights": {"a": np.eye(2)}, "query_labels": ["x"]}, "1 labels for 2"),
        ({"weights": {"a": np.eye(2)}, "masks": {"b": np.eye(2, dtype=bool)}}, "lacks"),
        ({"weights": {"a": np.eye(2)}, "masks": {"a": np.ones((2, 3), dtype=bool)}}, "masks\\['a'\\]"),
        ({"weights": {"a": np.eye(2)}, "control": "knob"}, "control must be one of"),
    ],
)
def test_viewer_rejects_bad_input_clearly(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        iplots.attention_viewer(**kwargs)


def test_layer_head_weights_names_every_head_of_every_layer() -> None:
    w = np.random.default_rng(0).random((2, 3, 4, 5))
    named = iplots.layer_head_weights(w)
    assert list(named) == [f"layer {layer}, head {head}" for layer in range(2) for head in range(3)]
    np.testing.assert_array_equal(named["layer 1, head 2"], w[1, 2])
    one_layer = iplots.layer_head_weights(torch.tensor(w[0]), head_names=["prev", "next", "same"])
    assert list(one_layer) == ["head 0: prev", "head 1: next", "head 2: same"]
    with pytest.raises(ValueError, match="n_heads, n_q, n_k"):
        iplots.layer_head_weights(np.ones((4, 5)))
    with pytest.raises(ValueError, match="3 head names"):
        iplots.layer_head_weights(w, head_names=["a"])


# ----------------------------------------------------------------------------- temperature slider


def slider(**kwargs) -> interactive.Interactive:
    temps = [0.1, 1.0, 10.0]
    weights = [[0.9, 0.1], [0.6, 0.4], [0.5, 0.5]]
    mixes = [[0.9, 0.1, 0.0], [0.6, 0.4, 0.0], [0.5, 0.5, 0.0]]
    return iplots.temperature_slider(temps, weights, mixes, ["red", "green"], [[1, 0, 0], [0, 1, 0]], **kwargs)


def test_slider_steps_restyle_the_bars_and_the_swatch() -> None:
    fig = slider(active=1).figure
    steps = fig.layout.sliders[0].steps
    assert [s.label for s in steps] == ["0.1", "1", "10"] and fig.layout.sliders[0].active == 1
    assert list(fig.data[0].y) == [0.6, 0.4] and fig.data[1].marker.color == ("rgb(153,102,0)",)
    restyle, traces = steps[0].args
    assert list(traces) == [0, 1] and restyle["y"][0] == [0.9, 0.1] and restyle["marker.color"][1] == ["rgb(230,26,0)"]


def test_slider_says_each_temperature_in_words() -> None:
    texts = slider(title="q").texts
    assert texts[0] == ("q, temperature T = 0.1. Bars of the weights: red 0.90, green 0.10. "
                        "Mixed colour: red 0.90, green 0.10, blue 0.00.")
    assert len(texts) == 3


def test_slider_rejects_mismatched_steps() -> None:
    with pytest.raises(ValueError, match="one per temperature"):
        iplots.temperature_slider([0.1, 1.0], [[1.0, 0.0]], [[1, 0, 0]], ["r", "g"], [[1, 0, 0], [0, 1, 0]])
    with pytest.raises(ValueError, match="not a step"):
        slider(active=3)


def test_a_wide_grid_keeps_a_legible_width_and_scrolls_in_its_box() -> None:
    """24 keys need about 14 px each: on a phone the plot keeps that width in a sideways-scrolling box."""
    from course import interactive, iplots

    wide = interactive.figure_html(iplots.attention_viewer({"a": np.eye(24)}).figure)
    narrow = interactive.figure_html(iplots.attention_viewer({"a": np.eye(4)}).figure)
    widths = [int(re.search(r"min-width:(\d+)px", page).group(1)) for page in (wide, narrow)]
    assert widths[0] >= 14 * 24 + 100 > 390 > widths[1], widths
    assert '<div class="course-plot-box"><div class="course-plotly"' in wide
    assert '"meta"' not in wide  # the width went to the page, not to plotly
