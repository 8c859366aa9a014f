"""Ingestion shared by every stage: read an export, type it, reject bad rows with reasons.

The invariant this module guarantees: for each table, input rows = clean rows +
rejected rows (+ rows after ``as_of``, which a back-test does not see). Nothing is
dropped without a line in ``rejects`` saying which file, which line and why. Missing
*required* columns, unreadable files and malformed CSV lines are not row problems:
they fail the whole run with one line naming the file (and the line).

Warnings (an auto-detected separator, timestamps after the clock, ticket-row values
no event carries, texts cut) go to the ``pipeline.sources.ingest`` logger and into
:attr:`ValidationResult.warnings`; the CLI prints them as ``warning: ...`` lines.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.core import contract
from pipeline.core.errors import ExportError
from pipeline.core.io import DELIMITER_NAMES, detect_delimiter, find_table, read_export_batches, read_export_table
from pipeline.core.params import IngestParams
from pipeline.sources.ingest_columns import CodedText, Stamps, stripped_text

# Written by `validate --out`: the directory holds typed, already-validated tables.
CANONICAL_MARKER = "canonical.json"
CANONICAL_FORMAT = "csat-triage canonical export v1"
TEXT_COLUMNS = {contract.TICKETS: "subject", contract.EVENTS: "body"}
TIMESTAMP_COLUMNS = {contract.TICKETS: contract.TICKET_TIMESTAMPS, contract.EVENTS: ("at",)}
# Columns with few distinct values per row count (ids repeat once per event): validated per distinct value.
CODED_COLUMNS = {contract.TICKETS: (), contract.EVENTS: ("ticket_id", "actor", "kind", "value", "field")}
# Features that only field-change events feed; the ticket row's value is the end-of-export state.
FIELD_FEATURES = {
    "status": "status_now, reopens, times_solved",
    "group": "current_group, group_hops",
    "assignee": "has_assignee, assignee_hops",
    "priority": "current_priority",
}
_ISO_EXAMPLE = "2026-03-01T14:05:00Z"
_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class ValidationResult:
    """Clean canonical tables plus every rejected row.

    ``tickets`` and ``events`` hold contract columns (plus extra columns from the
    source) with timestamps as ``datetime64[ns, UTC]``; ``events`` keeps source file
    order so ties in ``at`` resolve in file order. ``rejects`` has columns
    ``table, file, line, reason``. ``after_as_of`` counts, per table, valid rows later
    than the requested as-of (not seen by that run, not rejects). ``texts_cut`` counts
    subjects and bodies cut to ``ingest.max_text_chars``.
    """

    tickets: pd.DataFrame
    events: pd.DataFrame | None  # None: handed to ``on_events`` slice by slice and not kept (``keep_events``)
    rejects: pd.DataFrame
    input_rows: dict[str, int] = field(default_factory=dict)
    clean_rows: dict[str, int] = field(default_factory=dict)
    source: str = ""
    after_as_of: dict[str, int] = field(default_factory=dict)
    texts_cut: int = 0
    warnings: tuple[str, ...] = ()

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
        """One line per table: input = clean + rejected (+ after as-of); then texts cut, if any."""
        parts = []
        for name in (contract.TICKETS, contract.EVENTS):
            rejected = int((self.rejects["table"] == name).sum())
            unseen = self.after_as_of.get(name, 0)
            parts.append(
                f"{name}: {self.input_rows.get(name, 0)} rows = {self.clean_rows.get(name, 0)} clean + {rejected} rejected"
                + (f" + {unseen} after as-of" if unseen else "")
            )
        if self.texts_cut:
            parts.append(f"{self.texts_cut} long texts cut to ingest.max_text_chars")
        return "; ".join(parts)


@dataclass
class _Run:
    """What one ingest run checks against, and what it counts on the way."""

    rejects: _Rejects
    settings: IngestParams
    now: pd.Timestamp
    future_limit: pd.Timestamp | None  # None with --as-of: later rows are cut, not rejected
    warnings: list[str] = field(default_factory=list)
    stamps: int = 0
    after_clock: int = 0
    texts_cut: int = 0


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
        # Tickets first: a rejected ticket row is the cause of its events' "unknown ticket_id".
        frame = pd.concat(self._frames, ignore_index=True)
        order = frame["table"].map({contract.TICKETS: 0, contract.EVENTS: 1})
        return frame.assign(_order=order).sort_values(["_order", "line"], kind="stable", ignore_index=True).drop(
            columns="_order"
        )


def load_export(
    export_dir: str | Path,
    ingest: IngestParams | float = IngestParams(),
    *,
    as_of: pd.Timestamp | str | None = None,
    now: pd.Timestamp | str | None = None,
    on_events: Callable[[pd.DataFrame], None] | None = None,
    keep_events: bool = True,
) -> ValidationResult:
    """Read and validate an export directory (CSV, Parquet or a Zendesk API dump).

    Parameters
    ----------
    export_dir : directory holding ``tickets`` and ``events`` tables.
    ingest : the ``ingest`` params (a number is taken as ``early_event_tolerance_minutes``,
        the other settings at their defaults).
    as_of : back-test moment. Rows stamped after it are left out and counted in
        ``after_as_of`` (neither rejected nor failing). Without it, a timestamp later
        than ``now`` plus ``ingest.future_tolerance_minutes`` is rejected, so the
        default as-of (the latest timestamp) is never a typo in the future.
    now : the wall clock (default: the current time); tests pass a fixed moment.
    on_events : called with each slice of clean events as soon as it is validated, in file
        order and before the as-of cut (``validate`` writes them while reading the next).
    keep_events : False (with ``on_events``, without ``as_of``): the slices are not kept and
        ``events`` is None: `validate` writes them and never holds the whole table.
    """
    if not keep_events and (on_events is None or as_of is not None):
        raise ValueError("keep_events=False needs on_events and no as_of")
    settings = ingest if isinstance(ingest, IngestParams) else IngestParams(
        early_event_tolerance_minutes=ingest
    )
    export_dir = Path(export_dir)
    clock = _utc(now) if now is not None else pd.Timestamp.now(tz="UTC")
    moment = _utc(as_of) if as_of is not None else None
    run = _Run(
        rejects=_Rejects(), settings=settings, now=clock,
        future_limit=None if moment is not None else clock + pd.Timedelta(minutes=settings.future_tolerance_minutes),
    )
    if (export_dir / CANONICAL_MARKER).is_file():
        tickets, events, rejects, input_rows = _load_canonical(export_dir)
        tickets, events = _bound_texts(tickets, events, run)
        if on_events is not None:
            on_events(events)
        clean_events = len(events)
        if not keep_events:
            events = None
    else:
        raw_tickets, tickets_file, raw_events, events_file = _read_raw_export(export_dir, run)
        input_rows = {contract.TICKETS: len(raw_tickets), contract.EVENTS: 0}
        tickets = _clean_tickets(raw_tickets, tickets_file, run)
        del raw_tickets
        ticket_ids = pd.Index(tickets["ticket_id"])  # its hash table is built once, for every slice
        parts, kinds, clean_events = [], [], 0
        for raw in raw_events:
            input_rows[contract.EVENTS] += len(raw)
            part = _clean_events(raw, events_file, tickets, ticket_ids, run)
            del raw
            clean_events += len(part)
            kinds.append(part["kind"].value_counts())  # categorical: counted on codes, no text pass
            if on_events is not None:
                on_events(part)
            if keep_events:
                parts.append(part)
            del part
        events = (None if not keep_events else parts[0] if len(parts) == 1
                  else pd.concat(parts, ignore_index=True))
        del parts
        rejects = run.rejects.frame()
        _warn_about_content(tickets, tickets_file, pd.concat(kinds).groupby(level=0, observed=True).sum(),
                            events_file, input_rows, run)
    if events is None:
        after_as_of, clean_rows = {}, {contract.TICKETS: len(tickets), contract.EVENTS: clean_events}
    else:
        tickets, events, after_as_of = _cut_at(tickets, events, moment)
        clean_rows = {contract.TICKETS: len(tickets), contract.EVENTS: len(events)}
    if run.texts_cut:
        run.warnings.append(
            f"{run.texts_cut} texts (subjects or message bodies) longer than {settings.max_text_chars} "
            "characters were cut to that length (ingest.max_text_chars)"
        )
    for message in run.warnings:
        _LOG.warning(message)
    return ValidationResult(
        tickets=tickets, events=events, rejects=rejects, input_rows=input_rows, clean_rows=clean_rows,
        source=str(export_dir),
        after_as_of=after_as_of, texts_cut=run.texts_cut, warnings=tuple(run.warnings),
    )


def _utc(moment: pd.Timestamp | str) -> pd.Timestamp:
    moment = pd.Timestamp(moment)
    return moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")


def _load_canonical(export_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, int]]:
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
    return tickets, events, rejects, {k: int(v) for k, v in marker["input_rows"].items()}


def _read_raw_export(export_dir: Path, run: _Run) -> tuple[pd.DataFrame, Path, Iterator[pd.DataFrame], Path]:
    """The raw tickets table, and the raw events as consecutive slices (one for CSV and JSON)."""
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
        return tickets, tickets_file, iter([events]), events_file
    tickets_file = find_table(export_dir, contract.TICKETS)
    events_file = find_table(export_dir, contract.EVENTS)
    return (_read_table(tickets_file, contract.TICKETS, run), tickets_file,
            _read_table(events_file, contract.EVENTS, run, batches=True), events_file)


def _read_table(path: Path, table: str, run: _Run, batches: bool = False) -> pd.DataFrame | Iterator[pd.DataFrame]:
    """One table: CSV as text (``;`` or tab separators are read as such, and said), Parquet typed.

    With ``batches``, an iterator of consecutive slices (see :func:`read_export_batches`).
    """
    typed = {"timestamp_columns": TIMESTAMP_COLUMNS[table], "coded_columns": CODED_COLUMNS[table]}
    if batches:
        def read(path: Path, **options) -> Iterator[pd.DataFrame]:
            return read_export_batches(path, run.settings.events_per_slice, **options)
    else:
        read = read_export_table
    if path.name.lower().endswith(".parquet"):
        return read(path, **typed)
    delimiter = run.settings.delimiter
    how = "--delimiter / ingest.delimiter"
    if delimiter == "auto":
        delimiter = detect_delimiter(path, run.settings.encoding)
        how = "detected from the header line; pass --delimiter to choose"
    if delimiter != ",":
        run.warnings.append(
            f"{path.name}: fields separated by {DELIMITER_NAMES.get(delimiter, repr(delimiter))} ({how})"
        )
    return read(path, encoding=run.settings.encoding, delimiter=delimiter, **typed)


def _require_columns(frame: pd.DataFrame, required: tuple[str, ...], source: Path) -> None:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        found = [c for c in frame.columns if c != "_line"]
        hint = ""
        if len(found) == 1 and any(sep in found[0] for sep in (";", "\t", "|")):
            hint = "; the header looks separated by another character: pass --delimiter"
        raise ExportError(
            f"{source}: missing required column {missing[0]!r} "
            f"(required: {', '.join(required)}; found: {', '.join(found)}){hint}"
        )


def _bounded(text: pd.Series, run: _Run) -> pd.Series:
    """``text`` with values longer than ``max_text_chars`` cut, before any text work; counts the cuts.

    Only the long values are sliced: one length pass over the column, no Python per row.
    """
    limit = run.settings.max_text_chars
    long = (text.str.len() > limit).fillna(False).to_numpy(dtype=bool)
    cut = int(long.sum())
    if not cut:
        return text
    run.texts_cut += cut
    text = text.copy()
    text[long] = text[long].str.slice(0, limit)
    return text


def _bound_texts(tickets: pd.DataFrame, events: pd.DataFrame, run: _Run) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The same cut for canonical tables (written before a smaller limit was set)."""
    out = []
    for name, frame in ((contract.TICKETS, tickets), (contract.EVENTS, events)):
        column = TEXT_COLUMNS[name]
        if column in frame.columns and len(frame):
            bounded = _bounded(frame[column], run)
            if bounded is not frame[column]:
                frame = frame.assign(**{column: bounded})
        out.append(frame)
    return out[0], out[1]


