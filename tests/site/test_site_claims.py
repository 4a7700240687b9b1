"""A page whose numbers contradict its sentences does not build.

A small book broken on purpose, built with the course's flags (``-W -n --keep-going``) and the course's
``execute`` settings: a hidden ``course.claims.check`` that is false for the computed numbers, and a
``{glue:text}`` role naming a value the page never computed, each fail the build with a message that
names the claim. The same book, with the claim true and every glued value computed, builds and shows
the computed number.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.site, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]

PAGE = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# Loop or batch

```{{code-cell}} ipython3
:tags: [remove-cell]

from course.claims import check, glue

loop_ms, batched_ms = 5.0, 2.0  # as if measured
glue("ratio", loop_ms / batched_ms)
check(loop_ms / batched_ms > {threshold}, "the loop takes more than {threshold} times as long")
```

On this machine the loop took {{glue:text}}`ratio:.1f` times as long as the batched call{extra}.
"""


def build(book: Path, page: str) -> tuple[int, str]:
    book.mkdir()
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    (book / "_config.yml").write_text(yaml.safe_dump({"title": "claims", "only_build_toc_files": True,
                                                      "execute": {"execute_notebooks": config["execute"]
                                                                  ["execute_notebooks"],
                                                                  "timeout": config["execute"]["timeout"]}}))
    (book / "_toc.yml").write_text("format: jb-book\nroot: index\nchapters:\n  - file: page\n")
    (book / "index.md").write_text("# Claims\n\nA test book.\n")
    (book / "page.md").write_text(page)
    cmd = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(book), "-W", "-n", "--keep-going"]
    proc = subprocess.run(cmd, cwd=book, capture_output=True, text=True, timeout=600)
    reports = "".join(p.read_text() for p in (book / "_build" / "html" / "reports").glob("*.log"))
    return proc.returncode, proc.stdout + proc.stderr + reports


def test_a_false_claim_and_an_uncomputed_number_fail_the_build(tmp_path: Path) -> None:
    code, log = build(tmp_path / "broken", PAGE.format(threshold=3, extra=", {glue:text}`never_computed` ms"))
    assert code != 0, log[-3000:]
    assert "ClaimError" in log and "the loop takes more than 3 times as long" in log, log[-3000:]
    assert "No key 'never_computed' found in glue data" in log, log[-3000:]


def test_the_same_page_with_true_claims_builds_and_shows_the_computed_number(tmp_path: Path) -> None:
    code, log = build(tmp_path / "fixed", PAGE.format(threshold=2, extra=""))
    assert code == 0, log[-3000:]
    html = (tmp_path / "fixed" / "_build" / "html" / "page.html").read_text(encoding="utf-8")
    assert 'took <span class="pasted-text">2.5</span> times as long' in html
