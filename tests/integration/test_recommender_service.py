"""The recommender kit's service, in process (TestClient) and as a real uvicorn process: what it
recommends, what it leaves out, its cold-start fallback, parity with the notebook's decision on
the same candidates, bad input, and nothing left running."""

from __future__ import annotations

import importlib
import os
import sys
from types import SimpleNamespace

import httpx
import joblib
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from test_service_process import assert_group_gone

from fullcycle.data import simulate_interactions
from fullcycle.exceptions import ConfigError
from fullcycle.kit import Kit
from fullcycle.serving.process import ServiceProcess, free_port, kit_service_command

from conftest import REPO

KIT_DIR = REPO / "starter_kits" / "recommender"
#: Plain module names of both kits: imported here by plain name, forgotten afterwards.
PLAIN_NAMES = sorted(
    {p.stem for p in KIT_DIR.glob("*.py")}
    | {p.stem for p in (REPO / "starter_kits" / "fraud_detection").glob("*.py")}
)
#: The small shop: history before day 35, the catalogue of that day, scoring days 35-41.
SCORE_DAY = 35
MAX_BATCH = 1000


@pytest.fixture(scope="module")
def kit():
    """The kit's ``service``, ``model``, ``policy`` and ``features`` by plain name, as ``uvicorn
    --app-dir <kit>`` imports them; the plain names are forgotten after the module's tests."""
    saved = {n: sys.modules.pop(n) for n in PLAIN_NAMES if n in sys.modules}
    with pytest.MonkeyPatch.context() as mp:
        for name in [k for k in os.environ if k.startswith("FULLCYCLE_")]:
            mp.delenv(name)  # Settings read FULLCYCLE_*: nothing from outside the test
        mp.syspath_prepend(str(KIT_DIR))
        try:
            yield SimpleNamespace(
                **{
                    n: importlib.import_module(n)
                    for n in ("service", "model", "policy", "features")
                }
            )
        finally:
            for n in PLAIN_NAMES:
                sys.modules.pop(n, None)
            sys.modules.update(saved)


@pytest.fixture(scope="module")
def shop(kit):
    """A small simulated shop, the kit's reference fitted on its history, the notebook's
    hand-over and its candidate rows (each scoring user x the catalogue) with their scores."""
    sim = simulate_interactions(n_users=400, n_items=150, n_days=42, seed=5)
    events = sim.events
    history = events[events["EVENT_DAY"] < SCORE_DAY]
    items = sim.items[sim.items["FIRST_DAY"] < SCORE_DAY]
    items = items[["ITEM_ID", "CATEGORY", "PRICE", "IN_STOCK"]].reset_index(drop=True)
    recommender = kit.model.build_model(seed=0).fit(history)
    bought = kit.features.bought_items(history)
    window = events[(events["EVENT_DAY"] >= SCORE_DAY) & (events["EVENT_TYPE"] == "purchase")]
    users = np.sort(window["USER_ID"].unique())
    candidates = pd.DataFrame(
        {
            "USER_ID": np.repeat(users, len(items)),
            "ITEM_ID": np.tile(items["ITEM_ID"].to_numpy(), len(users)),
            "IN_STOCK": np.tile(items["IN_STOCK"].to_numpy(), len(users)),
        }
    )
    candidates.insert(0, "CANDIDATE_ID", np.arange(len(candidates)) * 7 + 3)
    # What the notebook writes: the policy's decision on the model's scores.
    scores = recommender.score(candidates["USER_ID"], candidates["ITEM_ID"])
    offline = kit.policy.decide(candidates, scores, bought)["score"].to_numpy()
    known = np.array([recommender.known_user(u) for u in users])
    return SimpleNamespace(
        history=history,
        items=items,
        model=recommender,
        bought=bought,
        candidates=candidates,
        offline=offline,
        known=users[known],
        cold=users[~known],
        handover={"model": recommender, "items": items, "bought": bought},
    )


