"""Are the kit's fraud features right on hand-made cases, leak-free, in arrival order, the same
online as offline, and proper scikit-learn transformers? Is the library's window primitive right?"""

from __future__ import annotations

import pickle
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

from fullcycle.exceptions import DataError
from fullcycle.kit import Kit
from fullcycle.windows import SECONDS_PER_DAY, window_counts_sums

from conftest import KIT_DIR

# Loaded by path, as the grader and the CLI load a kit (the estimator checks below are
# generated at collection time, so the kit is loaded here rather than in a fixture).
features = Kit(KIT_DIR).module("features")
FEATURES = features.FEATURES
FraudFeatures = features.FraudFeatures
OnlineFeatures = features.OnlineFeatures

COLUMNS = ["TRANSACTION_ID", "TX_DATETIME", "CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT", "TX_FRAUD"]


def _tx(rows) -> pd.DataFrame:
    """Factory: rows of (id, 'YYYY-MM-DD HH:MM[:SS]', card, terminal, amount, fraud)."""
    df = pd.DataFrame(rows, columns=COLUMNS)
    df["TX_DATETIME"] = pd.to_datetime(df["TX_DATETIME"])
    return df


def _offline(df: pd.DataFrame, delay_days: int = 7) -> pd.DataFrame:
    """Features of every row of ``df``, with ``df`` (and its labels) as the history."""
    return features.build_features(delay_days).fit(df, df["TX_FRAUD"]).transform(df)


# ---- hand-made cases ----------------------------------------------------------------------


def test_card_windows_and_calendar_flags_by_hand():
    """Do card counts and means over 1, 7 and 30 days include the payment itself and nothing
    older, and are weekend and night (before 06:00) flagged?"""
    df = _tx(
        [
            (0, "2018-04-01 10:00", 1, 5, 10.0, 0),  # a Sunday
            (1, "2018-04-01 12:00", 1, 5, 30.0, 0),
            (2, "2018-04-02 11:00", 1, 6, 50.0, 0),  # 1 day: rows 1, 2 (row 0 is 25 h old)
            (3, "2018-04-02 11:00", 2, 6, 99.0, 0),  # another card at the same time
            (4, "2018-04-09 10:30", 1, 6, 70.0, 0),  # 7 days: rows 2, 4; 30 days: rows 0-2, 4
            (5, "2018-04-10 05:59", 3, 6, 0.0, 0),  # night; a zero amount on a new card
            (6, "2018-04-10 06:00", 3, 6, 5.0, 0),  # not night
        ]
    )
    out = _offline(df)
    assert out["CUSTOMER_ID_NB_TX_1DAY_WINDOW"].tolist() == [1, 2, 2, 1, 1, 1, 2]
    assert out["CUSTOMER_ID_AVG_AMOUNT_1DAY_WINDOW"].tolist() == [10, 20, 40, 99, 70, 0, 2.5]
    assert out["CUSTOMER_ID_NB_TX_7DAY_WINDOW"].tolist() == [1, 2, 3, 1, 2, 1, 2]
    assert out["CUSTOMER_ID_AVG_AMOUNT_7DAY_WINDOW"].tolist() == [10, 20, 30, 99, 60, 0, 2.5]
    assert out["CUSTOMER_ID_NB_TX_30DAY_WINDOW"].tolist() == [1, 2, 3, 1, 4, 1, 2]
    assert out["CUSTOMER_ID_AVG_AMOUNT_30DAY_WINDOW"].tolist() == [10, 20, 30, 99, 40, 0, 2.5]
    assert out["TX_DURING_WEEKEND"].tolist() == [1, 1, 0, 0, 0, 0, 0]
    assert out["TX_DURING_NIGHT"].tolist() == [0, 0, 0, 0, 0, 1, 0]
    assert out["TX_AMOUNT"].tolist() == df["TX_AMOUNT"].tolist()


