"""Parsers for the values of a raw export that never change a value silently.

Each parser reads one column and returns a :class:`Parsed`: the values it could
read, and for every value it could not, a reason that names the column, the
value as it arrived and what is wrong with it (and, where there is one, the
fix). A missing value is not a parse failure: it stays missing with no reason,
and a schema that requires the column reports it as missing.

What "never silently" means here:

- :func:`parse_amounts` reads ``"$1,234.50"``, ``"EUR 57.10"`` and
  ``"1,234.50 USD"`` with the default decimal point. A decimal-comma amount
  (``"12,50"``, ``"1.234,56"``) is read only when ``decimal=","`` is declared;
  otherwise it gets a reason that says so. In a column that holds amounts of
  both conventions, a value that reads differently under each (``"1.234"``) is
  refused as ambiguous instead of being guessed.
- :func:`parse_timestamps` reads ISO 8601 text with or without a UTC offset
  (``Z``, ``+05:30``; no offset means UTC) into naive UTC. Day-first or
  month-first text (``"10/08/2018 14:03"``), epoch numbers, zone abbreviations
  (``"... CET"``) and impossible dates (``2018-02-30``) each get their own
  reason; a declared ``format`` reads a known non-ISO layout.
- :func:`parse_integers` reads whole numbers (``12``, ``"12"``, ``12.0``) and
  says ``is not an integer`` for anything else (``"abc"``, ``12.5``).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from numbers import Number

import numpy as np
import pandas as pd

from fullcycle.exceptions import ConfigError

__all__ = ["Parsed", "parse_amounts", "parse_integers", "parse_timestamps", "show_value"]

DECIMALS = (".", ",")
_THOUSANDS = {".": (",", "'", " ", "\u00a0", "\u202f"), ",": (".", " ", "\u00a0", "\u202f")}
_NAME = {".": "point", ",": "comma"}
# Patterns avoid look-arounds and back-references so that pandas can run them
# with its fast (RE2) string engine.
_CURRENCY_BEFORE = r"^(?:[$€£¥]|[A-Za-z]{3})[ \t]*"
_CURRENCY_AFTER = r"[ \t]*(?:[$€£¥]|[A-Za-z]{3})$"
_ISO = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:[.][0-9]+)?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?"
)
_UTC_SUFFIX = re.compile(r"[ \t]*(?:UTC|GMT)$")
_ZONE_NAME = re.compile(r"(.*[0-9])\s*([A-Za-z]{2,5})")
_EPOCH = re.compile(r"[-+]?[0-9]{9,13}(?:[.][0-9]+)?")
_SLASHED = re.compile(r"([0-9]{1,2})([/.-])([0-9]{1,2})\2([0-9]{4}|[0-9]{2})(.*)")
_INTEGER = re.compile(r"[-+]?[0-9]{1,18}(?:[.]0+)?")
_LONG_INTEGER = re.compile(r"[-+]?[0-9]+(?:[.]0+)?")
_STRING = "string[pyarrow]"
_ISO_EXAMPLES = '"2018-04-01 14:03:00", "2018-04-01T14:03:00+02:00" or "2018-04-01T12:03:00Z"'
_EPOCH_REASON = (
    "is a number (seconds or milliseconds since 1970?), not a date-time; convert it "
    'before validating (pd.to_datetime(values, unit="s")) or export ISO 8601 text'
)


@dataclass(frozen=True)
class Parsed:
    """The result of parsing one column.

    Attributes
    ----------
    values : Series
        The parsed values, on the input's index; missing where the input was
        missing or could not be parsed.
    reasons : Series
        On the same index and named after the column: for each value that was
        present but could not be parsed, why (naming the column and the value);
        missing elsewhere.
    """

    values: pd.Series
    reasons: pd.Series

    @property
    def failed(self) -> pd.Series:
        """Boolean mask of the rows whose value was present but could not be parsed."""
        return self.reasons.notna()


def show_value(value) -> str:
    """A value as a reason shows it: text in double quotes, numbers as they are."""
    if isinstance(value, str):
        text = value if len(value) <= 60 else value[:57] + "..."
        return '"' + text.replace('"', '\\"') + '"'
    if isinstance(value, (pd.Timestamp, dt.datetime, dt.date, np.datetime64)):
        return f'"{value}"'
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return repr(value)


def _column(values: pd.Series) -> str:
    return str(values.name) if values.name is not None else "value"


def _kind(value) -> str:
    kind = type(value)
    if kind is str:
        return "text" if value.strip() else "missing"
    if kind is float:
        return "missing" if value != value else "number"  # NaN
    if kind is int:
        return "number"
    if value is None or value is pd.NA or value is pd.NaT:
        return "missing"
    if isinstance(value, str):
        return "text" if value.strip() else "missing"
    if isinstance(value, (bool, np.bool_)):
        return "other"
    if isinstance(value, Number):
        return "missing" if value != value else "number"
    if isinstance(value, (dt.datetime, np.datetime64)):
        return "datetime"
    return "other"


def _same(values: pd.Series, kind: str) -> pd.Series:
    return pd.Series(kind, index=values.index, dtype=object).where(values.notna(), "missing")


def _kinds(values: pd.Series) -> pd.Series:
    """Per row: ``missing``, ``text``, ``number``, ``datetime`` or ``other``."""
    if pd.api.types.is_bool_dtype(values):
        return _same(values, "other")
    if pd.api.types.is_numeric_dtype(values):
        return _same(values, "number")
    if pd.api.types.is_datetime64_any_dtype(values):
        return _same(values, "datetime")
    inferred = pd.api.types.infer_dtype(values, skipna=True)
    if inferred == "string":  # all text: only blanks need a look
        kinds = _same(values, "text")
        present = values.notna()
        blank = values[present].astype(_STRING).str.strip().eq("")
        kinds[blank.index[blank.to_numpy(dtype=bool)]] = "missing"
        return kinds
    if inferred in ("integer", "floating", "mixed-integer-float", "decimal"):
        return _same(values, "number")
    if inferred in ("datetime", "datetime64"):
        return _same(values, "datetime")
    return values.map(_kind).astype(object)


def _no_reasons(values: pd.Series) -> pd.Series:
    return pd.Series(None, index=values.index, dtype=object, name=values.name)


def _text(values: pd.Series, mask: pd.Series) -> pd.Series:
    """The rows of ``mask`` as stripped text (pandas' Arrow-backed string type, for speed)."""
    return values[mask].astype(str).astype(_STRING).str.strip()


# --------------------------------------------------------------------------- amounts


def _number_pattern(decimal: str) -> re.Pattern:
    grouped = "|".join(rf"[0-9]{{1,3}}(?:[{t}][0-9]{{3}})+" for t in _THOUSANDS[decimal])
    integer = rf"(?:[0-9]+|{grouped})"
    fraction = rf"[{decimal}][0-9]+"
    return re.compile(rf"(?:{integer}(?:{fraction})?|{fraction})")


_NUMBER = {d: _number_pattern(d) for d in DECIMALS}


def _read_number(digits: pd.Series, decimal: str) -> pd.Series:
    """``digits`` read with ``decimal`` as the decimal separator; NaN where that reading fails."""
    ok = digits.str.fullmatch(_NUMBER[decimal].pattern).fillna(False).astype(bool)
    plain = digits.where(ok).str.replace("[" + "".join(_THOUSANDS[decimal]) + "]", "", regex=True)
    if decimal == ",":
        plain = plain.str.replace(",", ".", regex=False)
    return pd.to_numeric(plain, errors="coerce").astype(float)


def parse_amounts(values: pd.Series, decimal: str = ".") -> Parsed:
    """Parse amounts written as numbers, or as text with a currency and separators.

    Parameters
    ----------
    values : Series
        The column as it arrived (numbers, text, or both).
    decimal : {".", ","}
        The export's decimal separator. With ``"."`` (the default) thousands
        may be separated by ``,``, ``'`` or a space; with ``","`` by ``.`` or a
        space. A currency symbol (``$ € £ ¥``) or a three-letter code before or
        after the number is allowed and dropped; the number is not converted.

    Returns
    -------
    Parsed
        Float values; a reason for each text that is not an amount in the
        declared convention, or that is ambiguous in a column of mixed
        conventions.
    """
    if decimal not in DECIMALS:
        raise ConfigError(
            f"parse_amounts: decimal must be one of {list(DECIMALS)}, got {decimal!r}"
        )
    column = _column(values)
    kinds = _kinds(values)
    out = pd.Series(np.nan, index=values.index, dtype=float, name=values.name)
    reasons = _no_reasons(values)
    numbers = kinds.eq("number")
    if numbers.any():
        out[numbers] = pd.to_numeric(values[numbers].astype(object), errors="coerce")
    for label in kinds.index[kinds.eq("other") | kinds.eq("datetime")]:
        reasons[label] = f"{column} {show_value(values[label])} is not an amount"
    text_rows = kinds.eq("text")
    if not text_rows.any():
        return Parsed(out, reasons)

    raw = _text(values, text_rows)
    # Peel off a sign and a currency (before or after the number); two signs are not an amount.
    sign1 = raw.str.match(r"[-+]")
    rest = raw.str.replace(r"^[-+][ \t]*", "", regex=True)
    rest = rest.str.replace(_CURRENCY_BEFORE, "", regex=True)
    rest = rest.str.replace(_CURRENCY_AFTER, "", regex=True)
    sign2 = rest.str.match(r"[-+]")
    negative = (raw.str.match("-") | rest.str.match("-")).to_numpy(dtype=bool)
    digits = rest.str.replace(r"^[-+]", "", regex=True).where(~(sign1 & sign2))
    other = "," if decimal == "." else "."
    mine, theirs = _read_number(digits, decimal), _read_number(digits, other)
    sign = np.where(negative, -1.0, 1.0)
    mine, theirs = mine * sign, theirs * sign

    foreign = mine.isna() & theirs.notna()
    ambiguous = mine.notna() & theirs.notna() & mine.ne(theirs) & bool(foreign.any())
    good = mine.notna() & ~ambiguous
    out[good.index[good]] = mine[good]
    example = raw[foreign].iloc[0] if foreign.any() else ""
    for label in foreign.index[foreign]:
        reasons[label] = (
            f'{column} "{raw[label]}" is written with a decimal {_NAME[other]} '
            f"({show_value(theirs[label])}?), but amounts are read with a decimal {_NAME[decimal]}; "
            f'declare decimal="{other}" if the export writes amounts that way, or fix the value'
        )
    for label in ambiguous.index[ambiguous]:
        reasons[label] = (
            f'{column} "{raw[label]}" is ambiguous: {show_value(mine[label])} with a decimal '
            f"{_NAME[decimal]}, {show_value(theirs[label])} with a decimal {_NAME[other]}, and this "
            f'column also holds decimal-{_NAME[other]} amounts such as "{example}"; declare '
            'the export\'s decimal separator (decimal="." or ",") or fix the export'
        )
    bad = mine.isna() & theirs.isna()
    for label in bad.index[bad]:
        reasons[label] = (
            f'{column} "{raw[label]}" is not an amount (expected a number such as 1234.50, '
            'optionally with a currency such as "$" or "EUR")'
        )
    return Parsed(out, reasons)


# ------------------------------------------------------------------------ timestamps


def _slashed_reason(match: re.Match) -> str:
    first, sep, second, year, rest = match.groups()
    a, b = int(first), int(second)
    y = "%Y" if len(year) == 4 else "%y"
    rest = rest.strip()
    clock = ""
    if re.fullmatch(r"[0-9]{1,2}:[0-9]{2}:[0-9]{2}", rest):
        clock = " %H:%M:%S"
    elif re.fullmatch(r"[0-9]{1,2}:[0-9]{2}", rest):
        clock = " %H:%M"
    day_first = f'format="%d{sep}%m{sep}{y}{clock}"'
    month_first = f'format="%m{sep}%d{sep}{y}{clock}"'
    full_year = int(year) if len(year) == 4 else 2000 + int(year)

    def date(day: int, month: int) -> str | None:
        try:
            when = dt.date(full_year, month, day)
        except ValueError:
            return None
        return f'"{when.day} {when:%b %Y}"'

    if a <= 12 and b <= 12 and a != b:
        return (
            f"is ambiguous: day-first it is {date(a, b)}, month-first {date(b, a)}; "
            f"declare the format ({day_first} for day-first, {month_first} for month-first) "
            "or export ISO 8601"
        )
    if a > 12 and date(a, b):
        return f"is written day-first, not ISO 8601; declare the format ({day_first})"
    if b > 12 and date(b, a):
        return f"is written month-first, not ISO 8601; declare the format ({month_first})"
    if a == b and date(a, b):
        return f"is not ISO 8601; declare the format ({day_first})"
    return "is not a real date (no reading of day and month makes one)"


def _time_reason(text: str) -> str:
    """Why ``text`` is not an ISO 8601 date-time, and how to fix it."""
    if _ISO.fullmatch(text):
        try:
            dt.datetime.fromisoformat(text)
            detail = "out of the range pandas can hold"
        except ValueError as exc:
            detail = str(exc)
        return f"is not a real date or time ({detail})"
    zone = _ZONE_NAME.fullmatch(text)
    if zone:
        stamp, name = zone.groups()
        return (
            f'ends in the time-zone abbreviation "{name}", which does not say its offset '
            f"from UTC for sure (summer time? which country?); write the offset instead "
            f'(e.g. "{stamp.strip()}+01:00") or export UTC with a Z'
        )
    if _EPOCH.fullmatch(text):
        return _EPOCH_REASON
    slashed = _SLASHED.fullmatch(text)
    if slashed:
        return _slashed_reason(slashed)
    return f"is not an ISO 8601 date-time (expected e.g. {_ISO_EXAMPLES})"


def _naive_utc(stamps: pd.Series) -> pd.Series:
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    return stamps.astype("datetime64[ns]")


def parse_timestamps(values: pd.Series, format: str | None = None) -> Parsed:
    """Parse date-times into naive UTC.

    Parameters
    ----------
    values : Series
        The column as it arrived: datetimes (naive ones are taken as UTC) or
        text.
    format : str, optional
        A declared ``strftime`` layout (e.g. ``"%d/%m/%Y %H:%M"``) for an
        export that does not write ISO 8601. Without it, text must be ISO 8601:
        ``2018-04-01 14:03:00``, with ``T`` or a space, optional fractions of
        a second, and an optional ``Z`` or ``+hh:mm`` offset (none means UTC;
        a trailing ``UTC`` or ``GMT`` is read as ``Z``).

    Returns
    -------
    Parsed
        ``datetime64[ns]`` values in UTC without a time zone; a reason for
        each value that is not a date-time in the declared layout (an
        ambiguous day/month order, an epoch number, a zone abbreviation such
        as ``CET``, an impossible date such as ``2018-02-30``).
    """
    column = _column(values)
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]", name=values.name)
    reasons = _no_reasons(values)
    if pd.api.types.is_datetime64_any_dtype(values):
        return Parsed(_naive_utc(values).rename(values.name), reasons)
    kinds = _kinds(values)
    stamps = kinds.eq("datetime")
    if stamps.any():
        out[stamps] = _naive_utc(pd.to_datetime(values[stamps].astype(object), utc=True))
    for label in kinds.index[kinds.eq("number")]:
        reasons[label] = f"{column} {show_value(values[label])} {_EPOCH_REASON}"
    for label in kinds.index[kinds.eq("other")]:
        reasons[label] = f"{column} {show_value(values[label])} is not a date-time"
    text_rows = kinds.eq("text")
    if not text_rows.any():
        return Parsed(out, reasons)

    text = _text(values, text_rows)
    if format is not None:
        parsed = pd.to_datetime(text.astype(object), format=format, utc=True, errors="coerce")
        failed = parsed.isna()
        for label in failed.index[failed]:
            reasons[label] = (
                f'{column} "{text[label]}" does not match the declared format "{format}"'
            )
    else:
        text = text.str.replace(_UTC_SUFFIX.pattern, "Z", regex=True)
        iso = text.str.fullmatch(_ISO.pattern).fillna(False).astype(bool)
        parsed = pd.to_datetime(
            text.where(iso).astype(object), format="ISO8601", utc=True, errors="coerce"
        )
        failed = parsed.isna()
        for label in failed.index[failed]:
            reasons[label] = f'{column} "{text[label]}" ' + _time_reason(text[label])
    ok = ~failed
    out[ok.index[ok]] = _naive_utc(parsed[ok])
    return Parsed(out, reasons)


