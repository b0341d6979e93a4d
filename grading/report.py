"""Reports of a graded run: result.json for machines, feedback.md for nbgrader, feedback.html for people.

The feedback files are rendered from the templates ``grading/templates/feedback.md.j2`` and
``feedback.html.j2`` by :func:`grading.text.environment`, which escapes every learner string
(prediction ids, exception messages, problems, file names) for the file it lands in.
"""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
from markupsafe import Markup

from grading.text import environment, terminal_safe

__all__ = ["format_scorecard", "write_reports", "write_result_reports"]

_STAGE_TITLES = {
    "contract": "Data contract",
    "leakage": "Features: leakage",
    "as_of": "Features: as of a day",
    "parity": "Features: online and offline parity",
    "policy": "Decision policy",
    "decision": "Decision rules",
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
#: Items of one learner-made list (messages, problems) shown in the feedback.
_MAX_ITEMS = 20
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()  # one draw (bbox_inches="tight" would draw the figure twice)
    fig.savefig(buf, format="png", dpi=80)
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
        window = "public" if getattr(job.config, "public", False) else "hidden"
        plots.append((f"ROC and precision-recall on the {window} scoring window", _png(fig)))
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
    """The scorecard a terminal prints after grading.

    Learner text (messages) is printed through :func:`grading.text.terminal_safe`: one
    line each, no escape sequences, at most 300 characters.
    """
    s = result["score"]
    lines = [
        f"{terminal_safe(result['project'])}: {s['points']:g} / {s['max_points']:g} points"
        f" ({terminal_safe(result['status'])})",
    ]
    for m in result.get("messages", []):
        lines.append(f"  ! {terminal_safe(m, 300)}")
    iso = result.get("isolation") or {}
    if iso.get("reduced"):
        lines.append("  ! ISOLATION REDUCED: " + terminal_safe("; ".join(iso.get("reasons", []))))
    lines.append(f"  {'check':<26}{'value':>12}{'bar':>10}{'points':>12}")
    for line in result["rubric"]:
        v = line["value"]
        vs = "-" if v is None else f"{v:.3f}"
        pts = (
            "not measured" if _not_measured(line) else f"{line['points']:g}/{line['max_points']:g}"
        )
        lines.append(f"  {terminal_safe(line['id']):<26}{vs:>12}{line['bar']:>10g}{pts:>12}")
    return "\n".join(lines)


def _not_measured(line: dict) -> bool:
    return line.get("passed") is None and not line["max_points"]


def _on_public_data(result: dict) -> bool:
    """Whether ``result`` is a self-check's: graded on public data (the public seed), no secret."""
    import hashlib

    from grading.check import public_seed

    if ((result.get("reference") or {}).get("data")) == "public":
        return True
    seed = (result.get("provenance") or {}).get("seed_sha256")
    project = result.get("project")
    if not seed or not isinstance(project, str):
        return False
    return seed == hashlib.sha256(public_seed(project).encode()).hexdigest()


def _context(result: dict) -> dict:
    """What both feedback templates show, taken from ``result``; the templates escape it all.

    ``world`` words where the figures were measured: ``"hidden world"`` for a grading,
    ``"public data"`` for a learner's self-check (:mod:`grading.check`).
    """
    rubric = [{**line, "not_measured": _not_measured(line)} for line in result["rubric"]]
    problems = []
    for key, title in (("service", "Service"), ("monitoring", "Monitoring")):
        probe = result.get(key) or {}
        if probe.get("problems"):
            problems.append({"title": f"{title} problems", "problems": _few(probe["problems"])})
    for name, probe in (result.get("stages") or {}).items():
        if name == "drift":
            continue  # shown under Monitoring
        if probe.get("problems"):
            title = f"{_STAGE_TITLES.get(name, name)}: what to look at"
            problems.append({"title": title, "problems": _few(probe["problems"], 8)})
    reference = []
    ref = result.get("reference") or {}
    mine = result.get("metrics") or {}
    for k in _REFERENCE_SHOWN:
        if k in (ref.get("figures") or {}):
            reference.append({"figure": k, "reference": ref["figures"][k], "yours": mine.get(k)})
    iso = result.get("isolation") or {}
    return {
        "project": result["project"],
        "points": result["score"]["points"],
        "max_points": result["score"]["max_points"],
        "messages": _few(result.get("messages") or []),
        "rubric": rubric,
        "lost": [line for line in rubric if line.get("feedback")],
        "problems": problems,
        "reference": reference,
        "world": "public data" if _on_public_data(result) else "hidden world",
        "isolation": list(iso.get("reasons") or []) if iso.get("reduced") else [],
    }


def _few(items: list, n: int = _MAX_ITEMS) -> list:
    """At most ``n`` items of a learner-made list, and a line saying how many were left out."""
    items = list(items)
    if len(items) <= n:
        return items
    return items[:n] + [f"... and {len(items) - n} more"]


def write_reports(job) -> None:
    """Write result.json, feedback.md, feedback.html and the executed notebook into ``job.out_dir``.

    Both feedback files are rendered from ``grading/templates`` by
    :func:`grading.text.environment`: HTML autoescaped, Markdown neutralised.
    """
    if job.executed_notebook.is_file():
        shutil.copyfile(job.executed_notebook, job.out_dir / "executed.ipynb")
    try:
        plots = _plots(job)
    except Exception as exc:
        plots = []
        job.result.setdefault("messages", []).append(f"plots could not be drawn: {exc}")
    write_result_reports(job.result, job.out_dir, plots)


def write_result_reports(result: dict, out: Path, plots=()) -> None:
    """result.json, feedback.md and feedback.html of ``result`` (``plots``: (title, base64 PNG))."""
    out = Path(out)
    (out / "result.json").write_text(json.dumps(result, indent=2, sort_keys=True), encoding="utf-8")
    env = environment()
    context = _context(result)
    md = env.get_template("feedback.md.j2").render(context)
    (out / "feedback.md").write_text(md, encoding="utf-8")
    shown = [{"title": title, "src": _data_uri(png)} for title, png in plots]
    html = env.get_template("feedback.html.j2").render(context, plots=shown)
    (out / "feedback.html").write_text(html, encoding="utf-8")


def _data_uri(png: str) -> Markup:
    """A PNG the grader drew, as a ``data:`` URI (base64 holds no character HTML needs escaped)."""
    if not _BASE64.fullmatch(png):
        raise ValueError("a plot is not base64 text; it cannot be embedded in feedback.html")
    return Markup(f"data:image/png;base64,{png}")
