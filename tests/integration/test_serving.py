"""The kit's scoring service in process (TestClient): parity with the kit's offline features,
labels after the delay, bad input, duplicates, the log, health and model metadata."""

from __future__ import annotations

import importlib
import json
import math
import os
import sqlite3
import sys

import joblib
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from fullcycle.data import save_transactions
from fullcycle.exceptions import ConfigError
from fullcycle.serving import ModelBundle, read_log

from conftest import KIT_DIR, payload

#: The kit's modules, which import each other by these plain names.
KIT_MODULES = sorted(p.stem for p in KIT_DIR.glob("*.py"))


@pytest.fixture(scope="module")
def kit_service():
    """The kit's ``service`` module, imported by plain name with the kit folder on the path (as
    ``uvicorn --app-dir <kit> service:create_app`` does); the plain names are forgotten after."""
    saved = {n: sys.modules.pop(n) for n in KIT_MODULES if n in sys.modules}
    with pytest.MonkeyPatch.context() as mp:
        for name in [k for k in os.environ if k.startswith("FULLCYCLE_")]:
            mp.delenv(name)  # Settings read FULLCYCLE_*: nothing from outside the test
        mp.syspath_prepend(str(KIT_DIR))
        try:
            yield importlib.import_module("service")
        finally:
            for n in KIT_MODULES:
                sys.modules.pop(n, None)
            sys.modules.update(saved)


@pytest.fixture(scope="module")
def feature_names(kit_service) -> list[str]:
    """The kit's ``FEATURES``: what the service computes, in order."""
    return kit_service.FEATURES


def bundle_of(world) -> ModelBundle:
    return ModelBundle.from_model(world.model, name="fraud_test", version="7")


def build(kit_service, world, state_dir, history=None, **settings):
    """The kit's app on a state in ``state_dir`` warm-started with ``history`` (None: cold)."""
    if history is not None:
        warm_state_of(kit_service, state_dir, history)
    config = kit_service.Settings(state_dir=state_dir, delay_days=7, **settings)
    return kit_service.create_app(config, bundle=bundle_of(world))


def warm_state_of(kit_service, state_dir, history) -> int:
    online = kit_service.OnlineFeatures.open(state_dir / "state.sqlite", 7)
    try:
        return online.warm_start(history)
    finally:
        online.store.close()


def in_arrival_order(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["TX_DATETIME", "TRANSACTION_ID"], kind="stable")


@pytest.fixture
def client(kit_service, world, tmp_path):
    """A service with a cold state (most checks need no history)."""
    with TestClient(build(kit_service, world, tmp_path), raise_server_exceptions=False) as c:
        yield c


