"""The instructor's grading configuration: the secret seed, limits, probes, the results store.

It lives outside the learner release (``fullcycle grading-config --new PATH``
writes one with a fresh 128-bit seed) and is read by ``fullcycle grade``::

    secret_seed: 9f2c...            # >= 32 hex digits (128 bits); never share it
    scale: full                     # simulator scale of the hidden holdout
    sandbox: auto                   # auto | required | off
    limits: {cell_timeout_s: 600, run_timeout_s: 1800, memory_mb: 8192, ...}
    service: {enabled: true, ready_timeout_s: 60, requests: 200}
    monitoring: {enabled: true}
    stages: {enabled: true, timeout_s: 300}   # the stage probes (contract, features, ...)
    results_store: results.sqlite   # relative to this file
    cache_dir: cache                # the reference's figures per secret seed, beside this file
    holdout_dir: null               # for projects whose data are files: history, score, labels
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic import ValidationError as PydanticValidationError

from grading.errors import GradingConfigError
from grading.sandbox import Limits

__all__ = ["GradingConfig", "load_config", "new_config", "MIN_SEED_HEX"]

#: 32 hex digits = 128 bits: no one can search the seed space by regenerating data.
MIN_SEED_HEX = 32


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LimitsConfig(_Strict):
    cell_timeout_s: float = Field(600, gt=0)
    run_timeout_s: float = Field(1800, gt=0)
    memory_mb: int = Field(8192, ge=256)
    cpu_s: int = Field(3600, ge=1)
    file_size_mb: int = Field(512, ge=1)
    open_files: int = Field(1024, ge=64)
    processes: int = Field(256, ge=8)
    disk_mb: int = Field(2048, ge=16)
    output_mb: float = Field(20, gt=0)
    max_cells: int = Field(500, ge=1)
    notebook_mb: float = Field(20, gt=0)

    def to_limits(self) -> Limits:
        return Limits(**self.model_dump())


class ServiceProbeConfig(_Strict):
    enabled: bool = True
    ready_timeout_s: float = Field(60, gt=0)
    request_timeout_s: float = Field(10, gt=0)
    requests: int = Field(200, ge=10)
    consistency_rows: int = Field(300, ge=10)
    tolerance: float = Field(1e-4, ge=0)


class MonitoringProbeConfig(_Strict):
    enabled: bool = True
    timeout_s: float = Field(120, gt=0)


class StagesProbeConfig(_Strict):
    """The stage probes: the learner's contract, features, policy, decay check and rule."""

    enabled: bool = True
    timeout_s: float = Field(300, gt=0)


class ArchiveConfig(_Strict):
    max_bytes: int = Field(200_000_000, ge=1000)
    max_files: int = Field(2000, ge=1)
    max_ratio: float = Field(200, ge=1)


class GradingConfig(_Strict):
    secret_seed: str
    scale: Literal["full", "small", "tiny"] = "full"
    sandbox: Literal["auto", "required", "off"] = "auto"
    limits: LimitsConfig = LimitsConfig()
    service: ServiceProbeConfig = ServiceProbeConfig()
    monitoring: MonitoringProbeConfig = MonitoringProbeConfig()
    stages: StagesProbeConfig = StagesProbeConfig()
    archive: ArchiveConfig = ArchiveConfig()
    results_store: str = "results.sqlite"
    #: Where the reference solution's figures per secret seed are cached (beside the config).
    cache_dir: str = "cache"
    holdout_dir: str | None = None

    #: Folder of the config file; relative paths are resolved against it.
    root: Path | None = Field(default=None, exclude=True)

    @field_validator("secret_seed")
    @classmethod
    def _enough_entropy(cls, v: str) -> str:
        v = v.strip().lower()
        if not re.fullmatch(r"[0-9a-f]+", v):
            raise ValueError("secret_seed must be hexadecimal digits (0-9, a-f)")
        if len(v) < MIN_SEED_HEX:
            raise ValueError(
                f"secret_seed has {len(v) * 4} bits; it needs at least {MIN_SEED_HEX * 4} "
                f"({MIN_SEED_HEX} hex digits). Make one with `fullcycle grading-config --new PATH`"
            )
        if len(set(v)) < 6:
            raise ValueError("secret_seed looks hand-made (too few distinct digits); generate one")
        return v

    @property
    def seed_int(self) -> int:
        return int(self.secret_seed, 16)

    def path(self, value: str | None) -> Path | None:
        if value is None:
            return None
        p = Path(value).expanduser()
        return p if p.is_absolute() or self.root is None else self.root / p


def load_config(path: str | Path) -> GradingConfig:
    """Read and check a grading config; errors name the field and how to fix it."""
    path = Path(path)
    if not path.is_file():
        raise GradingConfigError(
            f"{path}: no grading config; create one with `fullcycle grading-config --new {path}`"
        )
    try:
        data = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise GradingConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise GradingConfigError(f"{path}: must be a mapping of settings")
    try:
        cfg = GradingConfig.model_validate(data)
    except PydanticValidationError as exc:
        lines = [
            f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: "
            f"{e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        ]
        raise GradingConfigError(
            f"{path}: not a valid grading config:\n  " + "\n  ".join(lines)
        ) from None
    return cfg.model_copy(update={"root": path.parent.resolve()})


def new_config(path: str | Path, **settings) -> GradingConfig:
    """Write a new grading config with a fresh 128-bit secret seed (mode 0600)."""
    path = Path(path)
    if path.exists():
        raise GradingConfigError(f"{path} exists; refusing to replace its secret seed")
    cfg = GradingConfig(secret_seed=secrets.token_hex(16), **settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = yaml.safe_dump(cfg.model_dump(exclude={"root"}), sort_keys=False)
    header = "# fullcycle grading config. Keep it out of the learner release: it holds the seed.\n"
    fd = path.open("x")
    path.chmod(0o600)
    with fd:
        fd.write(header + body)
    return cfg.model_copy(update={"root": path.parent.resolve()})
