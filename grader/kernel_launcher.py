"""``python -m grader.kernel_launcher --memory-mb N -- CMD...``: cap memory, then exec the kernel.

Kept free of heavy imports: it runs once per graded notebook, before the kernel starts.
"""

import os
import resource
import sys


def limit_memory(megabytes: int) -> None:
    """Cap this process's data memory (heap and private anonymous mappings) at ``megabytes`` MiB."""
    limit = megabytes * 1024 * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 4 or args[0] != "--memory-mb" or args[2] != "--":
        sys.exit("usage: python -m grader.kernel_launcher --memory-mb N -- CMD [ARGS...]")
    limit_memory(int(args[1]))
    os.execvp(args[3], args[3:])


if __name__ == "__main__":
    main()
