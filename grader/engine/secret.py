"""The course's grading secret: hidden inputs that cannot be precomputed from the public repository.

The hidden cases are drawn from a random generator seeded with ``HMAC(secret, "<assignment>/<name>")``.
The secret is 32 random bytes created on first use in the course directory (``.grading-secret``,
mode 0600, git-ignored) and never sent to a kernel. The same secret always gives the same inputs, so
serial, parallel and sharded grading agree; copy it with the course when grading on other machines
(``grader/parallel.py`` and the cluster jobs do). A new secret gives new inputs.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

SECRET_FILE = ".grading-secret"


class NoSecret(FileNotFoundError):
    """The course has no grading secret and may not create one here (a shard of it)."""


def course_secret(course: Path, create: bool = True) -> bytes:
    """The secret of the course at ``course``, created there if it does not exist yet (``create``)."""
    path = Path(course) / SECRET_FILE
    if not create and not path.exists():
        raise NoSecret(
            f"{course} has no grading secret ({SECRET_FILE}). Shards graded apart must share one: create it "
            "once with `python -m grader secret` and copy it with the course to every machine."
        )
    if not path.exists():
        # Written whole under a private name, then linked into place (atomic, and refused if another process
        # got there first): a process reading the secret never sees a half-written file. Two grading
        # workers once created it at the same time, and one read it empty.
        draft = path.with_name(f"{SECRET_FILE}.{os.getpid()}.{os.urandom(4).hex()}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(os.urandom(32).hex() + "\n")
        try:
            os.link(draft, path)
        except FileExistsError:
            pass  # another process created it: use theirs
        finally:
            draft.unlink()
    text = path.read_text().strip()
    if len(text) < 32:
        raise ValueError(f"{path} is not a grading secret (too short): delete it to make a new one")
    return bytes.fromhex(text)


def seed_for(secret: bytes, assignment: str, name: str) -> int:
    """The seed of the hidden cases of ``name`` in ``assignment``."""
    digest = hmac.new(secret, f"{assignment}/{name}".encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big")
