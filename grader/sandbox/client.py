"""The grading kernels' client: ready as soon as the kernel has answered, without a fixed idle wait.

``jupyter_client``'s ``wait_for_ready`` sends ``kernel_info`` until it gets the reply and an IOPub message,
then "flushes" IOPub by waiting until nothing has arrived for 0.2 s: a fixed 0.2 s on every kernel start,
a third of what starting a zygote kernel costs. Here the flush takes what has already arrived and stops.
Nothing is lost by it: nbclient reads IOPub by the ``msg_id`` of each cell it runs, so a late status
message of the ``kernel_info`` request is ignored like any other message of another request.
"""

from __future__ import annotations

import time
from queue import Empty

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.channels import AsyncZMQSocketChannel
from traitlets import Type

POLL_S = 0.05  # how long each wait for a message lasts before the kernel's liveness is checked again
RESEND_S = 1.0  # how often kernel_info is sent again while there is no reply (as jupyter_client does)


class LeanIOPubChannel(AsyncZMQSocketChannel):
    """IOPub that never unpacks what the grader throws away: a comm (widget) message keeps its header and
    loses its content and buffers unread, so that a flood of them is read as fast as it comes and costs the
    grading process no memory (``grader.execute`` discards comm messages)."""

    async def _recv(self, **kwargs):  # noqa: ANN003, ANN202
        parts = await self.socket.recv_multipart(**kwargs)
        _, frames = self.session.feed_identities(parts)
        header = self.session.unpack(frames[1]) if len(frames) > 4 else {}
        if str(header.get("msg_type", "")).startswith("comm_"):
            return {"header": header, "msg_id": header.get("msg_id"), "msg_type": header["msg_type"],
                    "parent_header": self.session.unpack(frames[2]), "metadata": {}, "content": {}, "buffers": []}
        return self.session.deserialize(frames)


class PromptKernelClient(AsyncKernelClient):
    """An :class:`AsyncKernelClient` whose ``wait_for_ready`` returns once the kernel has answered, and whose
    IOPub channel drops comm messages unread (:class:`LeanIOPubChannel`)."""

    iopub_channel_class = Type(LeanIOPubChannel)  # type: ignore[assignment]

    async def _async_wait_for_ready(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (float("inf") if timeout is None else timeout)
        replied = iopub_connected = False
        sent = -float("inf")
        while not (replied and iopub_connected):
            if not replied and time.monotonic() - sent > RESEND_S:
                self.kernel_info()
                sent = time.monotonic()
            if not replied:
                try:
                    msg = await self.shell_channel.get_msg(timeout=POLL_S)
                except Empty:
                    pass
                else:
                    if msg["msg_type"] == "kernel_info_reply":
                        self._handle_kernel_info_reply(msg)
                        replied = True
            if not iopub_connected:
                try:
                    await self.iopub_channel.get_msg(timeout=POLL_S)  # the welcome, or a status message
                    iopub_connected = True
                except Empty:
                    pass
            if not (replied and iopub_connected):
                if not await self._async_is_alive():
                    raise RuntimeError("Kernel died before replying to kernel_info")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Kernel didn't respond in {timeout:.0f} seconds")
        while True:  # drop what IOPub already holds (the status messages of kernel_info), without waiting
            try:
                await self.iopub_channel.get_msg(timeout=0.005)
            except Empty:
                break

    wait_for_ready = _async_wait_for_ready  # type: ignore[assignment]
