"""Grade one submission: an ordered list of small steps driven by the project spec.

prepare → execute → collect → validate → score → probe service → probe
monitoring (drift, decay) → probe the stages (data contract, leakage,
parity, decision policy, decision rules, retraining) → reference → rubric → report → store.

Each step is a function of a :class:`Job`; it records its time and outcome
and never lets a submission's fault escape as an exception. Labels stay in
this (trusted) process; the sandbox sees the job folder only: the notebook,
its inputs, its outputs, and each stage probe's inputs.

Secrets before learners: the config (with the seed) is read before
:func:`grade` starts, and ``prepare`` checks the sandbox (refusing, as a
recorded ``grader_error``, where the configured isolation cannot be had, or
where learner code could read the config file or ``holdout_dir``) and builds
the holdout with its labels before any learner process starts. No secret is
put on a learner's command line or in its environment. The grader's work
folder is ``0711``: its ``private/`` folder is ``0700``, the ``job/`` folder
belongs to the sandbox user. A result whose learner code ran with reduced
isolation has the status suffix ``:reduced_isolation`` (e.g.
``graded:reduced_isolation``); use ``status.split(":")[0]`` for the base status.

Ordering constraints (:data:`NEEDS`): a step that needs the submission is
skipped when ``prepare`` rejected it; a step that needs predictions (the
scorecard, the service, the decision policy, the reference comparison) is
skipped when they are missing or invalid. Every other stage probe runs
whatever the notebook did, so each stage is graded on its own. ``rubric``,
``report`` and ``store`` always run.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import stat
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import numpy as np

from grading.config import GradingConfig
from grading.errors import GradingConfigError, SubmissionError
from grading.sandbox import Sandbox, job_uid

__all__ = [
    "Warm",
    "prestart",
    "Job",
    "NEEDS",
    "REDUCED_SUFFIX",
    "RESULT_SCHEMA",
    "STEPS",
    "base_status",
    "check_isolation",
    "grade",
    "make_workspace",
]

RESULT_SCHEMA = "fullcycle.grading.result/1"
#: Appended to a result's status when learner code ran with reduced isolation.
REDUCED_SUFFIX = ":reduced_isolation"
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
    stages: dict = field(default_factory=dict)  # probe name -> StageResult.as_dict()
    disabled: dict = field(default_factory=dict)  # figure prefix -> why the config turned it off
    reference: dict | None = None  # the reference kit's figures on this hidden world
    rubric: list = field(default_factory=list)
    steps: list = field(default_factory=list)
    status: str = "graded"
    messages: list = field(default_factory=list)
    submission_sha256: str = ""
    result: dict | None = None
    collected: Path | None = None  # the predictions file, copied out of the job folder
    learner: str | None = None
    assignment: str | None = None
    sandbox_uid: int | None = None  # learner code's uid, one per job (as root)
    sandboxes: list = field(default_factory=list)  # every sandbox made for this job
    warm: Warm | None = None  # a sandbox and kernel started before the submission arrived
    refused: str | None = None  # why grading was refused before any learner code ran

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
    """Check the sandbox and the secrets, import the submission, build the holdout, write inputs.

    Refuses (``grader_error``, before any learner code runs) where the config's
    isolation cannot be had here, or where learner code could read a secret.
    """
    from fullcycle.holdout import build_holdout
    from grading.submission import check_notebook, import_submission, submission_hash

    job.submission_sha256 = submission_hash(job.submission) if job.submission.exists() else ""
    _protect_work(job)
    try:
        job.sandbox = job.warm.sandbox if job.warm is not None else _sandbox(job)
    except (GradingConfigError, ValueError) as exc:
        _refuse(job, str(exc))
    exposed = _exposed(job.sandbox, job.config, job.job_dir)
    if exposed:
        _refuse(job, f"grading refused (sandbox: {job.sandbox.mode}): " + "; ".join(exposed))
    a = job.config.archive
    try:
        incoming = job.job_dir / (".incoming" if job.warm is not None else "submission")
        job.kit_dir = import_submission(
            job.submission,
            incoming,
            max_bytes=a.max_bytes,
            max_files=a.max_files,
            max_ratio=a.max_ratio,
        )
        if job.warm is not None:  # the kernel already runs in job/submission: move the kit there
            for entry in os.scandir(job.kit_dir):
                os.rename(entry.path, job.warm.kit_dir / entry.name)
            shutil.rmtree(incoming)
            job.kit_dir = job.warm.kit_dir
        check_notebook(
            job.kit_dir / job.spec.kit.notebook,
            job.config.limits.max_cells,
            job.config.limits.notebook_mb,
        )
    except SubmissionError as exc:
        job.fail("rejected", str(exc))
        job.unmeasured[""] = f"the submission was rejected ({exc})"
        raise _Stop from None
    if job.holdout is None:
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
        km=job.warm.km if job.warm is not None else None,
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
    from grading.harness import OutputError, copy_bounded
    from grading.validate import MAX_PREDICTIONS_MB

    p = job.predictions_path
    cap = int(MAX_PREDICTIONS_MB * 1e6)
    job.collected = got / p.name
    try:
        st = p.lstat()
    except OSError:
        return  # no predictions: validate says what the notebook must write
    if stat.S_ISREG(st.st_mode) and st.st_size > cap:
        why = (
            f"the predictions file is {st.st_size:,} bytes; the limit is "
            f"{MAX_PREDICTIONS_MB:.0f} MB: write one row per scored id"
        )
        job.fail("invalid_predictions", why)
        job.unmeasured[""] = why
        job.collected = None  # refused: validate has nothing to add
        raise _Stop
    try:
        copy_bounded(p, job.collected, cap)
    except OutputError:
        pass  # a link or a special file is not collected: validate reports it missing


def validate(job: Job) -> None:
    """Read the predictions with a schema and check ids, numbers and range."""
    from grading.validate import read_predictions, validate_predictions

    if job.collected is None:
        raise _Stop  # collect refused the file and said why
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
    from grading.probes import probe_service

    svc = job.spec.service
    if not job.config.service.enabled:
        job.disabled["service"] = "the service probe is off for this grading"
        return
    if svc is None:
        job.unmeasured["service"] = "the project has no service contract to probe"
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
    if state.is_symlink() or (state.exists() and not state.is_dir()):
        state.unlink()  # the notebook made it: never follow a learner's link
    state.mkdir(exist_ok=True)
    sandbox = _sandbox(job)
    sandbox.chown_for_sandbox(state)
    try:
        job.service = probe_service(
            sandbox,
            job.kit_dir,
            job.spec.kit.entry("service"),
            svc.contract,
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
    for key, why in (s.get("unmeasured") or {}).items():
        job.unmeasured[f"service.{key}"] = why


def probe_monitoring(job: Job) -> None:
    """Run the learner's drift check on a hidden faulty batch and a hidden ordinary one."""
    from grading.stages import probe_flags

    names = ("monitoring.flags_drift", "monitoring.quiet_on_clean")
    if not _wanted(job, names):
        return
    if not job.config.monitoring.enabled:
        _disable(job, names, "the monitoring probe is off for this grading")
        return
    h = job.holdout
    if not h.batches or h.drifted_batch is None:
        _unmeasured(job, names, "the hidden data of this project has no monitoring batches")
        return
    current = {n: b for n, b in h.batches.items() if n != h.reference_batch}
    result = probe_flags(
        _runner(job, job.config.monitoring.timeout_s),
        "drift",
        job.spec.kit.entry("drift"),
        h.batches[h.reference_batch],
        current,
        h.drifted_batch,
        "drift",
        names,
        ("the batch with an upstream fault", "an ordinary batch"),
    )
    _record(job, "drift", result)
    job.monitoring = {
        "flags_drift": result.metrics.get(names[0]),
        "quiet_on_clean": result.metrics.get(names[1]),
        "problems": result.problems,
    }


