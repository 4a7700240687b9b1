"""nbgrader's own UI in the pinned JupyterLab: the formgrader and the Create Assignment panel, in Chromium.

Instructors do manual grading, overrides and extensions in nbgrader's formgrader, and mark cells with its
Create Assignment panel. Its JupyterLab extension (``@jupyter/nbgrader`` 0.9.5) is built against
JupyterLab 4.2 (``@jupyter/ydoc`` 2), so ``requirements.txt`` pins the JupyterLab, Notebook and Jupytext
versions whose extensions share those packages. Here: ``jupyter labextension list`` calls every extension
compatible, and a JupyterLab served locally from a graded course (a) loads without a script error, (b)
has the Nbgrader menu and the Create Assignment panel, (c) opens the formgrader from that menu, which lists
the course's assignment, and (d) lists the graded submissions with their scores; no request leaves the host.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

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


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A graded tiny course, served by JupyterLab on 127.0.0.1 (no token: the test is the only client)."""
    course = tmp_path_factory.mktemp("formgrader") / "course"
    synthetic.make_course(course)
    for kind in STUDENTS:
        synthetic.write_submission(course, kind, kind)
    graded = subprocess.run([PY, "-m", "grader", "--course-dir", str(course), "grade", A, "--jobs", "1"],
                            capture_output=True, text=True, env=ENV, timeout=600)
    assert graded.returncode == 0, graded.stdout + graded.stderr
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
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


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
