"""A student's feedback page, rendered as ``nbgrader generate_feedback`` renders it, without grading anything.

``write_feedback_page(dest)`` takes chapter 2's released notebook, gives its graded cells the outputs the
grader writes (one function failed with a message naming a known mistake, the others passed: the exact
outputs of ``grader.engine.verdict.outputs``) and scores, then runs the course's feedback preprocessors
(nbconvert's CSS header, the sanitiser, formulas to MathML) and its exporter with the course's
templates: the same page a student gets, in about a second. :func:`exporter_config` is the exporter's
configuration as ``nbgrader generate_feedback`` sets it with the course's config (also used by
``tests/grading/test_feedback_page.py``).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import nbgrader
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbgrader.converters import GenerateFeedback
from traitlets.config import Config

from grader.coursedir import COURSE_DIR
from grader.engine.checker import Report
from grader.engine.verdict import outputs
from grader.feedback import TEMPLATES, FeedbackExporter, OfflineMath
from grader.sanitize import SanitizeNotebook

ASSIGNMENT = "ch2-sdpa"
MISTAKE = ("scaled_dot_product_attention: the weights do not match the reference for Q (2, 3, 4) and K (2, 5, 4): "
           "the scores look divided by d_k instead of sqrt(d_k).")


def exporter_config() -> Config:
    """The exporter's configuration as ``nbgrader generate_feedback`` sets it with the course's config."""
    formgrader = Path(nbgrader.__file__).parent / "server_extensions" / "formgrader"
    c = Config()
    c.HTMLExporter.template_name = "feedback"
    c.HTMLExporter.extra_template_basedirs = [str(TEMPLATES), str(formgrader / "templates")]
    # where generate_feedback finds the Bootstrap CSS its page inlines (it moved in nbgrader 0.9.6)
    c.HTMLExporter.extra_template_paths = list(GenerateFeedback().config.HTMLExporter.extra_template_paths)
    return c


def graded_notebook() -> nbformat.NotebookNode:
    """Chapter 2's release with the grader's verdicts: the first graded function failed, the rest passed."""
    nb = nbformat.read(COURSE_DIR / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    graded = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    for i, cell in enumerate(graded):
        meta = cell.metadata.nbgrader
        function = meta["grade_id"].removeprefix("test-")
        report = Report(function, problem=None if i else MISTAKE)
        cell.outputs = outputs(report, meta["points"])
        meta["score"] = meta["points"] if i else 0.0
        meta["comment"] = "Compare your scaling with the formula in the reading." if i == 0 else None
    return nb


def write_feedback_page(dest: Path) -> Path:
    """Render the feedback page of :func:`graded_notebook` to ``dest`` (an ``.html`` file); returns it."""
    nb = graded_notebook()
    score = sum(c.metadata.nbgrader.get("score", 0) for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade"))
    total = sum(c.metadata.nbgrader["points"] for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade"))
    resources = {"nbgrader": {"notebook": ASSIGNMENT, "score": score, "max_score": total, "late_penalty": 0},
                 "config_dir": str(dest.parent)}  # no custom.css there: nbconvert's own styles only
    for pre in (CSSHTMLHeaderPreprocessor(), SanitizeNotebook(), OfflineMath()):
        nb, resources = pre.preprocess(nb, resources)
    page, _ = FeedbackExporter(config=exporter_config()).from_notebook_node(nb, resources)
    dest.write_text(page, encoding="utf-8")
    return dest
