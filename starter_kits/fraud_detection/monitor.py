"""The drift check of your service: is this batch of transactions unlike the reference?

The grader calls ``check_drift(reference, current)`` on batches of raw
transactions (the service's inputs: ids, time, card, terminal, amount) and
expects ``{"drift": True/False, ...}``. It must flag a batch that an upstream
fault has changed and stay quiet on an ordinary one.
"""

import numpy as np
import pandas as pd

from fullcycle.monitoring.drift import DriftThresholds, feature_drift


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
