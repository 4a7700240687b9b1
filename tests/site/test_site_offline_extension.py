"""``course/sphinx_offline.py``: drops Thebe's assets, sets the theme mode, flags assets from other hosts."""

from __future__ import annotations

import pytest
from sphinx.builders.html._assets import _CascadingStyleSheet, _JavaScript

from course import sphinx_offline

pytestmark = pytest.mark.site


class Collect:
    def __init__(self) -> None:
        self.messages: list[str] = []

    def warning(self, message: str, *args: object, **kwargs: object) -> None:
        self.messages.append(message)


def page_context() -> dict:
    return {
        "script_files": [
            _JavaScript("_static/doctools.js"),
            _JavaScript("", body='const THEBE_JS_URL = "https://unpkg.com/thebe@0.8.2/lib/index.js"'),
            _JavaScript("_static/sphinx-thebe.js", **{"async": "async"}),
            _JavaScript("_static/mathjax/tex-chtml.js", defer="defer"),
        ],
        "css_files": [_CascadingStyleSheet("_static/sphinx-thebe.css"), _CascadingStyleSheet("_static/pygments.css")],
    }


def test_thebe_assets_are_dropped_and_the_rest_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    log = Collect()
    monkeypatch.setattr(sphinx_offline, "logger", log)
    context = page_context()
    sphinx_offline._fix_page_context(None, "book/ch1_lookup", "page.html", context, None)
    assert [js.filename for js in context["script_files"]] == ["_static/doctools.js", "_static/mathjax/tex-chtml.js"]
    assert [css.filename for css in context["css_files"]] == ["_static/pygments.css"]
    assert context["default_mode"] == "auto"
    assert log.messages == []


def test_an_asset_from_another_host_is_a_build_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    log = Collect()
    monkeypatch.setattr(sphinx_offline, "logger", log)
    context = page_context()
    context["script_files"].append(_JavaScript("https://cdn.example.org/lib.js"))
    context["css_files"].append(_CascadingStyleSheet("//fonts.example.org/font.css"))
    sphinx_offline._fix_page_context(None, "book/ch2_sdpa", "page.html", context, None)
    assert len(log.messages) == 2
    assert "https://cdn.example.org/lib.js" in log.messages[0] and "book/ch2_sdpa" in log.messages[0]


def test_a_configured_theme_mode_is_kept() -> None:
    context = {**page_context(), "default_mode": "light"}
    sphinx_offline._fix_page_context(None, "x", "page.html", context, None)
    assert context["default_mode"] == "light"


# ----------------------------------------------------------------------------- what a plain build serves


def test_a_script_from_another_host_in_a_page_body_is_a_build_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    """plotly's own notebook outputs load plotly.js from a CDN (a src, or require.js paths): never on the site."""
    log = Collect()
    monkeypatch.setattr(sphinx_offline, "logger", log)
    bodies = [
        '<div><script src="https://cdn.plot.ly/plotly-3.0.1.min.js"></script></div>',
        "<script>require.config({paths: {'plotly': 'https://cdn.plot.ly/plotly-3.0.1.min'}});</script>",
        '<script type="text/javascript" src="//cdn.example.org/x.js"></script>',
    ]
    for body in bodies:
        sphinx_offline._fix_page_context(None, "book/ch1_lookup", "page.html", {**page_context(), "body": body}, None)
    assert len(log.messages) == 3 and all("another host" in m for m in log.messages), log.messages
    log.messages.clear()
    local = '<div class="course-plotly" id="f"></div><script>(function () { Plotly.newPlot("f", []); })();</script>'
    sphinx_offline._fix_page_context(None, "book/ch1_lookup", "page.html", {**page_context(), "body": local}, None)
    assert log.messages == []


TINY_CONF = """
extensions = ["course.sphinx_offline"]
mathjax_path = "mathjax/tex-chtml.js"
"""
TINY_INDEX = """
Tiny
====

.. math:: e^{i\\pi} + 1 = 0

.. raw:: html

   <div class="course-plotly" id="f"></div>

.. toctree::

   plain
"""


