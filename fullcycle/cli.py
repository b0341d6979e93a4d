"""The ``fullcycle`` command: simulate, validate and run projects from a shell."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from fullcycle.exceptions import ConfigError, FullcycleError

__all__ = ["main"]


def _fail(exc: Exception) -> None:
    if isinstance(exc, NotImplementedError):
        exc = _not_implemented(exc)
    click.echo(f"error: {exc}", err=True)
    sys.exit(2)


def _not_implemented(exc: NotImplementedError) -> str:
    """Where a kit's stub was hit: the file and function a learner has to write next."""
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    where = frames[-1] if frames else None
    if where is None:
        return f"not implemented yet ({exc})"
    return (
        f"not implemented yet: {Path(where.filename).name}, function {where.name} "
        f"(line {where.lineno}); write it in your kit and run again"
    )


def _grader():
    """The instructor-side grader package, or a clear exit where it is not installed."""
    try:
        import grading
    except ImportError:
        _fail(
            ConfigError(
                "the grader package is not installed; reinstall fullcycle from the release's "
                "wheel or, in the course repository, run `make test` or `pip install -e .`"
            )
        )
    return grading


def _kit_option(fn):
    """``--kit DIR``: whose system runs (a learner's kit folder; default the project's own)."""
    return click.option(
        "--kit",
        "kit_dir",
        type=click.Path(path_type=Path, file_okay=False),
        default=None,
        help="The kit whose code runs (your copy of the starter kit); default the project's.",
    )(fn)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="fullcycle")
def cli() -> None:
    """fullcycle: build, ship, watch and grade whole ML systems."""


@cli.command()
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(path_type=Path),
    help="A .csv or .parquet file, or a folder for daily pickles.",
)
@click.option("--customers", default=5000, show_default=True)
@click.option("--terminals", default=10000, show_default=True)
@click.option("--days", default=183, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--scenarios", default="1,2,3", show_default=True, help="Comma-separated, from 1-4.")
@click.option("--card-testing-day", type=int, default=None, help="Day scenario 4 begins.")
@click.option("--messy", type=float, default=None, help="Add real-world faults at this rate.")
def simulate(out, customers, terminals, days, seed, scenarios, card_testing_day, messy):
    """Simulate card transactions and write them to OUT."""
    from fullcycle.data import make_messy, save_transactions, simulate_transactions

    try:
        scen = tuple(int(s) for s in scenarios.split(",") if s.strip())
    except ValueError:
        _fail(FullcycleError(f"--scenarios must be comma-separated numbers, got {scenarios!r}"))
    try:
        df = simulate_transactions(
            n_customers=customers,
            n_terminals=terminals,
            n_days=days,
            seed=seed,
            scenarios=scen,
            card_testing_start_day=card_testing_day,
        ).transactions
        if messy is not None:
            df, report = make_messy(df, rate=messy, seed=seed)
            click.echo(f"messiness: {report.counts}")
        save_transactions(df, out)
    except (FullcycleError, NotImplementedError) as exc:
        _fail(exc)
    click.echo(f"wrote {len(df):,} transactions ({int(df['TX_FRAUD'].sum()):,} frauds) to {out}")


@cli.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--quarantine",
    type=click.Path(path_type=Path),
    default=None,
    help="Write quarantined rows with reasons to this CSV.",
)
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Write valid rows here.")
@click.option("--project", default="fraud_detection", show_default=True)
@click.option(
    "--unlabelled", is_flag=True, help="The file has no TX_FRAUD column (a scoring window)."
)
@_kit_option
def validate(path, quarantine, out, project, unlabelled, kit_dir):
    """Run the kit's data contract on a transactions file; report and quarantine bad rows."""
    from fullcycle.data import save_transactions
    from fullcycle.data.loaders import read_raw
    from fullcycle.kit import load_kit
    from fullcycle.spec import find_project

    try:
        kit = load_kit(find_project(project), kit_dir)
        raw = read_raw(path)
        result = kit.validate(raw, labelled=not unlabelled)
        click.echo(result.summary())
        if quarantine:
            result.quarantine.to_csv(quarantine, index=False)
            click.echo(f"quarantine written to {quarantine}")
        if out:
            save_transactions(result.valid, out)
    except (FullcycleError, OSError) as exc:
        _fail(exc)


