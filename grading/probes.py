"""Probes of what a submission leaves running: its service and its drift check.

Both run learner code inside the job's sandbox and judge it from outside.
The service is started with uvicorn on a Unix socket in the job folder; the
probe checks readiness within a deadline, the contract the spec declares,
consistency with the offline predictions, that bad input gets a 4xx and never
a 5xx, and latency; then the whole process tree is killed and checked gone.
The drift check is called on hidden batches (one with an upstream fault, one
ordinary) and must flag exactly the faulty one.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from grading.sandbox import Sandbox

__all__ = ["ServiceContract", "probe_monitoring", "probe_service"]


class ServiceContract(BaseModel):
    """The ``service.contract`` block of a spec."""

    model_config = ConfigDict(extra="forbid")
    health_path: str = "/health"
    score_path: str
    batch_path: str
    items_key: str
    results_key: str
    id_field: str
    score_field: str
    fields: dict[str, str]


def _jsonable(v):
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return v


def _payloads(rows: pd.DataFrame, c: ServiceContract) -> list[dict]:
    return [
        {field: _jsonable(rec[col]) for field, col in c.fields.items()}
        for rec in rows.to_dict("records")
    ]


def _bad_inputs(example: dict, c: ServiceContract) -> list[tuple[str, str, object]]:
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
    contract: ServiceContract,
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


_RUNNER = r"""
import importlib, json, sys
import pandas as pd
kit, target, ref_path, out_path = sys.argv[1:5]
pairs = sys.argv[5:]
sys.path.insert(0, kit)
result = {}
try:
    module, name = target.split(":")
    check = getattr(importlib.import_module(module), name)
except Exception as exc:
    check = None
    load_error = f"cannot import {target}: {type(exc).__name__}: {exc}"
reference = pd.read_parquet(ref_path)
for label, path in zip(pairs[0::2], pairs[1::2]):
    if check is None:
        result[label] = {"drift": None, "error": load_error[:300]}
        continue
    try:
        r = check(reference.copy(), pd.read_parquet(path))
        drift = r.get("drift") if isinstance(r, dict) else r
        if isinstance(drift, bool):
            result[label] = {"drift": drift, "error": None}
        else:
            result[label] = {"drift": None, "error": "the check must return {'drift': True or False}"}
    except NotImplementedError:
        result[label] = {"drift": None, "error": "not implemented yet"}
    except Exception as exc:
        result[label] = {"drift": None, "error": f"{type(exc).__name__}: {exc}"[:300]}
with open(out_path, "w") as f:
    json.dump(result, f)
"""


def probe_monitoring(
    sandbox: Sandbox,
    kit_dir: Path,
    target: str,
    batches: dict[str, pd.DataFrame],
    reference: str,
    drifted: str,
    timeout: float,
) -> dict:
    """Run the learner's drift check on each non-reference batch; score flag and silence."""
    folder = sandbox.job_dir / "monitoring"
    folder.mkdir(exist_ok=True)
    sandbox.chown_for_sandbox(folder)
    paths = {}
    for name, frame in batches.items():
        paths[name] = folder / f"{name}.parquet"
        frame.to_parquet(paths[name], index=False)
    result_path = folder / "result.json"
    args = [str(kit_dir), target, str(paths[reference]), str(result_path)]
    for name in batches:
        if name != reference:
            args += [name, str(paths[name])]
    cmd = sandbox.wrap([sys.executable, "-c", _RUNNER, *args])
    out: dict = {"problems": []}
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        sandbox.kill_all((proc.pid,))
        proc.wait()
        out["problems"].append(f"the drift check took longer than {timeout:.0f} s")
        err = b""
    sandbox.kill_all()
    verdicts: dict = {}
    if (
        result_path.is_file()
        and not result_path.is_symlink()
        and result_path.stat().st_size < 100_000
    ):
        try:
            verdicts = json.loads(result_path.read_text())
        except (ValueError, UnicodeDecodeError):
            verdicts = {}
    elif not out["problems"]:
        tail = err.decode("utf-8", "replace").strip().splitlines()[-1:] if err else []
        out["problems"].append(
            "the drift check wrote no verdict" + (f": {tail[0][:200]}" if tail else "")
        )
    clean = [n for n in batches if n not in (reference, drifted)]

    def verdict(name):
        v = verdicts.get(name) if isinstance(verdicts, dict) else None
        if not isinstance(v, dict):
            return None, "no verdict"
        d = v.get("drift")
        return (d if isinstance(d, bool) else None), (
            str(v.get("error"))[:300] if v.get("error") else None
        )

    d_flag, d_err = verdict(drifted)
    out["flags_drift"] = 1.0 if d_flag is True else 0.0
    out["quiet_on_clean"] = 1.0 if all(verdict(n)[0] is False for n in clean) else 0.0
    for err_text in [d_err, *[verdict(n)[1] for n in clean]]:
        if err_text:
            out["problems"].append(f"drift check on a batch: {err_text}")
    if d_flag is False:
        out["problems"].append("the batch with an upstream fault was not flagged")
    if any(verdict(n)[0] is True for n in clean):
        out["problems"].append("an ordinary batch was flagged as drift")
    out["problems"] = sorted(set(out["problems"]), key=out["problems"].index)
    return out
