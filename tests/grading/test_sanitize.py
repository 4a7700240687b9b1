"""What a student controls is made safe before anything renders it (``grader/sanitize.py``), and the
feedback page's Content-Security-Policy stops what a sanitiser might miss (``grader/feedback.py``).

Fast checks of the sanitiser on each way in (HTML, SVG, markdown, attachments, metadata, MathML), then
one Chromium run on a notebook whose outputs were made by running :mod:`grader.synthetic`'s hostile cells:
its feedback page runs nothing and loads nothing, with both defences and with each alone, while the
ordinary outputs (a pandas table, a matplotlib PNG, an SVG figure, formulas) still render; and the same
page made from the notebook as it was, without either defence, does run the payloads (the check can fail).
"""

from __future__ import annotations

import base64
from pathlib import Path

import attacks
import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from grader import sanitize, synthetic
from grader.feedback import CSP_META, render_math

pytestmark = pytest.mark.grading
PNG = base64.b64encode(synthetic.TINY_PNG).decode()
SCREENSHOT = Path(__file__).resolve().parents[2] / "_build" / "screenshots" / "feedback-hostile-sanitised.png"


@pytest.mark.parametrize("fragment", [
    "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "<a href='javascript:alert(1)'>x</a>",
    "<a href='java\tscript:alert(1)'>x</a>", "<a href=' &#106;avascript:alert(1)'>x</a>",
    "<iframe src='javascript:alert(1)'></iframe>", "<object data=x></object><embed src=x>",
    "<form action='/api/contents'><input type=submit></form>", "<details open ontoggle=alert(1)></details>",
    "<svg onload=alert(1)><script>alert(2)</script></svg>", "<math><mtext><script>alert(1)</script></mtext></math>",
    "<style>@import 'http://x/a.css'</style>", "<link rel=stylesheet href=http://x/a.css>",
    "<img src='https://x.example/t.png'>", "<div style='background:url(http://x/a.png)'>x</div>",
    "<img src='data:text/html;base64,PHNjcmlwdD4='>", "<base href='http://x/'>", "<meta http-equiv=refresh content=0>",
])
def test_html_keeps_nothing_that_runs_or_loads(fragment: str) -> None:
    clean = sanitize.clean_html(fragment)
    assert attacks.live_content(fragment), fragment  # the checker sees the danger in the original
    assert attacks.live_content(clean) == [], clean
    assert "http://x" not in clean and "javascript" not in clean.lower(), clean


def test_html_cannot_clobber_or_cover_the_formgraders_own_elements() -> None:
    clean = sanitize.clean_html("<p id='test-add' name='x' class='navbar-fixed-top' style='position:fixed'>p</p>")
    assert clean.startswith("<p") and not any(a in clean for a in ("id=", "name=", "class=", "position")), clean


def test_ordinary_html_stays() -> None:
    table = sanitize.clean_html(synthetic.PANDAS_TABLE)
    assert '<table border="1" class="dataframe">' in table and '<tr style="text-align:right">' in table
    assert table.count("<td>") == 4 and "<style" not in table
    kept = '<p><b>bold</b> <a href="https://arxiv.org/abs/1706.03762">a link</a> <img src="data:image/png;base64,'
    assert sanitize.clean_html(kept + PNG + '" alt="plot"></p>').startswith(
        '<p><b>bold</b> <a href="https://arxiv.org/abs/1706.03762" rel="noopener noreferrer">a link</a>')
    assert PNG in sanitize.clean_html(f'<img src="data:image/png;base64,{PNG}">')


def test_svg_becomes_an_image_of_itself() -> None:
    svg = '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script></svg>'
    data, _ = sanitize.safe_bundle({"image/svg+xml": svg, "text/plain": "fig"})
    assert "image/svg+xml" not in data and data["text/html"].startswith('<img src="data:image/svg+xml;base64,')
    assert base64.b64decode(data["text/html"].split(",")[1].split('"')[0]).decode() == svg  # the same figure
    assert sanitize.clean_html(data["text/html"]) == data["text/html"]


