"""Fixtures for the website tests: build the book ONCE per test session, serve it, drive Chromium.

- ``built_site``: the built ``_build/html`` directory. The book is built (cold: every reading page is
  executed) into a session temp dir with the plain ``jupyter-book build <root>`` of ``scripts/build.sh``
  and nothing before it: the course's Sphinx extension serves MathJax and plotly.js by itself. Under pytest-xdist
  the workers share one build (a file lock; the first worker builds, the others wait and reuse it).
  Set ``COURSE_SITE_HTML=/path/to/_build/html`` to test an existing build instead (quick iteration).
- ``serve``: serves a directory on 127.0.0.1 (an ephemeral port) and returns its base URL.
- ``browser``: Debian's Chromium (``/usr/bin/chromium``, installed by ``scripts/install-browser.sh``)
  through Playwright; never a browser download.
"""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = ROOT / "_build" / "screenshots"


def build_book(out_dir: Path) -> Path:
    """Build the book into ``out_dir/_build/html`` (warnings are errors); returns the html dir.

    Nothing is prepared first: the twins are checked (the build stops when one is stale), not written.
    """
    cmd = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(ROOT), "-W", "-n", "--keep-going",
           "--path-output", str(out_dir)]
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # pages use the inline backend
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    html = out_dir / "_build" / "html"
    if proc.returncode != 0 or not (html / "index.html").is_file():
        tail = (proc.stdout + proc.stderr)[-6000:]
        raise RuntimeError(f"jupyter-book build failed (exit {proc.returncode}):\n{tail}")
    return html


@pytest.fixture(scope="session")
def built_site(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    existing = os.environ.get("COURSE_SITE_HTML")
    if existing:
        return Path(existing).resolve()
    if worker_id == "master":  # no xdist
        return build_book(tmp_path_factory.mktemp("site"))
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp().parent / "course-site"
    shared.mkdir(exist_ok=True)
    with FileLock(str(shared / "build.lock")):
        html = shared / "_build" / "html"
        if not (shared / "done").is_file():
            build_book(shared)
            (shared / "done").write_text("ok")
        return html


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib signature)
        pass


@pytest.fixture(scope="session")
def serve() -> Iterator[Callable[[Path], str]]:
    """``serve(directory) -> "http://127.0.0.1:PORT/"``; every server stops at the end of the session."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(directory: Path) -> str:
        handler = functools.partial(_QuietHandler, directory=str(directory))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def site_url(built_site: Path, serve: Callable[[Path], str]) -> str:
    return serve(built_site)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: run `bash scripts/install-browser.sh` (scripts/test.sh does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def screenshots_dir() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
