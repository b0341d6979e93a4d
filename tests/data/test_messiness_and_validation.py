"""Does the kit's data contract quarantine every faulty row of a messy export, and keep the rest?

The export comes from :func:`fullcycle.data.make_messy`, whose report says which
rows are faulty (:meth:`MessReport.faulty_rows`): the ground truth a grader
uses too.
"""

import numpy as np
import pandas as pd
import pytest

from fullcycle.data import (
    MESS_KINDS,
    REASON_COLUMN,
    MessReport,
    ValidationResult,
    make_messy,
    read_raw,
    typed_transactions,
)
from fullcycle.exceptions import DataError, ValidationError
from fullcycle.kit import Kit

REPAIRED = ("amount_strings", "mixed_timezones", "category_spellings")


@pytest.fixture(scope="module")
def validate_export(repo):
    """The reference kit's contract, loaded by path as the grader loads a learner's."""
    return Kit(repo / "starter_kits" / "fraud_detection").entry("contract")


@pytest.fixture(scope="module")
def messy(small_sim):
    """Every kind of fault at a known rate."""
    return make_messy(small_sim.transactions, rate=0.02, seed=4)


def _probe(contract, messy, report):
    """What a grader measures: faulty rows caught (with a reason), good rows kept, rows lost."""
    result = contract(messy)
    faulty = report.faulty_rows(messy)
    quarantined = messy.index.isin(result.quarantine.index)
    reasons = result.quarantine.get(REASON_COLUMN, pd.Series("", index=result.quarantine.index))
    with_reason = reasons.fillna("").astype(str).str.strip().ne("")
    caught = quarantined & messy.index.isin(result.quarantine.index[with_reason.to_numpy()])
    good_ids = set(messy.loc[~faulty, "TRANSACTION_ID"].astype(np.int64))
    kept = len(good_ids & set(result.valid["TRANSACTION_ID"])) / len(good_ids)
    return {
        "caught": caught[faulty.to_numpy()].mean(),
        "kept": kept,
        "wrongly_quarantined": int((quarantined & ~faulty.to_numpy()).sum()),
        "lost": len(messy) - result.n_input,
    }


def test_clean_simulator_output_passes_untouched(validate_export, small_tx):
    """Does a clean frame pass whole, typed and sorted like a trusted frame?"""
    result = validate_export(small_tx)
    assert len(result.quarantine) == 0 and result.counts == {}
    pd.testing.assert_frame_equal(result.valid, typed_transactions(small_tx))


def test_every_faulty_row_is_quarantined_and_every_good_row_kept(validate_export, messy):
    """On an export with every kind of fault, is the quarantine exactly the faulty rows?"""
    export, report = messy
    assert set(report.counts) == set(MESS_KINDS) and min(report.counts.values()) > 0
    result = validate_export(export)
    faulty = report.faulty_rows(export)
    assert 0 < faulty.sum() < len(export)
    assert sorted(result.quarantine.index) == sorted(export.index[faulty])
    assert result.quarantine[REASON_COLUMN].str.len().gt(0).all()
    assert len(result.valid) == (~faulty).sum()
    assert result.valid["TRANSACTION_ID"].is_unique
    # The quarantine holds the rows as they arrived.
    pd.testing.assert_frame_equal(
        result.quarantine.drop(columns=REASON_COLUMN), export.loc[result.quarantine.index]
    )


def test_each_fault_gets_a_reason_naming_it(validate_export, messy):
    """Does each faulty row's reason name its column and problem (and the value, where one exists)?"""
    export, report = messy
    q = validate_export(export).quarantine
    reason = q[REASON_COLUMN]
    ids = q["TRANSACTION_ID"].astype(np.int64)
    near = ids.isin(report.rows["near_duplicates"])
    # A copy of a row with a missing card, terminal or amount is quarantined for that.
    said = reason[near].str.contains(r"is a near duplicate of TRANSACTION_ID \d+")
    assert (said | reason[near].str.contains("is missing")).all() and said.mean() > 0.95
    exact = reason.str.contains("is an exact duplicate")
    assert exact.sum() == report.counts["exact_duplicates"]
    missing = ids.isin(report.rows["missing"]) & ~exact & ~near
    assert reason[missing].str.fullmatch(r"(?:TX_AMOUNT|CUSTOMER_ID|TERMINAL_ID) is missing").all()
    malformed = q[ids.isin(report.rows["malformed"])]
    assert len(malformed) == report.counts["malformed"]
    for _, row in malformed.iterrows():
        column = row[REASON_COLUMN].split(" ", 1)[0]
        assert column in ("TX_AMOUNT", "TX_DATETIME", "CUSTOMER_ID", "TERMINAL_ID")
        assert f'{column} "{row[column]}" ' in row[REASON_COLUMN]
        assert "missing" not in row[REASON_COLUMN]


