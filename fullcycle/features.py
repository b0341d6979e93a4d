"""Leak-free transaction features as scikit-learn transformers.

The features of the fraud handbook (Le Borgne et al., chapter 3.4):

- :class:`DatetimeFeatures` - weekend and night flags;
- :class:`CustomerSpendingFeatures` - per card, the number of transactions
  and their mean amount over the last 1, 7 and 30 days, the current one
  included;
- :class:`TerminalRiskFeatures` - per terminal, the number of transactions and
  the share that were fraud in a window that ends ``delay`` days ago, because
  fraud labels only arrive after an investigation (7 days by default).

Every window looks strictly backwards in arrival order (time, then
``TRANSACTION_ID``): no later transaction and no label younger than the delay
can reach a feature. ``fit`` stores the labelled history the windows draw on;
``transform`` computes features for new rows from that history plus the new
rows themselves. :class:`FraudFeatures` bundles the three and returns a frame
with :data:`FEATURE_NAMES`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from fullcycle.exceptions import DataError

__all__ = [
    "FEATURE_NAMES",
    "CustomerSpendingFeatures",
    "DatetimeFeatures",
    "FraudFeatures",
    "TerminalRiskFeatures",
    "window_counts_sums",
]

SECONDS_PER_DAY = 86_400
_NEEDED = ["TRANSACTION_ID", "TX_DATETIME", "CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT"]


def _require(X, columns, who):
    if not isinstance(X, pd.DataFrame):
        raise DataError(f"{who} needs a DataFrame with columns {columns}, got {type(X).__name__}")
    missing = [c for c in columns if c not in X.columns]
    if missing:
        raise DataError(f"{who}: input lacks column(s) {missing}; it needs {columns}")


def _seconds(ts: pd.Series) -> np.ndarray:
    return ts.to_numpy(dtype="datetime64[s]").astype(np.int64)


def window_counts_sums(group, t, order_key, values, lag, width):
    """Count and sum ``values`` per group over the window ``(t - lag - width, t - lag]``.

    Rows are taken in arrival order (``t`` then ``order_key``). With ``lag = 0``
    the window ends at the row itself (included); ties at the same second that
    arrive later are excluded, as they would be online. With ``lag > 0`` the
    window holds every row of the group in ``(t - lag - width, t - lag]``.

    Parameters
    ----------
    group, t, order_key : ndarray of int
        Group codes, time in seconds, and a tie-breaker (the transaction id).
    values : ndarray of float
        What to sum in the window.
    lag, width : int
        Window position and width in seconds.

    Returns
    -------
    counts, sums : ndarray
        In the input's row order.
    """
    codes, _ = pd.factorize(group, sort=False)
    codes = codes.astype(np.int64)
    t = np.asarray(t, dtype=np.int64)
    t0 = t.min() if t.size else 0
    rel = t - t0
    span = int(rel.max() if rel.size else 0) + lag + width + 2
    key = codes * span + rel
    order = np.lexsort((order_key, rel, codes))
    skey = key[order]
    csum = np.concatenate([[0.0], np.cumsum(np.asarray(values, dtype=float)[order])])
    if lag == 0:
        end = np.arange(1, skey.size + 1)
    else:
        end = np.searchsorted(skey, skey - lag, side="right")
    start = np.searchsorted(skey, skey - lag - width, side="right")
    counts_sorted = end - start
    sums_sorted = csum[end] - csum[start]
    counts = np.empty_like(counts_sorted)
    sums = np.empty_like(sums_sorted)
    counts[order] = counts_sorted
    sums[order] = sums_sorted
    return counts, sums


class DatetimeFeatures(TransformerMixin, BaseEstimator):
    """Weekend and night flags from ``TX_DATETIME``.

    Parameters
    ----------
    night_end_hour : int
        A transaction before this hour (UTC) is "at night" (handbook: 6).
    """

    def __init__(self, night_end_hour: int = 6):
        self.night_end_hour = night_end_hour

    def fit(self, X, y=None):
        _require(X, ["TX_DATETIME"], type(self).__name__)
        if not 0 <= self.night_end_hour <= 24:
            raise DataError(f"night_end_hour must be within 0..24, got {self.night_end_hour}")
        self.n_features_in_ = X.shape[1]
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        return self

    def transform(self, X):
        check_is_fitted(self)
        _require(X, ["TX_DATETIME"], type(self).__name__)
        ts = X["TX_DATETIME"]
        return pd.DataFrame(
            {
                "TX_DURING_WEEKEND": (ts.dt.dayofweek >= 5).astype(np.int8),
                "TX_DURING_NIGHT": (ts.dt.hour < self.night_end_hour).astype(np.int8),
            },
            index=X.index,
        )

    def get_feature_names_out(self, input_features=None):
        return np.array(["TX_DURING_WEEKEND", "TX_DURING_NIGHT"], dtype=object)


class _HistoryTransformer(TransformerMixin, BaseEstimator):
    """Shared plumbing: keep a history at fit, compute windows over history + new rows."""

    _columns: list[str] = _NEEDED

    def _check_windows(self):
        windows = tuple(self.windows)
        if not windows or any((not float(w).is_integer()) or w < 1 for w in windows):
            raise DataError(f"windows must be whole days >= 1, got {self.windows}")
        return tuple(int(w) for w in windows)

    def _history_frame(self, X, labels):
        hist = X[self._columns].copy()
        hist["_label"] = labels
        return hist

    def _combined(self, X):
        """History plus the rows of X it does not hold; X's own positions."""
        check_is_fitted(self, "history_")
        _require(X, self._columns, type(self).__name__)
        new = X[self._columns].copy()
        known = new["TRANSACTION_ID"].isin(self.history_["TRANSACTION_ID"]).to_numpy()
        new["_label"] = np.nan
        both = pd.concat([self.history_, new.loc[~known]], ignore_index=True)
        pos = pd.Index(both["TRANSACTION_ID"]).get_indexer(X["TRANSACTION_ID"])
        if (pos < 0).any():
            raise DataError(f"{type(self).__name__}: could not align rows by TRANSACTION_ID")
        return both, pos

    def _fit_history(self, X, labels):
        _require(X, self._columns, type(self).__name__)
        self._check_windows()
        ids = X["TRANSACTION_ID"]
        if ids.duplicated().any():
            dup = ids[ids.duplicated()].iloc[:5].tolist()
            raise DataError(
                f"{type(self).__name__}.fit: TRANSACTION_ID must be unique; repeated ids e.g. {dup}. "
                "Validate the data first (fullcycle.data.validate_transactions)."
            )
        self.history_ = self._history_frame(X, labels)
        self.n_features_in_ = X.shape[1]
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        return self


