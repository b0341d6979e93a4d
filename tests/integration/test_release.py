"""Is the learner release installable, does it hold no solution, and can a learner check a kit?

The release is built into a temporary folder and its wheel is installed into a
fresh virtual environment that sees neither the repository nor its editable
install. Tests may not reach PyPI, so the fresh environment gets the
*third-party* packages of the development environment as hard links (a copy
where the two folders are on different file systems), without the editable
``fullcycle`` install (its ``.pth`` finder and metadata are left out). The
packages are in the environment's own ``site-packages``, as ``pip install``
puts them: the grader's sandbox mounts the environment, and a learner's code
must find its packages there. ``fullcycle`` and ``grading`` come only from
the release's wheel (``pip install --no-deps --no-index``), and each test
checks that this is the ``fullcycle`` that ran.

The release carries the reference solution's figures on public data for the
check scale ``tiny`` only (``check_scales``): grading the fraud reference kit at
the default ``small`` would cost about 20 s more, and the fresh environment's
checks run at ``tiny`` too.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import dataclass
from pathlib import Path

import nbformat
import psutil
import pytest

from grading.course import weeks
from grading.release import BEGIN, END, PACKAGES, build_wheel, release

REPO = Path(__file__).resolve().parents[2]
#: The scale of the fresh environment's checks, and the one the test release carries figures for.
CHECK_SCALE = "tiny"

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

    def run(self, *args, timeout=300, cwd=None, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(a) for a in args],
            cwd=self.tmp if cwd is None else cwd,
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
    with pytest.MonkeyPatch.context() as mp:  # the check's reference cache: not the user's
        mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
        release(REPO, out, check_scales=(CHECK_SCALE,))
    return out


def _third_party(dev: Path, site: Path) -> None:
    """Hard-link (or copy) the development environment's packages into ``site``, but the
    editable ``fullcycle`` install (its finder, ``.pth`` and metadata) and anything of ours."""
    ours = re.compile(r"(^__editable__|^_?fullcycle|^grading)", re.I)
    for src in sorted(dev.iterdir()):
        dest = site / src.name
        if ours.search(src.name) or dest.exists() or src.name == "__pycache__":
            continue
        if src.suffix == ".pth" and str(REPO) in src.read_text(errors="replace"):
            continue
        if src.is_dir():
            try:
                shutil.copytree(src, dest, symlinks=True, copy_function=os.link)
            except (OSError, shutil.Error):  # another file system: copy
                shutil.rmtree(dest, ignore_errors=True)
                shutil.copytree(src, dest, symlinks=True)
        else:
            try:
                os.link(src, dest)
            except OSError:
                shutil.copy2(src, dest)


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
        XDG_CACHE_HOME=str(tmp / "xdg-cache"),
    )
    env.pop("MLFLOW_TRACKING_URI", None)
    site = Path(
        _sh(
            python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=tmp, env=env
        ).stdout.strip()
    )
    _third_party(Path(sysconfig.get_path("purelib")), site)
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


def test_the_wheel_holds_the_library_and_the_grader_and_is_reproducible(tmp_path):
    """Is the learner's wheel the fullcycle and grading packages alone (code and templates),
    the same bytes on every build?"""
    first = build_wheel(REPO, tmp_path / "a")
    second = build_wheel(REPO, tmp_path / "b")
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as wheel:
        names = wheel.namelist()
        meta = wheel.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        entry = wheel.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
        top_level = wheel.read(next(n for n in names if n.endswith("top_level.txt"))).decode()
    dist_info = first.name.split("-py3")[0] + ".dist-info"
    tops = {n.split("/")[0] for n in names}
    assert tops == {"fullcycle", "grading", dist_info}, tops
    assert top_level.split() == ["fullcycle", "grading"]
    assert "fullcycle/__init__.py" in names and "fullcycle/cli.py" in names
    assert "grading/check.py" in names and "grading/templates/feedback.md.j2" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    package_files = [n for n in names if not n.startswith(dist_info)]
    odd = [
        n
        for n in package_files
        if not (n.endswith(".py") or re.fullmatch(r"grading/templates/[^/]+\.(j2|md)", n))
    ]
    assert not odd, f"neither code nor a template: {odd}"
    assert "Requires-Dist: pandas" in meta and "Requires-Dist: pytest" not in meta
    assert "fullcycle = fullcycle.cli:main" in entry


#: A seed an instructor might leave in a package folder: it must reach no learner.
PLANTED_SEED = "5eed" * 8
#: Files an instructor might leave in the package folders; none may enter the wheel.
PLANTED = {
    "grading/grading.yaml": f"secret_seed: {PLANTED_SEED}\n",
    "grading/instructor/grading.yml": f"secret_seed: {PLANTED_SEED}\n",
    "grading/instructor/notes.md": f"seed of this term: {PLANTED_SEED}\n",
    "grading/templates/seed.txt": PLANTED_SEED,
    "grading/results.sqlite": "SQLite format 3\x00",
    "grading/cache/reference/abc.json": json.dumps({"seed": PLANTED_SEED}),
    "grading/holdout.pickle": PLANTED_SEED,
    "grading/hidden/labels.csv": f"TX_FRAUD\n1\n{PLANTED_SEED}\n",
    "grading/.env": f"FULLCYCLE_SEED={PLANTED_SEED}\n",
    "grading/secret_seed.py": f"SEED = {PLANTED_SEED!r}\n",
    "fullcycle/secrets.json": json.dumps({"seed": PLANTED_SEED}),
}


def _course_copy(root: Path) -> Path:
    """The packages and metadata of the repository, copied (never the repository itself)."""
    root.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, root / name)
    for package in PACKAGES:
        shutil.copytree(
            REPO / package, root / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    return root


def test_no_config_store_cache_or_secret_left_in_a_package_reaches_the_wheel(tmp_path):
    """Could a grading config, results store, cache, holdout or secret file that an instructor
    left in a package folder end up in the learner's wheel?"""
    repo = _course_copy(tmp_path / "course")
    for rel, text in PLANTED.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)

    wheel = build_wheel(repo, tmp_path / "wheels")

    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        leaked = sorted(names & set(PLANTED))
        holding = [n for n in names if PLANTED_SEED.encode() in z.read(n)]
    assert not leaked and not holding, (leaked, holding)
    assert "grading/check.py" in names  # the grader itself is there


