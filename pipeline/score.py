"""Stage `score`: the nightly run. Ranks the open tickets of an export and writes the queue.

Order of work, chosen so that a failure never leaves a half-updated queue:
take the lock; validate the export (stop if too many rows are rejected); load the
model and check it fits the features; compute everything in memory; then write the
file (temp file + rename), the database (one transaction) and the Zendesk payload.
"""

from __future__ import annotations

import fcntl
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd

from features.build import features_from_timeline, latest_timestamp
from features.calendar import BusinessHours
from features.conversation import build_timeline
from features.snapshots import opening_moments
from models.policy import PriorityPolicy, more_urgent, rank_queue
from models.reasons import top_reasons
from models.store import NO_CHAMPION_FILE, URGENCY_LEVELS, TriageModel, data_fingerprint
from pipeline import contract
from pipeline.ingest import load_export
from pipeline.io import ExportError, atomic_path
from pipeline.writeback import QUEUE_EXTRA_COLUMNS, SCORE_COLUMNS, default_database_url, write_queue



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
    lock_path = out_file.with_name(f".{out_file.name}.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ScoringLockedError(f"{out_file}: another scoring run is writing it (lock {lock_path})") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def load_model(model_dir: str | Path | None, model_uri: str | None) -> TriageModel:
    """A model directory, or an MLflow registry URI such as ``models:/csat-triage-risk@champion``."""
    if model_uri:
        from models.registry import resolve_model_uri

        model_dir = resolve_model_uri(model_uri)
    if model_dir is None:
        raise ExportError("give --model DIR or --model-uri models:/NAME@champion")
    marker = Path(model_dir) / NO_CHAMPION_FILE
    if marker.is_file():
        raise ExportError(f"{model_dir}: no champion model to score with ({marker.read_text().strip()})")
    return TriageModel.load(model_dir)


def score_tickets(
    model: TriageModel,
    tickets: pd.DataFrame,
    events: pd.DataFrame,
    as_of: pd.Timestamp,
    params: dict,
    all_tickets: bool = False,
) -> pd.DataFrame:
    """Score tickets as of ``as_of``; returns the queue sorted by rank (columns :data:`SCORE_COLUMNS` + extras)."""
    hours = BusinessHours.from_params(params.get("business_hours"))
    policy = PriorityPolicy.from_params(params.get("policy"))
    window = float(params.get("snapshots", {}).get("opening_window_minutes", 5.0))
    timeline = build_timeline(tickets, events, hours)
    created = tickets[(tickets["created_at"] <= as_of).to_numpy()].reset_index(drop=True)
    now = features_from_timeline(
        tickets, timeline, pd.DataFrame({"ticket_id": created["ticket_id"], "as_of": as_of})
    )
    # Open as of the moment scored: the status the events give then, or the export's status
    # for tickets whose log has no status events at all.
    logged = events.loc[events["kind"].astype(str) == "status", "ticket_id"].unique()
    has_status_events = created["ticket_id"].isin(logged).to_numpy()
    status = np.where(has_status_events, now["status_now"].astype(str), created["status"].astype(str))
    keep = np.ones(len(created), dtype=bool) if all_tickets else ~np.isin(status, contract.DONE_STATUSES)
    chosen, now = created[keep].reset_index(drop=True), now[keep].reset_index(drop=True)
    if chosen.empty:
        return empty_queue()
    # Urgency is judged from what was known as the ticket arrived, exactly as it was trained.
    opening = features_from_timeline(tickets, timeline, opening_moments(chosen, as_of, window))

    now = model.with_text_scores(now)  # the reasons quote the text scores like any feature
    p_bad = model.predict_risk(now)
    contributions = model.risk_contributions(now)
    urgency_probability = model.predict_urgency(opening).to_numpy()
    urgency = np.asarray(URGENCY_LEVELS, dtype=object)[urgency_probability.argmax(axis=1)]
    p_urgent = urgency_probability[:, URGENCY_LEVELS.index("high"):].sum(axis=1)
    sla_urgency = more_urgent(urgency, chosen["priority"].to_numpy(dtype=object))
    sla_pressure = policy.sla_pressure(now["current_wait_minutes"].to_numpy(), sla_urgency)
    priority_score = policy.priority_score(p_bad, p_urgent, sla_pressure)

    reason_params = params.get("reasons", {})
    scored = pd.DataFrame(
        {
            "ticket_id": chosen["ticket_id"].to_numpy(dtype=object),
            "p_bad": np.round(p_bad, 4),
            "risk": np.rint(100 * p_bad).astype("int64"),
            "urgency": urgency,
            "p_urgent": np.round(p_urgent, 4),
            "priority_score": np.round(priority_score, 2),
            "rank": rank_queue(np.round(priority_score, 2), chosen["created_at"], chosen["ticket_id"]),
            "tier": policy.tier(np.round(priority_score, 2)),
            "reasons": top_reasons(
                contributions, now, int(reason_params.get("max_reasons", 3)),
                float(reason_params.get("min_contribution", 0.05)),
            ).to_numpy(dtype=object),
            "model_version": model.version,
            "scored_at": as_of.isoformat(),
            "group": chosen["group"].to_numpy(dtype=object),
            "assignee": chosen["assignee"].to_numpy(dtype=object),
            "current_wait_minutes": np.round(now["current_wait_minutes"].to_numpy(), 1),
            "target": model.target,
        }
    )
    return scored.sort_values("rank", kind="stable").reset_index(drop=True)


def empty_queue() -> pd.DataFrame:
    """The scored table with no rows (every ticket solved, or nothing created yet)."""
    columns = list(SCORE_COLUMNS) + list(QUEUE_EXTRA_COLUMNS)
    return pd.DataFrame({c: pd.Series(dtype="float64" if c in ("p_bad", "p_urgent", "priority_score",
                                                               "current_wait_minutes") else object)
                         for c in columns})


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
    params: dict | None = None,
    echo: Callable[[str], None] = print,
) -> ScoreResult:
    """The nightly scoring run (see module docstring). ``db_url=""`` skips the database."""
    params = params or {}
    out_file = Path(out_file)
    if out_file.suffix.lower() not in contract.TABLE_SUFFIXES:
        raise ExportError(f"{out_file}: output must end in .csv or .parquet")
    limit = max_reject_rate if max_reject_rate is not None else float(
        params.get("ingest", {}).get("max_reject_rate", 0.0))
    requested_as_of = _parse_as_of(as_of)
    if not Path(export_dir).is_dir():
        raise ExportError(f"{export_dir}: export directory not found")
    with scoring_lock(out_file):
        step = _Steps(echo)
        with step("loading model"):  # cheap, so a wrong model path fails before the export is read
            model = load_model(model_dir, model_uri)
        with step("validating export"):
            export = load_export(export_dir, params.get("ingest", {}).get("early_event_tolerance_minutes", 5.0))
        if export.reject_rate > limit:
            first = export.rejects.iloc[0]
            raise ExportError(
                f"{export_dir}: {export.rejected_rows} rows rejected ({export.reject_rate:.2%} > limit {limit:.2%}); "
                f"nothing written. First: {first['file']} line {first['line']}: {first['reason']}"
            )
        moment = requested_as_of or latest_timestamp(export.tickets, export.events)
        with step("scoring"):
            scored = score_tickets(model, export.tickets, export.events, moment, params, all_tickets)
        batches = _zendesk_batches(scored, model, params) if zendesk_payload else None

        # Everything that can fail on the data has run; now write: file (staged), database, payload.
        database = default_database_url(out_file) if db_url is None else (db_url or None)
        with step("writing outputs"), atomic_path(out_file) as tmp_file:
            _write_scored(scored, tmp_file, out_file.suffix)
            if database:
                write_queue(database, scored, {
                    "scored_at": moment.isoformat(), "model_version": model.version, "target": model.target,
                    "export_fingerprint": data_fingerprint(export.tickets, export.events),
                    "tickets_scored": len(scored), "p1_tickets": int((scored["tier"] == "P1").sum()),
                    "rejected_rows": export.rejected_rows,
                })
            if batches is not None:
                from pipeline.zendesk import write_update_many_payload

                write_update_many_payload(batches, zendesk_payload, created_from=str(out_file))
    result = ScoreResult(scored=scored, rejected_rows=export.rejected_rows, database_url=database)
    echo(result.summary())
    return result


