"""The learner release: starter kits with solution regions stripped, the library as a wheel.

A release folder holds ``README.md`` (install and start, in two commands),
``wheels/`` (the ``fullcycle`` library as a pure-Python wheel, without the
``grading`` package: the grader is the instructor's), ``starter_kits/`` (every
file of each kit, solution regions stubbed), ``projects/`` (specs and briefs)
and ``curriculum/`` when the course has one.

Code between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` (nbgrader's
markers, in ``.py`` files and notebook cells) is replaced by
``raise NotImplementedError("...")`` at the region's indentation. Grading
configs, workspaces, trained models and anything that looks like a secret are
never copied.

The wheel is written here rather than by the build backend: a PEP 427 wheel of
a pure-Python package is a zip of the package plus three metadata files, taken
from ``pyproject.toml``. This needs no build tool and no network (setuptools'
backend needs setuptools >= 77, which a fresh environment does not have
offline), ships exactly the ``fullcycle`` package whatever the development
install includes, and gives the same bytes for the same sources.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import shutil
import string
import tomllib
import zipfile
from pathlib import Path

from grading.errors import GradingConfigError

__all__ = ["LIBRARY", "build_wheel", "release", "strip_solutions"]

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
#: The one package the learner's wheel ships; ``grading`` stays with the instructor.
LIBRARY = "fullcycle"
_SKIP = {"__pycache__", ".ipynb_checkpoints", "workspace", "mlruns", ".venv"}
_NEVER = re.compile(
    r"(grading.*\.ya?ml|secret|\.sqlite$|\.db$|\.env$|\.joblib$|\.pkl$|\.pickle$"
    r"|\.executed\.ipynb$|\.pyc$)",
    re.I,
)
_TEMPLATE = Path(__file__).resolve().parent / "templates" / "release_README.md"
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


def build_wheel(repo: Path, wheel_dir: Path) -> Path:
    """Write the learner's wheel of ``repo``'s ``fullcycle`` package into ``wheel_dir``.

    Parameters
    ----------
    repo : Path
        The course repository: ``pyproject.toml`` and the ``fullcycle/`` package.
    wheel_dir : Path
        Where the wheel goes (created if missing).

    Returns
    -------
    Path
        The wheel, ``<name>-<version>-py3-none-any.whl``: every file of the
        package (no caches), its metadata, dependencies and console scripts
        from ``pyproject.toml``. Nothing else: no ``grading``, no tests.
    """
    project = _project_metadata(repo)
    package = repo / LIBRARY
    if not (package / "__init__.py").is_file():
        raise GradingConfigError(f"{package}: no package to put in the wheel (no __init__.py)")
    files: dict[str, bytes] = {}
    for src in sorted(package.rglob("*")):
        rel = src.relative_to(repo)
        if any(part in _SKIP for part in rel.parts) or src.is_dir() or src.suffix == ".pyc":
            continue
        if src.is_symlink():
            raise GradingConfigError(f"{rel}: symbolic links are not released")
        data = src.read_bytes()
        if BEGIN.encode() in data:
            raise GradingConfigError(
                f"{rel}: the library holds a solution region; move it to a starter kit"
            )
        files[rel.as_posix()] = data
    name = re.sub(r"[-_.]+", "_", project["name"]).lower()
    dist_info = f"{name}-{project['version']}.dist-info"
    files[f"{dist_info}/METADATA"] = _metadata(project, repo).encode()
    files[f"{dist_info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: grading.release\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    entry_points = _entry_points(project)
    if entry_points:
        files[f"{dist_info}/entry_points.txt"] = entry_points.encode()
    files[f"{dist_info}/top_level.txt"] = f"{LIBRARY}\n".encode()
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


def _readme(repo: Path, out: Path, wheel: Path) -> Path:
    project = _project_metadata(repo)
    contents = []
    for kit in sorted(p for p in (out / "starter_kits").glob("*") if p.is_dir()):
        contents.append(
            f"- `starter_kits/{kit.name}/` — your starter kit: its modules and notebook."
        )
    for spec in sorted((out / "projects").glob("*/project.yaml")):
        name = spec.parent.name
        contents.append(
            f"- `projects/{name}/` — the brief (`README.md`) and the spec and rubric "
            "(`project.yaml`) of this capstone."
        )
    if any(not p.name.startswith(".") for p in (out / "curriculum").rglob("*")):
        contents.append("- `curriculum/` — the weekly lessons and exercises.")
    text = string.Template(_TEMPLATE.read_text()).substitute(
        title=project["name"],
        python=_python_range(project.get("requires-python", "")),
        wheel=wheel.name,
        contents="\n".join(contents),
    )
    path = out / "README.md"
    path.write_text(text)
    return path


def release(repo: Path, out: Path, kits: list[str] | None = None) -> list[Path]:
    """Write the learner release of ``repo`` into the new or empty folder ``out``.

    Parameters
    ----------
    repo : Path
        The course repository (``pyproject.toml``, ``fullcycle/``, ``starter_kits/``,
        ``projects/``, optionally ``curriculum/``).
    out : Path
        The release folder; refused if it exists and is not empty.
    kits : list of str, optional
        Release only these starter kits (default: all).

    Returns
    -------
    list of Path
        Every file written: the kits (solution regions stubbed), the project
        specs and briefs, the wheel and ``README.md``.
    """
    if out.exists() and any(out.iterdir()):
        raise GradingConfigError(f"{out} is not empty; give a new folder for the release")
    known = sorted(p.name for p in (repo / "starter_kits").glob("*") if p.is_dir())
    unknown = sorted(set(kits or []) - set(known))
    if unknown:
        raise GradingConfigError(f"no starter kit named {unknown}; known kits: {known}")
    written: list[Path] = []
    for top in ("starter_kits", "projects", "curriculum"):
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
            if _NEVER.search(src.name):
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
    wheel = build_wheel(repo, out / "wheels")
    written += [wheel, _readme(repo, out, wheel)]
    for path in written:
        if path.suffix in (".py", ".ipynb", ".md", ".yaml") and BEGIN in path.read_text():
            raise GradingConfigError(f"{path}: a solution marker survived the release")
    return written
