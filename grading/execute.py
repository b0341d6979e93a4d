"""Execute a submission's notebook with Papermill, its kernel inside the sandbox.

The grading process stays one long-lived Python process: Papermill's Python
API runs each notebook through an nbclient engine registered here, whose
kernel manager starts ``ipykernel`` through :class:`~grading.sandbox.Sandbox`
and talks to it over Unix sockets in the job folder (the kernel has no
network). The trusted parent keeps the clocks: a per-cell timeout (nbclient),
a whole-run deadline, a disk quota on the job folder and a cap on the bytes of
output, and kills the sandbox when one is passed.

The kernel's messages are learner-controlled bytes: every kept one counts
against the output cap, whatever its kind; ZeroMQ refuses a single message
above :data:`MAX_MESSAGE_BYTES` (or the output cap) before it reaches the
grader's memory and queues at most :data:`RECEIVE_QUEUE` per socket; a refused
message ends the run with that reason. The executed notebook is read back with
a size bound.
"""

from __future__ import annotations

import contextlib
import json
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


#: One message from the kernel may weigh at most this much (and never much more than the
#: output cap): ZeroMQ refuses a larger one before it reaches the grader's memory.
MAX_MESSAGE_BYTES = 4_000_000
#: What a message carries beyond its content (header, parent header, signature).
MESSAGE_HEADROOM_BYTES = 64_000
#: Messages ZeroMQ may queue for the grader on one socket: a flood of kernel messages holds
#: at most this many times the message cap of the grader's memory.
RECEIVE_QUEUE = 16
#: Messages that carry no output the grader keeps (their size is bounded by the cap alone).
_NOT_OUTPUT = frozenset({"status", "execute_input", "shutdown_reply"})


def bound_messages(context, max_bytes: int) -> None:
    """Make every socket ``context`` creates refuse messages above ``max_bytes`` and queue few."""
    import zmq

    context.setsockopt(zmq.MAXMSGSIZE, int(max_bytes))
    context.setsockopt(zmq.RCVHWM, RECEIVE_QUEUE)


class SandboxedKernelManager(AsyncKernelManager):
    """A kernel manager whose kernel starts inside a :class:`Sandbox`, over IPC sockets.

    Its sockets, and those of the clients it makes, refuse messages larger
    than ``max_message`` bytes: a kernel cannot push a gigabyte into the
    grader in one message.
    """

    def __init__(
        self,
        sandbox: Sandbox,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        max_message: int = MAX_MESSAGE_BYTES + MESSAGE_HEADROOM_BYTES,
        **kw,
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
        self._max_message = max_message
        bound_messages(self.context, max_message)

    def client(self, **kwargs):
        kc = super().client(**kwargs)
        bound_messages(kc.context, self._max_message)
        return kc

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


def release_kernel(km, kc=None) -> None:
    """Close a client's channels and a kernel manager's sockets and ZeroMQ context.

    nbclient leaves both open when it is given the kernel manager (it may be
    the caller's to reuse), and each open ZeroMQ context holds threads and
    descriptors: a grader that grades submission after submission in one
    process would gain a few dozen descriptors per submission. The kernel's
    launcher (killed with its sandbox by the caller; killed here if still running) is
    reaped first. Never raises.
    """
    from jupyter_core.utils import run_sync

    if kc is not None:
        with contextlib.suppress(Exception):
            kc.stop_channels()
    if km is None:
        return
    launcher = getattr(getattr(km, "provisioner", None), "process", None)
    if launcher is not None:
        with contextlib.suppress(Exception):
            if launcher.poll() is None:  # a kernel its sandbox did not take down
                launcher.kill()
            launcher.wait(timeout=5)
    with contextlib.suppress(Exception):
        run_sync(km.cleanup_resources)()


class _Guard:
    """Shared state between the notebook client, the watchdog and the caller."""

    def __init__(self, sandbox: Sandbox, output_limit: int):
        self.sandbox = sandbox
        self.output_limit = output_limit
        self.output_bytes = 0
        self.stop_reason: str | None = None
        self.km: SandboxedKernelManager | None = None
        self.kc = None
        self._monitors: list = []

    def watch(self, kc) -> None:
        """Watch the client's shell and IOPub sockets for connections ZeroMQ drops.

        A kernel message above the size cap makes ZeroMQ drop the connection
        (and reconnect); the message is lost, and the cell then never ends.
        """
        import zmq

        self.kc = kc
        for channel in (kc.shell_channel, kc.iopub_channel):
            sock = getattr(channel, "socket", None)
            if sock is not None:
                self._monitors.append((sock, sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)))

    def dropped(self) -> bool:
        """Whether ZeroMQ dropped a connection to the kernel (a message above the cap)."""
        import zmq
        from zmq.utils.monitor import recv_monitor_message

        for _, monitor in self._monitors:
            sync = zmq.Socket.shadow(monitor.underlying)
            while True:
                try:
                    event = recv_monitor_message(sync, zmq.NOBLOCK)
                except zmq.ZMQError:
                    break
                if event["event"] == zmq.EVENT_DISCONNECTED:
                    return True
        return False

    def kernel_alive(self) -> bool:
        """Whether the kernel's launcher is still running."""
        process = getattr(getattr(self.km, "provisioner", None), "process", None)
        return process is not None and process.poll() is None

    def unwatch(self) -> None:
        for sock, monitor in self._monitors:
            try:
                sock.disable_monitor()
            except Exception:  # the socket is already closed
                pass
            monitor.close(linger=0)
        self._monitors = []

    def release(self) -> None:
        """Close the client's channels and the kernel manager (:func:`release_kernel`)."""
        kc, self.kc = self.kc, None
        release_kernel(self.km, kc)

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
    """Papermill's client, counting the bytes of every kept message and stopping past the cap.

    Outputs of every kind count (text, data, metadata, tracebacks, widget
    state), so that what the executed notebook holds stays within the cap.
    """

    guard: _Guard | None = None

    def start_new_kernel_client(self):
        kc = super().start_new_kernel_client()
        if self.guard is not None:
            self.guard.watch(kc)
        return kc

    def process_message(self, msg, cell, cell_index):
        g = self.guard
        if g is not None and msg.get("msg_type") not in _NOT_OUTPUT:
            g.output_bytes += _content_bytes(msg.get("content"))
            if g.output_bytes > g.output_limit:
                g.stop(f"the notebook printed more than {g.output_limit / 1e6:g} MB of output")
                return None
        return super().process_message(msg, cell, cell_index)


