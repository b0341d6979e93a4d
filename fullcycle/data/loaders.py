"""Read transaction files in the handbook's public format, and type trusted frames.

The ULB fraud-detection handbook publishes its simulated data as one pickle
per day (``2018-04-01.pkl`` ...) with the columns TRANSACTION_ID, TX_DATETIME,
CUSTOMER_ID, TERMINAL_ID, TX_AMOUNT, TX_TIME_SECONDS, TX_TIME_DAYS, TX_FRAUD
and TX_FRAUD_SCENARIO. :func:`load_transactions` reads that folder, or a
single CSV or Parquet file with the same columns, and returns the frame the
simulator returns, so the same pipeline runs on either. Nothing is downloaded.

The loader is strict, not a data contract: it parses every value with
:mod:`fullcycle.data.parsing` and refuses the file (naming rows, values and
the fix) if one cannot be read, is missing, or repeats an id. It never repairs,
guesses or drops a row. An export that may hold bad rows is read with
:func:`read_raw` and checked by the kit's data contract, which quarantines them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fullcycle.data.fraud import CHANNELS, SECONDS_PER_DAY, TRANSACTION_COLUMNS
from fullcycle.data.parsing import parse_amounts, parse_integers, parse_timestamps
from fullcycle.exceptions import DataError

__all__ = ["load_transactions", "read_raw", "save_transactions", "typed_transactions"]

CORE = ["TRANSACTION_ID", "TX_DATETIME", "CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT"]
SUFFIXES = (".csv", ".parquet", ".pkl")
#: The channel values of a typed frame ("unknown" where the source has no channel).
CHANNEL_VALUES = [*CHANNELS, "unknown"]
_INTEGERS = {
    "TRANSACTION_ID": np.int64,
    "CUSTOMER_ID": np.int64,
    "TERMINAL_ID": np.int64,
    "TX_TIME_SECONDS": np.int64,
    "TX_TIME_DAYS": np.int64,
    "TX_FRAUD": np.int8,
    "TX_FRAUD_SCENARIO": np.int8,
}
_LABELS = ("TX_FRAUD", "TX_FRAUD_SCENARIO")
_SHOWN = 5


def _read_one(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        # Every cell as text: the parsers, not read_csv, decide what a value means.
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
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


def read_raw(path: str | Path) -> pd.DataFrame:
    """Read a file or a folder of files of transactions as they are, without parsing any value.

    CSV cells stay text so that a data contract can quarantine them with their
    original spelling; Parquet and pickle columns keep their stored types.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(
            f"{path} does not exist; pass a folder of daily .pkl files or a .csv/.parquet file"
        )
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in SUFFIXES)
        if not files:
            raise DataError(f"{path} holds no {', '.join(SUFFIXES)} files")
        return pd.concat([_read_one(p) for p in files], ignore_index=True)
    return _read_one(path)


def _refuse(where: str, problems: list[str], total: int) -> DataError:
    shown = "; ".join(problems[:_SHOWN])
    more = f" (and {total - _SHOWN:,} more)" if total > _SHOWN else ""
    return DataError(
        f"{where}: {total:,} value(s) cannot be used as they are: {shown}{more}. Nothing was "
        'repaired or dropped: fix the data, declare its format (decimal=",", '
        "time_format=...), or check the export with the kit's data contract "
        "(`fullcycle validate FILE`), which quarantines bad rows with their reasons"
    )


