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

__all__ = ["RELATION", "cache_key", "reference_figures", "reference_kit", "relative_figures"]

#: The suffix of a figure relative to the reference's.
RELATION = "vs_reference"
#: What the reference's run provides: the steps of a grading up to the decision policy.
_STEPS = ("prepare", "execute", "collect", "validate", "score", "probe_policy")


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


def reference_figures(job) -> dict:
    """The reference kit's figures on ``job``'s hidden world, from the cache or graded now.

    Returns ``{"figures": {...}, "key": ..., "cached": bool, "seconds": float}``.

    Raises
    ------
    RuntimeError
        When the reference kit does not reach valid predictions on this world.
    """
    from grading.pipeline import STEPS, Job, run_steps

    kit = reference_kit(job.spec)
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
        run_steps(sub, steps)
        if sub.sandbox is not None:
            sub.sandbox.close()
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


def relative_figures(
    learner: dict[str, float], reference: dict[str, float], wanted
) -> tuple[dict[str, float], dict[str, str]]:
    """``<figure>.vs_reference`` for each wanted name; and why, for those without a value."""
    out: dict[str, float] = {}
    reasons: dict[str, str] = {}
    for name in wanted:
        base = name.removesuffix("." + RELATION)
        mine, ref = learner.get(base), reference.get(base)
        if ref is None:
            reasons[name] = f"the reference solution has no {base} on this hidden world"
        elif mine is None or (isinstance(mine, float) and math.isnan(mine)):
            continue  # the base figure's own reason applies
        elif not ref > 0:
            reasons[name] = (
                f"the reference solution's {base} is {ref:.4g} on this hidden world: "
                "a ratio to it means nothing"
            )
        else:
            out[name] = float(mine) / float(ref)
    return out, reasons
