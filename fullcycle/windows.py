"""Trailing-window counts and sums per key over time-ordered events: a vectorised primitive.

This is the workbench's equivalent of ``groupby(key).rolling(window)`` that
also understands *arrival order* (ties at the same second broken by an id)
and *lagged* windows (a window that ends ``lag`` seconds before each event,
as a label delay needs). Which keys, which widths, which lag and what the
features mean is the kit's business; this module only counts and sums fast
(one sort and two binary searches, whatever the number of keys).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["SECONDS_PER_DAY", "window_counts_sums"]

SECONDS_PER_DAY = 86_400


def window_counts_sums(group, t, order_key, values, lag: int, width: int):
    """Count and sum ``values`` per group over the window ``(t - lag - width, t - lag]``.

    Events are taken in arrival order (``t`` then ``order_key``). With
    ``lag = 0`` the window ends at the event itself, which is included; events
    at the same second that arrive later (higher ``order_key``) are excluded,
    as they would be for a service that sees events one at a time. With
    ``lag > 0`` the window holds every event of the group in
    ``(t - lag - width, t - lag]``.

    Parameters
    ----------
    group : array-like
        The key of each event (any hashable values).
    t : array-like of int
        Event time in whole seconds.
    order_key : array-like of int
        Tie-breaker within a second (e.g. a transaction id).
    values : array-like of float
        What to sum in each window.
    lag, width : int
        Window position and width in seconds.

    Returns
    -------
    counts, sums : ndarray
        One value per event, in the input's order.

    Examples
    --------
    >>> c, s = window_counts_sums([1, 1, 2], [0, 10, 10], [0, 1, 2], [5.0, 7.0, 1.0], 0, 60)
    >>> c.tolist(), s.tolist()
    ([1, 2, 1], [5.0, 12.0, 1.0])
    """
    codes, _ = pd.factorize(np.asarray(group), sort=False)
    codes = codes.astype(np.int64)
    t = np.asarray(t, dtype=np.int64)
    t0 = t.min() if t.size else 0
    rel = t - t0
    span = int(rel.max() if rel.size else 0) + lag + width + 2
    key = codes * span + rel
    order = np.lexsort((np.asarray(order_key), rel, codes))
    skey = key[order]
    csum = np.concatenate([[0.0], np.cumsum(np.asarray(values, dtype=float)[order])])
    if lag == 0:
        end = np.arange(1, skey.size + 1)
    else:
        end = np.searchsorted(skey, skey - lag, side="right")
    start = np.searchsorted(skey, skey - lag - width, side="right")
    counts_sorted = end - start
    sums_sorted = csum[end] - csum[start]
    counts = np.empty_like(counts_sorted)
    sums = np.empty_like(sums_sorted)
    counts[order] = counts_sorted
    sums[order] = sums_sorted
    return counts, sums
