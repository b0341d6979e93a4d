"""Do the recommender protocols put the right events on each side: the time split with its
scoring window, and the stratified split exactly as Microsoft Recommenders draws it?"""

import numpy as np
import pandas as pd
import pytest

from fullcycle.data.protocols import interaction_time_split, stratified_split
from fullcycle.exceptions import ConfigError, DataError

COLUMNS = ["EVENT_ID", "EVENT_TIME", "EVENT_DAY", "USER_ID", "ITEM_ID", "EVENT_TYPE", "RATING"]


def _events(rows, times=None) -> pd.DataFrame:
    """(day, user, item, type) rows as an interaction events frame, ids in row order."""
    frame = pd.DataFrame(rows, columns=["EVENT_DAY", "USER_ID", "ITEM_ID", "EVENT_TYPE"])
    frame.insert(0, "EVENT_ID", np.arange(len(frame), dtype="int64"))
    hours = frame["EVENT_DAY"] * 24 if times is None else pd.Series(times)
    frame.insert(1, "EVENT_TIME", pd.Timestamp("2024-01-01") + pd.to_timedelta(hours, unit="h"))
    frame["RATING"] = np.nan
    frame["PRICE"] = 10.0
    return frame


#: Days 0-6. User 1 views item 10 on day 0 and buys it on day 4; user 3 and item 13 are new on
#: day 4; user 1's event on day 6 is after the window.
TIMELINE = _events(
    [
        (0, 1, 10, "view"),
        (1, 1, 11, "view"),
        (1, 2, 10, "view"),
        (2, 2, 12, "purchase"),
        (3, 1, 12, "view"),
        (4, 1, 10, "purchase"),
        (4, 3, 13, "view"),
        (5, 2, 11, "view"),
        (6, 1, 14, "view"),
    ]
)


def test_the_time_split_by_hand():
    """train_end_day 4, 2 scoring days: train = days 0-3 (events 0-4), truth = days 4-5
    (events 5-7) minus event 5 (user 1 had item 10 on day 0): events 6 and 7. Day 6 is out.
    New in the window: user 3 and item 13 (item 11 was seen before)."""
    split = interaction_time_split(TIMELINE, train_end_day=4, score_days=2)
    assert split.protocol == "time"
    assert split.train["EVENT_ID"].tolist() == [0, 1, 2, 3, 4]
    assert split.truth["EVENT_ID"].tolist() == [6, 7]
    assert split.detail == {
        "train_days": (0, 3),
        "score_days": (4, 5),
        "seen_rows_dropped": 1,
        "new_users": 1,
        "new_items": 1,
    }
    kept = interaction_time_split(TIMELINE, 4, 2, drop_seen=False)
    assert kept.truth["EVENT_ID"].tolist() == [5, 6, 7]


def test_a_short_training_window_still_knows_older_history():
    """train_days=2 keeps days 2-3 in train, but user 1's item 10 from day 0 is still seen."""
    split = interaction_time_split(TIMELINE, 4, 2, train_days=2)
    assert split.train["EVENT_ID"].tolist() == [3, 4]
    assert split.truth["EVENT_ID"].tolist() == [6, 7]
    assert split.detail["train_days"] == (2, 3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"train_end_day": 6, "score_days": 2}, r"ends on day 6 but the scoring window needs"),
        ({"train_end_day": 0, "score_days": 2}, "no event before day 0"),
        ({"train_end_day": 4, "score_days": 0}, "score_days must be >= 1"),
        ({"train_end_day": 4, "score_days": 2, "train_days": 0}, "train_days must be >= 1"),
    ],
)
def test_impossible_windows_are_refused(kwargs, message):
    with pytest.raises(DataError, match=message):
        interaction_time_split(TIMELINE, **kwargs)


def test_a_missing_column_is_named():
    with pytest.raises(DataError, match=r"needs columns \['EVENT_DAY'\]"):
        interaction_time_split(TIMELINE.drop(columns="EVENT_DAY"), 4, 2)


# --- the stratified split ---------------------------------------------------------------------

#: User of each EVENT_ID 0..11. With seed 42 the legacy generator draws, in EVENT_ID order:
#: 0 .3745  1 .9507  2 .7320  3 .5987  4 .15601864  5 .15599452  6 .0581  7 .8662  8 .6011
#: 9 .7081  10 .0206  11 .9699
USERS = ["A", "A", "A", "A", "B", "B", "C", "D", "D", "D", "E", "E"]


def _stratified_events() -> pd.DataFrame:
    """One event per (user, distinct item); the frame is in time order, the reverse of the ids."""
    user_ids = {"A": 1, "B": 2, "C": 3, "D": 4, "E": 5}
    rows = [(0, user_ids[u], 100 + i, "rating") for i, u in enumerate(USERS)]
    frame = _events(rows, times=list(range(len(rows), 0, -1)))
    return frame.sort_values("EVENT_TIME", ignore_index=True)


def test_the_stratified_split_by_hand():
    """Per user, events in increasing draw take positions 1..n; position / n <= 0.75 trains.
    A (4 events): the highest draw, event 1, is the test quarter. B (2): 1/2 trains, so the lower
    draw, event 5 (.155995 < .156019), trains and event 4 is tested. C (1 event): 1/1 > 0.75, all
    in the truth. D (3): events 8 and 9 train, 7 is tested. E (2): event 10 trains, 11 is tested."""
    split = stratified_split(_stratified_events())
    assert split.protocol == "stratified"
    assert sorted(split.train["EVENT_ID"]) == [0, 2, 3, 5, 8, 9, 10]
    assert sorted(split.truth["EVENT_ID"]) == [1, 4, 6, 7, 11]
    assert split.detail == {
        "ratio": 0.75,
        "seed": 42,
        "by": "user",
        "dropped_for_min_events": 0,
        "truth_only_users": 1,
        "seen_rows_dropped": 0,
    }
    # the rows keep the order of the events frame (time order here)
    assert split.train["EVENT_TIME"].is_monotonic_increasing


