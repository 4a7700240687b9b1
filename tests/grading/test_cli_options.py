"""`python -m grader`: every global option works before or after the subcommand, and every
subcommand's options in any order among its positional arguments; misuse still says `error: ...`.

The subcommands are read from the parser itself, so a new subcommand is covered without editing this file.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from grader.cli import build_parser

PY = sys.executable
ENV = {**os.environ, "PATH": str(Path(PY).parent) + os.pathsep + os.environ.get("PATH", "")}


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _minimal_args(sub: argparse.ArgumentParser) -> list[str]:
    """The fewest arguments the subcommand accepts: one value per required positional and option."""
    args: list[str] = []
    for action in sub._actions:
        if not action.option_strings and action.nargs not in ("?", "*"):
            args.append("x")
        elif action.option_strings and action.required:
            args += [action.option_strings[0], "x"]
    return args


@pytest.mark.parametrize("command", sorted(_subcommands()))
def test_course_dir_before_or_after_the_subcommand(command: str) -> None:
    rest = _minimal_args(_subcommands()[command])
    parse = build_parser().parse_args
    assert parse(["--course-dir", "D", command, *rest]).course_dir == "D"
    assert parse([command, "--course-dir", "D", *rest]).course_dir == "D"
    assert parse([command, *rest, "--course-dir", "D"]).course_dir == "D"
    assert parse([command, *rest]).course_dir is None, "the default must not be overwritten by the subcommand"
    assert parse(["--course-dir", "A", command, *rest, "--course-dir", "B"]).course_dir == "B"


def test_options_between_positional_arguments() -> None:
    parse = build_parser().parse_args
    args = parse(["grade", "ch2-sdpa", "--jobs", "2", "ch3-self-cross", "--course-dir", "D"])
    assert (args.assignments, args.jobs, args.course_dir) == (["ch2-sdpa", "ch3-self-cross"], 2, "D")
    args = parse(["merge", "s1", "--into", "c", "s2"])
    assert (args.shards, args.into) == (["s1", "s2"], "c")
    args = parse(["return", "--lms", "moodle", "ch2-sdpa", "--missing-zero"])
    assert (args.assignment, args.lms, args.missing_zero) == ("ch2-sdpa", "moodle", True)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "-m", "grader", *args], capture_output=True, text=True, env=ENV, timeout=120)


def test_course_dir_after_the_subcommand_reaches_the_command(tmp_path: Path) -> None:
    missing = tmp_path / "no-course"
    for args in (["grade", "ch2-sdpa", "--course-dir", str(missing)], ["--course-dir", str(missing), "report"]):
        res = _cli(*args)
        assert res.returncode == 2, res.stderr
        assert f"error: {missing} is not an nbgrader course directory" in res.stderr, res.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["grade", "--course-dir"], "expected one argument"),
        (["grade", "--bogus"], "unrecognized arguments: --bogus"),
        (["return"], "the following arguments are required: assignment"),
        (["grade", "--jobs", "0"], "--jobs"),
    ],
)
def test_misuse_is_an_error_with_exit_2(args: list[str], says: str) -> None:
    res = _cli(*args)
    assert res.returncode == 2
    assert "error:" in res.stderr and says in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
