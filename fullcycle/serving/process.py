"""Run a service as a real process: a free loopback port, a readiness deadline, nothing left behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from fullcycle.exceptions import ConfigError

__all__ = ["ServiceProcess", "free_port", "kit_service_command", "serve_command"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class ServiceProcess:
    """A server started in its own process group, waited for, and stopped with its whole tree.

    Parameters
    ----------
    args : list of str
        The command (e.g. ``[sys.executable, "-m", "fullcycle", "serve", ...]``).
    url : str
        Base URL; ``<url>/health`` must answer 200 once the server is ready.
    log_path : path, optional
        Where the server's stdout and stderr go (shown in errors).
    env : dict, optional
        Extra environment variables.
    """

    def __init__(self, args, url: str, log_path=None, env=None, cwd=None):
        self.args, self.url = list(args), url.rstrip("/")
        self.log_path = Path(log_path) if log_path else None
        self.env = {**os.environ, **(env or {})}
        # MLflow writes the last tracking URI it was given into os.environ; a server must
        # find its own workspace's store, not inherit the parent's last one.
        from fullcycle import tracking

        if tracking.exported_by_us(self.env.get("MLFLOW_TRACKING_URI")) and not (
            env and "MLFLOW_TRACKING_URI" in env
        ):
            self.env.pop("MLFLOW_TRACKING_URI", None)
        self.cwd = cwd
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 120.0) -> ServiceProcess:
        """Start the server and wait until it answers; a running one is left as it is."""
        if self.proc is not None and self.proc.poll() is None:
            return self
        out = open(self.log_path, "wb") if self.log_path else subprocess.DEVNULL
        try:
            self.proc = subprocess.Popen(
                self.args,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,  # its own process group: stop() takes the whole tree
            )
        finally:
            if out is not subprocess.DEVNULL:
                out.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ConfigError(
                    f"the service exited with code {self.proc.returncode} before it was ready"
                    + self._tail()
                )
            try:
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise ConfigError(f"the service was not ready within {timeout:.0f} s" + self._tail())

    def _tail(self) -> str:
        if self.log_path and self.log_path.is_file():
            lines = self.log_path.read_text(errors="replace").strip().splitlines()[-8:]
            return "; its last output:\n  " + "\n  ".join(lines)
        return ""

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM the process group, SIGKILL it after ``timeout``; returns the exit code."""
        if self.proc is None:
            return None
        pgid = self.proc.pid
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        # Children that outlived the leader (same group) go too.
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return self.proc.returncode

    def __enter__(self) -> ServiceProcess:
        return self.start()  # a no-op after ``with process.start(...)``

    def __exit__(self, *exc) -> None:
        self.stop()


def kit_service_command(
    kit_dir,
    app: str = "service:create_app",
    *,
    port: int | None = None,
    uds=None,
    host: str = "127.0.0.1",
    quiet: bool = True,
) -> list[str]:
    """The uvicorn command line serving a kit's app factory, as a learner runs it.

    ``app`` is ``module:function`` in ``kit_dir`` (uvicorn's ``--app-dir``: the
    kit's modules import each other by plain name). It listens on
    ``host:port``, or on the Unix socket ``uds`` when given; ``quiet`` logs
    warnings only and no access lines.
    """
    cmd = [sys.executable, "-m", "uvicorn", "--factory", app, "--app-dir", str(kit_dir)]
    if uds is not None:
        cmd += ["--uds", str(uds)]
    elif port is not None:
        cmd += ["--host", host, "--port", str(port)]
    else:
        raise ValueError("kit_service_command needs a port or a Unix socket (uds)")
    if quiet:
        cmd += ["--log-level", "warning", "--no-access-log"]
    return cmd


def serve_command(project: str, workspace, port: int, host: str = "127.0.0.1", *extra) -> list[str]:
    """The ``fullcycle serve`` command line for this interpreter."""
    return [
        sys.executable,
        "-m",
        "fullcycle",
        "serve",
        "--project",
        project,
        "--workspace",
        str(workspace),
        "--host",
        host,
        "--port",
        str(port),
        *extra,
    ]