def probe_decay(job: Job) -> None:
    """Run the learner's decay check on hidden served traffic whose ranking held or decayed."""
    from grading.stages import probe_flags

    names = ("monitoring.flags_decay", "monitoring.quiet_on_stable")
    if not _wanted(job, names):
        return
    if not job.config.monitoring.enabled:
        _disable(job, names, "the monitoring probe is off for this grading")
        return
    case = _case(job, "decay", names)
    if case is None:
        return
    result = probe_flags(
        _runner(job, job.config.monitoring.timeout_s),
        "decay",
        job.spec.kit.entry("decay"),
        case.reference,
        case.windows,
        case.decayed,
        "decay",
        names,
        ("the window whose ranking decayed", "a window whose performance held"),
        value=_value_spec(job),
    )
    _record(job, "decay", result)


def probe_contract(job: Job) -> None:
    """The learner's data contract on a hidden messy export."""
    from grading.stages import probe_contract as probe

    names = ("contract.faulty_quarantined", "contract.good_kept")
    case = _stage_case(job, "contract", names)
    if case is not None:
        _record(job, "contract", probe(_runner(job), case, job.spec.kit.entry("contract")))


def probe_leakage(job: Job) -> None:
    """The learner's features on a hidden history, with young labels flipped and future rows."""
    from grading.stages import probe_leakage as probe

    case = _stage_case(job, "leakage", ("features.leakage_free",))
    if case is not None:
        _record(job, "leakage", probe(_runner(job), case, job.spec.kit.entry("features")))