@cli.command()
@click.option("--project", required=True, help="Name of a folder under projects/.")
@click.option(
    "--workspace", default="workspace", show_default=True, type=click.Path(path_type=Path)
)
@click.option(
    "--scale", type=click.Choice(["full", "small", "tiny"]), default="full", show_default=True
)
@click.option(
    "--with-drift/--no-drift",
    default=False,
    help="Also run with the drift scenario active and report what it costs.",
)
@click.option("--no-track", is_flag=True, help="Do not log to MLflow.")
@click.option(
    "--json-out", type=click.Path(path_type=Path), default=None, help="Write the metrics as JSON."
)
@_kit_option
def run(project, workspace, scale, with_drift, no_track, json_out, kit_dir):
    """Run a project end to end through a kit and print the scorecard."""
    from fullcycle.run import compare_drift, run_project
    from fullcycle.spec import find_project

    try:
        spec = find_project(project)
        result = run_project(
            spec, workspace, scale=scale, track=not no_track, kit_dir=kit_dir, progress=click.echo
        )
        click.echo("")
        click.echo(result.scorecard.format(f"Scorecard: {spec.title}"))
        payload = {"reference": result.scorecard.metrics()}
        if with_drift:
            click.echo("")
            drifted = run_project(
                spec,
                workspace,
                scale=scale,
                drift=True,
                track=not no_track,
                register=False,
                kit_dir=kit_dir,
                progress=click.echo,
            )
            comparison = compare_drift(spec, result, drifted)
            click.echo("")
            click.echo(comparison.format())
            payload["drift"] = drifted.scorecard.metrics()
        if json_out:
            json_out.write_text(json.dumps(payload, indent=2))
    except (FullcycleError, NotImplementedError) as exc:
        _fail(exc)


@cli.command()
@click.option("--project", default="fraud_detection", show_default=True)
@click.option(
    "--workspace", default="workspace", show_default=True, type=click.Path(path_type=Path)
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Loopback unless you mean it.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--warm-start",
    "warm",
    default="auto",
    show_default=True,
    help="When the state is empty: 'auto' loads the project's labelled history, a path "
    "loads that file of labelled transactions, 'none' starts cold.",
)
@click.option(
    "--scale", type=click.Choice(["full", "small", "tiny"]), default="full", show_default=True
)
@click.option(
    "--before-day",
    type=int,
    default=None,
    help="Warm start with days before this one (default: the scoring window's first day).",
)
@click.option("--drift/--no-drift", default=False, help="Warm start from the drifted world.")
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Folder for the online state and the prediction log "
    "(default: <workspace>/serving/<project>/).",
)
@_kit_option
def serve(project, workspace, host, port, warm, scale, before_day, drift, state_dir, kit_dir):
    """Serve the project's champion with the kit's service (OpenAPI page at /docs)."""
    import os

    from fullcycle.kit import load_kit
    from fullcycle.serving import service_env, service_paths, warm_start_history
    from fullcycle.spec import find_project

    try:
        spec = find_project(project)
        kit = load_kit(spec, kit_dir)
        state_dir = state_dir or service_paths(spec, workspace)[0].parent
        online = kit.entry("online").open(
            Path(state_dir) / "state.sqlite", spec.data.split.delay_days
        )
        try:
            if online.store.count() == 0 and warm != "none":
                if warm == "auto":
                    history = warm_start_history(spec, kit, before_day, scale=scale, drift=drift)
                else:
                    from fullcycle.data import read_raw, typed_transactions

                    history = typed_transactions(kit.validate(read_raw(warm)).valid)
                n = online.warm_start(history)
                click.echo(f"warm start: {n:,} labelled transactions in {state_dir}")
            rows = online.store.count()
        finally:
            online.store.close()
        env = {
            **service_env(spec, workspace),
            "FULLCYCLE_STATE_DIR": str(Path(state_dir).resolve()),
        }
        os.environ.update(env)
        app_ref = spec.service.app if spec.service is not None else "service:create_app"
        click.echo(
            f"serving {spec.name}@champion with {kit.path.name}/{app_ref} on http://{host}:{port} "
            f"(docs: /docs; state {rows:,} rows)"
        )
        if host not in ("127.0.0.1", "localhost", "::1"):
            click.echo("warning: listening beyond loopback; the service has no authentication")
    except (FullcycleError, NotImplementedError) as exc:
        _fail(exc)
    import uvicorn

    uvicorn.run(
        app_ref,
        factory=True,
        app_dir=str(kit.path),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
    )


