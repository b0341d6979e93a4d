"""Monitoring: drift statistics, performance per window, the report; the kit's checks judge.

:func:`monitor` compares two windows of served traffic (as
:func:`fullcycle.serving.read_log` returns them) and asks the kit's
``check_drift`` and ``check_decay`` for the verdict; :class:`MonitorResult`
writes ``report.html`` and ``verdict.json``; :func:`monitor_log` does both
from a prediction log and two date ranges.
"""

from fullcycle.monitoring.drift import DriftThresholds, FeatureDrift, cramers_v, feature_drift, psi
from fullcycle.monitoring.monitor import (
    CATEGORICAL,
    DECAY_COLUMNS,
    RAW_COLUMNS,
    VERDICT_SCHEMA,
    MonitorResult,
    auc_standard_error,
    monitor,
    monitor_log,
    per_day_drift,
    window_performance,
)

__all__ = [
    "CATEGORICAL",
    "DECAY_COLUMNS",
    "DriftThresholds",
    "FeatureDrift",
    "MonitorResult",
    "RAW_COLUMNS",
    "VERDICT_SCHEMA",
    "auc_standard_error",
    "cramers_v",
    "feature_drift",
    "monitor",
    "monitor_log",
    "per_day_drift",
    "psi",
    "window_performance",
]
