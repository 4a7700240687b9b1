"""Reading pages as Colab-ready notebooks: ``python -m course.notebooks sync|check``.

The reading pages are written as MyST markdown notebooks (``book/chN_*.md``, the one source of truth,
easy to review). Colab opens only ``.ipynb`` files from GitHub, so each of them gets a generated twin
``book/chN_*.ipynb`` (committed, outputs cleared) that the book is built from; ``_config.yml`` excludes
the ``.md`` twins from the Sphinx build. The generated notebook starts with one extra code cell, tagged
``remove-cell`` (hidden on the website), that installs this course's public package (``course`` only,
without the reference solutions) from the repository when it is not importable, so the page runs top
to bottom in Colab, Binder or any Jupyter outside the repo (``course.impl`` then gives the readings
stand-ins for the reference functions).
The repository URL is read from ``_config.yml`` (``repository.url`` and ``repository.branch``), the one
place it is written.

``sync`` rewrites the stale twins; ``check`` exits 1 listing them (the test suite runs it).
"""

from __future__ import annotations

import hashlib
import sys
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
CONFIG = ROOT / "_config.yml"
INSTALL_TAG = "remove-cell"
INSTALL_CELL_MARK = "# Outside the course repository (Colab, Binder, ...): install the course package first."
# Every paired .md must match this pattern, which _config.yml's exclude_patterns also lists.
TWIN_PATTERN = "book/ch*.md"


def read_config(path: Path = CONFIG) -> dict:
    """The parsed ``_config.yml``."""
    import yaml

    return yaml.safe_load(path.read_text(encoding="utf-8"))


def package_url(config: dict | None = None) -> str:
    """pip requirement for the course package at the configured repository and branch."""
    repo = (config or read_config())["repository"]
    url = repo["url"].rstrip("/")
    branch = repo.get("branch", "main")
    return f"attention-course @ git+{url}.git@{branch}"


def install_cell_source(config: dict | None = None) -> str:
    """The first cell of every generated reading notebook.

    It installs the public ``course`` package only (the repository's ``pyproject.toml`` packages nothing
    else: no ``solutions/``, no grader), and only when ``course`` is not importable already: in the
    repository, or where the package is installed, it does nothing and needs no network.
    """
    return "\n".join(
        [
            INSTALL_CELL_MARK,
            "try:",
            "    import course  # noqa: F401",
            "except ImportError:",
            f'    %pip install --quiet "{package_url(config)}"',
        ]
    )


def is_notebook_md(path: Path) -> bool:
    """True for a MyST markdown *notebook* (front matter with a kernelspec), not a plain page."""
    text = path.read_text(encoding="utf-8")
    if not text.startswith("---"):
        return False
    front = text.split("---", 2)[1]
    return "kernelspec:" in front


def paired_sources(book: Path = BOOK) -> list[Path]:
    """The markdown notebooks that get an ``.ipynb`` twin, in name order."""
    return sorted(p for p in book.glob("*.md") if is_notebook_md(p))


def _cell_id(source: str, taken: set[str]) -> str:
    """A cell id derived from the cell's text, so regenerating gives the same ids (clean diffs)."""
    base = hashlib.sha1(source.encode("utf-8")).hexdigest()[:8]
    cell_id, k = base, 1
    while cell_id in taken:
        cell_id, k = f"{base}-{k}", k + 1
    taken.add(cell_id)
    return cell_id


def render(md_path: Path, config: dict | None = None) -> str:
    """The ``.ipynb`` text generated from one markdown notebook (deterministic, outputs cleared)."""
    import jupytext
    import nbformat

    nb = jupytext.read(md_path)
    nb.metadata.pop("jupytext", None)
    install = nbformat.v4.new_code_cell(install_cell_source(config), metadata={"tags": [INSTALL_TAG]})
    nb.cells.insert(0, install)
    taken: set[str] = set()
    for cell in nb.cells:
        cell.id = _cell_id(cell.source, taken)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    nb.nbformat, nb.nbformat_minor = 4, 5
    return nbformat.writes(nb, version=4) + "\n"


def twin(md_path: Path) -> Path:
    return md_path.with_suffix(".ipynb")


def stale(book: Path = BOOK, config: dict | None = None) -> list[Path]:
    """Twins that are missing or differ from what their ``.md`` generates (``config``: the ``_config.yml``)."""
    config = config or read_config()
    out = []
    for md in paired_sources(book):
        ipynb = twin(md)
        if not ipynb.is_file() or ipynb.read_text(encoding="utf-8") != render(md, config):
            out.append(ipynb)
    return out


def sync(book: Path = BOOK) -> list[Path]:
    """Regenerate the stale twins; returns the files written."""
    config = read_config()
    written = []
    for md in paired_sources(book):
        ipynb, text = twin(md), render(md, config)
        if not ipynb.is_file() or ipynb.read_text(encoding="utf-8") != text:
            ipynb.write_text(text, encoding="utf-8")
            written.append(ipynb)
    return written


def orphans(book: Path = BOOK) -> list[Path]:
    """Generated-looking ``book/*.ipynb`` files whose ``.md`` source is gone."""
    sources = {twin(p) for p in paired_sources(book)}
    return sorted(p for p in book.glob("*.ipynb") if p not in sources and INSTALL_CELL_MARK in p.read_text())


def twins_excluded_by_config(config: dict | None = None) -> bool:
    """True when ``_config.yml`` excludes every paired ``.md`` (else Sphinx finds two sources per page)."""
    patterns = (config or read_config()).get("exclude_patterns", [])
    rel = [p.relative_to(ROOT).as_posix() for p in paired_sources()]
    return all(any(fnmatch(r, pat) for pat in patterns) for r in rel)


def main(argv: list[str]) -> int:
    cmd = argv[:1]
    if cmd == ["sync"]:
        written = sync()
        for p in written:
            print(f"[notebooks] wrote {p.relative_to(ROOT)}")
        print(f"[notebooks] {len(paired_sources())} reading notebooks in sync ({len(written)} rewritten)")
        return 0
    if cmd == ["check"]:
        bad = stale()
        for p in bad:
            print(f"[notebooks] stale: {p.relative_to(ROOT)} (run: python -m course.notebooks sync)")
        return 1 if bad else 0
    print("usage: python -m course.notebooks sync|check", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
