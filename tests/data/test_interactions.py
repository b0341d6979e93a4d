"""Does the interaction simulator follow its stated design, deterministically, and is its mess exact?"""

import numpy as np
import pandas as pd
import pytest

from fullcycle.data import (
    CATEGORIES,
    INTERACTION_COLUMNS,
    INTERACTION_MESS_KINDS,
    ITEM_COLUMNS,
    InteractionSimulatorConfig,
    make_messy_interactions,
    simulate_interactions,
)
from fullcycle.data.interactions import WEEKLY_RHYTHM
from fullcycle.exceptions import DataError

SMALL = {"n_users": 1_500, "n_items": 1_000, "n_days": 42, "seed": 7}
DRIFT_DAY = 28

EVENT_DTYPES = {
    "EVENT_ID": "int64",
    "EVENT_TIME": "datetime64[ns]",
    "EVENT_DAY": "int64",
    "USER_ID": "int64",
    "ITEM_ID": "int64",
    "EVENT_TYPE": "str",
    "RATING": "float64",
    "PRICE": "float64",
}


@pytest.fixture(scope="module")
def sim():
    """1,500 users and 1,000 items at the start, six weeks: about 94,000 events."""
    return simulate_interactions(**SMALL)


@pytest.fixture(scope="module")
def messy(sim):
    """Every kind of fault at a 2% rate, on the events and the catalogue."""
    return make_messy_interactions(sim.events, rate=0.02, seed=4, items=sim.items)


def _views(events):
    return events[events["EVENT_TYPE"] == "view"]


def test_same_seed_same_data_and_other_seed_other_data(sim):
    """Is the simulator deterministic for a seed, and does the seed matter?"""
    again = simulate_interactions(**SMALL)
    pd.testing.assert_frame_equal(sim.events, again.events)
    pd.testing.assert_frame_equal(sim.items, again.items)
    pd.testing.assert_frame_equal(sim.users, again.users)
    other = simulate_interactions(**{**SMALL, "seed": 8})
    assert len(other.events) != len(sim.events) or not other.events["ITEM_ID"].equals(
        sim.events["ITEM_ID"]
    )


def test_config_object_and_overrides_agree():
    """Does a config object with overrides give the same run as keyword arguments?"""
    config = InteractionSimulatorConfig(n_users=100, n_items=80, n_days=7, seed=1)
    a = simulate_interactions(config, seed=2).events
    b = simulate_interactions(n_users=100, n_items=80, n_days=7, seed=2).events
    pd.testing.assert_frame_equal(a, b)


def test_events_have_the_shared_columns_types_and_order(sim):
    """Are the events in the shared shape: columns, types, ids in time order, day and price?"""
    ev = sim.events
    assert list(ev.columns) == INTERACTION_COLUMNS
    assert {c: str(t) for c, t in ev.dtypes.items()} == EVENT_DTYPES
    np.testing.assert_array_equal(ev["EVENT_ID"], np.arange(len(ev)))
    assert ev["EVENT_TIME"].is_monotonic_increasing
    assert set(ev["EVENT_TYPE"]) == {"view", "cart", "purchase"}
    assert ev["RATING"].isna().all()
    days = (ev["EVENT_TIME"] - pd.Timestamp("2024-01-01")) // pd.Timedelta(days=1)
    np.testing.assert_array_equal(ev["EVENT_DAY"], days)
    assert ev["EVENT_DAY"].between(0, SMALL["n_days"] - 1).all()
    # The price at the event is the item's catalogue price.
    np.testing.assert_array_equal(ev["PRICE"], sim.items["PRICE"].to_numpy()[ev["ITEM_ID"]])


def test_catalogue_has_the_shared_columns(sim):
    """Is the catalogue in the shared shape, with ids in order of arrival and known categories?"""
    items = sim.items
    assert list(items.columns) == ITEM_COLUMNS
    assert str(items["CATEGORY"].dtype) == "str" and items["IN_STOCK"].dtype == bool
    np.testing.assert_array_equal(items["ITEM_ID"], np.arange(len(items)))
    assert items["FIRST_DAY"].is_monotonic_increasing
    assert set(items["CATEGORY"]) == set(list(CATEGORIES)[:10])
    assert (items["PRICE"] >= 0.5).all()
    # Electronics cost more than groceries (typical prices 120 and 8).
    median = items.groupby("CATEGORY")["PRICE"].median()
    assert median["electronics"] > 5 * median["grocery"]


