"""The learner's self-check: the grader's own steps on public validation data, with no secret.

``fullcycle check KIT`` grades a kit exactly as ``fullcycle grade`` does — the
same steps of :mod:`grading.pipeline`, the same rubric, the same reports and
feedback text — but on data the learner may see:

* a project whose data come from the simulator is simulated with its
  **public seed**, ``sha256(b"fullcycle public check:" + name)`` cut to 32 hex
  digits (:func:`public_seed`). Anyone can compute it: it is published here on
  purpose, and it is never an instructor's secret seed (those come from
  ``secrets.token_hex``, see :func:`grading.config.new_config`);
* a project whose data are files reads its public validation files (the same
  layout as an instructor's ``holdout_dir``: ``history``, ``score`` with labels,
  and optionally ``reference``, ``clean``, ``drifted``) from the project's
  ``public/`` folder, or the folder given.

No grading config is read. The limits are the grader's defaults; no results
store is written. Rubric lines relative to the reference solution
(``<figure>.vs_reference``) compare with the reference's figures on the same
public data: in a learner release, those ``fullcycle release`` measured and
wrote into ``projects/<name>/public_reference.json``; in the course repository,
the project's own kit graded now and cached under the user's cache folder
(``$XDG_CACHE_HOME/fullcycle/check`` or ``~/.cache/fullcycle/check``); where
neither exists the lines are not measured, with the reason
(:mod:`grading.reference`). Learner code runs in bubblewrap where it works and
with rlimits only where it does not; the printed header says which.
"""

from __future__ import annotations

import hashlib
import inspect
import os
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError as PydanticValidationError

from fullcycle.exceptions import ConfigError
from grading.config import MIN_SEED_HEX, GradingConfig
from grading.text import terminal_safe

__all__ = [
    "DEFAULT_SCALE",
    "PUBLIC_SEED_PREFIX",
    "REPORT_FILES",
    "CheckResult",
    "cache_folder",
    "check_kit",
    "format_check",
    "public_config",
    "public_seed",
]

#: What the public seed is derived from: this prefix and the project's name. Public by design.
PUBLIC_SEED_PREFIX = b"fullcycle public check:"
#: The simulator scale of a check's public data unless told (``fullcycle check --scale``); a
#: learner release carries the reference solution's figures for it (:mod:`grading.release`).
DEFAULT_SCALE = "small"
#: Files a check writes into its report folder (stale copies are removed before a new check).
REPORT_FILES = ("result.json", "feedback.md", "feedback.html", "executed.ipynb")
#: Where the results store would go if :func:`grading.pipeline.grade` cannot skip it; removed after.
_STORE_NAME = ".check-results.sqlite"
#: Settings a check decides itself: a learner cannot hand it a secret or a store.
_FIXED = ("secret_seed", "results_store", "cache_dir", "holdout_dir", "scale", "root", "source")


@dataclass
class CheckResult:
    """One self-check: the result (``result.json``), the text to print, and the report folder."""

    result: dict
    text: str
    out_dir: Path

    @property
    def passed(self) -> bool:
        """Whether every rubric point was earned."""
        s = self.result["score"]
        return bool(s["max_points"]) and s["points"] >= s["max_points"]


def public_seed(project: str) -> str:
    """The public seed of ``project``'s validation data (32 hex digits; no secret).

    ``sha256(b"fullcycle public check:" + project)``, first 32 hex digits: a
    learner, an instructor and this function all get the same one.
    """
    return hashlib.sha256(PUBLIC_SEED_PREFIX + project.encode()).hexdigest()[:MIN_SEED_HEX]


