"""The reference kit's figures on a hidden world: fair bars that do not depend on the seed's luck.

Some hidden worlds are harder than others: the same model reaches an AUC of
0.853 under one secret seed and 0.883 under another. A bar on the figure
itself then grades the seed as much as the learner. The grader therefore
grades the project's own reference kit on the same hidden world (the same
steps as a submission: the notebook in the sandbox, the scorecard and the
decision policy outside), once per secret seed, and caches its figures; a
rubric line on ``<figure>.vs_reference`` compares the learner's figure with
the reference's:

    <figure>.vs_reference = learner's figure / reference's figure

(1.0 = as good as the reference). The cache key is the SHA-256 of the seed,
the spec's hash, the scale, and the hashes of the reference kit and of the
library's code, so a changed kit or metric never reuses stale figures.

A learner's self-check (``config.public``, :mod:`grading.check`) grades on
public data, and in a learner release the project's kit is the learner's
stubbed copy, not the reference. ``fullcycle release`` therefore measures the
reference kit on the public data with this module (:func:`public_entries`) and
writes the figures into the release, ``projects/<name>/public_reference.json``::

    {"small": {"figures": {...}, "spec_sha256": ..., "seed": <public seed>,
               "data_fingerprint": ...}}

A self-check uses the entry of its scale when the spec's hash, the seed and
the data's fingerprint are the ones it grades with; otherwise it grades the
project's kit when that is a reference solution (in the course repository).
When neither is possible the ``vs_reference`` lines are *not measured* (they
weigh nothing) with the reason, never a grader error: the learner's check is
not at fault.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

__all__ = [
    "HIDDEN",
    "PUBLIC",
    "PUBLISHED",
    "RELATION",
    "Figures",
    "cache_key",
    "public_entries",
    "published_figures",
    "reference_figures",
    "reference_kit",
    "relative_figures",
]

#: The suffix of a figure relative to the reference's.
RELATION = "vs_reference"
#: The file of a learner release's project folder with the reference's figures on public data.
PUBLISHED = "public_reference.json"
#: What the reference's run provides: the steps of a grading up to the decision policy.
_STEPS = ("prepare", "execute", "collect", "validate", "score", "probe_policy")
#: Where figures were measured, as the reasons and the feedback say it.
HIDDEN, PUBLIC = "this hidden world", "the public data"
#: The largest ``public_reference.json`` read (it holds a few figures per scale).
_MAX_PUBLISHED = 1 << 20
#: The largest kit file looked at for a learner's stub.
_MAX_KIT_FILE = 8 << 20
#: What :func:`grading.release.strip_solutions` leaves where a solution was.
_STUB = ("# YOUR CODE HERE", 'raise NotImplementedError("not implemented yet")')


class Figures(dict):
    """The reference's figures (name -> value), and where they were measured.

    A plain ``dict`` to every reader (``result.json`` holds it as one); ``where``
    words the reasons of :func:`relative_figures`, and ``missing`` says why there
    are no figures at all (a self-check without a reference, see the module docstring).
    """

    def __init__(self, values=(), *, where: str = HIDDEN, missing: str | None = None):
        super().__init__(values)
        self.where = where
        self.missing = missing


def _tree_hash(root: Path, pattern: str = "*") -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob(pattern)):
        if not p.is_file() or "__pycache__" in p.parts or ".ipynb_checkpoints" in p.parts:
            continue
        h.update(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def reference_kit(spec) -> Path:
    """The project's own kit folder (``kit.path`` beside the ``projects`` folder)."""
    repo = spec.root.parent.parent if spec.root else Path.cwd()
    kit = repo / spec.kit.path
    if not kit.is_dir():
        raise FileNotFoundError(f"the reference kit {kit} does not exist")
    return kit


