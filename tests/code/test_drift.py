"""Drift statistics, the reference decay rule and how monitoring reads the kit's checks, on
samples whose answer is known."""

import numpy as np
import pandas as pd
import pytest

from fullcycle.exceptions import ConfigError
from fullcycle.kit import Kit, NotImplementedStage
from fullcycle.metrics import FraudInvestigationValue, roc_auc
from fullcycle.monitoring import DriftThresholds, cramers_v, feature_drift, monitor, psi


def test_is_psi_zero_for_the_same_sample_and_large_for_a_shift():
    rng = np.random.default_rng(0)
    a = rng.normal(size=20_000)
    assert psi(a, a) == pytest.approx(0.0, abs=1e-12)
    assert psi(a, rng.normal(size=20_000)) < 0.01
    assert psi(a, rng.normal(1.0, size=20_000)) > 0.5


def test_does_psi_handle_count_features_with_ties():
    rng = np.random.default_rng(1)
    a = rng.poisson(2, 10_000)
    assert np.isfinite(psi(a, a + 0))
    assert psi(a, rng.poisson(2, 10_000)) < 0.01
    assert psi(a, rng.poisson(4, 10_000)) > 0.3


def test_does_cramers_v_see_a_change_of_shares():
    rng = np.random.default_rng(2)
    a = rng.random(10_000) < 0.3
    v_same, p_same = cramers_v(a, rng.random(10_000) < 0.3)
    v_diff, p_diff = cramers_v(a, rng.random(10_000) < 0.6)
    assert v_same < 0.03 and p_same > 0.001
    assert v_diff > 0.25 and p_diff < 1e-10
    assert cramers_v(np.zeros(10), np.zeros(10)) == (0.0, 1.0)


def test_does_a_feature_drift_verdict_follow_its_thresholds():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=5000), rng.normal(0.3, size=5000)
    loose = feature_drift("x", a, b, DriftThresholds(psi=10, ks=0.5))
    strict = feature_drift("x", a, b, DriftThresholds(psi=10, ks=0.05))
    assert not loose.drifted and strict.drifted
    assert 0.08 < strict.statistic < 0.2


# --- the kit's decay rule on constructed windows ---------------------------------------------


@pytest.fixture(scope="module")
def check_decay(repo):
    return Kit(repo / "starter_kits" / "fraud_detection").entry("decay")


def _served(separation, frauds=150, n=3000, seed=0, labelled=1.0):
    """A week of served traffic whose scores separate frauds by ``separation`` (logit units):
    ROC AUC about Phi(separation / sqrt 2). Rows past the ``labelled`` share have no label."""
    rng = np.random.default_rng(seed)
    y = np.zeros(n, dtype=int)
    y[rng.choice(n, frauds, replace=False)] = 1
    logit = rng.normal(size=n) + separation * y - 4
    i = np.arange(n)
    frame = pd.DataFrame(
        {
            "TRANSACTION_ID": i,
            "TX_DATETIME": pd.Timestamp("2018-08-01")
            + pd.to_timedelta(i % 7, "D")
            + pd.to_timedelta(i, "s"),
            "CUSTOMER_ID": i % 400,
            "TERMINAL_ID": i % 50,
            "TX_AMOUNT": 20 + 80 * rng.random(n),
            "score": 1 / (1 + np.exp(-logit)),
            "TX_FRAUD": y.astype(float),
        }
    )
    frame.loc[i >= labelled * n, "TX_FRAUD"] = np.nan
    return frame


REFERENCE = _served(2.5)  # ROC AUC 0.966


def test_is_a_week_as_good_as_the_reference_quiet(check_decay):
    current = _served(2.5, seed=1)
    verdict = check_decay(REFERENCE, current, FraudInvestigationValue(k=20))
    assert verdict == {"decay": False, "reasons": []}


