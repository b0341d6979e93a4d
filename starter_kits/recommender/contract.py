"""The data contract of the shop: which interaction events you learn from, and why.

The tracking export arrives messy: the tracker sometimes fires twice for one
click, scripts crawl the shop under a user id, some events lose their price,
the catalogue spells a category five ways, and a CSV export turns every number
into text. ``validate_export`` repairs what has one right answer and
quarantines every other faulty row with a reason, so that nothing is dropped
silently and every recommendation can be traced to events you accepted.

What is repaired (the row is kept):

- numbers and times written as text (``"42"``, ``"12.50"``,
  ``"2024-01-03T10:00:00Z"``): read with the library's parsers;
- an event type spelled with capitals or spaces (``" View"``);
- a missing price, when the catalogue is given: the item's catalogue price;
- a category spelled another way (``"Books"``, ``" books"``, ``"Book"``):
  its canonical name, in the events (when they carry ``CATEGORY``) and in the
  catalogue (:func:`validate_catalogue`).

What is quarantined, each with its reason: an id, day or time that is missing
or unreadable, an event type the shop does not have, a reused ``EVENT_ID``, a
negative price, a shop event whose price is missing and cannot be filled, a
rating event without a rating, a duplicate event (the tracker firing twice:
see :func:`duplicate_events`) and every event of a bot-like user (see
:func:`bot_users`).

The library gives you the tools, not the rules:

- ``fullcycle.data.parsing``: ``parse_integers``, ``parse_amounts`` and
  ``parse_timestamps`` read a column and return ``.values`` plus ``.reasons``;
- ``fullcycle.data.quarantine.ValidationResult.from_reasons`` splits valid
  from quarantined rows and counts the reasons;
- pandera (``import pandera.pandas as pa``) to declare the schema.
"""

import numpy as np
import pandas as pd
import pandera.pandas as pa

from fullcycle.data.interactions import CATEGORIES, EVENT_TYPES, INTERACTION_COLUMNS
from fullcycle.data.parsing import parse_amounts, parse_integers, parse_timestamps
from fullcycle.data.quarantine import ValidationResult
from fullcycle.exceptions import ValidationError

#: Event types that happen in a shop and carry the item's price; "rating" (MovieLens) has none.
SHOP_EVENTS = ("view", "cart", "purchase")
#: The categories of the catalogue, in their canonical spelling.
CATEGORY_VALUES = tuple(CATEGORIES)
#: The same user, item and event type again within this many seconds is the tracker firing
#: twice, not a second click (the messiness layer's copies come 0-2 s later). A person can
#: look twice that fast too: on clean simulated logs (3,000 users, 91 days, seeds 0-9) 15 of
#: 4.37 million events (3 per million) are such repeats. Nobody can tell them from a double
#: fire, and counting one look instead of two changes nothing a model learns.
DUPLICATE_SECONDS = 2
#: More events than this by one user in one (UTC) day is a script, not a person. The busiest
#: simulated shopper makes about 40 events on their busiest day (3,000 users, 91 days); 200
#: is one product page every 3.6 minutes for 12 hours without a break. Ratings are not
#: counted: MovieLens asks members to rate films in a batch when they join (Harper and
#: Konstan, 2015), so a burst of ratings is not a script's signature.
MAX_EVENTS_PER_DAY = 200


def canonical_categories(values: pd.Series, allowed=CATEGORY_VALUES) -> pd.Series:
    """The category of each row in its canonical spelling (one of ``allowed``).

    ``"Books"``, ``"BOOKS"``, ``" books"`` and ``"Book"`` are all ``"books"``:
    only letters count, in lower case, and a singular is read as the plural
    when only the plural is a category. A spelling that matches no category
    keeps its text, so that the schema rejects it by name; a missing value
    stays missing.
    """
    ### BEGIN SOLUTION
    text = values.astype(object).where(values.notna(), None)
    names = {"".join(c for c in str(name).lower() if c.isalpha()): name for name in allowed}

    def canonical(value: str) -> str:
        key = "".join(c for c in value.lower() if c.isalpha())
        return names.get(key) or names.get(key + "s") or value

    # A catalogue has thousands of rows but a handful of spellings: map each one once.
    spellings = pd.unique(text.dropna())
    return text.map({v: canonical(str(v)) for v in spellings}).astype(object)
    ### END SOLUTION


