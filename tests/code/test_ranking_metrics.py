"""Do the ranking metrics, coverage, novelty, the popularity baseline and revenue@k match
hand-computed cases, and Microsoft Recommenders' definitions?"""

import math

import numpy as np
import pandas as pd
import pytest

from fullcycle.exceptions import ConfigError, DataError
from fullcycle.metrics import (
    RevenueAtK,
    catalogue_coverage,
    map_at_k,
    ndcg_at_k,
    novelty,
    popularity_recommendations,
    precision_at_k,
    ranking_metrics,
    recall_at_k,
    technical,
    top_k_positions,
)


def _recs(lists: dict) -> pd.DataFrame:
    """{user: [item at rank 1, item at rank 2, ...]} as a recommendations frame."""
    rows = [(u, i, r) for u, items in lists.items() for r, i in enumerate(items, start=1)]
    return pd.DataFrame(rows, columns=["USER_ID", "ITEM_ID", "RANK"])


def _truth(pairs: dict) -> pd.DataFrame:
    """{user: [relevant items]} as a truth frame."""
    rows = [(u, i) for u, items in pairs.items() for i in items]
    return pd.DataFrame(rows, columns=["USER_ID", "ITEM_ID"])


# User 1 has 4 relevant items, hit at positions 1 and 3 of 3; user 2 has 1, hit at position 2;
# user 3 has 2 and no recommendations; user 4 has recommendations and is not in the truth.
TRUTH = _truth({1: [10, 20, 30, 70], 2: [40], 3: [50, 60]})
RECS = _recs({1: [10, 99, 30], 2: [41, 40, 42], 4: [10, 20, 30]})
LOG2_3 = math.log2(3)


def test_the_hand_computed_case():
    """k = 3. User 1: hits at 1 and 3, n = 4.
        precision 2/3, recall 2/4, DCG = 1/log2(2) + 1/log2(4) = 1.5,
        IDCG = 1 + 1/log2(3) + 1/2 = 2.130930, nDCG = 0.703918,
        AP = (1/1 + 2/3) / 4 = 0.416667 (min_k: / 3 = 0.555556).
    User 2: hit at 2, n = 1: precision 1/3, recall 1, nDCG = (1/log2 3) / 1 = 0.630930, AP = 1/2.
    User 3: no recommendations: 0 everywhere. User 4 is not in the truth: ignored.
    Means over the 3 truth users: precision 1/3, recall 0.5, nDCG 0.444949,
    MAP 0.305556 (min_k: 0.351852)."""
    idcg = 1 + 1 / LOG2_3 + 0.5
    ndcg_1, ndcg_2 = 1.5 / idcg, 1 / LOG2_3
    report = ranking_metrics(RECS, TRUTH, k=3)
    assert report.n_users == 3
    assert report.per_user.index.tolist() == [1, 2, 3]
    assert report.per_user["hits"].tolist() == [2, 1, 0]
    assert report.per_user["n_recommended"].tolist() == [3, 3, 0]
    assert report.per_user["ndcg"].tolist() == pytest.approx([ndcg_1, ndcg_2, 0.0])
    assert report.precision == pytest.approx(1 / 3)
    assert report.recall == pytest.approx(0.5)
    assert report.ndcg == pytest.approx((ndcg_1 + ndcg_2) / 3) == pytest.approx(0.444949, abs=1e-6)
    assert report.map == pytest.approx((5 / 12 + 0.5) / 3) == pytest.approx(0.305556, abs=1e-6)
    min_k = map_at_k(RECS, TRUTH, 3, denominator="min_k")
    assert min_k == pytest.approx((5 / 9 + 0.5) / 3) == pytest.approx(0.351852, abs=1e-6)
    assert report.as_dict() == {
        "ndcg@3": report.ndcg,
        "precision@3": report.precision,
        "recall@3": report.recall,
        "map@3": report.map,
    }
    assert ndcg_at_k(RECS, TRUTH, 3) == report.ndcg
    assert precision_at_k(RECS, TRUTH, 3) == report.precision
    assert recall_at_k(RECS, TRUTH, 3) == report.recall


