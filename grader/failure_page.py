"""The feedback page of a submission that could not be graded: what went wrong and what to do.

nbgrader writes feedback only for notebooks it graded; ``python -m grader grade`` writes this small page
for the others, where nbgrader's would be (``feedback/<student>/<assignment>/<assignment>.html``), so the
student who sent a truncated or damaged file learns why it scored 0 (``python -m grader return`` sends
it like any feedback page). One file, no script, no stylesheet or font from anywhere: it reads offline.
"""

from __future__ import annotations

import html
from pathlib import Path

from grader.failures import GRADED_ZERO

#: What to do, by the kind of reason (the first whose words appear in the message).
_ADVICE = [
    (("expected",), "Save your notebook under the assignment's file name, {notebook}, and submit it again."),
    (("crashed", "unexpected problem", "grading machine", "course set-up", "stopped answering"),
     "This was a problem on the grader's side, not in your file: your instructor has the details and will "
     "grade it again. You do not need to submit again."),
]
_DAMAGED = ("Open the file you submitted in Jupyter. If it does not open, or looks wrong, it was damaged "
            "(often by an upload or a save that was cut short): download the assignment's notebook again, "
            "copy your answers into it, save it in Jupyter and submit that file ({notebook}). If it opens "
            "as it should, tell your instructor: this message and your file help them find the problem.")

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{assignment}: not graded</title>
<style>
body {{ font-family: system-ui, -apple-system, "Segoe UI", sans-serif; line-height: 1.5; color: #1b1b1b;
       background: #ffffff; margin: 0; }}
main {{ max-width: 44rem; margin: 0 auto; padding: 1.5rem 1rem 3rem; }}
h1 {{ font-size: 1.5rem; line-height: 1.3; }}
.reason {{ border-left: 4px solid #a4000f; background: #fbeff0; padding: 0.75rem 1rem; margin: 1rem 0;
          overflow-wrap: anywhere; }}
</style>
</head>
<body>
<main>
<h1>{assignment}: your notebook could not be graded</h1>
<p>It scored 0 points.</p>
<p class="reason"><strong>Why:</strong> {reason}.</p>
<h2>What to do</h2>
<p>{advice}</p>
</main>
</body>
</html>
"""


def page(assignment: str, message: str) -> str:
    """The page's HTML for ``message`` (a reason in words, ending in ``graded 0``; escaped here)."""
    reason = message.removesuffix(GRADED_ZERO).rstrip().rstrip(";").rstrip() or "the grader could not grade it"
    notebook = f"{assignment}.ipynb"
    advice = next((text for words, text in _ADVICE if any(w in reason for w in words)), _DAMAGED)
    return _PAGE.format(assignment=html.escape(assignment), reason=html.escape(reason),
                        advice=html.escape(advice.format(notebook=notebook)))


def write_failure_page(course: Path, assignment: str, student: str, message: str) -> Path:
    """Write the page at ``feedback/<student>/<assignment>/<assignment>.html`` of ``course``."""
    path = Path(course) / "feedback" / student / assignment / f"{assignment}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page(assignment, message), encoding="utf-8")
    return path


__all__ = ["page", "write_failure_page"]
