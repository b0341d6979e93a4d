"""Does the results store keep every attempt, in SQLite and in PostgreSQL alike, and refuse to
rewrite any? Do concurrent writers and a killed writer lose nothing and count nothing twice? Does
a file of the first store version keep its rows?

Every test that takes ``target`` runs on a SQLite file and on a real PostgreSQL server (started by
the ``postgres_server`` fixture of tests/postgres.py).
"""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

import grading.store
from grading.errors import GradingConfigError
from grading.store import COLUMNS, ResultsStore, ResultsStoreError, open_store

from conftest import live_descendants
from postgres import INSTALL, find_bindir


def _result(name="kit", sha="a" * 64, learner=None, assignment=None, points=3.0, **extra):
    return {
        "schema": "fullcycle.grading.result/1",
        "graded_at": "2026-01-01T00:00:00+00:00",
        "project": "tiny_ranking",
        "status": "graded",
        "score": {"points": points, "max_points": 10.0},
        "submission": {"name": name, "sha256": sha, "learner": learner, "assignment": assignment},
        **extra,
    }


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)],
)
def target(request, tmp_path):
    """A store target (a file path or a URL) on an empty database of each engine."""
    if request.param == "sqlite":
        return str(tmp_path / "store" / "results.sqlite")
    return request.getfixturevalue("postgres_server").create_database()


def _raw(target: str):
    """A plain SQLAlchemy engine on the store's database, bypassing the store."""
    url = target if "://" in target else f"sqlite:///{target}"
    return create_engine(url, poolclass=NullPool)


def test_attempts_are_numbered_per_learner_assignment_and_submission(target):
    """Is a regrade a new attempt, and is each (learner, assignment, hash) numbered alone?"""
    store = open_store(target)
    assert store.add(_result(learner="ada", assignment="capstone")) == (1, 1)
    assert store.add(_result(learner="ada", assignment="capstone", points=5)) == (2, 2)
    assert store.add(_result(learner="bob", assignment="capstone"))[1] == 1
    assert store.add(_result(learner="ada", assignment="capstone", sha="b" * 64))[1] == 1
    assert store.add(_result(learner="ada", assignment="week1"))[1] == 1
    # Without a learner or an assignment, the submission name and the project stand in.
    _, attempt = store.add(_result(name="kit"))
    assert attempt == 1
    row = store.rows()[-1]
    assert (row["learner"], row["assignment"], row["attempt"]) == ("kit", "tiny_ranking", 1)

    assert store.count() == 6 and store.count(assignment="capstone") == 4
    assert list(store.rows()[0]) == list(COLUMNS)
    assert [r["points"] for r in store.rows(learner="ada", assignment="capstone")] == [3, 5, 3]
    current = store.current(assignment="capstone")
    assert [(r["learner"], r["submission_sha256"][0], r["attempt"]) for r in current] == [
        ("ada", "a", 2),
        ("bob", "a", 1),
        ("ada", "b", 1),
    ]
    assert current[0]["points"] == 5
    assert len(store.current()) == 5 and len(store.current(project="other")) == 0
    assert store.graded("capstone") == {("ada", "a" * 64), ("ada", "b" * 64), ("bob", "a" * 64)}
    assert store.graded("nothing") == set()


def test_rows_keep_learner_text_and_the_whole_result(target):
    """Are hostile strings stored as data (bound, not spliced) and the result kept whole?"""
    evil = "x'); DROP TABLE results; --\u202e<script>\x00"[:-1] + "é"
    result = _result(name=evil, learner=evil, note={"nested": [1, 2.5, None]})
    store = open_store(target)
    store.add(result)
    [row] = store.rows(learner=evil)
    assert row["submission"] == evil and json.loads(row["result_json"]) == result
    assert store.graded("tiny_ranking") == {(evil, "a" * 64)}


def test_the_database_refuses_update_and_delete(target):
    """Are rows append-only in the database itself, whoever connects?"""
    open_store(target).add(_result())
    engine = _raw(target)
    statements = ["UPDATE results SET points = 99", "DELETE FROM results"]
    if target.startswith("postgresql"):
        statements.append("TRUNCATE results")
    for statement in statements:
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as db:
            db.execute(text(statement))
    engine.dispose()
    [row] = open_store(target).rows()
    assert row["points"] == 3


def test_reopening_keeps_rows_and_continues_the_attempts(target):
    """Does a store opened again (as the pipeline's store step does) see and extend its rows?"""
    with open_store(target) as store:
        store.add(_result())
    ResultsStore(target).add(_result())
    again = ResultsStore(target)
    assert [r["attempt"] for r in again.rows()] == [1, 2]
    assert again.add(_result()) == (3, 3)


