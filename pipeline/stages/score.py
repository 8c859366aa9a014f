"""Stage `score`: the nightly run. Ranks the open tickets of an export and writes the queue.

Order of work, chosen so that a failure never leaves a half-updated queue:
take the lock; validate the export (stop if too many rows are rejected); load the
model and check it fits the features; compute everything in memory; then write the
file (temp file + rename), the database (one transaction) and the Zendesk payload.
A SIGTERM (a scheduler stopping the job, ``kill``) ends the run like Ctrl-C does, so the
half-written temporary files are removed and the open transaction rolls back.
"""

from __future__ import annotations

import fcntl
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from features.build import latest_timestamp
from models.scoring import score_tickets
from models.store import NO_CHAMPION_FILE, TriageModel, data_fingerprint
from pipeline.core import contract
from pipeline.core.errors import ExportError, RejectLimitError, UserError
from pipeline.core.io import atomic_path, parse_as_of
from pipeline.core.params import Params
from pipeline.sinks.writeback import check_database_url, default_database_url, write_queue
from pipeline.sinks.zendesk_payload import risk_field_warning
from pipeline.sources.ingest import CANONICAL_MARKER, load_export

_LOG = logging.getLogger(__name__)


class ScoringLockedError(ExportError):
    """Another scoring run holds the lock for this output."""


@dataclass(frozen=True)
class ScoreResult:
    scored: pd.DataFrame
    rejected_rows: int
    database_url: str | None

    def summary(self) -> str:
        p1 = int((self.scored["tier"] == "P1").sum())
        version = self.scored["model_version"].iloc[0] if len(self.scored) else "-"
        return (f"scored {len(self.scored)} tickets: {p1} P1; {self.rejected_rows} rejected rows; "
                f"model {version}")


