"""The reading pages' Colab-ready ``.ipynb`` twins (``course/notebooks.py``) match their ``.md`` sources."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from course import notebooks

pytestmark = pytest.mark.site


def test_every_reading_page_has_a_notebook_twin() -> None:
    sources = notebooks.paired_sources()
    names = {p.name for p in sources}
    assert {f"ch{i}" for i in range(1, 7)} <= {n.split("_")[0] for n in names}, names
    assert "intro.md" not in names  # a plain page, no code: no twin


def test_committed_twins_are_in_sync_with_their_md() -> None:
    stale = [str(p.relative_to(notebooks.ROOT)) for p in notebooks.stale()]
    assert stale == [], f"run `python -m course.notebooks sync` and commit: {stale}"
    assert notebooks.orphans() == []


def test_the_book_builds_from_the_twins_not_the_md() -> None:
    assert notebooks.twins_excluded_by_config()
    config = notebooks.read_config()
    assert notebooks.TWIN_PATTERN in config["exclude_patterns"]
    for md in notebooks.paired_sources():
        assert md.match(notebooks.TWIN_PATTERN.split("/")[-1])


def test_first_cell_installs_the_course_from_the_configured_repository() -> None:
    config = notebooks.read_config()
    url = config["repository"]["url"]
    for md in notebooks.paired_sources():
        nb = json.loads(notebooks.twin(md).read_text(encoding="utf-8"))
        first = nb["cells"][0]
        source = "".join(first["source"])
        assert first["cell_type"] == "code" and first["metadata"]["tags"] == ["remove-cell"]
        assert f"git+{url}.git@{config['repository']['branch']}" in source
        assert "except ImportError:" in source and "%pip install" in source
        # It needs (and installs) the public package only: the reference is never part of what students get.
        assert "import course  #" in source and "solutions" not in source
        assert all(c.get("outputs", []) == [] for c in nb["cells"]), f"{md.name}: outputs must be cleared"


def test_the_install_cell_is_valid_ipython_and_skips_when_installed() -> None:
    from IPython.core.inputtransformer2 import TransformerManager

    python = TransformerManager().transform_cell(notebooks.install_cell_source())
    assert "get_ipython().run_line_magic('pip'" in python
    calls: list[str] = []
    namespace = {"get_ipython": lambda: type("IP", (), {"run_line_magic": lambda *a: calls.append(a)})()}
    exec(compile(python, "install-cell", "exec"), namespace)  # the course is importable here: no install
    assert calls == []


def test_a_changed_md_makes_its_twin_stale(tmp_path: Path) -> None:
    md = notebooks.paired_sources()[0]
    copy = tmp_path / md.name
    copy.write_text(md.read_text(encoding="utf-8") + "\nOne more sentence.\n", encoding="utf-8")
    assert notebooks.render(copy) != notebooks.twin(md).read_text(encoding="utf-8")
    assert notebooks.render(md) == notebooks.render(md)  # deterministic, so committed files diff cleanly
