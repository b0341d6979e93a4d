"""Does the reference solution meet the capstone's bars on the handbook-scale data?

Behavioural tests of the model the kit ships (`starter_kits/fraud_detection/model.py`),
on the default full-scale data and the handbook's time split.
"""

import pytest

from fullcycle.run import compare_drift, run_project
from fullcycle.spec import find_project

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def spec(repo):
    return find_project("fraud_detection", search_root=repo)


@pytest.fixture(scope="module")
def reference(spec):
    return run_project(spec, track=False, progress=None)


@pytest.fixture(scope="module")
def drifted(spec):
    return run_project(spec, track=False, drift=True, progress=None)


def test_split_matches_the_handbook_protocol(reference):
    """About 67k training and 58k scoring transactions with ~600 and ~385 frauds (handbook: 67,240/598, 58,264/385)."""
    split = reference.prepared.split
    assert 60_000 < len(split.train) < 75_000
    assert 50_000 < len(split.test) < 65_000
    assert 450 < split.train["TX_FRAUD"].sum() < 750


def test_reference_meets_the_acceptance_bars(reference):
    """ROC AUC >= 0.86, card precision@100 >= 0.28, net savings >= 2x the rule baseline."""
    m = reference.scorecard.metrics()
    assert m["roc_auc"] >= 0.86
    assert m["card_precision@100"] >= 0.28
    assert m["value_vs_baseline"] >= 2.0
    assert 0 < m["share_of_oracle"] < 1
    assert reference.gate_passed


def test_drift_costs_value(spec, reference, drifted):
    """With card testing in the scoring window, the model misses most of it and more value is lost."""
    comparison = compare_drift(spec, reference, drifted)
    c, d = reference.scorecard.metrics(), drifted.scorecard.metrics()
    assert comparison.scenario4_frauds > 0
    assert comparison.scenario4_caught_share < 0.5
    assert d["oracle_net_value"] - d["net_value"] > c["oracle_net_value"] - c["net_value"]
    assert d["roc_auc"] < c["roc_auc"] - 0.1
    assert "drift costs" in comparison.format()
