"""Does each stage probe give the reference its points and take them from a kit that is wrong?

Each test runs one probe step of the grading pipeline on a fixture kit (the
reference kit with one module replaced) against a hidden world of a fixed
secret seed at tiny scale; no notebook runs.
"""

from __future__ import annotations

import shutil
import textwrap

import numpy as np
import pytest
from kits import KIT, config, decent_scores, fraud_spec, make_kit, prepared_job, run

from grading.rubric import apply_rubric


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The fraud spec (every stage in the rubric) and the hidden world of a fixed seed."""
    from fullcycle.holdout import build_holdout

    spec = fraud_spec()
    cfg = config(tmp_path_factory.mktemp("cfg"))
    return spec, build_holdout(spec, cfg.seed_int, cfg.scale)


def _job(world, tmp_path, kit=KIT):
    spec, holdout = world
    return prepared_job(spec, config(tmp_path), kit, tmp_path, holdout)


def _points(job, metric: str) -> tuple[float, float]:
    checks = [c for c in job.spec.rubric if c.metric == metric]
    line = apply_rubric(checks, job.metrics, job.unmeasured, job.disabled)[0]
    return line["points"], line["max_points"]


def _full(job, metric):
    got, most = _points(job, metric)
    return got == most and most > 0


# ---- the reference earns every stage point ---------------------------------------------


@pytest.mark.integration
def test_the_reference_kit_passes_every_stage_probe(world, tmp_path):
    job = _job(world, tmp_path)
    job.scores = decent_scores(job.holdout.labels)
    run(
        job,
        "probe_monitoring",
        "probe_decay",
        "probe_contract",
        "probe_leakage",
        "probe_parity",
        "probe_policy",
        "probe_retraining",
    )
    wanted = [
        "monitoring.flags_drift",
        "monitoring.quiet_on_clean",
        "monitoring.flags_decay",
        "monitoring.quiet_on_stable",
        "contract.faulty_quarantined",
        "contract.good_kept",
        "features.leakage_free",
        "features.parity",
        "policy.value_vs_top_k",
        "retraining.correct_decisions",
    ]
    for metric in wanted:
        assert _full(job, metric), (metric, job.metrics.get(metric), job.stages)
    assert job.metrics["features.parity"] == 1.0 and job.metrics["features.leakage_free"] == 1.0
    assert not [s for s in job.steps if s["status"] != "ok"], job.steps


# ---- data contract ---------------------------------------------------------------------

QUARANTINE_EVERYTHING = """
from types import SimpleNamespace

def validate_export(raw, labelled=True):
    return SimpleNamespace(valid=raw.iloc[:0], quarantine=raw.assign(QUARANTINE_REASON="no"))
"""

KEEP_EVERYTHING = """
from types import SimpleNamespace

def validate_export(raw, labelled=True):
    return SimpleNamespace(valid=raw, quarantine=raw.iloc[:0].assign(QUARANTINE_REASON=""))
"""


@pytest.mark.integration
def test_a_contract_that_quarantines_everything_loses_the_contract_points(world, tmp_path):
    kit = make_kit(tmp_path / "kit", replace={"contract": QUARANTINE_EVERYTHING})
    job = _job(world, tmp_path, kit)
    run(job, "probe_contract")
    assert job.metrics["contract.faulty_quarantined"] == 0.0
    assert job.metrics["contract.good_kept"] == 0.0
    assert _points(job, "contract.faulty_quarantined")[0] == 0
    assert _points(job, "contract.good_kept")[0] == 0
    assert any("did not reach the valid frame" in p for p in job.stages["contract"]["problems"])


@pytest.mark.integration
def test_a_contract_that_keeps_the_raw_export_loses_the_contract_points(world, tmp_path):
    kit = make_kit(tmp_path / "kit", replace={"contract": KEEP_EVERYTHING})
    job = _job(world, tmp_path, kit)
    run(job, "probe_contract")
    assert job.metrics["contract.faulty_quarantined"] == 0.0
    assert job.metrics["contract.good_kept"] < 0.5
    problems = " ".join(job.stages["contract"]["problems"])
    assert "not parsed" in problems and "'missing' were not quarantined" in problems


# ---- data contract of another project: the recommender's event export --------------------

RECOMMENDER_KIT = KIT.parent / "recommender"

KEEP_EVERY_EVENT = """
from fullcycle.data.quarantine import ValidationResult

