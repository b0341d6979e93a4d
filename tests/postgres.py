"""A throwaway PostgreSQL server for tests: Debian's binaries, a Unix socket only, stopped after.

Import the fixtures into a ``conftest.py`` to use them::

    from postgres import postgres_server, postgres_url  # noqa: F401

``postgres_server`` (session) runs ``initdb`` into a fresh folder under /tmp,
starts the server listening on a Unix socket in that folder and on no TCP port
(``fsync`` off: the data is thrown away), and stops it with ``pg_ctl stop -m
fast`` at the end of the session, then checks that no process of it is left.
``postgres_server.create_database()`` gives a test its own empty database;
``postgres_url`` is the SQLAlchemy URL of one database shared by the session.

PostgreSQL refuses to run as root: as root, ``initdb`` and ``pg_ctl`` run as
the ``postgres`` system user that Debian's package creates. Missing binaries
fail the tests that need them, with the command that installs them.
"""

from __future__ import annotations

import itertools
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import psutil
import pytest

__all__ = ["INSTALL", "PostgresServer", "find_bindir", "postgres_server", "postgres_url"]

INSTALL = "sudo apt-get install -y postgresql"
#: The system user the server runs as when the tests run as root.
SERVER_USER = "postgres"
SUPERUSER = "postgres"


def find_bindir(debian: str | Path = "/usr/lib/postgresql") -> Path:
    """The folder holding ``initdb`` and ``pg_ctl``: Debian's newest (``debian/*/bin``), else
    the PATH's; FileNotFoundError naming the install command if there is none."""

    def version(bindir: Path) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", bindir.parent.name))

    versions = sorted(Path(debian).glob("*/bin"), key=version, reverse=True)
    on_path = [Path(p).parent for p in [shutil.which("initdb")] if p]
    for bindir in [*versions, *on_path]:
        if all(os.access(bindir / tool, os.X_OK) for tool in ("initdb", "pg_ctl", "postgres")):
            return bindir
    raise FileNotFoundError(
        f"PostgreSQL's server programs (initdb, pg_ctl) are not in {debian}/*/bin "
        f"nor on PATH; the PostgreSQL tests need them. Install them with `{INSTALL}`."
    )


class PostgresServer:
    """A private PostgreSQL server in ``root`` (data in ``root/data``, socket in ``root``).

    Parameters
    ----------
    root : Path
        An empty folder with a short path (a Unix socket path is at most 107 bytes).
    bindir : Path, optional
        Where ``initdb`` and ``pg_ctl`` are; :func:`find_bindir` by default.
    """

    def __init__(self, root: Path, bindir: Path | None = None):
        self.root = Path(root)
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.bindir = bindir or find_bindir()
        self.pid: int | None = None
        self._databases = itertools.count(1)
        self._prefix: list[str] = []
        if os.geteuid() == 0:
            self._prefix = _as_user(SERVER_USER)
            user = pwd.getpwnam(SERVER_USER)
            os.chown(self.root, user.pw_uid, user.pw_gid)
        os.chmod(self.root, 0o700)

    def start(self) -> PostgresServer:
        """``initdb`` and start the server; wait until it accepts connections."""
        self._run("initdb", "-D", self.data, "-U", SUPERUSER, "-A", "trust", "-E", "UTF8",
                  "--locale=C", "--no-sync")  # fmt: skip
        options = (
            f"-c listen_addresses='' -c unix_socket_directories='{self.root}' "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=50"
        )
        self._run("pg_ctl", "-D", self.data, "-l", self.log, "-o", options, "-w", "-t", "30",
                  "start")  # fmt: skip
        self.pid = int((self.data / "postmaster.pid").read_text().split()[0])
        return self

    def stop(self) -> None:
        """``pg_ctl stop -m fast``; assert that no process of this server is left."""
        pidfile = self.data / "postmaster.pid"
        if self.pid is None and pidfile.exists():  # a start that failed half-way
            self.pid = int(pidfile.read_text().split()[0])
        if self.pid is None:
            return
        try:
            family = [psutil.Process(self.pid), *psutil.Process(self.pid).children(True)]
        except psutil.NoSuchProcess:
            family = []
        try:
            self._run("pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t", "30", "stop")
        finally:
            gone, alive = psutil.wait_procs(family, timeout=10)
            for proc in alive:  # a failed stop must not leave a server behind either
                proc.kill()
            self.pid = None
        assert not alive, f"PostgreSQL processes left after pg_ctl stop: {alive}"
        assert not pidfile.exists(), f"the server in {self.data} did not shut down"

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy URL of ``database`` on this server (psycopg 3, over the socket)."""
        return f"postgresql+psycopg://{SUPERUSER}@/{database}?host={self.root}"

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database (``test_1``, ``test_2``... by default); return its URL."""
        import psycopg

        name = name or f"test_{next(self._databases)}"
        with psycopg.connect(
            host=str(self.root), user=SUPERUSER, dbname="postgres", autocommit=True
        ) as db:
            db.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def _run(self, tool: str, *args) -> None:
        command = [*self._prefix, str(self.bindir / tool), *map(str, args)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        done = subprocess.run(
            command, cwd=self.root, env=env, capture_output=True, text=True, timeout=120
        )
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise RuntimeError(
                f"`{' '.join(command)}` failed ({done.returncode}):\n{done.stdout}{done.stderr}"
                f"\nserver log:\n{log}"
            )


def _as_user(user: str) -> list[str]:
    """The command prefix that runs a program as ``user`` (the tests run as root)."""
    try:
        pwd.getpwnam(user)
    except KeyError:
        pytest.fail(
            f"PostgreSQL refuses to run as root and there is no {user!r} system user to run it "
            f"as; Debian's package creates it: `{INSTALL}`, or run the tests as a normal user.",
            pytrace=False,
        )
    if shutil.which("runuser"):
        return ["runuser", "-u", user, "--"]
    return ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--"]


@pytest.fixture(scope="session")
def postgres_server():
    """A running private PostgreSQL server for the session; stopped and checked at the end."""
    try:
        bindir = find_bindir()
    except FileNotFoundError as exc:
        pytest.fail(str(exc), pytrace=False)
    # Under /tmp, not pytest's tmp_path: the socket path must be short, and as root the
    # server user must be able to reach the folder (pytest's base folder is private).
    root = Path(tempfile.mkdtemp(prefix="fullcycle-pg-", dir="/tmp"))
    server = PostgresServer(root, bindir)
    try:
        server.start()
        yield server
    finally:
        try:
            server.stop()
        finally:
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url(postgres_server) -> str:
    """The SQLAlchemy URL of an empty database on the session's server."""
    return postgres_server.create_database("fullcycle")
