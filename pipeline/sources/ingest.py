"""Ingestion shared by every stage: read an export, type it, reject bad rows with reasons.

The invariant this module guarantees: for each table, input rows = clean rows +
rejected rows. Nothing is dropped without a line in ``rejects`` saying which file,
which line and why. Missing *required* columns are not a row problem: they fail
the whole run with one line naming the column and the file.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.core import contract
from pipeline.core.errors import ExportError
from pipeline.core.io import find_table, read_raw_table
from pipeline.core.params import IngestParams

# The default lives in the params model; this name keeps call sites short.
DEFAULT_EARLY_EVENT_TOLERANCE_MINUTES = IngestParams().early_event_tolerance_minutes
# Written by `validate --out`: the directory holds typed, already-validated tables.
CANONICAL_MARKER = "canonical.json"
CANONICAL_FORMAT = "csat-triage canonical export v1"


@dataclass(frozen=True)
class ValidationResult:
    """Clean canonical tables plus every rejected row.

    ``tickets`` and ``events`` hold contract columns (plus extra columns from the
    source) with timestamps as ``datetime64[ns, UTC]``; ``events`` keeps source file
    order so ties in ``at`` resolve in file order. ``rejects`` has columns
    ``table, file, line, reason``.
    """

    tickets: pd.DataFrame
    events: pd.DataFrame
    rejects: pd.DataFrame
    input_rows: dict[str, int] = field(default_factory=dict)
    source: str = ""

    @property
    def rejected_rows(self) -> int:
        return len(self.rejects)

    @property
    def total_input_rows(self) -> int:
        return sum(self.input_rows.values())

    @property
    def reject_rate(self) -> float:
        """Share of all input rows (tickets + events) that were rejected, 0..1."""
        return self.rejected_rows / self.total_input_rows if self.total_input_rows else 0.0

    def summary(self) -> str:
        """One line per table: input = clean + rejected."""
        parts = []
        for name, clean in ((contract.TICKETS, self.tickets), (contract.EVENTS, self.events)):
            rejected = int((self.rejects["table"] == name).sum())
            parts.append(
                f"{name}: {self.input_rows.get(name, 0)} rows = {len(clean)} clean + {rejected} rejected"
            )
        return "; ".join(parts)


class _Rejects:
    """Collects rejected rows as (table, file, line, reason) without per-row Python work."""

    def __init__(self) -> None:
        self._frames: list[pd.DataFrame] = []

    def add(self, table: str, source: Path, lines: pd.Series, reasons: pd.Series | str) -> None:
        if len(lines) == 0:
            return
        frame = pd.DataFrame(
            {
                "table": table,
                "file": source.name,
                "line": lines.to_numpy(dtype="int64"),
                "reason": reasons if isinstance(reasons, str) else reasons.to_numpy(dtype=object),
            }
        )
        self._frames.append(frame)

    def frame(self) -> pd.DataFrame:
        if not self._frames:
            return pd.DataFrame(
                {"table": pd.Series(dtype=str), "file": pd.Series(dtype=str),
                 "line": pd.Series(dtype="int64"), "reason": pd.Series(dtype=str)}
            )
        return pd.concat(self._frames, ignore_index=True).sort_values(
            ["table", "line"], kind="stable", ignore_index=True
        )


def load_export(
    export_dir: str | Path,
    early_event_tolerance_minutes: float = DEFAULT_EARLY_EVENT_TOLERANCE_MINUTES,
) -> ValidationResult:
    """Read and validate an export directory (CSV, Parquet or a Zendesk API dump).

    Parameters
    ----------
    export_dir : directory holding ``tickets`` and ``events`` tables.
    early_event_tolerance_minutes : events stamped up to this many minutes before
        their ticket's ``created_at`` are kept (clock skew); earlier ones are rejected.
    """
    export_dir = Path(export_dir)
    if (export_dir / CANONICAL_MARKER).is_file():
        return _load_canonical(export_dir)
    raw_tickets, tickets_file, raw_events, events_file = _read_raw_export(export_dir)
    rejects = _Rejects()
    tickets = _clean_tickets(raw_tickets, tickets_file, rejects)
    events = _clean_events(
        raw_events, events_file, tickets, rejects, early_event_tolerance_minutes
    )
    return ValidationResult(
        tickets=tickets,
        events=events,
        rejects=rejects.frame(),
        input_rows={contract.TICKETS: len(raw_tickets), contract.EVENTS: len(raw_events)},
        source=str(export_dir),
    )


def _load_canonical(export_dir: Path) -> ValidationResult:
    """Reload tables written by :func:`validate_export` without parsing them again."""
    marker = json.loads((export_dir / CANONICAL_MARKER).read_text())
    if marker.get("format") != CANONICAL_FORMAT:
        raise ExportError(
            f"{export_dir / CANONICAL_MARKER}: not written by this version; run `csat-triage validate` again"
        )
    tickets = pd.read_parquet(export_dir / "tickets.parquet")
    events = pd.read_parquet(export_dir / "events.parquet")
    rejects_file = export_dir / "rejects.csv"
    rejects = pd.read_csv(rejects_file, dtype={"table": str, "file": str, "reason": str}) if (
        rejects_file.is_file()) else _Rejects().frame()
    return ValidationResult(
        tickets=tickets, events=events, rejects=rejects,
        input_rows={k: int(v) for k, v in marker["input_rows"].items()}, source=str(export_dir),
    )


def _read_raw_export(export_dir: Path) -> tuple[pd.DataFrame, Path, pd.DataFrame, Path]:
    if any((export_dir / f"tickets{suffix}").is_file() for suffix in (".json", ".jsonl")):
        from pipeline.sources import (
            zendesk_read,  # only Zendesk dumps need the JSON reader
        )

        tickets, events = zendesk_read.read_zendesk_export(export_dir)
        tickets = tickets.astype(object).where(tickets.notna(), "").astype(str)
        events = events.astype(object).where(events.notna(), "").astype(str)
        # JSON has no lines: ``line`` is the record number + 1, as if it were a CSV with a header.
        tickets["_line"] = np.arange(2, len(tickets) + 2)
        events["_line"] = np.arange(2, len(events) + 2)
        tickets_file, events_file = zendesk_read.source_files(export_dir)
        return tickets, tickets_file, events, events_file
    tickets_file = find_table(export_dir, contract.TICKETS)
    events_file = find_table(export_dir, contract.EVENTS)
    return read_raw_table(tickets_file), tickets_file, read_raw_table(events_file), events_file


def _require_columns(frame: pd.DataFrame, required: tuple[str, ...], source: Path) -> None:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ExportError(
            f"{source}: missing required column {missing[0]!r} "
            f"(required: {', '.join(required)}; found: {', '.join(c for c in frame.columns if c != '_line')})"
        )


def _text(frame: pd.DataFrame, column: str) -> pd.Series:
    """The column stripped of surrounding blanks, or an all-empty column when absent."""
    if column not in frame.columns:
        return pd.Series("", index=frame.index, dtype=object)
    return frame[column].astype(str).str.strip()


def _parse_timestamps(text: pd.Series) -> pd.Series:
    """ISO-8601 text to UTC timestamps; a value without offset is taken as UTC. Bad text -> NaT."""
    stamps = pd.to_datetime(text.where(text != ""), utc=True, format="ISO8601", errors="coerce")
    return stamps.astype("datetime64[ns, UTC]")


def _reject_where(
    keep: pd.Series, bad: pd.Series, reason: Callable[[pd.Series], pd.Series] | str, table: str,
    source: Path, lines: pd.Series, rejects: _Rejects,
) -> pd.Series:
    """Record rows that are still kept and ``bad``; return the updated keep mask.

    ``reason`` is a fixed text, or a function building the texts for the rejected rows
    only (given their mask), so clean exports pay nothing for messages.
    """
    newly_bad = keep & bad
    if newly_bad.any():
        why = reason if isinstance(reason, str) else reason(newly_bad)
        rejects.add(table, source, lines[newly_bad], why)
    return keep & ~bad


def _vocabulary_check(
    values: pd.Series, allowed: tuple[str, ...], column: str, allow_empty: bool
) -> tuple[pd.Series, pd.Series]:
    """Lower-case ``values`` and flag those outside ``allowed``; returns (normalised, bad mask)."""
    normalised = values.str.lower()
    bad = ~normalised.isin(allowed)
    if allow_empty:
        bad &= normalised != ""
    def reason(rows: pd.Series) -> pd.Series:
        return f"unknown {column} " + values[rows].map(repr) + f" (expected one of: {', '.join(allowed)})"

    return normalised, (bad, reason)


def _clean_tickets(raw: pd.DataFrame, source: Path, rejects: _Rejects) -> pd.DataFrame:
    _require_columns(raw, contract.TICKET_REQUIRED, source)
    lines = raw["_line"]
    keep = pd.Series(True, index=raw.index)
    table = contract.TICKETS

    ticket_id = _text(raw, "ticket_id")
    keep = _reject_where(keep, ticket_id == "", "empty ticket_id", table, source, lines, rejects)

    created_text = _text(raw, "created_at")
    created_at = _parse_timestamps(created_text)
    keep = _reject_where(
        keep, created_at.isna(),
        lambda rows: "created_at " + created_text[rows].map(repr) + " is not an ISO-8601 timestamp",
        table, source, lines, rejects,
    )
    sat_text = _text(raw, "satisfaction_at")
    satisfaction_at = _parse_timestamps(sat_text)
    keep = _reject_where(
        keep, satisfaction_at.isna() & (sat_text != ""),
        lambda rows: "satisfaction_at " + sat_text[rows].map(repr) + " is not an ISO-8601 timestamp",
        table, source, lines, rejects,
    )

    normalised: dict[str, pd.Series] = {}
    for column, allowed, allow_empty in (
        ("status", contract.STATUSES, False),
        ("priority", contract.PRIORITIES, True),
        ("satisfaction", contract.SATISFACTION_VALUES, True),
    ):
        values, (bad, reason) = _vocabulary_check(_text(raw, column), allowed, column, allow_empty)
        normalised[column] = values
        keep = _reject_where(keep, bad, reason, table, source, lines, rejects)

    # Duplicates are judged among rows that are otherwise valid: the first valid row wins.
    first_line = lines.where(keep).groupby(ticket_id.where(keep)).transform("min")
    duplicate = keep & ticket_id.duplicated(keep=False) & (lines != first_line)
    keep = _reject_where(
        keep, duplicate,
        lambda rows: "duplicate ticket_id " + ticket_id[rows].map(repr) + " (first seen on line "
        + first_line[rows].fillna(0).astype("int64").astype(str) + ")",
        table, source, lines, rejects,
    )

    tickets = pd.DataFrame(
        {
            "ticket_id": ticket_id,
            "created_at": created_at,
            "channel": _text(raw, "channel").str.lower().replace("", "unknown"),
            "status": normalised["status"],
            "priority": normalised["priority"].replace("", None),
            "requester_id": _text(raw, "requester_id").replace("", None),
            "group": _text(raw, "group").replace("", None),
            "assignee": _text(raw, "assignee").replace("", None),
            "subject": _text(raw, "subject"),
            "satisfaction": normalised["satisfaction"].replace("", None),
            "satisfaction_at": satisfaction_at,
        }
    )
    extra = [c for c in raw.columns if c not in contract.TICKET_COLUMNS and c != "_line"]
    for column in extra:
        tickets[column] = raw[column]
    return tickets[keep.to_numpy()].reset_index(drop=True)


def _clean_events(
    raw: pd.DataFrame, source: Path, tickets: pd.DataFrame, rejects: _Rejects,
    early_event_tolerance_minutes: float,
) -> pd.DataFrame:
    _require_columns(raw, contract.EVENT_REQUIRED, source)
    lines = raw["_line"]
    keep = pd.Series(True, index=raw.index)
    table = contract.EVENTS

    ticket_id = _text(raw, "ticket_id")
    at_text = _text(raw, "at")
    at = _parse_timestamps(at_text)
    keep = _reject_where(
        keep, at.isna(), lambda rows: "at " + at_text[rows].map(repr) + " is not an ISO-8601 timestamp",
        table, source, lines, rejects,
    )
    actor, (bad, reason) = _vocabulary_check(_text(raw, "actor"), contract.ACTORS, "actor", False)
    keep = _reject_where(keep, bad, reason, table, source, lines, rejects)
    kind, (bad, reason) = _vocabulary_check(_text(raw, "kind"), contract.EVENT_KINDS, "kind", False)
    keep = _reject_where(keep, bad, reason, table, source, lines, rejects)

    value = _text(raw, "value")
    is_change = kind.isin(contract.FIELD_CHANGE_KINDS)
    keep = _reject_where(
        keep, is_change & (value == ""), lambda rows: kind[rows] + " event without a value",
        table, source, lines, rejects,
    )
    for change_kind, allowed in (("status", contract.STATUSES), ("priority", contract.PRIORITIES)):
        bad = (kind == change_kind) & (value != "") & ~value.str.lower().isin(allowed)
        keep = _reject_where(
            keep, bad,
            lambda rows, change_kind=change_kind, allowed=allowed: f"unknown {change_kind} value "
            + value[rows].map(repr) + f" (expected one of: {', '.join(allowed)})",
            table, source, lines, rejects,
        )
    value = value.where(~kind.isin(("status", "priority")), value.str.lower())

    created_by_ticket = pd.Series(
        tickets["created_at"].to_numpy(), index=pd.Index(tickets["ticket_id"].to_numpy())
    )
    created_at = ticket_id.map(created_by_ticket)
    keep = _reject_where(
        keep, created_at.isna(), lambda rows: "event for unknown ticket_id " + ticket_id[rows].map(repr),
        table, source, lines, rejects,
    )
    early_minutes = (created_at - at).dt.total_seconds() / 60.0
    keep = _reject_where(
        keep, early_minutes > early_event_tolerance_minutes,
        lambda rows: "event at " + at_text[rows] + " is " + early_minutes[rows].round(1).astype(str)
        + f" minutes before its ticket was created (tolerance {early_event_tolerance_minutes:g})",
        table, source, lines, rejects,
    )

    events = pd.DataFrame(
        {
            "ticket_id": ticket_id,
            "at": at,
            "actor": actor,
            "kind": kind,
            "value": value.replace("", None),
            "body": raw["body"].astype(str) if "body" in raw.columns else "",
        }
    )
    extra = [c for c in raw.columns if c not in contract.EVENT_COLUMNS and c != "_line"]
    for column in extra:
        events[column] = raw[column]
    events = events[keep.to_numpy()].reset_index(drop=True)
    # Categories are fixed by the contract, so every export's tables have the same dtypes.
    events["actor"] = pd.Categorical(events["actor"], categories=contract.ACTORS)
    events["kind"] = pd.Categorical(events["kind"], categories=contract.EVENT_KINDS)
    return events
