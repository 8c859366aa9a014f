"""The `csat-triage` command line: parses arguments and calls one stage (or sink) entry function each.

The error contract: a :class:`~pipeline.core.errors.UserError` (a bad export, a missing
file, a wrong option or parameter) is printed as one line on stderr with exit code 2.
Anything else is a bug and shows its traceback. Exit 1 is reserved for "more rows
rejected than allowed", "Zendesk refused some tickets" and alerts of `monitor
--fail-on-alert`. Stage modules are imported inside each command so that `--help` stays fast.
"""

from __future__ import annotations

import functools
import logging
import sys
from enum import StrEnum
from pathlib import Path

import typer

from pipeline.core.errors import UserError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Rank open support tickets by predicted bad-CSAT risk and urgency.",
)

PARAMS_OPTION = typer.Option(Path("params.yaml"), "--params", help="Parameters file (YAML).")


class Engine(StrEnum):
    pandas = "pandas"
    dask = "dask"


ENGINE_OPTION = typer.Option(
    Engine.pandas, "--engine", case_sensitive=False,
    help="pandas: this machine. dask: pieces of a validated export on a Dask cluster (params `engine`).")
SCHEDULER_OPTION = typer.Option(
    None, "--scheduler", help="With --engine dask: the scheduler's address, e.g. tcp://10.0.0.5:8786 "
    "(default: a local cluster on this machine).")
ENCODING_OPTION = typer.Option(
    None, "--encoding", help="Text encoding of CSV exports, e.g. cp1252 or latin-1 (default: params ingest.encoding).")
DELIMITER_OPTION = typer.Option(
    None, "--delimiter",
    help="CSV field separator: ';', tab or one character (default: params ingest.delimiter, auto-detected).")


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {' '.join(str(message).split())}", err=True)
    raise typer.Exit(code)


class _WarningLines(logging.Handler):
    """Warnings logged by our modules (``pipeline.*``) as one ``warning: ...`` line each on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        typer.echo(f"warning: {' '.join(record.getMessage().split())}", err=True)


def _show_warnings() -> None:
    logger = logging.getLogger("pipeline")
    if not any(isinstance(handler, _WarningLines) for handler in logger.handlers):
        logger.addHandler(_WarningLines(logging.WARNING))


def user_errors(command):
    """A :class:`UserError` becomes one line and exit 2; every other exception keeps its traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        _show_warnings()
        try:
            return command(*args, **kwargs)
        except UserError as exc:
            _fail(str(exc), exc.exit_code)

    return wrapper


def _params(path: Path, encoding: str | None = None, delimiter: str | None = None):
    """The params file, with ``--encoding``/``--delimiter`` (when given) over its ``ingest`` section."""
    from pipeline.core.params import load_params

    params = load_params(path)
    if encoding is None and delimiter is None:
        return params
    return params.model_copy(update={"ingest": params.ingest.with_options(encoding, delimiter)})


@app.command()
@user_errors
def simulate(
    out: Path = typer.Option(..., "--out", help="Directory to write the export to."),
    tickets: int | None = typer.Option(None, "--tickets", min=1, help="Number of tickets (default: params)."),
    seed: int | None = typer.Option(None, "--seed", help="Random seed; same seed, same files (default: params)."),
    start: str | None = typer.Option(None, "--start", help="First day of the period, UTC (default: params)."),
    days: int | None = typer.Option(None, "--days", min=1, help="Length of the period in days (default: params)."),
    later_days: int | None = typer.Option(
        None, "--later-days", min=1, help="The desk runs this many days longer (default: params)."),
    later_out: Path | None = typer.Option(
        None, "--later-out", help="Also write the same desk's export --later-days later here (for monitor)."),
    fmt: str = typer.Option("csv", "--format", help="csv, parquet or zendesk."),
    params_file: Path = PARAMS_OPTION,
) -> None:
    """Simulate a support desk and write an export plus truth.csv (true risk and urgency)."""
    from pipeline.stages.simulate import simulate_demo

    given = {"tickets": tickets, "seed": seed, "start": start, "days": days, "later_days": later_days}
    settings = _params(params_file).simulate.model_copy(update={k: v for k, v in given.items() if v is not None})
    simulation = simulate_demo(out, settings, fmt, later_out)
    typer.echo(
        f"simulated {len(simulation.tickets)} tickets, {len(simulation.events)} events "
        f"up to {simulation.export_at:%Y-%m-%d %H:%M} UTC -> {out}"
    )
    if later_out is not None:
        typer.echo(f"and the same desk {settings.later_days} days later -> {later_out}")