def validate_export(raw, items=None):
    return ValidationResult(raw, raw.iloc[:0].assign(QUARANTINE_REASON=[]), {})
"""


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """The recommender spec (with its contract lines) and the hidden world of a fixed seed."""
    from fullcycle.holdout import build_holdout
    from fullcycle.spec import find_project

    spec = find_project("recommender", KIT.parent.parent)
    cfg = config(tmp_path_factory.mktemp("cfg"))
    return spec, build_holdout(spec, cfg.seed_int, cfg.scale)


def _shop_job(
    shop,
    tmp_path,
    contract: str | None = None,
    policy_extra: str | None = None,
    features_extra: str | None = None,
):
    """A job on the reference recommender kit, its contract replaced, its policy or features
    extended."""
    spec, holdout = shop
    kit = tmp_path / "kit"
    shutil.copytree(RECOMMENDER_KIT, kit, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    if contract is not None:
        (kit / "contract.py").write_text(textwrap.dedent(contract))
    for name, extra in (("policy", policy_extra), ("features", features_extra)):
        if extra is not None:
            path = kit / f"{name}.py"
            path.write_text(path.read_text() + "\n\n" + textwrap.dedent(extra))
    return prepared_job(spec, config(tmp_path), kit, tmp_path, holdout)


def test_the_shop_contract_case_is_history_with_known_faults_and_no_scoring_window(shop):
    spec, holdout = shop
    case = holdout.stages["contract"]
    assert case.id_column == "EVENT_ID" and set(case.kwargs) == {"items"}
    start = spec.data.split.score_start_day
    assert (case.raw["EVENT_DAY"] < start).all()
    assert case.raw["EVENT_TIME"].max() < holdout.history["EVENT_TIME"].max().ceil("D")
    e = case.expected.set_index("EVENT_ID")
    assert sorted(e.index) == sorted(case.raw["EVENT_ID"])
    assert set(e.loc[e["keep"] == 0, "kind"]) == {"duplicate_events", "bot_users"}
    assert {"missing_prices", "category_spellings"} <= set(e.loc[e["keep"] == 1, "kind"])
    # Every event to keep is a history event, with the history's values.
    kept = e[e["keep"] == 1]
    history = holdout.history.set_index("EVENT_ID")
    assert kept.index.isin(history.index).all()
    for col in ("EVENT_TIME", "USER_ID", "ITEM_ID", "PRICE"):
        assert (kept[col] == history.loc[kept.index, col]).all(), col
    # The repairs have one right answer: the price was blanked, the category misspelled.
    raw = case.raw.set_index("EVENT_ID")
    blanked = kept.index[kept["kind"] == "missing_prices"]
    assert raw.loc[blanked, "PRICE"].isna().all() and kept.loc[blanked, "PRICE"].notna().all()
    respelled = kept.index[kept["kind"] == "category_spellings"]
    assert (raw.loc[respelled, "CATEGORY"] != kept.loc[respelled, "CATEGORY"]).all()
    assert (
        raw.loc[respelled, "CATEGORY"].str.strip().str.lower().str.rstrip("s")
        == kept.loc[respelled, "CATEGORY"].str.rstrip("s")
    ).all()


@pytest.mark.integration
def test_the_reference_shop_contract_earns_the_contract_points(shop, tmp_path):
    job = _shop_job(shop, tmp_path)
    run(job, "probe_contract")
    assert _full(job, "contract.faulty_quarantined"), job.stages["contract"]
    assert _full(job, "contract.good_kept"), job.stages["contract"]
    # A person may repeat a click within the duplicate window: a good event or two can go.
    assert job.metrics["contract.faulty_quarantined"] >= 0.999
    assert job.metrics["contract.good_kept"] >= 0.999
    caught = job.stages["contract"]["faults_caught"]
    assert set(caught) == {"duplicate_events", "bot_users"}
    for kind, text in caught.items():
        got, of = map(int, text.split("/"))
        assert got == of > 0, kind


@pytest.mark.integration
def test_a_shop_contract_that_keeps_every_event_loses_the_contract_points(shop, tmp_path):
    job = _shop_job(shop, tmp_path, KEEP_EVERY_EVENT)
    run(job, "probe_contract")
    assert job.metrics["contract.faulty_quarantined"] == 0.0
    assert _points(job, "contract.faulty_quarantined")[0] == 0
    # Blanked prices and misspelled categories are kept as they came: wrong values.
    assert job.metrics["contract.good_kept"] < 0.99
    assert _points(job, "contract.good_kept")[0] < _points(job, "contract.good_kept")[1]
    problems = " ".join(job.stages["contract"]["problems"])
    assert "'duplicate_events' were not quarantined" in problems
    assert "'bot_users' were not quarantined" in problems
    assert "wrong PRICE" in problems and "wrong CATEGORY" in problems and "EVENT_ID" in problems


# ---- the recommender's decision: rules and order on hidden candidates --------------------

# Each is appended to the reference policy.py: ``decide`` rebinds the name the grader loads.
IGNORES_BOUGHT = """
_reference_decide = decide