@cli.command()
@click.option("--project", default="fraud_detection", show_default=True)
@click.option(
    "--workspace", default="workspace", show_default=True, type=click.Path(path_type=Path)
)
@click.option(
    "--log",
    "log_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Prediction log (default: the served one in the workspace).",
)
@click.option(
    "--reference",
    nargs=2,
    required=True,
    metavar="START END",
    help="Reference window [START, END) as dates, e.g. 2018-07-31 2018-08-07.",
)
@click.option(
    "--current", nargs=2, required=True, metavar="START END", help="Current window [START, END)."
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("workspace/monitoring"),
    show_default=True,
    help="Folder for report.html and verdict.json.",
)
@click.option("--fail-on-drift", is_flag=True, help="Exit 1 when the verdict is drift or decay.")
@_kit_option
def monitor(project, workspace, log_path, reference, current, out, fail_on_drift, kit_dir):
    """Compare a window of logged traffic with a reference window with the kit's drift and
    decay checks; write report and verdict."""
    from fullcycle.kit import load_kit
    from fullcycle.monitoring import monitor_log
    from fullcycle.serving import service_paths
    from fullcycle.spec import find_project

    try:
        spec = find_project(project)
        kit = load_kit(spec, kit_dir)
        log_path = log_path or service_paths(spec, workspace)[1]
        result = monitor_log(
            log_path,
            tuple(reference),
            tuple(current),
            drift_check=kit.entry("drift"),
            decay_check=kit.entry("decay"),
            value_model=spec.business_value.build(),
            out_dir=out,
            title=spec.title,
        )
    except (FullcycleError, NotImplementedError) as exc:
        _fail(exc)
    click.echo(f"verdict: {result.label.upper() if result.drifted else 'ok'}")
    for reason in result.reasons:
        click.echo(f"  - {reason}")
    click.echo(f"report: {out / 'report.html'}  verdict: {out / 'verdict.json'}")
    if fail_on_drift and result.drifted:
        sys.exit(1)


@cli.command()
@click.option("--project", default="fraud_detection", show_default=True)
@click.option(
    "--workspace", default="workspace", show_default=True, type=click.Path(path_type=Path)
)
@click.option(
    "--data",
    "data_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Labelled transactions (default: the project's simulated world).",
)
@click.option(
    "--with-drift/--no-drift",
    default=True,
    show_default=True,
    help="Simulated world: with the drift scenario from the monitoring timeline.",
)
@click.option(
    "--labelled-through",
    type=int,
    default=None,
    help="Last day whose labels are known (default: the spec's monitoring timeline).",
)
@click.option(
    "--margin",
    default=0.05,
    show_default=True,
    help="Share of the champion's value the challenger must add.",
)
@click.option(
    "--scale", type=click.Choice(["full", "small", "tiny"]), default="full", show_default=True
)
@_kit_option
def retrain(project, workspace, data_path, with_drift, labelled_through, margin, scale, kit_dir):
    """Train a challenger on the latest labels; the kit's rule decides whether it replaces the
    champion."""
    from fullcycle.data import read_raw, typed_transactions
    from fullcycle.kit import load_kit
    from fullcycle.retrain import retrain as do_retrain
    from fullcycle.run import at_scale, load_data
    from fullcycle.spec import find_project

    try:
        spec = at_scale(find_project(project), scale)
        kit = load_kit(spec, kit_dir)
        plan = spec.monitoring
        if data_path is not None:
            data = typed_transactions(kit.validate(read_raw(data_path)).valid)
        else:
            start = plan.drift_days[0] if plan and plan.drift_days else None
            raw = load_data(spec, scale=scale, drift=with_drift, drift_start_day=start)
            data = kit.validate(raw).valid
        through = labelled_through or (plan.retrain_labelled_through if plan else None)
        if through is None:
            raise ConfigError("say which labels are known: --labelled-through DAY")
        do_retrain(spec, workspace, data, int(through), kit=kit, margin=margin, progress=click.echo)
    except (FullcycleError, NotImplementedError) as exc:
        _fail(exc)


