"""The monitoring check of your recommender: has what people browse and buy drifted?

A recommender learns which items go together from last month's events. It
goes stale when the shop changes under it: a category comes into fashion
(the model keeps pushing last month's favourites), or the catalogue turns
over (the model knows nothing about the new items and keeps recommending
withdrawn ones). ``check_drift(reference, current)`` gets two batches of
events (``INTERACTION_COLUMNS``; a ``CATEGORY`` column, or the catalogue as
``items=``, for the category mix) and returns ``{"drift": True/False,
"reasons": [...]}`` with the figures it judged. It must flag the simulator's
``drift="trend"`` and ``drift="catalogue"`` weeks and stay quiet on an
ordinary week, whose new users and items are the shop's normal life.

The figures:

- ``category_psi``: the population stability index of the share of events
  per category (``fullcycle.monitoring.psi`` is its numeric cousin);
- ``new_item_share``: share of the current events on items the reference
  never saw; ``gone_item_share``: share of the recent reference events on
  items that vanished, counting only items busy enough that their absence is
  not chance;
- ``new_user_share``: share of the current events by users the reference
  never saw;
- ``top_item_share``: share of the events on the reference's 20 most viewed
  items, before and after.
"""

import numpy as np
import pandas as pd

# The thresholds were set on the project's shop (simulate_interactions with 3,000 users, 600
# items, 91 days; seeds 0-9), comparing each week with the week before and with the whole
# history before it. "Ordinary" below is the largest value over those 240 quiet comparisons
# (their last 3 days included), none of which rang; "drift" the smallest over the weeks that
# the simulator's trend or catalogue change covers (drift days 7, 49 and 84: 30 weeks each,
# all rang; so did the 50 each where the change began on days 2-6 of the week, days 85-89).
# A smaller shop is noisier: with 1,000 users and 300 items, 2 of 80 quiet comparisons rang
# (the category mix of 3 days, PSI 0.013).

#: Category PSI above which the mix of what people browse has shifted (ordinary: 0.0075; a
#: trend, one category's appeal x4: 0.025 over a week, 0.017 over 3 days of which 2 trend).
CATEGORY_PSI = 0.01
#: ... and the PSI must also be this many times what sampling alone gives two batches of
#: their sizes ((categories - 1) x (1/n_reference + 1/n_current)), so small batches stay quiet.
PSI_NOISE_FACTOR = 5.0
#: Share of the current events on items never seen before (ordinary, new arrivals: 0.095; a
#: catalogue change replacing 30% of the items: 0.24).
NEW_ITEM_SHARE = 0.15
#: Share of the recent reference events on busy items that vanished (ordinary: 0.034; the
#: catalogue change, over the days after it: 0.24).
GONE_ITEM_SHARE = 0.15
#: An item is "busy" when at least this many current events were expected from its reference
#: share: absent, it is gone for sure (Poisson: no event when 5 are expected happens 0.7% of
#: the time).
BUSY_EVENTS = 5.0
#: How much of the end of the reference stands for the catalogue "before" (days).
CATALOGUE_DAYS = 7
#: The newest days of the current window, also judged alone (see :func:`check_drift`).
LATEST_DAYS = 3
#: Share of the current events by users never seen before (ordinary, arrivals and users back
#: after a quiet week: 0.084; the simulator's drifts do not change the users). A flood of
#: unknown ids (bots, a tracker that lost the user id) gives far more. Meant for windows of a
#: week or more.
NEW_USER_SHARE = 0.25
#: The "top items" whose share is reported.
TOP_ITEMS = 20


