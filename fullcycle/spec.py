"""Project specs: ``projects/<name>/project.yaml`` loaded into typed, validated settings.

A spec names everything a run and the grader need: the task, the data and its
time split, the prediction contract, the metrics, the business value model,
the gate a model must pass to become ``champion``, the kit, and the rubric.
A wrong field is refused with a :class:`~fullcycle.exceptions.SpecError`
that names the field, what was wrong, and what is allowed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError

from fullcycle.exceptions import SpecError

__all__ = [
    "BusinessValueSpec",
    "DataSpec",
    "DriftSpec",
    "GateSpec",
    "KitSpec",
    "PredictionSpec",
    "ProjectSpec",
    "RubricCheck",
    "SplitSpec",
    "find_project",
    "load_spec",
]

TECHNICAL_METRICS = ("roc_auc", "average_precision", "card_precision@k")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SplitSpec(_Strict):
    """Training window, label delay and scoring window, in days."""

    train_start_day: Annotated[int, Field(ge=0)]
    train_days: Annotated[int, Field(ge=1)] = 7
    delay_days: Annotated[int, Field(ge=1)] = 7
    test_days: Annotated[int, Field(ge=1)] = 7
    drop_known_compromised: bool = True


class DriftSpec(_Strict):
    """A scheduled pattern that starts inside the scoring window."""

    scenario: Literal[4] = 4
    start_day: Annotated[int, Field(ge=0)]


class DataSpec(_Strict):
    """Where the data comes from: the simulator (with parameters) or files."""

    source: Literal["fraud_simulator", "files"]
    params: dict[str, Any] = Field(default_factory=dict)
    path: str | None = None
    seed: int = 0
    split: SplitSpec
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


class KitSpec(_Strict):
    """Where the starter kit lives (relative to the repository root) and its entry points."""

    path: str
    notebook: str = "pipeline.ipynb"
    model_factory: str = "model:build_model"

    @field_validator("model_factory")
    @classmethod
    def _module_colon_function(cls, v):
        if v.count(":") != 1 or not all(v.split(":")):
            raise ValueError(f"model_factory must be 'module:function', got {v!r}")
        return v


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
    service: dict[str, Any] | None = None
    monitoring: dict[str, Any] | None = None

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

    @model_validator(mode="after")
    def _rubric_ids_unique(self):
        ids = [c.id for c in self.rubric]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"rubric ids must be unique; repeated: {dup}")
        return self


def _where(loc) -> str:
    parts = []
    for p in loc:
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
                field = model.model_fields.get(str(p))
                ann = getattr(field, "annotation", None)
                inner = getattr(ann, "__args__", (ann,))
                model = next(
                    (a for a in inner if isinstance(a, type) and issubclass(a, BaseModel)), None
                )
                if model is None:
                    break
            allowed = sorted(model.model_fields) if model else []
            allowed = [a for a in allowed if a not in ("root", "sha256")]
            lines.append(f"{where}: unknown field; allowed fields here: {allowed}")
        elif err["type"] == "missing":
            lines.append(f"{where}: required field is missing; add it")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"{where}: {msg} (got {err.get('input')!r})")
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
    """Load ``projects/<name>/project.yaml`` from the repository (or ``search_root``)."""
    roots = (
        [Path(search_root)] if search_root else [Path.cwd(), Path(__file__).resolve().parent.parent]
    )
    for root in roots:
        candidate = root / "projects" / name / "project.yaml"
        if candidate.is_file():
            return load_spec(candidate)
    known = sorted({p.parent.name for r in roots for p in (r / "projects").glob("*/project.yaml")})
    raise SpecError(f"no project named {name!r}; known projects: {known}")
