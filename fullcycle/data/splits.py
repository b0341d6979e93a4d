"""Time splits that respect label delay: train window, delay gap, scoring window."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from fullcycle.exceptions import DataError

__all__ = ["TimeSplit", "time_split"]


@dataclass(frozen=True)
class TimeSplit:
    """Row masks of a delayed time split, and the days that define it."""

    train: pd.DataFrame
    history: pd.DataFrame
    test: pd.DataFrame
    train_days: tuple[int, int]
    test_days: tuple[int, int]


def time_split(
    df: pd.DataFrame,
    train_start_day: int,
    train_days: int = 7,
    delay_days: int = 7,
    test_days: int = 7,
    drop_known_compromised: bool = True,
    day: str = "TX_TIME_DAYS",
    card: str = "CUSTOMER_ID",
    label: str = "TX_FRAUD",
) -> TimeSplit:
    """Split transactions into a training window, a delay gap and a scoring window.

    Parameters
    ----------
    df : DataFrame
        Validated transactions.
    train_start_day : int
        First training day (``TX_TIME_DAYS``).
    train_days, delay_days, test_days : int
        Lengths of the three windows. The delay is the time fraud labels take
        to arrive: transactions in the gap are not trained on.
    drop_known_compromised : bool
        Remove from each scoring day the cards already known to be
        compromised (a fraud at least ``delay_days`` before that day, since
        the training start), as in the handbook's protocol: those cards are
        blocked already.

    Returns
    -------
    TimeSplit
        ``train`` (the training window), ``history`` (everything before the
        scoring window, whose labels the feature windows may use once they
        are ``delay_days`` old) and ``test`` (the scoring window).
    """
    for c in (day, card, label):
        if c not in df:
            raise DataError(f"time_split needs column {c!r}")
    if min(train_days, test_days) < 1 or delay_days < 0:
        raise DataError("time_split: train_days and test_days must be >= 1 and delay_days >= 0")
    d = df[day].to_numpy()
    train_end = train_start_day + train_days
    test_start = train_end + delay_days
    test_end = test_start + test_days
    if d.max() < test_end - 1:
        raise DataError(
            f"time_split: the data ends on day {int(d.max())} but the scoring window needs days "
            f"{test_start}..{test_end - 1}; simulate more days or move train_start_day earlier"
        )
    train = df[(d >= train_start_day) & (d < train_end)]
    history = df[d < test_start]
    test_mask = (d >= test_start) & (d < test_end)
    if drop_known_compromised:
        since = df[(d >= train_start_day) & (df[label].to_numpy() == 1)]
        first_fraud = since.groupby(card)[day].min()
        ff = df[card].map(first_fraud).to_numpy(dtype=float)
        known = ~np.isnan(ff) & (ff <= d - delay_days)
        test_mask &= ~known
    test = df[test_mask]
    return TimeSplit(
        train, history, test, (train_start_day, train_end - 1), (test_start, test_end - 1)
    )
