"""Technical metrics: ROC AUC, average precision and card precision@k per day."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from fullcycle.exceptions import DataError

__all__ = [
    "CardPrecision",
    "average_precision",
    "card_days",
    "card_precision_at_k",
    "compute_metric",
    "daily_top_k_cards",
    "ndcg_at_k",
    "parse_metric_name",
    "roc_auc",
]


def _labels_scores(y_true, y_score):
    y = np.asarray(y_true)
    s = np.asarray(y_score, dtype=float)
    if y.shape != s.shape:
        raise DataError(f"labels and scores differ in shape: {y.shape} vs {s.shape}")
    if not np.isfinite(s).all():
        raise DataError(f"scores contain {int((~np.isfinite(s)).sum())} NaN/inf values")
    return y, s


def roc_auc(y_true, y_score) -> float:
    """Area under the ROC curve; NaN when only one class is present."""
    y, s = _labels_scores(y_true, y_score)
    if np.unique(y).size < 2:
        return float("nan")
    return float(roc_auc_score(y, s))


def average_precision(y_true, y_score) -> float:
    """Average precision (area under the precision-recall curve, step-wise)."""
    y, s = _labels_scores(y_true, y_score)
    if y.sum() == 0:
        return float("nan")
    return float(average_precision_score(y, s))


def card_days(
    frame: pd.DataFrame,
    scores,
    *,
    day: str = "TX_TIME_DAYS",
    card: str = "CUSTOMER_ID",
    **columns: tuple[str, str],
) -> pd.DataFrame:
    """One row per (day, card) of ``frame``: the card's highest score that day and more.

    The rows are sorted by day, then card: every per-card-day table of this
    package (the team's reviews, the decision policy's candidates) comes from
    here, so that they line up row for row.

    Parameters
    ----------
    frame : DataFrame
        Transactions with a day column and a card column.
    scores : array-like
        One finite score per row of ``frame``.
    day, card : str
        Columns of the day (an integer) and of the card.
    **columns : (column, aggregation)
        Further output columns, e.g. ``amount=("TX_AMOUNT", "sum")``.

    Returns
    -------
    DataFrame
        Columns ``day``, ``card``, ``score`` (max of the day) and the named extras.
    """
    for c in (day, card, *(col for col, _ in columns.values())):
        if c not in frame:
            raise DataError(f"reviews per card need column {c!r}; got {list(frame.columns)}")
    s = np.asarray(scores, dtype=float)
    if s.ndim != 1 or s.shape[0] != len(frame):
        raise DataError(f"{len(frame)} rows but {s.shape[0] if s.ndim else 0} scores")
    if not np.isfinite(s).all():
        raise DataError(f"scores contain {int((~np.isfinite(s)).sum())} NaN/inf values")
    data = {"day": frame[day].to_numpy(), "card": frame[card].to_numpy(), "score": s}
    aggs = {"score": ("score", "max")}
    for name, (col, how) in columns.items():
        data[f"_{name}"] = frame[col].to_numpy()
        aggs[name] = (f"_{name}", how)
    return pd.DataFrame(data).groupby(["day", "card"], sort=True).agg(**aggs).reset_index()


def daily_top_k_cards(
    frame: pd.DataFrame,
    scores,
    k: int,
    day: str = "TX_TIME_DAYS",
    card: str = "CUSTOMER_ID",
    label: str = "TX_FRAUD",
    *,
    priority=None,
) -> pd.DataFrame:
    """The cards an investigator team with capacity ``k`` reviews each day.

    Each day, every card not already caught is a candidate, scored by its
    highest transaction score of the day. Without ``priority`` the team
    reviews the top ``k`` candidates by score (ties by card id), as in the
    handbook's protocol. With ``priority`` (one value per row of
    :func:`card_days` of the same frame and scores, i.e. of
    :func:`fullcycle.metrics.review_candidates`), it reviews up to ``k``
    candidates whose priority is finite, highest priority first; a NaN or
    infinite priority means "do not review". A reviewed card that is truly
    compromised counts as caught and leaves the later days.

    Returns
    -------
    DataFrame
        One row per review: ``day``, ``card``, ``score``, ``fraud`` (0/1) and
        ``rank`` within the day.
    """
    if k < 1:
        raise DataError(f"k must be >= 1, got {k}")
    if label not in frame:
        raise DataError(f"card precision needs column {label!r}; got {list(frame.columns)}")
    per_card = card_days(frame, scores, day=day, card=card, fraud=(label, "max"))
    if priority is None:
        per_card["priority"] = per_card["score"]
    else:
        p = np.asarray(priority, dtype=float)
        if p.ndim != 1 or p.shape[0] != len(per_card):
            raise DataError(
                f"the priority has {p.shape[0] if p.ndim else 0} values but there are "
                f"{len(per_card)} candidates (one per day and card); compute it on "
                "review_candidates(frame, scores) of the same frame and scores"
            )
        per_card["priority"] = p
        per_card = per_card[np.isfinite(p)]
    caught: set = set()
    reviews = []
    for _d, g in per_card.groupby("day", sort=True):
        if caught:
            g = g[~g["card"].isin(caught)]
        top = g.sort_values(["priority", "card"], ascending=[False, True], kind="stable").head(k)
        top = top.drop(columns="priority").assign(rank=np.arange(1, len(top) + 1))
        reviews.append(top)
        caught.update(top.loc[top["fraud"] == 1, "card"].tolist())
    if not reviews:
        return pd.DataFrame(columns=["day", "card", "score", "fraud", "rank"])
    return pd.concat(reviews, ignore_index=True)


@dataclass(frozen=True)
class CardPrecision:
    """Mean card precision@k over the days and the value per day."""

    k: int
    mean: float
    per_day: pd.Series


def card_precision_at_k(frame: pd.DataFrame, scores, k: int = 100, **columns) -> CardPrecision:
    """Card precision@k per day, averaged over days (handbook protocol).

    Precision is the number of compromised cards among the ``k`` reviewed,
    divided by ``k`` (not by the number reviewed, so a day with fewer cards
    than ``k`` cannot score 1 by reviewing few).
    """
    reviews = daily_top_k_cards(frame, scores, k, **columns)
    per_day = reviews.groupby("day")["fraud"].sum() / k
    return CardPrecision(
        k=k, mean=float(per_day.mean()) if len(per_day) else float("nan"), per_day=per_day
    )


def parse_metric_name(name: str) -> tuple[str, int | None]:
    """Split a metric name such as ``card_precision@100`` into (kind, k)."""
    if name in ("roc_auc", "average_precision"):
        return name, None
    for kind in ("card_precision", "ndcg"):
        if name.startswith(kind + "@"):
            k = name.split("@", 1)[1]
            if k.isdigit() and int(k) > 0:
                return kind, int(k)
    raise ValueError(
        f"unknown metric {name!r}; choose from roc_auc, average_precision, card_precision@K, "
        "ndcg@K (K a positive integer)"
    )


def ndcg_at_k(frame: pd.DataFrame, scores, k: int, label: str, group: str) -> float:
    """Mean over groups (users) of NDCG@k with binary gains; groups without a positive are skipped."""
    d = pd.DataFrame(
        {"g": frame[group].to_numpy(), "y": frame[label].to_numpy(float), "s": np.asarray(scores)}
    )
    d = d.sort_values(["g", "s"], ascending=[True, False], kind="mergesort")
    d["rank"] = d.groupby("g").cumcount()
    top = d[d["rank"] < k]
    discount = 1.0 / np.log2(top["rank"].to_numpy() + 2.0)
    dcg = (
        pd.Series(top["y"].to_numpy() * discount, index=top["g"].to_numpy()).groupby(level=0).sum()
    )
    positives = d.groupby("g")["y"].sum()
    positives = positives[positives > 0]
    ideal = positives.apply(lambda n: float(np.sum(1.0 / np.log2(np.arange(min(int(n), k)) + 2.0))))
    if ideal.empty:
        return float("nan")
    return float((dcg.reindex(ideal.index, fill_value=0.0) / ideal).mean())


def compute_metric(
    name: str, frame: pd.DataFrame, scores, label: str = "TX_FRAUD", group: str | None = None
) -> float:
    """Compute a metric by its spec name on a labelled frame and scores."""
    kind, k = parse_metric_name(name)
    if kind == "ndcg":
        if group is None:
            raise ValueError(f"{name} needs prediction.group_column in the spec (e.g. the user)")
        return ndcg_at_k(frame, scores, k, label, group)
    if kind == "roc_auc":
        return roc_auc(frame[label], scores)
    if kind == "average_precision":
        return average_precision(frame[label], scores)
    return card_precision_at_k(frame, scores, k=k, label=label).mean
