"""Does the recommender kit's reference model do what the service, notebook and grader rely on?

Behavioural tests of ``starter_kits/recommender/model.py`` (EASE with a popularity fallback)
and the ``features.py`` functions it is built on: the closed form against a direct
computation, better than popularity on simulated shops, the cold-start fallback,
exclusions, the agreement of ``score`` and ``recommend``, pickling, clear errors.
"""

import io

import joblib
import numpy as np
import pandas as pd
import pytest

from fullcycle.data.interactions import simulate_interactions
from fullcycle.data.protocols import interaction_time_split
from fullcycle.exceptions import ConfigError, DataError
from fullcycle.kit import Kit
from fullcycle.metrics.ranking import popularity_recommendations, ranking_metrics


@pytest.fixture(scope="module")
def kit(repo):
    return Kit(repo / "starter_kits" / "recommender")


@pytest.fixture(scope="module")
def features(kit):
    return kit.module("features")


@pytest.fixture(scope="module")
def EASE(kit):
    return kit.module("model").EASERecommender


def _events(rows) -> pd.DataFrame:
    """(day, user, item, type) rows as an interaction events frame, ids in row order."""
    frame = pd.DataFrame(rows, columns=["EVENT_DAY", "USER_ID", "ITEM_ID", "EVENT_TYPE"])
    frame.insert(0, "EVENT_ID", np.arange(len(frame), dtype="int64"))
    frame.insert(
        1, "EVENT_TIME", pd.Timestamp("2024-01-01") + pd.to_timedelta(frame.EVENT_DAY, "D")
    )
    frame["RATING"] = np.nan
    frame["PRICE"] = 10.0
    return frame


#: Four users, four items (10, 11, 12, 13). User 1 views item 10 twice and buys it; item 13 is
#: only ever viewed once, on day 0.
TINY = _events(
    [
        (0, 1, 10, "view"),
        (1, 1, 10, "view"),
        (1, 1, 10, "purchase"),
        (1, 1, 11, "cart"),
        (2, 2, 10, "view"),
        (2, 2, 12, "view"),
        (3, 3, 11, "view"),
        (3, 3, 12, "purchase"),
        (0, 4, 13, "view"),
        (4, 4, 12, "view"),
        (4, 4, 11, "view"),
    ]
)


def test_the_feedback_matrix_by_hand(features):
    """Summed EVENT_WEIGHTS per (user, item), users and items in id order; with a half-life of
    1 day an event d days before the user's own last event counts 2 ** -d."""
    m = features.interaction_matrix(TINY)
    assert m.users.tolist() == [1, 2, 3, 4] and m.items.tolist() == [10, 11, 12, 13]
    expected = np.array([[7, 3, 0, 0], [1, 0, 1, 0], [0, 1, 5, 0], [0, 1, 1, 1]], dtype=float)
    np.testing.assert_array_equal(m.matrix.toarray(), expected)
    decayed = features.interaction_matrix(TINY, half_life_days=1.0).matrix.toarray()
    # User 1's last day is 1: day-0 view 0.5, day-1 view 1, purchase 5; user 4's is 4.
    assert decayed[0, 0] == pytest.approx(0.5 + 1 + 5)
    assert decayed[3, 2] == pytest.approx(1.0) and decayed[3, 3] == pytest.approx(2.0**-4)
    assert decayed[2, 2] == pytest.approx(5.0)


def test_bought_seen_and_popular_items_by_hand(features):
    """Bought = purchase events (ratings on MovieLens); popularity counts the window before
    the day only."""
    assert features.bought_items(TINY) == {1: {10}, 3: {12}}
    assert features.seen_items(TINY)[4] == {11, 12, 13}
    rated = TINY.assign(EVENT_TYPE="rating")
    assert features.bought_items(rated)[4] == {11, 12, 13}
    pop = features.item_popularity(TINY, day=3, window_days=2)  # days 1 and 2
    assert pop.to_dict() == {10: 3.0, 11: 1.0, 12: 1.0}
    weighted = features.item_popularity(TINY, 3, 2, items=[10, 13], weights=features.EVENT_WEIGHTS)
    assert weighted.to_dict() == {10: 7.0, 13: 0.0}