def _timestamp_reason(column: str, stamps: Stamps) -> Callable[[pd.Series], pd.Series]:
    """Reasons for unparseable timestamps, with a hint for the two usual mistakes (built for rejected rows only)."""
    def reason(rows: pd.Series) -> pd.Series:
        bad = stamps.text(rows)
        hint = np.select(
            [bad.str.fullmatch(r"[+-]?\d+(\.\d*)?").to_numpy(dtype=bool), bad.str.contains("/").to_numpy(dtype=bool)],
            [f" (a bare number: epoch time? write ISO-8601 such as {_ISO_EXAMPLE})",
             f" (day/month order is ambiguous: write ISO-8601 such as {_ISO_EXAMPLE})"],
            "",
        )
        return f"{column} " + bad.map(repr) + " is not an ISO-8601 timestamp" + hint

    return reason


def _check_time(
    keep: pd.Series, parsed: Stamps, column: str, table: str, source: Path, lines: pd.Series, run: _Run,
) -> pd.Series:
    """Count stamps after the wall clock; without as-of, reject those beyond the tolerance."""
    stamps = parsed.stamps
    run.stamps += int(stamps.notna().sum())
    run.after_clock += int((stamps > run.now).sum())
    if run.future_limit is None:
        return keep
    tolerance = run.settings.future_tolerance_minutes
    return _reject_where(
        keep, stamps > run.future_limit,
        lambda rows: f"{column} stamped in the future: " + parsed.text(rows)
        + f" (clock {run.now:%Y-%m-%dT%H:%M:%SZ}, tolerance {tolerance:g} minutes; "
        "a time-zone mistake? back-tests pass --as-of)",
        table, source, lines, run.rejects,
    )


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


