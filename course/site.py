"""What the website needs besides its pages: ``python -m course.site prepare`` and the site's own assets.

- ``stage_assets(dest)`` copies the JavaScript the pages load into ``dest`` (``mathjax/``: MathJax 3
  from the ``django-static-mathjax`` wheel; ``plotly/plotly.min.js``: from the ``plotly`` wheel), both
  pinned in requirements.txt. The course's Sphinx extension (``course/sphinx_offline.py``) calls it at
  the start of every build and adds ``dest`` to ``html_static_path``, so ``jupyter-book build .`` alone
  serves them from ``_static/``: math and interactive figures render with no network and no CDN.
- ``prepare()`` (``python -m course.site prepare``, run by ``scripts/build.sh``) regenerates the reading
  pages' Colab-ready ``.ipynb`` twins from their ``.md`` sources (``course.notebooks.sync``). A plain
  ``jupyter-book build .`` does not write sources: it stops, naming the stale twins, when they differ.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MATHJAX_ENTRY = "tex-chtml.js"  # _config.yml: mathjax_path: mathjax/tex-chtml.js


def mathjax_source() -> Path:
    """Directory holding MathJax's ``es5`` build inside the installed wheel."""
    try:
        import mathjax  # the django-static-mathjax distribution's package
    except ImportError:
        raise FileNotFoundError("MathJax is missing: install django-static-mathjax (see requirements.txt)") from None
    src = Path(mathjax.__path__[0]) / "static" / "mathjax" / "es5"
    if not (src / MATHJAX_ENTRY).is_file():
        raise FileNotFoundError(f"MathJax not found at {src}; is django-static-mathjax installed?")
    return src


def _copy_if_changed(src: Path, dest: Path) -> None:
    """Copy a file or a directory tree; skipped when ``dest`` is already a copy of the same version."""
    stamp = dest.parent / f".{dest.name}.source"
    version = f"{src.resolve()} {src.stat().st_mtime_ns} {src.stat().st_size}"
    if dest.exists() and stamp.is_file() and stamp.read_text() == version:
        return
    if dest.is_dir():
        shutil.rmtree(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(src, dest)
    else:
        shutil.copy2(src, dest)
    stamp.write_text(version)


def stage_assets(dest: Path) -> Path:
    """Copy MathJax and plotly.js into ``dest`` (``mathjax/``, ``plotly/plotly.min.js``); returns ``dest``."""
    from course import interactive

    _copy_if_changed(mathjax_source(), dest / "mathjax")
    _copy_if_changed(interactive.plotly_js(), dest / interactive.PLOTLY_STATIC_PATH)
    return dest


def prepare() -> list[Path]:
    """Regenerate the stale reading-page twins (``book/chN_*.ipynb``); returns the files written."""
    from course import notebooks

    return notebooks.sync()


def main(argv: list[str]) -> int:
    if argv[:1] == ["prepare"]:
        from course import notebooks

        return notebooks.main(["sync"])
    print("usage: python -m course.site prepare", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