def test_every_cart_and_purchase_follows_a_view_of_the_same_item(sim):
    """Up to each cart (purchase), has the user viewed (carted) that item at least as often?"""
    ev = sim.events
    key = [ev["USER_ID"], ev["ITEM_ID"]]
    views = (ev["EVENT_TYPE"] == "view").groupby(key).cumsum()
    carts = (ev["EVENT_TYPE"] == "cart").groupby(key).cumsum()
    buys = (ev["EVENT_TYPE"] == "purchase").groupby(key).cumsum()
    is_cart, is_buy = ev["EVENT_TYPE"] == "cart", ev["EVENT_TYPE"] == "purchase"
    assert is_buy.sum() > 100
    assert (views[is_cart] >= carts[is_cart]).all()
    assert (carts[is_buy] >= buys[is_buy]).all()
    # ... and on the same day, as the cart and purchase come minutes after the view.
    first_view_day = ev[ev["EVENT_TYPE"] == "view"].groupby(["USER_ID", "ITEM_ID"])["EVENT_DAY"]
    bought = ev[is_buy].set_index(["USER_ID", "ITEM_ID"])["EVENT_DAY"]
    assert (bought >= first_view_day.min().reindex(bought.index)).all()


def test_view_volume_matches_the_users_rates():
    """Is the number of views the sum of each user's rate over their active days?

    Without the weekly rhythm, user ``u`` makes Poisson(ACTIVITY_u) views on
    each of the ``n_days - FIRST_DAY_u`` days from its arrival, so the total is
    Poisson with mean sum_u ACTIVITY_u x (28 - FIRST_DAY_u); a draw lies within
    4 standard deviations (4 x sqrt(mean)) of it.
    """
    sim = simulate_interactions(n_users=800, n_items=600, n_days=28, seed=3, weekly_rhythm=False)
    users = sim.users
    expected = (users["ACTIVITY"] * (28 - users["FIRST_DAY"])).sum()
    views = len(_views(sim.events))
    assert abs(views - expected) < 4 * np.sqrt(expected)
    # Each user's views come from its own rate: busy users are busy.
    per_user = _views(sim.events).groupby("USER_ID").size().reindex(users["USER_ID"], fill_value=0)
    rate = users["ACTIVITY"] * (28 - users["FIRST_DAY"])
    assert np.corrcoef(per_user, rate)[0, 1] > 0.9


def test_purchase_rate_is_the_share_of_carts_bought(sim):
    """Is a cart bought with probability purchase_rate (0.35), and are the extremes exact?

    With 0.35 and C carts the purchases are Binomial(C, 0.35): within
    4 x sqrt(C x 0.35 x 0.65) of 0.35 C. With 1 every cart is bought, with 0
    none, and with cart_rate 0 there are only views.
    """
    counts = sim.events["EVENT_TYPE"].value_counts()
    carts, buys = counts["cart"], counts["purchase"]
    assert abs(buys - 0.35 * carts) < 4 * np.sqrt(carts * 0.35 * 0.65)
    small = {"n_users": 300, "n_items": 200, "n_days": 14, "seed": 2}
    always = simulate_interactions(**small, purchase_rate=1.0).events["EVENT_TYPE"].value_counts()
    assert always["purchase"] == always["cart"] > 0
    never = simulate_interactions(**small, purchase_rate=0.0).events["EVENT_TYPE"]
    assert "purchase" not in set(never) and "cart" in set(never)
    assert set(simulate_interactions(**small, cart_rate=0.0).events["EVENT_TYPE"]) == {"view"}


