"""Grade a cohort: every submission of a folder, in parallel on Dask, resumable after a crash.

``fullcycle grade-cohort SUBMISSIONS --project P --config C --out DIR``:

1. **Find the submissions** (:func:`discover`): ``SUBMISSIONS`` is a folder of
   learner folders (``alice/`` holding the kit), of learner zips
   (``alice.zip``), or nbgrader's ``submitted/<student>/<assignment>/`` tree.
   Each gets a SHA-256 over its files (bounded in bytes and entries; links are
   never followed; nbgrader's ``timestamp.txt`` is left out, so the same work
   has one hash and a copy between learners shows).
2. **Skip what is done**: with ``--resume``, a (learner, submission hash)
   that already has a result in the store is not graded again. Without
   ``--resume`` a store that already holds results of the assignment is
   refused, so nothing is graded twice by mistake.
3. **Grade in parallel** on a Dask ``LocalCluster`` (one single-threaded
   worker per core, TLS with temporary credentials so no other local process
   can submit work to it) or an existing scheduler (``--scheduler``). Each task
   grades one submission in a watched job process (:mod:`grading.jobproc`):
   its own sandbox, the same steps as ``fullcycle grade``, a wall-clock
   deadline and a memory bound. Each worker keeps the next job's process
   started and warm while the current one is graded.
4. **Store as results arrive**, from this one process, in the append-only
   results store (SQLite or PostgreSQL); a progress bar shows the ETA and a
   running count of failures. A ``kill -9`` loses at most the jobs in flight,
   which ``--resume`` grades again; a stored result is never counted twice.
5. **Report**: the current result of every learner goes to the cohort report
   (``cohort.html``, ``cohort.csv``) and, when a course folder is given or
   ``SUBMISSIONS`` is nbgrader's tree, to nbgrader's gradebook and feedback
   folder.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from distributed.diagnostics.plugin import WorkerPlugin

from grading.errors import GradingConfigError
from grading.gradebook import GradebookError, check_student_id
from grading.jobproc import JobLimits, JobProcess, JobRequest, JobServer

__all__ = [
    "CohortSummary",
    "Submission",
    "bounded_hash",
    "discover",
    "grade_cohort",
    "grade_task",
]

#: Statuses that mean the submission was graded (a low score is still a grade).
OK_STATUSES = ("graded",)


@dataclass(frozen=True)
class Submission:
    """One learner's submission: where it is and the hash that names its content."""

    learner: str
    path: Path
    sha256: str


@dataclass
class CohortSummary:
    """What a cohort run did; ``current`` holds the current result of every learner."""

    found: int = 0
    skipped: int = 0
    graded: int = 0
    failed: int = 0
    seconds: float = 0.0
    current: list = field(default_factory=list)
    report: Path | None = None
    csv: Path | None = None
    gradebook: object = None  # a grading.gradebook.GradebookExport
    store: str = ""
    #: Seconds from the first submitted task to each result's arrival, in arrival order.
    timeline: list = field(default_factory=list)


# ---- discovery -------------------------------------------------------------------------


#: Files nbgrader adds to a submission that are not the learner's work.
NBGRADER_FILES = frozenset({"timestamp.txt"})


def bounded_hash(path: Path, skip: frozenset[str] = frozenset()) -> str:
    """The submission's SHA-256 (bounded in bytes and entries; links never followed)."""
    from grading.submission import submission_hash

    return submission_hash(path, skip=skip)


def discover(folder: str | Path, assignment: str) -> list:
    """The submissions under ``folder``, sorted by learner.

    Returns a list of :class:`Submission`; a learner folder that cannot be a
    submission (a link, an empty folder) is still returned, so that grading
    records why it was rejected.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise GradingConfigError(f"{folder}: no such folder of submissions")
    nbgrader = folder / "submitted" if (folder / "submitted").is_dir() else None
    if nbgrader is None and folder.name == "submitted":
        nbgrader = folder
    found: dict[str, Path] = {}
    if nbgrader is not None:
        for student in sorted(nbgrader.iterdir()):
            sub = student / assignment
            if student.is_dir() and sub.is_dir():
                found[student.name] = sub
    else:
        for entry in sorted(folder.iterdir()):
            if entry.name.startswith("."):
                continue
            if entry.is_dir() or entry.is_symlink():
                found[entry.name] = entry
            elif entry.suffix == ".zip":
                found.setdefault(entry.stem, entry)
    if not found:
        where = f"{nbgrader}/<student>/{assignment}/" if nbgrader else f"{folder}/<learner>/"
        raise GradingConfigError(
            f"{folder}: no submissions found (expected {where} folders or <learner>.zip files)"
        )
    subs = []
    for learner, path in sorted(found.items()):
        try:
            check_student_id(learner)  # the gradebook's rules, checked before any grading
        except GradebookError as exc:
            raise GradingConfigError(f"{path}: {exc}") from None
        skip = NBGRADER_FILES if nbgrader is not None else frozenset()
        sha = "symlink" if path.is_symlink() else bounded_hash(path, skip)
        subs.append(Submission(learner, path, sha))
    return subs


# ---- the task a worker runs ------------------------------------------------------------

_SERVER: dict = {}  # this worker's job server and its prepared next job process


def _job_server() -> JobServer:
    """This worker's warm job server (started once; again if it died)."""
    server = _SERVER.get("server")
    if server is None or not server.alive():
        if server is not None:
            server.close()
        server = _SERVER["server"] = JobServer()
    return server


