"""The decision: which ``k`` items each user is shown, and the score every candidate gets.

The model ranks every item for a user by how likely they are to want it. The
shop adds its rules before anything is shown:

- **no item the user already bought** (on rating data: already rated).
  Showing what someone owns wastes one of the ``k`` slots on an item they will
  not buy again; the slot is worth more on anything else.
- **no item out of stock**. It cannot be sold, so it earns nothing, and a
  customer who clicks it meets a dead end.

Excluded items are not deleted: they get the score 0, below every eligible
item, so a candidate file keeps one row per candidate and still ranks them
last. Eligible items keep the model's order, mapped into (0, 1] by a fixed,
strictly increasing function (:func:`final_scores`): the same model score
always gives the same final score, whether it was computed for the notebook's
candidate file or for one request to the service, so the two agree exactly.

Three functions apply the rules, one shape each:

- :func:`candidate_scores`: the final score of each (user, item) candidate, from
  plain arrays; the service's ``/v1/score`` calls it on every request and
  :func:`decide` calls it for the notebook, so a score has one definition;
- :func:`decide`: the whole candidate frame (the notebook's predictions), with
  each candidate's rank and why it was excluded;
- :func:`top_k`: one user's ``k`` best items, numpy only (the service's
  ``/v1/recommend``, per request).
"""

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from fullcycle.exceptions import DataError

#: The score of a candidate the rules exclude (bought already, out of stock).
EXCLUDED_SCORE = 0.0
#: The lowest score an eligible candidate can get: above every excluded one.
FLOOR = 1e-6


def final_scores(scores) -> np.ndarray:
    """Model scores mapped into ``[FLOOR, 1]``, keeping their order.

    ``FLOOR + (1 - FLOOR) (1/2 + arctan(s) / pi)``: strictly increasing, so a
    user's ranking is unchanged; fixed, so a score means the same in every
    batch; and bounded away from 0, so every eligible item stays above the
    excluded ones. Distinct scores stay distinct (in float64) up to
    ``|s|`` of about ``10**7``.

    Raises
    ------
    DataError
        If a score is NaN: the model failed to score that candidate.
    """
    ### BEGIN SOLUTION
    s = np.asarray(scores, dtype=float)
    if np.isnan(s).any():
        bad = np.flatnonzero(np.isnan(s))[:5].tolist()
        raise DataError(
            f"the model gave NaN scores (positions {bad}...); give every candidate a number "
            "(unknown items should get the model's lowest score, not NaN)"
        )
    return FLOOR + (1.0 - FLOOR) * (0.5 + np.arctan(s) / np.pi)
    ### END SOLUTION


def _bought_mask(users: np.ndarray, items: np.ndarray, bought: Mapping) -> np.ndarray:
    """True where the candidate's item is one its user already bought.

    Only the users of the candidates are looked up in ``bought``, so the cost
    grows with the candidates asked about, not with every purchase on record: one
    request to the service is one dictionary look-up and one ``np.isin``.
    """
    ### BEGIN SOLUTION
    out = np.zeros(items.size, dtype=bool)
    if not bought or items.size == 0:
        return out
    # Group the candidates by user (a stable sort keeps each user's rows in order), then
    # test each user's items against that user's purchases at once.
    order = np.argsort(users, kind="stable")
    sorted_users = users[order]
    starts = np.flatnonzero(np.r_[True, sorted_users[1:] != sorted_users[:-1]])
    ends = np.r_[starts[1:], users.size]
    for lo, hi in zip(starts.tolist(), ends.tolist(), strict=True):
        got = bought.get(sorted_users[lo])
        if got:
            rows = order[lo:hi]
            out[rows] = np.isin(items[rows], np.asarray(list(got)))
    return out
    ### END SOLUTION


