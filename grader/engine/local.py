"""An in-process stand-in for the sandboxed kernel, for fast tests of the checks and diagnoses.

It runs :func:`grader.engine.probe.run` on a namespace in this process, through the same job files
and the same defensive reader as the real kernel, so a test exercises everything but the sandbox.
Never use it on submissions: their code would run in the grader.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from grader.engine import probe, transport
from grader.engine.checker import Answer
from grader.engine.reference import compile_student


def namespace_from(*sources: str) -> dict[str, Any]:
    """A notebook-like namespace: every source executed in order in one dict (trusted code only)."""
    namespace: dict[str, Any] = {"__name__": "__main__"}
    for source in sources:
        exec(compile_student(source, "<cell>"), namespace)
    return namespace


def local_answer(namespace: dict[str, Any]) -> Answer:
    """``answer(job, runs)`` that runs the job on ``namespace`` here."""

    def answer(job: dict, runs: list) -> transport.KernelResult:
        with tempfile.TemporaryDirectory(prefix="grader-local-") as tmp:
            job_in, job_out = Path(tmp) / "in", Path(tmp) / "out"
            transport.write_job(job_in, job, runs)
            job_out.mkdir()
            probe.run(str(job_in), str(job_out), namespace)
            return transport.read_result(job_out, len(runs), job["function"])

    return answer