@pytest.mark.parametrize(
    "rel, text, match",
    [
        ("grading/settings.py", f'SECRET_SEED = "{PLANTED_SEED}"\n', "secret seed"),
        ("grading/answers.py", f"def f():\n    {BEGIN}\n    return 1\n    {END}\n", "solution"),
    ],
    ids=["seed-literal", "solution-region"],
)
def test_is_a_package_file_with_a_seed_or_a_solution_refused(tmp_path, rel, text, match):
    from grading.errors import GradingConfigError

    repo = _course_copy(tmp_path / "course")
    (repo / rel).write_text(text)
    with pytest.raises(GradingConfigError, match=match):
        build_wheel(repo, tmp_path / "wheels")
    assert not (tmp_path / "wheels").exists()


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
    assert commands[1] == "JUPYTER_CONFIG_PATH=jupyter .venv/bin/jupyter lab"
    assert (released / "jupyter" / "lab-settings" / "overrides.json").is_file()  # offline lab
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
    assert not (released / "grading").exists()  # the grader is in the wheel only
    assert "fullcycle check starter_kits/fraud_detection" in readme
    assert "no grader" not in readme and "public" in readme


@pytest.mark.integration
@pytest.mark.slow
def test_the_release_carries_the_reference_figures_on_public_data(released):
    """Does the release hold the reference kit's figures on the public data of its check scale,
    for the project spec it ships?"""
    from fullcycle.spec import load_spec
    from grading.check import public_seed

    spec = load_spec(released / "projects" / "fraud_detection" / "project.yaml")
    published = json.loads(
        (released / "projects/fraud_detection/public_reference.json").read_text()
    )
    assert set(published) == {CHECK_SCALE}
    entry = published[CHECK_SCALE]
    assert entry["spec_sha256"] == spec.sha256 and entry["seed"] == public_seed(spec.name)
    assert entry["data_fingerprint"] and 0.5 < entry["figures"]["roc_auc"] <= 1
    assert all(c.metric.removesuffix(".vs_reference") in entry["figures"] for c in spec.rubric
               if c.metric.endswith(".vs_reference"))  # fmt: skip


# --- the release, installed in a fresh environment ------------------------------------------


