"""Grade one submission: an ordered list of small steps driven by the project spec.

prepare → execute → collect → validate → score → probe service → probe
monitoring → rubric → report → store. Each step is a function of a
:class:`Job`; it records its time and outcome and never lets a submission's
fault escape as an exception. Labels stay in this (trusted) process; the
sandbox sees the job folder only: the notebook, its inputs, its outputs.
"""

from __future__ import annotations

import platform
import shutil
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import numpy as np

from grading.config import GradingConfig
from grading.errors import SubmissionError
from grading.sandbox import Sandbox

__all__ = ["Job", "STEPS", "RESULT_SCHEMA", "grade"]

RESULT_SCHEMA = "fullcycle.grading.result/1"
PACKAGES = ("fullcycle", "numpy", "pandas", "scikit-learn", "papermill", "nbclient", "fastapi")


@dataclass
class Job:
    spec: object
    config: GradingConfig
    submission: Path
    out_dir: Path
    work: Path  # private to the grader
    job_dir: Path  # the only place the sandbox may write
    kit_dir: Path | None = None
    sandbox: Sandbox | None = None
    holdout: object = None
    execution: object = None
    validation: object = None
    scorecard: object = None
    scores: np.ndarray | None = None
    metrics: dict = field(default_factory=dict)
    unmeasured: dict = field(default_factory=dict)
    service: dict | None = None
    monitoring: dict | None = None
    rubric: list = field(default_factory=list)
    steps: list = field(default_factory=list)
    status: str = "graded"
    messages: list = field(default_factory=list)
    submission_sha256: str = ""
    result: dict | None = None
    collected: Path | None = None  # the predictions file, copied out of the job folder

    # files handed to the notebook
    @property
    def data_dir(self) -> Path:
        return self.job_dir / "data"

    @property
    def train_path(self) -> Path:
        return self.data_dir / "history.parquet"

    @property
    def score_path(self) -> Path:
        return self.data_dir / "score.parquet"

    @property
    def predictions_path(self) -> Path:
        return self.job_dir / "output" / "predictions.csv"

    @property
    def model_dir(self) -> Path:
        return self.job_dir / "output" / "model"

    @property
    def executed_notebook(self) -> Path:
        return self.work / "executed.ipynb"

    def fail(self, status: str, message: str) -> None:
        if self.status == "graded":
            self.status = status
        self.messages.append(message)


class _Stop(Exception):
    """A step decided that the later steps that need its output cannot run."""


# ---- steps -----------------------------------------------------------------------------


def prepare(job: Job) -> None:
    """Import the submission, check its notebook, build the hidden holdout, write the inputs."""
    from fullcycle.holdout import build_holdout
    from grading.submission import check_notebook, import_submission, submission_hash

    a = job.config.archive
    job.submission_sha256 = submission_hash(job.submission) if job.submission.exists() else ""
    try:
        job.kit_dir = import_submission(
            job.submission,
            job.job_dir / "submission",
            max_bytes=a.max_bytes,
            max_files=a.max_files,
            max_ratio=a.max_ratio,
        )
        check_notebook(
            job.kit_dir / job.spec.kit.notebook,
            job.config.limits.max_cells,
            job.config.limits.notebook_mb,
        )
    except SubmissionError as exc:
        job.fail("rejected", str(exc))
        job.unmeasured[""] = f"the submission was rejected ({exc})"
        raise _Stop from None
    job.holdout = build_holdout(
        job.spec,
        job.config.seed_int,
        job.config.scale,
        job.config.path(job.config.holdout_dir),
    )
    job.data_dir.mkdir()
    job.holdout.history.to_parquet(job.train_path, index=False)
    job.holdout.features.to_parquet(job.score_path, index=False)
    (job.job_dir / "output").mkdir()
    job.sandbox = Sandbox(job.job_dir, job.config.limits.to_limits(), job.config.sandbox)
    for p in job.job_dir.rglob("*"):
        job.sandbox.chown_for_sandbox(p)


def execute(job: Job) -> None:
    """Run the notebook with Papermill, its kernel in the sandbox, with the contract's parameters."""
    from grading.execute import execute_notebook

    params = {
        "train_path": str(job.train_path),
        "score_path": str(job.score_path),
        "predictions_path": str(job.predictions_path),
        "model_dir": str(job.model_dir),
        "seed": 0,
    }
    job.execution = execute_notebook(
        job.kit_dir / job.spec.kit.notebook,
        job.executed_notebook,
        params,
        job.sandbox,
        cwd=job.kit_dir,
        env={"FULLCYCLE_PROJECT": job.spec.name},
        kernel_log=job.work / "kernel.log",
    )
    ex = job.execution
    if not ex.ok:
        why = ex.message
        if ex.error_name == "NotImplementedError":
            why = f"cell {ex.failed_cell} is not implemented yet ({ex.message})"
        job.fail("notebook_failed", f"the notebook did not finish: {why}")


