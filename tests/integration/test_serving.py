"""The scoring service in process (TestClient): parity with the offline pipeline, bad input, the log."""

from __future__ import annotations

import json
import math
import sqlite3

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from fullcycle.features import FEATURE_NAMES
from fullcycle.serving import (
    FeatureState,
    ModelBundle,
    PredictionLog,
    ServiceConfig,
    create_app,
    read_log,
)


def payload(row) -> dict:
    return {
        "transaction_id": int(row.TRANSACTION_ID),
        "tx_datetime": row.TX_DATETIME.isoformat(),
        "customer_id": int(row.CUSTOMER_ID),
        "terminal_id": int(row.TERMINAL_ID),
        "tx_amount": float(row.TX_AMOUNT),
    }


def build(world, tmp_path, config=None, warm=True):
    state = FeatureState(tmp_path / "state.sqlite")
    if warm:
        state.warm_start(world.split.history)
    log = PredictionLog(tmp_path / "log.sqlite", state.feature_names)
    bundle = ModelBundle.from_model(world.model, name="fraud_test", version="7")
    return create_app(bundle, state, log, config)


def in_arrival_order(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["TX_DATETIME", "TRANSACTION_ID"], kind="stable")


@pytest.fixture
def client(world, tmp_path):
    with TestClient(build(world, tmp_path), raise_server_exceptions=False) as c:
        yield c