@pytest.mark.integration
@pytest.mark.slow
def test_the_library_and_the_grader_come_from_the_wheel(fresh):
    """Do `import fullcycle` and `import grading` resolve to the wheel's install, not the
    repository?"""
    probe = fresh.run(
        fresh.python,
        "-c",
        "import importlib.metadata as m, json, sys, fullcycle, grading;"
        "print(json.dumps({'file': fullcycle.__file__, 'grading': grading.__file__,"
        "'dist': str(m.distribution('fullcycle').locate_file('')), 'path': sys.path}))",
    )
    assert probe.returncode == 0, probe.stderr
    seen = json.loads(probe.stdout)
    assert Path(seen["file"]).is_relative_to(fresh.site), seen["file"]
    assert Path(seen["grading"]).is_relative_to(fresh.site), seen["grading"]
    assert Path(seen["dist"]) == fresh.site, seen["dist"]
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
    assert Path(seen["fullcycle"]).is_relative_to(fresh.site), seen
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
from fastapi import APIRouter, FastAPI
from sklearn.base import TransformerMixin

names = set(json.loads(sys.argv[1]))
report = {"broken": {}, "attributes": [], "routes": [], "transformers": []}
modules = []
for top in json.loads(sys.argv[2]):
    package = importlib.import_module(top)
    modules += [top] + [
        info.name for info in pkgutil.walk_packages(
            package.__path__, top + ".",
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
                and value.__module__.split(".")[0] in ("fullcycle", "grading")):
            report["transformers"].append(f"{value.__module__}.{value.__qualname__}")
report["transformers"] = sorted(set(report["transformers"]))
print(json.dumps(report))
"""


@pytest.mark.integration
@pytest.mark.slow
def test_no_reference_solution_is_importable_from_the_installed_library(fresh):
    """Does every module of the installed library and grader import, and does none define or
    export a learner stage's reference solution (by name, a FastAPI route, or a feature
    transformer)?"""
    scan = fresh.tmp / "scan.py"
    scan.write_text(_SCAN)
    result = fresh.run(fresh.python, scan, json.dumps(FORBIDDEN), json.dumps(PACKAGES))
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    static = []
    for path in sorted(p for package in PACKAGES for p in (fresh.site / package).rglob("*.py")):
        rel = str(path.relative_to(fresh.site))
        static += _definitions_and_routes(path, rel)
        # a marker line opens or closes a region (the release's own code names the markers)
        if any(line.strip() in (BEGIN, END) for line in path.read_text().splitlines()):
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
def test_the_course_is_released_as_nbgrader_releases_it(released):
    """Is every week there, its exercise stubbed by nbgrader with no hidden test left in it?"""
    expected = [w.name for w in weeks(REPO)]
    assert expected, "the course has no weeks: this test would check nothing"
    assert sorted(p.name for p in (released / "curriculum").iterdir()) == expected
    for week in expected:
        folder = released / "curriculum" / week
        assert (folder / "lesson.ipynb").is_file(), week
        nb = nbformat.read(folder / "exercise.ipynb", as_version=4)
        text = "\n".join(c.source for c in nb.cells)
        assert "HIDDEN TESTS" not in text and BEGIN not in text, week
        assert 'raise NotImplementedError("not implemented yet")' in text, week
        graded = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
        assert graded and all("checksum" in c.metadata["nbgrader"] for c in graded), week
        assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), week
    assert "curriculum/" in (released / "README.md").read_text()


def test_no_line_of_a_reference_solution_is_in_the_release_or_the_library(fresh, released):
    """Is every long line of the kits' solution regions absent from the release and the wheel?"""
    lines = _solution_lines(REPO)
    assert lines, "no solution lines found in the kits; the check would prove nothing"
    copies = []
    for root in (released, *(fresh.site / package for package in PACKAGES)):
        for path in _text_files(root):
            if path.suffix == ".whl":
                continue
            for line in _code_text(path).splitlines():
                if line.strip() in lines:
                    where = path.relative_to(root.parent)
                    copies.append(f"{where}: {line.strip()!r} (from {lines[line.strip()]})")
    assert not copies, "solution code outside its region:\n" + "\n".join(copies)


# --- the learner's self-check, from the release ---------------------------------------------

