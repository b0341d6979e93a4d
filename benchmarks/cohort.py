"""Cohort grading speed: 40 trivial submissions, warm overhead, 2 workers against 1, nbgrader.

Each submission of the tiny ranking fixture reads the scoring rows and writes
a constant score (the probes of the service and of monitoring are off), so
what is measured is the grader's own cost per submission. Figures:

* ``warm_overhead_s``: with one worker, the steady interval between two
  results (after the first, so the cluster, the hidden world and the
  reference are already built) minus the notebook's own cell time. Target
  <= 0.6 s.
* ``speedup_2_workers``: the steady interval with one worker divided by the
  one with two (two cores). Target >= 1.8.
* ``nbgrader_autograde_s_per_submission``: in the same run, ``nbgrader
  autograde`` of an equivalent notebook (the same cell, an autograded test
  cell) for the same number of students, wall time divided by their number.

    .venv/bin/python benchmarks/cohort.py [--n 40]

Prints one JSON line last.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "grading"))

import ranking  # noqa: E402

TRIVIAL = """\
import pandas as pd
score = pd.read_parquet(score_path)
pd.DataFrame({"CANDIDATE_ID": score["CANDIDATE_ID"], "score": 0.5}).to_csv(predictions_path, index=False)
"""


def _steady(timeline: list[float]) -> float:
    """Seconds per result once results flow: (last - first) / (n - 1)."""
    return (timeline[-1] - timeline[0]) / (len(timeline) - 1)


def _cohort(root: Path, spec, cfg, n: int, workers: int, tag: str):
    from grading.cohort import grade_cohort

    subs = root / f"subs-{tag}"
    for i in range(n):
        ranking.write_kit(subs / f"learner{i:03d}", cells=[TRIVIAL], service=None, monitor=None)
    store = root / f"results-{tag}.sqlite"
    summary = grade_cohort(
        subs, spec, cfg, root / f"out-{tag}", store=str(store), workers=workers, progress=False
    )
    statuses = {r["status"] for r in summary.current}
    assert statuses == {"graded"}, statuses
    cells = statistics.mean(r["execution"]["cell_seconds"] for r in summary.current)
    return summary, cells


def _nbgrader(root: Path, n: int, holdout: Path) -> float:
    """Wall seconds per submission of ``nbgrader autograde`` on an equivalent notebook."""
    import nbformat
    import pandas as pd

    course = root / "course"
    source = course / "source" / "week"
    source.mkdir(parents=True)
    data = root / "nbdata"
    data.mkdir()
    pd.read_csv(holdout / "score.csv").drop(columns=["PURCHASED"]).to_parquet(
        data / "score.parquet"
    )
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    setup = nbformat.v4.new_code_cell(
        f"score_path = {str(data / 'score.parquet')!r}\npredictions_path = 'predictions.csv'\n"
        + TRIVIAL
    )
    setup.metadata["nbgrader"] = {
        "grade": False,
        "grade_id": "work",
        "locked": False,
        "schema_version": 3,
        "solution": True,
        "task": False,
    }
    test = nbformat.v4.new_code_cell("assert pd.read_csv(predictions_path).shape[0] > 0\n")
    test.metadata["nbgrader"] = {
        "grade": True,
        "grade_id": "check",
        "locked": True,
        "points": 1,
        "schema_version": 3,
        "solution": False,
        "task": False,
    }
    nb.cells = [setup, test]
    nbformat.write(nb, source / "pipeline.ipynb")
    (course / "nbgrader_config.py").write_text(
        "c = get_config()\nc.CourseDirectory.course_id = 'bench'\n"
        f"c.CourseDirectory.root = {str(course)!r}\n"
    )
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    nbg = [str(Path(sys.executable).parent / "nbgrader")]
    run = dict(cwd=course, env=env, check=True, capture_output=True)
    subprocess.run([*nbg, "db", "assignment", "add", "week"], **run)
    subprocess.run([*nbg, "generate_assignment", "week", "--force"], **run)
    for i in range(n):
        student = f"learner{i:03d}"
        subprocess.run([*nbg, "db", "student", "add", student], **run)
        dest = course / "submitted" / student / "week"
        dest.mkdir(parents=True)
        shutil.copy(course / "release" / "week" / "pipeline.ipynb", dest / "pipeline.ipynb")
        (dest / "timestamp.txt").write_text("2026-11-25 12:00:00.000000 UTC")
    t = time.perf_counter()
    subprocess.run([*nbg, "autograde", "week", "--force"], **run)
    return (time.perf_counter() - t) / n


def _leftovers() -> int:
    """Processes this benchmark started that are still alive (must be 0)."""
    import psutil

    from grading.jobproc import marked_processes

    time.sleep(1)
    kids = [
        p
        for p in psutil.Process().children(recursive=True)
        if p.is_running()
        and p.status() != psutil.STATUS_ZOMBIE
        and "resource_tracker" not in " ".join(p.cmdline())
    ]
    return len(kids) + len(marked_processes("fullcycle-job"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=40)
    args = ap.parse_args()

    from fullcycle.spec import load_spec
    from grading import load_config

    root = Path(tempfile.mkdtemp(prefix="bench-cohort-"))
    try:
        holdout = ranking.write_holdout(root / "hidden")
        spec = load_spec(ranking.write_project(root / "project"))
        cfg = load_config(
            ranking.write_config(
                root, holdout, service={"enabled": False}, monitoring={"enabled": False}
            )
        )
        one, cells1 = _cohort(root, spec, cfg, args.n, 1, "w1")
        two, cells2 = _cohort(root, spec, cfg, args.n, 2, "w2")
        nbg = _nbgrader(root, args.n, holdout)
        per1, per2 = _steady(one.timeline), _steady(two.timeline)
        left = _leftovers()
        figures = {
            "benchmark": "cohort",
            "submissions": args.n,
            "cores": os.cpu_count(),
            "seconds_per_submission_1_worker": round(per1, 3),
            "seconds_per_submission_2_workers": round(per2, 3),
            "cell_seconds_mean": round(cells1, 3),
            "warm_overhead_s": round(per1 - cells1, 3),
            "speedup_2_workers": round(per1 / per2, 2),
            "cohort_wall_s_1_worker": one.seconds,
            "cohort_wall_s_2_workers": two.seconds,
            "nbgrader_autograde_s_per_submission": round(nbg, 3),
            "leftover_processes": left,
            "target_warm_overhead_s": 0.6,
            "target_speedup": 1.8,
        }
        figures["meets_targets"] = (
            figures["warm_overhead_s"] <= 0.6 and figures["speedup_2_workers"] >= 1.8
        )
        print(f"1 worker: {per1:.2f} s/submission (cells {cells1:.2f} s)")
        print(f"2 workers: {per2:.2f} s/submission; speed-up {per1 / per2:.2f}x")
        print(f"nbgrader autograde: {nbg:.2f} s/submission")
        print(f"processes left behind: {left}")
        print(json.dumps(figures))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
