"""The served model and what is known about it: version, training data, metrics at registration."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fullcycle.exceptions import ConfigError, TrackingError
from fullcycle.serving.fastpath import Scorer

__all__ = ["ModelBundle"]


@dataclass
class ModelBundle:
    """A fitted model ready to serve, with its metadata.

    Build one with :meth:`from_registry` (the ``champion`` of an MLflow
    registered model), :meth:`from_model_dir` (what a notebook handed over in
    ``model_dir/model.joblib``) or :meth:`from_model` (a model in memory).

    A service computes its features in its own order; :meth:`columns_for`
    says which of them the model takes, in the order it was fitted on.
    """

    model: object
    name: str
    version: str
    run_id: str | None = None
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        names = getattr(self.model, "feature_names_in_", None)
        self.feature_names = list(names) if names is not None else None
        self.scorer = Scorer(self.model)

    def columns_for(self, computed: list[str]) -> np.ndarray:
        """Positions in ``computed`` (the service's feature order) of the model's inputs.

        A model fitted on a NumPy array (no ``feature_names_in_``) takes
        ``computed`` as it is.
        """
        if self.feature_names is None:
            return np.arange(len(computed), dtype=np.intp)
        unknown = [n for n in self.feature_names if n not in computed]
        if unknown:
            raise TrackingError(
                f"model {self.name} v{self.version} expects features {unknown} that the service "
                f"does not compute; it computes {computed}"
            )
        return np.array([computed.index(n) for n in self.feature_names], dtype=np.intp)

    @classmethod
    def from_model_dir(cls, model_dir, name: str = "submission", version: str = "submission"):
        """The model a notebook handed over: ``model_dir/model.joblib``.

        The file holds the fitted classifier, or a dict with it under ``"model"``.
        """
        from pathlib import Path

        import joblib

        path = Path(model_dir) / "model.joblib"
        if not path.is_file():
            raise ConfigError(f"{path}: no model; the notebook's hand-over cell writes it")
        saved = joblib.load(path)
        model = saved["model"] if isinstance(saved, dict) else saved
        if not hasattr(model, "predict_proba"):
            raise ConfigError(f"{path}: {type(model).__name__} has no predict_proba")
        return cls(model, name, version, metadata={"model_dir": str(model_dir)})

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
