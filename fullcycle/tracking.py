"""MLflow conventions: an embedded store by default, complete run records, the champion alias.

By default tracking needs no server: runs go to ``<workspace>/mlflow.db``
(SQLite) and artifacts to ``<workspace>/mlartifacts``. Set
``MLFLOW_TRACKING_URI`` to use a server instead. Telemetry is switched off
before MLflow is imported. Models are logged with explicit pip requirements,
because inferring them makes ``log_model`` about five times slower.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pandas as pd

from fullcycle.exceptions import TrackingError

__all__ = [
    "RegisteredModel",
    "code_version",
    "data_fingerprint",
    "exported_by_us",
    "load_champion",
    "log_model_run",
    "model_requirements",
    "register_champion",
    "setup_tracking",
]

CHAMPION = "champion"
#: Tracking URIs this process chose itself (MLflow exports each into os.environ).
_SET_BY_US: set[str] = set()


def exported_by_us(uri: str | None) -> bool:
    """Whether ``MLFLOW_TRACKING_URI`` holds a store this process chose, not the user's."""
    return bool(uri) and uri in _SET_BY_US


def _mlflow():
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    import mlflow

    return mlflow


def setup_tracking(workspace: str | Path, experiment: str) -> str:
    """Point MLflow at the workspace store (or ``MLFLOW_TRACKING_URI``); return the experiment id."""
    mlflow = _mlflow()
    workspace = Path(workspace).resolve()
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if exported_by_us(uri):
        # MLflow exports the URI it was given; that is our own earlier choice, not the user's.
        uri = None
    artifacts = None
    if not uri:
        workspace.mkdir(parents=True, exist_ok=True)
        uri = f"sqlite:///{workspace / 'mlflow.db'}"
        artifacts = (workspace / "mlartifacts").as_uri()
    mlflow.set_tracking_uri(uri)
    if artifacts is not None:
        _SET_BY_US.add(uri)
        if os.environ.get("MLFLOW_TRACKING_URI"):
            _SET_BY_US.add(os.environ["MLFLOW_TRACKING_URI"])
    try:
        exp = mlflow.get_experiment_by_name(experiment)
        if exp is None:
            return mlflow.create_experiment(experiment, artifact_location=artifacts)
        return exp.experiment_id
    except Exception as exc:  # MLflow raises many types for an unreachable store
        raise TrackingError(
            f"could not open the MLflow store at {uri}: {exc}. Unset MLFLOW_TRACKING_URI to use "
            "the embedded store, or start the server it names."
        ) from exc


def data_fingerprint(frame: pd.DataFrame) -> str:
    """SHA-256 of a frame's columns, dtypes and values (row order matters)."""
    h = hashlib.sha256()
    h.update(repr([(c, str(t)) for c, t in frame.dtypes.items()]).encode())
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()


def code_version() -> str:
    """fullcycle's version plus the git commit (``+dirty`` if the tree has changes)."""
    version = metadata.version("fullcycle")
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return f"{version}+g{sha}{'.dirty' if dirty else ''}"
    except (OSError, subprocess.SubprocessError):
        return version


def model_requirements() -> list[str]:
    """Pinned requirements of a logged scikit-learn model (no inference needed)."""
    return [f"{p}=={metadata.version(p)}" for p in ("scikit-learn", "numpy", "pandas", "scipy")]


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    version: str
    run_id: str
    model_uri: str


def log_model_run(
    *,
    experiment_id: str,
    model,
    input_example: pd.DataFrame,
    params: dict,
    metrics: dict,
    tags: dict,
    run_name: str | None = None,
    artifacts: dict[str, str | Path] | None = None,
):
    """Log one training run: parameters, metrics, tags and the model with signature.

    Returns
    -------
    (run_id, model_uri)
    """
    mlflow = _mlflow()
    import skops.io
    from mlflow.models import infer_signature

    example = input_example.head(5)
    # MLflow stores scikit-learn models with skops, which refuses types it does
    # not know (e.g. the tree predictors of gradient boosting). This model was
    # built in this process, so its own types are trusted for the round trip.
    trusted = skops.io.get_untrusted_types(data=skops.io.dumps(model))
    signature = infer_signature(example, model.predict_proba(example)[:, 1])
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        # NaN is stored as NaN (e.g. value_vs_baseline when the baseline loses money).
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
        mlflow.set_tags({k: str(v) for k, v in tags.items()})
        for name, path in (artifacts or {}).items():
            mlflow.log_artifact(str(path), artifact_path=name)
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=signature,
            input_example=example,
            pip_requirements=model_requirements(),
            skops_trusted_types=trusted or None,
        )
    return run.info.run_id, info.model_uri


def register_champion(model_uri: str, name: str, run_id: str) -> RegisteredModel:
    """Register ``model_uri`` under ``name`` and point the ``champion`` alias at it."""
    mlflow = _mlflow()
    client = mlflow.MlflowClient()
    mv = mlflow.register_model(model_uri, name)
    client.set_registered_model_alias(name, CHAMPION, mv.version)
    client.set_model_version_tag(name, mv.version, "run_id", run_id)
    return RegisteredModel(name, str(mv.version), run_id, model_uri)


def load_champion(name: str):
    """Load the scikit-learn model behind ``models:/<name>@champion``."""
    mlflow = _mlflow()
    try:
        return mlflow.sklearn.load_model(f"models:/{name}@{CHAMPION}")
    except Exception as exc:
        raise TrackingError(
            f"no champion for model {name!r} in {mlflow.get_tracking_uri()}: {exc}. "
            "Run `fullcycle run` first to train and register one."
        ) from exc
