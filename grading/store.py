"""The results store: one SQLite file, one row per graded run, never rewritten."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

__all__ = ["ResultsStore"]

_SCHEMA = """
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


class ResultsStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(_SCHEMA)

    def _connect(self):
        db = sqlite3.connect(self.path, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    def add(self, result: dict) -> int:
        with self._connect() as db:
            cur = db.execute(
                "INSERT INTO results (graded_at, project, submission, submission_sha256, status,"
                " points, max_points, result_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    result["graded_at"],
                    result["project"],
                    result["submission"]["name"],
                    result["submission"]["sha256"],
                    result["status"],
                    result["score"]["points"],
                    result["score"]["max_points"],
                    json.dumps(result, sort_keys=True),
                ),
            )
            return int(cur.lastrowid)

    def rows(self) -> list[dict]:
        with self._connect() as db:
            db.row_factory = sqlite3.Row
            return [dict(r) for r in db.execute("SELECT * FROM results ORDER BY id")]