def _content_bytes(content) -> int:
    try:
        return len(json.dumps(content, default=str))
    except (TypeError, ValueError, RecursionError):
        return len(str(content))


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


#: What every file, folder or link in the job folder costs its disk quota at least: an inode
#: is disk too, and a walk over a million empty files must not be free (it bounds the walk).
ENTRY_BYTES = 4096


def _dir_size(path: Path, cap: int) -> int:
    """Bytes the tree under ``path`` takes on disk (sparse files count their blocks only).

    Every entry, folders included, counts at least :data:`ENTRY_BYTES`; the
    walk stops as soon as ``cap`` is passed, so it visits at most
    ``cap / ENTRY_BYTES`` entries whatever the tree holds.
    """
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
                        blocks = e.stat(follow_symlinks=False).st_blocks * 512
                    except OSError:
                        blocks = 0
                    total += max(blocks, ENTRY_BYTES)
                    if total > cap:
                        return total
        except OSError:
            continue
    return total


def _read_executed(path: Path, max_bytes: int):
    """The executed notebook Papermill wrote (outside the job folder), if it is within bounds.

    It holds the learner's outputs, each counted against the output cap; the
    size is checked again before it is parsed.
    """
    import nbformat

    from grading.harness import read_bounded

    try:
        return nbformat.reads(read_bounded(path, max_bytes).decode("utf-8"), as_version=4)
    except Exception:  # missing, too large or malformed: it then has no timings to read
        return None


def _cell_seconds(nb) -> float:
    total = 0.0
    for cell in nb.cells:
        pm = cell.get("metadata", {}).get("papermill", {})
        d = pm.get("duration")
        if isinstance(d, int | float):
            total += d
    return total


def message_bound(limits) -> int:
    """The largest kernel message the grader accepts under ``limits``."""
    return min(MAX_MESSAGE_BYTES, int(limits.output_mb * 1e6)) + MESSAGE_HEADROOM_BYTES


def execute_notebook(
    notebook: Path,
    output: Path,
    parameters: dict,
    sandbox: Sandbox,
    cwd: Path,
    env: dict[str, str] | None = None,
    kernel_log: Path | None = None,
    km: SandboxedKernelManager | None = None,
) -> ExecutionResult:
    """Run ``notebook`` in ``sandbox`` with ``parameters``; write the executed copy to ``output``.

    ``km``: a kernel manager whose kernel was started already in ``sandbox`` (with
    :func:`message_bound`), for a cohort that starts the next kernel early.
    ``output`` should be outside the job folder: learner code cannot reach it.
    Never raises for the submission's faults: they are in the result.
    """
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    limits = sandbox.limits
    guard = _Guard(sandbox, int(limits.output_mb * 1e6))
    max_message = message_bound(limits)
    if km is not None:
        guard.km, log_file = km, None
    else:
        guard.km = SandboxedKernelManager(sandbox, env, cwd, max_message=max_message)
        log_file = open(kernel_log, "wb") if kernel_log else None
        guard.km._log_file = log_file
    done = threading.Event()
    disk_cap = limits.disk_mb * 1024 * 1024
    start = time.monotonic()

    too_large = (
        f"the kernel sent a message larger than {max_message / 1e6:g} MB (an output, an error "
        "or a reply), which the grader refuses: print or display less at a time"
    )

    def watchdog():
        dropped_at = None
        while not done.wait(0.25):
            now = time.monotonic()
            if now - start > limits.run_timeout_s:
                guard.stop(f"the whole run took longer than {limits.run_timeout_s:.0f} s")
                return
            if _dir_size(sandbox.job_dir, disk_cap) > disk_cap:
                guard.stop(f"the job folder grew past the {limits.disk_mb} MB disk quota")
                return
            # A dropped connection with the kernel still alive a second later: a message
            # above the cap (a kernel that dies drops its connections too).
            if dropped_at is None and guard.dropped():
                dropped_at = now
            elif dropped_at is not None and now - dropped_at > 1.0:
                if guard.kernel_alive():
                    guard.stop(too_large)
                    return
                dropped_at = None

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
        elif ("IOPub" in str(exc) or "Timeout" in name) and guard.dropped():
            # ZeroMQ refused a message above the cap: it (and the end of the cell) never came.
            result = ExecutionResult("limit", too_large, error_name=name)
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
        guard.unwatch()
        guard.kill()
        guard.release()
        if log_file is not None:
            log_file.close()
    if result.ok and guard.stop_reason:
        result = ExecutionResult("limit", guard.stop_reason)
    result.seconds = time.monotonic() - start
    result.output_bytes = guard.output_bytes
    if nb is None:
        nb = _read_executed(output, guard.output_limit + int(limits.notebook_mb * 1e6))
    if nb is not None:
        result.cell_seconds = _cell_seconds(nb)
    return result
