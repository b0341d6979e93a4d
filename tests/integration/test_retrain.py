"""Governed retraining: a better challenger is promoted, a worse one is not, both are recorded."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import HistGradientBoostingClassifier

from fullcycle import tracking
from fullcycle.data import simulate_transactions, validate_transactions
from fullcycle.features import FraudFeatures
from fullcycle.retrain import retrain
from fullcycle.run import at_scale
from fullcycle.spec import find_project

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def data():
    sim = simulate_transactions(
        n_customers=600,
        n_terminals=1200,
        n_days=50,
        seed=4,
        scenarios=(1, 2, 3, 4),
        card_testing_start_day=36,
    )
    return validate_transactions(sim.transactions).valid


@pytest.fixture
def spec(repo):
    spec = at_scale(find_project("fraud_detection", search_root=repo), "tiny")
    return spec.model_copy(update={"gate": spec.gate.model_copy(update={"min_roc_auc": 0.6})})


def good_model(seed=0):
    return HistGradientBoostingClassifier(max_iter=80, max_leaf_nodes=15, random_state=seed)


def constant_model(seed=0):
    return DummyClassifier(strategy="prior")


def register(ws, spec, data, factory):
    """Make a champion trained on days 15-21 (before card testing)."""
    known = data[data["TX_TIME_DAYS"] <= 28]
    feats = FraudFeatures().fit(known, known["TX_FRAUD"])
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


def test_is_a_better_challenger_promoted_and_recorded(tmp_path, spec, data, clean_mlflow_env):
    old = register(tmp_path, spec, data, constant_model)
    d = retrain(spec, tmp_path, data, 49, model_factory=good_model, progress=None)
    assert d.promoted, d.reason
    assert d.challenger_net_value > d.champion_net_value
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


def test_is_a_worse_challenger_rejected_and_recorded(tmp_path, spec, data, clean_mlflow_env):
    old = register(tmp_path, spec, data, good_model)
    d = retrain(spec, tmp_path, data, 49, model_factory=constant_model, progress=None)
    assert not d.promoted
    assert "below the gate" in d.reason or "not more than" in d.reason
    client = mlflow.MlflowClient()
    assert str(client.get_model_version_by_alias(spec.name, "champion").version) == old.version
    [run] = decisions(tmp_path, spec)
    assert run.data.tags["decision"] == "rejected"
    assert run.data.tags["reason"] == d.reason


def test_is_missing_history_a_clear_error(tmp_path, spec, data, clean_mlflow_env):
    from fullcycle.exceptions import DataError

    with pytest.raises(DataError, match="needs labelled days"):
        retrain(spec, tmp_path, data, 80, model_factory=good_model, progress=None)
