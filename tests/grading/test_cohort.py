"""Cohort grading on a real Dask LocalCluster: mixed submissions, kill -9, resume, one result each.

The toy ranking project keeps each grading to a second or two; the probes of
the service and of monitoring are off here (they have their own tests), so
these tests are about the cohort: parallel jobs, the watched job process,
the store, resume, the report and the gradebook agreeing with the store.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import nbformat
import psutil
import pytest
import ranking

from grading import load_config
from grading.cohort import discover, grade_cohort
from grading.jobproc import JobLimits, marked_processes
from grading.store import open_store

REPO = Path(__file__).resolve().parents[2]
EMPTY: list[str] = []
FAILING = ["raise ValueError('this learner did not finish')\n"]
LOOPING = ["while True:\n    pass\n"]


def _config(ranking_env, tmp_path, **limits):
    _, _, root = ranking_env
    path = tmp_path / "grading.yaml"
    ranking.write_config(
        tmp_path,
        root / "hidden",
        service={"enabled": False},
        monitoring={"enabled": False},
        limits={"cell_timeout_s": 30, "run_timeout_s": 60, **limits},
    ).rename(path)
    return path


def _cohort(folder: Path, plan: dict[str, list[str] | None]) -> Path:
    """Write one learner folder per entry: cells, or None for a submission with a symlink."""
    folder.mkdir(parents=True, exist_ok=True)
    for learner, cells in plan.items():
        kit = ranking.write_kit(
            folder / learner,
            cells=cells if cells is not None else EMPTY,
            service=None,
            monitor=None,
        )
        if cells is None:
            (kit / "escape").symlink_to("/etc/passwd")
    return folder


def _mixed(n_good: int, n_empty: int, n_failing: int, n_loop: int, n_rejected: int) -> dict:
    plan: dict[str, list[str] | None] = {}
    for kind, cells, n in (
        ("good", ranking.GOOD_CELLS, n_good),
        ("empty", EMPTY, n_empty),
        ("failing", FAILING, n_failing),
        ("loop", LOOPING, n_loop),
        ("rejected", None, n_rejected),
    ):
        for i in range(n):
            plan[f"{kind}{i:02d}"] = cells
    return plan


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def _alive(procs) -> list[psutil.Process]:
    """The live ones; multiprocessing's resource tracker ends with its parent, not before."""
    out = []
    for p in procs:
        try:
            tracker = any("resource_tracker" in part for part in p.cmdline())
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE and not tracker:
                out.append(p)
        except psutil.Error:
            continue
    return out


def test_discover_reads_learner_folders_zips_and_the_nbgrader_tree(tmp_path):
    _cohort(tmp_path / "a", {"ann": ranking.GOOD_CELLS, "bob": EMPTY})
    with zipfile.ZipFile(tmp_path / "a" / "cy.zip", "w") as zf:
        zf.writestr("pipeline.ipynb", nbformat.writes(ranking.notebook(ranking.GOOD_CELLS)))
    subs = discover(tmp_path / "a", "ranking")
    assert [s.learner for s in subs] == ["ann", "bob", "cy"]
    assert subs[0].sha256 != subs[1].sha256 and len(subs[2].sha256) == 64

    tree = tmp_path / "course" / "submitted"
    ranking.write_kit(tree / "dee" / "capstone", service=None, monitor=None)
    shutil.copytree(tree / "dee", tree / "eve")
    for student, when in (("dee", "10:00"), ("eve", "11:30")):  # nbgrader's own file differs
        (tree / student / "capstone" / "timestamp.txt").write_text(f"2026-11-25 {when}:00 UTC")
    (tree / "fay" / "week01").mkdir(parents=True)  # did not submit the capstone
    subs = discover(tmp_path / "course", "capstone")
    assert [s.learner for s in subs] == ["dee", "eve"]
    assert subs[0].sha256 == subs[1].sha256  # same bytes, same hash (a copy would show)

    bad = tmp_path / "bad"
    ranking.write_kit(bad / "a,b", service=None, monitor=None)
    with pytest.raises(Exception, match="a,b"):
        discover(bad, "ranking")


