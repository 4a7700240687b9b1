"""A Jupyter kernel manager whose kernels start inside a fresh bubblewrap sandbox.

Wired in by ``grader/nbgrader_config.py`` (through :class:`grader.execute.TrustedExecute`), so stock
``nbgrader autograde`` and ``python -m grader grade`` grade every submission in one. Each kernel gets
its own :class:`~grader.sandbox.bwrap.Box`: the client talks to it over Unix sockets in the box's
kernel folder, and when the kernel is shut down or killed the box's folders are deleted (its
processes died with its PID namespace).

``sandbox = False`` (``--no-sandbox``) starts plain kernels, still under the memory limit, for
machines where bubblewrap cannot run; the grader warns, and the verdicts record it.
"""

from __future__ import annotations

import sys
import typing as t

from jupyter_client.manager import AsyncKernelManager
from traitlets import Bool, DottedObjectName, Integer, Type

from grader.sandbox.bwrap import Box, Limits, sandbox_python
from grader.sandbox.client import PromptKernelClient


class SandboxedKernelManager(AsyncKernelManager):
    """Kernels in a bubblewrap sandbox with limits they cannot lift."""

    sandbox = Bool(True, help="Run every grading kernel in a bubblewrap sandbox (False: unsandboxed).").tag(
        config=True
    )
    memory_limit_mb = Integer(4096, help="Memory of each sandbox as a whole (its cgroup; MiB), and the address-space "
                              "and data limit of each of its processes.").tag(config=True)
    max_processes = Integer(64, help="Processes and threads a sandbox may run.").tag(config=True)
    cgroups = Bool(True, help="Put each sandbox in a control group of its own that holds it to memory_limit_mb and "
                   "max_processes as a whole (where the machine has cgroup v1 or v2 with memory and pids, as root)."
                   ).tag(config=True)
    fallback_tasks = Integer(24, help="Without a cgroup: processes and threads a sandbox may run (rlimit).").tag(
        config=True
    )
    split_memory_without_cgroups = Bool(False, help="Without a cgroup: give each process memory_limit_mb / "
                                        "fallback_tasks, so that the sandbox's total stays within memory_limit_mb "
                                        "(too little for a PyTorch kernel at the default limits).").tag(config=True)
    max_file_mb = Integer(64, help="Largest file a kernel may write (MiB).").tag(config=True)
    cpu_seconds = Integer(600, help="CPU seconds of each process of the kernel.").tag(config=True)
    scratch_mb = Integer(256, help="Size of the kernel's working directory and of its /tmp (MiB).").tag(config=True)

    # its clients are ready as soon as the kernel has answered (no fixed 0.2 s wait at every start)
    client_class = DottedObjectName("grader.sandbox.client.PromptKernelClient")
    client_factory = Type(PromptKernelClient, klass="jupyter_client.asynchronous.AsyncKernelClient")

    box: Box | None = None
    # sandbox_usages: what each sandbox this manager started used (its cgroup's peak memory, OOM kills)

    @property
    def limits(self) -> Limits:
        return Limits(self.memory_limit_mb, self.max_processes, self.max_file_mb, self.cpu_seconds, self.scratch_mb,
                      self.cgroups, self.fallback_tasks, self.split_memory_without_cgroups)

    async def _async_pre_start_kernel(self, **kw: t.Any) -> tuple[list[str], dict[str, t.Any]]:
        self._remove_box()
        self.box = Box.create(kw.get("cwd"), self.limits, log=self.log)
        self.transport = "ipc"
        self.ip = str(self.box.kernel_dir / "k")
        self.connection_file = str(self.box.kernel_dir / "connection.json")
        kw["cwd"] = str(self.box.root / "work")
        return await super()._async_pre_start_kernel(**kw)

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        """The grading Python's own kernel (never another kernelspec's), inside the sandbox."""
        python = sandbox_python() if self.sandbox else sys.executable
        argv = [python, "-m", "ipykernel_launcher", "-f", self.connection_file, *(extra_arguments or [])]
        if not self.sandbox:  # no isolation, but the same memory and process budget where there is a cgroup
            mb = str(self.memory_limit_mb)
            cmd = [sys.executable, "-m", "grader.kernel_launcher", "--memory-mb", mb, "--", *argv]
            return self.box.in_group(cmd) if self.box is not None else cmd
        assert self.box is not None
        if self.box.uid is not None:
            import os

            os.chmod(self.connection_file, 0o644)  # the kernel's unprivileged user reads it
        return self.box.command(argv)

    async def _async_interrupt_kernel(self) -> None:
        """Interrupt through the kernel's control channel. A signal to the started process would reach
        bubblewrap, which dies of SIGINT with the whole sandbox (and a zygote kernel is not our child)."""
        msg = self.session.msg("interrupt_request", content={})
        self._connect_control_socket()
        self.session.send(self._control_socket, msg)

    interrupt_kernel = _async_interrupt_kernel  # type: ignore[assignment]

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        self._remove_box()

    cleanup_resources = _async_cleanup_resources  # type: ignore[assignment]

    def _remove_box(self) -> None:
        if self.box is not None:
            self.box.remove()
            if self.box.usage:
                self.sandbox_usages = [*getattr(self, "sandbox_usages", []), self.box.usage]
            self.box = None
