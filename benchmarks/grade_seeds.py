"""Are a capstone's bars fair? Grade the reference and a "7-line" kit under fresh seeds.

For each of ``--seeds`` fresh secret seeds (drawn here: the point is to meet
seeds nobody chose), the grader grades

- the reference kit (``starter_kits/<project>``): it must get full marks
  under every seed;
- a "7-line" kit: the learner release with only ``build_model`` and
  ``check_drift`` written in a few lines (fraud: a StandardScaler +
  LogisticRegression pipeline and a median-amount comparison; recommender: the
  plain EASE class with no tuning and an event-count comparison), every other
  region left as the release's stub: it must score below 30% under every seed.

It prints, per rubric check, the worst seed's margin for the reference
(value - bar, or bar - value where lower is better; 0 or more earns every
point) and the 7-line kit's best share of the points, then one JSON line.

    .venv/bin/python benchmarks/grade_seeds.py                  # fraud, 20 seeds, full scale
    .venv/bin/python benchmarks/grade_seeds.py --scale small --seeds 2
    .venv/bin/python benchmarks/grade_seeds.py --project recommender
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "grading"))

from kits import fraud_spec  # noqa: E402

STUB = '    # YOUR CODE HERE\n    raise NotImplementedError("not implemented yet")\n'
SEVEN_LINES = {}
SEVEN_LINES["fraud_detection"] = {
    "model": (
        "build_model",
        "    from sklearn.linear_model import LogisticRegression\n"
        "    from sklearn.pipeline import make_pipeline\n"
        "    from sklearn.preprocessing import StandardScaler\n"
        "    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))\n",
    ),
    "monitor": (
        "check_drift",
        '    before = reference["TX_AMOUNT"].median()\n'
        '    now = current["TX_AMOUNT"].median()\n'
        '    return {"drift": abs(now - before) > 0.2 * before, "reasons": []}\n',
    ),
}
SEVEN_LINES["recommender"] = {
    "model": ("build_model", "    return EASERecommender(seed=seed)\n"),
    "monitor": (
        "check_drift",
        '    return {"drift": len(current) > 1.2 * len(reference), "reasons": []}\n',
    ),
}


def seven_line_kit(folder: Path, project: str) -> Path:
    """The learner release of the kit with only ``build_model`` and ``check_drift`` written."""
    from grading import release

    release(REPO, folder / "release", kits=[project])
    kit = folder / "release" / "starter_kits" / project
    for module, (function, body) in SEVEN_LINES[project].items():
        path = kit / f"{module}.py"
        text = path.read_text()
        start = text.index(f"def {function}(")
        at = text.index(STUB, start)
        path.write_text(text[:at] + body + text[at + len(STUB) :])
    return kit


def margin(line: dict) -> float | None:
    """How far a rubric line's value is past its bar (>= 0: every point earned)."""
    if line["value"] is None:
        return None
    v, bar = float(line["value"]), float(line["bar"])
    return v - bar if line["higher_is_better"] else bar - v


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--project", choices=sorted(SEVEN_LINES), default="fraud_detection")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--scale", choices=("full", "small", "tiny"), default="full")
    ap.add_argument("--keep", action="store_true", help="keep the graded outputs")
    args = ap.parse_args()

    from fullcycle.spec import find_project
    from grading import grade, new_config

    spec = fraud_spec() if args.project == "fraud_detection" else find_project(args.project, REPO)
    kit_dir = REPO / "starter_kits" / args.project
    root = Path(tempfile.mkdtemp(prefix="bench-grade-seeds-"))
    seven = seven_line_kit(root / "seven", args.project)
    t0 = time.perf_counter()
    margins: dict[str, list] = {}
    full_marks = 0
    seven_shares: list[float] = []
    per_seed = []
    for i in range(args.seeds):
        folder = root / f"seed{i}"
        cfg = new_config(folder / "grading.yaml", scale=args.scale)
        t = time.perf_counter()
        ref = grade(kit_dir, spec, cfg, folder / "reference")
        low = grade(seven, spec, cfg, folder / "seven")
        s_ref, s_low = ref["score"], low["score"]
        full = ref["status"] == "graded" and s_ref["points"] == s_ref["max_points"]
        full_marks += full
        share = s_low["points"] / s_low["max_points"] if s_low["max_points"] else 0.0
        seven_shares.append(share)
        for line in ref["rubric"]:
            margins.setdefault(line["id"], []).append(margin(line))
        per_seed.append(
            {
                "reference": s_ref["points"],
                "max": s_ref["max_points"],
                "seven_line": s_low["points"],
                **{
                    k: ref["metrics"].get(k)
                    for k in (
                        "roc_auc",
                        "ndcg@10",
                        "share_of_oracle",
                        "value_vs_baseline",
                        "policy.value_vs_top_k",
                    )
                    if k in ref["metrics"]
                },
            }
        )
        lost = [line["id"] for line in ref["rubric"] if not line["passed"]]
        print(
            f"seed {i + 1:>2}/{args.seeds}: reference {s_ref['points']:g}/{s_ref['max_points']:g}"
            f"{' (lost ' + ', '.join(lost) + ')' if lost else ''}, 7-line "
            f"{s_low['points']:g}/{s_low['max_points']:g} ({share:.0%}), "
            f"{time.perf_counter() - t:.0f}s",
            flush=True,
        )
    worst = {k: None if None in v else round(min(v), 6) for k, v in margins.items()}
    print(f"\n{'check':<30}{'worst margin (reference)':>26}")
    for key, m in worst.items():
        print(f"{key:<30}{'not measured' if m is None else f'{m:+.4f}':>26}")
    ok = full_marks == args.seeds and max(seven_shares) < 0.30
    print(
        f"\nreference full marks in {full_marks}/{args.seeds} seeds; 7-line kit at most "
        f"{max(seven_shares):.0%} of the points. Reproduce: .venv/bin/python "
        f"benchmarks/grade_seeds.py --project {args.project} --scale {args.scale} "
        f"--seeds {args.seeds}"
    )
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    else:
        print(f"outputs kept in {root}")
    print(
        json.dumps(
            {
                "benchmark": "grade_seeds",
                "project": args.project,
                "scale": args.scale,
                "seeds": args.seeds,
                "reference_full_marks": full_marks,
                "reference_worst_margin": worst,
                "seven_line_max_share": round(max(seven_shares), 4),
                "per_seed": per_seed,
                "ok": ok,
                "seconds": round(time.perf_counter() - t0, 1),
                "seed_source": "a fresh 128-bit seed per grading config (not recorded)",
            }
        )
    )


if __name__ == "__main__":
    main()