def test_is_a_clear_fall_of_the_auc_decay(check_decay):
    """0.966 -> 0.790 with 150 frauds a window: 0.18 is far beyond two standard errors."""
    current = _served(1.2, seed=1)
    verdict = check_decay(REFERENCE, current, None)
    assert verdict["decay"] is True
    assert any("ROC AUC fell from 0.966 to 0.790" in r for r in verdict["reasons"])


def test_is_a_small_fall_of_the_auc_no_decay(check_decay):
    """0.966 -> 0.919 is below the 0.10 the rule asks for."""
    assert check_decay(REFERENCE, _served(2.0, seed=1), None)["decay"] is False


def test_is_a_fall_within_the_noise_no_decay(check_decay):
    """Four frauds: the AUC falls by more than 0.10 but its standard error is larger still;
    nor does a value share built on four frauds raise an alarm."""
    current = _served(2.0, frauds=4, seed=2)
    assert (
        roc_auc(REFERENCE["TX_FRAUD"], REFERENCE["score"])
        - roc_auc(current["TX_FRAUD"], current["score"])
        >= 0.10
    )
    assert check_decay(REFERENCE, current, FraudInvestigationValue(k=20))["decay"] is False


def test_does_the_rule_wait_for_labels(check_decay):
    """Half of the current week is labelled: no verdict on performance yet, and it says why."""
    verdict = check_decay(REFERENCE, _served(1.2, seed=1, labelled=0.5), None)
    assert verdict["decay"] is False
    assert "waiting for labels" in verdict["reasons"][0]


def test_does_the_value_share_catch_what_the_auc_misses(check_decay):
    """0.966 -> 0.919 in AUC, but the team's top 20 a day now holds far fewer frauds: the
    share of the achievable value falls from 82% to 49%."""
    verdict = check_decay(REFERENCE, _served(2.0, seed=1), FraudInvestigationValue(k=20))
    assert verdict["decay"] is True
    assert [r for r in verdict["reasons"] if "achievable value fell" in r]
    assert not [r for r in verdict["reasons"] if "ROC AUC" in r]


# --- monitor() asks the checks it is given, and reads their answers carefully ----------------


def test_does_the_verdict_come_from_the_checks():
    def drift(reference, current):
        return {"drift": np.bool_(True), "reasons": ["amounts doubled"]}  # a NumPy bool is fine

    def decay(reference, current, value):
        assert list(current.columns) == [
            *["TRANSACTION_ID", "TX_DATETIME", "CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT"],
            *["score", "TX_FRAUD"],
        ]
        return {"decay": False, "reasons": ["waiting for labels"]}

    result = monitor(REFERENCE, REFERENCE, ["TX_AMOUNT"], drift_check=drift, decay_check=decay)
    assert result.drifted and result.label == "drift"
    assert result.reasons == ["inputs: amounts doubled"]
    assert "performance (no alarm): waiting for labels" in result.notes
    assert result.verdict()["checks"]["drift"]["check"] == "test_drift.py:" + (
        "test_does_the_verdict_come_from_the_checks.<locals>.drift"
    )
    quiet = monitor(REFERENCE, REFERENCE, ["TX_AMOUNT"])
    assert not quiet.drifted and quiet.label == "ok"
    assert "input drift not judged: no drift check given" in quiet.notes


def test_is_a_check_that_answers_nonsense_refused_with_what_it_said():
    def says_yes(reference, current):
        return {"drift": "yes"}

    with pytest.raises(ConfigError, match="returned {'drift': 'yes'}"):
        monitor(REFERENCE, REFERENCE, ["TX_AMOUNT"], drift_check=says_yes)


def test_is_an_unwritten_check_reported_as_not_implemented():
    def stub(reference, current, value):
        raise NotImplementedError("not implemented yet")

    with pytest.raises(NotImplementedStage, match="decay check .* not implemented yet"):
        monitor(REFERENCE, REFERENCE, ["TX_AMOUNT"], decay_check=stub)
