"""Limits that protect the grader from a submission: kernel memory and output size.

Both are wired in through ``grader/nbgrader_config.py``, so stock ``nbgrader autograde`` and
``python -m grader grade`` run every notebook under the same limits (and give the same grades).

- :class:`LimitedKernelManager` starts each kernel through ``python -m grader.kernel_launcher``, which caps
  the kernel's data memory (``RLIMIT_DATA``) and then ``exec``s the real kernel. A cell that allocates
  too much gets a ``MemoryError`` inside the kernel; the grader and the other students are untouched.
- :class:`LimitedExecute` is nbgrader's ``Execute`` preprocessor that keeps at most
  ``max_output_chars`` characters of output per cell *while* the cell runs, so a cell printing
  100 MB leaves a small autograded notebook and a small feedback page.
"""

from __future__ import annotations

import sys

from jupyter_client.manager import AsyncKernelManager
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import Execute
from traitlets import Integer

TRUNCATION_NOTE = "\n... output truncated by the grader (more than {limit} characters in this cell) ...\n"


class LimitedKernelManager(AsyncKernelManager):
    """A kernel manager whose kernels run under a memory limit (``memory_limit_mb``, 0 = none)."""

    memory_limit_mb = Integer(
        4096, help="Data memory limit of each grading kernel in MiB (RLIMIT_DATA); 0 means no limit."
    ).tag(config=True)

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        cmd = super().format_kernel_cmd(extra_arguments)
        if self.memory_limit_mb <= 0:
            return cmd
        return [sys.executable, "-m", "grader.kernel_launcher", "--memory-mb", str(self.memory_limit_mb), "--", *cmd]


def _text_size(out: NotebookNode) -> int:
    if out.get("output_type") == "stream":
        return len(out.get("text", ""))
    data = out.get("data", {})
    return sum(len(v) if isinstance(v, str) else len(str(v)) for v in data.values())


def _truncate(out: NotebookNode, keep: int, note: str) -> None:
    if out.get("output_type") == "stream":
        out["text"] = out.get("text", "")[:keep] + note
        return
    data = out.get("data", {})
    for mime in list(data):
        if mime == "text/plain":
            text = data[mime] if isinstance(data[mime], str) else str(data[mime])
            data[mime] = text[:keep] + note
        else:  # rich outputs (HTML, images) cannot be cut meaningfully: drop them
            del data[mime]
    if "text/plain" not in data:
        data["text/plain"] = note


class LimitedExecute(Execute):
    """nbgrader's ``Execute`` with a memory-limited kernel and a per-cell output budget."""

    max_output_chars = Integer(
        100_000, help="Characters of output kept per cell (streams and text results); -1 means no limit."
    ).tag(config=True)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("kernel_manager_class", LimitedKernelManager)
        super().__init__(*args, **kwargs)
        self._chars_by_cell: dict[int, int] = {}

    def output(self, outs, msg, display_id, cell_index):
        out = super().output(outs, msg, display_id, cell_index)
        if out is None or self.max_output_chars < 0 or out.get("output_type") == "error":
            return out
        used = self._chars_by_cell.get(cell_index, 0)
        size = _text_size(out)
        self._chars_by_cell[cell_index] = used + size
        if used + size <= self.max_output_chars:
            return out
        if used > self.max_output_chars:  # already truncated: drop everything that follows
            if outs and outs[-1] is out:
                outs.pop()
            return None
        _truncate(out, self.max_output_chars - used, TRUNCATION_NOTE.format(limit=self.max_output_chars))
        self._chars_by_cell[cell_index] = self.max_output_chars + 1
        return out