def cache_key(config, spec, kit: Path) -> str:
    """SHA-256 of the seed's hash, the spec's hash, the scale, the kit's and the library's code."""
    import fullcycle

    library = Path(fullcycle.__file__).resolve().parent
    parts = [
        hashlib.sha256(config.secret_seed.encode()).hexdigest(),
        spec.sha256 or "",
        config.scale,
        _tree_hash(kit),
        _tree_hash(library, "*.py"),
        _tree_hash(Path(__file__).resolve().parent, "*.py"),
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _cache_dir(config) -> Path:
    name = config.cache_dir
    if getattr(config, "root", None) is None and not Path(name).is_absolute():
        return Path(tempfile.gettempdir()) / "fullcycle-grading-cache" / "reference"
    return config.path(name) / "reference"


def _wanted(spec) -> list[str]:
    return [c.metric for c in spec.rubric if c.metric.endswith("." + RELATION)]


def reference_figures(job) -> dict:
    """The reference kit's figures on ``job``'s world, from the cache or graded now.

    Returns ``{"figures": Figures, "key": ..., "cached": bool, "seconds": float,
    "data": "hidden" | "public", "source": ...}``; ``source`` is ``"reference kit"``
    (graded now or cached) or ``"release"`` (a learner release's
    :data:`PUBLISHED` file).

    For a self-check (``job.config.public``) see :func:`_public_figures`: it never
    raises; figures it cannot have come back empty with ``"unavailable"`` (the
    reason), and the job's ``vs_reference`` lines are marked not measured
    (``job.disabled``), so they weigh nothing.

    Raises
    ------
    RuntimeError
        When the reference kit does not reach valid predictions on this world
        (an instructor's grading: the grader's own kit is at fault).
    """
    if getattr(job.config, "public", False):
        return _public_figures(job)
    out = _graded(job, reference_kit(job.spec))
    return {**out, "figures": Figures(out["figures"]), "data": "hidden", "source": "reference kit"}


def _graded(job, kit: Path) -> dict:
    """Grade ``kit`` on ``job``'s world (or read the cache): ``{"figures", "key", "cached", "seconds"}``."""
    from grading.pipeline import STEPS, Job, run_steps

    key = cache_key(job.config, job.spec, kit)
    folder = _cache_dir(job.config)
    path = folder / f"{key}.json"
    if path.is_file():
        try:
            data = json.loads(path.read_text())
            return {"figures": data["figures"], "key": key, "cached": True, "seconds": 0.0}
        except (ValueError, KeyError, OSError):
            pass  # a damaged cache entry is recomputed
    t0 = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="fullcycle-reference-"))
    try:
        (work / "job").mkdir()
        (work / "private").mkdir()
        sub = Job(job.spec, job.config, kit, work / "out", work / "private", work / "job")
        sub.holdout = job.holdout
        steps = [(name, fn) for name, fn in STEPS if name in _STEPS]
        try:
            run_steps(sub, steps)
        finally:
            for sandbox in {id(s): s for s in [sub.sandbox, *sub.sandboxes] if s}.values():
                sandbox.close()
        if sub.scores is None:
            why = "; ".join(sub.messages) or sub.unmeasured.get("") or "no valid predictions"
            raise RuntimeError(f"the reference kit {kit} failed: {why}"[:600])
        figures = {
            k: float(v)
            for k, v in sub.metrics.items()
            if isinstance(v, int | float) and math.isfinite(v)
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    seconds = round(time.monotonic() - t0, 3)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{key}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps({"figures": figures, "seconds": seconds}, sort_keys=True))
    os.replace(tmp, path)
    return {"figures": figures, "key": key, "cached": False, "seconds": seconds}


def _fingerprint(holdout) -> str | None:
    return holdout.fingerprint() if holdout is not None else None


def published_figures(spec, config, holdout) -> tuple[dict | None, str | None]:
    """The figures of ``spec``'s :data:`PUBLISHED` file for this public world, or why there are none.

    Returns ``(figures, None)`` when the file has an entry for ``config.scale`` measured
    on the same spec (hash), seed and data (fingerprint); else ``(None, reason)``, the
    reason ``None`` when there is no file at all (not a learner release).
    """
    if spec.root is None:
        return None, None
    path = Path(spec.root) / PUBLISHED
    if not path.is_file():
        return None, None
    try:
        with path.open("rb") as f:
            raw = f.read(_MAX_PUBLISHED + 1)
        if len(raw) > _MAX_PUBLISHED:
            raise ValueError(f"larger than {_MAX_PUBLISHED} bytes")
        entries = json.loads(raw)
        if not isinstance(entries, dict):
            raise ValueError("not a JSON object of scales")
        entry = entries.get(config.scale)
        if entry is not None and not isinstance(entry.get("figures"), dict):
            raise ValueError(f"its entry {config.scale!r} has no figures")
    except (OSError, ValueError, AttributeError) as exc:
        return None, f"{path} is damaged ({exc}); take it again from the course's release"
    if entry is None:
        scales = ", ".join(sorted(str(k) for k in entries)) or "none"
        return None, (
            f"the release holds the reference solution's figures for scale {scales}, not "
            f"{config.scale}; run `fullcycle check` with `--scale {sorted(entries)[0]}`"
            if entries
            else f"{path} holds no figures"
        )
    if entry.get("spec_sha256") != spec.sha256:
        return None, (
            f"{Path(spec.root) / 'project.yaml'} is not the one the release's reference "
            "figures were measured with (it was changed); take it again from the release"
        )
    if entry.get("seed") != config.secret_seed:
        return None, "the release's reference figures were measured on other data (another seed)"
    if entry.get("data_fingerprint") not in (None, _fingerprint(holdout)):
        return None, (
            "the public data made here differ from those the release's reference figures were "
            "measured on (other data files, or other versions of numpy or pandas)"
        )
    figures = {
        str(k): float(v)
        for k, v in entry["figures"].items()
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    }
    return figures, None


