"""The feedback page's exporter makes nbconvert's page without its BeautifulSoup round trip.

``grader.feedback.FeedbackExporter`` adds the alt texts and ``tabindex`` attributes that nbconvert's
``HTMLExporter`` adds by parsing and re-writing the whole page, by editing the rendered text instead.
Here both exporters render the same notebooks (the course's own release and a notebook of every kind
of output, hostile HTML included) with nbgrader's feedback template, and the documents must be equal:
nbconvert's page is what BeautifulSoup writes, so ours, parsed and written by BeautifulSoup, must be
the same tree (same elements, attributes and text; attribute order and quoting aside).
"""

from __future__ import annotations

import base64
import re

import nbformat
import pytest
from bs4 import BeautifulSoup, NavigableString, Tag
from feedback_page import exporter_config
from nbconvert.exporters import HTMLExporter
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from grader.coursedir import COURSE_DIR
from grader.engine.verdict import name_grade_cells
from grader.feedback import CSP_META, NO_ALT, FeedbackExporter, with_alt_texts, with_lang

pytestmark = pytest.mark.grading
PNG = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)).decode()


def _every_output() -> nbformat.NotebookNode:
    hostile = (
        '<div class="jp-OutputArea-output" tabindex="-1">a div claiming to be an output</div>'
        "<img src='data:image/png;base64,AAAA'><IMG SRC=x ALT=''><img alt src=y><img/src=w><br><p>text & more</p>"
        '<script>var s = \'<div class="jp-OutputArea-output"><img src=z>\';</script>'
        "<!-- <img src=comment> --><div data-x='a > b' class='x jp-Cell-inputWrapper'>quoted ></div>"
    )
    cells = [
        new_markdown_cell("# Title\n\nSome *markdown* with <img src='data:image/png;base64,AAAA'> in it."),
        new_code_cell("print('hi')", outputs=[new_output("stream", name="stdout", text="hi\n")]),
        new_code_cell("1/0", outputs=[new_output("error", ename="ZeroDivisionError", evalue="division by zero",
                                                 traceback=["\x1b[31mZeroDivisionError\x1b[0m: division by zero"])]),
        new_code_cell("plot()", outputs=[new_output("display_data",
                                                    data={"image/png": PNG, "text/plain": "<Figure>"})]),
        new_code_cell("svg()", outputs=[new_output("display_data", data={"image/svg+xml": "<svg><rect/></svg>"})]),
        new_code_cell("HTML(...)", outputs=[new_output("display_data", data={"text/html": hostile})]),
        new_code_cell("", outputs=[]),
    ]
    return new_notebook(cells=cells, metadata={"language_info": {"name": "python"}})


def _release(assignment: str) -> nbformat.NotebookNode:
    """The release notebook as ``GetGrades`` leaves it: every grade cell scored, one with a comment."""
    nb = nbformat.read(COURSE_DIR / "release" / assignment / f"{assignment}.ipynb", as_version=4)
    graded = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    for i, cell in enumerate(graded):
        cell.metadata.nbgrader["score"] = cell.metadata.nbgrader["points"] / 2
        cell.metadata.nbgrader["comment"] = "Well done <b>here</b>" if i == 0 else None
    return nb


def _resources(nb: nbformat.NotebookNode) -> dict:
    return {"nbgrader": {"notebook": "the notebook", "score": 3.5, "max_score": 8, "late_penalty": 0.5}}


def _tree(page: str) -> list:
    """The document as nested lists: (name, attributes as a dict, children) and strings."""

    def walk(node: Tag) -> list:
        out: list = []
        for child in node.children:
            if isinstance(child, Tag):
                out.append((child.name, dict(child.attrs), walk(child)))
            elif isinstance(child, NavigableString):
                out.append((type(child).__name__, str(child)))
        return out

    return walk(BeautifulSoup(page, features="html.parser"))


def without_policy(page: str) -> str:
    """Our page without the Content-Security-Policy it adds (nbconvert's page has none)."""
    return page.replace("\n" + CSP_META, "", 1)


def _lab_markup() -> nbformat.NotebookNode:
    nb = _every_output()
    nb.cells.append(new_code_cell("HTML(lab)", outputs=[new_output("display_data", data={
        "text/html": '<div class="jp-Notebook"><div class="jp-Cell-inputWrapper">x</div><img src=q></div>'})]))
    return nb


NOTEBOOKS = {
    "every kind of output": _every_output,
    "JupyterLab markup in an output": _lab_markup,
    "ch2-sdpa release": lambda: _release("ch2-sdpa"),
    "ch4-multihead release": lambda: _release("ch4-multihead"),
    "ch7-transformer release": lambda: _release("ch7-transformer"),
}


@pytest.mark.parametrize("name", list(NOTEBOOKS))
def test_the_feedback_page_is_nbconverts_page(name: str) -> None:
    nb = NOTEBOOKS[name]()
    ours, _ = FeedbackExporter(config=exporter_config()).from_notebook_node(nb, _resources(nb))
    theirs, _ = HTMLExporter(config=exporter_config()).from_notebook_node(nb, _resources(nb))
    assert ours.count(CSP_META) == 1 and ours.index(CSP_META) < ours.index("<title>")  # the policy, first
    ours = without_policy(ours)
    theirs = with_lang(name_grade_cells(theirs))  # the edits on purpose: graded functions named, lang="en"
    assert _tree(ours) == _tree(theirs)
    if "release" in name:
        assert "Test cell" not in ours and ours.count('">') and re.search(r'<a href="#test-\w+">\w+</a>', ours)
    if "JupyterLab" in name:  # nbconvert's own path, byte for byte
        assert ours == theirs and 'tabindex="0"' in ours
    else:  # the round trip really was skipped (nbconvert's page is BeautifulSoup's re-writing)
        assert ours != theirs


def test_alt_texts_go_to_images_without_one_outside_scripts_and_comments() -> None:
    page, missing = with_alt_texts(
        '<p><img src=a><IMG ALT="b" src=c><img/src=x>\n<img\nsrc="y" /></p>'
        '<script>"<img src=d>"</script><!-- <img src=e> --><style>img{}</style>'
    )
    assert missing == 3
    assert page.count(f'alt="{NO_ALT}"') == 3 and f'<img alt="{NO_ALT}" src=a>' in page
    assert '<IMG ALT="b" src=c>' in page and '"<img src=d>"' in page and "<!-- <img src=e> -->" in page
    assert with_alt_texts("<p>no images</p>") == ("<p>no images</p>", 0)


def test_a_page_rendered_again_from_remembered_highlighting_is_byte_identical() -> None:
    from grader.feedback import _SameCellsOnce

    nb = _release("ch3-self-cross")
    _SameCellsOnce.answers.clear()
    first, _ = FeedbackExporter(config=exporter_config()).from_notebook_node(nb, _resources(nb))
    remembered = len(_SameCellsOnce.answers)
    again, _ = FeedbackExporter(config=exporter_config()).from_notebook_node(nb, _resources(nb))
    assert remembered == sum(1 for c in nb.cells if c.cell_type == "code" and c.source) > 0
    assert len(_SameCellsOnce.answers) == remembered and again == first
