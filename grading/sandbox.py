"""Run learner processes in a sandbox: bubblewrap namespaces, rlimits, a pids cgroup.

:class:`Sandbox` turns a command into one that runs

* under bubblewrap (when it is installed): every namespace unshared (network
  only has loopback), a read-only root made of the system folders, the Python
  installation and the project's library, the job folder the only writable
  place, a fresh ``/tmp``, a non-root uid, no environment but the one given,
  and death with the grader;
* with rlimits (address space, CPU seconds, file size, open files, processes)
  set by :mod:`grading.launcher` just before the learner's process starts;
* in a pids cgroup when the grader may create one (as root), because the
  kernel does not apply ``RLIMIT_NPROC`` to root.

Where bubblewrap is missing the command still gets the rlimits, the cgroup, a
clean environment and its own session, and :attr:`Sandbox.isolation` says
plainly that isolation was reduced. :meth:`Sandbox.kill_all` removes every
process the sandbox started.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Limits", "Sandbox", "SANDBOX_UID"]

#: The uid (and gid) learner code runs as when the grader is root: ``nobody``.
SANDBOX_UID = 65534
LAUNCHER = Path(__file__).with_name("launcher.py")
_INSIDE_LAUNCHER = "/opt/fullcycle/launcher.py"
_PROBE_CACHE: dict[str, bool] = {}


@dataclass(frozen=True)
class Limits:
    """Resource limits of one graded run. Sizes in MB, times in seconds."""

    cell_timeout_s: float = 600
    run_timeout_s: float = 1800
    memory_mb: int = 8192
    cpu_s: int = 3600
    file_size_mb: int = 512
    open_files: int = 1024
    processes: int = 256
    disk_mb: int = 2048
    output_mb: float = 20
    max_cells: int = 500
    notebook_mb: float = 20

    def rlimits(self) -> dict[str, int]:
        mb = 1024 * 1024
        return {
            "as": self.memory_mb * mb,
            "cpu": int(self.cpu_s),
            "fsize": self.file_size_mb * mb,
            "nofile": self.open_files,
            "nproc": self.processes,
            "core": 0,
        }


def _python_roots() -> list[Path]:
    """Folders the sandboxed Python needs: the venv and the interpreter it points to."""
    roots = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()}
    exe = Path(sys.executable)
    roots.add(exe.resolve().parent.parent)
    return sorted(roots)


def _library_roots() -> list[Path]:
    """The fullcycle package and the project specs beside it (read-only)."""
    import fullcycle

    pkg = Path(fullcycle.__file__).resolve().parent
    roots = [pkg]
    projects = pkg.parent / "projects"
    if projects.is_dir():
        roots.append(projects)
    return roots


@dataclass
class Sandbox:
    """One job's sandbox. ``mode``: ``auto`` (bubblewrap if installed), ``required``, ``off``."""

    job_dir: Path
    limits: Limits = field(default_factory=Limits)
    mode: str = "auto"
    extra_ro: tuple[Path, ...] = ()

    def __post_init__(self):
        self.job_dir = Path(self.job_dir).resolve()
        self.bwrap = shutil.which("bwrap") if self.mode != "off" else None
        self.is_root = os.geteuid() == 0
        self.reasons: list[str] = []
        if self.mode == "required" and not self.bwrap:
            from grading.errors import GradingConfigError

            raise GradingConfigError(
                "sandbox: required but bubblewrap (bwrap) is not installed; "
                "install the Debian package 'bubblewrap' or set sandbox: auto"
            )
        if not self.bwrap:
            self.reasons.append(
                "bubblewrap is not installed: learner code runs with rlimits only, "
                "sees the whole file system and the network"
            )
        elif self.bwrap and not self._bwrap_works():
            self.reasons.append(
                "bubblewrap is installed but cannot create namespaces here: rlimits only"
            )
            self.bwrap = None
        self.cgroup = self._make_cgroup()
        if self.cgroup is None:
            if self.is_root:
                self.reasons.append(
                    "no pids cgroup could be created: the process-count limit does not hold for root"
                )
        self.uid = SANDBOX_UID if (self.bwrap and self.is_root) else os.getuid()
        if self.bwrap and self.is_root:
            os.chown(self.job_dir, self.uid, self.uid)

    # ---- facts -----------------------------------------------------------------------
    @property
    def kind(self) -> str:
        return "bubblewrap" if self.bwrap else "rlimits-only"

    @property
    def isolation(self) -> dict:
        """What protected this run, for result.json; ``reduced`` is True when anything is missing."""
        return {
            "kind": self.kind,
            "reduced": bool(self.reasons),
            "reasons": list(self.reasons),
            "uid": self.uid,
            "pids_cgroup": str(self.cgroup) if self.cgroup else None,
            "limits": {k: v for k, v in self.limits.__dict__.items() if not k.startswith("_")},
        }

    def _bwrap_works(self) -> bool:
        key = self.bwrap
        if key not in _PROBE_CACHE:
            import subprocess

            try:
                r = subprocess.run(
                    [self.bwrap, *self._namespace_args(), "--ro-bind", "/", "/", "true"],
                    capture_output=True,
                    timeout=20,
                )
                _PROBE_CACHE[key] = r.returncode == 0
            except (OSError, subprocess.TimeoutExpired):
                _PROBE_CACHE[key] = False
        return _PROBE_CACHE[key]

    def _namespace_args(self) -> list[str]:
        args = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts"]
        args += ["--unshare-cgroup-try"]
        if not self.is_root:
            args += ["--unshare-user"]
        return args

    # ---- cgroup ----------------------------------------------------------------------
    def _make_cgroup(self) -> Path | None:
        if not self.is_root:
            return None
        for base in (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup")):
            if not (base / "cgroup.procs").exists():
                continue
            if base == Path("/sys/fs/cgroup") and "pids" not in _read(base / "cgroup.controllers"):
                continue
            try:
                parent = base / "fullcycle-grading"
                parent.mkdir(exist_ok=True)
                if base == Path("/sys/fs/cgroup"):
                    (base / "cgroup.subtree_control").write_text("+pids")
                    (parent / "cgroup.subtree_control").write_text("+pids")
                path = parent / uuid.uuid4().hex[:12]
                path.mkdir()
                (path / "pids.max").write_text(str(self.limits.processes))
                return path
            except OSError:
                continue
        return None

    # ---- commands --------------------------------------------------------------------
    def base_env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The whole environment learner code sees: nothing of the grader's."""
        home = str(self.job_dir)
        env = {
            "HOME": home,
            "PATH": f"{Path(sys.prefix) / 'bin'}:/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "TMPDIR": "/tmp" if self.bwrap else str(self.job_dir / ".tmp"),
            "MPLBACKEND": "Agg",
            "MPLCONFIGDIR": str(self.job_dir / ".cache" / "matplotlib"),
            "XDG_CACHE_HOME": str(self.job_dir / ".cache"),
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "DO_NOT_TRACK": "true",
            "JUPYTER_PLATFORM_DIRS": "1",
        }
        env.update(extra or {})
        return env

    def wrap(
        self, command: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> list[str]:
        """``command`` as it must be started: launcher, sandbox, limits, then the command.

        ``cwd`` (default: the job folder) must be inside the job folder.
        """
        cwd = Path(cwd or self.job_dir).resolve()
        if cwd != self.job_dir and self.job_dir not in cwd.parents:
            raise ValueError(f"{cwd} is outside the job folder {self.job_dir}")
        env = self.base_env(env)
        (self.job_dir / ".tmp").mkdir(exist_ok=True)
        (self.job_dir / ".cache").mkdir(exist_ok=True)
        if self.bwrap and self.is_root:
            for p in (self.job_dir / ".tmp", self.job_dir / ".cache"):
                os.chown(p, self.uid, self.uid)
        outer = [sys.executable, str(LAUNCHER)]
        if self.cgroup:
            outer += ["--cgroup", str(self.cgroup)]
        inner_limits = json.dumps(self.limits.rlimits())
        if not self.bwrap:
            outer += ["--setsid", "1", "--rlimits", inner_limits, "--env", json.dumps(env)]
            return [*outer, "--", *command]
        outer += ["--env", json.dumps({"PATH": "/usr/bin:/bin"}), "--"]
        args = [self.bwrap, *self._namespace_args(), "--die-with-parent", "--new-session"]
        args += ["--clearenv"]
        for key, value in env.items():
            args += ["--setenv", key, value]
        args += ["--ro-bind", "/usr", "/usr"]
        for name in ("bin", "lib", "lib64", "sbin"):
            p = Path("/") / name
            if p.is_symlink():
                args += ["--symlink", os.readlink(p), f"/{name}"]
            elif p.is_dir():
                args += ["--ro-bind", str(p), f"/{name}"]
        for etc in ("/etc/ssl", "/etc/alternatives", "/etc/ld.so.cache", "/etc/localtime"):
            if os.path.exists(etc):
                args += ["--ro-bind", etc, etc]
        args += ["--proc", "/proc", "--dev", "/dev"]
        # The private /tmp and /dev/shm live in memory: cap each at the job's disk quota, so
        # that no submission can fill the machine's RAM through them.
        tmp_size = str(self.limits.disk_mb * 1024 * 1024)
        for where in ("/dev/shm", "/tmp"):
            args += ["--perms", "1777", "--size", tmp_size, "--tmpfs", where]
        binds = [(p, "ro") for p in (*_python_roots(), *_library_roots(), *self.extra_ro)]
        made: set[str] = {"/", "/usr", "/tmp", "/dev", "/proc", "/opt"}
        for path, _ in binds + [(self.job_dir, "rw")]:
            for parent in reversed(path.parents):
                s = str(parent)
                if s not in made and not s.startswith("/usr"):
                    args += ["--perms", "0755", "--dir", s]
                    made.add(s)
        for path, _ in binds:
            if str(path).startswith("/usr/"):
                continue
            args += ["--ro-bind", str(path), str(path)]
        args += ["--perms", "0755", "--dir", "/opt/fullcycle"]
        args += ["--ro-bind", str(LAUNCHER), _INSIDE_LAUNCHER]
        args += ["--bind", str(self.job_dir), str(self.job_dir), "--chdir", str(cwd)]
        args += ["--"]
        if self.is_root:
            args += [
                "/usr/bin/setpriv",
                f"--reuid={self.uid}",
                f"--regid={self.uid}",
                "--clear-groups",
                "--inh-caps=-all",
                "--bounding-set=-all",
                "--no-new-privs",
                "--",
            ]
        args += [sys.executable, _INSIDE_LAUNCHER, "--rlimits", inner_limits, "--", *command]
        return [*outer, *args]

    def chown_for_sandbox(self, path: Path) -> None:
        """Give a file or folder in the job to the sandbox user (read and write)."""
        if self.bwrap and self.is_root:
            os.chown(path, self.uid, self.uid)

    # ---- cleanup ---------------------------------------------------------------------
    def kill_all(self, pids: tuple[int, ...] = (), timeout: float = 5.0) -> int:
        """SIGKILL every process of the sandbox (its cgroup and the given process groups).

        Returns how many processes were still alive and got killed.
        """
        killed = 0
        for pid in pids:
            for fn, arg in ((os.killpg, pid), (os.kill, pid)):
                try:
                    fn(arg, signal.SIGKILL)
                    killed += 1
                    break
                except (ProcessLookupError, PermissionError, OSError):
                    continue
        if self.cgroup:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                procs = [int(p) for p in _read(self.cgroup / "cgroup.procs").split()]
                if not procs:
                    break
                for p in procs:
                    try:
                        os.kill(p, signal.SIGKILL)
                        killed += 1
                    except ProcessLookupError:
                        pass
                time.sleep(0.05)
        return killed

    def alive(self) -> list[int]:
        """Pids still in the sandbox's cgroup (empty without a cgroup)."""
        if not self.cgroup:
            return []
        return [int(p) for p in _read(self.cgroup / "cgroup.procs").split()]

    def close(self) -> None:
        """Kill what is left and remove the cgroup."""
        self.kill_all()
        if self.cgroup:
            for _ in range(50):
                try:
                    self.cgroup.rmdir()
                    break
                except OSError:
                    time.sleep(0.05)
            self.cgroup = None


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""