def test_repairs_give_back_the_true_values(validate_export, messy, small_tx):
    """Are amount strings, time zones and channel spellings read back as the simulator's values?"""
    export, report = messy
    valid = validate_export(export).valid.set_index("TRANSACTION_ID")
    ids = valid.index.intersection(pd.Index(small_tx["TRANSACTION_ID"]))
    truth = small_tx.set_index("TRANSACTION_ID").loc[ids]
    assert len(truth) > 0.9 * len(small_tx)
    for kind in REPAIRED:
        assert np.isin(report.rows[kind], valid.index).mean() > 0.9  # repaired rows are kept
    np.testing.assert_allclose(valid.loc[truth.index, "TX_AMOUNT"], truth["TX_AMOUNT"], atol=0.005)
    assert (valid.loc[truth.index, "TX_DATETIME"] == truth["TX_DATETIME"]).all()
    assert (
        valid.loc[truth.index, "TX_CHANNEL"].astype(str) == truth["TX_CHANNEL"].astype(str)
    ).all()


def test_a_csv_export_read_as_text_gives_the_same_verdict(
    validate_export, messy, small_tx, tmp_path
):
    """Read back from CSV with every cell as text, is the quarantine still exactly the faulty rows?"""
    export, report = messy
    export.to_csv(tmp_path / "export.csv", index=False)
    raw = read_raw(tmp_path / "export.csv")
    result = validate_export(raw)
    assert sorted(result.quarantine.index) == sorted(raw.index[report.faulty_rows(raw)])
    # The valid rows, typed like a trusted frame, are the simulator's rows, value for value.
    typed = typed_transactions(result.valid).drop(columns="TX_FRAUD_REPORTED_AT")
    clean = small_tx[small_tx["TRANSACTION_ID"].isin(typed["TRANSACTION_ID"])]
    clean = clean.assign(TX_CHANNEL=clean["TX_CHANNEL"].cat.add_categories("unknown"))
    pd.testing.assert_frame_equal(typed, clean.reset_index(drop=True))


def test_rules_beyond_the_messiness_layer(validate_export, small_tx):
    """Are an unknown channel, a negative amount, a reused id and a label of 2 quarantined by name?"""
    df = small_tx.head(30).copy()
    df["TX_CHANNEL"] = df["TX_CHANNEL"].astype(object)
    df["TX_FRAUD"] = df["TX_FRAUD"].astype(np.int64)
    df.loc[3, "TX_CHANNEL"] = "carrier pigeon"
    df.loc[5, "TX_AMOUNT"] = -5.0
    df.loc[8, "TRANSACTION_ID"] = df.loc[7, "TRANSACTION_ID"]
    df.loc[9, "TX_FRAUD"] = 2
    reasons = validate_export(df).quarantine[REASON_COLUMN].to_dict()
    assert reasons == {
        3: 'TX_CHANNEL "carrier pigeon" is not one of the allowed values '
        "['chip', 'contactless', 'online', 'unknown']",
        5: "TX_AMOUNT -5.0 is negative",
        8: f"TRANSACTION_ID {df.loc[7, 'TRANSACTION_ID']} is not unique (another row has it)",
        9: "TX_FRAUD 2 is not one of the allowed values [0, 1]",
    }


def test_an_unlabelled_export_needs_no_label(validate_export, small_tx):
    """Does a scoring window without TX_FRAUD validate with labelled=False, and fail without it?"""
    window = small_tx.drop(columns=["TX_FRAUD", "TX_FRAUD_SCENARIO"]).head(100)
    assert len(validate_export(window, labelled=False).valid) == 100
    with pytest.raises(ValidationError, match=r"no column\(s\) \['TX_FRAUD'\]"):
        validate_export(window)


def test_a_missing_column_is_refused_with_the_fix(validate_export, small_tx):
    """Is an export without TX_AMOUNT refused (no row is to blame), naming the column?"""
    with pytest.raises(ValidationError, match=r"no column\(s\) \['TX_AMOUNT'\].*rename"):
        validate_export(small_tx.drop(columns="TX_AMOUNT"))


def test_the_probe_gives_the_reference_full_marks(validate_export, messy):
    """Does the reference catch every faulty row with a reason and keep every good one?"""
    assert _probe(validate_export, *messy) == {
        "caught": 1.0,
        "kept": 1.0,
        "wrongly_quarantined": 0,
        "lost": 0,
    }


def test_contracts_that_cheat_fail_the_probe(messy):
    """Do a contract that quarantines everything, one that passes everything and one that
    drops bad rows silently each fail an obvious check?"""
    export, report = messy

    def quarantine_everything(raw):
        return ValidationResult(
            valid=raw.iloc[:0], quarantine=raw.assign(**{REASON_COLUMN: "bad"}), counts={}
        )

    def pass_everything(raw):
        return ValidationResult(valid=raw, quarantine=raw.iloc[:0], counts={})

    def drop_silently(raw):
        good = raw[~report.faulty_rows(raw)]
        return ValidationResult(valid=good, quarantine=raw.iloc[:0], counts={})

    assert _probe(quarantine_everything, export, report)["kept"] == 0.0
    assert _probe(pass_everything, export, report)["caught"] == 0.0
    assert _probe(drop_silently, export, report)["lost"] == report.faulty_rows(export).sum()