@pytest.fixture(scope="module")
def client(kit, shop, tmp_path_factory):
    """The kit's app on the notebook's hand-over, read from a model_dir as in production."""
    model_dir = tmp_path_factory.mktemp("model")
    joblib.dump(shop.handover, model_dir / "model.joblib")
    app = kit.service.create_app(kit.service.Settings(model_dir=model_dir, max_batch=MAX_BATCH))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def expected_top(shop, user, k):
    """By hand: the user's k best catalogue items by model score (ties: smaller id), skipping
    what they bought and what is out of stock."""
    ids = shop.items["ITEM_ID"].to_numpy()
    s = shop.model.score(np.full(ids.size, user), ids)
    ok = shop.items["IN_STOCK"].to_numpy() & ~np.isin(ids, list(shop.bought.get(user, ())))
    order = np.lexsort((ids[ok], -s[ok]))
    return ids[ok][order][:k].tolist()


def candidate(row) -> dict:
    return {
        "candidate_id": int(row.CANDIDATE_ID),
        "user_id": int(row.USER_ID),
        "item_id": int(row.ITEM_ID),
        "in_stock": bool(row.IN_STOCK),
    }


def test_is_the_shop_a_real_test_of_the_rules(shop):
    """Without the rules, bought and out-of-stock items would reach the top 10 of known users,
    and some scoring users are cold: the checks below could fail."""
    ids = shop.items["ITEM_ID"].to_numpy()
    bought_on_top = out_of_stock_on_top = 0
    out_of_stock = set(ids[~shop.items["IN_STOCK"].to_numpy()])
    for u in shop.known:
        top = ids[np.argsort(-shop.model.score(np.full(ids.size, u), ids))[:10]]
        bought_on_top += len(set(top) & set(shop.bought.get(u, ())))
        out_of_stock_on_top += len(set(top) & out_of_stock)
    assert bought_on_top > 0 and out_of_stock_on_top > 0
    assert len(shop.known) > 20 and len(shop.cold) >= 1


def test_do_recommendations_leave_out_bought_and_out_of_stock_items(client, shop):
    out_of_stock = set(shop.items.loc[~shop.items["IN_STOCK"], "ITEM_ID"])
    for u in shop.known[:40]:
        r = client.post("/v1/recommend", json={"user_id": int(u), "k": 10})
        assert r.status_code == 200, r.text
        body = r.json()
        got = [x["item_id"] for x in body["items"]]
        assert body["user_id"] == u and body["fallback"] is None
        assert got == expected_top(shop, u, 10)
        assert not set(got) & set(shop.bought.get(u, ())) and not set(got) & out_of_stock
        scores = [x["score"] for x in body["items"]]
        assert scores == sorted(scores, reverse=True) and all(0 < s <= 1 for s in scores)


def test_does_a_cold_user_get_the_popular_items_and_is_it_said(client, shop):
    ids = shop.items["ITEM_ID"].to_numpy()
    stocked = shop.items["IN_STOCK"].to_numpy()
    known = shop.model.items_.get_indexer(ids)
    popular = np.where(known >= 0, shop.model.popularity_[known], -np.inf)
    want = ids[stocked][np.lexsort((ids[stocked], -popular[stocked]))][:5].tolist()
    for u in [int(shop.cold[0]), 10**12]:  # a scoring user with no history, an id never seen
        body = client.post("/v1/recommend", json={"user_id": u, "k": 5}).json()
        assert body["fallback"] == "popular"
        assert [x["item_id"] for x in body["items"]] == want
    assert (
        client.post("/v1/recommend", json={"user_id": int(shop.known[0])}).json()["fallback"]
        is None
    )
    assert (
        len(client.post("/v1/recommend", json={"user_id": int(shop.known[0])}).json()["items"])
        == 10
    )


def test_does_the_batch_answer_as_the_single_requests_do(client, shop):
    users = [int(shop.known[0]), int(shop.cold[0]), int(shop.known[0]), int(shop.known[5]), 10**9]
    r = client.post("/v1/recommend/batch", json={"users": users, "k": 7})
    assert r.status_code == 200, r.text
    singles = [client.post("/v1/recommend", json={"user_id": u, "k": 7}).json() for u in users]
    assert r.json() == {"results": singles}


