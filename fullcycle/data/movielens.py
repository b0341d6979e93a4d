"""Read MovieLens rating files into the interaction events frame the simulator returns.

GroupLens publishes the MovieLens datasets (Harper and Konstan, "The MovieLens
Datasets: History and Context", ACM TiiS 5(4), 2015) in three layouts of the
same four fields, user, movie, rating and Unix timestamp:

- ``u.data`` (MovieLens 100K): tab-separated, no header
  (``196<TAB>242<TAB>3<TAB>881250949``); ``u1.base`` ... ``ub.test`` share it;
- ``ratings.csv`` (MovieLens latest, 20M, 25M, 32M): comma-separated with the
  header ``userId,movieId,rating,timestamp`` and half-star ratings;
- ``ratings.dat`` (MovieLens 1M, 10M): ``UserID::MovieID::Rating::Timestamp``.

:func:`load_movielens` reads any of them, or a folder holding one, and returns
the frame of :data:`~fullcycle.data.interactions.INTERACTION_COLUMNS` with
``EVENT_TYPE`` "rating", the rating in ``RATING`` and no price, so the
recommender track runs on MovieLens as on the simulator. Nothing is
downloaded: the learner brings the files (GroupLens's licence does not allow
redistributing them).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fullcycle.data.interactions import INTERACTION_COLUMNS
from fullcycle.exceptions import DataError

__all__ = ["MOVIELENS_FILES", "load_movielens"]

#: The rating files a MovieLens folder may hold, in the order they are looked for.
MOVIELENS_FILES = ("u.data", "ratings.csv", "ratings.dat")

_FIELDS = ("USER_ID", "ITEM_ID", "RATING", "TIMESTAMP")
_CSV_HEADER = ["userId", "movieId", "rating", "timestamp"]
_LAYOUTS = (
    "u.data (user<TAB>item<TAB>rating<TAB>timestamp, no header), "
    "ratings.csv (header userId,movieId,rating,timestamp) or "
    "ratings.dat (UserID::MovieID::Rating::Timestamp)"
)
_SHOWN = 5


def _find_file(folder: Path) -> Path:
    for name in MOVIELENS_FILES:
        if (folder / name).is_file():
            return folder / name
    found = sorted(p.name for p in folder.iterdir())
    listed = ", ".join(found[:10]) + (f" and {len(found) - 10} more" if len(found) > 10 else "")
    raise DataError(
        f"{folder} holds none of {list(MOVIELENS_FILES)} (it holds: {listed or 'nothing'}); "
        "pass the unzipped MovieLens folder (ml-100k, ml-1m, ml-latest-small...) or the "
        "ratings file itself"
    )


def _layout(path: Path) -> str:
    """Which of the three layouts ``path`` is written in, from its first line."""
    with path.open("rb") as handle:
        head = handle.read(4096)
    if not head.strip():
        raise DataError(f"{path} is empty; a MovieLens ratings file has one rating per line")
    if head.startswith(b"PK\x03\x04"):
        raise DataError(
            f"{path} is a zip archive; unzip it and pass the folder or the ratings file"
        )
    first = head.splitlines()[0].decode("latin-1").strip()
    if "::" in first:
        return "dat"
    if first.count("\t") == 3:
        return "tab"
    if "," in first:
        header = [c.strip() for c in first.split(",")]
        if header == _CSV_HEADER:
            return "csv"
        if header[0].lstrip("-").isdigit():
            raise DataError(
                f"{path}: first line {first!r} is data, not a header; a ratings.csv starts "
                f"with the header {','.join(_CSV_HEADER)}"
            )
        raise DataError(
            f"{path}: header {first!r} is not {','.join(_CSV_HEADER)}; this is not a "
            "MovieLens ratings file (movies.csv, tags.csv and links.csv hold no ratings)"
        )
    raise DataError(
        f"{path}: first line {first[:80]!r} is in none of the MovieLens rating layouts: "
        f"expected {_LAYOUTS} (u.item, u.user and movies.dat hold no ratings)"
    )


def _read(path: Path, layout: str, typed: bool) -> pd.DataFrame:
    """The four fields as a frame: typed (fast, raises on a bad value) or as text."""
    sep, header, width = {"tab": ("\t", None, 4), "csv": (",", 0, 4), "dat": (":", None, 7)}[layout]
    # "a::b" split on ":" gives "a", "", "b": in ratings.dat the fields are every other column.
    columns = list(range(0, width, 2 if layout == "dat" else 1))
    types = (np.int64, np.int64, np.float64, np.int64) if typed else (str,) * 4
    if layout == "csv":
        dtype = dict(zip(_CSV_HEADER, types, strict=True))
    else:
        dtype = {**dict.fromkeys(range(width), str), **dict(zip(columns, types, strict=True))}
    frame = pd.read_csv(
        path, sep=sep, header=header, dtype=dtype, keep_default_na=False, na_values=[""]
    )
    if frame.shape[1] != width:
        fields = frame.shape[1] if layout != "dat" else (frame.shape[1] + 1) // 2
        raise DataError(
            f"{path}: its first line has {fields} fields where a MovieLens ratings file has 4 "
            f"(user, item, rating, timestamp); expected {_LAYOUTS}"
        )
    if layout == "dat":
        stray = frame.iloc[:, 1::2].notna().any(axis=1).to_numpy()
        if stray.any():
            lines = (np.flatnonzero(stray)[:_SHOWN] + 1).tolist()
            raise DataError(
                f"{path}: line(s) {lines} are not four fields separated by '::' "
                f"({int(stray.sum()):,} line(s) in all); fix them or pass an untouched ratings.dat"
            )
        frame = frame.iloc[:, columns]
    frame.columns = list(_FIELDS)
    return frame


def _diagnose(path: Path, layout: str, cause: Exception) -> DataError:
    """A message naming the lines and values that could not be read."""
    first_line = 2 if layout == "csv" else 1
    try:
        raw = _read(path, layout, typed=False)
    except (ValueError, pd.errors.ParserError) as exc:
        return DataError(
            f"{path}: cannot be read as a MovieLens ratings file ({str(exc).strip()}); "
            f"expected {_LAYOUTS}"
        )
    bad = {}
    for name in _FIELDS:
        number = pd.to_numeric(raw[name], errors="coerce")
        if name != "RATING":
            number = number.where(number == np.floor(number))
        bad[name] = number.isna().to_numpy()
    total = int(sum(b.sum() for b in bad.values()))
    if not total:
        return DataError(f"{path}: cannot be read as a MovieLens ratings file ({cause})")
    problems = []
    for i in np.flatnonzero(np.any(list(bad.values()), axis=0))[:_SHOWN]:
        for name in _FIELDS:
            if bad[name][i]:
                value = raw[name].iloc[i]
                shown = "missing" if pd.isna(value) else repr(value)
                problems.append(f"line {i + first_line}: {name} is {shown}")
    more = f" (and {total - len(problems):,} more)" if total > len(problems) else ""
    return DataError(
        f"{path}: {total:,} value(s) cannot be read: {'; '.join(problems)}{more}. Users, items "
        "and timestamps are whole numbers and ratings are numbers: fix those lines or pass "
        "an untouched MovieLens file"
    )


def load_movielens(path: str | Path) -> pd.DataFrame:
    """Load MovieLens ratings as an interaction events frame.

    Parameters
    ----------
    path : str or Path
        A ``u.data``, ``ratings.csv`` or ``ratings.dat`` file (the layout is
        recognised from the first line, so ``u1.base`` works too), or a folder
        holding one of them (looked for in the order of :data:`MOVIELENS_FILES`).

    Returns
    -------
    DataFrame
        Columns :data:`~fullcycle.data.interactions.INTERACTION_COLUMNS`:
        ``EVENT_TIME`` from the Unix timestamp (naive UTC), ``EVENT_DAY`` the
        days since the first rating's UTC day, ``EVENT_TYPE`` "rating",
        ``RATING`` the rating and ``PRICE`` NaN. Sorted by time, ratings with
        the same timestamp in file order; ``EVENT_ID`` is the rating's line in
        the file, counted from 0 (so a per-user split drawing in ``EVENT_ID``
        order draws as Microsoft Recommenders' does over the file).

    Raises
    ------
    DataError
        If the path does not exist, is not a ratings file in one of the three
        layouts (the message says which file or header was found), or holds a
        value that is not a number (the message names the lines).

    Examples
    --------
    >>> events = load_movielens("ml-100k")  # doctest: +SKIP
    >>> len(events), events["RATING"].mean().round(2)  # doctest: +SKIP
    (100000, 3.53)
    """
    path = Path(path)
    if not path.exists():
        raise DataError(
            f"{path} does not exist; pass a MovieLens folder or its ratings file ({_LAYOUTS})"
        )
    if path.is_dir():
        path = _find_file(path)
    layout = _layout(path)
    try:
        frame = _read(path, layout, typed=True)
    except (ValueError, pd.errors.ParserError) as exc:
        raise _diagnose(path, layout, exc) from exc
    if frame.empty:
        raise DataError(f"{path} holds a header but no ratings")
    if frame["RATING"].isna().any():
        raise _diagnose(path, layout, ValueError("a rating is missing"))

    # EVENT_ID is the line's place in the file (0 = first rating), so that a split drawing one
    # random number per event in EVENT_ID order draws them as it would over the file's rows.
    order = np.argsort(frame["TIMESTAMP"].to_numpy(), kind="stable")
    frame = frame.iloc[order].reset_index(drop=True)
    seconds = frame["TIMESTAMP"].to_numpy()
    time = pd.to_datetime(seconds * 1_000_000_000, unit="ns")
    first_day = seconds[0] // 86_400
    events = pd.DataFrame(
        {
            "EVENT_ID": order.astype(np.int64),
            "EVENT_TIME": time,
            "EVENT_DAY": (seconds // 86_400 - first_day).astype(np.int64),
            "USER_ID": frame["USER_ID"].to_numpy(),
            "ITEM_ID": frame["ITEM_ID"].to_numpy(),
            "EVENT_TYPE": pd.array(["rating"], dtype="str").take(np.zeros(len(frame), np.int64)),
            "RATING": frame["RATING"].to_numpy(),
            "PRICE": np.full(len(frame), np.nan),
        }
    )
    return events[INTERACTION_COLUMNS]
