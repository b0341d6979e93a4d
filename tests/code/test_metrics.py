"""Do the metrics, the business value model and the reference review policy match
hand-computed small cases?"""

import math

import numpy as np
import pandas as pd
import pytest

from fullcycle.exceptions import ConfigError, DataError
from fullcycle.kit import Kit
from fullcycle.metrics import (
    FraudInvestigationValue,
    card_precision_at_k,
    daily_top_k_cards,
    get_value_model,
    review_candidates,
    roc_auc,
)
from fullcycle.metrics.technical import parse_metric_name
from fullcycle.monitoring import window_performance


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
    = (-25) + 270 + (-25) + (-25) = 195. A ratio to a value that is not positive means
    nothing: NaN."""
    model = FraudInvestigationValue(k=2, review_cost=10, recovery_rate=0.8, friction_cost=15)
    oracle = model.evaluate(_frame(), None)
    assert oracle.net_value == pytest.approx(300.0)
    assert oracle.detail["false_alarms"] == 0
    base = model.evaluate(_frame(), model.baseline_scores(_frame()))
    assert base.net_value == pytest.approx(195.0)
    model_report = model.evaluate(_frame(), SCORES)
    assert model_report.share_of(oracle) == pytest.approx(195 / 300)
    assert model_report.times(base) == pytest.approx(1.0)  # both earn 195 ...
    assert oracle.times(base) == pytest.approx(300 / 195)  # ... so the direction shows here
    no_prevention = FraudInvestigationValue(
        k=2, review_cost=10, recovery_rate=0.8, friction_cost=15, block_prevents_future=False
    )
    losing = no_prevention.evaluate(_frame(), SCORES)  # 195 - 200: see the next test
    assert losing.net_value == pytest.approx(-5.0)
    assert math.isnan(oracle.times(losing)) and math.isnan(oracle.share_of(losing))


def test_the_oracle_never_spends_a_review_on_a_card_day_without_fraud():
    """Card 1 pays honestly on day 0 and is stolen on day 1 (1,000); card 2 is stolen on day 0 (50).
    With one review a day the oracle catches card 2 on day 0 and card 1 on day 1:
    (0.8*50 - 10) + (0.8*1000 - 10) = 30 + 790 = 820. Reviewing card 1 on day 0, for the
    fraud still to come, would catch nothing that day and lose card 2."""
    frame = pd.DataFrame(
        {
            "TX_TIME_DAYS": [0, 0, 1],
            "CUSTOMER_ID": [1, 2, 1],
            "TX_AMOUNT": [20.0, 50.0, 1000.0],
            "TX_FRAUD": [0, 1, 1],
        }
    )
    model = FraudInvestigationValue(k=1, review_cost=10, recovery_rate=0.8, friction_cost=15)
    oracle = model.evaluate(frame, None)
    assert oracle.detail["caught_cards"] == 2
    assert oracle.net_value == pytest.approx(820.0)
    # and no ranking does better: the best scores pick the same two reviews
    assert model.evaluate(frame, [0.0, 1.0, 1.0]).net_value == pytest.approx(820.0)


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


# --- the decision policy: candidates, priorities and what they earn -------------------------

VALUE = FraudInvestigationValue(k=2, review_cost=10, recovery_rate=0.8, friction_cost=15)


@pytest.fixture(scope="module")
def review_priority(repo):
    """The reference kit's decision policy (policy:review_priority)."""
    return Kit(repo / "starter_kits" / "fraud_detection").entry("policy")


def test_are_candidates_one_row_per_day_and_card():
    """Card 1 pays twice on day 0: its score is the higher one, amount the sum, top_amount the
    amount of its highest-scored payment. No label reaches the policy."""
    frame = pd.DataFrame(
        {
            "TX_TIME_DAYS": [0, 0, 0, 1],
            "CUSTOMER_ID": [1, 2, 1, 1],
            "TX_AMOUNT": [30.0, 5.0, 70.0, 8.0],
            "TX_FRAUD": [0, 0, 1, 0],
        }
    )
    c = review_candidates(frame, [0.2, 0.1, 0.6, 0.3])
    assert list(c.columns) == ["day", "card", "score", "amount", "top_amount", "n_tx"]
    assert c[["day", "card"]].values.tolist() == [[0, 1], [0, 2], [1, 1]]
    assert c["score"].tolist() == [0.6, 0.1, 0.3]
    assert c["amount"].tolist() == [100.0, 5.0, 8.0]
    assert c["top_amount"].tolist() == [70.0, 5.0, 8.0]
    assert c["n_tx"].tolist() == [2, 1, 1]


def test_is_the_score_as_priority_todays_top_k():
    """priority=None and priority=score review the same cards and earn the same, to the cent."""
    c = review_candidates(_frame(), SCORES)
    top = VALUE.evaluate(_frame(), SCORES)
    same = VALUE.evaluate(_frame(), SCORES, c["score"].to_numpy())
    assert same.net_value == top.net_value == pytest.approx(195.0)
    assert same.per_day.tolist() == top.per_day.tolist()
    assert top.detail["policy"] == "top_k" and same.detail["policy"] == "priority"


