"""Opening an nbgrader course directory from Python, exactly as the stock commands see it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

#: The course directory of this repository (``grader/``).
COURSE_DIR = Path(__file__).resolve().parent


def ensure_tools_on_path() -> None:
    """nbgrader runs ``alembic`` (creating a gradebook) from PATH: put this Python's bin dir first."""
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


def load_config(root: Path, overrides: Config | None = None) -> Config:
    """The config of the course at ``root``: its ``nbgrader_config.py``, then ``overrides``,
    with ``CourseDirectory.root`` pinned to ``root``."""
    root = Path(root).resolve()
    cfg = Config()
    if (root / "nbgrader_config.py").exists():
        cfg.merge(PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config())
    if overrides is not None:
        cfg.merge(overrides)
    cfg.CourseDirectory.root = str(root)
    return cfg


def open_api(root: Path, overrides: Config | None = None):
    """An ``nbgrader.apps.NbGraderAPI`` for the course at ``root`` (quiet: warnings and errors only)."""
    from nbgrader.apps import NbGraderAPI

    ensure_tools_on_path()
    cfg = load_config(root, overrides)
    cfg.NbGraderAPI.log_level = "WARN"
    return NbGraderAPI(config=cfg)


def db_url(root: Path) -> str:
    return f"sqlite:///{Path(root).resolve() / 'gradebook.db'}"


def assignment_ids(root: Path) -> list[str]:
    """Assignments that have a source notebook folder, sorted."""
    source = Path(root) / "source"
    return sorted(p.name for p in source.iterdir() if p.is_dir()) if source.exists() else []
