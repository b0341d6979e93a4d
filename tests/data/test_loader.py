"""Does the loader read the handbook's public formats into the simulator's frame?"""

import pandas as pd
import pytest

from fullcycle.data import load_transactions, save_transactions
from fullcycle.exceptions import DataError

HANDBOOK_COLUMNS = [
    "TRANSACTION_ID",
    "TX_DATETIME",
    "CUSTOMER_ID",
    "TERMINAL_ID",
    "TX_AMOUNT",
    "TX_TIME_SECONDS",
    "TX_TIME_DAYS",
    "TX_FRAUD",
    "TX_FRAUD_SCENARIO",
]


@pytest.fixture
def handbook_frame(small_tx):
    """The simulator's output in exactly the handbook's columns (no channel)."""
    return small_tx[HANDBOOK_COLUMNS]


def _expected(small_tx):
    out = small_tx.copy()
    out["TX_CHANNEL"] = pd.Categorical(
        ["unknown"] * len(out), categories=["chip", "contactless", "online", "unknown"]
    )
    return out


def test_daily_pickle_folder(tmp_path, small_tx, handbook_frame):
    """Does a folder of YYYY-MM-DD.pkl files load as one frame, identical to the simulator's?"""
    folder = save_transactions(handbook_frame, tmp_path / "data")
    assert len(list(folder.glob("*.pkl"))) == small_tx["TX_TIME_DAYS"].nunique()
    loaded = load_transactions(folder)
    pd.testing.assert_frame_equal(loaded, _expected(small_tx), check_dtype=False)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_single_file(tmp_path, small_tx, handbook_frame, suffix):
    """Does one CSV or Parquet file load into the same frame?"""
    path = save_transactions(handbook_frame, tmp_path / f"tx{suffix}")
    loaded = load_transactions(path)
    pd.testing.assert_frame_equal(loaded, _expected(small_tx), check_dtype=False)


def test_minimal_file_gets_time_columns(tmp_path, small_tx):
    """Are TX_TIME_SECONDS/DAYS derived when a file has only the core columns?"""
    core = small_tx[
        ["TRANSACTION_ID", "TX_DATETIME", "CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT", "TX_FRAUD"]
    ]
    core.to_csv(tmp_path / "core.csv", index=False)
    loaded = load_transactions(tmp_path / "core.csv")
    assert (loaded["TX_TIME_SECONDS"].to_numpy() == small_tx["TX_TIME_SECONDS"].to_numpy()).all()
    assert (loaded["TX_FRAUD_SCENARIO"] == small_tx["TX_FRAUD"].map({0: 0, 1: -1})).all()


def test_errors_name_the_problem(tmp_path, small_tx):
    """Do a missing path, a wrong suffix, an empty folder and missing columns fail clearly?"""
    with pytest.raises(DataError, match="does not exist"):
        load_transactions(tmp_path / "nope")
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(DataError, match="unsupported file type"):
        load_transactions(tmp_path / "x.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no"):
        load_transactions(tmp_path / "empty")
    small_tx.drop(columns=["TERMINAL_ID"]).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DataError, match=r"missing column\(s\) \['TERMINAL_ID'\]"):
        load_transactions(tmp_path / "bad.csv")
