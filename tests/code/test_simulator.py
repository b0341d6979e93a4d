"""Does the simulator follow its published design, deterministically?"""

import numpy as np
import pandas as pd
import pytest

from fullcycle.data import TRANSACTION_COLUMNS, simulate_transactions
from fullcycle.exceptions import DataError


def test_same_seed_same_data_and_other_seed_other_data():
    """Is the simulator deterministic for a seed, and does the seed matter?"""
    a = simulate_transactions(n_customers=200, n_terminals=400, n_days=30, seed=5).transactions
    b = simulate_transactions(n_customers=200, n_terminals=400, n_days=30, seed=5).transactions
    c = simulate_transactions(n_customers=200, n_terminals=400, n_days=30, seed=6).transactions
    pd.testing.assert_frame_equal(a, b)
    assert len(a) != len(c) or not a["TX_AMOUNT"].equals(c["TX_AMOUNT"])


def test_columns_types_and_order(small_tx):
    """Are the columns the handbook's (plus channel), sorted by time with unique ids?"""
    assert list(small_tx.columns) == TRANSACTION_COLUMNS
    assert small_tx["TX_DATETIME"].is_monotonic_increasing
    assert small_tx["TRANSACTION_ID"].is_unique
    assert (small_tx["TX_AMOUNT"] >= 0).all()
    secs = (small_tx["TX_DATETIME"] - pd.Timestamp("2018-04-01")).dt.total_seconds()
    np.testing.assert_array_equal(secs.to_numpy(), small_tx["TX_TIME_SECONDS"].to_numpy())
    assert (small_tx["TX_TIME_DAYS"] == small_tx["TX_TIME_SECONDS"] // 86400).all()


def test_profiles_match_the_published_design(small_sim):
    """Do profiles follow U(5,100) amounts, U(0,4) rates and ~radius-5 terminal sets?"""
    c = small_sim.customers
    assert c["mean_amount"].between(5, 100).all()
    assert c["mean_nb_tx_per_day"].between(0, 4).all()
    np.testing.assert_allclose(c["std_amount"], c["mean_amount"] / 2)
    # 600 terminals on 100x100, radius 5: pi*25*0.06 ~ 4.7 reachable, fewer at the edges.
    assert 3 < c["n_reachable_terminals"].mean() < 5
    tx = small_sim.transactions
    per_cust = tx.groupby("CUSTOMER_ID").size() / 60
    rate = c.set_index("CUSTOMER_ID")["mean_nb_tx_per_day"].reindex(per_cust.index)
    assert np.corrcoef(per_cust, rate)[0, 1] > 0.95


def test_each_scenario_follows_its_rule(small_tx):
    """Is scenario 1 exactly the amounts above 220, and are 2 and 3 present?"""
    s1 = small_tx[small_tx["TX_FRAUD_SCENARIO"] == 1]
    assert (s1["TX_AMOUNT"] > 220).all()
    genuine = small_tx[small_tx["TX_FRAUD"] == 0]
    assert (genuine["TX_AMOUNT"] <= 220).all()
    counts = small_tx["TX_FRAUD_SCENARIO"].value_counts()
    assert {2, 3} <= set(counts.index)
    assert ((small_tx["TX_FRAUD"] == 1) == (small_tx["TX_FRAUD_SCENARIO"] > 0)).all()


def test_compromised_terminal_frauds_everything_there_for_a_while(small_tx):
    """Scenario 2: once a terminal is compromised, all its payments that day are fraud."""
    s2 = small_tx[small_tx["TX_FRAUD_SCENARIO"] == 2]
    day_terms = s2[["TX_TIME_DAYS", "TERMINAL_ID"]].drop_duplicates()
    same = small_tx.merge(day_terms, on=["TX_TIME_DAYS", "TERMINAL_ID"])
    # Scenario 1 can overlap (amount > 220 is tagged 1 first, then 2 overrides).
    assert (same["TX_FRAUD"] == 1).all()


def test_full_scale_fraud_rate_and_volume():
    """Does the handbook-scale run give ~1.75M transactions and ~0.8% fraud?"""
    tx = simulate_transactions().transactions
    assert 1_700_000 < len(tx) < 1_850_000
    assert 0.006 < tx["TX_FRAUD"].mean() < 0.011


def test_weekly_rhythm_makes_weekends_differ():
    """Are Saturdays busier than Sundays (the weekly rhythm), and can it be turned off?"""
    tx = simulate_transactions(n_customers=2000, n_terminals=2000, n_days=84, seed=2).transactions
    by_dow = tx.groupby(tx["TX_DATETIME"].dt.dayofweek).size()
    assert by_dow[5] > 1.15 * by_dow[6]
    flat = simulate_transactions(
        n_customers=2000, n_terminals=2000, n_days=84, seed=2, weekly_rhythm=False
    )
    by_dow = flat.transactions.groupby(flat.transactions["TX_DATETIME"].dt.dayofweek).size()
    assert by_dow.max() / by_dow.min() < 1.05


def test_card_testing_starts_on_its_day_and_not_before():
    """Does scenario 4 appear only from its start day, as small online bursts then a purchase?"""
    base = simulate_transactions(n_customers=300, n_terminals=600, n_days=40, seed=3).transactions
    tx = simulate_transactions(
        n_customers=300,
        n_terminals=600,
        n_days=40,
        seed=3,
        scenarios=(1, 2, 3, 4),
        card_testing_start_day=30,
    ).transactions
    s4 = tx[tx["TX_FRAUD_SCENARIO"] == 4]
    assert len(s4) > 0
    assert s4["TX_TIME_DAYS"].min() == 30
    assert (s4["TX_CHANNEL"] == "online").all()
    assert (s4["TX_AMOUNT"] <= 3).mean() > 0.7
    # The other scenarios are untouched: the same genuine history before day 30.
    before = tx[tx["TX_TIME_DAYS"] < 30].drop(columns="TRANSACTION_ID").reset_index(drop=True)
    pd.testing.assert_frame_equal(
        before,
        base[base["TX_TIME_DAYS"] < 30].drop(columns="TRANSACTION_ID").reset_index(drop=True),
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_customers": 0}, "n_customers"),
        ({"scenarios": (1, 9)}, "unknown scenario"),
        ({"scenarios": (4,)}, "card_testing_start_day"),
        ({"start_date": "April"}, "start_date"),
        ({"radius": -1}, "radius"),
    ],
)
def test_bad_config_is_refused_with_the_field_named(kwargs, match):
    """Does a wrong simulator setting fail with a message naming it?"""
    with pytest.raises(DataError, match=match):
        simulate_transactions(**kwargs)
