"""``course.interactive`` and ``course.iplots``: what the figures hold before any browser draws them.

The browser side (controls change what is drawn, hover texts, offline) is tested on the built site in
``tests/site/test_site_interactive.py``.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from course import interactive, iplots


def spec_of(html: str) -> dict:
    """The figure JSON embedded in ``figure_html``'s script."""
    text = re.search(r"spec = (\{.*\});\n", html).group(1)
    return json.loads(text.replace("<\\/", "</"))


def viewer(**kwargs) -> interactive.Interactive:
    weights = {"head 0": np.array([[1.0, 0.0], [0.25, 0.75]]), "head 1": np.array([[0.5, 0.5], [0.0, 1.0]])}
    return iplots.attention_viewer(weights, ["<s>", "cat"], **kwargs)


# ----------------------------------------------------------------------------- embedding


def test_site_html_draws_with_the_sites_plotly_and_names_no_other_host() -> None:
    html = interactive.figure_html(viewer().figure, div_id="fig-1")
    assert html.startswith(f'<div class="{interactive.FIGURE_CLASS}" id="fig-1"')
    assert "Plotly.newPlot" in html and "DOMContentLoaded" in html
    assert "http://" not in html and "https://" not in html and "require" not in html
    assert interactive.PLOTLY_STATIC_PATH in html  # named in the message shown when plotly.js is missing
    spec = spec_of(html)
    assert spec["config"]["displaylogo"] is False and spec["config"]["responsive"] is True
    assert len(spec["data"]) == 2


def test_text_that_would_close_the_script_is_escaped() -> None:
    fig = iplots.attention_viewer({"</script><b>x": np.eye(2)}, ["a", "b"]).figure
    html = interactive.figure_html(fig)
    assert html.count("</script>") == 1  # only the script's own end tag


def test_the_div_ids_are_unique_and_follow_the_figure() -> None:
    a, b = interactive.figure_html(viewer().figure), interactive.figure_html(viewer().figure)
    ids = [re.search(r'id="([^"]+)"', h).group(1) for h in (a, b)]
    assert ids[0] != ids[1] and ids[0].rsplit("-", 1)[0] == ids[1].rsplit("-", 1)[0]


def test_output_is_the_site_html_while_the_book_builds_and_plotlys_own_elsewhere(monkeypatch) -> None:
    shown = viewer()
    monkeypatch.setenv(interactive.SITE_ENV, "1")
    bundle = shown._repr_mimebundle_()
    assert set(bundle) == {"text/html", "text/plain"} and f'class="{interactive.FIGURE_CLASS}"' in bundle["text/html"]
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


def test_slider_rejects_mismatched_steps() -> None:
    with pytest.raises(ValueError, match="one per temperature"):
        iplots.temperature_slider([0.1, 1.0], [[1.0, 0.0]], [[1, 0, 0]], ["r", "g"], [[1, 0, 0], [0, 1, 0]])
    with pytest.raises(ValueError, match="not a step"):
        slider(active=3)