def collect(job: Job) -> None:
    """Copy the outputs out of the job folder, refusing links and special files."""
    got = job.work / "collected"
    got.mkdir()
    p = job.predictions_path
    if p.is_file() and not p.is_symlink():
        shutil.copyfile(p, got / p.name, follow_symlinks=False)
    job.collected = got / p.name


def validate(job: Job) -> None:
    """Read the predictions with a schema and check ids, numbers and range."""
    from grading.validate import read_predictions, validate_predictions

    pred = job.spec.prediction
    try:
        frame = read_predictions(job.collected, pred.id_column, pred.output_column)
    except ValueError as exc:
        job.validation = None
        reason = str(exc)
        if job.execution is not None and not job.execution.ok:
            reason = f"{reason} (the notebook did not finish: {job.execution.message[:200]})"
            if job.execution.error_name == "NotImplementedError":
                reason = f"not implemented yet: {reason}"
        job.unmeasured[""] = reason
        job.fail("invalid_predictions", reason)
        raise _Stop from None
    v = validate_predictions(
        frame,
        job.holdout.labels[pred.id_column],
        pred.id_column,
        pred.output_column,
        pred.score_range,
    )
    job.validation = v
    if not v.ok:
        reason = "the predictions are invalid: " + "; ".join(v.problems)
        job.unmeasured[""] = reason
        job.fail("invalid_predictions", reason)
        raise _Stop
    job.scores = v.scores


def score(job: Job) -> None:
    """Technical and business metrics, against the baseline and the oracle, outside the sandbox."""
    from fullcycle.evaluate import make_scorecard
    from fullcycle.run import at_scale

    spec = at_scale(job.spec, job.config.scale)
    job.scorecard = make_scorecard(spec, job.holdout.labels, job.scores)
    job.metrics.update(job.scorecard.metrics())


def probe_service(job: Job) -> None:
    """Start the learner's service in the sandbox and measure it."""
    from grading.probes import ServiceContract, probe_service

    svc = job.spec.service or {}
    if not job.config.service.enabled or "contract" not in svc:
        job.unmeasured["service"] = "the service probe is off for this grading"
        return
    if not (job.model_dir.is_dir() and job.validation is not None and job.validation.ok):
        job.unmeasured["service"] = "no model folder and valid predictions to serve"
        return
    cfg = job.config.service
    id_col = job.spec.prediction.id_column
    labels = job.holdout.labels
    order = labels.sort_values(["TX_DATETIME", id_col] if "TX_DATETIME" in labels else [id_col])
    offline = job.scores[order.index.to_numpy()]
    state = job.job_dir / "service"
    state.mkdir(exist_ok=True)
    sandbox = Sandbox(job.job_dir, job.config.limits.to_limits(), job.config.sandbox)
    sandbox.chown_for_sandbox(state)
    try:
        job.service = probe_service(
            sandbox,
            job.kit_dir,
            svc.get("app", "service:create_app"),
            ServiceContract(**svc["contract"]),
            {
                "FULLCYCLE_PROJECT": job.spec.name,
                "FULLCYCLE_MODEL_DIR": str(job.model_dir),
                "FULLCYCLE_TRAIN_PATH": str(job.train_path),
                "FULLCYCLE_STATE_DIR": str(state),
            },
            order.drop(columns=[c for c in labels.columns if c not in order.columns]),
            offline,
            job.spec.prediction.score_range,
            ready_timeout=cfg.ready_timeout_s,
            request_timeout=cfg.request_timeout_s,
            consistency_rows=cfg.consistency_rows,
            latency_requests=cfg.requests,
            tolerance=cfg.tolerance,
            log_path=job.work / "service.log",
        )
    finally:
        sandbox.close()
    s = job.service
    if not s.get("ready"):
        job.unmeasured["service"] = "; ".join(s["problems"]) or "the service did not start"
        return
    for key in ("contract", "consistency", "bad_input_4xx", "p50_ms", "p99_ms"):
        if key in s:
            job.metrics[f"service.{key}"] = float(s[key])


def probe_monitoring(job: Job) -> None:
    """Run the learner's drift check on a hidden faulty batch and a hidden ordinary one."""
    from grading.probes import probe_monitoring

    mon = job.spec.monitoring or {}
    h = job.holdout
    if not job.config.monitoring.enabled or "check" not in mon or not h.batches:
        job.unmeasured["monitoring"] = "the monitoring probe is off for this grading"
        return
    sandbox = Sandbox(job.job_dir, job.config.limits.to_limits(), job.config.sandbox)
    try:
        job.monitoring = probe_monitoring(
            sandbox,
            job.kit_dir,
            mon["check"],
            h.batches,
            h.reference_batch,
            h.drifted_batch,
            job.config.monitoring.timeout_s,
        )
    finally:
        sandbox.close()
    job.metrics["monitoring.flags_drift"] = job.monitoring["flags_drift"]
    job.metrics["monitoring.quiet_on_clean"] = job.monitoring["quiet_on_clean"]
    if job.monitoring["problems"] and not any(
        (job.monitoring["flags_drift"], job.monitoring["quiet_on_clean"])
    ):
        job.unmeasured["monitoring"] = "; ".join(job.monitoring["problems"])


