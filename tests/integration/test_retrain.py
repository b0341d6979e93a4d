"""Governed retraining: the kit's rule decides, the library trains, scores and records.

The rule itself (``retrain:should_promote`` of the reference kit) is checked on hand-made
cases first; then a better challenger is promoted, a worse one is not, and both are recorded.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import HistGradientBoostingClassifier

from fullcycle import tracking
from fullcycle.data import simulate_transactions
from fullcycle.exceptions import ConfigError
from fullcycle.kit import Kit, NotImplementedStage
from fullcycle.retrain import ask_promotion_rule, retrain
from fullcycle.run import at_scale
from fullcycle.spec import find_project

DELAY = 7


@pytest.fixture(scope="module")
def kit(repo):
    return Kit(repo / "starter_kits" / "fraud_detection")


# --- the reference promotion rule, on the cases the grader asks about -----------------------


def _result(net_value, roc_auc):
    return {
        "net_value": net_value,
        "roc_auc": roc_auc,
        "rows": 10_000,
        "per_day_net_value": [net_value / 7] * 7,
    }


CHAMPION = _result(10_000.0, 0.85)


@pytest.mark.parametrize(
    ("challenger", "promote", "why"),
    [
        (_result(11_000.0, 0.84), True, "above the 5% margin (10,500)"),
        (_result(9_000.0, 0.93), False, "not more than the champion's 10,000"),
        (_result(10_400.0, 0.90), False, "plus the 5% margin (10,500)"),
        (_result(50_000.0, 0.70), False, "below the gate 0.8"),
        (_result(50_000.0, float("nan")), False, "below the gate 0.8"),
    ],
    ids=["more-money", "better-auc-less-money", "inside-the-margin", "under-the-gate", "nan-auc"],
)
def test_does_the_rule_promote_on_money_with_a_margin(kit, challenger, promote, why):
    """Better in money -> promote; better in AUC but worse in money -> keep; inside the
    margin -> keep; under the AUC gate -> keep, whatever it earns. (A rule that always
    promotes fails three of these; the grader's retraining probe asks the same.)"""
    verdict = kit.entry("promotion")(CHAMPION, challenger, 0.05, 0.8)
    assert verdict["promote"] is promote
    assert why in verdict["reason"]


def test_is_the_margin_a_share_of_a_negative_champion_too(kit):
    """A champion losing 1,000: the challenger must do better than -950."""
    rule = kit.entry("promotion")
    assert rule(_result(-1_000.0, 0.85), _result(-900.0, 0.85), 0.05, 0.8)["promote"] is True
    assert rule(_result(-1_000.0, 0.85), _result(-960.0, 0.85), 0.05, 0.8)["promote"] is False


def test_is_a_rule_answer_read_carefully():
    """A NumPy bool is a fine answer; anything else is refused with what came back."""
    flag, reason = ask_promotion_rule(
        lambda *a: {"promote": np.bool_(True), "reason": "why not"}, {}, {}, 0.05, 0.8
    )
    assert flag is True and reason == "why not"
    with pytest.raises(ConfigError, match="returned 'promote'"):
        ask_promotion_rule(lambda *a: "promote", {}, {}, 0.05, 0.8)

    def stub(*args):
        raise NotImplementedError("not implemented yet")

    with pytest.raises(NotImplementedStage, match="not implemented yet"):
        ask_promotion_rule(stub, {}, {}, 0.05, 0.8)


# --- retrain() end to end, with MLflow ---------------------------------------------------------


@pytest.fixture(scope="module")
def data(kit):
    sim = simulate_transactions(
        n_customers=600,
        n_terminals=1200,
        n_days=50,
        seed=4,
        scenarios=(1, 2, 3, 4),
        card_testing_start_day=36,
    )
    return kit.validate(sim.transactions).valid


@pytest.fixture
def spec(repo):
    spec = at_scale(find_project("fraud_detection", search_root=repo), "tiny")
    return spec.model_copy(update={"gate": spec.gate.model_copy(update={"min_roc_auc": 0.6})})


def good_model(seed=0):
    return HistGradientBoostingClassifier(max_iter=80, max_leaf_nodes=15, random_state=seed)


def constant_model(seed=0):
    return DummyClassifier(strategy="prior")


class RuleKit:
    """The reference kit with another promotion rule."""

    def __init__(self, kit, rule):
        self.kit, self.rule = kit, rule

    def entry(self, stage):
        return self.rule if stage == "promotion" else self.kit.entry(stage)

    def build_features(self, delay_days):
        return self.kit.build_features(delay_days)

    def build_model(self, seed=0):
        return self.kit.build_model(seed=seed)


def register(ws, spec, data, kit, factory):
    """Make a champion trained on days 15-21 (before card testing)."""
    known = data[data["TX_TIME_DAYS"] <= 28]
    feats = kit.build_features(DELAY).fit(known, known["TX_FRAUD"])
    train = known[known["TX_TIME_DAYS"].between(15, 21)]
    X = feats.transform(train)
    model = factory().fit(X, train["TX_FRAUD"])
    exp = tracking.setup_tracking(ws, spec.name)
    run_id, uri = tracking.log_model_run(
        experiment_id=exp, model=model, input_example=X, params={}, metrics={}, tags={}
    )
    return tracking.register_champion(uri, spec.name, run_id)


def decisions(ws, spec):
    tracking.setup_tracking(ws, spec.name)
    exp = mlflow.get_experiment_by_name(f"{spec.name}-decisions")
    return mlflow.search_runs([exp.experiment_id], output_format="list")


@pytest.mark.integration
def test_is_a_better_challenger_promoted_and_recorded(tmp_path, spec, data, kit, clean_mlflow_env):
    old = register(tmp_path, spec, data, kit, constant_model)
    d = retrain(spec, tmp_path, data, 49, kit=kit, model_factory=good_model, progress=None)
    assert d.promoted, d.reason
    assert d.challenger_net_value > d.champion_net_value
    assert d.rule == "retrain.py:should_promote"
    assert (d.train_days, d.eval_days) == ((29, 35), (43, 49))
    client = mlflow.MlflowClient()
    assert (
        str(client.get_model_version_by_alias(spec.name, "champion").version)
        == d.challenger_version
    )
    assert (
        client.get_model_version(spec.name, old.version).tags["replaced_by"] == d.challenger_version
    )
    [run] = decisions(tmp_path, spec)
    assert run.data.tags["decision"] == "promoted"
    assert run.data.metrics["challenger_net_value"] == pytest.approx(d.challenger_net_value)
    assert run.data.params["champion_version"] == old.version
    path = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="decision.json"
    )
    record = json.loads(Path(path).read_text())
    assert record["reason"] == d.reason and record["decided_at"] == d.decided_at