def test_outputs_keep_safe_types_and_numbers_only() -> None:
    data, meta = sanitize.safe_bundle(
        {"image/png": PNG, "application/javascript": "alert(1)", "text/plain": "x",
         "application/vnd.jupyter.widget-view+json": {"model_id": "1"}},
        {"image/png": {"width": "1 onload=alert(1)", "height": 30, "filenames": {"image/png": "http://x/a.png"}}})
    assert data == {"text/plain": "x", "image/png": PNG} and meta == {"image/png": {"height": 30}}
    assert sanitize.safe_bundle({"image/png": '"><script>'})[0] == {"text/plain": sanitize.REMOVED_NOTE}
    plotly = '<div id="p"></div><script src="https://cdn.plot.ly/plotly.min.js"></script>'
    assert sanitize.safe_bundle({"text/html": plotly, "text/plain": "Figure()"})[0] == {"text/plain": "Figure()"}
    assert sanitize.safe_output({"output_type": "stream", "name": "<img>", "text": "hi"})["name"] == "stdout"
    assert sanitize.safe_output({"output_type": "something", "data": {}}) is None


def test_markdown_stays_markdown_unless_it_has_something_to_remove() -> None:
    assert sanitize.safe_markdown(synthetic.ORDINARY_MARKDOWN) == synthetic.ORDINARY_MARKDOWN
    hostile = synthetic.hostile_markdown()
    assert set(sanitize.markdown_problems(hostile)) >= {"raw HTML", "a mermaid block"}
    clean = sanitize.safe_markdown(hostile)
    assert clean.startswith("<div>\n") and "\n\n" not in clean and attacks.live_content(clean) == []
    assert sanitize.safe_markdown(clean) == clean  # sanitising again changes nothing
    assert "$a&lt;b$" in sanitize.safe_markdown("<b>x</b> $a<b$")  # formulas stay, as text
    assert sanitize.markdown_problems("![x](attachment:gone.png)") == ["an image from 'attachment:gone.png'"]
    assert sanitize.markdown_problems("![x](attachment:a.png)", {"a.png": {"image/png": PNG}}) == []
    assert sanitize.neutralise_tex(r"$\href{javascript:alert(1)}{x}$") == r"$\text{href}{javascript:alert(1)}{x}$"


def test_attachments_keep_base64_images_with_plain_names() -> None:
    kept = sanitize.safe_attachments({"a.png": {"image/png": PNG, "text/html": "<script>"},
                                      "b.png": {"image/png": "not base64 <script>"}, '"><x': {"image/png": PNG}})
    assert kept == {"a.png": {"image/png": PNG}}


def test_metadata_keeps_plain_values_of_known_keys_and_valid_ids() -> None:
    nb = new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "<b>x</b>"}, "title": "<script>",
                                "widgets": {"state": {}}})
    cell = new_code_cell("x", metadata={"tags": ["ok", '"><img onerror=x>'], "nbgrader": {"grade_id": "add"},
                                        "anything": "else"})
    cell["id"] = '"><img src=x onerror=alert(1)>'
    nb.cells.append(cell)
    clean = sanitize.sanitize_notebook(nbformat.from_dict(nb))
    assert clean["metadata"] == {"kernelspec": {"name": "python3"}}
    assert clean["cells"][0]["metadata"] == {"tags": ["ok"], "nbgrader": {"grade_id": "add"}}
    assert sanitize.CELL_ID.match(clean["cells"][0]["id"])