def _write_scored(scored: pd.DataFrame, tmp_file: Path, suffix: str) -> None:
    if suffix.lower() == ".parquet":
        scored.to_parquet(tmp_file, index=False)
    else:
        scored.to_csv(tmp_file, index=False)


def _zendesk_batches(scored: pd.DataFrame, model: TriageModel, params: dict) -> list[dict]:
    from pipeline.zendesk import build_update_many_payload

    zendesk = params.get("zendesk", {})
    return build_update_many_payload(
        scored, int(zendesk.get("risk_field_id", 0)), model.version,
        tag_prefix=str(zendesk.get("tag_prefix", "csat_")), risk_bands=zendesk.get("risk_bands"),
    )


def _parse_as_of(as_of: str | None) -> pd.Timestamp | None:
    """``--as-of`` as a UTC timestamp, checked before any work; None means the export time."""
    if as_of is None:
        return None
    try:
        moment = pd.Timestamp(as_of)
    except ValueError:
        raise ExportError(f"--as-of {as_of!r} is not an ISO-8601 timestamp") from None
    return moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")


class _Steps:
    """Progress on stderr-style output: each step's name and how long it took."""

    def __init__(self, echo: Callable[[str], None]) -> None:
        self.echo = echo

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        self.echo(f"  {name}: {time.perf_counter() - started:.1f} s")