def probe_as_of(job: Job) -> None:
    """The learner's feature as of a hidden day, with and without the events from that day on."""
    from grading.stages import probe_as_of as probe

    case = _stage_case(job, "as_of", ("features.past_only",))
    if case is not None:
        _record(job, "as_of", probe(_runner(job), case, job.spec.kit.entry("features")))


def probe_parity(job: Job) -> None:
    """The learner's online features on a replayed hidden day against the offline ones."""
    from grading.stages import probe_parity as probe

    case = _stage_case(job, "parity", ("features.parity",))
    if case is not None:
        result = probe(
            _runner(job), case, job.spec.kit.entry("features"), job.spec.kit.entry("online")
        )
        _record(job, "parity", result)


def probe_policy(job: Job) -> None:
    """The learner's review priority on their own predictions: value against top-k and oracle."""
    from grading.stages import probe_policy as probe

    names = ("policy.value_vs_top_k", "policy.share_of_oracle")
    if not _wanted(job, names, relations=True) or not _stages_on(job, names):
        return
    try:
        from fullcycle.metrics.business import review_candidates  # noqa: F401
    except ImportError:
        _unmeasured(job, names, "this project's value model has no review candidates")
        return
    p = job.spec.prediction
    labels = job.holdout.labels
    result = probe(
        _runner(job),
        labels,
        job.scores,
        _value_spec(job),
        job.spec.kit.entry("policy"),
        [p.label_column, *p.hidden_columns],
    )
    _record(job, "policy", result)


def probe_decision(job: Job) -> None:
    """The learner's decision on hidden candidates with given scores: rules and order kept."""
    from grading.stages import probe_decision as probe

    names = ("decision.exclusions_respected", "decision.order_kept")
    case = _stage_case(job, "decision", names)
    p = job.spec.prediction
    if case is not None and p.group_column is None:
        _unmeasured(job, names, "the project names no prediction.group_column to rank within")
    elif case is not None:
        result = probe(
            _runner(job),
            case,
            job.spec.kit.entry("policy"),
            p.group_column,
            [p.label_column, *p.hidden_columns],
        )
        _record(job, "decision", result)


def probe_retraining(job: Job) -> None:
    """The learner's promotion rule on hidden champion/challenger cases."""
    from grading.stages import probe_retraining as probe
    from grading.stages import promotion_cases

    names = ("retraining.correct_decisions",)
    if not _wanted(job, names) or not _stages_on(job, names):
        return
    r = job.spec.retraining
    gate = job.spec.gate.min_roc_auc if r.min_gate is None else r.min_gate
    cases = promotion_cases(
        job.config.seed_int, r.margin, gate, value=r.value, gate=r.gate, size=r.size
    )
    rule = job.spec.kit.entry("promotion")
    _record(job, "retraining", probe(_runner(job), cases, rule, value=r.value, gate=r.gate))


