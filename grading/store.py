"""The results store: one row per graded attempt, in SQLite or PostgreSQL, never rewritten.

``open_store(target)`` takes a SQLite file path (the default, ``results.sqlite``
beside the grading config), a ``sqlite:///PATH`` URL or a
``postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE`` URL (driven by psycopg 3;
``?host=/socket/dir`` reaches a server on a Unix socket). Both engines get the
same table, built from one SQLAlchemy Core definition::

    results(id, graded_at, project, assignment, learner, submission,
            submission_sha256, attempt, status, points, max_points, result_json)
    UNIQUE (learner, assignment, submission_sha256, attempt)

Append-only in both engines: the database itself refuses ``UPDATE`` and
``DELETE`` (SQLite triggers; on PostgreSQL a trigger function that also refuses
``TRUNCATE``), so a bug or a stray script cannot rewrite history. Grading the
same submission again adds a row with the next ``attempt``; :meth:`current`
reads the latest attempt of each submission, :meth:`graded` what a resumed
cohort run may skip.

Several processes may add at once (a Dask cohort writes from every worker).
The attempt number is allocated inside the inserting transaction (``BEGIN
IMMEDIATE`` on SQLite, which serialises writers, with WAL so readers never
wait); on PostgreSQL two writers that picked the same number collide on the
unique constraint and the loser retries, so no attempt is duplicated and no
row lost. A writer killed mid-transaction leaves nothing behind: its
transaction is rolled back.

Every operation opens its own connection and closes it (no pool): a store is
cheap to create, safe to pass to a forked or spawned worker, and leaves no
connection open behind it.

A SQLite file written by the first version of this module (no ``learner``,
``assignment`` or ``attempt`` columns) is migrated in place by ``ALTER TABLE
ADD COLUMN`` only: its rows are never rewritten. The new columns stay NULL in
those rows and are read as the submission name, the project, and the rank of
the row among the rows of its submission in id order.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import random
import sqlite3
import time
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import (
    URL,
    Column,
    Connection,
    Float,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    and_,
    create_engine,
    event,
    func,
    insert,
    inspect,
    make_url,
    select,
    text,
)
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError
from sqlalchemy.pool import NullPool

from grading.errors import GradingConfigError

__all__ = ["COLUMNS", "ResultsStore", "ResultsStoreError", "open_store"]

#: The columns of a row, in order.
COLUMNS = (
    "id",
    "graded_at",
    "project",
    "assignment",
    "learner",
    "submission",
    "submission_sha256",
    "attempt",
    "status",
    "points",
    "max_points",
    "result_json",
)

_FORMS = (
    "a SQLite file path (results.sqlite), sqlite:///ABSOLUTE/PATH, or "
    "postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
)
_APPEND_ONLY = "results are append-only"
#: How many times an add retries after losing an attempt number to another writer.
_ADD_TRIES = 100
#: The PostgreSQL advisory lock taken while the schema is created (any constant will do).
_SCHEMA_LOCK = zlib.crc32(b"fullcycle.grading.results")

_METADATA = MetaData()
_RESULTS = Table(
    "results",
    _METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("graded_at", Text, nullable=False),
    Column("project", Text, nullable=False),
    Column("assignment", Text, nullable=False),
    Column("learner", Text, nullable=False),
    Column("submission", Text, nullable=False),
    Column("submission_sha256", Text, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("status", Text, nullable=False),
    Column("points", Float, nullable=False),
    Column("max_points", Float, nullable=False),
    Column("result_json", Text, nullable=False),
    UniqueConstraint(
        "learner", "assignment", "submission_sha256", "attempt", name="results_one_attempt"
    ),
    sqlite_autoincrement=True,  # ids are never reused, even after a rolled-back insert
)
Index("results_submission", _RESULTS.c.submission_sha256)

_SQLITE_TRIGGERS = (
    "CREATE TRIGGER IF NOT EXISTS results_no_update BEFORE UPDATE ON results "
    f"BEGIN SELECT RAISE(ABORT, '{_APPEND_ONLY}'); END",
    "CREATE TRIGGER IF NOT EXISTS results_no_delete BEFORE DELETE ON results "
    f"BEGIN SELECT RAISE(ABORT, '{_APPEND_ONLY}'); END",
)
#: Columns the first version of this module did not have; added to such files, never filled in.
_SQLITE_MIGRATION = (
    "ALTER TABLE results ADD COLUMN assignment TEXT",
    "ALTER TABLE results ADD COLUMN learner TEXT",
    "ALTER TABLE results ADD COLUMN attempt INTEGER",
    "CREATE UNIQUE INDEX IF NOT EXISTS results_one_attempt "
    "ON results(learner, assignment, submission_sha256, attempt)",
)
_POSTGRES_TRIGGER = (
    "CREATE OR REPLACE FUNCTION results_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
    f"BEGIN RAISE EXCEPTION '{_APPEND_ONLY}: % on % refused', TG_OP, TG_TABLE_NAME; END $$",
    "CREATE TRIGGER results_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON results "
    "FOR EACH STATEMENT EXECUTE FUNCTION results_append_only()",
)


class ResultsStoreError(GradingConfigError):
    """The results store cannot be opened: a bad target, an unreachable server, no driver."""


def open_store(
    target: str | Path | URL, *, connect_timeout: float = 5, busy_timeout: float = 60
) -> ResultsStore:
    """Open (and create or migrate, if needed) the results store at ``target``.

    Parameters
    ----------
    target : str, Path or sqlalchemy.URL
        A SQLite file path (its folder is created), ``sqlite:///PATH``, or
        ``postgresql://...`` / ``postgresql+psycopg://...`` (plain
        ``postgresql://`` is driven by psycopg 3).
    connect_timeout : float
        Seconds to wait for a PostgreSQL server before giving up (at least 2).
    busy_timeout : float
        Seconds a SQLite writer waits for another writer before giving up.

    Returns
    -------
    ResultsStore

    Raises
    ------
    ResultsStoreError
        If the target is not a supported URL or path, the server cannot be
        reached, the driver is missing, or the database holds a ``results``
        table of another shape. The message names the target and the fix.
    """
    return ResultsStore(target, connect_timeout=connect_timeout, busy_timeout=busy_timeout)


class ResultsStore:
    """One row per graded attempt; see the module docstring.

    Parameters
    ----------
    target, connect_timeout, busy_timeout
        As for :func:`open_store`.

    Attributes
    ----------
    dialect : str
        ``"sqlite"`` or ``"postgresql"``.

    Examples
    --------
    >>> store = open_store("instructor/results.sqlite")  # doctest: +SKIP
    >>> row_id, attempt = store.add(result)  # the dict grade() returns  # doctest: +SKIP
    >>> latest = store.current(assignment="capstone")  # doctest: +SKIP
    """

    def __init__(
        self, target: str | Path | URL, *, connect_timeout: float = 5, busy_timeout: float = 60
    ):
        self._url = _url_of(target)
        self.dialect = self._url.get_backend_name()
        self._engine = _engine(self._url, connect_timeout, busy_timeout)
        self._legacy = False
        self._prepare()

    # ---- reading ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The store's URL, its password masked."""
        return self._url.render_as_string(hide_password=True)

    def rows(self, **filters) -> list[dict]:
        """Every row, oldest first, as dicts of :data:`COLUMNS`; ``filters`` are column=value.

        A filter whose value is None is ignored. ``result_json`` is the JSON text
        of the result as stored.
        """
        view = self._view()
        query = select(view).where(*self._where(view, filters)).order_by(view.c.id)
        with self._transaction() as db:
            return [dict(r) for r in db.execute(query).mappings()]

    def current(self, assignment: str | None = None, project: str | None = None) -> list[dict]:
        """The latest attempt of each (learner, assignment, submission_sha256), oldest first."""
        view = self._view()
        where = self._where(view, {"assignment": assignment, "project": project})
        key = (view.c.learner, view.c.assignment, view.c.submission_sha256)
        latest = (
            select(*key, func.max(view.c.attempt).label("attempt"))
            .where(*where)
            .group_by(*key)
            .subquery("latest")
        )
        query = (
            select(view)
            .join(
                latest,
                and_(
                    view.c.learner == latest.c.learner,
                    view.c.assignment == latest.c.assignment,
                    view.c.submission_sha256 == latest.c.submission_sha256,
                    view.c.attempt == latest.c.attempt,
                ),
            )
            .where(*where)
            .order_by(view.c.id)
        )
        with self._transaction() as db:
            return [dict(r) for r in db.execute(query).mappings()]

    def graded(self, assignment: str) -> set[tuple[str, str]]:
        """The (learner, submission_sha256) pairs of ``assignment`` that have a result.

        Any status counts: a submission that crashed, timed out or was rejected
        has its result, and a resumed run does not grade it again.
        """
        view = self._view()
        query = (
            select(view.c.learner, view.c.submission_sha256)
            .where(view.c.assignment == assignment)
            .distinct()
        )
        with self._transaction() as db:
            return {(learner, sha) for learner, sha in db.execute(query)}

    def count(self, **filters) -> int:
        """How many rows (attempts) there are, all or those matching column=value ``filters``."""
        view = self._view()
        query = select(func.count()).select_from(view).where(*self._where(view, filters))
        with self._transaction() as db:
            return int(db.execute(query).scalar_one())

    # ---- writing ----------------------------------------------------------------------------

    def add(self, result: Mapping) -> tuple[int, int]:
        """Append one graded result (the dict ``grade()`` writes to result.json).

        The learner is ``result["submission"]["learner"]``, else the submission's
        name; the assignment is ``result["submission"]["assignment"]``, else the
        project. The attempt is one more than the highest attempt of that
        (learner, assignment, submission_sha256).

        Returns
        -------
        (int, int)
            The new row's id and its attempt number.
        """
        values = _values(result)
        view = self._view()
        next_attempt = select(func.coalesce(func.max(view.c.attempt), 0) + 1).where(
            view.c.learner == values["learner"],
            view.c.assignment == values["assignment"],
            view.c.submission_sha256 == values["submission_sha256"],
        )
        for tries in range(1, _ADD_TRIES + 1):
            try:
                with self._transaction(write=True) as db:
                    attempt = int(db.execute(next_attempt).scalar_one())
                    row = db.execute(insert(_RESULTS).values(**values, attempt=attempt))
                    return int(row.inserted_primary_key[0]), attempt
            except IntegrityError as exc:  # another writer took this attempt number first
                if not _is_unique_violation(exc) or tries == _ADD_TRIES:
                    raise
                time.sleep(random.uniform(0, 0.002 * min(tries, 20)))
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        """Release the engine (no connection outlives an operation anyway)."""
        self._engine.dispose()

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ResultsStore({self.url!r})"

    # ---- internals --------------------------------------------------------------------------

    @property
    def _place(self) -> str:
        """Where the store is, for messages: its file, or its URL without the password."""
        return self._url.database if self.dialect == "sqlite" else self.url

    @contextmanager
    def _transaction(self, write: bool = False) -> Iterator[Connection]:
        with self._engine.connect() as db:
            if write:
                db = db.execution_options(fullcycle_write=True)
            with db.begin():
                yield db

    def _where(self, view, filters: Mapping) -> list:
        unknown = sorted(set(filters) - set(COLUMNS))
        if unknown:
            raise ValueError(
                f"unknown results column(s) {unknown}; filter on one of {', '.join(COLUMNS)}"
            )
        return [view.c[name] == value for name, value in filters.items() if value is not None]

    def _view(self):
        """The results table, or for a migrated old file, its rows with the new columns derived."""
        t = _RESULTS
        if not self._legacy:
            return t
        learner = func.coalesce(t.c.learner, t.c.submission)
        assignment = func.coalesce(t.c.assignment, t.c.project)
        # Old rows precede every new row of their submission, so their rank in id order is
        # their attempt, and new rows (attempt set) continue after them.
        rank = func.row_number().over(
            partition_by=(learner, assignment, t.c.submission_sha256), order_by=t.c.id
        )
        derived = {
            "learner": learner,
            "assignment": assignment,
            "attempt": func.coalesce(t.c.attempt, rank),
        }
        return select(*(derived.get(c, t.c[c]).label(c) for c in COLUMNS)).subquery("results")

    def _prepare(self) -> None:
        try:
            with self._transaction(write=True) as db:
                if self.dialect == "postgresql":
                    db.execute(select(func.pg_advisory_xact_lock(_SCHEMA_LOCK)))
                    self._create_postgres(db)
                else:
                    self._create_sqlite(db)
        except DBAPIError as exc:
            raise ResultsStoreError(_unusable(self._place, exc)) from exc

    def _create_postgres(self, db: Connection) -> None:
        if not inspect(db).has_table("results"):
            _METADATA.create_all(db)
            for statement in _POSTGRES_TRIGGER:  # text() escapes RAISE's % for psycopg
                db.execute(text(statement))
        else:
            self._check_columns({c["name"] for c in inspect(db).get_columns("results")})

    def _create_sqlite(self, db: Connection) -> None:
        def columns():
            return db.exec_driver_sql("PRAGMA table_info(results)").mappings().all()

        info = columns()
        if not info:
            _METADATA.create_all(db)
        elif {"learner", "assignment", "attempt"}.isdisjoint(r["name"] for r in info):
            self._check_columns({r["name"] for r in info} | {"learner", "assignment", "attempt"})
            for statement in _SQLITE_MIGRATION:
                db.exec_driver_sql(statement)
        info = columns()
        self._check_columns({r["name"] for r in info})
        for statement in _SQLITE_TRIGGERS:
            db.exec_driver_sql(statement)
        # Only a migrated file has a nullable attempt column (and old rows to derive).
        self._legacy = not next(r["notnull"] for r in info if r["name"] == "attempt")

    def _check_columns(self, have: set[str]) -> None:
        missing = [c for c in COLUMNS if c not in have]
        if missing:
            raise ResultsStoreError(
                f"{self._place} has a 'results' table without the column(s) {', '.join(missing)}: "
                "it is not a fullcycle results store. Point results_store in the grading config "
                "at a new file or database, or move that table away."
            )


