"""Grading overhead: wall time of `grade` minus the notebook's own cell time.

A trivial submission (read the scoring rows, write a constant score) of the
tiny ranking fixture is graded with the sandbox on and the service and
monitoring probes off. For comparison in the same run: Papermill's command
line on the same notebook without any sandbox (its overhead = wall - cells).
Target: overhead <= 1.5 s. Prints one JSON line last.

    .venv/bin/python benchmarks/grading_overhead.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
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


def _cells(nb_path: Path) -> float:
    nb = json.loads(nb_path.read_text())
    return sum(c.get("metadata", {}).get("papermill", {}).get("duration") or 0 for c in nb["cells"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    from fullcycle.spec import load_spec
    from grading import grade, load_config

    root = Path(tempfile.mkdtemp(prefix="bench-grading-"))
    holdout = ranking.write_holdout(root / "hidden")
    spec = load_spec(ranking.write_project(root / "project"))
    cfg = load_config(ranking.write_config(root, holdout))
    cfg = cfg.model_copy(
        update={
            "service": cfg.service.model_copy(update={"enabled": False}),
            "monitoring": cfg.monitoring.model_copy(update={"enabled": False}),
        }
    )
    kit = ranking.write_kit(root / "kit", cells=[TRIVIAL], service=None, monitor=None)
    grade(kit, spec, cfg, root / "warm")  # imports and caches, not measured

    ours, isolation = [], None
    for i in range(args.repeats):
        t = time.perf_counter()
        result = grade(kit, spec, cfg, root / f"out{i}")
        wall = time.perf_counter() - t
        ours.append(wall - result["execution"]["cell_seconds"])
        isolation = result["isolation"]
        assert result["status"] == "graded", result["messages"]

    cli = []
    data = root / "cli"
    data.mkdir()
    (data / "score.parquet").write_bytes(b"")
    import pandas as pd

    pd.read_csv(holdout / "score.csv").drop(columns=["PURCHASED"]).to_parquet(
        data / "score.parquet"
    )
    for i in range(args.repeats):
        out = data / f"out{i}.ipynb"
        t = time.perf_counter()
        subprocess.run(
            [
                str(Path(sys.executable).parent / "papermill"),
                str(kit / "pipeline.ipynb"),
                str(out),
                "-p",
                "score_path",
                str(data / "score.parquet"),
                "-p",
                "predictions_path",
                str(data / f"pred{i}.csv"),
                "-k",
                "python3",
                "--no-progress-bar",
            ],
            check=True,
            capture_output=True,
        )
        cli.append(time.perf_counter() - t - _cells(out))

    figures = {
        "benchmark": "grading_overhead",
        "repeats": args.repeats,
        "sandbox": isolation["kind"],
        "isolation_reduced": isolation["reduced"],
        "fullcycle_overhead_s_median": round(statistics.median(ours), 3),
        "fullcycle_overhead_s_max": round(max(ours), 3),
        "papermill_cli_overhead_s_median": round(statistics.median(cli), 3),
        "target_s": 1.5,
        "meets_target": statistics.median(ours) <= 1.5,
    }
    print(
        f"fullcycle grade overhead (sandboxed): median {figures['fullcycle_overhead_s_median']} s"
    )
    print(
        f"papermill CLI overhead (no sandbox):   median {figures['papermill_cli_overhead_s_median']} s"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
