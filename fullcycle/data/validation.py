"""Clean and validate transaction frames; quarantine bad rows with a reason.

Two steps, each usable alone:

1. :func:`standardize_transactions` repairs what has one right answer: amount
   text such as ``"$1,234.50"`` becomes 1234.5, timestamps in any UTC offset
   become naive UTC, channel spellings become the canonical names. What cannot
   be parsed becomes missing, and validation then quarantines it.
2. :func:`validate_transactions` checks the schema with pandera (types,
   ranges, allowed values, uniqueness) and finds exact and near duplicates.
   Every failing row goes to the quarantine with all its reasons; nothing is
   dropped silently and the counts are reported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pandera.pandas as pa

from fullcycle.data.fraud import CHANNELS
from fullcycle.exceptions import ValidationError

__all__ = [
    "ValidationResult",
    "clean_and_validate",
    "parse_amounts",
    "parse_timestamps",
    "standardize_transactions",
    "transaction_schema",
    "validate_transactions",
]

REQUIRED = ["TRANSACTION_ID", "TX_DATETIME", "CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT"]
MAX_AMOUNT = 1_000_000.0
NEAR_DUPLICATE_SECONDS = 60

_CHANNEL_ALIASES = {
    "chip": "chip",
    "chipandpin": "chip",
    "emv": "chip",
    "contactless": "contactless",
    "nfc": "contactless",
    "online": "online",
    "ecommerce": "online",
    "web": "online",
    "unknown": "unknown",
}
_AMOUNT_JUNK = re.compile(r"[^0-9.\-]")


def parse_amounts(values: pd.Series) -> pd.Series:
    """Parse amounts written as numbers or text with currency and separators.

    ``"$1,234.50"``, ``"EUR 1,234.50"``, ``"1,234.50 USD"`` and ``"£7.00"`` all
    parse; text that is not an amount (``"n/a"``, ``"12.3.4"``) becomes NaN.
    """
    if pd.api.types.is_numeric_dtype(values):
        return values.astype(float)
    text = values.astype("string").str.strip()
    cleaned = text.str.replace(",", "", regex=False).str.replace(_AMOUNT_JUNK, "", regex=True)
    return pd.to_numeric(cleaned.where(cleaned.str.len() > 0), errors="coerce").astype(float)


def parse_timestamps(values: pd.Series) -> pd.Series:
    """Parse timestamps with mixed UTC offsets into naive UTC datetimes.

    Text without an offset is taken as UTC. Unparseable values become NaT.
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        if getattr(values.dt, "tz", None) is not None:
            return values.dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[ns]")
        return values.astype("datetime64[ns]")
    parsed = pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")
    return parsed.dt.tz_localize(None).astype("datetime64[ns]")


def _canonical_channel(values: pd.Series) -> pd.Series:
    text = values.astype("string")
    key = text.str.lower().str.replace(r"[^a-z]", "", regex=True)
    canonical = key.map(_CHANNEL_ALIASES).astype(object)
    # Spellings nobody can map keep their text, so validation names them.
    canonical = canonical.where(canonical.notna(), text.str.strip().astype(object))
    return canonical.where(key.notna(), "unknown")


def standardize_transactions(raw: pd.DataFrame) -> pd.DataFrame:
    """Repair formats that have one right answer; keep the raw index.

    Raises
    ------
    ValidationError
        If a required column is missing altogether.
    """
    missing = [c for c in REQUIRED if c not in raw.columns]
    if missing:
        raise ValidationError(
            f"transactions are missing required column(s) {missing}; "
            f"found {list(raw.columns)}. Rename the columns to the handbook format "
            "(TRANSACTION_ID, TX_DATETIME, CUSTOMER_ID, TERMINAL_ID, TX_AMOUNT[, TX_FRAUD])."
        )
    df = raw.copy()
    df["TX_AMOUNT"] = parse_amounts(df["TX_AMOUNT"])
    df["TX_DATETIME"] = parse_timestamps(df["TX_DATETIME"])
    for name in ("TRANSACTION_ID", "CUSTOMER_ID", "TERMINAL_ID"):
        df[name] = pd.to_numeric(df[name], errors="coerce").astype("Int64")
    if "TX_CHANNEL" in df:
        df["TX_CHANNEL"] = _canonical_channel(df["TX_CHANNEL"])
    else:
        df["TX_CHANNEL"] = "unknown"
    if "TX_FRAUD" in df:
        df["TX_FRAUD"] = pd.to_numeric(df["TX_FRAUD"], errors="coerce").astype("Int8")
    return df


