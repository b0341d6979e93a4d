"""Benchmark: the kit's fraud service against `mlflow models serve`, same model, loopback only.

Target (issue "Serve and watch the fraud model"): at concurrency 16, at least
4x the requests/s of `mlflow models serve` on the same model, measured in the
same run; p50 <= 3 ms at concurrency 1. The kit's service does more per
request than MLflow's: it takes a raw transaction, computes the 16 features
from its SQLite window store, scores, stores the transaction and appends to
the prediction log. MLflow's server is sent the precomputed features.

Both servers run one uvicorn worker on 127.0.0.1. Ours is the reference kit's
app exactly as a learner's is run: ``uvicorn --factory service:create_app
--app-dir starter_kits/fraud_detection`` with the ``FULLCYCLE_*`` environment
the library writes (:func:`fullcycle.serving.service_env`). The load comes
from one asyncio client with persistent HTTP/1.1 connections (1 or 16 of
them), a bounded number of requests, after a warm-up. The in-process floor
times one row through the packed-tree scorer, through scikit-learn's
predict_proba, through the kit's online features plus the scorer, and through
the kit service's whole scoring path (state, model, log) without HTTP.

Every server the benchmark starts is stopped with its process group, also on
failure; at the end it checks that no process it started is left (any child
of this process, or any member of a server's process group) and fails if one is.

Run:  .venv/bin/python benchmarks/serving.py [--requests 3000] [--warmup 200]
The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
KIT_DIR = REPO / "starter_kits" / "fraud_detection"


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
        raise RuntimeError(f"{bad} of {len(statuses)} requests to {url}{path} did not return 200")
    return {
        "requests": len(lat),
        "rps": round(len(lat) / wall, 1),
        "p50_ms": round(float(np.percentile(lat, 50)), 3),
        "p99_ms": round(float(np.percentile(lat, 99)), 3),
    }


def _median_ms(f, n=400) -> float:
    for _ in range(30):
        f()
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return round(float(np.median(ts)) * 1e3, 3)


def _floor(kit, model, X, history, rows, state_dir: Path, delay_days: int) -> dict:
    """One row in process: packed trees, scikit-learn, the kit's features + score, and the kit
    service's whole scoring path (features, state update, score, log) without HTTP."""
    import pandas as pd

    from fullcycle.serving import ModelBundle
    from fullcycle.serving.fastpath import Scorer

    service = kit.module("service")  # the kit's modules, loaded by path (as the grader does)
    scorer = Scorer(model)
    x = X[:1]
    frame = pd.DataFrame(x, columns=model.feature_names_in_)
    online = kit.entry("online").open(state_dir / "features.sqlite", delay_days)
    online.warm_start(history)
    row = rows.iloc[0]
    tx = {c: row[c] for c in ("TRANSACTION_ID", "TX_DATETIME", "CUSTOMER_ID", "TERMINAL_ID")}
    tx["TX_AMOUNT"] = float(row["TX_AMOUNT"])
    bundle = ModelBundle.from_model(model, name="floor")
    columns = bundle.columns_for(service.FEATURES)

    def features_and_score():
        feats = online.features(tx)
        scorer.predict(np.asarray([[feats[n] for n in service.FEATURES]])[:, columns])

    settings = service.Settings(state_dir=state_dir / "service", delay_days=delay_days)
    svc = service.open_service(settings, bundle)
    svc.online.warm_start(history)
    next_id = [int(history["TRANSACTION_ID"].max()) + 10**6]
    when = row["TX_DATETIME"].isoformat()

    def whole_scoring_path():
        next_id[0] += 1  # a new transaction each time: stored, scored and logged
        item = service.Transaction(
            transaction_id=next_id[0],
            tx_datetime=when,
            customer_id=int(row["CUSTOMER_ID"]),
            terminal_id=int(row["TERMINAL_ID"]),
            tx_amount=float(row["TX_AMOUNT"]),
        )
        svc.score([item], False)

    try:
        return {
            "packed_trees_ms": _median_ms(lambda: scorer.predict(x)),
            "sklearn_numpy_ms": _median_ms(lambda: model.predict_proba(x)),
            "sklearn_dataframe_ms": _median_ms(lambda: model.predict_proba(frame)),
            "kit_features_plus_score_ms": _median_ms(features_and_score),
            "kit_service_score_ms": _median_ms(whole_scoring_path),
        }
    finally:
        online.store.close()
        svc.close()


