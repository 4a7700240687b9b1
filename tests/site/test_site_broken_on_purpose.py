"""The browser checks can fail: copies of the built site, each broken in one way, must be caught.

- MathJax removed: the page reports the failed request and the equations left untypeset.
- One figure corrupted: the page reports the image that did not load.
- A script from another host injected: the page reports the outside request (blocked, never sent).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from site_audit import audit_page, toc_docnames

pytestmark = [pytest.mark.site, pytest.mark.slow]


def first_page_with(built_site: Path, marker: str) -> str:
    for docname in toc_docnames():
        if marker in (built_site / f"{docname}.html").read_text(encoding="utf-8"):
            return docname
    pytest.fail(f"no page of the built site contains {marker!r}: nothing to break on purpose")


def copy_site(built_site: Path, dest: Path) -> Path:
    shutil.copytree(built_site, dest, ignore=shutil.ignore_patterns("_sources", "searchindex.js"))
    return dest


def test_missing_mathjax_is_caught(browser, serve, built_site: Path, tmp_path: Path) -> None:
    docname = first_page_with(built_site, 'class="math notranslate nohighlight"')
    broken = copy_site(built_site, tmp_path / "html")
    (broken / "_static" / "mathjax" / "tex-chtml.js").unlink()
    report = audit_page(browser, f"{serve(broken)}{docname}.html")
    text = "\n".join(report.problems)
    assert "HTTP 404" in text and "tex-chtml.js" in text, text
    assert "MathJax did not load" in text or "equations not typeset" in text, text
    assert "raw TeX left in the text" in text, text


def test_broken_image_is_caught(browser, serve, built_site: Path, tmp_path: Path) -> None:
    docname = first_page_with(built_site, "<img ")
    html = (built_site / f"{docname}.html").read_text(encoding="utf-8")
    src = re.search(r'<img [^>]*src="([^"]+\.png)"', html).group(1)
    broken = copy_site(built_site, tmp_path / "html")
    image = (broken / docname).parent / src
    image.write_bytes(b"this is not a PNG file")
    report = audit_page(browser, f"{serve(broken)}{docname}.html")
    assert any(p.startswith("image did not load") and image.name in p for p in report.problems), report.problems


def test_outside_request_is_caught(browser, serve, built_site: Path, tmp_path: Path) -> None:
    docname = toc_docnames()[1]
    broken = copy_site(built_site, tmp_path / "html")
    page = broken / f"{docname}.html"
    cdn = "https://cdn.example.invalid/library.js"
    page.write_text(page.read_text(encoding="utf-8").replace("</head>", f'<script src="{cdn}"></script></head>'))
    report = audit_page(browser, f"{serve(broken)}{docname}.html")
    assert f"request to a host other than 127.0.0.1 at load: {cdn}" in report.problems, report.problems
