"""Is the learner release installable, and does it hold no solution?

The release is built into a temporary folder and its wheel is installed into a
fresh virtual environment that sees neither the repository nor its editable
install. Tests may not reach PyPI, so the fresh environment borrows the
*third-party* packages of the development environment through one ``.pth``
line (a path added that way is not scanned for ``.pth`` files, so the editable
``fullcycle`` finder stays out); ``fullcycle`` itself comes only from the
release's wheel (``pip install --no-deps --no-index``), and each test checks
that this is the ``fullcycle`` that ran.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from grading.release import BEGIN, END, build_wheel, release

REPO = Path(__file__).resolve().parents[2]

#: Reference solutions of learner stages (see the kit's stage table): none may be defined in,
#: or importable from, the installed library. Structural checks below add any FastAPI route and
#: any scikit-learn transformer, whatever its name.
FORBIDDEN = (
    "validate_export",  # data contract
    "transaction_schema",  # the pandera contract of the fraud export
    "build_features",  # features
    "FraudFeatures",
    "CustomerSpendingFeatures",
    "TerminalRiskFeatures",
    "OnlineFeatures",  # online features
    "FeatureState",
    "build_model",  # model
    "review_priority",  # decision policy
    "create_app",  # service
    "make_app",
    "check_drift",  # monitoring
    "check_decay",
    "should_promote",  # retraining
)
#: Route decorators of FastAPI apps and routers: a route in the library is the learner's service.
ROUTE_METHODS = {"get", "post", "put", "patch", "delete", "api_route", "websocket"}
#: A line of a solution region this long that turns up elsewhere is a copy of the solution.
SOLUTION_LINE_MIN = 40

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_SKIP = {"__pycache__", ".ipynb_checkpoints", "workspace", "mlruns", ".venv"}


@dataclass(frozen=True)
class Fresh:
    """A fresh virtual environment with the release's wheel installed."""

    root: Path
    python: Path
    site: Path
    env: dict
    tmp: Path

    def run(self, *args, timeout=300, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(a) for a in args],
            cwd=self.tmp,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            **kwargs,
        )


def _sh(*args, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def released(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("release") / "course"
    release(REPO, out)
    return out


@pytest.fixture(scope="module")
def fresh(released, tmp_path_factory) -> Fresh:
    tmp = tmp_path_factory.mktemp("fresh")
    root = tmp / "venv"
    _sh(sys.executable, "-m", "venv", "--without-pip", root, timeout=120)
    python = root / "bin" / "python"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "JUPYTER_PATH"}
    }
    env.update(
        PATH=f"{root / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        PYTHONNOUSERSITE="1",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        JUPYTER_PLATFORM_DIRS="1",
        JUPYTER_RUNTIME_DIR=str(tmp / "jupyter-runtime"),
        MPLBACKEND="Agg",
        MLFLOW_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="true",
    )
    env.pop("MLFLOW_TRACKING_URI", None)
    site = Path(
        _sh(
            python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=tmp, env=env
        ).stdout.strip()
    )
    # Third-party packages only: the editable install's .pth finder is not run from here.
    (site / "zz_third_party_from_dev_venv.pth").write_text(sysconfig.get_path("purelib") + "\n")
    (wheel,) = (released / "wheels").glob("fullcycle-*.whl")
    _sh(
        sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index",
        "--quiet", wheel, cwd=tmp, env=env, timeout=300,
    )  # fmt: skip
    kernel = root / "share" / "jupyter" / "kernels" / "release-venv"
    kernel.mkdir(parents=True)
    (kernel / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "release venv",
                "language": "python",
            }
        )
    )
    return Fresh(root, python, site, env, tmp)


def _kit_files(repo: Path) -> list[Path]:
    return sorted(
        p.relative_to(repo)
        for p in (repo / "starter_kits").rglob("*")
        if p.is_file()
        and not _SKIP & set(p.relative_to(repo).parts)
        and not re.search(r"\.(pyc|joblib|pkl|pickle|sqlite|db)$|\.executed\.ipynb$", p.name)
    )


