"""The live half of a capstone, end to end: serve, replay traffic, monitor, retrain, stop.

:func:`run_live` follows the timeline in the spec's ``monitoring`` section.
It simulates a world where card testing begins on the first day of the drift
window, warm-starts a fresh feature state with the labelled history before the
replay, starts ``fullcycle serve`` as a real process on a free loopback port,
and replays the traffic day by day as an upstream system would: each morning
the investigations of a week ago report their labels, then the day's
transactions arrive (the first ones one request at a time, to measure
latency; the rest in batches). A week after the replay the last labels
arrive; the monitor then compares the clean and the drift window with the
reference window. The service is stopped with its whole process group, and a
challenger is trained on the drifted weeks and promoted only if it earns more.

Every stage that runs is the kit's (``kit_dir``; default the project's own): its
data contract, its service with its online features, its drift and decay checks,
its features and model for the challenger and its promotion rule.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

from fullcycle.exceptions import ConfigError, SpecError
from fullcycle.spec import ProjectSpec

__all__ = ["LiveResult", "replay_timeline", "run_live"]

_KEYS = ("replay_days", "reference_days", "clean_days", "drift_days", "retrain_labelled_through")


@dataclass
class LiveResult:
    single_requests: int
    p50_ms: float
    p99_ms: float
    replayed: int
    verdicts: dict = field(default_factory=dict)
    decision: object = None
    leftover_processes: bool = False


def replay_timeline(spec: ProjectSpec):
    """The spec's ``monitoring`` section, once it has every day range a live replay needs.

    Raises
    ------
    SpecError
        Naming the missing keys.
    """
    m = spec.monitoring
    missing = list(_KEYS) if m is None else [k for k in _KEYS if getattr(m, k) is None]
    if missing:
        raise SpecError(
            f"monitoring: project {spec.name!r} lacks {missing}; `fullcycle live` needs the "
            "replay timeline (projects/fraud_detection/project.yaml and "
            "projects/recommender/project.yaml show one)"
        )
    return m


def _payload(rows: pd.DataFrame) -> list[dict]:
    return [
        {
            "transaction_id": int(i),
            "tx_datetime": t.isoformat(),
            "customer_id": int(c),
            "terminal_id": int(te),
            "tx_amount": float(a),
        }
        for i, t, c, te, a in zip(
            rows["TRANSACTION_ID"],
            rows["TX_DATETIME"],
            rows["CUSTOMER_ID"],
            rows["TERMINAL_ID"],
            rows["TX_AMOUNT"],
            strict=True,
        )
    ]


def _post_labels(client: httpx.Client, rows: pd.DataFrame) -> None:
    pairs = [
        {"transaction_id": int(i), "fraud": int(f)}
        for i, f in zip(rows["TRANSACTION_ID"], rows["TX_FRAUD"], strict=True)
    ]
    for start in range(0, len(pairs), 10_000):
        r = client.post("/v1/labels", json={"labels": pairs[start : start + 10_000]})
        if r.status_code != 200:
            raise ConfigError(f"the service refused labels: {r.status_code} {r.text[:200]}")


def _date(spec: ProjectSpec, day: int) -> str:
    start = pd.Timestamp(spec.data.params.get("start_date", "2018-04-01"))
    return (start + pd.Timedelta(days=day)).strftime("%Y-%m-%d")


def run_live(
    spec: ProjectSpec,
    workspace: str | Path = "workspace",
    *,
    scale: str = "full",
    single_requests: int = 2000,
    batch_size: int = 500,
    kit_dir: str | Path | None = None,
    progress: Callable[[str], None] | None = print,
    show_bar: bool = True,
) -> LiveResult:
    """Serve the champion, replay the timeline through it, monitor two windows, retrain."""
    from tqdm.auto import tqdm

    from fullcycle.kit import load_kit
    from fullcycle.monitoring import monitor_log
    from fullcycle.retrain import retrain
    from fullcycle.run import at_scale, load_data
    from fullcycle.serving.process import ServiceProcess, free_port, serve_command

    kit = load_kit(spec, kit_dir)

    say = progress or (lambda _m: None)
    plan = replay_timeline(spec)
    spec = at_scale(spec, scale)
    first, last = plan.replay_days
    drift_start = plan.drift_days[0]
    workspace = Path(workspace)
    base = workspace / "live" / spec.name
    if base.exists():
        shutil.rmtree(base)  # the demo's own files: each run starts from the same state
    base.mkdir(parents=True)
    log_path = base / "predictions.sqlite"

    t = time.perf_counter()
    world = kit.validate(
        load_data(spec, scale=scale, drift=True, drift_start_day=drift_start)
    ).valid
    day = world["TX_TIME_DAYS"].to_numpy()
    online = kit.entry("online").open(base / "state.sqlite", spec.data.split.delay_days)
    try:
        warm = online.warm_start(world[day < first])
    finally:
        online.store.close()
    say(
        f"[live 1/5] world with card testing from day {drift_start}; warm start with "
        f"{warm:,} labelled transactions before day {first} ({time.perf_counter() - t:.1f}s)"
    )

    port = free_port()
    proc = ServiceProcess(
        serve_command(
            spec.name,
            workspace,
            port,
            "127.0.0.1",
            "--warm-start",
            "none",
            "--state-dir",
            str(base),
            "--kit",
            str(kit.path),
        ),
        f"http://127.0.0.1:{port}",
        log_path=base / "serve.log",
    )
    delay = spec.data.split.delay_days
    latencies: list[float] = []
    replayed = 0
    try:
        proc.start(timeout=180)
        say(f"[live 2/5] serving {spec.name}@champion on {proc.url} (pid {proc.proc.pid})")
        t = time.perf_counter()
        total = int(((day >= first) & (day <= last)).sum())
        bar = tqdm(
            total=total,
            unit="tx",
            desc=f"replay days {first}-{last}",
            disable=None if show_bar else True,  # None: only on a terminal
            leave=False,
            mininterval=0.5,
        )
        with bar, httpx.Client(base_url=proc.url, timeout=60) as client:
            for d in range(first, last + 1):
                reported = world[day == d - delay]
                if d - delay >= first:
                    _post_labels(client, reported)
                today = world[day == d].sort_values(["TX_DATETIME", "TRANSACTION_ID"])
                body = _payload(today)
                i = 0
                while len(latencies) < single_requests and i < len(body):
                    t0 = time.perf_counter()
                    r = client.post("/v1/score", json=body[i])
                    latencies.append((time.perf_counter() - t0) * 1e3)
                    if r.status_code != 200:
                        raise ConfigError(f"scoring failed: {r.status_code} {r.text[:200]}")
                    i += 1
                bar.update(i)
                for start in range(i, len(body), batch_size):
                    r = client.post(
                        "/v1/score/batch", json={"transactions": body[start : start + batch_size]}
                    )
                    if r.status_code != 200:
                        raise ConfigError(f"batch scoring failed: {r.status_code} {r.text[:200]}")
                    bar.update(min(batch_size, len(body) - start))
                bar.set_postfix(day=d)
                replayed += len(body)
            # A week after the replay, the investigations of its last week report too.
            _post_labels(client, world[(day > last - delay) & (day <= last)])
            health = client.get("/health").json()
        lat = np.array(latencies)
        say(
            f"[live 3/5] replayed {replayed:,} transactions of days {first}-{last} "
            f"({time.perf_counter() - t:.0f}s); {len(lat):,} single requests: "
            f"p50 {np.percentile(lat, 50):.2f} ms, p99 {np.percentile(lat, 99):.2f} ms "
            f"(client side, loopback); log errors: {health['log_errors']}"
        )
    finally:
        pgid = proc.proc.pid if proc.proc else None
        proc.stop()
    leftover = False
    if pgid is not None:
        import os

        try:
            os.killpg(pgid, 0)
            leftover = True
        except ProcessLookupError:
            leftover = False

    value_model = spec.business_value.build()
    ref = (_date(spec, plan.reference_days[0]), _date(spec, plan.reference_days[1] + 1))
    verdicts = {}
    for name in ("clean", "drift"):
        lo, hi = getattr(plan, f"{name}_days")
        result = monitor_log(
            log_path,
            ref,
            (_date(spec, lo), _date(spec, hi + 1)),
            drift_check=kit.entry("drift"),
            decay_check=kit.entry("decay"),
            value_model=value_model,
            out_dir=workspace / "monitoring" / name,
            title=f"{spec.title}: days {lo}-{hi} vs reference",
        )
        verdicts[name] = result
        say(
            f"[live 4/5] monitor days {lo}-{hi}: {result.label.upper() if result.drifted else 'ok'}"
            + (f" - {result.reasons[0]}" if result.reasons else " - nothing crossed a threshold")
            + f"  (report: {workspace / 'monitoring' / name / 'report.html'})"
        )
    say(f"          service stopped; process group left behind: {'YES' if leftover else 'none'}")

    decision = retrain(
        spec,
        workspace,
        world,
        plan.retrain_labelled_through,
        kit=kit,
        progress=None,
    )
    say("[live 5/5] " + decision.format())
    return LiveResult(
        single_requests=len(latencies),
        p50_ms=float(np.percentile(latencies, 50)) if latencies else float("nan"),
        p99_ms=float(np.percentile(latencies, 99)) if latencies else float("nan"),
        replayed=replayed,
        verdicts=verdicts,
        decision=decision,
        leftover_processes=leftover,
    )
