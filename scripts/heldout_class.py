"""Grade the held-out class of students with the grader's own checks, and say what the grader got wrong.

The class (``tests/grading/heldout/``) was written from the release notebooks and the readings only,
before anyone looked at the hidden checks: for every graded function, correct alternatives and
realistic wrong versions, each replacing ONE function of an otherwise correct notebook. This script
builds each such notebook's namespace in-process (the release with the instructor's answers, as
``grader.generate.filled_release`` fills it, then the variant's cell), and grades every graded
function of it with :func:`grader.engine.checker.check` under ``N`` course secrets, exactly as the
sandboxed kernel would be asked (same jobs, same probe, same helpers, same verdict; only the sandbox
is missing, so never point it at real submissions)::

    .venv/bin/python scripts/heldout_class.py [--assignment ch2-sdpa] [--secrets 8] [--quiet]

Per exercise it prints: correct variants that lost points (must be 0), wrong variants that kept full
marks under some secret (must be 0), wrong variants caught with a message that names the misconception
(contains one of its keywords), caught with a message that does not, and messages that look
misleading (another function lost the points, or a known mistake was named that is not the student's).
Then every wrong variant's message, for a human to judge. Exits 1 when a correct variant lost a point
or a wrong one kept full marks.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "grading")]

from heldout import all_variants  # noqa: E402
from heldout.measure import Outcome, measure, secrets  # noqa: E402


def table(outcomes: list[Outcome], n_secrets: int) -> str:
    head = (f"{'exercise':16} {'correct':>7} {'lost pts':>8} | {'wrong':>5} {'kept full':>9} "
            f"{'named':>5} {'generic':>7} {'suspect':>7} {'named %':>7}")
    rows = [f"held-out class under {n_secrets} secret(s)", head, "-" * len(head)]
    totals = [0] * 7
    for assignment in dict.fromkeys(o.assignment for o in outcomes):
        mine = [o for o in outcomes if o.assignment == assignment]
        good = [o for o in mine if o.variant.kind == "correct"]
        bad = [o for o in mine if o.variant.kind == "wrong"]
        caught = [o for o in bad if not o.kept]
        row = [len(good), sum(bool(o.lost) for o in good), len(bad), sum(bool(o.kept) for o in bad),
               sum(o.named for o in caught), sum(not o.named for o in caught), sum(bool(o.suspect) for o in mine)]
        totals = [t + r for t, r in zip(totals, row, strict=True)]
        rows.append(_row(assignment, row))
    rows.append("-" * len(head))
    rows.append(_row("total", totals))
    return "\n".join(rows)


def _row(label: str, r: list[int]) -> str:
    caught = r[4] + r[5]
    rate = f"{100 * r[4] / caught:.0f}%" if caught else "-"
    return f"{label:16} {r[0]:>7} {r[1]:>8} | {r[2]:>5} {r[3]:>9} {r[4]:>5} {r[5]:>7} {r[6]:>7} {rate:>7}"


def details(outcomes: list[Outcome], n_secrets: int) -> str:
    lines = []
    lost = [o for o in outcomes if o.variant.kind == "correct" and o.lost]
    lines.append(f"\nCorrect variants that lost points: {len(lost)}")
    for o in lost:
        for i, name, msg in o.lost[:2]:
            lines.append(f"  {o.variant.name} (secret {i}, {name}): {' '.join(msg.split())}")
    kept = [o for o in outcomes if o.variant.kind == "wrong" and o.kept]
    lines.append(f"\nWrong variants that kept full marks: {len(kept)}")
    for o in kept:
        lines.append(f"  {o.variant.name}: full marks under {len(o.kept)}/{n_secrets} secrets"
                     f" -- {o.variant.misconception}")
    suspect = [o for o in outcomes if o.suspect]
    lines.append(f"\nMessages to judge as possibly misleading: {len(suspect)}")
    for o in suspect:
        lines.append(f"  {o.variant.name}: {o.suspect}")
    lines.append("\nEvery caught wrong variant's message (N = names the misconception, - = does not):")
    for o in outcomes:
        if o.variant.kind == "wrong" and o.message:
            lines.append(f"  [{'N' if o.named else '-'}] {o.variant.name}")
            lines.append(f"        misconception: {o.variant.misconception}")
            lines.append(f"        message: {' '.join(o.message.split())}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--assignment", help="only this assignment (default: all)")
    p.add_argument("--secrets", type=int, default=4, help="course secrets to grade under (default 4)")
    p.add_argument("--quiet", action="store_true", help="the table only, not every message")
    args = p.parse_args(argv)
    if args.secrets < 1:
        p.error("--secrets must be at least 1")
    classes = all_variants()
    if args.assignment and args.assignment not in classes:
        p.error(f"no held-out class for {args.assignment!r}; known: {', '.join(classes)}")
    keys = secrets(args.secrets)
    outcomes = []
    for assignment, variants in classes.items():
        if args.assignment and assignment != args.assignment:
            continue
        for variant in variants:
            outcomes.append(measure(assignment, variant, keys))
            print(".", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    print(table(outcomes, len(keys)))
    if not args.quiet:
        print(details(outcomes, len(keys)))
    bad = any(o.lost for o in outcomes if o.variant.kind == "correct") or any(
        o.kept for o in outcomes if o.variant.kind == "wrong")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
