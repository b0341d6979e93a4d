"""Does the figure registry know every figure the grader measures, and refuse the rest helpfully?"""

import numpy as np
import pytest

from fullcycle.exceptions import ConfigError
from fullcycle.metrics import registry
from fullcycle.metrics.registry import figure, figure_names, is_figure, register_figure


@pytest.fixture
def scratch_registry(monkeypatch):
    """A copy of the registry that the test may change."""
    monkeypatch.setattr(registry, "_FIGURES", dict(registry._FIGURES))
    monkeypatch.setattr(registry, "_RELATIONS", dict(registry._RELATIONS))


def test_every_scorecard_figure_is_registered(repo, small_tx):
    """Is each figure of a fraud scorecard (technical, baseline and business) a registered name?"""
    from fullcycle.evaluate import make_scorecard
    from fullcycle.run import at_scale
    from fullcycle.spec import find_project

    spec = at_scale(find_project("fraud_detection", search_root=repo), "tiny")
    frame = small_tx[small_tx["TX_TIME_DAYS"].between(40, 42)].reset_index(drop=True)
    scores = np.log1p(frame["TX_AMOUNT"].to_numpy())  # any fixed scores will do
    produced = make_scorecard(spec, frame, scores).metrics()
    assert {"roc_auc", "baseline_card_precision@100", "share_of_oracle"} <= set(produced)
    assert [name for name in produced if not is_figure(name)] == []


@pytest.mark.parametrize(
    "name",
    [
        # the grader's service probe and monitoring probe (grading/pipeline.py)
        "service.contract",
        "service.consistency",
        "service.bad_input_4xx",
        "service.p50_ms",
        "service.p99_ms",
        "monitoring.flags_drift",
        "monitoring.quiet_on_clean",
        # the stage checks
        "contract.faulty_quarantined",
        "contract.good_kept",
        "features.leakage_free",
        "features.past_only",
        "features.parity",
        "policy.value_vs_top_k",
        "policy.share_of_oracle",
        "decision.exclusions_respected",
        "decision.order_kept",
        "monitoring.flags_decay",
        "monitoring.quiet_on_stable",
        "retraining.correct_decisions",
        # the ranking project's technical figures
        "ndcg@5",
        "baseline_ndcg@5",
    ],
)
def test_the_graders_figures_are_registered(name):
    assert is_figure(name)
    assert figure(name).description


def test_parametrised_and_relative_figures():
    """Do '@K' and '.vs_reference' resolve, keeping the base figure's direction and metric?"""
    cp = figure("card_precision@50")
    assert "the 50 cards reviewed each day" in cp.description
    assert (cp.requires, cp.metric) == ("metrics", "card_precision@50")
    assert figure("baseline_card_precision@50").metric == "card_precision@50"
    rel = figure("service.p99_ms.vs_reference")
    assert rel.higher_is_better is False and rel.requires == "service"
    assert "reference solution" in rel.description and "99th percentile" in rel.description
    assert figure("card_precision@7.vs_reference").metric == "card_precision@7"
    assert "<figure>.vs_reference" in figure_names()


@pytest.mark.parametrize(
    "name, expected",
    [
        ("service.p99ms", r"unknown figure 'service.p99ms'; did you mean 'service.p99_ms'"),
        ("card_precison@100", r"did you mean 'card_precision@100'"),
        ("roc_auc.vs_referense", r"did you mean 'roc_auc.vs_reference'"),
        ("card_precision@K", r"name one K, for example 'card_precision@100'"),
        ("card_precision@0", r"unknown figure 'card_precision@0'"),
        ("roc_auc.vs_reference.vs_reference", r"unknown figure"),
        ("accuracy", r"the known figures are \[.*'roc_auc'"),
    ],
)
def test_unknown_names_get_the_closest_known_ones(name, expected):
    assert not is_figure(name)
    with pytest.raises(ConfigError, match=expected):
        figure(name)


def test_registering_checks_its_input(scratch_registry):
    """Are bad names, empty descriptions and silent redefinitions refused, and repeats allowed?"""
    with pytest.raises(ConfigError, match="not lower-case words"):
        register_figure("Service.P99", "latency")
    with pytest.raises(ConfigError, match="give a description"):
        register_figure("service.p95_ms", "  ")
    with pytest.raises(ConfigError, match="requires must be one of"):
        register_figure("service.p95_ms", "latency", requires="gpu")
    register_figure("service.p99_ms", figure("service.p99_ms").description, False, "service")
    with pytest.raises(ConfigError, match="already registered"):
        register_figure("service.p99_ms", "something else", False, "service")
    register_figure("service.p99_ms", "something else", False, "service", replace=True)
    assert figure("service.p99_ms").description == "something else"
    registry.register_relation("vs_champion", "{figure}, divided by the champion's")
    assert figure("roc_auc.vs_champion").description.endswith("divided by the champion's")
