"""The monitoring report: one self-contained HTML page, plots first, tables after."""

from __future__ import annotations

import base64
import html
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

    ref, cur = result.performance["reference"], result.performance["current"]
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


def render_report(result, reference: pd.DataFrame, current: pd.DataFrame, title: str) -> str:
    v = result.verdict()
    colour = "#c0392b" if result.drifted else "#2e7d32"
    imgs = [_overlays(result, reference, current), _over_time(result), _performance_plot(result)]
    rows = "".join(
        f"<tr class='{'bad' if f['drifted'] else ''}'><td>{html.escape(f['feature'])}</td>"
        f"<td>{f['kind']}</td><td>{f['psi']:.3f}</td><td>{f['statistic']:.3f}</td>"
        f"<td>{f['p_value']:.2g}</td><td>{f['reference_mean']:.3g}</td>"
        f"<td>{f['current_mean']:.3g}</td><td>{'drift' if f['drifted'] else ''}</td></tr>"
        for f in [v["score_drift"], *v["features"]]
    )
    perf = v["performance"]

    def perf_cell(p, key, fmt):
        x = p.get(key)
        return (
            fmt.format(x) if isinstance(x, int | float) else html.escape(str(p.get("status", "")))
        )

    perf_rows = "".join(
        f"<tr><td>{name}</td><td>{perf[name]['labelled_rows']:,}</td>"
        f"<td>{perf_cell(perf[name], 'roc_auc', '{:.3f}')}</td>"
        f"<td>{perf_cell(perf[name], 'card_precision', '{:.3f}')}</td>"
        f"<td>{perf_cell(perf[name], 'net_value', '{:,.0f}')}</td>"
        f"<td>{perf_cell(perf[name], 'share_of_oracle', '{:.0%}')}</td></tr>"
        for name in ("reference", "current")
    )
    reasons = (
        "".join(f"<li>{html.escape(r)}</li>" for r in v["reasons"])
        or "<li>nothing crossed a threshold</li>"
    )
    w = v["windows"]
    figures = "".join(f"<img src='{src}' alt='plot'>" for src in imgs if src)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; max-width: 1250px; }}
.verdict {{ font-size: 1.6rem; font-weight: bold; color: {colour}; }}
table {{ border-collapse: collapse; font-size: 0.85rem; margin: 1rem 0; }}
td, th {{ border-bottom: 1px solid #ddd; padding: 0.25rem 0.6rem; text-align: right; }}
td:first-child, th:first-child {{ text-align: left; }}
tr.bad td {{ background: #fdecea; }}
img {{ max-width: 100%; margin: 0.5rem 0; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p class="verdict">Verdict: {v["verdict"].upper()}</p>
<ul>{reasons}</ul>
<p>Reference: {w["reference"]["start"]} to {w["reference"]["end"]} ({w["reference"]["rows"]:,} predictions).
Current: {w["current"]["start"]} to {w["current"]["end"]} ({w["current"]["rows"]:,} predictions).</p>
{figures}
<h2>Performance once labels arrived</h2>
<table><tr><th>window</th><th>labelled rows</th><th>ROC AUC</th><th>card precision</th>
<th>net value</th><th>share of achievable</th></tr>{perf_rows}</table>
<h2>Every input and the score</h2>
<table><tr><th>feature</th><th>kind</th><th>PSI</th><th>KS / Cramer's V</th><th>p-value</th>
<th>mean (ref)</th><th>mean (cur)</th><th></th></tr>{rows}</table>
<p>Thresholds: {html.escape(str(v["thresholds"]))}. The machine-readable verdict is verdict.json beside this page.</p>
</body></html>
"""
