"""The promotion rule: does the freshly trained challenger replace the recommender in service?

The retraining job trains a challenger on the latest events, lets it and the
champion recommend to the same users over the same recent window (offline on
the held-back week, or live in a replay where simulated users respond to what
each model shows), and asks ``should_promote(champion, challenger, margin,
min_ndcg)``. Each of ``champion`` and ``challenger`` is a dict of what that
model did on the window:

- ``revenue``: the money its recommendations earned (the price of each
  recommended item the user then bought, times the attribution rate);
- ``ndcg``: its ranking quality, nDCG@10 averaged over the users;
- ``users``: how many users it recommended to (when the two differ, as in an
  A/B test that split the traffic unevenly, compare revenue per user).

Return ``{"promote": True/False, "reason": "..."}``; the reason is written
beside the decision, so say why in words an auditor understands.
"""

import math


def should_promote(champion: dict, challenger: dict, margin: float, min_ndcg: float) -> dict:
    """Decide whether ``challenger`` replaces ``champion``.

    Parameters
    ----------
    champion, challenger : dict
        ``revenue``, ``ndcg`` and ``users`` of each model on the same window.
    margin : float
        Share of the champion's revenue the challenger must add (0.02: 2% more).
    min_ndcg : float
        The project's gate: no model below this nDCG@10 goes into service.

    Returns
    -------
    dict
        ``{"promote": bool, "reason": str}``.
    """
    ### BEGIN SOLUTION
    # A model that ranks badly is not served, whatever it earned on one window: a few lucky
    # expensive purchases can hide recommendations that are useless to almost everyone.
    ndcg = challenger["ndcg"]
    if not ndcg >= min_ndcg:  # also refuses a NaN nDCG
        return {
            "promote": False,
            "reason": f"challenger nDCG@10 {ndcg:.3f} is below the gate {min_ndcg}",
        }
    old, new = champion["revenue"], challenger["revenue"]
    if not (math.isfinite(old) and math.isfinite(new)):
        return {
            "promote": False,
            "reason": f"a revenue is not a number (champion {old}, challenger {new})",
        }
    # Revenue over 900 users and over 1,000 users are not comparable (an A/B test that split
    # the traffic unevenly): then compare what each earns per user.
    unit = ""
    n_old, n_new = champion.get("users"), challenger.get("users")
    if n_old is not None and n_new is not None and n_old != n_new:
        if not (n_old > 0 and n_new > 0):
            return {
                "promote": False,
                "reason": (
                    f"a model recommended to nobody (champion {n_old} users, challenger "
                    f"{n_new}): there is nothing to compare"
                ),
            }
        old, new, unit = old / n_old, new / n_new, " per user"
    # The shop decides in money, not in nDCG: a better ranking that sells less is kept out.
    # Swapping models has a cost and one window is noisy, so the challenger must beat the
    # champion by a margin (a share of what the champion earns).
    need = old + margin * abs(old)
    if new > need:
        return {
            "promote": True,
            "reason": (
                f"challenger's recommendations earn {new:,.2f}{unit} against the champion's "
                f"{old:,.2f}, above the {margin:.0%} margin ({need:,.2f}), with nDCG@10 "
                f"{ndcg:.3f} (gate {min_ndcg})"
            ),
        }
    return {
        "promote": False,
        "reason": (
            f"challenger's recommendations earn {new:,.2f}{unit}, not more than the champion's "
            f"{old:,.2f} plus the {margin:.0%} margin ({need:,.2f})"
        ),
    }
    ### END SOLUTION
