"""A project's run through a kit: simulate -> validate -> features -> train -> evaluate -> track
-> register.

The stages are the kit's (its data contract, features and model: see
:mod:`fullcycle.kit`); this module only moves data between them, measures
and records. ``kit_dir`` chooses the kit: a learner's copy or the reference.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from fullcycle.data import ValidationResult
from fullcycle.data.fraud import FraudSimulatorConfig, simulate_transactions
from fullcycle.data.loaders import load_transactions
from fullcycle.data.splits import TimeSplit, time_split
from fullcycle.evaluate import Scorecard, make_scorecard
from fullcycle.exceptions import ConfigError, DataError, SpecError
from fullcycle.kit import Kit, load_kit
from fullcycle.spec import ProjectSpec

__all__ = [
    "at_scale",
    "DriftComparison",
    "Prepared",
    "RunResult",
    "compare_drift",
    "decide",
    "load_data",
    "passes_gate",
    "prepare",
    "prepare_files",
    "run_project",
    "with_scale",
]

#: Smaller simulator settings for notebooks, tests and laptops (same split days).
SCALES = {
    "full": {},
    "small": {"n_customers": 1000, "n_terminals": 2000},
    "tiny": {"n_customers": 300, "n_terminals": 600},
}


def _say(progress, msg):
    if progress:
        progress(msg)


def load_data(
    spec: ProjectSpec, scale: str = "full", drift: bool = False, drift_start_day: int | None = None
) -> pd.DataFrame:
    """The project's raw transactions: simulated as the spec says, or read from its files.

    ``drift_start_day`` moves the start of the drift scenario (default: the spec's).
    """
    if scale not in SCALES:
        raise ConfigError(f"unknown scale {scale!r}; choose from {sorted(SCALES)}")
    if spec.data.source == "files":
        path = Path(spec.data.path)
        if not path.is_absolute() and spec.root is not None:
            path = spec.root / path
        return load_transactions(path)
    params = {**spec.data.params, **SCALES[scale]}
    params["scenarios"] = tuple(params.get("scenarios", (1, 2, 3)))
    if drift:
        if spec.data.drift is None:
            raise SpecError(
                f"project {spec.name!r} has no data.drift section; add one to run with drift"
            )
        params["scenarios"] = tuple(sorted({*params["scenarios"], spec.data.drift.scenario}))
        params["card_testing_start_day"] = (
            spec.data.drift.start_day if drift_start_day is None else drift_start_day
        )
    cfg = FraudSimulatorConfig(seed=spec.data.seed, **params)
    return simulate_transactions(cfg).transactions


def at_scale(spec: ProjectSpec, scale: str) -> ProjectSpec:
    """The same project on a smaller simulation, with the team's capacity scaled alike.

    A team that reviews 100 cards a day among 5,000 customers reviews 20 among
    1,000: ``k`` of the business value model shrinks with the customer count so
    that a small run tells the same story as the full one. The technical
    metrics keep their names (``card_precision@100`` stays at k = 100).
    """
    if scale not in SCALES:
        raise ConfigError(f"unknown scale {scale!r}; choose from {sorted(SCALES)}")
    if scale == "full" or spec.data.source != "fraud_simulator":
        return spec
    return with_scale(spec, **SCALES[scale])


@dataclass
class Prepared:
    """Data after validation, split and feature building."""

    validation: ValidationResult
    split: TimeSplit
    features: object  # the kit's fitted feature transformer
    X_train: pd.DataFrame
    y_train: pd.Series
    X_test: pd.DataFrame


def prepare(spec: ProjectSpec, raw: pd.DataFrame, kit: Kit) -> Prepared:
    """Validate with the kit's contract, split by time, build the kit's features."""
    validation = kit.validate(raw)
    s = spec.data.split
    split = time_split(
        validation.valid,
        s.train_start_day,
        s.train_days,
        s.delay_days,
        s.test_days,
        s.drop_known_compromised,
        known_compromised=s.known_compromised,
    )
    feats = kit.build_features(s.delay_days).fit(split.history, split.history["TX_FRAUD"])
    return Prepared(
        validation,
        split,
        feats,
        feats.transform(split.train),
        split.train["TX_FRAUD"],
        feats.transform(split.test),
    )


def prepare_files(
    spec: ProjectSpec, train_path: str | Path, score_path: str | Path, kit: Kit
) -> Prepared:
    """Build features from a labelled history file and an unlabelled scoring-window file.

    This is the submission contract's path: the history holds every labelled
    transaction before the scoring window; the model trains on its last
    ``train_days`` days before the label delay; the scoring rows get features
    from the history (labels at least ``delay_days`` old) and from themselves.
    """
    history_raw = load_transactions(train_path)
    day0 = history_raw["TX_DATETIME"].min().normalize()
    score_raw = load_transactions(score_path, start_date=str(day0.date()), labelled=False)
    validation = kit.validate(history_raw)
    scoring = kit.validate(score_raw, labelled=False)
    if len(scoring.quarantine):
        raise DataError(
            f"{score_path}: {len(scoring.quarantine)} scoring rows fail validation "
            f"({scoring.summary()}); every scoring row needs a prediction, so fix the file"
        )
    history = validation.valid
    test = scoring.valid
    s = spec.data.split
    test_start = int(test["TX_TIME_DAYS"].min())
    train_end = test_start - s.delay_days
    d = history["TX_TIME_DAYS"].to_numpy()
    train = history[(d >= train_end - s.train_days) & (d < train_end)]
    if train.empty:
        raise DataError(
            f"{train_path}: no labelled transactions in the training window "
            f"(days {train_end - s.train_days}..{train_end - 1})"
        )
    split = TimeSplit(
        train,
        history,
        test,
        (train_end - s.train_days, train_end - 1),
        (test_start, int(test["TX_TIME_DAYS"].max())),
    )
    feats = kit.build_features(s.delay_days).fit(history, history["TX_FRAUD"])
    return Prepared(
        validation, split, feats, feats.transform(train), train["TX_FRAUD"], feats.transform(test)
    )


def decide(spec: ProjectSpec, kit: Kit, frame: pd.DataFrame, scores, progress=None):
    """The kit's decision policy on a scored window: priorities per review candidate.

    A kit whose policy is not written yet gets ``None`` (the scorecard then shows
    the fixed top-k alone) and a line that says so.
    """
    from fullcycle.metrics import review_candidates

    if "policy" not in kit.stages or spec.business_value.model != "fraud_investigation":
        return None
    try:
        return kit.entry("policy")(review_candidates(frame, scores), spec.business_value.build())
    except NotImplementedError:
        _say(progress, "      decision policy: not implemented yet (policy.py); fixed top-k only")
        return None


@dataclass
class RunResult:
    scorecard: Scorecard
    scores: np.ndarray
    prepared: Prepared
    model: object
    run_id: str | None = None
    registered: object | None = None
    gate_passed: bool = False
    gate_reasons: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def passes_gate(spec, card: Scorecard) -> tuple[bool, list[str]]:
    m = card.metrics()
    reasons = []
    auc = m.get("roc_auc", float("nan"))
    if not auc >= spec.gate.min_roc_auc:
        reasons.append(f"roc_auc {auc:.3f} < {spec.gate.min_roc_auc}")
    if m["baseline_net_value"] > 0:
        if not m["value_vs_baseline"] >= spec.gate.min_value_vs_baseline:
            reasons.append(
                f"value_vs_baseline {m['value_vs_baseline']:.2f} < {spec.gate.min_value_vs_baseline}"
            )
    elif not m["net_value"] > m["baseline_net_value"]:
        # A ratio to a money-losing baseline means nothing: the model must simply do better.
        reasons.append(
            f"net value {m['net_value']:,.0f} <= baseline {m['baseline_net_value']:,.0f}"
        )
    return not reasons, reasons


def run_project(
    spec: ProjectSpec,
    workspace: str | Path = "workspace",
    *,
    scale: str = "full",
    drift: bool = False,
    track: bool = True,
    register: bool = True,
    seed: int = 0,
    kit_dir: str | Path | None = None,
    progress: Callable[[str], None] | None = print,
) -> RunResult:
    """Run a project end to end through a kit (default: the project's reference kit).

    Parameters
    ----------
    spec : ProjectSpec
    workspace : path
        Folder for the MLflow store and run artifacts.
    scale : {"full", "small", "tiny"}
        Simulator size (ignored for file data).
    drift : bool
        Activate the spec's drift scenario in the scoring window.
    track, register : bool
        Log to MLflow; register as champion when the gate passes.
    seed : int
        Seed handed to the kit's model factory.
    kit_dir : path, optional
        The kit to run (a learner's copy); default the project's own.
    """
    kit = load_kit(spec, kit_dir)
    timings: dict[str, float] = {}
    spec = at_scale(spec, scale)
    t = time.perf_counter()
    raw = load_data(spec, scale=scale, drift=drift)
    timings["data"] = time.perf_counter() - t
    _say(
        progress,
        f"[1/6] data: {len(raw):,} transactions, {int(raw['TX_FRAUD'].sum()):,} frauds "
        f"({timings['data']:.1f}s)",
    )
    t = time.perf_counter()
    prep = prepare(spec, raw, kit)
    timings["prepare"] = time.perf_counter() - t
    _say(
        progress,
        f"[2/6] validated: {len(prep.validation.valid):,} rows kept, "
        f"{len(prep.validation.quarantine):,} quarantined",
    )
    _say(
        progress,
        f"[3/6] features: train {len(prep.X_train):,} rows, scoring window "
        f"{len(prep.X_test):,} rows ({timings['prepare']:.1f}s)",
    )
    t = time.perf_counter()
    model = kit.build_model(seed=seed)
    model.fit(prep.X_train, prep.y_train)
    scores = model.predict_proba(prep.X_test)[:, 1]
    timings["train"] = time.perf_counter() - t
    _say(progress, f"[4/6] trained {type(model).__name__} ({timings['train']:.1f}s)")
    t = time.perf_counter()
    priority = decide(spec, kit, prep.split.test, scores, progress)
    card = make_scorecard(spec, prep.split.test, scores, priority)
    timings["evaluate"] = time.perf_counter() - t
    _say(progress, f"[5/6] evaluated: {card.headline()}")
    result = RunResult(card, scores, prep, model, timings=timings)
    result.gate_passed, result.gate_reasons = passes_gate(spec, card)
    if track:
        from fullcycle import tracking

        t = time.perf_counter()
        exp = tracking.setup_tracking(workspace, spec.name)
        data_fp = tracking.data_fingerprint(prep.validation.valid)
        params = {
            "model": repr(model),
            "scale": scale,
            "drift": drift,
            "seed": seed,
            **{f"split.{k}": v for k, v in spec.data.split.model_dump().items()},
            **{f"value.{k}": v for k, v in spec.business_value.params.items()},
        }
        tags = {
            "data_fingerprint": data_fp,
            "code_version": tracking.code_version(),
            "spec_sha256": spec.sha256,
            "project": spec.name,
            "gate": "passed" if result.gate_passed else "failed: " + "; ".join(result.gate_reasons),
        }
        metrics = {k.replace("@", "_at_"): v for k, v in card.metrics().items()}
        metrics["quarantined_rows"] = len(prep.validation.quarantine)
        result.run_id, model_uri = tracking.log_model_run(
            experiment_id=exp,
            model=model,
            input_example=prep.X_train,
            params=params,
            metrics=metrics,
            tags=tags,
            run_name=f"{spec.name}-{'drift' if drift else 'reference'}",
        )
        if register and result.gate_passed:
            result.registered = tracking.register_champion(model_uri, spec.name, result.run_id)
        timings["track"] = time.perf_counter() - t
        what = (
            f"registered {spec.name} v{result.registered.version} as champion"
            if result.registered
            else ("gate failed: " + "; ".join(result.gate_reasons))
            if not result.gate_passed
            else "not registered"
        )
        _say(progress, f"[6/6] tracked run {result.run_id[:8]}; {what} ({timings['track']:.1f}s)")
    return result


@dataclass
class DriftComparison:
    clean: Scorecard
    drifted: Scorecard
    scenario4_frauds: int
    scenario4_caught_share: float

    def format(self) -> str:
        c, d = self.clean.metrics(), self.drifted.metrics()
        gap_clean = c["oracle_net_value"] - c["net_value"]
        gap_drift = d["oracle_net_value"] - d["net_value"]
        return "\n".join(
            [
                "What drift costs (card testing begins on the first scoring day)",
                f"  share of achievable value: {c['share_of_oracle']:.0%} clean -> {d['share_of_oracle']:.0%} with drift",
                f"  ROC AUC: {c['roc_auc']:.3f} -> {d['roc_auc']:.3f}",
                f"  value left on the table: {gap_clean:,.0f} -> {gap_drift:,.0f} "
                f"(drift costs {gap_drift - gap_clean:,.0f} over the window)",
                f"  card-testing frauds: {self.scenario4_frauds:,}, of which the model ranks "
                f"{self.scenario4_caught_share:.0%} in the daily top k",
            ]
        )


def compare_drift(spec: ProjectSpec, clean: RunResult, drifted: RunResult) -> DriftComparison:
    """Compare a clean run with the same run where the drift scenario is active."""
    test = drifted.prepared.split.test
    s4 = test["TX_FRAUD_SCENARIO"].to_numpy() == 4
    k = spec.business_value.build().k
    from fullcycle.metrics.technical import daily_top_k_cards

    reviews = daily_top_k_cards(test, drifted.scores, k)
    s4_cards = set(zip(test.loc[s4, "TX_TIME_DAYS"], test.loc[s4, "CUSTOMER_ID"], strict=True))
    caught = sum((d, c) in s4_cards for d, c in zip(reviews["day"], reviews["card"], strict=True))
    share = caught / len(s4_cards) if s4_cards else float("nan")
    return DriftComparison(clean.scorecard, drifted.scorecard, int(s4.sum()), share)


def with_scale(spec: ProjectSpec, **params) -> ProjectSpec:
    """A copy of ``spec`` with simulator parameters changed, the team's capacity scaled alike.

    ``k`` of the business value model follows the customer count (see :func:`at_scale`).
    """
    full = spec.data.params.get("n_customers", 5000)
    merged = {**spec.data.params, **params}
    value_params = dict(spec.business_value.params)
    if "k" in value_params or spec.business_value.model == "fraud_investigation":
        k = value_params.get("k", 100)
        value_params["k"] = max(1, round(k * merged.get("n_customers", full) / full))
    data = spec.data.model_copy(update={"params": merged})
    value = spec.business_value.model_copy(update={"params": value_params})
    return spec.model_copy(update={"data": data, "business_value": value})
