"""Shop-interaction simulator: users with tastes, a long-tailed catalogue, views, carts, purchases.

The recommender track's data, generated the way the fraud simulator generates
transactions (:mod:`fullcycle.data.fraud`): a frozen config, one seeded
generator, every step vectorised (the default run, about one million events,
takes about a second).

The model, in the order it is drawn:

- **Items** belong to a category and, inside it, to one of a few hidden
  *segments* (a style, a brand family). A price is drawn around the category's
  typical price; a popularity weight follows Zipf's law over a random ranking
  of the catalogue (weight ``1 / rank ** popularity_exponent``), which gives
  the long tail seen in shop logs. New items arrive every day, a few are
  withdrawn for good (``IN_STOCK`` is False at the end).
- **Users** hold a latent taste: a sparse distribution over segments (a
  Dirichlet draw around the categories' appeal, mixed with 10% of the global
  taste so that everyone sometimes browses what is popular), an activity rate
  (log-normal, heavy-tailed) and a buying propensity. New users arrive every
  day: both kinds of cold start are present.
- **Events**: an active user views Poisson(activity x weekday factor) items a
  day, at times around lunch and evening. Each view picks a segment from the
  user's taste, then an item of that segment in stock that day in proportion
  to its popularity. A view becomes an add-to-cart with probability
  ``cart_rate`` x the user's propensity x a price factor, and a cart a purchase
  with probability ``purchase_rate``, minutes later the same day: every
  purchase follows a cart and a view of the same item by the same user.

The conversion defaults sit between two published shop logs. The Retailrocket
dataset (Kaggle, 2016) holds 2,664,312 views, 69,332 add-to-carts and 22,457
transactions: 2.6% of views reach the cart, 32% of carts are bought. The OTTO
session dataset (otto-de/recsys-dataset, training part) holds 194,720,954
clicks, 16,896,191 carts and 5,098,951 orders: 8.7% and 30%. The defaults are
``cart_rate=0.08`` and ``purchase_rate=0.35`` (about 3 purchases per 100
views); both are settings.

Drift scenarios (:data:`DRIFTS`) start on ``drift_day`` and leave every event
before that day exactly as the run without drift. :func:`make_messy_interactions`
adds the faults of a real tracking export, each recorded in a report.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date

import numpy as np
import pandas as pd

from fullcycle.exceptions import DataError

__all__ = [
    "CATEGORIES",
    "DRIFTS",
    "EVENT_TYPES",
    "INTERACTION_COLUMNS",
    "INTERACTION_MESS_KINDS",
    "ITEM_COLUMNS",
    "InteractionMessReport",
    "InteractionSimulation",
    "InteractionSimulatorConfig",
    "make_messy_interactions",
    "simulate_interactions",
]

SECONDS_PER_DAY = 86_400
_NS = 1_000_000_000

#: Columns of an interaction events frame, in order (simulator and loaders alike).
INTERACTION_COLUMNS = [
    "EVENT_ID",
    "EVENT_TIME",
    "EVENT_DAY",
    "USER_ID",
    "ITEM_ID",
    "EVENT_TYPE",
    "RATING",
    "PRICE",
]

#: Columns of an item catalogue frame, in order. ``IN_STOCK`` is the state at
#: the end of the simulated period.
ITEM_COLUMNS = ["ITEM_ID", "CATEGORY", "PRICE", "FIRST_DAY", "IN_STOCK"]

#: Values of ``EVENT_TYPE``: the simulator writes the first three, the
#: MovieLens loader writes "rating".
EVENT_TYPES = ("view", "cart", "purchase", "rating")
_SIMULATED_TYPES = EVENT_TYPES[:3]

#: Category name -> typical (median) price. The simulator uses the first
#: ``n_categories`` of them.
CATEGORIES = {
    "electronics": 120.0,
    "fashion": 40.0,
    "home": 55.0,
    "books": 14.0,
    "beauty": 22.0,
    "sports": 45.0,
    "toys": 25.0,
    "grocery": 8.0,
    "garden": 35.0,
    "music": 12.0,
    "pets": 18.0,
    "automotive": 60.0,
}

#: Drift scenarios: name -> one-line description.
DRIFTS = {
    "trend": "from drift_day every user's taste for one category is multiplied by trend_factor",
    "catalogue": (
        "on drift_day a share of the items in stock is withdrawn and as many new items arrive"
    ),
}

#: Relative browsing volume Monday..Sunday (mean 1): shops are busiest on
#: Sunday and quietest on Friday. A stated assumption, not a published figure.
WEEKLY_RHYTHM = (1.00, 0.97, 0.96, 0.97, 0.92, 1.00, 1.18)

_EXPLORATION = 0.1  # share of every user's taste that is the global taste
_PRICE_SIGMA = 0.6  # log-normal spread of prices around the category median
_ACTIVITY_SIGMA = 1.0
_PROPENSITY_SIGMA = 0.5
_PRICE_ELASTICITY = 0.5  # cart probability ~ (price / category median) ** -0.5
_MAX_CART_P = 0.9


@dataclass(frozen=True)
class InteractionSimulatorConfig:
    """Parameters of the interaction simulator.

    Parameters
    ----------
    n_users, n_items : int
        Users and items present on day 0 (new ones arrive afterwards).
    n_days : int
        Length of the simulation; 91 days are 13 weeks.
    start_date : str
        First simulated day (UTC, midnight), ``YYYY-MM-DD``.
    n_categories : int
        Categories used, the first ones of :data:`CATEGORIES` (1-12).
    segments_per_category : int
        Hidden segments inside each category; a user's taste is over segments.
    events_per_user_per_day : float
        Mean number of views an active user makes on an average day; carts and
        purchases come on top (a few percent of views). A view whose segment has
        nothing in stock that day is lost, which only happens with catalogues of
        fewer than a few items per segment.
    new_users_per_day, new_items_per_day : float
        Mean arrivals per day after day 0 (Poisson): the cold-start users and items.
    items_withdrawn_per_day : float
        Mean number of items withdrawn for good per day (they end ``IN_STOCK`` False).
    popularity_exponent : float
        Zipf exponent of item popularity; 0 makes every item equally popular.
    taste_concentration : float
        Total Dirichlet concentration of a user's taste over segments: small
        values give users a few favourite segments, large values broad tastes.
    cart_rate : float
        Probability that a view of a typically priced item by a typical user
        becomes an add-to-cart (OTTO's log: 8.7%; Retailrocket's: 2.6%).
    purchase_rate : float
        Probability that an add-to-cart is bought (OTTO: 30%; Retailrocket: 32%).
    weekly_rhythm : bool
        Modulate daily volume by day of week (:data:`WEEKLY_RHYTHM`).
    drift : {"trend", "catalogue"} or None
        Drift scenario from :data:`DRIFTS`; None means none.
    drift_day : int or None
        Day (0-based) the drift starts; required with ``drift``.
    drift_category : str or None
        The category that trends (``drift="trend"``); None picks the least
        appealing one, whose jump shows most.
    trend_factor : float
        How much the trending category's appeal is multiplied by.
    catalogue_change_share : float
        Share of the items in stock withdrawn (and replaced) by ``drift="catalogue"``.
    seed : int
        Seed of the random generator; the same config gives the same data.
    """

    n_users: int = 10_000
    n_items: int = 5_000
    n_days: int = 91
    start_date: str = "2024-01-01"
    n_categories: int = 10
    segments_per_category: int = 5
    events_per_user_per_day: float = 0.9
    new_users_per_day: float = 40.0
    new_items_per_day: float = 10.0
    items_withdrawn_per_day: float = 2.0
    popularity_exponent: float = 1.0
    taste_concentration: float = 5.0
    cart_rate: float = 0.08
    purchase_rate: float = 0.35
    weekly_rhythm: bool = True
    drift: str | None = None
    drift_day: int | None = None
    drift_category: str | None = None
    trend_factor: float = 4.0
    catalogue_change_share: float = 0.3
    seed: int = 0

    def __post_init__(self) -> None:
        def refuse(name: str, rule: str) -> None:
            raise DataError(
                f"InteractionSimulatorConfig.{name} must be {rule}, got {getattr(self, name)!r}"
            )

        for name in ("n_users", "n_items", "n_days", "segments_per_category"):
            if getattr(self, name) < 1:
                refuse(name, ">= 1")
        if not 1 <= self.n_categories <= len(CATEGORIES):
            refuse("n_categories", f"between 1 and {len(CATEGORIES)} (one per CATEGORIES name)")
        for name in (
            "events_per_user_per_day",
            "new_users_per_day",
            "new_items_per_day",
            "items_withdrawn_per_day",
            "popularity_exponent",
        ):
            if not getattr(self, name) >= 0:
                refuse(name, ">= 0")
        for name in ("cart_rate", "purchase_rate"):
            if not 0 <= getattr(self, name) <= 1:
                refuse(name, "a probability in [0, 1]")
        if not self.taste_concentration > 0:
            refuse("taste_concentration", "> 0")
        try:
            date.fromisoformat(str(self.start_date))
        except ValueError as exc:
            raise DataError(
                f"InteractionSimulatorConfig.start_date {self.start_date!r} is not a date; "
                "use YYYY-MM-DD"
            ) from exc
        if self.drift is None:
            if self.drift_day is not None:
                raise DataError(
                    "InteractionSimulatorConfig.drift_day is set but drift is None; "
                    f"choose drift from {sorted(DRIFTS)} or leave drift_day as None"
                )
            return
        if self.drift not in DRIFTS:
            refuse("drift", f"one of {sorted(DRIFTS)} or None")
        if self.drift_day is None or not 1 <= self.drift_day < self.n_days:
            raise DataError(
                f"InteractionSimulatorConfig: drift={self.drift!r} needs drift_day, the day "
                f"it starts, between 1 and n_days - 1 = {self.n_days - 1}; got {self.drift_day!r}"
            )
        if self.drift_category is not None and self.drift_category not in self.category_names:
            refuse("drift_category", f"None or one of {list(self.category_names)}")
        if not self.trend_factor > 0:
            refuse("trend_factor", "> 0")
        if not 0 < self.catalogue_change_share < 1:
            refuse("catalogue_change_share", "in (0, 1)")

    @property
    def category_names(self) -> tuple[str, ...]:
        """The categories this configuration uses, in order."""
        return tuple(CATEGORIES)[: self.n_categories]


@dataclass
class InteractionSimulation:
    """What the simulator returns: the events, the catalogue and the hidden model behind them.

    Attributes
    ----------
    events : DataFrame
        Columns :data:`INTERACTION_COLUMNS`, sorted by ``EVENT_TIME`` then
        ``EVENT_ID`` (``EVENT_ID`` counts from 0 in that order).
    items : DataFrame
        The catalogue, columns :data:`ITEM_COLUMNS`; ``ITEM_ID`` counts from 0
        in order of arrival.
    users : DataFrame
        USER_ID (from 0, in order of arrival), FIRST_DAY, ACTIVITY (mean views
        per day), PROPENSITY (multiplies the cart rate) and FAVOURITE_CATEGORY.
    item_profiles : DataFrame
        Hidden item parameters: ITEM_ID, SEGMENT, POPULARITY (the Zipf weight)
        and LAST_DAY (the last day the item can be viewed).
    taste : ndarray
        Users x segments: each user's probability of choosing each segment for
        a view (rows sum to 1). Segment ``s`` belongs to category
        ``s // segments_per_category``.
    taste_after_drift : ndarray or None
        The same from ``drift_day`` on, with ``drift="trend"``.
    config : InteractionSimulatorConfig
    """

    events: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame
    item_profiles: pd.DataFrame
    taste: np.ndarray = field(repr=False)
    taste_after_drift: np.ndarray | None = field(repr=False)
    config: InteractionSimulatorConfig

    @property
    def trend_category(self) -> str | None:
        """The category that trends with ``drift="trend"`` (None otherwise)."""
        cfg = self.config
        if cfg.drift != "trend":
            return None
        return cfg.drift_category or _least_appealing(cfg)


def _category_appeal(cfg: InteractionSimulatorConfig) -> np.ndarray:
    """Global appeal of each category (sums to 1); drawn from the seed alone."""
    return np.random.default_rng([cfg.seed, 1]).dirichlet(np.full(cfg.n_categories, 3.0))


def _least_appealing(cfg: InteractionSimulatorConfig) -> str:
    return cfg.category_names[int(np.argmin(_category_appeal(cfg)))]


def _arrivals(rng: np.random.Generator, start: int, per_day: float, n_days: int) -> np.ndarray:
    """Arrival day of each user or item: ``start`` on day 0, Poisson(per_day) on each later day."""
    later = rng.poisson(per_day, size=max(n_days - 1, 0))
    return np.concatenate(
        [np.zeros(start, np.int64), np.repeat(np.arange(1, n_days, dtype=np.int64), later)]
    )


def _new_items(rng, cfg, first_day, category_size):
    """Segment (and so category) and price of items arriving on ``first_day``."""
    n = first_day.size
    medians = np.asarray([CATEGORIES[c] for c in cfg.category_names])
    category = rng.choice(cfg.n_categories, size=n, p=category_size)
    segment = category * cfg.segments_per_category + rng.integers(
        0, cfg.segments_per_category, size=n
    )
    price = np.round(medians[category] * rng.lognormal(0.0, _PRICE_SIGMA, size=n), 2)
    return {"first": first_day, "segment": segment, "price": np.maximum(price, 0.5)}


def _catalogue(rng, cfg):
    """Items as arrays, sorted by arrival: ids, category, segment, price, popularity, days."""
    category_size = rng.dirichlet(np.full(cfg.n_categories, 4.0))
    items = _new_items(
        rng, cfg, _arrivals(rng, cfg.n_items, cfg.new_items_per_day, cfg.n_days), category_size
    )
    m = items["first"].size
    last = np.full(m, cfg.n_days - 1, dtype=np.int64)
    can_go = np.flatnonzero(items["first"] < cfg.n_days - 1)
    n_out = min(rng.poisson(cfg.items_withdrawn_per_day * cfg.n_days), can_go.size // 2)
    out = rng.choice(can_go, size=n_out, replace=False)
    last[out] = rng.integers(items["first"][out], cfg.n_days - 1)
    rank = rng.permutation(m)
    items["last"] = last
    if cfg.drift == "catalogue":
        # A separate stream: the days before the change stay those of the run without it.
        drift_rng = np.random.default_rng([cfg.seed, 2])
        d = cfg.drift_day
        live = np.flatnonzero((items["first"] < d) & (last >= d))
        gone = drift_rng.choice(
            live, size=int(round(cfg.catalogue_change_share * live.size)), replace=False
        )
        items["last"][gone] = d - 1
        new = _new_items(drift_rng, cfg, np.full(gone.size, d, dtype=np.int64), category_size)
        new["last"] = np.full(gone.size, cfg.n_days - 1, dtype=np.int64)
        for key in items:
            items[key] = np.concatenate([items[key], new[key]])
        # The new items draw popularity ranks from the same range (a few share an old rank).
        rank = np.concatenate([rank, drift_rng.integers(0, m + gone.size, size=gone.size)])
    order = np.argsort(items["first"], kind="stable")
    items = {k: v[order] for k, v in items.items()}
    rank = rank[order]
    items["popularity"] = (1.0 + rank) ** -cfg.popularity_exponent
    return items


def _tastes(rng, cfg, n_users):
    """Users x segments choice probabilities (before drift, and after a trend)."""
    k = cfg.segments_per_category
    appeal = np.repeat(_category_appeal(cfg), k) / k
    raw = rng.gamma(cfg.taste_concentration * appeal, size=(n_users, appeal.size))
    total = raw.sum(axis=1, keepdims=True)
    raw = np.where(total > 0, raw / np.where(total > 0, total, 1.0), appeal)
    taste = (1 - _EXPLORATION) * raw + _EXPLORATION * appeal
    after = None
    if cfg.drift == "trend":
        boost = np.ones(appeal.size)
        c = cfg.category_names.index(cfg.drift_category or _least_appealing(cfg))
        boost[c * k : (c + 1) * k] = cfg.trend_factor
        after = taste * boost
        after /= after.sum(axis=1, keepdims=True)
    return taste, after


def _pick_rows(cdf_rows: np.ndarray, row: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Column drawn from each chosen row of a matrix of row-wise CDFs (last column 1).

    The rows are laid end to end with row ``i`` shifted by ``i``, so one
    ``searchsorted`` answers every draw.
    """
    n_rows, width = cdf_rows.shape
    flat = (cdf_rows + np.arange(n_rows)[:, None]).ravel()
    pos = np.searchsorted(flat, row + r, side="right")
    return np.minimum(pos - row * width, width - 1)