def test_are_the_served_scores_the_notebooks_decision(client, shop):
    """Every candidate of the scoring users, in batches of the limit: the same scores as the
    notebook's ``policy.decide`` on the model's scores; 0 exactly where the rules exclude."""
    c = shop.candidates.sample(frac=1.0, random_state=1)  # order must not matter
    want = pd.Series(shop.offline, index=shop.candidates["CANDIDATE_ID"])
    got = {}
    for start in range(0, len(c), MAX_BATCH):
        chunk = [candidate(row) for row in c.iloc[start : start + MAX_BATCH].itertuples()]
        r = client.post("/v1/score/batch", json={"candidates": chunk})
        assert r.status_code == 200, r.text
        scores = r.json()["scores"]
        assert [s["candidate_id"] for s in scores] == [x["candidate_id"] for x in chunk]
        got.update((s["candidate_id"], s["score"]) for s in scores)
    served = pd.Series(got).reindex(want.index)
    np.testing.assert_allclose(served.to_numpy(), want.to_numpy(), rtol=0, atol=1e-12)
    # Excluded candidates are exactly the bought and out-of-stock ones.
    bought = [i in shop.bought.get(u, ()) for u, i in zip(c["USER_ID"], c["ITEM_ID"], strict=True)]
    excluded = pd.Series(~c["IN_STOCK"].to_numpy() | np.array(bought), index=c["CANDIDATE_ID"])
    assert ((served == 0) == excluded.reindex(want.index)).all()
    assert excluded.any() and (~excluded).any()


def test_does_one_candidate_score_as_in_a_batch_and_as_recommended(client, shop):
    """``/v1/score`` agrees with the batch and with ``/v1/recommend``'s scores; an item the
    catalogue does not list gets 0, not an error."""
    u = int(shop.known[1])
    rows = shop.candidates[shop.candidates["USER_ID"] == u]
    batch = client.post(
        "/v1/score/batch", json={"candidates": [candidate(r) for r in rows.itertuples()]}
    ).json()["scores"]
    by_item = dict(zip(rows["ITEM_ID"], (s["score"] for s in batch), strict=True))
    for row in rows.head(30).itertuples():
        one = client.post("/v1/score", json=candidate(row)).json()
        assert one == {"candidate_id": int(row.CANDIDATE_ID), "score": by_item[row.ITEM_ID]}
    top = client.post("/v1/recommend", json={"user_id": u, "k": 10}).json()["items"]
    assert all(x["score"] == by_item[x["item_id"]] for x in top)
    unknown = {"candidate_id": 1, "user_id": u, "item_id": 10**9, "in_stock": True}
    r = client.post("/v1/score", json=unknown)
    assert r.status_code == 200 and r.json() == {"candidate_id": 1, "score": 0.0}


GOOD_SCORE = {"candidate_id": 1, "user_id": 3, "item_id": 4, "in_stock": True}

BAD = [
    ("/v1/recommend", {"user_id": 3, "k": 0}, "k"),
    ("/v1/recommend", {"user_id": 3, "k": 101}, "k"),
    ("/v1/recommend", {"user_id": "three"}, "user_id"),
    ("/v1/recommend", {"user_id": -1}, "user_id"),
    ("/v1/recommend", {"user_id": 3, "K": 5}, "K"),
    ("/v1/recommend", {}, "user_id"),
    ("/v1/recommend", [{"user_id": 3}], "body"),
    ("/v1/recommend/batch", {"users": [], "k": 5}, "users"),
    ("/v1/recommend/batch", {"users": "3"}, "users"),
    ("/v1/recommend/batch", {"users": [3, {"x": 1}]}, "users"),
    ("/v1/score", {**GOOD_SCORE, "in_stock": "maybe"}, "in_stock"),
    ("/v1/score", {k: v for k, v in GOOD_SCORE.items() if k != "item_id"}, "item_id"),
    ("/v1/score", {**GOOD_SCORE, "price": 3.0}, "price"),
    ("/v1/score", {**GOOD_SCORE, "user_id": {"x": 1}}, "user_id"),
    ("/v1/score/batch", {"candidates": []}, "candidates"),
    ("/v1/score/batch", {"candidates": "rows"}, "candidates"),
    ("/v1/score/batch", {"candidates": [GOOD_SCORE, GOOD_SCORE]}, "repeated candidate_id"),
]


