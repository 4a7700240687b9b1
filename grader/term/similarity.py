"""``python -m grader similarity ch2-sdpa``: which pairs of submissions share unusually much solution code.

It flags, never decides: a person reads the side-by-side matches and judges (short functions have few
natural solutions; students may have been allowed to work together; the reference is public).

How (the winnowing of Schleimer, Wilkerson and Aiken, SIGMOD 2003, which MOSS uses):

1. **What is compared**: each submission's answer cells (nbgrader ``solution`` cells of the assignment;
   for a notebook that lost its metadata, every code cell that is not the release's), and the course's
   reference, the solution cells of the source notebook (the public ``solutions/`` code).
2. **Normalised tokens** (Python's tokenizer): comments, blank lines and layout dropped, every identifier
   renamed to ``V`` (attribute names such as ``.sum`` and keywords kept), strings to ``S``, numbers to
   ``N``. Renaming variables, editing comments and reformatting change nothing.
3. **Fingerprints**: hashes of every run of :data:`K` tokens, *winnowed* (the smallest hash of each
   window of :data:`W` consecutive runs): any match of ``K + W - 1`` tokens or more is found, and a
   reordering of statements keeps the fingerprints inside them.
4. **Not counted**: every run of the release's own code (signatures, docstrings, the stub), and
   fingerprints that more than :func:`common_limit` submissions share (the idiom everyone writes).
5. **Score** of a pair: shared fingerprints / those of the smaller submission (so copying one function
   of four shows), ranked highest first; pairs with fewer than :data:`MIN_SHARED` shared fingerprints
   are not listed. Candidate pairs come from an inverted index (fingerprint -> submissions), so a class
   of 500 (124,750 pairs) takes seconds: ``python benchmarks/similarity.py``.

``copydetect`` (a maintained winnowing tool) was looked at: it compares whole files pairwise and its report
loads Bootstrap from a CDN; this course needs notebook cells, the release as boilerplate, an index that
scales, and an offline page, which are the few dozen lines here.
"""

from __future__ import annotations

import hashlib
import html
import io
import keyword
import time
import tokenize
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

K = 8  # tokens per fingerprinted run
W = 6  # runs per winnowing window: a shared run of K + W - 1 = 13 tokens is always found
MIN_SHARED = 4  # fewer shared fingerprints than this is no match worth showing
REFERENCE = "(reference)"
REPORT_DIR = "similarity"


def common_limit(n: int) -> int:
    """A fingerprint in more than this many of ``n`` submissions is common code, not evidence."""
    return max(10, n // 10)


@dataclass
class Token:
    text: str  # normalised
    cell: int  # which answer cell
    line: int  # 1-based line in that cell


@dataclass
class Code:
    """One submission's (or the reference's) answer code, normalised and fingerprinted."""

    student: str
    cells: list[tuple[str, str]]  # (cell name, source)
    tokens: list[Token] = field(default_factory=list)
    prints: dict[int, list[int]] = field(default_factory=dict)  # fingerprint -> start token indices


@dataclass
class Pair:
    a: str
    b: str
    shared: int
    size_a: int
    size_b: int

    @property
    def score(self) -> float:
        return self.shared / max(1, min(self.size_a, self.size_b))


@dataclass
class Result:
    assignment: str
    students: dict[str, Code]
    reference: Code
    ranked: list[Pair]
    to_reference: list[Pair]
    pairs: int  # pairs of submissions compared
    common: int  # fingerprints left out as common code
    seconds: float
    ignored: set[int] = field(default_factory=set)  # the release's and the common fingerprints
    release_lines: frozenset[str] = frozenset()  # lines of the release's answer cells (folded in the report)


def normalise(source: str, cell: int) -> list[Token]:
    """The normalised tokens of one cell (see the module docstring); code that does not tokenize is
    split on whitespace and punctuation instead, so a broken cell still counts."""
    out: list[Token] = []
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        import re

        for line_no, line in enumerate(source.splitlines(), 1):
            for word in re.findall(r"\w+|[^\w\s]", line.split("#", 1)[0]):
                out.append(Token("V" if word.isidentifier() and not keyword.iskeyword(word) else word, cell, line_no))
        return out
    previous = ""
    for tok in tokens:
        kind, text = tok.type, tok.string
        if kind in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
                    tokenize.ENCODING, tokenize.ENDMARKER):
            continue
        if kind == tokenize.NAME:
            text = text if keyword.iskeyword(text) or previous == "." else "V"
        elif kind == tokenize.STRING or kind == getattr(tokenize, "FSTRING_START", -1):
            text = "S"
        elif kind == tokenize.NUMBER:
            text = "N"
        out.append(Token(text, cell, tok.start[0]))
        previous = tok.string
    return out


