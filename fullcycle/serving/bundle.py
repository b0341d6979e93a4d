"""The served model and what is known about it: version, training data, metrics at registration."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fullcycle.exceptions import TrackingError
from fullcycle.features import FEATURE_NAMES
from fullcycle.serving.fastpath import Scorer

__all__ = ["ModelBundle"]


@dataclass
class ModelBundle:
    """A fitted model ready to serve, with its metadata.

    Build one with :meth:`from_registry` (the ``champion`` of an MLflow
    registered model) or :meth:`from_model` (a model in memory, for notebooks
    and tests).
    """

    model: object
    name: str
    version: str
    run_id: str | None = None
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        names = getattr(self.model, "feature_names_in_", None)
        self.feature_names = list(names) if names is not None else list(FEATURE_NAMES)
        unknown = sorted(set(self.feature_names) - set(FEATURE_NAMES))
        if unknown:
            raise TrackingError(
                f"model {self.name} v{self.version} expects features {unknown} that the service "
                f"does not compute; it computes {FEATURE_NAMES}"
            )
        # Columns of the service's feature vector, in the order the model was fitted on.
        self.columns = np.array([FEATURE_NAMES.index(n) for n in self.feature_names], dtype=np.intp)
        self.scorer = Scorer(self.model)

    @classmethod
    def from_model(cls, model, name: str = "local", version: str = "0", **metadata) -> ModelBundle:
        return cls(model, name, version, metadata=metadata)

    @classmethod
    def from_registry(cls, name: str, alias: str = "champion") -> ModelBundle:
        """Load ``models:/<name>@<alias>`` from the current MLflow store, with run metadata."""
        from fullcycle import tracking

        mlflow = tracking._mlflow()
        client = mlflow.MlflowClient()
        try:
            mv = client.get_model_version_by_alias(name, alias)
        except Exception as exc:
            raise TrackingError(
                f"no {alias} for model {name!r} in {mlflow.get_tracking_uri()} ({exc}); "
                "run `fullcycle run` first to train and register one"
            ) from None
        model = tracking.load_champion(name) if alias == tracking.CHAMPION else None
        if model is None:
            model = mlflow.sklearn.load_model(f"models:/{name}@{alias}")
        run = client.get_run(mv.run_id)
        metadata = {
            "alias": alias,
            "registered_at": mv.creation_timestamp,
            "data_fingerprint": run.data.tags.get("data_fingerprint"),
            "code_version": run.data.tags.get("code_version"),
            "spec_sha256": run.data.tags.get("spec_sha256"),
            "metrics_at_registration": dict(run.data.metrics),
        }
        return cls(model, name, str(mv.version), mv.run_id, metadata)

    def describe(self) -> dict:
        return {
            "name": self.name,
            "version": self.version,
            "run_id": self.run_id,
            "model_type": type(self.model).__name__,
            "feature_names": self.feature_names,
            "fast_path": self.scorer.fast,
            **self.metadata,
        }