def _code_text(path: Path) -> str:
    """A file's text; for a notebook, the source of its code cells."""
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text())["cells"]
        return "\n".join(
            "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
            for c in cells
            if c["cell_type"] == "code"
        )
    return path.read_text()


def _solution_lines(repo: Path) -> dict[str, str]:
    """Long code lines found only inside the solution regions of the repository's kits -> where.

    A line the kits also hold outside a region is given to the learner, so it proves nothing.
    """
    lines: dict[str, str] = {}
    given: set[str] = set()
    for rel in _kit_files(repo):
        if rel.suffix not in (".py", ".ipynb"):
            continue
        inside = False
        for line in _code_text(repo / rel).splitlines():
            stripped = line.strip()
            if stripped in (BEGIN, END):
                inside = stripped == BEGIN
            elif not inside:
                given.add(stripped)
            elif len(stripped) >= SOLUTION_LINE_MIN and not stripped.startswith("#"):
                lines.setdefault(stripped, str(rel))
    return {line: where for line, where in lines.items() if line not in given}


def _text_files(root: Path) -> list[Path]:
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and p.suffix in (".py", ".ipynb", ".md", ".yaml", ".yml", ".txt", ".json")
    )


def _definitions_and_routes(path: Path, rel: str) -> list[str]:
    """Forbidden names defined in ``path`` (at module level, or any class) and route decorators."""
    tree = ast.parse(path.read_text(), str(path))
    found = [
        f"{rel}: defines {node.name}"
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        and node.name in FORBIDDEN
    ]
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name in FORBIDDEN and node not in tree.body:
            found.append(f"{rel}: defines class {node.name}")
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for deco in node.decorator_list:
                if (
                    isinstance(deco, ast.Call)
                    and isinstance(deco.func, ast.Attribute)
                    and deco.func.attr in ROUTE_METHODS
                    and deco.args
                    and isinstance(deco.args[0], ast.Constant)
                    and str(deco.args[0].value).startswith("/")
                ):
                    found.append(f"{rel}:{node.lineno}: route {deco.args[0].value!r}")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "add_api_route"
        ):
            found.append(f"{rel}:{node.lineno}: add_api_route")
    return found


# --- the release folder -------------------------------------------------------------------


def test_the_wheel_holds_only_the_library_and_is_reproducible(tmp_path):
    """Is the learner's wheel the fullcycle package alone, the same bytes on every build?"""
    first = build_wheel(REPO, tmp_path / "a")
    second = build_wheel(REPO, tmp_path / "b")
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as wheel:
        names = wheel.namelist()
        meta = wheel.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        entry = wheel.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"fullcycle", first.name.split("-py3")[0] + ".dist-info"}, tops
    assert "fullcycle/__init__.py" in names and "fullcycle/cli.py" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert "Requires-Dist: pandas" in meta and "Requires-Dist: pytest" not in meta
    assert "fullcycle = fullcycle.cli:main" in entry