#: A writer process: prints "ready", waits for a line on stdin (so that every writer starts at
#: once), adds the results of argv[2] (again and again with --forever) and prints each
#: ``[id, attempt]`` after its add returned.
WRITER = """
import json, sys
from grading.store import open_store
target, results, forever = sys.argv[1], json.loads(sys.argv[2]), "--forever" in sys.argv
print("ready", flush=True)
sys.stdin.readline()
store = open_store(target)
while True:
    for result in results:
        print(json.dumps(store.add(result)), flush=True)
    if not forever:
        break
"""


def _writers(target: str, plans: list[list[dict]], *flags: str) -> list[subprocess.Popen]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, target, json.dumps(plan), *flags],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for plan in plans
    ]
    for proc in procs:
        assert proc.stdout.readline() == "ready\n"
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    return procs


def test_concurrent_writers_never_duplicate_or_lose_an_attempt(target):
    """Do 4 processes adding 20 results each to one submission, at once, on a store none of them
    has created yet, get attempts 1..80, each once?"""
    workers, n = 4, 20
    before = live_descendants()
    plans = [[_result(learner="ada")] * n + [_result(learner=f"solo{i}")] for i in range(workers)]
    procs = _writers(target, plans)
    returned = []
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0
        returned.append([tuple(json.loads(line)) for line in out.splitlines()])
    assert live_descendants() <= before

    store = open_store(target)
    rows = store.rows(learner="ada")
    assert sorted(r["attempt"] for r in rows) == list(range(1, workers * n + 1))
    assert sorted(pair for mine in returned for pair in mine[:-1]) == sorted(
        (r["id"], r["attempt"]) for r in rows
    )
    assert [mine[-1][1] for mine in returned] == [1] * workers  # each solo learner's first
    assert store.count() == workers * (n + 1)


def test_a_writer_killed_mid_write_loses_nothing_and_counts_nothing_twice(target):
    """After ``kill -9`` of a writer, is every returned add stored once, attempts without gaps?"""
    open_store(target)
    [writer] = _writers(target, [[_result()]], "--forever")
    reported = [writer.stdout.readline() for _ in range(15)]
    writer.kill()
    reported += writer.stdout.read().splitlines()
    writer.wait(10)
    writer.stdin.close()
    writer.stdout.close()
    assert writer.returncode == -signal.SIGKILL

    store = open_store(target)
    rows = store.rows()
    # The kill may land after a commit and before the print: at most one add is unreported.
    assert len(reported) <= len(rows) <= len(reported) + 1
    assert [r["attempt"] for r in rows] == list(range(1, len(rows) + 1))
    assert [tuple(json.loads(line)) for line in reported] == [
        (r["id"], r["attempt"]) for r in rows[: len(reported)]
    ]
    assert store.add(_result())[1] == len(rows) + 1


# ---- the first store version's files ----------------------------------------------------------

#: The schema and insert of grading/store.py before issue 10, verbatim.
OLD_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    graded_at TEXT NOT NULL,
    project TEXT NOT NULL,
    submission TEXT NOT NULL,
    submission_sha256 TEXT NOT NULL,
    status TEXT NOT NULL,
    points REAL NOT NULL,
    max_points REAL NOT NULL,
    result_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS results_submission ON results(submission_sha256);