def decide(candidates, scores, bought, k=10):
    return _reference_decide(candidates, scores, None, k)
"""

SHUFFLED_RAW_SCORES = """
def decide(candidates, scores, bought, k=10):
    out = candidates[["USER_ID", "ITEM_ID"]].copy()
    out["score"] = np.random.default_rng(0).permutation(np.asarray(scores, dtype=float))
    return out
"""

SORTED_ON_ITS_INDEX = """
_reference_decide = decide


def decide(candidates, scores, bought, k=10):
    out = _reference_decide(candidates, scores, bought, k)
    return out.sort_values(["USER_ID", "score"], ascending=[True, False])
"""


def test_the_shop_decision_case_is_history_users_with_their_purchases(shop):
    """Is every row's eligibility what the history and the stock say, with no window event?"""
    spec, holdout = shop
    case = holdout.stages["decision"]
    c = case.candidates
    assert set(case.kwargs) == {"bought"} and case.output == "score"
    assert not {"PURCHASED", "POPULARITY"} & set(c.columns)
    assert c["CANDIDATE_ID"].is_unique and len(c) == len(case.scores) == len(case.eligible)
    users = c["USER_ID"].unique()
    assert len(users) == 200 and set(users) <= set(holdout.history["USER_ID"])
    # Every user meets every item, in the catalogue the learner was given.
    items = set(holdout.labels["ITEM_ID"])
    assert (c.groupby("USER_ID").size() == len(items)).all() and set(c["ITEM_ID"]) == items
    # bought: the history's purchases of those users, and nothing of the scoring window.
    h = holdout.history
    assert (h["EVENT_DAY"] < spec.data.split.score_start_day).all()
    mine = h[(h["EVENT_TYPE"] == "purchase") & h["USER_ID"].isin(users)]
    want = {u: sorted(set(g)) for u, g in mine.groupby("USER_ID")["ITEM_ID"]}
    assert case.kwargs["bought"] == want and len(want) >= 150
    for u, got in list(case.kwargs["bought"].items())[:20]:
        rows = c[c["USER_ID"] == u]
        ok = case.eligible[rows.index]
        assert not ok[rows["ITEM_ID"].isin(got).to_numpy()].any()
        assert (ok == (~rows["ITEM_ID"].isin(got) & rows["IN_STOCK"]).to_numpy()).all()
    # Some stock is out, and some model scores tie (ties are free in the order check).
    assert 0.05 < (~c["IN_STOCK"]).mean() < 0.6
    assert len(np.unique(case.scores)) < len(case.scores)
    assert set(case.reasons[~case.eligible]) == {"bought by the user", "out of stock"}


@pytest.mark.integration
@pytest.mark.parametrize("extra", [None, SORTED_ON_ITS_INDEX], ids=["reference", "sorted"])
def test_the_reference_decision_keeps_the_rules_and_the_order(shop, tmp_path, extra):
    """Does the reference decide (also when its rows come back sorted on their index) pass?"""
    job = _shop_job(shop, tmp_path, policy_extra=extra)
    run(job, "probe_decision")
    assert job.metrics["decision.exclusions_respected"] == 1.0, job.stages["decision"]
    assert job.metrics["decision.order_kept"] == 1.0, job.stages["decision"]
    assert _full(job, "decision.exclusions_respected") and _full(job, "decision.order_kept")
    assert job.stages["decision"]["problems"] == []