@app.command()
@user_errors
def validate(
    export: Path = typer.Argument(..., help="Export directory (tickets + events, CSV or Parquet, or a Zendesk dump)."),
    out: Path | None = typer.Option(None, "--out", help="Write tickets.parquet, events.parquet, rejects.csv here."),
    max_reject_rate: float | None = typer.Option(
        None, "--max-reject-rate", min=0.0, max=1.0,
        help="Share of rows that may be rejected and still exit 0 (default: params ingest.max_reject_rate).",
    ),
    encoding: str | None = ENCODING_OPTION,
    delimiter: str | None = DELIMITER_OPTION,
    params_file: Path = PARAMS_OPTION,
) -> None:
    """Check an export against the contract; list every rejected row with file, line and reason."""
    from pipeline.stages.validate import validate_export

    ingest = _params(params_file, encoding, delimiter).ingest
    limit = max_reject_rate if max_reject_rate is not None else ingest.max_reject_rate
    result = validate_export(export, out, ingest)
    typer.echo(result.summary())
    if result.rejected_rows:
        where = f"; see {out / 'rejects.csv'}" if out else ""
        first = result.rejects.iloc[0]
        typer.echo(
            f"{result.rejected_rows} rows rejected ({result.reject_rate:.2%} of input, limit {limit:.2%}){where}; "
            f"first: {first['file']} line {first['line']}: {first['reason']}",
            err=True,
        )
        if result.reject_rate > limit:
            raise typer.Exit(1)


@app.command()
@user_errors
def featurize(
    export: Path = typer.Argument(..., help="Export directory."),
    out: Path = typer.Option(..., "--out", help="Feature file (.parquet or .csv)."),
    as_of: str | None = typer.Option(None, "--as-of", help="ISO-8601 moment (default: latest timestamp in the export)."),
    snapshots: bool = typer.Option(False, "--snapshots", help="Training snapshots (params `snapshots`) instead of one as-of."),
    encoding: str | None = ENCODING_OPTION,
    delimiter: str | None = DELIMITER_OPTION,
    params_file: Path = PARAMS_OPTION,
    engine: Engine = ENGINE_OPTION,
    scheduler: str | None = SCHEDULER_OPTION,
) -> None:
    """Point-in-time features: one row per ticket as of a moment (or per training snapshot)."""
    what = "snapshots" if snapshots else "tickets"
    if engine is Engine.dask:
        from pipeline.stages.featurize import featurize_on_dask

        written = featurize_on_dask(export, out, _params(params_file, encoding, delimiter), as_of=as_of,
                                    snapshots=snapshots, scheduler=scheduler)
        typer.echo(f"{written.rows} {what} x {len(written.columns) - 2} columns -> {out} ({written.parts} part files)")
        return
    from pipeline.stages.featurize import featurize as run

    table = run(export, out, _params(params_file, encoding, delimiter), as_of=as_of, snapshots=snapshots)
    typer.echo(f"{len(table)} {what} x {table.shape[1] - 2} columns -> {out}")


@app.command()
@user_errors
def train(
    export: Path = typer.Argument(..., help="Export directory (raw or validated)."),
    out: Path = typer.Option(..., "--out", help="Model directory to write."),
    snapshots: Path | None = typer.Option(None, "--snapshots", help="Reuse `featurize --snapshots` output."),
    target: str | None = typer.Option(
        None, "--target", help="Risk target COLUMN=BAD_VALUE (default: params target)."),
    encoding: str | None = ENCODING_OPTION,
    delimiter: str | None = DELIMITER_OPTION,
    params_file: Path = PARAMS_OPTION,
    engine: Engine = ENGINE_OPTION,
    scheduler: str | None = SCHEDULER_OPTION,
) -> None:
    """Train the bad-outcome risk model and the urgency model on the oldest tickets."""
    from pipeline.stages.train import train as run

    result = run(export, out, snapshots_file=snapshots, target=target,
                 params=_params(params_file, encoding, delimiter), engine=engine.value, scheduler=scheduler)
    meta = result.model.meta
    counts = meta["counts"]
    typer.echo(
        f"trained model {result.model.version} ({meta['target']}) on {counts['labelled_tickets']['train']} "
        f"labelled tickets ({counts['bad_tickets']['train']} bad), {result.risk_rows} snapshot rows; "
        f"calibration {meta['calibration']['method']} -> {out}"
    )


