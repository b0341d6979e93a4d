"""Project specs: ``projects/<name>/project.yaml`` loaded into typed, validated settings.

A spec names everything a run and the grader need: the task, the data and its
time split, the prediction contract, the metrics, the business value model,
the gate a model must pass to become ``champion``, the kit and its stages, the
service contract, the monitoring timeline, and the rubric. Every part is typed
and closed (an unknown field is an error), and every rubric ``metric`` must be
a figure of :mod:`fullcycle.metrics.registry`. A wrong field is refused with a
:class:`~fullcycle.exceptions.SpecError` that names the field, what was wrong,
and what is allowed.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)
from pydantic import ValidationError as PydanticValidationError

from fullcycle.exceptions import ConfigError, SpecError
from fullcycle.kit import DEFAULT_STAGES, STAGES

__all__ = [
    "BusinessValueSpec",
    "DataSpec",
    "DriftSpec",
    "GateSpec",
    "InteractionSplitSpec",
    "KitSpec",
    "MonitoringSpec",
    "PredictionSpec",
    "RetrainingSpec",
    "ProjectSpec",
    "RubricCheck",
    "ServiceContractSpec",
    "ServiceSpec",
    "SplitSpec",
    "find_project",
    "load_spec",
]

TECHNICAL_METRICS = ("roc_auc", "average_precision", "card_precision@k")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _entry_point(value: str) -> str:
    """A kit entry point: ``module:attribute``, a module file of the kit and a name in it."""
    module, _, attr = value.partition(":")
    if not (module.isidentifier() and attr.isidentifier()):
        raise ValueError(
            f"an entry point must be 'module:attribute' (a module of the kit folder and a "
            f"name in it, e.g. 'model:build_model'), got {value!r}"
        )
    return value


def _day_range(value: tuple[int, int]) -> tuple[int, int]:
    if not 0 <= value[0] <= value[1]:
        raise ValueError(f"a day range is [first, last] with 0 <= first <= last, got {list(value)}")
    return value


EntryPoint = Annotated[str, AfterValidator(_entry_point)]
DayRange = Annotated[tuple[int, int], AfterValidator(_day_range)]


class SplitSpec(_Strict):
    """Training window, label delay and scoring window, in days."""

    train_start_day: Annotated[int, Field(ge=0)]
    train_days: Annotated[int, Field(ge=1)] = 7
    delay_days: Annotated[int, Field(ge=1)] = 7
    test_days: Annotated[int, Field(ge=1)] = 7
    drop_known_compromised: bool = True
    #: When a fraud is known on scoring day ``d``: ``handbook`` (on a day <= d - delay - 1,
    #: the handbook's published split) or ``through_delay`` (on a day <= d - delay, the
    #: label feed of ``fullcycle live``); see :data:`fullcycle.data.splits.KNOWN_COMPROMISED_RULES`.
    known_compromised: Literal["handbook", "through_delay"] = "handbook"


class InteractionSplitSpec(_Strict):
    """A recommender's scoring window: learn from every earlier day, score ``score_days`` days.

    See :func:`fullcycle.data.candidates.recommendation_window`.
    """

    score_start_day: Annotated[int, Field(ge=1)]
    score_days: Annotated[int, Field(ge=1)] = 7
    #: Days before the window over which an item's ``POPULARITY`` is counted.
    popularity_days: Annotated[int, Field(ge=1)] = 28


class DriftSpec(_Strict):
    """A scheduled pattern that starts inside the scoring window.

    ``scenario`` is the fraud simulator's scenario 4 (card testing) or one of the
    interaction simulator's drifts (:data:`fullcycle.data.interactions.DRIFTS`).
    """

    scenario: Literal[4, "trend", "catalogue"] = 4
    start_day: Annotated[int, Field(ge=0)]


def _split_kind(value) -> str:
    """Which split a ``data.split`` block is: a recommender's window names ``score_start_day``."""
    keys = value if isinstance(value, dict) else vars(value)
    return "InteractionSplitSpec" if "score_start_day" in keys else "SplitSpec"


#: Union members named in validation errors' locations, left out of the field paths shown.
_TAGS = {"SplitSpec", "InteractionSplitSpec"}


