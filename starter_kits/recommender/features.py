"""Features of the recommender: who did what with which item, as the other stages need it.

The raw material is the interaction events frame of :mod:`fullcycle.data`
(``USER_ID``, ``ITEM_ID``, ``EVENT_TYPE``, ``EVENT_DAY``, ...): views, add-to-carts
and purchases from the shop simulator, or ratings from MovieLens. Every stage
reads it through these functions, so they all agree on what a user "has":

- :func:`interaction_matrix` turns events into *implicit feedback*: a user x item
  sparse matrix whose cell is the weight of what the user did with the item
  (:data:`EVENT_WEIGHTS`: a purchase says more than a view), optionally fading
  with age (a recency half-life). The model learns from it.
- :func:`bought_items` and :func:`seen_items`: each user's items, for the decision
  (do not recommend what the user already bought) and for evaluation.
- :func:`item_popularity`: each item's events over the last days before a given
  day, the popularity baseline and the fallback for users with no history.

Indices are stable: users and items are numbered in increasing id order, so the
same events give the same matrix, and a row or column maps back to its id
through :attr:`InteractionMatrix.users` and :attr:`InteractionMatrix.items`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from fullcycle.exceptions import DataError

__all__ = [
    "BOUGHT_TYPES",
    "EVENT_WEIGHTS",
    "InteractionMatrix",
    "bought_items",
    "interaction_matrix",
    "item_popularity",
    "seen_items",
]

#: How much one event of each type says about a user's interest in an item. A
#: purchase is the strongest signal the shop has; a cart is an intention; a view
#: is cheap. A MovieLens rating says the user watched the film: rated is "seen",
#: whatever the stars (the binary relevance of the comparison protocol).
EVENT_WEIGHTS: dict[str, float] = {"view": 1.0, "cart": 3.0, "purchase": 5.0, "rating": 1.0}

#: Event types that mean the user has the item: bought in the shop, watched (rated) on
#: MovieLens. The decision does not recommend these again.
BOUGHT_TYPES = ("purchase", "rating")


@dataclass(frozen=True)
class InteractionMatrix:
    """A user x item matrix of implicit feedback and the ids of its rows and columns.

    Attributes
    ----------
    matrix : scipy.sparse.csr_matrix
        ``matrix[u, i]``: the summed weight of user ``users[u]``'s events with item
        ``items[i]`` (0 when none), float64.
    users, items : pandas.Index
        The ids of the rows and of the columns, in increasing order.
    """

    matrix: sp.csr_matrix
    users: pd.Index
    items: pd.Index


def _require(events, columns: tuple[str, ...], where: str) -> None:
    """Refuse a frame that is not an events frame, naming what is missing and where."""
    if not isinstance(events, pd.DataFrame):
        raise DataError(
            f"{where} needs a DataFrame of interaction events, got {type(events).__name__}"
        )
    missing = [c for c in columns if c not in events.columns]
    if missing:
        raise DataError(
            f"{where}: the events frame has no column(s) {missing} (it has "
            f"{list(events.columns)}); pass interaction events as the simulator or "
            "load_movielens return them"
        )
    for c in ("USER_ID", "ITEM_ID"):
        if c in columns and events[c].isna().any():
            raise DataError(
                f"{where}: {int(events[c].isna().sum())} events have no {c}; validate the "
                "export first (contract.validate_export quarantines them)"
            )


def _event_weights(events: pd.DataFrame, weights: Mapping[str, float], where: str) -> np.ndarray:
    """The weight of each event from its ``EVENT_TYPE``; an unknown type is an error."""
    ### BEGIN SOLUTION
    w = events["EVENT_TYPE"].map(dict(weights)).to_numpy(dtype=float)
    unknown = np.isnan(w)
    if unknown.any():
        kinds = sorted(map(str, events.loc[unknown, "EVENT_TYPE"].unique()))
        raise DataError(
            f"{where}: {int(unknown.sum())} events have an EVENT_TYPE with no weight "
            f"({kinds[:5]}); the weighted types are {sorted(weights)}. Validate the export "
            "first, or pass weights for those types"
        )
    return w
    ### END SOLUTION


def interaction_matrix(
    events: pd.DataFrame,
    weights: Mapping[str, float] | None = None,
    *,
    half_life_days: float | None = None,
    as_of_day: int | None = None,
) -> InteractionMatrix:
    """The user x item matrix of implicit feedback: summed event weights per (user, item).

    Parameters
    ----------
    events : DataFrame
        Interaction events with ``USER_ID``, ``ITEM_ID``, ``EVENT_TYPE`` (and
        ``EVENT_DAY`` with ``half_life_days``).
    weights : mapping, optional
        ``EVENT_TYPE -> weight``; default :data:`EVENT_WEIGHTS`.
    half_life_days : float, optional
        When given, an event ``d`` days before ``as_of_day`` counts
        ``0.5 ** (d / half_life_days)`` of its weight: old interest fades.
        ``None``: every event counts fully, whatever its age.
    as_of_day : int, optional
        The day ages are counted from. Default: *each user's own last event*,
        so a user's interest fades with their later activity, not with the
        calendar; a user back after a month away keeps the tastes they left
        with, and on MovieLens (ratings spread over months across users, a
        random quarter of each user's held out) no user's row is shrunk as a
        whole. With a day, events after it count fully.

    Returns
    -------
    InteractionMatrix
        The CSR matrix with its user and item ids (both sorted).

    Raises
    ------
    DataError
        When a column is missing, an id is missing, an event type has no
        weight, or ``half_life_days`` is not positive.
    """
    ### BEGIN SOLUTION
    where = "interaction_matrix"
    _require(events, ("USER_ID", "ITEM_ID", "EVENT_TYPE"), where)
    w = _event_weights(events, EVENT_WEIGHTS if weights is None else weights, where)
    if half_life_days is not None:
        if not half_life_days > 0:
            raise DataError(
                f"{where}: half_life_days must be > 0 (or None for no decay), got {half_life_days}"
            )
        _require(events, ("EVENT_DAY",), f"{where} with half_life_days")
        day = events["EVENT_DAY"].to_numpy(dtype=float)
        if as_of_day is None:
            now = events.groupby("USER_ID")["EVENT_DAY"].transform("max").to_numpy(dtype=float)
        else:
            now = float(as_of_day)
        # Events after as_of_day count fully, not more than fully.
        w = w * np.exp2(-np.maximum(now - day, 0.0) / float(half_life_days))
    # factorize(sort=True) numbers the ids in increasing order: stable indices.
    rows, users = pd.factorize(events["USER_ID"], sort=True)
    cols, items = pd.factorize(events["ITEM_ID"], sort=True)
    # COO -> CSR sums the weights of repeated (user, item) events.
    matrix = sp.csr_matrix((w, (rows, cols)), shape=(len(users), len(items)), dtype=np.float64)
    matrix.sum_duplicates()
    return InteractionMatrix(matrix, pd.Index(users), pd.Index(items))
    ### END SOLUTION


def _items_per_user(events: pd.DataFrame) -> dict:
    """``{user: set of items}`` over the rows of ``events``."""
    ### BEGIN SOLUTION
    pairs = events[["USER_ID", "ITEM_ID"]].drop_duplicates()
    return {user: set(group.tolist()) for user, group in pairs.groupby("USER_ID")["ITEM_ID"]}
    ### END SOLUTION


def bought_items(events: pd.DataFrame) -> dict:
    """Each user's bought items: ``{USER_ID: {ITEM_ID, ...}}``.

    An item is bought when the user has a ``purchase`` event with it; on rating
    data (MovieLens) a rated item counts as bought (:data:`BOUGHT_TYPES`).
    Users who bought nothing are not in the dict: use ``.get(user, set())``.

    Raises
    ------
    DataError
        When ``USER_ID``, ``ITEM_ID`` or ``EVENT_TYPE`` is missing.
    """
    ### BEGIN SOLUTION
    _require(events, ("USER_ID", "ITEM_ID", "EVENT_TYPE"), "bought_items")
    return _items_per_user(events[events["EVENT_TYPE"].isin(BOUGHT_TYPES)])
    ### END SOLUTION


def seen_items(events: pd.DataFrame) -> dict:
    """Each user's items with any event (viewed, carted, bought or rated): ``{USER_ID: {...}}``.

    Raises
    ------
    DataError
        When ``USER_ID`` or ``ITEM_ID`` is missing.
    """
    ### BEGIN SOLUTION
    _require(events, ("USER_ID", "ITEM_ID"), "seen_items")
    return _items_per_user(events)
    ### END SOLUTION


def item_popularity(
    events: pd.DataFrame,
    day: int | None = None,
    window_days: int | None = 14,
    *,
    items=None,
    weights: Mapping[str, float] | None = None,
) -> pd.Series:
    """Each item's events in the ``window_days`` days before ``day``: popularity as of that day.

    Counts the events with ``day - window_days <= EVENT_DAY < day``; only the
    past counts, so the popularity "as of" the first scoring day never sees the
    scoring window.

    Parameters
    ----------
    events : DataFrame
        Interaction events with ``ITEM_ID`` and ``EVENT_DAY`` (``EVENT_TYPE``
        with ``weights``).
    day : int, optional
        The day popularity is measured on (excluded); default the day after the
        last event.
    window_days : int or None
        How many days back to count; ``None`` counts every earlier event.
    items : array-like, optional
        Report exactly these items (0 for those without events in the window);
        default every item with an event in the window.
    weights : mapping, optional
        ``EVENT_TYPE -> weight`` to weigh events (e.g. :data:`EVENT_WEIGHTS`);
        default: every event counts 1.

    Returns
    -------
    Series
        Float popularity named ``POPULARITY``, indexed by ``ITEM_ID`` (sorted).

    Raises
    ------
    DataError
        When a column is missing or ``window_days`` is not a positive integer.
    """
    ### BEGIN SOLUTION
    where = "item_popularity"
    _require(events, ("ITEM_ID", "EVENT_DAY"), where)
    if window_days is not None and (
        isinstance(window_days, bool) or not isinstance(window_days, int | np.integer)
    ):
        raise DataError(f"{where}: window_days must be an integer or None, got {window_days!r}")
    if window_days is not None and window_days < 1:
        raise DataError(f"{where}: window_days must be >= 1 (or None: all days), got {window_days}")
    event_day = events["EVENT_DAY"].to_numpy()
    if day is None:
        day = int(event_day.max()) + 1 if len(event_day) else 0
    keep = event_day < day
    if window_days is not None:
        keep &= event_day >= day - window_days
    recent = events[keep]
    if weights is None:
        w = np.ones(len(recent))
    else:
        _require(events, ("EVENT_TYPE",), f"{where} with weights")
        w = _event_weights(recent, weights, where)
    counts = pd.Series(w, index=recent["ITEM_ID"].to_numpy()).groupby(level=0).sum()
    if items is not None:
        counts = counts.reindex(pd.Index(np.asarray(items).ravel()).unique(), fill_value=0.0)
    counts = counts.astype(float).sort_index()
    counts.index.name = "ITEM_ID"
    return counts.rename("POPULARITY")
    ### END SOLUTION