def _clean_tickets(raw: pd.DataFrame, source: Path, run: _Run) -> pd.DataFrame:
    _require_columns(raw, contract.TICKET_REQUIRED, source)
    lines = raw["_line"]
    keep = pd.Series(True, index=raw.index)
    table = contract.TICKETS
    rejects = run.rejects

    ticket_id = stripped_text(raw, "ticket_id")
    keep = _reject_where(keep, ticket_id == "", "empty ticket_id", table, source, lines, rejects)

    created = Stamps.of(raw, "created_at")
    created_at = created.stamps
    keep = _reject_where(
        keep, created_at.isna(), _timestamp_reason("created_at", created), table, source, lines, rejects
    )
    keep = _check_time(keep, created, "created_at", table, source, lines, run)
    rated = Stamps.of(raw, "satisfaction_at")
    satisfaction_at = rated.stamps
    keep = _reject_where(
        keep, satisfaction_at.isna() & rated.given(), _timestamp_reason("satisfaction_at", rated),
        table, source, lines, rejects,
    )
    keep = _check_time(keep, rated, "satisfaction_at", table, source, lines, run)

    normalised: dict[str, pd.Series] = {}
    for column, allowed, allow_empty in (
        ("status", contract.STATUSES, False),
        ("priority", contract.PRIORITIES, True),
        ("satisfaction", contract.SATISFACTION_VALUES, True),
    ):
        values, (bad, reason) = _vocabulary_check(stripped_text(raw, column), allowed, column, allow_empty)
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
            "channel": stripped_text(raw, "channel").str.lower().replace("", "unknown"),
            "status": normalised["status"],
            "priority": normalised["priority"].replace("", None),
            "requester_id": stripped_text(raw, "requester_id").replace("", None),
            "group": stripped_text(raw, "group").replace("", None),
            "assignee": stripped_text(raw, "assignee").replace("", None),
            "subject": _bounded(stripped_text(raw, "subject"), run),
            "satisfaction": normalised["satisfaction"].replace("", None),
            "satisfaction_at": satisfaction_at,
        }
    )
    extra = [c for c in raw.columns if c not in contract.TICKET_COLUMNS and c != "_line"]
    for column in extra:
        tickets[column] = raw[column]
    return tickets[keep.to_numpy()].reset_index(drop=True)


