"""Shared fixtures: small simulated data, the reference kit, a temporary MLflow workspace."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fullcycle.data import simulate_transactions

from postgres import postgres_server, postgres_url  # noqa: F401  (a private PostgreSQL server)

REPO = Path(__file__).resolve().parent.parent
KIT_DIR = REPO / "starter_kits" / "fraud_detection"
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")

#: Test modules that run with no other test beside them (``make test`` runs the rest on two
#: pytest-xdist workers first): they grade with a service-latency bar the reference must meet,
#: run their own parallel workers (a Dask cluster, two nbgrader courses), or time a live replay.
ALONE = {
    "tests/grading/test_check.py",
    "tests/grading/test_cohort.py",
    "tests/grading/test_cohort_report.py",
    "tests/grading/test_fraud_grading.py",
    "tests/grading/test_gradebook.py",
    "tests/grading/test_ranking_project.py",
    "tests/grading/test_recommender_grading.py",
    "tests/integration/test_course.py",
    "tests/integration/test_lab.py",
    "tests/integration/test_live.py",
    "tests/integration/test_live_recommender.py",
    "tests/integration/test_notebooks.py",
    "tests/integration/test_recommender_service.py",
    "tests/integration/test_release.py",
    "tests/integration/test_service_process.py",
    "tests/integration/test_serving.py",
}


def pytest_collection_modifyitems(config, items):
    """Mark the tests of :data:`ALONE`'s modules ``alone`` (a renamed module must be renamed
    there too: the run stops)."""
    missing = sorted(m for m in ALONE if not (REPO / m).is_file())
    if missing:
        raise pytest.UsageError(
            f"tests/conftest.py ALONE names modules that are not there: {missing}"
        )
    for item in items:
        if Path(item.path).resolve().relative_to(REPO).as_posix() in ALONE:
            item.add_marker(pytest.mark.alone)


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def fraud_kit():
    """The reference fraud kit, its modules loaded by path (``fraud_kit.module("features")``)."""
    from fullcycle.kit import Kit

    return Kit(KIT_DIR)


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


class World:
    """A small labelled world for serving tests: split, the kit's fitted features, a model."""

    DELAY_DAYS = 7

    def __init__(self, sim, split, features, model):
        self.sim, self.split, self.features, self.model = sim, split, features, model
        self.X_train = features.transform(split.train)
        self.X_test = features.transform(split.test)


def make_world(
    seed=5, n_days=50, scenarios=(1, 2, 3), card_testing_start_day=None, max_iter=60, kit=None
):
    """Simulate, split (train days 30-36, 7-day delay, scoring days 44-46), fit the kit's
    features on the history and a small gradient-boosting model on the training days."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    from fullcycle.data import time_split, typed_transactions
    from fullcycle.kit import Kit

    kit = kit or Kit(KIT_DIR)
    sim = simulate_transactions(
        n_customers=300,
        n_terminals=600,
        n_days=n_days,
        seed=seed,
        scenarios=scenarios,
        card_testing_start_day=card_testing_start_day,
    )
    valid = typed_transactions(sim.transactions)  # the simulator's output is clean
    delay = World.DELAY_DAYS
    split = time_split(valid, train_start_day=30, train_days=7, delay_days=delay, test_days=3)
    features = kit.build_features(delay).fit(split.history, split.history["TX_FRAUD"])
    world = World(sim, split, features, None)
    world.model = HistGradientBoostingClassifier(
        max_iter=max_iter, max_leaf_nodes=15, random_state=0
    ).fit(world.X_train, split.train["TX_FRAUD"])
    return world


@pytest.fixture(scope="session")
def world(fraud_kit):
    """300 cards over 50 days; train days 30-36, 7-day delay, scoring days 44-46."""
    return make_world(kit=fraud_kit)


def warm_state(kit, state_dir, history, delay_days=World.DELAY_DAYS) -> int:
    """Warm-start the kit's online state in ``state_dir`` with ``history``; rows added."""
    online = kit.entry("online").open(Path(state_dir) / "state.sqlite", delay_days)
    try:
        return online.warm_start(history)
    finally:
        online.store.close()


def payload(row) -> dict:
    """One scoring row (a namedtuple of ``itertuples``) as the service's JSON request body."""
    return {
        "transaction_id": int(row.TRANSACTION_ID),
        "tx_datetime": row.TX_DATETIME.isoformat(),
        "customer_id": int(row.CUSTOMER_ID),
        "terminal_id": int(row.TERMINAL_ID),
        "tx_amount": float(row.TX_AMOUNT),
    }


def register_world_model(world, workspace, name="fraud_detection", metrics=None, kit=None):
    """Log and register ``world.model`` as ``name@champion`` in ``workspace``'s MLflow store, and
    warm-start the served state (where ``fullcycle serve`` looks for it) with the history."""
    from fullcycle import tracking
    from fullcycle.kit import Kit
    from fullcycle.serving import service_paths
    from fullcycle.spec import find_project

    exp = tracking.setup_tracking(workspace, name)
    run_id, uri = tracking.log_model_run(
        experiment_id=exp,
        model=world.model,
        input_example=world.X_train,
        params={"test": True},
        metrics=metrics or {"roc_auc": 0.9},
        tags={"data_fingerprint": tracking.data_fingerprint(world.split.history)},
    )
    tracking.register_champion(uri, name, run_id)
    spec = find_project(name, search_root=REPO)
    assert spec.data.split.delay_days == World.DELAY_DAYS, "the world's delay is the project's"
    state_path, _ = service_paths(spec, workspace)
    warm_state(kit or Kit(KIT_DIR), state_path.parent, world.split.history)
    return run_id


@pytest.fixture(scope="session")
def learner_release(tmp_path_factory):
    """(files written, folder) of one learner release of this repository, without check figures.

    Shared by the tests that grade a released (stubbed) kit: they only read it.
    """
    from grading import release

    folder = tmp_path_factory.mktemp("learner-release") / "release"
    return release(REPO, folder, check_scales=()), folder


@pytest.fixture(scope="session")
def ranking_env(tmp_path_factory):
    """(spec, config path, instructor folder) for the grader's tiny ranking fixture project."""
    import sys

    from fullcycle.spec import load_spec

    sys.path.insert(0, str(REPO / "tests" / "grading"))
    import ranking

    root = tmp_path_factory.mktemp("instructor")
    holdout = ranking.write_holdout(root / "hidden")
    spec = load_spec(ranking.write_project(root / "project"))
    config = ranking.write_config(root, holdout)
    return spec, config, root


def live_descendants() -> set[int]:
    """Pids of this process's live descendants (an exited, unreaped one is no process left)."""
    import psutil

    out = set()
    for p in psutil.Process().children(recursive=True):
        try:
            if p.status() != psutil.STATUS_ZOMBIE:
                out.add(p.pid)
        except psutil.NoSuchProcess:
            continue
    return out
