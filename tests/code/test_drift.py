"""Drift statistics on samples whose answer is known."""

import numpy as np
import pytest

from fullcycle.monitoring import DriftThresholds, cramers_v, feature_drift, psi


def test_is_psi_zero_for_the_same_sample_and_large_for_a_shift():
    rng = np.random.default_rng(0)
    a = rng.normal(size=20_000)
    assert psi(a, a) == pytest.approx(0.0, abs=1e-12)
    assert psi(a, rng.normal(size=20_000)) < 0.01
    assert psi(a, rng.normal(1.0, size=20_000)) > 0.5


def test_does_psi_handle_count_features_with_ties():
    rng = np.random.default_rng(1)
    a = rng.poisson(2, 10_000)
    assert np.isfinite(psi(a, a + 0))
    assert psi(a, rng.poisson(2, 10_000)) < 0.01
    assert psi(a, rng.poisson(4, 10_000)) > 0.3


def test_does_cramers_v_see_a_change_of_shares():
    rng = np.random.default_rng(2)
    a = rng.random(10_000) < 0.3
    v_same, p_same = cramers_v(a, rng.random(10_000) < 0.3)
    v_diff, p_diff = cramers_v(a, rng.random(10_000) < 0.6)
    assert v_same < 0.03 and p_same > 0.001
    assert v_diff > 0.25 and p_diff < 1e-10
    assert cramers_v(np.zeros(10), np.zeros(10)) == (0.0, 1.0)


def test_does_a_feature_drift_verdict_follow_its_thresholds():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=5000), rng.normal(0.3, size=5000)
    loose = feature_drift("x", a, b, DriftThresholds(psi=10, ks=0.5))
    strict = feature_drift("x", a, b, DriftThresholds(psi=10, ks=0.05))
    assert not loose.drifted and strict.drifted
    assert 0.08 < strict.statistic < 0.2
