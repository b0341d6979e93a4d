"""The monitoring report: one self-contained HTML page (Jinja2, autoescaped), plots first."""

from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd

__all__ = ["render_report"]


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _overlays(result, reference, current) -> str:
    import matplotlib.pyplot as plt

    shown = ["score"] + [f.feature for f in sorted(result.features, key=lambda f: -f.psi)[:5]]
    fig, axes = plt.subplots(2, 3, figsize=(13, 6.5))
    for ax, name in zip(axes.ravel(), shown, strict=False):
        r = reference[name].to_numpy(dtype=float)
        c = current[name].to_numpy(dtype=float)
        both = np.concatenate([r, c])
        lo, hi = np.nanpercentile(both, [0.5, 99.5]) if both.size else (0, 1)
        bins = np.linspace(lo, hi if hi > lo else lo + 1, 40)
        ax.hist(r, bins=bins, density=True, alpha=0.5, label="reference", color="#4477aa")
        ax.hist(c, bins=bins, density=True, alpha=0.5, label="current", color="#ee6677")
        drift = (
            result.score
            if name == "score"
            else next(f for f in result.features if f.feature == name)
        )
        ax.set_title(
            f"{name}\nPSI {drift.psi:.3f}" + ("  DRIFT" if drift.drifted else ""), fontsize=9
        )
        ax.tick_params(labelsize=7)
    axes.ravel()[0].legend(fontsize=8)
    fig.suptitle("Distributions: reference vs current (largest shifts)")
    return _png(fig)


def _over_time(result) -> str | None:
    import matplotlib.pyplot as plt

    daily = result.daily
    if daily.empty:
        return None
    fig, ax = plt.subplots(figsize=(11, 3.5))
    for c in daily.columns[1:]:
        ax.plot(daily["day"], daily[c], marker="o", label=c)
    ax.axhline(result.thresholds.psi, color="grey", ls="--", lw=1, label="feature PSI threshold")
    ax.axhline(result.thresholds.score_psi, color="grey", ls=":", lw=1, label="score PSI threshold")
    ref_end = result.windows["reference"]["end"][:10]
    ax.axvline(ref_end, color="black", lw=0.8)
    ax.set_ylabel("PSI vs reference")
    ax.set_title("Drift over time, one point per day (left of the black line: the reference days)")
    ax.legend(fontsize=7, ncol=3)
    ax.tick_params(axis="x", labelrotation=45, labelsize=7)
    return _png(fig)


def _performance_plot(result) -> str | None:
    import matplotlib.pyplot as plt

    ref = result.performance.get("reference", {})
    cur = result.performance.get("current", {})
    if cur.get("status") != "evaluated" or ref.get("status") != "evaluated":
        return None
    rows = []
    for window, p in (("reference", ref), ("current", cur)):
        for day, v in p["per_day"].items():
            rows.append({"window": window, "day": day, **v})
    df = pd.DataFrame(rows).sort_values("day")
    has_value = "net_value" in df
    fig, axes = plt.subplots(1, 2 if has_value else 1, figsize=(12, 3.5), squeeze=False)
    ax = axes[0, 0]
    for window, g in df.groupby("window"):
        ax.plot(g["day"], g["roc_auc"], marker="o", label=f"ROC AUC ({window})")
        if "card_precision" in g:
            ax.plot(
                g["day"],
                g["card_precision"],
                marker="s",
                ls="--",
                label=f"card precision ({window})",
            )
    ax.set_title("Performance per day, once labels arrived")
    ax.legend(fontsize=7)
    ax.tick_params(axis="x", labelrotation=45, labelsize=7)
    if has_value:
        ax = axes[0, 1]
        ax.bar(df["day"], df["oracle_net_value"], color="#dddddd", label="achievable (oracle)")
        ax.bar(
            df["day"],
            df["net_value"],
            color=np.where(df["window"] == "current", "#ee6677", "#4477aa"),
            label="model",
        )
        ax.set_title("Net value per day (blue: reference, red: current)")
        ax.legend(fontsize=7)
        ax.tick_params(axis="x", labelrotation=45, labelsize=7)
    return _png(fig)


