"""Does a recommendation window list the right candidates, with the right labels, and keep secrets?"""

import numpy as np
import pandas as pd
import pytest

from fullcycle.data.candidates import (
    CANDIDATE_COLUMNS,
    LABEL,
    project_window,
    recommendation_window,
)
from fullcycle.exceptions import DataError, SpecError
from fullcycle.holdout import build_holdout
from fullcycle.spec import find_project, load_spec


def _events(rows):
    return pd.DataFrame(rows, columns=["EVENT_DAY", "USER_ID", "ITEM_ID", "EVENT_TYPE"])


ITEMS = pd.DataFrame(
    {
        "ITEM_ID": [10, 11, 12, 13],
        "CATEGORY": ["books", "books", "music", "toys"],
        "PRICE": [5.0, 7.0, 9.0, 11.0],
        "FIRST_DAY": [0, 0, 1, 5],  # item 13 arrives inside the window
        "IN_STOCK": [True, True, True, True],
    }
)
EVENTS = _events(
    [
        (0, 1, 10, "view"),
        (1, 1, 10, "purchase"),
        (2, 2, 11, "view"),
        (2, 2, 11, "view"),
        (3, 1, 12, "view"),
        (4, 1, 10, "purchase"),  # a repeat purchase: not a hit
        (4, 1, 12, "purchase"),  # viewed before, bought in the window: a hit
        (4, 2, 11, "purchase"),  # a hit
        (4, 3, 12, "purchase"),  # user 3 is new: cold start
        (5, 4, 10, "view"),  # user 4 only views: not scored
        (5, 3, 13, "purchase"),  # item 13 is not in the catalogue of the window's first day
    ]
)


def test_candidates_are_buyers_times_the_catalogue_of_the_first_day_with_hand_labels():
    last = pd.Series([9, 2, 9, 9], index=[10, 11, 12, 13])  # item 11 withdrawn on day 2
    w = recommendation_window(EVENTS, ITEMS, 4, 2, last_day=last, popularity_days=2)
    c = w.candidates
    assert list(c.columns) == [*CANDIDATE_COLUMNS, LABEL]
    assert sorted(c["USER_ID"].unique()) == [1, 2, 3]
    assert sorted(c["ITEM_ID"].unique()) == [10, 11, 12]
    assert len(c) == 9 and c["CANDIDATE_ID"].is_unique
    hits = set(map(tuple, c.loc[c[LABEL] == 1, ["USER_ID", "ITEM_ID"]].to_numpy()))
    assert hits == {(1, 12), (2, 11), (3, 12)}
    stock = dict(zip(c["ITEM_ID"], c["IN_STOCK"], strict=False))
    assert stock == {10: True, 11: False, 12: True}
    # popularity: events on days 2..3 (the 2 days before the window)
    pop = dict(zip(c["ITEM_ID"], c["POPULARITY"], strict=False))
    assert pop == {10: 0.0, 11: 2.0, 12: 1.0}
    assert w.detail["cold_start_users"] == 1
    assert w.detail["positives_outside_catalogue"] == 1
    assert (w.history["EVENT_DAY"] < 4).all() and (w.window["EVENT_DAY"] >= 4).all()


def test_a_window_without_new_purchases_or_columns_is_refused():
    with pytest.raises(DataError, match="nobody buys a new item"):
        recommendation_window(EVENTS[EVENTS["EVENT_TYPE"] == "view"], ITEMS, 4, 2)
    with pytest.raises(DataError, match=r"no column\(s\) \['EVENT_TYPE'\]"):
        recommendation_window(EVENTS.drop(columns="EVENT_TYPE"), ITEMS, 4, 2)
    with pytest.raises(DataError, match="both must be non-empty"):
        recommendation_window(EVENTS, ITEMS, 40, 2)


def test_the_project_holdout_hides_the_label_and_keeps_window_events_out(repo):
    spec = find_project("recommender", search_root=repo)
    h = build_holdout(spec, 11, "tiny")
    assert LABEL not in h.features and LABEL in h.labels
    assert set(h.features.columns) == set(CANDIDATE_COLUMNS)
    assert sorted(h.features["CANDIDATE_ID"]) == sorted(h.labels["CANDIDATE_ID"])
    assert not h.features["CANDIDATE_ID"].is_monotonic_increasing  # shuffled: order says nothing
    start = spec.data.split.score_start_day
    assert (h.history["EVENT_DAY"] < start).all()
    # The monitoring weeks are another world's: none of them is the scored window's events.
    window = project_window(spec, "tiny", seed=11).window
    scored = set(zip(window["USER_ID"], window["ITEM_ID"], window["EVENT_TIME"], strict=True))
    for name, batch in h.batches.items():
        same = set(zip(batch["USER_ID"], batch["ITEM_ID"], batch["EVENT_TIME"], strict=True))
        assert len(same & scored) < 0.01 * len(batch), name
    assert h.drifted_batch in h.batches and h.reference_batch == "reference"
    # Deterministic from the seed; another seed is another world.
    again = build_holdout(spec, 11, "tiny")
    assert again.fingerprint() == h.fingerprint()
    assert build_holdout(spec, 12, "tiny").fingerprint() != h.fingerprint()
    assert np.isclose(h.labels[LABEL].mean(), h.info["positives"] / len(h.labels))


def test_a_spec_mixing_the_two_kinds_of_split_is_refused(repo, tmp_path):
    text = (repo / "projects/recommender/project.yaml").read_text()
    bad = text.replace("score_start_day: 84", "train_start_day: 84").replace(
        "    score_days: 7\n", ""
    )
    bad = bad.replace("    popularity_days: 28\n", "")
    (tmp_path / "project.yaml").write_text(bad)
    with pytest.raises(SpecError, match="score_start_day"):
        load_spec(tmp_path / "project.yaml")
    (tmp_path / "project.yaml").write_text(text.replace("scenario: trend", "scenario: 4"))
    with pytest.raises(SpecError, match="'trend' or 'catalogue'"):
        load_spec(tmp_path / "project.yaml")
