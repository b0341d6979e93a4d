"""How long does each notebook of the course take, solutions in place? Targets: ≤ 60 s each, ≤ 10 min in all.

Each lesson and exercise of ``curriculum/`` runs top to bottom in a fresh kernel
(nbclient, the engine under Papermill and nbgrader), in a temporary copy of its
week folder, as the nbgrader cycle test runs it for the reference learner. A
notebook that raises is reported with its error, and the exit status is 1.

    .venv/bin/python benchmarks/course.py [--week week04_features]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from grading.course import weeks

REPO = Path(__file__).resolve().parents[1]
#: The issue's targets, in seconds.
PER_NOTEBOOK_S, COURSE_S = 60.0, 600.0


def run(path: Path) -> tuple[float, str | None]:
    """Seconds to run ``path`` in a copy of its folder, and its error (None when it ran through)."""
    with tempfile.TemporaryDirectory(prefix="course-bench-") as tmp:
        folder = Path(tmp) / path.parent.name
        shutil.copytree(path.parent, folder)
        nb = nbformat.read(folder / path.name, as_version=4)
        client = NotebookClient(nb, timeout=PER_NOTEBOOK_S * 2, kernel_name="python3")
        start = time.perf_counter()
        try:
            client.execute(cwd=str(folder))
            error = None
        except CellExecutionError as exc:
            error = str(exc).strip().splitlines()[-1][:200]
        return time.perf_counter() - start, error


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--week", action="append", help="only this week folder (repeatable)")
    args = parser.parse_args()
    found = [w for w in weeks(REPO) if not args.week or w.name in args.week]
    figures, failed = {}, {}
    for week in found:
        for name in ("lesson.ipynb", "exercise.ipynb"):
            seconds, error = run(week / name)
            key = f"{week.name}/{name}"
            figures[key] = round(seconds, 1)
            print(
                f"{key:40s} {seconds:6.1f} s" + (f"  FAILED: {error}" if error else ""), flush=True
            )
            if error:
                failed[key] = error
    total = sum(figures.values())
    slowest = max(figures, key=figures.get) if figures else None
    print(
        f"course: {len(figures)} notebooks in {total:.0f} s (target ≤ {COURSE_S:.0f} s); slowest {slowest}"
    )
    print(
        json.dumps(
            {
                "benchmark": "course",
                "notebooks": len(figures),
                "total_s": round(total, 1),
                "max_s": max(figures.values(), default=0.0),
                "slowest": slowest,
                "within_per_notebook_target": all(s <= PER_NOTEBOOK_S for s in figures.values()),
                "within_course_target": total <= COURSE_S,
                "failed": failed,
                "seconds": figures,
            }
        )
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
