"""The ``fullcycle`` command: simulate, validate and run projects from a shell."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from fullcycle.exceptions import FullcycleError

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
def serve(project, workspace, host, port, warm, scale, before_day, drift):
    """Serve the project's champion model over HTTP (OpenAPI page at /docs)."""
    from fullcycle.serving import open_service, warm_start_history
    from fullcycle.spec import find_project

    try:
        spec = find_project(project)
        app = open_service(spec, workspace)
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


def main() -> None:
    cli(prog_name="fullcycle")


if __name__ == "__main__":
    main()