def _sample_items(cfg, items, day, segment, r):
    """Item of each view: in its segment, in stock that day, in proportion to popularity.

    Returns the item index and whether one was available (a segment can be
    empty on a day). One cumulative sum over (day, item ordered by segment)
    and one ``searchsorted`` answer every view.
    """
    n_seg = cfg.n_categories * cfg.segments_per_category
    by_seg = np.argsort(items["segment"], kind="stable")
    seg_start = np.searchsorted(items["segment"][by_seg], np.arange(n_seg + 1))
    days = np.arange(cfg.n_days)[:, None]
    first, last = items["first"][by_seg], items["last"][by_seg]
    weight = np.where((days >= first) & (days <= last), items["popularity"][by_seg], 0.0)
    m = by_seg.size
    cum = np.concatenate([[0.0], np.cumsum(weight.ravel())])
    base = day * m
    lo_pos, hi_pos = base + seg_start[segment], base + seg_start[segment + 1]
    lo, hi = cum[lo_pos], cum[hi_pos]
    pos = np.searchsorted(cum, lo + r * (hi - lo), side="right") - 1
    pos = np.clip(pos, lo_pos, np.maximum(hi_pos - 1, lo_pos))
    ok = (hi > lo) & (weight.ravel()[np.minimum(pos, weight.size - 1)] > 0)
    return by_seg[np.minimum(pos - base, m - 1)], ok


