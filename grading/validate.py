"""Read and check a submission's predictions before anything is scored.

Predictions are read as CSV or Parquet into a fixed schema (an id and a
number); nothing the sandbox wrote is ever unpickled. Every problem is
reported with a count and a few examples, and the step says how to fix it.

The file is learner-controlled bytes, read with bounds on everything that
costs the grader memory or time: its size is checked before a byte is read
(:data:`MAX_PREDICTIONS_MB`), a CSV's records are measured by a streaming
scan before pandas parses one (:data:`MAX_RECORD_BYTES`, quotes respected),
rows are capped (:data:`MAX_ROWS`) and so are columns, every value kept is
cut to :data:`MAX_FIELD_CHARS` characters, and a Parquet file is decoded only
once its footer, rows and decoded size are known to be within the same bounds
(:func:`grading.harness.read_parquet_bounded`).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from grading.harness import OutputError, read_parquet_bounded

__all__ = [
    "MAX_FIELD_CHARS",
    "MAX_PREDICTIONS_MB",
    "MAX_RECORD_BYTES",
    "MAX_ROWS",
    "Validation",
    "read_predictions",
    "validate_predictions",
]

EXAMPLES = 5
#: The predictions file may weigh at most this many MB (the largest project writes ~2 MB).
MAX_PREDICTIONS_MB = 200
#: ... and hold at most this many rows (the largest project scores ~70,000).
MAX_ROWS = 1_000_000
#: ... and this many columns (an id and a score are needed; extra columns are ignored).
MAX_COLUMNS = 1000
#: One CSV record (a line, or several joined by a quoted field) at most.
MAX_RECORD_BYTES = 65_536
#: A value of the id or the score column is cut to this many characters (it is a number).
MAX_FIELD_CHARS = 100
_SCAN_BLOCK = 1 << 20
_CSV_CHUNK_ROWS = 100_000


@dataclass
class Validation:
    ok: bool
    problems: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    scores: np.ndarray | None = None  # aligned with the holdout labels' rows when ok


def _examples(values) -> str:
    vals = list(values)[:EXAMPLES]
    return ", ".join(map(str, vals)) + (" ..." if len(values) > EXAMPLES else "")


def _longest_record(f, limit: int) -> tuple[int, int]:
    """(record number, length) of the first CSV record longer than ``limit`` bytes, or (0, 0).

    A streaming scan in blocks: a record ends at a newline (or carriage return)
    outside double quotes, so a quoted field cannot hide a huge record.
    """
    quotes = 0  # double quotes seen so far: odd means inside a quoted field
    last_end = -1  # offset of the last record end
    line = 1  # the line the next record starts on
    offset = 0
    while block := f.read(_SCAN_BLOCK):
        arr = np.frombuffer(block, dtype=np.uint8)
        is_quote = arr == 34
        n_quotes = int(np.count_nonzero(is_quote))
        ends = (arr == 10) | (arr == 13)
        if n_quotes:
            ends &= ((np.cumsum(is_quote, dtype=np.int32) + quotes) & 1) == 0
        elif quotes & 1:
            ends[:] = False
        at = np.flatnonzero(ends)
        quotes += n_quotes
        if len(at):
            gaps = np.diff(at + offset, prepend=last_end) - 1
            worst = int(np.argmax(gaps))
            if gaps[worst] > limit:
                return line + int(np.count_nonzero(arr[at[:worst]] == 10)), int(gaps[worst])
            line += int(np.count_nonzero(arr[at] == 10))
            last_end = int(at[-1]) + offset
        offset += len(block)
        if offset - last_end - 1 > limit:
            return line, offset - last_end - 1
    return 0, 0


def _cut(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.apply(lambda s: s.str.slice(0, MAX_FIELD_CHARS))


def read_predictions(
    path: Path,
    id_col: str,
    out_col: str,
    max_mb: float = MAX_PREDICTIONS_MB,
    max_rows: int = MAX_ROWS,
) -> pd.DataFrame:
    """Read ``path`` (CSV or Parquet) as two columns; raises ``ValueError`` with the reason.

    Bounded in size and time whatever the file holds: see the module's notes.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        fd = None
    if fd is None or not _regular(fd):
        raise ValueError(
            f"no predictions file at {path.name}; the notebook must write predictions_path"
        )
    with os.fdopen(fd, "rb") as f:
        size = os.fstat(fd).st_size
        if size > max_mb * 1e6:
            raise ValueError(f"{path.name} is {size / 1e6:.0f} MB; the limit is {max_mb:.0f} MB")
        magic = f.read(4)
        if magic == b"PAR1":
            try:
                frame = read_parquet_bounded(
                    path,
                    [id_col, out_col],
                    max_rows=max_rows,
                    max_bytes=int(max_mb * 1e6),
                    max_columns=MAX_COLUMNS,
                    max_chars=MAX_FIELD_CHARS,
                    name=path.name,
                )
            except OutputError as exc:
                raise ValueError(str(exc)) from None
            return frame
        f.seek(0)
        where, length = _longest_record(f, MAX_RECORD_BYTES)
        if where:
            raise ValueError(
                f"{path.name}: line {where:,} is longer than {MAX_RECORD_BYTES // 1024} kB "
                f"(at least {length:,} bytes); write one id and one score per line"
            )
        f.seek(0)
        return _read_csv(f, path.name, id_col, out_col, max_rows)


