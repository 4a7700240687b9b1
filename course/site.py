"""Site build helpers: ``python -m course.site prepare`` gets the sources ready for ``jupyter-book build``.

It does two things, both idempotent and quick:
- copies MathJax 3 from the ``django-static-mathjax`` wheel on PyPI (pinned in requirements.txt) into
  ``book/_static/mathjax`` (git-ignored), so the built site renders math with no network and no CDN;
- regenerates the reading pages' Colab-ready ``.ipynb`` twins from their ``.md`` sources
  (``course.notebooks.sync``), so any build, by anyone, shows the current text.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MATHJAX_DEST = ROOT / "book" / "_static" / "mathjax"


def mathjax_source() -> Path:
    """Directory holding MathJax's ``es5`` build inside the installed wheel."""
    import mathjax  # the django-static-mathjax distribution's package

    src = Path(mathjax.__path__[0]) / "static" / "mathjax" / "es5"
    if not (src / "tex-chtml.js").is_file():
        raise FileNotFoundError(f"MathJax not found at {src}; is django-static-mathjax installed?")
    return src


def prepare() -> Path:
    """Copy MathJax into ``book/_static/mathjax`` (skipped when it is already there)."""
    src = mathjax_source()
    if not (MATHJAX_DEST / "tex-chtml.js").is_file():
        shutil.copytree(src, MATHJAX_DEST, dirs_exist_ok=True)
    return MATHJAX_DEST


def main(argv: list[str]) -> int:
    if argv[:1] == ["prepare"]:
        from course import notebooks

        print(f"[site] MathJax in {prepare().relative_to(ROOT)}")
        return notebooks.main(["sync"])
    print("usage: python -m course.site prepare", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