class CustomerSpendingFeatures(_HistoryTransformer):
    """Per card: number of transactions and mean amount over trailing windows.

    Parameters
    ----------
    windows : tuple of int
        Window widths in days; each window ends at (and includes) the
        transaction itself.
    """

    def __init__(self, windows=(1, 7, 30)):
        self.windows = windows

    def fit(self, X, y=None):
        return self._fit_history(X, np.nan)

    def transform(self, X):
        both, pos = self._combined(X)
        t = _seconds(both["TX_DATETIME"])
        out = {}
        for w in self._check_windows():
            counts, sums = window_counts_sums(
                both["CUSTOMER_ID"].to_numpy(),
                t,
                both["TRANSACTION_ID"].to_numpy(),
                both["TX_AMOUNT"].to_numpy(dtype=float),
                0,
                w * SECONDS_PER_DAY,
            )
            out[f"CUSTOMER_ID_NB_TX_{w}DAY_WINDOW"] = counts[pos].astype(float)
            out[f"CUSTOMER_ID_AVG_AMOUNT_{w}DAY_WINDOW"] = sums[pos] / np.maximum(counts[pos], 1)
        return pd.DataFrame(out, index=X.index)

    def get_feature_names_out(self, input_features=None):
        names = []
        for w in self._check_windows():
            names += [f"CUSTOMER_ID_NB_TX_{w}DAY_WINDOW", f"CUSTOMER_ID_AVG_AMOUNT_{w}DAY_WINDOW"]
        return np.array(names, dtype=object)