def test_does_replaying_scoring_days_give_the_offline_features_and_scores(world, tmp_path):
    """Day 1 one request at a time, day 2 in batches: features to 1e-9, the same scores."""
    test = world.split.test
    days = sorted(test["TX_TIME_DAYS"].unique())
    offline_scores = world.model.predict_proba(world.X_test)[:, 1]
    with TestClient(build(world, tmp_path)) as c:
        day1 = in_arrival_order(test[test["TX_TIME_DAYS"] == days[0]])
        got = [
            c.post("/v1/score?include_features=true", json=payload(r)).json()
            for r in day1.itertuples()
        ]
        # Batches arrive in time order; inside a batch the order does not matter.
        day2 = in_arrival_order(test[test["TX_TIME_DAYS"] == days[1]])
        for start in range(0, len(day2), 250):
            chunk = day2.iloc[start : start + 250].sample(frac=1.0, random_state=start)
            r = c.post(
                "/v1/score/batch?include_features=true",
                json={"transactions": [payload(x) for x in chunk.itertuples()]},
            )
            assert r.status_code == 200, r.text
            got += r.json()["scores"]
    assert len(got) == len(day1) + len(day2) > 500
    ids = [g["transaction_id"] for g in got]
    pos = pd.Index(test["TRANSACTION_ID"]).get_indexer(ids)
    online = np.array([[g["features"][n] for n in FEATURE_NAMES] for g in got])
    np.testing.assert_allclose(online, world.X_test.to_numpy()[pos], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose([g["score"] for g in got], offline_scores[pos], rtol=0, atol=1e-9)
    # The terminal windows were not trivially empty: risk features carry information.
    assert online[:, FEATURE_NAMES.index("TERMINAL_ID_NB_TX_7DAY_WINDOW")].mean() > 1
    # The log holds what was served, features included.
    log = read_log(tmp_path / "log.sqlite")
    assert len(log) == len(got)
    logged = log.set_index("TRANSACTION_ID").loc[ids]
    np.testing.assert_allclose(logged[FEATURE_NAMES].to_numpy(), online, rtol=0, atol=0)
    assert (logged["model_version"] == "7").all()
    assert (logged["latency_ms"] > 0).all()


def test_do_labels_reach_terminal_risk_only_after_the_delay(world, tmp_path):
    """A fraud reported on a terminal raises its risk for transactions 7+ days later, not before."""
    with TestClient(build(world, tmp_path, warm=False)) as c:
        base = {"customer_id": 1, "terminal_id": 42, "tx_amount": 10.0}
        r = c.post(
            "/v1/score", json={**base, "transaction_id": 1, "tx_datetime": "2018-01-01T10:00:00"}
        )
        assert r.json()["cold_start"] == {
            "card": True,
            "terminal": True,
            "defaults": r.json()["cold_start"]["defaults"],
        }
        assert len(r.json()["cold_start"]["defaults"]) == 2
        assert (
            c.post("/v1/labels", json={"labels": [{"transaction_id": 1, "fraud": 1}]}).json()[
                "updated"
            ]
            == 1
        )
        soon = c.post(
            "/v1/score?include_features=true",
            json={**base, "transaction_id": 2, "tx_datetime": "2018-01-05T10:00:00"},
        ).json()
        later = c.post(
            "/v1/score?include_features=true",
            json={**base, "transaction_id": 3, "tx_datetime": "2018-01-08T11:00:00"},
        ).json()
    assert soon["features"]["TERMINAL_ID_RISK_7DAY_WINDOW"] == 0.0
    assert later["features"]["TERMINAL_ID_RISK_7DAY_WINDOW"] == 1.0
    assert later["features"]["TERMINAL_ID_RISK_1DAY_WINDOW"] == 1.0
    assert later["cold_start"]["terminal"] is False
    assert later["features"]["CUSTOMER_ID_NB_TX_7DAY_WINDOW"] == 2.0  # tx 2 and itself


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


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_are_non_finite_amounts_refused(client, literal):
    raw = json.dumps(GOOD).replace("12.5", literal)
    r = client.post("/v1/score", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert "tx_amount" in r.text


def test_are_malformed_and_empty_bodies_refused(client):
    assert (
        client.post(
            "/v1/score", content=b"{not json", headers={"content-type": "application/json"}
        ).status_code
        == 422
    )
    r = client.post(
        "/v1/score", content=b"\xff\xfe\x00", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and r.json()["detail"]
    r = client.post("/v1/score/batch", json={"transactions": []})
    assert r.status_code == 422 and "transactions" in r.text
    assert (
        client.post("/v1/labels", json={"labels": [{"transaction_id": 1, "fraud": 2}]}).status_code
        == 422
    )


def test_is_a_batch_above_the_limit_a_413(world, tmp_path):
    with TestClient(build(world, tmp_path, ServiceConfig(max_batch=5, max_body_bytes=5000))) as c:
        txs = [{**GOOD, "transaction_id": i} for i in range(6)]
        r = c.post("/v1/score/batch", json={"transactions": txs})
        assert r.status_code == 413 and "limit of 5" in r.text
        big = [{**GOOD, "transaction_id": i} for i in range(100)]
        assert c.post("/v1/score/batch", json={"transactions": big}).status_code == 413
        # Nothing of a refused batch reached the state.
        assert c.get("/health").json()["state_rows"] == len(
            world.split.history[
                world.split.history["TX_DATETIME"]
                > world.split.history["TX_DATETIME"].max() - pd.Timedelta(days=37)
            ]
        )


def test_does_an_unknown_card_and_terminal_still_score_with_stated_defaults(client):
    r = client.post(
        "/v1/score?include_features=true", json={**GOOD, "customer_id": 10**9, "terminal_id": 10**9}
    )
    assert r.status_code == 200
    out = r.json()
    assert out["cold_start"]["card"] and out["cold_start"]["terminal"]
    assert any("count 1" in d for d in out["cold_start"]["defaults"])
    assert out["features"]["CUSTOMER_ID_NB_TX_1DAY_WINDOW"] == 1.0
    assert out["features"]["CUSTOMER_ID_AVG_AMOUNT_30DAY_WINDOW"] == GOOD["tx_amount"]
    assert out["features"]["TERMINAL_ID_RISK_30DAY_WINDOW"] == 0.0
    assert 0.0 <= out["score"] <= 1.0


def test_is_a_repeated_transaction_idempotent_and_a_conflicting_one_a_409(client):
    first = client.post("/v1/score", json=GOOD).json()
    again = client.post("/v1/score", json=GOOD).json()
    assert again["duplicate"] is True and again["score"] == first["score"]
    r = client.post("/v1/score", json={**GOOD, "tx_amount": 99.0})
    assert r.status_code == 409 and "transaction_id" in r.text
    r = client.post("/v1/score/batch", json={"transactions": [GOOD, GOOD]})
    assert r.status_code == 422 and "repeated" in r.text


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
    assert (
        client.post("/v1/labels", json={"labels": [{"transaction_id": 6, "fraud": 0}]}).status_code
        == 404
    )


def test_does_the_model_endpoint_describe_the_model(client, world):
    info = client.get("/v1/model").json()
    assert info["version"] == "7" and info["name"] == "fraud_test"
    assert info["feature_names"] == list(world.model.feature_names_in_)
    assert info["fast_path"] is True
    assert client.get("/docs").status_code == 200
    assert "/v1/score" in client.get("/openapi.json").json()["paths"]


def test_does_a_broken_log_cost_no_response(world, tmp_path):
    """The log's file handle is gone: scores still come back; /health says degraded."""
    app = build(world, tmp_path)
    with TestClient(app) as c:
        app.state.log.db.close()
        r = c.post("/v1/score", json=GOOD)
        assert r.status_code == 200 and math.isfinite(r.json()["score"])
        health = c.get("/health").json()
    assert health["status"] == "degraded" and health["log_errors"] == 1
    assert "closed" in health["last_log_error"]


def test_is_the_log_append_only(world, tmp_path):
    with TestClient(build(world, tmp_path)) as c:
        c.post("/v1/score", json=GOOD)
    db = sqlite3.connect(tmp_path / "log.sqlite")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM predictions")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE predictions SET score = 0")
    assert db.execute("SELECT COUNT(*) FROM predictions").fetchone()[0] == 1