def test_users_with_too_few_events_can_be_dropped():
    """min_events=2 drops user C's single event (6) from both sides before drawing, as Microsoft's
    min_rating filter does, so events 7-11 get the draws .0581 .8662 .6011 .7081 .0206:
    D trains 7 and 9 and tests 8; E trains 11 and tests 10. A and B are unchanged."""
    split = stratified_split(_stratified_events(), min_events=2)
    assert sorted(split.train["EVENT_ID"]) == [0, 2, 3, 5, 7, 9, 11]
    assert sorted(split.truth["EVENT_ID"]) == [1, 4, 8, 10]
    assert split.detail["dropped_for_min_events"] == 1
    assert split.detail["truth_only_users"] == 0


def _microsoft_stratified(data: pd.DataFrame, ratio: float, seed: int, column: str, minimum: int):
    """The steps of Microsoft's ``_do_stratification`` (python_splitters), written out: drop
    strata with fewer than ``min_rating`` rows, global legacy seed, one draw per row in the
    frame's order, sort by (stratum, draw), position / count <= ratio trains."""
    if minimum > 1:
        data = data.groupby(column).filter(lambda rows: len(rows) >= minimum)
    state = np.random.get_state()  # noqa: NPY002 (the legacy global generator is the point)
    try:
        np.random.seed(seed)  # noqa: NPY002
        data = data.assign(random=np.random.rand(len(data)))  # noqa: NPY002
    finally:
        np.random.set_state(state)  # noqa: NPY002
    data = data.sort_values([column, "random"])
    groups = data.groupby(column)
    rank = (groups.cumcount() + 1) / groups[column].transform("count")
    return set(data.loc[rank <= ratio, "EVENT_ID"]), set(data.loc[rank > ratio, "EVENT_ID"])


@pytest.mark.parametrize(("by", "column"), [("user", "USER_ID"), ("item", "ITEM_ID")])
@pytest.mark.parametrize(("ratio", "min_events"), [(0.75, 1), (0.8, 1), (0.75, 12)])
def test_the_split_is_microsofts_row_for_row(by, column, ratio, min_events):
    """3,000 ratings of 120 users on 300 items, in "file" order = EVENT_ID order; the loader
    hands them over sorted by time. The split assigns every event as Microsoft's does on the
    file-ordered frame (one rating per pair, so drop_seen removes nothing)."""
    rng = np.random.default_rng(5)
    pairs = pd.DataFrame(
        {"USER_ID": rng.integers(0, 120, 4000), "ITEM_ID": rng.integers(0, 300, 4000)}
    ).drop_duplicates(ignore_index=True)[:3000]
    rows = [(0, u, i, "rating") for u, i in pairs.itertuples(index=False)]
    file_order = _events(rows, times=rng.permutation(len(rows)))
    by_time = file_order.sort_values("EVENT_TIME", ignore_index=True)
    split = stratified_split(by_time, ratio=ratio, by=by, min_events=min_events)
    train, test = _microsoft_stratified(file_order, ratio, 42, column, min_events)
    assert set(split.train["EVENT_ID"]) == train
    assert set(split.truth["EVENT_ID"]) == test
    assert split.detail["seen_rows_dropped"] == 0


def test_each_user_keeps_floor_of_three_quarters():
    """Whatever the draws: 1 event -> 0 in train, 2 -> 1, 3 -> 2, 4 -> 3, 20 -> 15 (MovieLens-100k's
    users have 20 or more ratings, hence its 74,992 / 25,008 split)."""
    sizes = {1: 1, 2: 2, 3: 3, 4: 4, 5: 20}
    rows = [(0, u, 1000 * u + j, "rating") for u, n in sizes.items() for j in range(n)]
    split = stratified_split(_events(rows), seed=123)
    assert split.train.groupby("USER_ID").size().to_dict() == {2: 1, 3: 2, 4: 3, 5: 15}


def test_seen_pairs_leave_the_truth():
    """A user with a view and a purchase of the same item on different sides: the test event
    of a pair already in train is dropped (events 0, 1; draws .3745 and .9507: event 1 is tested,
    and dropped)."""
    events = _events([(0, 1, 10, "view"), (1, 1, 10, "purchase")])
    split = stratified_split(events, ratio=0.5)
    assert split.train["EVENT_ID"].tolist() == [0]
    assert split.truth.empty and split.detail["seen_rows_dropped"] == 1
    assert len(stratified_split(events, ratio=0.5, drop_seen=False).truth) == 1


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"ratio": 1.0}, ConfigError, r"ratio must be in \(0, 1\)"),
        ({"by": "session"}, ConfigError, r"choose from \['item', 'user'\]"),
        ({"min_events": 0}, ConfigError, "min_events must be >= 1"),
    ],
)
def test_bad_settings_are_refused(kwargs, error, message):
    with pytest.raises(error, match=message):
        stratified_split(TIMELINE, **kwargs)


def test_repeated_event_ids_are_refused():
    with pytest.raises(DataError, match="EVENT_ID repeats"):
        stratified_split(TIMELINE.assign(EVENT_ID=0))