def transaction_schema(labelled: bool = True) -> pa.DataFrameSchema:
    """The pandera schema of a clean transactions frame."""
    columns = {
        "TRANSACTION_ID": pa.Column(
            "Int64", pa.Check.ge(0), nullable=False, unique=True, report_duplicates="exclude_first"
        ),
        "TX_DATETIME": pa.Column("datetime64[ns]", nullable=False),
        "CUSTOMER_ID": pa.Column("Int64", pa.Check.ge(0), nullable=False),
        "TERMINAL_ID": pa.Column("Int64", pa.Check.ge(0), nullable=False),
        "TX_AMOUNT": pa.Column(float, [pa.Check.ge(0), pa.Check.le(MAX_AMOUNT)], nullable=False),
        "TX_CHANNEL": pa.Column(object, pa.Check.isin([*CHANNELS, "unknown"]), nullable=False),
    }
    if labelled:
        columns["TX_FRAUD"] = pa.Column("Int8", pa.Check.isin([0, 1]), nullable=False)
    return pa.DataFrameSchema(columns, strict=False, coerce=False)


_CHECK_TEXT = {
    "not_nullable": "{col} is missing",
    "field_uniqueness": "{col} {value} is not unique (an earlier row has it)",
    "greater_than_or_equal_to(0)": "{col} {value} is negative",
    f"less_than_or_equal_to({MAX_AMOUNT})": "{col} {value} is above the maximum "
    + f"{MAX_AMOUNT:,.0f}",
}


def _reason(check: str, column: str, value) -> str:
    if check.startswith("isin"):
        return f"{column} {value!r} is not one of the allowed values {check[5:-1]}"
    template = _CHECK_TEXT.get(check, "{col} fails check " + check + " (value {value!r})")
    return template.format(col=column, value=value)


@dataclass
class ValidationResult:
    """Rows that passed, rows quarantined (with ``QUARANTINE_REASON``) and counts per reason."""

    valid: pd.DataFrame
    quarantine: pd.DataFrame
    counts: dict[str, int]

    @property
    def n_input(self) -> int:
        return len(self.valid) + len(self.quarantine)

    def summary(self) -> str:
        lines = [f"{len(self.valid):,} valid rows, {len(self.quarantine):,} quarantined"]
        lines += [f"  {count:>8,}  {reason}" for reason, count in sorted(self.counts.items())]
        return "\n".join(lines)


def _near_duplicates(df: pd.DataFrame, seconds: int) -> pd.Series:
    """For each row that repeats an earlier payment within ``seconds``, the id of that payment."""
    out = pd.Series(pd.NA, index=df.index, dtype="Int64")
    usable = df.dropna(subset=["CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT", "TX_DATETIME"])
    if usable.empty:
        return out
    s = usable.sort_values(
        ["CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT", "TX_DATETIME"], kind="stable"
    )
    same = (
        s["CUSTOMER_ID"].eq(s["CUSTOMER_ID"].shift())
        & s["TERMINAL_ID"].eq(s["TERMINAL_ID"].shift())
        & s["TX_AMOUNT"].eq(s["TX_AMOUNT"].shift())
        & (s["TX_DATETIME"] - s["TX_DATETIME"].shift()).dt.total_seconds().le(seconds)
        & s["TRANSACTION_ID"].ne(s["TRANSACTION_ID"].shift())
    ).fillna(False)
    # Chains of copies point at the first payment of the chain.
    first_id = s["TRANSACTION_ID"].where(~same).ffill()
    out.loc[s.index[same.to_numpy()]] = first_id[same].to_numpy()
    return out


