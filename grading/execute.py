"""Execute a submission's notebook with Papermill, its kernel inside the sandbox.

The grading process stays one long-lived Python process: Papermill's Python
API runs each notebook through an nbclient engine registered here, whose
kernel manager starts ``ipykernel`` through :class:`~grading.sandbox.Sandbox`
and talks to it over Unix sockets in the job folder (the kernel has no
network). The trusted parent keeps the clocks: a per-cell timeout (nbclient),
a whole-run deadline, a disk quota on the job folder and a cap on the bytes of
output, and kills the sandbox when one is passed.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import NBClientEngine, papermill_engines

from grading.sandbox import Sandbox

__all__ = ["ExecutionResult", "execute_notebook"]

ENGINE = "fullcycle-sandbox"


class SandboxedKernelManager(AsyncKernelManager):
    """A kernel manager whose kernel starts inside a :class:`Sandbox`, over IPC sockets."""

    def __init__(
        self, sandbox: Sandbox, env: dict[str, str] | None = None, cwd: Path | None = None, **kw
    ):
        kdir = sandbox.job_dir / ".kernel"
        kdir.mkdir(exist_ok=True)
        sandbox.chown_for_sandbox(kdir)
        super().__init__(
            transport="ipc",
            ip=str(kdir / "ipc"),
            connection_file=str(kdir / "connection.json"),
            kernel_name="python3",
            **kw,
        )
        self._sandbox = sandbox
        self._env = env or {}
        self._cwd = cwd

    async def start_kernel(self, **kw):
        log = getattr(self, "_log_file", None)
        if log is not None:
            kw.setdefault("stdout", log)
            kw.setdefault("stderr", log)
        return await super().start_kernel(**kw)

    def write_connection_file(self, **kwargs):
        super().write_connection_file(**kwargs)
        self._sandbox.chown_for_sandbox(Path(self.connection_file))

    def format_kernel_cmd(self, extra_arguments=None):
        cmd = [sys.executable, "-m", "ipykernel_launcher", "-f", self.connection_file]
        return self._sandbox.wrap(cmd, self._env, self._cwd)


class _Guard:
    """Shared state between the notebook client, the watchdog and the caller."""

    def __init__(self, sandbox: Sandbox, output_limit: int):
        self.sandbox = sandbox
        self.output_limit = output_limit
        self.output_bytes = 0
        self.stop_reason: str | None = None
        self.km: SandboxedKernelManager | None = None

    def stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
        self.kill()

    def kill(self) -> None:
        """Kill the kernel's launcher and everything in the sandbox."""
        provisioner = self.km.provisioner if self.km is not None else None
        pid = getattr(provisioner, "pid", None)
        self.sandbox.kill_all((pid,) if pid else ())


class GuardedClient(PapermillNotebookClient):
    """Papermill's client, counting output bytes and stopping the run past the cap."""

    guard: _Guard | None = None

    def output(self, outs, msg, display_id, cell_index):
        g = self.guard
        if g is not None:
            content = msg.get("content", {})
            size = len(str(content.get("text", ""))) + sum(
                len(str(v)) for v in content.get("data", {}).values()
            )
            g.output_bytes += size
            if g.output_bytes > g.output_limit:
                g.stop(f"the notebook printed more than {g.output_limit / 1e6:.0f} MB of output")
                return None
        return super().output(outs, msg, display_id, cell_index)


class SandboxEngine(NBClientEngine):
    @classmethod
    def execute_managed_notebook(cls, nb_man, kernel_name, **kwargs):
        guard = kwargs.pop("guard")
        kwargs.pop("input_path", None)
        client = GuardedClient(
            nb_man,
            km=guard.km,
            timeout=kwargs.pop("execution_timeout", None),
            startup_timeout=kwargs.pop("start_timeout", 60),
            kernel_name=kernel_name,
            log_output=False,
            interrupt_on_timeout=False,
            **{k: v for k, v in kwargs.items() if k in ("stdout_file", "stderr_file")},
        )
        client.guard = guard
        return client.execute()


papermill_engines.register(ENGINE, SandboxEngine)


