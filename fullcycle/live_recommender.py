"""The live half of the recommender capstone: serve two models, replay visits, A/B, monitor, decide.

:func:`run_live_recommender` follows the timeline in the spec's
``monitoring`` section, in simulator days:

1. It simulates the shop with the project's drift (``data.drift``, e.g. a
   category that starts trending) from the first day of ``drift_days``, and
   passes the log through the kit's data contract.
2. The **champion** is the kit's model trained on every day before
   ``replay_days``; the **challenger** the same model trained through
   ``retrain_labelled_through`` (a week more, the week before the drift).
   Each is handed over as the kit's notebook does (``model_dir/model.joblib``)
   and served by the kit's own service, each as a real uvicorn process on a
   free loopback port.
3. Each replayed day, every user who visits the shop that day (a user with an
   event in the simulated log) gets a list of ``k`` items from the champion's
   service (the first visits one request at a time, to measure latency; the
   rest through the batch endpoint). On the days of ``drift_days`` the
   challenger's service answers the same visits too: an A/B test on the same
   traffic. The simulated users respond to each list
   (:func:`fullcycle.data.responses.respond_to_lists`, with the same random
   choices for both arms), so each arm's **live revenue** is what its lists
   actually sold.
4. The kit's drift check compares the clean and the drift week with the
   reference week; the kit's promotion rule decides on the live revenue of the
   two arms over the drift week, gated on each arm's nDCG@10 against the
   purchases users made on their own that week, with the margin and the gate of
   the project's ``retraining`` section (popularity's nDCG@10 on the same lists
   is reported beside them).

Both services are stopped with their process groups, also on failure.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import joblib
import numpy as np
import pandas as pd

from fullcycle.exceptions import ConfigError, SpecError
from fullcycle.live import replay_timeline
from fullcycle.spec import ProjectSpec

__all__ = ["RecommenderLiveResult", "run_live_recommender"]


@dataclass
class RecommenderLiveResult:
    """What a live run measured (``revenue`` and ``visits`` per arm and day)."""

    single_requests: int
    p50_ms: float
    p99_ms: float
    visits: int
    revenue: dict = field(default_factory=dict)
    ndcg: dict = field(default_factory=dict)
    verdicts: dict = field(default_factory=dict)
    decision: dict = field(default_factory=dict)
    leftover_processes: bool = False

    def as_dict(self) -> dict:
        return {
            "single_requests": self.single_requests,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "visits": self.visits,
            "revenue": self.revenue,
            "ndcg": self.ndcg,
            "drift": {k: bool(v.get("drift")) for k, v in self.verdicts.items()},
            "decision": self.decision,
            "leftover_processes": self.leftover_processes,
        }


def _catalogue(sim, day: int) -> pd.DataFrame:
    """The catalogue a model trained before ``day`` is handed: items known then, stock then."""
    items = sim.items[sim.items["FIRST_DAY"] < day]
    last = sim.item_profiles.set_index("ITEM_ID")["LAST_DAY"].reindex(items["ITEM_ID"])
    return items[["ITEM_ID", "CATEGORY", "PRICE"]].assign(IN_STOCK=last.to_numpy() >= day)


def _hand_over(kit, history: pd.DataFrame, items: pd.DataFrame, folder: Path, seed: int):
    """Train the kit's model on ``history`` and write ``folder/model.joblib`` for its service."""
    model = kit.entry("model")(seed=seed).fit(history)
    folder.mkdir(parents=True, exist_ok=True)
    bought = kit.module("features").bought_items(history)
    joblib.dump({"model": model, "items": items, "bought": bought}, folder / "model.joblib")
    return model


def _service(kit, model_dir: Path, log: Path, spec: ProjectSpec):
    from fullcycle.serving.process import ServiceProcess, free_port, kit_service_command

    port = free_port()
    args = kit_service_command(kit.path, kit.stages["service"], port=port)
    env = {"FULLCYCLE_MODEL_DIR": str(model_dir), "FULLCYCLE_PROJECT": spec.name}
    if spec.service is not None:
        env["FULLCYCLE_MAX_BATCH"] = str(spec.service.max_batch)
    return ServiceProcess(args, f"http://127.0.0.1:{port}", log_path=log, env=env)


def _lists(client, users: np.ndarray, k: int, batch: int, singles: int, latencies: list):
    """The lists a service returns for ``users``: the first ``singles`` one at a time."""
    out = np.full((len(users), k), -1, dtype=np.int64)

    def fill(i: int, answer: dict) -> None:
        got = [int(x["item_id"]) for x in answer["items"]][:k]
        out[i, : len(got)] = got

    i = 0
    while i < min(singles, len(users)):
        t0 = time.perf_counter()
        r = client.post("/v1/recommend", json={"user_id": int(users[i]), "k": k})
        latencies.append((time.perf_counter() - t0) * 1e3)
        if r.status_code != 200:
            raise ConfigError(f"/v1/recommend answered {r.status_code}: {r.text[:200]}")
        fill(i, r.json())
        i += 1
    for start in range(i, len(users), batch):
        chunk = [int(u) for u in users[start : start + batch]]
        r = client.post("/v1/recommend/batch", json={"users": chunk, "k": k})
        if r.status_code != 200:
            raise ConfigError(f"/v1/recommend/batch answered {r.status_code}: {r.text[:200]}")
        for j, answer in enumerate(r.json()["results"]):
            fill(start + j, answer)
    return out


