"""Is each package's public surface declared and complete, and does import do no work?"""

import importlib
import inspect
import subprocess
import sys

import pytest

MODULES = [
    "fullcycle",
    "fullcycle.data",
    "fullcycle.metrics",
    "fullcycle.metrics.registry",
    "fullcycle.features",
    "fullcycle.spec",
    "fullcycle.brief",
    "fullcycle.tracking",
    "fullcycle.evaluate",
    "fullcycle.run",
    "fullcycle.exceptions",
    "fullcycle.serving",
    "fullcycle.serving.app",
    "fullcycle.serving.state",
    "fullcycle.serving.predlog",
    "fullcycle.serving.process",
    "fullcycle.monitoring",
    "fullcycle.monitoring.drift",
    "fullcycle.monitoring.monitor",
    "fullcycle.retrain",
    "fullcycle.live",
]


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
