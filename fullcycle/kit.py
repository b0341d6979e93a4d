"""A starter kit on disk: the learner's system, one module per stage, loaded by path.

The library never holds a stage's solution; it calls the kit's. A project's
``kit.stages`` (see :class:`fullcycle.spec.KitSpec`) names each stage's entry
point as ``module:attribute``; :class:`Kit` imports those modules from the
kit folder (the learner's copy or the reference) under a private module name,
so two kits can be loaded side by side in one process.

Stages and what each entry point must be (the grader checks the same):

=========== ============================ ===================================================
stage       default entry point          contract
=========== ============================ ===================================================
contract    ``contract:validate_export`` ``(raw, labelled=True) -> ValidationResult``
features    ``features:build_features``  ``(delay_days) -> transformer``; ``fit(history, y)``,
                                         ``transform(rows) -> DataFrame`` of the features
online      ``features:OnlineFeatures``  ``(store, delay_days)``; ``features(tx) -> dict``,
                                         ``update(tx)``, ``label(pairs)``
model       ``model:build_model``        ``(seed=0) -> unfitted classifier``
policy      ``policy:review_priority``   ``(candidates, value) -> priorities`` (NaN: skip)
service     ``service:create_app``       FastAPI app factory for ``uvicorn --factory``
drift       ``monitor:check_drift``      ``(reference, current) -> {"drift": bool, ...}``
decay       ``monitor:check_decay``      ``(reference, current, value) -> {"decay": bool, ...}``
promotion   ``retrain:should_promote``   ``(champion, challenger, margin, gate)
                                         -> {"promote": bool, "reason": str}``; the sides'
                                         figures are named by the spec's ``retraining``
=========== ============================ ===================================================
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from fullcycle.exceptions import SpecError

__all__ = ["DEFAULT_STAGES", "STAGES", "Kit", "NotImplementedStage", "load_kit"]

#: Every stage a learner builds, with its default ``module:attribute``.
DEFAULT_STAGES: dict[str, str] = {
    "contract": "contract:validate_export",
    "features": "features:build_features",
    "online": "features:OnlineFeatures",
    "model": "model:build_model",
    "policy": "policy:review_priority",
    "service": "service:create_app",
    "drift": "monitor:check_drift",
    "decay": "monitor:check_decay",
    "promotion": "retrain:should_promote",
}
STAGES = tuple(DEFAULT_STAGES)
_LOADED: dict[tuple[str, int], ModuleType] = {}


class NotImplementedStage(SpecError):
    """A stage's entry point is missing from the kit (or still raises NotImplementedError)."""


class Kit:
    """The kit folder ``path`` with the stage entry points ``stages`` (defaults filled in).

    Parameters
    ----------
    path : path
        The kit folder (holds the stage modules and the notebook).
    stages : dict, optional
        ``stage -> "module:attribute"`` overrides of :data:`DEFAULT_STAGES`.
    """

    def __init__(self, path: str | Path, stages: dict[str, str] | None = None):
        self.path = Path(path).resolve()
        if not self.path.is_dir():
            raise SpecError(f"kit folder {self.path} does not exist; pass --kit DIR")
        unknown = sorted(set(stages or {}) - set(DEFAULT_STAGES))
        if unknown:
            raise SpecError(f"unknown kit stage(s) {unknown}; the stages are {list(STAGES)}")
        self.stages = {**DEFAULT_STAGES, **(stages or {})}
        self._modules: dict[str, ModuleType] = {}
        tag = hashlib.sha256(str(self.path).encode()).hexdigest()[:12]
        self._prefix = f"_fullcycle_kit_{tag}"

    def __repr__(self) -> str:
        return f"Kit({str(self.path)!r})"

    def module(self, name: str) -> ModuleType:
        """Import the kit's module ``name`` (``<kit>/<name>.py``) once, by path."""
        if name in self._modules:
            return self._modules[name]
        file = self.path / f"{name}.py"
        if not file.is_file():
            raise NotImplementedStage(
                f"{file} does not exist; the kit needs this module (see the project brief)"
            )
        # One module object per file version: two Kit objects of one folder share it, so
        # objects made through either still pickle; an edited file is loaded afresh.
        key = (str(file), file.stat().st_mtime_ns)
        if key in _LOADED:
            self._modules[name] = _LOADED[key]
            return _LOADED[key]
        # The kit's modules import each other by plain name (``from features import ...``):
        # put the kit folder first on the path while this one executes.
        unique = f"{self._prefix}_{name}"
        spec = importlib.util.spec_from_file_location(unique, file)
        module = importlib.util.module_from_spec(spec)
        sys.modules[unique] = module
        added = str(self.path) not in sys.path
        if added:
            sys.path.insert(0, str(self.path))
        saved = {k: sys.modules.get(k) for k in self._sibling_names()}
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(unique, None)
            raise
        finally:
            # Sibling modules imported by plain name belong to this kit only: forget them so
            # that another kit loaded later gets its own.
            for k, old in saved.items():
                if old is None:
                    sys.modules.pop(k, None)
                else:
                    sys.modules[k] = old
            if added:
                sys.path.remove(str(self.path))
        self._modules[name] = _LOADED[key] = module
        return module

    def _sibling_names(self) -> list[str]:
        return [p.stem for p in self.path.glob("*.py")]

    def entry(self, stage: str):
        """The object a stage's entry point names (a function or a class)."""
        if stage not in self.stages:
            raise SpecError(f"unknown kit stage {stage!r}; the stages are {list(STAGES)}")
        module_name, attr = self.stages[stage].split(":")
        obj = getattr(self.module(module_name), attr, None)
        if obj is None:
            raise NotImplementedStage(
                f"{self.path / (module_name + '.py')} has no {attr!r} (the {stage} stage)"
            )
        return obj

    # Typed shortcuts, so that library code reads as the cycle it runs.
    def validate(self, raw, labelled: bool = True):
        """Run the kit's data contract on a raw export."""
        return self.entry("contract")(raw, labelled=labelled)

    def build_features(self, delay_days: int):
        return self.entry("features")(delay_days)

    def build_model(self, seed: int = 0):
        return self.entry("model")(seed=seed)


def load_kit(spec, kit_dir: str | Path | None = None) -> Kit:
    """The kit of ``spec``: ``kit_dir`` if given, else the project's own (``kit.path``)."""
    if kit_dir is None:
        repo = spec.root.parent.parent if spec.root else Path.cwd()
        kit_dir = repo / spec.kit.path
    return Kit(kit_dir, dict(getattr(spec.kit, "stages", None) or {}))