def test_new_users_and_items_arrive_and_act_only_from_their_first_day(sim):
    """Are there cold-start users and items, absent before they arrive and after withdrawal?"""
    ev = sim.events
    users = sim.users.set_index("USER_ID")
    profiles = sim.item_profiles.set_index("ITEM_ID")
    items = sim.items.set_index("ITEM_ID")
    assert (users["FIRST_DAY"] > 0).sum() > 1_000  # about 40 a day for 41 days
    assert (items["FIRST_DAY"] > 0).sum() > 300  # about 10 a day
    assert (ev["EVENT_DAY"].to_numpy() >= users["FIRST_DAY"].to_numpy()[ev["USER_ID"]]).all()
    assert (ev["EVENT_DAY"].to_numpy() >= items["FIRST_DAY"].to_numpy()[ev["ITEM_ID"]]).all()
    assert (ev["EVENT_DAY"].to_numpy() <= profiles["LAST_DAY"].to_numpy()[ev["ITEM_ID"]]).all()
    # New users and new items do take part.
    late_users = users.index[users["FIRST_DAY"] >= 21]
    late_items = items.index[items["FIRST_DAY"] >= 21]
    assert ev["USER_ID"].isin(late_users).sum() > 1_000
    assert ev["ITEM_ID"].isin(late_items).sum() > 100
    # Withdrawn items end out of stock; the rest are in stock.
    assert (items["IN_STOCK"] == (profiles["LAST_DAY"] == SMALL["n_days"] - 1)).all()
    assert 0 < (~items["IN_STOCK"]).sum() < len(items) / 2


