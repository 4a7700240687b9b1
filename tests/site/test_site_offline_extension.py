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