@pytest.mark.integration
def test_a_decision_that_ignores_what_was_bought_loses_the_exclusion_point(shop, tmp_path):
    job = _shop_job(shop, tmp_path, policy_extra=IGNORES_BOUGHT)
    run(job, "probe_decision")
    # Only the users who never bought anything keep their exclusions (out of stock still is).
    assert job.metrics["decision.exclusions_respected"] < 0.2
    assert _points(job, "decision.exclusions_respected")[0] == 0
    assert job.metrics["decision.order_kept"] == 1.0
    problems = " ".join(job.stages["decision"]["problems"])
    assert "(bought by the user)" in problems and "out of stock" not in problems
    line = apply_rubric(job.spec.rubric, job.metrics, job.unmeasured, job.disabled)
    feedback = next(x for x in line if x["id"] == "decision_exclusions")["feedback"]
    assert "bought" in feedback and "IN_STOCK" in feedback


@pytest.mark.integration
def test_a_decision_that_shuffles_the_raw_scores_loses_the_order_point(shop, tmp_path):
    job = _shop_job(shop, tmp_path, policy_extra=SHUFFLED_RAW_SCORES)
    run(job, "probe_decision")
    assert job.metrics["decision.order_kept"] == 0.0
    assert job.metrics["decision.exclusions_respected"] == 0.0
    assert _points(job, "decision.order_kept")[0] == 0
    problems = " ".join(job.stages["decision"]["problems"])
    assert "do not keep the model's order" in problems and ".0:" not in problems


# ---- the recommender's features: popularity as of a day ---------------------------------

# Appended to the reference features.py: ``item_popularity`` rebinds the name the grader loads.
COUNTS_EVERY_EVENT = """
def item_popularity(events, day=None, window_days=14, *, items=None, weights=None):
    # Every event in the frame, whatever its day: the scoring window too, when it is there.
    counts = events.groupby("ITEM_ID").size().astype(float)
    return counts.reindex(items, fill_value=0.0) if items is not None else counts
"""

SAME_FOR_EVERY_ITEM = """
def item_popularity(events, day=None, window_days=14, *, items=None, weights=None):
    return pd.Series(1.0, index=pd.Index(items, name="ITEM_ID"))
"""


def test_the_shop_as_of_case_splits_the_history_at_a_day_of_the_seed(shop):
    spec, holdout = shop
    case = holdout.stages["as_of"]
    start = spec.data.split.score_start_day
    assert start - 21 <= case.day <= start - 7
    assert (case.events["EVENT_DAY"] < case.day).all()
    assert case.events["EVENT_DAY"].min() >= case.day - 42
    assert (case.later["EVENT_DAY"] >= case.day).all() and (case.later["EVENT_DAY"] < start).all()
    # Every item of either frame is a key; some items first appear on the day or after it.
    assert set(case.keys) == set(case.events["ITEM_ID"]) | set(case.later["ITEM_ID"])
    assert set(case.later["ITEM_ID"]) - set(case.events["ITEM_ID"])
    assert (case.day_arg, case.keys_arg) == ("day", "items")


@pytest.mark.integration
def test_the_reference_popularity_counts_only_the_past(shop, tmp_path):
    job = _shop_job(shop, tmp_path)
    run(job, "probe_as_of")
    assert job.metrics["features.past_only"] == 1.0, job.stages["as_of"]
    assert _full(job, "features.past_only") and job.stages["as_of"]["problems"] == []


@pytest.mark.integration
@pytest.mark.parametrize(
    ("extra", "said"),
    [(COUNTS_EVERY_EVENT, "keep only EVENT_DAY < day"), (SAME_FOR_EVERY_ITEM, "same for every")],
    ids=["counts-every-event", "same-for-every-item"],
)
def test_a_popularity_that_sees_the_future_or_nothing_loses_the_point(shop, tmp_path, extra, said):
    job = _shop_job(shop, tmp_path, features_extra=extra)
    run(job, "probe_as_of")
    value = job.metrics["features.past_only"]
    assert value < 0.9, job.stages["as_of"]
    assert _points(job, "features.past_only")[0] == 0
    assert said in " ".join(job.stages["as_of"]["problems"])


