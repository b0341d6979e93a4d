"""Benchmark: the fraud simulator at the handbook's full scale.

Targets (issue "From raw transactions to a registered fraud model"): the default
run (5,000 customers x 10,000 terminals x 183 days, about 1.75M transactions)
in <= 5 s on one core and <= 2 GB peak memory. The handbook's own generator is
reported to need "about 3 minutes on a laptop" for the same size (Le Borgne et
al., Reproducible Machine Learning for Credit Card Fraud Detection, ch. 3);
its code is GPL and is not run here, so that figure is quoted, not measured.

Each repeat runs in a fresh process pinned to one core, with BLAS threads set
to 1, and reports its own wall time and peak resident memory.

Run:  .venv/bin/python benchmarks/simulator.py [--repeats 3]
The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = r"""
import json, resource, time
t0 = time.perf_counter()
from fullcycle.data import simulate_transactions
t1 = time.perf_counter()
sim = simulate_transactions(seed=SEED)
t2 = time.perf_counter()
tx = sim.transactions
print(json.dumps({
    "seconds": t2 - t1,
    "import_seconds": t1 - t0,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "transactions": len(tx),
    "frauds": int(tx["TX_FRAUD"].sum()),
}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    runs = []
    for seed in range(args.repeats):
        cmd = [sys.executable, "-c", CHILD.replace("SEED", str(seed))]
        if hasattr(os, "sched_setaffinity"):
            cmd = ["taskset", "-c", "0", *cmd]
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
        run = json.loads(out.strip().splitlines()[-1])
        runs.append(run)
        print(
            f"seed {seed}: {run['transactions']:,} transactions, {run['frauds']:,} frauds "
            f"in {run['seconds']:.2f} s, peak {run['peak_rss_mb']:.0f} MB"
        )
    median = statistics.median(r["seconds"] for r in runs)
    peak = max(r["peak_rss_mb"] for r in runs)
    handbook_seconds = 180.0
    print(f"median {median:.2f} s (target <= 5 s), peak {peak:.0f} MB (target <= 2048 MB)")
    print(
        f"reported handbook generator: ~{handbook_seconds:.0f} s -> about {handbook_seconds / median:.0f}x faster"
    )
    print(
        json.dumps(
            {
                "benchmark": "simulator_full_scale",
                "cores": 1,
                "repeats": args.repeats,
                "median_seconds": round(median, 3),
                "max_seconds": round(max(r["seconds"] for r in runs), 3),
                "peak_rss_mb": round(peak, 1),
                "transactions": runs[0]["transactions"],
                "fraud_rate": round(runs[0]["frauds"] / runs[0]["transactions"], 5),
                "target_seconds": 5.0,
                "target_peak_mb": 2048,
                "meets_targets": median <= 5.0 and peak <= 2048,
                "handbook_reported_seconds": handbook_seconds,
                "command": "python benchmarks/simulator.py",
            }
        )
    )


if __name__ == "__main__":
    main()
