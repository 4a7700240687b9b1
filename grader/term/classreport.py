"""``python -m grader report --html``: a picture of the class, one offline page per assignment and one for the term.

Written into ``<course>/class-report/`` from ``course-grades.csv`` (so every number on a page is the CSV's)
and the verdicts in the autograded notebooks (which known mistake each failed function made):

- ``index.html``, the term: each assignment's submissions, mean and median, late work, non-submitters and
  grading errors, and one row per student with every assignment's score;
- ``<assignment>.html``: the score histogram, each graded function's share of full marks, the known
  mistakes by frequency and by function, late work, non-submitters and excused students, grading
  errors (with nbgrader's log), and one row per student linking to their feedback page.

Pages are self-contained: styles inline, plots as PNG data in ``<img>`` with a text alternative and the
same numbers in a table; nothing loads from another host and no script runs. Everything a student
controls (names, file names in messages) is escaped. Plots use the book's colours (``course/plots.py``).
"""

from __future__ import annotations

import base64
import html
import io
import json
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from grader import csvsafe
from grader.engine.verdict import META, function_of

REPORT_DIR = "class-report"
#: The book's colours (``course.plots.MASK_COLORS``: blocked grey, attended blue) and its text colour.
BLUE, GREY, INK = "#2f7ebc", "#d9d9d9", "#1a1a1a"


@dataclass
class Student:
    """One row of ``course-grades.csv`` and the verdicts of its autograded notebook."""

    row: dict[str, str]
    points: dict[str, float]  # function -> points earned
    mistakes: dict[str, tuple[str, str]] = field(default_factory=dict)  # function -> (mistake id, message)

    @property
    def id(self) -> str:
        return self.row["student"]

    @property
    def score(self) -> float:
        return float(self.row["score"])


def esc(value) -> str:
    return html.escape(str(value), quote=True)


def num(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".")


def read_class(course: Path, csv_path: Path | None = None) -> dict[str, list[Student]]:
    """Assignment -> its students, from the grades CSV and the verdicts of the autograded notebooks."""
    course = Path(course)
    with open(csv_path or course / "course-grades.csv", encoding="utf-8", newline="") as f:
        rows = csvsafe.read_dicts(f)
    by_assignment: dict[str, list[Student]] = defaultdict(list)
    for row in rows:
        points = {k.removeprefix("points:test-"): float(v) for k, v in row.items()
                  if k.startswith("points:") and v not in ("", None)}
        student = Student(row, points)
        nb = course / "autograded" / row["student"] / row["assignment"] / f"{row['assignment']}.ipynb"
        for cell in _cells(nb):
            verdict = cell.get("metadata", {}).get(META)
            grade = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", "")
            if verdict and not verdict.get("passed"):
                function = verdict.get("function") or function_of(grade) or grade
                student.mistakes[function] = (verdict.get("mistake") or "", " ".join(
                    (verdict.get("message") or "").split()))
        by_assignment[row["assignment"]].append(student)
    return dict(by_assignment)


def _cells(path: Path) -> list[dict]:
    try:
        return json.loads(path.read_bytes())["cells"]
    except Exception:
        return []


# --- plots ------------------------------------------------------------------------------------------
def _png(fig) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    ax = fig.add_subplot()
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(colors=INK)
    return fig, ax


def score_bins(scores: list[float], top: float) -> list[tuple[float, float, int]]:
    """``(low, high, count)`` bins of ``scores`` on ``[0, top]``: whole points when ``top`` is small, else tenths."""
    width = 1.0 if top <= 12 else top / 10
    edges = [i * width for i in range(int(round(top / width)) + 1)]
    if edges[-1] < top:
        edges.append(top)
    bins = []
    for i, low in enumerate(edges[:-1]):
        high = edges[i + 1]
        last = i == len(edges) - 2
        bins.append((low, high, sum(low <= s < high or (last and s == high) for s in scores)))
    return bins


