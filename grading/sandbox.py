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

Secure by default. The modes (:data:`MODES`):

``required`` (the default)
    bubblewrap must work here, else :class:`Sandbox` refuses
    (:class:`~grading.errors.GradingConfigError`) before any learner code runs,
    naming ``sudo apt-get install -y bubblewrap`` and the opt-in below.
    ``auto`` is a legacy alias of ``required``.
``reduced`` (the instructor's explicit opt-in)
    no namespaces, but learner code runs as another user (a uid of its own
    job, dropped with ``setpriv``; no capabilities, no new privileges), with
    the rlimits, the pids cgroup, its own session and a clean environment.
    That needs root: as any other user, learner code would run as the
    grader's own user and could read its files, so the sandbox refuses.
    Usable even where bubblewrap is installed.
``public`` (code only: the learner's self-check on public data)
    bubblewrap where it works, else rlimits only as the same user: there is
    no secret to protect. Still reported as reduced when bubblewrap is missing.

:attr:`Sandbox.isolation` says what protected a run and whether it was
reduced; :meth:`Sandbox.exposes` says whether learner code could read a
secret file. :meth:`Sandbox.kill_all` removes every process the sandbox started.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import stat
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "INSTALL_BWRAP",
    "Limits",
    "MODES",
    "SANDBOX_UID",
    "Sandbox",
    "job_uid",
    "normalize_mode",
]

#: The uid (and gid) learner code runs as when the grader is root and names no other: ``nobody``.
SANDBOX_UID = 65534
#: The grading pipeline gives each job a uid of its own from this range (no account): without
#: namespaces concurrent learners cannot read each other's job folders or signal each other's
#: processes, and ``RLIMIT_NPROC`` (counted per uid) counts one job's processes only.
JOB_UIDS = range(0x7E000000, 0x7F000000)
#: The sandbox modes; ``auto`` (legacy) means ``required``.
MODES = ("required", "reduced", "public")
_ALIASES = {"auto": "required"}
#: How to install bubblewrap on Debian and Ubuntu.
INSTALL_BWRAP = "sudo apt-get install -y bubblewrap"
SETPRIV = "/usr/bin/setpriv"
LAUNCHER = Path(__file__).with_name("launcher.py")
_INSIDE_LAUNCHER = "/opt/fullcycle/launcher.py"
_PROBE_CACHE: dict[str, str | None] = {}
_ETC = ("/etc/ssl", "/etc/alternatives", "/etc/ld.so.cache", "/etc/localtime")


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


def normalize_mode(mode: str) -> str:
    """``mode`` as one of :data:`MODES` (``auto`` is ``required``); a clear error otherwise."""
    mode = _ALIASES.get(mode, mode)
    if mode not in MODES:
        raise ValueError(
            f"sandbox mode {mode!r} is unknown; choose one of {', '.join(MODES)} "
            "(auto is a legacy name of required)"
        )
    return mode


def job_uid() -> int:
    """A fresh uid (no account) for one job's learner code (see :data:`JOB_UIDS`)."""
    import pwd

    while True:
        uid = JOB_UIDS[secrets.randbelow(len(JOB_UIDS))]
        try:
            pwd.getpwuid(uid)
        except KeyError:
            return uid


def _refusal(mode: str, why: str, fix: str) -> Exception:
    from grading.errors import GradingConfigError

    return GradingConfigError(f"grading refused (sandbox: {mode}): {why}. {fix}")


_OPT_IN = (
    "or opt in explicitly to reduced isolation with `sandbox: reduced` in the grading config "
    "(no namespaces; learner code runs as another user, which needs the grader to run as root)"
)


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
    """One job's sandbox; see the module docstring for ``mode``.

    Parameters
    ----------
    job_dir : path
        The only place learner code may write.
    limits : Limits
        The rlimits and quotas of the run.
    mode : {"required", "reduced", "public"}
        How learner code is isolated (``auto`` = ``required``).
    extra_ro : tuple of paths
        More folders mounted read-only under bubblewrap.
    uid : int, optional
        The uid learner code runs as when the grader is root and drops privileges
        (default: :data:`SANDBOX_UID`; the pipeline passes one :func:`job_uid` per job).

    Raises
    ------
    GradingConfigError
        When the mode cannot be honoured here (the message says how to fix it).
    """

    job_dir: Path
    limits: Limits = field(default_factory=Limits)
    mode: str = "required"
    extra_ro: tuple[Path, ...] = ()
    uid: int | None = None

    def __post_init__(self):
        self.job_dir = Path(self.job_dir).resolve()
        self.mode = normalize_mode(self.mode)
        self.is_root = os.geteuid() == 0
        self.reasons: list[str] = []
        self.used = False  # set when a command was wrapped: learner code ran (or was started)
        self.bwrap: str | None = None
        if self.mode in ("required", "public"):
            self._find_bwrap()
        else:
            self._check_reduced()
        #: Learner code runs as another user (root drops to ``self.uid``).
        self.drop = self.is_root and (self.bwrap is not None or self.mode == "reduced")
        if self.drop:
            self.uid = SANDBOX_UID if self.uid is None else int(self.uid)
        else:
            self.uid = os.getuid()
        self.cgroup = self._make_cgroup()
        if self.cgroup is None and self.is_root:
            self.reasons.append(
                "no pids cgroup could be created: the process-count limit does not hold for root"
            )
        if self.drop:
            os.chown(self.job_dir, self.uid, self.uid)
        python = Path(os.path.realpath(sys.executable))
        if self.mode == "reduced" and not self.reaches(python):
            self.reasons.append(
                f"the Python installation ({python.parent}) is not reachable by the sandbox user: "
                "learner code cannot start Python again (multiprocessing and joblib workers "
                "fail); install Python where other users may read it"
            )

    def _find_bwrap(self) -> None:
        found = shutil.which("bwrap")
        if found:
            error = self._bwrap_error(found)
            if error is None:
                self.bwrap = found
                return
            why = f"bubblewrap ({found}) is installed but cannot create namespaces here: {error}"
            fix = (
                "Allow them (run the grader as root, or `sudo sysctl -w "
                "kernel.unprivileged_userns_clone=1`), " + _OPT_IN
            )
        else:
            why = "bubblewrap (bwrap) is not installed"
            fix = f"Install it with `{INSTALL_BWRAP}`, " + _OPT_IN
        if self.mode == "required":
            raise _refusal(
                "required",
                why + ", so learner code would run without namespaces beside the grader's secrets",
                fix,
            )
        self.reasons.append(
            why + ": learner code runs with rlimits only, as the same user, and sees the whole "
            "file system and the network (a self-check on public data: nothing secret to protect)"
        )

    def _check_reduced(self) -> None:
        if not self.is_root:
            raise _refusal(
                "reduced",
                f"reduced isolation runs learner code as another user, which needs root; this "
                f"grader runs as uid {os.getuid()}, so learner code would run as the grader's own "
                "user and could read its files (the grading config with the secret seed, the "
                "holdout)",
                f"Run the grader as root, or install bubblewrap (`{INSTALL_BWRAP}`) and use "
                "`sandbox: required`.",
            )
        if not os.access(SETPRIV, os.X_OK):
            raise _refusal(
                "reduced",
                f"{SETPRIV} is missing, so learner code cannot be started as another user",
                "Install it with `sudo apt-get install -y util-linux`.",
            )
        self.reasons.append(
            "sandbox: reduced (the instructor's opt-in): no namespaces; learner code runs as "
            "another user with rlimits, a clean environment and its own session, but sees the "
            "machine's processes, the network and every file that user may read"
        )

    # ---- facts -----------------------------------------------------------------------
    @property
    def kind(self) -> str:
        return "bubblewrap" if self.bwrap else "rlimits-only"

    @property
    def reduced(self) -> bool:
        """True when anything of the full isolation is missing (see :attr:`reasons`)."""
        return bool(self.reasons)

    @property
    def isolation(self) -> dict:
        """What protected this run, for result.json; ``reduced`` is True when anything is missing."""
        return {
            "mode": self.mode,
            "kind": self.kind,
            "reduced": self.reduced,
            "reasons": list(self.reasons),
            "uid": self.uid,
            "other_user": self.drop,
            "pids_cgroup": str(self.cgroup) if self.cgroup else None,
            "limits": {k: v for k, v in self.limits.__dict__.items() if not k.startswith("_")},
        }

    def _bwrap_error(self, bwrap: str) -> str | None:
        """None when ``bwrap`` creates this sandbox's namespaces here, else why not (cached)."""
        key = f"{bwrap}:{self.is_root}"
        if key not in _PROBE_CACHE:
            import subprocess

            try:
                r = subprocess.run(
                    [bwrap, *self._namespace_args(), "--ro-bind", "/", "/", "true"],
                    capture_output=True,
                    timeout=20,
                )
                err = r.stderr.decode("utf-8", "replace").strip()[:300]
                _PROBE_CACHE[key] = None if r.returncode == 0 else (err or f"exit {r.returncode}")
            except (OSError, subprocess.TimeoutExpired) as exc:
                _PROBE_CACHE[key] = f"{type(exc).__name__}: {exc}"
        return _PROBE_CACHE[key]

    # ---- secrets ---------------------------------------------------------------------
    def _visible_roots(self) -> list[Path]:
        """What bubblewrap mounts inside the sandbox (besides its own /tmp, /dev, /proc)."""
        roots = [Path("/usr"), *_python_roots(), *_library_roots(), *self.extra_ro]
        roots += [Path(p) for p in (*_ETC, "/bin", "/lib", "/lib64", "/sbin") if os.path.exists(p)]
        return [Path(os.path.realpath(r)) for r in roots] + [self.job_dir]

    def exposes(self, path: str | Path) -> str | None:
        """Why learner code in this sandbox could read ``path`` (a secret), or None if it cannot.

        Under bubblewrap a path is exposed when it lies inside a folder the sandbox
        mounts. Without namespaces it is exposed unless only the grader may read
        it: not owned by the sandbox user, no group or other permission bits, no
        ACL. Learner code running as the grader's own user (``public``) can read
        everything the grader can.
        """
        p = Path(os.path.realpath(path))
        if not p.exists():
            return None
        if self.bwrap:
            for root in self._visible_roots():
                if p == root or root in p.parents:
                    return f"{p} is inside {root}, which the sandbox mounts; move it elsewhere"
            return None
        if not self.drop:
            return f"{p} is readable: learner code runs as the grader's own user"
        st = p.stat()
        fix = f"chmod {700 if p.is_dir() else 600} {p}"
        if st.st_uid == self.uid:
            return f"{p} belongs to the sandbox user (uid {self.uid}); give it to the grader's user"
        if st.st_mode & 0o077:
            return (
                f"{p} is open to other users (mode {stat.S_IMODE(st.st_mode):04o}), so learner "
                f"code could read it; run `{fix}`"
            )
        try:
            acl = "system.posix_acl_access" in os.listxattr(p)
        except OSError:
            acl = False
        if acl:
            return f"{p} has an access control list; remove it (`setfacl -b {p}`) and run `{fix}`"
        return None

    def reaches(self, path: str | Path) -> bool:
        """Whether the sandbox user may enter every folder on the way to ``path`` (no namespaces)."""
        if self.bwrap or not self.drop:
            return True
        p = Path(os.path.realpath(path))
        for d in reversed([p, *p.parents]):
            try:
                st = d.stat()
            except OSError:
                return False
            if st.st_uid == self.uid:
                bit = stat.S_IXUSR
            elif st.st_gid == self.uid:
                bit = stat.S_IXGRP
            else:
                bit = stat.S_IXOTH
            if not st.st_mode & bit:
                return False
        return True

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
            "USER": "learner",
            "LOGNAME": "learner",
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
        self.used = True
        (self.job_dir / ".tmp").mkdir(exist_ok=True)
        (self.job_dir / ".cache").mkdir(exist_ok=True)
        for p in (self.job_dir / ".tmp", self.job_dir / ".cache"):
            self.chown_for_sandbox(p)
        outer = [sys.executable, str(LAUNCHER)]
        if self.cgroup:
            outer += ["--cgroup", str(self.cgroup)]
        inner_limits = json.dumps(self.limits.rlimits())
        if not self.bwrap:
            outer += ["--setsid", "1", "--chdir", str(cwd), "--rlimits", inner_limits]
            outer += ["--env", json.dumps(env), "--"]
            if self.drop:
                outer += self._setpriv()
            return [*outer, *command]
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
        for etc in _ETC:
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
        if self.drop:
            args += self._setpriv()
        args += [sys.executable, _INSIDE_LAUNCHER, "--rlimits", inner_limits, "--", *command]
        return [*outer, *args]

    def _setpriv(self) -> list[str]:
        """Become the sandbox user: no groups, no capabilities, no new privileges."""
        return [
            SETPRIV,
            f"--reuid={self.uid}",
            f"--regid={self.uid}",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--no-new-privs",
            "--",
        ]

    def chown_for_sandbox(self, path: Path) -> None:
        """Give a file or folder in the job to the sandbox user (read and write)."""
        if self.drop:
            os.chown(path, self.uid, self.uid, follow_symlinks=False)

    # ---- cleanup ---------------------------------------------------------------------
    def kill_all(self, pids: tuple[int, ...] = (), timeout: float = 5.0) -> int:
        """SIGKILL every process of the sandbox (its cgroup and the given process groups).

        With a uid of the job's own, every process of that uid too (nothing else
        runs as it). Returns how many processes got killed.
        """
        killed = self._kill_job_uid() if self._own_uid else 0
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

    @property
    def _own_uid(self) -> bool:
        """Learner code runs as a uid of this job's own, shared with no one."""
        return self.drop and self.uid in JOB_UIDS

    def _kill_job_uid(self) -> int:
        killed = 0
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            for line in _read(Path(entry.path) / "status").splitlines():
                if line.startswith("Uid:"):
                    if int(line.split()[1]) == self.uid:
                        try:
                            os.kill(int(entry.name), signal.SIGKILL)
                            killed += 1
                        except (ProcessLookupError, PermissionError):
                            pass
                    break
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
