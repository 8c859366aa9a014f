"""The `csat-triage` command line: parses arguments and calls one stage entry function each.

Errors a user can cause (a bad export, a missing file, a wrong option) are printed as
one line on stderr with exit code 2; no traceback. Stage modules are imported inside
each command so that `--help` stays fast.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Optional

import typer

from pipeline.io import ExportError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Rank open support tickets by predicted bad-CSAT risk and urgency.",
)

PARAMS_OPTION = typer.Option(Path("params.yaml"), "--params", help="Parameters file (YAML).")


class UserError(Exception):
    """A problem the user can fix; printed as one line."""


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {' '.join(str(message).split())}", err=True)
    raise typer.Exit(code)


def user_errors(command):
    """Turn expected failures into one-line messages instead of tracebacks."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (ExportError, UserError, FileNotFoundError, PermissionError) as exc:
            _fail(str(exc))
        except ValueError as exc:
            _fail(str(exc))

    return wrapper


def _params(path: Path) -> dict:
    from pipeline.params import load_params

    return load_params(path)


@app.command()
@user_errors
def simulate(
    out: Path = typer.Option(..., "--out", help="Directory to write the export to."),
    tickets: int = typer.Option(20000, "--tickets", min=1, help="Number of tickets."),
    seed: int = typer.Option(7, "--seed", help="Random seed (same seed, same files)."),
    start: str = typer.Option("2026-01-05", "--start", help="First day of the simulated period (UTC)."),
    days: int = typer.Option(120, "--days", min=1, help="Length of the period in days."),
    fmt: str = typer.Option("csv", "--format", help="csv, parquet or zendesk."),
) -> None:
    """Simulate a support desk and write an export plus truth.csv (true risk and urgency)."""
    from pipeline.simulate import simulate_export

    simulation = simulate_export(out, n_tickets=tickets, seed=seed, start=start, days=days, fmt=fmt)
    typer.echo(
        f"simulated {len(simulation.tickets)} tickets, {len(simulation.events)} events "
        f"up to {simulation.export_at:%Y-%m-%d %H:%M} UTC -> {out}"
    )


@app.command()
@user_errors
def validate(
    export: Path = typer.Argument(..., help="Export directory (tickets + events, CSV or Parquet, or a Zendesk dump)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write tickets.parquet, events.parquet, rejects.csv here."),
    max_reject_rate: Optional[float] = typer.Option(
        None, "--max-reject-rate", min=0.0, max=1.0,
        help="Share of rows that may be rejected and still exit 0 (default: params ingest.max_reject_rate, else 0).",
    ),
    params_file: Path = PARAMS_OPTION,
) -> None:
    """Check an export against the contract; list every rejected row with file, line and reason."""
    from pipeline.ingest import validate_export

    ingest_params = _params(params_file).get("ingest", {})
    limit = max_reject_rate if max_reject_rate is not None else float(ingest_params.get("max_reject_rate", 0.0))
    result = validate_export(
        export, out, float(ingest_params.get("early_event_tolerance_minutes", 5.0))
    )
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
    as_of: Optional[str] = typer.Option(None, "--as-of", help="ISO-8601 moment (default: latest timestamp in the export)."),
    snapshots: bool = typer.Option(False, "--snapshots", help="Training snapshots (params `snapshots`) instead of one as-of."),
    params_file: Path = PARAMS_OPTION,
) -> None:
    """Point-in-time features: one row per ticket as of a moment (or per training snapshot)."""
    from pipeline.featurize import featurize as run

    table = run(export, out, as_of=as_of, snapshots=snapshots, params=_params(params_file))
    what = "snapshots" if snapshots else "tickets"
    typer.echo(f"{len(table)} {what} x {table.shape[1] - 2} columns -> {out}")


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
