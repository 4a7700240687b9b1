"""nbgrader's own UI in the pinned JupyterLab: the formgrader and the Create Assignment panel, in Chromium.

Instructors do manual grading, overrides and extensions in nbgrader's formgrader, and mark cells with its
Create Assignment panel. Its JupyterLab extension (``@jupyter/nbgrader`` 0.9.6) needs JupyterLab 4.4 and
Notebook 7.4, so ``requirements.txt`` pins the JupyterLab, Notebook and Jupytext versions whose extensions
agree with it. Here: ``jupyter labextension list`` calls every extension compatible, and a JupyterLab served
locally from a graded course, with every server extension nbgrader installs enabled, (a) loads without a
script error, (b) has the Nbgrader menu and the Create Assignment panel, (c) opens the formgrader from that
menu, which lists the course's assignment, and (d) lists the graded submissions with their scores; no
request leaves the host.

What the instructor opens is hostile too (``grader/sanitize.py``): the class holds a submission whose outputs,
markdown and raw cells and display name try to run a script (:func:`grader.synthetic.with_hostile_renderables`)
that writes a file into the course directory through the Jupyter contents API with the instructor's session,
calls a local listener and opens a dialog. Opened in the formgrader, it runs nothing, calls nothing and writes
nothing, while its table, plots and formulas render; the same script, run in the instructor's JupyterLab page,
does write the file (the check can fail).

nbgrader's ``validate_assignment`` server extension (the "Validate" button) validates, that is runs, the
notebook at the path a request names. Up to 0.9.5 it joined that path to the server's root without a check;
0.9.6 refuses a path that resolves outside the root (jupyter/nbgrader#1978). With the extension enabled, a
notebook inside the course is run, and one outside it, named by ``../``, by an absolute path or through a
link inside the course, is refused (403) and not run.
"""

from __future__ import annotations

import http.server
import os
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest

from grader import synthetic

pytestmark = [pytest.mark.site, pytest.mark.grading, pytest.mark.slow]
PY = sys.executable
ENV = {**os.environ, "PATH": str(Path(PY).parent) + os.pathsep + os.environ.get("PATH", "")}
A = synthetic.ASSIGNMENT
STUDENTS = {"correct": "3 / 3", "wrong": "1 / 3"}


