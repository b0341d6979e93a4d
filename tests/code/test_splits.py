"""Does the time split leave out exactly the cards the handbook counts as known to be compromised?"""

import pandas as pd
import pytest

from fullcycle.data import time_split
from fullcycle.exceptions import ConfigError

# Training days 1-2, a 2-day delay (days 3-4), scoring days 5-6.
SPLIT = {"train_start_day": 1, "train_days": 2, "delay_days": 2, "test_days": 2}

#: Each card's one fraud day (None: never).
FRAUD_DAY = {
    "A": 2,  # on d - delay - 1 for d = 5: known on day 5 by both rules
    "B": 3,  # on d - delay for d = 5: known on day 5 only through_delay; on day 6 by both
    "C": 0,  # before the training start: never counted
    "D": None,
    "E": 5,  # on a scoring day: not known before day 8 (handbook) or 7 (through_delay)
}


def _frame() -> pd.DataFrame:
    """One transaction per card and day, days 0-6."""
    rows = [
        {
            "TRANSACTION_ID": 10 * day + i,
            "TX_TIME_DAYS": day,
            "CUSTOMER_ID": card,
            "TX_FRAUD": int(FRAUD_DAY[card] == day),
        }
        for day in range(7)
        for i, card in enumerate(FRAUD_DAY)
    ]
    return pd.DataFrame(rows)


def _scored(rule: str, drop: bool = True) -> set[tuple[int, str]]:
    test = time_split(_frame(), **SPLIT, drop_known_compromised=drop, known_compromised=rule).test
    return set(zip(test["TX_TIME_DAYS"], test["CUSTOMER_ID"], strict=True))


def test_the_handbook_rule_is_the_default():
    """A fraud on day d - delay - 1 is known on day d; one on day d - delay is not yet."""
    default = time_split(_frame(), **SPLIT).test
    assert set(zip(default["TX_TIME_DAYS"], default["CUSTOMER_ID"], strict=True)) == _scored(
        "handbook"
    )
    assert _scored("handbook") == {
        (5, "B"),
        (5, "C"),
        (5, "D"),
        (5, "E"),
        (6, "C"),
        (6, "D"),
        (6, "E"),
    }


def test_the_through_delay_rule_knows_one_day_earlier():
    """With labels of day d - delay in before day d, card B already leaves day 5."""
    assert _scored("through_delay") == {(5, "C"), (5, "D"), (5, "E"), (6, "C"), (6, "D"), (6, "E")}


def test_keeping_known_cards_keeps_every_scoring_row():
    assert _scored("handbook", drop=False) == {(d, c) for d in (5, 6) for c in FRAUD_DAY}


def test_an_unknown_rule_is_refused():
    with pytest.raises(ConfigError, match=r"known_compromised rule 'weekly'; choose from"):
        time_split(_frame(), **SPLIT, known_compromised="weekly")


def _handbook_scoring_set(tx, start, delta_train, delta_delay, delta_test):
    """The scoring set as the handbook's ``get_train_test_set`` builds it, day by day."""
    day = tx["TX_TIME_DAYS"]
    train = tx[(day >= start) & (day < start + delta_train)]
    known = set(train.loc[train["TX_FRAUD"] == 1, "CUSTOMER_ID"])
    parts = []
    for i in range(delta_test):
        today = tx[day == start + delta_train + delta_delay + i]
        reported = tx[day == start + delta_train + i - 1]
        known |= set(reported.loc[reported["TX_FRAUD"] == 1, "CUSTOMER_ID"])
        parts.append(today[~today["CUSTOMER_ID"].isin(known)])
    return pd.concat(parts)


def test_the_handbook_rule_matches_the_handbooks_loop(small_tx):
    """On a simulated world, is the scoring set the one the handbook's own loop gives?"""
    args = {"train_start_day": 20, "train_days": 7, "delay_days": 7, "test_days": 7}
    ours = time_split(small_tx, **args).test
    theirs = _handbook_scoring_set(small_tx, 20, 7, 7, 7)
    assert sorted(ours["TRANSACTION_ID"]) == sorted(theirs["TRANSACTION_ID"])
    # The rule matters in this world: the other one scores fewer rows.
    assert len(time_split(small_tx, **args, known_compromised="through_delay").test) < len(ours)