def category_shift(reference: pd.Series, current: pd.Series) -> dict:
    """PSI of the category mix between two windows, its noise floor, and the biggest mover.

    Parameters
    ----------
    reference, current : Series
        The category of each event of each window.

    Returns
    -------
    dict
        ``psi``, ``noise`` (the PSI two samples of these sizes give by chance
        when nothing changed: ``(K - 1) (1/n_ref + 1/n_cur)``), and the
        category whose share rose most, with its shares before and after
        (``rising``, ``rising_before``, ``rising_after``).
    """
    ### BEGIN SOLUTION
    ref = reference.dropna().astype(str)
    cur = current.dropna().astype(str)
    if ref.empty or cur.empty:
        return {"psi": float("nan"), "noise": float("nan"), "rising": None}
    cats = sorted(set(ref) | set(cur))
    r = ref.value_counts().reindex(cats, fill_value=0).to_numpy(float) / len(ref)
    c = cur.value_counts().reindex(cats, fill_value=0).to_numpy(float) / len(cur)
    # Floor the shares (as fullcycle.monitoring.psi does): a category absent from one window
    # would otherwise give an infinite log.
    rf, cf = np.maximum(r, 1e-4), np.maximum(c, 1e-4)
    value = float(np.sum((cf - rf) * np.log(cf / rf)))
    noise = (len(cats) - 1) * (1 / len(ref) + 1 / len(cur))
    up = int(np.argmax(c - r))
    return {
        "psi": value,
        "noise": float(noise),
        "rising": cats[up],
        "rising_before": float(r[up]),
        "rising_after": float(c[up]),
    }
    ### END SOLUTION


def catalogue_shift(reference: pd.DataFrame, current: pd.DataFrame) -> dict:
    """How much of the current traffic is on new items, and of the recent traffic on gone ones.

    Returns
    -------
    dict
        ``new_item_share``: share of ``current``'s events on items absent
        from ``reference``; ``gone_item_share``: share of the reference's last
        ``CATALOGUE_DAYS`` days of events on items that were busy then (at least
        ``BUSY_EVENTS`` current events expected from their share) and have no
        current event.
    """
    ### BEGIN SOLUTION
    new = float(np.mean(~current["ITEM_ID"].isin(reference["ITEM_ID"])))
    # "Before" is the catalogue as it was lately: an item withdrawn a month ago is old news.
    recent = reference
    if "EVENT_DAY" in reference.columns:
        recent = reference[reference["EVENT_DAY"] > reference["EVENT_DAY"].max() - CATALOGUE_DAYS]
    counts = recent["ITEM_ID"].value_counts()
    expected = counts / counts.sum() * len(current)
    busy = expected.index[expected.to_numpy() >= BUSY_EVENTS]
    gone = busy[~busy.isin(current["ITEM_ID"])]
    return {
        "new_item_share": new,
        "gone_item_share": float(counts.reindex(gone).sum() / counts.sum()),
        "gone_items": int(len(gone)),
    }
    ### END SOLUTION


def window_drift(
    reference: pd.DataFrame, current: pd.DataFrame, items: pd.DataFrame | None = None
) -> tuple[list[str], dict]:
    """The reasons to call ``current`` drifted from ``reference``, and the figures judged.

    Parameters are those of :func:`check_drift`. Returns ``(reasons, figures)``:
    an empty list when nothing moved beyond its threshold.
    """
    ### BEGIN SOLUTION
    reasons = []
    figures = {"reference_events": len(reference), "current_events": len(current)}

    # 1. The category mix: a trend moves a whole category, not one item.
    def categories(events: pd.DataFrame) -> pd.Series | None:
        if "CATEGORY" in events.columns:
            return events["CATEGORY"]
        if items is not None:
            lookup = items.drop_duplicates("ITEM_ID").set_index("ITEM_ID")["CATEGORY"]
            return events["ITEM_ID"].map(lookup)
        return None

    ref_cat, cur_cat = categories(reference), categories(current)
    shift = {"psi": float("nan"), "noise": float("nan")}
    if ref_cat is not None and cur_cat is not None:
        shift = category_shift(ref_cat, cur_cat)
    figures["category_psi"] = shift["psi"]
    figures["category_psi_noise"] = shift["noise"]
    if shift["psi"] > max(CATEGORY_PSI, PSI_NOISE_FACTOR * shift["noise"]):
        reasons.append(
            f"the category mix shifted: PSI {shift['psi']:.3f} (threshold {CATEGORY_PSI}, and "
            f"{PSI_NOISE_FACTOR:g}x the {shift['noise']:.4f} chance gives); "
            f"{shift['rising']} went from {shift['rising_before']:.1%} to "
            f"{shift['rising_after']:.1%} of the events"
        )

    # 2. The catalogue: new items the model has never seen, busy items that vanished.
    catalogue = catalogue_shift(reference, current)
    figures.update(catalogue)
    if catalogue["new_item_share"] > NEW_ITEM_SHARE:
        reasons.append(
            f"{catalogue['new_item_share']:.0%} of the events are on items never seen before "
            f"(threshold {NEW_ITEM_SHARE:.0%}): the model cannot recommend them"
        )
    if catalogue["gone_item_share"] > GONE_ITEM_SHARE:
        reasons.append(
            f"{catalogue['gone_items']} items that drew {catalogue['gone_item_share']:.0%} of the "
            f"recent events have none now (threshold {GONE_ITEM_SHARE:.0%}): withdrawn?"
        )

    # 3. The users: a few newcomers are normal, a flood is an upstream change.
    figures["new_user_share"] = float(np.mean(~current["USER_ID"].isin(reference["USER_ID"])))
    if figures["new_user_share"] > NEW_USER_SHARE:
        reasons.append(
            f"{figures['new_user_share']:.0%} of the events are by users never seen before "
            f"(threshold {NEW_USER_SHARE:.0%})"
        )

    # 4. Reported, not judged: how much the old favourites still draw.
    top = reference["ITEM_ID"].value_counts().index[:TOP_ITEMS]
    figures["top_item_share_reference"] = float(reference["ITEM_ID"].isin(top).mean())
    figures["top_item_share_current"] = float(current["ITEM_ID"].isin(top).mean())
    return reasons, figures
    ### END SOLUTION


