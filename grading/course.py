"""The course: weekly nbgrader notebooks in ``curriculum/``, kept in step with the capstone kit.

Each week's exercise builds functions of one stage of the capstone kit. The
kit's module is their one definition: an exercise cell whose metadata reads
``{"fullcycle": {"kit": "starter_kits/fraud_detection/contract.py", "names":
["CHANNEL_VALUES", "canonical_channels"]}}`` holds a copy of those top-level
definitions, written by :func:`sync` (``fullcycle course --sync``) and checked
in CI (``fullcycle course --check``), as the project briefs are. The copy keeps
the kit's ``### BEGIN SOLUTION`` regions, which nbgrader's ``generate_assignment``
replaces by a stub, so the learner writes the function in the week's exercise
and moves it, unchanged, into the kit file named in the cell's first line.

Two nbgrader preprocessors harden autograding against a learner who stops the
tests from running (the course's ``nbgrader_config.py`` puts them around
nbgrader's ``Execute``): :class:`PlantCanaries` appends to every autograded
test cell a line printing a fresh random token, and :class:`CheckCanaries`
gives an error output, so no points, to every test cell whose output lacks its
token — a cell that was blanked by an input transformer, skipped, or whose
failing assert was swallowed by a custom exception handler never reaches its
last line. The token is drawn in the grader's process for each notebook and is
never written into a file the learner sees; the check removes the line and its
output again before the notebook is saved, so feedback shows the tests as
written. What this does not stop is in ``docs/instructors.md``.
"""

from __future__ import annotations

import ast
import secrets
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbconvert.preprocessors import Preprocessor
from traitlets import Bool

from grading.errors import GradingConfigError

__all__ = [
    "COURSE_DIR",
    "KEY",
    "CheckCanaries",
    "PlantCanaries",
    "StaleCell",
    "kit_source",
    "sync",
    "weeks",
]

#: nbgrader's source directory, relative to the course root (``nbgrader_config.py`` says the same).
COURSE_DIR = "curriculum"
#: The cell-metadata key of a cell copied from the kit.
KEY = "fullcycle"


@dataclass(frozen=True)
class StaleCell:
    """An exercise cell whose copy of the kit differs from the kit."""

    notebook: Path
    index: int
    kit: str

    def __str__(self) -> str:
        return f"{self.notebook} cell {self.index}: out of step with {self.kit}"


def weeks(root: Path) -> list[Path]:
    """The course's week folders (``curriculum/weekNN_*``), in order."""
    return sorted(p for p in (Path(root) / COURSE_DIR).glob("week[0-9][0-9]_*") if p.is_dir())


def _segment(lines: list[str], node: ast.stmt) -> str:
    first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))]) - 1
    while first > 0 and lines[first - 1].lstrip().startswith("#"):
        first -= 1  # the definition's own comment lines (``#: ...``)
    end = node.end_lineno
    while end < len(lines) and lines[end][:1].isspace() and lines[end].lstrip().startswith("#"):
        end += 1  # its indented comments after the last statement (a closing ``### END SOLUTION``)
    return "".join(lines[first:end]).rstrip() + "\n"


def _names(node: ast.stmt) -> list[str]:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [node.name]
    if isinstance(node, ast.Assign):
        return [t.id for t in node.targets if isinstance(t, ast.Name)]
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return [node.target.id]
    return []


def kit_source(root: Path, kit: str, names: list[str]) -> str:
    """The cell text for ``names``, top-level definitions of the kit module ``kit``.

    Parameters
    ----------
    root : Path
        The course root (the repository).
    kit : str
        The module's path relative to ``root``, e.g. ``starter_kits/fraud_detection/contract.py``.
    names : list of str
        Top-level functions, classes or assignments, in the order the cell shows them.
    """
    path = Path(root) / kit
    if not path.is_file():
        raise GradingConfigError(
            f"course cell names kit module {kit!r}, which does not exist under {root}"
        )
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    found = {n: node for node in ast.parse(text, filename=str(path)).body for n in _names(node)}
    missing = [n for n in names if n not in found]
    if missing:
        raise GradingConfigError(
            f"course cell names {missing} in {kit}, which defines no such top-level name; "
            "fix the cell's metadata.fullcycle.names"
        )
    header = f"# Your capstone kit's {kit}: move this code there once the tests below pass."
    # Two blank lines between top-level statements and no final newline: as ruff formats a cell.
    return "\n\n\n".join([header, *(_segment(lines, found[n]).rstrip() for n in names)])


def sync(root: Path, *, check: bool = False) -> list[StaleCell]:
    """Write every kit cell of the course's notebooks from the kit (or, with ``check``, only list stale ones)."""
    root = Path(root)
    stale: list[StaleCell] = []
    for week in weeks(root):
        for path in sorted(week.glob("*.ipynb")):
            nb = nbformat.read(path, as_version=4)
            changed = False
            for i, cell in enumerate(nb.cells):
                spec = cell.metadata.get(KEY)
                if not spec:
                    continue
                want = kit_source(root, spec["kit"], list(spec["names"]))
                if cell.source != want:
                    stale.append(StaleCell(path.relative_to(root), i, spec["kit"]))
                    cell.source, changed = want, True
            if changed and not check:
                nbformat.write(nb, path)
    return stale


_CANARY = "fullcycle_canary"  # the resources key holding this notebook's token


def _is_test_cell(cell) -> bool:
    meta = cell.metadata.get("nbgrader", {})
    return cell.cell_type == "code" and bool(meta.get("grade")) and not meta.get("solution")


def _canary_line(token: str) -> str:
    return f"\nprint({token!r})  # fullcycle: this test cell ran to its end"


class PlantCanaries(Preprocessor):
    """Before execution: end every autograded test cell with a line printing a fresh token."""

    enabled = Bool(
        True, help="Plant the canaries (nbconvert's preprocessors are off by default)."
    ).tag(config=True)

    def preprocess(self, nb, resources):
        token = "tests-ran-" + secrets.token_hex(16)
        resources[_CANARY] = token
        for cell in nb.cells:
            if _is_test_cell(cell):
                cell.source += _canary_line(token)
        return nb, resources


class CheckCanaries(Preprocessor):
    """After execution: a test cell without its token printed gets an error (so no points).

    The planted line and the token's output are removed, whatever the verdict.
    """

    enabled = Bool(
        True, help="Check the canaries (nbconvert's preprocessors are off by default)."
    ).tag(config=True)

    def preprocess(self, nb, resources):
        token = resources.pop(_CANARY, None)
        if token is None:
            return nb, resources  # nothing was planted (the preprocessor is not configured)
        line = _canary_line(token)
        for cell in nb.cells:
            if not _is_test_cell(cell):
                continue
            if cell.source.endswith(line):
                cell.source = cell.source[: -len(line)]
            ran = False
            kept = []
            for out in cell.get("outputs", []):
                if out.get("output_type") == "stream" and token in out.get("text", ""):
                    ran = True
                    text = "".join(
                        x for x in out["text"].splitlines(keepends=True) if token not in x
                    )
                    if not text:
                        continue
                    out["text"] = text
                kept.append(out)
            if not ran and not any(o.get("output_type") == "error" for o in kept):
                kept.append(
                    nbformat.v4.new_output(
                        "error",
                        ename="TestsDidNotRun",
                        evalue=(
                            "this test cell did not run to its end, so it earns no points; "
                            "if your code changes how cells run (an input transformer, a custom "
                            "exception handler, replaced builtins), remove that and submit again"
                        ),
                        traceback=[],
                    )
                )
            cell.outputs = kept
        return nb, resources
