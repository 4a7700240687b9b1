"""How long ``python -m grader similarity`` takes for a class of 100, 250, 500: a table, with the machine's load.

    python benchmarks/similarity.py [--sizes 100 250 500] [--planted 5]

Each size is a synthetic ch2-sdpa class written to a temporary course: every student's four answers are
taken from the hand-written honest solutions of ``tests/grading/test_similarity.py`` (six authors per
function), with the student's own variable names, comments and one to three statements of their own, so
that whole answers repeat across the class the way a common idiom does. ``--planted`` students copy
another one (renamed, reordered, comments changed). The table gives the pairs compared, the seconds to
read and fingerprint the class and rank every pair (``compare_class``), the seconds to write the report,
and how many planted pairs are among the top ranks (one per planted pair, as many ranks as planted pairs
plus five).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "grading"))

from test_similarity import COPY, HONEST, write_class  # noqa: E402

from grader.term.similarity import compare_class, write_report  # noqa: E402

A = "ch2-sdpa"
NUMPY = ["abs", "sqrt", "square", "log1p", "expm1", "clip", "round", "floor", "ceil", "sign", "tanh", "cumsum",
         "diff", "flip", "sort", "argsort", "ravel", "squeeze", "atleast_2d", "copy"]
KEEP = {"np", "math", "x", "axis", "n_q", "n_k", "lengths", "Q", "K", "V", "mask", "softmax", "None", "True", "False",
        "float", "bool", "len", "range", "enumerate", "dtype", "keepdims", "out", "where", "neginf", "indexing"}


def rename(body: str, rng: random.Random) -> str:
    """``body`` with every variable it assigns renamed at random."""
    names = {w for w in re.findall(r"\b[A-Za-z_]\w*\b", body) if w not in KEEP and w not in NUMPY}
    assigned = {w for w in names if re.search(rf"\b{w}\b\s*(=|,|\s+in\b)", body)}
    mapping = {w: f"{rng.choice('abcdefghuvw')}{rng.randrange(1000)}" for w in assigned}
    return re.sub(r"\b[A-Za-z_]\w*\b", lambda m: mapping.get(m[0], m[0]), body)


def own_work(body: str, rng: random.Random) -> str:
    """An honest student's answer: ``body`` under their own names, a comment and one to three statements of
    their own (a chain of NumPy calls: rare, as a student's own code is)."""
    own = [f"t{i} = np.{rng.choice(NUMPY)}(np.{rng.choice(NUMPY)}(x) {rng.choice('+-*/')} "
           f"np.{rng.choice(NUMPY)}({rng.randrange(2, 9)}))" for i in range(rng.randint(1, 3))]
    return "\n".join([*own, f"# note {rng.randrange(10**6)}", rename(body, rng)])


def copied(body: str, rng: random.Random) -> str:
    """A copy of another student's answer: renamed, their own statements reordered, the comment rewritten."""
    lines = body.splitlines()
    own = [ln for ln in lines if re.match(r"t\d+ = np\.", ln)]
    rest = [ln for ln in lines if ln not in own and not ln.startswith("# note")]
    return rename("\n".join([*own[::-1], "# my own approach", *rest]), rng)


def make_class(root: Path, n: int, planted: int, seed: int = 0) -> list[tuple[str, str]]:
    """Write a course with ``n`` synthetic submissions; returns the planted ``(original, copy)`` pairs."""
    rng = random.Random(seed)
    authors = list(HONEST)
    answers = {}
    for i in range(n - planted):
        answers[f"s{i:04d}"] = {g: own_work(HONEST[rng.choice(authors)][g], rng) for g in COPY}
    pairs = []
    for j in range(planted):
        original, copy = f"s{j:04d}", f"c{j:04d}"
        answers[copy] = {g: copied(body, rng) for g, body in answers[original].items()}
        pairs.append((original, copy))
    write_class(root, answers)
    return pairs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[100, 250, 500])
    p.add_argument("--planted", type=int, default=5)
    args = p.parse_args()
    load = os.getloadavg()
    print(f"similarity of synthetic {A} classes; {os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} "
          f"{load[2]:.2f} at the start")
    print(f"{'n':>5} {'pairs':>8} {'compare s':>10} {'report s':>9} {'planted in top':>15} {'load':>5}")
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "course"
            planted = make_class(root, n, args.planted)
            t0 = time.perf_counter()
            result = compare_class(root, A)
            compare_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            write_report(result, root)
            report_s = time.perf_counter() - t0
            top = {frozenset((p.a, p.b)) for p in result.ranked[:len(planted) + 5]}
            found = sum(frozenset(pair) in top for pair in planted)
            print(f"{n:>5} {result.pairs:>8} {compare_s:>10.2f} {report_s:>9.2f} {f'{found}/{len(planted)}':>15} "
                  f"{os.getloadavg()[0]:>5.2f}")


if __name__ == "__main__":
    main()