def test_popularity_is_long_tailed_and_the_exponent_controls_it(sim):
    """Do the top 10% of items take most views (Zipf), and does exponent 0 flatten that?"""

    def shares(s):
        counts = np.bincount(_views(s.events)["ITEM_ID"], minlength=len(s.items))
        counts = np.sort(counts)[::-1]
        tenth = len(counts) // 10
        return counts[:tenth].sum() / counts.sum(), counts[len(counts) // 2 :].sum() / counts.sum()

    top, bottom_half = shares(sim)
    assert top > 0.5 and bottom_half < 0.1
    flat_top, flat_bottom = shares(simulate_interactions(**SMALL, popularity_exponent=0.0))
    assert flat_top < 0.4 and flat_bottom > 0.12


def test_users_favour_their_tastes(sim):
    """Does a user's favourite category get more of their views than the global share?"""
    ev = _views(sim.events)
    category = sim.items["CATEGORY"].to_numpy()[ev["ITEM_ID"]]
    favourite = sim.users["FAVOURITE_CATEGORY"].to_numpy()[ev["USER_ID"]]
    in_favourite = (category == favourite).mean()
    by_chance = (pd.Series(category).value_counts(normalize=True) ** 2).sum()
    assert in_favourite > 2 * by_chance


def test_weekly_rhythm_makes_sundays_busiest_and_can_be_turned_off():
    """Are Sundays (1.18) busier than Fridays (0.92), and flat without the rhythm?"""
    assert max(WEEKLY_RHYTHM) == WEEKLY_RHYTHM[6] and min(WEEKLY_RHYTHM) == WEEKLY_RHYTHM[4]
    kw = {"n_users": 2_000, "n_items": 500, "n_days": 56, "seed": 2, "new_users_per_day": 0}
    for rhythm, low, high in ((True, 1.15, 1.45), (False, 0.94, 1.06)):
        ev = simulate_interactions(**kw, weekly_rhythm=rhythm).events
        by_day = ev.groupby(ev["EVENT_TIME"].dt.day_of_week).size()
        assert low < by_day[6] / by_day[4] < high


@pytest.mark.parametrize("drift", ["trend", "catalogue"])
def test_a_drift_leaves_every_day_before_it_unchanged(sim, drift):
    """Are the events before drift_day exactly those of the run without drift?"""
    drifted = simulate_interactions(**SMALL, drift=drift, drift_day=DRIFT_DAY)
    before = sim.events[sim.events["EVENT_DAY"] < DRIFT_DAY]
    pd.testing.assert_frame_equal(drifted.events[drifted.events["EVENT_DAY"] < DRIFT_DAY], before)
    assert not drifted.events.equals(sim.events)


def test_a_trend_makes_its_category_jump_from_its_day(sim):
    """Does the trending category's share of views rise from drift_day, and only then?"""
    drifted = simulate_interactions(**SMALL, drift="trend", drift_day=DRIFT_DAY)
    trend = drifted.trend_category
    assert trend in CATEGORIES and sim.trend_category is None

    def share(s, after):
        ev = _views(s.events)
        ev = ev[(ev["EVENT_DAY"] >= DRIFT_DAY) == after]
        return (s.items["CATEGORY"].to_numpy()[ev["ITEM_ID"]] == trend).mean()

    assert share(drifted, after=False) == share(sim, after=False)
    assert share(drifted, after=True) > 2 * share(sim, after=True)
    chosen = simulate_interactions(
        **SMALL, drift="trend", drift_day=DRIFT_DAY, drift_category="books", trend_factor=3.0
    )
    assert chosen.trend_category == "books"


def test_a_catalogue_change_withdraws_items_and_adds_new_ones(sim):
    """On drift_day, are 30% of the live items withdrawn and as many new ones added and viewed?"""
    drifted = simulate_interactions(**SMALL, drift="catalogue", drift_day=DRIFT_DAY)
    p, items = drifted.item_profiles, drifted.items
    before = sim.item_profiles
    live = ((before["LAST_DAY"] >= DRIFT_DAY) & (sim.items["FIRST_DAY"] < DRIFT_DAY)).sum()
    # Items alive on the day before and gone on drift_day: the withdrawn ones.
    old = items["FIRST_DAY"] < DRIFT_DAY
    withdrawn = old & (p["LAST_DAY"] == DRIFT_DAY - 1)
    regular = ((sim.items["FIRST_DAY"] < DRIFT_DAY) & (before["LAST_DAY"] == DRIFT_DAY - 1)).sum()
    assert withdrawn.sum() - regular == round(0.3 * live)
    arrived = (items["FIRST_DAY"] == DRIFT_DAY).sum() - (sim.items["FIRST_DAY"] == DRIFT_DAY).sum()
    assert arrived == round(0.3 * live)
    ev = drifted.events
    after = ev[ev["EVENT_DAY"] >= DRIFT_DAY]
    assert not after["ITEM_ID"].isin(items.loc[withdrawn, "ITEM_ID"]).any()
    assert not items.loc[withdrawn, "IN_STOCK"].any()
    new = items.loc[items["FIRST_DAY"] == DRIFT_DAY, "ITEM_ID"]
    assert after["ITEM_ID"].isin(new).mean() > 0.2


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_users": 0}, "n_users"),
        ({"n_categories": 13}, "n_categories"),
        ({"cart_rate": 1.5}, "cart_rate"),
        ({"events_per_user_per_day": -1}, "events_per_user_per_day"),
        ({"start_date": "January"}, "start_date"),
        ({"drift": "crash", "drift_day": 3}, "drift"),
        ({"drift": "trend"}, "drift_day"),
        ({"drift": "trend", "drift_day": 10}, "drift_day"),
        ({"drift_day": 3}, "drift is None"),
        ({"drift": "trend", "drift_day": 3, "drift_category": "cars"}, "drift_category"),
        ({"drift": "catalogue", "drift_day": 3, "catalogue_change_share": 1}, "catalogue_change"),
    ],
)
def test_bad_config_is_refused_with_the_field_named(kwargs, match):
    """Does a wrong simulator setting fail with a message naming it?"""
    with pytest.raises(DataError, match=match):
        simulate_interactions(**{"n_days": 10, **kwargs})


def test_messy_events_keep_the_shape_and_every_fault_is_reported(sim, messy):
    """Is the messy log in the shared shape, with every kind present and counts adding up?"""
    frame, report = messy
    assert set(report.counts) == set(INTERACTION_MESS_KINDS) and min(report.counts.values()) > 0
    assert list(frame.columns) == INTERACTION_COLUMNS
    assert (frame.dtypes == sim.events.dtypes).all()
    assert frame["EVENT_ID"].is_unique and frame["EVENT_TIME"].is_monotonic_increasing
    added = report.counts["duplicate_events"] + report.counts["bot_users"]
    assert len(frame) == len(sim.events) + added
    # Rates: about 2% of rows duplicated, 2% of prices blanked (4 sd of a binomial).
    n = len(sim.events)
    for kind in ("duplicate_events", "missing_prices"):
        assert abs(report.counts[kind] - 0.02 * n) < 4 * np.sqrt(n * 0.02 * 0.98)


