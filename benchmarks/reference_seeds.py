"""How good is the reference solution on the handbook protocol? Mean over simulator seeds.

Runs the project's kit (``--kit``, default the reference) on the handbook split
(train 7 days, 7-day label delay, score 7 days, known-compromised cards
removed by the handbook's rule) for each simulator seed, checks that it passes
the project's gate and every rubric bar on a figure of its scorecard (the bars
are read from project.yaml), and prints ROC AUC,
average precision and card precision@100 beside the handbook's published
baselines (Le Borgne et al., ch. 3-5: logistic regression 0.871 / 0.606 /
0.291, random forest 0.867 / 0.658 / 0.287, XGBoost 0.862 / 0.639 / 0.273,
tuned XGBoost AP 0.687 and CP@100 0.303), then the business figures, then one
JSON line.

    .venv/bin/python benchmarks/reference_seeds.py                 # seeds 0-4, full scale
    .venv/bin/python benchmarks/reference_seeds.py --seeds 2 --scale small
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from fullcycle.run import run_project
from fullcycle.spec import find_project

#: The handbook's best published figures on its own data (tuned XGBoost, chapter 5).
HANDBOOK_BEST = {"average_precision": 0.687, "card_precision@100": 0.303}
FIGURES = (
    "roc_auc",
    "average_precision",
    "card_precision@100",
    "value_vs_baseline",
    "share_of_oracle",
    "policy.share_of_oracle",
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5, help="simulator seeds 0..N-1")
    ap.add_argument("--scale", choices=("full", "small", "tiny"), default="full")
    ap.add_argument("--kit", default=None, help="a kit folder (default: the reference)")
    args = ap.parse_args()
    spec = find_project("fraud_detection")
    rows, missed = [], []
    for seed in range(args.seeds):
        world = spec.model_copy(update={"data": spec.data.model_copy(update={"seed": seed})})
        t = time.perf_counter()
        result = run_project(world, scale=args.scale, track=False, kit_dir=args.kit, progress=None)
        m = result.scorecard.metrics()
        rows.append({k: m.get(k, float("nan")) for k in FIGURES})
        if not result.gate_passed:
            missed.append({"seed": seed, "gate": result.gate_reasons})
        for c in (c for c in spec.rubric if c.metric in m):
            v = m[c.metric]
            if not (v >= c.bar if c.higher_is_better else v <= c.bar):
                missed.append({"seed": seed, "check": c.id, "metric": c.metric, "value": v})
        split = result.prepared.split
        print(
            f"seed {seed}: train {len(split.train):,} / {int(split.train['TX_FRAUD'].sum())} "
            f"frauds, score {len(split.test):,} / {int(split.test['TX_FRAUD'].sum())}  "
            + "  ".join(f"{k} {rows[-1][k]:.3f}" for k in FIGURES)
            + f"  ({time.perf_counter() - t:.0f}s)",
            flush=True,
        )
    mean = {k: float(np.mean([r[k] for r in rows])) for k in FIGURES}
    worst = {k: float(np.min([r[k] for r in rows])) for k in FIGURES}
    print("mean  " + "  ".join(f"{k} {v:.3f}" for k, v in mean.items()))
    for k, best in HANDBOOK_BEST.items():
        verdict = "beats" if mean[k] > best else "does not beat"
        print(f"{k}: mean {mean[k]:.4f} {verdict} the handbook's tuned XGBoost ({best})")
    print("gate and scorecard bars: " + ("all passed" if not missed else f"MISSED {missed}"))
    print(
        json.dumps(
            {
                "benchmark": "reference_seeds",
                "scale": args.scale,
                "seeds": args.seeds,
                "mean": mean,
                "worst": worst,
                "handbook_best": HANDBOOK_BEST,
                "gate_and_bars_missed": missed,
            }
        )
    )


if __name__ == "__main__":
    main()