def test_a_mixed_cohort_gets_one_result_each_and_nothing_is_left_running(ranking_env, tmp_path):
    spec, _, _ = ranking_env
    cfg = load_config(_config(ranking_env, tmp_path))
    plan = _mixed(n_good=3, n_empty=1, n_failing=1, n_loop=1, n_rejected=1)
    subs = _cohort(tmp_path / "subs", plan)
    out = tmp_path / "out"
    before = set(p.pid for p in _descendants(os.getpid()))
    summary = grade_cohort(
        subs, spec, cfg, out, workers=2, limits=JobLimits(job_timeout_s=25), progress=False
    )
    assert summary.found == summary.graded == len(plan) and summary.skipped == 0
    by = {r["submission"]["learner"]: r for r in summary.current}
    assert set(by) == set(plan)
    for learner, r in by.items():
        base = r["status"].split(":")[0]
        kind = learner.rstrip("0123456789")
        expected = {
            "good": "graded",
            "empty": "invalid_predictions",
            "failing": "notebook_failed",
            "loop": "timeout",
            "rejected": "rejected",
        }[kind]
        assert base == expected, (learner, r["status"], r["messages"])
        if kind == "good":
            assert r["score"]["points"] == r["score"]["max_points"] > 0
        else:
            assert r["score"]["points"] < 0.5 * r["score"]["max_points"]
            assert r["messages"], learner  # every failure says why
        assert (out / "learners" / learner / "result.json").is_file()
        assert (out / "learners" / learner / "feedback.html").is_file()
    assert "took longer than 25 s" in by["loop00"]["messages"][0]
    # the store holds exactly these, and the CSV agrees with it
    rows = open_store(str(cfg.path(cfg.results_store))).rows()
    assert len(rows) == len(plan)
    with open(summary.csv, newline="") as f:
        table = {row["learner"]: row for row in csv.DictReader(f)}
    for r in rows:
        assert float(table[r["learner"]]["points"]) == pytest.approx(r["points"])
    assert summary.report.is_file()
    time.sleep(0.5)
    left = [p for p in _alive(_descendants(os.getpid())) if p.pid not in before]
    assert not left, [p.cmdline() for p in left]
    assert not _alive(marked_processes("fullcycle-job-"))


def _cli(*args, **kw):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "fullcycle.cli", *map(str, args)],
        cwd=kw.pop("cwd", REPO),
        env=env,
        start_new_session=True,
        **kw,
    )


