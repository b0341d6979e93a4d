"""Do simulated users respond to shown lists as the response model says?"""

import numpy as np
import pytest

from fullcycle.data.interactions import simulate_interactions
from fullcycle.data.responses import respond_to_lists, visits_of
from fullcycle.exceptions import DataError


@pytest.fixture(scope="module")
def world():
    sim = simulate_interactions(n_users=800, n_items=300, n_days=35, seed=4)
    return sim, visits_of(sim.events, 28, 34)


def _in_stock(sim, day):
    p = sim.item_profiles
    ok = (p["LAST_DAY"].to_numpy() >= day) & (sim.items["FIRST_DAY"].to_numpy() <= day)
    return p["ITEM_ID"].to_numpy()[ok]


def test_visits_are_users_active_on_each_day(world):
    sim, visits = world
    e = sim.events
    expected = e[(e["EVENT_DAY"] >= 28) & (e["EVENT_DAY"] <= 34)][["EVENT_DAY", "USER_ID"]]
    assert len(visits) == len(expected.drop_duplicates())
    assert visits["EVENT_DAY"].is_monotonic_increasing


def test_the_same_item_shown_to_the_same_visit_gets_the_same_choice_in_any_list(world):
    """Common random numbers: an A/B difference comes from the lists, not from the dice."""
    sim, visits = world
    items = _in_stock(sim, 34)
    rng = np.random.default_rng(0)
    a = np.stack([rng.choice(items, 10, replace=False) for _ in range(len(visits))])
    b = a[:, ::-1].copy()  # the same items in reverse order
    b[:, 0] = a[:, 0]  # the first slot identical in both lists
    ra = respond_to_lists(sim, visits, a, seed=9)
    rb = respond_to_lists(sim, visits, b, seed=9)
    first_a = ra[ra["POSITION"] == 0][["VISIT", "ITEM_ID", "BOUGHT"]].reset_index(drop=True)
    first_b = rb[rb["POSITION"] == 0][["VISIT", "ITEM_ID", "BOUGHT"]].reset_index(drop=True)
    assert len(first_a) > 20 and first_a.equals(first_b)
    again = respond_to_lists(sim, visits, a, seed=9)
    assert again.equals(ra)
    assert not respond_to_lists(sim, visits, a, seed=10).equals(ra)


def test_the_top_of_the_list_is_clicked_more_and_unsellable_items_are_never_bought(world):
    sim, visits = world
    items = _in_stock(sim, 34)
    same = np.tile(items[:10], (len(visits), 1))
    shifted = np.roll(same, 5, axis=1)  # each item five places lower or higher
    top = respond_to_lists(sim, visits, same, seed=1)
    low = respond_to_lists(sim, visits, shifted, seed=1)
    first_five = set(items[:5])
    clicks_top = top["ITEM_ID"].isin(first_five).sum()
    clicks_low = low["ITEM_ID"].isin(first_five).sum()
    assert clicks_top > clicks_low  # the same items draw more clicks at positions 0-4
    gone = sim.item_profiles["ITEM_ID"][sim.item_profiles["LAST_DAY"] < 28].to_numpy()
    assert gone.size > 0
    lists = np.full((len(visits), 10), -1)
    lists[:, : min(10, gone.size)] = gone[:10]
    r = respond_to_lists(sim, visits, lists, seed=1)
    assert r.empty  # withdrawn items and empty slots: no click, no sale


def test_a_repeat_purchase_is_rarer(world):
    sim, visits = world
    items = _in_stock(sim, 34)
    lists = np.tile(items[:10], (len(visits), 1))
    fresh = respond_to_lists(sim, visits, lists, seed=3)
    owned = visits.assign(ITEM_ID=int(items[0]))[["USER_ID", "ITEM_ID"]]
    again = respond_to_lists(sim, visits, lists, seed=3, bought_before=owned)
    was = fresh[fresh["ITEM_ID"] == items[0]]["BOUGHT"].sum()
    now = again[again["ITEM_ID"] == items[0]]["BOUGHT"].sum()
    assert was > 0 and now < was
    # clicks do not change: owning an item changes the purchase only
    assert len(again) == len(fresh)


def test_lists_of_the_wrong_shape_are_refused(world):
    sim, visits = world
    with pytest.raises(DataError, match=r"lists must be \(visits, k\)"):
        respond_to_lists(sim, visits, np.zeros((3, 10), dtype=int))
