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
from fullcycle.metrics.technical import card_days, daily_top_k_cards

__all__ = [
    "FraudInvestigationValue",
    "RecommendationRevenue",
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