def test_the_amount_ratio_by_hand():
    """Is the new ratio the amount over the card's 30-day mean (itself included), and finite
    when that mean is zero?"""
    df = _tx(
        [
            (0, "2018-04-01 10:00", 1, 5, 10.0, 0),
            (1, "2018-04-01 12:00", 1, 5, 30.0, 0),  # mean 20
            (2, "2018-04-02 11:00", 1, 6, 50.0, 0),  # mean 30
            (3, "2018-04-09 10:30", 1, 6, 70.0, 0),  # mean 40
            (4, "2018-05-20 10:30", 1, 6, 70.0, 0),  # alone in its 30 days again
            (5, "2018-04-10 05:59", 3, 6, 0.0, 0),  # mean 0: the floor of 0.01 applies
            (6, "2018-04-10 06:00", 3, 6, 5.0, 0),  # mean 2.5
        ]
    )
    ratio = _offline(df)["CUSTOMER_ID_AMOUNT_RATIO_30DAY"].to_numpy()
    np.testing.assert_allclose(ratio, [1.0, 1.5, 5 / 3, 1.75, 1.0, 0.0, 2.0], rtol=1e-12)


def test_the_amount_ratio_flags_a_card_spending_far_above_its_habit(small_tx):
    """On simulated data: finite everywhere, and higher on average for compromised-card frauds
    (scenario 3: a stolen card spends five times its habit) than for genuine payments."""
    out = _offline(small_tx)
    ratio = out["CUSTOMER_ID_AMOUNT_RATIO_30DAY"]
    assert np.isfinite(ratio).all() and (ratio >= 0).all()
    scenario = small_tx["TX_FRAUD_SCENARIO"].to_numpy()
    assert ratio[scenario == 3].mean() > 2 * ratio[scenario == 0].mean()


def test_terminal_risk_by_hand():
    """Does terminal risk use only payments at least ``delay_days`` old, with their labels?"""
    df = _tx(
        [
            (0, "2018-04-01 10:00", 1, 7, 10.0, 1),
            (1, "2018-04-02 10:00", 2, 7, 10.0, 0),
            (2, "2018-04-03 09:00", 3, 7, 10.0, 1),  # 2 h before row 3: inside its delay
            (3, "2018-04-03 11:00", 4, 7, 10.0, 0),
            (4, "2018-04-03 11:00", 4, 8, 10.0, 0),  # another terminal
        ]
    )
    out = _offline(df, delay_days=1)
    # 1-day window (t - 2 days, t - 1 day]. Row 1: row 0 sits exactly on the end (included).
    # Row 2 (04-03 09:00): (04-01 09:00, 04-02 09:00] holds row 0 only (fraud).
    # Row 3 (04-03 11:00): (04-01 11:00, 04-02 11:00] holds row 1 only (genuine);
    # row 2 is 2 h old, inside the delay, and must not count.
    assert out["TERMINAL_ID_NB_TX_1DAY_WINDOW"].tolist() == [0, 1, 1, 1, 0]
    assert out["TERMINAL_ID_RISK_1DAY_WINDOW"].tolist() == [0.0, 1.0, 1.0, 0.0, 0.0]
    # 7-day window (t - 8 days, t - 1 day]: row 3 sees rows 0 and 1.
    assert out["TERMINAL_ID_NB_TX_7DAY_WINDOW"].tolist() == [0, 1, 1, 2, 0]
    assert out["TERMINAL_ID_RISK_7DAY_WINDOW"].tolist() == [0.0, 1.0, 1.0, 0.5, 0.0]


def test_arrival_order_breaks_ties_at_the_same_second():
    """Two payments of one card in the same second: the lower id arrives first and does not see
    the other; the higher id sees both. Row order in the frame does not matter."""
    df = _tx(
        [
            (11, "2018-04-01 10:00:00", 1, 5, 30.0, 0),
            (10, "2018-04-01 10:00:00", 1, 5, 10.0, 0),
            (12, "2018-04-01 10:00:01", 1, 5, 20.0, 0),
        ]
    )
    out = _offline(df).set_index(df["TRANSACTION_ID"])
    assert out["CUSTOMER_ID_NB_TX_1DAY_WINDOW"].to_dict() == {11: 2, 10: 1, 12: 3}
    assert out["CUSTOMER_ID_AVG_AMOUNT_1DAY_WINDOW"].to_dict() == {11: 20, 10: 10, 12: 20}
    shuffled = df.iloc[[2, 0, 1]]
    again = _offline(shuffled).set_index(shuffled["TRANSACTION_ID"])
    pd.testing.assert_frame_equal(again.loc[out.index], out)