def test_the_good_rows_are_the_clean_log_with_the_reported_prices_blanked(sim, messy):
    """Once the faulty rows are dropped, is what is left the clean log, bar the reported prices?"""
    frame, report = messy
    faulty = report.faulty_rows(frame)
    assert faulty.sum() == report.counts["duplicate_events"] + report.counts["bot_users"]
    kept = frame[~faulty].set_index("EVENT_ID").sort_index()
    expected = sim.events.set_index("EVENT_ID").copy()
    expected.loc[report.rows["missing_prices"], "PRICE"] = np.nan
    pd.testing.assert_frame_equal(kept, expected)
    assert set(frame.loc[frame["PRICE"].isna(), "EVENT_ID"]) == set(report.rows["missing_prices"])


def test_duplicates_repeat_their_originals_seconds_later(messy):
    """Is each reported copy its original event again (new id), 0 to 2 seconds later?"""
    frame, report = messy
    by_id = frame.set_index("EVENT_ID")
    copies = by_id.loc[report.rows["duplicate_events"]]
    originals = by_id.loc[report.duplicate_of]
    for column in ("USER_ID", "ITEM_ID", "EVENT_TYPE", "PRICE"):
        np.testing.assert_array_equal(copies[column].to_numpy(), originals[column].to_numpy())
    lag = (copies["EVENT_TIME"].to_numpy() - originals["EVENT_TIME"].to_numpy()) / np.timedelta64(
        1, "s"
    )
    assert lag.min() >= 0 and lag.max() <= 2


def test_bots_are_new_users_far_busier_than_anyone(sim, messy):
    """Are the reported bot events exactly the new users' events, hundreds in one day each?"""
    frame, report = messy
    assert report.bot_users.min() > sim.events["USER_ID"].max()
    bot_rows = frame["USER_ID"].isin(report.bot_users)
    assert set(frame.loc[bot_rows, "EVENT_ID"]) == set(report.rows["bot_users"])
    per_day = frame.groupby(["USER_ID", "EVENT_DAY"]).size()
    bots = per_day[per_day.index.get_level_values(0).isin(report.bot_users)]
    humans = per_day[~per_day.index.get_level_values(0).isin(report.bot_users)]
    assert len(bots) == len(report.bot_users)  # each bot acts on one day
    assert bots.min() >= 500 > 5 * humans.max()


def test_category_spellings_change_exactly_the_reported_catalogue_rows(sim, messy):
    """Do the reported items, and only they, spell their category another way that maps back?"""
    _, report = messy
    clean, dirty = sim.items, report.items
    changed = clean["CATEGORY"].to_numpy() != dirty["CATEGORY"].to_numpy()
    assert set(clean.loc[changed, "ITEM_ID"]) == set(report.rows["category_spellings"])
    names = set(CATEGORIES)
    restored = dirty["CATEGORY"].str.strip().str.lower()
    restored = restored.where(restored.isin(names), restored + "s")
    pd.testing.assert_series_equal(restored, clean["CATEGORY"])
    assert dirty.drop(columns="CATEGORY").equals(clean.drop(columns="CATEGORY"))


def test_the_mess_is_deterministic_and_kinds_can_be_chosen(sim, messy):
    """Does the same seed give the same mess, and does kinds= limit it?"""
    frame, report = make_messy_interactions(sim.events, rate=0.02, seed=4, items=sim.items)
    pd.testing.assert_frame_equal(frame, messy[0])
    only, only_report = make_messy_interactions(sim.events, rate=0.02, kinds=["missing_prices"])
    assert set(only_report.counts) == {"missing_prices"} and only_report.items is None
    assert len(only) == len(sim.events)
    _, no_items = make_messy_interactions(sim.events, rate=0.02)
    assert "category_spellings" not in no_items.counts


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"rate": 0.0}, "rate"),
        ({"kinds": ["typos"]}, "unknown kind"),
        ({"kinds": ["category_spellings"]}, "items="),
    ],
)
def test_bad_mess_requests_are_refused(sim, kwargs, match):
    """Does a wrong request fail with a message that names it and the fix?"""
    with pytest.raises(DataError, match=match):
        make_messy_interactions(sim.events, **kwargs)
    with pytest.raises(DataError, match="PRICE"):
        make_messy_interactions(sim.events.drop(columns="PRICE"))
