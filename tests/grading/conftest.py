"""Fixtures of the grading tests: a private PostgreSQL server for the results store."""

from postgres import postgres_server, postgres_url  # noqa: F401
