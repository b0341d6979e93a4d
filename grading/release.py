"""The learner release: starter kits with solution regions stripped, the library as a wheel.

A release folder holds ``README.md`` (install and start, in two commands),
``wheels/`` (the ``fullcycle`` library and the ``grading`` package as one
pure-Python wheel), ``starter_kits/`` (every file of each kit, solution regions
stubbed), ``projects/`` (specs, briefs, public validation data) and
``jupyter/`` (JupyterLab's offline settings), and ``curriculum/`` when the course has one: each week's notebooks as nbgrader's
``generate_assignment`` releases them (solutions stubbed, hidden tests removed,
cells locked), run with the course's own ``nbgrader_config.py`` in a temporary
course folder (:func:`release_course`).

The grader ships so that a learner can run ``fullcycle check KIT``: the
grader's own steps, rubric and feedback on public data (:mod:`grading.check`).
It holds no secret: secrets live in the instructor's grading config, results
store and cache, outside the packages, and the wheel takes only code and
templates from them (:data:`PACKAGE_FILES`), never a file named like a config,
a store or a secret. A project with rubric lines relative to the reference
solution (``<figure>.vs_reference``) gets ``projects/<name>/public_reference.json``:
the reference kit's figures on the public data of each check scale, measured
here with :func:`grading.reference.public_entries` (the release's kit is the
learner's stubbed copy, so a check could not grade it).

Code between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` (nbgrader's
markers, in ``.py`` files and notebook cells) is replaced by
``raise NotImplementedError("...")`` at the region's indentation. Grading
configs, workspaces, trained models and anything that looks like a secret are
never copied.

The wheel is written here rather than by the build backend: a PEP 427 wheel of
a pure-Python package is a zip of the package plus three metadata files, taken
from ``pyproject.toml``. This needs no build tool and no network (setuptools'
backend needs setuptools >= 77, which a fresh environment does not have
offline), ships exactly the ``fullcycle`` and ``grading`` packages whatever the
development install includes, and gives the same bytes for the same sources.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import shutil
import string
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

from grading.check import DEFAULT_SCALE
from grading.errors import GradingConfigError

__all__ = [
    "LIBRARY",
    "PACKAGES",
    "PACKAGE_FILES",
    "build_wheel",
    "release",
    "release_course",
    "strip_solutions",
]

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
#: nbgrader's marker of hidden tests, which a release never carries.
HIDDEN = "### BEGIN HIDDEN TESTS"
#: The library package (the wheel's name and console script come from its ``pyproject.toml``).
LIBRARY = "fullcycle"
#: The packages the learner's wheel ships: the library, and the grader for ``fullcycle check``.
PACKAGES = (LIBRARY, "grading")
#: The only files of a package the wheel takes: its code anywhere, and report templates in its
#: ``templates/`` folder. No config, results store, cache, pickle, note or data file left in a
#: package folder can reach a learner.
PACKAGE_FILES = {".py": "", ".j2": "templates", ".md": "templates"}
#: A secret seed written as a literal (``secret_seed: 9f2c...`` or ``SECRET_SEED = "9f2c..."``).
_SEED_LITERAL = re.compile(rb"secret_seed\W{1,6}[0-9a-f]{32}", re.I)
_SKIP = {"__pycache__", ".ipynb_checkpoints", "workspace", "mlruns", ".venv"}
_NEVER = re.compile(
    r"(grading.*\.ya?ml|secret|\.sqlite$|\.db$|\.env$|\.joblib$|\.pkl$|\.pickle$"
    r"|\.executed\.ipynb$|\.pyc$)",
    re.I,
)
_TEMPLATE = Path(__file__).resolve().parent / "templates" / "release_README.md"
#: Written by the release (the reference's figures on public data), never copied from the course.
_GENERATED = {"public_reference.json"}
_EPOCH = (1980, 1, 1, 0, 0, 0)  # zip's earliest date: the same sources give the same wheel


def strip_solutions(text: str, where: str = "") -> str:
    """Replace each solution region by a NotImplementedError at its indentation."""
    out: list[str] = []
    inside = False
    for n, line in enumerate(text.splitlines(keepends=True), start=1):
        stripped = line.strip()
        if stripped == BEGIN:
            if inside:
                raise GradingConfigError(f"{where}:{n}: nested {BEGIN}")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out.append(
                f'{indent}# YOUR CODE HERE\n{indent}raise NotImplementedError("not implemented yet")\n'
            )
            continue
        if stripped == END:
            if not inside:
                raise GradingConfigError(f"{where}:{n}: {END} without {BEGIN}")
            inside = False
            continue
        if not inside:
            out.append(line)
    if inside:
        raise GradingConfigError(f"{where}: {BEGIN} is never closed")
    return "".join(out)


def _release_notebook(src: Path, dest: Path) -> None:
    nb = json.loads(src.read_text())
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        cell["source"] = strip_solutions(source, str(src))
        cell["outputs"] = []
        cell["execution_count"] = None
    dest.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


def _project_metadata(repo: Path) -> dict:
    path = repo / "pyproject.toml"
    try:
        project = tomllib.loads(path.read_text())["project"]
    except (OSError, tomllib.TOMLDecodeError, KeyError) as exc:
        raise GradingConfigError(
            f"{path}: cannot read the [project] table ({exc}); the wheel takes its name, "
            "version and dependencies from it"
        ) from None
    for field in ("name", "version"):
        if not isinstance(project.get(field), str):
            raise GradingConfigError(f"{path}: [project] needs a literal {field!r} for the wheel")
    return project


def _metadata(project: dict, repo: Path) -> str:
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {project['name']}",
        f"Version: {project['version']}",
    ]
    if project.get("description"):
        lines.append(f"Summary: {project['description']}")
    if isinstance(project.get("license"), str):
        lines.append(f"License: {project['license']}")
    if project.get("requires-python"):
        lines.append(f"Requires-Python: {project['requires-python']}")
    # The development extras (pytest, ruff, ...) serve the repository's tests, not learners.
    lines += [f"Requires-Dist: {dep}" for dep in project.get("dependencies", [])]
    readme = project.get("readme")
    body = ""
    if isinstance(readme, str) and (repo / readme).is_file():
        lines.append("Description-Content-Type: text/markdown")
        body = (repo / readme).read_text()
    return "\n".join(lines) + "\n\n" + body


def _entry_points(project: dict) -> str:
    groups = {"console_scripts": project.get("scripts", {})}
    groups["gui_scripts"] = project.get("gui-scripts", {})
    groups.update(project.get("entry-points", {}))
    out = []
    for group, entries in groups.items():
        if entries:
            out.append(f"[{group}]")
            out += [f"{name} = {target}" for name, target in entries.items()]
            out.append("")
    return "\n".join(out)


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode()


def _regions(text: str) -> bool:
    """Whether ``text`` has a solution region: a line that is a marker, as :func:`strip_solutions` reads."""
    return any(line.strip() in (BEGIN, END) for line in text.splitlines())


def _package_files(repo: Path, package: str) -> dict[str, bytes]:
    """Archive name -> bytes of every file of ``repo/package`` the wheel may take."""
    root = repo / package
    if not (root / "__init__.py").is_file():
        raise GradingConfigError(f"{root}: no package to put in the wheel (no __init__.py)")
    files: dict[str, bytes] = {}
    for src in sorted(root.rglob("*")):
        rel = src.relative_to(repo)
        if any(part in _SKIP for part in rel.parts) or src.is_dir():
            continue
        folder = PACKAGE_FILES.get(src.suffix)
        if folder is None or _NEVER.search(src.name):
            continue  # only code and templates: never a config, store, cache or secret
        if folder and src.parent != root / folder:
            continue
        if src.is_symlink():
            raise GradingConfigError(f"{rel}: symbolic links are not released")
        data = src.read_bytes()
        if _SEED_LITERAL.search(data):
            raise GradingConfigError(
                f"{rel}: holds what looks like a secret seed; secrets belong in the instructor's "
                "grading config, outside the packages the learners get"
            )
        if _regions(data.decode("utf-8", errors="replace")):
            raise GradingConfigError(
                f"{rel}: the {package} package holds a solution region; move it to a starter kit"
            )
        files[rel.as_posix()] = data
    return files


def build_wheel(repo: Path, wheel_dir: Path) -> Path:
    """Write the learner's wheel of ``repo``'s ``fullcycle`` and ``grading`` packages.

    Parameters
    ----------
    repo : Path
        The course repository: ``pyproject.toml`` and the packages of :data:`PACKAGES`.
    wheel_dir : Path
        Where the wheel goes (created if missing).

    Returns
    -------
    Path
        The wheel, ``<name>-<version>-py3-none-any.whl``: the ``.py`` files of each
        package and the ``.j2``/``.md`` templates of its ``templates/`` folder
        (:data:`PACKAGE_FILES`; no caches, configs, stores or data), its metadata,
        dependencies and console scripts from ``pyproject.toml``. Nothing else: no
        tests, no kits, no solution region, no literal secret seed.

    Raises
    ------
    GradingConfigError
        When a package file is a symbolic link, holds a solution region, or a
        literal secret seed.
    """
    project = _project_metadata(repo)
    files: dict[str, bytes] = {}
    for package in PACKAGES:
        files.update(_package_files(repo, package))
    name = re.sub(r"[-_.]+", "_", project["name"]).lower()
    dist_info = f"{name}-{project['version']}.dist-info"
    files[f"{dist_info}/METADATA"] = _metadata(project, repo).encode()
    files[f"{dist_info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: grading.release\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    entry_points = _entry_points(project)
    if entry_points:
        files[f"{dist_info}/entry_points.txt"] = entry_points.encode()
    files[f"{dist_info}/top_level.txt"] = "".join(f"{p}\n" for p in PACKAGES).encode()
    record = [f"{arc},{_record_hash(data)},{len(data)}" for arc, data in files.items()]
    files[f"{dist_info}/RECORD"] = ("\n".join([*record, f"{dist_info}/RECORD,,"]) + "\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as wheel:
        for arc, data in files.items():
            info = zipfile.ZipInfo(arc, date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            wheel.writestr(info, data)
    wheel_dir.mkdir(parents=True, exist_ok=True)
    path = wheel_dir / f"{name}-{project['version']}-py3-none-any.whl"
    path.write_bytes(buffer.getvalue())
    return path


def _python_range(requires: str) -> str:
    """``">=3.11,<3.14"`` -> ``"3.11 to 3.13"``; any other specifier as it is written."""
    match = re.fullmatch(r"\s*>=\s*3\.(\d+)\s*,\s*<\s*3\.(\d+)\s*", requires)
    if match and int(match[2]) - 1 >= int(match[1]):
        return f"3.{match[1]} to 3.{int(match[2]) - 1}"
    return requires or "3"


def _readme(repo: Path, out: Path, wheel: Path, scales: tuple[str, ...]) -> Path:
    project = _project_metadata(repo)
    contents = []
    for kit in sorted(p for p in (out / "starter_kits").glob("*") if p.is_dir()):
        contents.append(
            f"- `starter_kits/{kit.name}/` — your starter kit: its modules and notebook."
        )
    for spec in sorted((out / "projects").glob("*/project.yaml")):
        name = spec.parent.name
        published = (spec.parent / "public_reference.json").is_file()
        contents.append(
            f"- `projects/{name}/` — the brief (`README.md`) and the spec and rubric "
            "(`project.yaml`) of this capstone"
            + (
                ", and the reference solution's figures on its public data "
                "(`public_reference.json`, for `fullcycle check`)."
                if published
                else "."
            )
        )
    if any(not p.name.startswith(".") for p in (out / "curriculum").rglob("*")):
        contents.append("- `curriculum/` — the weekly lessons and exercises.")
    kits = sorted(p.name for p in (out / "starter_kits").glob("*") if p.is_dir())
    text = string.Template(_TEMPLATE.read_text()).substitute(
        title=project["name"],
        python=_python_range(project.get("requires-python", "")),
        wheel=wheel.name,
        contents="\n".join(contents),
        kit=f"starter_kits/{kits[0] if kits else 'YOUR_KIT'}",
        scales=" / ".join(scales) or DEFAULT_SCALE,
    )
    path = out / "README.md"
    path.write_text(text)
    return path


def _public_references(repo: Path, out: Path, scales) -> list[Path]:
    """Write ``projects/<name>/public_reference.json`` for each released project that needs it.

    A project needs it when its rubric has ``<figure>.vs_reference`` lines and its kit is
    in the release. A files project without public validation data gets none (its
    check says where to put them).
    """
    from fullcycle.exceptions import ConfigError
    from fullcycle.spec import load_spec
    from grading.reference import PUBLISHED, RELATION, public_entries

    written = []
    for path in sorted((out / "projects").glob("*/project.yaml")):
        source = repo / path.relative_to(out)
        spec = load_spec(source)
        if not scales or not any(c.metric.endswith("." + RELATION) for c in spec.rubric):
            continue
        if not (out / spec.kit.path).is_dir():
            continue  # its kit is not in this release: no learner checks it
        try:
            entries = public_entries(spec, scales)
        except ConfigError:
            continue  # no public validation data
        except Exception as exc:
            raise GradingConfigError(
                f"{source}: the reference kit {spec.kit.path} could not be graded on the public "
                f"data (scales {list(scales)}) for the learners' self-check: {exc}; fix the kit, "
                "or release without reference figures (check_scales=())"
            ) from exc
        dest = path.parent / PUBLISHED
        dest.write_text(json.dumps(entries, indent=1, sort_keys=True) + "\n")
        written.append(dest)
    return written


#: How long nbgrader may take to generate every week's release (seconds).
COURSE_TIMEOUT_S = 600


def release_course(repo: Path, out: Path) -> list[Path]:
    """Write each week of ``repo/curriculum`` as nbgrader releases it, into ``out/curriculum``.

    nbgrader's ``generate_assignment`` runs with the course's ``nbgrader_config.py`` on a
    copy of the course in a temporary folder, so the repository's gradebook and release
    folders are never touched. Returns the files written (none when there is no course).
    """
    from grading.course import COURSE_DIR, weeks

    found = weeks(repo)
    if not found:
        return []
    config = repo / "nbgrader_config.py"
    if not config.is_file():
        raise GradingConfigError(
            f"{repo} has {COURSE_DIR}/ but no nbgrader_config.py to release it with"
        )
    with tempfile.TemporaryDirectory(prefix="fullcycle-course-") as tmp:
        course = Path(tmp)
        shutil.copyfile(config, course / config.name)
        for week in found:
            shutil.copytree(
                week, course / COURSE_DIR / week.name, ignore=shutil.ignore_patterns(*_SKIP)
            )
        bindir = str(Path(sys.executable).parent)  # nbgrader runs alembic from the PATH
        env = {**os.environ, "PATH": bindir + os.pathsep + os.environ.get("PATH", "")}
        cmd = [sys.executable, "-m", "nbgrader", "generate_assignment", "week*", "--force"]
        try:
            done = subprocess.run(
                cmd, cwd=course, env=env, capture_output=True, text=True, timeout=COURSE_TIMEOUT_S
            )
        except subprocess.TimeoutExpired as exc:
            raise GradingConfigError(
                f"nbgrader generate_assignment took over {COURSE_TIMEOUT_S} s on {COURSE_DIR}/"
            ) from exc
        if done.returncode:
            raise GradingConfigError(
                f"nbgrader could not release {COURSE_DIR}/ (exit {done.returncode}); run "
                f"`nbgrader generate_assignment WEEK` in {repo} to see why:\n{done.stderr[-2000:]}"
            )
        released = course / "workspace" / "course" / "release"
        missing = [w.name for w in found if not (released / w.name).is_dir()]
        if missing:
            raise GradingConfigError(f"nbgrader released no notebooks for {missing}")
        shutil.copytree(released, out / COURSE_DIR, dirs_exist_ok=True)
    return sorted(p for p in (out / COURSE_DIR).rglob("*") if p.is_file())


def release(
    repo: Path,
    out: Path,
    kits: list[str] | None = None,
    *,
    check_scales: tuple[str, ...] = (DEFAULT_SCALE,),
) -> list[Path]:
    """Write the learner release of ``repo`` into the new or empty folder ``out``.

    Parameters
    ----------
    repo : Path
        The course repository (``pyproject.toml``, ``fullcycle/``, ``grading/``,
        ``starter_kits/``, ``projects/``, optionally ``curriculum/``).
    out : Path
        The release folder; refused if it exists and is not empty.
    kits : list of str, optional
        Release only these starter kits (default: all).
    check_scales : tuple of str
        The scales of ``fullcycle check`` the release carries the reference solution's
        figures for (default the check's own, :data:`grading.check.DEFAULT_SCALE`). Each
        scale grades the reference kit on its public data once (about 20 s for the fraud
        project at ``small``; cached in the check's cache folder); ``()`` writes none,
        and a check at another scale says its ``vs_reference`` lines are not measured.

    Returns
    -------
    list of Path
        Every file written: the kits (solution regions stubbed), the project
        specs, briefs and reference figures on public data, the wheel and ``README.md``.
    """
    if out.exists() and any(out.iterdir()):
        raise GradingConfigError(f"{out} is not empty; give a new folder for the release")
    known = sorted(p.name for p in (repo / "starter_kits").glob("*") if p.is_dir())
    unknown = sorted(set(kits or []) - set(known))
    if unknown:
        raise GradingConfigError(f"no starter kit named {unknown}; known kits: {known}")
    written: list[Path] = []
    for top in ("starter_kits", "projects", "jupyter"):
        base = repo / top
        if not base.is_dir():
            continue
        for src in sorted(base.rglob("*")):
            rel = src.relative_to(repo)
            if any(part in _SKIP for part in rel.parts) or src.is_dir():
                continue
            if top == "starter_kits" and kits and rel.parts[1] not in kits:
                continue
            if src.is_symlink():
                raise GradingConfigError(f"{rel}: symbolic links are not released")
            if _NEVER.search(src.name) or (top == "projects" and src.name in _GENERATED):
                continue
            dest = out / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            if src.suffix == ".py":
                dest.write_text(strip_solutions(src.read_text(), str(rel)))
            elif src.suffix == ".ipynb":
                _release_notebook(src, dest)
            else:
                shutil.copyfile(src, dest)
            written.append(dest)
    written += release_course(repo, out)
    written += _public_references(repo, out, tuple(check_scales))
    wheel = build_wheel(repo, out / "wheels")
    written += [wheel, _readme(repo, out, wheel, tuple(check_scales))]
    for path in written:
        if path.suffix in (".py", ".ipynb", ".md", ".yaml") and (
            BEGIN in (text := path.read_text()) or HIDDEN in text
        ):
            raise GradingConfigError(
                f"{path}: a solution or hidden-test marker survived the release"
            )
    return written