def _proc_table() -> dict[int, tuple[int, int, str]]:
    """pid -> (parent pid, process group, state and command) of every process in /proc."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # gone meanwhile
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        what = f"[{fields[0]}] {cmd.strip()[:200] or comm}"
        table[int(entry.name)] = (int(fields[1]), int(fields[2]), what)
    return table


def _leftovers_now(groups: list[int]) -> list[str]:
    table = _proc_table()
    me = os.getpid()
    left = []
    for pid, (parent, pgid, what) in table.items():
        ancestor, seen = parent, set()
        while ancestor not in (0, 1, me) and ancestor in table and ancestor not in seen:
            seen.add(ancestor)
            ancestor = table[ancestor][0]
        if pid != me and (ancestor == me or pgid in groups):
            left.append(f"{pid} (group {pgid}) {what}")
    return left


def leftover_processes(groups: list[int], grace: float = 10.0) -> list[str]:
    """Processes this run left behind: descendants of this process, members of ``groups``.

    A killed server's children are reaped by init a moment after the server itself: what
    is still there after ``grace`` seconds was left behind.
    """
    deadline = time.monotonic() + grace
    while (left := _leftovers_now(groups)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=3000, help="measured requests per run")
    ap.add_argument("--warmup", type=int, default=200)
    args = ap.parse_args()

    import warnings

    warnings.simplefilter("ignore")
    from fullcycle import tracking
    from fullcycle.kit import Kit
    from fullcycle.run import run_project
    from fullcycle.serving import service_env, warm_start_history
    from fullcycle.serving.process import ServiceProcess, free_port, kit_service_command
    from fullcycle.spec import find_project

    spec = find_project("fraud_detection", search_root=REPO)
    kit = Kit(KIT_DIR)
    delay = spec.data.split.delay_days
    work = Path(tempfile.mkdtemp(prefix="fullcycle-bench-"))
    ws = work / "ws"
    print(f"training and registering the reference model (small scale) in {work} ...", flush=True)
    result = run_project(spec, ws, scale="small", progress=None, kit_dir=KIT_DIR)
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

    history = warm_start_history(spec, kit, scale="small")
    state_dir = work / "state"
    online = kit.entry("online").open(state_dir / "state.sqlite", delay)
    try:
        warm_rows = online.warm_start(history)
    finally:
        online.store.close()
    figures: dict = {
        "model": type(result.model).__name__,
        "trees": getattr(result.model, "n_iter_", None),
        "warm_state_rows": warm_rows,
    }
    figures["in_process"] = _floor(kit, result.model, X, history, test, work / "floor", delay)
    print(f"in process: {figures['in_process']}", flush=True)

    # MLflow exports the tracking URI of this process's store; both servers get it explicitly.
    store_uri = f"sqlite:///{ws / 'mlflow.db'}"
    port = free_port()
    ours = ServiceProcess(
        kit_service_command(KIT_DIR, port=port),
        f"http://127.0.0.1:{port}",
        log_path=work / "ours.log",
        env={
            **service_env(spec, ws),
            "FULLCYCLE_STATE_DIR": str(state_dir),
            "MLFLOW_TRACKING_URI": store_uri,
        },
        cwd=work,
    )
    port = free_port()
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
        env={
            "MLFLOW_TRACKING_URI": store_uri,
            # MLflow starts `uvicorn` through the shell: this environment's must come first.
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        },
        cwd=work,
    )
    groups: list[int] = []
    rows = list(test.itertuples())
    try:
        with contextlib.ExitStack() as servers:
            servers.callback(ours.stop)  # registered before start: a failed start is stopped too
            ours.start(timeout=180)
            groups.append(ours.proc.pid)
            cursor = 0
            for c in (1, 16):
                chunk = [raw_body(r) for r in rows[cursor : cursor + args.warmup + args.requests]]
                cursor += len(chunk)
                load(ours.url, "/v1/score", chunk[: args.warmup], c)
                figures[f"fullcycle_c{c}"] = load(ours.url, "/v1/score", chunk[args.warmup :], c)
                print(f"kit service c={c}: {figures[f'fullcycle_c{c}']}", flush=True)
            ours.stop()

            servers.callback(theirs.stop)
            # MLflow's server answers /health (and /ping) once the model is loaded.
            theirs.start(timeout=180)
            groups.append(theirs.proc.pid)
            for c in (1, 16):
                bodies = [mlflow_body(i % len(X)) for i in range(args.warmup + args.requests)]
                load(theirs.url, "/invocations", bodies[: args.warmup], c)
                figures[f"mlflow_c{c}"] = load(theirs.url, "/invocations", bodies[args.warmup :], c)
                print(f"mlflow models serve c={c}: {figures[f'mlflow_c{c}']}", flush=True)
    finally:
        left = leftover_processes(groups)
        figures["leftover_processes"] = left
        if left:
            print(f"processes left behind: {left}", file=sys.stderr, flush=True)

    figures["throughput_ratio_c16"] = round(
        figures["fullcycle_c16"]["rps"] / figures["mlflow_c16"]["rps"], 2
    )
    figures["throughput_ratio_c1"] = round(
        figures["fullcycle_c1"]["rps"] / figures["mlflow_c1"]["rps"], 2
    )
    figures["target_ratio_c16_met"] = figures["throughput_ratio_c16"] >= 4.0
    figures["target_p50_c1_met"] = figures["fullcycle_c1"]["p50_ms"] <= 3.0
    figures["no_process_left"] = not left
    figures["command"] = (
        f"python benchmarks/serving.py --requests {args.requests} --warmup {args.warmup}"
    )
    print(json.dumps(figures), flush=True)
    if left:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