def test_the_same_case_by_microsofts_definitions():
    """Microsoft Recommenders' ``python_evaluation`` (``merge_ranking_true_pred``) averages over
    the users in both frames: users 1 and 2 (user 3 has no recommendations, user 4 no truth).
        precision_at_k = sum(hits / k) / 2 = (2/3 + 1/3) / 2 = 0.5
        recall_at_k    = sum(hits / actual) / 2 = (2/4 + 1/1) / 2 = 0.75
        ndcg_at_k      = sum(dcg / idcg) / 2, natural logs: user 1 (1/ln 2 + 1/ln 4) /
                         (1/ln 2 + 1/ln 3 + 1/ln 4) = 0.703918 (the base cancels), user 2
                         (1/ln 3) / (1/ln 2) = 0.630930: (0.703918 + 0.630930) / 2 = 0.667424
        map_at_k (the README table's, reco_utils 2020) = sum(rr / actual) / 2 with
                         rr = sum over hits of (hit number / rank): user 1 (1/1 + 2/3) / 4,
                         user 2 (1/2) / 1: (0.416667 + 0.5) / 2 = 0.458333
        map_at_k (later releases) = sum(rr / min(actual, k)) / 2 = (0.555556 + 0.5) / 2 = 0.527778
    """
    common = ranking_metrics(RECS, TRUTH, k=3, users="common")
    assert common.n_users == 2
    assert common.precision == pytest.approx(0.5)
    assert common.recall == pytest.approx(0.75)
    dcg_1 = 1 / math.log(2) + 1 / math.log(4)
    idcg_1 = 1 / math.log(2) + 1 / math.log(3) + 1 / math.log(4)
    ms_ndcg = (dcg_1 / idcg_1 + (1 / math.log(3)) / (1 / math.log(2))) / 2
    assert common.ndcg == pytest.approx(ms_ndcg) == pytest.approx(0.667424, abs=1e-6)
    assert common.map == pytest.approx(0.458333, abs=1e-6)
    assert map_at_k(RECS, TRUTH, 3, denominator="min_k", users="common") == pytest.approx(
        0.527778, abs=1e-6
    )


def _microsoft_transcription(truth, recs, k, users="common", denominator="relevant"):
    """Microsoft's formulas written as a plain loop (not their code): common users, each user's
    top k by rank, precision hits/k, recall hits/actual, nDCG with natural logs over
    min(actual, k) ideal positions, MAP rr / actual (or / min(actual, k)), sums / n users."""
    truth_sets = truth.groupby("USER_ID")["ITEM_ID"].apply(set).to_dict()
    lists = recs.sort_values(["USER_ID", "RANK"]).groupby("USER_ID")["ITEM_ID"].apply(list)
    lists = lists.to_dict()
    scored = [u for u in truth_sets if u in lists] if users == "common" else list(truth_sets)
    totals = {"precision": 0.0, "recall": 0.0, "ndcg": 0.0, "map": 0.0}
    for u in scored:
        actual = truth_sets[u]
        hits = [r for r, item in enumerate(lists.get(u, [])[:k], start=1) if item in actual]
        totals["precision"] += len(hits) / k
        totals["recall"] += len(hits) / len(actual)
        dcg = sum(1 / math.log(1 + r) for r in hits)
        idcg = sum(1 / math.log(1 + r) for r in range(1, min(len(actual), k) + 1))
        totals["ndcg"] += dcg / idcg
        rr = sum(j / r for j, r in enumerate(hits, start=1))
        totals["map"] += rr / (len(actual) if denominator == "relevant" else min(len(actual), k))
    return {name: value / len(scored) for name, value in totals.items()}


@pytest.mark.parametrize("users", ["common", "truth"])
@pytest.mark.parametrize("denominator", ["relevant", "min_k"])
def test_random_lists_agree_with_the_transcription(users, denominator):
    """60 users, 50 items, lists of 0-12 items, k = 10: every mean equals the loop's."""
    rng = np.random.default_rng(7)
    truth = pd.DataFrame(
        {"USER_ID": rng.integers(0, 60, 400), "ITEM_ID": rng.integers(0, 50, 400)}
    ).drop_duplicates()
    lists = {u: list(rng.permutation(50)[: rng.integers(0, 13)]) for u in range(10, 75)}
    recs = _recs(lists)
    expected = _microsoft_transcription(truth, recs, 10, users, denominator)
    got = ranking_metrics(recs, truth, 10, map_denominator=denominator, users=users)
    assert got.as_dict() == pytest.approx({f"{m}@10": v for m, v in expected.items()})


