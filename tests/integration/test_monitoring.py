"""Does monitoring, with the reference kit's checks, flag the window where card testing starts
and stay quiet on a clean one?"""

from __future__ import annotations

import json

import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from fullcycle.data import simulate_transactions
from fullcycle.kit import Kit
from fullcycle.metrics.business import FraudInvestigationValue
from fullcycle.monitoring import VERDICT_SCHEMA, monitor

pytestmark = pytest.mark.integration

# 1,000 cards; the model trains on days 40-46, the reference is the unseen week 53-59
# and the current window is days 60-66, where card testing starts in the drifted world.
DRIFT_DAY = 60
DELAY = 7


@pytest.fixture(scope="module")
def kit(repo):
    return Kit(repo / "starter_kits" / "fraud_detection")


def _world(kit, drift: bool):
    sim = simulate_transactions(
        n_customers=1000,
        n_terminals=2000,
        n_days=67,
        seed=3,
        scenarios=(1, 2, 3, 4) if drift else (1, 2, 3),
        card_testing_start_day=DRIFT_DAY if drift else None,
    )
    valid = kit.validate(sim.transactions).valid
    return valid, kit.build_features(DELAY).fit(valid, valid["TX_FRAUD"])


@pytest.fixture(scope="module")
def windows(kit):
    clean, f_clean = _world(kit, False)
    drifted, f_drift = _world(kit, True)
    train = clean[clean["TX_TIME_DAYS"].between(40, 46)]
    model = HistGradientBoostingClassifier(max_iter=100, max_leaf_nodes=15, random_state=0)
    model.fit(f_clean.transform(train), train["TX_FRAUD"])

    def served(valid, feats, lo, hi):
        rows = valid[valid["TX_TIME_DAYS"].between(lo, hi)]
        X = feats.transform(rows)
        extra = {c: X[c].to_numpy() for c in X.columns if c != "TX_AMOUNT"}
        return rows.assign(score=model.predict_proba(X)[:, 1], **extra)

    return {
        "reference": served(clean, f_clean, 53, 59),
        "clean": served(clean, f_clean, 60, 66),
        "drift": served(drifted, f_drift, 60, 66),
    }


VALUE = FraudInvestigationValue(k=20)


def _monitor(kit, reference, current):
    names = list(kit.module("features").FEATURES)
    return monitor(
        reference,
        current,
        names,
        drift_check=kit.entry("drift"),
        decay_check=kit.entry("decay"),
        value_model=VALUE,
    )


def test_is_the_clean_window_quiet(kit, windows, tmp_path):
    result = _monitor(kit, windows["reference"], windows["clean"])
    assert not result.drifted, result.reasons
    assert result.checks["drift"]["drift"] is False and result.checks["decay"]["decay"] is False
    assert result.performance["current"]["status"] == "evaluated"
    paths = result.write(tmp_path, windows["reference"], windows["clean"], "clean")
    verdict = json.loads(paths["verdict"].read_text())
    assert verdict["schema"] == VERDICT_SCHEMA and verdict["verdict"] == "ok"
    assert verdict["drifted_features"] == []


def test_is_the_card_testing_window_decay(kit, windows, tmp_path):
    """Card testing is ~3% of the traffic: inputs barely move, the AUC falls once labels are in."""
    result = _monitor(kit, windows["reference"], windows["drift"])
    assert result.drifted and "decay" in result.label
    assert any(r.startswith("performance: ROC AUC fell") for r in result.reasons), result.reasons
    assert result.performance["auc_drop"] > 0.1
    paths = result.write(tmp_path, windows["reference"], windows["drift"], "drift")
    page = paths["report"].read_text()
    assert f"Verdict: {result.label.upper()}" in page
    assert page.count("data:image/png;base64,") == 3
    assert json.loads(paths["verdict"].read_text())["verdict"] == result.label


def test_does_the_monitor_wait_for_labels(kit, windows):
    """Without labels the decay check says so instead of guessing."""
    current = windows["drift"].assign(TX_FRAUD=float("nan"))
    result = _monitor(kit, windows["reference"], current)
    assert result.performance["current"]["status"] == "waiting for labels"
    assert "auc_drop" not in result.performance
    assert result.checks["decay"]["decay"] is False
    assert "waiting for labels" in result.checks["decay"]["reasons"][0]


def test_does_a_shifted_input_trip_the_drift_check(kit, windows):
    shifted = windows["clean"].assign(TX_AMOUNT=windows["clean"]["TX_AMOUNT"] * 1.5)
    result = _monitor(kit, windows["reference"], shifted)
    assert result.checks["drift"]["drift"] is True
    assert any(r.startswith("inputs: TX_AMOUNT") for r in result.reasons), result.reasons
    assert "TX_AMOUNT" in result.verdict()["drifted_features"]


def test_does_the_report_escape_what_a_check_says(kit, windows, tmp_path):
    """A check's reasons are the learner's text: the page shows them, never runs them."""

    def loud(reference, current):
        return {"drift": True, "reasons": ["<script>alert(1)</script>"]}

    result = monitor(windows["reference"], windows["clean"], ["TX_AMOUNT"], drift_check=loud)
    page = result.write(tmp_path, windows["reference"], windows["clean"])["report"].read_text()
    assert "<script>" not in page and "&lt;script&gt;" in page
