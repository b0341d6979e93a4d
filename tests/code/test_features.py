"""Are the features right on hand-made cases, leak-free, and proper scikit-learn transformers?"""

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import (
    check_get_params_invariance,
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
    check_set_params,
)

from fullcycle.exceptions import DataError
from fullcycle.features import (
    FEATURE_NAMES,
    CustomerSpendingFeatures,
    DatetimeFeatures,
    FraudFeatures,
    TerminalRiskFeatures,
)

TRANSFORMERS = [
    DatetimeFeatures(),
    CustomerSpendingFeatures(),
    TerminalRiskFeatures(),
    FraudFeatures(),
]


def _tx(rows):
    """Factory: rows of (id, 'YYYY-MM-DD HH:MM', card, terminal, amount, fraud)."""
    df = pd.DataFrame(
        rows,
        columns=[
            "TRANSACTION_ID",
            "TX_DATETIME",
            "CUSTOMER_ID",
            "TERMINAL_ID",
            "TX_AMOUNT",
            "TX_FRAUD",
        ],
    )
    df["TX_DATETIME"] = pd.to_datetime(df["TX_DATETIME"])
    return df


def test_customer_windows_by_hand():
    """Do counts and means over 1 and 7 days include the payment itself and nothing older?"""
    df = _tx(
        [
            (0, "2018-04-01 10:00", 1, 5, 10.0, 0),
            (1, "2018-04-01 12:00", 1, 5, 30.0, 0),
            (2, "2018-04-02 11:00", 1, 6, 50.0, 0),  # 1-day window: rows 1 and 2 (row 0 is 25h ago)
            (3, "2018-04-02 11:00", 2, 6, 99.0, 0),  # another card at the same time
            (4, "2018-04-09 10:30", 1, 6, 70.0, 0),  # 7-day window: rows 2 and 4
        ]
    )
    out = CustomerSpendingFeatures(windows=(1, 7)).fit(df).transform(df)
    assert out["CUSTOMER_ID_NB_TX_1DAY_WINDOW"].tolist() == [1, 2, 2, 1, 1]
    assert out["CUSTOMER_ID_AVG_AMOUNT_1DAY_WINDOW"].tolist() == [10, 20, 40, 99, 70]
    assert out["CUSTOMER_ID_NB_TX_7DAY_WINDOW"].tolist() == [1, 2, 3, 1, 2]
    assert out["CUSTOMER_ID_AVG_AMOUNT_7DAY_WINDOW"].tolist() == [10, 20, 30, 99, 60]


def test_terminal_risk_by_hand():
    """Does terminal risk use only payments at least `delay` days old, with their labels?"""
    df = _tx(
        [
            (0, "2018-04-01 10:00", 1, 7, 10.0, 1),
            (1, "2018-04-02 10:00", 2, 7, 10.0, 0),
            (2, "2018-04-03 09:00", 3, 7, 10.0, 1),  # 2 days later: inside the delay for row 3
            (3, "2018-04-03 11:00", 4, 7, 10.0, 0),
        ]
    )
    out = TerminalRiskFeatures(windows=(1,), delay=1).fit(df).transform(df)
    # Window (t - 2 days, t - 1 day]. Row 1: row 0 sits exactly on the end (included).
    # Row 2 (04-03 09:00): (04-01 09:00, 04-02 09:00] holds row 0 only (fraud).
    # Row 3 (04-03 11:00): (04-01 11:00, 04-02 11:00] holds row 1 only (genuine);
    # row 2 is 2h old, inside the delay, and must not count.
    assert out["TERMINAL_ID_NB_TX_1DAY_WINDOW"].tolist() == [0, 1, 1, 1]
    assert out["TERMINAL_ID_RISK_1DAY_WINDOW"].tolist() == [0.0, 1.0, 1.0, 0.0]


def _features(tx, upto=None):
    hist = tx if upto is None else tx[tx["TX_DATETIME"] <= upto]
    f = FraudFeatures(delay=7).fit(hist, hist["TX_FRAUD"])
    return f.transform(hist)