def test_every_jupyterlab_extension_is_compatible_with_the_pinned_jupyterlab() -> None:
    res = subprocess.run([PY, "-m", "jupyter", "labextension", "list"], capture_output=True, text=True, env=ENV,
                         timeout=120)
    text = re.sub(r"\x1b\[[0-9;]*m", "", res.stdout + res.stderr)  # without colours
    assert re.search(r"@jupyter/nbgrader v0\.9\.\d+ enabled\s+OK", text), text
    assert "incompatible" not in text and not re.search(r"enabled\s+X", text), text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Listener(http.server.BaseHTTPRequestHandler):
    """Records every request a hostile payload manages to send (its beacon)."""

    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (stdlib name)
        self.hits.append(self.path)
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib signature)
        pass


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """A graded tiny course, served by JupyterLab on 127.0.0.1 (no token: the test is the only client), with
    a hostile submission (its payload's beacon: a listener on another local port) and a hostile display name."""
    listener = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Listener)
    threading.Thread(target=listener.serve_forever, daemon=True).start()
    beacon = f"http://127.0.0.1:{listener.server_address[1]}/hit/"
    course = tmp_path_factory.mktemp("formgrader") / "course"
    synthetic.make_course(course)
    for kind in STUDENTS:
        synthetic.write_submission(course, kind, kind)
    hostile = synthetic.with_hostile_renderables(synthetic.submission_notebook(course, "correct"), beacon)
    (course / "submitted" / "hostile" / A).mkdir(parents=True)
    nbformat.write(hostile, course / "submitted" / "hostile" / A / f"{A}.ipynb")
    graded = subprocess.run([PY, "-m", "grader", "--course-dir", str(course), "grade", A, "--jobs", "1"],
                            capture_output=True, text=True, env=ENV, timeout=600)
    assert graded.returncode == 0, graded.stdout + graded.stderr
    with sqlite3.connect(course / "gradebook.db") as db:  # a display name from the LMS that is a script
        db.execute("update student set first_name = ?, last_name = ? where id = 'hostile'",
                   (f"<img src=x onerror={synthetic.as_js_expression(synthetic.payload('name', beacon))}>", "Eve"))
    port = _free_port()
    cmd = [PY, "-m", "jupyter", "lab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port}", "--ServerApp.token=", "--ServerApp.password=",
           "--ServerApp.disable_check_xsrf=False", f"--ServerApp.root_dir={course}"]
    log = (course.parent / "lab.log").open("w")
    server = subprocess.Popen(cmd, cwd=course, env=ENV, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("JupyterLab did not start: " + (course.parent / "lab.log").read_text()[-3000:])
                time.sleep(0.5)
        yield SimpleNamespace(base=base, course=course, beacon=beacon, hits=_Listener.hits)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        listener.shutdown()
        listener.server_close()


@pytest.fixture(scope="module")
def lab(served: SimpleNamespace) -> str:
    return served.base


def test_jupyterlab_loads_nbgrader_and_its_formgrader_lists_the_graded_course(browser, lab: str) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    elsewhere: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)[:300]))
    page.on("console", lambda msg: errors.append(msg.text[:300]) if msg.type == "error" else None)
    page.on("request", lambda req: None if req.url.startswith((lab, "data:", "blob:")) else elsewhere.append(req.url))
    try:
        page.goto(f"{lab}/lab/tree/source/{A}/{A}.ipynb", wait_until="load")
        page.wait_for_selector(".jp-Notebook", timeout=90_000)
        page.wait_for_timeout(2000)  # extensions finish activating
        assert "Nbgrader" in page.locator(".lm-MenuBar-itemLabel").all_inner_texts()
        panels = page.locator(".jp-SideBar .lm-TabBar-tab").evaluate_all("tabs => tabs.map(t => t.title)")
        assert any("Create Assignment" in (title or "") for title in panels), panels

        page.locator(".lm-MenuBar-itemLabel", has_text="Nbgrader").click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Formgrader$")).click()
        formgrader = page.frame_locator("iframe").first
        row = formgrader.locator("table tr", has_text=A).first
        row.wait_for(timeout=60_000)
        assert "draft" in row.inner_text()

        page.goto(f"{lab}/formgrader/manage_submissions/{A}", wait_until="networkidle")
        table = page.locator("table").first.inner_text()
        for student, score in STUDENTS.items():
            line = next((ln for ln in table.splitlines() if student in ln.split()), "")
            assert "graded" in line and score in line, (student, table)
    finally:
        page.close()
    assert errors == [], errors
    assert elsewhere == [], elsewhere


def _submission_id(course: Path, student: str) -> str:
    with sqlite3.connect(course / "gradebook.db") as db:
        return db.execute("select sn.id from submitted_notebook sn join submitted_assignment sa "
                          "on sn.assignment_id = sa.id where sa.student_id = ?", (student,)).fetchone()[0]


def _written(course: Path) -> list[str]:
    return sorted(p.name for p in course.rglob("pwned-*"))