def histogram(scores: list[float], top: float, what: str, xlabel: str = "") -> tuple[str, str]:
    """``(png data URL, text alternative)``: how many scored in each bin of ``[0, top]``."""
    bins = score_bins(scores, top)
    fig, ax = _figure(5.0, 2.4)
    ax.bar([lo for lo, _, _ in bins], [n for *_, n in bins], width=[hi - lo for lo, hi, _ in bins], align="edge",
           color=BLUE, edgecolor="white")
    ax.set_xlabel(xlabel or f"score (of {num(top)})", color=INK)
    ax.set_ylabel("students", color=INK)
    ax.set_xlim(0, top)
    ax.yaxis.get_major_locator().set_params(integer=True)
    alt = f"Histogram of {what}: " + "; ".join(
        f"{n} from {num(lo)} to {'under ' if i < len(bins) - 1 else ''}{num(hi)}"
        for i, (lo, hi, n) in enumerate(bins))
    return _png(fig), alt


def function_bars(shares: dict[str, tuple[int, int, int]]) -> tuple[str, str]:
    """``(png, alt)``: per function, how many got full marks, part, none (stacked horizontal bars)."""
    names = list(shares)
    fig, ax = _figure(5.0, 0.9 + 0.4 * len(names))
    left = [0] * len(names)
    for i, (label, color) in enumerate((("full marks", BLUE), ("part", "#8fb8de"), ("none", GREY))):
        values = [shares[n][i] for n in names]
        ax.barh(names, values, left=left, color=color, label=label, edgecolor="white")
        left = [a + b for a, b in zip(left, values, strict=True)]
    ax.invert_yaxis()
    ax.set_xlabel("students", color=INK)
    ax.xaxis.get_major_locator().set_params(integer=True)
    fig.legend(frameon=False, loc="outside upper center", ncols=3, fontsize=9)
    alt = "Points per graded function: " + "; ".join(
        f"{n}: {f} full marks, {p} part, {z} none" for n, (f, p, z) in shares.items())
    return _png(fig), alt


# --- pages ------------------------------------------------------------------------------------------
STYLE = f"""
body {{ font: 16px/1.5 system-ui, sans-serif; color: {INK}; background: #fff; margin: 0; }}
main {{ max-width: 68rem; margin: 0 auto; padding: 1rem; }}
h1 {{ font-size: 1.6rem; }} h2 {{ font-size: 1.25rem; margin-top: 2rem; border-bottom: 1px solid {GREY}; }}
a {{ color: #0b5394; }} a:focus-visible {{ outline: 3px solid #0b5394; }}
.cards {{ display: flex; flex-wrap: wrap; gap: .75rem; padding: 0; list-style: none; }}
.cards li {{ border: 1px solid {GREY}; border-radius: .4rem; padding: .5rem .9rem; min-width: 8rem; }}
.cards b {{ display: block; font-size: 1.4rem; }}
.scroll {{ overflow-x: auto; }}
table {{ border-collapse: collapse; margin: .5rem 0; }}
caption {{ text-align: left; font-weight: 600; padding: .25rem 0; }}
th, td {{ border-bottom: 1px solid {GREY}; padding: .3rem .6rem; text-align: left; vertical-align: top; }}
td.n, th.n {{ text-align: right; font-variant-numeric: tabular-nums; }}
img {{ max-width: 100%; height: auto; }}
figure {{ margin: 1rem 0; }}
.note {{ color: #444; }}
"""


def page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>{esc(title)}</title>\n'
            f"<style>{STYLE}</style>\n</head>\n<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n")