def _regular(fd: int) -> bool:
    if stat.S_ISREG(os.fstat(fd).st_mode):
        os.set_blocking(fd, True)
        return True
    os.close(fd)
    return False


def _read_csv(f, name: str, id_col: str, out_col: str, max_rows: int) -> pd.DataFrame:
    try:
        head = pd.read_csv(f, nrows=0, encoding="utf-8")
        if len(head.columns) > MAX_COLUMNS:
            raise ValueError(
                f"{name} has {len(head.columns):,} columns; write {id_col} and {out_col} "
                f"(at most {MAX_COLUMNS} columns are read)"
            )
        missing = [c for c in (id_col, out_col) if c not in head.columns]
        if missing:
            raise ValueError(f"{name} has no column(s) {missing}; it has {list(head.columns)[:10]}")
        f.seek(0)
        parts, rows = [], 0
        reader = pd.read_csv(
            f,
            usecols=[id_col, out_col],
            dtype=str,
            encoding="utf-8",
            keep_default_na=False,
            chunksize=_CSV_CHUNK_ROWS,
        )
        with reader:
            for chunk in reader:
                rows += len(chunk)
                if rows > max_rows:
                    raise ValueError(
                        f"{name} has more than {max_rows:,} rows; write one row per id of "
                        "score_path"
                    )
                parts.append(_cut(chunk))
        if not parts:
            return pd.DataFrame({id_col: pd.Series(dtype=str), out_col: pd.Series(dtype=str)})
        return pd.concat(parts, ignore_index=True)
    except UnicodeDecodeError:
        raise ValueError(f"{name} is not UTF-8 text; write it with pandas' to_csv") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError) as exc:
        text = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{name} cannot be read as CSV or Parquet: {text}") from None
    except Exception as exc:
        if isinstance(exc, ValueError):
            raise
        raise ValueError(f"{name} cannot be read: {type(exc).__name__}: {str(exc)[:300]}") from None


def validate_predictions(
    frame: pd.DataFrame, expected_ids: pd.Series, id_col: str, out_col: str, score_range
) -> Validation:
    """Check ids (exactly the holdout's), numbers, NaN/inf and range; align the scores."""
    problems: list[str] = []
    counts: dict[str, int] = {"rows": len(frame), "expected": len(expected_ids)}
    ids = pd.to_numeric(frame[id_col], errors="coerce")
    bad_ids = frame[id_col][ids.isna() | (ids != np.floor(ids))]
    if len(bad_ids):
        counts["bad_ids"] = len(bad_ids)
        problems.append(
            f"{len(bad_ids)} id(s) in {id_col} are not whole numbers (e.g. {_examples(bad_ids)})"
        )
    ids = ids.where(~ids.isna(), -1).astype("int64")
    dup = ids[ids.duplicated(keep=False)]
    if len(dup):
        counts["duplicate_ids"] = int(dup.nunique())
        problems.append(
            f"{dup.nunique()} id(s) appear more than once (e.g. {_examples(dup.unique())}); "
            "write one row per id"
        )
    expected = pd.Index(expected_ids.astype("int64"))
    got = pd.Index(ids[ids >= 0].unique())
    missing = expected.difference(got)
    unknown = got.difference(expected)
    if len(missing):
        counts["missing_ids"] = len(missing)
        problems.append(
            f"{len(missing)} of {len(expected)} id(s) have no prediction "
            f"(e.g. {_examples(missing)}); predict every row of score_path"
        )
    if len(unknown):
        counts["unknown_ids"] = len(unknown)
        problems.append(
            f"{len(unknown)} id(s) are not in score_path (e.g. {_examples(unknown)}); "
            "do not add or renumber rows"
        )
    raw = frame[out_col]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    text_bad = raw[pd.isna(values) & ~raw.astype(str).str.lower().isin(["nan", ""])]
    if len(text_bad):
        counts["not_numbers"] = len(text_bad)
        problems.append(
            f"{len(text_bad)} value(s) of {out_col} are not numbers (e.g. {_examples(text_bad)})"
        )
    nan = int(np.isnan(values).sum()) - len(text_bad)
    inf = int(np.isinf(values).sum())
    if nan > 0:
        counts["nan"] = nan
        problems.append(f"{nan} value(s) of {out_col} are NaN; every row needs a score")
    if inf:
        counts["inf"] = inf
        problems.append(f"{inf} value(s) of {out_col} are infinite")
    lo, hi = score_range
    finite = np.isfinite(values)
    out = int(((values < lo) | (values > hi))[finite].sum())
    if out:
        counts["out_of_range"] = out
        problems.append(f"{out} value(s) of {out_col} are outside [{lo}, {hi}]")
    if problems:
        return Validation(False, problems, counts)
    aligned = pd.Series(values, index=ids.to_numpy()).reindex(expected.to_numpy()).to_numpy()
    return Validation(True, [], counts, aligned)