def _users(rng, cfg):
    """Users as arrays: arrival day, activity (views a day), buying propensity, tastes."""
    first = _arrivals(rng, cfg.n_users, cfg.new_users_per_day, cfg.n_days)
    n = first.size
    activity = cfg.events_per_user_per_day * rng.lognormal(
        -(_ACTIVITY_SIGMA**2) / 2, _ACTIVITY_SIGMA, size=n
    )
    propensity = rng.lognormal(-(_PROPENSITY_SIGMA**2) / 2, _PROPENSITY_SIGMA, size=n)
    taste, taste_after = _tastes(rng, cfg, n)
    return {
        "first": first,
        "activity": activity,
        "propensity": propensity,
        "taste": taste,
        "taste_after": taste_after,
    }


def _draw_events(rng, cfg, items, users):
    """Every view, cart and purchase as arrays (user, item, day, second of day, type code)."""
    # Views per (user, day): Poisson around the user's rate, from the user's first day.
    start = pd.Timestamp(cfg.start_date)
    weekday = (start.day_of_week + np.arange(cfg.n_days)) % 7
    rhythm = np.asarray(WEEKLY_RHYTHM)[weekday] if cfg.weekly_rhythm else np.ones(cfg.n_days)
    active = np.arange(cfg.n_days)[None, :] >= users["first"][:, None]
    counts = rng.poisson(users["activity"][:, None] * rhythm[None, :] * active)
    cell = np.repeat(np.arange(counts.size, dtype=np.int64), counts.ravel())
    user, day = cell // cfg.n_days, cell % cfg.n_days
    n = cell.size

    # Every per-view draw is made for all views at once, before anything is dropped,
    # so that a drift changes nothing before its day.
    r_segment, r_item, r_cart, r_buy, r_clock = (rng.random(n) for _ in range(5))
    z = rng.standard_normal(n)
    cart_after = 20 + rng.exponential(120.0, size=n)
    buy_after = 30 + rng.exponential(300.0, size=n)

    cdf = np.cumsum(users["taste"], axis=1)
    row = user
    if users["taste_after"] is not None:
        cdf = np.vstack([cdf, np.cumsum(users["taste_after"], axis=1)])
        row = user + users["first"].size * (day >= cfg.drift_day)
    cdf[:, -1] = 1.0
    segment = _pick_rows(cdf, row, r_segment)
    item, ok = _sample_items(cfg, items, day, segment, r_item)

    # Around lunch (40%) or in the evening (60%).
    clock = np.where(r_clock < 0.4, 13 * 3600 + 3 * 3600 * z, 20.5 * 3600 + 2 * 3600 * z)
    view_s = np.mod(np.rint(clock), SECONDS_PER_DAY).astype(np.int64)
    medians = np.asarray([CATEGORIES[c] for c in cfg.category_names])
    category = items["segment"][item] // cfg.segments_per_category
    price_factor = (items["price"][item] / medians[category]) ** -_PRICE_ELASTICITY
    p_cart = np.minimum(cfg.cart_rate * users["propensity"][user] * price_factor, _MAX_CART_P)
    carted = ok & (r_cart < p_cart)
    bought = carted & (r_buy < cfg.purchase_rate)
    cart_s = np.minimum(view_s + np.rint(cart_after).astype(np.int64), SECONDS_PER_DAY - 1)
    buy_s = np.minimum(cart_s + np.rint(buy_after).astype(np.int64), SECONDS_PER_DAY - 1)

    parts = [(ok, view_s, 0), (carted, cart_s, 1), (bought, buy_s, 2)]
    return {
        "user": np.concatenate([user[m] for m, _, _ in parts]),
        "item": np.concatenate([item[m] for m, _, _ in parts]),
        "day": np.concatenate([day[m] for m, _, _ in parts]),
        "second": np.concatenate([s[m] for m, s, _ in parts]),
        "type": np.concatenate([np.full(int(m.sum()), t, np.int64) for m, _, t in parts]),
    }