def reference(job: Job) -> None:
    """Figures relative to the reference kit's on the same hidden world (``<figure>.vs_reference``)."""
    from grading.reference import RELATION, reference_figures, relative_figures

    wanted = [c.metric for c in job.spec.rubric if c.metric.endswith("." + RELATION)]
    if not wanted:
        return
    try:
        job.reference = reference_figures(job)
    except Exception as exc:  # the grader's own kit failed: say so, never blame the learner
        why = f"the reference kit could not be graded on this hidden world ({exc})"
        job.fail("grader_error", why)
        _unmeasured(job, wanted, why)
        (job.work / "reference.traceback.txt").write_text(traceback.format_exc())
        return
    figures, reasons = relative_figures(job.metrics, job.reference["figures"], wanted)
    job.metrics.update(figures)
    job.unmeasured.update(reasons)


def rubric(job: Job) -> None:
    from grading.rubric import apply_rubric

    # A probe the config turns off is "not measured" even when an earlier stop skipped its step.
    cfg = job.config
    for section, on in (("service", cfg.service.enabled), ("monitoring", cfg.monitoring.enabled)):
        if not on:
            job.disabled.setdefault(section, f"the {section} probe is off for this grading")
    stages = getattr(cfg, "stages", None)
    if stages is not None and not getattr(stages, "enabled", True):
        for section in ("contract", "features", "policy", "decision", "retraining"):
            job.disabled.setdefault(section, "the stage probes are off for this grading")
    job.rubric = apply_rubric(job.spec.rubric, job.metrics, job.unmeasured, job.disabled)


def report(job: Job) -> None:
    """result.json (versioned), feedback.md, feedback.html and the executed notebook."""
    from grading.report import write_reports

    job.result = build_result(job)
    write_reports(job)


def store(job: Job) -> None:
    from grading.store import ResultsStore

    ResultsStore(job.config.store_target()).add(job.result)


# ---- the sandbox and the secrets ---------------------------------------------------------


def _sandbox(job: Job) -> Sandbox:
    """A fresh sandbox on the job folder, in the config's mode; remembered for the result.

    As root, learner code of each job runs as a uid of its own (:func:`job_uid`): without
    namespaces no two learners can read each other's files or signal each other's
    processes, and ``RLIMIT_NPROC`` (counted per uid) counts this job's processes only.
    """
    mode = job.config.sandbox_mode
    if os.geteuid() == 0 and job.sandbox_uid is None:
        job.sandbox_uid = job_uid()
    sandbox = Sandbox(job.job_dir, job.config.limits.to_limits(), mode, uid=job.sandbox_uid)
    job.sandboxes.append(sandbox)
    return sandbox


def _refuse(job: Job, why: str) -> None:
    job.refused = why
    job.fail("grader_error", why)
    job.unmeasured[""] = why
    raise _Stop


def _exposed(sandbox: Sandbox, config: GradingConfig, job_dir: Path) -> list[str]:
    """Why learner code in ``sandbox`` could read a secret, or could not reach its job folder."""
    problems = [why for p in config.secret_paths() if (why := sandbox.exposes(p))]
    if not sandbox.reaches(job_dir):
        problems.append(
            f"the job folder {job_dir} is not reachable by the sandbox user (uid "
            f"{sandbox.uid}): every folder above it must let others through "
            f"(`chmod 711` on the grader's own folders, e.g. {job_dir.parent})"
        )
    return problems


def _protect_work(job: Job) -> None:
    """``private/`` only for the grader; their parent (if only theirs) lets the sandbox through."""
    job.work.mkdir(parents=True, exist_ok=True)
    job.work.chmod(0o700)
    parent = job.job_dir.parent
    try:
        only_ours = {e.name for e in os.scandir(parent)} <= {job.work.name, job.job_dir.name}
        ours = parent == job.work.parent and parent.stat().st_uid == os.getuid()
    except OSError:
        return
    if only_ours and ours:
        parent.chmod(0o711)