def test_online_features_equal_offline_ones_event_by_event():
    """Fed in arrival order (ties included), after a labelled history, do the online features of
    each new payment equal the offline ones, and do labels count only after the delay?"""
    history = _tx(
        [
            (1, "2018-04-01 10:00", 1, 7, 10.0, 1),
            (2, "2018-04-02 10:00", 2, 7, 20.0, 0),
            (3, "2018-04-05 23:00", 1, 8, 40.0, 0),
        ]
    )
    new = _tx(
        [
            (21, "2018-04-08 10:00:00", 1, 7, 5.0, np.nan),  # row 1 is exactly 7 days old
            (20, "2018-04-08 10:00:00", 1, 7, 15.0, np.nan),  # same second, arrives first
            (22, "2018-04-09 09:59:59", 3, 7, 60.0, np.nan),  # row 2 is not 7 days old yet
            (23, "2018-04-09 10:00:00", 3, 8, 60.0, np.nan),
        ]
    )
    f = features.build_features(7).fit(history, history["TX_FRAUD"])
    offline = f.transform(new.drop(columns="TX_FRAUD")).set_index(new["TRANSACTION_ID"])
    online = OnlineFeatures.open(":memory:", delay_days=7)
    assert online.warm_start(history) == len(history)
    got = {}
    for tx in new.sort_values(["TX_DATETIME", "TRANSACTION_ID"]).to_dict("records"):
        got[tx["TRANSACTION_ID"]] = online.features(tx)
        online.update(tx)
    online.store.close()
    got = pd.DataFrame.from_dict(got, orient="index")[FEATURES].loc[offline.index]
    np.testing.assert_allclose(got.to_numpy(), offline.to_numpy(), rtol=1e-12, atol=1e-12)
    assert offline.loc[20, "CUSTOMER_ID_NB_TX_30DAY_WINDOW"] == 3  # rows 1, 3 and itself
    assert offline.loc[21, "CUSTOMER_ID_NB_TX_30DAY_WINDOW"] == 4
    assert offline.loc[21, "TERMINAL_ID_RISK_1DAY_WINDOW"] == 1.0  # the fraud of row 1
    assert offline.loc[22, "TERMINAL_ID_NB_TX_7DAY_WINDOW"] == 1  # row 1 only


# ---- leakage --------------------------------------------------------------------------------


def _features_upto(tx, upto=None):
    hist = tx if upto is None else tx[tx["TX_DATETIME"] <= upto]
    return _offline(hist)


