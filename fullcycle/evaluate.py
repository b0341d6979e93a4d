"""The scorecard: technical and business metrics against the rule baseline and the oracle."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from fullcycle.metrics.business import ValueReport
from fullcycle.metrics.technical import compute_metric

__all__ = ["Scorecard", "SCORECARD_METRICS", "make_scorecard"]

#: Names a rubric may use besides the spec's technical metrics.
SCORECARD_METRICS = ("net_value", "value_vs_baseline", "share_of_oracle")


@dataclass
class Scorecard:
    """Everything measured about one set of scores on a labelled scoring window."""

    technical: dict[str, float]
    baseline_technical: dict[str, float]
    value: ValueReport
    baseline: ValueReport
    oracle: ValueReport
    n_rows: int
    n_frauds: int
    days: int
    #: The kit's decision policy on the same scores, when it was given.
    policy: ValueReport | None = None

    def metrics(self) -> dict[str, float]:
        """A flat dict of every figure, for MLflow and the rubric."""
        out = dict(self.technical)
        out["net_value"] = self.value.net_value
        out["net_value_per_day"] = self.value.net_value / max(self.days, 1)
        out["baseline_net_value"] = self.baseline.net_value
        out["oracle_net_value"] = self.oracle.net_value
        out["value_vs_baseline"] = self.value.times(self.baseline)
        out["share_of_oracle"] = self.value.share_of(self.oracle)
        for name, v in self.baseline_technical.items():
            out[f"baseline_{name}"] = v
        if self.policy is not None:
            out["policy.net_value"] = self.policy.net_value
            out["policy.value_vs_top_k"] = self.policy.gain_over(self.value, self.oracle)
            out["policy.share_of_oracle"] = self.policy.share_of(self.oracle)
        return {k: float(v) for k, v in out.items()}

    def headline(self) -> str:
        m = self.metrics()
        return (
            f"captures {m['share_of_oracle']:.0%} of the achievable value, "
            f"{m['value_vs_baseline']:.1f}x the rule baseline"
        )

    def format(self, title: str = "Scorecard") -> str:
        """A plain-text table a person can read in a terminal."""
        lines = [
            title,
            "=" * len(title),
            f"scoring window: {self.days} days, {self.n_rows:,} transactions, {self.n_frauds:,} frauds",
            "",
        ]
        lines.append(f"{'metric':<28}{'model':>12}{'rule':>12}{'oracle':>12}")
        for name, v in self.technical.items():
            lines.append(
                f"{name:<28}{v:>12.3f}{self.baseline_technical.get(name, np.nan):>12.3f}{'':>12}"
            )
        lines.append(
            f"{'net savings':<28}{self.value.net_value:>12,.0f}{self.baseline.net_value:>12,.0f}"
            f"{self.oracle.net_value:>12,.0f}"
        )
        lines.append(
            f"{'net savings per day':<28}{self.value.net_value / self.days:>12,.0f}"
            f"{self.baseline.net_value / self.days:>12,.0f}{self.oracle.net_value / self.days:>12,.0f}"
        )
        d = self.value.detail
        lines.append(
            f"{'caught cards / false alarms':<28}{d['caught_cards']:>6}/{d['false_alarms']:<5}"
            f"{self.baseline.detail['caught_cards']:>6}/{self.baseline.detail['false_alarms']:<5}"
            f"{self.oracle.detail['caught_cards']:>6}/{self.oracle.detail['false_alarms']:<5}"
        )
        if self.policy is not None:
            p = self.policy
            lines.append(
                f"{'your review policy':<28}{p.net_value:>12,.0f}   "
                f"{p.detail['reviews']:,} reviews ({d['reviews']:,} for a fixed top-k), "
                f"{p.share_of(self.oracle):.0%} of the oracle"
            )
        lines += ["", f"The model {self.headline()}."]
        return "\n".join(lines)


def make_scorecard(spec, frame: pd.DataFrame, scores, priority=None) -> Scorecard:
    """Score ``scores`` on a labelled scoring window as ``spec`` says.

    Parameters
    ----------
    spec : ProjectSpec
        Gives the technical metrics and the business value model.
    frame : DataFrame
        The scoring window with labels, amounts, days and cards.
    scores : array-like
        One score per row of ``frame``.
    priority : array-like, optional
        A decision policy's priorities, one per row of
        :func:`~fullcycle.metrics.review_candidates` of ``frame`` and ``scores``.
    """
    value_model = spec.business_value.build()
    scores = np.asarray(scores, dtype=float)
    base_scores = value_model.baseline_scores(frame)
    p = spec.prediction
    kw = {"label": p.label_column, "group": p.group_column}
    technical = {m: compute_metric(m, frame, scores, **kw) for m in spec.metrics}
    baseline_technical = {m: compute_metric(m, frame, base_scores, **kw) for m in spec.metrics}
    value = value_model.evaluate(frame, scores)
    return Scorecard(
        technical=technical,
        baseline_technical=baseline_technical,
        value=value,
        baseline=value_model.evaluate(frame, base_scores),
        oracle=value_model.evaluate(frame, None),
        policy=None if priority is None else value_model.evaluate(frame, scores, priority=priority),
        n_rows=len(frame),
        n_frauds=int(frame[p.label_column].sum()),
        days=int(frame["TX_TIME_DAYS"].nunique())
        if "TX_TIME_DAYS" in frame
        else max(len(value.per_day), 1),
    )
