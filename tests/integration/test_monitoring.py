"""Does the monitor flag the window where card testing starts, and stay quiet on a clean one?"""

from __future__ import annotations

import json

import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from fullcycle.data import simulate_transactions, validate_transactions
from fullcycle.features import FEATURE_NAMES, FraudFeatures
from fullcycle.metrics.business import FraudInvestigationValue
from fullcycle.monitoring import VERDICT_SCHEMA, monitor

pytestmark = pytest.mark.integration

# 1,000 cards; the model trains on days 40-46, the reference is the unseen week 53-59
# and the current window is days 60-66, where card testing starts in the drifted world.
DRIFT_DAY = 60


def _world(drift: bool):
    sim = simulate_transactions(
        n_customers=1000,
        n_terminals=2000,
        n_days=67,
        seed=3,
        scenarios=(1, 2, 3, 4) if drift else (1, 2, 3),
        card_testing_start_day=DRIFT_DAY if drift else None,
    )
    valid = validate_transactions(sim.transactions).valid
    return valid, FraudFeatures().fit(valid, valid["TX_FRAUD"])


@pytest.fixture(scope="module")
def windows():
    clean, f_clean = _world(False)
    drifted, f_drift = _world(True)
    train = clean[clean["TX_TIME_DAYS"].between(40, 46)]
    model = HistGradientBoostingClassifier(max_iter=100, max_leaf_nodes=15, random_state=0)
    model.fit(f_clean.transform(train), train["TX_FRAUD"])

    def served(valid, feats, lo, hi):
        rows = valid[valid["TX_TIME_DAYS"].between(lo, hi)]
        X = feats.transform(rows)
        extra = {c: X[c].to_numpy() for c in FEATURE_NAMES if c != "TX_AMOUNT"}
        return rows.assign(score=model.predict_proba(X)[:, 1], **extra)

    return {
        "reference": served(clean, f_clean, 53, 59),
        "clean": served(clean, f_clean, 60, 66),
        "drift": served(drifted, f_drift, 60, 66),
    }


VALUE = FraudInvestigationValue(k=20)


def test_is_the_clean_window_quiet(windows, tmp_path):
    result = monitor(windows["reference"], windows["clean"], FEATURE_NAMES, value_model=VALUE)
    assert not result.drifted, result.reasons
    paths = result.write(tmp_path, windows["reference"], windows["clean"], "clean")
    verdict = json.loads(paths["verdict"].read_text())
    assert verdict["schema"] == VERDICT_SCHEMA and verdict["verdict"] == "ok"
    assert verdict["drifted_features"] == []


def test_is_the_card_testing_window_flagged(windows, tmp_path):
    """Card testing is ~3% of the traffic: inputs barely move, the AUC falls once labels are in."""
    result = monitor(windows["reference"], windows["drift"], FEATURE_NAMES, value_model=VALUE)
    assert result.drifted
    assert any("ROC AUC fell" in r for r in result.reasons), result.reasons
    assert result.performance["auc_drop"] > 0.1
    paths = result.write(tmp_path, windows["reference"], windows["drift"], "drift")
    page = paths["report"].read_text()
    assert "Verdict: DRIFT" in page and page.count("data:image/png;base64,") == 3
    assert json.loads(paths["verdict"].read_text())["verdict"] == "drift"


def test_does_the_monitor_wait_for_labels(windows):
    """Without labels the performance layer says so instead of guessing."""
    current = windows["drift"].assign(TX_FRAUD=float("nan"))
    result = monitor(windows["reference"], current, FEATURE_NAMES, value_model=VALUE)
    assert result.performance["current"]["status"] == "waiting for labels"
    assert "auc_drop" not in result.performance


def test_does_a_shifted_input_trip_the_input_layer(windows):
    shifted = windows["clean"].assign(TX_AMOUNT=windows["clean"]["TX_AMOUNT"] * 1.5)
    result = monitor(windows["reference"], shifted, FEATURE_NAMES, value_model=VALUE)
    assert "TX_AMOUNT" in result.verdict()["drifted_features"]
