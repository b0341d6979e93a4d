"""Shared fixtures: small simulated data and a temporary MLflow workspace."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fullcycle.data import simulate_transactions

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def small_sim():
    """300 cards, 600 terminals, 60 days: about 36,000 transactions."""
    return simulate_transactions(n_customers=300, n_terminals=600, n_days=60, seed=11)


@pytest.fixture
def small_tx(small_sim):
    return small_sim.transactions.copy()


@pytest.fixture
def clean_mlflow_env(monkeypatch):
    """No tracking URI from the outside world leaks into a test."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    yield
    import mlflow

    if mlflow.active_run():
        mlflow.end_run()