def test_agrees_with_the_graders_ndcg_on_scored_rows():
    """technical.ndcg_at_k scores per-row scores grouped by user: every (user, item) pair scored
    -RANK (unrecommended items far below) gives the same nDCG@5 as the list itself."""
    rng = np.random.default_rng(3)
    truth = pd.DataFrame(
        {"USER_ID": rng.integers(0, 20, 80), "ITEM_ID": rng.integers(0, 30, 80)}
    ).drop_duplicates()
    recs = _recs({u: list(rng.permutation(30)[:8]) for u in range(20)})
    grid = pd.MultiIndex.from_product([range(20), range(30)], names=["USER_ID", "ITEM_ID"])
    rows = grid.to_frame(index=False)
    rank = rows.merge(recs, how="left", on=["USER_ID", "ITEM_ID"])["RANK"]
    rows["RELEVANT"] = rows.set_index(["USER_ID", "ITEM_ID"]).index.isin(
        truth.set_index(["USER_ID", "ITEM_ID"]).index
    )
    scores = -rank.fillna(1000.0).to_numpy()
    graders = technical.ndcg_at_k(rows, scores, 5, label="RELEVANT", group="USER_ID")
    assert ndcg_at_k(recs, truth, 5) == pytest.approx(graders)


def test_positions_follow_rank_and_close_gaps():
    """Ranks 7, 2, 40 (in that row order) are positions 2, 1, 3; with k = 2 only two count.
    Truth events repeat a pair (a view and a purchase): it is one relevant item."""
    recs = pd.DataFrame({"USER_ID": [1, 1, 1], "ITEM_ID": [5, 6, 7], "RANK": [7, 2, 40]})
    top = top_k_positions(recs, 2)
    assert top[["ITEM_ID", "POSITION"]].values.tolist() == [[6, 1], [5, 2]]
    truth = _truth({1: [7, 7, 5]})
    report = ranking_metrics(recs, truth, 2)
    assert report.per_user.loc[1, "n_relevant"] == 2
    # hit at position 2 only: precision 1/2, recall 1/2, nDCG (1/log2 3) / (1 + 1/log2 3)
    assert report.precision == pytest.approx(0.5)
    assert report.recall == pytest.approx(0.5)
    assert report.ndcg == pytest.approx((1 / LOG2_3) / (1 + 1 / LOG2_3))


def test_short_lists_divide_precision_by_k_and_perfect_lists_score_one():
    """A perfect list of 2 for a user with 2 relevant items, k = 10: precision 2/10, recall 1,
    nDCG 1, MAP 1 (both denominators, n <= k)."""
    truth, recs = _truth({1: [3, 4]}), _recs({1: [4, 3]})
    report = ranking_metrics(recs, truth, 10)
    assert (report.precision, report.recall, report.ndcg, report.map) == pytest.approx(
        (0.2, 1.0, 1.0, 1.0)
    )
    assert map_at_k(recs, truth, 10, denominator="min_k") == pytest.approx(1.0)


def test_an_empty_truth_scores_nan():
    report = ranking_metrics(RECS, TRUTH.iloc[:0], 3)
    assert report.n_users == 0 and math.isnan(report.ndcg) and math.isnan(report.map)


@pytest.mark.parametrize(
    ("recs", "message"),
    [
        (_recs({1: [10, 10]}), "the same item twice"),
        (pd.DataFrame({"USER_ID": [1, 1], "ITEM_ID": [1, 2], "RANK": [1, 1]}), "same RANK"),
        (pd.DataFrame({"USER_ID": [1], "ITEM_ID": [1], "RANK": [0]}), "numbers >= 1"),
        (pd.DataFrame({"USER_ID": [1], "ITEM_ID": [1], "RANK": ["first"]}), "numbers >= 1"),
        (pd.DataFrame({"USER_ID": [1], "ITEM_ID": [1]}), r"columns \['RANK'\]"),
        (pd.DataFrame({"USER_ID": [1], "ITEM_ID": [None], "RANK": [1]}), "missing ITEM_ID"),
        (pd.DataFrame({"USER_ID": ["1"], "ITEM_ID": [10], "RANK": [1]}), "Cast both"),
    ],
)
def test_bad_recommendations_are_refused_with_the_fix(recs, message):
    with pytest.raises(DataError, match=message):
        ranking_metrics(recs, TRUTH, 3)


def test_bad_settings_are_refused_with_the_choices():
    with pytest.raises(ConfigError, match="positive integer"):
        ranking_metrics(RECS, TRUTH, 0)
    with pytest.raises(ConfigError, match=r"choose from \['relevant', 'min_k'\]"):
        ranking_metrics(RECS, TRUTH, 3, map_denominator="k")
    with pytest.raises(ConfigError, match=r"choose from \['truth', 'common'\]"):
        ranking_metrics(RECS, TRUTH, 3, users="all")


