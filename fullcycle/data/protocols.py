"""Evaluation protocols for recommenders: a time split with a scoring window, and a stratified split.

Both take an interaction events frame (``USER_ID``, ``ITEM_ID``, ``EVENT_DAY``,
``EVENT_ID``, ... as the interaction simulator and the MovieLens loader return it)
and give the events a recommender may learn from (``train``) and the events that
say what was relevant (``truth``). Relevance is binary: an item is relevant to a
user when the user has any event with it in ``truth``
(:mod:`fullcycle.metrics.ranking` scores recommendations against it).

:func:`interaction_time_split` is the track's protocol: learn from the past, score
the days that follow, as a deployed recommender would. :func:`stratified_split` is
the per-user random 75/25 split of Microsoft Recommenders' quick starts, kept so
that a model can be compared with the numbers they publish on MovieLens-100k.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from fullcycle.exceptions import ConfigError, DataError

__all__ = ["InteractionSplit", "interaction_time_split", "stratified_split"]


@dataclass(frozen=True)
class InteractionSplit:
    """The events to learn from and the events to score against.

    Attributes
    ----------
    train : DataFrame
        Events a recommender may learn from (and use to exclude seen items).
    truth : DataFrame
        Events that define relevance: a (user, item) pair in it is relevant.
    protocol : str
        ``"time"`` or ``"stratified"``.
    detail : dict
        What the protocol did (days, counts of rows dropped and why).
    """

    train: pd.DataFrame
    truth: pd.DataFrame
    protocol: str
    detail: dict = field(default_factory=dict)


def _require(events: pd.DataFrame, columns: tuple[str, ...], where: str) -> None:
    if not isinstance(events, pd.DataFrame):
        raise DataError(f"{where} needs a DataFrame of interaction events, got {type(events)}")
    missing = [c for c in columns if c not in events]
    if missing:
        raise DataError(
            f"{where} needs columns {missing} of the interaction events frame; got "
            f"{list(events.columns)} (load events with the simulator or the MovieLens loader)"
        )


def _pair_keys(frame: pd.DataFrame) -> pd.MultiIndex:
    return pd.MultiIndex.from_arrays([frame["USER_ID"].to_numpy(), frame["ITEM_ID"].to_numpy()])


def _drop_seen(truth: pd.DataFrame, seen: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """``truth`` without the (user, item) pairs that occur in ``seen``, and how many rows left."""
    if truth.empty or seen.empty:
        return truth, 0
    known = _pair_keys(truth).isin(_pair_keys(seen))
    return truth[~known], int(known.sum())


def _count_new(frame: pd.DataFrame, before: pd.DataFrame, column: str) -> int:
    """How many distinct values of ``column`` in ``frame`` never occur in ``before``."""
    return int(pd.Index(frame[column].unique()).difference(before[column].unique()).size)


def interaction_time_split(
    events: pd.DataFrame,
    train_end_day: int,
    score_days: int,
    *,
    train_days: int | None = None,
    drop_seen: bool = True,
) -> InteractionSplit:
    """Learn from the days before ``train_end_day``; score the ``score_days`` days from it.

    ``train`` holds the events with ``EVENT_DAY < train_end_day`` (only the last
    ``train_days`` days of them when given); ``truth`` holds the events with
    ``train_end_day <= EVENT_DAY < train_end_day + score_days``, the scoring window.
    A user first seen in the window (cold start) is in ``truth`` and is scored:
    the recommender needs a fallback for them. So is an item first seen there.

    Parameters
    ----------
    events : DataFrame
        Interaction events with ``EVENT_DAY``, ``USER_ID`` and ``ITEM_ID``.
    train_end_day : int
        First day of the scoring window; training stops the day before.
    score_days : int
        Length of the scoring window in days (>= 1).
    train_days : int, optional
        Keep only the last ``train_days`` days before the window in ``train``
        (``None``: every earlier day).
    drop_seen : bool
        Remove from ``truth`` the (user, item) pairs the user already had an
        event with before the window (on any earlier day, whatever
        ``train_days``). Recommenders in this track exclude items a user has
        seen, so those pairs could never be hit; a learner who recommends
        repeat purchases sets this to ``False``.

    Returns
    -------
    InteractionSplit
        ``protocol="time"``; ``detail`` holds ``train_days`` and ``score_days``
        (first and last day of each, inclusive), ``seen_rows_dropped``,
        ``new_users`` and ``new_items`` (users and items of ``truth`` with no
        event before the window).

    Raises
    ------
    DataError
        When a column is missing, the window reaches past the data, or no
        event falls before the window.
    """
    _require(events, ("EVENT_DAY", "USER_ID", "ITEM_ID"), "interaction_time_split")
    if score_days < 1:
        raise DataError(f"interaction_time_split: score_days must be >= 1, got {score_days}")
    if train_days is not None and train_days < 1:
        raise DataError(
            f"interaction_time_split: train_days must be >= 1 or None (all history), "
            f"got {train_days}"
        )
    day = events["EVENT_DAY"].to_numpy()
    if len(day) == 0:
        raise DataError("interaction_time_split: the events frame is empty")
    last = train_end_day + score_days - 1
    if day.max() < last:
        raise DataError(
            f"interaction_time_split: the data ends on day {int(day.max())} but the scoring "
            f"window needs days {train_end_day}..{last}; simulate more days or move "
            "train_end_day earlier"
        )
    first_train = int(day.min()) if train_days is None else train_end_day - train_days
    history = events[day < train_end_day]
    if history.empty:
        raise DataError(
            f"interaction_time_split: no event before day {train_end_day} (the data starts on "
            f"day {int(day.min())}); move train_end_day later"
        )
    train = history if train_days is None else history[history["EVENT_DAY"] >= first_train]
    truth = events[(day >= train_end_day) & (day <= last)]
    dropped = 0
    if drop_seen:
        truth, dropped = _drop_seen(truth, history)
    detail = {
        "train_days": (max(first_train, int(day.min())), train_end_day - 1),
        "score_days": (train_end_day, last),
        "seen_rows_dropped": dropped,
        "new_users": _count_new(truth, history, "USER_ID"),
        "new_items": _count_new(truth, history, "ITEM_ID"),
    }
    return InteractionSplit(train, truth, "time", detail)


_STRATA = {"user": "USER_ID", "item": "ITEM_ID"}


def stratified_split(
    events: pd.DataFrame,
    ratio: float = 0.75,
    seed: int = 42,
    *,
    by: str = "user",
    min_events: int = 1,
    drop_seen: bool = True,
) -> InteractionSplit:
    """Per user, a random ``ratio`` of their events to ``train`` and the rest to ``truth``.

    This is the algorithm of Microsoft Recommenders'
    ``python_stratified_split(data, ratio=0.75, seed=42)`` (module
    ``recommenders.datasets.python_splitters``), which its SAR quick start on
    MovieLens-100k uses (train 74,992 ratings, test 25,008, 943 users on both
    sides; MAP 0.110591, nDCG@10 0.382461, precision@10 0.330753, recall@10
    0.176385, the SAR row of its README's comparison table):

    1. one uniform number per event, drawn with NumPy's legacy Mersenne Twister
       seeded with ``seed`` (``np.random.seed(seed); np.random.rand(n)``);
    2. within each user, the events in increasing order of their number take
       positions 1..n;
    3. an event goes to ``train`` when ``position / n <= ratio`` (in floating
       point), otherwise to ``truth``.

    A user with ``n`` events therefore has ``floor(ratio * n)`` of them in
    ``train`` (with ``ratio=0.75``: 1 event -> 0, 2 -> 1, 3 -> 2, 4 -> 3). **A user
    with a single event lands wholly in ``truth``** (a cold-start user, scored
    with nothing to learn from), exactly as in Microsoft's splitter; pass
    ``min_events=2`` (their ``min_rating``) to drop such users from both sides.

    What matches Microsoft's split and what may differ:

    - The train/test assignment is the same, row for row, when the numbers are
      drawn in the same row order. Microsoft draws them in the order of its
      data frame, which for ``movielens.load_pandas_df`` is the line order of
      ``u.data``. Here they are drawn in ``EVENT_ID`` order (the events frame
      itself is sorted by time), so the split is identical when the loader
      numbers events in file order; otherwise the counts per user are still
      identical and only which events of a user go where differs.
    - The rows come back in the order of ``events``, not sorted by user as
      Microsoft's are.
    - ``drop_seen`` (default on) removes from ``truth`` the (user, item) pairs
      that also occur in the user's ``train`` events. MovieLens has one rating
      per pair, so this removes nothing there; on event logs with several
      events per pair (views, carts, purchases) it removes many, and the
      realised truth share falls below ``1 - ratio``.
    - Microsoft's README table also holds rows from other notebooks whose
      protocol differs (its BPR deep dive uses ``python_random_split``, a global
      75/25 split, and reports nDCG@10 0.403395 rather than the table's 0.441997),
      so only the SAR row is known to come from exactly this protocol.

    Parameters
    ----------
    events : DataFrame
        Interaction events with ``USER_ID``, ``ITEM_ID`` and ``EVENT_ID``.
    ratio : float
        Share of each user's events that goes to ``train``, in (0, 1).
    seed : int
        Seed of the random numbers (Microsoft's quick starts use 42).
    by : {"user", "item"}
        Stratify by user (the quick starts) or by item (Microsoft's
        ``filter_by="item"``, which one version of its benchmark notebook uses).
    min_events : int
        Drop users (items when ``by="item"``) with fewer events than this from
        both sides first (Microsoft's ``min_rating``; 1 keeps everyone).
    drop_seen : bool
        Remove from ``truth`` the (user, item) pairs seen in the user's ``train``.

    Returns
    -------
    InteractionSplit
        ``protocol="stratified"``; ``detail`` holds ``ratio``, ``seed``, ``by``,
        ``dropped_for_min_events`` (rows), ``truth_only_users`` (users with no
        ``train`` event) and ``seen_rows_dropped``.

    Raises
    ------
    ConfigError
        When ``ratio`` is not in (0, 1), ``by`` is unknown or ``min_events < 1``.
    DataError
        When a column is missing or ``EVENT_ID`` repeats.
    """
    if by not in _STRATA:
        raise ConfigError(f"stratified_split: unknown by={by!r}; choose from {sorted(_STRATA)}")
    if not 0 < ratio < 1:
        raise ConfigError(f"stratified_split: ratio must be in (0, 1), got {ratio}")
    if min_events < 1:
        raise ConfigError(f"stratified_split: min_events must be >= 1, got {min_events}")
    _require(events, ("EVENT_ID", "USER_ID", "ITEM_ID"), "stratified_split")
    if events["EVENT_ID"].duplicated().any():
        raise DataError(
            "stratified_split: EVENT_ID repeats; the random numbers are drawn in EVENT_ID "
            "order, so each event needs its own id (deduplicate or renumber the events)"
        )
    stratum = _STRATA[by]
    counts = events.groupby(stratum, sort=False)[stratum].transform("size").to_numpy()
    kept = counts >= min_events
    frame = events[kept]
    n = len(frame)
    # The legacy generator, not numpy.random.default_rng: its stream for a seed is the one
    # Microsoft's splitter draws from (np.random.seed(seed); np.random.rand(n)).
    draws_by_id = np.random.RandomState(seed).random_sample(n)
    order_by_id = np.argsort(frame["EVENT_ID"].to_numpy(), kind="stable")
    draws = np.empty(n)
    draws[order_by_id] = draws_by_id
    groups = frame[stratum].to_numpy()
    # Within each stratum, position 1..n in increasing order of the draws (Microsoft sorts
    # by user, then draw, and takes cumcount + 1); then position / n <= ratio goes to train.
    order = np.lexsort((draws, groups))
    sorted_groups = groups[order]
    first_of_group = np.ones(n, dtype=bool)
    first_of_group[1:] = sorted_groups[1:] != sorted_groups[:-1]
    group_start = np.maximum.accumulate(np.where(first_of_group, np.arange(n), 0))
    position = np.empty(n)
    position[order] = np.arange(n) - group_start + 1.0
    in_train = position / counts[kept].astype(float) <= ratio
    train = frame[in_train]
    truth = frame[~in_train]
    dropped = 0
    if drop_seen:
        truth, dropped = _drop_seen(truth, train)
    detail = {
        "ratio": ratio,
        "seed": seed,
        "by": by,
        "dropped_for_min_events": int((~kept).sum()),
        "truth_only_users": _count_new(truth, train, "USER_ID"),
        "seen_rows_dropped": dropped,
    }
    return InteractionSplit(train, truth, "stratified", detail)