@dataclass
class Warm:
    """A workspace, its sandbox and a kernel started before the job's submission is known.

    A cohort starts the next job's kernel while the current job is graded
    (:func:`prestart`); the kernel runs no learner code until the notebook is
    executed, after every check of ``prepare``.
    """

    work: Path
    private: Path
    job_dir: Path
    kit_dir: Path
    sandbox: Sandbox
    uid: int | None
    km: object
    log: object

    def close(self) -> None:
        """Release the kernel manager (its kernel was killed with the sandbox) and the log."""
        from grading.execute import release_kernel

        release_kernel(self.km)
        with contextlib.suppress(OSError, ValueError):
            self.log.close()


def prestart(config: GradingConfig, spec) -> Warm | None:
    """A :class:`Warm` workspace with its kernel starting; None where the sandbox is refused."""
    from jupyter_core.utils import run_sync

    from grading.execute import SandboxedKernelManager, message_bound

    work, private, job_dir = make_workspace()
    uid = job_uid() if os.geteuid() == 0 else None
    try:
        sandbox = Sandbox(job_dir, config.limits.to_limits(), config.sandbox_mode, uid=uid)
    except (GradingConfigError, ValueError):
        shutil.rmtree(work, ignore_errors=True)
        return None  # grading will record the refusal
    kit_dir = job_dir / "submission"
    kit_dir.mkdir(mode=0o700)
    sandbox.chown_for_sandbox(kit_dir)
    km = SandboxedKernelManager(
        sandbox,
        {"FULLCYCLE_PROJECT": spec.name},
        kit_dir,
        max_message=message_bound(sandbox.limits),
    )
    log = open(private / "kernel.log", "wb")  # closed by Warm.close
    km._log_file = log
    warm = Warm(work, private, job_dir, kit_dir, sandbox, uid, km, log)
    try:
        run_sync(km.start_kernel)()
    except Exception:
        sandbox.close()
        warm.close()
        shutil.rmtree(work, ignore_errors=True)
        return None
    return warm


def make_workspace(prefix: str = "fullcycle-grade-") -> tuple[Path, Path, Path]:
    """A new grading workspace ``(folder, private, job)`` under the temporary folder.

    ``folder`` is ``0711`` (the sandbox user may pass, not list), ``private`` is
    ``0700`` (the grader's only), ``job`` is ``0700`` and is given to the sandbox
    user by the sandbox.
    """
    work = Path(tempfile.mkdtemp(prefix=prefix))
    work.chmod(0o711)
    private, job_dir = work / "private", work / "job"
    private.mkdir(mode=0o700)
    job_dir.mkdir(mode=0o700)
    return work, private, job_dir


def check_isolation(config: GradingConfig) -> dict:
    """Check, before grading anything, that ``config``'s isolation can be had here.

    For a cohort: fail once, early, instead of refusing every submission.
    Returns the isolation a job would get (as in ``result["isolation"]``).

    Raises
    ------
    GradingConfigError
        When grading would be refused: the sandbox cannot be had, or learner code
        could read the config file or ``holdout_dir``. The message says how to fix it.
    """
    work, _, job_dir = make_workspace("fullcycle-check-isolation-")
    sandbox = None
    try:
        mode = config.sandbox_mode
        uid = job_uid() if os.geteuid() == 0 else None
        try:
            sandbox = Sandbox(job_dir, config.limits.to_limits(), mode, uid=uid)
        except ValueError as exc:
            raise GradingConfigError(str(exc)) from None
        exposed = _exposed(sandbox, config, job_dir)
        if exposed:
            raise GradingConfigError(
                f"grading refused (sandbox: {sandbox.mode}): " + "; ".join(exposed)
            )
        return sandbox.isolation
    finally:
        if sandbox is not None:
            sandbox.close()
        shutil.rmtree(work, ignore_errors=True)


