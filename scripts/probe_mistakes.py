"""Try every known mistake against many random course secrets; list those the hidden cases miss.

Each course draws its own grading secret, and the hidden cases are drawn from it, so a known mistake
must lose its points whatever the secret. ``tests/grading/test_mistakes.py`` checks eight fixed secrets;
this script searches wider before a new mistake or a new case generator lands::

    .venv/bin/python scripts/probe_mistakes.py --secrets 500 [--assignment ch1-lookup]

It prints one line per mistake (how many secrets let it keep its points) and exits 1 if any did.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from grader.engine import checker, registry  # noqa: E402
from grader.engine.compare import same  # noqa: E402


def undetected(assignment: str, mistake_id: str, secrets: list[bytes]) -> list[bytes]:
    """The secrets whose hidden cases give mistake ``mistake_id`` the reference's answers on every case."""
    ex = registry.exercise(assignment)
    mistake = next(m for m in ex.mistakes if m.id == mistake_id)
    namespace = checker.reference_namespace(ex)
    spec, built = ex.specs[mistake.function], mistake.build(namespace)
    missed = []
    for secret in secrets:
        cases = checker.hidden_cases(ex, mistake.function, secret)
        theirs = checker.local_outcomes(built, namespace, cases)
        ours = checker.local_outcomes(ex.reference(mistake.function), namespace, cases)
        if all(same(t, o, spec) for t, o in zip(theirs, ours, strict=True)):
            missed.append(secret)
    return missed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--secrets", type=int, default=200, help="random secrets per mistake (default 200)")
    p.add_argument("--assignment", help="only this assignment (default: all)")
    args = p.parse_args(argv)
    if args.secrets < 1:
        p.error("--secrets must be at least 1")
    known = [ex.id for ex in registry.exercises()]
    if args.assignment and args.assignment not in known:
        p.error(f"no assignment {args.assignment!r}; known: {', '.join(known)}")
    secrets = [os.urandom(32) for _ in range(args.secrets)]
    if any(ex.uses_torch for ex in registry.exercises() if not args.assignment or ex.id == args.assignment):
        import torch

        torch.set_num_threads(1)  # tiny tensors: on a shared machine threads only contend (40x slower in ch7)
    failed = 0
    for ex in registry.exercises():
        if args.assignment and ex.id != args.assignment:
            continue
        for m in ex.mistakes:
            missed = undetected(ex.id, m.id, secrets)
            failed += bool(missed)
            first = f"  e.g. secret {missed[0].hex()}" if missed else ""
            print(f"{ex.id:16} {m.id:32} kept its points for {len(missed)}/{len(secrets)} secrets{first}", flush=True)
    print(f"{failed} mistake(s) escaped some secret" if failed else "every mistake lost points for every secret")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
