"""CSV files that are safe to open in a spreadsheet: no cell can start a formula.

Excel, LibreOffice and Google Sheets run a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and some a
leading tab or carriage return) as a formula, so an LMS display name such as ``=HYPERLINK("http://x","y")``
or ``+cmd|' /C calc'!A0`` would run on the instructor's machine. OWASP's rule (CSV injection): such a cell
gets a leading single quote, which spreadsheets show as text. Numbers (``-0.5``, ``+3``) stay numbers, and a
file's other cells (the LMS's ids, which Canvas and Moodle match rows by) are untouched. Every CSV the
course writes goes through :func:`writer` or :class:`DictWriter` (``csv``'s, with :func:`cell` applied),
``nbgrader export``'s ``grades.csv`` too (``grader/term/export.py``); :func:`restore` undoes :func:`cell` for
the course's own files that it reads back (the roster).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import IO, Any

#: What a spreadsheet reads as the start of a formula (OWASP).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\Z")


def _quoted(value: str) -> bool:
    """Whether ``value`` needs the quote: it starts a formula, or it is one behind quotes (kept reversible)."""
    return value.lstrip("'")[:1] in FORMULA_START and not NUMBER.match(value)


def cell(value: Any) -> Any:
    """``value`` as a CSV cell that cannot run: a leading ``'`` where a string would start a formula."""
    return "'" + value if isinstance(value, str) and _quoted(value) else value


def restore(value: str) -> str:
    """The string :func:`cell` was given (``restore(cell(s)) == s`` for every string ``s``)."""
    return value[1:] if value.startswith("'") and _quoted(value[1:]) else value


def read_dicts(f: IO[str]) -> list[dict[str, Any]]:
    """``csv.DictReader(f)``'s rows with :func:`restore` applied to every header and cell: how the course
    reads back the CSVs it wrote."""
    return [{restore(k) if isinstance(k, str) else k: restore(v) if isinstance(v, str) else v for k, v in row.items()}
            for row in csv.DictReader(f)]


class _Rows:
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def writerow(self, row: Iterable[Any]) -> Any:
        return self.inner.writerow([cell(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def writer(f: IO[str], **kwargs: Any) -> _Rows:
    """``csv.writer(f)`` whose cells cannot start a formula."""
    return _Rows(csv.writer(f, **kwargs))


class DictWriter(csv.DictWriter):
    """``csv.DictWriter`` whose cells (the header too) cannot start a formula."""

    def writeheader(self) -> Any:
        return self.writer.writerow([cell(name) for name in self.fieldnames])

    def writerow(self, rowdict: dict) -> Any:
        return super().writerow({k: cell(v) for k, v in rowdict.items()})