class DataSpec(_Strict):
    """Where the data comes from: the simulator (with parameters) or files."""

    source: Literal["fraud_simulator", "interaction_simulator", "files"]
    params: dict[str, Any] = Field(default_factory=dict)
    path: str | None = None
    seed: int = 0
    split: Annotated[
        Annotated[SplitSpec, Tag("SplitSpec")]
        | Annotated[InteractionSplitSpec, Tag("InteractionSplitSpec")],
        Discriminator(_split_kind),
    ]
    drift: DriftSpec | None = None

    @model_validator(mode="after")
    def _source_fields(self):
        if self.source == "files" and not self.path:
            raise ValueError(
                "data.source is 'files' but data.path is empty; give the folder or file"
            )
        if self.source == "fraud_simulator":
            from fullcycle.data.fraud import FraudSimulatorConfig

            allowed = set(FraudSimulatorConfig.__dataclass_fields__) - {"seed", "extra"}
            unknown = sorted(set(self.params) - allowed)
            if unknown:
                raise ValueError(
                    f"unknown simulator parameter(s) {unknown}; allowed: {sorted(allowed)}"
                )
        simulated_interactions = self.source == "interaction_simulator"
        if simulated_interactions:
            from fullcycle.data.interactions import InteractionSimulatorConfig

            allowed = set(InteractionSimulatorConfig.__dataclass_fields__)
            allowed -= {"seed", "drift", "drift_day"}
            unknown = sorted(set(self.params) - allowed)
            if unknown:
                raise ValueError(
                    f"unknown interaction simulator parameter(s) {unknown}; "
                    f"allowed: {sorted(allowed)}"
                )
        if simulated_interactions != isinstance(self.split, InteractionSplitSpec):
            raise ValueError(
                "data.split: an interaction_simulator project gives score_start_day "
                "(and score_days, popularity_days); other sources give train_start_day, "
                "train_days, delay_days and test_days"
            )
        if self.drift is not None and simulated_interactions != isinstance(
            self.drift.scenario, str
        ):
            raise ValueError(
                "data.drift.scenario: 'trend' or 'catalogue' for an interaction_simulator "
                "project, 4 (card testing) for the fraud simulator"
            )
        return self


class PredictionSpec(_Strict):
    """The prediction contract: one score per id, in a range."""

    id_column: str
    output_column: str
    score_range: tuple[float, float] = (0.0, 1.0)
    #: The label the grader keeps; never given to a submission.
    label_column: str = "TX_FRAUD"
    #: Every column the grader removes from the scoring rows it hands over.
    hidden_columns: list[str] = Field(default_factory=list)
    #: Ranking tasks: the column whose rows form one ranked list (e.g. the user).
    group_column: str | None = None

    @field_validator("score_range")
    @classmethod
    def _ordered(cls, v):
        if not v[0] < v[1]:
            raise ValueError(f"score_range must be [low, high] with low < high, got {list(v)}")
        return v


class BusinessValueSpec(_Strict):
    """A registered business value model and its parameters."""

    model: str
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known(self):
        from fullcycle.exceptions import ConfigError
        from fullcycle.metrics.business import get_value_model

        try:
            get_value_model(self.model, **self.params)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return self

    def build(self):
        from fullcycle.metrics.business import get_value_model

        return get_value_model(self.model, **self.params)


class GateSpec(_Strict):
    """What a model must reach to be registered as ``champion``."""

    min_roc_auc: Annotated[float, Field(ge=0, le=1)] = 0.5
    min_value_vs_baseline: float = 1.0


class RetrainingSpec(_Strict):
    """What the kit's promotion rule is handed: the figures of each side and the bars.

    The rule is called as ``rule(champion, challenger, margin, gate)``; each side
    is a dict with ``value`` (the money figure the decision is made in),
    ``gate`` (the quality figure a model needs) and ``size`` (how much traffic
    it was measured on), under the names given here. ``min_gate`` defaults to
    the project's ``gate.min_roc_auc``.
    """

    margin: Annotated[float, Field(ge=0, le=1)] = 0.05
    value: str = "net_value"
    gate: str = "roc_auc"
    min_gate: float | None = None
    size: str = "rows"