def table(caption: str, header: list[str], rows: list[list[str]], numeric: set[int] = frozenset(),
          row_attrs: list[str] | None = None) -> str:
    """An HTML table; ``rows`` hold HTML already escaped; the first cell of a row is its header."""
    if not rows:
        return f'<p class="note">{esc(caption)}: none.</p>'
    head = "".join(f'<th scope="col"{" class=n" if i in numeric else ""}>{esc(h)}</th>' for i, h in enumerate(header))
    body = []
    for r, cells in enumerate(rows):
        attrs = row_attrs[r] if row_attrs else ""
        tds = "".join((f'<th scope="row">{c}</th>' if i == 0 else
                       f'<td{" class=n" if i in numeric else ""}>{c}</td>') for i, c in enumerate(cells))
        body.append(f"<tr{attrs}>{tds}</tr>")
    return (f'<div class="scroll" tabindex="0" role="region" aria-label="{esc(caption)}"><table>'
            f'<caption>{esc(caption)}</caption><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


def figure(src: str, alt: str, caption: str) -> str:
    return f'<figure><img src="{src}" alt="{esc(alt)}"><figcaption>{esc(caption)}</figcaption></figure>'


def _who(s: Student) -> str:
    name = s.row.get("name", "")
    return esc(s.id) + (f" <span class=note>({esc(name)})</span>" if name else "")


def assignment_page(course: Path, assignment: str, students: list[Student], out: Path) -> str:
    submitted = [s for s in students if s.row["status"] in ("graded", "error") or (
        s.row["status"] == "excused" and s.row.get("submitted_at"))]
    graded = [s for s in students if s.row["status"] == "graded"]
    missing = [s for s in students if s.row["status"] == "missing"]
    excused = [s for s in students if s.row["status"] == "excused"]
    errors = [s for s in students if s.row["status"] == "error"]
    late = [s for s in students if float(s.row.get("late_penalty") or 0) > 0]
    top = max((float(s.row["max_score"]) for s in students), default=0.0)
    scores = [s.score for s in graded + errors]
    mean = statistics.fmean(scores) if scores else 0.0
    median = statistics.median(scores) if scores else 0.0
    functions = list(dict.fromkeys(f for s in students for f in s.points))
    fn_max = {f: max((s.points.get(f, 0.0) for s in graded), default=0.0) for f in functions}
    with open(course / "source" / assignment / f"{assignment}.ipynb", "rb") as f:
        cells = json.loads(f.read())["cells"]
    fn_max.update({function_of(c["metadata"]["nbgrader"]["grade_id"]) or c["metadata"]["nbgrader"]["grade_id"]:
                   float(c["metadata"]["nbgrader"].get("points", 0)) for c in cells
                   if c.get("metadata", {}).get("nbgrader", {}).get("grade")})
    parts = [f"<h1>Class report: {esc(assignment)}</h1>",
             '<p><a href="index.html">The term</a> · <a href="#students">every student</a></p>',
             '<ul class="cards" aria-label="In numbers">'
             f'<li><b data-stat="submitted">{len(submitted)}</b>submitted</li>'
             f'<li><b data-stat="graded">{len(graded)}</b>graded</li>'
             f'<li><b data-stat="mean">{num(mean)}</b>mean score of {num(top)}</li>'
             f'<li><b data-stat="median">{num(median)}</b>median</li>'
             f'<li><b data-stat="late">{len(late)}</b>late (penalised)</li>'
             f'<li><b data-stat="missing">{len(missing)}</b>sent nothing</li>'
             f'<li><b data-stat="errors">{len(errors)}</b>could not be graded</li></ul>']
    if scores:
        src, alt = histogram(scores, top, f"the {len(scores)} submitted scores of {assignment}")
        bins = score_bins(scores, top)
        parts.append("<h2>Scores</h2>" + figure(src, alt, "Scores after late penalties (students who sent nothing "
                                                "are left out)."))
        parts.append(table("The histogram's numbers", ["scores", "students"],
                           [[esc(f"{num(lo)} to {'under ' if i < len(bins) - 1 else ''}{num(hi)}"), str(n)]
                            for i, (lo, hi, n) in enumerate(bins)], numeric={1}))
    if functions and graded:
        shares = {}
        for f in functions:
            got = [s.points.get(f, 0.0) for s in graded]
            full = sum(g >= fn_max.get(f, 0) > 0 for g in got)
            none = sum(g == 0 for g in got)
            shares[f] = (full, len(got) - full - none, none)
        src, alt = function_bars(shares)
        parts.append("<h2>Per graded function</h2>" + figure(src, alt, "How many graded students earned each "
                                                             "function's points."))
        counts = {f: Counter(s.mistakes[f][0] or "(no known mistake)" for s in graded if f in s.mistakes)
                  for f in functions}
        rows = []
        for f in functions:
            got = [s.points.get(f, 0.0) for s in graded]
            common = counts[f].most_common(1)
            rows.append([esc(f), num(fn_max.get(f, 0)), num(statistics.fmean(got)), str(shares[f][0]),
                         str(shares[f][2]), esc(f"{common[0][0]} ({common[0][1]})") if common else "–"])
        parts.append(table("Points per function", ["function", "points", "mean", "full marks", "none",
                                                   "most common mistake"], rows, numeric={1, 2, 3, 4}))
    mistakes = Counter((f, mid or "", msg) for s in graded + errors for f, (mid, msg) in s.mistakes.items())
    who: dict[tuple, list[str]] = defaultdict(list)
    for s in graded + errors:
        for f, (mid, msg) in s.mistakes.items():
            who[(f, mid or "", msg)].append(s.id)
    rows = [[esc(mid or "(none known)"), esc(f), str(n), esc(msg),
             ", ".join(f'<a href="#s-{quote(sid, safe="")}">{esc(sid)}</a>' for sid in sorted(who[(f, mid, msg)]))]
            for (f, mid, msg), n in sorted(mistakes.items(), key=lambda kv: (-kv[1], kv[0]))]
    parts.append("<h2>Mistakes, by frequency</h2>" + table(
        "What the hidden checks found (a known mistake's id, or none known when the answer was just wrong)",
        ["mistake", "function", "students", "message", "who"], rows, numeric={2}))
    for f in functions:
        here = [(mid, msg, n) for (g, mid, msg), n in mistakes.items() if g == f]
        if here:
            parts.append(table(f"Mistakes in {f}", ["mistake", "students", "message"],
                               [[esc(mid or "(none known)"), str(n), esc(msg)] for mid, msg, n in
                                sorted(here, key=lambda t: -t[2])], numeric={1}))
    parts.append("<h2>Late work</h2>" + table(
        "Submissions that lost points for lateness", ["student", "submitted (UTC)", "due with extension", "penalty",
                                                      "score"],
        [[_who(s), esc(s.row.get("submitted_at", "")), esc(s.row.get("due", "")), num(float(s.row["late_penalty"])),
          num(s.score)] for s in late], numeric={3, 4}))
    parts.append("<h2>Sent nothing, or were excused</h2>" + table(
        "Students without a graded submission", ["student", "status", "why"],
        [[_who(s), esc(s.row["status"]), esc(s.row.get("message", ""))] for s in missing + excused]))
    parts.append("<h2>Could not be graded</h2>" + table(
        "Submissions that nbgrader could not grade (scored 0)", ["student", "message", "log"],
        [[_who(s), esc(s.row.get("message", "")), _log_link(course, assignment, s.id, out)] for s in errors]))
    header = ["student", "status", "score", "late penalty", *functions, "feedback"]
    rows, attrs = [], []
    for s in sorted(students, key=lambda s: s.id):
        fb = course / "feedback" / s.id / assignment / f"{assignment}.html"
        link = f'<a href="{_rel(fb, out)}">feedback</a>' if fb.exists() else "–"
        cells = [f'<span id="s-{quote(s.id, safe="")}">{_who(s)}</span>', esc(s.row["status"]),
                 f'<span data-col="score">{esc(s.row["score"])}</span>',
                 f'<span data-col="late_penalty">{esc(s.row["late_penalty"])}</span>',
                 *[f'<span data-col="points:test-{esc(f)}">{num(s.points[f])}</span>' if f in s.points else "–"
                   for f in functions], link]
        rows.append(cells)
        attrs.append(f' data-student="{esc(s.id)}"')
    parts.append('<h2 id="students">Every student</h2>' + table(
        f"Every student of {assignment} (the numbers of course-grades.csv)", header, rows,
        numeric={2, 3, *range(4, 4 + len(functions))}, row_attrs=attrs))
    return page(f"Class report: {assignment}", "\n".join(parts))


def _rel(target: Path, out: Path) -> str:
    import os

    return "/".join(quote(p) for p in Path(os.path.relpath(target, out)).parts)


def _log_link(course: Path, assignment: str, student: str, out: Path) -> str:
    log = course / "grading-logs" / f"{assignment}-{student}.log"
    return f'<a href="{_rel(log, out)}">nbgrader\'s log</a>' if log.exists() else "–"


def term_page(by_assignment: dict[str, list[Student]]) -> str:
    assignments = sorted(by_assignment)
    rows = []
    for a in assignments:
        students = by_assignment[a]
        scores = [s.score for s in students if s.row["status"] in ("graded", "error")]
        top = max(float(s.row["max_score"]) for s in students)
        mean = num(statistics.fmean(scores)) if scores else "–"
        rows.append([f'<a href="{quote(a)}.html">{esc(a)}</a>', str(len(scores)), mean,
                     num(statistics.median(scores)) if scores else "–",
                     num(top), str(sum(float(s.row.get("late_penalty") or 0) > 0 for s in students)),
                     str(sum(s.row["status"] == "missing" for s in students)),
                     str(sum(s.row["status"] == "error" for s in students))])
    parts = ["<h1>Class report: the term</h1>",
             table("Assignments", ["assignment", "submitted", "mean", "median", "of", "late", "sent nothing",
                                   "errors"], rows, numeric={1, 2, 3, 4, 5, 6, 7})]
    everyone = sorted({s.id for students in by_assignment.values() for s in students})
    cells = {(a, s.id): s for a in assignments for s in by_assignment[a]}
    totals, rows, attrs = [], [], []
    for sid in everyone:
        row = [esc(sid)]
        total = top = 0.0
        for a in assignments:
            s = cells.get((a, sid))
            if s is not None and s.row["status"] == "excused":  # counts neither way, as "EX" in Canvas
                row.append(f'<span data-col="{esc(a)}">EX</span>')
                continue
            row.append(f'<span data-col="{esc(a)}">{esc(s.row["score"])}</span>' if s else "–")
            if s:
                total += s.score
                top += float(s.row["max_score"])
        if top:
            totals.append(100 * total / top)
        row.append(num(100 * total / top) if top else "–")
        rows.append(row)
        attrs.append(f' data-student="{esc(sid)}"')
    if totals:
        src, alt = histogram(totals, 100.0, "the students' term totals in percent", "percent of the term's points")
        parts.append("<h2>Term totals</h2>" + figure(src, alt, "Each student's points over all assignments, in percent "
                                                     "of the points there were."))
    parts.append("<h2>Every student</h2>" + table("Scores per assignment (after late penalties; EX: excused)",
                                                  ["student", *assignments, "total %"], rows,
                                                  numeric=set(range(1, len(assignments) + 2)), row_attrs=attrs))
    return page("Class report: the term", "\n".join(parts))


def write_class_report(course: Path, out: Path | None = None) -> list[Path]:
    """Write the term's page (first in the list) and one page per assignment; returns their paths."""
    course = Path(course)
    out = Path(out) if out else course / REPORT_DIR
    out.mkdir(parents=True, exist_ok=True)
    by_assignment = read_class(course)
    index = out / "index.html"
    index.write_text(term_page(by_assignment), encoding="utf-8")
    pages = [index]
    for assignment, students in sorted(by_assignment.items()):
        path = out / f"{assignment}.html"
        path.write_text(assignment_page(course, assignment, students, out), encoding="utf-8")
        pages.append(path)
    return pages