# ---- helpers ------------------------------------------------------------------------------


def _url_of(target: str | Path | URL) -> URL:
    """The SQLAlchemy URL of a store target, with psycopg 3 as the PostgreSQL driver."""
    if isinstance(target, Path) or (isinstance(target, str) and "://" not in target):
        if str(target).strip() in ("", ":memory:"):
            raise ResultsStoreError(
                f"results store {str(target)!r} is not a file: a results store must outlive "
                f"the grading run. Give {_FORMS}."
            )
        path = Path(target).expanduser().absolute()
        return URL.create("sqlite", database=str(path))
    try:
        url = target if isinstance(target, URL) else make_url(target)
    except (ArgumentError, ValueError) as exc:
        raise ResultsStoreError(
            f"results store {_masked(str(target))!r} is not a database URL ({exc}). Give {_FORMS}."
        ) from None
    backend, driver = url.get_backend_name(), url.get_driver_name()
    if backend == "sqlite":
        if url.database in (None, "", ":memory:"):
            raise ResultsStoreError(
                f"results store {url.render_as_string()!r} names no file: a results store must "
                "outlive the grading run. Write sqlite:///ABSOLUTE/PATH (three slashes, then "
                "the path) or just the path."
            )
        if driver != "pysqlite":
            raise ResultsStoreError(
                f"results store {url.render_as_string()!r}: the SQLite driver {driver!r} is not "
                "supported; write sqlite:///PATH (Python's own sqlite3)."
            )
        return url.set(drivername="sqlite")
    if backend == "postgresql":
        if url.drivername != "postgresql" and driver != "psycopg":
            raise ResultsStoreError(
                f"results store {url.render_as_string(hide_password=True)!r}: the PostgreSQL "
                f"driver {driver!r} is not supported; write postgresql://... (psycopg 3)."
            )
        return url.set(drivername="postgresql+psycopg")
    raise ResultsStoreError(
        f"results store {url.render_as_string(hide_password=True)!r}: {backend!r} databases are "
        f"not supported. Give {_FORMS}."
    )


