"""A hostile class for chapter 2: one attack per class of cheat or harm an autograder must withstand.

Each attack is an unsolved ch2-sdpa release with one extra code cell, placed right after the setup
cell (``where="start"``) or at the end (``where="end"``). None of them solves anything, so every one
must score 0, with a message in every grade cell, while it tries to: forge its grade (input and AST
transformers, patched numpy, a fake grader module, objects that read the checker's frames, the
reference read from disk or imported after disabling the profiler or from a thread, torch's aten
SDPA), or harm others (append to ``solutions/`` and ``grader/``, edit the gradebook, read other
submissions into its feedback, leave a process behind, kill or stop the grader, lift its memory
limit, ignore interrupts, reach the network, hijack the kernel's request handler), or run a script in
whoever opens its autograded notebook or feedback page (HTML, SVG, markdown, JavaScript and LaTeX outputs,
image metadata, a markdown cell, a raw cell, cell metadata): :func:`live_content` finds what could run.

``RESILIENCE`` are solved notebooks with one hang or crash: they must lose only that function's points.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bs4 import BeautifulSoup

from grader import synthetic

#: A line only the honest students' notebooks contain (an attacker's feedback must never show it).
HONEST_MARKER = "HONEST-STUDENT-MARKER-7f3a"
#: A marker in the command line of the process an attacker tries to leave running.
SLEEPER_MARKER = "HOSTILE-SLEEPER-9c1e"
#: Printed only if an attacker lifted its memory limit and then allocated past it.
LIFTED_MARKER = "LIFTED-AND-ALLOCATED"
#: Written into files of the course's code only if an attacker could write there.
HACK_MARKER = "# HACKED-BY-A-SUBMISSION"


@dataclass(frozen=True)
class Attack:
    code: str
    where: str = "start"
    #: files put beside the notebook in the submission folder: ``(name, what)``, ``what`` one of LINK_TARGETS
    files: tuple[tuple[str, str], ...] = ()
    cell_type: str = "code"  # or "markdown", "raw"
    metadata: dict = field(default_factory=dict)


#: What an attacker's submission folder may hold besides the notebook (test_hostile.py makes them): links to
#: the course's secret, its gradebook and a reference solution, a hard link to the secret, a FIFO, a device.
LINK_TARGETS = ("symlink-secret", "symlink-gradebook", "symlink-reference", "symlink-course-dir",
                "hardlink-secret", "fifo", "device")


_CANDIDATE_ROOTS = """
import os, sys
_roots = set()
for _p in list(sys.path) + [os.getcwd(), os.path.expanduser("~"), "/work", "/root", "/home", "/tmp"]:
    _p = os.path.abspath(_p or ".")
    for _up in [_p, *list(__import__("pathlib").Path(_p).parents)[:4]]:
        _roots.add(str(_up))
