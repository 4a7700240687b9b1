"""Mutation score of the hidden checks: every mutant of every reference, over many course secrets.

Each graded function's reference is mutated automatically (``grader/engine/mutants.py``) and every
mutant runs through the hidden checks of each secret (``grader/engine/mutation.py``, in this process,
no kernel). It prints one table row per function (mutants, killed, named by a known mistake,
equivalent, surviving), the equivalent mutants with their recorded reasons (``--reasons``), and every
surviving mutant with the line it changed and a secret under which it keeps full marks::

    .venv/bin/python scripts/mutation_score.py [--assignment ch2-sdpa] [--secrets 50] [--random]

The secrets are fixed (``mutation secret 0`` ...) so that two runs print the same table; ``--random``
draws fresh ones instead, to search wider. Exit status 1 when a mutant survives without an
equivalence record or a record is stale; 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from grader.engine import mutation, registry  # noqa: E402

#: Secrets per chapter when ``--secrets`` is not given (50 otherwise): chapters 6 and 7 run slower models.
DEFAULT_SECRETS = {"ch6-tiled": 20, "ch7-transformer": 10}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--assignment", action="append", help="only this assignment (repeatable; default: all)")
    p.add_argument("--function", help="only this graded function")
    p.add_argument("--secrets", type=int, help="secrets per function (default 50; 20 for ch6, 10 for ch7)")
    p.add_argument("--random", action="store_true", help="draw random secrets instead of the fixed ones")
    p.add_argument("--reasons", action="store_true", help="list the equivalent mutants with their reasons")
    p.add_argument("--killed", action="store_true", help="list every mutant with its verdict")
    p.add_argument("--no-names", action="store_true", help="skip the diagnosis of killed mutants (faster)")
    args = p.parse_args(argv)
    if args.secrets is not None and args.secrets < 1:
        p.error("--secrets must be at least 1")
    known = registry.assignment_ids()
    for a in args.assignment or []:
        if a not in known:
            p.error(f"no assignment {a!r}; known: {', '.join(known)}")
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass

    rows, problems, started = [], 0, time.perf_counter()
    print(f"mutation score of the hidden checks, {datetime.date.today().isoformat()}", flush=True)
    header = f"{'assignment':16} {'function':28} {'secrets':>7} {'mutants':>7} {'killed':>6} {'named':>5} " \
             f"{'equiv':>5} {'surviving':>9} {'time':>7}"
    print(header)
    for ex in registry.exercises():
        if args.assignment and ex.id not in args.assignment:
            continue
        n = args.secrets or DEFAULT_SECRETS.get(ex.id, 50)
        secrets = [os.urandom(32) for _ in range(n)] if args.random else mutation.course_secrets(n)
        for name in ex.check_order:
            if args.function and name != args.function:
                continue
            t0 = time.perf_counter()
            score = mutation.score_function(ex, name, secrets, name_mistakes=not args.no_names)
            rows.append(score)
            c = {s: score.count(s) for s in mutation.STATUSES}
            print(f"{ex.id:16} {name:28} {n:>7} {len(score.verdicts):>7} {c['killed']:>6} {c['named']:>5} "
                  f"{c['equivalent']:>5} {c['surviving']:>9} {time.perf_counter() - t0:>6.1f}s", flush=True)
            for v in score.surviving:
                print(f"    SURVIVES {v.mutant.id}\n        {v.mutant.before}\n     -> {v.mutant.after}\n"
                      f"        e.g. secret {v.survived.hex()}", flush=True)
            for line in score.stale:
                print(f"    STALE RECORD {line}", flush=True)
            if args.reasons:
                for v in score.verdicts:
                    if v.status == "equivalent":
                        print(f"    equivalent {v.mutant.id}: {v.reason}")
            if args.killed:
                for v in score.verdicts:
                    print(f"    {v.status:10} {v.mutant.id} {v.mistake or ''}")
            problems += len(score.surviving) + len(score.stale)
    totals = {s: sum(r.count(s) for r in rows) for s in mutation.STATUSES}
    print(f"{'total':16} {'':28} {'':>7} {sum(len(r.verdicts) for r in rows):>7} {totals['killed']:>6} "
          f"{totals['named']:>5} {totals['equivalent']:>5} {totals['surviving']:>9} "
          f"{time.perf_counter() - started:>6.1f}s")
    if problems:
        print(f"{problems} problem(s): a surviving mutant needs a new or wider hidden case, a known mistake, or a "
              "record in EQUIVALENT_MUTANTS of its checks.py with the reason (see CONTRIBUTING.md)")
        return 1
    print("every mutant is killed under every secret, named, or a recorded equivalent")
    return 0


if __name__ == "__main__":
    sys.exit(main())