def cache_folder() -> Path:
    """``$XDG_CACHE_HOME/fullcycle/check`` (an absolute XDG_CACHE_HOME) or ``~/.cache/...``."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".cache"
    return root / "fullcycle" / "check"


def _public_data(spec, data_dir) -> Path | None:
    """The public validation folder of a files project (``None`` for a simulated one)."""
    if data_dir is None and spec.data.source != "files":
        return None
    folder = Path(data_dir) if data_dir is not None else _default_data_dir(spec)
    if not folder.is_dir():
        raise ConfigError(
            f"project {spec.name!r} reads its data from files, and {folder} holds no public "
            "validation data; put history, score (with labels) and optionally reference, clean "
            "and drifted (.csv or .parquet) there, or pass another folder (--data DIR)"
        )
    return folder.resolve()


def _default_data_dir(spec) -> Path:
    if spec.root is None:
        raise ConfigError(
            f"project {spec.name!r} has no folder to look for public data in; pass --data DIR"
        )
    return Path(spec.root) / "public"


def public_config(
    spec,
    out_dir: str | Path,
    *,
    scale: str = DEFAULT_SCALE,
    data_dir: str | Path | None = None,
    overrides: dict | None = None,
) -> GradingConfig:
    """A grading config for ``spec``'s public validation data: no secret, no results store.

    Parameters
    ----------
    spec : ProjectSpec
        The project.
    out_dir : path
        The report folder (the results store, when the grader cannot skip it, goes here).
    scale : {"full", "small", "tiny"}
        Simulator scale of the public data (files projects ignore it).
    data_dir : path, optional
        Public validation files of a files project (default ``<project>/public``).
    overrides : dict, optional
        Other settings (``limits``, ``service``, ``monitoring``, ``stages``, ``sandbox``...);
        sections are merged into the defaults. The seed, store, cache and data are the check's.

    Raises
    ------
    ConfigError
        When an override names a setting the check decides, a setting is invalid, or a
        files project has no public data.
    """
    overrides = dict(overrides or {})
    fixed = sorted(set(overrides) & set(_FIXED))
    if fixed:
        raise ConfigError(
            f"a self-check sets {fixed} itself (public seed, no results store); "
            "leave them out of the overrides"
        )
    folder = _public_data(spec, data_dir)
    settings: dict = {
        "secret_seed": public_seed(spec.name),
        "scale": scale,
        "results_store": str(Path(out_dir).resolve() / _STORE_NAME),
        "cache_dir": str(cache_folder()),
        "holdout_dir": None if folder is None else str(folder),
    }
    public = "public" in GradingConfig.model_fields
    if not public:
        settings["sandbox"] = "auto"  # bubblewrap where it works, rlimits-only elsewhere
    defaults = GradingConfig.model_fields
    for key, value in overrides.items():
        if isinstance(value, dict) and key in defaults:
            base = defaults[key].default
            base = base.model_dump() if hasattr(base, "model_dump") else {}
            value = {**base, **value}
        settings[key] = value
    try:
        cfg = GradingConfig.model_validate(settings)
    except PydanticValidationError as exc:
        lines = [
            f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: "
            f"{e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        ]
        raise ConfigError("not a valid self-check setting:\n  " + "\n  ".join(lines)) from None
    if public:
        # No secret exists: bubblewrap when it works, else rlimits-only, reported as reduced.
        cfg = cfg.model_copy(update={"public": True})
    return cfg


def _spec(project, kit: Path):
    from fullcycle.exceptions import SpecError
    from fullcycle.spec import find_project

    if project is not None and not isinstance(project, str):
        return project
    name = project or kit.stem
    try:
        return find_project(name)
    except SpecError as exc:
        if project:
            raise
        raise SpecError(f"{exc}; name the project of {kit} with --project NAME") from None


def _out_dir(kit: Path, out_dir) -> Path:
    out = Path(out_dir) if out_dir is not None else kit.with_name(f"{kit.stem}-check")
    out = out.resolve()
    if kit.is_dir() and (out == kit or kit in out.parents):
        raise ConfigError(
            f"{out} is inside the kit {kit}: the reports would become part of your submission; "
            "choose a folder outside the kit (--out DIR)"
        )
    return out


def _clear(out_dir: Path) -> None:
    """Remove the report files of an earlier check, so none of them is taken for this one's."""
    _drop_store(out_dir)
    for name in REPORT_FILES:
        p = out_dir / name
        if p.is_file() or p.is_symlink():
            p.unlink()