class KitSpec(_Strict):
    """Where the starter kit lives (relative to the repository root) and its stages' entry points.

    ``stages`` maps a stage of :data:`fullcycle.kit.STAGES` to its entry point,
    ``module:attribute`` in the kit folder; a stage it does not name has its
    default (:data:`fullcycle.kit.DEFAULT_STAGES`). ``model_factory`` is the
    older spelling of ``stages.model`` and is deprecated; it always equals
    :meth:`entry` ``("model")``.
    """

    path: str
    notebook: str = "pipeline.ipynb"
    stages: dict[str, EntryPoint] = Field(default_factory=dict)
    #: Deprecated: write ``stages: {model: module:function}``.
    model_factory: EntryPoint = DEFAULT_STAGES["model"]

    @model_validator(mode="before")
    @classmethod
    def _model_factory_is_the_model_stage(cls, data):
        if not isinstance(data, dict):
            return data
        stages = data.get("stages")
        if stages is None:
            stages = {}
        if not isinstance(stages, dict):
            return data  # the field's own validation names the problem
        factory = data.get("model_factory")
        if factory is not None:
            warnings.warn(
                "kit.model_factory is deprecated; write kit.stages: {model: " + f"{factory}}}",
                DeprecationWarning,
                stacklevel=2,
            )
            if stages.get("model", factory) != factory:
                raise ValueError(
                    f"kit.model_factory ({factory!r}) and kit.stages.model "
                    f"({stages['model']!r}) differ; keep only kit.stages.model"
                )
            stages = {**stages, "model": factory}
        model = stages.get("model", DEFAULT_STAGES["model"])
        return {**data, "stages": stages, "model_factory": model}

    @field_validator("stages")
    @classmethod
    def _known_stages(cls, v):
        unknown = sorted(set(v) - set(STAGES))
        if unknown:
            raise ValueError(f"unknown stage(s) {unknown}; the stages are {list(STAGES)}")
        return v

    def entry(self, stage: str) -> str:
        """The entry point ``module:attribute`` of ``stage`` (the default if not named)."""
        if stage not in DEFAULT_STAGES:
            raise SpecError(f"unknown kit stage {stage!r}; the stages are {list(STAGES)}")
        return self.stages.get(stage, DEFAULT_STAGES[stage])


class ServiceContractSpec(_Strict):
    """What the grader's service probe sends and expects: paths, keys and request fields."""

    health_path: str = "/health"
    score_path: str
    batch_path: str
    #: Key of the list of items in a batch request.
    items_key: str
    #: Key of the list of results in a batch answer.
    results_key: str
    #: Request and result field holding the id (a key of ``fields``).
    id_field: str
    #: Result field holding the score.
    score_field: str
    #: Request field -> column of the scoring rows it is filled from.
    fields: dict[str, str]

    @field_validator("health_path", "score_path", "batch_path")
    @classmethod
    def _absolute(cls, v):
        if not v.startswith("/"):
            raise ValueError(f"a path starts with '/', got {v!r}")
        return v

    @model_validator(mode="after")
    def _id_is_sent(self):
        if not self.fields:
            raise ValueError("contract.fields is empty; map each request field to its column")
        if self.id_field not in self.fields:
            raise ValueError(
                f"contract.id_field {self.id_field!r} is not a request field; add it to "
                f"contract.fields (now {sorted(self.fields)})"
            )
        return self


class ServiceSpec(_Strict):
    """The live half: the learner's app (``uvicorn --factory``) and its contract."""

    #: The app factory; the same as ``kit.stages.service`` (name it in one of the two).
    app: EntryPoint = DEFAULT_STAGES["service"]
    max_batch: Annotated[int, Field(ge=1)] = 1000
    contract: ServiceContractSpec


