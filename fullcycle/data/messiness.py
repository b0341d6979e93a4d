"""Make a clean transactions frame look like a real export, on request.

:func:`make_messy` adds the faults that real card data arrives with, each at a
stated rate and each recorded, so a test (or a learner) can check that the
cleaning and validation steps find every one:

- ``missing``: empty amounts, terminals or customers;
- ``exact_duplicates``: the same row twice (a replayed batch);
- ``near_duplicates``: a second copy a few seconds later with a new id
  (a double-submitted payment);
- ``amount_strings``: amounts as text with currency symbols and thousands
  separators (``"$1,234.50"``, ``"EUR 57.10"``, ``"57.10 USD"``);
- ``mixed_timezones``: timestamps as ISO text in several UTC offsets, some naive;
- ``category_spellings``: the channel spelled inconsistently (``"Online"``,
  ``" ONLINE"``, ``"on-line"``);
- ``late_labels``: each fraud label gets the time it was reported; some arrive
  long after the usual delay (``TX_FRAUD_REPORTED_AT``);
- ``malformed``: one value of the row written in a form nobody can read for
  sure: a decimal-comma amount (``"1.234,56"``, ``"12,50"``), a day-first
  time (``"10/08/2018 14:03"``), an epoch number, a time-zone abbreviation
  (``"... CET"``), an impossible date (``2018-02-30``), or a card or terminal
  id that is not a number (``"C1234"``).

Some faults have one right repair (amount strings, time zones, channel
spellings: the row is good and must be kept); the others make a row faulty (it
must be quarantined): see :attr:`MessReport.FAULTY` and
:meth:`MessReport.faulty_rows`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from fullcycle.data.parsing import parse_amounts
from fullcycle.exceptions import DataError

__all__ = ["MESS_KINDS", "MessReport", "make_messy"]

MESS_KINDS = (
    "missing",
    "exact_duplicates",
    "near_duplicates",
    "amount_strings",
    "mixed_timezones",
    "category_spellings",
    "late_labels",
    "malformed",
)

_SPELLINGS = {
    "chip": ["Chip", "CHIP", " chip", "chip-and-pin"],
    "contactless": ["Contactless", "CONTACTLESS ", "contact-less", "nfc"],
    "online": ["Online", " ONLINE", "on-line", "e-commerce"],
}
_OFFSETS_MIN = np.array([-300, -240, 0, 60, 120, 330])


_MALFORMED = (
    "decimal_comma",
    "day_first",
    "epoch",
    "zone_abbreviation",
    "impossible_date",
    "customer_text",
    "terminal_text",
)


@dataclass
class MessReport:
    """Which rows received which fault (ids refer to ``TRANSACTION_ID``).

    Attributes
    ----------
    counts : dict
        Fault kind -> number of rows that received it.
    rows : dict
        Fault kind -> ``TRANSACTION_ID`` of those rows. For ``near_duplicates``
        the ids of the copies; for ``exact_duplicates`` the id the copy
        repeats (the export then holds it twice).
    """

    #: Kinds after which a row is faulty: a data contract must quarantine it.
    #: The others (amount strings, time zones, channel spellings, late labels)
    #: leave a good row that must be kept, repaired where needed.
    FAULTY = ("missing", "exact_duplicates", "near_duplicates", "malformed")

    counts: dict[str, int] = field(default_factory=dict)
    rows: dict[str, np.ndarray] = field(default_factory=dict)

    def faulty_rows(self, messy: pd.DataFrame) -> pd.Series:
        """Which rows of ``messy`` a data contract must quarantine (the ground truth).

        Parameters
        ----------
        messy : DataFrame
            The export :func:`make_messy` returned with this report, in its
            order (its index may have been changed; a copy written to CSV and
            read back as text works too).

        Returns
        -------
        Series of bool
            On ``messy``'s index: True for a row with a missing or malformed
            value, for the copy of a near duplicate, and for every repeat
            (after the first) of an exactly duplicated row.
        """
        ids = pd.to_numeric(messy["TRANSACTION_ID"], errors="coerce")
        faulty = [
            self.rows[k] for k in ("missing", "near_duplicates", "malformed") if k in self.rows
        ]
        bad = ids.isin(np.concatenate(faulty)) if faulty else pd.Series(False, index=messy.index)
        if "exact_duplicates" in self.rows:
            bad |= messy.astype(str).duplicated(keep="first")
        return bad.astype(bool)


def _format_amount(values: np.ndarray, style: np.ndarray) -> np.ndarray:
    out = np.empty(values.size, dtype=object)
    for i, (v, s) in enumerate(zip(values, style, strict=True)):
        if s == 0:
            out[i] = f"${v:,.2f}"
        elif s == 1:
            out[i] = f"EUR {v:,.2f}"
        elif s == 2:
            out[i] = f"{v:,.2f} USD"
        else:
            out[i] = f"£{v:,.2f}"
    return out


def _malform(df: pd.DataFrame, rows: np.ndarray, how: np.ndarray) -> None:
    """Write one unreadable value into each of ``rows`` (in place), as ``_MALFORMED[how]``."""
    if rows.size == 0:
        return
    stamps = df["TX_DATETIME"].iloc[rows]
    if not pd.api.types.is_datetime64_any_dtype(stamps):
        stamps = pd.to_datetime(stamps, utc=True, format="ISO8601").dt.tz_localize(None)
    amounts = parse_amounts(df["TX_AMOUNT"].iloc[rows]).values
    for name in ("TX_AMOUNT", "TX_DATETIME", "CUSTOMER_ID", "TERMINAL_ID"):
        if df[name].dtype != object:
            df[name] = df[name].astype(object)
    for i, kind, ts, amount in zip(rows, how, stamps, amounts, strict=True):
        kind = _MALFORMED[kind]
        if kind == "decimal_comma":
            text = f"{amount:,.2f}".replace(",", "_").replace(".", ",").replace("_", ".")
            df.iat[i, df.columns.get_loc("TX_AMOUNT")] = text
        elif kind == "customer_text":
            column = df.columns.get_loc("CUSTOMER_ID")
            df.iat[i, column] = f"C{df.iat[i, column]}"
        elif kind == "terminal_text":
            column = df.columns.get_loc("TERMINAL_ID")
            df.iat[i, column] = f"T{df.iat[i, column]}"
        else:
            if kind == "day_first":
                text = ts.strftime("%d/%m/%Y %H:%M")
            elif kind == "epoch":
                text = str(int(ts.timestamp()))
            elif kind == "zone_abbreviation":
                text = (ts + pd.Timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S") + " CET"
            else:  # impossible_date
                text = ts.strftime("%Y-02-30 %H:%M:%S")
            df.iat[i, df.columns.get_loc("TX_DATETIME")] = text


def make_messy(
    transactions: pd.DataFrame,
    rate: float = 0.01,
    kinds: tuple[str, ...] | list[str] = MESS_KINDS,
    seed: int = 0,
    label_delay_days: float = 7.0,
) -> tuple[pd.DataFrame, MessReport]:
    """Return a messy copy of ``transactions`` and a report of what was done.

    Parameters
    ----------
    transactions : DataFrame
        A clean frame from :func:`~fullcycle.data.fraud.simulate_transactions`
        or a loader.
    rate : float
        Fraction of rows hit by each row-level fault (0 < rate < 0.5).
    kinds : sequence of str
        Faults to apply, from :data:`MESS_KINDS`.
    seed : int
        Seed; the same inputs give the same mess.
    label_delay_days : float
        Usual delay between a fraud and its report; late labels arrive
        2-8 times later.

    Returns
    -------
    messy : DataFrame
        ``TX_AMOUNT`` and ``TX_DATETIME`` become text when their faults are
        requested (and the columns ``malformed`` writes into hold text among
        their values); ``TX_FRAUD_REPORTED_AT`` is added with ``late_labels``.
    report : MessReport
    """
    unknown = sorted(set(kinds) - set(MESS_KINDS))
    if unknown:
        raise DataError(f"make_messy: unknown kind(s) {unknown}; choose from {list(MESS_KINDS)}")
    if not 0 < rate < 0.5:
        raise DataError(f"make_messy: rate must be in (0, 0.5), got {rate}")
    rng = np.random.default_rng(seed)
    df = transactions.copy()
    n = len(df)
    report = MessReport()

    def pick(k: float = rate) -> np.ndarray:
        return np.flatnonzero(rng.random(n) < k)

    if "late_labels" in kinds:
        fraud = df["TX_FRAUD"].to_numpy() == 1
        delay = rng.exponential(label_delay_days / 3, size=n) + label_delay_days / 2
        late = fraud & (rng.random(n) < max(rate * 10, 0.05))
        delay[late] *= rng.uniform(2, 8, size=late.sum())
        reported = df["TX_DATETIME"] + pd.to_timedelta(delay * 86_400, unit="s").round("s")
        df["TX_FRAUD_REPORTED_AT"] = reported.where(fraud)
        report.rows["late_labels"] = df["TRANSACTION_ID"].to_numpy()[late]

    if "category_spellings" in kinds:
        rows = pick(rate * 5)
        chan = df["TX_CHANNEL"].astype(str).to_numpy(dtype=object)
        for i in rows:
            choices = _SPELLINGS.get(chan[i], [chan[i].upper()])
            chan[i] = choices[rng.integers(len(choices))]
        df["TX_CHANNEL"] = chan
        report.rows["category_spellings"] = df["TRANSACTION_ID"].to_numpy()[rows]

    if "amount_strings" in kinds:
        rows = pick(rate * 20)
        amounts = df["TX_AMOUNT"].to_numpy(dtype=float)
        text = np.array([f"{v:.2f}" for v in amounts], dtype=object)
        text[rows] = _format_amount(amounts[rows], rng.integers(0, 4, size=rows.size))
        df["TX_AMOUNT"] = text
        report.rows["amount_strings"] = df["TRANSACTION_ID"].to_numpy()[rows]

    if "mixed_timezones" in kinds:
        rows = pick(rate * 20)
        ts = df["TX_DATETIME"]
        text = ts.dt.strftime("%Y-%m-%d %H:%M:%S").to_numpy(dtype=object)
        offsets = _OFFSETS_MIN[rng.integers(0, _OFFSETS_MIN.size, size=rows.size)]
        local = ts.iloc[rows] + pd.to_timedelta(offsets, unit="m")
        for j, (i, stamp, off) in enumerate(zip(rows, local, offsets, strict=True)):
            if j % 5 == 0:  # some systems write UTC with a Z
                text[i] = ts.iloc[i].strftime("%Y-%m-%dT%H:%M:%SZ")
                continue
            sign = "+" if off >= 0 else "-"
            hh, mm = divmod(abs(int(off)), 60)
            text[i] = stamp.strftime("%Y-%m-%dT%H:%M:%S") + f"{sign}{hh:02d}:{mm:02d}"
        df["TX_DATETIME"] = text
        report.rows["mixed_timezones"] = df["TRANSACTION_ID"].to_numpy()[rows]

    if "missing" in kinds:
        rows = pick()
        column = rng.choice(["TX_AMOUNT", "TERMINAL_ID", "CUSTOMER_ID"], size=rows.size)
        for name in ("TERMINAL_ID", "CUSTOMER_ID"):
            df[name] = df[name].astype("Int64")
        for name in ("TX_AMOUNT", "TERMINAL_ID", "CUSTOMER_ID"):
            idx = rows[column == name]
            df.loc[df.index[idx], name] = None
        report.rows["missing"] = df["TRANSACTION_ID"].to_numpy()[rows]

    extra = []
    involved = [report.rows.get("missing", np.array([], dtype=np.int64))]
    if "near_duplicates" in kinds:
        rows = pick(rate / 2)
        involved.append(df["TRANSACTION_ID"].to_numpy()[rows])
        copy = df.iloc[rows].copy()
        shift = pd.to_timedelta(rng.integers(1, 30, size=rows.size), unit="s")
        if pd.api.types.is_datetime64_any_dtype(copy["TX_DATETIME"]):
            copy["TX_DATETIME"] = copy["TX_DATETIME"] + shift
        else:
            parsed = pd.to_datetime(copy["TX_DATETIME"], utc=True, format="ISO8601")
            copy["TX_DATETIME"] = (parsed + shift).dt.strftime("%Y-%m-%dT%H:%M:%SZ").to_numpy()
        if "TX_TIME_SECONDS" in copy:
            copy["TX_TIME_SECONDS"] = copy["TX_TIME_SECONDS"] + shift.total_seconds().astype(int)
        start = int(df["TRANSACTION_ID"].max()) + 1
        copy["TRANSACTION_ID"] = np.arange(start, start + rows.size)
        copy["TX_FRAUD"] = 0
        copy["TX_FRAUD_SCENARIO"] = 0
        if "TX_FRAUD_REPORTED_AT" in copy:
            copy["TX_FRAUD_REPORTED_AT"] = pd.NaT
        extra.append(copy)
        report.rows["near_duplicates"] = copy["TRANSACTION_ID"].to_numpy()
    if "exact_duplicates" in kinds:
        rows = pick(rate / 2)
        extra.append(df.iloc[rows].copy())
        report.rows["exact_duplicates"] = df["TRANSACTION_ID"].to_numpy()[rows]
    if extra:
        df = pd.concat([df, *extra], ignore_index=True)
        # A real export interleaves the copies with the originals.
        df = df.iloc[rng.permutation(len(df))].reset_index(drop=True)
    if "malformed" in kinds:
        # Last, and away from rows already faulty, so that each faulty row has one cause
        # and the duplicates stay exact.
        involved += [report.rows.get(k, []) for k in ("near_duplicates", "exact_duplicates")]
        free = ~df["TRANSACTION_ID"].isin(np.concatenate(involved)).to_numpy()
        rows = np.flatnonzero((rng.random(len(df)) < rate) & free)
        _malform(df, rows, rng.integers(0, len(_MALFORMED), size=rows.size))
        report.rows["malformed"] = df["TRANSACTION_ID"].to_numpy()[rows]
    report.counts = {k: int(v.size) for k, v in report.rows.items()}
    return df, report
