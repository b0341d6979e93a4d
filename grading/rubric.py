"""Rubric checks: a measured figure against a bar, with partial credit and feedback.

A check's ``metric`` names a technical or business figure of the scorecard
(``roc_auc``, ``value_vs_baseline`` ...), a service figure (``service.contract``,
``service.consistency``, ``service.bad_input_4xx``, ``service.p99_ms``) or a
monitoring figure (``monitoring.flags_drift``, ``monitoring.quiet_on_clean``).
A figure that could not be measured earns nothing, and the line says why.
"""

from __future__ import annotations

import math

__all__ = ["apply_rubric"]


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


def apply_rubric(checks, metrics: dict[str, float], unmeasured: dict[str, str]) -> list[dict]:
    """One line per check: value, points earned, and the feedback when points were lost.

    ``unmeasured`` maps a metric prefix (``""`` for all) to the reason it has no value.
    """
    lines = []
    for c in checks:
        value = metrics.get(c.metric)
        reason = None
        if value is None or (isinstance(value, float) and math.isnan(value)):
            prefix = c.metric.split(".", 1)[0] if "." in c.metric else ""
            reason = unmeasured.get(prefix) or unmeasured.get("") or "not measured"
            earned = 0.0
            value = None
        else:
            earned = _earned(float(value), c.bar, c.partial_from, c.higher_is_better, c.points)
        line = {
            "id": c.id,
            "metric": c.metric,
            "value": value,
            "bar": c.bar,
            "partial_from": c.partial_from,
            "higher_is_better": c.higher_is_better,
            "points": earned,
            "max_points": c.points,
            "passed": earned >= c.points,
        }
        if earned < c.points:
            line["feedback"] = (f"not measured: {reason}. " if reason else "") + c.feedback
        lines.append(line)
    return lines