class MonitoringSpec(_Strict):
    """The drift check and the timeline ``fullcycle live`` replays, in simulator days."""

    #: The kit's drift check; the same as ``kit.stages.drift`` (name it in one of the two).
    check: EntryPoint = DEFAULT_STAGES["drift"]
    #: First and last day of traffic replayed through the service (a warm start before).
    replay_days: DayRange | None = None
    #: The window the monitor compares the others with.
    reference_days: DayRange | None = None
    #: A window without drift: the check should stay quiet.
    clean_days: DayRange | None = None
    #: A window with drift: the check should flag it.
    drift_days: DayRange | None = None
    #: Last day whose labels are known when ``fullcycle retrain`` trains a challenger.
    retrain_labelled_through: Annotated[int, Field(ge=0)] | None = None

    @model_validator(mode="after")
    def _windows_inside_the_replay(self):
        if self.replay_days is None:
            return self
        first, last = self.replay_days
        for name in ("reference_days", "clean_days", "drift_days"):
            window = getattr(self, name)
            if window is not None and not first <= window[0] <= window[1] <= last:
                raise ValueError(
                    f"{name} {list(window)} is not inside replay_days {[first, last]}; the "
                    "monitor only sees replayed traffic"
                )
        return self


class RubricCheck(_Strict):
    """One rubric line: a metric, a bar, points, partial credit and feedback."""

    id: str
    metric: str
    bar: float
    points: Annotated[float, Field(gt=0)]
    partial_from: float | None = None
    higher_is_better: bool = True
    feedback: str

    @model_validator(mode="after")
    def _registered_figure(self):
        from fullcycle.metrics.registry import figure

        try:
            fig = figure(self.metric)
        except ConfigError as exc:
            raise ValueError(
                f"rubric check {self.id!r}: {exc} (rubric metrics are the figures of "
                "fullcycle.metrics.registry)"
            ) from None
        if fig.higher_is_better != self.higher_is_better:
            raise ValueError(
                f"rubric check {self.id!r}: {self.metric} is better when "
                f"{'higher' if fig.higher_is_better else 'lower'}; set higher_is_better: "
                f"{str(fig.higher_is_better).lower()}"
            )
        return self

    @model_validator(mode="after")
    def _partial_below_bar(self):
        if self.partial_from is not None:
            wrong = (
                self.partial_from >= self.bar
                if self.higher_is_better
                else self.partial_from <= self.bar
            )
            if wrong:
                raise ValueError(
                    f"rubric check {self.id!r}: partial_from ({self.partial_from}) must be on the "
                    f"failing side of bar ({self.bar})"
                )
        return self


class ProjectSpec(_Strict):
    """A capstone project, as read from ``project.yaml``."""

    name: str
    title: str
    task: Literal["binary_classification", "top_k_ranking"]
    data: DataSpec
    prediction: PredictionSpec
    metrics: list[str]
    business_value: BusinessValueSpec
    gate: GateSpec = GateSpec()
    kit: KitSpec
    rubric: list[RubricCheck] = Field(default_factory=list)
    service: ServiceSpec | None = None
    monitoring: MonitoringSpec | None = None
    retraining: RetrainingSpec = RetrainingSpec()

    #: Folder the spec was loaded from (set by :func:`load_spec`).
    root: Path | None = Field(default=None, exclude=True)
    #: SHA-256 of the spec file's bytes.
    sha256: str | None = Field(default=None, exclude=True)

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, v):
        from fullcycle.metrics.technical import parse_metric_name

        for name in v:
            parse_metric_name(name)
        return v

    @model_validator(mode="before")
    @classmethod
    def _one_entry_point_per_stage(cls, data):
        """``service.app`` and ``monitoring.check`` mirror ``kit.stages``: fill each from the other."""
        if not isinstance(data, dict) or not isinstance(data.get("kit"), dict):
            return data
        kit = dict(data["kit"])
        stages = kit.get("stages") if kit.get("stages") is not None else {}
        if not isinstance(stages, dict):
            return data
        stages = dict(stages)
        data = dict(data)
        for block, field, stage in (
            ("service", "app", "service"),
            ("monitoring", "check", "drift"),
        ):
            part = data.get(block)
            if not isinstance(part, dict):
                continue
            given, named = part.get(field), stages.get(stage)
            if given is not None and named is not None and given != named:
                raise ValueError(
                    f"{block}.{field} ({given!r}) and kit.stages.{stage} ({named!r}) name "
                    f"different entry points; name it once, in kit.stages.{stage}"
                )
            value = named or given or DEFAULT_STAGES[stage]
            data[block] = {**part, field: value}
            if named is not None or given is not None:
                stages[stage] = value
        kit["stages"] = stages
        data["kit"] = kit
        return data

    @model_validator(mode="after")
    def _rubric_ids_unique(self):
        ids = [c.id for c in self.rubric]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"rubric ids must be unique; repeated: {dup}")
        return self

    @model_validator(mode="after")
    def _rubric_measurable(self):
        """Each rubric figure must be one the grader can measure for this spec."""
        from fullcycle.metrics.registry import figure

        for c in self.rubric:
            fig = figure(c.metric)
            if fig.requires == "metrics" and fig.metric not in self.metrics:
                raise ValueError(
                    f"rubric check {c.id!r}: {c.metric} needs {fig.metric} in metrics (now "
                    f"{self.metrics}); add it there or change the check"
                )
            if fig.requires in ("service", "monitoring") and getattr(self, fig.requires) is None:
                raise ValueError(
                    f"rubric check {c.id!r}: {c.metric} is measured with the spec's "
                    f"{fig.requires} block, and there is none; add {fig.requires}: or drop "
                    "the check"
                )
        return self


