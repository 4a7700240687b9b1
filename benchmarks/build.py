"""How long the website takes to build: cold, cached and incremental, against the targets.

    python benchmarks/build.py            # three builds into a fresh temp dir, prints a table
    python benchmarks/build.py --keep DIR # build into DIR (kept) instead

- **cold**: a fresh output dir: no Sphinx environment, no jupyter cache; every reading page is executed.
  Target < 3 min on 2 cores.
- **cached**: ``_build/html`` and the Sphinx doctrees deleted, the jupyter cache kept: every page is
  rendered again, no notebook is executed (what a rebuild after a theme or config change costs).
  Target < 30 s.
- **incremental**: nothing changed since the last build (what ``bash scripts/build.sh`` costs when you
  rebuild without edits).

Each build is the command of ``scripts/build.sh`` (``jupyter-book build . -W -n --keep-going``, with
``--path-output``); the table also lists the slowest reading pages' execution times from the jupyter
cache. Results are also written to ``benchmarks/out/build.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"cold": 180.0, "cached": 30.0}


def build(out: Path) -> float:
    """Seconds for one ``jupyter-book build`` into ``out`` (raises with the log tail when it fails)."""
    cmd = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(ROOT), "-W", "-n", "--keep-going",
           "--path-output", str(out)]
    start = time.perf_counter()
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # pages use the inline backend
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"build failed (exit {proc.returncode}):\n{(proc.stdout + proc.stderr)[-4000:]}")
    return seconds


def execution_times(out: Path) -> dict[str, float]:
    """``{page: seconds}`` of the latest execution of each notebook recorded in the jupyter cache."""
    from jupyter_cache import get_cache

    latest: dict[str, tuple[object, float]] = {}
    for record in get_cache(str(out / "_build" / ".jupyter_cache")).list_cache_records():
        page = Path(record.uri).relative_to(ROOT).as_posix() if Path(record.uri).is_absolute() else record.uri
        seconds = float((record.data or {}).get("execution_seconds", float("nan")))
        if page not in latest or record.created > latest[page][0]:
            latest[page] = (record.created, seconds)
    return {page: seconds for page, (_, seconds) in sorted(latest.items())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, help="build into this directory and keep it (must not exist)")
    args = parser.parse_args(argv)

    from course import site

    site.prepare()  # the reading pages' .ipynb twins in sync (the builds stop otherwise); not timed
    tmp = None
    if args.keep:
        if args.keep.exists():
            raise SystemExit(f"{args.keep} exists: give a new directory for a cold build")
        out = args.keep
    else:
        tmp = tempfile.TemporaryDirectory(prefix="course-build-bench-")
        out = Path(tmp.name)

    results: dict[str, float] = {}
    print(f"[bench] building into {out} ({os.cpu_count()} cores)", file=sys.stderr)
    results["cold"] = build(out)
    pages = execution_times(out)
    shutil.rmtree(out / "_build" / "html")
    shutil.rmtree(out / "_build" / ".doctrees", ignore_errors=True)
    results["cached"] = build(out)
    results["incremental"] = build(out)

    print(f"\nWebsite build times ({os.cpu_count()} cores, {len(pages)} executed pages)\n")
    print(f"| {'build':<12} | {'seconds':>8} | {'target':>8} | {'met':<4} |")
    print(f"| {'-' * 12} | {'-' * 8} | {'-' * 8} | {'-' * 4} |")
    for name, seconds in results.items():
        target = TARGETS.get(name)
        met = "" if target is None else ("yes" if seconds < target else "NO")
        target_text = "-" if target is None else f"< {target:.0f}"
        print(f"| {name:<12} | {seconds:8.1f} | {target_text:>8} | {met:<4} |")
    print("\nExecution time per reading page (cold build, from the jupyter cache):\n")
    print(f"| {'page':<28} | {'seconds':>8} |")
    print(f"| {'-' * 28} | {'-' * 8} |")
    for page, seconds in sorted(pages.items(), key=lambda kv: -kv[1]):
        print(f"| {page:<28} | {seconds:8.1f} |")
    print(f"| {'total':<28} | {sum(pages.values()):8.1f} |")

    out_json = ROOT / "benchmarks" / "out" / "build.json"
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps({"cores": os.cpu_count(), "builds": results, "pages": pages}, indent=2))
    if tmp is not None:
        tmp.cleanup()
    return 0 if all(results[k] < v for k, v in TARGETS.items()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