def base_status(status: str) -> str:
    """``graded`` of ``graded:reduced_isolation``: the status without its flags."""
    return status.split(":")[0]


def _isolation(job: Job) -> dict | None:
    """What protected learner code; ``reduced`` only when learner code ran with less."""
    ran = [s for s in job.sandboxes if s.used]
    if job.sandbox is None:
        if job.refused is None:
            return None
        return {
            "mode": job.config.sandbox_mode,
            "kind": None,
            "reduced": False,
            "reasons": [],
            "learner_code_ran": False,
            "refused": job.refused,
        }
    reasons = list(dict.fromkeys(r for s in ran for r in s.reasons))
    return {
        **job.sandbox.isolation,
        "reduced": bool(reasons),
        "reasons": reasons if ran else list(job.sandbox.reasons),
        "learner_code_ran": bool(ran),
        "refused": job.refused,
    }


# ---- helpers of the probe steps ---------------------------------------------------------


def _wanted(job: Job, names, relations: bool = False) -> bool:
    """Whether a rubric line measures one of ``names`` (else the probe need not run)."""
    used = {c.metric for c in job.spec.rubric}
    if relations:
        used |= {m.rpartition(".")[0] for m in used}
    return bool(used & set(names))


def _unmeasured(job: Job, names, reason: str) -> None:
    for n in names:
        job.unmeasured[n] = reason


def _disable(job: Job, names, reason: str) -> None:
    for n in names:
        job.disabled[n] = reason


def _stages_on(job: Job, names) -> bool:
    """The stage probes are on unless the grading config turns them off."""
    if not job.config.stages.enabled:
        _disable(job, names, "the stage probes are off for this grading")
        return False
    return True


def _case(job: Job, name: str, names):
    case = (getattr(job.holdout, "stages", None) or {}).get(name)
    if case is None:
        _unmeasured(job, names, f"the hidden data of this project has no {name} case")
    return case


def _stage_case(job: Job, name: str, names):
    if not _wanted(job, names) or not _stages_on(job, names):
        return None
    return _case(job, name, names)


def _value_spec(job: Job) -> dict:
    from fullcycle.run import at_scale

    bv = at_scale(job.spec, job.config.scale).business_value
    return {"model": bv.model, "params": dict(bv.params)}


def _runner(job: Job, timeout: float | None = None):
    """``run(name, task, entries, inputs, params)``: one stage run in a fresh sandbox of the job."""
    from grading.harness import run_stage

    limit = timeout or job.config.stages.timeout_s

    def run(name, task, entries, inputs, params):
        return run_stage(
            job.job_dir,
            lambda: _sandbox(job),
            job.kit_dir,
            name,
            task,
            entries,
            inputs,
            params,
            timeout=limit,
            env={"FULLCYCLE_PROJECT": job.spec.name},
            log=job.work / f"stage-{name}.log",
        )

    return run


def _record(job: Job, name: str, result) -> None:
    job.metrics.update(result.metrics)
    job.unmeasured.update(result.unmeasured)
    job.stages[name] = result.as_dict()