@pytest.mark.integration
@pytest.mark.slow
def test_the_release_has_two_commands_a_wheel_every_kit_file_and_the_projects(released):
    """Does the folder hold what a learner needs, and the README the two commands that use it?"""
    (wheel,) = (released / "wheels").glob("fullcycle-*-py3-none-any.whl")
    readme = (released / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", readme, re.S)
    assert block, "the README has no ```bash block with the commands"
    commands = block[1].strip().splitlines()
    assert len(commands) == 2, commands
    assert "-m venv .venv" in commands[0] and f"pip install wheels/{wheel.name}" in commands[0]
    assert commands[1] == ".venv/bin/jupyter lab"
    missing = [str(rel) for rel in _kit_files(REPO) if not (released / rel).is_file()]
    assert not missing, f"kit files not released: {missing}"
    for spec in (REPO / "projects").glob("*/project.yaml"):
        for name in ("project.yaml", "README.md"):
            assert (released / "projects" / spec.parent.name / name).is_file()
    marked = [
        str(p.relative_to(released))
        for p in _text_files(released)
        if BEGIN in p.read_text() or END in p.read_text()
    ]
    assert not marked, f"solution markers in the release: {marked}"
    stubbed = [
        rel
        for rel in _kit_files(REPO)
        if rel.suffix in (".py", ".ipynb") and BEGIN in (REPO / rel).read_text()
    ]
    assert stubbed, "the kits have no solution region: nothing for a learner to write"
    for rel in stubbed:
        assert 'raise NotImplementedError("not implemented yet")' in _code_text(released / rel)
    assert not list(released.rglob("grading*.y*ml")) and not list(released.rglob("*.joblib"))
    assert not (released / "grading").exists()


# --- the release, installed in a fresh environment ------------------------------------------


@pytest.mark.integration
@pytest.mark.slow
def test_the_library_comes_from_the_wheel_and_the_grader_is_absent(fresh):
    """Does `import fullcycle` resolve to the wheel's install, with no grader and no repository?"""
    probe = fresh.run(
        fresh.python,
        "-c",
        "import importlib.metadata as m, importlib.util as u, json, sys, fullcycle;"
        "print(json.dumps({'file': fullcycle.__file__, 'grading': u.find_spec('grading') is None,"
        "'dist': str(m.distribution('fullcycle').locate_file('')), 'path': sys.path}))",
    )
    assert probe.returncode == 0, probe.stderr
    seen = json.loads(probe.stdout)
    assert Path(seen["file"]).is_relative_to(fresh.site), seen["file"]
    assert Path(seen["dist"]) == fresh.site, seen["dist"]
    assert seen["grading"], "the grader is importable in the learner's environment"
    assert not [p for p in seen["path"] if p and Path(p).resolve() == REPO], seen["path"]
    cli = fresh.run(fresh.root / "bin" / "fullcycle", "--help")
    assert cli.returncode == 0 and "release" in cli.stdout, cli.stdout + cli.stderr


_DRIVER = """
import json, sys
import nbformat, papermill as pm
from papermill.exceptions import PapermillExecutionError

src, staged, out, cwd, params, probe = sys.argv[1:]
nb = nbformat.read(src, as_version=4)
nb.cells.insert(0, nbformat.v4.new_code_cell(
    "import importlib.util as _u, json as _j, sys as _s, fullcycle as _f\\n"
    f"_j.dump({{'executable': _s.executable, 'fullcycle': _f.__file__,"
    f" 'grading': _u.find_spec('grading') is not None}}, open({probe!r}, 'w'))"
))
nbformat.write(nb, staged)
try:
    pm.execute_notebook(staged, out, parameters=json.loads(params), cwd=cwd,
                        kernel_name="release-venv", progress_bar=False)
    print(json.dumps({"ename": None}))
except PapermillExecutionError as exc:
    print(json.dumps({"ename": exc.ename, "evalue": exc.evalue, "cell": exc.exec_count,
                      "traceback": "\\n".join(exc.traceback)}))
"""


@pytest.mark.integration
@pytest.mark.slow
def test_the_released_kit_notebook_runs_to_its_first_stub(fresh, released):
    """On tiny data, does the released notebook run until a stubbed stage says it is not written,
    rather than failing on an import or a name the release lost?"""
    driver = fresh.tmp / "driver.py"
    driver.write_text(_DRIVER)
    kit = released / "starter_kits" / "fraud_detection"
    params = {
        "scale": "tiny",
        "workspace": str(fresh.tmp / "ws"),
        "predictions_path": str(fresh.tmp / "predictions.csv"),
        "model_dir": str(fresh.tmp / "model"),
    }
    probe = fresh.tmp / "probe.json"
    result = fresh.run(
        fresh.python,
        driver,
        kit / "pipeline.ipynb",
        fresh.tmp / "staged.ipynb",
        fresh.tmp / "executed.ipynb",
        kit,
        json.dumps(params),
        probe,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(probe.read_text())
    assert Path(seen["executable"]).parent == fresh.python.parent, seen
    assert Path(seen["fullcycle"]).is_relative_to(fresh.site) and not seen["grading"], seen
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    trace = _ANSI.sub("", outcome.get("traceback") or "")
    assert outcome["ename"] == "NotImplementedError", (
        f"the released notebook did not stop at a stub: {outcome['ename']}: "
        f"{outcome.get('evalue')}\n{trace[-3000:]}"
    )
    assert outcome["evalue"] == "not implemented yet"
    assert str(kit) in trace, f"the error was not raised by a released kit module:\n{trace}"


_SCAN = """
import importlib, importlib.util, inspect, json, pkgutil, sys
import fullcycle
from fastapi import APIRouter, FastAPI
from sklearn.base import TransformerMixin

names = set(json.loads(sys.argv[1]))
report = {"broken": {}, "attributes": [], "routes": [], "transformers": []}
modules = ["fullcycle"] + [
    info.name for info in pkgutil.walk_packages(
        fullcycle.__path__, "fullcycle.",
        onerror=lambda name: report["broken"].setdefault(name, "cannot be walked"))
    if not info.name.endswith("__main__")
]
for name in modules:
    try:
        module = importlib.import_module(name)
    except Exception as exc:
        report["broken"][name] = f"{type(exc).__name__}: {exc}"
        continue
    for attr, value in vars(module).items():
        if attr in names:
            report["attributes"].append(f"{name}.{attr}")
        if isinstance(value, (FastAPI, APIRouter)):
            report["routes"] += [f"{name}.{attr}: {getattr(r, 'path', r)}" for r in value.routes]
        if (inspect.isclass(value) and issubclass(value, TransformerMixin)
                and value.__module__.startswith("fullcycle")):
            report["transformers"].append(f"{value.__module__}.{value.__qualname__}")
report["transformers"] = sorted(set(report["transformers"]))
print(json.dumps(report))
"""


@pytest.mark.integration
@pytest.mark.slow
def test_no_reference_solution_is_importable_from_the_installed_library(fresh):
    """Does every module of the installed library import, and does none define or export a
    learner stage's reference solution (by name, a FastAPI route, or a feature transformer)?"""
    scan = fresh.tmp / "scan.py"
    scan.write_text(_SCAN)
    result = fresh.run(fresh.python, scan, json.dumps(FORBIDDEN))
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    installed = fresh.site / "fullcycle"
    static = []
    for path in sorted(installed.rglob("*.py")):
        rel = str(path.relative_to(fresh.site))
        static += _definitions_and_routes(path, rel)
        text = path.read_text()
        if BEGIN in text or END in text:
            static.append(f"{rel}: solution marker")
    problems = {
        "modules that do not import": report["broken"],
        "forbidden names importable": report["attributes"],
        "app routes": report["routes"],
        "feature transformers": report["transformers"],
        "defined in the installed files": static,
    }
    problems = {k: v for k, v in problems.items() if v}
    assert not problems, "the learner's library holds solutions:\n" + json.dumps(problems, indent=1)


@pytest.mark.integration
@pytest.mark.slow
def test_no_line_of_a_reference_solution_is_in_the_release_or_the_library(fresh, released):
    """Is every long line of the kits' solution regions absent from the release and the wheel?"""
    lines = _solution_lines(REPO)
    assert lines, "no solution lines found in the kits; the check would prove nothing"
    copies = []
    for root in (released, fresh.site / "fullcycle"):
        for path in _text_files(root):
            if path.suffix == ".whl":
                continue
            for line in _code_text(path).splitlines():
                if line.strip() in lines:
                    where = path.relative_to(root.parent)
                    copies.append(f"{where}: {line.strip()!r} (from {lines[line.strip()]})")
    assert not copies, "solution code outside its region:\n" + "\n".join(copies)
