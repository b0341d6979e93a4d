"""Quarantine: rows that break a data contract, kept aside as they arrived, each with its reasons.

A data contract (for instance a kit's ``validate_export``) parses a raw export,
checks it with a pandera schema and adds its own rules (duplicates, ...).
:meth:`ValidationResult.from_reasons` turns what those steps found into one
result: every row is either valid or quarantined, never dropped; each
quarantined row keeps its raw values and gets a ``QUARANTINE_REASON`` (all its
reasons, joined by ``"; "``); and the reasons are counted by kind. Nothing
here knows any particular schema.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd
import pandera.pandas as pa

from fullcycle.data.parsing import show_value
from fullcycle.exceptions import ValidationError

__all__ = ["REASON_COLUMN", "ValidationResult", "reason_kind", "schema_reasons"]

#: The column of the quarantine that holds each row's reasons.
REASON_COLUMN = "QUARANTINE_REASON"

_CHECK = re.compile(r"(?P<name>[a-z_]+)\((?P<args>.*)\)")


def _check_text(check: str, column: str, value) -> str:
    """The reason for one pandera failure case."""
    shown = show_value(value)
    if check == "not_nullable":
        return f"{column} is missing"
    if check == "field_uniqueness":
        return f"{column} {shown} is not unique (another row has it)"
    m = _CHECK.fullmatch(check)
    name, args = (m["name"], m["args"]) if m else (check, "")
    if name == "greater_than_or_equal_to":
        if float(args) == 0:
            return f"{column} {shown} is negative"
        return f"{column} {shown} is below the minimum {args}"
    if name == "less_than_or_equal_to":
        return f"{column} {shown} is above the maximum {args}"
    if name == "greater_than":
        return f"{column} {shown} is not above {args}"
    if name == "less_than":
        return f"{column} {shown} is not below {args}"
    if name == "in_range":
        return f"{column} {shown} is outside the range [{args}]"
    if name == "isin":
        return f"{column} {shown} is not one of the allowed values {args}"
    if name == "notin":
        return f"{column} {shown} is one of the forbidden values {args}"
    if name == "str_matches":
        return f"{column} {shown} does not match the pattern {args}"
    if name == "equal_to":
        return f"{column} {shown} is not {args}"
    if name == "not_equal_to":
        return f"{column} {shown} must not be {args}"
    # A custom check: pandera reports its name (or its error text).
    return f"{column} {shown} fails the check: {check}"


def schema_reasons(errors: pa.errors.SchemaErrors) -> list[tuple[object, str, str]]:
    """The failure cases of a lazy pandera validation as ``(row, column, reason)``.

    Parameters
    ----------
    errors : pandera.errors.SchemaErrors
        What ``schema.validate(frame, lazy=True)`` raised.

    Raises
    ------
    ValidationError
        If a failure concerns the whole frame rather than rows (a column that
        is absent or of the wrong type): no row can be quarantined for it.
    """
    out = []
    for case in errors.failure_cases.itertuples(index=False):
        row = case.index
        if row is None or (not isinstance(row, str) and pd.isna(row)):
            if str(case.check) == "column_in_dataframe":  # pandera names the missing column here
                raise ValidationError(
                    f"the frame has no column {case.failure_case!r}, which the schema requires; "
                    "give the schema a frame with every declared column (rename or parse the "
                    "raw columns first)"
                )
            raise ValidationError(
                f"the frame fails a whole-frame check on column {case.column!r}: {case.check} "
                f"(found {case.failure_case!r}); give the schema a frame whose columns have the "
                "declared names and types (parse the raw columns first)"
            )
        column = str(case.column) if case.column is not None else "row"
        out.append((row, column, _check_text(str(case.check), column, case.failure_case)))
    return out


def reason_kind(reason: str) -> str:
    """The kind of a reason: its text with the values taken out, for counting.

    ``'TX_AMOUNT "12,50" is written with ...'`` and ``'TX_AMOUNT "7,00" is
    written with ...'`` are one kind; so are ``TX_AMOUNT -5.0 is negative``
    and ``TX_AMOUNT -1.0 is negative``.
    """
    kind = re.sub(r'"(?:[^"\\]|\\.)*"', '"…"', reason)
    kind = re.sub(r"'[^']*'", "'…'", kind)
    return re.sub(r"[-+]?\d(?:[\d.,:]*\d)?", "N", kind)


@dataclass
class ValidationResult:
    """Rows that passed, rows quarantined (with ``QUARANTINE_REASON``) and counts per reason kind.

    Attributes
    ----------
    valid : DataFrame
        The parsed rows that passed every rule.
    quarantine : DataFrame
        The rows that did not, as they arrived (raw values, raw index), with
        the column ``QUARANTINE_REASON``.
    counts : dict
        Reason kind (see :func:`reason_kind`) -> number of times it occurred.
        A row with two reasons counts under both kinds.
    """

    valid: pd.DataFrame
    quarantine: pd.DataFrame
    counts: dict[str, int]

    @property
    def n_input(self) -> int:
        """Rows that came in: every one is either valid or quarantined."""
        return len(self.valid) + len(self.quarantine)

    def summary(self) -> str:
        """Valid and quarantined row counts, then one line per reason kind."""
        lines = [f"{len(self.valid):,} valid rows, {len(self.quarantine):,} quarantined"]
        lines += [f"  {count:>8,}  {kind}" for kind, count in sorted(self.counts.items())]
        return "\n".join(lines)

    @classmethod
    def from_reasons(
        cls,
        raw: pd.DataFrame,
        parsed: pd.DataFrame,
        *,
        errors: pa.errors.SchemaErrors | None = None,
        reasons: Iterable[pd.Series] = (),
    ) -> ValidationResult:
        """Split ``parsed`` into valid rows and a quarantine of ``raw`` rows with reasons.

        Parameters
        ----------
        raw : DataFrame
            The rows as they arrived. Its index must be unique: the quarantine
            keeps it, so that a row can be found in the export.
        parsed : DataFrame
            The same rows after parsing (same index); the valid rows come from it.
        errors : pandera.errors.SchemaErrors, optional
            What a lazy validation of (some of) ``parsed`` raised.
        reasons : iterable of Series
            Further reasons, each a Series on (some of) the rows' index holding
            text where a row breaks a rule and a missing value elsewhere, e.g.
            the ``reasons`` of a :class:`~fullcycle.data.parsing.Parsed`. A
            Series named after a column stands for that column: where it has a
            reason, the schema's "is missing" for the same column and row (the
            parser left the value empty) is not repeated.

        Returns
        -------
        ValidationResult
            ``valid`` keeps ``parsed``'s order and index; the caller sorts and
            types it as its contract says.

        Raises
        ------
        ValidationError
            If the indexes do not match or are not unique, a reason names a row
            that does not exist, or the schema failed on the whole frame.
        """
        if not raw.index.is_unique:
            raise ValidationError(
                "the raw rows have a repeated index label, so a quarantined row could not be "
                "told apart; call raw.reset_index(drop=True) before validating"
            )
        if not parsed.index.equals(raw.index):
            raise ValidationError(
                "the parsed frame's index differs from the raw frame's; parse into a copy of "
                "the raw frame (parsed = raw.copy()) so that each row keeps its label"
            )
        by_row: dict[object, list[str]] = {}
        explained: set[tuple[object, str]] = set()

        def add(row, text: str) -> None:
            texts = by_row.setdefault(row, [])
            if text not in texts:
                texts.append(text)

        for series in reasons:
            given = series.dropna()
            unknown = given.index.difference(raw.index)
            if len(unknown):
                raise ValidationError(
                    f"reasons {series.name!r} name row(s) {list(unknown[:5])} that are not in the "
                    "raw frame; build reasons on the raw frame's index"
                )
            for row, text in given.items():
                add(row, str(text))
                if series.name is not None:
                    explained.add((row, str(series.name)))
        if errors is not None:
            for row, column, text in schema_reasons(errors):
                if text == f"{column} is missing" and (row, column) in explained:
                    continue
                add(row, text)

        bad = raw.index.isin(list(by_row))
        quarantine = raw.loc[bad].copy()
        quarantine[REASON_COLUMN] = ["; ".join(by_row[row]) for row in quarantine.index]
        valid = parsed.loc[~bad].copy()
        counts: dict[str, int] = {}
        for texts in by_row.values():
            for text in texts:
                kind = reason_kind(text)
                counts[kind] = counts.get(kind, 0) + 1
        return cls(valid=valid, quarantine=quarantine, counts=counts)