def test_catalogue_coverage_by_hand():
    """Catalogue of 5 items; top-2 lists show items 10, 99, 41, 40, 20 (user 4: 10, 20):
    items 10, 20, 40, 41, 99 of a catalogue of 10 -> 5/10. With k = 1: 10 and 41 -> 2/10."""
    catalogue = pd.DataFrame({"ITEM_ID": [10, 20, 30, 40, 41, 42, 50, 60, 70, 99]})
    assert catalogue_coverage(RECS, catalogue, k=2) == pytest.approx(0.5)
    assert catalogue_coverage(RECS, catalogue["ITEM_ID"].to_numpy(), k=1) == pytest.approx(0.2)
    with pytest.raises(DataError, match=r"not in the catalogue \(e.g. \[99\]\)"):
        catalogue_coverage(RECS, [10, 20, 30, 40, 41, 42], k=2)


def test_novelty_by_hand():
    """Training events: item 1 twice, items 2 and 3 once: shares 1/2, 1/4, 1/4, self-information
    1, 2, 2 bits. Lists (k = 2): user 1 [1, 2], user 2 [1, 9]; item 9 never occurs in training
    and is left out: (1 + 2 + 1) / 3 = 4/3. (Microsoft's novelty would give (1 + 2 + 1 + 0) / 4.)"""
    train = pd.DataFrame({"USER_ID": [5, 6, 5, 7], "ITEM_ID": [1, 1, 2, 3]})
    recs = _recs({1: [1, 2, 3], 2: [1, 9]})
    assert novelty(recs, train, k=2) == pytest.approx(4 / 3)
    assert math.isnan(novelty(_recs({1: [9]}), train))


def test_the_popularity_baseline_by_hand():
    """Training: item 10 has 3 events, 20 has 2, 30 has 1 (30 is the only purchase).
    User 1 saw 10 and 20 -> [30] (the catalogue runs out); user 2 saw 10 -> [20, 30];
    user 9 is new -> [10, 20]. Counting purchases only, everyone gets 30 first."""
    train = pd.DataFrame(
        {
            "USER_ID": [1, 1, 2, 3, 3, 3],
            "ITEM_ID": [10, 20, 10, 30, 10, 20],
            "EVENT_TYPE": ["view", "view", "view", "purchase", "view", "view"],
        }
    )
    recs = popularity_recommendations(train, [1, 2, 9], k=2)
    assert recs[["USER_ID", "ITEM_ID", "RANK"]].values.tolist() == [
        [1, 30, 1],
        [2, 20, 1],
        [2, 30, 2],
        [9, 10, 1],
        [9, 20, 2],
    ]
    assert recs["SCORE"].tolist() == [1, 2, 1, 3, 2]
    everyone = popularity_recommendations(train, [1], k=2, exclude_seen=False)
    assert everyone["ITEM_ID"].tolist() == [10, 20]
    bestsellers = popularity_recommendations(train, [9], k=1, event_types=["purchase"])
    assert bestsellers["ITEM_ID"].tolist() == [30]


def test_the_popularity_baseline_skips_many_seen_items():
    """A user who has seen the 500 most popular of 510 items gets the next 10, in order."""
    popular = np.repeat(np.arange(510), np.arange(510, 0, -1))  # item i has 510 - i events
    train = pd.DataFrame({"USER_ID": 0, "ITEM_ID": popular})
    train = pd.concat([train, pd.DataFrame({"USER_ID": 1, "ITEM_ID": np.arange(500)})])
    recs = popularity_recommendations(train, [1], k=10)
    assert recs["ITEM_ID"].tolist() == list(range(500, 510))


# --- revenue@k --------------------------------------------------------------------------------


def _window() -> pd.DataFrame:
    """Scoring days 10-11. User 1 buys item 1 twice (50 each) and item 3 (20), views item 2;
    user 2 buys item 2 (100) and item 4 (5); user 3 only views."""
    rows = [
        (10, 1, 1, "purchase", 50.0),
        (11, 1, 1, "purchase", 50.0),
        (10, 1, 2, "view", 100.0),
        (11, 1, 3, "purchase", 20.0),
        (10, 2, 2, "purchase", 100.0),
        (10, 2, 4, "purchase", 5.0),
        (11, 3, 1, "view", 50.0),
    ]
    return pd.DataFrame(rows, columns=["EVENT_DAY", "USER_ID", "ITEM_ID", "EVENT_TYPE", "PRICE"])


