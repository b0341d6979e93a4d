"""Compare a current window of served traffic with a reference window: statistics and the kit's checks.

The library measures; the kit judges. :func:`monitor` computes what people
look at (per-feature PSI and KS or chi-squared, score PSI, and, once labels
arrive, ROC AUC, card precision and net value per window and per day), then
asks the kit's two checks for the verdict:

- ``drift_check(reference, current) -> {"drift": bool, "reasons": [...]}`` on
  the raw transactions of each window (the kit's ``monitor:check_drift``);
- ``decay_check(reference, current, value) -> {"decay": bool, "reasons": [...]}``
  on the served, partly labelled traffic (the kit's ``monitor:check_decay``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from fullcycle.exceptions import ConfigError, DataError
from fullcycle.metrics.technical import card_precision_at_k, roc_auc
from fullcycle.monitoring.drift import DriftThresholds, FeatureDrift, feature_drift, psi

__all__ = [
    "CATEGORICAL",
    "DECAY_COLUMNS",
    "MonitorResult",
    "RAW_COLUMNS",
    "VERDICT_SCHEMA",
    "auc_standard_error",
    "monitor",
    "monitor_log",
    "per_day_drift",
    "window_performance",
]

#: Features that are flags, tested with chi-squared rather than KS.
CATEGORICAL = ("TX_DURING_WEEKEND", "TX_DURING_NIGHT")
VERDICT_SCHEMA = "fullcycle.monitoring.verdict/2"
#: What a drift check sees of each window: the raw transactions, as the service received them.
RAW_COLUMNS = ("TRANSACTION_ID", "TX_DATETIME", "CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT")
#: What a decay check sees: the raw transactions, the served score and the label (NaN: not yet).
DECAY_COLUMNS = (*RAW_COLUMNS, "score", "TX_FRAUD")
#: Columns of a prediction log that are not model features.
_LOG_COLUMNS = frozenset(
    {
        "TRANSACTION_ID",
        "TX_DATETIME",
        "CUSTOMER_ID",
        "TERMINAL_ID",
        "model_version",
        "score",
        "latency_ms",
        "cold_card",
        "cold_terminal",
        "TX_FRAUD",
    }
)


def _with_days(frame: pd.DataFrame) -> pd.DataFrame:
    days = frame["TX_DATETIME"].to_numpy(dtype="datetime64[D]").astype(np.int64)
    return frame.assign(TX_TIME_DAYS=days)


def _date(day: int) -> str:
    return datetime.fromtimestamp(int(day) * 86400, UTC).strftime("%Y-%m-%d")


def window_performance(frame: pd.DataFrame, value_model=None) -> dict:
    """Performance of the served scores on the labelled part of a window, overall and per day.

    Parameters
    ----------
    frame : DataFrame
        Served traffic: ``TX_DATETIME``, ``CUSTOMER_ID``, ``TX_AMOUNT``, ``score``
        and ``TX_FRAUD`` (NaN while the label has not arrived).
    value_model : FraudInvestigationValue, optional
        Adds card precision at the team's ``k``, net value and the oracle's.

    Returns
    -------
    dict
        ``labelled_rows``, ``labelled_share`` and ``status``: ``"waiting for
        labels"`` while no labelled row or only one class is known, else
        ``"evaluated"`` with ``roc_auc``, ``roc_auc_se`` (Hanley-McNeil),
        ``frauds``, ``days``, and with a value model ``card_precision``
        (:func:`fullcycle.metrics.card_precision_at_k`, the scorecard's
        definition), ``net_value``, ``net_value_per_day``, ``oracle_net_value``
        and ``share_of_oracle``; ``per_day`` maps each date to the same
        figures for that day. The figures cover the labelled rows only:
        whether enough of the window is labelled to judge is the caller's
        rule.
    """
    for c in ("TX_DATETIME", "score", "TX_FRAUD"):
        if c not in frame:
            raise DataError(f"window performance needs column {c!r}; got {list(frame.columns)}")
    labelled = frame[frame["TX_FRAUD"].notna()]
    share = len(labelled) / len(frame) if len(frame) else 0.0
    out = {"labelled_rows": int(len(labelled)), "labelled_share": round(share, 4)}
    if len(labelled) == 0 or labelled["TX_FRAUD"].nunique() < 2:
        out["status"] = "waiting for labels"
        return out
    labelled = _with_days(labelled.assign(TX_FRAUD=labelled["TX_FRAUD"].astype(int)))
    scores = labelled["score"].to_numpy(dtype=float)
    n_pos = int(labelled["TX_FRAUD"].sum())
    out["status"] = "evaluated"
    out["roc_auc"] = roc_auc(labelled["TX_FRAUD"], scores)
    out["roc_auc_se"] = auc_standard_error(out["roc_auc"], n_pos, len(labelled) - n_pos)
    out["frauds"] = n_pos
    days = np.sort(labelled["TX_TIME_DAYS"].unique())
    out["days"] = int(len(days))
    per_day = {
        int(day): {"roc_auc": roc_auc(g["TX_FRAUD"], g["score"])}
        for day, g in labelled.groupby("TX_TIME_DAYS")
    }
    if value_model is not None:
        cp = card_precision_at_k(labelled, scores, k=value_model.k)
        value = value_model.evaluate(labelled, scores)
        oracle = value_model.evaluate(labelled, None)
        out["card_precision"] = cp.mean
        out["net_value"] = value.net_value
        out["net_value_per_day"] = value.net_value / len(days)
        out["oracle_net_value"] = oracle.net_value
        out["share_of_oracle"] = value.share_of(oracle)
        for day, figures in per_day.items():
            figures["card_precision"] = float(cp.per_day.get(day, np.nan))
            figures["net_value"] = float(value.per_day.get(day, 0.0))
            figures["oracle_net_value"] = float(oracle.per_day.get(day, 0.0))
    out["per_day"] = {_date(d): v for d, v in per_day.items()}
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
        row = {"day": _date(day)}
        for c in columns:
            row[c] = psi(reference[c], g[c])
        rows.append(row)
    return pd.DataFrame(rows)


@dataclass
class MonitorResult:
    """Everything a monitoring run found; :meth:`verdict` is its JSON form.

    ``checks`` holds what each of the kit's checks returned (``None``: not
    run); ``drifted`` is true when either raised an alarm, and ``reasons``
    lists the alarms' reasons. ``notes`` are the library's observations
    (features and scores past :class:`DriftThresholds`), shown in the report
    but not part of the verdict.
    """

    drifted: bool
    reasons: list[str]
    features: list[FeatureDrift]
    score: FeatureDrift
    performance: dict
    windows: dict
    thresholds: DriftThresholds
    checks: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    daily: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)

    @property
    def label(self) -> str:
        """``"ok"``, ``"drift"``, ``"decay"`` or ``"drift+decay"``."""
        alarms = [
            name for name in ("drift", "decay") if (self.checks.get(name) or {}).get(name) is True
        ]
        return "+".join(alarms) or "ok"

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
                "verdict": self.label,
                "reasons": self.reasons,
                "checks": self.checks,
                "notes": self.notes,
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


def _name(check: Callable) -> str:
    """``file.py:function`` of a kit check (kit modules are imported under private names)."""
    code = getattr(check, "__code__", None)
    where = Path(code.co_filename).name if code is not None else type(check).__name__
    return f"{where}:{getattr(check, '__qualname__', '')}".rstrip(":")


def _run_check(check: Callable, key: str, *args) -> dict:
    """Call one of the kit's checks and read its answer, refusing one that means nothing."""
    from fullcycle.kit import NotImplementedStage

    name = _name(check)
    try:
        answer = check(*args)
    except NotImplementedError as exc:
        raise NotImplementedStage(
            f"the {key} check {name} is not implemented yet ({exc}); write it in the kit"
        ) from None
    flag = answer.get(key) if isinstance(answer, Mapping) else None
    if isinstance(flag, np.bool_):
        flag = bool(flag)
    if not isinstance(flag, bool):
        raise ConfigError(
            f"the {key} check {name} returned {answer!r:.300}; it must return a dict such as "
            f'{{"{key}": True, "reasons": ["..."]}} with {key!r} a bool'
        )
    reasons = answer.get("reasons", [])
    if isinstance(reasons, str) or not isinstance(reasons, list | tuple):
        reasons = [reasons]
    return {key: flag, "reasons": [str(r) for r in reasons], "check": name}