def validate_transactions(
    df: pd.DataFrame, labelled: bool = True, near_duplicate_seconds: int = NEAR_DUPLICATE_SECONDS
) -> ValidationResult:
    """Validate a standardized frame; quarantine failing rows with their reasons.

    Parameters
    ----------
    df : DataFrame
        Output of :func:`standardize_transactions` (or a clean simulator frame).
    labelled : bool
        Require a valid ``TX_FRAUD`` column.
    near_duplicate_seconds : int
        Same card, terminal and amount within this many seconds of an earlier
        payment counts as a near duplicate (a double submit).
    """
    df = df.copy()
    if not pd.api.types.is_object_dtype(df["TX_CHANNEL"]):
        df["TX_CHANNEL"] = df["TX_CHANNEL"].astype(object)
    for name in ("TRANSACTION_ID", "CUSTOMER_ID", "TERMINAL_ID"):
        if df[name].dtype != "Int64":
            df[name] = df[name].astype("Int64")
    if labelled and "TX_FRAUD" in df and df["TX_FRAUD"].dtype != "Int8":
        df["TX_FRAUD"] = pd.to_numeric(df["TX_FRAUD"], errors="coerce").astype("Int8")
    if df.index.has_duplicates:
        df = df.reset_index(drop=True)

    reasons: dict[object, list[str]] = {}

    def add(index, text):
        reasons.setdefault(index, []).append(text)

    # Exact duplicates: the whole row repeats an earlier one.
    exact = df.duplicated(keep="first")
    for idx in df.index[exact.to_numpy()]:
        add(idx, f"exact duplicate of TRANSACTION_ID {df.at[idx, 'TRANSACTION_ID']}")
    rest = df.loc[~exact]

    try:
        transaction_schema(labelled).validate(rest, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        for row in cases.itertuples(index=False):
            if row.index is None or pd.isna(row.index):
                raise ValidationError(
                    f"transactions fail a whole-frame check on column {row.column!r}: {row.check} "
                    f"({row.failure_case!r}). Fix the column's type or name and load again."
                ) from None
            add(row.index, _reason(str(row.check), str(row.column), row.failure_case))

    near = _near_duplicates(rest, near_duplicate_seconds)
    for idx, original in near.dropna().items():
        add(
            idx,
            f"near duplicate of TRANSACTION_ID {original} (same card, terminal and amount "
            f"within {near_duplicate_seconds}s)",
        )

    bad = pd.Index(list(reasons))
    quarantine = df.loc[bad].copy() if len(bad) else df.iloc[:0].copy()
    quarantine["QUARANTINE_REASON"] = ["; ".join(reasons[i]) for i in bad]
    valid = df.drop(index=bad)
    counts: dict[str, int] = {}
    for texts in reasons.values():
        for text in texts:
            key = re.sub(r"-?\d[\d.,:\-]*", "N", text)
            key = re.sub(r"'[^']*'", "'…'", key)
            counts[key] = counts.get(key, 0) + 1
    valid = valid.astype(
        {"TRANSACTION_ID": np.int64, "CUSTOMER_ID": np.int64, "TERMINAL_ID": np.int64}
    )
    if labelled:
        valid["TX_FRAUD"] = valid["TX_FRAUD"].astype(np.int8)
    valid["TX_CHANNEL"] = pd.Categorical(valid["TX_CHANNEL"], categories=[*CHANNELS, "unknown"])
    valid = valid.sort_values(["TX_DATETIME", "TRANSACTION_ID"], kind="stable").reset_index(
        drop=True
    )
    return ValidationResult(valid=valid, quarantine=quarantine, counts=counts)


def clean_and_validate(raw: pd.DataFrame, labelled: bool = True) -> ValidationResult:
    """:func:`standardize_transactions` then :func:`validate_transactions`.

    The quarantine holds the rows as they arrived (raw values), with reasons.
    """
    std = standardize_transactions(raw.reset_index(drop=True))
    result = validate_transactions(std, labelled=labelled)
    raw_rows = raw.reset_index(drop=True).loc[result.quarantine.index]
    result.quarantine = raw_rows.assign(QUARANTINE_REASON=result.quarantine["QUARANTINE_REASON"])
    return result