@dataclass
class ExecutionResult:
    """How a notebook run ended. ``status`` is ``ok`` or a failure kind."""

    status: str
    message: str = ""
    seconds: float = 0.0
    cell_seconds: float = 0.0
    failed_cell: int | None = None
    error_name: str | None = None
    output_bytes: int = 0
    details: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _dir_size(path: Path, cap: int) -> int:
    total = 0
    stack = [path]
    while stack:
        d = stack.pop()
        try:
            with os.scandir(d) as it:
                for e in it:
                    try:
                        if e.is_dir(follow_symlinks=False):
                            stack.append(Path(e.path))
                        else:
                            total += e.stat(follow_symlinks=False).st_blocks * 512
                    except OSError:
                        continue
                    if total > cap:
                        return total
        except OSError:
            continue
    return total


def _cell_seconds(nb) -> float:
    total = 0.0
    for cell in nb.cells:
        pm = cell.get("metadata", {}).get("papermill", {})
        d = pm.get("duration")
        if isinstance(d, int | float):
            total += d
    return total


def execute_notebook(
    notebook: Path,
    output: Path,
    parameters: dict,
    sandbox: Sandbox,
    cwd: Path,
    env: dict[str, str] | None = None,
    kernel_log: Path | None = None,
) -> ExecutionResult:
    """Run ``notebook`` in ``sandbox`` with ``parameters``; write the executed copy to ``output``.

    ``output`` should be outside the job folder: learner code cannot reach it.
    Never raises for the submission's faults: they are in the result.
    """
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    limits = sandbox.limits
    guard = _Guard(sandbox, int(limits.output_mb * 1e6))
    guard.km = SandboxedKernelManager(sandbox, env, cwd)
    log_file = open(kernel_log, "wb") if kernel_log else None
    guard.km._log_file = log_file
    done = threading.Event()
    disk_cap = limits.disk_mb * 1024 * 1024
    start = time.monotonic()

    def watchdog():
        while not done.wait(0.25):
            if time.monotonic() - start > limits.run_timeout_s:
                guard.stop(f"the whole run took longer than {limits.run_timeout_s:.0f} s")
                return
            if _dir_size(sandbox.job_dir, disk_cap) > disk_cap:
                guard.stop(f"the job folder grew past the {limits.disk_mb} MB disk quota")
                return

    thread = threading.Thread(target=watchdog, name="grading-watchdog", daemon=True)
    thread.start()
    result: ExecutionResult
    nb = None
    try:
        nb = pm.execute_notebook(
            str(notebook),
            str(output),
            parameters=parameters,
            engine_name=ENGINE,
            kernel_name="python3",
            language="python",
            progress_bar=False,
            request_save_on_cell_execute=False,
            execution_timeout=limits.cell_timeout_s,
            start_timeout=60,
            cwd=str(cwd),
            guard=guard,
        )
        result = ExecutionResult("ok")
    except PapermillExecutionError as exc:
        result = ExecutionResult(
            "cell_error",
            f"cell {exc.exec_count} raised {exc.ename}: {exc.evalue}"[:2000],
            failed_cell=exc.exec_count,
            error_name=exc.ename,
        )
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            guard.stop("interrupted")
            raise
        name = type(exc).__name__
        text = str(exc).strip().splitlines()[0][:500] if str(exc).strip() else name
        if guard.stop_reason:
            result = ExecutionResult("limit", guard.stop_reason, error_name=name)
        elif "Timeout" in name or "timed out" in text.lower():
            result = ExecutionResult(
                "timeout",
                f"a cell ran longer than the {limits.cell_timeout_s:.0f} s cell limit",
                error_name=name,
            )
        elif "DeadKernel" in name or "died" in text.lower():
            result = ExecutionResult(
                "kernel_died",
                "the kernel died (killed, crashed, or out of memory)",
                error_name=name,
            )
        else:
            result = ExecutionResult("error", f"{name}: {text}", error_name=name)
    finally:
        done.set()
        thread.join(timeout=2)
        guard.kill()
        if log_file is not None:
            log_file.close()
    if result.ok and guard.stop_reason:
        result = ExecutionResult("limit", guard.stop_reason)
    result.seconds = time.monotonic() - start
    result.output_bytes = guard.output_bytes
    if nb is None and output.exists():
        import nbformat

        try:
            nb = nbformat.read(output, as_version=4)
        except Exception:
            nb = None
    if nb is not None:
        result.cell_seconds = _cell_seconds(nb)
    return result