def validate_catalogue(items: pd.DataFrame, allowed=CATEGORY_VALUES) -> ValidationResult:
    """Check the item catalogue: repair category spellings, quarantine items with no good price.

    Parameters
    ----------
    items : DataFrame
        The catalogue as it arrived: ``ITEM_ID`` and ``PRICE``; ``CATEGORY``
        and other columns (``FIRST_DAY``, ``IN_STOCK``...) when it has them.
    allowed : sequence of str
        The canonical category names.

    Returns
    -------
    ValidationResult
        ``valid``: the items with ``ITEM_ID`` ``int64``, ``PRICE`` float and
        ``CATEGORY`` canonical, sorted by ``ITEM_ID``; ``quarantine``: items
        with an unreadable or repeated id, a missing or non-positive price or
        an unknown category, as they arrived, with ``QUARANTINE_REASON``.

    Raises
    ------
    ValidationError
        If ``ITEM_ID`` or ``PRICE`` is absent.
    """
    ### BEGIN SOLUTION
    missing = [c for c in ("ITEM_ID", "PRICE") if c not in items.columns]
    if missing:
        raise ValidationError(
            f"the catalogue has no column(s) {missing} (found {list(items.columns)}); a "
            "catalogue needs ITEM_ID and PRICE (CATEGORY, FIRST_DAY and IN_STOCK when known)"
        )
    if not items.index.is_unique:
        items = items.reset_index(drop=True)
    parsed = items.copy()
    ids, prices = parse_integers(items["ITEM_ID"]), parse_amounts(items["PRICE"])
    parsed["ITEM_ID"], parsed["PRICE"] = ids.values, prices.values
    columns = {
        "ITEM_ID": pa.Column(
            "Int64", pa.Check.ge(0), nullable=False, unique=True, report_duplicates="exclude_first"
        ),
        "PRICE": pa.Column(float, pa.Check.gt(0), nullable=False),
    }
    if "CATEGORY" in items.columns:
        parsed["CATEGORY"] = canonical_categories(items["CATEGORY"], allowed)
        columns["CATEGORY"] = pa.Column(object, pa.Check.isin(list(allowed)), nullable=False)
    try:
        pa.DataFrameSchema(columns, strict=False).validate(parsed, lazy=True)
        errors = None
    except pa.errors.SchemaErrors as exc:
        errors = exc
    result = ValidationResult.from_reasons(
        items, parsed, errors=errors, reasons=[ids.reasons, prices.reasons]
    )
    valid = result.valid.astype({"ITEM_ID": "int64", "PRICE": float})
    result.valid = valid.sort_values("ITEM_ID", kind="stable").reset_index(drop=True)
    return result
    ### END SOLUTION


def canonical_event_types(values: pd.Series) -> pd.Series:
    """Event types in lower case without surrounding spaces (``" View"`` is ``"view"``).

    A type that is still not one of ``EVENT_TYPES`` keeps its text, so that the
    schema rejects it by name; a missing value stays missing.
    """
    ### BEGIN SOLUTION
    text = values.astype(object).where(values.notna(), None)
    spellings = pd.unique(text.dropna())
    return text.map({v: str(v).strip().lower() for v in spellings}).astype(object)
    ### END SOLUTION


def duplicate_events(parsed: pd.DataFrame, seconds: int = DUPLICATE_SECONDS) -> pd.Series:
    """For each event that repeats an earlier one within ``seconds``, a reason naming it.

    A duplicate has a new ``EVENT_ID`` but the same ``USER_ID``, ``ITEM_ID``
    and ``EVENT_TYPE`` as an earlier event, at most ``seconds`` later: the
    tracker fired twice for one click. Counting it would make the item look
    twice as wanted. Returns a Series on ``parsed``'s index: the reason for
    each later copy (a chain of copies points at the first event), missing
    elsewhere. Rows with a missing key or time are not compared.
    """
    ### BEGIN SOLUTION
    keys = ["USER_ID", "ITEM_ID", "EVENT_TYPE"]
    out = pd.Series(None, index=parsed.index, dtype=object)
    usable = parsed.dropna(subset=[*keys, "EVENT_TIME", "EVENT_ID"])
    # Copies of one event sit next to each other once sorted, the original first.
    s = usable.sort_values([*keys, "EVENT_TIME", "EVENT_ID"], kind="stable")
    gap = s["EVENT_TIME"].diff().dt.total_seconds()
    same = s[keys].eq(s[keys].shift()).all(axis=1) & gap.le(seconds)
    same = same.fillna(False).astype(bool)
    first_id = s["EVENT_ID"].where(~same).ffill()
    for row, original, gap_s in zip(s.index[same], first_id[same], gap[same], strict=True):
        out[row] = (
            f"EVENT_ID {s.at[row, 'EVENT_ID']} duplicates EVENT_ID {original}: the same "
            f"USER_ID, ITEM_ID and EVENT_TYPE {gap_s:.0f}s later (within {seconds}s: the "
            "tracker fired twice)"
        )
    return out
    ### END SOLUTION


