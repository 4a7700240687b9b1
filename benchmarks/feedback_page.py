"""Time to render one feedback page: the course's exporter vs nbconvert's ``HTMLExporter``, in one run.

    python benchmarks/feedback_page.py [--assignment ch2-sdpa] [--repeat 8]

Both render the assignment's release notebook (grade cells scored, as ``GetGrades`` leaves them) with
nbgrader's feedback template, a new exporter per page as ``nbgrader generate_feedback`` makes one. The
course's ``grader.feedback.FeedbackExporter`` keeps compiled templates and highlighted cells between
pages and skips nbconvert's BeautifulSoup round trip; the table prints the median milliseconds per page
and checks that both pages have the same document tree (ours has a Content-Security-Policy besides). It
also times the course's sanitiser (``grader.sanitize.SanitizeNotebook``), which runs on the notebook
before each feedback page and formgrader view, and once more in ``nbgrader autograde``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "grading"))

from nbconvert.exporters import HTMLExporter  # noqa: E402
from test_feedback_page import _config, _release, _resources, _tree, without_policy  # noqa: E402

from grader.feedback import FeedbackExporter  # noqa: E402
from grader.sanitize import SanitizeNotebook  # noqa: E402


def per_page(exporter: type, nb, repeat: int) -> tuple[float, str]:
    times, page = [], ""
    for _ in range(repeat):
        t0 = time.perf_counter()
        page, _ = exporter(config=_config()).from_notebook_node(nb, _resources(nb))
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000, page


def sanitise_ms(nb, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        copy = nbformat.from_dict(nb)
        t0 = time.perf_counter()
        SanitizeNotebook().preprocess(copy, {})
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--assignment", default="ch2-sdpa")
    p.add_argument("--repeat", type=int, default=8)
    args = p.parse_args()
    nb = _release(args.assignment)
    ours_ms, ours = per_page(FeedbackExporter, nb, args.repeat)
    theirs_ms, theirs = per_page(HTMLExporter, nb, args.repeat)
    print(f"feedback page of the {args.assignment} release, median of {args.repeat} (ms per page)")
    print(f"{'nbconvert HTMLExporter':<28}{theirs_ms:8.1f}")
    print(f"{'grader FeedbackExporter':<28}{ours_ms:8.1f}   {theirs_ms / ours_ms:5.1f}x faster")
    print(f"{'grader SanitizeNotebook':<28}{sanitise_ms(nb, args.repeat):8.1f}   (before each page)")
    same = _tree(without_policy(ours)) == _tree(theirs)
    print(f"same document tree: {'yes' if same else 'NO'}")
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