class TerminalRiskFeatures(_HistoryTransformer):
    """Per terminal: transactions and fraud share in windows that end ``delay`` days ago.

    Parameters
    ----------
    windows : tuple of int
        Window widths in days.
    delay : int
        Label delay in days: only transactions (and labels) at least this old
        are used, so a label is never used before it would be known.

    Notes
    -----
    ``fit(X, y)`` stores the labelled history (labels from ``y`` or from
    ``X["TX_FRAUD"]``). Rows seen only at ``transform`` count as transactions
    with unknown (not fraud) labels.
    """

    def __init__(self, windows=(1, 7, 30), delay=7):
        self.windows = windows
        self.delay = delay

    def fit(self, X, y=None):
        if y is None:
            if not isinstance(X, pd.DataFrame) or "TX_FRAUD" not in X:
                raise DataError(
                    "TerminalRiskFeatures.fit needs fraud labels: pass y or a TX_FRAUD column"
                )
            y = X["TX_FRAUD"]
        labels = np.asarray(y, dtype=float)
        if labels.shape[0] != len(X):
            raise DataError(f"TerminalRiskFeatures.fit: {len(X)} rows but {labels.shape[0]} labels")
        if not np.isin(labels[~np.isnan(labels)], (0, 1)).all():
            raise DataError("TerminalRiskFeatures.fit: labels must be 0 or 1")
        if not self.delay >= 1:
            raise DataError(
                f"delay must be at least 1 day, got {self.delay}: a transaction's own label "
                "is never known when it is scored"
            )
        return self._fit_history(X, labels)

    def transform(self, X):
        both, pos = self._combined(X)
        t = _seconds(both["TX_DATETIME"])
        labels = np.nan_to_num(both["_label"].to_numpy(dtype=float), nan=0.0)
        lag = int(self.delay * SECONDS_PER_DAY)
        out = {}
        for w in self._check_windows():
            counts, frauds = window_counts_sums(
                both["TERMINAL_ID"].to_numpy(),
                t,
                both["TRANSACTION_ID"].to_numpy(),
                labels,
                lag,
                w * SECONDS_PER_DAY,
            )
            c = counts[pos]
            out[f"TERMINAL_ID_NB_TX_{w}DAY_WINDOW"] = c.astype(float)
            out[f"TERMINAL_ID_RISK_{w}DAY_WINDOW"] = np.where(
                c > 0, frauds[pos] / np.maximum(c, 1), 0.0
            )
        return pd.DataFrame(out, index=X.index)

    def get_feature_names_out(self, input_features=None):
        names = []
        for w in self._check_windows():
            names += [f"TERMINAL_ID_NB_TX_{w}DAY_WINDOW", f"TERMINAL_ID_RISK_{w}DAY_WINDOW"]
        return np.array(names, dtype=object)


FEATURE_NAMES = [
    "TX_AMOUNT",
    "TX_DURING_WEEKEND",
    "TX_DURING_NIGHT",
    *CustomerSpendingFeatures().get_feature_names_out(),
    *TerminalRiskFeatures().get_feature_names_out(),
]


class FraudFeatures(TransformerMixin, BaseEstimator):
    """The handbook's 15 features (amount, 2 flags, 6 per card, 6 per terminal).

    Parameters
    ----------
    customer_windows, terminal_windows : tuple of int
        Window widths in days.
    delay : int
        Label delay in days for the terminal risk windows.

    Examples
    --------
    Fit on everything labelled as of the scoring cut-off, then transform the
    training rows and the scoring rows:

    >>> from fullcycle.data import simulate_transactions
    >>> df = simulate_transactions(n_customers=100, n_terminals=200, n_days=20).transactions
    >>> feats = FraudFeatures().fit(df, df["TX_FRAUD"])
    >>> list(feats.transform(df.head(3)).columns) == FEATURE_NAMES
    True
    """

    def __init__(self, customer_windows=(1, 7, 30), terminal_windows=(1, 7, 30), delay=7):
        self.customer_windows = customer_windows
        self.terminal_windows = terminal_windows
        self.delay = delay

    def fit(self, X, y=None):
        _require(X, _NEEDED, type(self).__name__)
        self.datetime_ = DatetimeFeatures().fit(X)
        self.customer_ = CustomerSpendingFeatures(self.customer_windows).fit(X)
        self.terminal_ = TerminalRiskFeatures(self.terminal_windows, self.delay).fit(X, y)
        self.n_features_in_ = X.shape[1]
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        return self

    def transform(self, X):
        check_is_fitted(self, "terminal_")
        _require(X, _NEEDED, type(self).__name__)
        parts = [
            X[["TX_AMOUNT"]].astype(float),
            self.datetime_.transform(X),
            self.customer_.transform(X),
            self.terminal_.transform(X),
        ]
        return pd.concat(parts, axis=1).astype(np.float64)

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "terminal_")
        return np.array(
            [
                "TX_AMOUNT",
                *self.datetime_.get_feature_names_out(),
                *self.customer_.get_feature_names_out(),
                *self.terminal_.get_feature_names_out(),
            ],
            dtype=object,
        )
