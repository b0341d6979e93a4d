"""The prediction log: every served score with its input, features, model version and latency.

Append-only by construction (SQLite triggers refuse UPDATE and DELETE) and in
WAL mode, so a crash never corrupts it. It lives in its own file, apart from
the feature state: when the log cannot be written the service still answers
and reports the failure on ``/health``. Monitoring reads it with
:func:`read_log`. Labels reported later are appended to their own table and
joined on read.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import numpy as np
import pandas as pd

from fullcycle.exceptions import ConfigError, DataError

__all__ = ["PredictionLog", "read_log"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    logged_at      REAL    NOT NULL,   -- Unix time the score was served
    model_version  TEXT    NOT NULL,
    transaction_id INTEGER NOT NULL,
    tx_time        INTEGER NOT NULL,   -- the transaction's own time, Unix seconds
    card           INTEGER NOT NULL,
    terminal       INTEGER NOT NULL,
    amount         REAL    NOT NULL,
    features       TEXT    NOT NULL,   -- JSON list, in the order of meta.feature_names
    score          REAL    NOT NULL,
    latency_ms     REAL    NOT NULL,
    cold_card      INTEGER NOT NULL,
    cold_terminal  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS predictions_time ON predictions (tx_time);
CREATE TABLE IF NOT EXISTS labels (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at    REAL    NOT NULL,
    transaction_id INTEGER NOT NULL,
    label          INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS predictions_append_only_u BEFORE UPDATE ON predictions
BEGIN SELECT RAISE(ABORT, 'the prediction log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS predictions_append_only_d BEFORE DELETE ON predictions
BEGIN SELECT RAISE(ABORT, 'the prediction log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS labels_append_only_u BEFORE UPDATE ON labels
BEGIN SELECT RAISE(ABORT, 'the label log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS labels_append_only_d BEFORE DELETE ON labels
BEGIN SELECT RAISE(ABORT, 'the label log is append-only'); END;
"""

_INSERT = (
    "INSERT INTO predictions (logged_at, model_version, transaction_id, tx_time, card, terminal, "
    "amount, features, score, latency_ms, cold_card, cold_terminal) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _connect(path: str) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    return db


class PredictionLog:
    """Append served predictions and reported labels to a SQLite file.

    Writes never raise: a failure is counted in :attr:`errors` (with the last
    message in :attr:`last_error`) so that a broken log cannot break a
    response.
    """

    def __init__(self, path: str | Path, feature_names: list[str]):
        self.path = str(path)
        self.errors = 0
        self.last_error: str | None = None
        self.written = 0
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = _connect(self.path)
            self.db.executescript(_SCHEMA)
            self.db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('feature_names', ?)",
                (json.dumps(feature_names),),
            )
        except sqlite3.DatabaseError as exc:
            raise ConfigError(
                f"{self.path} is not a usable prediction log ({exc}); move it away to start a new one"
            ) from None
        stored = json.loads(
            self.db.execute("SELECT value FROM meta WHERE key = 'feature_names'").fetchone()[0]
        )
        if stored != list(feature_names):
            raise ConfigError(
                f"{self.path} logs features {stored}, this model uses {feature_names}; "
                "start a new log for a model with other features"
            )

    def _fail(self, exc: Exception) -> None:
        self.errors += 1
        self.last_error = f"{type(exc).__name__}: {exc}"

    def append(self, rows: list[tuple]) -> None:
        """Rows of (model_version, transaction_id, tx_time, card, terminal, amount,
        features, score, latency_ms, cold_card, cold_terminal)."""
        now = time.time()
        try:
            payload = [(now, *r[:6], json.dumps(r[6]), *r[7:]) for r in rows]
            if len(payload) == 1:
                self.db.execute(_INSERT, payload[0])
            else:
                self.db.execute("BEGIN")
                self.db.executemany(_INSERT, payload)
                self.db.execute("COMMIT")
            self.written += len(payload)
        except Exception as exc:  # the edge: a log failure must not fail a response
            try:
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
            except Exception:
                pass
            self._fail(exc)

    def append_labels(self, pairs: list[tuple[int, int]]) -> None:
        now = time.time()
        try:
            self.db.execute("BEGIN")
            self.db.executemany(
                "INSERT INTO labels (received_at, transaction_id, label) VALUES (?, ?, ?)",
                [(now, i, lab) for i, lab in pairs],
            )
            self.db.execute("COMMIT")
        except Exception as exc:
            try:
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
            except Exception:
                pass
            self._fail(exc)

    def close(self) -> None:
        self.db.close()


def read_log(path: str | Path, start: str | None = None, end: str | None = None) -> pd.DataFrame:
    """Logged predictions whose transaction time is in ``[start, end)``, with features and labels.

    Returns one row per logged prediction: ``TRANSACTION_ID``, ``TX_DATETIME``,
    ``CUSTOMER_ID``, ``TERMINAL_ID``, ``TX_AMOUNT``, ``model_version``, ``score``,
    ``latency_ms``, the feature columns and ``TX_FRAUD`` (the latest reported
    label, NaN while unknown).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no prediction log at {path}; serve some traffic first (fullcycle serve)")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        names = json.loads(
            db.execute("SELECT value FROM meta WHERE key = 'feature_names'").fetchone()[0]
        )
        where, args = [], []
        for bound, op in ((start, ">="), (end, "<")):
            if bound is not None:
                where.append(f"tx_time {op} ?")
                args.append(int(pd.Timestamp(bound).timestamp()))
        sql = (
            "SELECT transaction_id, tx_time, card, terminal, amount, model_version, score, "
            "latency_ms, cold_card, cold_terminal, features FROM predictions"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY tx_time, transaction_id"
        )
        log = pd.read_sql_query(sql, db, params=args)
        labels = pd.read_sql_query(
            "SELECT transaction_id, label FROM labels ORDER BY id", db
        ).drop_duplicates("transaction_id", keep="last")
    except sqlite3.DatabaseError as exc:
        raise DataError(f"{path} is not a readable prediction log: {exc}") from None
    finally:
        db.close()
    feats = (
        np.array([json.loads(f) for f in log["features"]], dtype=float)
        if len(log)
        else np.zeros((0, len(names)))
    )
    out = pd.DataFrame(
        {
            "TRANSACTION_ID": log["transaction_id"].to_numpy(np.int64),
            "TX_DATETIME": pd.to_datetime(log["tx_time"].to_numpy(np.int64), unit="s"),
            "CUSTOMER_ID": log["card"].to_numpy(np.int64),
            "TERMINAL_ID": log["terminal"].to_numpy(np.int64),
            "TX_AMOUNT": log["amount"].to_numpy(float),
            "model_version": log["model_version"].astype(str).to_numpy(),
            "score": log["score"].to_numpy(float),
            "latency_ms": log["latency_ms"].to_numpy(float),
            "cold_card": log["cold_card"].to_numpy(bool),
            "cold_terminal": log["cold_terminal"].to_numpy(bool),
        }
    )
    for j, name in enumerate(names):
        out[name] = feats[:, j]
    out["TX_FRAUD"] = (
        out["TRANSACTION_ID"].map(labels.set_index("transaction_id")["label"]).astype(float)
    )
    # One row per transaction: a re-served transaction keeps its first logged score.
    return out.drop_duplicates("TRANSACTION_ID", keep="first").reset_index(drop=True)
