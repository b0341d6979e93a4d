"""Is each package's public surface declared and complete, and does import do no work?"""

import importlib
import inspect
import subprocess
import sys

import pytest


def _library_modules() -> list[str]:
    import pkgutil

    import fullcycle

    return ["fullcycle"] + sorted(
        m.name
        for m in pkgutil.walk_packages(fullcycle.__path__, "fullcycle.")
        if m.name != "fullcycle.__main__"
    )


MODULES = _library_modules()


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist_and_public_definitions_are_listed(name):
    module = importlib.import_module(name)
    assert all(hasattr(module, n) for n in module.__all__)
    defined_here = {
        n
        for n, obj in vars(module).items()
        if not n.startswith("_")
        and (inspect.isclass(obj) or inspect.isfunction(obj))
        and getattr(obj, "__module__", "") == name
    }
    assert defined_here <= set(module.__all__), (
        f"missing from __all__: {defined_here - set(module.__all__)}"
    )


def test_import_does_no_work(tmp_path):
    """Does importing fullcycle leave the working folder alone and not load MLflow?"""
    code = "import fullcycle, fullcycle.data, fullcycle.run, sys; print('mlflow' in sys.modules)"
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert proc.stdout.strip() == "False"
    assert list(tmp_path.iterdir()) == []


def test_the_library_holds_no_stage_of_the_learners_system():
    """Could a learner import a stage's answer from the library instead of writing it?

    No module of ``fullcycle`` may define a kit stage's entry point, a scikit-learn
    transformer, or a FastAPI app or route: those are the kit's (the learner's) to write.
    """
    from fastapi import APIRouter, FastAPI
    from sklearn.base import TransformerMixin

    from fullcycle.kit import DEFAULT_STAGES

    forbidden = {entry.split(":")[1] for entry in DEFAULT_STAGES.values()}
    forbidden |= {"FraudFeatures", "transaction_schema", "FeatureState"}
    found = []
    for name in MODULES:
        module = importlib.import_module(name)
        for attr, obj in vars(module).items():
            where = f"{name}.{attr}"
            if attr in forbidden:
                found.append(where)
            elif isinstance(obj, APIRouter | FastAPI):
                found.append(f"{where} (a FastAPI app or router)")
            elif (
                inspect.isclass(obj)
                and issubclass(obj, TransformerMixin)
                and obj.__module__.startswith("fullcycle")
            ):
                found.append(f"{where} (a scikit-learn transformer)")
    assert not found, f"the library holds stage solutions: {found}"