def test_the_graders_record_about_the_notebook_is_kept_as_plain_data() -> None:
    """The execute step's notices (refused files, the time budget) reach the grades CSV after sanitising."""
    record = {"notices": ["Files of the submission were not used: secret (a symbolic link).", {"x": 1}],
              "sandbox": {"peak_mb": 12.5, "kind": "cgroup-v1", "bad": "<script>", "<k>": 1},
              "notebook_timeout": 600, "other": "<img onerror=x>"}
    nb = sanitize.sanitize_notebook(nbformat.from_dict(new_notebook(metadata={"attention_grader": record})))
    assert nb["metadata"]["attention_grader"] == {
        "notices": ["Files of the submission were not used: secret (a symbolic link)."],
        "sandbox": {"peak_mb": 12.5, "kind": "cgroup-v1"}, "notebook_timeout": 600}


def test_the_graders_repair_note_keeps_its_list_for_the_grades_csv() -> None:
    from grader.normalize import NOTE_KEY, repairs_in

    note = nbformat.v4.new_markdown_cell("repaired", metadata={NOTE_KEY: ["the file repeats the grade cell", {"x": 1}]})
    code = new_code_cell("x", metadata={NOTE_KEY: ["not on a code cell"]})
    nb = sanitize.sanitize_notebook(nbformat.from_dict(new_notebook(cells=[note, code])))
    assert repairs_in(nb["cells"]) == ["the file repeats the grade cell"]
    assert NOTE_KEY not in nb["cells"][1]["metadata"]


def test_raw_cells_pasted_into_a_page_are_sanitised_and_others_kept() -> None:
    html = nbformat.v4.new_raw_cell("<img src=x onerror=alert(1)>")
    latex = nbformat.v4.new_raw_cell("\\begin{equation} a < b \\end{equation}", metadata={"raw_mimetype": "text/latex"})
    nb = sanitize.sanitize_notebook(nbformat.from_dict(new_notebook(cells=[html, latex])))
    assert nb["cells"][0]["source"] == "<img>" and nb["cells"][1]["source"] == latex.source


def test_the_graders_verdict_stays_on_grade_cells_only() -> None:
    verdict = {"function": "add", "passed": False, "message": "your add (a - b) subtracts", "sandboxed": True}
    grade = new_code_cell("", metadata={"nbgrader": {"grade": True, "grade_id": "test-add", "points": 2},
                                        "attention_grader": verdict})
    forged = new_code_cell("", metadata={"attention_grader": {**verdict, "sandboxed": False}})
    nb = sanitize.sanitize_notebook(nbformat.from_dict(new_notebook(cells=[grade, forged])))
    assert nb["cells"][0]["metadata"]["attention_grader"] == verdict and nb["cells"][1]["metadata"] == {}


def test_display_names_cannot_start_markup() -> None:
    name = sanitize.plain_name("<img src=x onerror=alert(1)> O'Brien")
    assert name == "\u2039img src=x onerror=alert(1)\u203a O'Brien"


def test_formula_mathml_keeps_math_only() -> None:
    page = render_math(r"$\text{<script>alert(1)</script>}$ and $\href{javascript:alert(1)}{x}$ and $a<b$")
    assert "<script" not in page and "javascript" not in page and page.count("<math") == 3
    assert "<mo>&lt;</mo>" in page


def test_formgrader_names_are_escaped() -> None:
    resources = {"first_name": "<img src=x onerror=alert(1)>", "last_name": "O'Brien", "index": 0}
    _, resources = sanitize.SanitizeNotebook().preprocess(new_notebook(), resources)
    assert resources["first_name"] == "&lt;img src=x onerror=alert(1)&gt;" and resources["index"] == 0


