"""Every reading page shows the figures it computes at build time.

Issue #5 asks for pictures computed at build time in every chapter. A silent way to lose them all is an
execution setting that swallows matplotlib output (``MPLBACKEND=Agg`` in the build's environment does
exactly that: the pages still build, with no figures). The floors below are the figures each chapter's
text promises (heatmaps, the sqrt(d_k) experiment, masks as grids, KV-cache curves, time/memory curves).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = [pytest.mark.site, pytest.mark.slow]

# chapter page -> the least number of computed figures its text refers to
FIGURE_FLOORS = {
    "book/ch1_lookup": 4,  # one-hot vs soft weights, paint mixing, temperature sweep, gradient staircase
    "book/ch2_sdpa": 6,  # shape diagram, Var(q.k) vs d_k, saturation, masks, masked heatmaps, n^2 memory
    "book/ch3_self_cross": 7,  # self, causal self, self vs cross, permutation, P heatmap, RoPE pairs, score/offset
    "book/ch4_multihead": 3,  # one vs four heads, split/merge diagram, parameters vs heads
    "book/ch5_gqa": 3,  # KV-cache size vs length (7B/70B), grouping diagram, conversion error
    "book/ch6_tiled": 3,  # online softmax, tiling diagram, live time/memory curves
    "book/ch7_transformer": 3,  # loss curve, cross-attention before/after beside the alignment, decoder heads
}


@pytest.mark.parametrize("page", sorted(FIGURE_FLOORS))
def test_reading_page_shows_its_computed_figures(built_site: Path, page: str) -> None:
    html = (built_site / f"{page}.html").read_text()
    figures = re.findall(r'<img [^>]*src="([^"]+\.png)"', html)
    assert len(figures) >= FIGURE_FLOORS[page], f"{page}: {len(figures)} figures, expected >= {FIGURE_FLOORS[page]}"
    for src in figures:  # computed at build time: written by the executed notebook, and really there
        assert (built_site / page).parent.joinpath(src).resolve().is_file(), src
