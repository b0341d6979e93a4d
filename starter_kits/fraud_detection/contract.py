"""The data contract of the capstone: which rows of the bank's export you trust, and why.

The export arrives messy: amounts written as text (``"$1,234.50"``,
``"57.10 USD"``), timestamps in several UTC offsets, the channel spelled five
ways, missing values, values nobody can read for sure (``"12,50"``,
``"10/08/2018 14:03"``, ``"C1234"``), replayed rows and double-submitted
payments. ``validate_export`` repairs what has one right answer and
quarantines every other faulty row with a reason, so that nothing is dropped
silently and every number downstream can be traced to a row you accepted.

The library gives you the tools, not the rules:

- ``fullcycle.data.parsing``: ``parse_amounts``, ``parse_timestamps`` and
  ``parse_integers`` read a column and return ``.values`` plus ``.reasons``
  (why a present value could not be read; they never guess);
- ``fullcycle.data.quarantine.ValidationResult.from_reasons``: given the raw
  rows, the parsed rows, a lazy pandera ``SchemaErrors`` and your own reasons,
  it splits valid from quarantined rows and counts the reasons;
- pandera (``import pandera.pandas as pa``) to declare the schema.
"""

import pandas as pd
import pandera.pandas as pa

from fullcycle.data.fraud import CHANNELS
from fullcycle.data.parsing import parse_amounts, parse_integers, parse_timestamps
from fullcycle.data.quarantine import ValidationResult
from fullcycle.exceptions import ValidationError

#: Columns every export has; a labelled export also has TX_FRAUD.
REQUIRED = ["TRANSACTION_ID", "TX_DATETIME", "CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT"]
#: The channel of a payment, once its spelling is repaired ("unknown" when not recorded).
CHANNEL_VALUES = [*CHANNELS, "unknown"]
#: The largest single payment the bank processes (from the brief).
MAX_AMOUNT = 1_000_000.0
#: The same card paying the same amount at the same terminal again within this
#: many seconds is a double submit, not a second payment (from the brief).
NEAR_DUPLICATE_SECONDS = 60


