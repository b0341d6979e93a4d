"""The promotion rule: does the freshly trained challenger replace the model in service?

``fullcycle retrain`` (and ``fullcycle live``) trains a challenger on the
latest labelled weeks, scores it and the champion on the same recent window,
and asks ``should_promote(champion, challenger, margin, min_roc_auc)``. Each
of ``champion`` and ``challenger`` is a dict of what that model did on the
window:

- ``net_value``: the team's net savings with that model's scores (the project's value model);
- ``roc_auc``: its ranking quality;
- ``rows``: how many transactions the window holds;
- ``per_day_net_value``: the net savings day by day (a list).

Return ``{"promote": True/False, "reason": "..."}``; the reason is written to
MLflow beside the decision, so say why in words an auditor understands. The
grader runs your rule on hidden champion/challenger cases.
"""


def should_promote(champion: dict, challenger: dict, margin: float, min_roc_auc: float) -> dict:
    """Decide whether ``challenger`` replaces ``champion``.

    Parameters
    ----------
    champion, challenger : dict
        ``net_value``, ``roc_auc``, ``rows`` and ``per_day_net_value`` of each
        model on the same recent window.
    margin : float
        Share of the champion's absolute net value the challenger must add.
    min_roc_auc : float
        The project's gate: no model below this ROC AUC goes into service.

    Returns
    -------
    dict
        ``{"promote": bool, "reason": str}``.
    """
    ### BEGIN SOLUTION
    # A model that ranks badly is not served, whatever it earned on one window.
    auc = challenger["roc_auc"]
    if not auc >= min_roc_auc:  # also refuses a NaN AUC
        return {
            "promote": False,
            "reason": f"challenger ROC AUC {auc:.3f} is below the gate {min_roc_auc}",
        }
    # The business decides in money, not in AUC: a better ranking that earns less is kept out.
    # Swapping models has a cost and one window is noisy, so the challenger must beat the
    # champion by a margin; a share of |champion| keeps it meaningful when values are negative.
    old, new = champion["net_value"], challenger["net_value"]
    need = old + margin * abs(old)
    if new > need:
        return {
            "promote": True,
            "reason": (
                f"challenger earns {new:,.0f} against the champion's {old:,.0f}, above the "
                f"{margin:.0%} margin ({need:,.0f})"
            ),
        }
    return {
        "promote": False,
        "reason": (
            f"challenger earns {new:,.0f}, not more than the champion's {old:,.0f} plus the "
            f"{margin:.0%} margin ({need:,.0f})"
        ),
    }
    ### END SOLUTION