def _clean_events(
    raw: pd.DataFrame, source: Path, tickets: pd.DataFrame, ticket_ids: pd.Index, run: _Run
) -> pd.DataFrame:
    """One slice of the raw events, checked against the clean ``tickets`` (``ticket_ids``: their ids as an index)."""
    _require_columns(raw, contract.EVENT_REQUIRED, source)
    lines = raw["_line"]
    keep = pd.Series(True, index=raw.index)
    table = contract.EVENTS
    rejects = run.rejects
    early_event_tolerance_minutes = run.settings.early_event_tolerance_minutes

    ticket_id = CodedText.of(raw, "ticket_id")
    at = Stamps.of(raw, "at")
    keep = _reject_where(keep, at.stamps.isna(), _timestamp_reason("at", at), table, source, lines, rejects)
    keep = _check_time(keep, at, "at", table, source, lines, run)
    actor, bad, reason = _coded_vocabulary_check(CodedText.of(raw, "actor"), contract.ACTORS, "actor")
    keep = _reject_where(keep, bad, reason, table, source, lines, rejects)
    kind, bad, reason = _coded_vocabulary_check(CodedText.of(raw, "kind"), contract.EVENT_KINDS, "kind")
    keep = _reject_where(keep, bad, reason, table, source, lines, rejects)

    def kind_in(*kinds: str) -> np.ndarray:
        return kind.where(kind.values.isin(kinds))

    value = CodedText.of(raw, "value")
    value_empty = value.where(value.values == "")
    keep = _reject_where(
        keep, kind_in(*contract.FIELD_CHANGE_KINDS) & value_empty,
        lambda rows: kind.at(rows) + " event without a value", table, source, lines, rejects,
    )
    lowered = value.values.str.lower()
    for change_kind, allowed in (("status", contract.STATUSES), ("priority", contract.PRIORITIES)):
        bad = kind_in(change_kind) & ~value_empty & value.where(~lowered.isin(allowed))
        keep = _reject_where(
            keep, bad,
            lambda rows, change_kind=change_kind, allowed=allowed: f"unknown {change_kind} value "
            + value.at(rows).map(repr) + f" (expected one of: {', '.join(allowed)})",
            table, source, lines, rejects,
        )
    # Status and priority values are lower-cased: their codes point into the lowered half.
    value = CodedText(np.where(kind_in("status", "priority"), value.codes + len(value.values), value.codes),
                   pd.concat([value.values, lowered], ignore_index=True))
    # Attribute names become feature names (attr_<name>): one spelling per attribute.
    field = CodedText.of(raw, "field").map(contract.attribute_names)
    is_field = kind_in(contract.FIELD_EVENT)
    keep = _reject_where(
        keep, is_field & field.where(field.values == ""),
        "field event without a field name (column `field`)",
        table, source, lines, rejects,
    )
    field = CodedText(np.where(is_field, field.codes, len(field.values)),
                   pd.concat([field.values, pd.Series([""], dtype="str")], ignore_index=True))

    # Ticket ids are unique among clean tickets; -1 (unknown ticket) takes NaT, and the
    # column stays a timestamp even when no ticket row survived.
    position = ticket_ids.get_indexer(ticket_id.values)[ticket_id.codes]
    created_at = pd.Series(
        tickets["created_at"].array.take(position, allow_fill=True), index=raw.index
    ).astype("datetime64[ns, UTC]")
    keep = _reject_where(
        keep, created_at.isna(), lambda rows: "event for unknown ticket_id " + ticket_id.at(rows).map(repr),
        table, source, lines, rejects,
    )
    # In integer nanoseconds: a float column of minutes for 20 M events costs 160 MB and a pass.
    nat = created_at.isna().to_numpy() | at.stamps.isna().to_numpy()
    early_ns = created_at.array.asi8 - at.stamps.array.asi8
    early = ~nat & (early_ns > early_event_tolerance_minutes * 60e9)
    del early_ns, nat

    def early_minutes(rows: pd.Series) -> pd.Series:
        return ((created_at[rows] - at.stamps[rows]).dt.total_seconds() / 60.0).round(1).astype(str)

    keep = _reject_where(
        keep, early,
        lambda rows: "event at " + at.text(rows) + " is " + early_minutes(rows)
        + f" minutes before its ticket was created (tolerance {early_event_tolerance_minutes:g})",
        table, source, lines, rejects,
    )

    kept = keep.to_numpy()

    def kept_rows(column: pd.Series) -> pd.Series:
        # A clean export keeps every row: no copy of its text columns then.
        return column.reset_index(drop=True) if kept.all() else column[kept].reset_index(drop=True)

    body = kept_rows(_bounded(raw["body"].astype(str), run)) if "body" in raw.columns else ""
    events = pd.DataFrame(
        {
            "ticket_id": ticket_id.rows(kept),
            "at": kept_rows(at.stamps),
            # Categories are fixed by the contract, so every export's tables have the same dtypes.
            "actor": actor.categorical(kept, contract.ACTORS),
            "kind": kind.categorical(kept, contract.EVENT_KINDS),
            "value": value.rows(kept, empty_as_missing=True),
            "body": body,
            "field": field.rows(kept, empty_as_missing=True),
        }
    )
    extra = [c for c in raw.columns if c not in contract.EVENT_COLUMNS and c != "_line"]
    for column in extra:
        events[column] = kept_rows(raw[column])
    return events


