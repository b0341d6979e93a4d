"""The service as a real uvicorn process: contract, fuzzing from its OpenAPI spec, crashes, cleanup."""

from __future__ import annotations

import os
import signal
import sqlite3
import sys
import threading

import httpx
import pytest
import schemathesis
from conftest import register_world_model
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from fullcycle.serving.process import ServiceProcess, free_port, serve_command

pytestmark = pytest.mark.integration
REGISTERED: dict[str, str] = {}


@pytest.fixture(scope="module")
def workspace(world, tmp_path_factory):
    ws = tmp_path_factory.mktemp("ws")
    REGISTERED["run_id"] = register_world_model(world, ws)
    return ws


@pytest.fixture(scope="module")
def server(workspace, repo, tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("logs") / "serve.log"
    proc = ServiceProcess(
        serve_command("fraud_detection", workspace, port, "127.0.0.1", "--warm-start", "none"),
        f"http://127.0.0.1:{port}",
        log_path=log,
        cwd=repo,
    )
    with proc:
        yield proc


def test_does_the_real_process_score_and_refuse_bad_input(server, world, workspace):
    row = world.split.test.iloc[0]
    good = {
        "transaction_id": int(row.TRANSACTION_ID),
        "tx_datetime": row.TX_DATETIME.isoformat(),
        "customer_id": int(row.CUSTOMER_ID),
        "terminal_id": int(row.TERMINAL_ID),
        "tx_amount": float(row.TX_AMOUNT),
    }
    with httpx.Client(base_url=server.url) as c:
        r = c.post("/v1/score", json=good)
        assert r.status_code == 200, r.text
        assert r.json()["score"] == pytest.approx(
            world.model.predict_proba(world.X_test.iloc[[0]])[0, 1], abs=1e-9
        )
        assert c.post("/v1/score", json={**good, "tx_amount": "x"}).status_code == 422
        assert c.post("/v1/score", json={"transaction_id": 1}).status_code == 422
        assert c.post("/v1/score/batch", json={"transactions": []}).status_code == 422
        too_many = {"transactions": [{**good, "transaction_id": i} for i in range(1001)]}
        assert c.post("/v1/score/batch", json=too_many).status_code == 413
        assert c.get("/v1/model").json()["run_id"] == REGISTERED["run_id"]
        assert "swagger" in c.get("/docs").text.lower()


OPERATIONS = [
    "POST /v1/score",
    "POST /v1/score/batch",
    "POST /v1/labels",
    "GET /v1/model",
    "GET /health",
]


# Negative cases only exist for operations that take input.
FUZZ = [(op, GenerationMode.POSITIVE) for op in OPERATIONS] + [
    (op, GenerationMode.NEGATIVE) for op in OPERATIONS if op.startswith("POST")
]


@pytest.mark.parametrize(("label", "mode"), FUZZ)
def test_does_fuzzing_from_the_openapi_spec_find_no_5xx(server, label, mode):
    """Every operation, with inputs that fit the schema and inputs that break it: never a 5xx."""
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    labels = {op.ok().label for op in schema.get_all_operations()}
    assert set(OPERATIONS) <= labels, labels
    operation = schema.find_operation_by_label(label)
    calls = []

    @settings(
        max_examples=60,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def fuzz(case):
        response = case.call(timeout=10)
        calls.append(response.status_code)
        assert response.status_code < 500, (case.as_curl_command(), response.text[:300])

    fuzz()
    assert len(calls) >= 1


def test_does_a_crash_mid_load_leave_a_sound_log_and_state(world, tmp_path, repo):
    """SIGKILL while requests fly: both SQLite files pass integrity_check, the log holds no
    more rows than responses were served, and a restart on the same files serves on."""
    ws = tmp_path / "ws"
    register_world_model(world, ws)
    port = free_port()
    proc = ServiceProcess(
        serve_command("fraud_detection", ws, port, "127.0.0.1", "--warm-start", "none"),
        f"http://127.0.0.1:{port}",
        cwd=repo,
    ).start()
    test = world.split.test.sort_values(["TX_DATETIME", "TRANSACTION_ID"])
    answered = []

    def load():
        with httpx.Client(base_url=proc.url, timeout=5) as c:
            for row in test.itertuples():
                try:
                    r = c.post(
                        "/v1/score",
                        json={
                            "transaction_id": int(row.TRANSACTION_ID),
                            "tx_datetime": row.TX_DATETIME.isoformat(),
                            "customer_id": int(row.CUSTOMER_ID),
                            "terminal_id": int(row.TERMINAL_ID),
                            "tx_amount": float(row.TX_AMOUNT),
                        },
                    )
                except httpx.TransportError:
                    return
                if r.status_code == 200:
                    answered.append(row.TRANSACTION_ID)

    t = threading.Thread(target=load)
    t.start()
    while len(answered) < 200 and t.is_alive():
        t.join(0.05)
    os.killpg(proc.proc.pid, signal.SIGKILL)
    t.join(30)
    proc.stop()
    assert len(answered) >= 200
    base = ws / "serving" / "fraud_detection"
    for name in ("state.sqlite", "predictions.sqlite"):
        db = sqlite3.connect(base / name)
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    logged = db.execute("SELECT COUNT(*) FROM predictions").fetchone()[0]
    # A response is sent after its log row is written: every answered one is there.
    assert len(answered) <= logged <= len(answered) + 1
    db.close()
    with ServiceProcess(
        serve_command("fraud_detection", ws, port, "127.0.0.1", "--warm-start", "none"),
        f"http://127.0.0.1:{port}",
        cwd=repo,
    ) as again:
        assert httpx.get(f"{again.url}/health").json()["state_rows"] > 0


def test_does_the_kit_app_run_under_uvicorn_and_stop_without_leftovers(workspace, repo):
    port = free_port()
    proc = ServiceProcess(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "service:create_app",
            "--app-dir",
            str(repo / "starter_kits" / "fraud_detection"),
            "--port",
            str(port),
        ],
        f"http://127.0.0.1:{port}",
        env={"FULLCYCLE_WORKSPACE": str(workspace)},
    )
    with proc:
        assert httpx.get(f"{proc.url}/v1/model").json()["name"] == "fraud_detection"
        pid = proc.proc.pid
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{proc.url}/health", timeout=1)