def rubric(job: Job) -> None:
    from grading.rubric import apply_rubric

    job.rubric = apply_rubric(job.spec.rubric, job.metrics, job.unmeasured)


def report(job: Job) -> None:
    """result.json (versioned), feedback.md, feedback.html and the executed notebook."""
    from grading.report import write_reports

    job.result = build_result(job)
    write_reports(job)


def store(job: Job) -> None:
    from grading.store import ResultsStore

    path = job.config.path(job.config.results_store)
    ResultsStore(path).add(job.result)


STEPS = [
    ("prepare", prepare),
    ("execute", execute),
    ("collect", collect),
    ("validate", validate),
    ("score", score),
    ("probe_service", probe_service),
    ("probe_monitoring", probe_monitoring),
    ("rubric", rubric),
    ("report", report),
    ("store", store),
]
_ALWAYS = {"rubric", "report", "store"}


# ---- result ----------------------------------------------------------------------------


def _versions() -> dict:
    out = {"python": platform.python_version()}
    for p in PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            out[p] = None
    return out


def _clean(obj):
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def build_result(job: Job) -> dict:
    points = round(sum(line["points"] for line in job.rubric), 4)
    max_points = round(sum(line["max_points"] for line in job.rubric), 4)
    ex = job.execution
    v = job.validation
    return _clean(
        {
            "schema": RESULT_SCHEMA,
            "project": job.spec.name,
            "graded_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "status": job.status,
            "messages": job.messages,
            "score": {"points": points, "max_points": max_points},
            "rubric": job.rubric,
            "metrics": {k: job.metrics[k] for k in sorted(job.metrics)},
            "execution": None
            if ex is None
            else {
                "status": ex.status,
                "message": ex.message,
                "failed_cell": ex.failed_cell,
                "error": ex.error_name,
                "seconds": round(ex.seconds, 3),
                "cell_seconds": round(ex.cell_seconds, 3),
                "output_bytes": ex.output_bytes,
            },
            "validation": None
            if v is None
            else {"ok": v.ok, "problems": v.problems, "counts": v.counts},
            "service": None
            if job.service is None
            else {k: val for k, val in job.service.items() if k != "latency_ms"},
            "monitoring": job.monitoring,
            "isolation": job.sandbox.isolation if job.sandbox else None,
            "provenance": {
                "submission": {"name": job.submission.name, "sha256": job.submission_sha256},
                "data_fingerprint": job.holdout.fingerprint() if job.holdout is not None else None,
                "spec_sha256": job.spec.sha256,
                "seed_sha256": __import__("hashlib")
                .sha256(job.config.secret_seed.encode())
                .hexdigest(),
                "scale": job.config.scale,
                "packages": _versions(),
                "steps": job.steps,
            },
            "submission": {"name": job.submission.name, "sha256": job.submission_sha256},
        }
    )


def grade(
    submission: str | Path,
    spec,
    config: GradingConfig,
    out_dir: str | Path,
    *,
    keep_work: bool = False,
    progress=None,
) -> dict:
    """Grade ``submission`` (a kit folder or a .zip) and write the reports into ``out_dir``.

    Returns the result (the content of ``result.json``).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="fullcycle-grade-"))
    job_dir = work / "job"
    job_dir.mkdir()
    job = Job(spec, config, Path(submission), out_dir, work / "private", job_dir)
    job.work.mkdir()
    stopped = False
    try:
        for name, fn in STEPS:
            if stopped and name not in _ALWAYS:
                job.steps.append({"step": name, "status": "skipped", "seconds": 0.0})
                continue
            t = time.perf_counter()
            status = "ok"
            try:
                fn(job)
            except _Stop:
                stopped = True
                status = "stopped"
            except Exception as exc:
                stopped = True
                status = "error"
                job.fail("grader_error", f"step {name} failed: {type(exc).__name__}: {exc}")
                (job.work / f"{name}.traceback.txt").write_text(traceback.format_exc())
                if name in ("report", "store"):
                    raise
            job.steps.append(
                {"step": name, "status": status, "seconds": round(time.perf_counter() - t, 3)}
            )
            if progress:
                progress(name, status)
        return job.result
    finally:
        if job.sandbox is not None:
            job.sandbox.close()
        if not keep_work:
            shutil.rmtree(work, ignore_errors=True)