def bot_users(parsed: pd.DataFrame, max_per_day: int = MAX_EVENTS_PER_DAY) -> pd.Series:
    """For every event of a user who looks like a script, a reason naming the user.

    A user with more than ``max_per_day`` shop events (``SHOP_EVENTS``) in one
    UTC day is bot-like; every event of that user in the export is
    quarantined, not only the busy day's: an account that ran a script is not
    a person whose taste we can learn from. Returns a Series on ``parsed``'s
    index, missing for the events of other users.
    """
    ### BEGIN SOLUTION
    out = pd.Series(None, index=parsed.index, dtype=object)
    shop = parsed[parsed["EVENT_TYPE"].isin(SHOP_EVENTS)].dropna(subset=["USER_ID", "EVENT_TIME"])
    per_day = shop.groupby([shop["USER_ID"], shop["EVENT_TIME"].dt.floor("D")]).size()
    busiest = per_day[per_day > max_per_day].sort_values(ascending=False)
    bots = {
        user: (
            f"USER_ID {user} is bot-like: {n} events on {day:%Y-%m-%d}, above "
            f"{max_per_day} a day (no person browses that fast); all its events are set aside"
        )
        for (user, day), n in busiest.groupby(level=0).head(1).items()
    }
    if not bots:
        return out
    return parsed["USER_ID"].astype(object).map(bots).astype(object)
    ### END SOLUTION