def _stubbed(kit: Path) -> bool:
    """Whether ``kit`` is a learner's copy: a module or notebook cell still holds a release stub."""
    for p in sorted(kit.rglob("*")):
        if p.suffix not in (".py", ".ipynb") or p.is_symlink() or not p.is_file():
            continue
        if p.stat().st_size > _MAX_KIT_FILE:
            continue
        text = p.read_text(errors="replace")
        if p.suffix == ".ipynb":
            try:
                cells = json.loads(text).get("cells", [])
                text = "\n".join(
                    c["source"] if isinstance(c["source"], str) else "".join(c["source"])
                    for c in cells
                )
            except (ValueError, AttributeError, KeyError, TypeError):
                continue
        if _STUB[0] in text and _STUB[1] in text:
            return True
    return False


def _disable_unusable(job, figures: dict) -> None:
    """Mark not measured the lines a self-check's reference figures cannot serve (none, or <= 0).

    On public data that is no fault of the learner's: the line weighs nothing.
    """
    wanted = _wanted(job.spec)
    anything = {name.removesuffix("." + RELATION): 1.0 for name in wanted}
    _, reasons = relative_figures(anything, Figures(figures, where=PUBLIC), wanted)
    job.disabled.update(reasons)


def _public_figures(job) -> dict:
    """The reference's figures on a self-check's public data: the release's, graded, or none."""
    base = {"key": None, "cached": True, "seconds": 0.0, "data": "public"}
    figures, why_file = published_figures(job.spec, job.config, job.holdout)
    if figures is not None:
        _disable_unusable(job, figures)
        return {**base, "figures": Figures(figures, where=PUBLIC), "source": "release"}
    why = why_file
    if why is None:
        try:
            kit = reference_kit(job.spec)
        except FileNotFoundError as exc:
            why = f"{exc}, and this folder holds no {PUBLISHED} (not a learner release)"
        else:
            if _stubbed(kit):
                why = (
                    f"{kit} is a learner's copy (its solutions are stubbed), and this folder "
                    f"holds no {PUBLISHED}; take the project folder again from the release"
                )
            else:
                try:
                    out = _graded(job, kit)
                except Exception as exc:  # the project's kit: never the learner's fault
                    why = f"the reference kit {kit} could not be graded on the public data ({exc})"
                else:
                    figures = Figures(out["figures"], where=PUBLIC)
                    _disable_unusable(job, figures)
                    return {**out, "figures": figures, "data": "public", "source": "reference kit"}
    why = f"the reference solution's figures on the public data are not available: {why}"
    for name in _wanted(job.spec):
        job.disabled[name] = why
    return {
        **base,
        "figures": Figures(where=PUBLIC, missing=why),
        "source": None,
        "unavailable": why,
    }


def public_entries(spec, scales, work: Path | None = None) -> dict:
    """What a release writes into ``projects/<name>/public_reference.json``, per scale.

    The project's kit (``spec``'s, a reference solution) is graded on the public data
    of each scale as a self-check would (:func:`grading.check.public_config`: the
    public seed, its sandbox mode, the check's reference cache).

    Returns
    -------
    dict
        ``{scale: {"figures", "spec_sha256", "seed", "data_fingerprint"}}``: the same bytes
        for the same sources, whether graded now or read from the cache.

    Raises
    ------
    RuntimeError
        When the reference kit does not reach valid predictions on the public data.
    """
    from fullcycle.holdout import build_holdout
    from grading.check import public_config
    from grading.pipeline import Job

    kit = reference_kit(spec)
    out: dict = {}
    own = work is None
    work = Path(tempfile.mkdtemp(prefix="fullcycle-public-reference-")) if own else Path(work)
    try:
        for scale in scales:
            cfg = public_config(spec, work, scale=scale)
            holdout = build_holdout(spec, cfg.seed_int, cfg.scale, cfg.path(cfg.holdout_dir))
            job = Job(spec, cfg, kit, work, work, work, holdout=holdout)
            got = _graded(job, kit)
            out[scale] = {
                "figures": got["figures"],
                "spec_sha256": spec.sha256,
                "seed": cfg.secret_seed,
                "data_fingerprint": _fingerprint(holdout),
            }
    finally:
        if own:
            shutil.rmtree(work, ignore_errors=True)
    return out


def relative_figures(
    learner: dict[str, float], reference: dict[str, float], wanted
) -> tuple[dict[str, float], dict[str, str]]:
    """``<figure>.vs_reference`` for each wanted name; and why, for those without a value.

    ``reference`` may be a :class:`Figures`: its ``where`` words the reasons, and its
    ``missing`` is the reason of every wanted name when it holds no figures.
    """
    where = getattr(reference, "where", HIDDEN)
    missing = getattr(reference, "missing", None)
    out: dict[str, float] = {}
    reasons: dict[str, str] = {}
    for name in wanted:
        base = name.removesuffix("." + RELATION)
        mine, ref = learner.get(base), reference.get(base)
        if ref is None:
            reasons[name] = missing or f"the reference solution has no {base} on {where}"
        elif mine is None or (isinstance(mine, float) and math.isnan(mine)):
            continue  # the base figure's own reason applies
        elif not ref > 0:
            reasons[name] = (
                f"the reference solution's {base} is {ref:.4g} on {where}: "
                "a ratio to it means nothing"
            )
        else:
            out[name] = float(mine) / float(ref)
    return out, reasons