# ---- features: leakage and parity ------------------------------------------------------

LEAKY_FEATURES = """
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

FEATURES = ["TX_AMOUNT", "TERMINAL_RISK"]


class TerminalRate(TransformerMixin, BaseEstimator):
    # The share of fraud per terminal over the whole history: labels younger than the delay too.
    def __init__(self, delay_days=7):
        self.delay_days = delay_days

    def fit(self, X, y):
        y = pd.Series(np.asarray(y, dtype=float), index=X.index)
        self.rate_ = y.groupby(X["TERMINAL_ID"].to_numpy()).mean()
        return self

    def transform(self, X):
        return pd.DataFrame(
            {
                "TX_AMOUNT": X["TX_AMOUNT"].to_numpy(dtype=float),
                "TERMINAL_RISK": X["TERMINAL_ID"].map(self.rate_).fillna(0.0).to_numpy(),
            },
            index=X.index,
        )


def build_features(delay_days):
    return TerminalRate(delay_days)
"""

PLAIN_FEATURES = LEAKY_FEATURES.replace(
    'X["TERMINAL_ID"].map(self.rate_).fillna(0.0).to_numpy()', "0.0"
)


@pytest.mark.integration
def test_leaky_features_lose_the_leakage_points(world, tmp_path):
    kit = make_kit(tmp_path / "kit", replace={"features": LEAKY_FEATURES})
    job = _job(world, tmp_path, kit)
    run(job, "probe_leakage")
    assert job.metrics["features.leakage_free"] < 0.5
    assert _points(job, "features.leakage_free")[0] == 0
    problems = " ".join(job.stages["leakage"]["problems"])
    assert "labels younger than the delay flipped" in problems and "TERMINAL_RISK" in problems


@pytest.mark.integration
def test_features_without_labels_keep_the_leakage_points(world, tmp_path):
    kit = make_kit(tmp_path / "kit", replace={"features": PLAIN_FEATURES})
    job = _job(world, tmp_path, kit)
    run(job, "probe_leakage")
    assert job.metrics["features.leakage_free"] == 1.0


ROUNDED_ONLINE = """
class _RoundedOnline(OnlineFeatures):
    # A service that formats its features to two decimals: the model sees other numbers.
    def features(self, tx):
        return {k: round(v, 2) for k, v in super().features(tx).items()}


OnlineFeatures = _RoundedOnline
"""


@pytest.mark.integration
def test_online_features_that_differ_lose_the_parity_points(world, tmp_path):
    kit = make_kit(tmp_path / "kit", append={"features": ROUNDED_ONLINE})
    job = _job(world, tmp_path, kit)
    run(job, "probe_parity")
    assert job.metrics["features.parity"] < 0.5
    assert _points(job, "features.parity")[0] == 0
    problems = job.stages["parity"]["problems"]
    assert problems and "AVG_AMOUNT" in " ".join(problems) and "online" in problems[0]


# ---- decision policy -------------------------------------------------------------------

WORST_FIRST = """
import numpy as np


def review_priority(candidates, value):
    return -candidates["score"].to_numpy(dtype=float)
"""


@pytest.mark.integration
def test_a_policy_that_reviews_the_lowest_scores_loses_the_policy_point(world, tmp_path):
    kit = make_kit(tmp_path / "kit", replace={"policy": WORST_FIRST})
    job = _job(world, tmp_path, kit)
    job.scores = decent_scores(job.holdout.labels)
    run(job, "probe_policy")
    assert job.metrics["policy.value_vs_top_k"] < -0.05
    assert _points(job, "policy.value_vs_top_k")[0] == 0
    assert "reviewing the top k by score earns" in job.stages["policy"]["problems"][0]


# ---- monitoring ------------------------------------------------------------------------

NUMPY_BOOL_DRIFT = """
import numpy as np


def check_drift(reference, current):
    # Natural numpy comparisons: the verdict is a numpy.bool_, not a bool.
    amounts = np.median(current["TX_AMOUNT"]) > 1.5 * np.median(reference["TX_AMOUNT"])
    unseen = np.mean(~current["TERMINAL_ID"].isin(reference["TERMINAL_ID"])) > 0.1
    return {"drift": amounts | unseen}
"""

