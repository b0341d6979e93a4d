"""Read and check a submission's predictions before anything is scored.

Predictions are read as CSV or Parquet into a fixed schema (an id and a
number); nothing the sandbox wrote is ever unpickled. Every problem is
reported with a count and a few examples, and the step says how to fix it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["Validation", "read_predictions", "validate_predictions"]

EXAMPLES = 5


@dataclass
class Validation:
    ok: bool
    problems: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    scores: np.ndarray | None = None  # aligned with the holdout labels' rows when ok


def _examples(values) -> str:
    vals = list(values)[:EXAMPLES]
    return ", ".join(map(str, vals)) + (" ..." if len(values) > EXAMPLES else "")


def read_predictions(path: Path, id_col: str, out_col: str, max_mb: float = 500) -> pd.DataFrame:
    """Read ``path`` (CSV or Parquet) as two columns; raises ``ValueError`` with the reason."""
    if not path.is_file() or path.is_symlink():
        raise ValueError(
            f"no predictions file at {path.name}; the notebook must write predictions_path"
        )
    size = path.stat().st_size
    if size > max_mb * 1e6:
        raise ValueError(f"{path.name} is {size / 1e6:.0f} MB; the limit is {max_mb:.0f} MB")
    with path.open("rb") as f:
        magic = f.read(4)
    try:
        if magic == b"PAR1":
            import pyarrow.parquet as pq

            schema = pq.read_schema(path)
            missing = [c for c in (id_col, out_col) if c not in schema.names]
            if missing:
                raise ValueError(f"{path.name} has no column(s) {missing}; it has {schema.names}")
            table = pq.read_table(path, columns=[id_col, out_col])
            return table.to_pandas(ignore_metadata=True)
        head = pd.read_csv(path, nrows=0, encoding="utf-8")
        missing = [c for c in (id_col, out_col) if c not in head.columns]
        if missing:
            raise ValueError(
                f"{path.name} has no column(s) {missing}; it has {list(head.columns)[:10]}"
            )
        return pd.read_csv(
            path, usecols=[id_col, out_col], dtype=str, encoding="utf-8", keep_default_na=False
        )
    except UnicodeDecodeError:
        raise ValueError(f"{path.name} is not UTF-8 text; write it with pandas' to_csv") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError) as exc:
        raise ValueError(f"{path.name} cannot be read as CSV or Parquet: {exc}") from None
    except Exception as exc:
        if isinstance(exc, ValueError):
            raise
        raise ValueError(f"{path.name} cannot be read: {type(exc).__name__}: {exc}") from None


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
