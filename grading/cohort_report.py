"""The cohort report: one HTML page with plots for the instructor, one CSV for the LMS.

:func:`write_cohort_report` reads the *current* result of each learner (the
content of their ``result.json``, see :func:`grading.pipeline.build_result`)
and writes two files:

``cohort.html``
    One self-contained page that opens offline: counts by status, the score
    distribution, the pass rate of each rubric check, where the cohort
    struggles, the submissions a person should look at, and a table of every
    learner with a link to their ``feedback.html``. Plots are inline PNG
    (``data:`` URLs drawn with Matplotlib's Agg canvas); there is no script,
    and a Content-Security-Policy forbids any (``default-src 'none'``), so the
    page loads nothing from anywhere. It is rendered from
    ``grading/templates/cohort.html.j2`` by :func:`grading.text.environment`
    (autoescaping, control characters removed): learner ids,
    assignment names and reasons (which echo what learner code printed) are
    text, never markup. Feedback links are relative paths, percent-encoded;
    a link that is not a relative path (``/x``, ``//host``, ``javascript:``)
    is refused and the row says so.
``cohort.csv``
    One row per learner for an LMS, RFC 4180 (``csv`` module, CRLF, UTF-8
    without BOM) with a stable column order: :data:`CSV_COLUMNS`, then one
    ``check:<id>`` column per rubric check (its points), in rubric order.
    Spreadsheet formula injection is neutralised: a text cell (learner,
    assignment, status, reason) that starts with ``=``, ``+``, ``-``, ``@``,
    a tab or a carriage return gets a leading apostrophe, so Excel, LibreOffice
    and Google Sheets show it as text instead of evaluating it.

A rubric line *passed* when its points equal its max points, is *partial*
when it earned some but not all, *failed* when it was measured and earned
nothing, and *not measured* when the figure had no value (the submission
stopped before it, a probe could not run). Lines the grading config turned
off weigh nothing (``max_points`` 0) and are left out of the pass rates. The
pass rate of a check is passed / lines that weigh something; "where the
cohort struggles" lists the :data:`STRUGGLES` checks with the lowest pass
rate (below 1), each with the feedback most often given for it.

Implausible results (rules of :func:`find_implausible`; each names a rule id):

``above_reference``
    A figure of the learner's is far above the reference solution's on the
    same hidden world (``result["metrics"]`` against
    ``result["reference"]["figures"]``) by more than its margin in
    :data:`ABOVE_REFERENCE` (ROC AUC by more than 0.05). The reference is a
    careful solution; beating it by that much is more often a leak of the
    hidden labels than a better model.
``fast_full_marks``
    Full marks with a notebook run shorter than :data:`FAST_SHARE` (a fifth)
    of the cohort's median run time (median over at least
    :data:`MIN_RUNS_FOR_MEDIAN` runs that finished): the work of training
    was perhaps not done.
``same_submission``
    Two or more learners handed in a submission with the same SHA-256 for the
    same assignment: a copy (or a shared starter left unchanged).
``reduced_isolation``
    The result was graded with reduced isolation (the status ends with
    ``:reduced_isolation``, or ``isolation.reduced`` is true): learner code
    may have seen what it should not.
``high_score_failed_notebook``
    At least :data:`HIGH_WITHOUT_NOTEBOOK` percent of the points although the
    notebook did not finish or the grading did not end as ``graded``. In the
    fraud rubric the checks that need the notebook's predictions carry half
    the points; the stage probes alone cannot reach this.
``points_out_of_range``
    Points below 0 or above the max points: a grader fault.
"""

from __future__ import annotations

import base64
import csv
import io
import math
import re
import statistics
import urllib.parse
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = [
    "ABOVE_REFERENCE",
    "CSV_COLUMNS",
    "CohortReport",
    "Finding",
    "find_implausible",
    "write_cohort_report",
]