def test_kill_9_halfway_then_resume_grades_each_submission_exactly_once(ranking_env, tmp_path):
    _, _, root = ranking_env
    config = _config(ranking_env, tmp_path, cell_timeout_s=4)
    plan = _mixed(n_good=24, n_empty=6, n_failing=6, n_loop=2, n_rejected=2)
    assert len(plan) >= 40
    subs = _cohort(tmp_path / "subs", plan)
    out = tmp_path / "out"
    store = tmp_path / "results.sqlite"
    project = root / "project" / "project.yaml"
    args = ["grade-cohort", subs, "--project", project, "--config", config, "--out", out]
    args += ["--workers", 2, "--store", store]
    log = open(tmp_path / "first.log", "wb")
    first = _cli(*args, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 240
    rows = 0
    while time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.3)
        if store.is_file():
            try:
                rows = len(open_store(str(store)).rows())
            except Exception:
                rows = 0
            if rows >= 12:
                break
    assert first.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
    tree = _descendants(first.pid)
    assert tree, "the cohort run should have worker processes"
    os.kill(first.pid, signal.SIGKILL)  # a crash, not a shutdown
    first.wait()
    log.close()
    end = time.monotonic() + 30
    while time.monotonic() < end and _alive(tree):
        time.sleep(0.5)
    assert not _alive(tree), [p.cmdline()[:4] for p in _alive(tree)]
    assert not _alive(marked_processes("fullcycle-job-"))
    stored_before = len(open_store(str(store)).rows())
    assert 12 <= stored_before < len(plan)

    second = _cli(*args, "--resume", stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    text = second.communicate(timeout=400)[0].decode()
    assert second.returncode == 0, text[-3000:]
    assert f"{len(plan) - stored_before} graded now" in text, text[-2000:]
    rows = open_store(str(store)).rows()
    keys = [(r["learner"], r["submission_sha256"]) for r in rows]
    assert len(keys) == len(set(keys)) == len(plan)  # none lost, none counted twice
    assert {r["learner"] for r in rows} == set(plan)
    with open(out / "cohort.csv", newline="") as f:
        table = {row["learner"]: row for row in csv.DictReader(f)}
    assert set(table) == set(plan)
    for r in rows:
        assert float(table[r["learner"]]["points"]) == pytest.approx(r["points"])
        assert table[r["learner"]]["status"] == r["status"]
        assert json.loads(r["result_json"])["submission"]["learner"] == r["learner"]

    third = _cli(*args, "--resume", stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    text = third.communicate(timeout=120)[0].decode()
    assert third.returncode == 0 and "0 graded now" in text, text[-2000:]
    assert len(open_store(str(store)).rows()) == len(plan)

    again = _cli(*args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    text = again.communicate(timeout=120)[0].decode()
    assert again.returncode != 0 and "--resume" in text


def test_an_nbgrader_course_on_postgresql_gradebook_and_store_agree(
    ranking_env, tmp_path, postgres_server
):
    from nbgrader.api import Gradebook

    spec, _, _ = ranking_env
    cfg = load_config(_config(ranking_env, tmp_path))
    course = tmp_path / "course"
    course.mkdir()
    (course / "nbgrader_config.py").write_text(
        "c = get_config()\nc.CourseDirectory.course_id = 'capstones'\n"
    )
    plan = {"ann": ranking.GOOD_CELLS, "bob": FAILING, "cy": EMPTY}
    for student, cells in plan.items():
        kit = ranking.write_kit(
            course / "submitted" / student / "capstone", cells=cells, service=None, monitor=None
        )
        (kit / "timestamp.txt").write_text("2026-11-25 12:00:00.000000 UTC")
    url = postgres_server.create_database()
    out = tmp_path / "out"
    summary = grade_cohort(
        course, spec, cfg, out, store=url, assignment="capstone", workers=2, progress=False
    )
    assert summary.graded == 3 and summary.gradebook is not None
    rows = open_store(url).rows()
    assert {r["learner"] for r in rows} == set(plan) and len(rows) == 3
    gb = Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id="capstones")
    try:
        for r in rows:
            sub = gb.find_submission("capstone", r["learner"])
            assert sub.score == pytest.approx(r["points"]), r["learner"]
            assert sub.max_score == pytest.approx(r["max_points"])
    finally:
        gb.close()
    for student in plan:
        assert (course / "feedback" / student / "capstone" / "pipeline.html").is_file()
    # resumed on the same PostgreSQL store: nothing is graded twice
    again = grade_cohort(
        course,
        spec,
        cfg,
        out,
        store=url,
        assignment="capstone",
        workers=1,
        resume=True,
        progress=False,
    )
    assert again.graded == 0 and again.skipped == 3
    assert len(open_store(url).rows()) == 3


def test_an_existing_scheduler_grades_the_cohort(ranking_env, tmp_path):
    import logging

    from distributed import LocalCluster

    spec, _, _ = ranking_env
    cfg = load_config(_config(ranking_env, tmp_path))
    subs = _cohort(tmp_path / "subs", {"ann": ranking.GOOD_CELLS, "bob": FAILING})
    with LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.ERROR,
    ) as cluster:
        summary = grade_cohort(
            subs,
            spec,
            cfg,
            tmp_path / "out",
            scheduler=cluster.scheduler_address,
            progress=False,
        )
        workers = _descendants(os.getpid())  # the worker, its job server and their children
        assert any("grading.jobproc" in " ".join(p.cmdline()) for p in _alive(workers))
    by = {r["submission"]["learner"]: r["status"].split(":")[0] for r in summary.current}
    assert by == {"ann": "graded", "bob": "notebook_failed"}
    end = time.monotonic() + 15
    while time.monotonic() < end and _alive(workers):
        time.sleep(0.3)
    assert not _alive(workers), [p.cmdline()[:3] for p in _alive(workers)]
