"""Reports of a graded run: result.json for machines, feedback.md for nbgrader, feedback.html for people."""

from __future__ import annotations

import base64
import html
import io
import json
import shutil

import numpy as np

__all__ = ["write_reports", "format_scorecard"]

_STAGE_TITLES = {
    "contract": "Data contract",
    "leakage": "Features: leakage",
    "parity": "Features: online and offline parity",
    "policy": "Decision policy",
    "decay": "Monitoring: performance decay",
    "retraining": "Retraining rule",
}
#: Figures of the reference solution a learner sees beside theirs.
_REFERENCE_SHOWN = (
    "roc_auc",
    "average_precision",
    "card_precision@100",
    "share_of_oracle",
    "value_vs_baseline",
    "policy.share_of_oracle",
)


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _plots(job) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve, roc_curve

    plots = []
    if job.scorecard is not None and job.scores is not None:
        labels = job.holdout.labels
        y = labels[job.spec.prediction.label_column].to_numpy()
        from fullcycle.run import at_scale

        vm = at_scale(job.spec, job.config.scale).business_value.build()
        base = vm.baseline_scores(labels)
        fig, ax = plt.subplots(1, 2, figsize=(10, 4))
        for name, s in (("your model", job.scores), ("baseline", base)):
            fpr, tpr, _ = roc_curve(y, s)
            prec, rec, _ = precision_recall_curve(y, s)
            ax[0].plot(fpr, tpr, label=name)
            ax[1].plot(rec, prec, label=name)
        ax[0].plot([0, 1], [0, 1], ":", color="grey")
        ax[0].set(title="ROC", xlabel="false positive rate", ylabel="true positive rate")
        ax[1].set(title="Precision-recall", xlabel="recall", ylabel="precision")
        for a in ax:
            a.legend()
        plots.append(("ROC and precision-recall on the hidden scoring window", _png(fig)))
        params = vm.params() if callable(getattr(vm, "params", None)) else {}
        if "k" in params:
            ks = sorted({max(1, int(round(params["k"] * f))) for f in (0.25, 0.5, 0.75, 1, 1.5, 2)})
            rows = []
            for k in ks:
                m = type(vm)(**{**params, "k": k})
                rows.append(
                    (
                        k,
                        m.evaluate(labels, job.scores).net_value,
                        m.evaluate(labels, base).net_value,
                        m.evaluate(labels, None).net_value,
                    )
                )
            fig, ax = plt.subplots(figsize=(6, 4))
            r = np.array(rows, dtype=float)
            for i, name in enumerate(("your model", "baseline", "oracle"), start=1):
                ax.plot(r[:, 0], r[:, i], marker="o", label=name)
            ax.axvline(params["k"], color="grey", ls=":")
            ax.set(title="Value as a function of k", xlabel="k", ylabel="net value")
            ax.legend()
            plots.append(("Value as a function of k (the dotted line is the spec's k)", _png(fig)))
        card = job.scorecard
        per_day = card.value.per_day
        if len(per_day) > 1:
            import pandas as pd

            fig, ax = plt.subplots(figsize=(8, 4))
            pd.DataFrame(
                {
                    "your model": per_day,
                    "baseline": card.baseline.per_day,
                    "oracle": card.oracle.per_day,
                }
            ).plot.bar(ax=ax)
            ax.set(title="Net value per day", xlabel="day", ylabel="net value")
            plots.append(("Net savings per day", _png(fig)))
    if job.service and job.service.get("latency_ms"):
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.hist(job.service["latency_ms"], bins=30)
        ax.set(title="Service latency, single requests", xlabel="ms", ylabel="requests")
        plots.append(("Latency of your service", _png(fig)))
    return plots


