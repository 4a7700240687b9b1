"""``nbgrader export`` for the course: nbgrader's ``grades.csv``, safe to open in a spreadsheet.

nbgrader's own CSV plugin pastes the gradebook's values into the file as they are: a display name with a
comma shifts the columns, and one such as ``=HYPERLINK(...)`` runs as a formula. ``grader/nbgrader_config.py``
sets ``c.ExportApp.plugin_class`` to :class:`CsvExport`: the same columns and rows, written by
:func:`grader.csvsafe.writer`.
"""

from __future__ import annotations

from typing import Any

from nbgrader.api import MissingEntry
from nbgrader.plugins.export import CsvExportPlugin

from grader.csvsafe import writer


class CsvExport(CsvExportPlugin):
    """``grades.csv`` with nbgrader's columns and rows, quoted as CSV and with no cell that starts a formula."""

    KEYS = ("assignment", "duedate", "timestamp", "student_id", "last_name", "first_name", "email", "raw_score",
            "late_submission_penalty", "score", "max_score")

    def export(self, gradebook: Any) -> None:
        dest = self.to or "grades.csv"
        students, assignments = [str(s) for s in self.student], [str(a) for a in self.assignment]
        self.log.info("Exporting grades to %s", dest)
        with open(dest, "w", newline="", encoding="utf-8") as f:
            w = writer(f)
            w.writerow(self.KEYS)
            for assignment in gradebook.assignments:
                if assignments and assignment.name not in assignments:
                    continue
                for student in gradebook.students:
                    if students and student.id not in students:
                        continue
                    try:
                        sub = gradebook.find_submission(assignment.name, student.id)
                        timestamp, raw, penalty = sub.timestamp, sub.score, sub.late_submission_penalty
                    except MissingEntry:
                        timestamp, raw, penalty = "", 0.0, 0.0
                    row = [assignment.name, assignment.duedate, timestamp, student.id, student.last_name,
                           student.first_name, student.email, raw, penalty, max(0.0, raw - penalty),
                           assignment.max_score]
                    w.writerow(["" if v is None else str(v) for v in row])