def _coded_vocabulary_check(
    values: CodedText, allowed: tuple[str, ...], column: str
) -> tuple[CodedText, np.ndarray, Callable[[pd.Series], pd.Series]]:
    """:func:`_vocabulary_check` on the distinct values: (lower-cased, bad rows, reasons for rows)."""
    normalised = values.map(lambda text: text.str.lower())
    bad = normalised.where(~normalised.values.isin(allowed))

    def reason(rows: pd.Series) -> pd.Series:
        return f"unknown {column} " + values.at(rows).map(repr) + f" (expected one of: {', '.join(allowed)})"

    return normalised, bad, reason


def _cut_at(
    tickets: pd.DataFrame, events: pd.DataFrame, as_of: pd.Timestamp | None
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """Leave out what a back-test as of ``as_of`` cannot see: later tickets, later events, their events."""
    if as_of is None:
        return tickets, events, {}
    seen_tickets = (tickets["created_at"] <= as_of).to_numpy()
    seen_events = ((events["at"] <= as_of) & events["ticket_id"].isin(tickets["ticket_id"][seen_tickets])).to_numpy()
    after = {contract.TICKETS: int((~seen_tickets).sum()), contract.EVENTS: int((~seen_events).sum())}
    if not any(after.values()):
        return tickets, events, after
    return tickets[seen_tickets].reset_index(drop=True), events[seen_events].reset_index(drop=True), after


def _warn_about_content(
    tickets: pd.DataFrame, tickets_file: Path, kinds: pd.Series, events_file: Path,
    input_rows: dict[str, int], run: _Run,
) -> None:
    """Warnings about a whole export (never about one row): empty tables, the clock, unused ticket-row values."""
    for name, source in ((contract.TICKETS, tickets_file), (contract.EVENTS, events_file)):
        if not input_rows[name]:
            run.warnings.append(f"{source.name}: no {name} rows (only a header)")
    share = run.after_clock / run.stamps if run.stamps else 0.0
    if share > run.settings.future_warning_share:
        run.warnings.append(
            f"{run.after_clock} of {run.stamps} timestamps ({share:.1%}) are later than the clock "
            f"({run.now:%Y-%m-%d %H:%M} UTC): a time-zone mistake? timestamps without an offset are read as UTC"
        )
    present = set(kinds.index[kinds.to_numpy() > 0].astype(str))
    for column, features in FIELD_FEATURES.items():
        on_rows = int(tickets[column].notna().sum())
        if on_rows and column not in present:
            run.warnings.append(
                f"{tickets_file.name}: {on_rows} ticket rows have {column} set but {events_file.name} has no "
                f"{column} events, so {features} will be empty: a ticket row holds only the end-of-export "
                f"value; the history comes from {column} events"
            )
