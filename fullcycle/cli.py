"""The ``fullcycle`` command: simulate, validate and run projects from a shell."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from fullcycle.exceptions import ConfigError, FullcycleError

__all__ = ["main"]


def _fail(exc: Exception) -> None:
    click.echo(f"error: {exc}", err=True)
    sys.exit(2)


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
    except FullcycleError as exc:
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
def validate(path, quarantine, out):
    """Clean and validate a transactions file; report and quarantine bad rows."""
    from fullcycle.data import clean_and_validate, save_transactions
    from fullcycle.data.loaders import read_raw

    try:
        raw = read_raw(path)
        result = clean_and_validate(raw)
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
def run(project, workspace, scale, with_drift, no_track, json_out):
    """Run a project's reference pipeline end to end and print the scorecard."""
    from fullcycle.run import compare_drift, run_project
    from fullcycle.spec import find_project

    try:
        spec = find_project(project)
        result = run_project(spec, workspace, scale=scale, track=not no_track, progress=click.echo)
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
                progress=click.echo,
            )
            comparison = compare_drift(spec, result, drifted)
            click.echo("")
            click.echo(comparison.format())
            payload["drift"] = drifted.scorecard.metrics()
        if json_out:
            json_out.write_text(json.dumps(payload, indent=2))
    except FullcycleError as exc:
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
    "--state",
    "state_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Feature state file (default: <workspace>/serving/<project>/state.sqlite).",
)
@click.option(
    "--log",
    "log_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Prediction log (default: <workspace>/serving/<project>/predictions.sqlite).",
)
def serve(project, workspace, host, port, warm, scale, before_day, drift, state_path, log_path):
    """Serve the project's champion model over HTTP (OpenAPI page at /docs)."""
    from fullcycle.serving import open_service, warm_start_history
    from fullcycle.spec import find_project

    try:
        spec = find_project(project)
        app = open_service(spec, workspace, state_path=state_path, log_path=log_path)
        state = app.state.state
        if state.count() == 0 and warm != "none":
            if warm == "auto":
                history = warm_start_history(spec, before_day, scale=scale, drift=drift)
            else:
                from fullcycle.data import load_transactions, validate_transactions

                history = validate_transactions(load_transactions(warm)).valid
            n = state.warm_start(history)
            click.echo(f"warm start: {n:,} labelled transactions in {state.path}")
        bundle = app.state.bundle
        click.echo(
            f"serving {bundle.name} v{bundle.version} on http://{host}:{port} "
            f"(docs: /docs; state {state.count():,} rows)"
        )
        if host not in ("127.0.0.1", "localhost", "::1"):
            click.echo("warning: listening beyond loopback; the service has no authentication")
    except FullcycleError as exc:
        _fail(exc)
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


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
@click.option("--fail-on-drift", is_flag=True, help="Exit 1 when the verdict is drift.")
def monitor(project, workspace, log_path, reference, current, out, fail_on_drift):
    """Compare a window of logged traffic with a reference window; write report and verdict."""
    from fullcycle.monitoring import monitor_log
    from fullcycle.serving import service_paths
    from fullcycle.spec import find_project

    try:
        spec = find_project(project)
        log_path = log_path or service_paths(spec, workspace)[1]
        result = monitor_log(
            log_path,
            tuple(reference),
            tuple(current),
            value_model=spec.business_value.build(),
            out_dir=out,
            title=spec.title,
        )
    except FullcycleError as exc:
        _fail(exc)
    click.echo(f"verdict: {'DRIFT' if result.drifted else 'ok'}")
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
def retrain(project, workspace, data_path, with_drift, labelled_through, margin, scale):
    """Train a challenger on the latest labels; promote it only if it earns more."""
    from fullcycle.data import load_transactions, validate_transactions
    from fullcycle.retrain import retrain as do_retrain
    from fullcycle.run import at_scale, load_data
    from fullcycle.spec import find_project

    try:
        spec = at_scale(find_project(project), scale)
        plan = spec.monitoring or {}
        if data_path is not None:
            data = validate_transactions(load_transactions(data_path)).valid
        else:
            start = plan.get("drift_days", [None])[0]
            raw = load_data(spec, scale=scale, drift=with_drift, drift_start_day=start)
            data = validate_transactions(raw).valid
        through = labelled_through or plan.get("retrain_labelled_through")
        if through is None:
            raise ConfigError("say which labels are known: --labelled-through DAY")
        do_retrain(spec, workspace, data, int(through), margin=margin, progress=click.echo)
    except FullcycleError as exc:
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
def live(project, workspace, scale, single_requests):
    """Serve the champion, replay three weeks of traffic, monitor, retrain, stop."""
    from fullcycle.live import run_live
    from fullcycle.spec import find_project

    try:
        result = run_live(
            find_project(project),
            workspace,
            scale=scale,
            single_requests=single_requests,
            progress=click.echo,
        )
    except FullcycleError as exc:
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
    from grading import format_scorecard, load_config
    from grading import grade as run_grade

    try:
        spec = find_project(project)
        config = load_config(config_path)
        result = run_grade(
            submission,
            spec,
            config,
            out,
            keep_work=keep_work,
            progress=lambda step, status: click.echo(f"  {step:<18}{status}", err=True),
        )
    except FullcycleError as exc:
        _fail(exc)
    click.echo(format_scorecard(result))
    click.echo(f"reports: {out}/result.json, feedback.html, feedback.md, executed.ipynb")


@cli.command()
@click.option("--out", required=True, type=click.Path(path_type=Path), help="An empty folder.")
@click.option("--kit", "kits", multiple=True, help="Release only these kits (default: all).")
def release(out, kits):
    """Write the learner release: kits with solutions stripped, no grading secrets."""
    from grading import release as run_release

    try:
        files = run_release(Path(__file__).resolve().parent.parent, out, list(kits) or None)
    except FullcycleError as exc:
        _fail(exc)
    click.echo(f"released {len(files)} files into {out}")


@cli.command(name="grading-config")
@click.option("--new", "path", required=True, type=click.Path(path_type=Path))
@click.option("--scale", type=click.Choice(["full", "small", "tiny"]), default="full")
def grading_config(path, scale):
    """Create a grading config with a fresh 128-bit secret seed (file mode 0600)."""
    from grading import new_config

    try:
        new_config(path, scale=scale)
    except FullcycleError as exc:
        _fail(exc)
    click.echo(f"wrote {path}; keep it out of the learner release")


def main() -> None:
    cli(prog_name="fullcycle")


if __name__ == "__main__":
    main()