def _where(loc) -> str:
    parts = []
    for p in loc:
        if p in _TAGS:
            continue
        if isinstance(p, int):
            parts.append(f"[{p}]")
        else:
            parts.append(("." if parts else "") + str(p))
    return "".join(parts) or "(top level)"


def _explain(exc: PydanticValidationError, source: str) -> SpecError:
    lines = []
    for err in exc.errors():
        where = _where(err["loc"])
        if err["type"] == "extra_forbidden":
            parent = err["loc"][:-1]
            model = ProjectSpec
            for p in parent:
                if isinstance(p, int):
                    continue
                if p in _TAGS:  # a union member named by its tag: that is the model
                    model = globals()[p]
                    continue
                if model is None:
                    break
                field = model.model_fields.get(str(p))
                ann = getattr(field, "annotation", None)
                inner = getattr(ann, "__args__", (ann,))
                model = next(
                    (a for a in inner if isinstance(a, type) and issubclass(a, BaseModel)), None
                )
            allowed = sorted(model.model_fields) if model else []
            allowed = [a for a in allowed if a not in ("root", "sha256")]
            lines.append(f"{where}: unknown field; allowed fields here: {allowed}")
        elif err["type"] == "missing":
            lines.append(f"{where}: required field is missing; add it")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            got = err.get("input")
            # A whole block as input says nothing the field path does not: leave it out.
            suffix = "" if isinstance(got, dict | list) else f" (got {got!r})"
            lines.append(f"{where}: {msg}{suffix}")
    return SpecError(f"{source} is not a valid project spec:\n  " + "\n  ".join(lines))


def load_spec(path: str | Path) -> ProjectSpec:
    """Load and validate a ``project.yaml`` (or the folder holding one)."""
    path = Path(path)
    if path.is_dir():
        path = path / "project.yaml"
    if not path.is_file():
        raise SpecError(f"{path}: no such spec file; projects live in projects/<name>/project.yaml")
    raw = path.read_bytes()
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: the spec must be a mapping of fields, got {type(data).__name__}")
    try:
        spec = ProjectSpec.model_validate(data)
    except PydanticValidationError as exc:
        raise _explain(exc, str(path)) from None
    return spec.model_copy(
        update={"root": path.parent.resolve(), "sha256": hashlib.sha256(raw).hexdigest()}
    )


def find_project(name: str, search_root: str | Path | None = None) -> ProjectSpec:
    """Load ``projects/<name>/project.yaml`` from the repository (or ``search_root``).

    ``name`` may also be the path of a ``project.yaml`` (an employer's own project).
    """
    if name.endswith((".yaml", ".yml")) and Path(name).is_file():
        return load_spec(Path(name))
    # The working folder and its parents (a kit folder inside a learner release or the
    # repository), then the source tree this package runs from (an editable install).
    roots = (
        [Path(search_root)]
        if search_root
        else [Path.cwd(), *Path.cwd().parents, Path(__file__).resolve().parent.parent]
    )
    for root in roots:
        candidate = root / "projects" / name / "project.yaml"
        if candidate.is_file():
            return load_spec(candidate)
    known = sorted({p.parent.name for r in roots for p in (r / "projects").glob("*/project.yaml")})
    raise SpecError(f"no project named {name!r}; known projects: {known}")
