"""Card-transaction simulator with scheduled fraud scenarios.

Written from the published description of the simulator in the ULB
*Reproducible Machine Learning for Credit Card Fraud Detection* handbook
(Le Borgne et al., chapter 3): customers and terminals on a 100x100 grid,
a customer pays at the terminals within a radius, amounts and daily counts
come from per-customer profiles, and three fraud scenarios are overlaid.
fullcycle adds a weekly rhythm, a sales channel, a fourth scenario (card
testing) that can be scheduled to start inside the scoring window, and is
vectorised end to end: the full default scale (about 1.75 million
transactions) is generated in a few seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from fullcycle.exceptions import DataError

__all__ = [
    "FraudSimulation",
    "FraudSimulatorConfig",
    "SCENARIOS",
    "TRANSACTION_COLUMNS",
    "simulate_transactions",
]

SECONDS_PER_DAY = 86_400

#: Columns of a transactions frame, in order (the handbook's format plus
#: ``TX_CHANNEL`` and ``TX_FRAUD_SCENARIO``).
TRANSACTION_COLUMNS = [
    "TRANSACTION_ID",
    "TX_DATETIME",
    "CUSTOMER_ID",
    "TERMINAL_ID",
    "TX_AMOUNT",
    "TX_CHANNEL",
    "TX_TIME_SECONDS",
    "TX_TIME_DAYS",
    "TX_FRAUD",
    "TX_FRAUD_SCENARIO",
]

#: Fraud scenarios: number -> one-line description.
SCENARIOS = {
    1: "any transaction above the amount threshold (220 by default)",
    2: "terminals compromised for 28 days: every transaction there is fraud",
    3: "cards compromised for 14 days: a third of their transactions x5, fraud",
    4: "card testing: bursts of small online amounts at unfamiliar terminals, then a large one",
}

#: Relative transaction volume Monday..Sunday (mean 1): more on Fridays and
#: Saturdays, fewer on Sundays.
WEEKLY_RHYTHM = (0.96, 0.96, 0.98, 1.0, 1.08, 1.12, 0.90)

CHANNELS = ("chip", "contactless", "online")
CHANNEL_P = (0.45, 0.35, 0.20)


@dataclass(frozen=True)
class FraudSimulatorConfig:
    """Parameters of the transaction simulator.

    Parameters
    ----------
    n_customers, n_terminals, n_days : int
        Population and length of the simulation. The handbook's default run
        is 5,000 customers, 10,000 terminals and 183 days.
    start_date : str
        First simulated day (UTC, midnight).
    radius : float
        A customer pays at the terminals within this distance on the 100x100
        grid (5 gives about 100 terminals per customer).
    scenarios : tuple of int
        Fraud scenarios to inject, from :data:`SCENARIOS`.
    amount_threshold : float
        Scenario 1 threshold.
    compromised_terminals_per_day, terminal_compromise_days : int
        Scenario 2 rate and duration.
    compromised_cards_per_day, card_compromise_days : int
        Scenario 3 rate and duration.
    card_testing_start_day : int or None
        Day (0-based) from which scenario 4 runs; None means never. Only used
        when 4 is in ``scenarios``.
    card_testing_cards_per_day : int
        Scenario 4: cards attacked per day.
    weekly_rhythm : bool
        Modulate daily volume by day of week.
    seed : int
        Seed of the random generator; the same config gives the same data.
    """

    n_customers: int = 5_000
    n_terminals: int = 10_000
    n_days: int = 183
    start_date: str = "2018-04-01"
    radius: float = 5.0
    scenarios: tuple[int, ...] = (1, 2, 3)
    amount_threshold: float = 220.0
    compromised_terminals_per_day: int = 2
    terminal_compromise_days: int = 28
    compromised_cards_per_day: int = 3
    card_compromise_days: int = 14
    card_testing_start_day: int | None = None
    card_testing_cards_per_day: int = 12
    weekly_rhythm: bool = True
    seed: int = 0
    extra: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("n_customers", "n_terminals", "n_days"):
            if getattr(self, name) < 1:
                raise DataError(
                    f"FraudSimulatorConfig.{name} must be >= 1, got {getattr(self, name)}"
                )
        if self.radius <= 0:
            raise DataError(f"FraudSimulatorConfig.radius must be > 0, got {self.radius}")
        unknown = sorted(set(self.scenarios) - set(SCENARIOS))
        if unknown:
            raise DataError(
                f"FraudSimulatorConfig.scenarios has unknown scenario(s) {unknown}; "
                f"choose from {sorted(SCENARIOS)}"
            )
        if 4 in self.scenarios and self.card_testing_start_day is None:
            raise DataError(
                "FraudSimulatorConfig: scenario 4 needs card_testing_start_day "
                "(the day index where card testing begins)"
            )
        try:
            date.fromisoformat(str(self.start_date))
        except ValueError as exc:
            raise DataError(
                f"FraudSimulatorConfig.start_date {self.start_date!r} is not a date; use YYYY-MM-DD"
            ) from exc


@dataclass
class FraudSimulation:
    """What the simulator returns: the transactions and the profiles behind them."""

    transactions: pd.DataFrame
    customers: pd.DataFrame
    terminals: pd.DataFrame
    config: FraudSimulatorConfig


def _customer_profiles(rng: np.random.Generator, n: int) -> pd.DataFrame:
    xy = rng.uniform(0, 100, size=(n, 2))
    mean_amount = rng.uniform(5, 100, size=n)
    return pd.DataFrame(
        {
            "CUSTOMER_ID": np.arange(n, dtype=np.int64),
            "x": xy[:, 0],
            "y": xy[:, 1],
            "mean_amount": mean_amount,
            "std_amount": mean_amount / 2,
            "mean_nb_tx_per_day": rng.uniform(0, 4, size=n),
        }
    )


def _terminal_profiles(rng: np.random.Generator, n: int) -> pd.DataFrame:
    xy = rng.uniform(0, 100, size=(n, 2))
    return pd.DataFrame({"TERMINAL_ID": np.arange(n, dtype=np.int64), "x": xy[:, 0], "y": xy[:, 1]})


def _reachable_terminals(customers, terminals, radius):
    """CSR arrays (indptr, indices) of the terminals within ``radius`` of each customer."""
    tree = cKDTree(terminals[["x", "y"]].to_numpy())
    lists = tree.query_ball_point(customers[["x", "y"]].to_numpy(), r=radius, return_sorted=True)
    lengths = np.fromiter((len(x) for x in lists), dtype=np.int64, count=len(lists))
    indptr = np.zeros(len(lists) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    indices = np.fromiter((t for x in lists for t in x), dtype=np.int64, count=int(indptr[-1]))
    return indptr, indices


def _genuine_transactions(rng, cfg, customers, indptr, indices):
    _n_c, n_d = cfg.n_customers, cfg.n_days
    rate = customers["mean_nb_tx_per_day"].to_numpy()
    start = pd.Timestamp(cfg.start_date)
    if cfg.weekly_rhythm:
        weekday = (start.day_of_week + np.arange(n_d)) % 7
        day_factor = np.asarray(WEEKLY_RHYTHM)[weekday]
    else:
        day_factor = np.ones(n_d)
    counts = rng.poisson(rate[:, None] * day_factor[None, :]).astype(np.int32)
    flat = counts.ravel()
    cell = np.repeat(np.arange(flat.size, dtype=np.int64), flat)
    cust = (cell // n_d).astype(np.int64)
    day = (cell % n_d).astype(np.int64)
    n = cust.size

    # Time of day: around noon, draws outside the day are dropped.
    seconds = np.rint(rng.normal(SECONDS_PER_DAY / 2, 20_000, size=n)).astype(np.int64)
    # Amount: normal around the customer's mean; negative draws redrawn uniformly.
    mean = customers["mean_amount"].to_numpy()[cust]
    amount = rng.normal(mean, mean / 2)
    neg = amount < 0
    amount[neg] = rng.uniform(0, 2 * mean[neg])
    # Terminal: uniform among the reachable ones.
    n_reach = (indptr[1:] - indptr[:-1])[cust]
    pick = np.floor(rng.random(n) * np.maximum(n_reach, 1)).astype(np.int64)
    terminal = (
        indices[np.minimum(indptr[cust] + pick, max(indices.size - 1, 0))]
        if indices.size
        else np.zeros(n, np.int64)
    )
    channel = rng.choice(len(CHANNELS), size=n, p=CHANNEL_P).astype(np.int8)

    keep = (seconds >= 0) & (seconds < SECONDS_PER_DAY) & (n_reach > 0)
    return {
        "cust": cust[keep],
        "day": day[keep],
        "seconds": seconds[keep],
        "amount": np.round(amount[keep], 2),
        "terminal": terminal[keep],
        "channel": channel[keep],
    }


def _card_testing(rng, cfg, customers, tx):
    """Scenario 4 rows: per attacked card, 3-8 small online tests then one large purchase."""
    first = cfg.card_testing_start_day
    days = np.arange(first, cfg.n_days)
    if days.size == 0:
        return None
    n_cards = days.size * cfg.card_testing_cards_per_day
    card_day = np.repeat(days, cfg.card_testing_cards_per_day)
    card = rng.integers(0, cfg.n_customers, size=n_cards)
    n_tests = rng.integers(3, 9, size=n_cards)
    burst_start = rng.integers(0, SECONDS_PER_DAY - 3_600, size=n_cards)
    owner = np.repeat(np.arange(n_cards), n_tests + 1)
    step = np.arange(owner.size) - np.repeat(np.cumsum(n_tests + 1) - (n_tests + 1), n_tests + 1)
    is_large = step == np.repeat(n_tests, n_tests + 1)
    offset = np.cumsum(rng.integers(20, 240, size=owner.size))
    offset -= np.repeat(offset[np.cumsum(n_tests + 1) - (n_tests + 1)], n_tests + 1)
    seconds = np.minimum(burst_start[owner] + offset, SECONDS_PER_DAY - 1)
    mean = customers["mean_amount"].to_numpy()[card[owner]]
    small = rng.uniform(0.5, 3.0, size=owner.size)
    # The purchase that follows stays inside the card's usual range: nothing in the
    # training data marks it as fraud.
    large = np.minimum(mean * rng.uniform(1.0, 1.8, size=owner.size), cfg.amount_threshold - 1)
    amount = np.where(is_large, large, small)
    # Unfamiliar terminals: any terminal on the grid, mostly far from the card's home.
    terminal = rng.integers(0, cfg.n_terminals, size=owner.size)
    return {
        "cust": card[owner].astype(np.int64),
        "day": card_day[owner].astype(np.int64),
        "seconds": seconds.astype(np.int64),
        "amount": np.round(amount, 2),
        "terminal": terminal.astype(np.int64),
        "channel": np.full(owner.size, CHANNELS.index("online"), dtype=np.int8),
    }


def simulate_transactions(
    config: FraudSimulatorConfig | None = None, **overrides
) -> FraudSimulation:
    """Simulate card transactions with fraud.

    Parameters
    ----------
    config : FraudSimulatorConfig, optional
        Full configuration; defaults to the handbook-scale run.
    **overrides
        Fields of :class:`FraudSimulatorConfig` to change, e.g.
        ``simulate_transactions(n_customers=500, n_days=60, seed=3)``.

    Returns
    -------
    FraudSimulation
        ``transactions`` sorted by time with the columns of
        :data:`TRANSACTION_COLUMNS`, plus the customer and terminal profiles.

    Examples
    --------
    >>> sim = simulate_transactions(n_customers=200, n_terminals=400, n_days=20, seed=1)
    >>> sim.transactions["TX_FRAUD"].isin([0, 1]).all()
    True
    """
    if config is None:
        config = FraudSimulatorConfig(**overrides)
    elif overrides:
        from dataclasses import replace

        config = replace(config, **overrides)
    cfg = config
    rng = np.random.default_rng(cfg.seed)
    customers = _customer_profiles(rng, cfg.n_customers)
    terminals = _terminal_profiles(rng, cfg.n_terminals)
    indptr, indices = _reachable_terminals(customers, terminals, cfg.radius)
    customers["n_reachable_terminals"] = np.diff(indptr)
    tx = _genuine_transactions(rng, cfg, customers, indptr, indices)
    n_genuine = tx["cust"].size
    scenario = np.zeros(n_genuine, dtype=np.int8)
    amount = tx["amount"]

    if 1 in cfg.scenarios:
        scenario[amount > cfg.amount_threshold] = 1
    if 2 in cfg.scenarios:
        bad = np.zeros((cfg.n_days + 1, cfg.n_terminals), dtype=bool)
        for d in range(cfg.n_days):
            picked = rng.choice(
                cfg.n_terminals, size=cfg.compromised_terminals_per_day, replace=False
            )
            bad[d + 1 : d + 1 + cfg.terminal_compromise_days, picked] = True
        hit = bad[tx["day"], tx["terminal"]]
        scenario[hit] = 2
    if 3 in cfg.scenarios:
        bad = np.zeros((cfg.n_days + 1, cfg.n_customers), dtype=bool)
        for d in range(cfg.n_days):
            picked = rng.choice(cfg.n_customers, size=cfg.compromised_cards_per_day, replace=False)
            bad[d + 1 : d + 1 + cfg.card_compromise_days, picked] = True
        in_window = bad[tx["day"], tx["cust"]]
        hit = in_window & (rng.random(n_genuine) < 1 / 3)
        amount[hit] = np.round(amount[hit] * 5, 2)
        scenario[hit] = 3
    if 4 in cfg.scenarios:
        extra = _card_testing(rng, cfg, customers, tx)
        if extra is not None:
            for key in tx:
                tx[key] = np.concatenate([tx[key], extra[key]])
            scenario = np.concatenate([scenario, np.full(extra["cust"].size, 4, dtype=np.int8)])

    time_seconds = tx["day"] * SECONDS_PER_DAY + tx["seconds"]
    order = np.lexsort((tx["cust"], time_seconds))
    time_seconds = time_seconds[order]
    start_ns = pd.Timestamp(cfg.start_date).as_unit("ns").value
    frame = pd.DataFrame(
        {
            "TRANSACTION_ID": np.arange(order.size, dtype=np.int64),
            "TX_DATETIME": pd.to_datetime(start_ns + time_seconds * 1_000_000_000, unit="ns"),
            "CUSTOMER_ID": tx["cust"][order],
            "TERMINAL_ID": tx["terminal"][order],
            "TX_AMOUNT": tx["amount"][order],
            "TX_CHANNEL": pd.Categorical.from_codes(
                tx["channel"][order], categories=list(CHANNELS)
            ),
            "TX_TIME_SECONDS": time_seconds,
            "TX_TIME_DAYS": tx["day"][order],
            "TX_FRAUD": (scenario[order] > 0).astype(np.int8),
            "TX_FRAUD_SCENARIO": scenario[order],
        }
    )
    return FraudSimulation(frame, customers, terminals, cfg)
