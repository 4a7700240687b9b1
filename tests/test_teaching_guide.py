"""The guides state what the course really grades: the teaching guide's mistake counts are generated from the
catalogue (``grader/catalogue.py``) and the instructor guide lists every graded function of every exercise."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from grader import catalogue
from grader.engine.registry import exercises

ROOT = Path(__file__).resolve().parents[1]


def test_every_known_mistake_has_exactly_one_theme_and_every_theme_exists() -> None:
    known = [m.id for ex in exercises() for m in ex.mistakes]
    listed = [i for _, ids in catalogue.THEMES.values() for i in ids]
    assert sorted(listed) == sorted(set(listed)), "a mistake is listed under two themes"
    assert set(known) - set(listed) == set(), "add these mistakes to grader/catalogue.py THEMES"
    assert set(listed) - set(known) == set(), "THEMES names mistakes that no exercise has"
    assert all(ids for _, ids in catalogue.THEMES.values())


def test_the_teaching_guide_tables_are_generated_from_the_catalogue() -> None:
    assert catalogue.main(["--check"]) == 0, "run `python -m grader.catalogue --write`"


def test_the_generated_counts_are_the_catalogues() -> None:
    table = catalogue.chapter_table()
    for ex in exercises():
        row = next(line for line in table.splitlines() if f"`{ex.id}`" in line)
        assert row.endswith(f"| {len(ex.mistakes)} |")
        assert all(f"`{name}` ({points:g})" in row for name, points in ex.points.items())
    assert table.splitlines()[-1].endswith(f"| {sum(len(ex.mistakes) for ex in exercises())} |")


def test_a_stale_or_unknown_block_is_refused(tmp_path: Path) -> None:
    generated = catalogue.blocks()
    page = "<!-- catalogue:themes -->\nold table\n<!-- /catalogue:themes -->\n"
    assert "old table" not in catalogue.render(page, generated)
    assert generated["themes"] in catalogue.render(page, generated)
    with pytest.raises(KeyError, match="unknown catalogue block"):
        catalogue.render("<!-- catalogue:nonsense -->\n<!-- /catalogue:nonsense -->", generated)
    with pytest.raises(KeyError, match="has no theme"):
        catalogue.theme_of("a-mistake-nobody-classified")


def test_the_instructor_guide_lists_every_graded_function() -> None:
    text = (ROOT / "book" / "instructors.md").read_text(encoding="utf-8")
    for ex in exercises():
        row = re.search(rf"^\| `{re.escape(ex.id)}` \|[^|]*\|(?P<graded>[^|]*)\|", text, re.M)
        assert row, f"book/instructors.md has no row for {ex.id}"
        assert re.findall(r"`(\w+)`", row.group("graded")) == list(ex.points), (ex.id, row.group("graded"))


def test_the_teaching_guide_is_in_the_table_of_contents() -> None:
    assert "file: book/teaching" in (ROOT / "_toc.yml").read_text(encoding="utf-8")