def typed_transactions(
    df: pd.DataFrame,
    labelled: bool = True,
    start_date: str | None = None,
    *,
    decimal: str = ".",
    time_format: str | None = None,
    where: str = "transactions",
) -> pd.DataFrame:
    """A trusted transactions frame in the simulator's types, columns and order.

    For frames that are already clean: the simulator's output, a loaded
    handbook file, or the ``valid`` rows of a data contract. It is not a
    contract: it checks nothing a contract decides (ranges, allowed channel
    spellings, duplicates beyond a repeated id) and it refuses, rather than
    quarantines, a value it cannot use.

    Parameters
    ----------
    df : DataFrame
        At least the columns TRANSACTION_ID, TX_DATETIME, CUSTOMER_ID,
        TERMINAL_ID and TX_AMOUNT (and TX_FRAUD when ``labelled``), as values
        or as text.
    labelled : bool
        Require ``TX_FRAUD``. With False (a scoring window whose labels are
        held elsewhere) the label columns are left out of the result.
    start_date : str, optional
        Day 0 for ``TX_TIME_DAYS``/``TX_TIME_SECONDS`` when the frame lacks
        them; defaults to the first transaction's date.
    decimal, time_format : str
        The declared amount decimal separator and timestamp layout (see
        :func:`~fullcycle.data.parsing.parse_amounts` and
        :func:`~fullcycle.data.parsing.parse_timestamps`).
    where : str
        What ``df`` is (a file name), for messages.

    Returns
    -------
    DataFrame
        Columns of :data:`~fullcycle.data.fraud.TRANSACTION_COLUMNS` (then any
        other columns, untouched), sorted by ``TX_DATETIME`` then
        ``TRANSACTION_ID``, with a fresh index. Missing optional columns are
        filled (``TX_CHANNEL`` = "unknown", ``TX_FRAUD_SCENARIO`` = 0 for
        legitimate rows and -1 where unknown).

    Raises
    ------
    DataError
        If a required column is absent, or a value is missing, cannot be
        parsed, is not one of the channel names, or repeats a TRANSACTION_ID.
    """
    required = CORE + (["TX_FRAUD"] if labelled else [])
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DataError(
            f"{where}: missing column(s) {missing}; the handbook format needs {CORE} and TX_FRAUD"
        )
    df = df.drop(columns=[c for c in _LABELS if c in df]) if not labelled else df.copy()
    df = df.reset_index(drop=True)
    parsed = {
        "TX_AMOUNT": parse_amounts(df["TX_AMOUNT"], decimal=decimal),
        "TX_DATETIME": parse_timestamps(df["TX_DATETIME"], format=time_format),
    }
    parsed.update({c: parse_integers(df[c]) for c in _INTEGERS if c in df})
    problems, total = [], 0
    for name, result in parsed.items():
        failed = result.failed
        total += int(failed.sum())
        problems += [f"row {i}: {text}" for i, text in result.reasons[failed].iloc[:_SHOWN].items()]
        df[name] = result.values
        empty = result.values.isna() & ~failed
        total += int(empty.sum())
        problems += [f"row {i}: {name} is missing" for i in empty.index[empty][:_SHOWN]]
    if total:
        raise _refuse(where, problems, total)
    repeated = df["TRANSACTION_ID"].duplicated()
    if repeated.any():
        ids = df.loc[repeated, "TRANSACTION_ID"].iloc[:_SHOWN].tolist()
        raise _refuse(
            where, [f"TRANSACTION_ID {i} repeats an earlier row" for i in ids], int(repeated.sum())
        )

    day0 = pd.Timestamp(start_date) if start_date else df["TX_DATETIME"].min().normalize()
    if "TX_TIME_SECONDS" not in df:
        df["TX_TIME_SECONDS"] = (df["TX_DATETIME"] - day0).dt.total_seconds().round()
    if "TX_TIME_DAYS" not in df:
        df["TX_TIME_DAYS"] = df["TX_TIME_SECONDS"] // SECONDS_PER_DAY
    if labelled and "TX_FRAUD_SCENARIO" not in df:
        df["TX_FRAUD_SCENARIO"] = np.where(df["TX_FRAUD"] == 0, 0, -1)
    channel = df["TX_CHANNEL"] if "TX_CHANNEL" in df else pd.Series("unknown", index=df.index)
    text = channel.astype(object).where(channel.notna(), None)
    unknown = ~text.isin(CHANNEL_VALUES)
    if unknown.any():
        values = sorted({str(v) for v in text[unknown]})[:_SHOWN]
        raise _refuse(
            where,
            [f"TX_CHANNEL is {v!r}, not one of {CHANNEL_VALUES}" for v in values],
            int(unknown.sum()),
        )
    df["TX_CHANNEL"] = pd.Categorical(text, categories=CHANNEL_VALUES)
    df = df.astype({c: t for c, t in _INTEGERS.items() if c in df})
    columns = [c for c in TRANSACTION_COLUMNS if c in df]
    df = df[columns + [c for c in df.columns if c not in columns]]
    return df.sort_values(["TX_DATETIME", "TRANSACTION_ID"], kind="stable").reset_index(drop=True)


def load_transactions(
    path: str | Path,
    start_date: str | None = None,
    labelled: bool = True,
    *,
    decimal: str = ".",
    time_format: str | None = None,
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
    decimal, time_format : str
        The file's amount decimal separator (``"."`` or ``","``) and, if it
        does not write ISO 8601, its timestamp layout (``"%d/%m/%Y %H:%M"``).

    Returns
    -------
    DataFrame
        The simulator's frame (see :func:`typed_transactions`).

    Raises
    ------
    DataError
        If the path is not a transactions file or folder, or a value cannot
        be used as it is (the message names rows, values and the fix).
    """
    return typed_transactions(
        read_raw(path),
        labelled=labelled,
        start_date=start_date,
        decimal=decimal,
        time_format=time_format,
        where=str(path),
    )


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