def test_a_hostile_submission_runs_nothing_in_the_formgrader(browser, served: SimpleNamespace,
                                                             screenshots_dir: Path) -> None:
    lab, course = served.base, served.course
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    dialogs: list[str] = []
    elsewhere: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("request", lambda req: None if req.url.startswith((lab, "data:", "blob:")) else elsewhere.append(req.url))
    try:
        # the control: the payload, run in the instructor's JupyterLab page, writes into the course directory
        page.goto(f"{lab}/lab", wait_until="load")
        page.wait_for_selector(".jp-LabShell", timeout=90_000)
        page.evaluate("() => { " + synthetic.payload("control") + " }")
        for _ in range(50):
            if _written(course):
                break
            page.wait_for_timeout(200)
        assert _written(course) == ["pwned-control.txt"] and dialogs == ["control"]
        (course / "pwned-control.txt").unlink()
        dialogs.clear()

        page.goto(f"{lab}/formgrader/submissions/{_submission_id(course, 'hostile')}/", wait_until="load")
        page.wait_for_selector("#notebook-container", timeout=60_000)
        page.wait_for_timeout(1000)
        for link in page.get_by_text("click me").all():
            link.click(force=True, timeout=2000)
        page.wait_for_timeout(1500)  # time for a payload's requests to land
        assert page.evaluate("() => window.PWNED || []") == []
        shown = page.evaluate("""() => ({
            name: document.querySelector('.name-shown') && document.querySelector('.name-shown').textContent,
            cells: document.querySelectorAll('table.dataframe td').length,
            images: [...document.images].filter(i => i.complete && i.naturalWidth > 0).map(i => i.src.slice(0, 22)),
            math: [...document.querySelectorAll('math')].filter(m => m.getBoundingClientRect().width > 10).length,
        })""")
        page.locator("math").first.scroll_into_view_if_needed()  # the ordinary outputs, then the hostile ones
        page.screenshot(path=str(screenshots_dir / "formgrader-hostile-submission.png"))
    finally:
        page.close()
    assert dialogs == [] and served.hits == [] and _written(course) == [], (dialogs, served.hits)
    assert elsewhere == [], elsewhere
    assert "<img src=x onerror" in (shown["name"] or ""), shown  # the display name, shown as text
    assert shown["cells"] == 4, shown  # the pandas table
    assert shown["images"].count("data:image/png;base64,") >= 2, shown  # matplotlib's plot and the tiny PNG
    assert "data:image/svg+xml;bas" in shown["images"], shown  # the SVG figures, as images
    assert shown["math"] >= 2, shown  # the markdown's formulas, as MathML (no MathJax from a CDN)


def _probe_notebook(marker: Path) -> nbformat.NotebookNode:
    """A notebook that, when run, writes ``marker`` (so a test sees whether validating it ran it)."""
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(f"open({str(marker)!r}, 'w').write('ran')"))
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def test_the_validate_extension_runs_notebooks_inside_the_course_and_refuses_paths_outside(
        served: SimpleNamespace) -> None:
    """jupyter/nbgrader#1978, with the extension enabled: a notebook outside the server's root, named by
    ``../``, by an absolute path or through a link inside the root, is refused (403) and not run; one inside
    is run (the control: the same request with a path inside the course does validate)."""
    import http.cookiejar
    import json
    import urllib.error
    import urllib.parse

    course, scratch = served.course, served.course.parent
    outside, inside = scratch / "outside" / "probe.ipynb", course / "probe" / "probe.ipynb"
    ran_outside, ran_inside = scratch / "ran-outside", scratch / "ran-inside"
    for path, marker in ((outside, ran_outside), (inside, ran_inside)):
        path.parent.mkdir(exist_ok=True)
        nbformat.write(_probe_notebook(marker), path)
    (course / "probe" / "link.ipynb").symlink_to(outside)

    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    opener.open(f"{served.base}/lab", timeout=30).read()  # the session's _xsrf cookie, as the browser gets it
    xsrf = next(c.value for c in jar if c.name == "_xsrf")

    def validate(path: str) -> tuple[int, str]:
        req = urllib.request.Request(f"{served.base}/assignments/validate",
                                     data=urllib.parse.urlencode({"path": path}).encode(),
                                     headers={"X-XSRFToken": xsrf}, method="POST")
        try:
            with opener.open(req, timeout=300) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode(errors="replace")

    try:
        for path in ("../outside/probe.ipynb", "probe/../../outside/probe.ipynb", str(outside), "probe/link.ipynb"):
            status, body = validate(path)
            assert status == 403 and "outside allowed directory" in body, (path, status, body[-500:])
        assert not ran_outside.exists()

        status, body = validate("probe/probe.ipynb")
        assert status == 200 and json.loads(body)["success"] is True, body[-2000:]
        assert ran_inside.read_text() == "ran"
        assert not ran_outside.exists()
    finally:
        for p in (course / "probe" / "link.ipynb", inside, outside, ran_inside, ran_outside):
            p.unlink(missing_ok=True)
        inside.parent.rmdir()
        outside.parent.rmdir()