def _num(x, fmt: str = "{:.3f}") -> str:
    """A figure for the page; a missing one (None, NaN) is shown as a dash."""
    if isinstance(x, bool) or not isinstance(x, int | float) or not np.isfinite(x):
        return "-"
    return fmt.format(x)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; max-width: 1250px; }
.verdict { font-size: 1.6rem; font-weight: bold; color: {{ colour }}; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 1rem 0; }
td, th { border-bottom: 1px solid #ddd; padding: 0.25rem 0.6rem; text-align: right; }
td:first-child, th:first-child { text-align: left; }
tr.bad td { background: #fdecea; }
img { max-width: 100%; margin: 0.5rem 0; }
</style></head><body>
<h1>{{ title }}</h1>
<p class="verdict">Verdict: {{ v.verdict | upper }}</p>
<ul>
{%- for r in v.reasons %}<li>{{ r }}</li>{% else %}<li>no check raised an alarm</li>{% endfor %}
</ul>
<p>The kit's checks decide the verdict:</p>
<ul>
{%- for key, c in v.checks.items() %}
<li>{{ key }}: {% if c is none %}not run{% else %}{{ c.check }} said {{ "YES" if c[key] else "no" }}{% endif %}</li>
{%- endfor %}
</ul>
<p>Also noticed (not part of the verdict):</p>
<ul>{% for n in v.notes %}<li>{{ n }}</li>{% else %}<li>none</li>{% endfor %}</ul>
<p>Reference: {{ v.windows.reference.start }} to {{ v.windows.reference.end }}
({{ "{:,}".format(v.windows.reference.rows) }} predictions).
Current: {{ v.windows.current.start }} to {{ v.windows.current.end }}
({{ "{:,}".format(v.windows.current.rows) }} predictions).</p>
{% for src in images %}<img src="{{ src }}" alt="plot">{% endfor %}
<h2>Performance once labels arrived</h2>
<table><tr><th>window</th><th>labelled rows</th><th>ROC AUC</th><th>card precision</th>
<th>net value</th><th>share of achievable</th></tr>
{%- for name in ("reference", "current") if name in v.performance %}
{%- set p = v.performance[name] %}
<tr><td>{{ name }}</td><td>{{ "{:,}".format(p.labelled_rows) }}</td>
{%- if p.status == "evaluated" %}
<td>{{ num(p.roc_auc) }}</td><td>{{ num(p.get("card_precision")) }}</td>
<td>{{ num(p.get("net_value"), "{:,.0f}") }}</td><td>{{ num(p.get("share_of_oracle"), "{:.0%}") }}</td>
{%- else %}<td colspan="4">{{ p.status }}</td>{% endif %}</tr>
{%- else %}
<tr><td colspan="6">no labels in the log</td></tr>
{%- endfor %}
</table>
<h2>Every input and the score</h2>
<table><tr><th>feature</th><th>kind</th><th>PSI</th><th>KS / Cramer's V</th><th>p-value</th>
<th>mean (ref)</th><th>mean (cur)</th><th></th></tr>
{%- for f in [v.score_drift] + v.features %}
<tr class="{{ 'bad' if f.drifted else '' }}"><td>{{ f.feature }}</td><td>{{ f.kind }}</td>
<td>{{ num(f.psi) }}</td><td>{{ num(f.statistic) }}</td><td>{{ num(f.p_value, "{:.2g}") }}</td>
<td>{{ num(f.reference_mean, "{:.3g}") }}</td><td>{{ num(f.current_mean, "{:.3g}") }}</td>
<td>{{ "past threshold" if f.drifted else "" }}</td></tr>
{%- endfor %}
</table>
<p>Report thresholds: {{ v.thresholds }}. The machine-readable verdict is verdict.json beside
this page.</p>
</body></html>
"""


def render_report(result, reference: pd.DataFrame, current: pd.DataFrame, title: str) -> str:
    """The HTML page of a :class:`~fullcycle.monitoring.MonitorResult` (every text escaped)."""
    import jinja2

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    page = env.from_string(_PAGE)
    images = [_overlays(result, reference, current), _over_time(result), _performance_plot(result)]
    return page.render(
        title=title,
        v=result.verdict(),
        colour="#c0392b" if result.drifted else "#2e7d32",
        images=[src for src in images if src],
        num=_num,
    )