def _close_server() -> None:
    spare = _SERVER.pop("next", None)
    if spare is not None:
        spare.close()
    server = _SERVER.pop("server", None)
    if server is not None:
        server.close()


def grade_task(request: JobRequest, limits: JobLimits, warm: bool = True) -> dict:
    """Grade one submission in a watched job process; always returns a result.

    With ``warm``, the job runs in the process this worker prepared during the
    previous task (its sandbox and kernel already started), and the next
    task's process is prepared before this one is graded.
    """
    if not warm:
        proc = JobProcess()
    else:
        server = _job_server()
        proc = _SERVER.pop("next", None)
        same = proc is not None and proc.prepared == (request.config, request.spec)
        if proc is not None and (not same or proc.proc.poll() is not None):
            proc.close()
            proc = None
        if proc is None:
            proc = JobProcess(server=server, prepare=(request.config, request.spec))
        try:
            _SERVER["next"] = JobProcess(server=server, prepare=(request.config, request.spec))
        except (OSError, RuntimeError):
            pass  # the next task starts its own
    try:
        return proc.run(request, limits)
    finally:
        proc.close()


class _DieWithCohort(WorkerPlugin):
    """A worker plugin: the worker (and so its job processes) ends when the cohort's process does.

    A ``kill -9`` of the cohort run must leave nothing behind: each worker asks the
    kernel for SIGKILL at its parent's death and also watches its parent id.
    """

    name = "fullcycle-die-with-cohort"

    def setup(self, worker=None):
        import threading

        from grading.jobproc import _die_with_parent

        _die_with_parent()
        _job_server()  # warm before the first task
        parent = os.getppid()

        def watch():
            while True:
                time.sleep(0.5)
                if os.getppid() != parent:
                    _close_server()
                    os._exit(1)

        threading.Thread(target=watch, name="die-with-cohort", daemon=True).start()

    def teardown(self, worker=None):
        _close_server()


# ---- the cohort ------------------------------------------------------------------------


def _security():
    from distributed.security import Security

    return Security.temporary()


@contextlib.contextmanager
def _client(workers: int | None, scheduler: str | None):
    """A Dask client: on an existing scheduler, or on a fresh ``LocalCluster`` we own."""
    import logging

    from distributed import Client, LocalCluster

    if scheduler:
        with Client(scheduler, timeout="30s") as client:
            yield client
        return
    n = workers or os.cpu_count() or 1
    with (
        LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            memory_limit=0,
            dashboard_address=None,
            security=_security(),
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as client,
    ):
        client.register_plugin(_DieWithCohort())
        try:
            yield client
        finally:
            with contextlib.suppress(Exception):
                client.run(_close_server)


def _private_holdout(spec, config, where: Path):
    """Build the hidden world once, in this process, into a private (0600) pickle."""
    from fullcycle.holdout import build_holdout

    holdout = build_holdout(spec, config.seed_int, config.scale, config.path(config.holdout_dir))
    path = where / "holdout.pickle"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        pickle.dump(holdout, f, protocol=pickle.HIGHEST_PROTOCOL)
    return holdout, path


def _warm_reference(spec, config, holdout, where: Path) -> None:
    """Grade the reference kit once before the cohort, so no two workers race to do it."""
    from grading.pipeline import Job
    from grading.reference import RELATION, reference_figures

    if not any(c.metric.endswith("." + RELATION) for c in spec.rubric):
        return
    job = Job(spec, config, Path("."), where, where, where)
    job.holdout = holdout
    reference_figures(job)


def _failed(result: dict) -> bool:
    return result["status"].split(":")[0] not in OK_STATUSES


