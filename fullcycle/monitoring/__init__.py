"""Monitoring: input drift, score drift and performance decay, as an HTML report and a JSON verdict.

:func:`monitor` compares two windows of served traffic (as
:func:`fullcycle.serving.read_log` returns them); :class:`MonitorResult`
writes ``report.html`` and ``verdict.json``; :func:`monitor_log` does both
from a prediction log and two date ranges.
"""

from fullcycle.monitoring.drift import DriftThresholds, FeatureDrift, cramers_v, feature_drift, psi
from fullcycle.monitoring.monitor import (
    CATEGORICAL,
    VERDICT_SCHEMA,
    MonitorResult,
    monitor,
    monitor_log,
    per_day_drift,
)

__all__ = [
    "CATEGORICAL",
    "DriftThresholds",
    "FeatureDrift",
    "MonitorResult",
    "VERDICT_SCHEMA",
    "cramers_v",
    "feature_drift",
    "monitor",
    "monitor_log",
    "per_day_drift",
    "psi",
]
