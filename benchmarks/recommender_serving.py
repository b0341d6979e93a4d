"""Benchmark: the recommender kit's service on loopback, one uvicorn worker, a project-size model.

Target (issue 12, part 7): p50 <= 5 ms for ``POST /v1/recommend`` at concurrency 1 on
loopback.

The data is the recommender project's world at its size (``simulate_interactions``
with 3,000 users and 600 items at the start, 91 days); the reference recommender of
``starter_kits/recommender`` is fitted on the history (days before 84) and handed over
in a temporary ``model_dir`` exactly as the notebook does (``model.joblib`` holding
the model, the catalogue and the users' bought items). The service then runs as a
learner's is run: ``uvicorn --factory service:create_app --app-dir
starter_kits/recommender`` with ``FULLCYCLE_MODEL_DIR`` set.

Measured, after a warm-up, over one keep-alive HTTP/1.1 connection (concurrency 1):

- ``recommend_c1``: ``POST /v1/recommend`` (k = 10) for users drawn from the history
  (about one in ten is a cold user the model never saw): p50, p95, p99, requests/s;
- ``score_c1``: ``POST /v1/score``, one candidate a request (what the grader times):
  ``--requests / 4`` of them;
- ``recommend_batch``: ``POST /v1/recommend/batch`` with ``--batch`` users a request:
  latency per request and users/s;
- ``score_batch``: ``POST /v1/score/batch`` with one scoring user's whole catalogue of
  candidates a request (the grader's shape): latency and candidates/s;
- ``in_process``: the service's recommend and score paths without HTTP (median ms).

The server is stopped with its process group, also on failure; at the end the
benchmark checks that no process it started is left and fails if one is. The
temporary folder (model, service log) is removed after a clean run, kept otherwise.

Run:  .venv/bin/python benchmarks/recommender_serving.py [--requests 2000] [--warmup 200]
The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
KIT_DIR = REPO / "starter_kits" / "recommender"
sys.path.insert(0, str(Path(__file__).resolve().parent))

from serving import _median_ms, _worker, leftover_processes  # noqa: E402  (the fraud benchmark's)

#: The recommender project's world (projects/recommender/project.yaml): sizes and split day.
WORLD = {"n_users": 3000, "n_items": 600, "n_days": 91, "new_items_per_day": 3.0}
SCORE_START_DAY = 84


def timed(url: str, path: str, bodies: list[bytes]) -> list[float]:
    """Send ``bodies`` one after the other on one keep-alive connection; latencies in ms."""
    host, port = url.removeprefix("http://").split(":")
    queue = list(reversed(bodies))
    latencies: list[float] = []
    statuses: list[int] = []
    asyncio.run(_worker(host, int(port), path, queue, latencies, statuses))
    bad = sum(s != 200 for s in statuses)
    if bad:
        raise RuntimeError(f"{bad} of {len(statuses)} requests to {url}{path} did not return 200")
    return [t * 1e3 for t in latencies]


def summary(latencies_ms: list[float], per_request: int = 1, unit: str = "requests") -> dict:
    lat = np.asarray(latencies_ms)
    out = {
        "requests": int(lat.size),
        "p50_ms": round(float(np.percentile(lat, 50)), 3),
        "p95_ms": round(float(np.percentile(lat, 95)), 3),
        "p99_ms": round(float(np.percentile(lat, 99)), 3),
        "rps": round(float(lat.size / (lat.sum() / 1e3)), 1),
    }
    if per_request > 1:
        out[f"{unit}_per_request"] = per_request
        out[f"{unit}_per_s"] = round(float(lat.size * per_request / (lat.sum() / 1e3)), 1)
    return out


def hand_over(seed: int, model_dir: Path) -> dict:
    """Simulate the project's world, fit the kit's reference on the history, save model.joblib.

    The kit's modules are imported by their plain names, as uvicorn's ``--app-dir`` does,
    so the pickled model's class is found by the service.
    """
    import joblib

    from fullcycle.data import simulate_interactions

    sys.path.insert(0, str(KIT_DIR))
    from features import bought_items
    from model import build_model

    sim = simulate_interactions(seed=seed, **WORLD)
    history = sim.events[sim.events["EVENT_DAY"] < SCORE_START_DAY]
    catalogue = sim.items[sim.items["FIRST_DAY"] < SCORE_START_DAY]
    catalogue = catalogue[["ITEM_ID", "CATEGORY", "PRICE", "IN_STOCK"]].reset_index(drop=True)
    t = time.perf_counter()
    recommender = build_model(seed=seed).fit(history)
    fit_s = time.perf_counter() - t
    bought = bought_items(history)
    model_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(
        {"model": recommender, "items": catalogue, "bought": bought}, model_dir / "model.joblib"
    )
    return {
        "history_events": len(history),
        "history_users": int(history["USER_ID"].nunique()),
        "catalogue_items": len(catalogue),
        "in_stock_items": int(catalogue["IN_STOCK"].sum()),
        "fit_s": round(fit_s, 3),
        "users": history["USER_ID"].unique(),
        "catalogue": catalogue,
    }


def in_process(model_dir: Path, user: int, candidates: list[dict]) -> dict:
    """The service's own paths without HTTP: one recommendation, one catalogue of scores."""
    import service

    handover = service.load_handover(model_dir)
    svc = service.RecommenderService(service.Settings(model_dir=model_dir), handover)
    rows = [service.Candidate(**c) for c in candidates]
    return {
        "recommend_ms": _median_ms(lambda: svc.recommend(user, 10)),
        "score_catalogue_ms": _median_ms(lambda: svc.score(rows), n=100),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=2000, help="measured single requests")
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--batch", type=int, default=100, help="users per /v1/recommend/batch")
    ap.add_argument("--batches", type=int, default=100, help="measured batch requests")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from fullcycle.serving.process import ServiceProcess, free_port, kit_service_command

    work = Path(tempfile.mkdtemp(prefix="fullcycle-recbench-"))
    model_dir = work / "model"
    print(f"fitting the reference recommender on the project's world in {work} ...", flush=True)
    data = hand_over(args.seed, model_dir)
    users, catalogue = data.pop("users"), data.pop("catalogue")
    figures: dict = {"world": WORLD, **data}
    print(f"fitted: {figures}", flush=True)

    rng = np.random.default_rng(args.seed)
    cold_start = int(users.max()) + 1

    def some_users(n: int) -> list[int]:
        """Users from the history, about one in ten replaced by a user the model never saw."""
        picked = rng.choice(users, size=n).astype(int)
        cold = rng.random(n) < 0.1
        picked[cold] = cold_start + rng.integers(0, 10_000, size=int(cold.sum()))
        return picked.tolist()

    def one(u: int) -> bytes:
        return json.dumps({"user_id": u, "k": 10}).encode()

    n = args.warmup + args.requests
    singles = [one(u) for u in some_users(n)]
    batches = [
        json.dumps({"users": some_users(args.batch), "k": 10}).encode()
        for _ in range(args.warmup // 10 + args.batches)
    ]
    item_ids = catalogue["ITEM_ID"].tolist()
    in_stock = catalogue["IN_STOCK"].astype(bool).tolist()

    def candidates_of(u: int, first_id: int) -> list[dict]:
        return [
            {"candidate_id": first_id + j, "user_id": u, "item_id": i, "in_stock": s}
            for j, (i, s) in enumerate(zip(item_ids, in_stock, strict=True))
        ]

    def single_candidate(j: int) -> bytes:
        u, i = some_users(1)[0], int(rng.integers(len(item_ids)))
        c = {"candidate_id": j, "user_id": u, "item_id": item_ids[i], "in_stock": in_stock[i]}
        return json.dumps(c).encode()

    single_scores = [single_candidate(j) for j in range(args.warmup + args.requests // 4)]
    scoring = [
        json.dumps({"candidates": candidates_of(u, b * len(item_ids))}).encode()
        for b, u in enumerate(some_users(args.warmup // 10 + args.batches))
    ]

    sys.path.insert(0, str(KIT_DIR))
    figures["in_process"] = in_process(model_dir, int(users[0]), candidates_of(int(users[0]), 0))
    print(f"in process: {figures['in_process']}", flush=True)

    port = free_port()
    server = ServiceProcess(
        kit_service_command(KIT_DIR, port=port),
        f"http://127.0.0.1:{port}",
        log_path=work / "service.log",
        env={"FULLCYCLE_MODEL_DIR": str(model_dir), "FULLCYCLE_MAX_BATCH": "1000"},
        cwd=work,
    )
    groups: list[int] = []
    try:
        with contextlib.ExitStack() as stack:
            stack.callback(server.stop)  # registered before start: a failed start is stopped too
            server.start(timeout=120)
            groups.append(server.proc.pid)
            url = server.url
            timed(url, "/v1/recommend", singles[: args.warmup])
            figures["recommend_c1"] = summary(timed(url, "/v1/recommend", singles[args.warmup :]))
            print(f"/v1/recommend c=1: {figures['recommend_c1']}", flush=True)
            timed(url, "/v1/score", single_scores[: args.warmup])
            figures["score_c1"] = summary(timed(url, "/v1/score", single_scores[args.warmup :]))
            print(f"/v1/score c=1: {figures['score_c1']}", flush=True)
            w = args.warmup // 10
            timed(url, "/v1/recommend/batch", batches[:w])
            figures["recommend_batch"] = summary(
                timed(url, "/v1/recommend/batch", batches[w:]), args.batch, "users"
            )
            print(f"/v1/recommend/batch: {figures['recommend_batch']}", flush=True)
            timed(url, "/v1/score/batch", scoring[:w])
            figures["score_batch"] = summary(
                timed(url, "/v1/score/batch", scoring[w:]), len(item_ids), "candidates"
            )
            print(f"/v1/score/batch: {figures['score_batch']}", flush=True)
    finally:
        left = leftover_processes(groups)
        figures["leftover_processes"] = left
        if left:
            print(f"processes left behind: {left}", file=sys.stderr, flush=True)

    figures["target_p50_ms"] = 5.0
    figures["target_p50_met"] = figures["recommend_c1"]["p50_ms"] <= 5.0
    figures["no_process_left"] = not left
    figures["command"] = (
        f"python benchmarks/recommender_serving.py --requests {args.requests} "
        f"--warmup {args.warmup} --batch {args.batch} --batches {args.batches} --seed {args.seed}"
    )
    if left:
        print(json.dumps(figures), flush=True)
        raise SystemExit(1)
    shutil.rmtree(work)  # kept (with the service's log) when something failed
    print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