#: A learner's first notebook cell after the parameters: scores by amount, nothing else written.
_AMOUNT_CELL = """\
import pandas as pd
score = pd.read_parquet(score_path)
pd.DataFrame({"TRANSACTION_ID": score["TRANSACTION_ID"],
              "fraud_score": score["TX_AMOUNT"].rank(pct=True)}).to_csv(predictions_path, index=False)
"""


def _fresh_processes(fresh) -> list[str]:
    """Live processes that run anything of the fresh environment (the CLI, kernels, services)."""
    found = []
    for p in psutil.process_iter(["pid", "cmdline", "status"]):
        try:
            cmd = " ".join(p.info["cmdline"] or [])
            if str(fresh.root) in cmd and p.info["status"] != psutil.STATUS_ZOMBIE:
                found.append(f"{p.info['pid']}: {cmd[:200]}")
        except psutil.Error:
            continue
    return found


def _check(fresh, released, kit, out) -> tuple[subprocess.CompletedProcess, dict]:
    """``fullcycle check KIT`` from the release folder, as its README says; and result.json."""
    done = fresh.run(
        fresh.root / "bin" / "fullcycle", "check", kit, "--scale", CHECK_SCALE, "--out", out,
        cwd=released, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert not _fresh_processes(fresh), _fresh_processes(fresh)
    return done, json.loads((out / "result.json").read_text())


def _no_grader_error(result: dict) -> None:
    assert "grader_error" not in result["status"], result["messages"]
    failed = [s for s in result["provenance"]["steps"] if s["status"] == "error"]
    assert not failed, (failed, result["messages"])


@pytest.mark.integration
@pytest.mark.slow
def test_the_released_kit_checks_to_a_clean_zero_that_says_what_is_not_written(fresh, released):
    """In the learner's environment, does `fullcycle check` of the released kit as it is run the
    grader to a clean zero saying "not implemented yet", with no grader error, and every line
    relative to the reference solution explained rather than crashed?"""
    out = fresh.tmp / "check-released-kit"

    done, result = _check(fresh, released, "starter_kits/fraud_detection", out)

    assert "PUBLIC validation data" in done.stdout and "not implemented yet" in done.stdout
    assert "Traceback" not in done.stdout
    _no_grader_error(result)
    assert result["status"].split(":")[0] == "notebook_failed", result["messages"]
    assert result["score"]["points"] == 0 and result["score"]["max_points"] > 0
    relative = [line for line in result["rubric"] if line["metric"].endswith(".vs_reference")]
    assert relative
    for line in relative:
        assert line["measured"] or "not measured" in line["feedback"], line
    assert "not implemented yet" in (out / "feedback.md").read_text()


@pytest.mark.integration
@pytest.mark.slow
def test_a_learner_kit_is_measured_against_the_reference_figures_the_release_carries(
    fresh, released
):
    """Is a kit that writes predictions compared with the reference figures of the release (the
    release's kit being a stubbed copy), on the same public data, in the learner's environment?"""
    kit = fresh.tmp / "learner" / "fraud_detection"
    shutil.copytree(released / "starter_kits" / "fraud_detection", kit)
    nb = nbformat.read(kit / "pipeline.ipynb", as_version=4)
    parameters = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(parameters) == 1
    nb.cells = [*parameters, nbformat.v4.new_code_cell(_AMOUNT_CELL)]
    nbformat.write(nb, kit / "pipeline.ipynb")
    published = json.loads(
        (released / "projects/fraud_detection/public_reference.json").read_text()
    )
    figures = published[CHECK_SCALE]["figures"]
    out = fresh.tmp / "check-learner-kit"

    done, result = _check(fresh, released, kit, out)

    _no_grader_error(result)
    assert result["status"].split(":")[0] == "graded", result["messages"]
    assert result["reference"]["source"] == "release" and result["reference"]["data"] == "public"
    assert result["reference"]["figures"] == figures
    auc = next(line for line in result["rubric"] if line["metric"] == "roc_auc.vs_reference")
    assert auc["measured"] and auc["max_points"] > 0
    assert auc["value"] == pytest.approx(result["metrics"]["roc_auc"] / figures["roc_auc"])
    assert "## The reference solution on the same public data" in done.stdout
    assert "hidden world" not in (out / "feedback.html").read_text()