def check_drift(
    reference: pd.DataFrame, current: pd.DataFrame, items: pd.DataFrame | None = None
) -> dict:
    """Compare ``current`` events with ``reference`` events; has the shop drifted?

    Parameters
    ----------
    reference, current : DataFrame
        Events (``USER_ID``, ``ITEM_ID``; ``EVENT_DAY`` and ``CATEGORY`` when
        known), for instance the last weeks of history and the newest week.
    items : DataFrame, optional
        The catalogue (``ITEM_ID``, ``CATEGORY``), to look up categories when
        the events do not carry them. Without categories the category mix is
        not judged (``category_psi`` is NaN).

    Returns
    -------
    dict
        ``{"drift": bool, "reasons": [str, ...]}`` and the figures of the
        whole current window (:func:`window_drift`: ``category_psi``,
        ``category_psi_noise``, ``new_item_share``, ``gone_item_share``,
        ``gone_items``, ``new_user_share``, ``top_item_share_reference``,
        ``top_item_share_current``, ``reference_events``, ``current_events``),
        plus ``recent``: the same figures for its last ``LATEST_DAYS`` days
        against everything before them (None when the window is not longer than
        that or has no ``EVENT_DAY``).
    """
    ### BEGIN SOLUTION
    if len(reference) == 0 or len(current) == 0:
        return {
            "drift": False,
            "reasons": ["nothing to compare: a window has no events"],
            "reference_events": len(reference),
            "current_events": len(current),
            "recent": None,
        }
    reasons, figures = window_drift(reference, current, items)
    # A change that began late in the window is diluted by the days before it: a trend from
    # its sixth day shows at a third of its strength over the week. Judge the newest days
    # alone too, against everything before them (the reference and the window's first
    # days, so that an item that arrived on Monday is not "new" on Friday); the PSI's noise
    # floor allows for their smaller sample.
    recent = None
    if "EVENT_DAY" in current.columns:
        last = current["EVENT_DAY"].max()
        if last - current["EVENT_DAY"].min() >= LATEST_DAYS:
            newest = current["EVENT_DAY"] > last - LATEST_DAYS
            before = pd.concat([reference, current[~newest]], ignore_index=True)
            tail_reasons, recent = window_drift(before, current[newest], items)
            reasons += [f"in the last {LATEST_DAYS} days, {r}" for r in tail_reasons]
    return {"drift": bool(reasons), "reasons": reasons, **figures, "recent": recent}
    ### END SOLUTION
