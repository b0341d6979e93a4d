"""The service's own feature state: recent transactions per card and terminal, in SQLite.

An upstream system sends one raw transaction; the features the model needs
(per-card spending over 1/7/30 days, per-terminal risk over windows that end
at the label delay) come from this store. It is warm-started from labelled
history, grows with every scored transaction and learns labels from the
feedback endpoint. The windows follow :mod:`fullcycle.features` exactly: a
card's windows end at the transaction itself and include what arrived before
it; a terminal's windows end ``delay`` days before it and count a label only
once it is known. Replaying data in arrival order therefore gives the offline
features, which ``tests/integration/test_serving.py`` checks to 1e-9.

SQLite runs in WAL mode: a crash loses at most the transaction being written
and never corrupts the file.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from fullcycle.exceptions import ConfigError, DataError
from fullcycle.features import FEATURE_NAMES, SECONDS_PER_DAY

__all__ = ["ColdStart", "FeatureState", "OnlineTransaction", "epoch_seconds"]

_EPOCH = datetime(1970, 1, 1)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tx (
    tx_id    INTEGER PRIMARY KEY,
    t        INTEGER NOT NULL,   -- transaction time, Unix seconds (UTC)
    card     INTEGER NOT NULL,
    terminal INTEGER NOT NULL,
    amount   REAL    NOT NULL,
    label    INTEGER,            -- NULL until the investigation reports it
    score    REAL                -- NULL for warm-start rows
);
CREATE INDEX IF NOT EXISTS tx_card ON tx (card, t, amount);
CREATE INDEX IF NOT EXISTS tx_terminal ON tx (terminal, t, label);
CREATE INDEX IF NOT EXISTS tx_time ON tx (t);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def epoch_seconds(ts: datetime) -> int:
    """Whole Unix seconds of a naive-UTC or aware timestamp (floored, as the offline features)."""
    if ts.tzinfo is not None:
        ts = ts.astimezone(UTC).replace(tzinfo=None)
    return (ts - _EPOCH) // timedelta(seconds=1)


@dataclass(frozen=True)
class OnlineTransaction:
    """One raw transaction as the service sees it."""

    transaction_id: int
    t: int
    card: int
    terminal: int
    amount: float


@dataclass(frozen=True)
class ColdStart:
    """Which entities had no usable history, and what the features fell back to."""

    card: bool
    terminal: bool

    def defaults(self, delay_days: int) -> list[str]:
        out = []
        if self.card:
            out.append(
                "card has no transactions in the last 30 days: its spending windows hold only "
                "this transaction (count 1, mean = this amount)"
            )
        if self.terminal:
            out.append(
                f"terminal has no transactions older than the {delay_days}-day label delay in "
                "its windows: its counts and risks are 0"
            )
        return out


class FeatureState:
    """Per-card and per-terminal recent history in a SQLite file.

    Parameters
    ----------
    path : path or ":memory:"
        The SQLite file (created if missing).
    customer_windows, terminal_windows : tuple of int
        Window widths in days, as :class:`fullcycle.features.FraudFeatures`.
    delay : int
        Label delay in days for the terminal windows.
    """

    def __init__(
        self,
        path: str | Path,
        customer_windows=(1, 7, 30),
        terminal_windows=(1, 7, 30),
        delay: int = 7,
    ):
        self.path = str(path)
        self.customer_windows = tuple(int(w) for w in customer_windows)
        self.terminal_windows = tuple(int(w) for w in terminal_windows)
        self.delay = int(delay)
        if delay < 1:
            raise ConfigError(f"delay must be at least 1 day, got {delay}")
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise ConfigError(
                f"{self.path} is not a usable SQLite feature state ({exc}); "
                "move it away to start from an empty state"
            ) from None
        self._check_meta()
        self.horizon = (
            max(max(self.customer_windows), self.delay + max(self.terminal_windows))
            * SECONDS_PER_DAY
        )
        self.feature_names = list(FEATURE_NAMES)

    def _check_meta(self):
        want = {
            "customer_windows": list(self.customer_windows),
            "terminal_windows": list(self.terminal_windows),
            "delay": self.delay,
        }
        row = self.db.execute("SELECT value FROM meta WHERE key = 'windows'").fetchone()
        if row is None:
            self.db.execute("INSERT INTO meta VALUES ('windows', ?)", (json.dumps(want),))
        elif json.loads(row[0]) != want:
            raise ConfigError(
                f"{self.path} was built with windows {row[0]}, not {json.dumps(want)}; "
                "use another state file or the same windows"
            )

    # ----------------------------------------------------------------- warm start
    def warm_start(self, frame: pd.DataFrame, labelled: bool = True) -> int:
        """Load labelled history (validated transactions) into the state; returns rows added.

        Only the last ``horizon`` days before the newest row matter to any
        window, so older rows are skipped.
        """
        need = ["TRANSACTION_ID", "TX_DATETIME", "CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT"]
        if labelled:
            need.append("TX_FRAUD")
        missing = [c for c in need if c not in frame]
        if missing:
            raise DataError(f"warm start: the history lacks column(s) {missing}")
        t = frame["TX_DATETIME"].to_numpy(dtype="datetime64[s]").astype(np.int64)
        keep = t > (t.max() - self.horizon) if t.size else np.zeros(0, bool)
        labels = (
            frame["TX_FRAUD"].to_numpy()[keep].astype(np.int64).tolist()
            if labelled
            else [None] * int(keep.sum())
        )
        rows = zip(
            frame["TRANSACTION_ID"].to_numpy()[keep].astype(np.int64).tolist(),
            t[keep].tolist(),
            frame["CUSTOMER_ID"].to_numpy()[keep].astype(np.int64).tolist(),
            frame["TERMINAL_ID"].to_numpy()[keep].astype(np.int64).tolist(),
            frame["TX_AMOUNT"].to_numpy(dtype=float)[keep].tolist(),
            labels,
            strict=True,
        )
        before = self.count()
        self.db.execute("BEGIN")
        try:
            self.db.executemany(
                "INSERT OR IGNORE INTO tx (tx_id, t, card, terminal, amount, label) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return self.count() - before

    # ------------------------------------------------------------------- features
    def lookup(self, transaction_id: int):
        """The stored row of a transaction id, or None."""
        return self.db.execute(
            "SELECT t, card, terminal, amount, score FROM tx WHERE tx_id = ?", (transaction_id,)
        ).fetchone()

    def features(self, tx: OnlineTransaction, ts: datetime) -> tuple[list[float], ColdStart]:
        """The model's features for ``tx`` from what the state holds now (``tx`` itself excluded)."""
        day = SECONDS_PER_DAY
        cust = self.db.execute(
            "SELECT t, amount FROM tx WHERE card = ? AND t > ? AND t <= ?",
            (tx.card, tx.t - max(self.customer_windows) * day, tx.t),
        ).fetchall()
        lag = self.delay * day
        term = self.db.execute(
            "SELECT t, label FROM tx WHERE terminal = ? AND t > ? AND t <= ?",
            (tx.terminal, tx.t - lag - max(self.terminal_windows) * day, tx.t - lag),
        ).fetchall()
        out = [float(tx.amount), float(ts.weekday() >= 5), float(ts.hour < 6)]
        for w in self.customer_windows:
            lo = tx.t - w * day
            amounts = [a for (t, a) in cust if t > lo]
            n = len(amounts) + 1
            out += [float(n), (sum(amounts) + tx.amount) / n]
        for w in self.terminal_windows:
            lo = tx.t - lag - w * day
            labels = [lab for (t, lab) in term if t > lo]
            n = len(labels)
            frauds = sum(1 for lab in labels if lab == 1)
            out += [float(n), frauds / n if n else 0.0]
        return out, ColdStart(card=not cust, terminal=not term)

    def add(self, tx: OnlineTransaction, score: float | None) -> None:
        """Record a scored transaction (call inside :meth:`transaction`)."""
        self.db.execute(
            "INSERT INTO tx (tx_id, t, card, terminal, amount, score) VALUES (?, ?, ?, ?, ?, ?)",
            (tx.transaction_id, tx.t, tx.card, tx.terminal, tx.amount, score),
        )

    def set_scores(self, pairs) -> None:
        self.db.executemany("UPDATE tx SET score = ? WHERE tx_id = ?", pairs)

    def begin(self):
        self.db.execute("BEGIN IMMEDIATE")

    def commit(self):
        self.db.execute("COMMIT")

    def rollback(self):
        if self.db.in_transaction:
            self.db.execute("ROLLBACK")

    # --------------------------------------------------------------------- labels
    def post_labels(self, pairs: list[tuple[int, int]]) -> tuple[int, list[int]]:
        """Store reported labels ``(transaction_id, 0|1)``; returns (updated, unknown ids)."""
        ids = [i for i, _ in pairs]
        known: set[int] = set()
        for start in range(0, len(ids), 900):  # SQLite's bound-parameter limit
            chunk = ids[start : start + 900]
            marks = ",".join("?" * len(chunk))
            known.update(
                r[0]
                for r in self.db.execute(f"SELECT tx_id FROM tx WHERE tx_id IN ({marks})", chunk)
            )
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.executemany(
                "UPDATE tx SET label = ? WHERE tx_id = ?",
                [(lab, i) for i, lab in pairs if i in known],
            )
            self.db.execute("COMMIT")
        except BaseException:
            self.rollback()
            raise
        unknown = [i for i in ids if i not in known]
        return len(ids) - len(unknown), unknown

    # ---------------------------------------------------------------- maintenance
    def prune(self) -> int:
        """Drop rows older than every window needs (relative to the newest row)."""
        newest = self.db.execute("SELECT MAX(t) FROM tx").fetchone()[0]
        if newest is None:
            return 0
        cur = self.db.execute(
            "DELETE FROM tx WHERE t <= ?", (newest - self.horizon - SECONDS_PER_DAY,)
        )
        return cur.rowcount

    def count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM tx").fetchone()[0]

    def close(self) -> None:
        self.db.close()
