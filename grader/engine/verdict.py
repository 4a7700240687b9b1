"""Grade cells and their verdicts: the link between the notebook generator and the grader.

``grader.generate`` writes one grade cell per graded function, with the nbgrader ``grade_id``
:func:`grade_id` gives; at grading time :class:`grader.execute.TrustedExecute` finds each grade cell's
function with :func:`function_of` and replaces the cell's outputs by :func:`outputs` of the trusted
verdict. nbgrader's ``SaveAutoGrades`` then scores the cell as usual: an ``error`` output means 0,
anything else full points. Whatever the student's kernel printed in or around that cell is gone.
"""

from __future__ import annotations

import html
import re

from nbformat.notebooknode import NotebookNode, from_dict

from grader.engine.checker import Report

PREFIX = "test-"
#: Key of the grade cell's metadata that carries the verdict, which the grades report reads back.
META = "attention_grader"
#: The ``ename`` of a failed verdict (the grades CSV and the summary read it).
FAILED = "HiddenCheckFailed"


def grade_id(function: str) -> str:
    return PREFIX + function


def function_of(cell_grade_id: str) -> str | None:
    return cell_grade_id[len(PREFIX):] if cell_grade_id.startswith(PREFIX) else None


#: nbgrader's feedback template lists every grade cell as a link labelled "Test cell".
_TEST_CELL_LINK = re.compile(r'(<a href="#(test-[^"<>]+)">)Test cell(</a>)')


def name_grade_cells(page: str) -> str:
    """A feedback page whose table of contents names each graded function (``softmax``) where nbgrader's
    template writes "Test cell" (the link and its target unchanged)."""
    return _TEST_CELL_LINK.sub(
        lambda m: m[1] + html.escape(function_of(html.unescape(m[2])) or "Test cell") + m[3], page)


def outputs(report: Report, points: float) -> list[NotebookNode]:
    """The outputs a grade cell gets: a passing line, or one error whose text is the trusted message."""
    if report.passed:
        plural = "" if points == 1 else "s"
        text = f"{report.function}: passed the grader's hidden checks ({points:g} point{plural}).\n"
        return [from_dict({"output_type": "stream", "name": "stdout", "text": text})]
    lines = report.problem.splitlines() or [report.problem]
    return [from_dict({"output_type": "error", "ename": FAILED, "evalue": report.problem, "traceback": lines})]


def record(cell: NotebookNode, report: Report, points: float, sandboxed: bool) -> None:
    """Write the verdict into a grade cell: its outputs, and in words in the cell's metadata."""
    cell.outputs = outputs(report, points)
    cell.execution_count = None
    cell.metadata[META] = {
        "function": report.function,
        "passed": report.passed,
        "mistake": report.mistake,
        "message": report.problem,
        "sandboxed": sandboxed,
    }