def _engine(url: URL, connect_timeout: float, busy_timeout: float):
    if url.get_backend_name() == "sqlite":
        path = Path(url.database)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ResultsStoreError(
                f"cannot create the folder of the results store {path} ({exc.strerror}); "
                "point results_store in the grading config at a writable place."
            ) from None
        if not path.exists():  # readable by the grader only: results name every learner
            with contextlib.suppress(OSError):
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        engine = create_engine(url, poolclass=NullPool, connect_args={"timeout": busy_timeout})
        event.listen(engine, "connect", functools.partial(_sqlite_connect, wait=busy_timeout))
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    try:
        return create_engine(
            url,
            poolclass=NullPool,
            connect_args={
                "connect_timeout": max(2, round(connect_timeout)),
                "application_name": "fullcycle-grader",
            },
        )
    except ImportError as exc:
        raise ResultsStoreError(
            f"results store {url.render_as_string(hide_password=True)!r} needs the PostgreSQL "
            f"driver psycopg 3, which is not installed ({exc}); install it with "
            "`pip install 'psycopg[binary]'`."
        ) from None


def _sqlite_connect(dbapi_connection, _record, *, wait: float) -> None:
    # SQLAlchemy emits BEGIN itself (see _sqlite_begin), so that DDL is transactional and a
    # writer can take the write lock up front; WAL lets readers run beside a writer.
    dbapi_connection.isolation_level = None
    # WAL is kept in the file once set. Switching to it needs the file to itself, and SQLite
    # answers "database is locked" at once, without its busy handler, to a connection that
    # meets another one switching it (several graders opening a new store together): wait
    # for the switch as a writer waits for the lock.
    deadline = time.monotonic() + wait
    while True:
        try:
            if dbapi_connection.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                dbapi_connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02 + 0.03 * random.random())