@pytest.mark.integration
@pytest.mark.parametrize(
    ("gate", "why"),
    [
        (0.6, "challenger ROC AUC 0.500 is below the gate 0.6"),
        (0.0, "not more than the champion's"),
    ],
    ids=["under-the-gate", "less-money"],
)
def test_is_a_worse_challenger_rejected_and_recorded(
    tmp_path, spec, data, kit, clean_mlflow_env, gate, why
):
    """A constant challenger (ROC AUC 0.5) is kept out by the gate; with no gate, by money."""
    spec = spec.model_copy(update={"gate": spec.gate.model_copy(update={"min_roc_auc": gate})})
    old = register(tmp_path, spec, data, kit, good_model)
    d = retrain(spec, tmp_path, data, 49, kit=kit, model_factory=constant_model, progress=None)
    assert not d.promoted
    assert why in d.reason, d.reason
    assert d.challenger_net_value < d.champion_net_value
    client = mlflow.MlflowClient()
    assert str(client.get_model_version_by_alias(spec.name, "champion").version) == old.version
    [run] = decisions(tmp_path, spec)
    assert run.data.tags["decision"] == "rejected"
    assert run.data.tags["reason"] == d.reason


@pytest.mark.integration
def test_does_the_kits_rule_decide(tmp_path, spec, data, kit, clean_mlflow_env):
    """The same better challenger, with a rule that never promotes: kept, and the rule's
    reason and figures are what MLflow records."""
    seen = {}

    def never(champion, challenger, margin, min_roc_auc):
        seen.update(champion=champion, challenger=challenger, margin=margin, gate=min_roc_auc)
        return {"promote": False, "reason": "frozen until the audit"}

    old = register(tmp_path, spec, data, kit, constant_model)
    d = retrain(
        spec, tmp_path, data, 49, kit=RuleKit(kit, never), model_factory=good_model, progress=None
    )
    assert not d.promoted and d.reason == "frozen until the audit"
    assert seen["margin"] == 0.05 and seen["gate"] == 0.6
    assert seen["challenger"]["net_value"] == pytest.approx(d.challenger_net_value)
    assert seen["champion"]["rows"] == d.eval_rows
    assert len(seen["champion"]["per_day_net_value"]) == 7
    assert sum(seen["challenger"]["per_day_net_value"]) == pytest.approx(d.challenger_net_value)
    client = mlflow.MlflowClient()
    assert str(client.get_model_version_by_alias(spec.name, "champion").version) == old.version
    [run] = decisions(tmp_path, spec)
    assert run.data.tags["reason"] == "frozen until the audit"


@pytest.mark.integration
def test_is_missing_history_a_clear_error(tmp_path, spec, data, kit, clean_mlflow_env):
    from fullcycle.exceptions import DataError

    with pytest.raises(DataError, match="needs labelled days"):
        retrain(spec, tmp_path, data, 80, kit=kit, model_factory=good_model, progress=None)
