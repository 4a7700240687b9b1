"""Jobs to the sandboxed kernel and results back, as plain data only.

The grader writes a job (the hidden inputs of one function) into a folder the kernel can read but not
write, and reads the kernel's answer from a folder the kernel can write. Everything read back is
hostile input: :func:`read_result` never unpickles, never imports, never calls anything that came
from the kernel. It opens files without following symbolic links, accepts only regular files, checks
sizes before reading, checks each ``.npy`` header (numeric or boolean dtype, bounded number of
elements) before ``np.load(..., allow_pickle=False)``, and bounds the JSON tree's depth and size.
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from grader.engine import probe

MAX_JSON_BYTES = 1_000_000
MAX_ARRAY_BYTES = 64 * 2**20
MAX_TOTAL_BYTES = 256 * 2**20
MAX_ARRAYS = 512
MAX_DEPTH = 12
ARRAY_NAME = re.compile(r"^a(\d{1,4})\.npy$")


class BadResult(Exception):
    """The kernel's answer is not plain data within the limits (the message says why, in words)."""


# --------------------------------------------------------------------------------------------------
# Writing a job (trusted side -> kernel)
# --------------------------------------------------------------------------------------------------


def write_job(folder: Path, job: dict[str, Any], cases: list[tuple[str, tuple, dict]]) -> None:
    """Write ``job`` (function name, helper sources, ...) and the encoded ``cases`` into ``folder``.

    ``folder`` is created here and must not exist; the kernel sees it read-only.
    """
    folder.mkdir(mode=0o755)
    arrays: list[np.ndarray] = []
    encoded = [
        {"runner": r, "args": probe.encode(tuple(args), arrays), "kwargs": probe.encode(dict(kwargs), arrays)}
        for r, args, kwargs in cases
    ]
    for i, array in enumerate(arrays):
        np.save(folder / f"a{i}.npy", array, allow_pickle=False)
        os.chmod(folder / f"a{i}.npy", 0o644)
    body = {**job, "format": probe.FORMAT, "cases": encoded, "arrays": len(arrays)}
    (folder / probe.JOB_FILE).write_text(json.dumps(body, allow_nan=True))
    os.chmod(folder / probe.JOB_FILE, 0o644)


# --------------------------------------------------------------------------------------------------
# Reading a result (kernel -> trusted side)
# --------------------------------------------------------------------------------------------------