def grade_cohort(
    submissions: str | Path,
    spec,
    config,
    out_dir: str | Path,
    *,
    store: str | None = None,
    assignment: str | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    resume: bool = False,
    limits: JobLimits | None = None,
    course_dir: str | Path | None = None,
    progress: bool = True,
    warm: bool = True,
) -> CohortSummary:
    """Grade every submission under ``submissions``; see the module docstring."""
    from grading.pipeline import check_isolation
    from grading.store import open_store

    t0 = time.monotonic()
    check_isolation(config)  # refuse once, before anything, rather than every submission
    out_dir = Path(out_dir)
    assignment = assignment or spec.name
    limits = limits or JobLimits()
    subs = discover(submissions, assignment)
    target = store or config.store_target()
    results = open_store(target)
    done = {(r["learner"], r["submission_sha256"]) for r in results.current(assignment=assignment)}
    if done and not resume:
        raise GradingConfigError(
            f"the results store {target} already holds {len(done)} results of {assignment!r}; "
            "pass --resume to grade only the submissions without one"
        )
    todo = [s for s in subs if (s.learner, s.sha256) not in done]
    summary = CohortSummary(found=len(subs), skipped=len(subs) - len(todo), store=target)
    (out_dir / "learners").mkdir(parents=True, exist_ok=True)
    private = Path(tempfile.mkdtemp(prefix="fullcycle-cohort-"))
    os.chmod(private, 0o700)
    try:
        if todo:
            holdout, holdout_path = _private_holdout(spec, config, private)
            _warm_reference(spec, config, holdout, private)
            del holdout
            _run(
                todo,
                spec,
                config,
                out_dir,
                assignment,
                holdout_path,
                limits,
                results,
                summary,
                workers=workers,
                scheduler=scheduler,
                progress=progress,
                warm=warm,
            )
    finally:
        shutil.rmtree(private, ignore_errors=True)
    learners = {s.learner: s.sha256 for s in subs}
    current = [
        _with_learner(row)
        for row in results.current(assignment=assignment)
        if learners.get(row["learner"]) == row["submission_sha256"]
    ]
    summary.current = current
    _report(summary, out_dir, assignment, course_dir, submissions)
    summary.seconds = round(time.monotonic() - t0, 3)
    return summary


def _run(
    todo,
    spec,
    config,
    out_dir,
    assignment,
    holdout_path,
    limits,
    results,
    summary,
    *,
    workers,
    scheduler,
    progress,
    warm,
) -> None:
    from distributed import as_completed
    from tqdm import tqdm

    with _client(workers, scheduler) as client:
        futures = {}
        for s in todo:
            learner_out = out_dir / "learners" / s.learner
            if learner_out.exists():  # a job in flight when an earlier run was killed
                shutil.rmtree(learner_out)
            request = JobRequest(
                submission=s.path.resolve(),
                spec=spec,
                config=config,
                out_dir=(out_dir / "learners" / s.learner).resolve(),
                learner=s.learner,
                assignment=assignment,
                holdout_path=holdout_path if not scheduler else None,
                sha256=s.sha256,
            )
            fut = client.submit(
                grade_task,
                request,
                limits,
                warm,
                key=f"grade-{s.learner}-{s.sha256[:12]}",
                pure=False,
            )
            futures[fut] = s
        t0 = time.monotonic()
        bar = tqdm(total=len(todo), unit="submission", disable=not progress, dynamic_ncols=True)
        with bar:
            for fut in as_completed(list(futures)):
                s = futures[fut]
                try:
                    result = fut.result()
                except Exception as exc:  # the task itself failed (a lost worker): record it
                    from grading.jobproc import stopped_result

                    request = JobRequest(
                        s.path,
                        spec,
                        config,
                        out_dir / "learners" / s.learner,
                        s.learner,
                        assignment,
                        sha256=s.sha256,
                    )
                    result = stopped_result(
                        request,
                        "grader_error",
                        f"the grading task failed: {type(exc).__name__}: {exc}"[:500],
                    )
                result["submission"]["sha256"] = s.sha256
                results.add(result)
                summary.timeline.append(round(time.monotonic() - t0, 3))
                summary.graded += 1
                summary.failed += _failed(result)
                bar.set_postfix(failed=summary.failed, refresh=False)
                bar.update(1)


def _report(
    summary: CohortSummary, out_dir: Path, assignment: str, course_dir, submissions
) -> None:
    from grading.cohort_report import write_cohort_report

    results = summary.current
    links = {
        r["submission"]["learner"]: f"learners/{r['submission']['learner']}/feedback.html"
        for r in results
    }
    rep = write_cohort_report(results, out_dir, feedback_links=links, title=f"Cohort: {assignment}")
    summary.report, summary.csv = rep.html, rep.csv
    sub = Path(submissions)
    if course_dir is None and (sub.name == "submitted" or (sub / "submitted").is_dir()):
        course_dir = sub.parent if sub.name == "submitted" else sub
    if course_dir is not None:
        from grading.gradebook import export_to_gradebook

        feedback = {
            r["submission"]["learner"]: out_dir
            / "learners"
            / r["submission"]["learner"]
            / "feedback.html"
            for r in results
        }
        summary.gradebook = export_to_gradebook(
            [r for r in results],
            course_dir=Path(course_dir),
            assignment=assignment,
            feedback=feedback,
        )


def _with_learner(row: dict) -> dict:
    import json

    result = json.loads(row["result_json"]) if "result_json" in row else row
    result.setdefault("submission", {})
    result["submission"]["learner"] = row.get("learner") or result["submission"].get("learner")
    result["submission"]["assignment"] = row.get("assignment")
    return result