"""

ATTACKS: dict[str, Attack] = {
    "input-transformer": Attack(
        "get_ipython().input_transformers_post.append(lambda lines: ['pass\\n'])\n"
    ),
    "ast-transformer": Attack(
        "import ast\n\n"
        "class Gut(ast.NodeTransformer):\n"
        "    def visit_Assert(self, node):\n"
        "        return ast.Pass()\n\n"
        "    def visit_Raise(self, node):\n"
        "        return ast.Pass()\n\n"
        "get_ipython().ast_transformers.append(Gut())\n"
    ),
    "fake-grader-module": Attack(
        "import sys, types\n"
        "fake = types.ModuleType('grader.diagnose')\n"
        "fake.problem_with = lambda *a, **k: None\n"
        "fake.check = lambda *a, **k: None\n"
        "sys.modules['grader'] = types.ModuleType('grader')\n"
        "sys.modules['grader.diagnose'] = fake\n"
        "sys.modules['grader.engine'] = types.ModuleType('grader.engine')\n"
        "import os\n"
        "os.makedirs('grader', exist_ok=True)\n"
        "open('grader/__init__.py', 'w').write('')\n"
        "open('grader/diagnose.py', 'w').write('def problem_with(*a, **k):\\n    return None\\n')\n"
    ),
    "patched-numpy": Attack(
        "import numpy as np\n"
        "np.allclose = lambda *a, **k: True\n"
        "np.array_equal = lambda *a, **k: True\n"
        "np.isclose = lambda a, b, *x, **k: np.ones(np.broadcast(a, b).shape, dtype=bool)\n"
        "np.testing.assert_allclose = lambda *a, **k: None\n"
    ),
    "frame-reading-results": Attack(
        "import sys\n"
        "import numpy as np\n\n"
        "def _steal():\n"
        "    f = sys._getframe()\n"
        "    while f is not None:\n"
        "        for name in ('want', 'expected', 'reference', 'ref'):\n"
        "            if name in f.f_locals:\n"
        "                return f.f_locals[name]\n"
        "        f = f.f_back\n"
        "    return None\n\n"
        "class Liar:\n"
        "    def __eq__(self, other):\n"
        "        return True\n"
        "    def __array__(self, dtype=None, copy=None):\n"
        "        stolen = _steal()\n"
        "        return np.asarray(stolen if stolen is not None else 0.0)\n"
        "    @property\n"
        "    def shape(self):\n"
        "        return getattr(_steal(), 'shape', ())\n\n"
        "def softmax(x, axis=-1):\n"
        "    return Liar()\n\n"
        "causal_mask = padding_mask = lambda *a, **k: Liar()\n\n"
        "def scaled_dot_product_attention(Q, K, V, mask=None):\n"
        "    return Liar(), Liar()\n",
        where="end",
    ),
    "reference-from-disk": Attack(
        _CANDIDATE_ROOTS
        + "for _r in sorted(_roots):\n"
        "    _f = os.path.join(_r, 'solutions', 'ch2_sdpa.py')\n"
        "    if os.path.exists(_f):\n"
        "        _src = open(_f).read().replace('from ._checks', 'from solutions._checks')\n"
        "        exec(compile(_src, 'my_own_work.py', 'exec'), globals())\n"
        "        print('loaded the reference from', _f)\n"
        "        break\n"
        "else:\n"
        "    print('no reference on disk')\n",
        where="end",
    ),
    "reference-after-setprofile": Attack(
        "import sys\n"
        "sys.setprofile(None)\n"
        "sys.settrace(None)\n"
        "from solutions import causal_mask, padding_mask, scaled_dot_product_attention, softmax\n",
        where="end",
    ),
    "reference-from-a-thread": Attack(
        "import threading\n"
        "_box = {}\n\n"
        "def _fetch():\n"
        "    import solutions\n"
        "    _box.update(solutions=solutions)\n\n"
        "_t = threading.Thread(target=_fetch)\n"
        "_t.start()\n"
        "_t.join()\n\n"
        "def softmax(x, axis=-1):\n"
        "    return _box['solutions'].softmax(x, axis)\n",
        where="end",
    ),
    "aten-sdpa": Attack(
        "import numpy as np\n"
        "import torch\n\n"
        "def scaled_dot_product_attention(Q, K, V, mask=None):\n"
        "    op = getattr(torch.ops.aten, '_scaled_dot_' + 'product_attention_math')\n"
        "    q, k, v = (torch.as_tensor(np.asarray(a, dtype=np.float64)) for a in (Q, K, V))\n"
        "    m = None if mask is None else torch.as_tensor(np.asarray(mask))\n"
        "    out, w = op(q, k, v, attn_mask=m)\n"
        "    return out.nan_to_num(0.0).numpy(), w.nan_to_num(0.0).numpy()\n",
        where="end",
    ),
    "write-course-code": Attack(
        _CANDIDATE_ROOTS
        + "import glob\n"
        "_hits = 0\n"
        "for _r in sorted(_roots):\n"
        "    _code = glob.glob(os.path.join(_r, 'solutions', '*.py')) + glob.glob(os.path.join(_r, 'grader', '*.py'))\n"
        "    for _f in _code:\n"
        "        try:\n"
        f"            open(_f, 'a').write('\\n{HACK_MARKER}\\n')\n"
        "            _hits += 1\n"
        "        except OSError as err:\n"
        "            print('blocked:', type(err).__name__)\n"
        "print('files written:', _hits)\n"
    ),
    "edit-gradebook": Attack(
        _CANDIDATE_ROOTS
        + "import sqlite3\n"
        "for _r in sorted(_roots):\n"
        "    _db = os.path.join(_r, 'gradebook.db')\n"
        "    if os.path.exists(_db):\n"
        "        try:\n"
        "            with sqlite3.connect(_db) as con:\n"
        "                con.execute('update grade set auto_score = 0')\n"
        "                con.execute('update grade set auto_score = max_score_gradecell')\n"
        "            print('edited', _db)\n"
        "        except Exception as err:\n"
        "            print('blocked:', type(err).__name__)\n"
    ),
    "read-other-submissions": Attack(
        "import os\n"
        "for _top in ('/', os.path.expanduser('~'), '..', '../..', '../../..'):\n"
        "    for _dir, _subdirs, _files in os.walk(_top):\n"
        "        _subdirs[:] = [d for d in _subdirs if d not in ('proc', 'sys', 'dev', 'usr', '.venv', 'lib')]\n"
        "        for _f in _files:\n"
        "            if _f.endswith('.ipynb') or _f.endswith('.py') and 'solutions' in _dir:\n"
        "                try:\n"
        "                    print(open(os.path.join(_dir, _f)).read()[:20000])\n"
        "                except OSError:\n"
        "                    pass\n"
    ),
    "detached-process": Attack(
        "import subprocess, sys\n"
        "code = 'import time\\n# " + SLEEPER_MARKER + "\\nwhile True:\\n    time.sleep(0.5)\\n'\n"
        "subprocess.Popen([sys.executable, '-c', code], start_new_session=True,\n"
        "                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        "import os\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    os.execv(sys.executable, [sys.executable, '-c', code])\n"
    ),
    "kill-the-grader": Attack(
        "import os, signal\n"
        "for _pid in (os.getppid(), 1):\n"
        "    try:\n"
        "        os.kill(_pid, signal.SIGKILL)\n"
        "    except OSError as err:\n"
        "        print('cannot kill', _pid, type(err).__name__)\n"
    ),
    "stop-the-grader": Attack(
        "import os, signal\n"
        "try:\n"
        "    os.kill(os.getppid(), signal.SIGSTOP)\n"
        "except OSError as err:\n"
        "    print('cannot stop the parent', type(err).__name__)\n"
        "os.killpg(0, signal.SIGSTOP)\n"
    ),
    "lift-memory-limit": Attack(
        "import resource\n"
        "import numpy as np\n"
        "for _which in (resource.RLIMIT_DATA, resource.RLIMIT_AS):\n"
        "    try:\n"
        "        resource.setrlimit(_which, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))\n"
        "    except (ValueError, OSError) as err:\n"
        "        print('cannot lift:', err)\n"
        "try:\n"
        "    _big = np.ones(6 * 2**30 // 8)\n"
        f"    print('{LIFTED_MARKER}', _big.nbytes)\n"
        "except MemoryError:\n"
        "    print('MemoryError')\n"
    ),
    "ignore-interrupts": Attack(
        "import signal\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "while True:\n"
        "    try:\n"
        "        pass\n"
        "    except BaseException:\n"
        "        pass\n"
    ),
    "network": Attack(
        "import socket, urllib.request\n"
        "for _target in ('http://example.com', 'http://127.0.0.1:8888', 'http://[::1]:80'):\n"
        "    try:\n"
        "        urllib.request.urlopen(_target, timeout=2)\n"
        "        print('REACHED', _target)\n"
        "    except Exception as err:\n"
        "        print('no network:', type(err).__name__)\n"
    ),
    "hijack-execute-handler": Attack(
        "_kernel = get_ipython().kernel\n"
        "_original = _kernel.shell_handlers['execute_request']\n\n"
        "async def _silent(*args, **kwargs):\n"
        "    return None\n\n"
        "_kernel.shell_handlers['execute_request'] = _silent\n",
        where="end",
    ),
    # what the instructor opens is hostile too (grader/sanitize.py): each tries to run synthetic.payload
    "script-in-outputs": Attack(synthetic.hostile_output_code()),
    "script-in-svg": Attack(synthetic.hostile_svg_code()),
    "script-in-markdown": Attack(synthetic.hostile_markdown(), cell_type="markdown"),
    "script-in-raw-cell": Attack(synthetic.hostile_raw_cell().source, cell_type="raw",
                                 metadata={"raw_mimetype": "text/html"}),
    "script-in-metadata": Attack(
        "x = 1\n", metadata={"tags": ['"><img src=x onerror=alert(1)>'], "title": "<script>alert(2)</script>",
                             "jupyter": {"source_hidden": "<img src=x onerror=alert(3)>"}}),
}

_READ_EVERY_FILE = """
import os
for _dir, _subdirs, _files in os.walk('.'):
    for _f in sorted(_files + _subdirs):
        _p = os.path.join(_dir, _f)
        try:
            print(_p, open(_p, 'rb').read(4000) if os.path.isfile(_p) else sorted(os.listdir(_p))[:50])
        except Exception as err:
            print(_p, 'unreadable:', type(err).__name__)
