"""Features of the fraud system, offline (a scikit-learn transformer) and online (for the service).

Two implementations of the same definitions, and the lesson is that they agree:

- :class:`FraudFeatures` computes the features of many transactions at once,
  for training and for scoring a file;
- :class:`OnlineFeatures` computes the features of *one* transaction from a
  state that the service updates as transactions and labels arrive.

The grader checks both: the offline features of earlier rows must not change
when later rows or young labels change (no leakage), and the online features
of a replayed day must equal the offline ones (parity).

The definitions (the handbook's 15 features, Le Borgne et al. ch. 3.4, plus
one of ours):

- ``TX_AMOUNT``; ``TX_DURING_WEEKEND`` and ``TX_DURING_NIGHT`` (before 06:00 UTC);
- per card, over the last 1, 7 and 30 days *including the transaction itself*
  and what arrived before it: the number of transactions and their mean amount;
- ``CUSTOMER_ID_AMOUNT_RATIO_30DAY``: the amount over the card's 30-day mean
  (a compromised card suddenly spends several times its habit);
- per terminal, over 1, 7 and 30 days that *end* ``delay_days`` before the
  transaction: the number of transactions and the share that were fraud.
  Labels arrive only after an investigation, so a younger label must never
  reach a feature.

"Arrival order" is time, then ``TRANSACTION_ID``: two payments in the same
second are seen one after the other, by the service and by the transformer.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from fullcycle.exceptions import DataError
from fullcycle.serving.store import WindowStore, epoch_seconds
from fullcycle.windows import SECONDS_PER_DAY, window_counts_sums

#: The raw columns every transaction has.
RAW_COLUMNS = ["TRANSACTION_ID", "TX_DATETIME", "CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT"]
CARD_WINDOWS = (1, 7, 30)
TERMINAL_WINDOWS = (1, 7, 30)
NIGHT_ENDS_AT = 6  # hour, UTC

#: The model's inputs, in order: what both implementations return.
FEATURES = [
    "TX_AMOUNT",
    "TX_DURING_WEEKEND",
    "TX_DURING_NIGHT",
    *[
        f"CUSTOMER_ID_{what}_{w}DAY_WINDOW"
        for w in CARD_WINDOWS
        for what in ("NB_TX", "AVG_AMOUNT")
    ],
    "CUSTOMER_ID_AMOUNT_RATIO_30DAY",
    *[f"TERMINAL_ID_{what}_{w}DAY_WINDOW" for w in TERMINAL_WINDOWS for what in ("NB_TX", "RISK")],
]


def build_features(delay_days: int) -> FraudFeatures:
    """The offline feature transformer for a project whose labels arrive ``delay_days`` late."""
    return FraudFeatures(delay_days=delay_days)


def _calendar(ts) -> tuple[float, float]:
    """Weekend and night flags of one timestamp (UTC)."""
    return float(ts.weekday() >= 5), float(ts.hour < NIGHT_ENDS_AT)


class FraudFeatures(TransformerMixin, BaseEstimator):
    """The features of many transactions, from a labelled history and the rows themselves.

    Parameters
    ----------
    delay_days : int
        Label delay: terminal windows end this many days before each transaction.

    Notes
    -----
    ``fit(history, y)`` stores the labelled history (validated transactions;
    labels from ``y``). ``transform(rows)`` computes features for ``rows`` from
    that history plus the rows themselves (rows the history already holds are
    not counted twice); rows seen only at ``transform`` count as unlabelled.
    """

    def __init__(self, delay_days: int = 7):
        self.delay_days = delay_days

    def fit(self, X: pd.DataFrame, y=None):
        """Keep the labelled history the windows draw on; returns ``self``."""
        ### BEGIN SOLUTION
        _require(X, "fit")
        if not int(self.delay_days) >= 1:
            raise DataError(
                f"delay_days must be at least 1, got {self.delay_days}: a transaction's own "
                "label is never known when it is scored"
            )
        if y is None:
            raise DataError("FraudFeatures.fit needs the fraud labels: fit(history, y)")
        labels = np.asarray(y, dtype=float)
        if labels.shape[0] != len(X):
            raise DataError(f"FraudFeatures.fit: {len(X)} rows but {labels.shape[0]} labels")
        if X["TRANSACTION_ID"].duplicated().any():
            raise DataError("FraudFeatures.fit: TRANSACTION_ID must be unique; validate first")
        self.history_ = X[RAW_COLUMNS].assign(_label=labels).reset_index(drop=True)
        self.n_features_in_ = X.shape[1]
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        return self
        ### END SOLUTION

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """The :data:`FEATURES` of each row of ``X`` (same index)."""
        ### BEGIN SOLUTION
        check_is_fitted(self, "history_")
        _require(X, "transform")
        # History plus the new rows it does not hold, then the new rows' positions in it.
        new = X[RAW_COLUMNS]
        known = new["TRANSACTION_ID"].isin(self.history_["TRANSACTION_ID"]).to_numpy()
        both = pd.concat([self.history_, new.loc[~known].assign(_label=np.nan)], ignore_index=True)
        pos = pd.Index(both["TRANSACTION_ID"]).get_indexer(X["TRANSACTION_ID"])
        t = both["TX_DATETIME"].to_numpy(dtype="datetime64[s]").astype(np.int64)
        ids = both["TRANSACTION_ID"].to_numpy()
        amount = both["TX_AMOUNT"].to_numpy(dtype=float)
        ts = X["TX_DATETIME"]
        out = {
            "TX_AMOUNT": X["TX_AMOUNT"].to_numpy(dtype=float),
            "TX_DURING_WEEKEND": (ts.dt.day_of_week >= 5).to_numpy(dtype=float),
            "TX_DURING_NIGHT": (ts.dt.hour < NIGHT_ENDS_AT).to_numpy(dtype=float),
        }
        card = both["CUSTOMER_ID"].to_numpy()
        for w in CARD_WINDOWS:
            # lag 0: the window ends at (and includes) the transaction itself.
            n, total = window_counts_sums(card, t, ids, amount, 0, w * SECONDS_PER_DAY)
            out[f"CUSTOMER_ID_NB_TX_{w}DAY_WINDOW"] = n[pos].astype(float)
            out[f"CUSTOMER_ID_AVG_AMOUNT_{w}DAY_WINDOW"] = total[pos] / np.maximum(n[pos], 1)
        out["CUSTOMER_ID_AMOUNT_RATIO_30DAY"] = out["TX_AMOUNT"] / np.maximum(
            out["CUSTOMER_ID_AVG_AMOUNT_30DAY_WINDOW"], 0.01
        )
        # A label counts only once it is known: the window ends delay_days ago.
        frauds = np.nan_to_num(both["_label"].to_numpy(dtype=float), nan=0.0)
        lag = int(self.delay_days) * SECONDS_PER_DAY
        terminal = both["TERMINAL_ID"].to_numpy()
        for w in TERMINAL_WINDOWS:
            n, bad = window_counts_sums(terminal, t, ids, frauds, lag, w * SECONDS_PER_DAY)
            out[f"TERMINAL_ID_NB_TX_{w}DAY_WINDOW"] = n[pos].astype(float)
            out[f"TERMINAL_ID_RISK_{w}DAY_WINDOW"] = bad[pos] / np.maximum(n[pos], 1)
        return pd.DataFrame(out, index=X.index)[FEATURES].astype(np.float64)
        ### END SOLUTION

    def get_feature_names_out(self, input_features=None):
        return np.array(FEATURES, dtype=object)


def _require(X, where: str) -> None:
    if not isinstance(X, pd.DataFrame):
        raise DataError(f"FraudFeatures.{where} needs a DataFrame, got {type(X).__name__}")
    missing = [c for c in RAW_COLUMNS if c not in X.columns]
    if missing:
        raise DataError(f"FraudFeatures.{where}: missing column(s) {missing}; needs {RAW_COLUMNS}")


class OnlineFeatures:
    """The features of one transaction at a time, from a :class:`WindowStore` the service keeps.

    Parameters
    ----------
    store : fullcycle.serving.store.WindowStore
        Holds recent transactions with keys ``card`` and ``terminal``; the
        transaction amount is the event's value and the fraud label its label.
    delay_days : int
        Label delay, as for :class:`FraudFeatures`.

    A transaction is a mapping with the raw columns (``TRANSACTION_ID``,
    ``TX_DATETIME``, ``CUSTOMER_ID``, ``TERMINAL_ID``, ``TX_AMOUNT``). Call
    :meth:`features` *before* :meth:`update` for the same transaction: the
    card windows include the transaction itself, which :meth:`features` adds.
    """

    KEYS = ("card", "terminal")

    def __init__(self, store: WindowStore, delay_days: int = 7):
        self.store = store
        self.delay_days = int(delay_days)

    @classmethod
    def open(cls, path, delay_days: int = 7) -> OnlineFeatures:
        """A store at ``path`` (a file or ``":memory:"``) set up for these features."""
        meta = {"card_windows": CARD_WINDOWS, "terminal_windows": TERMINAL_WINDOWS}
        meta["delay_days"] = int(delay_days)
        return cls(WindowStore(path, keys=cls.KEYS, meta=meta), delay_days)

    @property
    def horizon_s(self) -> int:
        """How far back any window reaches: older events can be pruned."""
        return max(max(CARD_WINDOWS), self.delay_days + max(TERMINAL_WINDOWS)) * SECONDS_PER_DAY

    def features(self, tx: Mapping) -> dict[str, float]:
        """The :data:`FEATURES` of ``tx`` from what the store holds now (``tx`` not yet in it)."""
        ### BEGIN SOLUTION
        day = SECONDS_PER_DAY
        t = epoch_seconds(tx["TX_DATETIME"])
        amount = float(tx["TX_AMOUNT"])
        weekend, night = _calendar(tx["TX_DATETIME"])
        out = {"TX_AMOUNT": amount, "TX_DURING_WEEKEND": weekend, "TX_DURING_NIGHT": night}
        card = self.store.window("card", tx["CUSTOMER_ID"], t - max(CARD_WINDOWS) * day, t)
        for w in CARD_WINDOWS:
            amounts = [a for (ti, a, _) in card if ti > t - w * day]
            n = len(amounts) + 1  # the transaction itself
            out[f"CUSTOMER_ID_NB_TX_{w}DAY_WINDOW"] = float(n)
            out[f"CUSTOMER_ID_AVG_AMOUNT_{w}DAY_WINDOW"] = (sum(amounts) + amount) / n
        out["CUSTOMER_ID_AMOUNT_RATIO_30DAY"] = amount / max(
            out["CUSTOMER_ID_AVG_AMOUNT_30DAY_WINDOW"], 0.01
        )
        lag = self.delay_days * day
        terminal = self.store.window(
            "terminal", tx["TERMINAL_ID"], t - lag - max(TERMINAL_WINDOWS) * day, t - lag
        )
        for w in TERMINAL_WINDOWS:
            labels = [lab for (ti, _, lab) in terminal if ti > t - lag - w * day]
            n = len(labels)
            out[f"TERMINAL_ID_NB_TX_{w}DAY_WINDOW"] = float(n)
            out[f"TERMINAL_ID_RISK_{w}DAY_WINDOW"] = sum(lab == 1 for lab in labels) / max(n, 1)
        return {name: out[name] for name in FEATURES}
        ### END SOLUTION

    def update(self, tx: Mapping, score: float | None = None) -> None:
        """Add ``tx`` (after scoring it) so later transactions see it."""
        ### BEGIN SOLUTION
        self.store.add(
            int(tx["TRANSACTION_ID"]),
            epoch_seconds(tx["TX_DATETIME"]),
            {"card": tx["CUSTOMER_ID"], "terminal": tx["TERMINAL_ID"]},
            float(tx["TX_AMOUNT"]),
            score,
        )
        ### END SOLUTION

    def label(self, pairs) -> tuple[int, list[int]]:
        """Record investigation results ``(transaction_id, 0|1)``; (stored, unknown ids)."""
        ### BEGIN SOLUTION
        return self.store.set_labels(list(pairs))
        ### END SOLUTION

    def warm_start(self, history: pd.DataFrame) -> int:
        """Load labelled history (validated transactions with ``TX_FRAUD``); rows added.

        Only the part any window can still reach (:attr:`horizon_s` before the
        newest row) is loaded.
        """
        ### BEGIN SOLUTION
        t = history["TX_DATETIME"].to_numpy(dtype="datetime64[s]").astype(np.int64)
        keep = t > (t.max() - self.horizon_s) if t.size else np.zeros(0, bool)
        h = history.loc[keep]
        rows = zip(
            h["TRANSACTION_ID"].to_numpy(np.int64).tolist(),
            t[keep].tolist(),
            [
                {"card": c, "terminal": m}
                for c, m in zip(
                    h["CUSTOMER_ID"].to_numpy(np.int64).tolist(),
                    h["TERMINAL_ID"].to_numpy(np.int64).tolist(),
                    strict=True,
                )
            ],
            h["TX_AMOUNT"].to_numpy(float).tolist(),
            strict=True,
        )
        labels = h["TX_FRAUD"].to_numpy(np.int64).tolist() if "TX_FRAUD" in h else None
        return self.store.add_many(rows, labels)
        ### END SOLUTION

    def prune(self) -> int:
        """Forget what no window can reach any more; returns how many rows went."""
        newest = self.store.newest()
        return 0 if newest is None else self.store.prune(newest - self.horizon_s - SECONDS_PER_DAY)
