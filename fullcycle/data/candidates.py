"""A recommendation window: the history a recommender learns from and the candidate rows it scores.

The recommender track grades a model the way the fraud track does, one score
per row: each row of the candidate frame is one (user, item) pair of the
scoring window, and a learner's notebook writes a score for every
``CANDIDATE_ID``. The grader ranks each user's candidates by score, takes the
top ``k`` and measures nDCG@k and the revenue the list would have earned
(:class:`fullcycle.metrics.business.RecommendationRevenue`).

The rows:

- **users**: those who buy, in the scoring window, at least one item they had
  not bought before (the usual ranking protocol scores users with something
  relevant to find). A few have no history at all: the cold start.
- **items**: the whole catalogue as it stands on the window's first day, every
  item that arrived before it. An item withdrawn before the window is still
  listed, with ``IN_STOCK`` False: it cannot be sold, so a list that shows it
  wastes a slot.
- ``PURCHASED`` (kept by the grader): 1 when the user buys the item in the
  window and had not bought it before. Recommending what a user already owns
  earns nothing new, so a repeat purchase is not a hit; a viewed item that is
  bought later is one.
- ``POPULARITY``: the item's events in the ``popularity_days`` before the window
  (what the popularity baseline ranks by, for every user alike).

:func:`project_window` builds a project's window from its spec, the same way
for a learner's notebook (public seed) and for the grader (secret seed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from fullcycle.exceptions import ConfigError, DataError

__all__ = [
    "CANDIDATE_COLUMNS",
    "INTERACTION_SCALES",
    "LABEL",
    "RecommendationWindow",
    "interaction_config",
    "project_window",
    "recommendation_window",
]

#: Columns of a candidate frame as a recommender receives it (the grader keeps ``LABEL``).
CANDIDATE_COLUMNS = [
    "CANDIDATE_ID",
    "USER_ID",
    "ITEM_ID",
    "CATEGORY",
    "PRICE",
    "IN_STOCK",
    "POPULARITY",
]
#: The candidate's label: bought in the window, not bought before.
LABEL = "PURCHASED"
#: Smaller worlds for notebooks, tests and laptops (same days, same catalogue).
INTERACTION_SCALES = {
    "full": {},
    "small": {"n_users": 1500},
    "tiny": {"n_users": 600},
}


@dataclass
class RecommendationWindow:
    """The events before the window, the window's events and its candidate rows.

    Attributes
    ----------
    history : DataFrame
        Events with ``EVENT_DAY`` before the window (what a recommender learns from).
    window : DataFrame
        Events of the window: the truth. Never handed to a submission.
    candidates : DataFrame
        :data:`CANDIDATE_COLUMNS` plus ``LABEL``, ordered by user then item.
    items : DataFrame
        The catalogue on the window's first day (``ITEM_ID, CATEGORY, PRICE, IN_STOCK``).
    detail : dict
        Days, counts of users, items, cold-start users and positives.
    """

    history: pd.DataFrame
    window: pd.DataFrame
    candidates: pd.DataFrame
    items: pd.DataFrame
    detail: dict = field(default_factory=dict)


def recommendation_window(
    events: pd.DataFrame,
    items: pd.DataFrame,
    score_start_day: int,
    score_days: int = 7,
    *,
    last_day: pd.Series | None = None,
    popularity_days: int = 28,
) -> RecommendationWindow:
    """Cut ``events`` at ``score_start_day`` and list the window's candidate rows.

    Parameters
    ----------
    events : DataFrame
        Interaction events (:data:`fullcycle.data.interactions.INTERACTION_COLUMNS`).
    items : DataFrame
        The catalogue: ``ITEM_ID``, ``CATEGORY``, ``PRICE``, ``FIRST_DAY``, ``IN_STOCK``.
    score_start_day : int
        First day of the scoring window; the history ends the day before.
    score_days : int
        Length of the window in days.
    last_day : Series, optional
        Last day each item (the index) can be sold. With it ``IN_STOCK`` is the
        state on the window's first day; without it, the catalogue's ``IN_STOCK``.
    popularity_days : int
        Days before the window that ``POPULARITY`` counts events over.

    Returns
    -------
    RecommendationWindow

    Raises
    ------
    DataError
        When a column is missing, the window holds no event, or no user buys
        anything new in it.
    """
    need = {"EVENT_DAY", "USER_ID", "ITEM_ID", "EVENT_TYPE"}
    missing = sorted(need - set(events.columns))
    if missing:
        raise DataError(f"recommendation_window: the events have no column(s) {missing}")
    missing = sorted({"ITEM_ID", "CATEGORY", "PRICE", "FIRST_DAY", "IN_STOCK"} - set(items))
    if missing:
        raise DataError(f"recommendation_window: the catalogue has no column(s) {missing}")
    if score_days < 1 or popularity_days < 1:
        raise ConfigError("recommendation_window: score_days and popularity_days must be >= 1")
    day = events["EVENT_DAY"].to_numpy()
    end = score_start_day + score_days
    history = events[day < score_start_day].reset_index(drop=True)
    window = events[(day >= score_start_day) & (day < end)].reset_index(drop=True)
    if history.empty or window.empty:
        raise DataError(
            f"recommendation_window: days [{score_start_day}, {end}) leave "
            f"{len(history):,} history and {len(window):,} window events; both must be non-empty"
        )

    bought = window[window["EVENT_TYPE"] == "purchase"][["USER_ID", "ITEM_ID"]]
    before = history[history["EVENT_TYPE"] == "purchase"][["USER_ID", "ITEM_ID"]]
    new = bought.drop_duplicates().merge(before.drop_duplicates(), how="left", indicator=True)
    positives = new[new["_merge"] == "left_only"][["USER_ID", "ITEM_ID"]]
    if positives.empty:
        raise DataError(
            f"recommendation_window: nobody buys a new item in days [{score_start_day}, {end})"
        )

    catalogue = items[items["FIRST_DAY"] < score_start_day]
    catalogue = catalogue.sort_values("ITEM_ID", kind="stable").reset_index(drop=True)
    in_stock = catalogue["IN_STOCK"].to_numpy(bool)
    if last_day is not None:
        in_stock = last_day.reindex(catalogue["ITEM_ID"]).to_numpy() >= score_start_day
    recent = history[history["EVENT_DAY"].to_numpy() >= score_start_day - popularity_days]
    popularity = recent["ITEM_ID"].value_counts().reindex(catalogue["ITEM_ID"], fill_value=0)

    users = np.sort(positives["USER_ID"].unique())
    n_items = len(catalogue)
    candidates = pd.DataFrame(
        {
            "CANDIDATE_ID": np.arange(len(users) * n_items, dtype=np.int64),
            "USER_ID": np.repeat(users, n_items),
            "ITEM_ID": np.tile(catalogue["ITEM_ID"].to_numpy(), len(users)),
            "CATEGORY": np.tile(catalogue["CATEGORY"].to_numpy(object), len(users)),
            "PRICE": np.tile(catalogue["PRICE"].to_numpy(float), len(users)),
            "IN_STOCK": np.tile(in_stock, len(users)),
            "POPULARITY": np.tile(popularity.to_numpy(float), len(users)),
        }
    )
    key = pd.MultiIndex.from_frame(candidates[["USER_ID", "ITEM_ID"]])
    hit = key.isin(pd.MultiIndex.from_frame(positives))
    candidates[LABEL] = hit.astype(np.int64)
    known = set(history["USER_ID"].unique())
    detail = {
        "history_days": [int(day.min()), score_start_day - 1],
        "score_days": [score_start_day, end - 1],
        "users": len(users),
        "cold_start_users": int(sum(u not in known for u in users)),
        "items": n_items,
        "items_out_of_stock": int((~in_stock).sum()),
        "positives": int(hit.sum()),
        "positives_outside_catalogue": len(positives) - int(hit.sum()),
    }
    out_items = catalogue[["ITEM_ID", "CATEGORY", "PRICE"]].assign(IN_STOCK=in_stock)
    return RecommendationWindow(history, window, candidates, out_items, detail)


def interaction_config(spec, scale: str = "full", seed: int | None = None, **extra):
    """The simulator config of an ``interaction_simulator`` project at ``scale`` (and ``seed``)."""
    from fullcycle.data.interactions import InteractionSimulatorConfig

    if spec.data.source != "interaction_simulator":
        raise ConfigError(
            f"project {spec.name!r} has data.source {spec.data.source!r}, "
            "not 'interaction_simulator'"
        )
    if scale not in INTERACTION_SCALES:
        raise ConfigError(f"unknown scale {scale!r}; choose from {sorted(INTERACTION_SCALES)}")
    params = {**spec.data.params, **INTERACTION_SCALES[scale], **extra}
    return InteractionSimulatorConfig(seed=spec.data.seed if seed is None else int(seed), **params)


def project_window(
    spec, scale: str = "full", seed: int | None = None, drift: bool = False
) -> RecommendationWindow:
    """Simulate the world of an ``interaction_simulator`` project and cut its scoring window.

    ``seed`` replaces the spec's (the grader's secret seed); ``drift`` starts the
    spec's ``data.drift`` scenario (``trend`` or ``catalogue``) on its day.
    """
    from fullcycle.data.interactions import simulate_interactions

    extra = {}
    if drift:
        d = spec.data.drift
        if d is None:
            raise ConfigError(f"project {spec.name!r} has no data.drift section")
        extra = {"drift": d.scenario, "drift_day": d.start_day}
    sim = simulate_interactions(interaction_config(spec, scale, seed, **extra))
    s = spec.data.split
    last_day = sim.item_profiles.set_index("ITEM_ID")["LAST_DAY"]
    return recommendation_window(
        sim.events,
        sim.items,
        s.score_start_day,
        s.score_days,
        last_day=last_day,
        popularity_days=s.popularity_days,
    )