def _open_regular(dir_fd: int, name: str, limit: int) -> bytes:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    except OSError as err:
        raise BadResult(f"cannot open {name} ({err.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise BadResult(f"{name} is not a regular file")
        if info.st_size > limit:
            raise BadResult(f"{name} is {info.st_size} bytes, more than the limit of {limit}")
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            total += len(chunk)
            if total > limit:
                raise BadResult(f"{name} grew past the limit of {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _array(data: bytes, name: str) -> np.ndarray:
    import io

    buf = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(buf)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(buf)  # the header only, no data
    except Exception as err:  # noqa: BLE001
        raise BadResult(f"{name} is not a .npy array ({type(err).__name__})") from None
    if dtype.hasobject or dtype.kind not in "biufc" or dtype.fields is not None:
        raise BadResult(f"{name} has dtype {dtype}, which is not a plain number or boolean type")
    if int(np.prod(shape, dtype=np.int64)) * dtype.itemsize > MAX_ARRAY_BYTES:
        raise BadResult(f"{name} has shape {shape}: larger than the limit")
    buf.seek(0)
    try:
        return np.load(buf, allow_pickle=False)
    except Exception as err:  # noqa: BLE001
        raise BadResult(f"{name} cannot be read as an array ({type(err).__name__})") from None


def _check_tree(tree: Any, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise BadResult("the result is nested too deeply")
    if isinstance(tree, dict):
        for v in tree.values():
            _check_tree(v, depth + 1)
    elif isinstance(tree, list):
        for v in tree:
            _check_tree(v, depth + 1)


@dataclass
class Outcome:
    """One case's answer as plain data: a value, or an error described by its type name and text."""

    value: Any = None
    error_type: str | None = None
    error_message: str = ""
    error_name: str | None = None  # the missing name of a NameError: an identifier, checked when read
    modified: tuple = ()  # the arguments the call changed in place (positions, keyword names)

    @property
    def failed(self) -> bool:
        return self.error_type is not None


@dataclass
class KernelResult:
    """What the kernel answered for one function."""

    missing: bool = False  # the notebook does not define the function
    outcomes: list[Outcome] = field(default_factory=list)
    forbidden: list[str] = field(default_factory=list)  # library attention seen while it ran


def read_result(folder: Path, expected_cases: int, function: str) -> KernelResult:
    """The kernel's answer in ``folder``, read defensively (see the module docstring)."""
    try:
        dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        raise BadResult("no answer (the result folder is missing)") from None
    try:
        raw = _open_regular(dir_fd, probe.RESULT_FILE, MAX_JSON_BYTES)
        try:
            tree = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise BadResult("the answer is not valid JSON") from None
        if not isinstance(tree, dict) or tree.get("format") != probe.FORMAT or tree.get("function") != function:
            raise BadResult("the answer is not in the grader's format")
        _check_tree(tree)
        if tree.get("missing") is True:
            return KernelResult(missing=True)
        count = tree.get("arrays")
        cases = tree.get("cases")
        if not isinstance(count, int) or not 0 <= count <= MAX_ARRAYS or not isinstance(cases, list):
            raise BadResult("the answer is not in the grader's format")
        if len(cases) != expected_cases:
            raise BadResult(f"the answer has {len(cases)} results for {expected_cases} cases")
        arrays, total = [], 0
        for i in range(count):
            data = _open_regular(dir_fd, f"a{i}.npy", MAX_ARRAY_BYTES + 4096)
            total += len(data)
            if total > MAX_TOTAL_BYTES:
                raise BadResult("the answer's arrays are larger than the limit")
            arrays.append(_array(data, f"a{i}.npy"))
        outcomes = [_outcome(entry, arrays) for entry in cases]
        forbidden = tree.get("forbidden") or []
        if not isinstance(forbidden, list) or not all(isinstance(f, str) for f in forbidden):
            raise BadResult("the answer is not in the grader's format")
        return KernelResult(outcomes=outcomes, forbidden=[f[:100] for f in forbidden[:10]])
    finally:
        os.close(dir_fd)


MAX_NAME = 60


def identifier(value: Any) -> str | None:
    """``value`` if it is a plain Python identifier of at most ``MAX_NAME`` characters, else None."""
    if isinstance(value, str) and len(value) <= MAX_NAME and value.isascii() and value.isidentifier():
        return value
    return None


def _modified(entry: dict) -> tuple:
    """The arguments reported changed in place: small non-negative ints or identifiers, nothing else."""
    found = entry.get("modified", [])
    if not isinstance(found, list) or len(found) > 32:
        raise BadResult("the answer is not in the grader's format")
    labels = []
    for label in found:
        if isinstance(label, int) and not isinstance(label, bool) and 0 <= label < 64:
            labels.append(label)
        elif identifier(label) is not None:
            labels.append(label)
        else:
            raise BadResult("the answer is not in the grader's format")
    return tuple(labels)


def _outcome(entry: Any, arrays: list[np.ndarray]) -> Outcome:
    if not isinstance(entry, dict):
        raise BadResult("the answer is not in the grader's format")
    modified = _modified(entry)
    if "error" in entry:
        err = entry["error"]
        if not isinstance(err, dict):
            raise BadResult("the answer is not in the grader's format")
        return Outcome(error_type=str(err.get("type", "Error"))[:80], error_message=str(err.get("message", ""))[:300],
                       error_name=identifier(err.get("name")), modified=modified)
    if "ok" not in entry:
        raise BadResult("the answer is not in the grader's format")
    return Outcome(value=plain_tree(entry["ok"], arrays), modified=modified)


def plain_tree(tree: Any, arrays: list[np.ndarray]) -> Any:
    """A decoded result as plain values: NumPy arrays (tensors too), tuples, dicts, numbers, strings."""
    if isinstance(tree, (type(None), bool, int, float, str)):
        return tree
    if isinstance(tree, list):  # a bare JSON list is not part of the format
        raise BadResult("the answer is not in the grader's format")
    if not isinstance(tree, dict):
        raise BadResult("the answer is not in the grader's format")
    kind = tree.get("t")
    try:
        if kind in ("tuple", "list"):
            items = [plain_tree(v, arrays) for v in tree["v"]]
            return tuple(items) if kind == "tuple" else items
        if kind == "dict":
            return {str(k): plain_tree(v, arrays) for k, v in tree["v"]}
        if kind in ("ndarray", "tensor"):
            return arrays[int(tree["i"])]
        if kind == "npscalar":
            return arrays[int(tree["i"])][()]
        if kind == "other":
            return probe.OtherValue(str(tree.get("type", "?")))
    except (KeyError, IndexError, TypeError, ValueError):
        raise BadResult("the answer is not in the grader's format") from None
    raise BadResult("the answer is not in the grader's format")


def plain_value(value: Any) -> Any:
    """The same plain form for a value computed in the grader (reference, known mistakes)."""
    arrays: list[np.ndarray] = []
    tree = probe.encode(value, arrays)
    return plain_tree(tree, arrays)
