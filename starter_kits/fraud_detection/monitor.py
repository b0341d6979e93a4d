"""The monitoring checks of your service: has the traffic drifted, has performance decayed?

Two rules, each returning a verdict and its reasons; ``fullcycle monitor``
and ``fullcycle live`` call them on windows of the prediction log and write
the report around them, and the grader calls them on hidden windows.

- ``check_drift(reference, current)`` gets batches of raw transactions (the
  service's inputs: ``TRANSACTION_ID``, ``TX_DATETIME``, ``CUSTOMER_ID``,
  ``TERMINAL_ID``, ``TX_AMOUNT``) and returns ``{"drift": True/False,
  "reasons": [...]}``. It must flag a batch that an upstream fault has
  changed and stay quiet on an ordinary one.
- ``check_decay(reference, current, value)`` gets served traffic: the raw
  columns, the ``score`` the service gave and ``TX_FRAUD`` (NaN until the
  investigation reports). It returns ``{"decay": True/False, "reasons":
  [...]}``: has the model become worse at its job since the reference
  window? Fraud can change without the inputs moving much (card testing is a
  few percent of the traffic), so this is the check that sees it, once labels
  arrive.

The library measures (:func:`fullcycle.monitoring.window_performance` gives
ROC AUC with its standard error, card precision and net value of a window);
the rules are yours.
"""

import numpy as np
import pandas as pd

from fullcycle.metrics import FraudInvestigationValue
from fullcycle.monitoring import DriftThresholds, feature_drift, window_performance


def check_drift(reference: pd.DataFrame, current: pd.DataFrame) -> dict:
    """Compare ``current`` with ``reference``; return ``{"drift": bool, "reasons": [...]}``."""
    ### BEGIN SOLUTION
    thresholds = DriftThresholds()
    reasons = []
    checks = {
        "TX_AMOUNT": (reference["TX_AMOUNT"], current["TX_AMOUNT"]),
        "hour": (
            pd.to_datetime(reference["TX_DATETIME"]).dt.hour,
            pd.to_datetime(current["TX_DATETIME"]).dt.hour,
        ),
    }
    for name, (ref, cur) in checks.items():
        result = feature_drift(name, ref, cur, thresholds)
        if result.drifted:
            reasons.append(f"{name}: PSI {result.psi:.2f} ({result.test})")
    # Terminals nobody saw in the reference: a few are normal, a flood is an upstream change.
    unseen = float(np.mean(~current["TERMINAL_ID"].isin(reference["TERMINAL_ID"])))
    if unseen > 0.10:
        reasons.append(f"{unseen:.0%} of the terminals are unknown")
    return {"drift": bool(reasons), "reasons": reasons}
    ### END SOLUTION


def check_decay(
    reference: pd.DataFrame, current: pd.DataFrame, value: FraudInvestigationValue | None
) -> dict:
    """Has the model's performance decayed from ``reference`` to ``current``?

    Parameters
    ----------
    reference, current : DataFrame
        Served traffic: the raw columns, ``score`` and ``TX_FRAUD`` (NaN: not yet labelled).
    value : FraudInvestigationValue or None
        The project's value model, to judge what the scores earn.

    Returns
    -------
    dict
        ``{"decay": bool, "reasons": [str, ...]}``.
    """
    ### BEGIN SOLUTION
    # When to judge, and what counts as decay:
    min_labelled_share = 0.8  # of both windows labelled, or wait
    auc_drop = 0.10  # a clean week two weeks after training fell by ~0.05 in a small world
    auc_z = 2.0  # standard errors of the difference: a quiet week must not ring
    value_share_drop = 0.15  # fall of the share of the achievable value ...
    min_frauds = 30  # ... judged only with this many labelled frauds in each window

    ref = window_performance(reference, value)
    cur = window_performance(current, value)
    # Judging a half-labelled week compares different populations (the labels that come
    # first are not a random sample), so wait until both windows are mostly labelled.
    for name, p in (("reference", ref), ("current", cur)):
        if p["status"] != "evaluated" or p["labelled_share"] < min_labelled_share:
            return {
                "decay": False,
                "reasons": [
                    f"waiting for labels: {p['labelled_share']:.0%} of the {name} window "
                    f"is labelled (need {min_labelled_share:.0%})"
                ],
            }
    reasons = []
    # A week holds a few hundred frauds at most: an AUC moves by a few hundredths by chance.
    # Ask for a fall that matters (auc_drop) *and* that noise cannot explain (auc_z standard
    # errors of the difference, Hanley-McNeil for each window).
    drop = ref["roc_auc"] - cur["roc_auc"]
    noise = float(np.hypot(ref["roc_auc_se"], cur["roc_auc_se"]))
    if drop >= auc_drop and drop >= auc_z * noise:
        reasons.append(
            f"ROC AUC fell from {ref['roc_auc']:.3f} to {cur['roc_auc']:.3f} (drop {drop:.3f} "
            f">= {auc_drop} and >= {auc_z:g} standard errors, {auc_z * noise:.3f})"
        )
    # What the team earns can fall while the ranking looks fine (new fraud on small amounts,
    # say). Compare shares of the achievable value: raw money moves with the fraud itself.
    # With a handful of frauds one catch more or less swings the share by tens of points,
    # so this needs enough frauds in both windows.
    enough = min(ref["frauds"], cur["frauds"]) >= min_frauds
    if value is not None and enough and np.isfinite(ref["share_of_oracle"]):
        vdrop = ref["share_of_oracle"] - cur["share_of_oracle"]
        if vdrop >= value_share_drop:
            reasons.append(
                f"share of the achievable value fell from {ref['share_of_oracle']:.0%} to "
                f"{cur['share_of_oracle']:.0%} (drop {vdrop:.2f} >= {value_share_drop})"
            )
    return {"decay": bool(reasons), "reasons": reasons}
    ### END SOLUTION