"""

# --- links, budgets and output (issue 20): each must score 0, leak nothing, and stay within its budgets ---
ATTACKS.update({
    # links in the submission folder to the course's files: refused, never read; what the kernel finds is printed
    "symlink-secret": Attack(_READ_EVERY_FILE, files=(("secret.txt", "symlink-secret"),
                                                       ("notes", "symlink-course-dir"))),
    "symlink-gradebook": Attack(_READ_EVERY_FILE, files=(("data.db", "symlink-gradebook"),)),
    "symlink-reference": Attack(_READ_EVERY_FILE, files=(("helper.py", "symlink-reference"),)),
    "hardlink-fifo-device": Attack(_READ_EVERY_FILE, files=(("copy.txt", "hardlink-secret"), ("pipe", "fifo"),
                                                             ("zero", "device"))),
    # six forked children each touch 300 MB and keep it: the sandbox's cgroup holds them all to its one limit
    "forked-children-memory": Attack(
        "import mmap, os, time\n"
        "_kids = []\n"
        "for _ in range(6):\n"
        "    _pid = os.fork()\n"
        "    if _pid == 0:\n"
        "        try:  # 300 MB of private pages, all touched at once (MAP_POPULATE: fast even on a busy VM)\n"
        "            _m = mmap.mmap(-1, 300 * 2**20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | mmap.MAP_POPULATE)\n"
        "            time.sleep(120)\n"
        "        finally:\n"
        "            os._exit(0)\n"
        "    _kids.append(_pid)\n"
        "_ended, _until = set(), time.monotonic() + 4\n"
        "while len(_ended) < 2 and time.monotonic() < _until:\n"
        "    _ended |= {p for p in _kids if p not in _ended and os.waitpid(p, os.WNOHANG)[0]}\n"
        "    time.sleep(0.05)\n"
        "print('children stopped by the OS:', len(_ended))\n"
    ),
    # 400 comm (widget) messages of 1 MB each: nothing of them may stay in the grading process
    "comm-flood": Attack(
        "try:\n"
        "    from comm import create_comm\n"
        "except ImportError:\n"
        "    from ipykernel.comm import Comm as create_comm\n"
        "_blob = 'w' * 2**20\n"
        "for _i in range(400):\n"
        "    create_comm(target_name='jupyter.widget', data={'state': {'_model_name': 'M', 'v': _blob},\n"
        "                                                    'buffer_paths': []})\n"
    ),
    # an error whose value and traceback hold 20 MB
    "huge-error-output": Attack("raise ValueError('e' * 20_000_000)\n", where="end"),
    # a display updated with 30 MB, a 20 MB HTML result, and prints hidden behind clear_output
    "huge-display-updates": Attack(
        "from IPython.display import clear_output, display\n"
        "_h = display('small', display_id=True)\n"
        "_h.update({'text/plain': 'u' * 30_000_000}, raw=True)\n"
        "for _ in range(3):\n"
        "    clear_output(wait=True)\n"
        "    print('c' * 5_000_000)\n\n"
        "class _Big:\n"
        "    def _repr_html_(self):\n"
        "        return '<b>' + 'h' * 20_000_000 + '</b>'\n\n"
        "_Big()\n",
        where="end",
    ),
    # every function hangs on the hidden inputs, ignoring interrupts, and each replay sleeps 4 s: restarts and
    # replays are held to the notebook's budget
    "hung-checks-and-restarts": Attack(
        "import signal, time\n"
        "time.sleep(4)\n\n"
        "def _hang(*args, **kwargs):\n"
        "    signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "    while True:\n"
        "        pass\n\n"
        "softmax = causal_mask = padding_mask = scaled_dot_product_attention = _hang\n",
        where="end",
    ),
})

#: Solved notebooks with cells appended that spend the notebook's time budget: ``(cells, expected score)``.
#: The cells stop when the budget's share for cells is spent; the hidden checks keep theirs: full marks.
SLOW_CELLS: dict[str, tuple[list[str], float]] = {
    "many-slow-cells": (["import time\ntime.sleep(4.5)\n"] * 20, 8.0),  # 90 s of cells with a 5 s cell timeout
}

#: Solved notebooks with one fault: ``(answer cell to change, code to put there, expected score)``.
RESILIENCE: dict[str, tuple[str, str, float]] = {
    # the cell defines causal_mask, then loops forever ignoring SIGINT: the kernel is killed and the
    # notebook replayed without that cell, so causal_mask (1 point) is lost and nothing else
    "hang-in-a-cell": (
        "answer-causal_mask",
        "import numpy as np\nimport signal\n\n"
        "def causal_mask(n_q, n_k):\n"
        "    return np.tril(np.ones((n_q, n_k), dtype=bool), k=n_k - n_q)\n\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "while True:\n"
        "    pass\n",
        7.0,
    ),
    # padding_mask hangs (ignoring SIGINT) when the hidden checks call it: only its point is lost
    "hang-in-a-check": (
        "answer-padding_mask",
        "import signal\n\n"
        "def padding_mask(lengths, n_k):\n"
        "    signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "    while True:\n"
        "        pass\n",
        7.0,
    ),
    # scaled_dot_product_attention kills its kernel when called: only its 4 points are lost
    "crash-in-a-check": (
        "answer-scaled_dot_product_attention",
        "import os\n\n"
        "def scaled_dot_product_attention(Q, K, V, mask=None):\n"
        "    os._exit(1)\n",
        4.0,
    ),
}


#: Elements that run or embed something wherever they appear.
LIVE_ELEMENTS = {"script", "iframe", "frame", "frameset", "object", "embed", "applet", "form", "base", "portal"}
#: Elements a student's fragment never needs (a page's own template may have them).
PAGE_ONLY_ELEMENTS = {"style", "link", "meta", "svg"}
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "data", "poster", "background", "xlink:href", "srcset",
                  "cite", "ping"}
LOADING_ATTRIBUTES = {"src", "srcset", "poster", "background", "data"}


def live_content(html: str, page: bool = False) -> list[str]:
    """What in ``html`` could run a script or load something from elsewhere, as the browser parses it
    (html.parser): script-like elements, ``on*`` handlers, ``javascript:``-like URLs, remote sources,
    CSS that loads. ``page``: a whole page, whose template may have its own ``<style>`` and ``<meta>``."""
    found = []
    for tag in BeautifulSoup(html, "html.parser").find_all(True):
        name = tag.name.lower()
        if name in LIVE_ELEMENTS or (not page and name in PAGE_ONLY_ELEMENTS):
            found.append(f"<{name}>")
        if name == "meta" and str(tag.get("http-equiv", "")).lower() == "refresh":
            found.append("<meta refresh>")
        if name == "link" and page:
            found.append(f"<link href={tag.get('href')}>")
        if name == "style" and page and ("@import" in tag.text or "url(http" in tag.text.replace(" ", "")):
            found.append("<style> that loads")
        for attr, value in tag.attrs.items():
            value = " ".join(value) if isinstance(value, list) else str(value)
            squeezed = "".join(value.split()).lower()
            if attr.lower().startswith("on"):
                found.append(f"{name} {attr}=")
            if attr.lower() in URL_ATTRIBUTES and squeezed.split(":")[0] in ("javascript", "vbscript", "file") \
                    and ":" in squeezed:
                found.append(f"{name} {attr}={value[:30]}")
            if attr.lower() in LOADING_ATTRIBUTES and squeezed.startswith(("http:", "https:", "//")):
                found.append(f"{name} {attr}={value[:30]} (remote)")
            if attr.lower() in LOADING_ATTRIBUTES and squeezed.startswith("data:") \
                    and not squeezed.startswith("data:image/"):
                found.append(f"{name} {attr}={value[:30]} (data)")
            if attr.lower() == "style" and "url(" in squeezed:
                found.append(f"{name} style with url(")
    return found


def notebook_live_content(nb) -> list[str]:  # noqa: ANN001 - a NotebookNode
    """:func:`live_content` of every fragment of ``nb`` that nbconvert pastes into a page as it is: markdown
    cells and ``text/markdown`` outputs (rendered), ``text/html`` outputs, raw cells; plus the outputs a page
    would run or inline (JavaScript, inline SVG, widget state) and image metadata that is not a number."""
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    found = []
    if "widgets" in nb.metadata:
        found.append("widget state in the notebook's metadata")
    for i, cell in enumerate(nb.cells):
        where = f"cell {i} ({cell.cell_type})"
        if cell.cell_type == "markdown":
            try:
                rendered = markdown2html_mistune(cell.source)
            except Exception as err:  # noqa: BLE001 - nbconvert refuses it (a missing attachment): no page at all
                found.append(f"{where}: markdown nbconvert cannot render ({type(err).__name__})")
                continue
            found += [f"{where}: {x}" for x in live_content(rendered)]
        elif cell.cell_type == "raw":
            found += [f"{where}: {x}" for x in live_content(cell.source)]
        for tag in cell.metadata.get("tags", []):
            if not all(ch.isalnum() or ch in "-_" for ch in str(tag)):
                found.append(f"{where}: tag {tag!r}")
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            for mime in data:
                if "javascript" in mime or mime in ("image/svg+xml", "application/vnd.jupyter.widget-view+json"):
                    found.append(f"{where}: a {mime} output")
            if "text/html" in data:
                found += [f"{where}: {x}" for x in live_content(data["text/html"])]
            if "text/markdown" in data:
                found += [f"{where}: {x}" for x in live_content(markdown2html_mistune(data["text/markdown"]))]
            for mime, meta in out.get("metadata", {}).items():
                for key in ("width", "height"):
                    if isinstance(meta, dict) and key in meta and not isinstance(meta[key], (int, float)):
                        found.append(f"{where}: {mime} {key}={meta[key]!r}")
    return found


CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def what_ran(browser, url: str, wait_ms: int = 500) -> dict[str, list[str]]:  # noqa: ANN001 - a Playwright browser
    """Open ``url`` in a new page of ``browser``, click every "click me", and report what the page's
    hostile content achieved: ``pwned`` (the vectors of :func:`grader.synthetic.payload` that ran in the
    page), ``dialogs`` opened (by the page or its frames), and ``requests`` for anything but the page itself
    and ``data:`` (each aborted: nothing leaves)."""
    page = browser.new_page()
    seen: dict[str, list[str]] = {"pwned": [], "dialogs": [], "requests": []}

    def route(r) -> None:  # noqa: ANN001
        if r.request.url == url or r.request.url.startswith("data:"):
            r.continue_()
        else:
            seen["requests"].append(r.request.url[:120])
            r.abort()

    page.route("**/*", route)
    page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
    try:
        page.goto(url, wait_until="load")
        page.wait_for_timeout(wait_ms)
        for link in page.get_by_text("click me").all():
            try:
                link.click(timeout=1000, force=True)
            except Exception:  # noqa: BLE001 - a link without a target, or one that went away
                pass
        page.wait_for_timeout(wait_ms)
        seen["pwned"] = page.evaluate("() => window.PWNED || []")  # a frame's payload shows as its dialog and request
    finally:
        page.close()
    return seen
