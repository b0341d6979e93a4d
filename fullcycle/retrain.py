"""Governed retraining: train a challenger, compare it with the champion, let the kit decide,
write every decision to MLflow.

The protocol is the handbook's, moved forward in time. Labels are known up to
``labelled_through_day``. The last ``eval_days`` of them are the comparison
window; the challenger trains on ``train_days`` that end ``delay_days`` before
that window, which is what a model retrained on the window's first morning
could have known. Both models are scored on the same window with the project's
business value model (the team's fixed top ``k`` a day). The kit's promotion
rule (``retrain:should_promote``) reads both results and decides; this module
only prepares the comparison and records it.

The decision (inputs, figures, reason, time) is one MLflow run in the
experiment ``<project>-decisions``, with ``decision.json`` as an artifact;
promotion moves the ``champion`` alias and tags the version it replaced.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from fullcycle.exceptions import ConfigError, DataError, TrackingError
from fullcycle.metrics.technical import roc_auc
from fullcycle.spec import ProjectSpec

__all__ = ["RetrainDecision", "ask_promotion_rule", "retrain"]


@dataclass
class RetrainDecision:
    """What was compared, what it earned, and what was decided."""

    promoted: bool
    reason: str
    champion_version: str
    challenger_run_id: str
    challenger_version: str | None
    champion_net_value: float
    challenger_net_value: float
    champion_roc_auc: float
    challenger_roc_auc: float
    margin: float
    train_days: tuple[int, int]
    eval_days: tuple[int, int]
    eval_rows: int
    decided_at: str
    rule: str = ""
    decision_run_id: str | None = None

    def format(self) -> str:
        verb = "PROMOTED" if self.promoted else "KEPT the champion"
        return (
            f"retraining decision: {verb}\n"
            f"  challenger trained on days {self.train_days[0]}-{self.train_days[1]}, both "
            f"compared on days {self.eval_days[0]}-{self.eval_days[1]} ({self.eval_rows:,} rows)\n"
            f"  net value: champion v{self.champion_version} {self.champion_net_value:,.0f}, "
            f"challenger {self.challenger_net_value:,.0f}\n"
            f"  ROC AUC: champion {self.champion_roc_auc:.3f}, challenger "
            f"{self.challenger_roc_auc:.3f}\n"
            f"  reason: {self.reason}"
        )


def ask_promotion_rule(rule: Callable, champion: dict, challenger: dict, margin, min_roc_auc):
    """Call a kit's ``should_promote`` and read its answer as ``(promote, reason)``.

    Accepts a ``bool`` or NumPy bool under ``"promote"``; refuses anything
    else with a message that shows what came back.
    """
    from fullcycle.kit import NotImplementedStage

    where = getattr(rule, "__qualname__", repr(rule))
    try:
        answer = rule(champion, challenger, margin, min_roc_auc)
    except NotImplementedError as exc:
        raise NotImplementedStage(
            f"the promotion rule {where} is not implemented yet ({exc}); write it in the "
            "kit's retrain.py"
        ) from None
    flag = answer.get("promote") if isinstance(answer, Mapping) else None
    if isinstance(flag, np.bool_):
        flag = bool(flag)
    if not isinstance(flag, bool):
        raise ConfigError(
            f"the promotion rule {where} returned {answer!r:.300}; it must return a dict such "
            'as {"promote": False, "reason": "..."} with "promote" a bool'
        )
    return flag, str(answer.get("reason", ""))[:1000]


def _figures(value_model, frame: pd.DataFrame, scores) -> dict:
    """What the promotion rule reads about one model on the comparison window."""
    report = value_model.evaluate(frame, scores)
    return {
        "net_value": float(report.net_value),
        "roc_auc": roc_auc(frame["TX_FRAUD"], scores),
        "rows": int(len(frame)),
        "per_day_net_value": [float(v) for v in report.per_day.to_numpy()],
    }


def retrain(
    spec: ProjectSpec,
    workspace: str | Path,
    data: pd.DataFrame,
    labelled_through_day: int,
    *,
    kit=None,
    eval_days: int = 7,
    margin: float = 0.05,
    model_factory: Callable | None = None,
    seed: int = 0,
    value_model=None,
    progress: Callable[[str], None] | None = print,
) -> RetrainDecision:
    """Train a challenger on the latest labelled data; the kit's rule decides on promotion.

    Parameters
    ----------
    spec : ProjectSpec
    workspace : path
        The MLflow workspace holding the champion.
    data : DataFrame
        Validated, labelled transactions (``TX_FRAUD``), at least through
        ``labelled_through_day``.
    labelled_through_day : int
        Last day (``TX_TIME_DAYS``) whose labels are known.
    kit : fullcycle.kit.Kit, optional
        Gives the features (``kit.build_features``), the challenger's model
        (``kit.build_model``) and the promotion rule (``kit.entry("promotion")``).
        Default: the project's own kit.
    eval_days : int
        Length of the comparison window (the last labelled days).
    margin : float
        Share of the champion's absolute net value the challenger must add;
        handed to the promotion rule.
    model_factory : callable, optional
        ``factory(seed=...)`` returning an unfitted classifier, instead of the kit's model.
    value_model : optional
        Defaults to the spec's business value model.
    """
    from fullcycle import tracking
    from fullcycle.kit import load_kit
    from fullcycle.serving.bundle import ModelBundle

    if margin < 0:
        raise ConfigError(f"margin must be >= 0, got {margin}")
    kit = kit if kit is not None else load_kit(spec)
    s = spec.data.split
    if "TX_FRAUD" not in data:
        raise DataError("retraining needs labelled data: a TX_FRAUD column")
    e_end = int(labelled_through_day)
    e_start = e_end - eval_days + 1
    t_end = e_start - s.delay_days - 1
    t_start = t_end - s.train_days + 1
    day = data["TX_TIME_DAYS"].to_numpy()
    if day.min() > t_start or day.max() < e_end:
        raise DataError(
            f"retraining needs labelled days {t_start}..{e_end}; the data covers "
            f"{int(day.min())}..{int(day.max())}"
        )
    known = data[day <= e_end]
    train = known[known["TX_TIME_DAYS"].between(t_start, t_end)]
    evaluation = known[known["TX_TIME_DAYS"].between(e_start, e_end)]
    value_model = value_model or spec.business_value.build()
    say = progress or (lambda _m: None)
    rule = kit.entry("promotion")  # fail before training if the kit has no rule

    features = kit.build_features(s.delay_days).fit(known, known["TX_FRAUD"])
    X_train, X_eval = features.transform(train), features.transform(evaluation)
    tracking.setup_tracking(workspace, spec.name)
    champion = ModelBundle.from_registry(spec.name)
    factory = model_factory or kit.build_model
    t0 = time.perf_counter()
    challenger = factory(seed=seed).fit(X_train, train["TX_FRAUD"])
    say(f"challenger trained on days {t_start}-{t_end} ({time.perf_counter() - t0:.1f}s)")

    columns = champion.feature_names or list(X_eval.columns)
    missing = [c for c in columns if c not in X_eval.columns]
    if missing:
        raise TrackingError(
            f"the champion {spec.name} v{champion.version} takes features {missing} that the "
            f"kit's features do not compute ({list(X_eval.columns)}); retrain it with this kit "
            "(fullcycle run)"
        )
    s_champ = champion.model.predict_proba(X_eval[columns])[:, 1]
    s_chall = challenger.predict_proba(X_eval)[:, 1]
    champ = _figures(value_model, evaluation, s_champ)
    chall = _figures(value_model, evaluation, s_chall)
    promoted, reason = ask_promotion_rule(rule, champ, chall, margin, spec.gate.min_roc_auc)

    exp = tracking.setup_tracking(workspace, spec.name)
    run_id, model_uri = tracking.log_model_run(
        experiment_id=exp,
        model=challenger,
        input_example=X_train,
        params={"model": repr(challenger), "role": "challenger", "seed": seed},
        metrics={"roc_auc": chall["roc_auc"], "net_value": chall["net_value"]},
        tags={
            "role": "challenger",
            "data_fingerprint": tracking.data_fingerprint(known),
            "code_version": tracking.code_version(),
            "spec_sha256": spec.sha256,
            "project": spec.name,
        },
        run_name=f"{spec.name}-challenger-day{e_end}",
    )
    version = None
    if promoted:
        version = tracking.register_champion(model_uri, spec.name, run_id).version
        mlflow = tracking._mlflow()
        mlflow.MlflowClient().set_model_version_tag(
            spec.name, champion.version, "replaced_by", str(version)
        )
    decision = RetrainDecision(
        promoted=promoted,
        reason=reason,
        champion_version=champion.version,
        challenger_run_id=run_id,
        challenger_version=str(version) if version else None,
        champion_net_value=champ["net_value"],
        challenger_net_value=chall["net_value"],
        champion_roc_auc=float(champ["roc_auc"]),
        challenger_roc_auc=float(chall["roc_auc"]),
        margin=margin,
        train_days=(t_start, t_end),
        eval_days=(e_start, e_end),
        eval_rows=int(len(evaluation)),
        decided_at=datetime.now(UTC).isoformat(timespec="seconds"),
        rule=f"{Path(rule.__code__.co_filename).name}:{rule.__qualname__}"
        if hasattr(rule, "__code__")
        else repr(rule),
    )
    decision.decision_run_id = _record(spec, workspace, decision, value_model)
    say(decision.format())
    return decision


def _record(spec, workspace, decision: RetrainDecision, value_model) -> str:
    """One MLflow run per decision: the audit trail."""
    from fullcycle import tracking

    mlflow = tracking._mlflow()
    exp = tracking.setup_tracking(workspace, f"{spec.name}-decisions")
    payload = {**asdict(decision), "value_model": value_model.params(), "project": spec.name}
    payload.pop("decision_run_id")
    with mlflow.start_run(
        experiment_id=exp, run_name=f"decision-day{decision.eval_days[1]}"
    ) as run:
        mlflow.log_params(
            {
                "champion_version": decision.champion_version,
                "challenger_run_id": decision.challenger_run_id,
                "train_days": f"{decision.train_days[0]}-{decision.train_days[1]}",
                "eval_days": f"{decision.eval_days[0]}-{decision.eval_days[1]}",
                "margin": decision.margin,
                "rule": decision.rule,
                **{f"value.{k}": v for k, v in value_model.params().items()},
            }
        )
        mlflow.log_metrics(
            {
                k: float(v) if np.isfinite(v) else float("nan")
                for k, v in {
                    "champion_net_value": decision.champion_net_value,
                    "challenger_net_value": decision.challenger_net_value,
                    "champion_roc_auc": decision.champion_roc_auc,
                    "challenger_roc_auc": decision.challenger_roc_auc,
                    "eval_rows": decision.eval_rows,
                }.items()
            }
        )
        mlflow.set_tags(
            {
                "decision": "promoted" if decision.promoted else "rejected",
                "reason": decision.reason,
                "decided_at": decision.decided_at,
                "project": spec.name,
            }
        )
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "decision.json"
            path.write_text(json.dumps(payload, indent=2, default=str))
            mlflow.log_artifact(str(path))
    return run.info.run_id
