"""The watched job process: memory bound, deadline, secrets only through a pipe, dies with its parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
import ranking

from grading import load_config
from grading.jobproc import JobLimits, JobProcess, JobRequest


def _request(ranking_env, tmp_path, cells=None):
    spec, config_path, _ = ranking_env
    cfg = load_config(config_path)
    cfg = cfg.model_copy(
        update={
            "service": cfg.service.model_copy(update={"enabled": False}),
            "monitoring": cfg.monitoring.model_copy(update={"enabled": False}),
        }
    )
    kit = ranking.write_kit(tmp_path / "kit", cells=cells, service=None, monitor=None)
    return JobRequest(kit, spec, cfg, tmp_path / "out", learner="ann", assignment="ranking"), cfg


def test_a_job_is_graded_in_its_own_process(ranking_env, tmp_path):
    request, _ = _request(ranking_env, tmp_path)
    job = JobProcess()
    try:
        result = job.run(request, JobLimits(job_timeout_s=120))
    finally:
        job.close()
    assert result["status"] == "graded", result["messages"]
    assert result["submission"]["learner"] == "ann"
    assert 0 < result["job"]["grader_peak_rss_mb"] < 4096
    assert (tmp_path / "out" / "feedback.html").is_file()


def test_past_the_memory_bound_the_job_is_stopped_and_recorded(ranking_env, tmp_path):
    request, _ = _request(ranking_env, tmp_path)
    job = JobProcess()
    try:
        # 64 MB: the grader itself passes it as soon as it loads its libraries
        result = job.run(request, JobLimits(job_timeout_s=120, grader_memory_mb=64))
        pid = job.proc.pid
    finally:
        job.close()
    assert result["status"] == "grader_limit"
    assert "more than 64 MB" in result["messages"][0]
    assert result["score"]["points"] == 0 and result["score"]["max_points"] > 0
    assert all("not measured" in line["feedback"] for line in result["rubric"])
    assert (tmp_path / "out" / "result.json").is_file()
    assert (tmp_path / "out" / "feedback.md").is_file()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_past_the_deadline_the_job_is_stopped_and_nothing_is_left(ranking_env, tmp_path):
    request, _ = _request(ranking_env, tmp_path, cells=["while True:\n    pass\n"])
    job = JobProcess()
    marker = str(job.work_root)
    try:
        t = time.monotonic()
        result = job.run(request, JobLimits(job_timeout_s=6))
        took = time.monotonic() - t
    finally:
        job.close()
    assert result["status"] == "timeout" and "longer than 6 s" in result["messages"][0]
    assert took < 20
    left = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if any(marker in part for part in (p.info["cmdline"] or [])):
                left.append(p.info["cmdline"])
        except psutil.Error:
            continue
    assert not left


def test_the_secret_reaches_the_job_through_a_pipe_only(ranking_env, tmp_path):
    _, config_path, _ = ranking_env
    request, cfg = _request(ranking_env, tmp_path)
    job = JobProcess()
    try:
        p = psutil.Process(job.server.proc.pid)  # the template every job is forked from
        seen = " ".join(p.cmdline()) + " ".join(f"{k}={v}" for k, v in p.environ().items())
        assert cfg.secret_seed not in seen and str(config_path) not in seen
        result = job.run(request, JobLimits(job_timeout_s=120))
        assert cfg.secret_seed not in str(result)
    finally:
        job.close()


DIES = """
import sys, time
from grading.jobproc import JobProcess
job = JobProcess()
job._start(time.monotonic() + 120)
print(job.server.proc.pid, job.proc.pid, flush=True)
time.sleep(600)
"""


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_the_job_server_and_its_jobs_die_with_their_parent(tmp_path):
    parent = subprocess.Popen(
        [sys.executable, "-c", DIES], stdout=subprocess.PIPE, start_new_session=True
    )
    try:
        server, job = map(int, parent.stdout.readline().split())
        assert psutil.pid_exists(server) and psutil.pid_exists(job)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        end = time.monotonic() + 10
        while time.monotonic() < end and not (_gone(server) and _gone(job)):
            time.sleep(0.1)
        if not (_gone(server) and _gone(job)):
            pytest.fail("the job server or its job outlived the parent")
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        parent.stdout.close()


def test_readable_takes_a_descriptor_numbered_above_1023():
    """A long-lived grader holds many descriptors; select() refuses any numbered 1024 or more
    (the recommender's fair-bars run lost its service lines to it after 18 gradings)."""
    import os
    import select

    from grading.jobproc import readable

    held = []
    try:
        while True:  # push the next descriptor numbers past select()'s limit
            held.append(os.open(os.devnull, os.O_RDONLY))
            if held[-1] > 1030:
                break
        r, w = os.pipe()
        held += [r, w]
        assert r > 1023
        with pytest.raises(ValueError, match="filedescriptor out of range"):
            select.select([r], [], [], 0)
        assert readable(r, 0) is False
        os.write(w, b"x")
        assert readable(r, 1.0) is True
    finally:
        for fd in held:
            os.close(fd)
