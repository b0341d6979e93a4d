"""The figure registry: every figure the grader measures, the names a rubric may use.

A *figure* is one number the grader puts in a grading's metrics: a technical
metric of the scores (``roc_auc``), a business figure (``value_vs_baseline``),
or a measurement of one stage of the learner's system (``service.p99_ms``,
``features.parity``). Each is registered once with a name, a description a
learner can read and a direction (is higher better?). A project spec's rubric
may only name registered figures, so a typo is refused when the spec loads
instead of costing every learner the point.

Two kinds of names stand for a family of figures:

- a *parametrised* name holds ``@K`` (``card_precision@K``) and stands for
  every positive integer ``K`` (``card_precision@100``);
- a *relation* is a suffix that makes a figure relative to another result on
  the same hidden world: ``roc_auc.vs_reference`` is ``roc_auc`` relative to the
  reference solution's. A relative figure keeps its base figure's direction.

>>> figure("card_precision@100").higher_is_better
True
>>> figure("service.p99_ms").higher_is_better
False
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from fullcycle.exceptions import ConfigError

__all__ = [
    "Figure",
    "figure",
    "figure_names",
    "is_figure",
    "register_figure",
    "register_relation",
]

_NAME = re.compile(r"^[a-z][a-z0-9_]*(@K)?(\.[a-z][a-z0-9_]*(@K)?)*$")
_K = re.compile(r"@([1-9][0-9]*)")


@dataclass(frozen=True)
class Figure:
    """One registered figure (or, for a parametrised or relative name, one of its family).

    Attributes
    ----------
    name : str
        The name a rubric uses (``card_precision@100``; ``card_precision@K`` in
        the registry itself).
    description : str
        What is measured, in words a learner reads in the brief and the feedback.
    higher_is_better : bool
        The direction: True when a larger value is the better result.
    requires : str or None
        The part of a project spec without which the grader cannot measure the
        figure: ``"metrics"`` (a technical metric the spec must list in
        ``metrics``), ``"service"`` or ``"monitoring"`` (the spec's block of that
        name); None when it needs nothing the spec can lack.
    metric : str or None
        For ``requires="metrics"``: the entry of the spec's ``metrics`` it needs
        (``card_precision@100`` for ``baseline_card_precision@100``).
    """

    name: str
    description: str
    higher_is_better: bool = True
    requires: str | None = None
    metric: str | None = None


_FIGURES: dict[str, Figure] = {}
_RELATIONS: dict[str, str] = {}
_REQUIRES = (None, "metrics", "service", "monitoring")


def register_figure(
    name: str,
    description: str,
    higher_is_better: bool = True,
    requires: str | None = None,
    *,
    replace: bool = False,
) -> Figure:
    """Register the figure ``name`` so that a rubric may name it.

    Parameters
    ----------
    name : str
        Lower-case words with ``_``, sections joined by ``.`` (``service.p99_ms``);
        ``@K`` after a word makes it parametrised (``card_precision@K``).
    description : str
        What is measured; ``{k}`` in it is replaced by ``K`` of a parametrised name.
    higher_is_better : bool
        The figure's direction.
    requires : {None, "metrics", "service", "monitoring"}
        What a spec must hold for the grader to measure the figure.
    replace : bool
        Replace an existing figure of the same name with a different definition
        (registering the same definition twice is always allowed).

    Returns
    -------
    Figure
    """
    if not _NAME.match(name):
        raise ConfigError(
            f"figure name {name!r} is not lower-case words (a-z, 0-9, _) joined by '.', "
            "with an optional '@K' after a word"
        )
    if requires not in _REQUIRES:
        raise ConfigError(f"figure {name!r}: requires must be one of {list(_REQUIRES)}")
    if not description.strip():
        raise ConfigError(f"figure {name!r}: give a description a learner can read")
    new = Figure(name, description.strip(), bool(higher_is_better), requires)
    old = _FIGURES.get(name)
    if old is not None and old != new and not replace:
        raise ConfigError(
            f"figure {name!r} is already registered as {old}; pass replace=True to redefine it"
        )
    _FIGURES[name] = new
    return new


def register_relation(suffix: str, description: str, *, replace: bool = False) -> None:
    """Make ``<figure>.<suffix>`` a figure for every registered figure.

    ``description`` says how the figure is made relative; ``{figure}`` in it is
    replaced by the base figure's description (for example ``"{figure}, divided by
    the reference solution's on the same hidden world"``).
    """
    if not re.match(r"^[a-z][a-z0-9_]*$", suffix):
        raise ConfigError(f"relation {suffix!r} must be one lower-case word (a-z, 0-9, _)")
    if suffix in _RELATIONS and _RELATIONS[suffix] != description and not replace:
        raise ConfigError(
            f"relation {suffix!r} is already registered; pass replace=True to redefine it"
        )
    _RELATIONS[suffix] = description


def figure_names() -> list[str]:
    """Every registered name, sorted (parametrised ones with ``@K``), then the relations."""
    return sorted(_FIGURES) + [f"<figure>.{s}" for s in sorted(_RELATIONS)]


def _resolve(name: str) -> Figure | None:
    base, suffix = name, None
    head, _, tail = name.rpartition(".")
    if head and tail in _RELATIONS and name not in _FIGURES:
        base, suffix = head, tail
    if "@K" in base:
        return None  # the family's own name is not a figure; a rubric names one K
    ks = set(_K.findall(base))
    found = _FIGURES.get(base)
    if found is None and len(ks) == 1:
        found = _FIGURES.get(_K.sub("@K", base))
    if found is None:
        return None
    description = found.description.replace("{k}", ks.pop() if ks else "K")
    if suffix is not None:
        description = _RELATIONS[suffix].replace("{figure}", description)
    metric = base.removeprefix("baseline_") if found.requires == "metrics" else None
    return Figure(name, description, found.higher_is_better, found.requires, metric)


def figure(name: str) -> Figure:
    """The registered figure ``name`` (``K`` and relations resolved).

    Raises
    ------
    ConfigError
        When no figure has that name; the message gives the closest known names.
    """
    found = _resolve(name)
    if found is None:
        raise ConfigError(f"unknown figure {name!r}; {_suggest(name)}")
    return found


def is_figure(name: str) -> bool:
    """Whether ``name`` is a registered figure (the grader checks what it measures with this)."""
    return _resolve(name) is not None


def _suggest(name: str) -> str:
    if "@K" in name and _resolve(name.replace("@K", "@100")) is not None:
        return f"name one K, for example {name.replace('@K', '@100')!r}"
    k = (_K.findall(name) or ["K"])[0]
    plain = [n.replace("@K", f"@{k}") for n in _FIGURES]
    candidates = plain + [f"{n}.{r}" for n in plain for r in _RELATIONS]
    close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.6)
    if close:
        return "did you mean " + " or ".join(repr(c) for c in close) + "?"
    return f"the known figures are {figure_names()}"


# Built-in figures: what ``fullcycle.evaluate.Scorecard.metrics`` and the grader's
# steps (``grading/pipeline.py``) put in a grading's metrics.
_TECHNICAL = {
    "roc_auc": "ROC AUC of the scores on the hidden scoring window",
    "average_precision": "average precision (area under the precision-recall curve) of the scores",
    "card_precision@K": (
        "card precision@{k}: compromised cards among the {k} cards reviewed each day, "
        "divided by {k}, averaged over the scoring days"
    ),
    "ndcg@K": "NDCG@{k} of each group's ranking, averaged over the groups with a positive",
}
for _name, _text in _TECHNICAL.items():
    register_figure(_name, _text, requires="metrics")
    register_figure(f"baseline_{_name}", f"the rule baseline's {_text}", requires="metrics")

for _name, _text in {
    "net_value": "net value of the model's decisions over the scoring window (the value model)",
    "net_value_per_day": "net value of the model's decisions per scoring day",
    "baseline_net_value": "net value of the rule baseline's decisions over the scoring window",
    "oracle_net_value": "net value of perfect decisions (the oracle) over the scoring window",
    "value_vs_baseline": "net value divided by the rule baseline's (times the baseline)",
    "share_of_oracle": "net value as a share of the oracle's (the achievable value)",
}.items():
    register_figure(_name, _text)

for _name, _text, _higher in (
    (
        "service.contract",
        "1 if the batch endpoint answers valid rows as the contract says (status 200, one "
        "score per id sent, in order, within the score range), else 0",
        True,
    ),
    (
        "service.consistency",
        "share of sampled rows whose served score equals the offline prediction",
        True,
    ),
    ("service.bad_input_4xx", "share of malformed requests answered with a 4xx", True),
    ("service.p50_ms", "median latency of single scoring requests, in milliseconds", False),
    (
        "service.p99_ms",
        "99th percentile latency of single scoring requests, in milliseconds",
        False,
    ),
):
    register_figure(_name, _text, _higher, requires="service")

register_figure(
    "monitoring.flags_drift",
    "1 if the drift check flags a hidden batch that an upstream fault changed, else 0",
    requires="monitoring",
)
register_figure(
    "monitoring.quiet_on_clean",
    "1 if the drift check stays quiet on a hidden ordinary batch, else 0",
    requires="monitoring",
)

# The stage checks: each stage of the learner's system, judged on hidden data.
for _name, _text in {
    "contract.faulty_quarantined": "share of the hidden export's faulty rows quarantined",
    "contract.good_kept": "share of the hidden export's good rows kept as valid",
    "features.leakage_free": (
        "share of earlier rows whose features do not change when labels younger than the delay "
        "are flipped and future rows appended"
    ),
    "features.past_only": (
        "share of keys (items) whose feature as of a hidden day is unchanged when the events of "
        "that day and later are added"
    ),
    "features.parity": (
        "share of a replayed hidden day whose online features equal the offline ones "
        "(scores: service.consistency)"
    ),
    "policy.net_value": "net value of the daily reviews the decision policy chose",
    "policy.value_vs_top_k": (
        "net value of the policy's reviews minus a fixed top-k's, as a share of the oracle's "
        "(0 = as good as top-k)"
    ),
    "policy.share_of_oracle": "net value of the daily reviews as a share of the oracle's",
    "decision.exclusions_respected": (
        "share of hidden candidate groups (e.g. a user's items) where every row the project's "
        "rules exclude (e.g. bought, out of stock) gets a final score below every allowed row's"
    ),
    "decision.order_kept": (
        "share of hidden candidate groups where the allowed rows' final scores keep the order "
        "of the model scores the decision was given"
    ),
    "monitoring.flags_decay": (
        "1 if the decay check flags a hidden window whose performance fell, else 0"
    ),
    "monitoring.quiet_on_stable": (
        "1 if the decay check stays quiet on a hidden window whose performance held, else 0"
    ),
    "retraining.correct_decisions": (
        "share of hidden champion/challenger cases where the promotion rule decides right"
    ),
}.items():
    register_figure(_name, _text)

register_relation(
    "vs_reference",
    "{figure}, divided by the reference solution's on the same hidden world "
    "(1 = as good as the reference)",
)