@pytest.mark.parametrize("mode", ["single", "batch"])
def test_does_replaying_a_scoring_day_give_the_offline_features_and_scores(
    kit_service, feature_names, world, tmp_path, mode
):
    """The first scoring day, one request at a time or in shuffled batches: the online features
    equal the kit's offline ones to 1e-9, the scores the offline model's, the log what was served."""
    test = world.split.test
    day = in_arrival_order(test[test["TX_TIME_DAYS"] == test["TX_TIME_DAYS"].min()])
    offline_scores = world.model.predict_proba(world.X_test)[:, 1]
    app = build(kit_service, world, tmp_path, world.split.history)
    got = []
    with TestClient(app) as c:
        if mode == "single":
            for r in day.itertuples():
                reply = c.post("/v1/score?include_features=true", json=payload(r))
                assert reply.status_code == 200, reply.text
                got.append(reply.json())
        else:
            # Batches arrive in time order; inside a batch the order does not matter.
            for start in range(0, len(day), 100):
                chunk = day.iloc[start : start + 100].sample(frac=1.0, random_state=start)
                reply = c.post(
                    "/v1/score/batch?include_features=true",
                    json={"transactions": [payload(x) for x in chunk.itertuples()]},
                )
                assert reply.status_code == 200, reply.text
                scores = reply.json()["scores"]
                assert [s["transaction_id"] for s in scores] == chunk["TRANSACTION_ID"].tolist()
                got += scores
        health = c.get("/health").json()
    assert len(got) == len(day) > 250
    assert not any(g["duplicate"] for g in got)
    ids = [g["transaction_id"] for g in got]
    pos = pd.Index(test["TRANSACTION_ID"]).get_indexer(ids)
    online = np.array([[g["features"][n] for n in feature_names] for g in got])
    np.testing.assert_allclose(online, world.X_test.to_numpy()[pos], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose([g["score"] for g in got], offline_scores[pos], rtol=0, atol=1e-9)
    # The windows were not trivially empty: history, labels and the day itself all count.
    col = {n: online[:, i] for i, n in enumerate(feature_names)}
    assert col["TERMINAL_ID_NB_TX_7DAY_WINDOW"].mean() > 1
    assert col["TERMINAL_ID_RISK_30DAY_WINDOW"].max() > 0
    assert col["CUSTOMER_ID_NB_TX_30DAY_WINDOW"].min() >= 1
    # The log holds what was served, features included, and /health counts it.
    log = read_log(tmp_path / "predictions.sqlite")
    assert len(log) == len(got) == health["logged"]
    logged = log.set_index("TRANSACTION_ID").loc[ids]
    np.testing.assert_allclose(logged[feature_names].to_numpy(), online, rtol=0, atol=0)
    np.testing.assert_allclose(logged["score"], [g["score"] for g in got], rtol=0, atol=0)
    assert (logged["model_version"] == "7").all()
    assert (logged["latency_ms"] > 0).all()


def test_does_the_graders_configuration_serve_a_handed_over_model(kit_service, world, tmp_path):
    """``model_dir`` (a notebook's model.joblib) and ``train_path`` (labelled history, through
    the kit's data contract): the state is warm-started once, the first score is the offline one."""
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    joblib.dump({"model": world.model}, model_dir / "model.joblib")
    history = save_transactions(world.split.history, tmp_path / "history.parquet")
    config = kit_service.Settings(model_dir=model_dir, train_path=history, delay_days=7)
    first = in_arrival_order(world.split.test).iloc[0]
    want = world.model.predict_proba(world.X_test.loc[[first.name]])[0, 1]
    with TestClient(kit_service.create_app(config)) as c:
        assert c.get("/v1/model").json()["name"] == "submission"
        rows = c.get("/health").json()["state_rows"]
        r = c.post("/v1/score", json=payload(first))
        assert r.status_code == 200, r.text
        assert r.json()["score"] == pytest.approx(want, abs=1e-9)
    assert (model_dir / "service" / "state.sqlite").is_file()
    # A history a window can still reach (37 days before its newest row) was loaded.
    t = world.split.history["TX_DATETIME"]
    assert rows == int((t > t.max() - pd.Timedelta(days=37)).sum()) > 10_000
    # A restart on the same state does not load the history a second time.
    with TestClient(kit_service.create_app(config)) as c:
        assert c.get("/health").json()["state_rows"] == rows + 1


def test_is_a_state_built_for_another_delay_refused(kit_service, world, tmp_path):
    warm_state_of(kit_service, tmp_path, world.split.history.tail(10))
    config = kit_service.Settings(state_dir=tmp_path, delay_days=3)
    with pytest.raises(ConfigError, match="built with settings"):
        kit_service.create_app(config, bundle=bundle_of(world))


def test_do_labels_reach_terminal_risk_only_after_the_delay(kit_service, world, tmp_path):
    """A fraud reported on a terminal raises its risk for transactions 7+ days later, not before;
    the label also reaches the prediction log."""
    with TestClient(build(kit_service, world, tmp_path)) as c:
        base = {"customer_id": 1, "terminal_id": 42, "tx_amount": 10.0}
        first = c.post(
            "/v1/score", json={**base, "transaction_id": 1, "tx_datetime": "2018-01-01T10:00:00"}
        ).json()
        assert first["cold_card"] is True and first["cold_terminal"] is True
        r = c.post("/v1/labels", json={"labels": [{"transaction_id": 1, "fraud": 1}]})
        assert r.status_code == 200 and r.json()["updated"] == 1
        soon = c.post(
            "/v1/score?include_features=true",
            json={**base, "transaction_id": 2, "tx_datetime": "2018-01-05T10:00:00"},
        ).json()
        later = c.post(
            "/v1/score?include_features=true",
            json={**base, "transaction_id": 3, "tx_datetime": "2018-01-08T11:00:00"},
        ).json()
    assert soon["features"]["TERMINAL_ID_RISK_7DAY_WINDOW"] == 0.0
    assert soon["features"]["TERMINAL_ID_NB_TX_30DAY_WINDOW"] == 0.0
    assert soon["cold_terminal"] is True and soon["cold_card"] is False
    assert later["features"]["TERMINAL_ID_RISK_7DAY_WINDOW"] == 1.0
    assert later["features"]["TERMINAL_ID_RISK_1DAY_WINDOW"] == 1.0
    assert later["cold_terminal"] is False
    assert later["features"]["CUSTOMER_ID_NB_TX_7DAY_WINDOW"] == 2.0  # tx 2 and itself
    log = read_log(tmp_path / "predictions.sqlite").set_index("TRANSACTION_ID")
    assert log.loc[1, "TX_FRAUD"] == 1 and log.loc[[2, 3], "TX_FRAUD"].isna().all()


GOOD = {
    "transaction_id": 10**12,
    "tx_datetime": "2018-08-20T12:00:00",
    "customer_id": 3,
    "terminal_id": 4,
    "tx_amount": 12.5,
}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"tx_amount": None}, "tx_amount"),
        ({"tx_amount": "twelve"}, "tx_amount"),
        ({"tx_amount": -1.0}, "tx_amount"),
        ({"tx_amount": 1e12}, "tx_amount"),
        ({"customer_id": "abc"}, "customer_id"),
        ({"customer_id": 1.5}, "customer_id"),
        ({"terminal_id": -5}, "terminal_id"),
        ({"transaction_id": 2**70}, "transaction_id"),
        ({"tx_datetime": "yesterday"}, "tx_datetime"),
        ({"tx_datetime": "1950-01-01T00:00:00"}, "tx_datetime"),
        ({"tx_datetime": "2999-01-01T00:00:00"}, "tx_datetime"),
    ],
)
def test_is_bad_input_a_422_that_names_the_field(client, change, field):
    body = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    r = client.post("/v1/score", json=body)
    assert r.status_code == 422, r.text
    assert field in json.dumps(r.json()["detail"])
    # ...and inside a batch, the field is named with the position of the bad transaction.
    r = client.post("/v1/score/batch", json={"transactions": [{**GOOD, "transaction_id": 1}, body]})
    assert r.status_code == 422, r.text
    assert any(
        e["loc"][:2] == ["body", "transactions"] and str(e["loc"][2]) == "1" and field in e["loc"]
        for e in r.json()["detail"]
    ), r.text
    assert client.get("/health").json()["state_rows"] == 0  # nothing was stored


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_are_non_finite_amounts_refused(client, literal):
    raw = json.dumps(GOOD).replace("12.5", literal)
    r = client.post("/v1/score", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert "tx_amount" in r.text


def test_are_malformed_and_empty_bodies_refused(client):
    r = client.post("/v1/score", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422
    r = client.post(
        "/v1/score", content=b"\xff\xfe\x00", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and r.json()["detail"]
    r = client.post("/v1/score/batch", json={"transactions": []})
    assert r.status_code == 422 and "transactions" in r.text
    r = client.post("/v1/labels", json={"labels": [{"transaction_id": 1, "fraud": 2}]})
    assert r.status_code == 422 and "fraud" in r.text
    assert client.post("/v1/labels", json={"labels": []}).status_code == 422


def test_does_an_offset_timestamp_count_in_utc(client):
    """``07:30+02:00`` is 05:30 UTC: night, and the same second as ``05:30`` without offset."""
    r = client.post(
        "/v1/score?include_features=true",
        json={**GOOD, "tx_datetime": "2018-08-20T07:30:00+02:00"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["features"]["TX_DURING_NIGHT"] == 1.0
    again = client.post("/v1/score", json={**GOOD, "tx_datetime": "2018-08-20T05:30:00"})
    assert again.json()["duplicate"] is True  # same id, same instant: not a conflict


def test_are_oversized_requests_a_413_and_nothing_of_them_stored(kit_service, world, tmp_path):
    app = build(kit_service, world, tmp_path, max_batch=5, max_labels=3, max_body_bytes=5000)
    with TestClient(app) as c:
        txs = [{**GOOD, "transaction_id": i} for i in range(6)]
        r = c.post("/v1/score/batch", json={"transactions": txs})
        assert r.status_code == 413 and "limit of 5" in r.text
        big = [{**GOOD, "transaction_id": i} for i in range(100)]
        r = c.post("/v1/score/batch", json={"transactions": big})
        assert r.status_code == 413 and "limit of 5000" in r.text
        labels = [{"transaction_id": i, "fraud": 0} for i in range(4)]
        r = c.post("/v1/labels", json={"labels": labels})
        assert r.status_code == 413 and "limit of 3" in r.text
        assert c.get("/health").json()["state_rows"] == 0
        assert c.post("/v1/score/batch", json={"transactions": txs[:5]}).status_code == 200
        assert c.get("/health").json()["state_rows"] == 5


def test_does_an_unknown_card_and_terminal_score_with_stated_defaults(client, feature_names):
    r = client.post(
        "/v1/score?include_features=true", json={**GOOD, "customer_id": 10**9, "terminal_id": 10**9}
    )
    assert r.status_code == 200
    out = r.json()
    assert out["cold_card"] is True and out["cold_terminal"] is True
    assert list(out["features"]) == feature_names
    assert out["features"]["CUSTOMER_ID_NB_TX_1DAY_WINDOW"] == 1.0
    assert out["features"]["CUSTOMER_ID_AVG_AMOUNT_30DAY_WINDOW"] == GOOD["tx_amount"]
    assert out["features"]["CUSTOMER_ID_AMOUNT_RATIO_30DAY"] == 1.0
    assert out["features"]["TERMINAL_ID_NB_TX_30DAY_WINDOW"] == 0.0
    assert out["features"]["TERMINAL_ID_RISK_30DAY_WINDOW"] == 0.0
    assert 0.0 <= out["score"] <= 1.0
    assert "features" not in client.post("/v1/score", json={**GOOD, "transaction_id": 1}).json()


def test_is_a_repeated_transaction_idempotent_and_a_conflicting_one_a_409(
    kit_service, world, tmp_path
):
    """The same transaction again gets its first score (logged once); the same id with other
    fields, or an id of the warm-start history, is a 409; a failed batch stores nothing."""
    history = world.split.history.tail(50)
    with TestClient(build(kit_service, world, tmp_path, history)) as c:
        first = c.post("/v1/score", json=GOOD).json()
        again = c.post("/v1/score", json=GOOD).json()
        assert first["duplicate"] is False
        assert again["duplicate"] is True and again["score"] == first["score"]
        r = c.post("/v1/score", json={**GOOD, "tx_amount": 99.0})
        assert r.status_code == 409 and "transaction_id" in r.text
        r = c.post("/v1/score", json={**GOOD, "customer_id": 99})
        assert r.status_code == 409
        known = payload(next(history.itertuples()))
        r = c.post("/v1/score", json=known)
        assert r.status_code == 409 and "warm-start history" in r.text
        r = c.post("/v1/score/batch", json={"transactions": [GOOD, GOOD]})
        assert r.status_code == 422 and "repeated" in r.text
        # A batch whose second transaction conflicts: the first one is not kept either.
        fresh = {**GOOD, "transaction_id": 77, "tx_datetime": "2018-08-20T11:00:00"}
        conflict = {**GOOD, "tx_amount": 1.0}
        r = c.post("/v1/score/batch", json={"transactions": [fresh, conflict]})
        assert r.status_code == 409
        assert c.get("/health").json()["state_rows"] == len(history) + 1
        assert c.post("/v1/score", json=fresh).json()["duplicate"] is False
    assert len(read_log(tmp_path / "predictions.sqlite")) == 2  # GOOD once, then `fresh`


def test_are_labels_for_unknown_transactions_reported(client):
    client.post("/v1/score", json=GOOD)
    r = client.post(
        "/v1/labels",
        json={
            "labels": [
                {"transaction_id": GOOD["transaction_id"], "fraud": 1},
                {"transaction_id": 5, "fraud": 0},
            ]
        },
    )
    assert r.status_code == 200
    assert r.json() == {"updated": 1, "unknown": 1, "unknown_examples": [5]}
    r = client.post("/v1/labels", json={"labels": [{"transaction_id": 6, "fraud": 0}]})
    assert r.status_code == 404 and "6" in r.text


def test_does_the_model_endpoint_describe_the_model(client, world, feature_names):
    info = client.get("/v1/model").json()
    assert info["version"] == "7" and info["name"] == "fraud_test"
    assert info["model_type"] == "HistGradientBoostingClassifier"
    assert info["feature_names"] == list(world.model.feature_names_in_)
    assert info["features"] == feature_names
    assert info["fast_path"] is True
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/score", "/v1/score/batch", "/v1/labels", "/v1/model", "/health"} <= set(paths)


def test_does_health_report_the_state_and_the_log(client):
    before = client.get("/health").json()
    assert before["status"] == "ok" and before["model"] == "fraud_test v7"
    assert (before["state_rows"], before["logged"], before["log_errors"]) == (0, 0, 0)
    client.post("/v1/score", json=GOOD)
    after = client.get("/health").json()
    assert (after["state_rows"], after["logged"]) == (1, 1)
    assert after["uptime_s"] >= 0


def test_does_a_broken_log_cost_no_response(kit_service, world, tmp_path):
    """The log's file handle is gone: scores still come back; /health says degraded."""
    app = build(kit_service, world, tmp_path)
    with TestClient(app) as c:
        app.state.service.log.db.close()
        r = c.post("/v1/score", json=GOOD)
        assert r.status_code == 200 and math.isfinite(r.json()["score"])
        health = c.get("/health").json()
    assert health["status"] == "degraded" and health["log_errors"] == 1
    assert "closed" in health["last_log_error"]


def test_is_the_log_append_only(kit_service, world, tmp_path):
    with TestClient(build(kit_service, world, tmp_path)) as c:
        c.post("/v1/score", json=GOOD)
    db = sqlite3.connect(tmp_path / "predictions.sqlite")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM predictions")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE predictions SET score = 0")
    assert db.execute("SELECT COUNT(*) FROM predictions").fetchone()[0] == 1
    db.close()


def test_packed_forest_gives_the_forest_s_own_probabilities():
    """Does the fast scorer walk a random forest's trees to predict_proba's numbers, one row
    and a few at a time, and fall back when asked about a model it cannot pack?"""
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    from fullcycle.serving.fastpath import Scorer

    rng = np.random.default_rng(3)
    X = rng.normal(size=(3000, 6))
    y = (X[:, 0] + X[:, 1] ** 2 + rng.normal(size=3000) > 1.5).astype(int)
    forest = RandomForestClassifier(n_estimators=40, min_samples_leaf=3, random_state=0).fit(X, y)
    scorer = Scorer(forest)
    assert scorer.fast
    want = forest.predict_proba(X[:200])[:, 1]
    got = np.concatenate([scorer.predict(X[i : i + 1]) for i in range(200)])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    assert scorer.check(X[:500]) <= 1e-12 and scorer.fast
    linear = Scorer(LogisticRegression().fit(X, y))
    assert not linear.fast
    np.testing.assert_allclose(
        linear.predict(X[:5]), linear.model.predict_proba(X[:5])[:, 1], rtol=0, atol=0
    )