@contextmanager
def scoring_lock(out_file: Path) -> Iterator[None]:
    """An exclusive lock beside the output, so two nightly runs cannot write at once."""
    # The lock file stays after the run: deleting it would let a waiting run lock a file
    # that is no longer the one the next run opens.
    lock_path = out_file.with_name(f".{out_file.name}.lock")
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(lock_path, "a")  # "a": opening never truncates a file another run holds
    except OSError as exc:  # a read-only folder, or a file where the folder should be
        raise UserError(f"{out_file}: cannot write here ({exc.strerror}); choose a writable output path") from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ScoringLockedError(f"{out_file}: another scoring run is writing it (lock {lock_path})") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """While the block runs, SIGTERM raises SystemExit(143) so ``finally`` blocks clean up.

    Python's default for SIGTERM ends the process at once: temporary files stayed beside the
    outputs and a SQLite journal was left to roll back at the next open.
    """
    if threading.current_thread() is not threading.main_thread():  # signals go to the main thread only
        yield
        return

    def stop(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the clean-up short
        print("error: stopped by SIGTERM; each output is either as before or complete, "
              "re-run to finish", file=sys.stderr, flush=True)
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def load_model(model_dir: str | Path | None, model_uri: str | None) -> TriageModel:
    """A model directory, or an MLflow registry URI such as ``models:/csat-triage-risk@champion``.

    A registry model is downloaded to a temporary directory that is removed once loaded.
    """
    if model_uri:
        from pipeline.tracking.registry import downloaded_model_dir

        with downloaded_model_dir(model_uri) as downloaded:
            return _load_model_dir(downloaded)
    if model_dir is None:
        raise ExportError("give --model DIR or --model-uri models:/NAME@champion")
    return _load_model_dir(Path(model_dir))


def _load_model_dir(model_dir: Path) -> TriageModel:
    marker = Path(model_dir) / NO_CHAMPION_FILE
    if marker.is_file():
        raise ExportError(f"{model_dir}: no champion model to score with ({marker.read_text().strip()})")
    return TriageModel.load(model_dir)


def score(
    export_dir: str | Path,
    out_file: str | Path,
    model_dir: str | Path | None = None,
    model_uri: str | None = None,
    db_url: str | None = None,
    as_of: str | None = None,
    all_tickets: bool = False,
    zendesk_payload: str | Path | None = None,
    max_reject_rate: float | None = None,
    params: Params | None = None,
    echo: Callable[[str], None] = print,
    engine: str = "pandas",
    scheduler: str | None = None,
) -> ScoreResult:
    """The nightly scoring run (see module docstring). ``db_url=""`` skips the database.

    ``engine="dask"``: a validated export (``validate --out``) is scored piece by piece on the
    Dask cluster at ``scheduler`` (default: a local one); the outputs are the same.
    """
    params = params or Params()
    out_file = Path(out_file)
    if out_file.suffix.lower() not in contract.TABLE_SUFFIXES:
        raise ExportError(f"{out_file}: output must end in .csv or .parquet")
    limit = max_reject_rate if max_reject_rate is not None else params.ingest.max_reject_rate
    requested_as_of = parse_as_of(as_of)
    database = default_database_url(out_file) if db_url is None else (db_url or None)
    if database:
        check_database_url(database)  # a wrong --db fails before any work, not after scoring
    if not Path(export_dir).is_dir():
        raise ExportError(f"{export_dir}: export directory not found")
    step = _Steps(echo)
    # Read-only and cheap: a wrong model fails before the export is read and before the lock
    # (whose file and folder would otherwise be left behind by a run that wrote nothing).
    with step("loading model"):
        model = load_model(model_dir, model_uri)
    with _sigterm_unwinds(), scoring_lock(out_file):
        if engine == "dask":
            with step("scoring on dask"):
                export, moment, scored = _score_on_dask(export_dir, model, params, requested_as_of, all_tickets,
                                                        scheduler)
            return _write_outputs(out_file, scored, model, params, database, moment, export, export_dir,
                                  zendesk_payload, step, echo)
        with step("validating export"):
            export = load_export(export_dir, params.ingest, as_of=requested_as_of)
        if export.reject_rate > limit:
            first = export.rejects.iloc[0]
            raise RejectLimitError(
                f"{export_dir}: {export.rejected_rows} rows rejected ({export.reject_rate:.2%} > limit {limit:.2%}); "
                f"nothing written. First: {first['file']} line {first['line']}: {first['reason']}"
            )
        moment = requested_as_of or latest_timestamp(export.tickets, export.events)
        with step("scoring"):
            scored = score_tickets(model, export.tickets, export.events, moment, params, all_tickets)
        return _write_outputs(out_file, scored, model, params, database, moment, export, export_dir, zendesk_payload,
                              step, echo)


def _score_on_dask(export_dir, model: TriageModel, params: Params, as_of: pd.Timestamp | None, all_tickets: bool,
                   scheduler: str | None) -> tuple[_DaskExport, pd.Timestamp, pd.DataFrame]:
    """The queue scored by the Dask engine, and what the outputs record of the export."""
    from pipeline.distributed.cluster import dask_client
    from pipeline.distributed.partition import read_export
    from pipeline.distributed.score import score_dask

    with dask_client(params.engine, scheduler) as client:
        export = read_export(client, str(export_dir), params.engine, as_of=as_of)
        moment = as_of or export.export_at
        scored = score_dask(client, export, model, params, moment, all_tickets)
        rows = (int(export.tickets.shape[0].compute()), int(export.events.shape[0].compute()))
    return _DaskExport(rejected_rows=_canonical_rejected_rows(export_dir), rows=rows), moment, scored


@dataclass(frozen=True)
class _DaskExport:
    """What the outputs record of an export scored by the Dask engine (its tables stay on the cluster)."""

    rejected_rows: int
    rows: tuple[int, int]  # tickets, events scored from

    @property
    def fingerprint(self) -> str:
        # The one-machine fingerprint hashes every row; the Dask engine's tables stay on the
        # cluster, so its runs record the row counts instead (prefixed, never mistaken for a hash).
        return f"dask:{self.rows[0]}t:{self.rows[1]}e"


def _canonical_rejected_rows(export_dir) -> int:
    """Rows ``validate`` rejected, from the validated export's marker (0 when it is not readable here)."""
    import json

    marker = Path(export_dir) / CANONICAL_MARKER
    return int(json.loads(marker.read_text()).get("rejected_rows", 0)) if marker.is_file() else 0


def _write_outputs(out_file: Path, scored: pd.DataFrame, model: TriageModel, params: Params, database: str | None,
                   moment: pd.Timestamp, export, export_dir, zendesk_payload, step: _Steps,
                   echo: Callable[[str], None]) -> ScoreResult:
    """The queue to its file, the database and the Zendesk payload (called holding the scoring lock)."""
    batches = _zendesk_batches(scored, model, params) if zendesk_payload else None
    if batches is not None and (warning := risk_field_warning(params.zendesk.risk_field_id)):
        _LOG.warning(warning.removeprefix("warning: "))  # the CLI prints it on stderr as one `warning:` line
    if scored.empty:
        _LOG.warning("%s: no open tickets to score; the queue is written empty (every status solved or "
                     "closed? check the status mapping, or pass --all)", export_dir)

    # Everything that can fail on the data has run; now write: file (staged), database, payload.
    with step("writing outputs"), atomic_path(out_file) as tmp_file:
        _write_scored(scored, tmp_file, out_file.suffix)
        if database:
            write_queue(database, scored, {
                "scored_at": moment.isoformat(), "model_version": model.version, "target": model.target,
                "export_fingerprint": (export.fingerprint if isinstance(export, _DaskExport)
                                       else data_fingerprint(export.tickets, export.events)),
                "tickets_scored": len(scored), "p1_tickets": int((scored["tier"] == "P1").sum()),
                "rejected_rows": export.rejected_rows,
            }, history_runs=params.history.retention_runs)
        if batches is not None:
            from pipeline.sinks.zendesk_payload import write_update_many_payload

            write_update_many_payload(batches, zendesk_payload, created_from=str(out_file))
    result = ScoreResult(scored=scored, rejected_rows=export.rejected_rows, database_url=database)
    echo(result.summary())
    return result


def _write_scored(scored: pd.DataFrame, tmp_file: Path, suffix: str) -> None:
    if suffix.lower() == ".parquet":
        scored.to_parquet(tmp_file, index=False)
    else:
        scored.to_csv(tmp_file, index=False)


def _zendesk_batches(scored: pd.DataFrame, model: TriageModel, params: Params) -> list[dict]:
    from pipeline.sinks.zendesk_payload import build_update_many_payload

    zendesk = params.zendesk
    return build_update_many_payload(
        scored, zendesk.risk_field_id, model.version, tag_prefix=zendesk.tag_prefix, risk_bands=zendesk.risk_bands,
    )


class _Steps:
    """Progress on stderr-style output: each step's name and how long it took."""

    def __init__(self, echo: Callable[[str], None]) -> None:
        self.echo = echo

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        self.echo(f"  {name}: {time.perf_counter() - started:.1f} s")
