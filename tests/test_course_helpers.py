"""The book's shared helpers draw what they claim and the toy data is deterministic and meaningful."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.colors import to_rgba
from matplotlib.patches import Rectangle

from course import plots, toydata
from solutions import cross_attention, self_attention, soft_lookup


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def tick_texts(ticks) -> list[str]:
    return [t.get_text() for t in ticks]


# ---------------------------------------------------------------------------- plots: heatmaps


def test_heatmap_labels_both_axes_with_the_tokens():
    rows, cols = ["le", "chat", "dort"], ["the", "cat", "sleeps", "<pad>"]
    w = np.full((3, 4), 0.25)
    ax = plots.attention_heatmap(w, rows, cols)
    assert tick_texts(ax.get_xticklabels()) == cols
    assert tick_texts(ax.get_yticklabels()) == rows
    assert ax.get_xlabel() == "keys" and ax.get_ylabel() == "queries"


def test_heatmap_shows_the_weights_themselves():
    w = np.array([[0.9, 0.1], [0.3, 0.7]])
    ax = plots.attention_heatmap(w, ["a", "b"], ["x", "y"])
    np.testing.assert_array_equal(ax.images[0].get_array(), w)
    assert ax.images[0].get_clim() == (0.0, 1.0)
    assert sorted(t.get_text() for t in ax.texts) == [".10", ".30", ".70", ".90"]


def test_heatmap_greys_out_blocked_cells_and_leaves_them_unnumbered():
    w = np.array([[1.0, 0.0], [0.4, 0.6]])
    mask = np.array([[True, False], [True, True]])
    ax = plots.attention_heatmap(w, ["a", "b"], ["x", "y"], mask=mask)
    overlay = ax.images[1]
    rgba = overlay.cmap(overlay.norm(overlay.get_array()))
    assert tuple(rgba[0, 1]) == to_rgba(plots.MASK_COLORS[0])
    assert overlay.get_array().mask.tolist() == mask.tolist()  # only blocked cells are painted
    assert sorted(t.get_text() for t in ax.texts) == [".40", ".60", "1"]


def hatched_cells(ax) -> set[tuple[int, int]]:
    """The (row, column) of every hatched cell patch of an imshow grid."""
    return {(round(p.get_y() + 0.5), round(p.get_x() + 0.5)) for p in ax.patches
            if isinstance(p, Rectangle) and p.get_hatch() == plots.BLOCKED_HATCH}


def test_blocked_cells_are_hatched_not_told_by_colour_alone():
    mask = np.tril(np.ones((3, 3), dtype=bool))
    blocked = {(i, j) for (i, j), v in np.ndenumerate(mask) if not v}
    heat = plots.attention_heatmap(np.where(mask, 0.5, 0.0), mask=mask)
    grid = plots.mask_grid(mask)
    assert hatched_cells(heat) == blocked and hatched_cells(grid) == blocked
    assert hatched_cells(plots.attention_heatmap(np.full((2, 2), 0.5))) == set()  # no mask, no hatch
    legend = grid.get_legend().get_patches()
    assert [p.get_hatch() for p in legend] == [None, plots.BLOCKED_HATCH]


def test_heatmap_rejects_wrong_label_counts_and_shapes():
    with pytest.raises(ValueError, match="row_labels"):
        plots.attention_heatmap(np.eye(3), ["a", "b"], ["x", "y", "z"])
    with pytest.raises(ValueError, match="n_q, n_k"):
        plots.attention_heatmap(np.ones(3))


def test_weight_bars_heights_and_labels():
    w = np.array([0.2, 0.5, 0.3])
    ax = plots.weight_bars(w, ["red", "green", "blue"])
    np.testing.assert_allclose([p.get_height() for p in ax.patches], w)
    assert tick_texts(ax.get_xticklabels()) == ["red", "green", "blue"]


# ---------------------------------------------------------------------------- plots: masks


def test_mask_grid_colors_match_the_mask():
    mask = np.tril(np.ones((4, 4), dtype=bool))
    mask[3, 0] = False
    ax = plots.mask_grid(mask, list("abcd"), list("abcd"))
    image = ax.images[0]
    rgba = image.cmap(image.norm(image.get_array()))
    allowed, blocked = to_rgba(plots.MASK_COLORS[1]), to_rgba(plots.MASK_COLORS[0])
    for (i, j), value in np.ndenumerate(mask):
        assert tuple(rgba[i, j]) == (allowed if value else blocked), (i, j)
    assert tick_texts(ax.get_xticklabels()) == list("abcd")
    assert tick_texts(ax.get_yticklabels()) == list("abcd")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["may attend (True)", "blocked (False)"]


def test_mask_grid_refuses_non_boolean_masks():
    with pytest.raises(ValueError, match="boolean"):
        plots.mask_grid(np.ones((2, 2)))


# ---------------------------------------------------------------------------- plots: shapes and colours


def test_shape_diagram_boxes_are_proportional_to_shapes():
    ax = plots.shape_diagram([("Q", (6, 4)), "@", ("Kᵀ", (4, 5)), "=", ("S", (6, 5))], dim_names={6: "n_q"})
    boxes = [p for p in ax.patches if isinstance(p, Rectangle)]
    sizes = [(round(b.get_height() / plots_unit(), 6), round(b.get_width() / plots_unit(), 6)) for b in boxes]
    assert sizes == [(6, 4), (4, 5), (6, 5)]
    texts = [t.get_text() for t in ax.texts]
    assert {"Q", "Kᵀ", "S", "@", "=", "n_q"} <= set(texts)


def plots_unit() -> float:
    import inspect

    return inspect.signature(plots.shape_diagram).parameters["unit"].default


def test_color_swatches_show_the_colors():
    colors = np.array([[1.0, 0.0, 0.0], [0.0, 0.5, 1.0]])
    ax = plots.color_swatches(colors, ["red", "sky"])
    np.testing.assert_allclose(ax.images[0].get_array()[0], colors)
    assert tick_texts(ax.get_xticklabels()) == ["red", "sky"]


# ---------------------------------------------------------------------------- toy data


def test_palette_keys_are_distinct_unit_vectors_and_values_are_rgb():
    p = toydata.paint_palette()
    assert p.keys.shape == (len(p.names), 2) and p.values.shape == (len(p.names), 3)
    np.testing.assert_allclose(np.linalg.norm(p.keys, axis=1), 1.0)
    assert len({tuple(np.round(k, 6)) for k in p.keys}) == len(p.names)
    assert p.values.min() >= 0 and p.values.max() <= 1


def test_soft_lookup_between_red_and_yellow_mixes_orange():
    p = toydata.paint_palette()
    query = toydata.wheel_direction(36.0)  # half-way between red (0°) and yellow (72°)
    out, w = soft_lookup(query, p.keys, p.values, temperature=0.1)
    red, yellow = p.names.index("red"), p.names.index("yellow")
    assert w[red] == pytest.approx(w[yellow]) and w[red] + w[yellow] > 0.99
    np.testing.assert_allclose(out, (p.values[red] + p.values[yellow]) / 2, atol=0.01)


def test_sentence_embeddings_are_deterministic_and_same_word_same_features():
    tokens = toydata.toy_sentence()
    X1, X2 = toydata.sentence_embeddings(tokens), toydata.sentence_embeddings(tokens)
    np.testing.assert_array_equal(X1, X2)
    assert X1.shape == (6, 4 + 4 + 2)
    # the two "the" (positions 0 and 4) differ only in their position features
    np.testing.assert_array_equal(X1[0, :-2], X1[4, :-2])
    assert not np.allclose(X1[0, -2:], X1[4, -2:])


def test_toy_grammar_self_attention_reads_like_grammar():
    tokens = toydata.toy_sentence()  # the cat sat on the mat
    _, w = self_attention(toydata.sentence_embeddings(tokens), *toydata.grammar_projections())
    best = [tokens[j] for j in w.argmax(-1)]
    assert best[0] == "cat" and best[4] == "mat"  # each "the" finds its own noun (the nearest)
    assert best[1] == "sat" and best[2] == "cat"  # subject <-> verb


def test_translation_pair_cross_attention_follows_the_alignment():
    pair = toydata.translation_pair()
    assert len(pair.target) == pair.X_target.shape[0] == len(pair.alignment) == 7
    assert len(pair.source) == pair.X_source.shape[0] == 6
    _, w = cross_attention(pair.X_target, pair.X_source, pair.W_q, pair.W_k, pair.W_v)
    assert w.shape == (7, 6)
    assert w.argmax(-1).tolist() == pair.alignment
    assert w.max(-1).min() > 0.5  # each French word attends mainly to its English word


def test_random_qkv_is_seeded_and_shaped():
    Q, K, V = toydata.random_qkv(3, 5, 4, 2, batch=(2,), seed=7)
    assert Q.shape == (2, 3, 4) and K.shape == (2, 5, 4) and V.shape == (2, 5, 2)
    np.testing.assert_array_equal(Q, toydata.random_qkv(3, 5, 4, 2, batch=(2,), seed=7)[0])
    assert not np.array_equal(Q, toydata.random_qkv(3, 5, 4, 2, batch=(2,), seed=8)[0])
