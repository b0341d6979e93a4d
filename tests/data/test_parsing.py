"""Do the parsers read what is certain, and say what is wrong with the rest, never guessing?"""

import numpy as np
import pandas as pd
import pytest

from fullcycle.data import parse_amounts, parse_integers, parse_timestamps
from fullcycle.exceptions import ConfigError


def _amounts(*values, decimal="."):
    return parse_amounts(pd.Series(list(values), name="TX_AMOUNT", dtype=object), decimal=decimal)


def _times(*values, format=None):
    return parse_timestamps(
        pd.Series(list(values), name="TX_DATETIME", dtype=object), format=format
    )


def test_handbook_amount_strings_parse():
    """Do "$1,234.50", "1,234.50 USD", "EUR 57.10", "£7.00" and "-$5.00" read as their numbers?"""
    p = _amounts("$1,234.50", "1,234.50 USD", "EUR 57.10", "£7.00", "-$5.00", "12", 3.5)
    assert p.values.tolist() == [1234.5, 1234.5, 57.1, 7.0, -5.0, 12.0, 3.5]
    assert not p.failed.any()


def test_european_amounts_are_refused_by_default_with_the_fix():
    """Are "1.234,56" and "12,50" refused (not read as 1.23456 and 1250.0), naming value and fix?"""
    p = _amounts("1.234,56", "12,50", "57.10")
    assert p.values.isna().tolist() == [True, True, False]
    for value, reason in zip(["1.234,56", "12,50"], p.reasons[:2], strict=True):
        assert reason.startswith(f'TX_AMOUNT "{value}" is written with a decimal comma')
        assert 'declare decimal=","' in reason
    assert p.reasons[2] is None or pd.isna(p.reasons[2])


def test_european_amounts_read_under_a_declared_decimal_comma():
    """With decimal=",", are "1.234,56", "12,50" and "1 234,56 EUR" read right, and "$1,234.50" refused?"""
    p = _amounts("1.234,56", "12,50", "1 234,56 EUR", "7", "$1,234.50", decimal=",")
    np.testing.assert_allclose(p.values[:4], [1234.56, 12.5, 1234.56, 7.0])
    assert p.failed.tolist() == [False, False, False, False, True]
    assert 'declare decimal="."' in p.reasons.iloc[4]


def test_a_value_that_reads_two_ways_in_a_mixed_column_is_ambiguous():
    """In a column that also holds "12,50", is "1.234" refused as ambiguous instead of read as 1.234?"""
    p = _amounts("1.234", "12,50", "8.50")
    assert p.values.isna().tolist() == [True, True, False]
    assert p.reasons[0].startswith('TX_AMOUNT "1.234" is ambiguous: 1.234 with a decimal point')
    assert "1234.0 with a decimal comma" in p.reasons[0]
    # Without decimal-comma values in the column, "1.234" is simply 1.234.
    assert _amounts("1.234", "8.50").values.tolist() == [1.234, 8.5]


def test_not_an_amount_and_missing_are_told_apart():
    """Is "n/a" refused as not an amount while "", None and NaN stay missing without a reason?"""
    p = _amounts("n/a", "", None, np.nan, "--5")
    assert p.values.isna().all()
    assert p.failed.tolist() == [True, False, False, False, True]
    assert p.reasons[0].startswith('TX_AMOUNT "n/a" is not an amount')


def test_unknown_decimal_is_refused():
    """Is a decimal separator other than "." or "," a configuration error naming the choices?"""
    with pytest.raises(ConfigError, match=r"\[',', '\.'\]|\['\.', ','\]"):
        _amounts("1", decimal=";")


def test_iso_timestamps_with_offsets_become_naive_utc():
    """Do Z, +05:30, -04:00, naive text, a trailing UTC and aware Timestamps give the same UTC time?"""
    p = _times(
        "2018-04-01T10:00:00Z",
        "2018-04-01T15:30:00+05:30",
        "2018-04-01T06:00:00-04:00",
        "2018-04-01 10:00:00",
        "2018-04-01 10:00:00 UTC",
        pd.Timestamp("2018-04-01 12:00", tz="Europe/Paris"),
    )
    assert not p.failed.any()
    assert p.values.dtype == "datetime64[ns]"
    assert (p.values == pd.Timestamp("2018-04-01 10:00:00")).all()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            "10/08/2018 14:03",
            'is ambiguous: day-first it is "10 Aug 2018", month-first "8 Oct 2018"',
        ),
        (
            "25/08/2018 14:03",
            'is written day-first, not ISO 8601; declare the format (format="%d/%m/%Y %H:%M")',
        ),
        ("1533909780", "is a number (seconds or milliseconds since 1970?), not a date-time"),
        ("2018-04-01 10:00:00 CET", 'ends in the time-zone abbreviation "CET"'),
        ("2018-02-30 10:00:00", "is not a real date or time (day is out of range for month)"),
        ("yesterday", "is not an ISO 8601 date-time"),
    ],
)
def test_unreadable_timestamps_say_what_is_wrong(value, expected):
    """Does each unreadable timestamp get its own reason, naming the column and the value?"""
    p = _times(value)
    assert p.values.isna().all()
    assert p.reasons[0].startswith(f'TX_DATETIME "{value}" {expected}')


def test_ambiguous_dates_name_the_format_to_declare():
    """Does the day-first reason say which format to declare, and does declaring it read the value?"""
    reason = _times("10/08/2018 14:03").reasons[0]
    assert 'format="%d/%m/%Y %H:%M" for day-first' in reason
    p = _times("10/08/2018 14:03", "2018-08-10 14:03", format="%d/%m/%Y %H:%M")
    assert p.values[0] == pd.Timestamp("2018-08-10 14:03")
    assert p.reasons[1] == (
        'TX_DATETIME "2018-08-10 14:03" does not match the declared format "%d/%m/%Y %H:%M"'
    )


def test_an_epoch_number_is_not_read_as_a_time():
    """Is a number in a timestamp column refused (not read as nanoseconds after 1970)?"""
    p = parse_timestamps(pd.Series([1533909780, np.nan], name="TX_DATETIME"))
    assert p.values.isna().all()
    assert p.failed.tolist() == [True, False]
    assert p.reasons[0].startswith("TX_DATETIME 1533909780.0 is a number")


def test_ids_that_are_not_integers_are_not_called_missing():
    """Is CUSTOMER_ID "abc" "not an integer" (and 12.5 "not a whole number"), while None is missing?"""
    p = parse_integers(
        pd.Series(
            ["12", 13, 14.0, "15.0", "abc", 12.5, None, True], name="CUSTOMER_ID", dtype=object
        )
    )
    assert p.values.dtype == "Int64"
    assert p.values[:4].tolist() == [12, 13, 14, 15]
    assert p.values[4:].isna().all()
    assert p.reasons[4] == 'CUSTOMER_ID "abc" is not an integer'
    assert p.reasons[5] == "CUSTOMER_ID 12.5 is not a whole number"
    assert pd.isna(p.reasons[6])
    assert p.reasons[7] == "CUSTOMER_ID True is not an integer"


def test_typed_columns_pass_through_unchanged(small_tx):
    """Are a clean frame's numbers and datetimes returned as they are, with no reason?"""
    for parse, name in [
        (parse_amounts, "TX_AMOUNT"),
        (parse_timestamps, "TX_DATETIME"),
        (parse_integers, "CUSTOMER_ID"),
    ]:
        p = parse(small_tx[name])
        assert not p.failed.any()
        assert (p.values.to_numpy() == small_tx[name].to_numpy()).all()