@cli.command()
@click.option("--project", default="fraud_detection", show_default=True)
@click.option(
    "--workspace", default="workspace", show_default=True, type=click.Path(path_type=Path)
)
@click.option(
    "--scale", type=click.Choice(["full", "small", "tiny"]), default="full", show_default=True
)
@click.option(
    "--single-requests",
    default=2000,
    show_default=True,
    help="Requests sent one at a time to measure latency; the rest go in batches.",
)
@_kit_option
def live(project, workspace, scale, single_requests, kit_dir):
    """Serve the champion with the kit's service, replay three weeks of traffic, monitor with the
    kit's checks, retrain with the kit's rule, stop.

    For a recommender (data.source interaction_simulator) the champion and a challenger are
    both served and A/B-tested on the same simulated visits: the decision uses live revenue."""
    from fullcycle.live import run_live
    from fullcycle.live_recommender import run_live_recommender
    from fullcycle.spec import find_project

    try:
        spec = find_project(project)
        run = run_live_recommender if spec.data.source == "interaction_simulator" else run_live
        result = run(
            spec,
            workspace,
            scale=scale,
            single_requests=single_requests,
            kit_dir=kit_dir,
            progress=click.echo,
        )
    except (FullcycleError, NotImplementedError) as exc:
        _fail(exc)
    if result.leftover_processes:
        _fail(ConfigError("the service left processes behind"))


@cli.command()
@click.argument("submission", type=click.Path(path_type=Path))
@click.option("--project", default="fraud_detection", show_default=True)
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Reports go here.")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=Path("instructor/grading.yaml"),
    show_default=True,
    help="The instructor's grading config (secret seed, limits, results store).",
)
@click.option("--keep-work", is_flag=True, help="Keep the job folder (for debugging the grader).")
def grade(submission, project, out, config_path, keep_work):
    """Grade SUBMISSION (a kit folder or a .zip) on hidden data; write reports to --out."""
    from fullcycle.spec import find_project

    grading = _grader()
    from grading.jobproc import JobLimits, JobProcess, JobRequest
    from grading.store import open_store

    try:
        spec = find_project(project)
        config = grading.load_config(config_path)
        submission = Path(submission)
        if not submission.exists():
            raise ConfigError(f"{submission}: no such kit folder or zip")
        # The grading runs in a watched process: a deadline and a memory bound hold whatever
        # the submission does; the secret reaches it through a pipe, never its command line.
        job = JobProcess(show_progress=True)
        try:
            result = job.run(
                JobRequest(
                    submission.resolve(),
                    spec,
                    config,
                    Path(out).resolve(),
                    sha256=_sha(submission),
                    extra={"progress": True, "keep_work": keep_work},
                ),
                JobLimits.from_config(config),
            )
        finally:
            job.close()
        open_store(config.store_target()).add(result)
    except (FullcycleError, NotImplementedError) as exc:
        _fail(exc)
    format_scorecard = grading.format_scorecard
    click.echo(format_scorecard(result))
    click.echo(f"reports: {out}/result.json, feedback.html, feedback.md, executed.ipynb")


@cli.command()
@click.argument("kit", type=click.Path(path_type=Path, exists=True))
@click.option("--project", default=None, help="The kit's project (default: the kit folder's name).")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Reports go here (default: KIT-check beside the kit).",
)
@click.option(
    "--scale",
    type=click.Choice(["full", "small", "tiny"]),
    default="small",
    show_default=True,
    help="Size of the public simulated data.",
)
@click.option(
    "--data",
    "data_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Public validation files of a files project (default: projects/NAME/public).",
)
@click.option("--keep-work", is_flag=True, help="Keep the job folder (for debugging the grader).")
def check(kit, project, out, scale, data_dir, keep_work):
    """Grade KIT on public validation data, as the instructor's grader will on hidden data."""
    _grader()
    from grading.check import check_kit

    try:
        done = check_kit(
            kit,
            project=project,
            out_dir=out,
            scale=scale,
            data_dir=data_dir,
            keep_work=keep_work,
            progress=lambda step, status: click.echo(f"  {step:<18}{status}", err=True),
        )
    except (FullcycleError, NotImplementedError) as exc:
        _fail(exc)
    click.echo(done.text, nl=False)


_CONFIG_OPTION = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=Path("instructor/grading.yaml"),
    show_default=True,
    help="The instructor's grading config (secret seed, limits, results store).",
)


def _sha(path: Path) -> str:
    from grading.cohort import bounded_hash

    return bounded_hash(path)


