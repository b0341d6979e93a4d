"""The instructor's grading configuration: the secret seed, limits, probes, the results store.

It lives outside the learner release (``fullcycle grading-config --new PATH``
writes one with a fresh 128-bit seed) and is read by ``fullcycle grade``::

    secret_seed: 9f2c...            # >= 32 hex digits (128 bits); never share it
    scale: full                     # simulator scale of the hidden holdout
    sandbox: required               # required | reduced (see below)
    limits: {cell_timeout_s: 600, run_timeout_s: 1800, memory_mb: 8192, ...}
    service: {enabled: true, ready_timeout_s: 60, requests: 200}
    monitoring: {enabled: true}
    stages: {enabled: true, timeout_s: 300}   # the stage probes (contract, features, ...)
    results_store: results.sqlite   # relative to this file
    cache_dir: cache                # the reference's figures per secret seed, beside this file
    holdout_dir: null               # for projects whose data are files: history, score, labels

``sandbox`` is secure by default. ``required`` (the default, and what
``--new`` writes): learner code runs under bubblewrap, and where bubblewrap
does not work grading is refused before any learner code runs.
``reduced`` is the instructor's explicit opt-in to grade without namespaces:
learner code runs as another user with rlimits, a pids cgroup, its own session
and a clean environment; it needs the grader to run as root, the config file
and ``holdout_dir`` must be readable by the grader only (``chmod 600``,
``chmod 700``), and every result says ``:reduced_isolation`` in its status.
``auto`` is accepted as a legacy name of ``required``; ``off`` is refused.

``public`` is not a setting of the file: only code sets it (the learner's
self-check, :mod:`grading.check`, grades on public data where no secret
exists); it lets grading fall back to rlimits only where bubblewrap is missing.
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

__all__ = ["GradingConfig", "load_config", "new_config", "MIN_SEED_HEX", "SANDBOX_CHOICES"]

#: 32 hex digits = 128 bits: no one can search the seed space by regenerating data.
MIN_SEED_HEX = 32
#: What ``sandbox:`` may say in a grading config (``auto`` is a legacy name of ``required``).
SANDBOX_CHOICES = ("required", "reduced", "auto")
#: Fields only code sets; a config file naming them is refused.
_CODE_ONLY = ("public", "root", "source")


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
    #: The whole grading of one submission (every step and probe), enforced from outside.
    job_timeout_s: float = Field(3600, gt=0)
    #: Resident memory of the trusted grading process of one submission (learner code excluded).
    grader_memory_mb: int = Field(4096, ge=256)

    def to_limits(self) -> Limits:
        return Limits(**self.model_dump(exclude={"job_timeout_s", "grader_memory_mb"}))


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
    #: ``required`` (bubblewrap or refuse) or ``reduced`` (explicit opt-in; see the module doc).
    sandbox: str = "required"
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
    #: The config file itself (it holds the seed: learner code must never read it).
    source: Path | None = Field(default=None, exclude=True)
    #: Grading on public data (the learner's self-check): nothing secret to protect.
    public: bool = Field(default=False, exclude=True)

    @field_validator("sandbox", mode="before")
    @classmethod
    def _known_sandbox(cls, v):
        if v is False or (isinstance(v, str) and v.strip().lower() in ("off", "none", "false")):
            raise ValueError(
                f"sandbox: {'off' if v is False else v} is refused: learner code would run without isolation beside "
                "the secret seed. Choose required (bubblewrap; the default) or reduced "
                "(explicit opt-in: no namespaces, learner code runs as another user; needs root)"
            )
        if not isinstance(v, str) or v.strip().lower() not in SANDBOX_CHOICES:
            raise ValueError(
                f"sandbox must be one of {', '.join(SANDBOX_CHOICES)} "
                f"(auto is a legacy name of required), not {v!r}"
            )
        v = v.strip().lower()
        return "required" if v == "auto" else v

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
    def sandbox_mode(self) -> str:
        """The :class:`~grading.sandbox.Sandbox` mode: ``public`` for a self-check, else ``sandbox``."""
        return "public" if self.public else self.sandbox

    def store_target(self) -> str:
        """The results store: a ``postgresql://`` URL as it is, else a path beside this file."""
        value = self.results_store
        return value if "://" in value else str(self.path(value))

    def secret_paths(self) -> list[Path]:
        """Files and folders learner code must not read: this config file and ``holdout_dir``."""
        paths = [self.source, self.path(self.holdout_dir)]
        return [] if self.public else [p for p in paths if p is not None]

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
    named = [k for k in _CODE_ONLY if k in data]
    if named:
        raise GradingConfigError(
            f"{path}: {', '.join(named)}: not a setting of a grading config file (only code sets "
            "it; `public` is for the learner's self-check on public data); remove it"
        )
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
    return cfg.model_copy(update={"root": path.parent.resolve(), "source": path.resolve()})


def new_config(path: str | Path, **settings) -> GradingConfig:
    """Write a new grading config: a fresh 128-bit secret seed, ``sandbox: required``, mode 0600."""
    path = Path(path)
    if path.exists():
        raise GradingConfigError(f"{path} exists; refusing to replace its secret seed")
    cfg = GradingConfig(secret_seed=secrets.token_hex(16), **settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = yaml.safe_dump(cfg.model_dump(), sort_keys=False)
    header = "# fullcycle grading config. Keep it out of the learner release: it holds the seed.\n"
    fd = path.open("x")
    path.chmod(0o600)
    with fd:
        fd.write(header + body)
    return cfg.model_copy(update={"root": path.parent.resolve(), "source": path.resolve()})
