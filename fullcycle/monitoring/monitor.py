"""Compare a current window of served traffic with a reference window: drift, decay, a verdict."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from fullcycle.exceptions import DataError
from fullcycle.metrics.technical import daily_top_k_cards, roc_auc
from fullcycle.monitoring.drift import DriftThresholds, FeatureDrift, feature_drift, psi

__all__ = [
    "CATEGORICAL",
    "MonitorResult",
    "VERDICT_SCHEMA",
    "auc_standard_error",
    "monitor",
    "monitor_log",
    "per_day_drift",
]

#: Features that are flags, tested with chi-squared rather than KS.
CATEGORICAL = ("TX_DURING_WEEKEND", "TX_DURING_NIGHT")
VERDICT_SCHEMA = "fullcycle.monitoring.verdict/1"
#: Performance is judged only when at least this share of a window is labelled.
MIN_LABELLED_SHARE = 0.8


def _with_days(frame: pd.DataFrame) -> pd.DataFrame:
    days = (frame["TX_DATETIME"].to_numpy(dtype="datetime64[D]").astype(np.int64)).astype(np.int64)
    return frame.assign(TX_TIME_DAYS=days)


def _performance(frame: pd.DataFrame, value_model) -> dict:
    """AUC, card precision and value over the labelled part of a window, overall and per day."""
    labelled = frame[frame["TX_FRAUD"].notna()]
    share = len(labelled) / len(frame) if len(frame) else 0.0
    out = {"labelled_rows": int(len(labelled)), "labelled_share": round(share, 4)}
    if share < MIN_LABELLED_SHARE or labelled["TX_FRAUD"].nunique() < 2:
        out["status"] = "waiting for labels"
        return out
    labelled = _with_days(labelled.assign(TX_FRAUD=labelled["TX_FRAUD"].astype(int)))
    scores = labelled["score"].to_numpy()
    out["status"] = "evaluated"
    out["roc_auc"] = roc_auc(labelled["TX_FRAUD"], scores)
    n_pos = int(labelled["TX_FRAUD"].sum())
    out["roc_auc_se"] = auc_standard_error(out["roc_auc"], n_pos, len(labelled) - n_pos)
    per_day = {}
    for day, g in labelled.groupby("TX_TIME_DAYS"):
        per_day[int(day)] = {"roc_auc": roc_auc(g["TX_FRAUD"], g["score"])}
    if value_model is not None:
        k = value_model.k
        reviews = daily_top_k_cards(labelled, scores, k)
        cp = reviews.groupby("day")["fraud"].mean()
        out["card_precision"] = float(cp.mean())
        value = value_model.evaluate(labelled, scores)
        oracle = value_model.evaluate(labelled, None)
        out["net_value"] = value.net_value
        out["oracle_net_value"] = oracle.net_value
        out["share_of_oracle"] = value.share_of(oracle)
        for day in per_day:
            per_day[day]["card_precision"] = float(cp.get(day, np.nan))
            per_day[day]["net_value"] = float(value.per_day.get(day, 0.0))
            per_day[day]["oracle_net_value"] = float(oracle.per_day.get(day, 0.0))
    out["per_day"] = {
        datetime.fromtimestamp(d * 86400, UTC).strftime("%Y-%m-%d"): v for d, v in per_day.items()
    }
    return out


def auc_standard_error(auc: float, n_pos: int, n_neg: int) -> float:
    """Standard error of a ROC AUC (Hanley and McNeil, Radiology 143, 1982)."""
    if n_pos < 1 or n_neg < 1 or not np.isfinite(auc):
        return float("inf")
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc**2) + (n_neg - 1) * (q2 - auc**2)) / (
        n_pos * n_neg
    )
    return float(np.sqrt(max(var, 0.0)))


def per_day_drift(reference, current, columns, categorical=CATEGORICAL) -> pd.DataFrame:
    """PSI of each column for each day of ``current`` against the whole reference."""
    cur = _with_days(current)
    rows = []
    for day, g in cur.groupby("TX_TIME_DAYS"):
        row = {"day": datetime.fromtimestamp(int(day) * 86400, UTC).strftime("%Y-%m-%d")}
        for c in columns:
            row[c] = psi(reference[c], g[c])
        rows.append(row)
    return pd.DataFrame(rows)


@dataclass
class MonitorResult:
    """Everything a monitoring run found; :meth:`verdict` is its JSON form."""

    drifted: bool
    reasons: list[str]
    features: list[FeatureDrift]
    score: FeatureDrift
    performance: dict
    windows: dict
    thresholds: DriftThresholds
    daily: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)

    def verdict(self) -> dict:
        def clean(x):
            if isinstance(x, float) and not np.isfinite(x):
                return None
            if isinstance(x, dict):
                return {k: clean(v) for k, v in x.items()}
            if isinstance(x, list):
                return [clean(v) for v in x]
            return x

        return clean(
            {
                "schema": VERDICT_SCHEMA,
                "verdict": "drift" if self.drifted else "ok",
                "reasons": self.reasons,
                "windows": self.windows,
                "thresholds": self.thresholds.as_dict(),
                "score_drift": asdict(self.score),
                "features": [asdict(f) for f in self.features],
                "drifted_features": [f.feature for f in self.features if f.drifted],
                "performance": self.performance,
                "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
        )

    def write(self, out_dir: str | Path, reference, current, title: str = "Monitoring") -> dict:
        """Write ``verdict.json`` and ``report.html`` into ``out_dir``; returns their paths."""
        from fullcycle.monitoring.report import render_report

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "verdict.json").write_text(json.dumps(self.verdict(), indent=2))
        (out / "report.html").write_text(render_report(self, reference, current, title))
        return {"verdict": out / "verdict.json", "report": out / "report.html"}


def _window(frame: pd.DataFrame) -> dict:
    t = frame["TX_DATETIME"]
    return {
        "start": t.min().isoformat() if len(t) else None,
        "end": t.max().isoformat() if len(t) else None,
        "rows": int(len(frame)),
    }


def monitor(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    feature_names: list[str],
    *,
    value_model=None,
    thresholds: DriftThresholds | None = None,
    categorical=CATEGORICAL,
) -> MonitorResult:
    """Compare ``current`` with ``reference`` (frames as :func:`fullcycle.serving.read_log` gives).

    Three layers, any of which makes the verdict "drift": the inputs (per
    feature PSI and KS, or chi-squared for flags), the scores (PSI), and,
    once labels are in for both windows, performance (ROC AUC and the share
    of achievable value).
    """
    th = thresholds or DriftThresholds()
    for name, frame in (("reference", reference), ("current", current)):
        if len(frame) == 0:
            raise DataError(f"the {name} window is empty; check its dates against the log")
        missing = [c for c in [*feature_names, "score", "TX_DATETIME"] if c not in frame]
        if missing:
            raise DataError(f"the {name} window lacks column(s) {missing}")
    feats = [
        feature_drift(n, reference[n], current[n], th, categorical=n in categorical)
        for n in feature_names
    ]
    score = feature_drift("score", reference["score"], current["score"], th)
    reasons = []
    drifted_feats = [f for f in feats if f.drifted]
    if len(drifted_feats) >= th.min_drifted_features:
        reasons.append(
            f"{len(drifted_feats)} input feature(s) drifted: "
            + ", ".join(f"{f.feature} ({f.test})" for f in drifted_feats[:5])
        )
    if score.psi >= th.score_psi:
        reasons.append(f"score distribution shifted: PSI {score.psi:.3f} >= {th.score_psi}")
    perf = {
        "reference": _performance(reference, value_model),
        "current": _performance(current, value_model),
    }
    ref_p, cur_p = perf["reference"], perf["current"]
    if ref_p["status"] == cur_p["status"] == "evaluated":
        drop = ref_p["roc_auc"] - cur_p["roc_auc"]
        noise = float(np.hypot(ref_p["roc_auc_se"], cur_p["roc_auc_se"]))
        perf["auc_drop"] = drop
        perf["auc_drop_se"] = noise
        if drop >= th.auc_drop and drop >= th.auc_z * noise:
            reasons.append(
                f"ROC AUC fell from {ref_p['roc_auc']:.3f} to {cur_p['roc_auc']:.3f} "
                f"(drop {drop:.3f} >= {th.auc_drop} and >= {th.auc_z} standard errors, "
                f"{th.auc_z * noise:.3f})"
            )
        if "share_of_oracle" in ref_p:
            vdrop = ref_p["share_of_oracle"] - cur_p["share_of_oracle"]
            perf["value_share_drop"] = vdrop
            if vdrop >= th.value_share_drop:
                reasons.append(
                    f"share of achievable value fell from {ref_p['share_of_oracle']:.0%} to "
                    f"{cur_p['share_of_oracle']:.0%} (drop {vdrop:.2f} >= {th.value_share_drop})"
                )
    top = [f.feature for f in sorted(feats, key=lambda f: -f.psi)[:3]]
    daily = per_day_drift(reference, pd.concat([reference, current]), ["score", *top], categorical)
    return MonitorResult(
        drifted=bool(reasons),
        reasons=reasons,
        features=feats,
        score=score,
        performance=perf,
        windows={"reference": _window(reference), "current": _window(current)},
        thresholds=th,
        daily=daily,
    )


def monitor_log(
    log_path: str | Path,
    reference: tuple[str, str],
    current: tuple[str, str],
    *,
    value_model=None,
    thresholds: DriftThresholds | None = None,
    out_dir: str | Path | None = None,
    title: str = "Monitoring",
) -> MonitorResult:
    """Monitor two ``[start, end)`` date ranges of a prediction log; write the report if asked."""
    from fullcycle.serving.predlog import read_log

    ref = read_log(log_path, *reference)
    cur = read_log(log_path, *current)
    from fullcycle.features import FEATURE_NAMES

    names = [n for n in FEATURE_NAMES if n in ref.columns]
    result = monitor(ref, cur, names, value_model=value_model, thresholds=thresholds)
    if out_dir is not None:
        result.write(out_dir, ref, cur, title)
    return result
