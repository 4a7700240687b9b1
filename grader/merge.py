"""Merge shard course directories into one course: gradebook rows, autograded notebooks, feedback.

A *shard* is a course directory (same ``nbgrader_config.py`` and ``source/``, its own
``gradebook.db``) in which a subset of the students was autograded: by one worker process of
``python -m grader grade``, or by one pod of a Kubernetes indexed Job. The submissions a shard
graded are the ones under its ``submitted/``. Merging copies, for each of them, the submission's
rows (student, submission, notebooks, grades, comments) into the target ``gradebook.db`` and
replaces the target's ``autograded/`` and ``feedback/`` folders and its record in ``grading-logs/`` (the
message of a submission that could not be graded) for that student and assignment.
The target database is written by this one process only, so parallel grading never has two
writers on one SQLite file; merging the same shard twice gives the same result (no duplicates).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

from grader.coursedir import db_url, ensure_tools_on_path
from grader.failures import record_path

STUDENT_FIELDS = ("first_name", "last_name", "email", "lms_user_id")
GRADE_FIELDS = ("auto_score", "manual_score", "extra_credit", "needs_manual_grade")
COMMENT_FIELDS = ("auto_comment", "manual_comment")


def graded_in(shard: Path) -> list[tuple[str, str]]:
    """``(assignment, student)`` pairs submitted to ``shard`` (those it graded), sorted."""
    submitted = Path(shard) / "submitted"
    if not submitted.exists():
        return []
    return sorted(
        (a.name, s.name) for s in submitted.iterdir() if s.is_dir() for a in s.iterdir() if a.is_dir()
    )


def _replace_tree(src: Path, dst: Path) -> None:
    if dst.exists():
        shutil.rmtree(dst)
    if src.exists():
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(src, dst)


def _replace_record(shard: Path, into: Path, assignment: str, student: str) -> None:
    """The shard's record of a submission that failed (``grading-logs/``) replaces the course's, if any."""
    src, dst = record_path(shard, assignment, student), record_path(into, assignment, student)
    if src.is_file():
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, dst)
    else:
        dst.unlink(missing_ok=True)


def _copy_rows(src_gb, dst_gb, assignment: str, student: str) -> bool:
    """Copy one submission's rows; returns False when the shard has no row for it."""
    from nbgrader.api import MissingEntry

    try:
        sub = src_gb.find_submission(assignment, student)
    except MissingEntry:
        return False
    s = sub.student
    dst_gb.update_or_create_student(student, **{f: getattr(s, f) for f in STUDENT_FIELDS})
    dst_sub = dst_gb.update_or_create_submission(
        assignment, student, timestamp=sub.timestamp, extension=sub.extension
    )
    dst_notebooks = {nb.name: nb for nb in dst_sub.notebooks}
    for nb in sub.notebooks:
        dnb = dst_notebooks[nb.name]
        dnb.flagged = nb.flagged
        dnb.late_submission_penalty = nb.late_submission_penalty
        dst_grades = {g.name: g for g in dnb.grades}
        for g in nb.grades:
            for field in GRADE_FIELDS:
                setattr(dst_grades[g.name], field, getattr(g, field))
        dst_comments = {c.name: c for c in dnb.comments}
        for c in nb.comments:
            for field in COMMENT_FIELDS:
                setattr(dst_comments[c.name], field, getattr(c, field))
    dst_gb.db.commit()
    return True


def merge_shards(shards: Iterable[Path], into: Path) -> list[tuple[str, str]]:
    """Merge every shard into the course at ``into``; returns the merged ``(assignment, student)``."""
    from nbgrader.api import Gradebook

    ensure_tools_on_path()
    into = Path(into)
    merged = []
    with Gradebook(db_url(into)) as dst_gb:
        for shard in shards:
            shard = Path(shard)
            pairs = graded_in(shard)
            if not pairs:
                continue
            with Gradebook(db_url(shard)) as src_gb:
                for assignment, student in pairs:
                    _copy_rows(src_gb, dst_gb, assignment, student)
                    for folder in ("autograded", "feedback"):
                        _replace_tree(shard / folder / student / assignment, into / folder / student / assignment)
                    _replace_record(shard, into, assignment, student)
                    submitted = into / "submitted" / student / assignment
                    if not submitted.exists():  # a shard graded elsewhere brings its submissions along
                        shutil.copytree(shard / "submitted" / student / assignment, submitted)
                    merged.append((assignment, student))
    return merged
