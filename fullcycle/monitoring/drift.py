"""Distribution drift between a reference and a current sample: PSI, KS and chi-squared.

With tens of thousands of rows every p-value is tiny, so the verdicts use
effect sizes with conventional thresholds: PSI >= 0.2 is a significant shift
(0.1-0.2 moderate), a KS statistic >= 0.1 means the two CDFs are ten
percentage points apart somewhere, and Cramer's V >= 0.1 is a small-to-medium
association between window and category. The p-values are reported beside
them for readers who want them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

__all__ = ["DriftThresholds", "FeatureDrift", "cramers_v", "feature_drift", "psi"]


@dataclass(frozen=True)
class DriftThresholds:
    """When a shift counts as large (defaults follow common practice; see the module doc).

    These mark features in the monitoring report; whether the traffic as a
    whole has drifted, or performance decayed, is the kit's rule (its
    ``check_drift`` and ``check_decay``), which may use them.

    Parameters
    ----------
    psi : float
        Population stability index of a numeric feature.
    ks : float
        Kolmogorov-Smirnov statistic of a numeric feature.
    cramers_v : float
        Effect size of the chi-squared test of a categorical feature.
    score_psi : float
        PSI of the model's scores.
    """

    psi: float = 0.2
    ks: float = 0.1
    cramers_v: float = 0.1
    score_psi: float = 0.1

    def as_dict(self) -> dict:
        return asdict(self)


def psi(reference, current, bins: int = 10, eps: float = 1e-4) -> float:
    """Population stability index over the reference's quantile bins.

    ``sum((c - r) * ln(c / r))`` over bins, with shares floored at ``eps``.
    Ties (e.g. a count feature) merge bins, so a feature with few values gets
    one bin per value.
    """
    ref = np.asarray(reference, dtype=float)
    cur = np.asarray(current, dtype=float)
    ref, cur = ref[np.isfinite(ref)], cur[np.isfinite(cur)]
    if ref.size == 0 or cur.size == 0:
        return float("nan")
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))
    r = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=edges.size + 1)
    c = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=edges.size + 1)
    r = np.maximum(r / r.sum(), eps)
    c = np.maximum(c / c.sum(), eps)
    return float(np.sum((c - r) * np.log(c / r)))


def cramers_v(reference, current) -> tuple[float, float]:
    """Chi-squared test of category shares between the windows: (Cramer's V, p-value)."""
    ref = np.asarray(reference)
    cur = np.asarray(current)
    cats = np.union1d(ref, cur)
    if cats.size < 2 or ref.size == 0 or cur.size == 0:
        return 0.0, 1.0
    table = np.array(
        [[np.sum(ref == k) for k in cats], [np.sum(cur == k) for k in cats]], dtype=float
    )
    chi2, p, _, _ = stats.chi2_contingency(table, correction=False)
    n = table.sum()
    return float(np.sqrt(chi2 / (n * (min(table.shape) - 1)))), float(p)


@dataclass(frozen=True)
class FeatureDrift:
    """Drift of one feature between the windows."""

    feature: str
    kind: str  # "numeric" or "categorical"
    psi: float
    statistic: float  # KS statistic, or Cramer's V
    p_value: float
    reference_mean: float
    current_mean: float
    drifted: bool
    test: str  # what decided it


def feature_drift(
    name: str, reference, current, thresholds: DriftThresholds, categorical: bool = False
) -> FeatureDrift:
    """PSI plus KS (numeric) or chi-squared (categorical) for one feature."""
    ref = np.asarray(reference, dtype=float)
    cur = np.asarray(current, dtype=float)
    p_index = psi(ref, cur)
    if categorical:
        v, p = cramers_v(ref, cur)
        drifted = v >= thresholds.cramers_v
        test = f"Cramer's V {v:.3f} (threshold {thresholds.cramers_v})"
        stat = v
    else:
        ks = stats.ks_2samp(ref, cur) if ref.size and cur.size else None
        stat = float(ks.statistic) if ks else 0.0
        p = float(ks.pvalue) if ks else 1.0
        drifted = stat >= thresholds.ks or p_index >= thresholds.psi
        test = (
            f"PSI {p_index:.3f} (threshold {thresholds.psi}), "
            f"KS {stat:.3f} (threshold {thresholds.ks})"
        )
    return FeatureDrift(
        name,
        "categorical" if categorical else "numeric",
        p_index,
        stat,
        p,
        float(np.nanmean(ref)) if ref.size else float("nan"),
        float(np.nanmean(cur)) if cur.size else float("nan"),
        bool(drifted),
        test,
    )
