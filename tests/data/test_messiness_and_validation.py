"""Is every kind of messiness either repaired or quarantined with a reason, and nothing lost?"""

import numpy as np
import pandas as pd
import pytest

from fullcycle.data import (
    MESS_KINDS,
    clean_and_validate,
    make_messy,
    standardize_transactions,
    validate_transactions,
)
from fullcycle.data.validation import parse_amounts, parse_timestamps
from fullcycle.exceptions import DataError, ValidationError


def _messy(tx, kinds, rate=0.02, seed=4):
    return make_messy(tx, rate=rate, kinds=kinds, seed=seed)


def test_clean_simulator_output_passes_untouched(small_tx):
    """Does a clean frame pass with nothing quarantined?"""
    result = validate_transactions(small_tx)
    assert len(result.quarantine) == 0
    assert len(result.valid) == len(small_tx)


def test_nothing_is_lost(small_tx):
    """Does every input row end up either valid or quarantined, exactly once?"""
    messy, _ = make_messy(small_tx, rate=0.02, seed=1)
    result = clean_and_validate(messy)
    assert len(result.valid) + len(result.quarantine) == len(messy)
    assert sum(result.counts.values()) >= len(result.quarantine)
    assert result.quarantine["QUARANTINE_REASON"].str.len().gt(0).all()


def test_amount_strings_parse_back_to_the_amounts(small_tx):
    """Do "$1,234.50", "EUR 57.10", "57.10 USD" and "£7.00" parse to the original amounts?"""
    messy, report = _messy(small_tx, ["amount_strings"])
    assert report.counts["amount_strings"] > 0
    hit = messy["TRANSACTION_ID"].isin(report.rows["amount_strings"])
    assert messy.loc[hit, "TX_AMOUNT"].str.contains(r"[$£A-Z]").all()
    parsed = parse_amounts(messy["TX_AMOUNT"])
    original = small_tx.set_index("TRANSACTION_ID")["TX_AMOUNT"].reindex(messy["TRANSACTION_ID"])
    np.testing.assert_allclose(parsed.to_numpy(), original.to_numpy(), atol=0.005)


def test_amounts_that_are_not_amounts_become_missing_then_quarantined():
    """Is unparseable amount text quarantined, not guessed?"""
    assert parse_amounts(pd.Series(["$1,000.00", "n/a", "", "12"])).isna().tolist() == [
        False,
        True,
        True,
        False,
    ]


def test_mixed_timezones_become_the_same_instant_in_utc(small_tx):
    """Do timestamps in +05:30, -04:00, Z and naive forms all parse to the true UTC time?"""
    messy, report = _messy(small_tx, ["mixed_timezones"])
    hit = messy["TRANSACTION_ID"].isin(report.rows["mixed_timezones"])
    assert messy.loc[hit, "TX_DATETIME"].str.contains(r"[+-]\d\d:\d\d$|Z$").all()
    parsed = parse_timestamps(messy["TX_DATETIME"])
    original = small_tx.set_index("TRANSACTION_ID")["TX_DATETIME"].reindex(messy["TRANSACTION_ID"])
    assert (parsed.to_numpy() == original.to_numpy()).all()


def test_category_spellings_are_canonicalised(small_tx):
    """Do " ONLINE", "on-line", "nfc" and "chip-and-pin" map to the canonical channels?"""
    messy, report = _messy(small_tx, ["category_spellings"])
    assert report.counts["category_spellings"] > 0
    assert messy["TX_CHANNEL"].nunique() > 3
    std = standardize_transactions(messy)
    original = (
        small_tx.set_index("TRANSACTION_ID")["TX_CHANNEL"]
        .astype(str)
        .reindex(messy["TRANSACTION_ID"])
    )
    assert (std["TX_CHANNEL"].to_numpy() == original.to_numpy()).all()


def test_unknown_category_is_quarantined(small_tx):
    """Is a channel nobody can map quarantined with the allowed values named?"""
    df = small_tx.head(50).copy()
    df["TX_CHANNEL"] = df["TX_CHANNEL"].astype(str)
    df.loc[df.index[3], "TX_CHANNEL"] = "carrier pigeon"
    result = clean_and_validate(df)
    assert len(result.quarantine) == 1
    assert "TX_CHANNEL" in result.quarantine["QUARANTINE_REASON"].iloc[0]
    assert "not one of the allowed values" in result.quarantine["QUARANTINE_REASON"].iloc[0]