def test_does_the_evaluation_follow_the_priority_and_skip_nan():
    """Candidates (day, card): (0,1) (0,2) (0,3) (0,4) (1,1) (1,3) (1,4).
    Day 0: priority picks cards 2 (fraud, 0.8*50 - 10 = 30) and 4 (false alarm, -25); card 1
    (fraud) is NaN: not reviewed. Day 1: card 1 is not caught, so it is reviewed (0.8*200 - 10
    = 150); card 3 is NaN, card 4 is reviewed again (-25). Net 30 - 25 + 150 - 25 = 130."""
    priority = [np.nan, 5.0, 1.0, 3.0, 9.0, np.nan, 2.0]
    report = VALUE.evaluate(_frame(), SCORES, priority)
    assert report.per_day.tolist() == pytest.approx([5.0, 125.0])
    assert report.net_value == pytest.approx(130.0)
    assert report.detail["reviews"] == 4 and report.detail["caught_cards"] == 2


def test_are_cards_already_caught_skipped_whatever_their_priority():
    """Day 0 reviews card 1 (caught); on day 1 its top priority is ignored."""
    priority = [9.0, np.nan, np.nan, np.nan, 9.0, np.nan, np.nan]
    reviews = daily_top_k_cards(_frame(), SCORES, 2, priority=priority)
    assert reviews[["day", "card"]].values.tolist() == [[0, 1]]


def test_are_bad_priorities_refused():
    with pytest.raises(DataError, match="7 candidates"):
        VALUE.evaluate(_frame(), SCORES, [1.0, 2.0])
    with pytest.raises(ConfigError, match="oracle"):
        VALUE.evaluate(_frame(), None, [1.0] * 7)


def _losing_day():
    """One day, three genuine cards paying small amounts: every review loses 10 + 15."""
    return pd.DataFrame(
        {
            "TX_TIME_DAYS": [0, 0, 0],
            "CUSTOMER_ID": [1, 2, 3],
            "TX_AMOUNT": [20.0, 35.0, 12.0],
            "TX_FRAUD": [0, 0, 0],
        }
    )


def test_does_the_reference_policy_review_nobody_on_a_losing_day(review_priority):
    """Top-2 reviews two genuine cards: -50. The expected value of each review is negative
    (p = 0.1: 0.1 * (0.8 + 0.5) * 35 - 10 - 0.9 * 15 < 0), so the policy reviews nobody: 0."""
    frame, scores = _losing_day(), [0.1, 0.1, 0.05]
    top = VALUE.evaluate(frame, scores)
    priority = review_priority(review_candidates(frame, scores), VALUE)
    assert np.isnan(priority).all()
    policy = VALUE.evaluate(frame, scores, priority)
    assert top.net_value == pytest.approx(-50.0)
    assert policy.net_value == 0.0 and policy.detail["reviews"] == 0


def test_does_the_reference_policy_review_what_pays_most_first(review_priority):
    """Expected values, with later fraud counted as half the suspicious payment:
    card 1: 0.9 * (0.8 + 0.5) * 100 - 10 - 0.1 * 15 = 105.5;
    card 2: 0.5 * 1.3 * 400 - 10 - 0.5 * 15 = 242.5;  card 3: 0.02 * 1.3 * 30 - 10 - 14.7 < 0.
    Card 2 first, then card 1; card 3 is left alone although the capacity allows it."""
    frame = pd.DataFrame(
        {
            "TX_TIME_DAYS": [0, 0, 0],
            "CUSTOMER_ID": [1, 2, 3],
            "TX_AMOUNT": [100.0, 400.0, 30.0],
            "TX_FRAUD": [1, 0, 0],
        }
    )
    scores = [0.9, 0.5, 0.02]
    priority = review_priority(review_candidates(frame, scores), VALUE)
    assert priority[:2] == pytest.approx([105.5, 242.5]) and np.isnan(priority[2])
    value = FraudInvestigationValue(k=3, review_cost=10, recovery_rate=0.8, friction_cost=15)
    reviews = daily_top_k_cards(frame, scores, 3, priority=priority)
    assert reviews["card"].tolist() == [2, 1]
    # card 1: 0.8 * 100 - 10 = 70; card 2, a false alarm: -25. Top-3 also pays 25 for card 3.
    assert value.evaluate(frame, scores, priority).net_value == pytest.approx(45.0)
    assert value.evaluate(frame, scores).net_value == pytest.approx(20.0)


def test_does_monitoring_use_the_scorecards_card_precision():
    """k = 5 and four cards on day 0, two of them compromised: 2 / 5 = 0.4 (dividing by the
    four reviewed would say 0.5). Day 1: card 1 caught, cards 3 and 4 genuine: 0. Mean 0.2."""
    frame = _frame()
    served = frame.assign(
        TX_DATETIME=pd.Timestamp("2018-04-01") + pd.to_timedelta(frame["TX_TIME_DAYS"], "D"),
        score=SCORES,
    )
    value = FraudInvestigationValue(k=5)
    perf = window_performance(served, value)
    cp = card_precision_at_k(frame, SCORES, k=5)
    assert cp.per_day.tolist() == pytest.approx([0.4, 0.0])
    assert perf["card_precision"] == pytest.approx(cp.mean) == pytest.approx(0.2)
    assert [d["card_precision"] for d in perf["per_day"].values()] == pytest.approx([0.4, 0.0])
