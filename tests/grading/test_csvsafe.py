"""No cell of a CSV the course writes can start a spreadsheet formula (``grader/csvsafe.py``, OWASP's rule).

The CLI's files are checked end to end, with formula display names imported from Canvas and Moodle, in
``test_lms.py``; here the rule itself, its inverse, and ``nbgrader export``'s plugin (``grader/term/export.py``).
"""

from __future__ import annotations

import csv
import io

import pytest

from grader import csvsafe

pytestmark = pytest.mark.grading
FORMULAS = ['=HYPERLINK("http://x","y")', "+cmd|' /C calc'!A0", "@SUM(1)", "-2+3", "\tx", "\rx", "=", "-"]


@pytest.mark.parametrize("value", FORMULAS)
def test_a_cell_that_would_start_a_formula_is_quoted(value: str) -> None:
    assert csvsafe.cell(value) == "'" + value


@pytest.mark.parametrize("value", ["-0.5", "+3", "1e5", "-2.5E-3", "Anna", "O'Brien", "'Aisha", "", "王芳", "a=b"])
def test_numbers_and_ordinary_text_stay(value: str) -> None:
    assert csvsafe.cell(value) == value


@pytest.mark.parametrize("value", [*FORMULAS, "'=x", "''=x", "'Aisha", "-0.5", "x"])
def test_restore_gives_back_what_cell_was_given(value: str) -> None:
    assert csvsafe.restore(csvsafe.cell(value)) == value


def test_writers_quote_every_cell_and_leave_non_strings_alone() -> None:
    out = io.StringIO()
    csvsafe.writer(out).writerows([["=1+1", 3, None, -2.5, "-x"]])
    w = csvsafe.DictWriter(out, ["@name", "score"])
    w.writeheader()
    w.writerow({"@name": "+cmd|' /C calc'!A0", "score": "-1"})
    assert list(csv.reader(io.StringIO(out.getvalue()))) == [
        ["'=1+1", "3", "", "-2.5", "'-x"], ["'@name", "score"], ["'+cmd|' /C calc'!A0", "-1"]]


def test_nbgrader_export_writes_the_same_rows_quoted_and_safe(tmp_path) -> None:
    """The course's export plugin: nbgrader's rows for ordinary names, proper CSV for the others."""
    from nbgrader.api import Gradebook
    from nbgrader.plugins.export import CsvExportPlugin

    from grader.term.export import CsvExport

    with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}") as gb:
        gb.add_assignment("tiny")
        gb.add_student("s1", first_name="Anna", last_name="Ivanova", email="a@x")
        gb.add_student("s2", first_name="Jane", last_name="Doe")
        CsvExportPlugin(to=str(tmp_path / "stock.csv")).export(gb)
        CsvExport(to=str(tmp_path / "ours.csv")).export(gb)
        assert (tmp_path / "ours.csv").read_text() == (tmp_path / "stock.csv").read_text()
        gb.update_or_create_student("s3", first_name='=HYPERLINK("http://x","y")', last_name="Smith, John")
        CsvExport(to=str(tmp_path / "ours.csv")).export(gb)
    rows = list(csv.DictReader(open(tmp_path / "ours.csv", encoding="utf-8")))
    s3 = next(r for r in rows if r["student_id"] == "s3")
    assert s3["first_name"] == '\'=HYPERLINK("http://x","y")' and s3["last_name"] == "Smith, John"
    assert s3["score"] == "0.0" and s3["max_score"] == "0.0"
