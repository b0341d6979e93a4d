"""Ranking metrics for top-k recommendations: nDCG, precision, recall, MAP, coverage, novelty.

A recommendations frame has one row per recommended item: ``USER_ID``, ``ITEM_ID``
and ``RANK`` (1 = best; an optional ``SCORE`` is ignored). Within a user the items
are taken in increasing ``RANK`` and occupy positions 1, 2, 3, ... in that order
(gaps in ``RANK`` close up, as when a recommender removes an out-of-stock item after
ranking); the top ``k`` positions are scored.

A truth frame holds the events of the scoring window (``USER_ID``, ``ITEM_ID``, any
other columns). Relevance is binary: an item is relevant to a user when the user
has at least one event with it in the truth, whatever its type or rating; several
events of one (user, item) pair count once.

Averages run over the users of the truth (every one of them has at least one
relevant item): a user without recommendations scores 0, and recommendations for
users outside the truth are ignored. ``users="common"`` averages instead over the
truth users that received recommendations, as Microsoft Recommenders'
``python_evaluation`` does.

Excluding items a user has already seen is the recommender's job (the track's
decision stage), not the metric's: the metrics score the list they are given. The
evaluation protocols (:mod:`fullcycle.data.protocols`) remove seen pairs from the
truth, so a recommender that repeats them simply wastes positions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from fullcycle.exceptions import ConfigError, DataError

__all__ = [
    "MAP_DENOMINATORS",
    "RankingReport",
    "catalogue_coverage",
    "map_at_k",
    "ndcg_at_k",
    "novelty",
    "popularity_recommendations",
    "precision_at_k",
    "ranking_metrics",
    "recall_at_k",
    "top_k_positions",
]

#: How MAP@k divides each user's sum of precisions at the relevant positions.
#:
#: ``"relevant"`` (default)
#:     by the number of the user's relevant items ``n``: the formula of Microsoft
#:     Recommenders' ``map_at_k`` when it produced the MAP column of its README table
#:     (and of its ``map`` today). A user with more than ``k`` relevant items cannot
#:     reach 1.
#: ``"min_k"``
#:     by ``min(k, n)``: the formula of Microsoft's ``map_at_k`` in later releases (and of
#:     Spark's ``meanAveragePrecisionAt``). A perfect top-k list scores 1. It equals the
#:     default for users with ``n <= k`` and is larger otherwise, so it is never lower.
MAP_DENOMINATORS = ("relevant", "min_k")

_USERS = ("truth", "common")


def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ConfigError(f"k must be a positive integer (items per user), got {k!r}")
    return int(k)


def _require(frame, columns: tuple[str, ...], what: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"the {what} must be a DataFrame, got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame]
    if missing:
        raise DataError(f"the {what} frame needs columns {missing}; got {list(frame.columns)}")
    for c in ("USER_ID", "ITEM_ID"):
        if c in columns and frame[c].isna().any():
            raise DataError(
                f"the {what} frame has {int(frame[c].isna().sum())} missing {c} values; "
                "drop or repair those rows first"
            )


def _same_kind(left: pd.Series, right: pd.Series, column: str) -> None:
    """Refuse ids that can never match (numbers against strings): every metric would be 0."""
    numeric = (pd.api.types.is_numeric_dtype(left), pd.api.types.is_numeric_dtype(right))
    if numeric[0] != numeric[1] and len(left) and len(right):
        raise DataError(
            f"{column} is {left.dtype} in the recommendations but {right.dtype} in the truth; "
            "no pair could match. Cast both to the same type (the events use int64)"
        )


def top_k_positions(recommendations: pd.DataFrame, k: int = 10) -> pd.DataFrame:
    """Each user's first ``k`` recommendations with their position 1..k.

    Parameters
    ----------
    recommendations : DataFrame
        ``USER_ID``, ``ITEM_ID``, ``RANK`` (1 = best).
    k : int
        Positions kept per user.

    Returns
    -------
    DataFrame
        ``USER_ID``, ``ITEM_ID``, ``POSITION`` (1..k, by increasing ``RANK``),
        sorted by user and position.

    Raises
    ------
    DataError
        When a column is missing, ``RANK`` is not a finite number >= 1, a user
        gets the same item twice or two items share a rank.
    """
    k = _check_k(k)
    _require(recommendations, ("USER_ID", "ITEM_ID", "RANK"), "recommendations")
    rank = pd.to_numeric(recommendations["RANK"], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(rank) | (rank < 1)
    if bad.any():
        raise DataError(
            f"recommendations: {int(bad.sum())} RANK values are not numbers >= 1 (first at row "
            f"{int(np.flatnonzero(bad)[0])}); RANK is the position in the list, 1 = best"
        )
    recs = pd.DataFrame(
        {
            "USER_ID": recommendations["USER_ID"].to_numpy(),
            "ITEM_ID": recommendations["ITEM_ID"].to_numpy(),
            "RANK": rank,
        }
    )
    for key, what in (
        (["USER_ID", "ITEM_ID"], "the same item twice"),
        (["USER_ID", "RANK"], "two items at the same RANK"),
    ):
        dup = recs.duplicated(key)
        if dup.any():
            user = recs["USER_ID"][dup].iloc[0]
            raise DataError(
                f"recommendations give user {user} {what} ({int(dup.sum())} such "
                "rows); each user's list must hold distinct items at distinct ranks"
            )
    recs = recs.sort_values(["USER_ID", "RANK"], kind="mergesort")
    recs["POSITION"] = recs.groupby("USER_ID", sort=False).cumcount().to_numpy() + 1
    top = recs[recs["POSITION"] <= k]
    return top[["USER_ID", "ITEM_ID", "POSITION"]].reset_index(drop=True)


def _relevant_pairs(truth: pd.DataFrame) -> pd.DataFrame:
    _require(truth, ("USER_ID", "ITEM_ID"), "truth")
    return truth[["USER_ID", "ITEM_ID"]].drop_duplicates(ignore_index=True)


@dataclass(frozen=True)
class RankingReport:
    """Ranking quality of top-k recommendations against a truth frame.

    Attributes
    ----------
    k : int
        The cut-off.
    n_users : int
        Users averaged over.
    ndcg, precision, recall, map : float
        Means over those users (NaN when there are none).
    map_denominator : str
        ``"relevant"`` or ``"min_k"`` (see :data:`MAP_DENOMINATORS`).
    users : str
        ``"truth"`` or ``"common"``.
    per_user : DataFrame
        One row per user averaged over (index ``USER_ID``): ``n_relevant``,
        ``n_recommended`` (in the top k), ``hits``, ``ndcg``, ``precision``,
        ``recall``, ``ap``.
    """

    k: int
    n_users: int
    ndcg: float
    precision: float
    recall: float
    map: float
    map_denominator: str
    users: str
    per_user: pd.DataFrame

    def as_dict(self) -> dict[str, float]:
        """The four means under their figure names, e.g. ``{"ndcg@10": ..., "map@10": ...}``."""
        return {
            f"ndcg@{self.k}": self.ndcg,
            f"precision@{self.k}": self.precision,
            f"recall@{self.k}": self.recall,
            f"map@{self.k}": self.map,
        }


def ranking_metrics(
    recommendations: pd.DataFrame,
    truth: pd.DataFrame,
    k: int = 10,
    *,
    map_denominator: str = "relevant",
    users: str = "truth",
) -> RankingReport:
    """nDCG@k, precision@k, recall@k and MAP@k of ``recommendations``, in one pass.

    For a user with ``n`` relevant items (pairs in ``truth``) and hits (relevant
    items) at positions ``p_1 < p_2 < ... < p_h <= k`` of their list:

    - precision@k = h / k (divided by ``k`` even when the list is shorter, as in
      Microsoft Recommenders and Spark: a short list cannot score high by being short);
    - recall@k = h / n;
    - nDCG@k = DCG / IDCG with binary gains, DCG = sum_j 1 / log2(1 + p_j) and
      IDCG = sum_{i=1..min(k, n)} 1 / log2(1 + i), the DCG of a list that puts
      relevant items first (the base of the logarithm cancels out: Microsoft's
      natural log gives the same ratio);
    - AP@k = (sum_j precision at p_j) / n, where precision at p_j = j / p_j;
      ``map_denominator="min_k"`` divides by ``min(k, n)`` instead.

    Each metric is then averaged over the users (see ``users``).

    Parameters
    ----------
    recommendations : DataFrame
        ``USER_ID``, ``ITEM_ID``, ``RANK`` (see :func:`top_k_positions`).
    truth : DataFrame
        ``USER_ID``, ``ITEM_ID`` of the scoring window's events.
    k : int
        The cut-off (the issue's figures use 10).
    map_denominator : {"relevant", "min_k"}
        See :data:`MAP_DENOMINATORS`.
    users : {"truth", "common"}
        ``"truth"`` averages over every user in ``truth`` (those without
        recommendations score 0); ``"common"`` over the truth users that have at
        least one recommendation, as Microsoft's ``python_evaluation`` does (its
        current ``ndcg_at_k`` alone averages over every truth user).

    Returns
    -------
    RankingReport
        The means and the per-user table; NaN means when no user is averaged over.
    """
    k = _check_k(k)
    if map_denominator not in MAP_DENOMINATORS:
        raise ConfigError(
            f"unknown map_denominator {map_denominator!r}; choose from {list(MAP_DENOMINATORS)}"
        )
    if users not in _USERS:
        raise ConfigError(f"unknown users={users!r}; choose from {list(_USERS)}")
    top = top_k_positions(recommendations, k)
    relevant = _relevant_pairs(truth)
    _same_kind(top["USER_ID"], relevant["USER_ID"], "USER_ID")
    _same_kind(top["ITEM_ID"], relevant["ITEM_ID"], "ITEM_ID")

    n_relevant = relevant.groupby("USER_ID").size()
    if users == "common":
        n_relevant = n_relevant[n_relevant.index.isin(top["USER_ID"].unique())]
    index = n_relevant.index

    hits = top.merge(relevant, on=["USER_ID", "ITEM_ID"], how="inner")
    hits = hits[hits["USER_ID"].isin(index)].sort_values(["USER_ID", "POSITION"])
    position = hits["POSITION"].to_numpy(dtype=float)
    hit_number = hits.groupby("USER_ID", sort=False).cumcount().to_numpy() + 1.0
    per_hit = pd.DataFrame(
        {"hits": 1.0, "dcg": 1.0 / np.log2(1.0 + position), "ap": hit_number / position},
        index=hits["USER_ID"].to_numpy(),
    )
    sums = per_hit.groupby(level=0).sum().reindex(index, fill_value=0.0)

    n = n_relevant.to_numpy(dtype=float)
    ideal = np.cumsum(1.0 / np.log2(np.arange(2, k + 2, dtype=float)))
    idcg = ideal[np.minimum(n, k).astype(int) - 1] if len(n) else np.zeros(0)
    denominator = n if map_denominator == "relevant" else np.minimum(n, k)
    n_recommended = top.groupby("USER_ID").size().reindex(index, fill_value=0)
    per_user = pd.DataFrame(
        {
            "n_relevant": n_relevant.to_numpy(),
            "n_recommended": n_recommended.to_numpy(),
            "hits": sums["hits"].to_numpy().astype(int),
            "ndcg": sums["dcg"].to_numpy() / idcg,
            "precision": sums["hits"].to_numpy() / k,
            "recall": sums["hits"].to_numpy() / n,
            "ap": sums["ap"].to_numpy() / denominator,
        },
        index=pd.Index(index, name="USER_ID"),
    )

    def mean(column: str) -> float:
        return float(per_user[column].mean()) if len(per_user) else float("nan")

    return RankingReport(
        k=k,
        n_users=len(per_user),
        ndcg=mean("ndcg"),
        precision=mean("precision"),
        recall=mean("recall"),
        map=mean("ap"),
        map_denominator=map_denominator,
        users=users,
        per_user=per_user,
    )


def ndcg_at_k(
    recommendations: pd.DataFrame, truth: pd.DataFrame, k: int = 10, *, users: str = "truth"
) -> float:
    """Mean nDCG@k with binary relevance: sum_j 1/log2(1 + p_j) over hits, over the ideal.

    The ideal DCG is that of ``min(k, n)`` relevant items at the top (``n`` the
    user's relevant items). See :func:`ranking_metrics` for the whole definition
    and ``users``. (:func:`fullcycle.metrics.technical.ndcg_at_k` is the grader's
    version for per-row scores grouped by user; on the same ranking they agree.)
    """
    return ranking_metrics(recommendations, truth, k, users=users).ndcg


def precision_at_k(
    recommendations: pd.DataFrame, truth: pd.DataFrame, k: int = 10, *, users: str = "truth"
) -> float:
    """Mean precision@k: hits in the top ``k`` divided by ``k`` (not by the list's length).

    See :func:`ranking_metrics` for the definition and ``users``.
    """
    return ranking_metrics(recommendations, truth, k, users=users).precision


def recall_at_k(
    recommendations: pd.DataFrame, truth: pd.DataFrame, k: int = 10, *, users: str = "truth"
) -> float:
    """Mean recall@k: hits in the top ``k`` divided by the user's number of relevant items.

    See :func:`ranking_metrics` for the definition and ``users``.
    """
    return ranking_metrics(recommendations, truth, k, users=users).recall


def map_at_k(
    recommendations: pd.DataFrame,
    truth: pd.DataFrame,
    k: int = 10,
    *,
    denominator: str = "relevant",
    users: str = "truth",
) -> float:
    """Mean average precision@k: per user, the precisions at the hits' positions, summed.

    The sum is divided by the user's number of relevant items ``n`` (default,
    ``denominator="relevant"``: Microsoft's README table) or by ``min(k, n)``
    (``"min_k"``: its later ``map_at_k`` and Spark). With hits at positions 1
    and 3 of a top-3 list and ``n = 4``: (1/1 + 2/3) / 4 = 0.4167 by default,
    (1/1 + 2/3) / 3 = 0.5556 with ``"min_k"``. See :data:`MAP_DENOMINATORS`.
    """
    return ranking_metrics(recommendations, truth, k, map_denominator=denominator, users=users).map


def _catalogue_items(catalogue) -> pd.Index:
    if isinstance(catalogue, pd.DataFrame):
        _require(catalogue, ("ITEM_ID",), "catalogue")
        items = catalogue["ITEM_ID"]
    else:
        items = pd.Series(np.asarray(catalogue).ravel())
    items = pd.Index(items.unique())
    if items.empty:
        raise DataError("the catalogue is empty; pass the item frame or the ids of every item")
    return items


def catalogue_coverage(recommendations: pd.DataFrame, catalogue, k: int = 10) -> float:
    """Share of the catalogue recommended to anyone: distinct items in the top ``k`` / catalogue.

    Shani and Gunawardana's catalogue coverage ("Evaluating Recommendation
    Systems", Recommender Systems Handbook, 2011). Microsoft's ``catalog_coverage``
    divides by the distinct items of the training data; pass
    ``train["ITEM_ID"].unique()`` as ``catalogue`` for that.

    Parameters
    ----------
    recommendations : DataFrame
        ``USER_ID``, ``ITEM_ID``, ``RANK``.
    catalogue : DataFrame or array-like
        The item frame (its ``ITEM_ID`` column) or the item ids.
    k : int
        Positions counted per user.

    Raises
    ------
    DataError
        When a recommended item is not in the catalogue (the catalogue passed is
        not the whole one, or the recommender invents items).
    """
    top = top_k_positions(recommendations, k)
    items = _catalogue_items(catalogue)
    shown = pd.Index(top["ITEM_ID"].unique())
    unknown = shown.difference(items)
    if len(unknown):
        raise DataError(
            f"{len(unknown)} recommended items are not in the catalogue (e.g. "
            f"{list(unknown[:5])}); pass the whole catalogue, including new items"
        )
    return len(shown) / len(items)


def novelty(recommendations: pd.DataFrame, train: pd.DataFrame, k: int = 10) -> float:
    """Mean self-information of the recommended items: mean of -log2(popularity share).

    An item's popularity share is its number of training events divided by the
    number of training events (Castells, Vargas and Wang's choice model, ECIR
    2011, as in Microsoft's ``historical_item_novelty``). The mean runs over
    every (user, item) in the top ``k`` lists, so an item shown to many users
    weighs more. An item shown to everyone that half the events are about
    scores 1 bit; the higher, the further into the long tail the lists go.

    Items with no training event have no share (infinite self-information) and
    are left out of the mean. Microsoft's ``novelty`` adds 0 for them but keeps
    them in the count; the two agree whenever every recommended item occurs in
    training (always so for a model that only recommends items it trained on).
    NaN when no recommended item occurs in training.

    Parameters
    ----------
    recommendations : DataFrame
        ``USER_ID``, ``ITEM_ID``, ``RANK``.
    train : DataFrame
        Training events (``ITEM_ID``); every row counts as one event.
    k : int
        Positions counted per user.
    """
    top = top_k_positions(recommendations, k)
    _require(train, ("ITEM_ID",), "train")
    if train.empty:
        raise DataError("novelty needs training events to measure popularity; train is empty")
    share = train["ITEM_ID"].value_counts() / len(train)
    p = top["ITEM_ID"].map(share).to_numpy(dtype=float)
    p = p[~np.isnan(p)]
    return float(np.mean(-np.log2(p))) if len(p) else float("nan")


def popularity_recommendations(
    train: pd.DataFrame,
    users,
    k: int = 10,
    *,
    exclude_seen: bool = True,
    event_types=None,
) -> pd.DataFrame:
    """The popularity baseline: every user gets the most popular items they have not seen.

    Popularity is the number of training events with the item (ties: lower
    ``ITEM_ID`` first). With ``exclude_seen`` each user's list skips the items
    they have an event with in ``train``, as the track's recommenders do; a
    user new to ``train`` gets the plain top ``k``.

    Parameters
    ----------
    train : DataFrame
        Training events (``USER_ID``, ``ITEM_ID``; ``EVENT_TYPE`` with ``event_types``).
    users : array-like
        The users to recommend for (e.g. ``truth["USER_ID"].unique()``).
    k : int
        Items per user (fewer when the catalogue runs out).
    exclude_seen : bool
        Skip the items each user has seen in ``train``.
    event_types : sequence of str, optional
        Count only these event types for popularity (e.g. ``["purchase"]`` for
        bestsellers); ``None`` counts every event. Seen items are always every
        item with an event of any type.

    Returns
    -------
    DataFrame
        ``USER_ID``, ``ITEM_ID``, ``RANK`` (1..k), ``SCORE`` (the popularity).
    """
    k = _check_k(k)
    _require(train, ("USER_ID", "ITEM_ID"), "train")
    counted = train
    if event_types is not None:
        _require(train, ("EVENT_TYPE",), "train")
        counted = train[train["EVENT_TYPE"].isin(list(event_types))]
    popularity = counted.groupby("ITEM_ID").size()
    popularity = popularity.sort_index(kind="mergesort").sort_values(
        ascending=False, kind="mergesort"
    )
    items = popularity.index.to_numpy()
    counts = popularity.to_numpy()
    users = pd.Index(pd.Series(np.asarray(users).ravel()).unique())
    columns = ["USER_ID", "ITEM_ID", "RANK", "SCORE"]
    if len(items) == 0 or len(users) == 0:
        return pd.DataFrame({c: pd.Series(dtype="int64") for c in columns})
    if exclude_seen:
        seen = train[["USER_ID", "ITEM_ID"]].drop_duplicates()
        seen = seen[seen["USER_ID"].isin(users)]
        # A user's list lies within the first k + s popular items, s = the items they have
        # seen among those; so each user needs only that many candidates, not the catalogue.
        item_rank = pd.Series(np.arange(len(items)), index=items)
        seen_rank = seen["ITEM_ID"].map(item_rank)
        seen_count = seen.groupby("USER_ID").size().reindex(users, fill_value=0).to_numpy()
        limit = k + seen_count
        in_reach = seen_rank.to_numpy() < limit[users.get_indexer(seen["USER_ID"])]
        reach = seen[in_reach].groupby("USER_ID").size().reindex(users, fill_value=0).to_numpy()
        length = np.minimum(k + reach, len(items))
    else:
        length = np.full(len(users), min(k, len(items)))
    user_of_row = np.repeat(users.to_numpy(), length)
    starts = np.repeat(np.cumsum(length) - length, length)
    rank_of_row = np.arange(int(length.sum())) - starts
    candidates = pd.DataFrame(
        {
            "USER_ID": user_of_row,
            "ITEM_ID": items[rank_of_row],
            "SCORE": counts[rank_of_row],
        }
    )
    if exclude_seen and len(seen):
        candidates = candidates[~_pairs(candidates).isin(_pairs(seen))]
    candidates = candidates.assign(
        RANK=candidates.groupby("USER_ID", sort=False).cumcount().to_numpy() + 1
    )
    return candidates[candidates["RANK"] <= k][columns].reset_index(drop=True)


def _pairs(frame: pd.DataFrame) -> pd.MultiIndex:
    return pd.MultiIndex.from_arrays([frame["USER_ID"].to_numpy(), frame["ITEM_ID"].to_numpy()])
