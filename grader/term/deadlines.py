"""Due dates, extensions and the late penalty, from the course config, written where nbgrader reads them.

In ``grader/nbgrader_config.py``::

    c.Term.due_dates = {"ch2-sdpa": "2026-10-05 23:59:00 Europe/Berlin"}
    c.AssignLatePenalties.plugin_class = "grader.term.deadlines.LatePenalty"
    c.LatePenalty.percent_per_day = 10               # of the notebook's score, per day or part of a day
    c.LatePenalty.grace_minutes = 0

Extensions are the instructor's decisions about single students: ``python -m grader extend`` writes them
into the course's ``decisions.toml`` (:mod:`grader.term.decisions`). ``python -m grader import`` and
``grade`` write the due date into the gradebook (the assignment's ``duedate``) and each extension into the
student's submission (``extension``), and the submission time into
``submitted/<student>/<id>/timestamp.txt``: stock ``nbgrader autograde`` then computes the same
lateness, :class:`LatePenalty` the same penalty, and ``nbgrader export`` the same score as the CLI's CSV.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

from nbgrader.plugins import LateSubmissionPlugin
from traitlets import Dict, Float, Unicode
from traitlets.config import Configurable

from grader.coursedir import db_url, ensure_tools_on_path, load_config
from grader.term.decisions import DecisionError, Decisions

#: nbgrader's own timestamp format (``CourseDirectory.timestamp_format``), in UTC.
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f UTC"


class Term(Configurable):
    """The term's calendar: due dates and per-student extensions."""

    due_dates = Dict(
        value_trait=Unicode(), help="assignment id -> due date, e.g. '2026-10-05 23:59:00 Europe/Berlin'"
    ).tag(config=True)
    extensions = Dict(
        value_trait=Dict(), help="no longer used: extensions are decisions (python -m grader extend), kept in "
                                 "decisions.toml; a config that still sets this is refused with that advice"
    ).tag(config=True)


class LatePenalty(LateSubmissionPlugin):
    """``percent_per_day`` of the score per started day late (after ``grace_minutes``), at most the score."""

    percent_per_day = Float(10.0, help="penalty per day (or part of a day) late, in percent of the score").tag(
        config=True)
    grace_minutes = Float(0.0, help="minutes late that cost nothing").tag(config=True)

    def late_submission_penalty(self, student_id: str, score: float, total_seconds_late: float) -> float | None:
        """The penalty in points (nbgrader subtracts it from the notebook's score)."""
        return penalty(score, total_seconds_late, self.percent_per_day, self.grace_minutes)


def penalty(score: float, seconds_late: float, percent_per_day: float, grace_minutes: float = 0.0) -> float:
    """Points lost by a notebook scoring ``score`` submitted ``seconds_late`` seconds late."""
    late = seconds_late - grace_minutes * 60
    if late <= 0:
        return 0.0
    days = math.ceil(late / 86400)
    return round(min(score, score * percent_per_day * days / 100), 6)


def parse_time(text: str) -> dt.datetime:
    """A naive UTC datetime from a due date string (nbgrader's own parser: ``2026-10-05 23:59 UTC``,
    ``2026-10-05 23:59:00 Europe/Berlin``, ISO 8601 with an offset)."""
    from nbgrader.utils import parse_utc

    try:
        value = parse_utc(text)
    except (ValueError, OverflowError) as err:
        raise ValueError(f"not a date: {text!r} ({err})") from None
    if value is None:
        raise ValueError(f"not a date: {text!r}")
    return value


def term(course: Path) -> Term:
    """The course's :class:`Term` (from its ``nbgrader_config.py``); refuses a config that still lists
    extensions (they are decisions now, one place for them)."""
    calendar = Term(config=load_config(course))
    if any(calendar.extensions.values()):
        first = next((a, s, d) for a, e in calendar.extensions.items() for s, d in e.items())
        raise DecisionError(f"{Path(course) / 'nbgrader_config.py'} sets c.Term.extensions: extensions are recorded "
                         f"with `python -m grader extend` now (in decisions.toml, with a reason), e.g. "
                         f"`python -m grader extend {first[0]} {first[1]} --days {first[2]:g}`; run that for each "
                         "and remove c.Term.extensions from the config")
    return calendar


def due_date(course: Path, assignment: str) -> dt.datetime | None:
    """The assignment's due date (naive UTC) from the config, or None."""
    text = term(course).due_dates.get(assignment)
    return parse_time(text) if text else None


def extension_days(course: Path, assignment: str, keys: list[str]) -> float:
    """Days of extension of the student known by any of ``keys`` (student id, LMS id): the course's decision."""
    return Decisions.load(course).extension_days(assignment, keys)


def write_timestamp(folder: Path, when: dt.datetime) -> None:
    """``timestamp.txt`` as nbgrader writes it (naive ``when`` is UTC)."""
    (Path(folder) / "timestamp.txt").write_text(when.strftime(TIMESTAMP_FORMAT))


def apply_term(course: Path, assignment: str, students: dict[str, list[str]], decided_in: Path | None = None) -> None:
    """Write the assignment's due date (when the config has one) into the gradebook at ``course`` and the
    extension of each of ``students`` that ``decided_in``'s decisions (default: ``course``'s) give into
    their submission (``students``: student id -> the keys a decision may name it by: student id, LMS id).
    The assignment must already be in the gradebook (``grader.cli.ensure_generated``)."""
    from nbgrader.api import Gradebook, MissingEntry

    ensure_tools_on_path()
    text = term(course).due_dates.get(assignment)
    decisions = Decisions.load(decided_in or course)
    with Gradebook(db_url(course)) as gb:
        if text:  # without one in the config, a due date set with stock `nbgrader db assignment` stays
            gb.update_or_create_assignment(assignment, duedate=parse_time(text))
        for student, keys in students.items():
            days = decisions.extension_days(assignment, keys)
            if not days:  # none (or one taken back): clear what an earlier run wrote
                try:
                    gb.find_submission(assignment, student).extension = None
                    gb.db.commit()
                except MissingEntry:
                    pass
                continue
            gb.update_or_create_student(student)
            gb.update_or_create_submission(assignment, student, extension=dt.timedelta(days=days))