def test_faulty_rows_are_the_rows_a_contract_must_quarantine(small_tx):
    """Are only the repeats of an exact duplicate faulty, and repaired kinds never faulty?"""
    export, report = make_messy(small_tx, rate=0.02, kinds=["exact_duplicates"], seed=2)
    faulty = report.faulty_rows(export)
    assert faulty.sum() == report.counts["exact_duplicates"] == len(export) - len(small_tx)
    assert export.loc[faulty, "TRANSACTION_ID"].isin(report.rows["exact_duplicates"]).all()
    export, report = make_messy(small_tx, rate=0.02, kinds=REPAIRED + ("late_labels",), seed=2)
    assert not report.faulty_rows(export).any()
    assert set(MessReport.FAULTY) | set(REPAIRED) | {"late_labels"} == set(MESS_KINDS)


def test_malformed_values_come_in_every_form(small_tx):
    """Does the malformed kind write decimal commas, day-first, epoch, CET, 30 Feb and text ids?"""
    export, report = make_messy(small_tx, rate=0.02, kinds=["malformed"], seed=5)
    rows = export[export["TRANSACTION_ID"].isin(report.rows["malformed"])]
    assert len(rows) == report.counts["malformed"] > 0
    text = rows.astype(str)
    forms = {
        "decimal comma": text["TX_AMOUNT"].str.fullmatch(r"[\d.]+,\d\d"),
        "day-first": text["TX_DATETIME"].str.fullmatch(r"\d\d/\d\d/\d{4} \d\d:\d\d"),
        "epoch": text["TX_DATETIME"].str.fullmatch(r"\d{10}"),
        "zone abbreviation": text["TX_DATETIME"].str.endswith(" CET"),
        "impossible date": text["TX_DATETIME"].str.contains("-02-30 "),
        "customer text": text["CUSTOMER_ID"].str.startswith("C"),
        "terminal text": text["TERMINAL_ID"].str.startswith("T"),
    }
    assert all(found.any() for found in forms.values()), {k: v.sum() for k, v in forms.items()}
    assert sum(found.sum() for found in forms.values()) == len(rows)  # one fault per row


def test_mixed_timezones_and_amount_strings_are_what_the_report_says(small_tx):
    """Are exactly the reported rows written with offsets and currency text?"""
    export, report = make_messy(
        small_tx, rate=0.02, kinds=["mixed_timezones", "amount_strings"], seed=4
    )
    tz = export["TRANSACTION_ID"].isin(report.rows["mixed_timezones"])
    assert export.loc[tz, "TX_DATETIME"].str.contains(r"[+-]\d\d:\d\d$|Z$").all()
    assert not export.loc[~tz, "TX_DATETIME"].str.contains(r"[+-]\d\d:\d\d$|Z$").any()
    money = export["TRANSACTION_ID"].isin(report.rows["amount_strings"])
    assert export.loc[money, "TX_AMOUNT"].str.contains(r"[$£A-Z]").all()
    assert export.loc[~money, "TX_AMOUNT"].str.fullmatch(r"\d+\.\d\d").all()


def test_late_labels_arrive_after_the_usual_delay(small_tx):
    """Do some fraud labels arrive much later than the usual delay, and only frauds get one?"""
    export, report = make_messy(small_tx, rate=0.02, kinds=["late_labels"], seed=4)
    reported = export["TX_FRAUD_REPORTED_AT"]
    assert reported.notna().sum() == small_tx["TX_FRAUD"].sum()
    lag_days = (reported - export["TX_DATETIME"]).dt.total_seconds() / 86400
    late = export["TRANSACTION_ID"].isin(report.rows["late_labels"])
    assert late.sum() > 0
    assert lag_days[late].median() > 2 * lag_days[~late & reported.notna()].median()


def test_the_same_seed_gives_the_same_mess(small_tx):
    """Is make_messy deterministic in its seed, and does another seed spoil other rows?"""
    a, ra = make_messy(small_tx, rate=0.01, seed=9)
    b, rb = make_messy(small_tx, rate=0.01, seed=9)
    pd.testing.assert_frame_equal(a, b)
    assert ra.counts == rb.counts
    _, rc = make_messy(small_tx, rate=0.01, seed=10)
    assert not np.array_equal(rc.rows["missing"], ra.rows["missing"])


def test_bad_requests_are_refused(small_tx):
    """Do unknown fault kinds and silly rates fail with clear messages?"""
    with pytest.raises(DataError, match="unknown kind"):
        make_messy(small_tx, kinds=["gremlins"])
    with pytest.raises(DataError, match="rate"):
        make_messy(small_tx, rate=2)