def monitor(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    feature_names: list[str],
    *,
    drift_check: Callable | None = None,
    decay_check: Callable | None = None,
    value_model=None,
    thresholds: DriftThresholds | None = None,
    categorical=CATEGORICAL,
) -> MonitorResult:
    """Compare ``current`` with ``reference`` (frames as :func:`fullcycle.serving.read_log` gives).

    Parameters
    ----------
    reference, current : DataFrame
        Served traffic: the raw columns (:data:`RAW_COLUMNS`), ``score``, the
        features in ``feature_names`` and ``TX_FRAUD`` (NaN while unknown).
    feature_names : list of str
        Model inputs to compare feature by feature (for the report).
    drift_check : callable, optional
        The kit's ``check_drift(reference, current)``, given the raw columns of
        each window. ``None``: input drift is not judged.
    decay_check : callable, optional
        The kit's ``check_decay(reference, current, value_model)``, given
        :data:`DECAY_COLUMNS` of each window. ``None``: decay is not judged.
    value_model : FraudInvestigationValue, optional
        Adds card precision and net value to the performance figures; handed
        to ``decay_check``.
    thresholds : DriftThresholds, optional
        Which feature and score shifts the report marks.

    Returns
    -------
    MonitorResult
        ``drifted`` is true when a check raised an alarm.
    """
    th = thresholds or DriftThresholds()
    for name, frame in (("reference", reference), ("current", current)):
        if len(frame) == 0:
            raise DataError(f"the {name} window is empty; check its dates against the log")
        needed = [*feature_names, "score", "TX_DATETIME"]
        if drift_check is not None:
            needed += RAW_COLUMNS
        if decay_check is not None:
            needed += DECAY_COLUMNS
        if value_model is not None:
            needed += ["CUSTOMER_ID", "TX_AMOUNT", "TX_FRAUD"]
        missing = [c for c in dict.fromkeys(needed) if c not in frame]
        if missing:
            raise DataError(f"the {name} window lacks column(s) {missing}")
    feats = [
        feature_drift(n, reference[n], current[n], th, categorical=n in categorical)
        for n in feature_names
    ]
    score = feature_drift("score", reference["score"], current["score"], th)
    notes = []
    shifted = [f for f in feats if f.drifted]
    if shifted:
        notes.append(
            f"{len(shifted)} input feature(s) past the report's thresholds: "
            + ", ".join(f"{f.feature} ({f.test})" for f in shifted[:5])
        )
    if score.psi >= th.score_psi:
        notes.append(f"score distribution shifted: PSI {score.psi:.3f} >= {th.score_psi}")
    perf = {}
    if "TX_FRAUD" in reference and "TX_FRAUD" in current:
        perf = {
            "reference": window_performance(reference, value_model),
            "current": window_performance(current, value_model),
        }
        ref_p, cur_p = perf["reference"], perf["current"]
        if ref_p["status"] == cur_p["status"] == "evaluated":
            perf["auc_drop"] = ref_p["roc_auc"] - cur_p["roc_auc"]
            perf["auc_drop_se"] = float(np.hypot(ref_p["roc_auc_se"], cur_p["roc_auc_se"]))
    checks: dict = {"drift": None, "decay": None}
    if drift_check is not None:
        raw = list(RAW_COLUMNS)
        checks["drift"] = _run_check(
            drift_check, "drift", reference[raw].copy(), current[raw].copy()
        )
    else:
        notes.append("input drift not judged: no drift check given")
    if decay_check is not None:
        cols = list(DECAY_COLUMNS)
        checks["decay"] = _run_check(
            decay_check, "decay", reference[cols].copy(), current[cols].copy(), value_model
        )
    else:
        notes.append("performance decay not judged: no decay check given")
    reasons = []
    for key, what in (("drift", "inputs"), ("decay", "performance")):
        c = checks[key]
        if c is not None and c[key]:
            reasons += [f"{what}: {r}" for r in c["reasons"]] or [f"{what}: {c['check']} said so"]
        elif c is not None:
            notes += [f"{what} (no alarm): {r}" for r in c["reasons"]]
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
        checks=checks,
        notes=notes,
        daily=daily,
    )


def monitor_log(
    log_path: str | Path,
    reference: tuple[str, str],
    current: tuple[str, str],
    *,
    drift_check: Callable | None = None,
    decay_check: Callable | None = None,
    value_model=None,
    thresholds: DriftThresholds | None = None,
    feature_names: list[str] | None = None,
    out_dir: str | Path | None = None,
    title: str = "Monitoring",
) -> MonitorResult:
    """Monitor two ``[start, end)`` date ranges of a prediction log; write the report if asked.

    ``feature_names`` defaults to every feature the log recorded. The other
    arguments are :func:`monitor`'s.
    """
    from fullcycle.serving.predlog import read_log

    ref = read_log(log_path, *reference)
    cur = read_log(log_path, *current)
    names = feature_names or [c for c in ref.columns if c not in _LOG_COLUMNS]
    result = monitor(
        ref,
        cur,
        names,
        drift_check=drift_check,
        decay_check=decay_check,
        value_model=value_model,
        thresholds=thresholds,
    )
    if out_dir is not None:
        result.write(out_dir, ref, cur, title)
    return result