@cli.command("grade-cohort")
@click.argument("submissions", type=click.Path(path_type=Path))
@click.option("--project", default="fraud_detection", show_default=True)
@_CONFIG_OPTION
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Reports go here.")
@click.option("--assignment", default=None, help="Assignment name (default: the project's).")
@click.option("--workers", type=click.IntRange(1, 256), default=None, help="Default: cores.")
@click.option("--scheduler", default=None, help="An existing Dask scheduler, tcp://HOST:PORT.")
@click.option("--store", default=None, help="Results store: a path or postgresql://... URL.")
@click.option("--resume", is_flag=True, help="Grade only submissions without a stored result.")
@click.option(
    "--course",
    "course_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="nbgrader course folder whose gradebook gets the results (automatic for submitted/).",
)
def grade_cohort(
    submissions,
    project,
    config_path,
    out,
    assignment,
    workers,
    scheduler,
    store,
    resume,
    course_dir,
):
    """Grade every submission of SUBMISSIONS in parallel; resumable; one report and gradebook.

    SUBMISSIONS is a folder of learner folders or zips, or nbgrader's submitted/ tree.
    """
    from fullcycle.spec import find_project

    if workers and scheduler:
        _fail(ConfigError("give --workers (a local cluster) or --scheduler, not both"))
    grading = _grader()
    from grading.cohort import grade_cohort as run_cohort
    from grading.jobproc import JobLimits

    try:
        spec = find_project(project)
        config = grading.load_config(config_path)
        summary = run_cohort(
            submissions,
            spec,
            config,
            out,
            store=store,
            assignment=assignment,
            workers=workers,
            scheduler=scheduler,
            resume=resume,
            limits=JobLimits.from_config(config),
            course_dir=course_dir,
        )
    except (FullcycleError, NotImplementedError) as exc:
        _fail(exc)
    click.echo(
        f"{summary.found} submissions: {summary.graded} graded now ({summary.failed} not "
        f"'graded'), {summary.skipped} already had a result; {summary.seconds:.0f} s"
    )
    click.echo(f"results store: {summary.store}")
    click.echo(f"report: {summary.report}  csv: {summary.csv}")
    if summary.gradebook:
        gb = summary.gradebook
        click.echo(
            f"gradebook: {len(gb.written)} capstone scores of {gb.assignment!r} in {gb.db_url} "
            f"({len(gb.added_students)} new students, {len(gb.flagged)} flagged for a look)"
        )


@cli.command()
@click.option("--out", required=True, type=click.Path(path_type=Path), help="An empty folder.")
@click.option("--kit", "kits", multiple=True, help="Release only these kits (default: all).")
def release(out, kits):
    """Write the learner release: kits with solutions stripped, no grading secrets."""
    run_release = _grader().release

    try:
        files = run_release(Path(__file__).resolve().parent.parent, out, list(kits) or None)
    except (FullcycleError, NotImplementedError) as exc:
        _fail(exc)
    click.echo(f"released {len(files)} files into {out}; start with {out}/README.md")


@cli.command()
@click.option("--project", default="fraud_detection", show_default=True)
@click.option("--check", is_flag=True, help="Exit 1 if the brief is out of date; change nothing.")
def brief(project, check):
    """Regenerate the tables of projects/PROJECT/README.md from its project.yaml."""
    from fullcycle.brief import sync_brief
    from fullcycle.spec import find_project

    try:
        spec = find_project(project)
        changed = sync_brief(spec, check=check)
    except (FullcycleError, NotImplementedError) as exc:
        _fail(exc)
    where = spec.root / "README.md"
    if check and changed:
        click.echo(f"{where} is out of date; run `fullcycle brief --project {project}`", err=True)
        sys.exit(1)
    click.echo(f"{where}: {'updated' if changed else 'up to date'}")


@cli.command()
@click.option("--check", is_flag=True, help="Exit 1 if a kit cell is out of step; change nothing.")
def course(check):
    """Copy the kit's definitions into the course's exercise cells that name them."""
    from grading.course import sync

    root = Path(__file__).resolve().parent.parent
    try:
        stale = sync(root, check=check)
    except (FullcycleError, NotImplementedError) as exc:
        _fail(exc)
    for cell in stale:
        click.echo(str(cell), err=check)
    if check and stale:
        click.echo("run `fullcycle course` to copy the kit into these cells", err=True)
        sys.exit(1)
    click.echo(f"course: {len(stale)} cell(s) {'out of step' if check else 'updated'}")


@cli.command(name="grading-config")
@click.option("--new", "path", required=True, type=click.Path(path_type=Path))
@click.option("--scale", type=click.Choice(["full", "small", "tiny"]), default="full")
def grading_config(path, scale):
    """Create a grading config with a fresh 128-bit secret seed (file mode 0600)."""
    new_config = _grader().new_config

    try:
        new_config(path, scale=scale)
    except (FullcycleError, NotImplementedError) as exc:
        _fail(exc)
    click.echo(f"wrote {path}; keep it out of the learner release")


def main() -> None:
    cli(prog_name="fullcycle")


if __name__ == "__main__":
    main()
