"""``python -m grader.kernel_launcher --memory-mb N -- CMD...``: cap memory, then exec the kernel.

Only for grading without a sandbox (``--no-sandbox``); sandboxed kernels get their limits from
``prlimit`` inside bubblewrap (grader/sandbox/bwrap.py). Kept free of heavy imports.
"""

import os
import resource
import sys


def limit_memory(megabytes: int) -> None:
    """Cap this process's address space and data memory at ``megabytes`` MiB (soft = hard: it cannot
    raise them again)."""
    limit = megabytes * 1024 * 1024
    for which in (resource.RLIMIT_AS, resource.RLIMIT_DATA):
        _, hard = resource.getrlimit(which)
        value = limit if hard == resource.RLIM_INFINITY else min(limit, hard)
        resource.setrlimit(which, (value, value))


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 4 or args[0] != "--memory-mb" or args[2] != "--":
        sys.exit("usage: python -m grader.kernel_launcher --memory-mb N -- CMD [ARGS...]")
    limit_memory(int(args[1]))
    os.execvp(args[3], args[3:])


if __name__ == "__main__":
    main()