def validate_export(raw: pd.DataFrame, items: pd.DataFrame | None = None) -> ValidationResult:
    """Check an interaction export against the contract: repair what is certain, quarantine the rest.

    Parameters
    ----------
    raw : DataFrame
        The events as they arrived, columns ``INTERACTION_COLUMNS`` (text,
        numbers or both; extra columns such as ``CATEGORY`` allowed).
    items : DataFrame, optional
        The catalogue (``ITEM_ID``, ``PRICE``[, ``CATEGORY``...]). With it, a
        missing price is filled with the item's catalogue price; without it, a
        shop event with no price is quarantined.

    Returns
    -------
    ValidationResult
        - ``valid``: the good events, parsed (ids and ``EVENT_DAY`` ``int64``,
          ``EVENT_TIME`` naive UTC ``datetime64[ns]``, ``EVENT_TYPE`` one of
          ``EVENT_TYPES``, ``RATING`` and ``PRICE`` float; other columns as
          they came, ``CATEGORY`` canonical), sorted by ``EVENT_TIME`` then
          ``EVENT_ID``, with a fresh index;
        - ``quarantine``: every other event exactly as it arrived, on
          ``raw``'s index (renumbered from 0 if that index repeats a label),
          with ``QUARANTINE_REASON``;
        - ``counts``: how often each kind of reason occurred.

    Every row of ``raw`` ends up in exactly one of the two.

    Raises
    ------
    ValidationError
        If a column of ``INTERACTION_COLUMNS`` is absent (no single row is to
        blame), or the catalogue lacks ``ITEM_ID`` or ``PRICE``.
    """
    ### BEGIN SOLUTION
    missing = [c for c in INTERACTION_COLUMNS if c not in raw.columns]
    if missing:
        raise ValidationError(
            f"the export has no column(s) {missing} (found {list(raw.columns)}); rename its "
            f"columns to the interaction format {INTERACTION_COLUMNS}"
        )
    if not raw.index.is_unique:
        raw = raw.reset_index(drop=True)

    # 1. Parse each column; the parsers say why a value cannot be read.
    parsed = raw.copy()
    readers = {
        "EVENT_ID": parse_integers,
        "EVENT_DAY": parse_integers,
        "USER_ID": parse_integers,
        "ITEM_ID": parse_integers,
        "EVENT_TIME": parse_timestamps,
        "RATING": parse_amounts,
        "PRICE": parse_amounts,
    }
    reasons = {}
    for name, read in readers.items():
        result = read(raw[name])
        parsed[name] = result.values
        reasons[name] = result.reasons
    parsed["EVENT_TYPE"] = canonical_event_types(raw["EVENT_TYPE"])
    if "CATEGORY" in raw.columns:
        parsed["CATEGORY"] = canonical_categories(raw["CATEGORY"])

    # 2. Repair a missing price from the catalogue: an item has one price in it.
    shop = parsed["EVENT_TYPE"].isin(SHOP_EVENTS).to_numpy()
    no_price = parsed["PRICE"].isna().to_numpy() & reasons["PRICE"].isna().to_numpy() & shop
    if items is not None:
        # Only the price matters here: a catalogue with other category names still prices.
        priced = validate_catalogue(items.drop(columns=["CATEGORY"], errors="ignore"))
        catalogue = priced.valid.set_index("ITEM_ID")["PRICE"]
        filled = parsed.loc[no_price, "ITEM_ID"].map(catalogue).astype(float)
        parsed.loc[filled.index, "PRICE"] = filled
        no_price &= parsed["PRICE"].isna().to_numpy()
    where = "the item is not in the catalogue" if items is not None else "no catalogue given"
    unpriced = pd.Series(None, index=raw.index, dtype=object)
    unpriced[no_price] = [
        f"PRICE is missing on a {t} event and cannot be filled ({where}); pass items= the "
        "catalogue, or fix the export"
        for t in parsed.loc[no_price, "EVENT_TYPE"]
    ]
    # A rating event is its rating: without one there is nothing to learn.
    unrated = parsed["EVENT_TYPE"].eq("rating").to_numpy() & parsed["RATING"].isna().to_numpy()
    unrated &= reasons["RATING"].isna().to_numpy()
    norating = pd.Series(np.where(unrated, "RATING is missing on a rating event", None), raw.index)

    # 3. The schema (types, ranges, allowed values, unique ids), lazily so that every
    #    failure of every row is reported.
    columns = {
        "EVENT_ID": pa.Column(
            "Int64", pa.Check.ge(0), nullable=False, unique=True, report_duplicates="exclude_first"
        ),
        "EVENT_TIME": pa.Column("datetime64[ns]", nullable=False),
        "EVENT_DAY": pa.Column("Int64", pa.Check.ge(0), nullable=False),
        "USER_ID": pa.Column("Int64", pa.Check.ge(0), nullable=False),
        "ITEM_ID": pa.Column("Int64", pa.Check.ge(0), nullable=False),
        "EVENT_TYPE": pa.Column(object, pa.Check.isin(list(EVENT_TYPES)), nullable=False),
        # Missing prices and ratings were judged above: only shop events need a price.
        "PRICE": pa.Column(float, pa.Check.ge(0), nullable=True),
        "RATING": pa.Column(float, nullable=True),
    }
    if "CATEGORY" in raw.columns:
        columns["CATEGORY"] = pa.Column(object, pa.Check.isin(list(CATEGORY_VALUES)), nullable=True)
    # Other columns of the export pass through unchecked.
    schema = pa.DataFrameSchema(columns, strict=False, coerce=False)
    try:
        schema.validate(parsed, lazy=True)
        errors = None
    except pa.errors.SchemaErrors as exc:
        errors = exc

    # 4. The tracker firing twice, and scripts posing as users.
    rules = [unpriced, norating, duplicate_events(parsed), bot_users(parsed)]
    result = ValidationResult.from_reasons(
        raw, parsed, errors=errors, reasons=[*reasons.values(), *rules]
    )
    valid = result.valid.astype(
        {"EVENT_ID": "int64", "EVENT_DAY": "int64", "USER_ID": "int64", "ITEM_ID": "int64"}
    )
    valid["EVENT_TYPE"] = valid["EVENT_TYPE"].astype("str")
    valid["RATING"] = valid["RATING"].astype(float)
    valid["PRICE"] = valid["PRICE"].astype(float)
    result.valid = valid.sort_values(["EVENT_TIME", "EVENT_ID"], kind="stable").reset_index(
        drop=True
    )
    return result
    ### END SOLUTION