#: Base statuses in the order the header shows them.
STATUSES = (
    "graded",
    "rejected",
    "notebook_failed",
    "invalid_predictions",
    "grader_error",
    "timeout",
    "grader_limit",
)
REDUCED = "reduced_isolation"
#: Figure -> how far above the reference's figure is implausible (absolute).
ABOVE_REFERENCE = {"roc_auc": 0.05, "average_precision": 0.10}
#: A full-marks run shorter than this share of the cohort's median run time is implausible.
FAST_SHARE = 0.2
MIN_RUNS_FOR_MEDIAN = 3
#: Percent of the points that is implausible without a notebook that finished.
HIGH_WITHOUT_NOTEBOOK = 60.0
#: How many checks "where the cohort struggles" lists.
STRUGGLES = 5
#: The fixed CSV columns; one ``check:<id>`` column per rubric check follows ``percent``.
CSV_COLUMNS = (
    "learner",
    "assignment",
    "status",
    "isolation_reduced",
    "points",
    "max_points",
    "percent",
    "reason",
    "submission_sha256",
    "graded_at",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_REASON_CHARS = 400
_EPS = 1e-9
_COLOURS = {
    "graded": "#2b7bba",
    "rejected": "#7f7f7f",
    "notebook_failed": "#d62728",
    "invalid_predictions": "#ff7f0e",
    "grader_error": "#9467bd",
    "timeout": "#8c564b",
    "grader_limit": "#e377c2",
}


@dataclass(frozen=True)
class Finding:
    """A result a person should look at: which rule, which learners, and why."""

    rule: str
    learners: tuple[str, ...]
    why: str


@dataclass(frozen=True)
class CohortReport:
    """The files written by :func:`write_cohort_report` and the figures they show."""

    html: Path
    csv: Path
    summary: dict = field(default_factory=dict)


# ---- reading a result ------------------------------------------------------------------


def _learner(result: dict) -> str:
    sub = result.get("submission") or {}
    who = sub.get("learner") or sub.get("name") or "(unknown)"
    return str(who)


def _assignment(result: dict) -> str:
    return str((result.get("submission") or {}).get("assignment") or "")


def _status(result: dict) -> tuple[str, bool]:
    """The base status and whether isolation was reduced (suffix or ``isolation.reduced``)."""
    base, *flags = str(result.get("status") or "grader_error").split(":")
    reduced = REDUCED in flags or bool((result.get("isolation") or {}).get("reduced"))
    return base, reduced


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _score(result: dict) -> tuple[float, float, float | None]:
    s = result.get("score") or {}
    points = _number(s.get("points")) or 0.0
    max_points = _number(s.get("max_points")) or 0.0
    percent = round(100.0 * points / max_points, 1) if max_points > 0 else None
    return points, max_points, percent


def _run_seconds(result: dict) -> float | None:
    """Seconds of a notebook run that finished, else None."""
    ex = result.get("execution") or {}
    if ex.get("status") != "ok":
        return None
    return _number(ex.get("seconds"))


def _notebook_finished(result: dict) -> bool:
    return (result.get("execution") or {}).get("status") == "ok"


def _lines(result: dict) -> list[dict]:
    return [line for line in result.get("rubric") or [] if isinstance(line, dict) and "id" in line]


def _outcome(line: dict) -> str | None:
    """passed | partial | failed | not_measured, or None for a line that weighs nothing."""
    max_points = _number(line.get("max_points")) or 0.0
    if max_points <= 0:
        return None
    points = _number(line.get("points")) or 0.0
    if points >= max_points - _EPS:
        return "passed"
    if points > _EPS:
        return "partial"
    return "failed" if line.get("measured") else "not_measured"


def _reason(result: dict) -> str:
    """What stopped the grading, else which checks lost points."""
    messages = [str(m) for m in result.get("messages") or [] if m]
    base, _ = _status(result)
    if messages:
        text = "; ".join(messages)
    elif base != "graded":
        text = base.replace("_", " ") + " (no message was recorded)"
    else:
        lost = [
            str(line["id"]) for line in _lines(result) if _outcome(line) not in (None, "passed")
        ]
        text = "points lost on: " + ", ".join(lost) if lost else ""
    return _clip(text)


def _clip(text: str, limit: int = _REASON_CHARS) -> str:
    text = text.replace("\x00", "")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _check_ids(results: list[dict]) -> list[str]:
    """Rubric check ids in rubric order (first seen first)."""
    seen: dict[str, None] = {}
    for r in results:
        for line in _lines(r):
            seen.setdefault(str(line["id"]), None)
    return list(seen)


# ---- implausible results ---------------------------------------------------------------


def find_implausible(results: list[dict]) -> list[Finding]:
    """The results a person should look at, by the rules of this module's docstring.

    Parameters
    ----------
    results : list of dict
        The current result of each learner (``result.json`` content).

    Returns
    -------
    list of Finding
        In rule order, then learner order; a copied submission is one finding
        naming every learner who handed it in.
    """
    found: list[Finding] = []
    runs = [s for r in results if (s := _run_seconds(r)) is not None and s > 0]
    median = statistics.median(runs) if len(runs) >= MIN_RUNS_FOR_MEDIAN else None
    for r in sorted(results, key=lambda r: (_learner(r), _assignment(r))):
        who = _learner(r)
        base, reduced = _status(r)
        points, max_points, percent = _score(r)
        metrics = r.get("metrics") or {}
        ref = (r.get("reference") or {}).get("figures") or {}
        for figure, margin in ABOVE_REFERENCE.items():
            mine, theirs = _number(metrics.get(figure)), _number(ref.get(figure))
            if mine is not None and theirs is not None and mine > theirs + margin:
                why = (
                    f"{figure} {mine:.3f} against the reference solution's {theirs:.3f} on the"
                    f" same hidden world (more than {margin:g} above it)"
                )
                found.append(Finding("above_reference", (who,), why))
        seconds = _run_seconds(r)
        full = max_points > 0 and points >= max_points - _EPS
        if full and median and seconds is not None and seconds < FAST_SHARE * median:
            why = (
                f"full marks with a notebook run of {seconds:.1f} s, against a cohort median"
                f" of {median:.1f} s"
            )
            found.append(Finding("fast_full_marks", (who,), why))
        if reduced:
            found.append(Finding(REDUCED, (who,), "graded with reduced isolation"))
        stopped = base != "graded" or not _notebook_finished(r)
        if percent is not None and percent >= HIGH_WITHOUT_NOTEBOOK and stopped:
            how = "status " + base if base != "graded" else "a notebook that did not finish"
            found.append(
                Finding(
                    "high_score_failed_notebook", (who,), f"{percent:g}% of the points with {how}"
                )
            )
        if points < -_EPS or points > max_points + _EPS:
            why = f"{points:g} points out of {max_points:g}"
            found.append(Finding("points_out_of_range", (who,), why))
    by_hash: dict[tuple[str, str], set[str]] = {}
    for r in results:
        sha = str((r.get("submission") or {}).get("sha256") or "")
        if sha:
            by_hash.setdefault((_assignment(r), sha), set()).add(_learner(r))
    for (assignment, sha), learners in sorted(by_hash.items()):
        if len(learners) > 1:
            where = f" for {assignment}" if assignment else ""
            why = f"{len(learners)} learners handed in the same submission{where} (sha256 {sha[:12]}…)"
            found.append(Finding("same_submission", tuple(sorted(learners)), why))
    order = {
        rule: i
        for i, rule in enumerate(
            (
                "above_reference",
                "fast_full_marks",
                "same_submission",
                REDUCED,
                "high_score_failed_notebook",
                "points_out_of_range",
            )
        )
    }
    return sorted(found, key=lambda f: (order.get(f.rule, len(order)), f.learners))


# ---- figures of the cohort ------------------------------------------------------------


def _check_stats(results: list[dict], ids: list[str]) -> list[dict]:
    stats = []
    for cid in ids:
        counts = Counter()
        reasons = Counter()
        for r in results:
            for line in _lines(r):
                if str(line["id"]) != cid:
                    continue
                outcome = _outcome(line)
                if outcome is None:
                    continue
                counts[outcome] += 1
                if outcome != "passed" and line.get("feedback"):
                    reasons[str(line["feedback"])] += 1
        weighed = sum(counts.values())
        reason, times = reasons.most_common(1)[0] if reasons else ("", 0)
        stats.append(
            {
                "id": cid,
                "weighed": weighed,
                "passed": counts["passed"],
                "partial": counts["partial"],
                "failed": counts["failed"],
                "not_measured": counts["not_measured"],
                "pass_rate": round(counts["passed"] / weighed, 4) if weighed else None,
                "common_reason": _clip(reason),
                "common_reason_count": times,
            }
        )
    return stats


def _png(fig):
    """The figure as base64 PNG, marked safe: the grader drew it (only [A-Za-z0-9+/=])."""
    from markupsafe import Markup

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    return Markup(base64.b64encode(buf.getvalue()).decode("ascii"))


def _figure(width: float, height: float):
    """A Matplotlib figure on the Agg canvas, without pyplot's global state."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def _plots(rows: list[dict], stats: list[dict]) -> list[dict]:
    import numpy as np

    plots = []
    scored = [r for r in rows if r["percent_value"] is not None]
    if scored:
        fig = _figure(7, 3.5)
        ax = fig.add_subplot()
        bins = np.linspace(0, 100, 21)
        present = [s for s in STATUSES if any(r["base"] == s for r in scored)]
        present += sorted({r["base"] for r in scored} - set(present))
        ax.hist(
            [[r["percent_value"] for r in scored if r["base"] == s] for s in present],
            bins=bins,
            stacked=True,
            label=present,
            color=[_COLOURS.get(s, "#bcbd22") for s in present],
        )
        median = statistics.median(r["percent_value"] for r in scored)
        ax.axvline(median, color="black", ls=":", label=f"median {median:.0f}%")
        ax.set(xlabel="percent of the points", ylabel="learners", xlim=(0, 100))
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
        plots.append(
            {
                "id": "score-distribution",
                "title": "Score distribution",
                "alt": "Histogram of the learners' percent of the points, by status",
                "png": _png(fig),
            }
        )
    weighed = [s for s in stats if s["weighed"]]
    if weighed:
        fig = _figure(7.5, 0.35 * len(weighed) + 1.4)
        ax = fig.add_subplot()
        names = [s["id"] for s in weighed][::-1]
        left = np.zeros(len(names))
        parts = (
            ("passed", "#2ca02c"),
            ("partial", "#bcbd22"),
            ("failed", "#d62728"),
            ("not_measured", "#c7c7c7"),
        )
        for key, colour in parts:
            share = np.array([s[key] / s["weighed"] for s in weighed][::-1])
            ax.barh(names, share, left=left, color=colour, label=key.replace("_", " "))
            left += share
        ax.set(xlabel="share of the learners", xlim=(0, 1))
        ax.legend(fontsize="small", ncols=4, loc="lower center", bbox_to_anchor=(0.5, 1.0))
        plots.append(
            {
                "id": "pass-rate",
                "title": "Pass rate per rubric check",
                "alt": "Share of learners who passed, partly passed, failed or were not"
                " measured on each rubric check",
                "png": _png(fig),
            }
        )
    timed = [r for r in rows if r["seconds"] is not None and r["percent_value"] is not None]
    if timed:
        fig = _figure(6, 3.5)
        ax = fig.add_subplot()
        ax.scatter([r["seconds"] for r in timed], [r["percent_value"] for r in timed], s=14)
        ax.set(xlabel="notebook run (s)", ylabel="percent of the points", ylim=(-2, 102))
        plots.append(
            {
                "id": "time-vs-score",
                "title": "Notebook run time against score",
                "alt": "Scatter plot of each finished notebook run's seconds against its score",
                "png": _png(fig),
            }
        )
    return plots


# ---- output helpers ------------------------------------------------------------------


_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")


def _href(link) -> str | None:
    """A relative link, percent-encoded; None for anything that is not a relative path."""
    if not link:
        return None
    text = str(link).replace("\\", "/")
    if text.startswith("/") or _SCHEME.match(text) or "\x00" in text:
        return None
    return urllib.parse.quote(text, safe="/")


def _cell(text) -> str:
    """A CSV text cell a spreadsheet will not evaluate as a formula."""
    text = "" if text is None else str(text).replace("\x00", "")
    return "'" + text if text.startswith(_FORMULA_START) else text


def _decimal(value: float | None) -> str:
    if value is None:
        return ""
    text = f"{round(value, 4):.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _rows(results: list[dict], links: dict, findings: list[Finding]) -> list[dict]:
    flags: dict[str, list[str]] = {}
    for f in findings:
        for who in f.learners:
            flags.setdefault(who, [])
            if f.rule not in flags[who]:
                flags[who].append(f.rule)
    rows = []
    for r in sorted(results, key=lambda r: (_learner(r), _assignment(r))):
        who, assignment = _learner(r), _assignment(r)
        base, reduced = _status(r)
        points, max_points, percent = _score(r)
        link = links.get((who, assignment), links.get(who))
        rows.append(
            {
                "learner": who,
                "assignment": assignment,
                "base": base,
                "reduced": reduced,
                "points": points,
                "max_points": max_points,
                "percent_value": percent,
                "score": f"{_decimal(points)} / {_decimal(max_points)}",
                "percent": "" if percent is None else f"{percent:g}%",
                "reason": _reason(r),
                "link": link,
                "href": _href(link),
                "flags": flags.get(who, []),
                "seconds": _run_seconds(r),
                "sha256": str((r.get("submission") or {}).get("sha256") or ""),
                "graded_at": str(r.get("graded_at") or ""),
                "check_points": {
                    str(line["id"]): _number(line.get("points")) for line in _lines(r)
                },
            }
        )
    return rows


def _write_csv(path: Path, rows: list[dict], ids: list[str]) -> list[str]:
    columns = [*CSV_COLUMNS[:7], *(f"check:{cid}" for cid in ids), *CSV_COLUMNS[7:]]
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, dialect="excel", quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
        w.writerow(columns)
        for row in rows:
            w.writerow(
                [
                    _cell(row["learner"]),
                    _cell(row["assignment"]),
                    _cell(row["base"]),
                    "true" if row["reduced"] else "false",
                    _decimal(row["points"]),
                    _decimal(row["max_points"]),
                    _decimal(row["percent_value"]),
                    *(_decimal(row["check_points"].get(cid)) for cid in ids),
                    _cell(row["reason"]),
                    _cell(row["sha256"]),
                    _cell(row["graded_at"]),
                ]
            )
    return columns


# ---- the report --------------------------------------------------------------------------


def write_cohort_report(
    results: list[dict],
    out_dir: str | Path,
    feedback_links: dict | None = None,
    title: str = "Cohort report",
) -> CohortReport:
    """Write ``cohort.html`` and ``cohort.csv`` for the current results of a cohort.

    Parameters
    ----------
    results : list of dict
        The current result of each learner (``result.json`` content, one per
        learner and assignment).
    out_dir : str or Path
        Where to write the two files (created if missing).
    feedback_links : dict, optional
        Learner id (or ``(learner, assignment)``) -> the path of their
        ``feedback.html`` relative to ``out_dir``. A link that is not a
        relative path is refused (the row says so, ``summary["links_refused"]``
        counts them).
    title : str
        The page's title.

    Returns
    -------
    CohortReport
        The paths of the two files and ``summary``: counts by status, the
        check statistics, the struggles, the implausible findings and the CSV
        columns.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = [r for r in results if isinstance(r, dict)]
    findings = find_implausible(results)
    rows = _rows(results, dict(feedback_links or {}), findings)
    ids = _check_ids(results)
    stats = _check_stats(results, ids)
    struggles = sorted(
        (s for s in stats if s["pass_rate"] is not None and s["pass_rate"] < 1),
        key=lambda s: (s["pass_rate"], s["id"]),
    )[:STRUGGLES]
    by_status = Counter(row["base"] for row in rows)
    statuses = [(s, by_status.get(s, 0)) for s in STATUSES]
    statuses += [(s, n) for s, n in sorted(by_status.items()) if s not in STATUSES]
    percents = [row["percent_value"] for row in rows if row["percent_value"] is not None]
    summary = {
        "learners": len(rows),
        "by_status": dict(statuses),
        "reduced_isolation": sum(row["reduced"] for row in rows),
        "median_percent": statistics.median(percents) if percents else None,
        "mean_percent": round(statistics.fmean(percents), 1) if percents else None,
        "checks": stats,
        "struggles": [s["id"] for s in struggles],
        "implausible": [asdict(f) for f in findings],
        "links_refused": sum(1 for row in rows if row["link"] and row["href"] is None),
    }
    csv_path = out / "cohort.csv"
    summary["columns"] = _write_csv(csv_path, rows, ids)
    from grading.text import environment

    html = (
        environment()
        .get_template("cohort.html.j2")
        .render(
            title=title,
            rows=rows,
            statuses=statuses,
            summary=summary,
            plots=_plots(rows, stats),
            struggles=struggles,
            findings=findings,
            rules_text={
                "above_reference": "far above the reference solution",
                "fast_full_marks": "full marks, very fast run",
                "same_submission": "same submission as another learner",
                REDUCED: "reduced isolation",
                "high_score_failed_notebook": "high score without a finished notebook",
                "points_out_of_range": "points out of range",
            },
            csv_name=csv_path.name,
        )
    )
    html_path = out / "cohort.html"
    html_path.write_text(html, encoding="utf-8")
    return CohortReport(html=html_path, csv=csv_path, summary=summary)