STEPS = [
    ("prepare", prepare),
    ("execute", execute),
    ("collect", collect),
    ("validate", validate),
    ("score", score),
    ("probe_service", probe_service),
    ("probe_monitoring", probe_monitoring),
    ("probe_decay", probe_decay),
    ("probe_contract", probe_contract),
    ("probe_leakage", probe_leakage),
    ("probe_as_of", probe_as_of),
    ("probe_parity", probe_parity),
    ("probe_policy", probe_policy),
    ("probe_decision", probe_decision),
    ("probe_retraining", probe_retraining),
    ("reference", reference),
    ("rubric", rubric),
    ("report", report),
    ("store", store),
]
#: What each step needs: ``submission`` (``prepare`` accepted it) or ``predictions`` (and
#: ``validate`` accepted the predictions). Steps not listed always run.
NEEDS = {
    "execute": "submission",
    "collect": "submission",
    "validate": "submission",
    "score": "predictions",
    "probe_service": "predictions",
    "probe_monitoring": "submission",
    "probe_decay": "submission",
    "probe_contract": "submission",
    "probe_leakage": "submission",
    "probe_as_of": "submission",
    "probe_parity": "submission",
    "probe_policy": "predictions",
    "probe_decision": "submission",
    "probe_retraining": "submission",
    "reference": "predictions",
}
#: A step that stops (or fails) takes away what it provides from the steps after it.
_PROVIDES = {"prepare": {"submission", "predictions"}, "validate": {"predictions"}}
_PROVIDES |= {"execute": {"predictions"}, "collect": {"predictions"}, "score": {"predictions"}}


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
    isolation = _isolation(job)
    status = job.status
    if isolation is not None and isolation["reduced"]:
        status += REDUCED_SUFFIX
    return _clean(
        {
            "schema": RESULT_SCHEMA,
            "project": job.spec.name,
            "graded_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "status": status,
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
            "stages": job.stages,
            "reference": job.reference,
            "isolation": isolation,
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
            "submission": {
                "name": job.submission.name,
                "sha256": job.submission_sha256,
                "learner": job.learner,
                "assignment": job.assignment,
            },
        }
    )


def run_steps(job: Job, steps, progress=None) -> None:
    """Run ``steps`` in order on ``job``; a stopped or failed step skips what needs its output."""
    missing: set[str] = set()
    for name, fn in steps:
        need = NEEDS.get(name)
        if need in missing:
            job.steps.append({"step": name, "status": "skipped", "seconds": 0.0})
            continue
        t = time.perf_counter()
        status = "ok"
        try:
            fn(job)
        except _Stop:
            missing |= _PROVIDES.get(name, set())
            status = "stopped"
        except Exception as exc:
            missing |= _PROVIDES.get(name, set())
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


def grade(
    submission: str | Path,
    spec,
    config: GradingConfig,
    out_dir: str | Path,
    *,
    keep_work: bool = False,
    progress=None,
    learner: str | None = None,
    assignment: str | None = None,
    store: bool = True,
    holdout=None,
    warm: Warm | None = None,
) -> dict:
    """Grade ``submission`` (a kit folder or a .zip) and write the reports into ``out_dir``.

    Parameters
    ----------
    submission : path
        The learner's kit folder or a .zip of it.
    spec : ProjectSpec
        The project.
    config : GradingConfig
        The instructor's grading config (already read: the seed is in memory).
    out_dir : path
        Where ``result.json``, ``feedback.md``, ``feedback.html`` and the executed
        notebook go.
    keep_work : bool
        Keep the grader's work folder (for debugging the grader).
    progress : callable, optional
        ``progress(step, status)`` after each step.
    learner, assignment : str, optional
        Who and what, recorded in ``result["submission"]`` (None for one ``fullcycle grade``).
    store : bool
        Append the result to the config's results store (a cohort stores results itself).
    holdout : Holdout, optional
        A hidden world built already (:attr:`Job.holdout`), so a cohort builds it once.
    warm : Warm, optional
        A workspace whose sandbox and kernel were started before (:func:`prestart`).

    Returns
    -------
    dict
        The result (the content of ``result.json``).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if warm is not None:
        work, private, job_dir = warm.work, warm.private, warm.job_dir
    else:
        work, private, job_dir = make_workspace()
    job = Job(
        spec,
        config,
        Path(submission),
        out_dir,
        private,
        job_dir,
        holdout=holdout,
        learner=learner,
        assignment=assignment,
    )
    if warm is not None:
        job.warm, job.sandbox_uid = warm, warm.uid
        job.sandboxes.append(warm.sandbox)
    steps = STEPS if store else [(name, fn) for name, fn in STEPS if name != "store"]
    try:
        run_steps(job, steps, progress)
        return job.result
    finally:
        for sandbox in job.sandboxes:
            sandbox.close()
        if warm is not None:
            warm.close()
        if not keep_work:
            shutil.rmtree(work, ignore_errors=True)