def canonical_channels(values: pd.Series) -> pd.Series:
    """The channel of each row in its canonical spelling (one of ``CHANNEL_VALUES``).

    ``"Online"``, ``" ONLINE"``, ``"on-line"`` and ``"e-commerce"`` are all
    ``"online"``; ``"nfc"`` is ``"contactless"``; ``"chip-and-pin"`` is
    ``"chip"``; a missing channel is ``"unknown"``. A spelling you cannot map
    keeps its text, so that the schema rejects it by name.
    """
    ### BEGIN SOLUTION
    aliases = {
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
    text = values.astype(object).where(values.notna(), None)
    # Compare letters only: case, spaces and hyphens are how spellings differ. Work out
    # each distinct spelling once; an export has millions of rows but a handful of them.
    spellings = pd.unique(text.dropna())
    letters = {v: "".join(c for c in str(v).lower() if c.isalpha()) for v in spellings}
    canonical = text.map({v: aliases.get(key, v) for v, key in letters.items()})
    return canonical.where(text.notna(), "unknown").astype(object)
    ### END SOLUTION


def transaction_schema(labelled: bool = True) -> pa.DataFrameSchema:
    """The pandera schema of a parsed export: types, ranges, allowed values, unique ids.

    It checks the frame after parsing (ids ``Int64``, ``TX_DATETIME``
    ``datetime64[ns]``, ``TX_AMOUNT`` float, channels canonical, ``TX_FRAUD``
    ``Int64``): no value missing, ids and amounts not negative, amounts at most
    ``MAX_AMOUNT``, channels in ``CHANNEL_VALUES``, ``TX_FRAUD`` 0 or 1, and
    each ``TRANSACTION_ID`` once (the first occurrence is the good one).
    """
    ### BEGIN SOLUTION
    not_negative = pa.Check.ge(0)
    columns = {
        "TRANSACTION_ID": pa.Column(
            "Int64", not_negative, nullable=False, unique=True, report_duplicates="exclude_first"
        ),
        "TX_DATETIME": pa.Column("datetime64[ns]", nullable=False),
        "CUSTOMER_ID": pa.Column("Int64", not_negative, nullable=False),
        "TERMINAL_ID": pa.Column("Int64", not_negative, nullable=False),
        "TX_AMOUNT": pa.Column(float, [not_negative, pa.Check.le(MAX_AMOUNT)], nullable=False),
        "TX_CHANNEL": pa.Column(object, pa.Check.isin(CHANNEL_VALUES), nullable=False),
    }
    if labelled:
        columns["TX_FRAUD"] = pa.Column("Int64", pa.Check.isin([0, 1]), nullable=False)
    # Other columns of the export (TX_TIME_DAYS, ...) pass through unchecked.
    return pa.DataFrameSchema(columns, strict=False, coerce=False)
    ### END SOLUTION


def near_duplicates(parsed: pd.DataFrame, seconds: int = NEAR_DUPLICATE_SECONDS) -> pd.Series:
    """For each row that repeats an earlier payment within ``seconds``, a reason naming it.

    A near duplicate has a new ``TRANSACTION_ID`` but the same card, terminal
    and amount as an earlier payment, a few seconds later (a double submit).
    Returns a Series on ``parsed``'s index: the reason text for the later copy
    of each such pair (chains point at the first payment), missing elsewhere.
    Rows with a missing card, terminal, amount or time are not compared.
    """
    ### BEGIN SOLUTION
    keys = ["CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT"]
    out = pd.Series(None, index=parsed.index, dtype=object)
    usable = parsed.dropna(subset=[*keys, "TX_DATETIME", "TRANSACTION_ID"])
    # Sort so that copies of one payment sit next to each other, oldest first.
    s = usable.sort_values([*keys, "TX_DATETIME"], kind="stable")
    gap = s["TX_DATETIME"].diff().dt.total_seconds()
    same = s[keys].eq(s[keys].shift()).all(axis=1) & gap.le(seconds)
    same &= s["TRANSACTION_ID"].ne(s["TRANSACTION_ID"].shift()).fillna(True)
    same = same.fillna(False).astype(bool)
    first_id = s["TRANSACTION_ID"].where(~same).ffill()
    for row, original, gap_s in zip(s.index[same], first_id[same], gap[same], strict=True):
        out[row] = (
            f"TRANSACTION_ID {s.at[row, 'TRANSACTION_ID']} is a near duplicate of TRANSACTION_ID "
            f"{original}: same CUSTOMER_ID, TERMINAL_ID and TX_AMOUNT {s.at[row, 'TX_AMOUNT']} "
            f"{gap_s:.0f}s later (within {seconds}s: a double submit)"
        )
    return out
    ### END SOLUTION


def validate_export(raw: pd.DataFrame, labelled: bool = True) -> ValidationResult:
    """Check the raw export against the contract: repair what is certain, quarantine the rest.

    Parameters
    ----------
    raw : DataFrame
        The export as it arrived (text, numbers or both; extra columns allowed).
    labelled : bool
        Whether the export carries ``TX_FRAUD`` (a training history does; a
        scoring window does not).

    Returns
    -------
    ValidationResult
        - ``valid``: the good rows, parsed (ids ``int64``, ``TX_DATETIME``
          naive UTC ``datetime64[ns]``, ``TX_AMOUNT`` float, ``TX_CHANNEL``
          categorical over ``CHANNEL_VALUES``, ``TX_FRAUD`` ``int8`` when
          labelled; other columns as they came), sorted by ``TX_DATETIME``
          then ``TRANSACTION_ID``, with a fresh index;
        - ``quarantine``: every other row exactly as it arrived, on ``raw``'s
          index (renumbered from 0 if that index repeats a label), with
          ``QUARANTINE_REASON`` naming the column, the value and what is wrong;
        - ``counts``: how often each kind of reason occurred.

    Every row of ``raw`` ends up in exactly one of the two. Repair (keep the
    row): amount text with a currency and thousands separators, timestamps in
    any UTC offset, channel spellings. Quarantine: a missing or unreadable
    value, a negative or implausible amount, an unknown channel, a label that
    is not 0/1, a reused ``TRANSACTION_ID``, an exact repeat of an earlier
    row, and a near duplicate (see :func:`near_duplicates`).

    Raises
    ------
    ValidationError
        If a required column is absent: no single row is to blame.
    """
    ### BEGIN SOLUTION
    required = REQUIRED + (["TX_FRAUD"] if labelled else [])
    missing = [c for c in required if c not in raw.columns]
    if missing:
        raise ValidationError(
            f"the export has no column(s) {missing} (found {list(raw.columns)}); rename its "
            f"columns to the handbook format {required}"
        )
    if not raw.index.is_unique:
        raw = raw.reset_index(drop=True)

    # 1. Parse each column; the parsers say why a value cannot be read.
    parsed = raw.copy()
    readers = {
        "TRANSACTION_ID": parse_integers,
        "CUSTOMER_ID": parse_integers,
        "TERMINAL_ID": parse_integers,
        "TX_AMOUNT": parse_amounts,
        "TX_DATETIME": parse_timestamps,
    }
    if labelled:
        readers["TX_FRAUD"] = parse_integers
    reasons = []
    for name, read in readers.items():
        result = read(raw[name])
        parsed[name] = result.values
        reasons.append(result.reasons)
    channel = raw["TX_CHANNEL"] if "TX_CHANNEL" in raw else pd.Series(None, index=raw.index)
    parsed["TX_CHANNEL"] = canonical_channels(channel)

    # 2. Exact repeats of an earlier row (a replayed batch): the first copy is the good one.
    repeat = raw.duplicated(keep="first").to_numpy()
    exact = pd.Series(None, index=raw.index, dtype=object)
    if repeat.any():
        copies = raw[raw.duplicated(keep=False).to_numpy()]
        group = copies.groupby(list(copies.columns), dropna=False, sort=False).ngroup()
        first = pd.Series(group.index, index=group.to_numpy()).groupby(level=0).first()
        for row in raw.index[repeat]:
            exact[row] = (
                f"TRANSACTION_ID {raw.at[row, 'TRANSACTION_ID']} is an exact duplicate: "
                f"the whole row repeats row {first[group[row]]}"
            )
    reasons.append(exact)

    # 3. The schema (types, ranges, allowed values, unique ids) on the rest, lazily so
    #    that every failure of every row is reported.
    rest = parsed.loc[~repeat]
    try:
        transaction_schema(labelled).validate(rest, lazy=True)
        errors = None
    except pa.errors.SchemaErrors as exc:
        errors = exc

    # 4. Double submits.
    reasons.append(near_duplicates(rest).reindex(raw.index))

    result = ValidationResult.from_reasons(raw, parsed, errors=errors, reasons=reasons)
    valid = result.valid.astype(
        {"TRANSACTION_ID": "int64", "CUSTOMER_ID": "int64", "TERMINAL_ID": "int64"}
    )
    if labelled:
        valid["TX_FRAUD"] = valid["TX_FRAUD"].astype("int8")
    valid["TX_CHANNEL"] = pd.Categorical(valid["TX_CHANNEL"], categories=CHANNEL_VALUES)
    result.valid = valid.sort_values(["TX_DATETIME", "TRANSACTION_ID"], kind="stable").reset_index(
        drop=True
    )
    return result
    ### END SOLUTION
