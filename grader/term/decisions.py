"""The instructor's decisions about single students, as data: ``decisions.toml`` in the course directory.

One file, human-readable and reviewable (``git diff`` shows what changed, each entry says why and when),
written by the commands and read by every other one::

    python -m grader extend   ch2-sdpa 48206 --days 2 --reason "ill, note from the office"
    python -m grader excuse   ch2-sdpa 48207 --reason "joined the course late"
    python -m grader override ch2-sdpa 48206 --function softmax --points 2 --reason "..."
    python -m grader choose   ch2-sdpa 48206 "ch2-sdpa (2).ipynb" --reason "asked by mail"

Kinds (TOML arrays of tables, one entry per decision)::

    [[extension]]   assignment, student, days, reason, decided
    [[excused]]     assignment, student, reason, decided
    [[override]]    assignment, student, points, function ("" = the assignment's total), reason, decided
    [[choice]]      assignment, student, file (as uploaded, or the download's entry name), reason, decided

``student`` is the LMS id (Canvas user id, Moodle participant id) when the course's roster knows one, else
the nbgrader student id: a decision means the same person whatever import made the pseudonyms.

Why a TOML file and not a table in ``gradebook.db``: the gradebook is rebuilt from submissions (a fresh
machine, shards merged, a regrade), while decisions must outlive all of that; a text file is read and
reviewed by a person, diffs, and is backed up with the course. It holds LMS ids and reasons, so it stays
in the (git-ignored) course directory like ``lms-roster.csv``.

Where each kind acts (:func:`grader.term.apply.apply_decisions`, called by import, grade, merge, report,
return and by these commands themselves, so the order of events never matters):

- ``extension``: the student's extension in the gradebook (nbgrader's own ``extension``), and the late
  penalty recomputed from submission time, due date and extension;
- ``override``: the function's grade cell gets a manual score (what nbgrader's formgrader writes), or
  for the total, the difference to the automatic total as extra credit of the first graded function; the
  late penalty applies to the overridden score; ``nbgrader export`` shows the same;
- ``excused``: ``status`` ``excused`` in ``course-grades.csv`` and ``EX`` (Canvas) or an empty grade
  with a comment (Moodle) in ``return``'s grade file; a submission, if any, is still graded;
- ``choice``: ``import`` saves this file as the student's submission instead of choosing one.
"""

from __future__ import annotations

import datetime as dt
import json
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

DECISIONS_FILE = "decisions.toml"
#: TOML table name -> the fields an entry of that kind has besides assignment, student, reason, decided.
KINDS = {"extension": ("days",), "excused": (), "override": ("points", "function"), "choice": ("file",)}
HEADER = """\
# The instructor's decisions about single students (see grader/term/decisions.py). Written by
# `python -m grader extend | excuse | override | choose`, applied by every import, grade, report and
# return. You may edit it by hand (then run `python -m grader report`); keep reasons in `reason`:
# comments are not kept when a command rewrites the file.
"""


class DecisionError(ValueError):
    """A decision that cannot be recorded or a file that cannot be read (reported as ``error: ...``)."""


@dataclass
class Decision:
    kind: str
    assignment: str
    student: str
    reason: str = ""
    decided: str = ""  # when it was recorded (UTC, ISO 8601)
    days: float | None = None
    points: float | None = None
    function: str = ""
    file: str = ""

    @property
    def key(self) -> tuple[str, str, str, str]:
        """Two decisions with the same key cannot both hold: a new one replaces the old."""
        return self.kind, self.assignment, self.student, self.function


@dataclass
class Decisions:
    """Every decision of a course, in the order they were made."""

    path: Path
    items: list[Decision] = field(default_factory=list)

    @classmethod
    def load(cls, course: Path) -> Decisions:
        path = Path(course) / DECISIONS_FILE
        if not path.exists():
            return cls(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
            raise DecisionError(f"{path}: not a TOML file I can read ({err}); fix it by hand") from None
        items = []
        names = {f.name for f in fields(Decision)} - {"kind"}
        for kind, entries in data.items():
            if kind not in KINDS or not isinstance(entries, list):
                raise DecisionError(f"{path}: unknown table [[{kind}]] (known: {', '.join(KINDS)})")
            for entry in entries:
                unknown = set(entry) - names
                missing = {"assignment", "student", *[f for f in KINDS[kind] if f != "function"]} - set(entry)
                if unknown or missing:
                    raise DecisionError(f"{path}: a [[{kind}]] entry " + (
                        f"has unknown keys {sorted(unknown)}" if unknown else f"lacks {sorted(missing)}")
                        + f": {entry}")
                items.append(Decision(kind, **{k: (str(v) if k in ("assignment", "student") else v)
                                               for k, v in entry.items()}))
        return cls(path, items)

    def save(self) -> Path:
        """Write the file (one table per kind, entries in the order they were made)."""
        lines = [HEADER]
        for kind, extra in KINDS.items():
            for d in (d for d in self.items if d.kind == kind):
                lines.append(f"[[{kind}]]")
                values = {"assignment": d.assignment, "student": d.student,
                          **{k: getattr(d, k) for k in extra}, "reason": d.reason, "decided": d.decided}
                lines += [f"{k} = {_toml(v)}" for k, v in values.items() if v is not None]
                lines.append("")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("\n".join(lines), encoding="utf-8")
        return self.path

    def record(self, decision: Decision) -> Decision | None:
        """Add ``decision`` (time-stamped now), replacing one with the same key; returns the replaced one."""
        decision.decided = decision.decided or dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        old = next((d for d in self.items if d.key == decision.key), None)
        self.items = [d for d in self.items if d.key != decision.key] + [decision]
        return old

    def remove(self, kind: str, assignment: str, student: str, function: str = "") -> Decision | None:
        """Drop the decision with this key; returns it (None when there was none)."""
        old = next((d for d in self.items if d.key == (kind, assignment, student, function)), None)
        self.items = [d for d in self.items if d is not old]
        return old

    def about(self, kind: str, assignment: str, keys: list[str]) -> list[Decision]:
        """The decisions of ``kind`` for ``assignment`` about the student known by any of ``keys``."""
        keys = [k for k in keys if k]
        return [d for d in self.items if d.kind == kind and d.assignment == assignment and d.student in keys]

    def extension_days(self, assignment: str, keys: list[str]) -> float:
        found = self.about("extension", assignment, keys)
        return float(found[-1].days) if found else 0.0

    def choice(self, assignment: str, keys: list[str]) -> Decision | None:
        found = self.about("choice", assignment, keys)
        return found[-1] if found else None

    def excused(self, assignment: str, keys: list[str]) -> Decision | None:
        found = self.about("excused", assignment, keys)
        return found[-1] if found else None


def _toml(value) -> str:
    """A TOML value: strings as basic strings (JSON's escapes are TOML's, plus U+007F), numbers as numbers."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(float(value)) if isinstance(value, float) and not value.is_integer() else str(int(value))
    return json.dumps(str(value), ensure_ascii=False).replace("\x7f", "\\u007f")