def _ndcg(visits: pd.DataFrame, lists: np.ndarray, truth: pd.DataFrame, k: int) -> float:
    """nDCG@k of each user's first list of the window against their own new purchases."""
    from fullcycle.metrics.ranking import ranking_metrics

    first = ~visits["USER_ID"].duplicated().to_numpy()
    users = visits["USER_ID"].to_numpy()[first]
    shown = lists[first]
    rec = pd.DataFrame(
        {
            "USER_ID": np.repeat(users, k),
            "ITEM_ID": shown.ravel(),
            "RANK": np.tile(np.arange(1, k + 1), len(users)),
        }
    )
    rec = rec[rec["ITEM_ID"] >= 0]
    truth = truth[truth["USER_ID"].isin(users)]
    if truth.empty or rec.empty:
        return float("nan")
    return float(ranking_metrics(rec, truth, k=k).as_dict()[f"ndcg@{k}"])


def run_live_recommender(
    spec: ProjectSpec,
    workspace: str | Path = "workspace",
    *,
    scale: str = "full",
    single_requests: int = 500,
    batch_size: int = 500,
    k: int | None = None,
    kit_dir: str | Path | None = None,
    progress: Callable[[str], None] | None = print,
) -> RecommenderLiveResult:
    """Serve champion and challenger, replay the timeline's visits, A/B the drift week, decide."""
    from fullcycle.data.candidates import interaction_config
    from fullcycle.data.interactions import simulate_interactions
    from fullcycle.data.responses import respond_to_lists, visits_of
    from fullcycle.kit import load_kit

    say = progress or (lambda _m: None)
    plan = replay_timeline(spec)
    if spec.data.drift is None:
        raise SpecError(f"project {spec.name!r} has no data.drift: the live run needs one")
    kit = load_kit(spec, kit_dir)
    k = int(k or spec.business_value.params.get("k", 10))
    first, last = plan.replay_days
    drift_start = plan.drift_days[0]
    seed = spec.data.seed
    base = Path(workspace) / "live" / spec.name
    if base.exists():
        shutil.rmtree(base)  # the demo's own files: each run starts from the same state
    base.mkdir(parents=True)

    t = time.perf_counter()
    cfg = interaction_config(spec, scale, drift=spec.data.drift.scenario, drift_day=drift_start)
    sim = simulate_interactions(cfg)
    category = sim.items.set_index("ITEM_ID")["CATEGORY"]
    result = kit.entry("contract")(sim.events)
    events = result.valid
    day = events["EVENT_DAY"].to_numpy()
    events = events.assign(CATEGORY=category.reindex(events["ITEM_ID"]).to_numpy())
    say(
        f"[live 1/5] {len(events):,} events of {events['USER_ID'].nunique():,} users "
        f"({len(result.quarantine):,} quarantined by the contract); "
        f"{spec.data.drift.scenario} drift from day {drift_start} ({time.perf_counter() - t:.1f}s)"
    )

    t = time.perf_counter()
    through = plan.retrain_labelled_through
    champion_dir, challenger_dir = base / "champion", base / "challenger"
    _hand_over(kit, events[day < first], _catalogue(sim, first), champion_dir, seed)
    _hand_over(kit, events[day <= through], _catalogue(sim, through + 1), challenger_dir, seed)
    say(
        f"[live 2/5] champion trained on days < {first}, challenger on days <= {through} "
        f"({time.perf_counter() - t:.1f}s)"
    )

    arms = {
        "champion": _service(kit, champion_dir, base / "champion.log", spec),
        "challenger": _service(kit, challenger_dir, base / "challenger.log", spec),
    }
    revenue: dict[str, dict[int, float]] = {"champion": {}, "challenger": {}}
    shown: dict[str, list] = {"champion": [], "challenger": []}
    drift_visits: list[pd.DataFrame] = []
    latencies: list[float] = []
    n_visits = 0
    bought = events[(events["EVENT_TYPE"] == "purchase") & (day < first)][["USER_ID", "ITEM_ID"]]
    pgids = []
    try:
        for proc in arms.values():
            proc.start(timeout=180)
            pgids.append(proc.proc.pid)
        say(
            "[live 3/5] serving "
            + ", ".join(f"{n} on {p.url} (pid {p.proc.pid})" for n, p in arms.items())
        )
        t = time.perf_counter()
        clients = {n: httpx.Client(base_url=p.url, timeout=60) for n, p in arms.items()}
        try:
            for d in range(first, last + 1):
                visits = visits_of(events, d, d)
                users = visits["USER_ID"].to_numpy()
                n_visits += len(visits)
                in_test = plan.drift_days[0] <= d <= plan.drift_days[1]
                for name in ("champion", "challenger") if in_test else ("champion",):
                    singles = max(single_requests - len(latencies), 0) if name == "champion" else 0
                    lists = _lists(clients[name], users, k, batch_size, singles, latencies)
                    sold = respond_to_lists(sim, visits, lists, seed=seed, bought_before=bought)
                    revenue[name][d] = float((sold["PRICE"] * sold["BOUGHT"]).sum())
                    if in_test:
                        shown[name].append(lists)
                if in_test:
                    drift_visits.append(visits)
                today = events[(day == d) & (events["EVENT_TYPE"] == "purchase")]
                bought = pd.concat([bought, today[["USER_ID", "ITEM_ID"]]], ignore_index=True)
        finally:
            for c in clients.values():
                c.close()
        lat = np.asarray(latencies)
        say(
            f"[live 3/5] replayed {n_visits:,} visits of days {first}-{last} "
            f"({time.perf_counter() - t:.0f}s); {len(lat):,} single requests: "
            f"p50 {np.percentile(lat, 50):.2f} ms, p99 {np.percentile(lat, 99):.2f} ms "
            "(client side, loopback)"
        )
    finally:
        for proc in arms.values():
            proc.stop()
    leftover = False
    for pgid in pgids:
        try:
            os.killpg(pgid, 0)
            leftover = True
        except ProcessLookupError:
            pass
    say(f"          services stopped; process groups left behind: {'YES' if leftover else 'none'}")

    check = kit.entry("drift")
    lo, hi = plan.reference_days
    reference = events[(day >= lo) & (day <= hi)]
    verdicts = {}
    for name in ("clean", "drift"):
        lo, hi = getattr(plan, f"{name}_days")
        verdicts[name] = check(reference, events[(day >= lo) & (day <= hi)])
        v = verdicts[name]
        say(
            f"[live 4/5] drift check, days {lo}-{hi} vs days {plan.reference_days[0]}-"
            f"{plan.reference_days[1]}: {'DRIFT' if v.get('drift') else 'ok'}"
            + (f" - {v['reasons'][0]}" if v.get("reasons") else "")
        )

    # The A/B: live revenue of each arm on the same drift-week visits, nDCG as the gate.
    visits = pd.concat(drift_visits, ignore_index=True)
    lo, hi = plan.drift_days
    week = events[(day >= lo) & (day <= hi) & (events["EVENT_TYPE"] == "purchase")]
    before = events[(day < lo) & (events["EVENT_TYPE"] == "purchase")][["USER_ID", "ITEM_ID"]]
    fresh = week.merge(before.drop_duplicates(), how="left", indicator=True)
    truth = fresh[fresh["_merge"] == "left_only"][["USER_ID", "ITEM_ID"]].drop_duplicates()
    ndcg = {n: _ndcg(visits, np.concatenate(shown[n]), truth, k) for n in shown}
    popular = events[(day < first) & (day >= first - 28)]["ITEM_ID"].value_counts().index
    pop_lists = np.tile(np.asarray(popular[:k], dtype=np.int64), (len(visits), 1))
    ndcg["popularity"] = _ndcg(visits, pop_lists, truth, k)
    stats = {
        n: {
            "revenue": sum(revenue[n][d] for d in range(lo, hi + 1)),
            "ndcg": ndcg[n],
            "users": int(visits["USER_ID"].nunique()),
        }
        for n in ("champion", "challenger")
    }
    rule = spec.retraining
    gate = spec.gate.min_roc_auc if rule.min_gate is None else rule.min_gate
    answer = kit.entry("promotion")(stats["champion"], stats["challenger"], rule.margin, gate)
    if not isinstance(answer, dict) or not isinstance(answer.get("promote"), bool):
        raise ConfigError(
            "the kit's promotion rule must return {'promote': bool, 'reason': str}, got "
            f"{str(answer)[:200]}"
        )
    decision = {
        "promote": answer["promote"],
        "reason": str(answer.get("reason", "")),
        "champion": stats["champion"],
        "challenger": stats["challenger"],
        "margin": rule.margin,
        "min_ndcg": gate,
    }
    say(
        f"[live 5/5] A/B on days {lo}-{hi}, {len(visits):,} visits: live revenue champion "
        f"{stats['champion']['revenue']:,.0f}, challenger {stats['challenger']['revenue']:,.0f}; "
        f"nDCG@{k} {ndcg['champion']:.3f} / {ndcg['challenger']:.3f} (gate {gate}, popularity "
        f"{ndcg['popularity']:.3f}) -> {'PROMOTE' if answer['promote'] else 'keep the champion'}"
        f": {decision['reason']}"
    )
    out = RecommenderLiveResult(
        single_requests=len(latencies),
        p50_ms=float(np.percentile(latencies, 50)) if latencies else float("nan"),
        p99_ms=float(np.percentile(latencies, 99)) if latencies else float("nan"),
        visits=n_visits,
        revenue={n: {str(d): v for d, v in r.items()} for n, r in revenue.items()},
        ndcg=ndcg,
        verdicts=verdicts,
        decision=decision,
        leftover_processes=leftover,
    )
    (base / "live.json").write_text(json.dumps(out.as_dict(), indent=2, default=float))
    say(f"          report: {base / 'live.json'}")
    return out
