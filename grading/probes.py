"""The service probe: the learner's app, started in the sandbox and measured from outside.

The service is started with uvicorn on a Unix socket in the job folder; the
probe checks readiness within a deadline, the contract the spec declares,
consistency with the offline predictions, that bad input gets a 4xx and never
a 5xx, and latency; then the whole process tree is killed and checked gone.
The other stages (drift and decay checks, data contract, features, policy,
retraining rule) are probed by :mod:`grading.stages` through
:mod:`grading.harness`.
"""

from __future__ import annotations

import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from fullcycle.spec import ServiceContractSpec
from grading.sandbox import Sandbox

__all__ = ["probe_service"]


def _jsonable(v):
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return v


def _payloads(rows: pd.DataFrame, c: ServiceContractSpec) -> list[dict]:
    return [
        {field: _jsonable(rec[col]) for field, col in c.fields.items()}
        for rec in rows.to_dict("records")
    ]


def _bad_inputs(example: dict, c: ServiceContractSpec) -> list[tuple[str, str, object]]:
    """(name, path, body) cases that a careful service answers with a 4xx."""
    cases: list[tuple[str, str, object]] = [
        ("body is not JSON", c.score_path, b"{not json"),
        ("empty object", c.score_path, {}),
        ("a list instead of an object", c.score_path, [example]),
        (f"{c.items_key} is not a list", c.batch_path, {c.items_key: "rows"}),
    ]
    for field in c.fields:
        cases.append(
            (f"{field} missing", c.score_path, {k: v for k, v in example.items() if k != field})
        )
        cases.append((f"{field} is an object", c.score_path, {**example, field: {"x": 1}}))
    return cases


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def probe_service(
    sandbox: Sandbox,
    kit_dir: Path,
    app: str,
    contract: ServiceContractSpec,
    env: dict[str, str],
    rows: pd.DataFrame,
    offline: np.ndarray,
    score_range,
    *,
    ready_timeout: float,
    request_timeout: float,
    consistency_rows: int,
    latency_requests: int,
    tolerance: float,
    max_batch: int = 100,
    log_path: Path | None = None,
) -> dict:
    """Start the learner's app in ``sandbox`` and measure it. Never raises for the app's faults.

    ``rows`` are scoring rows in time order and ``offline`` their offline scores.
    """
    import httpx

    sock = sandbox.job_dir / "service.sock"
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        app,
        "--uds",
        str(sock),
        "--app-dir",
        str(kit_dir),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    out: dict = {"started": False, "ready": False, "problems": []}
    log = open(log_path or sandbox.job_dir.parent / "service.log", "wb")
    proc = subprocess.Popen(
        sandbox.wrap(cmd, env, kit_dir), stdout=log, stderr=log, start_new_session=True
    )
    out["started"] = True
    t0 = time.monotonic()
    client = httpx.Client(
        transport=httpx.HTTPTransport(uds=str(sock)),
        base_url="http://service",
        timeout=request_timeout,
    )
    try:
        while time.monotonic() - t0 < ready_timeout:
            if proc.poll() is not None:
                out["problems"].append(f"the service exited with code {proc.returncode} at start")
                break
            if sock.exists():
                try:
                    if client.get(contract.health_path).status_code == 200:
                        out["ready"] = True
                        break
                except httpx.HTTPError:
                    pass
            time.sleep(0.1)
        out["ready_seconds"] = round(time.monotonic() - t0, 3)
        if not out["ready"]:
            if not out["problems"]:
                out["problems"].append(
                    f"the service did not answer {contract.health_path} with 200 within "
                    f"{ready_timeout:.0f} s (does it bind? does start-up hang?)"
                )
            return out
        _check_scores(
            client,
            contract,
            rows,
            offline,
            score_range,
            consistency_rows,
            tolerance,
            max_batch,
            out,
        )
        _check_bad_input(client, contract, _payloads(rows.head(1), contract)[0], out)
        _check_latency(client, contract, rows.iloc[consistency_rows:], latency_requests, out)
        return out
    finally:
        client.close()
        sandbox.kill_all((proc.pid,))
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            out["problems"].append("the service's launcher did not exit after SIGKILL")
        log.close()
        time.sleep(0.05)
        left = sandbox.alive()
        out["leftover_processes"] = len(left)
        out["tree_gone"] = proc.poll() is not None and not left