def test_sphinx_build_alone_serves_mathjax_and_plotly(tmp_path) -> None:
    """The extension by itself (no `python -m course.site prepare`) puts both libraries into _static/."""
    import subprocess
    import sys

    from course import interactive, site

    src = tmp_path / "src"
    src.mkdir()
    (src / "conf.py").write_text(TINY_CONF)
    (src / "index.rst").write_text(TINY_INDEX)
    (src / "plain.rst").write_text("Plain\n=====\n\nNo figure here.\n")
    out = tmp_path / "out" / "html"
    build = subprocess.run([sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html", str(src), str(out)],
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout + build.stderr
    mathjax = out / "_static" / "mathjax" / "tex-chtml.js"
    plotly = out / "_static" / interactive.PLOTLY_STATIC_PATH
    assert mathjax.read_bytes() == (site.mathjax_source() / "tex-chtml.js").read_bytes()
    assert plotly.read_bytes() == interactive.plotly_js().read_bytes()
    index, plain = (out / "index.html").read_text(), (out / "plain.html").read_text()
    assert '<script defer="defer" src="_static/plotly/plotly.min.js' in index
    assert "plotly.min.js" not in plain  # only pages with an interactive figure load it
    assert "_static/mathjax/tex-chtml.js" in index


def test_a_stale_reading_notebook_stops_the_build_with_what_to_run(tmp_path) -> None:
    from types import SimpleNamespace

    from sphinx.errors import ExtensionError

    from course import notebooks

    (tmp_path / "book").mkdir()
    (tmp_path / "_config.yml").write_text(notebooks.CONFIG.read_text())
    md = notebooks.paired_sources()[0]
    (tmp_path / "book" / md.name).write_text(md.read_text() + "\nOne more sentence.\n")
    (tmp_path / "book" / md.with_suffix(".ipynb").name).write_text(notebooks.twin(md).read_text())
    with pytest.raises(ExtensionError, match=r"out of date.*python -m course.notebooks sync"):
        sphinx_offline._check_twins(SimpleNamespace(srcdir=str(tmp_path)))
    (tmp_path / "book" / md.name).write_text(md.read_text())  # back in sync: the build goes on
    sphinx_offline._check_twins(SimpleNamespace(srcdir=str(tmp_path)))


@pytest.mark.slow
def test_the_plain_jupyter_book_build_serves_the_pinned_mathjax_and_plotly(built_site) -> None:
    """``built_site`` is `jupyter-book build <root>` with nothing run before it (tests/site/conftest.py)."""
    from course import interactive, notebooks, site

    served = built_site / "_static"
    assert (served / "mathjax" / "tex-chtml.js").read_bytes() == (site.mathjax_source() / "tex-chtml.js").read_bytes()
    assert (served / interactive.PLOTLY_STATIC_PATH).read_bytes() == interactive.plotly_js().read_bytes()
    static_path = notebooks.read_config()["sphinx"]["config"].get("html_static_path", [])
    assert "book/_static" not in static_path  # nothing prepared by hand into the sources


# ----------------------------------------------------------------------------- course/accessible.py


def test_sidebar_toggles_are_named_after_their_chapter() -> None:
    from course import accessible

    nav = ('<li class="toctree-l1 has-children"><a class="reference internal" href="ch1.html">Chapter 1 &amp; '
           '<em>more</em></a><details><summary><span class="toctree-toggle" role="presentation"></span></summary>'
           '<ul><li><a href="x.html">Exercise</a></li></ul></details></li>'
           '<li><a href="y.html">No sections</a></li><li><p class="caption"><summary>Part</summary></p></li>')
    named = accessible.name_nav_toggles(nav)
    assert named.count("<summary") == 2 and named.count('aria-label="Sections of Chapter 1 &amp; more"') == 1
    assert "<summary>Part</summary>" in named  # a summary after no link keeps its own text


def test_bibliography_entries_become_list_items() -> None:
    from course import accessible

    body = '<div role="list" class="citation-list"><div class="citation" role="doc-biblioentry">x</div></div>'
    assert accessible.fix_citation_roles(body).count('role="listitem"') == 1
