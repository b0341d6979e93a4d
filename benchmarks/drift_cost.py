"""What does card testing in the scoring window cost the reference model, at full scale?

Runs the project's reference kit twice on the handbook-scale simulation, once
clean and once with the drift scenario (card testing from the first scoring
day), and prints the comparison ``fullcycle run --with-drift`` prints, then one
JSON line. Exits 1 when the lesson it teaches does not hold: the model ranks
under half of the card-testing frauds in the daily top k, its ROC AUC falls by
more than 0.1, and more value is left on the table than without drift.
(``tests/model/test_reference.py`` checks the same at small scale, where the
model still catches most of them.)

    .venv/bin/python benchmarks/drift_cost.py [--scale full] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from fullcycle.run import compare_drift, run_project
from fullcycle.spec import find_project


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="full", choices=["full", "small", "tiny"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    spec = find_project("fraud_detection")
    start = time.perf_counter()
    clean = run_project(spec, scale=args.scale, seed=args.seed, track=False, progress=None)
    drifted = run_project(
        spec, scale=args.scale, seed=args.seed, track=False, drift=True, progress=None
    )
    comparison = compare_drift(spec, clean, drifted)
    print(comparison.format())
    c, d = clean.scorecard.metrics(), drifted.scorecard.metrics()
    figures = {
        "benchmark": "drift_cost",
        "scale": args.scale,
        "seed": args.seed,
        "seconds": round(time.perf_counter() - start, 1),
        "card_testing_frauds": comparison.scenario4_frauds,
        "card_testing_caught_share": round(comparison.scenario4_caught_share, 3),
        "roc_auc_clean": round(c["roc_auc"], 4),
        "roc_auc_drifted": round(d["roc_auc"], 4),
        "value_gap_clean": round(c["oracle_net_value"] - c["net_value"], 1),
        "value_gap_drifted": round(d["oracle_net_value"] - d["net_value"], 1),
    }
    holds = (
        figures["card_testing_frauds"] > 0
        and figures["card_testing_caught_share"] < 0.5
        and figures["roc_auc_drifted"] < figures["roc_auc_clean"] - 0.1
        and figures["value_gap_drifted"] > figures["value_gap_clean"]
    )
    figures["lesson_holds"] = holds
    print(json.dumps(figures))
    return 0 if holds else 1


if __name__ == "__main__":
    sys.exit(main())
