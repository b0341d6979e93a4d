"""One grading job in its own process, watched from outside: a deadline and a memory bound.

The trusted grader is itself guarded. :class:`JobProcess` starts a child
Python process (``python -m grading.jobproc``) that imports the grader and
waits, so a cohort can start the next job's process while the current one is
graded. The job arrives as a pickle on the child's standard input — the
secret seed never appears on a command line or in an environment — and the
child runs :func:`grading.pipeline.grade` with the same steps as
``fullcycle grade``.

The watcher (:meth:`JobProcess.run`) holds two bounds, whatever a submission
makes the grader do:

* a wall-clock deadline on the whole job (``job_timeout_s``);
* a memory bound on the grading process (``grader_memory_mb`` of resident
  memory, sampled every :data:`POLL_S` seconds). Learner processes are not
  counted: they run in their sandbox under their own limits.

Past either bound the child's process group and every process still naming
the job's folder are killed, and the job ends as a recorded result with
status ``timeout`` or ``grader_limit`` and the reason. A child that dies on
its own ends as ``grader_error``. The child also dies with its parent
(``PR_SET_PDEATHSIG``), so a killed cohort leaves no grader behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

__all__ = [
    "JobLimits",
    "JobProcess",
    "JobRequest",
    "JobServer",
    "POLL_S",
    "kill_marked",
    "marked_processes",
    "stopped_result",
]

#: How often the watcher samples the grading process's memory and clock.
POLL_S = 0.1
#: The largest result.json the watcher reads back from a job's folder.
MAX_RESULT_BYTES = 20_000_000
_READY = b"ready\n"
_DONE = b"done\n"


@dataclass(frozen=True)
class JobLimits:
    """Bounds of one grading job, enforced from outside its process."""

    job_timeout_s: float = 3600.0
    grader_memory_mb: int = 4096

    @classmethod
    def from_config(cls, config) -> JobLimits:
        """The bounds a grading config sets (``limits.job_timeout_s``, ``grader_memory_mb``)."""
        lim = config.limits
        return cls(
            job_timeout_s=float(getattr(lim, "job_timeout_s", cls.job_timeout_s)),
            grader_memory_mb=int(getattr(lim, "grader_memory_mb", cls.grader_memory_mb)),
        )


@dataclass
class JobRequest:
    """What a job process needs; sent as a pickle over a pipe, never on a command line."""

    submission: Path
    spec: object
    config: object
    out_dir: Path
    learner: str | None = None
    assignment: str | None = None
    holdout_path: Path | None = None  # a private pickle of the hidden world, built once
    sha256: str = ""
    extra: dict = field(default_factory=dict)


def _die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when its parent exits (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class JobServer:
    """A warm template process: imports the grader once, then forks one process per job.

    Forking from it costs milliseconds where a fresh interpreter costs seconds
    of imports; each job still gets a process of its own, a copy of a template
    that never graded anything. The template dies with its parent; each forked
    job dies with the template.
    """

    def __init__(self, show_progress: bool = False):
        self.root = Path(tempfile.mkdtemp(prefix="fullcycle-jobs-"))
        os.chmod(self.root, 0o711)
        fd = os.open(self.root / "server.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._log = os.fdopen(fd, "ab")
        env = {k: v for k, v in os.environ.items() if not k.startswith("FULLCYCLE_GRADING")}
        # one thread per library: forking a process that holds thread pools is not safe
        env.update({k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "grading.jobproc", "--server"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None if show_progress else self._log,
            start_new_session=True,
            preexec_fn=_die_with_parent,
            env=env,
        )
        self._ready = False

    def alive(self) -> bool:
        return self.proc.poll() is None

    def fork(self, folder: Path, deadline: float) -> int:
        """A new job process that will talk through the FIFOs in ``folder``; its pid."""
        if not self._ready:
            _expect(self.proc, _READY, deadline)
            self._ready = True
        self.proc.stdin.write(f"{folder}\n".encode())
        self.proc.stdin.flush()
        line = _expect(self.proc, None, deadline)
        try:
            return int(line)
        except ValueError:
            raise RuntimeError(f"the job server answered {line[:80]!r}") from None

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError, ValueError):
                stream.close()
        self._log.close()
        kill_marked(str(self.root))
        shutil.rmtree(self.root, ignore_errors=True)


def readable(fileobj, timeout: float) -> bool:
    """Whether ``fileobj`` has data or an end of file within ``timeout`` seconds.

    ``poll()``, not ``select()``: select refuses a descriptor numbered 1024 or more, which a
    long-lived grader process reaches (``ValueError: filedescriptor out of range``).
    """
    import select

    watch = select.poll()
    watch.register(fileobj, select.POLLIN | select.POLLPRI | select.POLLHUP | select.POLLERR)
    return bool(watch.poll(max(timeout, 0.0) * 1000))


def _expect(proc, want: bytes | None, deadline: float) -> bytes:
    """The next line ``proc`` writes (it must be ``want`` when given), before ``deadline``."""
    while time.monotonic() < deadline:
        if readable(proc.stdout, 0.2):
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(f"it ended (code {proc.poll()})")
            if want is not None and line != want:
                raise RuntimeError(f"unexpected line {line[:80]!r}")
            return line
        if proc.poll() is not None:
            raise RuntimeError(f"it exited with code {proc.returncode}")
    raise RuntimeError("it did not answer in time")


class _Forked:
    """A forked job process, seen through the FIFOs of its folder (Popen's few methods)."""

    def __init__(self, pid: int, folder: Path, deadline: float):
        self.pid = pid
        self.returncode = None
        self.stdin = self.stdout = None
        in_path, out_path = folder / "in", folder / "out"
        while True:  # the job opens "in" for reading first; never block on a dead job
            try:
                fd = os.open(in_path, os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError:
                if self.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the job process did not open its pipe") from None
                time.sleep(0.005)
        os.set_blocking(fd, True)
        self.stdin = os.fdopen(fd, "wb")
        self.stdout = os.fdopen(os.open(out_path, os.O_RDONLY | os.O_NONBLOCK), "rb")
        os.set_blocking(self.stdout.fileno(), True)

    def poll(self):
        if self.returncode is None:
            try:
                import psutil

                if psutil.Process(self.pid).status() == psutil.STATUS_ZOMBIE:
                    self.returncode = -1
            except Exception:
                self.returncode = 0  # gone (the template reaps its children)
        return self.returncode

    def wait(self, timeout: float) -> None:
        end = time.monotonic() + timeout
        while self.poll() is None:
            if time.monotonic() > end:
                raise subprocess.TimeoutExpired("job", timeout)
            time.sleep(0.01)

    def kill(self) -> None:
        for fn in (os.killpg, os.kill):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                fn(self.pid, signal.SIGKILL)


class JobProcess:
    """One job's process, forked from a :class:`JobServer` (its own one when none is given)."""

    def __init__(
        self,
        server: JobServer | None = None,
        show_progress: bool = False,
        prepare: tuple | None = None,
    ):
        """``prepare=(config, spec)``: fork now and start the job's sandbox and kernel at once."""
        self._own = server is None
        self.server = server or JobServer(show_progress=show_progress)
        self.work_root = self.server.root / uuid.uuid4().hex[:12]
        self.work_root.mkdir(mode=0o711)
        os.chmod(self.work_root, 0o711)
        for name in ("in", "out"):
            os.mkfifo(self.work_root / name, 0o600)
        self.started = time.monotonic()
        self.proc: _Forked | None = None
        self.prepared = prepare
        if prepare is not None:
            self._start(time.monotonic() + 180, prepare)

    def _start(self, deadline: float, prepare=None) -> None:
        pid = self.server.fork(self.work_root, deadline)
        self.proc = _Forked(pid, self.work_root, deadline)
        _send(self.proc.stdin, prepare)

    # ---- the watcher ---------------------------------------------------------------
    def run(self, request: JobRequest, limits: JobLimits) -> dict:
        """Send ``request``, watch the job, and return its result (always a dict)."""
        import psutil

        out_dir = Path(request.out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        reason = status = None
        peak = 0
        try:
            if self.proc is None:
                self._start(t0 + 180)
            _send(self.proc.stdin, request)
            self.proc.stdin.close()
        except (OSError, RuntimeError) as exc:
            status, reason = "grader_error", f"the grading process did not start: {exc}"
        try:
            ps = psutil.Process(self.proc.pid) if self.proc is not None else None
        except psutil.Error:
            ps = None
        bound = limits.grader_memory_mb * 1024 * 1024
        done = False
        while status is None and not done:
            if self.proc.poll() is not None:
                break
            try:
                rss = ps.memory_info().rss if ps is not None else 0
            except psutil.Error:
                rss = 0
            peak = max(peak, rss)
            if rss > bound:
                status = "grader_limit"
                reason = (
                    f"grading this submission made the grader use more than "
                    f"{limits.grader_memory_mb} MB of memory; it was stopped"
                )
            elif time.monotonic() - t0 > limits.job_timeout_s:
                status = "timeout"
                reason = (
                    f"grading this submission took longer than {limits.job_timeout_s:.0f} s "
                    "in total; it was stopped"
                )
            else:
                done = self._wait_done(POLL_S)
        if status is None and not done:
            done = self._wait_done(0)  # it may have said so just before it ended
        if done:  # the result is written; the process need not finish its own exit
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=2)
        self.kill()
        seconds = round(time.monotonic() - t0, 3)
        result = None
        if status is None:
            result = _read_result(out_dir / "result.json")
            if result is None or not done:
                status = "grader_error"
                reason = (
                    f"the grading process ended with code {self.proc.returncode} "
                    "without a result; see its log"
                )
                result = None
        if result is None:
            result = stopped_result(request, status, reason)
            _write_stopped_reports(result, out_dir)
        result.setdefault("job", {})
        result["job"].update({"seconds": seconds, "grader_peak_rss_mb": round(peak / 2**20, 1)})
        return result

    def _wait_done(self, timeout: float) -> bool:
        """Whether the child said it is done within ``timeout`` seconds."""
        if not readable(self.proc.stdout, timeout):
            return False
        line = self.proc.stdout.readline(64)
        if line == _DONE:
            return True
        time.sleep(timeout)  # end of file (the child died) or noise: the loop finds out
        return False

    def kill(self) -> None:
        """Stop the job process, its group, and every process still naming its folder."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
        kill_marked(str(self.work_root))

    def close(self) -> None:
        self.kill()
        if self.proc is not None:
            for stream in (self.proc.stdin, self.proc.stdout):
                with contextlib.suppress(OSError, ValueError, AttributeError):
                    stream.close()
        shutil.rmtree(self.work_root, ignore_errors=True)
        if self._own:
            self.server.close()


def _send(stream, obj) -> None:
    """One length-prefixed pickle on ``stream``."""
    payload = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(len(payload).to_bytes(8, "big") + payload)
    stream.flush()


def _receive(stream):
    size = int.from_bytes(stream.read(8) or b"\0" * 8, "big")
    return pickle.loads(stream.read(size)) if size > 0 else None


def marked_processes(marker: str) -> list:
    """Live processes whose command line names ``marker`` (a job's folder marks all of its own)."""
    import psutil

    found = []
    for p in psutil.process_iter(["cmdline", "status"]):
        try:
            if p.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if any(marker in part for part in (p.info["cmdline"] or [])):
                found.append(p)
        except psutil.Error:
            continue
    return found


def kill_marked(marker: str, rounds: int = 20) -> int:
    """SIGKILL every process whose command line names ``marker``; how many were killed."""
    import psutil

    killed = 0
    for _ in range(rounds):
        found = marked_processes(marker)
        if not found:
            break
        for p in found:
            with contextlib.suppress(psutil.Error):
                p.kill()
                killed += 1
        psutil.wait_procs(found, timeout=1)
    return killed


def _read_result(path: Path) -> dict | None:
    try:
        if not path.is_file() or path.stat().st_size > MAX_RESULT_BYTES:
            return None
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def stopped_result(request: JobRequest, status: str, reason: str) -> dict:
    """The recorded result of a job the watcher had to stop: every check lost, with the reason."""
    from grading.pipeline import RESULT_SCHEMA
    from grading.rubric import apply_rubric

    spec = request.spec
    lines = apply_rubric(spec.rubric, {}, {"": reason}, {})
    name = Path(request.submission).name
    return {
        "schema": RESULT_SCHEMA,
        "project": spec.name,
        "graded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "status": status,
        "messages": [reason],
        "score": {
            "points": 0.0,
            "max_points": round(sum(line["max_points"] for line in lines), 4),
        },
        "rubric": lines,
        "metrics": {},
        "execution": None,
        "validation": None,
        "service": None,
        "monitoring": None,
        "stages": {},
        "reference": None,
        "isolation": None,
        "provenance": {"submission": {"name": name, "sha256": request.sha256}},
        "submission": {
            "name": name,
            "sha256": request.sha256,
            "learner": request.learner,
            "assignment": request.assignment,
        },
    }


def _write_stopped_reports(result: dict, out_dir: Path) -> None:
    from grading.report import write_result_reports

    write_result_reports(result, out_dir)


# ---- the child ------------------------------------------------------------------------


def _warm_imports() -> None:
    """The slow imports, done once in the template before any job."""
    import httpx
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot
    import pandas
    import sklearn.metrics

    import fullcycle.evaluate
    import grading.execute
    import grading.pipeline
    import grading.probes
    import grading.report
    import grading.stages

    del httpx, matplotlib, pandas, sklearn, fullcycle, grading


def _serve() -> int:
    """The template: fork a job process for each folder named on standard input."""
    _warm_imports()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # forked jobs are reaped by the kernel
    out = sys.stdout.buffer
    out.write(_READY)
    out.flush()
    for line in sys.stdin.buffer:
        folder = line.decode().strip()
        if not folder:
            break
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = _job(Path(folder))
            except BaseException:
                import traceback

                traceback.print_exc()
            finally:
                os._exit(code)
        out.write(f"{pid}\n".encode())
        out.flush()
    return 0


def _job(folder: Path) -> int:
    """One forked job: its own session, its FIFOs, its temporary folder; grade, say done."""
    os.setsid()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    _die_with_parent()
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)  # nothing of the template's pipes stays open here
    tmp = folder / "tmp"
    tmp.mkdir(mode=0o711)
    os.chmod(tmp, 0o711)
    os.environ["TMPDIR"] = str(tmp)
    tempfile.tempdir = str(tmp)
    with open(folder / "in", "rb") as stdin, open(folder / "out", "wb") as out:
        prepared = _receive(stdin)
        warm = None
        if prepared is not None:
            from grading.pipeline import prestart

            warm = prestart(*prepared)  # the kernel starts while the job is not here yet
        request: JobRequest | None = _receive(stdin)
        if request is None:
            return 0
        if warm is not None and prepared != (request.config, request.spec):
            warm = None  # prepared for another grading: start afresh (its processes die with us)
        _grade(request, warm)
        out.write(_DONE)
        out.flush()
    return 0


def _grade(request: JobRequest, warm=None) -> None:
    from grading.pipeline import grade

    def progress(step, status):
        sys.stderr.write(f"  {step:<18}{status}\n")
        sys.stderr.flush()

    holdout = None
    if request.holdout_path is not None and Path(request.holdout_path).is_file():
        with open(request.holdout_path, "rb") as f:
            holdout = pickle.load(f)
    grade(
        request.submission,
        request.spec,
        request.config,
        request.out_dir,
        progress=progress if request.extra.get("progress") else None,
        keep_work=bool(request.extra.get("keep_work")),
        learner=request.learner,
        assignment=request.assignment,
        store=False,
        holdout=holdout,
        warm=warm,
    )


if __name__ == "__main__":
    sys.exit(_serve() if "--server" in sys.argv else 2)