@app.command()
@user_errors
def evaluate(
    model: Path = typer.Argument(..., help="Model directory from `train`."),
    out: Path = typer.Option(..., "--out", help="Metrics JSON file."),
    export: Path | None = typer.Option(None, "--export", help="Export (default: the one the model was trained on)."),
    snapshots: Path | None = typer.Option(None, "--snapshots", help="Snapshot features (default: as in training)."),
    plots: Path | None = typer.Option(None, "--plots", help="Directory for ROC, PR, calibration, importance files."),
    truth: Path | None = typer.Option(None, "--truth", help="Simulator truth.csv: adds the oracle ceiling."),
    params_file: Path = PARAMS_OPTION,
) -> None:
    """Measure both models on the newest period, against the baselines."""
    from pipeline.stages.evaluate import evaluate as run

    metrics = run(model, out, _params(params_file), export, snapshots, plots, truth)
    section = metrics.get("bad_csat") or metrics["risk"]
    best = max(section["baselines"].items(), key=lambda kv: kv[1]["roc_auc"])
    oracle = f", oracle {section['oracle_roc_auc']:.3f}" if "oracle_roc_auc" in section else ""
    typer.echo(
        f"{metrics['target']} on {metrics['test_period']['tickets']} test tickets: ROC AUC {section['roc_auc']:.3f}"
        f"{oracle} (best baseline {best[0]} {best[1]['roc_auc']:.3f}), top-10% recall {section['recall_top10']:.3f}, "
        f"ECE {section['ece']:.3f} -> {out}"
    )


@app.command("evaluate-moments")
@user_errors
def evaluate_moments(
    model: Path = typer.Argument(..., help="Model directory from `train`."),
    out: Path = typer.Option(..., "--out", help="Metrics JSON file."),
    export: Path | None = typer.Option(None, "--export", help="Export (default: the one the model was trained on)."),
    params_file: Path = PARAMS_OPTION,
) -> None:
    """Risk metrics at fixed moments of each test ticket's life: opening, first reassignment, halfway."""
    from pipeline.stages.evaluate_moments import evaluate_moments as run

    metrics = run(model, out, _params(params_file), export)
    for moment, section in metrics["moments"].items():
        auc = (section["model"] or {}).get("roc_auc")
        typer.echo(f"{moment}: {section['tickets']} tickets, model ROC AUC {auc if auc is None else round(auc, 3)}")


@app.command()
@user_errors
def register(
    model: Path = typer.Argument(..., help="Model directory from `train`."),
    metrics: Path = typer.Option(..., "--metrics", help="Metrics JSON from `evaluate`."),
    champion: Path = typer.Option(..., "--champion-dir", help="Where to put the champion's model directory."),
    decision: Path = typer.Option(..., "--decision", help="JSON file for the gate's decision."),
    name: str = typer.Option("csat-triage", "--name", help="Registered model family name."),
    params_file: Path = PARAMS_OPTION,
) -> None:
    """Log the run to MLflow, register the models and apply the champion gate."""
    from pipeline.stages.register import register as run

    run(model, metrics, champion, decision, _params(params_file), name, echo=typer.echo)


@app.command()
@user_errors
def score(
    export: Path = typer.Argument(..., help="Tonight's export directory."),
    out: Path = typer.Option(..., "--out", help="Scored queue file (.csv or .parquet), written atomically."),
    model: Path | None = typer.Option(None, "--model", help="Model directory."),
    model_uri: str | None = typer.Option(None, "--model-uri", help="e.g. models:/csat-triage-risk@champion"),
    db: str | None = typer.Option(
        None, "--db", help="SQLAlchemy URL (default: sqlite file beside --out; '' to skip)."),
    as_of: str | None = typer.Option(None, "--as-of", help="Score as of this moment (default: export time)."),
    all_tickets: bool = typer.Option(False, "--all", help="Score every ticket, not only open ones."),
    zendesk_payload: Path | None = typer.Option(None, "--zendesk-payload", help="Write update_many batches here."),
    max_reject_rate: float | None = typer.Option(None, "--max-reject-rate", min=0.0, max=1.0),
    encoding: str | None = ENCODING_OPTION,
    delimiter: str | None = DELIMITER_OPTION,
    params_file: Path = PARAMS_OPTION,
    engine: Engine = ENGINE_OPTION,
    scheduler: str | None = SCHEDULER_OPTION,
) -> None:
    """Rank open tickets by priority with reasons; write file, database and Zendesk payload."""
    from pipeline.stages.score import score as run

    run(export, out, model, model_uri, db, as_of, all_tickets, zendesk_payload, max_reject_rate,
        _params(params_file, encoding, delimiter), echo=lambda line: typer.echo(line, err=line.startswith("  ")),
        engine=engine.value, scheduler=scheduler)


@app.command()
@user_errors
def monitor(
    export: Path = typer.Argument(..., help="A later export: the outcomes known now."),
    db: str = typer.Option(..., "--db", help="SQLAlchemy URL of the scoring history (`score --db`)."),
    out: Path = typer.Option(Path("reports/monitoring.json"), "--out", help="Monitoring report (JSON)."),
    plots: Path | None = typer.Option(None, "--plots", help="Directory for the per-run AUC/ECE CSV (DVC plots)."),
    model: Path | None = typer.Option(None, "--model", help="Model directory: its target and training data (drift)."),
    fail_on_alert: bool = typer.Option(False, "--fail-on-alert", help="Exit 1 when any alert is raised (cron)."),
    params_file: Path = PARAMS_OPTION,
) -> None:
    """How past runs' predictions turned out (AUC, ECE, P1 precision, feedback) and feature/score drift."""
    from pipeline.stages.monitor import monitor as run

    report = run(export, db, out, _params(params_file), model, plots, echo=typer.echo)
    typer.echo(f"{len(report['alerts'])} alerts -> {out}")
    if fail_on_alert and report["alerts"]:
        raise typer.Exit(1)


