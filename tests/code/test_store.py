"""Does the keyed window store keep events per key, answer windows exactly, keep labels, refuse
a file built for other settings or not a store at all, and roll a failed transaction back?"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone

import pandas as pd
import pytest

from fullcycle.exceptions import ConfigError, DataError
from fullcycle.serving.store import Event, WindowStore, epoch_seconds

KEYS = ("card", "terminal")


@pytest.fixture
def store():
    s = WindowStore(":memory:", keys=KEYS)
    yield s
    s.close()


def _add(store, event_id, t, card, terminal, value=1.0, score=None):
    store.add(event_id, t, {"card": card, "terminal": terminal}, value, score)


def test_windows_are_per_key_and_half_open(store):
    """``window(key, value, start, end)`` holds the events of that key with start < t <= end."""
    _add(store, 1, 100, card=7, terminal=1, value=10.0)
    _add(store, 2, 200, card=7, terminal=2, value=20.0)
    _add(store, 3, 300, card=7, terminal=1, value=30.0)
    _add(store, 4, 200, card=8, terminal=1, value=40.0)
    assert sorted(store.window("card", 7, 100, 300)) == [(200, 20.0, None), (300, 30.0, None)]
    assert sorted(store.window("card", 7, 99, 299)) == [(100, 10.0, None), (200, 20.0, None)]
    assert sorted(store.window("terminal", 1, 0, 1000)) == [
        (100, 10.0, None),
        (200, 40.0, None),
        (300, 30.0, None),
    ]
    assert store.window("card", 9, 0, 1000) == []
    assert store.window("card", 7, 300, 300) == []
    assert store.count() == 4 and store.newest() == 300
    with pytest.raises(DataError, match="unknown key 'customer'.*card"):
        store.window("customer", 7, 0, 1)


def test_events_are_read_back_whole_and_ids_are_unique(store):
    _add(store, 5, 123, card=1, terminal=2, value=9.5, score=0.25)
    assert store.get(5) == Event(5, 123, {"card": 1, "terminal": 2}, 9.5, None, 0.25)
    assert store.get(6) is None
    with pytest.raises(DataError, match="event 5 is already in the store"):
        _add(store, 5, 999, card=3, terminal=4)
    with pytest.raises(DataError, match="key 'terminal' is missing"):
        store.add(6, 1, {"card": 1}, 1.0)
    assert store.count() == 1
    store.set_scores([(5, 0.75)])
    assert store.get(5).score == 0.75


def test_keys_must_be_distinct_lower_case_names():
    for keys in [(), ("card", "card"), ("Card",), ("card; DROP TABLE events",), ("1card",)]:
        with pytest.raises(ConfigError, match="distinct lower-case names"):
            WindowStore(":memory:", keys=keys)


def test_labels_are_stored_for_known_ids_and_unknown_ones_reported(store):
    for i in range(3):
        _add(store, i, 10 * i, card=1, terminal=1)
    assert store.set_labels([(0, 1), (2, 0), (99, 1)]) == (2, [99])
    assert sorted(store.window("terminal", 1, -1, 100)) == [
        (0, 1.0, 1),
        (10, 1.0, None),
        (20, 1.0, 0),
    ]
    # A later report replaces an earlier one.
    assert store.set_labels([(0, 0)]) == (1, [])
    assert store.get(0).label == 0
    # More ids than SQLite binds in one statement.
    many = [(i, 1) for i in range(2500)]
    updated, unknown = store.set_labels(many)
    assert updated == 3 and len(unknown) == 2497


def test_add_many_skips_known_ids_and_sets_labels(store):
    _add(store, 1, 10, card=1, terminal=1)
    rows = [(1, 99, {"card": 5, "terminal": 5}, 5.0), (2, 20, {"card": 1, "terminal": 2}, 2.0)]
    rows.append((3, 30, {"card": 1, "terminal": 2}, 3.0))
    assert store.add_many(rows, labels=[1, 1, None]) == 2
    assert store.get(1).t == 10  # the known event is not replaced
    assert (store.get(2).label, store.get(3).label) == (1, None)
    with pytest.raises((ValueError, DataError)):  # one label per row
        store.add_many([(4, 40, {"card": 1, "terminal": 1}, 1.0)], labels=[1, 0])
    assert store.get(4) is None  # the refused call stored nothing


def test_prune_drops_old_events_only(store):
    for i, t in enumerate([100, 200, 300]):
        _add(store, i, t, card=1, terminal=1)
    assert store.prune(200) == 2
    assert store.count() == 1 and store.newest() == 300
    assert WindowStore(":memory:", keys=KEYS).newest() is None


def test_a_failed_transaction_is_rolled_back_whole(store):
    """An error inside ``transaction()`` leaves nothing of it; nested use joins the outer one."""
    _add(store, 1, 10, card=1, terminal=1)
    with pytest.raises(RuntimeError, match="boom"):
        with store.transaction():
            _add(store, 2, 20, card=1, terminal=1)
            with store.transaction():  # joins the outer transaction
                _add(store, 3, 30, card=1, terminal=1)
            store.set_labels([(1, 1)])
            raise RuntimeError("boom")
    assert store.count() == 1 and store.get(1).label is None
    with store.transaction():
        _add(store, 2, 20, card=1, terminal=1)
    assert store.count() == 2
    assert not store.db.in_transaction


def test_a_file_persists_and_refuses_other_settings(tmp_path):
    """Reopened with the same keys and meta the rows are there; other settings are refused with
    both settings named, and the file is left as it was."""
    path = tmp_path / "sub" / "state.sqlite"
    meta = {"delay_days": 7, "windows": [1, 7, 30]}
    s = WindowStore(path, keys=KEYS, meta=meta)
    _add(s, 1, 10, card=1, terminal=1)
    s.close()
    again = WindowStore(path, keys=KEYS, meta=dict(meta))
    assert again.count() == 1
    again.close()
    with pytest.raises(ConfigError, match=r"built with settings .*\"delay_days\": 7.*not .*3"):
        WindowStore(path, keys=KEYS, meta={**meta, "delay_days": 3})
    with pytest.raises(ConfigError, match="use another state file or the same settings"):
        WindowStore(path, keys=("card",), meta=meta)
    third = WindowStore(path, keys=KEYS, meta=meta)
    assert third.count() == 1
    third.close()


@pytest.mark.parametrize(
    "content", [b"this is not a database" * 100, b"SQLite format 3\x00" + b"\xff" * 4000]
)
def test_a_corrupt_file_is_refused_with_the_fix(tmp_path, content):
    path = tmp_path / "state.sqlite"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=r"state\.sqlite is not a usable window store.*move it"):
        WindowStore(path, keys=KEYS)
    assert path.read_bytes() == content  # nothing was overwritten


def test_a_crash_mid_transaction_loses_only_that_transaction(tmp_path):
    """The process dies inside a transaction (the connection is dropped without a commit):
    reopening finds the committed rows, none of the uncommitted ones, and a sound file."""
    path = tmp_path / "state.sqlite"
    s = WindowStore(path, keys=KEYS)
    _add(s, 1, 10, card=1, terminal=1)
    s.db.execute("BEGIN IMMEDIATE")
    _add(s, 2, 20, card=1, terminal=1)
    s.db.close()  # no COMMIT
    again = WindowStore(path, keys=KEYS)
    assert again.count() == 1 and again.get(2) is None
    assert again.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    again.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_epoch_seconds_of_naive_aware_and_pandas_timestamps():
    """Whole UTC seconds, floored, whatever the timestamp's type or offset."""
    naive = datetime(2018, 4, 1, 10, 0, 0, 900_000)
    assert epoch_seconds(naive) == 1522576800
    assert epoch_seconds(datetime(2018, 4, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))) == (
        1522576800
    )
    assert epoch_seconds(datetime(2018, 4, 1, 10, 0, tzinfo=UTC)) == 1522576800
    assert epoch_seconds(pd.Timestamp("2018-04-01 10:00:00.999")) == 1522576800
    assert epoch_seconds(pd.Timestamp("2018-04-01 12:00", tz="Europe/Paris")) == 1522576800
    # The same value the offline features use (datetime64[s] of the column).
    col = pd.Series(pd.to_datetime(["2018-04-01 10:00:00.9", "1999-12-31 23:59:59.0"]))
    assert [epoch_seconds(t) for t in col] == col.to_numpy(dtype="datetime64[s]").astype(
        "int64"
    ).tolist()


def test_add_many_refuses_labels_that_do_not_match_the_rows():
    """Does a label list of the wrong length get an error that says what to give?"""
    from fullcycle.exceptions import DataError
    from fullcycle.serving.store import WindowStore

    store = WindowStore(":memory:", keys=("card", "terminal"))
    with pytest.raises(DataError, match="1 rows but 2 labels"):
        store.add_many([(4, 40, {"card": 1, "terminal": 1}, 1.0)], labels=[1, 0])
    assert store.count() == 0