def _hash(texts: list[str]) -> int:
    return int.from_bytes(hashlib.blake2b("\x00".join(texts).encode(), digest_size=8).digest(), "big")


def runs(tokens: list[Token]) -> list[tuple[int, int]]:
    """``(hash, start)`` of every run of :data:`K` tokens within one cell (no run spans two cells)."""
    texts = [t.text for t in tokens]
    return [(_hash(texts[i:i + K]), i) for i in range(len(texts) - K + 1) if tokens[i].cell == tokens[i + K - 1].cell]


def winnow(tokens: list[Token]) -> dict[int, list[int]]:
    """Fingerprint -> the token indices where its run starts (the winnowed subset of all runs)."""
    hashes = runs(tokens)
    chosen: dict[int, list[int]] = defaultdict(list)
    last = -1
    for start in range(max(1, len(hashes) - W + 1) if hashes else 0):
        window = hashes[start:start + W]
        low = min(h for h, _ in window)
        at = start + max(i for i, (h, _) in enumerate(window) if h == low)  # the rightmost minimum
        if at != last:
            chosen[hashes[at][0]].append(hashes[at][1])
            last = at
    return dict(chosen)


def fingerprint(student: str, cells: list[tuple[str, str]], release_lines: frozenset[str] = frozenset()) -> Code:
    """``student``'s code normalised and winnowed; tokens on a line the release has too (the signature,
    the docstring, the stub) are left out, so no run joins the release's text to the student's."""
    code = Code(student, cells)
    for i, (_, source) in enumerate(cells):
        lines = source.splitlines()
        code.tokens += [t for t in normalise(source, i)
                        if not (0 < t.line <= len(lines) and lines[t.line - 1].strip() in release_lines)]
    code.prints = winnow(code.tokens)
    return code


def answer_cells(nb: dict, answer_ids: list[str], release_text: set[str]) -> list[tuple[str, str]]:
    """The answer cells of a submitted notebook, by their grade id; for a notebook without nbgrader
    metadata, every code cell that is not the release's."""
    cells = [c for c in nb.get("cells", []) if isinstance(c, dict) and c.get("cell_type") == "code"]
    found = []
    for c in cells:
        nbg = (c.get("metadata") or {}).get("nbgrader") or {}
        if nbg.get("solution") and nbg.get("grade_id") in answer_ids:
            found.append((nbg["grade_id"], _text(c)))
    if found:
        return found
    return [(f"cell {i + 1}", _text(c)) for i, c in enumerate(cells) if " ".join(_text(c).split()) not in release_text]


