"""A submission's files, copied without following links: what a student puts in a folder is data, never a path.

Every copy of a submission goes through :func:`copy_tree`: stock ``nbgrader autograde`` copying
``submitted/`` to ``autograded/`` (``grader/nbgrader_links.py``), the CLI staging a submission in its
worker's shard (``grader/parallel.py``), the exchange's ``collect`` (``grader/term/exchange.py``) and the
sandbox's copy-in (``grader/sandbox/bwrap.py``). It walks the source by directory file descriptors
(``openat`` with ``O_NOFOLLOW``), checks each entry with ``lstat`` and again, once opened, with ``fstat``
on the descriptor it then copies from, so nothing can be swapped in between. It refuses, and copies
nothing of and reads nothing through:

- **symbolic links**, to a file or a folder, anywhere in the tree (the folder itself included);
- **hard links**: a regular file with more than one name. Its other name may be any file of the
  machine (the course's secret, the gradebook, a reference solution), and finding it would mean
  searching every file system; an upload, an LMS download or the exchange never makes one, so refusing
  costs an honest student nothing;
- **devices, named pipes (FIFOs) and sockets**: opening one can block, never end, or act on the machine.

Each refusal is returned as a :class:`Refused` and reported in words (the grading log, the feedback's
note, the grades CSV's message); the submission is graded without it.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC

WORDS = {
    "symlink": "a symbolic link",
    "hardlink": "a hard link (the same file has another name elsewhere)",
    "fifo": "a named pipe",
    "device": "a device",
    "socket": "a socket",
    "too-large": "larger than the size limit",
    "other": "not a regular file",
}


@dataclass(frozen=True)
class Refused:
    """One entry of a submission that was not copied: its path in the submission and why."""

    path: str  # relative to the submission's folder, "/"-separated
    kind: str  # a key of WORDS

    def words(self) -> str:
        return f"'{printable(self.path)}' is {WORDS[self.kind]}"


class RefusedFileError(Exception):
    """A file the grader was asked to read is a link or a special file (the message says which)."""

    def __init__(self, refused: Refused, what: str = "the file") -> None:
        self.message = f"{what} {refused.words()}: links and special files are refused, never read"
        super().__init__(self.message)
        self.refused = refused


def printable(name: str, limit: int = 80) -> str:
    """A student-chosen name made safe to show anywhere (HTML, markdown, CSV, a terminal): letters,
    digits and ``._-/ +``; anything else becomes ``?``; at most ``limit`` characters."""
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "._-/ +") else "?" for c in name)
    return safe if len(safe) <= limit else safe[: limit - 3] + "..."


def kind_of(st: os.stat_result) -> str | None:
    """Why an entry (``lstat``) is refused, or None for a folder or a regular file with one name."""
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        return None
    if stat.S_ISREG(mode):
        return "hardlink" if st.st_nlink > 1 else None
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "other"


def ignored(name: str, patterns: Iterable[str]) -> bool:
    """Whether ``name`` matches one of nbgrader's ignore globs (as its ``glob``: a pattern that does not
    start with a dot does not match a hidden name)."""
    return any(fnmatch.fnmatch(name, p) and (not name.startswith(".") or p.startswith(".")) for p in patterns)


def open_regular(name: str | os.PathLike, dir_fd: int | None = None, shown: str | None = None) -> int:
    """A read-only descriptor of the regular, single-named file ``name`` (relative to ``dir_fd``), never
    through a link; :class:`RefusedFileError` for anything else. The caller closes it."""
    shown = shown or os.fspath(name)
    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    kind = kind_of(st)
    if kind is None and stat.S_ISDIR(st.st_mode):
        kind = "other"
    if kind is not None:  # never opened: opening a device or a pipe may block or act
        raise RefusedFileError(Refused(shown, kind))
    try:
        fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
    except OSError as err:
        if err.errno == errno.ELOOP:  # became a link since the lstat
            raise RefusedFileError(Refused(shown, "symlink")) from None
        raise
    now = os.fstat(fd)
    if kind_of(now) is not None or not stat.S_ISREG(now.st_mode) or (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
        os.close(fd)
        raise RefusedFileError(Refused(shown, kind_of(now) or "other"))
    os.set_blocking(fd, True)
    return fd


def read_regular(path: str | os.PathLike, limit: int) -> bytes:
    """The first ``limit`` bytes of a regular, single-named file, never through a link."""
    fd = open_regular(path)
    try:
        chunks, left = [], limit
        while left > 0 and (chunk := os.read(fd, min(left, 1 << 20))):
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def copy_tree(src: str | os.PathLike, dst: str | os.PathLike, ignore: Iterable[str] = (),
              max_file_bytes: int | None = None) -> list[Refused]:
    """Copy the folder ``src`` into ``dst`` (created if needed; files already there are replaced) without
    following any link; return what was refused. ``ignore``: nbgrader-style name globs to skip silently;
    ``max_file_bytes``: larger files are skipped too (reported as refused, kind ``too-large``).

    The folder ``src`` itself must be a real folder: a link there raises :class:`RefusedFileError`.
    """
    ignore = tuple(ignore)
    try:
        root = os.open(src, _DIR_FLAGS)
    except OSError as err:
        if err.errno in (errno.ELOOP, errno.ENOTDIR):
            raise RefusedFileError(Refused(Path(src).name, kind_of(os.lstat(src)) or "other"),
                                   "the submission's folder") from None
        raise
    refused: list[Refused] = []
    try:
        Path(dst).mkdir(parents=True, exist_ok=True)
        _copy_dir(root, "", Path(dst), ignore, max_file_bytes, refused)
    finally:
        os.close(root)
    return refused


def _copy_dir(dir_fd: int, rel: str, dst: Path, ignore: tuple[str, ...], max_bytes: int | None,
              refused: list[Refused]) -> None:
    for name in sorted(os.listdir(dir_fd)):
        if ignored(name, ignore):
            continue
        path = f"{rel}{name}"
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        kind = kind_of(st)
        if kind is not None:
            refused.append(Refused(path, kind))
        elif stat.S_ISDIR(st.st_mode):
            try:
                sub = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
            except OSError:  # became a link (ELOOP) or vanished since the lstat
                refused.append(Refused(path, "symlink"))
                continue
            try:
                (dst / name).mkdir(exist_ok=True)
                _copy_dir(sub, f"{path}/", dst / name, ignore, max_bytes, refused)
            finally:
                os.close(sub)
        elif max_bytes is not None and st.st_size > max_bytes:
            refused.append(Refused(path, "too-large"))
        else:
            try:
                fd = open_regular(name, dir_fd=dir_fd, shown=path)
            except RefusedFileError as err:
                refused.append(err.refused)
                continue
            try:
                _write_from(fd, dst / name, st.st_mode)
            finally:
                os.close(fd)


def _write_from(fd: int, target: Path, mode: int) -> None:
    if target.is_symlink() or target.exists():
        target.unlink()
    out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                  (mode & 0o755) | 0o600)
    try:
        while chunk := os.read(fd, 1 << 20):
            view = memoryview(chunk)
            while view:
                view = view[os.write(out, view):]
    finally:
        os.close(out)