def _stock_mask(in_stock, n: int) -> np.ndarray:
    """``in_stock`` as ``n`` booleans; missing (None/NaN) is out of stock, ``None`` all in."""
    ### BEGIN SOLUTION
    if in_stock is None:
        return np.ones(n, dtype=bool)
    stocked = np.asarray(in_stock)
    if stocked.dtype != bool:  # floats with NaN, objects with None: unknown is not in stock
        stocked = pd.Series(stocked).fillna(False).to_numpy(dtype=bool)
    return stocked
    ### END SOLUTION


def eligible(user_ids, item_ids, bought: Mapping, in_stock=None) -> tuple[np.ndarray, np.ndarray]:
    """Which candidates may be shown, and why the others may not.

    Parameters
    ----------
    user_ids, item_ids : array-like
        One user and one item per candidate.
    bought : mapping
        User id -> the items that user already bought (a set or any iterable);
        users without purchases may be absent.
    in_stock : array-like of bool, optional
        Per candidate; missing (None/NaN) counts as out of stock: a shop does
        not promise what it cannot say it has. ``None``: everything in stock.

    Returns
    -------
    ok : ndarray of bool
        True where the candidate may be shown.
    why : ndarray of object
        ``"bought"``, ``"out of stock"`` or ``""`` (eligible).
    """
    ### BEGIN SOLUTION
    items = np.asarray(item_ids)
    was_bought = _bought_mask(np.asarray(user_ids), items, bought)
    stocked = _stock_mask(in_stock, items.size)
    why = np.where(was_bought, "bought", np.where(stocked, "", "out of stock")).astype(object)
    return ~was_bought & stocked, why
    ### END SOLUTION


def candidate_scores(
    user_ids, item_ids, scores, bought: Mapping | None, in_stock=None
) -> np.ndarray:
    """The final score of each candidate: the number the notebook writes and the service answers.

    Arrays in, an array out, no DataFrame: cheap enough for one candidate per
    request, and :func:`decide` uses it for the whole candidate frame, so the
    notebook's file and the service cannot disagree.

    Parameters
    ----------
    user_ids, item_ids : array-like
        One user and one item per candidate.
    scores : array-like
        The model's score of each candidate, in the same order.
    bought : mapping or None
        User id -> items the user already bought; only the candidates' users are
        looked up.
    in_stock : array-like of bool, optional
        Per candidate (missing: out of stock); ``None``: everything in stock.

    Returns
    -------
    ndarray
        float64 in [0, 1]: :data:`EXCLUDED_SCORE` where the user bought the item
        or it is out of stock, :func:`final_scores` of the model's score elsewhere.

    Raises
    ------
    DataError
        If the arrays differ in length or a score is NaN.
    """
    ### BEGIN SOLUTION
    users, items = np.asarray(user_ids), np.asarray(item_ids)
    s = np.asarray(scores, dtype=float).ravel()
    if not users.size == items.size == s.size:
        raise DataError(
            f"{s.size} scores for {users.size} users and {items.size} items; give one user, "
            "one item and one score per candidate, in the same order"
        )
    ok = ~_bought_mask(users, items, bought or {}) & _stock_mask(in_stock, items.size)
    return np.where(ok, final_scores(s), EXCLUDED_SCORE)
    ### END SOLUTION