def test_no_future_transaction_reaches_a_feature(small_tx):
    """Are features up to a cut-off identical whether or not later transactions exist, in the
    history or only among the rows to transform?"""
    cut = small_tx["TX_DATETIME"].iloc[len(small_tx) // 2]
    past = _features_upto(small_tx, upto=cut)
    full = _features_upto(small_tx)
    pd.testing.assert_frame_equal(full.loc[past.index], past)
    # The later rows arrive only at transform time (unlabelled): the earlier rows still agree.
    hist = small_tx[small_tx["TX_DATETIME"] <= cut]
    fitted = features.build_features(7).fit(hist, hist["TX_FRAUD"])
    pd.testing.assert_frame_equal(fitted.transform(small_tx).loc[past.index], past)
    # ...and the later rows do have features of their own (the check could fail).
    later = full.drop(index=past.index)
    assert len(later) > 1000 and later["CUSTOMER_ID_NB_TX_30DAY_WINDOW"].min() >= 1


def test_no_label_younger_than_the_delay_reaches_a_feature(small_tx):
    """Flip every label of the last 7 days before a cut-off: do features at the cut-off stay put?"""
    cut_day = 40
    at_cut = small_tx["TX_TIME_DAYS"] == cut_day
    flipped = small_tx.copy()
    recent = (flipped["TX_TIME_DAYS"] > cut_day - 7) & (flipped["TX_TIME_DAYS"] <= cut_day)
    flipped.loc[recent, "TX_FRAUD"] = 1 - flipped.loc[recent, "TX_FRAUD"]
    a = _offline(small_tx).loc[at_cut]
    b = _offline(flipped).loc[at_cut]
    pd.testing.assert_frame_equal(a, b)
    # ...and flipping labels older than the delay does change them, so the test can fail.
    older = small_tx.copy()
    old = (older["TX_TIME_DAYS"] > cut_day - 20) & (older["TX_TIME_DAYS"] <= cut_day - 8)
    older.loc[old, "TX_FRAUD"] = 1 - older.loc[old, "TX_FRAUD"]
    c = _offline(older).loc[at_cut]
    assert not a["TERMINAL_ID_RISK_7DAY_WINDOW"].equals(c["TERMINAL_ID_RISK_7DAY_WINDOW"])


def test_scoring_rows_use_history_but_not_their_own_labels(small_tx):
    """Do unlabelled scoring rows get the same features as when the transformer saw their labels?"""
    hist = small_tx[small_tx["TX_TIME_DAYS"] < 45]
    score = small_tx[small_tx["TX_TIME_DAYS"].between(45, 51)]
    f = features.build_features(7).fit(hist, hist["TX_FRAUD"])
    with_labels = _offline(small_tx).loc[score.index]
    pd.testing.assert_frame_equal(f.transform(score.drop(columns="TX_FRAUD")), with_labels)


def test_output_names_dtypes_and_index(small_tx):
    """Are the 15 handbook features and the ratio produced, in order, as floats, on X's index?"""
    rows = small_tx.head(500).set_index(small_tx.index[:500] + 1000)
    out = _offline(rows)
    assert list(out.columns) == FEATURES
    assert len(FEATURES) == 16 and "CUSTOMER_ID_AMOUNT_RATIO_30DAY" in FEATURES
    assert (out.dtypes == np.float64).all()
    assert out.index.equals(rows.index)
    assert np.isfinite(out.to_numpy()).all()


# ---- the scikit-learn contract --------------------------------------------------------------

#: scikit-learn's generated checks feed NumPy arrays (and sparse, memmapped, 1-d, complex ...)
#: of anonymous numbers. FraudFeatures needs the raw transaction columns by name, so it refuses
#: them all with "needs a DataFrame": these checks cannot say anything about it. Each property
#: they guard is tested below on DataFrames instead (named in the reason). ``xfail_strict``
#: makes a check that starts to pass fail the run, so this list cannot go stale.
_NEEDS_A_DATAFRAME = "sklearn's check feeds a NumPy array; FraudFeatures needs named columns"
EXPECTED_FAILED_CHECKS = {
    "check_fit_score_takes_y": f"{_NEEDS_A_DATAFRAME} (fit takes y: every test here)",
    "check_estimators_overwrite_params": f"{_NEEDS_A_DATAFRAME}; see test_fit_on_dataframes",
    "check_dont_overwrite_parameters": f"{_NEEDS_A_DATAFRAME}; see test_fit_on_dataframes",
    "check_estimators_fit_returns_self": f"{_NEEDS_A_DATAFRAME}; see test_fit_on_dataframes",
    "check_readonly_memmap_input": _NEEDS_A_DATAFRAME,
    "check_n_features_in_after_fitting": f"{_NEEDS_A_DATAFRAME}; see test_fit_on_dataframes",
    "check_n_features_in": f"{_NEEDS_A_DATAFRAME}; see test_fit_on_dataframes",
    "check_positive_only_tag_during_fit": _NEEDS_A_DATAFRAME,
    "check_estimators_dtypes": f"{_NEEDS_A_DATAFRAME}; output dtype: test_output_names_...",
    "check_complex_data": _NEEDS_A_DATAFRAME,
    "check_dtype_object": _NEEDS_A_DATAFRAME,
    "check_estimators_empty_data_messages": f"{_NEEDS_A_DATAFRAME}; an empty DataFrame is a "
    "valid empty history (a service's first day)",
    "check_pipeline_consistency": f"{_NEEDS_A_DATAFRAME}; see test_clone_pickle_and_refit",
    "check_estimators_nan_inf": f"{_NEEDS_A_DATAFRAME}; NaN and inf amounts are the data "
    "contract's to quarantine, before features",
    "check_estimator_sparse_tag": _NEEDS_A_DATAFRAME,
    "check_estimator_sparse_array": _NEEDS_A_DATAFRAME,
    "check_estimator_sparse_matrix": _NEEDS_A_DATAFRAME,
    "check_estimators_pickle": f"{_NEEDS_A_DATAFRAME}; see test_clone_pickle_and_refit",
    "check_f_contiguous_array_estimator": _NEEDS_A_DATAFRAME,
    "check_transformer_data_not_an_array": _NEEDS_A_DATAFRAME,
    "check_transformer_general": f"{_NEEDS_A_DATAFRAME}; see test_clone_pickle_and_refit",
    "check_transformer_preserve_dtypes": _NEEDS_A_DATAFRAME,
    "check_methods_sample_order_invariance": f"{_NEEDS_A_DATAFRAME}; see test_row_order_...",
    "check_methods_subset_invariance": f"{_NEEDS_A_DATAFRAME}; see test_row_order_...",
    "check_fit2d_1sample": _NEEDS_A_DATAFRAME,
    "check_fit2d_1feature": _NEEDS_A_DATAFRAME,
    "check_dict_unchanged": f"{_NEEDS_A_DATAFRAME}; see test_fit_on_dataframes",
    "check_fit_idempotent": f"{_NEEDS_A_DATAFRAME}; see test_clone_pickle_and_refit",
    "check_fit_check_is_fitted": f"{_NEEDS_A_DATAFRAME}; see test_fit_on_dataframes",
    "check_fit1d": _NEEDS_A_DATAFRAME,
    "check_fit2d_predict1d": _NEEDS_A_DATAFRAME,
}


@parametrize_with_checks(
    [FraudFeatures()],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS,
    xfail_strict=True,
)
def test_sklearn_estimator_checks(estimator, check):
    """scikit-learn's own checks: the API ones (params, clone, repr, tags, unfitted) must pass."""
    check(estimator)


def test_fit_on_dataframes(small_tx):
    """fit returns self, sets only trailing-underscore attributes, keeps its params, records the
    input columns; transform before fit is a NotFittedError and changes nothing."""
    X = small_tx.head(300)
    est = FraudFeatures(delay_days=3)
    params = est.get_params()
    with pytest.raises(NotFittedError):
        clone(est).transform(X)
    assert est.fit(X, X["TX_FRAUD"]) is est
    assert est.get_params() == params
    assert not [k for k in vars(est) if k not in params and not k.endswith("_")]
    assert est.n_features_in_ == X.shape[1]
    assert list(est.feature_names_in_) == list(X.columns)
    before = pickle.dumps(vars(est))
    est.transform(X)
    assert pickle.dumps(vars(est)) == before
    assert list(est.get_feature_names_out()) == FEATURES
    pd.testing.assert_frame_equal(clone(est).fit_transform(X, X["TX_FRAUD"]), est.transform(X))


def test_clone_pickle_and_refit(small_tx, monkeypatch):
    """Do a clone, a pickled copy and a second fit give the same features?"""
    # Pickle finds a class by its module's name; another Kit of the same folder (another
    # test's) registers that name again with its own copy of the module: point it at ours.
    monkeypatch.setitem(sys.modules, FraudFeatures.__module__, features)
    X = small_tx[small_tx["TX_TIME_DAYS"] < 12]  # labels older than the delay exist
    est = FraudFeatures().fit(X, X["TX_FRAUD"])
    want = est.transform(X)
    pd.testing.assert_frame_equal(pickle.loads(pickle.dumps(est)).transform(X), want)
    pd.testing.assert_frame_equal(clone(est).fit(X, X["TX_FRAUD"]).transform(X), want)
    pd.testing.assert_frame_equal(est.fit(X, X["TX_FRAUD"]).transform(X), want)
    # Other labels give other features: a second fit really replaces the first.
    assert not est.fit(X, 1 - X["TX_FRAUD"]).transform(X).equals(want)


def test_row_order_and_subsets_do_not_change_a_rows_features(small_tx):
    """Arrival order is time then id, never row order; a subset of known rows gets the same
    features as in the whole (sklearn's sample-order and subset invariance, on DataFrames)."""
    X = small_tx.head(3000)
    est = FraudFeatures().fit(X, X["TX_FRAUD"])
    want = est.transform(X)
    shuffled = X.sample(frac=1.0, random_state=0)
    pd.testing.assert_frame_equal(est.transform(shuffled).loc[X.index], want)
    part = X.iloc[::7]
    pd.testing.assert_frame_equal(est.transform(part), want.loc[part.index])


def test_bad_inputs_are_refused(small_tx):
    """Do arrays, missing columns, duplicate ids, missing labels and a zero delay fail with
    messages that say what to fix?"""
    X = small_tx.head(10)
    with pytest.raises(DataError, match="needs a DataFrame"):
        FraudFeatures().fit(X.to_numpy(), X["TX_FRAUD"])
    with pytest.raises(DataError, match="TX_AMOUNT"):
        FraudFeatures().fit(X.drop(columns="TX_AMOUNT"), X["TX_FRAUD"])
    dup = pd.concat([X.head(3), X.head(1)])
    with pytest.raises(DataError, match="unique"):
        FraudFeatures().fit(dup, dup["TX_FRAUD"])
    with pytest.raises(DataError, match="at least 1"):
        FraudFeatures(delay_days=0).fit(X, X["TX_FRAUD"])
    with pytest.raises(DataError, match="fraud labels"):
        FraudFeatures().fit(X)
    with pytest.raises(DataError, match="10 rows but 9 labels"):
        FraudFeatures().fit(X, X["TX_FRAUD"].head(9))
    fitted = FraudFeatures().fit(X, X["TX_FRAUD"])
    with pytest.raises(DataError, match="CUSTOMER_ID"):
        fitted.transform(X.drop(columns="CUSTOMER_ID"))


# ---- the library's window primitive ---------------------------------------------------------


def test_window_counts_sums_by_hand():
    """Counts and sums over (t - lag - width, t - lag], per group, in the input's order."""
    # lag 0: the event itself is in; the start is out (t = 0 is exactly `width` before t = 10).
    c, s = window_counts_sums(
        [1, 1, 2, 1], [0, 10, 10, 5], [0, 1, 2, 3], [5.0, 7.0, 1.0, 2.0], 0, 10
    )
    assert c.tolist() == [1, 2, 1, 2] and s.tolist() == [5.0, 9.0, 1.0, 7.0]
    # lag 5, width 5: window (t - 10, t - 5]; the end is in.
    c, s = window_counts_sums([1] * 4, [0, 5, 10, 15], [0, 1, 2, 3], [1.0, 2.0, 4.0, 8.0], 5, 5)
    assert c.tolist() == [0, 1, 1, 1] and s.tolist() == [0.0, 1.0, 2.0, 4.0]
    # Groups never mix, even when one group's times fall in another's window.
    c, _ = window_counts_sums(["a", "b"], [0, 1000], [0, 1], [1.0, 1.0], 500, 1000)
    assert c.tolist() == [0, 0]
    # Nothing in, nothing out.
    c, s = window_counts_sums([], [], [], [], 0, 10)
    assert c.size == 0 and s.size == 0


def test_window_counts_sums_ties_follow_arrival_order():
    """Same second, lag 0: the lower order key arrives first and does not see the higher one.
    With a lag, every event at or before t - lag counts, whatever its order key."""
    c, s = window_counts_sums([1, 1, 1], [0, 0, 5], [2, 1, 3], [1.0, 2.0, 4.0], 0, 10)
    assert c.tolist() == [2, 1, 3] and s.tolist() == [3.0, 2.0, 7.0]
    c, s = window_counts_sums([1, 1, 1], [0, 0, 5], [3, 4, 1], [1.0, 2.0, 4.0], 5, 5)
    assert c.tolist() == [0, 0, 2] and s.tolist() == [0.0, 0.0, 3.0]


def test_window_counts_sums_matches_a_brute_force_count():
    """On 400 events of 7 groups with many ties, is every count and sum the direct one?"""
    rng = np.random.default_rng(0)
    n = 400
    group = rng.integers(0, 7, n)
    t = rng.integers(0, 40, n) * 3600  # whole hours: many ties and exact boundaries
    ids = rng.permutation(n)
    values = rng.integers(0, 100, n).astype(float)
    for lag, width in [(0, SECONDS_PER_DAY), (0, 3 * 3600), (2 * 3600, 5 * 3600)]:
        c, s = window_counts_sums(group, t, ids, values, lag, width)
        for i in range(n):
            same = group == group[i]
            end_ok = (t < t[i]) | ((t == t[i]) & (ids <= ids[i])) if lag == 0 else t <= t[i] - lag
            inside = same & end_ok & (t > t[i] - lag - width)
            assert c[i] == inside.sum() and s[i] == values[inside].sum(), (i, lag, width)
