"""Is one stage check fair? Run one stage probe on the reference kit under fresh secret seeds.

A cheaper companion of ``grade_seeds.py``: it builds the hidden world of each
fresh seed, runs only the named probe step (``probe_as_of``, ``probe_contract``,
``probe_decision``, ...) on the project's reference kit, and counts the seeds
where every figure of that probe earns its rubric line in full.

    .venv/bin/python benchmarks/stage_seeds.py --project recommender --probe probe_as_of
    .venv/bin/python benchmarks/stage_seeds.py --project recommender --probe probe_decision --seeds 5
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "grading"))

from kits import config, prepared_job, run  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--project", default="recommender")
    ap.add_argument("--probe", default="probe_as_of", help="a step of grading.pipeline.STEPS")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--scale", choices=("full", "small", "tiny"), default="full")
    args = ap.parse_args()

    from fullcycle.holdout import build_holdout
    from fullcycle.spec import find_project
    from grading.rubric import apply_rubric

    spec = find_project(args.project, REPO)
    kit = REPO / "starter_kits" / args.project
    t0 = time.perf_counter()
    full, worst = 0, {}
    for i in range(args.seeds):
        tmp = Path(tempfile.mkdtemp(prefix="bench-stage-seeds-"))
        try:
            cfg = config(tmp, seed=secrets.token_hex(16), scale=args.scale)
            job = prepared_job(spec, cfg, kit, tmp, build_holdout(spec, cfg.seed_int, cfg.scale))
            run(job, args.probe)
            names = set(job.metrics) | set(job.unmeasured)
            lines = apply_rubric(
                [c for c in spec.rubric if c.metric in names],
                job.metrics,
                job.unmeasured,
                job.disabled,
            )
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        ok = bool(lines) and all(x["points"] == x["max_points"] for x in lines)
        full += ok
        for x in lines:
            worst[x["metric"]] = min(worst.get(x["metric"], float("inf")), x["value"] or 0.0)
        print(
            f"seed {i + 1:>2}/{args.seeds}: "
            + ", ".join(
                f"{x['metric']} {x['value']} ({x['points']:g}/{x['max_points']:g})" for x in lines
            )
            + ("" if lines else "no rubric line measured"),
            flush=True,
        )
    print(
        f"\nreference full on {args.probe} in {full}/{args.seeds} seeds. Reproduce: .venv/bin/python "
        f"benchmarks/stage_seeds.py --project {args.project} --probe {args.probe} "
        f"--scale {args.scale} --seeds {args.seeds}"
    )
    print(
        json.dumps(
            {
                "benchmark": "stage_seeds",
                "project": args.project,
                "probe": args.probe,
                "scale": args.scale,
                "seeds": args.seeds,
                "reference_full": full,
                "worst_value": worst,
                "ok": full == args.seeds,
                "seconds": round(time.perf_counter() - t0, 1),
                "seed_source": "a fresh 128-bit seed per run (not recorded)",
            }
        )
    )
    sys.exit(0 if full == args.seeds else 1)


if __name__ == "__main__":
    main()
