"""How the simulated shop's users respond to a list of recommendations: the live half of the track.

Offline metrics score a list against what users did without it. A deployed
recommender changes what they do. :func:`respond_to_lists` closes that loop in
the simulator: for each visit (a user on a day) and the list a service
returned for it, the user looks down the list, clicks the items they like and
buys some of them, with the same hidden tastes, prices and stock that drew the
organic log (:func:`fullcycle.data.interactions.simulate_interactions`).

The model of one shown item ``i`` at position ``r`` (0-based) for user ``u``
on day ``d``:

- the user **examines** it with probability ``1 / log2(r + 2)`` (the position
  discount of DCG, the usual cascade-free click model);
- **clicks** it with probability ``min(CLICK_CAP, click_rate * interest)``, where
  ``interest`` is the user's taste for the item's segment relative to an even
  taste (``taste[u, segment] * n_segments``, the taste after a trend from the
  drift day) times the item's popularity relative to its segment's mean,
  square-rooted;
- **buys** a clicked item as an organic view is bought: add to cart with
  ``cart_rate * propensity * (price / category median) ** -0.5``, then
  purchase with ``purchase_rate``.

An item out of stock on ``d``, not yet in the catalogue, or unknown is never
bought; an item the user bought before is bought again ten times less often.

Every draw is a hash of ``(seed, user, day, item, step)``: the same user shown
the same item on the same day makes the same choice whichever service showed it,
so two recommenders compared on the same visits differ only by their lists (an
A/B test with common random numbers, whose difference is far less noisy than
two independent samples).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fullcycle.exceptions import DataError

__all__ = ["CLICK_CAP", "CLICK_RATE", "REPEAT_FACTOR", "respond_to_lists", "visits_of"]

#: Click probability of an examined item of average interest.
CLICK_RATE = 0.01
#: No item is clicked with a higher probability than this.
CLICK_CAP = 0.5
#: A user buys again an item they already bought this many times less often.
REPEAT_FACTOR = 0.1
_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: a well-spread 64-bit hash of each value."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _uniform(seed: int, user, day, item, step: int) -> np.ndarray:
    """A uniform draw in [0, 1) per (user, day, item), the same for every list showing it."""
    with np.errstate(over="ignore"):
        h = _mix(np.uint64(seed & 0xFFFFFFFF) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(step))
        for part in (user, day, item):
            h = _mix(h ^ (np.asarray(part).astype(np.int64).astype(np.uint64) & _MASK))
    return (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def visits_of(events: pd.DataFrame, first_day: int, last_day: int) -> pd.DataFrame:
    """The visits of days ``first_day..last_day``: one row per user active on a day, in order."""
    need = sorted({"USER_ID", "EVENT_DAY"} - set(events.columns))
    if need:
        raise DataError(f"visits_of: the events have no column(s) {need}")
    day = events["EVENT_DAY"].to_numpy()
    v = events.loc[(day >= first_day) & (day <= last_day), ["EVENT_DAY", "USER_ID"]]
    return v.drop_duplicates().sort_values(["EVENT_DAY", "USER_ID"]).reset_index(drop=True)


def respond_to_lists(
    sim,
    visits: pd.DataFrame,
    lists: np.ndarray,
    *,
    seed: int = 0,
    bought_before: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The clicks and purchases of simulated users shown ``lists`` on their ``visits``.

    Parameters
    ----------
    sim : InteractionSimulation
        The world the visits come from (its hidden tastes, catalogue and stock).
    visits : DataFrame
        ``USER_ID`` and ``EVENT_DAY`` of each visit (see :func:`visits_of`).
    lists : array of int, shape (len(visits), k)
        The item ids shown on each visit, best first; ``-1`` is an empty slot.
    seed : int
        Seed of the users' choices (keep it equal across the lists compared).
    bought_before : DataFrame, optional
        ``USER_ID, ITEM_ID`` pairs already bought (a repeat is less likely).

    Returns
    -------
    DataFrame
        One row per clicked item: ``VISIT`` (row of ``visits``), ``USER_ID``,
        ``EVENT_DAY``, ``ITEM_ID``, ``POSITION``, ``PRICE`` and ``BOUGHT`` (0/1).
    """
    lists = np.asarray(lists)
    if lists.ndim != 2 or len(lists) != len(visits):
        raise DataError(
            f"respond_to_lists: lists must be (visits, k) = ({len(visits)}, k), got {lists.shape}"
        )
    cfg = sim.config
    n_visits, k = lists.shape
    user = np.repeat(visits["USER_ID"].to_numpy(np.int64), k)
    day = np.repeat(visits["EVENT_DAY"].to_numpy(np.int64), k)
    item = lists.ravel().astype(np.int64)
    position = np.tile(np.arange(k), n_visits)
    visit = np.repeat(np.arange(n_visits), k)

    profiles = sim.item_profiles
    n_items = len(profiles)
    known = (item >= 0) & (item < n_items)
    safe = np.where(known, item, 0)
    first = sim.items["FIRST_DAY"].to_numpy()[safe]
    last = profiles["LAST_DAY"].to_numpy()[safe]
    sellable = known & (first <= day) & (last >= day)

    users = sim.users
    if len(visits) and (user.max(initial=0) >= len(users) or user.min(initial=0) < 0):
        raise DataError("respond_to_lists: a visit's USER_ID is not a user of this world")
    segment = profiles["SEGMENT"].to_numpy()[safe]
    n_seg = sim.taste.shape[1]
    taste = sim.taste
    if sim.taste_after_drift is not None and cfg.drift_day is not None:
        after = day >= cfg.drift_day
        like = np.where(after, sim.taste_after_drift[user, segment], taste[user, segment]) * n_seg
    else:
        like = taste[user, segment] * n_seg
    pop = profiles["POPULARITY"].to_numpy()
    seg_mean = np.bincount(profiles["SEGMENT"], weights=pop, minlength=n_seg) / np.maximum(
        np.bincount(profiles["SEGMENT"], minlength=n_seg), 1
    )
    appeal = np.sqrt(pop[safe] / np.maximum(seg_mean[segment], 1e-12))
    p_click = np.minimum(CLICK_RATE * like * appeal, CLICK_CAP) / np.log2(position + 2)

    from fullcycle.data.interactions import _MAX_CART_P, _PRICE_ELASTICITY, CATEGORIES

    price = sim.items["PRICE"].to_numpy()[safe]
    medians = np.asarray([CATEGORIES[c] for c in cfg.category_names])
    category = segment // cfg.segments_per_category
    propensity = users["PROPENSITY"].to_numpy()[user]
    p_cart = np.minimum(
        cfg.cart_rate * propensity * (price / medians[category]) ** -_PRICE_ELASTICITY,
        _MAX_CART_P,
    )
    p_buy = p_cart * cfg.purchase_rate
    if bought_before is not None and len(bought_before):
        owned = pd.MultiIndex.from_arrays([user, item]).isin(
            pd.MultiIndex.from_frame(bought_before[["USER_ID", "ITEM_ID"]])
        )
        p_buy = np.where(owned, p_buy * REPEAT_FACTOR, p_buy)

    clicked = sellable & (_uniform(seed, user, day, item, 1) < p_click)
    bought = clicked & (_uniform(seed, user, day, item, 2) < p_buy)
    return pd.DataFrame(
        {
            "VISIT": visit[clicked],
            "USER_ID": user[clicked],
            "EVENT_DAY": day[clicked],
            "ITEM_ID": item[clicked],
            "POSITION": position[clicked],
            "PRICE": price[clicked],
            "BOUGHT": bought[clicked].astype(np.int64),
        }
    )
