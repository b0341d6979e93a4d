"""Read real transaction files in the handbook's public format.

The ULB fraud-detection handbook publishes its simulated data as one pickle
per day (``2018-04-01.pkl`` ...) with the columns TRANSACTION_ID, TX_DATETIME,
CUSTOMER_ID, TERMINAL_ID, TX_AMOUNT, TX_TIME_SECONDS, TX_TIME_DAYS, TX_FRAUD
and TX_FRAUD_SCENARIO. :func:`load_transactions` reads that folder, or a
single CSV or Parquet file with the same columns, and returns the frame the
simulator returns, so the same pipeline runs on either. Nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fullcycle.data.fraud import CHANNELS, SECONDS_PER_DAY, TRANSACTION_COLUMNS
from fullcycle.data.validation import parse_amounts, parse_timestamps
from fullcycle.exceptions import DataError

__all__ = ["load_transactions", "read_raw", "save_transactions"]

CORE = ["TRANSACTION_ID", "TX_DATETIME", "CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT"]
SUFFIXES = (".csv", ".parquet", ".pkl")


def _read_one(path: Path, raw: bool = False) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        if raw:
            return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
        return pd.read_csv(path)
    if suffix == ".parquet":
        return pd.read_parquet(path)
    if suffix == ".pkl":
        # The handbook ships daily pickles. Unpickling runs code from the file:
        # only load folders you made or trust.
        obj = pd.read_pickle(path)
        if not isinstance(obj, pd.DataFrame):
            raise DataError(f"{path} holds a {type(obj).__name__}, not a DataFrame of transactions")
        return obj
    raise DataError(f"{path}: unsupported file type {suffix!r}; use one of {list(SUFFIXES)}")


def _read_path(path: Path, raw: bool) -> pd.DataFrame:
    if not path.exists():
        raise DataError(
            f"{path} does not exist; pass a folder of daily .pkl files or a .csv/.parquet file"
        )
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in SUFFIXES)
        if not files:
            raise DataError(f"{path} holds no {', '.join(SUFFIXES)} files")
        return pd.concat([_read_one(p, raw) for p in files], ignore_index=True)
    return _read_one(path, raw)


def read_raw(path: str | Path) -> pd.DataFrame:
    """Read a file or folder of transactions as they are, without parsing any value.

    CSV cells stay text so that validation can quarantine them with their
    original spelling.
    """
    return _read_path(Path(path), raw=True)


def load_transactions(
    path: str | Path, start_date: str | None = None, labelled: bool = True
) -> pd.DataFrame:
    """Load transactions from a folder of daily pickles or one CSV/Parquet file.

    Parameters
    ----------
    path : str or Path
        A folder of ``*.pkl`` (or ``*.csv``/``*.parquet``) files, or one file.
    start_date : str, optional
        Day 0 for ``TX_TIME_DAYS``/``TX_TIME_SECONDS`` when the file lacks them;
        defaults to the first transaction's date.
    labelled : bool
        Require ``TX_FRAUD``. With False (a scoring window whose labels are
        held elsewhere) the label columns are left out of the result.

    Returns
    -------
    DataFrame
        Columns of :data:`~fullcycle.data.fraud.TRANSACTION_COLUMNS`, sorted by
        time. Missing optional columns are filled (``TX_CHANNEL`` = "unknown",
        ``TX_FRAUD_SCENARIO`` = 0 for legitimate rows and -1 where unknown).
        Run :func:`~fullcycle.data.validation.validate_transactions` next.
    """
    path = Path(path)
    df = _read_path(path, raw=False)
    missing = [c for c in CORE if c not in df.columns]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {missing}; the handbook format needs {CORE} and TX_FRAUD"
        )
    df = df.copy()
    df["TX_DATETIME"] = parse_timestamps(df["TX_DATETIME"])
    df["TX_AMOUNT"] = parse_amounts(df["TX_AMOUNT"])
    if df["TX_DATETIME"].isna().all():
        raise DataError(f"{path}: TX_DATETIME could not be parsed as dates in any row")
    day0 = pd.Timestamp(start_date) if start_date else df["TX_DATETIME"].min().normalize()
    if "TX_TIME_SECONDS" not in df:
        secs = (df["TX_DATETIME"] - day0).dt.total_seconds()
        df["TX_TIME_SECONDS"] = secs.round().astype("Int64")
    if "TX_TIME_DAYS" not in df:
        df["TX_TIME_DAYS"] = (pd.to_numeric(df["TX_TIME_SECONDS"]) // SECONDS_PER_DAY).astype(
            "Int64"
        )
    if "TX_CHANNEL" not in df:
        df["TX_CHANNEL"] = "unknown"
    df["TX_CHANNEL"] = pd.Categorical(
        df["TX_CHANNEL"].astype(str), categories=[*CHANNELS, "unknown"]
    )
    columns = list(TRANSACTION_COLUMNS)
    dtypes = {
        "TRANSACTION_ID": np.int64,
        "CUSTOMER_ID": np.int64,
        "TERMINAL_ID": np.int64,
        "TX_TIME_SECONDS": np.int64,
        "TX_TIME_DAYS": np.int64,
    }
    if labelled:
        if "TX_FRAUD" not in df:
            raise DataError(
                f"{path}: no TX_FRAUD column; labelled data is needed to train and evaluate"
            )
        if "TX_FRAUD_SCENARIO" not in df:
            df["TX_FRAUD_SCENARIO"] = np.where(df["TX_FRAUD"] == 0, 0, -1)
        dtypes.update({"TX_FRAUD": np.int8, "TX_FRAUD_SCENARIO": np.int8})
    else:
        df = df.drop(columns=[c for c in ("TX_FRAUD", "TX_FRAUD_SCENARIO") if c in df])
        columns = [c for c in columns if c not in ("TX_FRAUD", "TX_FRAUD_SCENARIO")]
    if len(df.dropna(subset=list(dtypes))) == len(df):
        df = df.astype(dtypes)
    extra = [c for c in df.columns if c not in columns]
    df = df[columns + extra]
    return df.sort_values(["TX_DATETIME", "TRANSACTION_ID"], kind="stable").reset_index(drop=True)


def save_transactions(df: pd.DataFrame, path: str | Path) -> Path:
    """Write transactions as CSV or Parquet (chosen by suffix), or as daily pickles into a folder."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        df.to_csv(path, index=False)
    elif path.suffix.lower() == ".parquet":
        df.to_parquet(path, index=False)
    elif path.suffix == "":
        path.mkdir(parents=True, exist_ok=True)
        for day, part in df.groupby(df["TX_DATETIME"].dt.strftime("%Y-%m-%d"), sort=True):
            part.to_pickle(path / f"{day}.pkl")
    else:
        raise DataError(
            f"{path}: choose a .csv or .parquet file, or a folder name for daily pickles"
        )
    return path
