"""Business value models: what a model is worth in money, against a baseline and the oracle.

Each model is an expected-value calculation with named, documented
parameters, registered under a name that a project spec refers to
(``business_value: {model: fraud_investigation, ...}``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from fullcycle.exceptions import ConfigError, DataError
from fullcycle.metrics.ranking import popularity_recommendations, top_k_positions
from fullcycle.metrics.technical import card_days, daily_top_k_cards

__all__ = [
    "FraudInvestigationValue",
    "RecommendationRevenue",
    "RevenueAtK",
    "ValueReport",
    "get_value_model",
    "register_value_model",
    "review_candidates",
    "value_models",
]

_REGISTRY: dict[str, type] = {}


def register_value_model(name: str, cls: type) -> None:
    """Make a business value model available to project specs under ``name``."""
    _REGISTRY[name] = cls


def get_value_model(name: str, **params):
    """Build the registered value model ``name`` with ``params``."""
    if name not in _REGISTRY:
        raise ConfigError(f"unknown business value model {name!r}; choose from {sorted(_REGISTRY)}")
    try:
        return _REGISTRY[name](**params)
    except TypeError as exc:
        fields = sorted(_REGISTRY[name].__dataclass_fields__)
        raise ConfigError(
            f"business value model {name!r}: {exc}; its parameters are {fields}"
        ) from None


def value_models() -> list[str]:
    return sorted(_REGISTRY)


@dataclass(frozen=True)
class ValueReport:
    """Net value of one ranking over the scoring window, and how it compares."""

    net_value: float
    per_day: pd.Series
    detail: dict = field(default_factory=dict)

    def share_of(self, oracle: ValueReport) -> float:
        return self.net_value / oracle.net_value if oracle.net_value > 0 else float("nan")

    def times(self, baseline: ValueReport) -> float:
        return self.net_value / baseline.net_value if baseline.net_value > 0 else float("nan")

    def gain_over(self, other: ValueReport, oracle: ValueReport) -> float:
        """What this earns beyond ``other``, as a share of the oracle's value.

        0 means as good as ``other``, 0.1 means ten points of the achievable value
        more. Unlike a ratio it stays meaningful when ``other`` loses money.
        """
        return (self.net_value - other.net_value) / (abs(oracle.net_value) or 1.0)


def review_candidates(
    frame: pd.DataFrame,
    scores,
    *,
    day: str = "TX_TIME_DAYS",
    card: str = "CUSTOMER_ID",
    amount: str = "TX_AMOUNT",
) -> pd.DataFrame:
    """The cards the fraud team could review, one row per day and card: what a policy sees.

    A decision policy (the kit's ``policy:review_priority``) gets this frame
    and returns one priority per row; :meth:`FraudInvestigationValue.evaluate`
    takes that priority back. No label is in it: a policy decides before the
    investigation says whether the card was compromised.

    Parameters
    ----------
    frame : DataFrame
        Scored transactions (labels not needed).
    scores : array-like
        One finite score per row of ``frame``.
    day, card, amount : str
        Columns of the day (an integer), the card and the amount.

    Returns
    -------
    DataFrame
        Sorted by day, then card, with columns ``day``, ``card``, ``score`` (the
        card's highest score that day), ``amount`` (the sum of its amounts that
        day), ``top_amount`` (the amount of its highest-scored transaction that
        day, the first in ``frame``'s order on a tie) and ``n_tx`` (its number
        of transactions that day). Cards caught on an earlier day are still
        listed; the evaluation skips them.
    """
    candidates = card_days(
        frame, scores, day=day, card=card, amount=(amount, "sum"), n_tx=(amount, "size")
    )
    by_score = pd.DataFrame(
        {
            "day": frame[day].to_numpy(),
            "card": frame[card].to_numpy(),
            "score": np.asarray(scores, dtype=float),
            "amount": frame[amount].to_numpy(dtype=float),
        }
    ).sort_values(["day", "card", "score"], ascending=[True, True, False], kind="stable")
    top = by_score.groupby(["day", "card"], sort=True)["amount"].first()
    candidates.insert(4, "top_amount", top.to_numpy())
    return candidates


@dataclass(frozen=True)
class FraudInvestigationValue:
    """Net savings of a fraud team that reviews ``k`` cards a day.

    Each day the team reviews the ``k`` cards with the highest scores that it
    has not already caught, or, given a decision policy's priority, up to
    ``k`` of them in the policy's order (see :meth:`evaluate`). Per reviewed card:

    - every review costs ``review_cost``;
    - a compromised card is blocked: ``recovery_rate`` of its fraudulent
      amount on that day is recovered (charge-backs), and, if
      ``block_prevents_future`` is true, its later fraudulent amount in the
      window is prevented in full (a blocked card cannot be used);
    - a legitimate card reviewed is a false alarm: the customer is called or
      declined, which costs ``friction_cost`` on top of the review.

    Net savings = recovered + prevented - reviews - friction. The oracle reviews
    only compromised cards, best first; the rule baseline ranks cards by their
    largest payment of the day (what a team without a model does).

    Parameters
    ----------
    k : int
        Investigator capacity, cards per day (handbook: 100).
    review_cost : float
        Cost of one review (analyst time), in the currency of the amounts.
    recovery_rate : float
        Share of a caught card's fraudulent amount on the alert day that is recovered.
    friction_cost : float
        Extra cost of a false alarm (customer friction, churn risk).
    block_prevents_future : bool
        Whether blocking a caught card prevents its later fraud in the window.
    """

    k: int = 100
    review_cost: float = 10.0
    recovery_rate: float = 0.8
    friction_cost: float = 15.0
    block_prevents_future: bool = True

    def __post_init__(self):
        if self.k < 1:
            raise ConfigError(f"fraud_investigation.k must be >= 1, got {self.k}")
        if not 0 <= self.recovery_rate <= 1:
            raise ConfigError(
                f"fraud_investigation.recovery_rate must be in [0, 1], got {self.recovery_rate}"
            )
        if self.review_cost < 0 or self.friction_cost < 0:
            raise ConfigError("fraud_investigation.review_cost and friction_cost must be >= 0")

    def params(self) -> dict:
        return asdict(self)

    def _card_day_amounts(self, frame, day, card, label, amount):
        fraud_amount = np.where(
            frame[label].to_numpy() == 1, frame[amount].to_numpy(dtype=float), 0.0
        )
        return (
            pd.DataFrame(
                {"day": frame[day].to_numpy(), "card": frame[card].to_numpy(), "fa": fraud_amount}
            )
            .groupby(["day", "card"], sort=True)["fa"]
            .sum()
        )

    def evaluate(
        self,
        frame: pd.DataFrame,
        scores=None,
        priority=None,
        *,
        day: str = "TX_TIME_DAYS",
        card: str = "CUSTOMER_ID",
        label: str = "TX_FRAUD",
        amount: str = "TX_AMOUNT",
    ) -> ValueReport:
        """Net savings of the team's reviews over the window of ``frame``.

        Parameters
        ----------
        frame : DataFrame
            Labelled transactions of the window.
        scores : array-like, optional
            One score per row. ``None`` gives the oracle (only compromised cards
            are reviewed, the most valuable first).
        priority : array-like, optional
            A decision policy's output: one value per row of
            ``review_candidates(frame, scores)``. Each day, cards already caught
            are skipped, then up to ``k`` candidates with a finite priority are
            reviewed, highest first; NaN means "do not review". ``None`` reviews
            the top ``k`` by score every day.

        Returns
        -------
        ValueReport
            Net value, value per day and ``detail`` (reviews, caught cards,
            false alarms, money recovered and prevented, costs).
        """
        if amount not in frame:
            raise DataError(f"the fraud value model needs column {amount!r}")
        if scores is None and priority is not None:
            raise ConfigError(
                "the oracle (scores=None) chooses its own reviews; pass scores with a priority"
            )
        fa = self._card_day_amounts(frame, day, card, label, amount)
        if scores is None:
            # Oracle: rank cards by what catching them is worth; only compromised ones are reviewed.
            # A card-day without fraud is worth nothing yet: the oracle never spends a review on it
            # (it knows the card is not caught that day), however much fraud comes later.
            worth = fa[::-1].groupby(level="card").cumsum()[::-1]  # this day's fraud and later
            worth = worth.where(fa > 0, 0.0)
            lookup = worth.reindex(
                pd.MultiIndex.from_arrays([frame[day].to_numpy(), frame[card].to_numpy()])
            )
            scores = lookup.to_numpy() + 1e-9 * frame[amount].to_numpy(dtype=float)
            fraud_only = True
        else:
            fraud_only = False
        reviews = daily_top_k_cards(
            frame, scores, self.k, day=day, card=card, label=label, priority=priority
        )
        if fraud_only:
            reviews = reviews[reviews["fraud"] == 1]
        days = np.sort(frame[day].unique())
        fa_by_card = fa.reset_index()
        recovered = np.zeros(len(reviews))
        prevented = np.zeros(len(reviews))
        if len(reviews):
            key = pd.MultiIndex.from_frame(reviews[["day", "card"]])
            recovered = self.recovery_rate * fa.reindex(key).fillna(0.0).to_numpy()
            if self.block_prevents_future:
                merged = reviews[["day", "card"]].merge(
                    fa_by_card, on="card", suffixes=("", "_later")
                )
                later = merged[merged["day_later"] > merged["day"]]
                future = later.groupby(["day", "card"])["fa"].sum()
                prevented = future.reindex(key).fillna(0.0).to_numpy()
            recovered = np.where(reviews["fraud"].to_numpy() == 1, recovered, 0.0)
            prevented = np.where(reviews["fraud"].to_numpy() == 1, prevented, 0.0)
        false_alarm = (reviews["fraud"].to_numpy() == 0).astype(float)
        net = recovered + prevented - self.review_cost - self.friction_cost * false_alarm
        per_day = pd.Series(net, index=reviews["day"].to_numpy()).groupby(level=0).sum()
        per_day = per_day.reindex(days, fill_value=0.0)
        detail = {
            "policy": "oracle" if fraud_only else "top_k" if priority is None else "priority",
            "reviews": int(len(reviews)),
            "caught_cards": int(reviews["fraud"].sum()) if len(reviews) else 0,
            "false_alarms": int(false_alarm.sum()),
            "recovered": float(recovered.sum()),
            "prevented": float(prevented.sum()),
            "review_cost": float(self.review_cost * len(reviews)),
            "friction_cost": float(self.friction_cost * false_alarm.sum()),
            "fraud_amount_total": float(fa.sum()),
        }
        return ValueReport(net_value=float(net.sum()), per_day=per_day, detail=detail)

    def baseline_scores(self, frame: pd.DataFrame, amount: str = "TX_AMOUNT") -> np.ndarray:
        """The rule baseline: review the cards with the largest payments of the day."""
        return frame[amount].to_numpy(dtype=float)


register_value_model("fraud_investigation", FraudInvestigationValue)


@dataclass(frozen=True)
class RecommendationRevenue:
    """Revenue of showing each user ``k`` items: a shown item the user then buys earns its price.

    Parameters
    ----------
    k : int
        Items shown per user.
    attribution_rate : float
        Share of a bought item's price credited to the recommendation.
    user, item_price, label : str
        Columns of the user, the item's price and whether the user bought it (0/1).
    popularity : str
        Column the baseline ranks by (the same top items for everyone).
    """

    k: int = 10
    attribution_rate: float = 0.3
    user: str = "USER_ID"
    item_price: str = "PRICE"
    label: str = "PURCHASED"
    popularity: str = "POPULARITY"

    def __post_init__(self):
        if self.k < 1:
            raise ConfigError(f"k must be >= 1 items per user, got {self.k}")
        if not 0 < self.attribution_rate <= 1:
            raise ConfigError(f"attribution_rate must be in (0, 1], got {self.attribution_rate}")

    def params(self) -> dict:
        return asdict(self)

    def evaluate(self, frame: pd.DataFrame, scores=None, **_) -> ValueReport:
        """Revenue of the top ``k`` per user by ``scores`` (``None``: the oracle)."""
        y = frame[self.label].to_numpy(float)
        price = frame[self.item_price].to_numpy(float)
        s = y * price if scores is None else np.asarray(scores, dtype=float)
        d = pd.DataFrame({"u": frame[self.user].to_numpy(), "s": s, "gain": y * price})
        d = d.sort_values(["u", "s"], ascending=[True, False], kind="mergesort")
        top = d[d.groupby("u").cumcount() < self.k]
        per_user = top.groupby("u")["gain"].sum() * self.attribution_rate
        hits = int((top["gain"] > 0).sum())
        return ValueReport(
            float(per_user.sum()),
            pd.Series([float(per_user.sum())], index=["window"]),
            {"hits": hits, "users": int(d["u"].nunique()), "shown": len(top)},
        )

    def baseline_scores(self, frame: pd.DataFrame) -> np.ndarray:
        """The popularity baseline: every user sees the most popular items."""
        return frame[self.popularity].to_numpy(float)


register_value_model("recommendation_revenue", RecommendationRevenue)


@dataclass(frozen=True)
class RevenueAtK:
    """Revenue of top-k recommendation lists: a recommended item the user then buys earns money.

    revenue@k: for each user, every purchase event in the scoring window of an
    item that is in the user's top ``k`` recommendations earns its ``PRICE`` (the
    price paid, on the event) times ``attribution_rate``, the share of the sale
    credited to the recommendation. A user who buys a recommended item twice in
    the window pays twice, so it earns twice; an item bought but not recommended
    earns nothing. Purchases are the truth events with ``EVENT_TYPE ==
    purchase_type``; other events (views, carts, ratings) earn nothing.

    Against that:

    - the **baseline** (:meth:`baseline_recommendations`) recommends every user
      the most popular items of the training events they have not seen;
      ``lift`` (the figure ``value_vs_baseline``) is revenue / baseline revenue
      (1 = as good as popularity; NaN when the baseline earns nothing);
    - the **oracle** (:meth:`oracle_recommendations`) recommends each user the
      ``k`` items they will spend most on in the window (the most expensive ones
      when each is bought once), the most any list of ``k`` can earn;
      ``share_of_oracle`` is revenue / oracle revenue.

    Unlike the value models the grader calls with one score per row
    (``evaluate(frame, scores)``), this one takes recommendation lists, so it is
    not registered under a name for ``project.yaml`` (see :func:`register_value_model`).

    Parameters
    ----------
    k : int
        Items shown per user.
    attribution_rate : float
        Share of a recommended purchase's price credited to the recommendation, in (0, 1].
    purchase_type : str
        The ``EVENT_TYPE`` of a purchase.
    """

    k: int = 10
    attribution_rate: float = 0.3
    purchase_type: str = "purchase"

    def __post_init__(self):
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1:
            raise ConfigError(f"revenue@k: k must be an integer >= 1 items per user, got {self.k}")
        if not 0 < self.attribution_rate <= 1:
            raise ConfigError(
                f"revenue@k: attribution_rate must be in (0, 1], got {self.attribution_rate}"
            )

    def params(self) -> dict:
        return asdict(self)

    def purchases(self, truth: pd.DataFrame, catalogue: pd.DataFrame | None = None):
        """The window's purchase events: ``USER_ID``, ``ITEM_ID``, ``PRICE``, ``EVENT_DAY``.

        A missing ``PRICE`` is filled from ``catalogue`` (its ``ITEM_ID`` and
        ``PRICE``) when given. ``EVENT_DAY`` is 0 for all when the truth has none.

        Raises
        ------
        DataError
            When a column is missing or a purchase has no price left.
        """
        for column in ("USER_ID", "ITEM_ID", "EVENT_TYPE", "PRICE"):
            if column not in truth:
                raise DataError(
                    f"revenue@k needs column {column!r} in the truth events; got "
                    f"{list(truth.columns)}"
                )
        bought = truth[truth["EVENT_TYPE"] == self.purchase_type]
        price = bought["PRICE"].to_numpy(dtype=float)
        if catalogue is not None and np.isnan(price).any():
            for column in ("ITEM_ID", "PRICE"):
                if column not in catalogue:
                    raise DataError(f"revenue@k: the catalogue needs column {column!r}")
            list_price = catalogue.drop_duplicates("ITEM_ID").set_index("ITEM_ID")["PRICE"]
            fill = bought["ITEM_ID"].map(list_price).to_numpy(dtype=float)
            price = np.where(np.isnan(price), fill, price)
        if np.isnan(price).any():
            missing = int(np.isnan(price).sum())
            raise DataError(
                f"revenue@k: {missing} purchases have no PRICE; pass catalogue= to fill them from "
                "the item's list price, or repair those rows in the data contract"
            )
        day = bought["EVENT_DAY"].to_numpy() if "EVENT_DAY" in bought else np.zeros(len(bought))
        return pd.DataFrame(
            {
                "USER_ID": bought["USER_ID"].to_numpy(),
                "ITEM_ID": bought["ITEM_ID"].to_numpy(),
                "PRICE": price,
                "EVENT_DAY": day,
            }
        )

    def evaluate(
        self,
        recommendations: pd.DataFrame,
        truth: pd.DataFrame,
        *,
        catalogue: pd.DataFrame | None = None,
    ) -> ValueReport:
        """revenue@k of ``recommendations`` over the window of ``truth``.

        Parameters
        ----------
        recommendations : DataFrame
            ``USER_ID``, ``ITEM_ID``, ``RANK`` (only each user's top ``k`` count).
        truth : DataFrame
            The scoring window's events (``EVENT_TYPE``, ``PRICE``; ``EVENT_DAY``
            for the revenue per day).
        catalogue : DataFrame, optional
            Item frame whose ``PRICE`` fills purchases with a missing price.

        Returns
        -------
        ValueReport
            ``net_value`` the revenue credited to the recommendations,
            ``per_day`` by purchase day, ``detail`` with ``purchases`` and
            ``purchase_value`` (all purchases of the window, before attribution),
            ``hits`` (purchases of recommended items), ``buyers`` and
            ``buyers_hit`` (users with a purchase, with a recommended purchase).
        """
        bought = self.purchases(truth, catalogue)
        top = top_k_positions(recommendations, self.k)
        hit = bought.merge(top[["USER_ID", "ITEM_ID"]], on=["USER_ID", "ITEM_ID"], how="inner")
        earned = hit["PRICE"].to_numpy() * self.attribution_rate
        days = np.sort(bought["EVENT_DAY"].unique())
        per_day = pd.Series(earned, index=hit["EVENT_DAY"].to_numpy()).groupby(level=0).sum()
        per_day = per_day.reindex(days, fill_value=0.0)
        detail = {
            "purchases": len(bought),
            "purchase_value": float(bought["PRICE"].sum()),
            "hits": len(hit),
            "buyers": int(bought["USER_ID"].nunique()),
            "buyers_hit": int(hit["USER_ID"].nunique()),
        }
        return ValueReport(net_value=float(earned.sum()), per_day=per_day, detail=detail)

    def oracle_recommendations(
        self, truth: pd.DataFrame, *, catalogue: pd.DataFrame | None = None
    ) -> pd.DataFrame:
        """Each buyer's ``k`` items with the most money spent on them in the window.

        Ties go to the lower ``ITEM_ID``. ``SCORE`` is the money spent.
        """
        bought = self.purchases(truth, catalogue)
        spent = bought.groupby(["USER_ID", "ITEM_ID"], as_index=False)["PRICE"].sum()
        spent = spent.sort_values(
            ["USER_ID", "PRICE", "ITEM_ID"], ascending=[True, False, True], kind="mergesort"
        )
        spent["RANK"] = spent.groupby("USER_ID", sort=False).cumcount().to_numpy() + 1
        best = spent[spent["RANK"] <= self.k].rename(columns={"PRICE": "SCORE"})
        return best[["USER_ID", "ITEM_ID", "RANK", "SCORE"]].reset_index(drop=True)

    def oracle(self, truth: pd.DataFrame, *, catalogue: pd.DataFrame | None = None) -> ValueReport:
        """revenue@k of :meth:`oracle_recommendations`: the most ``k`` items a user can earn."""
        best = self.oracle_recommendations(truth, catalogue=catalogue)
        return self.evaluate(best, truth, catalogue=catalogue)

    def baseline_recommendations(self, train: pd.DataFrame, users) -> pd.DataFrame:
        """The popularity baseline's top ``k`` for ``users`` (seen items excluded).

        See :func:`fullcycle.metrics.ranking.popularity_recommendations`.
        """
        return popularity_recommendations(train, users, self.k, exclude_seen=True)

    def compare(
        self,
        recommendations: pd.DataFrame,
        truth: pd.DataFrame,
        train: pd.DataFrame,
        *,
        catalogue: pd.DataFrame | None = None,
    ) -> dict[str, float]:
        """The revenue, the baseline's and the oracle's, under the grader's figure names.

        The baseline recommends to every user of ``truth``, from ``train``.

        Returns
        -------
        dict
            ``net_value`` (revenue@k), ``baseline_net_value``, ``oracle_net_value``,
            ``value_vs_baseline`` (the lift: revenue / baseline revenue) and
            ``share_of_oracle`` (revenue / oracle revenue); NaN for a ratio whose
            denominator is not positive.
        """
        mine = self.evaluate(recommendations, truth, catalogue=catalogue)
        users = truth["USER_ID"].unique() if "USER_ID" in truth else []
        base = self.evaluate(
            self.baseline_recommendations(train, users), truth, catalogue=catalogue
        )
        best = self.oracle(truth, catalogue=catalogue)
        return {
            "net_value": mine.net_value,
            "baseline_net_value": base.net_value,
            "oracle_net_value": best.net_value,
            "value_vs_baseline": mine.times(base),
            "share_of_oracle": mine.share_of(best),
        }
