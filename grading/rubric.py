"""Rubric checks: a measured figure against a bar, with partial credit and feedback.

A check's ``metric`` names a figure of :mod:`fullcycle.metrics.registry`: a
technical or business figure of the scorecard (``roc_auc``,
``share_of_oracle`` ...), a figure of a stage probe (``service.contract``,
``features.parity``, ``retraining.correct_decisions`` ...), or a figure made
relative to the reference solution's on the same hidden world
(``roc_auc.vs_reference``).

A figure that could not be measured earns nothing, and the line says why
(the most specific reason known: for the figure itself, for its base figure,
for its section, for the whole grading). A figure whose probe the grading
config turned off is *not measured*: the line earns nothing and weighs
nothing (``max_points`` 0), so the total is out of what was measured.
"""

from __future__ import annotations

import math

__all__ = ["apply_rubric", "lookup"]


def _earned(value: float, bar: float, partial: float | None, higher: bool, points: float) -> float:
    meets = value >= bar if higher else value <= bar
    if meets:
        return points
    if partial is None:
        return 0.0
    inside = value > partial if higher else value < partial
    if not inside:
        return 0.0
    return round(points * (value - partial) / (bar - partial), 4)


def lookup(reasons: dict[str, str], metric: str) -> str | None:
    """The most specific reason of ``reasons`` for ``metric``.

    Keys are tried in order: the figure (``roc_auc.vs_reference``), its base
    figure (``roc_auc``), its section (``service`` for ``service.p99_ms``),
    then ``""`` (the whole grading).
    """
    keys = [metric]
    head = metric
    while "." in head:
        head = head.rpartition(".")[0]
        keys.append(head)
    keys.append(metric.split(".", 1)[0] if "." in metric else "")
    keys.append("")
    for k in keys:
        if reasons.get(k):
            return reasons[k]
    return None


def apply_rubric(
    checks,
    metrics: dict[str, float],
    unmeasured: dict[str, str],
    disabled: dict[str, str] | None = None,
) -> list[dict]:
    """One line per check: value, points earned, and the feedback when points were lost.

    Parameters
    ----------
    checks : list of RubricCheck
    metrics : dict
        Figure name -> value.
    unmeasured : dict
        Figure name, base figure, section or ``""`` -> why it has no value.
    disabled : dict, optional
        Figure name or section -> why the grading config turned its probe off;
        such a line is not measured and weighs nothing.
    """
    disabled = disabled or {}
    lines = []
    for c in checks:
        off = lookup({k: v for k, v in disabled.items() if k}, c.metric)
        value = metrics.get(c.metric)
        reason = None
        if off is not None:
            value, earned, weight = None, 0.0, 0.0
        elif value is None or (isinstance(value, float) and math.isnan(value)):
            reason = lookup(unmeasured, c.metric) or "not measured"
            earned, weight, value = 0.0, c.points, None
        else:
            earned = _earned(float(value), c.bar, c.partial_from, c.higher_is_better, c.points)
            weight = c.points
        line = {
            "id": c.id,
            "metric": c.metric,
            "value": value,
            "bar": c.bar,
            "partial_from": c.partial_from,
            "higher_is_better": c.higher_is_better,
            "points": earned,
            "max_points": weight,
            "measured": off is None and value is not None,
            "passed": None if off is not None else earned >= c.points,
        }
        if off is not None:
            line["feedback"] = f"not measured: {off}."
        elif earned < c.points:
            line["feedback"] = (f"not measured: {reason}. " if reason else "") + c.feedback
        lines.append(line)
    return lines
