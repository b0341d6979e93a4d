"""Where a project's service keeps its files, and the labelled history it starts from."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fullcycle.spec import ProjectSpec

__all__ = ["service_env", "service_paths", "warm_start_history"]


def service_paths(spec: ProjectSpec, workspace: str | Path) -> tuple[Path, Path]:
    """Where a project's feature state and prediction log live in a workspace."""
    base = Path(workspace) / "serving" / spec.name
    return base / "state.sqlite", base / "predictions.sqlite"


def service_env(spec: ProjectSpec, workspace: str | Path) -> dict[str, str]:
    """The environment a kit's service reads its settings from (``FULLCYCLE_*``)."""
    env = {
        "FULLCYCLE_PROJECT": spec.name,
        "FULLCYCLE_WORKSPACE": str(Path(workspace).resolve()),
    }
    delay = getattr(spec.data.split, "delay_days", None)  # a recommender's window has no delay
    if delay is not None:
        env["FULLCYCLE_DELAY_DAYS"] = str(delay)
    if spec.service is not None:
        env["FULLCYCLE_MAX_BATCH"] = str(spec.service.max_batch)
    return env


def warm_start_history(
    spec: ProjectSpec, kit, before_day: int | None = None, scale: str = "full", drift: bool = False
) -> pd.DataFrame:
    """Labelled transactions before ``before_day`` (default: the scoring window), validated by
    the kit's data contract."""
    from fullcycle.run import at_scale, load_data

    spec = at_scale(spec, scale)
    s = spec.data.split
    if before_day is None:
        before_day = s.train_start_day + s.train_days + s.delay_days
    valid = kit.validate(load_data(spec, scale=scale, drift=drift)).valid
    return valid[valid["TX_TIME_DAYS"].to_numpy() < before_day]
