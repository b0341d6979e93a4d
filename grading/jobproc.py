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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["JobLimits", "JobProcess", "JobRequest", "stopped_result", "POLL_S"]

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


class JobProcess:
    """A warm grading process: started now, given one job later, then gone."""

    def __init__(self, log_dir: Path | None = None, show_progress: bool = False):
        self.show_progress = show_progress
        self.work_root = Path(tempfile.mkdtemp(prefix="fullcycle-job-"))
        os.chmod(self.work_root, 0o711)
        self.log_path = Path(log_dir or self.work_root) / "jobproc.log"
        fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._log = os.fdopen(fd, "ab")
        env = {**os.environ, "TMPDIR": str(self.work_root)}
        for key in [k for k in env if k.startswith("FULLCYCLE_GRADING")]:
            env.pop(key)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "grading.jobproc"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None if show_progress else self._log,
            start_new_session=True,
            preexec_fn=_die_with_parent,
            env=env,
        )
        self.started = time.monotonic()
        self._ready = False

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
            payload = pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL)
            if not self._ready:
                self._wait_ready(t0 + 120)
            self.proc.stdin.write(len(payload).to_bytes(8, "big") + payload)
            self.proc.stdin.close()
        except (OSError, RuntimeError) as exc:
            status, reason = "grader_error", f"the grading process did not start: {exc}"
        try:
            ps = psutil.Process(self.proc.pid)
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
        import select

        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return False
        line = self.proc.stdout.readline(64)
        if line == _DONE:
            return True
        time.sleep(timeout)  # end of file (the child died) or noise: the loop finds out
        return False

    def _wait_ready(self, deadline: float) -> None:
        import select

        fd = self.proc.stdout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                line = fd.readline()
                if line == _READY:
                    self._ready = True
                    return
                raise RuntimeError(f"unexpected start line {line[:80]!r}")
            if self.proc.poll() is not None:
                raise RuntimeError(f"it exited with code {self.proc.returncode}")
        raise RuntimeError("it was not ready within 120 s")

    def kill(self) -> None:
        """Stop the job process, its group, and every process still naming its folder."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        kill_marked(str(self.work_root))

    def close(self) -> None:
        self.kill()
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError, ValueError, AttributeError):
                stream.close()
        self._log.close()
        shutil.rmtree(self.work_root, ignore_errors=True)


def kill_marked(marker: str, rounds: int = 20) -> int:
    """SIGKILL every process whose command line names ``marker``; how many were killed."""
    import psutil

    killed = 0
    for _ in range(rounds):
        found = []
        for p in psutil.process_iter(["cmdline"]):
            try:
                if any(marker in part for part in (p.info["cmdline"] or [])):
                    found.append(p)
            except psutil.Error:
                continue
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


def _child() -> int:
    # The slow imports happen while the process waits for its job.
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

    out = sys.stdout.buffer
    out.write(_READY)
    out.flush()
    stdin = sys.stdin.buffer
    size = int.from_bytes(stdin.read(8) or b"\0" * 8, "big")
    if size <= 0:
        return 0  # the spare was not needed
    request: JobRequest = pickle.loads(stdin.read(size))
    from grading.pipeline import grade

    holdout = None
    if request.holdout_path is not None and Path(request.holdout_path).is_file():
        with open(request.holdout_path, "rb") as f:
            holdout = pickle.load(f)

    def progress(step, status):
        sys.stderr.write(f"  {step:<18}{status}\n")
        sys.stderr.flush()

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
    )
    out.write(_DONE)
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(_child())