def _events_frame(cfg, items, ev):
    """The events in time order, as the frame of :data:`INTERACTION_COLUMNS`."""
    seconds = ev["day"] * SECONDS_PER_DAY + ev["second"]
    # A cart or purchase clamped to the same second as its view still sorts after it.
    order = np.argsort(seconds * 3 + ev["type"], kind="stable")
    seconds = seconds[order]
    item = ev["item"][order]
    start_ns = pd.Timestamp(cfg.start_date).as_unit("ns").value
    return pd.DataFrame(
        {
            "EVENT_ID": np.arange(order.size, dtype=np.int64),
            "EVENT_TIME": pd.to_datetime(start_ns + seconds * _NS, unit="ns"),
            "EVENT_DAY": ev["day"][order],
            "USER_ID": ev["user"][order],
            "ITEM_ID": item,
            "EVENT_TYPE": pd.array(list(_SIMULATED_TYPES), dtype="str").take(ev["type"][order]),
            "RATING": np.full(order.size, np.nan),
            "PRICE": items["price"][item],
        }
    )


def simulate_interactions(
    config: InteractionSimulatorConfig | None = None, **overrides
) -> InteractionSimulation:
    """Simulate a shop's interaction log: views, add-to-carts and purchases.

    Parameters
    ----------
    config : InteractionSimulatorConfig, optional
        Full configuration; the default run gives about one million events
        (10,000 users and 5,000 items at the start, 91 days).
    **overrides
        Fields of :class:`InteractionSimulatorConfig` to change, e.g.
        ``simulate_interactions(n_users=500, n_days=28, seed=3)``.

    Returns
    -------
    InteractionSimulation
        ``events`` (columns :data:`INTERACTION_COLUMNS`), the catalogue
        ``items`` (:data:`ITEM_COLUMNS`), the ``users`` and the hidden model.

    Raises
    ------
    DataError
        If a setting is out of range (the message names the field).

    Examples
    --------
    >>> sim = simulate_interactions(n_users=200, n_items=300, n_days=14, seed=1)
    >>> sorted(set(sim.events["EVENT_TYPE"]))
    ['cart', 'purchase', 'view']
    >>> list(sim.items.columns)
    ['ITEM_ID', 'CATEGORY', 'PRICE', 'FIRST_DAY', 'IN_STOCK']
    """
    if config is None:
        config = InteractionSimulatorConfig(**overrides)
    elif overrides:
        config = replace(config, **overrides)
    cfg = config
    rng = np.random.default_rng(cfg.seed)
    items = _catalogue(rng, cfg)
    people = _users(rng, cfg)
    events = _events_frame(cfg, items, _draw_events(rng, cfg, items, people))

    names = pd.array(list(cfg.category_names), dtype="str")
    m, k = items["first"].size, cfg.segments_per_category
    catalogue = pd.DataFrame(
        {
            "ITEM_ID": np.arange(m, dtype=np.int64),
            "CATEGORY": names.take(items["segment"] // k),
            "PRICE": items["price"],
            "FIRST_DAY": items["first"],
            "IN_STOCK": items["last"] == cfg.n_days - 1,
        }
    )
    profiles = pd.DataFrame(
        {
            "ITEM_ID": np.arange(m, dtype=np.int64),
            "SEGMENT": items["segment"].astype(np.int64),
            "POPULARITY": items["popularity"],
            "LAST_DAY": items["last"],
        }
    )
    taste = people["taste"]
    by_category = taste.reshape(len(taste), cfg.n_categories, k).sum(axis=2)
    users = pd.DataFrame(
        {
            "USER_ID": np.arange(len(taste), dtype=np.int64),
            "FIRST_DAY": people["first"],
            "ACTIVITY": people["activity"],
            "PROPENSITY": people["propensity"],
            "FAVOURITE_CATEGORY": names.take(by_category.argmax(axis=1)),
        }
    )
    return InteractionSimulation(
        events, catalogue, users, profiles, taste, people["taste_after"], cfg
    )


# --------------------------------------------------------------------------------------
# The messiness layer
# --------------------------------------------------------------------------------------

#: Faults :func:`make_messy_interactions` can add.
INTERACTION_MESS_KINDS = ("duplicate_events", "bot_users", "missing_prices", "category_spellings")


@dataclass
class InteractionMessReport:
    """Which rows received which fault.

    Attributes
    ----------
    counts : dict
        Fault kind -> number of rows that received it.
    rows : dict
        Fault kind -> ids of those rows: ``EVENT_ID`` of the duplicate copies
        (``duplicate_events``), of every bot event (``bot_users``) and of the
        events whose price was blanked (``missing_prices``); ``ITEM_ID`` of the
        catalogue rows whose category is misspelled (``category_spellings``).
    duplicate_of : ndarray
        For each id in ``rows["duplicate_events"]``, the ``EVENT_ID`` it copies.
    bot_users : ndarray
        The ``USER_ID`` of the bots (new ids, above every real user's).
    items : DataFrame or None
        The messy catalogue, when a catalogue was given.
    """

    #: Kinds after which an event row is faulty (a data contract must drop or
    #: quarantine it). A missing price has one right repair (the catalogue's
    #: price) and a misspelled category one right spelling: those rows are kept.
    FAULTY = ("duplicate_events", "bot_users")

    counts: dict[str, int] = field(default_factory=dict)
    rows: dict[str, np.ndarray] = field(default_factory=dict)
    duplicate_of: np.ndarray = field(default_factory=lambda: np.array([], np.int64))
    bot_users: np.ndarray = field(default_factory=lambda: np.array([], np.int64))
    items: pd.DataFrame | None = field(default=None, repr=False)

    def faulty_rows(self, messy: pd.DataFrame) -> pd.Series:
        """Which event rows of ``messy`` a data contract must drop (the ground truth).

        Parameters
        ----------
        messy : DataFrame
            The events :func:`make_messy_interactions` returned with this report
            (in any order; ``EVENT_ID`` may have been read back as text).

        Returns
        -------
        Series of bool
            On ``messy``'s index: True for each duplicate copy and each bot event.
        """
        ids = pd.to_numeric(messy["EVENT_ID"], errors="coerce")
        bad = [self.rows[k] for k in self.FAULTY if k in self.rows]
        if not bad:
            return pd.Series(False, index=messy.index)
        return ids.isin(np.concatenate(bad)).astype(bool)


def _spellings(name: str) -> list[str]:
    """Other ways a catalogue writes ``name``: "Books", "BOOKS", " books", "Book"..."""
    variants = [name.title(), name.upper(), f" {name}", f"{name} "]
    if name.endswith("s") and len(name) > 3:
        variants.append(name[:-1].capitalize())
    return [v for v in dict.fromkeys(variants) if v != name]


def _bot_events(rng, events, n_target, first_id, first_user):
    """Bots: new users viewing random items every few seconds, up to 1,500 times in one day."""
    n_bots = max(1, int(round(n_target / 1_000)))
    sizes = rng.integers(500, 1_500, size=n_bots)
    n = int(sizes.sum())
    bot = np.repeat(np.arange(n_bots), sizes)
    anchor = events.iloc[rng.integers(0, len(events), size=n_bots)]
    day_start = anchor["EVENT_TIME"].dt.normalize().to_numpy()
    gap = rng.integers(3, 9, size=n)
    begin = np.cumsum(sizes) - sizes
    offset = np.cumsum(gap) - np.repeat(np.cumsum(gap)[begin] - gap[begin], sizes)
    # Start early enough that the whole burst stays inside its day.
    room = np.maximum(SECONDS_PER_DAY - offset[begin + sizes - 1] - 1, 1)
    start = (rng.random(n_bots) * room).astype(np.int64)
    seconds = start[bot] + offset
    catalogue = events.drop_duplicates("ITEM_ID")[["ITEM_ID", "PRICE"]]
    known = events.dropna(subset=["PRICE"]).drop_duplicates("ITEM_ID", keep="last")
    price_of = known.set_index("ITEM_ID")["PRICE"]
    item = catalogue["ITEM_ID"].to_numpy()[rng.integers(0, len(catalogue), size=n)]
    kind = events["EVENT_TYPE"].value_counts()
    kind = "view" if "view" in kind.index else str(kind.index[0])
    ratings = events["RATING"].dropna().to_numpy()
    rating = rng.choice(ratings, size=n) if ratings.size else np.full(n, np.nan)
    time = pd.to_datetime(day_start[bot] + seconds.astype("timedelta64[s]"))
    frame = pd.DataFrame(
        {
            "EVENT_ID": np.arange(first_id, first_id + n, dtype=np.int64),
            "EVENT_TIME": time,
            "EVENT_DAY": anchor["EVENT_DAY"].to_numpy()[bot],
            "USER_ID": (first_user + bot).astype(np.int64),
            "ITEM_ID": item,
            "EVENT_TYPE": pd.array([kind] * n, dtype="str"),
            "RATING": rating,
            "PRICE": price_of.reindex(item).to_numpy(dtype=float),
        }
    )
    return frame, first_user + np.arange(n_bots, dtype=np.int64)


def make_messy_interactions(
    events: pd.DataFrame,
    rate: float = 0.01,
    seed: int = 0,
    *,
    items: pd.DataFrame | None = None,
    kinds: tuple[str, ...] | list[str] | None = None,
) -> tuple[pd.DataFrame, InteractionMessReport]:
    """Return a messy copy of an interaction log and a report of what was done.

    Each event row receives at most one fault, so the report is exact:

    - ``duplicate_events``: about ``rate`` of the events fired twice (a new
      ``EVENT_ID``, the same user, item, type and price, 0-2 s later);
    - ``bot_users``: about ``rate x len(events)`` events (at least one bot)
      from new users who view a random item every 3-8 s, 500-1,500 times in a day;
    - ``missing_prices``: about ``rate`` of the events with a price lose it;
    - ``category_spellings``: about ``5 x rate`` of the catalogue rows get
      their category spelled another way (``"Books"``, ``" books"``,
      ``"BOOKS"``, ``"Book"``); needs ``items``.

    Parameters
    ----------
    events : DataFrame
        A clean frame with the columns :data:`INTERACTION_COLUMNS` (from
        :func:`simulate_interactions` or a loader).
    rate : float
        Fault rate, in (0, 0.5).
    seed : int
        Seed; the same inputs give the same mess.
    items : DataFrame, optional
        The catalogue (:data:`ITEM_COLUMNS`); its messy copy is returned as
        ``report.items``.
    kinds : sequence of str, optional
        Faults to apply, from :data:`INTERACTION_MESS_KINDS`; by default all
        of them (``category_spellings`` only when ``items`` is given).

    Returns
    -------
    messy : DataFrame
        The events with the faults, sorted by ``EVENT_TIME`` then ``EVENT_ID``
        with a fresh index, in the same columns and types.
    report : InteractionMessReport

    Raises
    ------
    DataError
        For an unknown kind, a rate out of range, a frame without the event
        columns, or ``category_spellings`` asked for without ``items``.
    """
    if kinds is None:
        kinds = [
            k for k in INTERACTION_MESS_KINDS if items is not None or k != "category_spellings"
        ]
    unknown = sorted(set(kinds) - set(INTERACTION_MESS_KINDS))
    if unknown:
        raise DataError(
            f"make_messy_interactions: unknown kind(s) {unknown}; "
            f"choose from {list(INTERACTION_MESS_KINDS)}"
        )
    if not 0 < rate < 0.5:
        raise DataError(f"make_messy_interactions: rate must be in (0, 0.5), got {rate}")
    missing = [c for c in INTERACTION_COLUMNS if c not in events.columns]
    if missing:
        raise DataError(
            f"make_messy_interactions: events lack column(s) {missing}; "
            f"pass a frame with {INTERACTION_COLUMNS}"
        )
    if "category_spellings" in kinds and items is None:
        raise DataError(
            "make_messy_interactions: category_spellings changes the catalogue; "
            "pass items=the catalogue frame, or leave the kind out"
        )
    if len(events) == 0:
        raise DataError("make_messy_interactions: events is empty; there is nothing to mess up")
    rng = np.random.default_rng(seed)
    df = events.reset_index(drop=True)
    n = len(df)
    ids = df["EVENT_ID"].to_numpy()
    report = InteractionMessReport()
    taken = np.zeros(n, dtype=bool)  # rows already given a fault
    next_id = int(ids.max()) + 1
    extra = []

    if "duplicate_events" in kinds:
        rows = np.flatnonzero(rng.random(n) < rate)
        taken[rows] = True
        copy = df.iloc[rows].copy()
        shift = pd.to_timedelta(rng.integers(0, 3, size=rows.size), unit="s")
        moved = copy["EVENT_TIME"] + shift
        days = (moved.dt.normalize() - copy["EVENT_TIME"].dt.normalize()).dt.days
        copy["EVENT_TIME"] = moved
        copy["EVENT_DAY"] = copy["EVENT_DAY"] + days.to_numpy(dtype=np.int64)
        copy["EVENT_ID"] = np.arange(next_id, next_id + rows.size, dtype=np.int64)
        next_id += rows.size
        extra.append(copy)
        report.rows["duplicate_events"] = copy["EVENT_ID"].to_numpy()
        report.duplicate_of = ids[rows]
    if "missing_prices" in kinds:
        priced = df["PRICE"].notna().to_numpy()
        rows = np.flatnonzero((rng.random(n) < rate) & priced & ~taken)
        taken[rows] = True
        df = df.copy()
        df.loc[rows, "PRICE"] = np.nan
        report.rows["missing_prices"] = ids[rows]
    if "bot_users" in kinds:
        first_user = int(events["USER_ID"].max()) + 1
        bots, report.bot_users = _bot_events(rng, events, rate * n, next_id, first_user)
        next_id += len(bots)
        extra.append(bots)
        report.rows["bot_users"] = bots["EVENT_ID"].to_numpy()
    if extra:
        df = pd.concat([df, *extra], ignore_index=True)
    df = df.astype(events.dtypes.to_dict())
    df = df.sort_values(["EVENT_TIME", "EVENT_ID"], kind="stable").reset_index(drop=True)

    if items is not None:
        report.items = items.copy()
        if "category_spellings" in kinds:
            rows = np.flatnonzero(rng.random(len(items)) < min(5 * rate, 0.5))
            names = items["CATEGORY"].to_numpy(dtype=object).copy()
            for i in rows:
                choices = _spellings(str(names[i]))
                names[i] = choices[rng.integers(len(choices))]
            report.items["CATEGORY"] = pd.array(names, dtype="str")
            report.rows["category_spellings"] = items["ITEM_ID"].to_numpy()[rows]
    report.counts = {k: int(v.size) for k, v in report.rows.items()}
    return df, report
