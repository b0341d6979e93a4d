"""Benchmark: the fraud service against `mlflow models serve`, same model, loopback only.

Target (issue "Serve and watch the fraud model"): at concurrency 16, at least
4x the requests/s of `mlflow models serve` on the same model, measured in the
same run; p50 <= 3 ms at concurrency 1. The fullcycle service does more per
request than MLflow's: it takes a raw transaction, computes the 15 features
from its SQLite state, scores, stores the transaction and appends to the
prediction log. MLflow's server is sent the precomputed features.

Both servers run one uvicorn worker on 127.0.0.1. The load comes from one
asyncio client with persistent HTTP/1.1 connections (1 or 16 of them), a
bounded number of requests, after a warm-up. The in-process floor times one
row through the packed-tree scorer, through scikit-learn's predict_proba, and
through the service's whole handler path without HTTP.

Run:  .venv/bin/python benchmarks/serving.py [--requests 3000]
The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
REPO = Path(__file__).resolve().parent.parent


async def _worker(host, port, path, queue, latencies, statuses):
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while queue:
            body = queue.pop()
            head = (
                f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
            t = time.perf_counter()
            writer.write(head + body)
            await writer.drain()
            raw = await reader.readuntil(b"\r\n\r\n")
            lines = raw.decode("latin-1").split("\r\n")
            length = next(
                int(h.split(":", 1)[1]) for h in lines if h.lower().startswith("content-length")
            )
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - t)
            statuses.append(int(lines[0].split()[1]))
    finally:
        writer.close()


def load(url: str, path: str, bodies: list[bytes], concurrency: int) -> dict:
    """Send ``bodies`` over ``concurrency`` keep-alive connections; rps and latency."""
    host, port = url.removeprefix("http://").split(":")
    queue = list(reversed(bodies))
    latencies: list[float] = []
    statuses: list[int] = []

    async def main():
        await asyncio.gather(
            *[
                _worker(host, int(port), path, queue, latencies, statuses)
                for _ in range(concurrency)
            ]
        )

    t = time.perf_counter()
    asyncio.run(main())
    wall = time.perf_counter() - t
    lat = np.array(latencies) * 1e3
    bad = sum(s != 200 for s in statuses)
    if bad:
        raise SystemExit(f"{bad} of {len(statuses)} requests to {url}{path} did not return 200")
    return {
        "requests": len(lat),
        "rps": round(len(lat) / wall, 1),
        "p50_ms": round(float(np.percentile(lat, 50)), 3),
        "p99_ms": round(float(np.percentile(lat, 99)), 3),
    }


def _floor(model, X, state_path, rows):
    """One row in process: packed trees, scikit-learn, and the whole handler path."""
    import pandas as pd

    from fullcycle.serving import FeatureState
    from fullcycle.serving.fastpath import Scorer
    from fullcycle.serving.state import OnlineTransaction, epoch_seconds

    def median_ms(f, n=400):
        for _ in range(30):
            f()
        ts = []
        for _ in range(n):
            t = time.perf_counter()
            f()
            ts.append(time.perf_counter() - t)
        return round(float(np.median(ts)) * 1e3, 3)

    scorer = Scorer(model)
    x = X[:1]
    frame = pd.DataFrame(x, columns=model.feature_names_in_)
    state = FeatureState(state_path)
    row = rows.iloc[0]
    tx = OnlineTransaction(
        int(row.TRANSACTION_ID),
        epoch_seconds(row.TX_DATETIME.to_pydatetime()),
        int(row.CUSTOMER_ID),
        int(row.TERMINAL_ID),
        float(row.TX_AMOUNT),
    )
    ts = row.TX_DATETIME.to_pydatetime()

    def handler_path():
        feats, _ = state.features(tx, ts)
        scorer.predict(np.asarray([feats]))

    out = {
        "packed_trees_ms": median_ms(lambda: scorer.predict(x)),
        "sklearn_numpy_ms": median_ms(lambda: model.predict_proba(x)),
        "sklearn_dataframe_ms": median_ms(lambda: model.predict_proba(frame)),
        "features_plus_score_ms": median_ms(handler_path),
    }
    state.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=3000, help="measured requests per run")
    ap.add_argument("--warmup", type=int, default=200)
    args = ap.parse_args()

    import warnings

    warnings.simplefilter("ignore")
    from fullcycle import tracking
    from fullcycle.run import run_project
    from fullcycle.serving import service_paths, warm_start_history
    from fullcycle.serving.process import ServiceProcess, free_port, serve_command
    from fullcycle.spec import find_project

    spec = find_project("fraud_detection", search_root=REPO)
    work = Path(tempfile.mkdtemp(prefix="fullcycle-bench-"))
    ws = work / "ws"
    print("training and registering the reference model (small scale) ...", flush=True)
    result = run_project(spec, ws, scale="small", progress=None)
    if result.registered is None:
        raise SystemExit("the benchmark model did not pass the gate; nothing to serve")
    test = result.prepared.split.test.sort_values(["TX_DATETIME", "TRANSACTION_ID"])
    X = result.prepared.X_test.loc[test.index].to_numpy()
    n_needed = 2 * (args.requests + args.warmup)
    if len(test) < n_needed:
        raise SystemExit(f"the scoring window has {len(test)} rows; ask for fewer requests")

    def raw_body(row):
        return json.dumps(
            {
                "transaction_id": int(row.TRANSACTION_ID),
                "tx_datetime": row.TX_DATETIME.isoformat(),
                "customer_id": int(row.CUSTOMER_ID),
                "terminal_id": int(row.TERMINAL_ID),
                "tx_amount": float(row.TX_AMOUNT),
            }
        ).encode()

    names = list(result.model.feature_names_in_)

    def mlflow_body(i):
        return json.dumps({"dataframe_split": {"columns": names, "data": [X[i].tolist()]}}).encode()

    history = warm_start_history(spec, scale="small")
    state_path, _ = service_paths(spec, ws)
    from fullcycle.serving import FeatureState

    FeatureState(state_path).warm_start(history)
    figures: dict = {"model": type(result.model).__name__, "trees": result.model.n_iter_}
    figures["in_process"] = _floor(result.model, X, work / "floor.sqlite", test)

    port = free_port()
    ours = ServiceProcess(
        serve_command("fraud_detection", ws, port, "127.0.0.1", "--warm-start", "none"),
        f"http://127.0.0.1:{port}",
        log_path=work / "ours.log",
    )
    rows = list(test.itertuples())
    with ours:
        cursor = 0
        for c in (1, 16):
            chunk = [raw_body(r) for r in rows[cursor : cursor + args.warmup + args.requests]]
            cursor += len(chunk)
            load(ours.url, "/v1/score", chunk[: args.warmup], c)
            figures[f"fullcycle_c{c}"] = load(ours.url, "/v1/score", chunk[args.warmup :], c)
            print(f"fullcycle c={c}: {figures[f'fullcycle_c{c}']}", flush=True)

    port = free_port()
    env = {
        "MLFLOW_TRACKING_URI": f"sqlite:///{ws / 'mlflow.db'}",
        # MLflow starts `uvicorn` through the shell: this environment's must come first.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    theirs = ServiceProcess(
        [
            str(Path(sys.executable).parent / "mlflow"),
            "models",
            "serve",
            "-m",
            f"models:/{spec.name}@{tracking.CHAMPION}",
            "--env-manager",
            "local",
            "--workers",
            "1",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        f"http://127.0.0.1:{port}",
        log_path=work / "mlflow.log",
        env=env,
    )
    # MLflow's server answers /health (and /ping) once the model is loaded.
    with theirs.start(timeout=180):
        for c in (1, 16):
            bodies = [mlflow_body(i % len(X)) for i in range(args.warmup + args.requests)]
            load(theirs.url, "/invocations", bodies[: args.warmup], c)
            figures[f"mlflow_c{c}"] = load(theirs.url, "/invocations", bodies[args.warmup :], c)
            print(f"mlflow models serve c={c}: {figures[f'mlflow_c{c}']}", flush=True)
        theirs.stop()

    figures["throughput_ratio_c16"] = round(
        figures["fullcycle_c16"]["rps"] / figures["mlflow_c16"]["rps"], 2
    )
    figures["throughput_ratio_c1"] = round(
        figures["fullcycle_c1"]["rps"] / figures["mlflow_c1"]["rps"], 2
    )
    figures["target_ratio_c16_met"] = figures["throughput_ratio_c16"] >= 4.0
    figures["target_p50_c1_met"] = figures["fullcycle_c1"]["p50_ms"] <= 3.0
    figures["command"] = f"python benchmarks/serving.py --requests {args.requests}"
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
