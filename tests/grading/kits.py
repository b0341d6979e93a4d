"""Fixture kits and prepared jobs for the stage probes of the fraud capstone.

A fixture kit is the reference kit copied into a temporary folder with one
module replaced or extended: the smallest change that makes one stage wrong.
A prepared job has run ``prepare`` on a fixed secret seed at tiny scale; a
test then runs one probe step on it, without the notebook.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parent.parent.parent
KIT = REPO / "starter_kits" / "fraud_detection"
RUBRIC = Path(__file__).with_name("fraud_rubric.yaml")
#: Fixed secret seeds: tests never draw one.
SEEDS = ("0123456789abcdef0123456789abcdef", "9f2c4e6a8b0d1f3e5c7a9b1d3f5e7c9a")


def fraud_spec():
    """The fraud project with the rubric of ``fraud_rubric.yaml`` (fair bars, every stage)."""
    from fullcycle.spec import RubricCheck, find_project

    spec = find_project("fraud_detection", REPO)
    lines = [RubricCheck(**line) for line in yaml.safe_load(RUBRIC.read_text())]
    return spec.model_copy(update={"rubric": lines})


def make_kit(folder: Path, replace: dict[str, str] | None = None, append=None) -> Path:
    """The reference kit in ``folder`` with modules replaced (``name: text``) or extended."""
    shutil.copytree(KIT, folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name, text in (replace or {}).items():
        (folder / f"{name}.py").write_text(textwrap.dedent(text))
    for name, text in (append or {}).items():
        path = folder / f"{name}.py"
        path.write_text(path.read_text() + "\n\n" + textwrap.dedent(text))
    return folder


def config(tmp: Path, seed: str = SEEDS[0], scale: str = "tiny", **overrides):
    from grading import new_config

    cfg = new_config(tmp / "grading.yaml", scale=scale)
    return cfg.model_copy(update={"secret_seed": seed, **overrides})


def prepared_job(spec, cfg, kit: Path, tmp: Path, holdout=None):
    """A job on ``kit`` after ``prepare`` (the holdout given, or built from the config's seed)."""
    from grading.pipeline import Job, prepare

    for name in ("job", "private", "out"):
        (tmp / name).mkdir(exist_ok=True)
    job = Job(spec, cfg, kit, tmp / "out", tmp / "private", tmp / "job")
    job.holdout = holdout
    prepare(job)
    return job


def run(job, *steps: str):
    """Run the named steps of the grading pipeline on ``job``; returns its metrics."""
    from grading.pipeline import STEPS, run_steps

    known = dict(STEPS)
    run_steps(job, [(s, known[s]) for s in steps])
    if job.sandbox is not None:
        job.sandbox.close()
    return job.metrics


def decent_scores(labels, seed: int = 0) -> np.ndarray:
    """Scores of a decent model (AUC about 0.9) for the policy probe, without a notebook."""
    rng = np.random.default_rng(seed)
    y = labels["TX_FRAUD"].to_numpy(dtype=float)
    z = rng.normal(size=y.size) + 1.8 * y
    return 1.0 / (1.0 + np.exp(-(z - 4.0)))