STRING_DRIFT = """
def check_drift(reference, current):
    return {"drift": "yes"}
"""

NEVER_DECAYS = """
def check_decay(reference, current, value):
    return {"decay": False, "reasons": []}
"""


@pytest.mark.integration
def test_a_numpy_bool_drift_verdict_keeps_its_points(world, tmp_path):
    kit = make_kit(tmp_path / "kit", append={"monitor": NUMPY_BOOL_DRIFT})
    job = _job(world, tmp_path, kit)
    run(job, "probe_monitoring")
    assert job.metrics["monitoring.flags_drift"] == 1.0
    assert job.metrics["monitoring.quiet_on_clean"] == 1.0
    assert job.stages["drift"]["problems"] == []


@pytest.mark.integration
def test_a_verdict_that_is_not_a_bool_is_refused_with_what_was_returned(world, tmp_path):
    kit = make_kit(tmp_path / "kit", append={"monitor": STRING_DRIFT})
    job = _job(world, tmp_path, kit)
    run(job, "probe_monitoring")
    assert "monitoring.flags_drift" not in job.metrics
    reason = job.unmeasured["monitoring.flags_drift"]
    assert "True or False" in reason and "{'drift': 'yes'}" in reason


@pytest.mark.integration
def test_a_decay_check_that_never_fires_loses_the_decay_point(world, tmp_path):
    kit = make_kit(tmp_path / "kit", append={"monitor": NEVER_DECAYS})
    job = _job(world, tmp_path, kit)
    run(job, "probe_decay")
    assert job.metrics["monitoring.flags_decay"] == 0.0
    assert job.metrics["monitoring.quiet_on_stable"] == 1.0
    assert job.stages["decay"]["problems"] == ["the window whose ranking decayed was not flagged"]


# ---- retraining ------------------------------------------------------------------------

ALWAYS_PROMOTE = """
def should_promote(champion, challenger, margin, min_roc_auc):
    return {"promote": True, "reason": "newer is better"}
"""

BY_AUC = """
def should_promote(champion, challenger, margin, min_roc_auc):
    return {"promote": challenger["roc_auc"] > champion["roc_auc"], "reason": "AUC"}
"""


@pytest.mark.integration
@pytest.mark.parametrize("rule", [ALWAYS_PROMOTE, BY_AUC], ids=["always", "by_auc"])
def test_a_rule_that_does_not_decide_in_money_loses_the_retraining_points(world, tmp_path, rule):
    kit = make_kit(tmp_path / "kit", replace={"retrain": rule})
    job = _job(world, tmp_path, kit)
    run(job, "probe_retraining")
    assert job.metrics["retraining.correct_decisions"] < 0.6
    assert _points(job, "retraining.correct_decisions")[0] == 0
    assert any("your rule promoted" in p for p in job.stages["retraining"]["problems"])


def test_the_promotion_cases_have_both_answers_and_follow_the_seed():
    from grading.stages import promotion_cases

    a = promotion_cases(12345, 0.05, 0.8)
    assert a == promotion_cases(12345, 0.05, 0.8)
    assert a != promotion_cases(54321, 0.05, 0.8)
    expected = [c["expected"] for c in a]
    assert 0.3 < np.mean(expected) < 0.6  # always-promote and always-keep both fall short
    for c in a:
        for side in ("champion", "challenger"):
            s = c[side]
            assert sum(s["per_day_net_value"]) == pytest.approx(s["net_value"], abs=0.05)


# ---- independence: a stage that is missing costs its own points only --------------------


@pytest.mark.integration
def test_an_unimplemented_stage_is_not_measured_with_the_reason(world, tmp_path):
    from grading.release import strip_solutions

    kit = make_kit(tmp_path / "kit")
    path = kit / "retrain.py"
    path.write_text(strip_solutions(path.read_text()))
    job = _job(world, tmp_path, kit)
    run(job, "probe_retraining", "probe_monitoring")
    reason = job.unmeasured["retraining.correct_decisions"]
    assert "not implemented yet" in reason and "retrain.py, line" in reason
    assert job.metrics["monitoring.flags_drift"] == 1.0  # the drift check is graded on its own