def test_no_future_transaction_reaches_a_feature(small_tx):
    """Are features up to a cut-off identical whether or not later transactions exist?"""
    cut = small_tx["TX_DATETIME"].iloc[len(small_tx) // 2]
    full = _features(small_tx)
    past = _features(small_tx, upto=cut)
    pd.testing.assert_frame_equal(full.loc[past.index], past)


def test_no_label_younger_than_the_delay_reaches_a_feature(small_tx):
    """Flip every label of the last 7 days before a cut-off: do features at the cut-off stay put?"""
    cut_day = 40
    at_cut = small_tx["TX_TIME_DAYS"] == cut_day
    flipped = small_tx.copy()
    recent = (flipped["TX_TIME_DAYS"] > cut_day - 7) & (flipped["TX_TIME_DAYS"] <= cut_day)
    flipped.loc[recent, "TX_FRAUD"] = 1 - flipped.loc[recent, "TX_FRAUD"]
    a = _features(small_tx).loc[at_cut]
    b = _features(flipped).loc[at_cut]
    pd.testing.assert_frame_equal(a, b)
    # ...and flipping labels older than the delay does change them, so the test can fail.
    older = small_tx.copy()
    old = (older["TX_TIME_DAYS"] > cut_day - 20) & (older["TX_TIME_DAYS"] <= cut_day - 8)
    older.loc[old, "TX_FRAUD"] = 1 - older.loc[old, "TX_FRAUD"]
    c = _features(older).loc[at_cut]
    assert not a["TERMINAL_ID_RISK_7DAY_WINDOW"].equals(c["TERMINAL_ID_RISK_7DAY_WINDOW"])


def test_scoring_rows_use_history_but_not_their_own_labels(small_tx):
    """Do unlabelled scoring rows get the same features as when the transformer saw their labels?"""
    hist = small_tx[small_tx["TX_TIME_DAYS"] < 45]
    score = small_tx[small_tx["TX_TIME_DAYS"].between(45, 51)]
    f = FraudFeatures(delay=7).fit(hist, hist["TX_FRAUD"])
    with_labels = FraudFeatures(delay=7).fit(small_tx, small_tx["TX_FRAUD"]).transform(score)
    pd.testing.assert_frame_equal(f.transform(score.drop(columns="TX_FRAUD")), with_labels)


def test_output_names_and_dtypes(small_tx):
    """Are the 15 handbook features produced, in order, as floats?"""
    out = _features(small_tx.head(500))
    assert list(out.columns) == FEATURE_NAMES
    assert len(FEATURE_NAMES) == 15
    assert (out.dtypes == np.float64).all()


@pytest.mark.parametrize("est", TRANSFORMERS, ids=lambda e: type(e).__name__)
def test_estimator_contract(est, small_tx):
    """Do the transformers follow scikit-learn's contract (params, clone, fit returns self)?"""
    name = type(est).__name__
    check_no_attributes_set_in_init(name, est)
    check_parameters_default_constructible(name, est)
    check_set_params(name, clone(est))
    X = small_tx.head(200)
    with pytest.raises(NotFittedError):
        clone(est).transform(X)
    fitted = clone(est)
    assert fitted.fit(X, X["TX_FRAUD"]) is fitted
    assert fitted.n_features_in_ == X.shape[1]
    assert len(fitted.get_feature_names_out()) == fitted.transform(X).shape[1]
    check_get_params_invariance(name, clone(est))


def test_bad_inputs_are_refused(small_tx):
    """Do arrays, missing columns, duplicate ids and a zero delay fail with clear messages?"""
    with pytest.raises(DataError, match="needs a DataFrame"):
        FraudFeatures().fit(small_tx.to_numpy())
    with pytest.raises(DataError, match="TX_AMOUNT"):
        FraudFeatures().fit(small_tx.drop(columns="TX_AMOUNT"))
    dup = pd.concat([small_tx.head(3), small_tx.head(1)])
    with pytest.raises(DataError, match="unique"):
        FraudFeatures().fit(dup, dup["TX_FRAUD"])
    with pytest.raises(DataError, match="at least 1 day"):
        TerminalRiskFeatures(delay=0).fit(small_tx.head(10))
    with pytest.raises(DataError, match="fraud labels"):
        TerminalRiskFeatures().fit(small_tx.head(10).drop(columns="TX_FRAUD"))