def _text(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _read(path: Path) -> dict:
    """The notebook as the grader reads it (:mod:`grader.normalize`), or ``{}``."""
    from grader.term.choose import read_candidate

    try:
        return read_candidate(Path(path).read_bytes())[0] or {}
    except OSError:
        return {}


def strip_markers(source: str) -> str:
    return "\n".join(ln for ln in source.splitlines()
                     if ln.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION")) + "\n"


def compare_class(course: Path, assignment: str) -> Result:
    """Fingerprint every submission of ``assignment`` in ``course/submitted/`` and rank the pairs."""
    started = time.perf_counter()
    course = Path(course)
    source = _read(course / "source" / assignment / f"{assignment}.ipynb")
    release = _read(course / "release" / assignment / f"{assignment}.ipynb")
    answer_ids = [((c.get("metadata") or {}).get("nbgrader") or {}).get("grade_id") for c in source.get("cells", [])
                  if ((c.get("metadata") or {}).get("nbgrader") or {}).get("solution")]
    release_cells = [(g, _text(c)) for c in release.get("cells", [])
                     if (g := ((c.get("metadata") or {}).get("nbgrader") or {}).get("grade_id")) in answer_ids]
    release_text = {" ".join(_text(c).split()) for c in release.get("cells", [])}
    boilerplate = {h for h, _ in runs(fingerprint("(release)", release_cells).tokens)}  # every run, not a sample
    release_lines = frozenset(line.strip() for _, text in release_cells for line in text.splitlines()) - {""}
    reference = fingerprint(REFERENCE, [(g, strip_markers(_text(c))) for c in source.get("cells", [])
                                        if (g := ((c.get("metadata") or {}).get("nbgrader") or {}).get("grade_id"))
                                        in answer_ids], release_lines)
    students: dict[str, Code] = {}
    submitted = course / "submitted"
    for folder in sorted(submitted.iterdir()) if submitted.is_dir() else []:
        nb_path = folder / assignment / f"{assignment}.ipynb"
        if nb_path.is_file():
            students[folder.name] = fingerprint(folder.name, answer_cells(_read(nb_path), answer_ids, release_text),
                                                release_lines)
    result = rank(assignment, students, reference, boilerplate, started)
    result.release_lines = release_lines
    return result


def rank(assignment: str, students: dict[str, Code], reference: Code, boilerplate: set[int],
         started: float | None = None) -> Result:
    """Rank every pair of ``students`` (and each against ``reference``) by shared fingerprints."""
    started = time.perf_counter() if started is None else started
    holders: dict[int, list[str]] = defaultdict(list)
    for sid, code in students.items():
        for h in code.prints:
            if h not in boilerplate:
                holders[h].append(sid)
    limit = common_limit(len(students))
    common = {h for h, who in holders.items() if len(who) > limit}
    counted = {sid: {h for h in code.prints if h not in boilerplate and h not in common}
               for sid, code in students.items()}
    shared: Counter[tuple[str, str]] = Counter()
    for h, who in holders.items():
        if h in common:
            continue
        for i, a in enumerate(who):
            for b in who[i + 1:]:
                shared[(a, b)] += 1
    ranked = sorted((Pair(a, b, n, len(counted[a]), len(counted[b])) for (a, b), n in shared.items()
                     if n >= MIN_SHARED), key=lambda p: (-p.score, -p.shared, p.a, p.b))
    ref = set(reference.prints) - boilerplate
    to_reference = sorted((Pair(sid, REFERENCE, len((set(code.prints) - boilerplate) & ref),
                                len(set(code.prints) - boilerplate), len(ref)) for sid, code in students.items()),
                          key=lambda p: (-p.score, -p.shared, p.a))
    to_reference = [p for p in to_reference if p.shared >= MIN_SHARED]
    n = len(students)
    return Result(assignment, students, reference, ranked, to_reference, n * (n - 1) // 2, len(common),
                  time.perf_counter() - started, boilerplate | common)


# --- the report -------------------------------------------------------------------------------------
def matched_lines(code: Code, other: Code, ignore: set[int]) -> set[tuple[int, int]]:
    """``(cell, line)`` of ``code`` covered by a run it shares with ``other`` (not in ``ignore``)."""
    both = (set(code.prints) & set(other.prints)) - ignore
    lines = set()
    for h in both:
        for start in code.prints[h]:
            for t in code.tokens[start:start + K]:
                lines.add((t.cell, t.line))
    return lines


def _side(code: Code, lines: set[tuple[int, int]], given: frozenset[str] = frozenset()) -> str:
    """One side of a pair: its answer cells, matched lines marked; after each cell's first line, the
    release's own lines (its docstring, with the blank lines among them) are folded into one line."""
    parts = []
    for i, (name, source) in enumerate(code.cells):
        rows: list[str] = []
        run = False  # inside a run of the release's lines
        for n, line in enumerate(source.splitlines() or [""], 1):
            is_given = line.strip() in given or (run and not line.strip())
            if is_given and n > 1:
                if not run:
                    rows.append('<span class="given">    … (as in the release)</span>')
                run = True
                continue
            run = False
            text = html.escape(line) or " "
            rows.append(f"<mark>{text}</mark>" if (i, n) in lines else text)
        label = html.escape(f"{code.student}: {name}")
        parts.append(f'<p class="cell">{html.escape(name)}</p><pre tabindex="0" aria-label="{label}">'
                     + "\n".join(rows) + "</pre>")
    return "".join(parts)


STYLE = """
body { font: 16px/1.5 system-ui, sans-serif; color: #1a1a1a; background: #fff; margin: 0; }
main { max-width: 80rem; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; margin-top: 2rem; border-bottom: 1px solid #d9d9d9; }
a { color: #0b5394; }
.flag { border-left: 4px solid #2f7ebc; background: #eef5fb; padding: .5rem 1rem; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; }
caption { text-align: left; font-weight: 600; }
th, td { border-bottom: 1px solid #d9d9d9; padding: .3rem .6rem; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.pair { display: grid; grid-template-columns: 1fr 1fr; gap: 1rem; }
@media (max-width: 40rem) { .pair { grid-template-columns: 1fr; } }
.pair > div { min-width: 0; }
pre { background: #f6f6f6; padding: .5rem; overflow-x: auto; font-size: .85rem; line-height: 1.35; }
mark { background: #ffe08a; color: #1a1a1a; }
.cell { margin: .5rem 0 0; font-size: .85rem; color: #444; }
.given { color: #555; font-style: italic; }
"""


def _row(rank: int, p: Pair, link: bool) -> str:
    a, b = html.escape(p.a), html.escape(p.b)
    first = f'<a href="#pair-{rank}">{rank}</a>' if link else str(rank)
    return (f'<tr data-a="{a}" data-b="{b}" data-score="{p.score:.4f}"><th scope="row">{first}</th><td>{a}</td>'
            f'<td>{b}</td><td class="n">{p.score:.0%}</td><td class="n">{p.shared}</td>'
            f'<td class="n">{p.shared / max(1, p.size_a):.0%}</td><td class="n">{p.shared / max(1, p.size_b):.0%}</td>'
            "</tr>")


def report_html(result: Result, top: int = 50) -> str:
    head = ('<tr><th scope="col">rank</th><th scope="col">student</th><th scope="col">student</th>'
            '<th scope="col">score</th><th scope="col">shared fingerprints</th><th scope="col">of the first\'s</th>'
            '<th scope="col">of the second\'s</th></tr>')
    shown = result.ranked[:top]
    body = [f"<h1>Similar solutions: {html.escape(result.assignment)}</h1>",
            '<p class="flag"><strong>This report flags; it does not decide.</strong> It lists pairs of submissions '
            "whose answer code shares unusually long runs of the same tokens (after renaming every variable and "
            "dropping comments and layout), for a person to read side by side. Similar code is not proof of "
            "copying: short functions have few natural solutions, students may have been allowed to work together, "
            "and the reference solution is public. The release's own code and code that more than "
            f"{common_limit(len(result.students))} submissions share are not counted.</p>",
            f"<p>{len(result.students)} submissions, {result.pairs} pairs compared, {len(result.ranked)} pairs share "
            f"{MIN_SHARED} or more fingerprints; {result.common} common fingerprints left out "
            f"({result.seconds:.1f} s).</p>",
            "<h2>Pairs, most similar first</h2>",
            '<div class="scroll" tabindex="0" role="region" aria-label="Pairs, most similar first">'
            f'<table id="pairs"><caption>Score: shared fingerprints over those of the smaller submission</caption>'
            f"<thead>{head}</thead><tbody>"
            + "".join(_row(i + 1, p, i < top) for i, p in enumerate(result.ranked)) + "</tbody></table></div>",
            "<h2>Closest to the public reference</h2>",
            '<div class="scroll" tabindex="0" role="region" aria-label="Closest to the public reference">'
            '<table id="reference"><caption>Each submission against the reference solution (solutions/)</caption>'
            f"<thead>{head}</thead><tbody>"
            + "".join(_row(i + 1, p, False) for i, p in enumerate(result.to_reference[:top]))
            + "</tbody></table></div>",
            "<h2>Side by side</h2>"]
    for i, p in enumerate(shown, 1):
        a, b = result.students[p.a], result.students[p.b]
        body.append(f'<section id="pair-{i}" aria-label="pair {i}"><h3>{i}. {html.escape(p.a)} and '
                    f"{html.escape(p.b)}: {p.score:.0%}</h3>"
                    f'<div class="pair"><div><p><strong>{html.escape(p.a)}</strong></p>'
                    f"{_side(a, matched_lines(a, b, result.ignored), result.release_lines)}</div>"
                    f'<div><p><strong>{html.escape(p.b)}</strong></p>'
                    f"{_side(b, matched_lines(b, a, result.ignored), result.release_lines)}</div>"
                    "</div></section>")
    return ('<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>Similar solutions: {html.escape(result.assignment)}</title>\n<style>{STYLE}</style>\n</head>\n"
            "<body>\n<main>\n" + "\n".join(body) + "\n</main>\n</body>\n</html>\n")


def write_report(result: Result, course: Path, out: Path | None = None, top: int = 50) -> Path:
    out = Path(out) if out else Path(course) / REPORT_DIR / f"{quote(result.assignment)}.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report_html(result, top), encoding="utf-8")
    return out