@pytest.mark.parametrize(("path", "body", "named"), BAD, ids=[f"{p} {n}" for p, _, n in BAD])
def test_is_bad_input_a_422_that_names_the_field(client, path, body, named):
    r = client.post(path, json=body)
    assert r.status_code == 422, r.text
    assert named in r.text


def test_are_oversized_batches_and_broken_bodies_refused(kit, shop):
    settings = kit.service.Settings(max_batch=3)
    with TestClient(kit.service.create_app(settings, kit.service.HandOver(**shop.handover))) as c:
        r = c.post("/v1/recommend/batch", json={"users": [1, 2, 3, 4]})
        assert r.status_code == 413 and "limit of 3" in r.text
        four = [{**GOOD_SCORE, "candidate_id": i} for i in range(4)]
        r = c.post("/v1/score/batch", json={"candidates": four})
        assert r.status_code == 413 and "limit of 3" in r.text
        assert c.post("/v1/recommend/batch", json={"users": [1, 2, 3]}).status_code == 200
        r = c.post("/v1/score", content=b"{not json", headers={"content-type": "application/json"})
        assert r.status_code == 422
        health = c.get("/health").json()
    assert health["status"] == "ok" and health["items"] == len(shop.items)


def test_does_a_missing_hand_over_say_what_the_notebook_must_save(kit, shop, tmp_path):
    with pytest.raises(ConfigError, match="FULLCYCLE_MODEL_DIR"):
        kit.service.create_app(kit.service.Settings())
    with pytest.raises(ConfigError, match="does not exist: run the notebook.s hand-over cell"):
        kit.service.load_handover(tmp_path)
    joblib.dump({"model": shop.model, "items": shop.items}, tmp_path / "model.joblib")
    with pytest.raises(ConfigError, match=r"lacks \['bought'\].*bought_items"):
        kit.service.load_handover(tmp_path)


@pytest.mark.integration
def test_does_the_real_process_serve_a_notebooks_hand_over_and_stop_cleanly(shop, tmp_path):
    """The notebook loads the kit with ``fullcycle.kit.Kit`` (private module names) and saves
    the model; ``uvicorn --factory service:create_app --app-dir <kit>`` serves it on loopback
    with the notebook's scores, refuses bad input, and leaves no process behind."""
    notebook_kit = Kit(KIT_DIR)
    fitted = notebook_kit.build_model(seed=0).fit(shop.history)
    assert type(fitted).__module__.startswith("_fullcycle_kit_")
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    joblib.dump({**shop.handover, "model": fitted}, model_dir / "model.joblib")
    port = free_port()
    proc = ServiceProcess(
        kit_service_command(KIT_DIR, port=port),
        f"http://127.0.0.1:{port}",
        log_path=tmp_path / "service.log",
        env={"FULLCYCLE_MODEL_DIR": str(model_dir)},
        cwd=tmp_path,
    )
    chunk = shop.candidates.iloc[:500]
    with proc:
        pid = proc.proc.pid
        with httpx.Client(base_url=proc.url) as c:
            r = c.post(
                "/v1/score/batch", json={"candidates": [candidate(x) for x in chunk.itertuples()]}
            )
            assert r.status_code == 200, r.text
            served = [s["score"] for s in r.json()["scores"]]
            np.testing.assert_allclose(served, shop.offline[:500], rtol=0, atol=1e-12)
            u = int(shop.known[0])
            body = c.post("/v1/recommend", json={"user_id": u, "k": 10}).json()
            assert [x["item_id"] for x in body["items"]] == expected_top(shop, u, 10)
            assert c.post("/v1/recommend", json={"user_id": u, "k": 0}).status_code == 422
            assert c.post("/v1/score", json={"candidate_id": 1}).status_code == 422
    assert_group_gone(pid)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{proc.url}/health", timeout=1)