CREATE TRIGGER IF NOT EXISTS results_no_update BEFORE UPDATE ON results
BEGIN SELECT RAISE(ABORT, 'results are append-only'); END;
CREATE TRIGGER IF NOT EXISTS results_no_delete BEFORE DELETE ON results
BEGIN SELECT RAISE(ABORT, 'results are append-only'); END;
"""
OLD_INSERT = (
    "INSERT INTO results (graded_at, project, submission, submission_sha256, status,"
    " points, max_points, result_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def _old_store(path, results) -> list[tuple]:
    with sqlite3.connect(path) as db:
        db.executescript(OLD_SCHEMA)
        for r in results:
            db.execute(
                OLD_INSERT,
                (r["graded_at"], r["project"], r["submission"]["name"], r["submission"]["sha256"],
                 r["status"], r["score"]["points"], r["score"]["max_points"],
                 json.dumps(r, sort_keys=True)),
            )  # fmt: skip
    return _raw_rows(path)


def _raw_rows(path) -> list[tuple]:
    with sqlite3.connect(path) as db:
        return db.execute(
            "SELECT id, graded_at, project, submission, submission_sha256, status, points,"
            " max_points, result_json FROM results ORDER BY id"
        ).fetchall()


def test_a_file_of_the_first_store_version_keeps_every_row(tmp_path):
    """Is an old file migrated without rewriting a row, its rows read with derived columns, and
    do new attempts continue after the old ones?"""
    path = tmp_path / "results.sqlite"
    old = [_result(name="kit", points=1), _result(name="alt", sha="c" * 64), _result(points=2)]
    before = _old_store(path, old)

    store = open_store(path)
    assert _raw_rows(path) == before  # nothing rewritten
    rows = store.rows()
    assert [(r["learner"], r["assignment"], r["attempt"]) for r in rows] == [
        ("kit", "tiny_ranking", 1),
        ("alt", "tiny_ranking", 1),
        ("kit", "tiny_ranking", 2),
    ]
    assert store.add(_result(name="kit", points=7)) == (4, 3)
    assert store.add(_result(name="kit", learner="ada"))[1] == 1
    assert [(r["learner"], r["points"]) for r in store.current()] == [
        ("alt", 3),
        ("kit", 7),
        ("ada", 3),
    ]
    assert store.graded("tiny_ranking") == {("kit", "a" * 64), ("alt", "c" * 64), ("ada", "a" * 64)}

    again = open_store(path)  # a second open does not migrate twice
    assert again.count() == 5 and _raw_rows(path)[:3] == before
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        for statement in ("UPDATE results SET points = 99", "DELETE FROM results"):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                db.execute(statement)
        with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
            db.execute(
                "INSERT INTO results (graded_at, project, submission, submission_sha256, status,"
                " points, max_points, result_json, learner, assignment, attempt)"
                " SELECT graded_at, project, submission, submission_sha256, status, points,"
                " max_points, result_json, learner, assignment, attempt FROM results WHERE id = 4"
            )


# ---- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("mysql://root@localhost/grades", r"'mysql' databases are not supported.*postgresql://"),
        ("postgresql+psycopg2://u:secret@h/db", r"driver 'psycopg2' is not supported"),
        ("postgresql://u:secret@host:notaport/db", r"is not a database URL"),
        ("sqlite://", r"names no file.*sqlite:///ABSOLUTE/PATH"),
        (":memory:", r"must outlive the grading run"),
    ],
)
def test_a_bad_target_says_what_to_write(target, message):
    with pytest.raises(ResultsStoreError, match=message) as err:
        open_store(target)
    assert "secret" not in str(err.value)
    assert isinstance(err.value, GradingConfigError)


def test_an_unreachable_server_is_a_clear_error_fast(tmp_path):
    """Does a server that is not there fail within the connect timeout, naming the fix?"""
    started = time.monotonic()
    for url in (
        "postgresql://grader:secret@127.0.0.1:1/grades",
        f"postgresql://grader:secret@/grades?host={tmp_path}",
    ):
        with pytest.raises(
            ResultsStoreError, match=r"cannot use the results store.*Start the"
        ) as e:
            open_store(url, connect_timeout=2)
        assert "secret" not in str(e.value) and "grader:***@" in str(e.value)
    assert time.monotonic() - started < 10


def test_a_missing_driver_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(ResultsStoreError, match=r"pip install 'psycopg\[binary\]'"):
        open_store("postgresql://grader@/grades")


def test_a_file_that_is_not_a_store_is_refused(tmp_path):
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(ResultsStoreError, match=r"junk\.sqlite.*not a database.*move this one"):
        open_store(junk)
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE results (id INTEGER PRIMARY KEY, score REAL)")
    with pytest.raises(ResultsStoreError, match=r"without the column\(s\) graded_at, project"):
        open_store(other)


def test_bad_filters_and_results_name_what_is_expected(tmp_path):
    store = open_store(tmp_path / "r.sqlite")
    with pytest.raises(ValueError, match=r"unknown results column\(s\) \['student'\].*learner"):
        store.rows(student="ada")
    with pytest.raises(ValueError, match=r"missing 'sha256'.*result\.json"):
        store.add({**_result(), "submission": {"name": "kit"}})
    assert store.count() == 0


def test_the_public_names_are_declared():
    assert set(grading.store.__all__) == {
        "COLUMNS",
        "ResultsStore",
        "ResultsStoreError",
        "open_store",
    }


def test_missing_postgres_binaries_name_the_install_command(tmp_path, monkeypatch):
    """Does the server fixture fail (never skip) with the command that installs PostgreSQL?"""
    (tmp_path / "13" / "bin").mkdir(parents=True)  # a version folder without the programs
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=re.escape(f"`{INSTALL}`")):
        find_bindir(tmp_path)
    assert INSTALL == "sudo apt-get install -y postgresql"
