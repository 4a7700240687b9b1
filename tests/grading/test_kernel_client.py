"""The grading kernels' client (``grader/sandbox/client.py``): ready once the kernel has answered.

It replaces jupyter_client's fixed 0.2 s IOPub idle wait at every kernel start (the speed is measured by
``benchmarks/grading.py``, not here). Checked here: the sandboxed kernel managers hand out this client;
after ``wait_for_ready`` nothing of a cell's output is lost; a dead kernel is reported, not waited for.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from queue import Empty

import pytest

from grader.coursedir import COURSE_DIR, load_config
from grader.sandbox.client import PromptKernelClient
from grader.sandbox.kernel import SandboxedKernelManager
from grader.sandbox.zygote import ZygoteKernelManager, close_all, zygote_kernels_possible

pytestmark = [pytest.mark.grading, pytest.mark.slow]
MANAGERS = [SandboxedKernelManager] + ([ZygoteKernelManager] if zygote_kernels_possible() else [])


async def _outputs(kc: PromptKernelClient, msg_id: str) -> list[str]:
    """The stream texts of request ``msg_id``, read from IOPub until the kernel is idle again."""
    texts = []
    while True:
        try:
            msg = await kc.iopub_channel.get_msg(timeout=30)
        except Empty:
            raise AssertionError("no idle status within 30 s") from None
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            texts.append(msg["content"]["text"])
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return texts


@pytest.mark.parametrize("manager", MANAGERS, ids=lambda m: m.__name__)
def test_ready_kernels_lose_no_output_and_dead_ones_are_reported(manager: type, tmp_path: Path) -> None:
    async def scenario() -> None:
        km = manager(config=load_config(COURSE_DIR))
        await km.start_kernel(cwd=str(tmp_path))
        kc = km.client()
        assert isinstance(kc, PromptKernelClient)
        kc.start_channels()
        try:
            await kc.wait_for_ready(timeout=60)
            for i in range(3):  # the first request right after ready, and the ones after it
                msg_id = kc.execute(f"print('line', {i})")
                assert await _outputs(kc, msg_id) == [f"line {i}\n"]
            await km.shutdown_kernel(now=True)
            with pytest.raises(RuntimeError, match="died"):
                await kc.wait_for_ready(timeout=30)
        finally:
            kc.stop_channels()
            if await km.is_alive():
                await km.shutdown_kernel(now=True)

    try:
        asyncio.run(scenario())
    finally:
        close_all()
