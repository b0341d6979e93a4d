"""Project briefs: every number a brief shows, generated from its spec.

A brief (``projects/<name>/README.md``) explains a capstone in words; the
numbers (the setting and the rubric) come from ``project.yaml`` through the
tables made here, written between markers::

    <!-- rubric:start -->
    (generated)
    <!-- rubric:end -->

:func:`sync_brief` rewrites every marked section from the spec; a test checks
that each shipped brief is up to date, so a brief cannot contradict its spec.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from fullcycle.exceptions import SpecError

__all__ = ["SECTIONS", "render_brief", "rubric_table", "setting_table", "sync_brief"]

_NOTE = (
    "<!-- generated from project.yaml by fullcycle.brief.sync_brief: edit the spec, not this -->"
)
_SECTION = re.compile(r"<!-- ([a-z_]+):start -->\n(.*?)<!-- \1:end -->", re.DOTALL)


def _num(x: float) -> str:
    return f"{x:g}"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def rubric_table(spec) -> str:
    """The rubric of ``spec`` as a Markdown table, with the total points.

    One row per check, in the spec's order: its id, the figure it reads and
    what that figure measures (from :mod:`fullcycle.metrics.registry`), the bar
    for full points, where partial credit starts, and the points.
    """
    from fullcycle.metrics.registry import figure

    rows = [
        "| Check | Figure | What is measured | Full points at | Partial credit from | Points |",
        "|---|---|---|---:|---:|---:|",
    ]
    for c in spec.rubric:
        sign = "≥" if c.higher_is_better else "≤"
        partial = "—" if c.partial_from is None else _num(c.partial_from)
        rows.append(
            f"| `{c.id}` | `{c.metric}` | {_cell(figure(c.metric).description)} | "
            f"{sign} {_num(c.bar)} | {partial} | {_num(c.points)} |"
        )
    total = sum(c.points for c in spec.rubric)
    rows += [
        "",
        f"Total: {_num(total)} points. Between the partial-credit value and the bar, the "
        "points grow in proportion; a figure that could not be measured earns none, and the "
        "feedback says why.",
    ]
    return "\n".join(rows)


def _days(spec, first: int, last: int | None = None) -> str:
    """``days 115–121 (2018-07-25 to 2018-07-31)``, or one day; dates when the data has them."""
    text = f"day {first}" if last is None else f"days {first}–{last}"
    start = spec.data.params.get("start_date")
    if start is not None:
        a, b = (pd.Timestamp(start) + pd.Timedelta(days=d) for d in (first, last or first))
        text += f" ({a:%Y-%m-%d})" if last is None else f" ({a:%Y-%m-%d} to {b:%Y-%m-%d})"
    return text


def _value(v) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return _num(v)
    return str(v)


def _params(params: dict) -> str:
    return ", ".join(f"{k} {_value(v)}" for k, v in params.items())


def setting_table(spec) -> str:
    """The data, split, value model, gate and contract of ``spec`` as a Markdown table."""
    d, s, p = spec.data, spec.data.split, spec.prediction
    source = f"`{d.source}`" + (f" under `{d.path}`" if d.path else "")
    rows = [
        "| Setting | Value |",
        "|---|---|",
        f"| Data | {_cell(source + (': ' + _params(d.params) if d.params else ''))} |",
    ]
    if d.source == "interaction_simulator":
        start, end = s.score_start_day, s.score_start_day + s.score_days - 1
        rows.append(f"| History | every day before {_days(spec, start)} |")
        rows.append(
            f"| Scoring window | {_days(spec, start, end)}: each user who buys something new "
            f"in it, against the catalogue of its first day; popularity over the "
            f"{s.popularity_days} days before |"
        )
        scoring = None
    else:
        train_end = s.train_start_day + s.train_days - 1
        test_start = train_end + 1 + s.delay_days
        test_end = test_start + s.test_days - 1
        rows.append(f"| Training window | {_days(spec, s.train_start_day, train_end)} |")
        rows.append(f"| Label delay | {s.delay_days} days (not trained on) |")
        scoring = _days(spec, test_start, test_end)
    if scoring is not None and s.drop_known_compromised:
        lag = s.delay_days + (1 if s.known_compromised == "handbook" else 0)
        scoring += (
            f"; a card with a fraud since the training start on a day ≤ d − {lag} is "
            f"known to be compromised and leaves scoring day d (`{s.known_compromised}` rule)"
        )
    if scoring is not None:
        rows.append(f"| Scoring window | {scoring} |")
    if d.drift is not None:
        rows.append(
            f"| Drift variant | scenario {d.drift.scenario} from {_days(spec, d.drift.start_day)} |"
        )
    rows.append(
        f"| Prediction | one `{p.output_column}` in [{_num(p.score_range[0])}, "
        f"{_num(p.score_range[1])}] per `{p.id_column}` |"
    )
    value = spec.business_value
    rows.append(f"| Value model | `{value.model}`: {_cell(_params(value.params))} |")
    g = spec.gate
    rows.append(
        f"| Champion gate | ROC AUC ≥ {_num(g.min_roc_auc)} and net value ≥ "
        f"{_num(g.min_value_vs_baseline)}× the rule baseline's |"
    )
    if spec.service is not None:
        c = spec.service.contract
        rows.append(
            f"| Service | `GET {c.health_path}`, `POST {c.score_path}` (one), "
            f"`POST {c.batch_path}` (up to {spec.service.max_batch}) |"
        )
    return "\n".join(rows)


#: The sections a brief may mark, and the function that writes each.
SECTIONS = {"setting": setting_table, "rubric": rubric_table}


def render_brief(text: str, spec, where: str = "the brief") -> str:
    """``text`` with every marked section regenerated from ``spec``.

    Raises
    ------
    SpecError
        When ``text`` has no rubric section, a section twice, or an unknown one.
    """
    found = [m.group(1) for m in _SECTION.finditer(text)]
    unknown = sorted(set(found) - set(SECTIONS))
    twice = sorted({n for n in found if found.count(n) > 1})
    if unknown or twice or "rubric" not in found:
        problem = (
            f"unknown section(s) {unknown}; the sections are {sorted(SECTIONS)}"
            if unknown
            else f"section(s) {twice} appear more than once"
            if twice
            else "it has no rubric section"
        )
        raise SpecError(
            f"{where}: {problem}. Mark each generated table by a line `<!-- NAME:start -->` "
            "and a line `<!-- NAME:end -->`."
        )

    def fill(m: re.Match) -> str:
        name = m.group(1)
        return f"<!-- {name}:start -->\n{_NOTE}\n\n{SECTIONS[name](spec)}\n\n<!-- {name}:end -->"

    return _SECTION.sub(fill, text)


def sync_brief(spec, path: str | Path | None = None, *, check: bool = False) -> bool:
    """Regenerate the marked sections of a brief (default: ``README.md`` beside the spec).

    Parameters
    ----------
    spec : ProjectSpec
        The loaded spec (:func:`fullcycle.spec.find_project`).
    path : path, optional
        The brief; default ``spec.root / "README.md"``.
    check : bool
        Only compare: leave the file as it is.

    Returns
    -------
    bool
        True when the brief was (with ``check``: would be) changed.
    """
    if path is None:
        if spec.root is None:
            raise SpecError("the spec was not loaded from a folder; give the brief's path")
        path = spec.root / "README.md"
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: no such brief; a project's brief is projects/<name>/README.md")
    text = path.read_text(encoding="utf-8")
    new = render_brief(text, spec, str(path))
    if new == text:
        return False
    if not check:
        path.write_text(new, encoding="utf-8")
    return True