TRAIN = pd.DataFrame({"USER_ID": [4, 5, 6, 4, 5, 1], "ITEM_ID": [2, 2, 2, 4, 4, 1]})
LISTS = _recs({1: [1, 2, 3], 2: [4, 2], 3: [1, 2]})
MODEL = RevenueAtK(k=2, attribution_rate=0.1)


def test_revenue_at_k_by_hand():
    """k = 2, attribution 0.1. User 1's top 2 are items 1 and 2: item 1 is bought twice,
    2 * 50 * 0.1 = 10; item 3 (rank 3) is outside the top 2. User 2: items 4 and 2 are bought,
    (5 + 100) * 0.1 = 10.5. User 3 buys nothing. revenue@2 = 20.5: day 10 = 5 + 0.5 + 10 = 15.5,
    day 11 = 5."""
    report = MODEL.evaluate(LISTS, _window())
    assert report.net_value == pytest.approx(20.5)
    assert report.per_day.to_dict() == pytest.approx({10: 15.5, 11: 5.0})
    assert report.detail == {
        "purchases": 5,
        "purchase_value": 225.0,
        "hits": 4,
        "buyers": 2,
        "buyers_hit": 2,
    }


def test_oracle_baseline_lift_and_share_by_hand():
    """Oracle, k = 2: user 1 items 1 (100 spent) and 3 (20), user 2 items 2 (100) and 4 (5):
    (120 + 105) * 0.1 = 22.5. Popularity from training: item 2 (3 events), 4 (2), 1 (1).
    User 1 saw item 1 -> [2, 4], users 2 and 3 -> [2, 4]: only user 2 buys them, 10.5.
    lift = 20.5 / 10.5 = 1.952381, share of the oracle = 20.5 / 22.5 = 0.911111."""
    oracle = MODEL.oracle_recommendations(_window())
    assert oracle[["USER_ID", "ITEM_ID", "RANK"]].values.tolist() == [
        [1, 1, 1],
        [1, 3, 2],
        [2, 2, 1],
        [2, 4, 2],
    ]
    assert MODEL.oracle(_window()).net_value == pytest.approx(22.5)
    base = MODEL.baseline_recommendations(TRAIN, [1, 2, 3])
    assert base.groupby("USER_ID")["ITEM_ID"].apply(list).to_dict() == {
        1: [2, 4],
        2: [2, 4],
        3: [2, 4],
    }
    figures = MODEL.compare(LISTS, _window(), TRAIN)
    assert figures == pytest.approx(
        {
            "net_value": 20.5,
            "baseline_net_value": 10.5,
            "oracle_net_value": 22.5,
            "value_vs_baseline": 20.5 / 10.5,
            "share_of_oracle": 20.5 / 22.5,
        }
    )
    assert MODEL.evaluate(oracle, _window()).net_value >= MODEL.evaluate(LISTS, _window()).net_value


def test_missing_prices_are_filled_from_the_catalogue_or_refused():
    """User 2's purchase of item 4 lost its price; the catalogue lists it at 7:
    revenue = 10 + (7 + 100) * 0.1 = 20.7."""
    window = _window()
    window.loc[5, "PRICE"] = np.nan
    with pytest.raises(DataError, match="1 purchases have no PRICE; pass catalogue="):
        MODEL.evaluate(LISTS, window)
    catalogue = pd.DataFrame({"ITEM_ID": [1, 2, 3, 4], "PRICE": [50.0, 100.0, 20.0, 7.0]})
    assert MODEL.evaluate(LISTS, window, catalogue=catalogue).net_value == pytest.approx(20.7)


def test_revenue_settings_and_columns_are_checked():
    with pytest.raises(ConfigError, match=r"attribution_rate must be in \(0, 1\]"):
        RevenueAtK(attribution_rate=0.0)
    with pytest.raises(ConfigError, match="k must be an integer >= 1"):
        RevenueAtK(k=0)
    with pytest.raises(DataError, match="needs column 'EVENT_TYPE'"):
        MODEL.evaluate(LISTS, _window().drop(columns="EVENT_TYPE"))
    assert RevenueAtK().params() == {"k": 10, "attribution_rate": 0.3, "purchase_type": "purchase"}