def _sqlite_begin(db: Connection) -> None:
    # A writer locks the file when it begins, so the attempt it reads is still the highest
    # when it inserts; waiting writers queue on the busy timeout.
    write = db.get_execution_options().get("fullcycle_write", False)
    db.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _values(result: Mapping) -> dict:
    try:
        submission = result["submission"]
        values = {
            "graded_at": str(result["graded_at"]),
            "project": str(result["project"]),
            "submission": str(submission["name"]),
            "submission_sha256": str(submission["sha256"]),
            "status": str(result["status"]),
            "points": float(result["score"]["points"]),
            "max_points": float(result["score"]["max_points"]),
        }
    except (KeyError, TypeError) as exc:
        raise ValueError(
            f"a result to store needs graded_at, project, status, submission.name, "
            f"submission.sha256, score.points and score.max_points; missing {exc}. "
            "Store the dict grade() writes to result.json."
        ) from None
    values["learner"] = str(submission.get("learner") or values["submission"])
    values["assignment"] = str(submission.get("assignment") or values["project"])
    values["result_json"] = json.dumps(result, sort_keys=True)
    return values


def _is_unique_violation(exc: IntegrityError) -> bool:
    code = getattr(exc.orig, "sqlstate", None)  # psycopg
    return code == "23505" or "UNIQUE constraint failed" in str(exc.orig)


def _masked(text: str) -> str:
    """``text`` with the password of a URL-like string replaced by ***."""
    scheme, sep, rest = text.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not (sep and at and ":" in userinfo):
        return text
    return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{host}"


def _unusable(where: str, exc: DBAPIError) -> str:
    detail = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc.orig)
    if "://" in where:
        fix = (
            "Start the server (or check host, port, user, password and database in the URL of "
            "results_store in the grading config), or use a SQLite file instead."
        )
    else:
        fix = "Point results_store in the grading config at a new file, or move this one away."
    return f"cannot use the results store {where}: {detail}. {fix}"