def _drop_store(out_dir: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        p = out_dir / (_STORE_NAME + suffix)
        if p.is_file():
            p.unlink()


def _run_grade(kit: Path, spec, config: GradingConfig, out_dir: Path, **kw) -> dict:
    from grading.pipeline import grade

    if "store" in inspect.signature(grade).parameters:
        kw["store"] = False
    try:
        return grade(kit, spec, config, out_dir, **kw)
    finally:
        _drop_store(out_dir)


def _safe(text: str) -> str:
    """``text`` for a terminal: each line through :func:`grading.text.terminal_safe`.

    No escape sequences or control characters (carriage returns, bidi overrides)
    survive; the line breaks and each line's indentation stay.
    """
    out = []
    for line in text.split("\n"):
        body = line.lstrip(" ")
        out.append(line[: len(line) - len(body)] + terminal_safe(body))
    return "\n".join(out)


def _isolation_line(result: dict) -> str:
    iso = result.get("isolation")
    if not iso:
        return "Isolation: none needed, no code of the kit ran (it was rejected first)."
    if iso.get("kind") == "bubblewrap" and not iso.get("reduced"):
        return "Isolation: the bubblewrap sandbox, as the grader uses it."
    reasons = "; ".join(iso.get("reasons") or []) or "see result.json"
    return f"Isolation: {iso.get('kind', 'unknown')}, REDUCED ISOLATION ({reasons})."


def format_check(result: dict, out_dir: str | Path, data: str, feedback: str | None = None) -> str:
    """The text a terminal prints: a header, then the instructor's feedback text.

    Parameters
    ----------
    result : dict
        The check's result (``result.json``).
    out_dir : path
        The report folder.
    data : str
        Which public data were used, for the header.
    feedback : str, optional
        The feedback text (default: ``feedback.md`` as the grader wrote it in ``out_dir``,
        or :func:`grading.report.format_scorecard` if there is none).

    Control characters are stripped: the text holds what the kit's code said.
    """
    out_dir = Path(out_dir)
    if feedback is None:
        path = out_dir / "feedback.md"
        if path.is_file():
            feedback = path.read_text(encoding="utf-8", errors="replace")
        else:
            from grading.report import format_scorecard

            feedback = format_scorecard(result)
    s = result["score"]
    head = [
        f"fullcycle check: {result.get('project')} on PUBLIC validation data",
        "  Not the hidden data your instructor grades with: the same steps, rubric and",
        "  feedback, on data you may see. Your grade on the hidden data can differ.",
        f"  Data: {data}.",
        f"  {_isolation_line(result)}",
        f"  Score: {s['points']:g} / {s['max_points']:g} points ({result.get('status')}).",
        f"  Full reports: {out_dir / 'feedback.html'} (also result.json, feedback.md,",
        "  executed.ipynb)",
    ]
    return _safe("\n".join(head) + "\n\n" + feedback.rstrip("\n") + "\n")


def check_kit(
    kit: str | Path,
    *,
    project=None,
    out_dir: str | Path | None = None,
    scale: str = DEFAULT_SCALE,
    data_dir: str | Path | None = None,
    overrides: dict | None = None,
    keep_work: bool = False,
    progress=None,
) -> CheckResult:
    """Grade ``kit`` on the project's public validation data, as ``fullcycle grade`` would.

    Parameters
    ----------
    kit : path
        The learner's kit folder (or a .zip of it).
    project : str or ProjectSpec, optional
        The project (default: the one named like the kit's folder).
    out_dir : path, optional
        Where the reports go (default ``<kit>-check`` beside the kit; never inside it).
    scale : {"full", "small", "tiny"}
        Simulator scale of the public data.
    data_dir : path, optional
        Public validation files of a files project (default ``<project>/public``).
    overrides : dict, optional
        Grading settings other than the seed, store, cache and data (e.g. ``limits``).
    keep_work : bool
        Keep the grader's job folder (for debugging the grader).
    progress : callable, optional
        ``progress(step, status)`` after each step, as for :func:`grading.pipeline.grade`.

    Returns
    -------
    CheckResult
        ``result`` (as ``result.json``), ``text`` (to print) and ``out_dir``.

    Raises
    ------
    FullcycleError
        When the project, the report folder or the public data cannot be found; a faulty
        kit is a result with its reason, never an exception.
    """
    kit = Path(kit).resolve()  # "." names its folder
    spec = _spec(project, kit)
    out = _out_dir(kit, out_dir)
    config = public_config(spec, out, scale=scale, data_dir=data_dir, overrides=overrides)
    out.mkdir(parents=True, exist_ok=True)
    _clear(out)
    result = _run_grade(kit, spec, config, out, keep_work=keep_work, progress=progress)
    if config.holdout_dir:
        data = f"the public validation files in {config.holdout_dir}"
    else:
        data = f"simulated with the public seed {config.secret_seed}, scale {config.scale}"
    return CheckResult(result, format_check(result, out, data), out)