def _check_scores(client, c, rows, offline, score_range, n, tol, max_batch, out):
    import httpx

    sample = rows.head(n)
    want = dict(
        zip(sample[c.fields[c.id_field]].astype("int64"), offline[: len(sample)], strict=True)
    )
    got: dict[int, float] = {}
    contract_ok = True
    payloads = _payloads(sample, c)
    for i in range(0, len(payloads), max_batch):
        chunk = payloads[i : i + max_batch]
        try:
            r = client.post(c.batch_path, json={c.items_key: chunk})
        except httpx.HTTPError as exc:
            out["problems"].append(f"{c.batch_path}: no answer ({type(exc).__name__})")
            contract_ok = False
            break
        if r.status_code != 200:
            out["problems"].append(f"{c.batch_path}: status {r.status_code} for valid rows")
            contract_ok = False
            break
        try:
            results = r.json()[c.results_key]
            pairs = [(int(x[c.id_field]), float(x[c.score_field])) for x in results]
        except (ValueError, KeyError, TypeError, AttributeError):
            out["problems"].append(
                f"{c.batch_path}: the answer is not {{{c.results_key!r}: [{{{c.id_field!r}, "
                f"{c.score_field!r}}}, ...]}}: {r.text[:120]!r}"
            )
            contract_ok = False
            break
        sent = [p[c.id_field] for p in chunk]
        if [p[0] for p in pairs] != sent:
            out["problems"].append(f"{c.batch_path}: the ids in the answer are not the ids sent")
            contract_ok = False
            break
        lo, hi = score_range
        if not all(math.isfinite(s) and lo <= s <= hi for _, s in pairs):
            out["problems"].append(f"{c.batch_path}: scores outside [{lo}, {hi}] or not finite")
            contract_ok = False
            break
        got.update(pairs)
    out["contract"] = 1.0 if contract_ok and len(got) == len(want) else 0.0
    if got:
        diffs = np.array([abs(got[k] - want[k]) for k in got])
        out["consistency"] = float(np.mean(diffs <= tol)) * len(got) / len(want)
        out["max_abs_diff"] = float(diffs.max())
        out["compared"] = len(got)
    else:
        out["consistency"] = 0.0


def _check_bad_input(client, c, example, out):
    import httpx

    fours, failures = 0, []
    cases = _bad_inputs(example, c)
    for name, path, body in cases:
        try:
            if isinstance(body, bytes):
                r = client.post(path, content=body, headers={"content-type": "application/json"})
            else:
                r = client.post(path, json=body)
            status = r.status_code
        except httpx.HTTPError as exc:
            status = type(exc).__name__
        if isinstance(status, int) and 400 <= status < 500:
            fours += 1
        else:
            failures.append(f"{name}: {status}")
    out["bad_input_4xx"] = fours / len(cases)
    if failures:
        out["problems"].append("bad input without a 4xx: " + "; ".join(failures[:6]))


def _check_latency(client, c, rows, n, out):
    import httpx

    times = []
    errors = 0
    for p in _payloads(rows.head(n), c):
        t = time.perf_counter()
        try:
            ok = client.post(c.score_path, json=p).status_code == 200
        except httpx.HTTPError:
            ok = False
        times.append((time.perf_counter() - t) * 1000)
        errors += not ok
    out["latency_ms"] = [round(x, 3) for x in times]
    out["p50_ms"] = _percentile(times, 50)
    out["p99_ms"] = _percentile(times, 99)
    if errors:
        out["problems"].append(f"{errors} of {len(times)} single requests failed")
        out["p99_ms"] = float("inf") if errors > len(times) // 10 else out["p99_ms"]