@app.command()
@user_errors
def queue(
    db: str | None = typer.Option(None, "--db", help="SQLAlchemy URL (default: data/scored/priorities.sqlite)."),
    group: str | None = typer.Option(None, "--group", help="Only this group."),
    assignee: str | None = typer.Option(None, "--assignee", help="Only this agent."),
    limit: int = typer.Option(20, "--limit", min=1, help="How many tickets."),
) -> None:
    """The agents' view: the queue in rank order with risk, urgency, wait, tier and reasons."""
    from pipeline.sinks.queue_view import show_queue

    show_queue(db or "sqlite:///data/scored/priorities.sqlite", group, assignee, limit)


@app.command()
@user_errors
def serve(
    db: str | None = typer.Option(None, "--db", help="SQLAlchemy URL (default: data/scored/priorities.sqlite)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (default: this machine only)."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="Port (0: any free port)."),
    monitoring: Path | None = typer.Option(
        None, "--monitoring",
        help="`csat-triage monitor`'s report (e.g. reports/monitoring.json) for /monitoring; read at every load."),
) -> None:
    """The queue page for agents: the queue with filters, each ticket's score history, feedback buttons,
    and how past predictions turned out (/monitoring).

    Set CSAT_TRIAGE_TOKEN to require `Authorization: Bearer <token>` (the page has a login form).
    """
    from pipeline.sinks.web import serve as run

    run(db or "sqlite:///data/scored/priorities.sqlite", host, port, echo=lambda line: typer.echo(line, err=True),
        monitoring=monitoring)


def _import(source: str, src: Path, out: Path, fmt: str) -> None:
    from pipeline.stages.import_export import import_export

    typer.echo("\n".join(import_export(source, src, out, fmt)))


@app.command("import-servicenow")
@user_errors
def import_servicenow(
    src: Path = typer.Argument(..., help="ServiceNow incident audit log CSV (plain or .gz)."),
    out: Path = typer.Option(..., "--out", help="Export directory to write."),
    fmt: str = typer.Option("csv", "--format", help="csv or parquet."),
) -> None:
    """Convert a ServiceNow incident event log into the export contract."""
    _import("servicenow", src, out, fmt)


@app.command("import-kaggle-cst")
@user_errors
def import_kaggle_cst(
    src: Path = typer.Argument(..., help="Kaggle customer_support_tickets.csv (plain or .gz)."),
    out: Path = typer.Option(..., "--out", help="Export directory to write."),
    fmt: str = typer.Option("csv", "--format", help="csv or parquet."),
) -> None:
    """Convert the Kaggle customer-support ticket file (the negative control) into the export contract."""
    _import("kaggle-cst", src, out, fmt)


@app.command("import-zendesk")
@user_errors
def import_zendesk(
    src: Path = typer.Argument(..., help="Directory of Zendesk API dumps (tickets, ticket_events|audits, users, ...)."),
    out: Path = typer.Option(..., "--out", help="Export directory to write."),
    fmt: str = typer.Option("csv", "--format", help="csv or parquet."),
) -> None:
    """Convert Zendesk incremental-export JSON into the export contract."""
    _import("zendesk", src, out, fmt)


@app.command("push-zendesk")
@user_errors
def push_zendesk(
    payload: Path = typer.Argument(..., help="Payload from `score --zendesk-payload`."),
    subdomain: str = typer.Option(..., "--subdomain", help="Your Zendesk subdomain (S in S.zendesk.com)."),
    base_url: str | None = typer.Option(None, "--base-url", help="Default https://S.zendesk.com."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print what would change; send nothing."),
    max_retries: int = typer.Option(5, "--max-retries", min=0),
) -> None:
    """Send the update_many batches (auth: ZENDESK_EMAIL and ZENDESK_API_TOKEN from the environment)."""
    from pipeline.sinks.zendesk_push import push_update_many

    summary = push_update_many(payload, subdomain, base_url=base_url, dry_run=dry_run,
                               max_retries=max_retries, echo=typer.echo)
    typer.echo(
        f"batches: {summary.batches_sent} sent, {summary.batches_skipped} already done of {summary.batches_total}; "
        f"tickets sent {summary.tickets_sent}; ticket errors {summary.ticket_errors}; retries {summary.retries}"
    )
    if summary.ticket_errors:
        raise typer.Exit(1)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
