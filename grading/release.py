"""The learner release: starter kits with solution regions stripped, and no secrets.

Code between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` (nbgrader's
markers, in ``.py`` files and notebook cells) is replaced by
``raise NotImplementedError("...")`` at the region's indentation. Grading
configs, workspaces and anything that looks like a secret are refused.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from grading.errors import GradingConfigError

__all__ = ["release", "strip_solutions"]

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
_SKIP = {"__pycache__", ".ipynb_checkpoints", "workspace", "mlruns", ".venv"}
_NEVER = re.compile(r"(grading.*\.ya?ml|secret|\.sqlite$|\.db$|\.env$)", re.I)


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


def release(repo: Path, out: Path, kits: list[str] | None = None) -> list[Path]:
    """Write the learner release of ``repo``'s starter kits (and project briefs) into ``out``."""
    if out.exists() and any(out.iterdir()):
        raise GradingConfigError(f"{out} is not empty; give a new folder for the release")
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
    for path in written:
        if path.suffix in (".py", ".ipynb", ".md", ".yaml") and BEGIN in path.read_text():
            raise GradingConfigError(f"{path}: a solution marker survived the release")
    return written