# -------------------------------------------------------------------------- integers


def parse_integers(values: pd.Series) -> Parsed:
    """Parse whole numbers (ids, counts, 0/1 labels) into nullable ``Int64``.

    ``12``, ``"12"``, ``12.0`` and ``"12.0"`` read as 12; ``"abc"``, ``12.5``
    and ``True`` get the reason ``is not an integer`` (or ``is not a whole
    number``), never "is missing".
    """
    column = _column(values)
    reasons = _no_reasons(values)
    if pd.api.types.is_integer_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return Parsed(values.astype("Int64"), reasons)
    out = pd.Series(pd.NA, index=values.index, dtype="Int64", name=values.name)
    kinds = _kinds(values)
    numbers = kinds.eq("number")
    if numbers.any():
        number = pd.to_numeric(values[numbers].astype(object), errors="coerce").astype(float)
        whole = np.isfinite(number) & number.eq(np.round(number)) & number.abs().lt(2**63)
        out[whole.index[whole]] = number[whole].astype(np.int64)
        for label in whole.index[~whole]:
            shown = show_value(values[label])
            what = "a whole number" if np.isfinite(number[label]) else "a finite number"
            reasons[label] = f"{column} {shown} is not {what}"
    for label in kinds.index[kinds.eq("other") | kinds.eq("datetime")]:
        reasons[label] = f"{column} {show_value(values[label])} is not an integer"
    text_rows = kinds.eq("text")
    if text_rows.any():
        text = _text(values, text_rows)
        ok = text.str.fullmatch(_INTEGER.pattern).fillna(False).astype(bool)
        read = pd.to_numeric(text.where(ok).str.replace(r"[.]0+$", "", regex=True))
        out[ok.index[ok]] = read[ok].astype(np.int64)
        for label in ok.index[~ok]:
            too_long = _LONG_INTEGER.fullmatch(text[label])
            what = "too large for a 64-bit integer" if too_long else "not an integer"
            reasons[label] = f'{column} "{text[label]}" is {what}'
    return Parsed(out, reasons)