def decide(candidates: pd.DataFrame, scores, bought: Mapping | None, k: int = 10) -> pd.DataFrame:
    """The final score of every candidate and each user's ``k`` recommendations.

    Parameters
    ----------
    candidates : DataFrame
        One row per (user, item) candidate: ``USER_ID``, ``ITEM_ID``, and
        ``IN_STOCK`` (bool) and ``CANDIDATE_ID`` when known.
    scores : array-like
        The model's score of each candidate, in the same order (higher is better).
    bought : mapping or None
        User id -> items the user already bought (on rating data: rated).
    k : int
        Items shown per user.

    Returns
    -------
    DataFrame
        On ``candidates``' index and order: ``CANDIDATE_ID`` (when given),
        ``USER_ID``, ``ITEM_ID``, ``score`` (in [0, 1]: 0 when excluded, in
        ``[FLOOR, 1]`` and in the model's order otherwise), ``excluded``
        (``"bought"``, ``"out of stock"`` or ``""``), ``rank`` (1 = shown
        first, among the user's eligible candidates; 0 when excluded; ties by
        ``ITEM_ID``) and ``recommended`` (``1 <= rank <= k``).

    Raises
    ------
    DataError
        If a column is absent, ``scores`` has another length, or a score is NaN.
    """
    ### BEGIN SOLUTION
    missing = [c for c in ("USER_ID", "ITEM_ID") if c not in candidates.columns]
    if missing:
        raise DataError(
            f"the candidates have no column(s) {missing} (found {list(candidates.columns)}); "
            "give one row per (USER_ID, ITEM_ID)"
        )
    s = np.asarray(scores, dtype=float).ravel()
    if s.size != len(candidates):
        raise DataError(
            f"{s.size} scores for {len(candidates)} candidates; score every candidate row, "
            "in the same order"
        )
    if k < 1:
        raise DataError(f"k must be at least 1 item per user, got {k}")
    stock = candidates["IN_STOCK"].to_numpy() if "IN_STOCK" in candidates.columns else None
    users, items = candidates["USER_ID"].to_numpy(), candidates["ITEM_ID"].to_numpy()
    ok, why = eligible(users, items, bought or {}, stock)
    out = candidates[[c for c in ("CANDIDATE_ID", "USER_ID", "ITEM_ID") if c in candidates]].copy()
    # The service's function: the file's scores are the served ones by construction.
    out["score"] = candidate_scores(users, items, s, bought, stock)
    out["excluded"] = why
    # Rank each user's eligible candidates: best score first, the smaller ITEM_ID on ties,
    # so the order never depends on how the rows arrived.
    order = np.lexsort(
        (out["ITEM_ID"].to_numpy(), -out["score"].to_numpy(), out["USER_ID"].to_numpy())
    )
    ranked = out.iloc[order]
    rank = ranked.groupby("USER_ID", sort=False).cumcount().to_numpy() + 1
    out["rank"] = pd.Series(rank, index=ranked.index).reindex(out.index).where(ok, 0)
    out["recommended"] = out["rank"].between(1, k)
    return out
    ### END SOLUTION


def top_k(
    item_ids: np.ndarray,
    scores: np.ndarray,
    bought_items: Iterable = (),
    in_stock: np.ndarray | None = None,
    k: int = 10,
) -> list[tuple[int, float]]:
    """One user's ``k`` recommendations, best first: the service's per-request decision.

    Parameters
    ----------
    item_ids : ndarray
        The catalogue's items.
    scores : ndarray
        The model's score of each item for this user.
    bought_items : iterable
        Items the user already bought (on rating data: rated).
    in_stock : ndarray of bool, optional
        Per item; ``None``: everything in stock.
    k : int
        How many items to return (fewer when fewer are eligible).

    Returns
    -------
    list of (item_id, score)
        Eligible items only, by final score (:func:`final_scores`, the score
        :func:`decide` gives the same candidate) then smaller ``ITEM_ID``.
    """
    ### BEGIN SOLUTION
    items = np.asarray(item_ids)
    final = final_scores(scores)
    ok = _stock_mask(in_stock, items.size)  # unknown stock is out of stock, as in decide()
    owned = np.fromiter(bought_items, dtype=items.dtype)
    if owned.size:
        ok = ok & ~np.isin(items, owned)
    candidates = np.flatnonzero(ok)
    if candidates.size > k:
        # Only the best k need sorting: keep every item at least as good as the k-th best,
        # so that ties at the edge are settled by ITEM_ID below, not by chance.
        kth = np.partition(final[candidates], candidates.size - k)[candidates.size - k]
        candidates = candidates[final[candidates] >= kth]
    order = np.lexsort((items[candidates], -final[candidates]))[:k]
    best = candidates[order]
    return [(items[i].item(), float(final[i])) for i in best]
    ### END SOLUTION