def format_scorecard(result: dict) -> str:
    """The scorecard a terminal prints after grading."""
    s = result["score"]
    lines = [
        f"{result['project']}: {s['points']:g} / {s['max_points']:g} points ({result['status']})",
    ]
    for m in result.get("messages", []):
        lines.append(f"  ! {m[:300]}")
    iso = result.get("isolation") or {}
    if iso.get("reduced"):
        lines.append("  ! ISOLATION REDUCED: " + "; ".join(iso.get("reasons", [])))
    lines.append(f"  {'check':<26}{'value':>12}{'bar':>10}{'points':>12}")
    for line in result["rubric"]:
        v = line["value"]
        vs = "-" if v is None else f"{v:.3f}"
        pts = (
            "not measured"
            if line.get("passed") is None and not line["max_points"]
            else f"{line['points']:g}/{line['max_points']:g}"
        )
        lines.append(f"  {line['id']:<26}{vs:>12}{line['bar']:>10g}{pts:>12}")
    return "\n".join(lines)


def _markdown(result: dict) -> str:
    s = result["score"]
    out = [f"# {result['project']}: {s['points']:g} / {s['max_points']:g} points", ""]
    if result.get("messages"):
        out += ["**What stopped the grading:**", ""] + [f"- {m}" for m in result["messages"]] + [""]
    out += ["| check | value | bar | points |", "|---|---|---|---|"]
    for line in result["rubric"]:
        v = "-" if line["value"] is None else f"{line['value']:.3f}"
        if line.get("passed") is None and not line["max_points"]:
            pts = "not measured"
        else:
            pts = f"{line['points']:g} / {line['max_points']:g}"
        out.append(f"| {line['id']} | {v} | {line['bar']:g} | {pts} |")
    lost = [line for line in result["rubric"] if line.get("feedback")]
    if lost:
        out += ["", "## Where points were lost and how to win them", ""]
        for line in lost:
            out.append(
                f"- **{line['id']}** ({line['points']:g}/{line['max_points']:g}): {line['feedback']}"
            )
    for key, title in (("service", "Service"), ("monitoring", "Monitoring")):
        probe = result.get(key) or {}
        if probe.get("problems"):
            out += ["", f"## {title} problems", ""] + [f"- {p}" for p in probe["problems"]]
    for name, probe in (result.get("stages") or {}).items():
        if name == "drift":
            continue  # shown under Monitoring
        if probe.get("problems"):
            out += ["", f"## {_STAGE_TITLES.get(name, name)}: what to look at", ""]
            out += [f"- {p}" for p in probe["problems"][:8]]
    ref = result.get("reference") or {}
    if ref.get("figures"):
        shown = [k for k in _REFERENCE_SHOWN if k in ref["figures"]]
        if shown:
            out += ["", "## The reference solution on the same hidden world", ""]
            out += ["| figure | reference | yours |", "|---|---|---|"]
            mine = result.get("metrics") or {}
            for k in shown:
                yours = "-" if mine.get(k) is None else f"{mine[k]:.3f}"
                out.append(f"| {k} | {ref['figures'][k]:.3f} | {yours} |")
    iso = result.get("isolation") or {}
    if iso.get("reduced"):
        out += ["", "> Isolation was reduced for this run: " + "; ".join(iso["reasons"])]
    return "\n".join(out) + "\n"


def write_reports(job) -> None:
    out = job.out_dir
    result = job.result
    (out / "result.json").write_text(json.dumps(result, indent=2, sort_keys=True))
    md = _markdown(result)
    (out / "feedback.md").write_text(md)
    if job.executed_notebook.is_file():
        shutil.copyfile(job.executed_notebook, out / "executed.ipynb")
    try:
        plots = _plots(job)
    except Exception as exc:
        plots = []
        result.setdefault("messages", []).append(f"plots could not be drawn: {exc}")
    body = [
        "<!doctype html><meta charset='utf-8'><title>fullcycle feedback</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}"
        ".lost{color:#a00}</style>",
    ]
    import markdown_it

    # Learner text (problems echo what their code returned) is never HTML: html off escapes it.
    body.append(markdown_it.MarkdownIt("commonmark", {"html": False}).enable("table").render(md))
    for title, png in plots:
        body.append(
            f"<h3>{html.escape(title)}</h3><img alt='{html.escape(title)}' src='data:image/png;base64,{png}'>"
        )
    (out / "feedback.html").write_text("\n".join(body))
