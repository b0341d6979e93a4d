"""Do the metrics and the business value model match hand-computed small cases?"""

import math

import pandas as pd
import pytest

from fullcycle.exceptions import ConfigError, DataError
from fullcycle.metrics import (
    FraudInvestigationValue,
    card_precision_at_k,
    daily_top_k_cards,
    get_value_model,
    roc_auc,
)
from fullcycle.metrics.technical import parse_metric_name


def _frame():
    """Two days, four cards. Card 1 is compromised on both days, card 2 on day 1 only."""
    return pd.DataFrame(
        {
            "TX_TIME_DAYS": [0, 0, 0, 0, 1, 1, 1],
            "CUSTOMER_ID": [1, 2, 3, 4, 1, 3, 4],
            "TX_FRAUD": [1, 1, 0, 0, 1, 0, 0],
            "TX_AMOUNT": [100.0, 50.0, 20.0, 500.0, 200.0, 30.0, 10.0],
        }
    )


SCORES = [0.9, 0.2, 0.8, 0.1, 0.9, 0.5, 0.4]


def test_card_precision_drops_cards_already_caught():
    """Day 0, k=2: cards 1 (fraud) and 3 reviewed -> 1/2. Day 1: card 1 is caught already,
    so cards 3 and 4 are reviewed -> 0/2. Mean 0.25."""
    cp = card_precision_at_k(_frame(), SCORES, k=2)
    assert cp.per_day.tolist() == [0.5, 0.0]
    assert cp.mean == 0.25
    reviews = daily_top_k_cards(_frame(), SCORES, k=2)
    assert reviews[reviews["day"] == 1]["card"].tolist() == [3, 4]


def test_fraud_value_by_hand():
    """k=2, review 10, recovery 0.8, friction 15.
    Day 0: card 1 caught: 0.8*100 recovered + 200 prevented (its day-1 fraud) - 10;
           card 3 false alarm: -10 - 15.
    Day 1: cards 3 and 4 false alarms: 2 * (-25).
    Net = 270 - 25 - 50 = 195."""
    model = FraudInvestigationValue(k=2, review_cost=10, recovery_rate=0.8, friction_cost=15)
    report = model.evaluate(_frame(), SCORES)
    assert report.net_value == pytest.approx(195.0)
    assert report.per_day.tolist() == pytest.approx([245.0, -50.0])
    assert report.detail["caught_cards"] == 1
    assert report.detail["false_alarms"] == 3
    assert report.detail["prevented"] == pytest.approx(200.0)


def test_oracle_and_baseline_by_hand():
    """Oracle: day 0 reviews cards 1 (worth 300) and 2 (50); day 1 nothing left to catch.
    (0.8*100 + 200 - 10) + (0.8*50 - 10) = 270 + 30 = 300.
    Rule (largest payment): day 0 cards 4 (500, genuine) and 1; day 1 card 3 and 4.
    = (-25) + 270 + (-25) + (-25) = 195."""
    model = FraudInvestigationValue(k=2, review_cost=10, recovery_rate=0.8, friction_cost=15)
    oracle = model.evaluate(_frame(), None)
    assert oracle.net_value == pytest.approx(300.0)
    assert oracle.detail["false_alarms"] == 0
    base = model.evaluate(_frame(), model.baseline_scores(_frame()))
    assert base.net_value == pytest.approx(195.0)
    model_report = model.evaluate(_frame(), SCORES)
    assert model_report.share_of(oracle) == pytest.approx(0.65)
    assert model_report.times(base) == pytest.approx(1.0)


def test_without_prevention_only_recovery_counts():
    """With block_prevents_future off, card 1 yields only 0.8*100 on day 0 and is still dropped."""
    model = FraudInvestigationValue(
        k=2, review_cost=10, recovery_rate=0.8, friction_cost=15, block_prevents_future=False
    )
    assert model.evaluate(_frame(), SCORES).net_value == pytest.approx(195.0 - 200.0)


def test_roc_auc_and_bad_scores():
    """Is AUC right on a tiny case, NaN for one class, and are NaN scores refused?"""
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert math.isnan(roc_auc([0, 0], [0.1, 0.2]))
    with pytest.raises(DataError, match="NaN"):
        roc_auc([0, 1], [0.1, float("nan")])
    with pytest.raises(DataError, match="NaN"):
        card_precision_at_k(_frame(), [float("inf")] * 7, k=2)


def test_value_models_registry_and_parameters():
    """Does the registry build by name and refuse unknown names and parameters with choices?"""
    assert isinstance(get_value_model("fraud_investigation", k=5), FraudInvestigationValue)
    with pytest.raises(ConfigError, match="choose from"):
        get_value_model("lottery")
    with pytest.raises(ConfigError, match="its parameters are"):
        get_value_model("fraud_investigation", budget=3)
    with pytest.raises(ConfigError, match="recovery_rate"):
        FraudInvestigationValue(recovery_rate=1.5)


def test_metric_names():
    """Are metric names parsed, and unknown ones refused with the choices?"""
    assert parse_metric_name("card_precision@100") == ("card_precision", 100)
    with pytest.raises(ValueError, match="choose from"):
        parse_metric_name("accuracy")
