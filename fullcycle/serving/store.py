"""A keyed window store on SQLite: recent events per key, for features computed online.

A service that scores one event at a time needs each key's recent history
(a card's last 30 days of payments, a terminal's labelled transactions of a
past week). :class:`WindowStore` keeps events with one integer per key, a
time in seconds, a value, an optional label and an optional score, and
answers "events of key K between times A and B". What the windows are and
what features they make is the service's (the kit's) business.

SQLite runs in WAL mode: a crash loses at most the transaction being written
and never corrupts the file. One store is one connection; a service with one
worker uses it from one thread at a time.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fullcycle.exceptions import ConfigError, DataError

__all__ = ["Event", "WindowStore", "epoch_seconds"]

_EPOCH = datetime(1970, 1, 1)
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,30}$")
_PARAM_CHUNK = 900  # SQLite's bound-parameter limit is 999 on old builds


def epoch_seconds(ts) -> int:
    """Whole Unix seconds of a naive-UTC or aware timestamp, floored (as datetime64[s] does)."""
    if getattr(ts, "tzinfo", None) is not None:
        ts = ts.astimezone(UTC).replace(tzinfo=None)
    if hasattr(ts, "to_pydatetime"):  # pandas Timestamp
        ts = ts.to_pydatetime()
    return (ts - _EPOCH) // timedelta(seconds=1)


@dataclass(frozen=True)
class Event:
    """One stored event."""

    event_id: int
    t: int
    keys: dict[str, int]
    value: float
    label: int | None
    score: float | None


class WindowStore:
    """Recent events per key in a SQLite file.

    Parameters
    ----------
    path : path or ":memory:"
        The SQLite file (created with its folder if missing).
    keys : sequence of str
        Names of the integer keys each event carries (e.g. ``("card", "terminal")``).
    meta : dict, optional
        Settings the stored rows depend on (window widths, a label delay). They
        are written on first use; opening the file later with other settings is
        refused, so a state built for one set of windows is never read by another.

    Examples
    --------
    >>> store = WindowStore(":memory:", keys=("card",))
    >>> store.add(1, 100, {"card": 7}, 25.0)
    >>> store.add(2, 200, {"card": 7}, 5.0)
    >>> [(t, value) for t, value, label in store.window("card", 7, 100, 200)]
    [(200, 5.0)]
    """

    def __init__(self, path: str | Path, keys: Sequence[str] = ("key",), meta: dict | None = None):
        self.path = str(path)
        self.keys = tuple(keys)
        bad = [k for k in self.keys if not _NAME.match(k)]
        if not self.keys or bad or len(set(self.keys)) != len(self.keys):
            raise ConfigError(
                f"WindowStore keys must be distinct lower-case names, got {list(keys)}"
            )
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        cols = ", ".join(f"k_{k} INTEGER NOT NULL" for k in self.keys)
        schema = [
            "CREATE TABLE IF NOT EXISTS events (event_id INTEGER PRIMARY KEY, t INTEGER NOT NULL, "
            f"{cols}, value REAL NOT NULL, label INTEGER, score REAL)",
            "CREATE INDEX IF NOT EXISTS events_t ON events (t)",
            *(
                f"CREATE INDEX IF NOT EXISTS events_{k} ON events (k_{k}, t, value, label)"
                for k in self.keys
            ),
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        ]
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            tables = {
                r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            if tables and "events" not in tables:
                self.db.close()
                raise ConfigError(
                    f"{self.path} is another SQLite file (tables {sorted(tables)}), not a window "
                    "store; give the store its own file"
                )
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            for statement in schema:
                self.db.execute(statement)
        except sqlite3.DatabaseError as exc:
            raise ConfigError(
                f"{self.path} is not a usable window store ({exc}); "
                "move it away to start from an empty state"
            ) from None
        self._check_meta({"keys": list(self.keys), **(meta or {})})
        self._insert = (
            f"INSERT INTO events (event_id, t, {', '.join('k_' + k for k in self.keys)}, value, "
            f"score) VALUES (?, ?, {', '.join('?' for _ in self.keys)}, ?, ?)"
        )

    def _check_meta(self, want: dict) -> None:
        text = json.dumps(want, sort_keys=True)
        row = self.db.execute("SELECT value FROM meta WHERE key = 'settings'").fetchone()
        if row is None:
            self.db.execute("INSERT INTO meta VALUES ('settings', ?)", (text,))
        elif row[0] != text:
            raise ConfigError(
                f"{self.path} was built with settings {row[0]}, not {text}; "
                "use another state file or the same settings"
            )

    # ------------------------------------------------------------------ writing
    def _row(self, event_id, t, keys, value, score):
        try:
            return (
                int(event_id),
                int(t),
                *(int(keys[k]) for k in self.keys),
                float(value),
                score,
            )
        except KeyError as exc:
            raise DataError(
                f"event {event_id}: key {exc} is missing; keys are {self.keys}"
            ) from None

    def add(self, event_id: int, t: int, keys: dict, value: float, score=None) -> None:
        """Store one event (an id seen before is refused: ids are unique)."""
        try:
            self.db.execute(self._insert, self._row(event_id, t, keys, value, score))
        except sqlite3.IntegrityError:
            raise DataError(f"event {event_id} is already in the store") from None

    def add_many(self, rows: Iterable[tuple], labels: Iterable | None = None) -> int:
        """Store ``(event_id, t, keys, value)`` rows in one transaction, skipping known ids.

        ``labels``, if given, holds one 0/1/None per row; a known id's label is updated
        (a later history knows more). Returns the rows added.
        """
        rows = [self._row(i, t, k, v, None) for i, t, k, v in rows]
        if labels is not None:
            labels = list(labels)
            if len(labels) != len(rows):
                raise DataError(
                    f"add_many got {len(rows)} rows but {len(labels)} labels; give one label "
                    "(0, 1 or None) per row"
                )
        before = self.count()
        with self.transaction():
            self.db.executemany(self._insert.replace("INSERT", "INSERT OR IGNORE"), rows)
            if labels is not None:
                pairs = [
                    (lab, r[0]) for r, lab in zip(rows, labels, strict=True) if lab is not None
                ]
                self.db.executemany("UPDATE events SET label = ? WHERE event_id = ?", pairs)
        return self.count() - before

    def set_scores(self, pairs: Iterable[tuple[int, float]]) -> None:
        """Record ``(event_id, score)`` pairs."""
        self.db.executemany(
            "UPDATE events SET score = ? WHERE event_id = ?", [(s, i) for i, s in pairs]
        )

    def set_labels(self, pairs: Sequence[tuple[int, int]]) -> tuple[int, list[int]]:
        """Record ``(event_id, 0|1)`` labels; returns (how many were stored, unknown ids)."""
        ids = [int(i) for i, _ in pairs]
        known: set[int] = set()
        for start in range(0, len(ids), _PARAM_CHUNK):
            chunk = ids[start : start + _PARAM_CHUNK]
            marks = ",".join("?" * len(chunk))
            known.update(
                r[0]
                for r in self.db.execute(
                    f"SELECT event_id FROM events WHERE event_id IN ({marks})", chunk
                )
            )
        with self.transaction():
            self.db.executemany(
                "UPDATE events SET label = ? WHERE event_id = ?",
                [(int(lab), int(i)) for i, lab in pairs if int(i) in known],
            )
        unknown = [i for i in ids if i not in known]
        return len(ids) - len(unknown), unknown

    @contextmanager
    def transaction(self):
        """Group writes: all or nothing (nested use joins the outer transaction)."""
        if self.db.in_transaction:
            yield self
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # ------------------------------------------------------------------ reading
    def get(self, event_id: int) -> Event | None:
        """The stored event with this id, or None."""
        cols = ", ".join("k_" + k for k in self.keys)
        row = self.db.execute(
            f"SELECT event_id, t, {cols}, value, label, score FROM events WHERE event_id = ?",
            (int(event_id),),
        ).fetchone()
        if row is None:
            return None
        n = len(self.keys)
        return Event(
            row[0], row[1], dict(zip(self.keys, row[2 : 2 + n], strict=True)), *row[2 + n :]
        )

    def window(
        self, key: str, value: int, start: int, end: int
    ) -> list[tuple[int, float, int | None]]:
        """``(t, value, label)`` of the events of ``key == value`` with ``start < t <= end``."""
        if key not in self.keys:
            raise DataError(f"unknown key {key!r}; the store's keys are {self.keys}")
        return self.db.execute(
            f"SELECT t, value, label FROM events WHERE k_{key} = ? AND t > ? AND t <= ?",
            (int(value), int(start), int(end)),
        ).fetchall()

    def newest(self) -> int | None:
        """Time of the newest event, or None when empty."""
        return self.db.execute("SELECT MAX(t) FROM events").fetchone()[0]

    def count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM events").fetchone()[0]

    # -------------------------------------------------------------- maintenance
    def prune(self, before: int) -> int:
        """Drop events with ``t <= before``; returns how many."""
        return self.db.execute("DELETE FROM events WHERE t <= ?", (int(before),)).rowcount

    def close(self) -> None:
        self.db.close()