def test_exact_duplicates_are_quarantined_once_each(small_tx):
    """Are exact copies quarantined (the first kept) with the original's id in the reason?"""
    messy, report = _messy(small_tx, ["exact_duplicates"])
    n = report.counts["exact_duplicates"]
    assert n > 0
    result = clean_and_validate(messy)
    reasons = result.quarantine["QUARANTINE_REASON"]
    assert reasons.str.startswith("exact duplicate of TRANSACTION_ID").sum() == n
    assert result.valid["TRANSACTION_ID"].is_unique
    assert len(result.valid) == len(small_tx)


def test_near_duplicates_are_found(small_tx):
    """Is a double-submitted payment (new id, seconds later) quarantined, naming the original?"""
    messy, report = _messy(small_tx, ["near_duplicates"])
    copies = set(report.rows["near_duplicates"])
    result = clean_and_validate(messy)
    flagged = result.quarantine[
        result.quarantine["QUARANTINE_REASON"].str.contains("near duplicate")
    ]
    assert set(flagged["TRANSACTION_ID"]) == copies
    assert len(result.valid) == len(small_tx)


def test_missing_values_are_quarantined_with_the_column_named(small_tx):
    """Does each missing amount, card or terminal give a reason naming that column?"""
    messy, report = _messy(small_tx, ["missing"])
    result = clean_and_validate(messy)
    assert len(result.quarantine) == report.counts["missing"]
    assert (
        result.quarantine["QUARANTINE_REASON"]
        .str.contains(r"^(?:TX_AMOUNT|CUSTOMER_ID|TERMINAL_ID) is missing$")
        .all()
    )


def test_negative_and_duplicate_ids_are_quarantined(small_tx):
    """Are a negative amount and a reused id quarantined with their own reasons?"""
    df = small_tx.head(20).copy()
    df.loc[df.index[2], "TX_AMOUNT"] = -5.0
    df.loc[df.index[7], "TRANSACTION_ID"] = df.loc[df.index[6], "TRANSACTION_ID"]
    result = validate_transactions(df)
    reasons = dict(
        zip(result.quarantine.index, result.quarantine["QUARANTINE_REASON"], strict=True)
    )
    assert reasons[df.index[2]] == "TX_AMOUNT -5.0 is negative"
    assert "not unique" in reasons[df.index[7]]
    assert len(result.valid) == 18


def test_late_labels_arrive_after_the_usual_delay(small_tx):
    """Do some fraud labels arrive much later than the usual delay, and only frauds get one?"""
    messy, report = _messy(small_tx, ["late_labels"])
    reported = messy["TX_FRAUD_REPORTED_AT"]
    assert reported.notna().sum() == small_tx["TX_FRAUD"].sum()
    lag_days = (reported - messy["TX_DATETIME"]).dt.total_seconds() / 86400
    late = messy["TRANSACTION_ID"].isin(report.rows["late_labels"])
    assert late.sum() > 0
    assert lag_days[late].median() > 2 * lag_days[~late & reported.notna()].median()


def test_counts_summarise_reasons(small_tx):
    """Are reasons grouped into readable counts with the numbers taken out?"""
    messy, _ = make_messy(small_tx, rate=0.02, seed=3)
    result = clean_and_validate(messy)
    assert any(k.startswith("exact duplicate of TRANSACTION_ID N") for k in result.counts)
    assert "valid rows" in result.summary()


def test_bad_requests_are_refused(small_tx):
    """Do unknown fault kinds, silly rates and missing columns fail with clear messages?"""
    with pytest.raises(DataError, match="unknown kind"):
        make_messy(small_tx, kinds=["gremlins"])
    with pytest.raises(DataError, match="rate"):
        make_messy(small_tx, rate=2)
    with pytest.raises(ValidationError, match="TX_AMOUNT"):
        standardize_transactions(small_tx.drop(columns="TX_AMOUNT"))


def test_every_kind_is_covered_by_a_test():
    """Is every kind of messiness exercised above?"""
    assert set(MESS_KINDS) == {
        "missing",
        "exact_duplicates",
        "near_duplicates",
        "amount_strings",
        "mixed_timezones",
        "category_spellings",
        "late_labels",
    }
