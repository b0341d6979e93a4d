"""Does the loader read the handbook's public formats into the simulator's frame?"""

import pandas as pd
import pytest

from fullcycle.data import load_transactions, save_transactions, typed_transactions
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


def _core_csv(tmp_path, frame, name="export.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def test_a_european_file_is_refused_not_misread(tmp_path, small_tx):
    """Is a file with "1.234,56" and "12,50" refused with the value and the fix, not misread?"""
    df = small_tx.head(5).copy()
    df["TX_AMOUNT"] = ["1.234,56", "12,50", "7,00", "3,10", "99,99"]
    path = _core_csv(tmp_path, df)
    with pytest.raises(DataError) as err:
        load_transactions(path)
    message = str(err.value)
    assert "5 value(s) cannot be used" in message
    assert 'row 0: TX_AMOUNT "1.234,56" is written with a decimal comma' in message
    assert 'declare decimal=","' in message and "fullcycle validate" in message


def test_a_declared_format_reads_a_european_file(tmp_path, small_tx):
    """With decimal="," and a day-first time_format, does the same file load with the right values?"""
    df = small_tx.head(5).copy()
    df["TX_AMOUNT"] = ["1.234,56", "12,50", "7,00", "3,10", "99,99"]
    df["TX_DATETIME"] = df["TX_DATETIME"].dt.strftime("%d/%m/%Y %H:%M:%S")
    path = _core_csv(tmp_path, df)
    loaded = load_transactions(path, decimal=",", time_format="%d/%m/%Y %H:%M:%S")
    assert loaded["TX_AMOUNT"].tolist() == [1234.56, 12.5, 7.0, 3.1, 99.99]
    assert (loaded["TX_DATETIME"] == small_tx["TX_DATETIME"].head(5)).all()


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("TX_DATETIME", "10/08/2018 14:03", 'TX_DATETIME "10/08/2018 14:03" is ambiguous'),
        ("TX_DATETIME", "1533909780", 'TX_DATETIME "1533909780" is a number'),
        ("TX_DATETIME", "2018-04-01 10:00:00 CET", 'time-zone abbreviation "CET"'),
        ("TX_DATETIME", "2018-02-30 10:00:00", "is not a real date or time"),
        ("CUSTOMER_ID", "abc", 'CUSTOMER_ID "abc" is not an integer'),
        ("TERMINAL_ID", "", "TERMINAL_ID is missing"),
        ("TX_CHANNEL", "Online", "TX_CHANNEL is 'Online', not one of"),
        ("TRANSACTION_ID", "0", "TRANSACTION_ID 0 repeats an earlier row"),
    ],
)
def test_a_bad_value_refuses_the_file_naming_it(tmp_path, small_tx, column, value, reason):
    """Does one bad value refuse the file with its own reason (never "missing" for a bad value)?"""
    df = small_tx.head(5).astype({"TX_CHANNEL": object}).astype(object)
    df.loc[2, column] = value
    with pytest.raises(DataError, match="cannot be used") as err:
        load_transactions(_core_csv(tmp_path, df))
    assert reason in str(err.value)


def test_typed_transactions_keeps_a_clean_frame(small_tx):
    """Does a clean simulator frame come back with the same values (channel gains "unknown")?"""
    typed = typed_transactions(small_tx.sample(frac=1, random_state=0))
    expected = small_tx.assign(TX_CHANNEL=small_tx["TX_CHANNEL"].cat.add_categories("unknown"))
    pd.testing.assert_frame_equal(typed, expected)
    unlabelled = typed_transactions(small_tx.drop(columns=["TX_FRAUD"]), labelled=False)
    assert "TX_FRAUD" not in unlabelled and "TX_FRAUD_SCENARIO" not in unlabelled
