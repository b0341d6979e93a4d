"""Do the quarantine mechanics keep every row, once, with its reasons, for any schema?"""

import pandas as pd
import pandera.pandas as pa
import pytest

from fullcycle.data import REASON_COLUMN, ValidationResult, parse_integers
from fullcycle.data.quarantine import reason_kind
from fullcycle.exceptions import ValidationError

SCHEMA = pa.DataFrameSchema(
    {
        "id": pa.Column(
            "Int64", pa.Check.ge(0), nullable=False, unique=True, report_duplicates="exclude_first"
        ),
        "size": pa.Column(float, [pa.Check.ge(0), pa.Check.le(10)], nullable=False),
        "colour": pa.Column(object, pa.Check.isin(["red", "blue"]), nullable=False),
    }
)


def _check(raw):
    """A toy contract: parse the id, take the rest as it is, validate lazily."""
    parsed = raw.copy()
    ids = parse_integers(raw["id"])
    parsed["id"] = ids.values
    parsed["size"] = raw["size"].astype(float)
    try:
        SCHEMA.validate(parsed, lazy=True)
        errors = None
    except pa.errors.SchemaErrors as exc:
        errors = exc
    return ValidationResult.from_reasons(raw, parsed, errors=errors, reasons=[ids.reasons])


@pytest.fixture
def raw():
    return pd.DataFrame(
        {
            "id": ["1", "2", "abc", None, "5", "5", "-7"],
            "size": [1.0, 11.0, 2.0, 3.0, None, 4.0, 5.0],
            "colour": ["red", "blue", "red", "green", "blue", "red", "blue"],
        },
        index=[10, 11, 12, 13, 14, 15, 16],
    ).astype({"colour": object})


def test_every_row_is_valid_or_quarantined_once(raw):
    """Is nothing dropped: valid plus quarantine is the input, with no row in both?"""
    result = _check(raw)
    assert result.n_input == len(raw)
    assert set(result.valid.index) | set(result.quarantine.index) == set(raw.index)
    assert not set(result.valid.index) & set(result.quarantine.index)
    assert list(result.valid.index) == [10]


def test_quarantine_keeps_the_raw_rows_and_every_reason(raw):
    """Does each quarantined row keep its raw values and index, with all its reasons joined?"""
    q = _check(raw).quarantine
    assert q.loc[12, "id"] == "abc"  # as it arrived, not the parsed <NA>
    pd.testing.assert_frame_equal(q.drop(columns=REASON_COLUMN), raw.loc[q.index])
    reasons = q[REASON_COLUMN].to_dict()
    assert reasons == {
        11: "size 11.0 is above the maximum 10",
        12: 'id "abc" is not an integer',
        13: "id is missing; colour \"green\" is not one of the allowed values ['red', 'blue']",
        14: "size is missing",
        15: "id 5 is not unique (another row has it)",
        16: "id -7 is negative",
    }


def test_a_parser_reason_replaces_is_missing(raw):
    """Is "abc" reported as not an integer only, not also as "id is missing"?"""
    reason = _check(raw).quarantine.loc[12, REASON_COLUMN]
    assert "missing" not in reason


def test_counts_group_reasons_by_kind():
    """Are reasons counted by kind, with the values taken out?"""
    raw = pd.DataFrame({"id": ["1", "x", "y", "-1", "-2"], "size": 1.0, "colour": "red"})
    raw = raw.astype({"colour": object})
    counts = _check(raw).counts
    assert counts == {'id "…" is not an integer': 2, "id N is negative": 2}
    assert reason_kind('TX_AMOUNT "12,50" is written with a decimal comma (12.5?)') == (
        'TX_AMOUNT "…" is written with a decimal comma (N?)'
    )


def test_summary_lists_counts(raw):
    """Does the summary say how many rows passed and were quarantined, then each kind?"""
    summary = _check(raw).summary()
    assert summary.splitlines()[0] == "1 valid rows, 6 quarantined"
    assert "id N is negative" in summary


def test_frames_that_cannot_be_quarantined_row_by_row_are_refused(raw):
    """Do a repeated index, mismatched indexes, unknown rows and whole-frame failures raise?"""
    with pytest.raises(ValidationError, match="reset_index"):
        ValidationResult.from_reasons(raw.reset_index(drop=True).iloc[[0, 0]], raw.iloc[[0, 0]])
    with pytest.raises(ValidationError, match="index differs"):
        ValidationResult.from_reasons(raw, raw.reset_index(drop=True))
    with pytest.raises(ValidationError, match=r"row\(s\) \[99\]"):
        ValidationResult.from_reasons(raw, raw, reasons=[pd.Series({99: "bad"}, name="x")])
    try:
        SCHEMA.validate(raw, lazy=True)  # "id" is text: a whole-column type failure
    except pa.errors.SchemaErrors as exc:
        errors = exc
    with pytest.raises(ValidationError, match="whole-frame check on column 'id'"):
        ValidationResult.from_reasons(raw, raw, errors=errors)
    try:
        SCHEMA.validate(raw.drop(columns="id"), lazy=True)
    except pa.errors.SchemaErrors as exc:
        errors = exc
    with pytest.raises(ValidationError, match="the frame has no column 'id'"):
        ValidationResult.from_reasons(raw, raw, errors=errors)