def test_ease_weights_match_the_closed_form(EASE):
    """B = I - P / diag(P) with P = (X^T X + lambda I)^-1, X = log1p(weights), computed here
    directly; and for one pair by hand: with two items B[0, 1] is the ridge coefficient
    x0.x1 / (x0.x0 + lambda)."""
    lam = 2.0
    model = EASE(l2=lam, half_life_days=None, repeat_weight=0.0).fit(TINY)
    X = np.log1p(np.array([[7, 3, 0, 0], [1, 0, 1, 0], [0, 1, 5, 0], [0, 1, 1, 1]], float))
    P = np.linalg.inv(X.T @ X + lam * np.eye(4))
    B = np.eye(4) - P / np.diag(P)[None, :]
    np.testing.assert_allclose(model.B_, B, atol=1e-12)
    assert np.all(np.diag(model.B_) == 0.0)
    np.testing.assert_allclose(model.score([1] * 4, [10, 11, 12, 13]), X[0] @ B, atol=1e-12)

    two = TINY[TINY["ITEM_ID"].isin([10, 11])]
    x = np.log1p(np.array([[7.0, 3.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]))
    pair = EASE(l2=lam, half_life_days=None, repeat_weight=0.0).fit(two)
    assert pair.B_[0, 1] == pytest.approx(x[:, 0] @ x[:, 1] / (x[:, 0] @ x[:, 0] + lam))


def _ndcg(model, split, seen) -> float:
    users = split.truth["USER_ID"].unique()
    rows = [
        (user, item, rank)
        for user in users
        for rank, (item, _) in enumerate(model.recommend(user, 10, exclude=seen.get(user, ())), 1)
    ]
    return ranking_metrics(
        pd.DataFrame(rows, columns=["USER_ID", "ITEM_ID", "RANK"]), split.truth
    ).ndcg


def test_the_reference_beats_popularity_on_small_shops(kit, features):
    """On three small simulated shops (1,000 users, 200 items, 6 weeks; scored on week 6), the
    reference's nDCG@10 beats the popularity baseline on each and by 30% on average."""
    ratios = []
    for seed in range(3):
        sim = simulate_interactions(
            n_users=1000,
            n_items=200,
            n_days=42,
            new_users_per_day=5,
            new_items_per_day=1,
            seed=seed,
        )
        split = interaction_time_split(sim.events, 35, 7)
        model = kit.build_model(seed=0).fit(split.train)
        ours = _ndcg(model, split, features.seen_items(split.train))
        users = split.truth["USER_ID"].unique()
        popular = ranking_metrics(popularity_recommendations(split.train, users), split.truth).ndcg
        assert ours > popular, (seed, ours, popular)
        ratios.append(ours / popular)
    assert np.mean(ratios) > 1.3, ratios


def test_cold_users_get_the_recent_popularity(EASE):
    """A user without history gets items by their weighted events in the last
    popularity_days days (ties by all-time events, then item id), the same in score."""
    model = EASE(popularity_days=2).fit(TINY)  # days 3 and 4
    assert not model.known_user(99) and model.known_user(4)
    # Days 3-4: item 12 has 5 + 1, item 11 has 1 + 1, items 10 and 13 none; all-time 10: 8,
    # 13: 1.
    assert [item for item, _ in model.recommend(99, k=4)] == [12, 11, 10, 13]
    scores = model.score([99] * 4, [10, 11, 12, 13])
    assert scores[2] == pytest.approx(1.0) and scores.min() >= 0.0
    assert scores[2] > scores[1] > scores[0] > scores[3]
    assert [s for _, s in model.recommend(99, k=4)] == sorted(scores.tolist(), reverse=True)


def test_recommend_excludes_and_keeps_to_allowed_items(EASE):
    model = EASE(half_life_days=None).fit(TINY)
    everything = [item for item, _ in model.recommend(2, k=4)]
    assert sorted(everything) == [10, 11, 12, 13]
    kept = [item for item, _ in model.recommend(2, k=4, exclude={10, 12})]
    assert kept == [i for i in everything if i not in (10, 12)]
    assert [i for i, _ in model.recommend(2, k=4, allowed=[13, 11, 999])] == [
        i for i in everything if i in (11, 13)
    ]
    assert model.recommend(2, k=4, allowed=[11], exclude=[11]) == []
    assert len(model.recommend(2, k=2)) == 2
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ConfigError, match="positive integer"):
            model.recommend(2, k=bad)


def test_score_orders_items_as_recommend_does(kit):
    """For known and cold users, sorting score() over every item (ties by item order) gives
    recommend()'s list with the same scores; unknown items score below every known one."""
    sim = simulate_interactions(n_users=200, n_items=80, n_days=21, seed=3)
    model = kit.build_model(seed=0).fit(sim.events[sim.events["EVENT_DAY"] < 20])
    items = model.items_.to_numpy()
    users = [*sim.events["USER_ID"].unique()[:20].tolist(), 10**9]
    grid = model.score(np.repeat(users, len(items)), np.tile(items, len(users)))
    for row, user in enumerate(users):
        scores = grid[row * len(items) : (row + 1) * len(items)]
        order = np.argsort(-scores, kind="stable")
        listed = model.recommend(user, k=len(items))
        assert [item for item, _ in listed] == items[order].tolist()
        assert [s for _, s in listed] == scores[order].tolist()
        unknown = model.score([user], [-1])[0]
        assert np.isfinite(unknown) and unknown < scores.min()
    assert not model.known_user(10**9)


def test_a_pickled_model_scores_the_same(kit):
    sim = simulate_interactions(n_users=150, n_items=60, n_days=14, seed=4)
    model = kit.build_model(seed=0).fit(sim.events)
    buffer = io.BytesIO()
    joblib.dump({"model": model}, buffer)
    buffer.seek(0)
    loaded = joblib.load(buffer)["model"]
    users = np.repeat(sim.events["USER_ID"].unique()[:30], 20)
    items = np.tile(model.items_.to_numpy()[:20], 30)
    np.testing.assert_array_equal(loaded.score(users, items), model.score(users, items))
    assert loaded.recommend(int(users[0]), 5) == model.recommend(int(users[0]), 5)


def test_bad_events_and_pairs_are_refused_clearly(kit):
    model = kit.build_model(seed=0)
    with pytest.raises(DataError, match=r"no column\(s\) \['USER_ID'\]"):
        model.fit(TINY.drop(columns="USER_ID"))
    with pytest.raises(DataError, match="EVENT_TYPE with no weight"):
        model.fit(TINY.assign(EVENT_TYPE="click"))
    with pytest.raises(DataError, match="empty"):
        model.fit(TINY.iloc[:0])
    model.fit(TINY)
    with pytest.raises(DataError, match="equal length"):
        model.score([1, 2], [10])