# --- in Chromium ----------------------------------------------------------------------------------------------
def _executed(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """``nb`` with each code cell's outputs as a kernel makes them (run here, in an IPython shell)."""
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.core.pylabtools import select_figure_formats
    from IPython.utils.capture import capture_output

    shell = InteractiveShell.instance()
    # as a kernel does: matplotlib's figures display as PNGs even when matplotlib_inline was imported earlier
    # in this process, before there was a shell (its import-time hook then did nothing)
    select_figure_formats(shell, {"png"})
    for cell in nb.cells:
        if cell.cell_type == "code":
            with capture_output() as captured:
                assert shell.run_cell(cell.source).success
            cell.outputs = [new_output("display_data", data=o.data, metadata=o.metadata) for o in captured.outputs]
    return nb


def _feedback_page(nb: nbformat.NotebookNode, course_config: bool) -> str:
    """The feedback page nbgrader makes of ``nb``: with the course's config (its exporter's preprocessors
    sanitise and render formulas), or with the course's exporter alone."""
    import nbgrader
    from nbgrader.converters import GenerateFeedback
    from traitlets.config import Config, PyFileConfigLoader

    from grader.coursedir import COURSE_DIR
    from grader.feedback import FeedbackExporter

    config = PyFileConfigLoader("nbgrader_config.py", path=str(COURSE_DIR)).load_config() if course_config \
        else Config()
    config.HTMLExporter.template_name = "feedback"
    formgrader = Path(nbgrader.__file__).parent / "server_extensions" / "formgrader"
    # where generate_feedback finds the Bootstrap CSS its page inlines (it moved in nbgrader 0.9.6)
    config.HTMLExporter.extra_template_paths = GenerateFeedback().config.HTMLExporter.extra_template_paths
    if not course_config:
        config.HTMLExporter.extra_template_basedirs = [str(formgrader / "templates")]
    resources = {"nbgrader": {"notebook": "hostile", "score": 0, "max_score": 3, "late_penalty": 0}}
    page, _ = FeedbackExporter(config=config).from_notebook_node(nbformat.from_dict(nb), resources)
    return page


def test_feedback_pages_run_nothing_and_still_show_ordinary_outputs_in_chromium(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    beacon = "http://127.0.0.1:9/beacon/"
    nb = _executed(synthetic.with_hostile_renderables(new_notebook(cells=[new_markdown_cell("# A submission")]),
                                                      beacon))
    assert attacks.notebook_live_content(nb)  # as the kernel made it, the notebook is hostile
    clean = _feedback_page(nb, course_config=True)
    raw = _feedback_page(nb, course_config=False)
    assert CSP_META in clean and CSP_META in raw and attacks.live_content(clean, page=True) == []
    pages = {"sanitised, with the policy": clean, "sanitised, without the policy": clean.replace(CSP_META, ""),
             "raw, with the policy": raw, "raw, without the policy (control)": raw.replace(CSP_META, "")}
    for name, page in pages.items():
        (tmp_path / f"{name}.html").write_text(page)
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=attacks.CHROMIUM_ARGS)
        try:
            ran = {name: attacks.what_ran(browser, (tmp_path / f"{name}.html").as_uri()) for name in pages}
            page = browser.new_page(viewport={"width": 1000, "height": 900})
            page.goto((tmp_path / "sanitised, with the policy.html").as_uri())
            shown = page.evaluate("""() => ({
                cells: document.querySelectorAll('table.dataframe td').length,
                images: [...document.images].filter(i => i.complete && i.naturalWidth > 0)
                    .map(i => i.src.slice(0, 22)),
                math: [...document.querySelectorAll('math')].filter(m => m.getBoundingClientRect().width > 10).length,
            })""")
            page.screenshot(path=str(SCREENSHOT))  # the first screen: the formulas, the table and the plots
            page.close()
        finally:
            browser.close()
    control = ran.pop("raw, without the policy (control)")
    assert len(set(control["pwned"])) >= 5 and control["dialogs"], control  # the payloads do run unprotected
    assert any(beacon in r for r in control["requests"]), control
    for name, seen in ran.items():
        assert seen == {"pwned": [], "dialogs": [], "requests": []}, (name, seen)
    assert shown["cells"] == 4, shown  # the pandas table
    assert shown["images"].count("data:image/png;base64,") >= 2, shown  # matplotlib's plot and the tiny PNG
    assert "data:image/svg+xml;bas" in shown["images"], shown  # the SVG figures, as images
    assert shown["math"] >= 2, shown  # the markdown's formulas, as MathML
