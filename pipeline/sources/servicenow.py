"""Importer for a ServiceNow incident audit log (the UCI "incident event log" layout).

This module owns the translation of a ServiceNow audit-row log — one row per
update of an incident, with the incident's field values *at that update* — into
the export contract (:mod:`pipeline.core.contract`): one ticket per incident and one
field-change event per tracked field that changed between successive rows.

Source: UCI Machine Learning Repository, dataset 498, "Incident management process
enriched event log" (Amaral, Fantinato, Reijers, Peres 2018), CC BY 4.0.

Decisions (each counted in :class:`ImportSummary`, nothing is dropped silently):

* Timestamps are ``day/month/year hour:minute`` without zone; they are read as UTC.
  ``?`` means missing in every column.
* Row order: by ``sys_updated_at``, ties by ``sys_mod_count``, then by file line.
  A row whose ``sys_mod_count`` is lower than that of an earlier-stamped row of the
  same incident is *out of order*; it is kept at its stamped time (the contract
  orders events by time) and counted.
* A row stamped before its incident's ``opened_at`` is clamped to ``opened_at``
  (in this log such rows are the incident's first record, created 18-147 minutes
  before the business "opened" time; keeping the raw stamp would make the
  validator reject the event as earlier than ``created_at``).
* A row whose ``sys_updated_at`` cannot be parsed cannot be placed in time and is
  dropped (counted). A row without an incident number is dropped (counted).
* ``incident_state`` values outside the known states (the original log has a few
  ``-100``) carry the previous known state: no status event, counted.
* Group and assignee: the incident's first row always gives an event, and every
  later change gives one — including a change to or from ``?``. An empty group or
  assignee is written as :data:`CLEARED_VALUE` because the contract requires a value
  on field-change events. Rationale (measured on the real log): the log's
  ``reassignment_count`` counts every change of ``assignment_group`` between rows,
  ``?`` included (99.5% of rows agree; ignoring ``?`` agrees on only 79%), so
  "group changes after the first value" rebuilt from these events reproduce it.
  ``assigned_to`` changes do not drive ``reassignment_count`` (47% agreement).
* Status and priority: the first known value is an event, then every change of the
  raw value (``Awaiting Vendor`` -> ``Awaiting Problem`` is an event ``hold`` ->
  ``hold``; its raw value is kept in the extra event column ``source_value``).
  Reopens rebuilt as "solved/closed -> anything else" reproduce ``reopen_count``.
* Actor: ``system`` for the events of an incident's first audit row (the initial
  routing), ``agent`` for everything after. The log has no messages and no text,
  so there are no customer events and every ``body`` is empty.
* Attributes (kind ``field``, one event per attribute and row, named by the source
  column): :data:`ATTRIBUTE_COLUMNS`, the incident's descriptive fields that are
  filled in and corrected during its life. The first row gives each present value
  (actor ``system``, like the initial routing); every later row whose raw value
  differs from the row before gives one (actor ``agent``), ``?`` being a cleared
  (empty) value. A ``?`` on the first row gives no event: nothing was set yet.
  ``opened_by`` and ``sys_created_by`` are set when the incident is opened and never
  change, so they are attributes too. Left out: what is only known at or after the
  resolution (:data:`OUTCOME_COLUMNS`), the log's own counters and ``made_sla`` (the
  target), ``caller_id`` (the requester), ``active`` (a copy of the state) and
  ``sys_updated_by`` (the author of each update, not a property of the incident: it
  changes on 93% of incidents, and the event's actor already says who acts).
* Ticket fields are the values on the incident's last row (in the order above);
  ``made_sla`` there gives ``sla_missed``. The final ``reopen_count`` and
  ``reassignment_count`` are kept as ``log_reopen_count``/``log_reassignment_count``.
  Outcome-only columns (``closed_code``, ``resolved_by``, ``resolved_at``,
  ``closed_at``, ``problem_id``, ``rfc``, ``vendor``, ``caused_by``) are not copied.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.core import contract
from pipeline.core.io import read_source_table, write_export

# The public copy of the UCI log, next to (never inside) the project repository.
DEFAULT_LOG_PATH = (
    Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets" / "uci-incident-log"
    / "incident_event_log.until-2016-04-30.csv.gz"
)
SOURCE_TIME_FORMAT = "%d/%m/%Y %H:%M"
MISSING_MARK = "?"
# Value written on a group/assignee event when the field was emptied (``?``).
CLEARED_VALUE = "(none)"

STATE_TO_STATUS = {
    "New": "new",
    "Active": "open",
    "Awaiting User Info": "pending",
    "Resolved": "solved",
    "Closed": "closed",
}
# Any other state starting with this prefix (Vendor, Problem, Evidence, ...) is ``hold``.
AWAITING_PREFIX = "Awaiting "
PRIORITY_TO_CONTRACT = {
    "1 - Critical": "urgent",
    "2 - High": "high",
    "3 - Moderate": "normal",
    "4 - Low": "low",
}

REQUIRED_SOURCE_COLUMNS = (
    "number",
    "incident_state",
    "reassignment_count",
    "reopen_count",
    "sys_mod_count",
    "made_sla",
    "caller_id",
    "opened_at",
    "sys_updated_at",
    "contact_type",
    "priority",
    "assignment_group",
    "assigned_to",
)
# Descriptive columns copied onto the ticket (final value) when present in the source.
EXTRA_TICKET_COLUMNS = (
    "category",
    "subcategory",
    "u_symptom",
    "cmdb_ci",
    "location",
    "impact",
    "urgency",
    "knowledge",
    "u_priority_confirmation",
    "notify",
    "opened_by",
)
# Incident attributes written as ``field`` events (when present in the source), in the
# order a row's attribute events are written (after its status/group/assignee/priority).
ATTRIBUTE_COLUMNS = (
    "contact_type",
    "location",
    "category",
    "subcategory",
    "u_symptom",
    "cmdb_ci",
    "impact",
    "urgency",
    "knowledge",
    "u_priority_confirmation",
    "notify",
    "opened_by",
    "sys_created_by",
)
# Known only at or after the resolution: never attributes (nor ticket columns).
OUTCOME_COLUMNS = (
    "closed_code",
    "resolved_by",
    "resolved_at",
    "closed_at",
    "problem_id",
    "rfc",
    "vendor",
    "caused_by",
)
# Source column behind each field-change kind; one audit row's events are written
# in the contract's kind order (status, group, assignee, priority).
SOURCE_COLUMN_BY_KIND = {
    "status": "incident_state",
    "group": "assignment_group",
    "assignee": "assigned_to",
    "priority": "priority",
}


@dataclass(frozen=True)
class ImportSummary:
    """Counts from one ServiceNow import; every source row is accounted for.

    ``rows_read = rows_with_events + rows_without_change + rows_dropped_no_incident
    + rows_dropped_bad_time``. The other row counts (clamped, out of order, unknown
    state) describe rows that were kept.
    """

    rows_read: int
    incidents: int
    events_written: int
    status_events: int
    group_events: int
    assignee_events: int
    priority_events: int
    field_events: int
    rows_with_events: int
    rows_without_change: int
    rows_dropped_no_incident: int
    rows_dropped_bad_time: int
    rows_clamped_to_opened_at: int
    rows_out_of_order: int
    rows_unknown_state: int
    incidents_without_opened_at: int
    incidents_without_known_state: int

    def as_dict(self) -> dict[str, int]:
        """The counts as a plain dict (for JSON reports)."""
        return asdict(self)


def import_servicenow(
    src: str | os.PathLike, out_dir: str | os.PathLike, fmt: str = "csv"
) -> ImportSummary:
    """Convert a ServiceNow audit-log CSV (plain or ``.gz``) into an export directory.

    Writes ``tickets.<fmt>`` and ``events.<fmt>`` into ``out_dir`` (atomically) and
    returns the counts. Raises :class:`ExportError` with one line when the file
    cannot be read or lacks a required column.
    """
    log = read_servicenow_log(src)
    tickets, events, summary = convert_servicenow(log)
    write_export(out_dir, tickets, events, fmt)
    return summary


def read_servicenow_log(src: str | os.PathLike) -> pd.DataFrame:
    """Read the audit log with every column as text and a ``_line`` column (header = 1).

    Raises :class:`ExportError` naming the first missing required column.
    """
    return read_source_table(src, REQUIRED_SOURCE_COLUMNS, "ServiceNow incident log")


def convert_servicenow(log: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, ImportSummary]:
    """Turn the raw audit rows into contract ``(tickets, events, summary)``.

    ``log`` is the text frame from :func:`read_servicenow_log` (one row per audit
    row, ``?`` = missing, ``_line`` optional). ``tickets`` has one row per incident,
    ``events`` one row per field change or attribute value (kind ``field``, the
    attribute in ``field``) with ``at`` as ``datetime64[ns, UTC]`` and the extra
    columns ``source_line`` and ``source_value``.
    """
    log = log.reset_index(drop=True)
    if "_line" not in log.columns:
        log = log.assign(_line=np.arange(2, len(log) + 2))
    rows, drops = _ordered_rows(log)
    events, rows_with_events = _build_events(rows)
    tickets = _build_tickets(rows)
    counts_by_kind = events["kind"].value_counts()
    summary = ImportSummary(
        rows_read=len(log),
        incidents=len(tickets),
        events_written=len(events),
        status_events=int(counts_by_kind.get("status", 0)),
        group_events=int(counts_by_kind.get("group", 0)),
        assignee_events=int(counts_by_kind.get("assignee", 0)),
        priority_events=int(counts_by_kind.get("priority", 0)),
        field_events=int(counts_by_kind.get(contract.FIELD_EVENT, 0)),
        rows_with_events=rows_with_events,
        rows_without_change=len(rows) - rows_with_events,
        rows_dropped_no_incident=drops["no_incident"],
        rows_dropped_bad_time=drops["bad_time"],
        rows_clamped_to_opened_at=int(rows["_clamped"].sum()),
        rows_out_of_order=int(rows["_out_of_order"].sum()),
        rows_unknown_state=int((rows["_status"].isna()).sum()),
        incidents_without_opened_at=int(
            rows.loc[rows["_first_row"], "_opened_missing"].sum()
        ),
        incidents_without_known_state=int((tickets["_no_known_state"]).sum()),
    )
    return tickets.drop(columns="_no_known_state"), events, summary


def parse_servicenow_times(text: pd.Series) -> pd.Series:
    """``29/2/2016 01:16`` text to ``datetime64[ns, UTC]``; ``?``, empty or bad text -> NaT."""
    cleaned = text.astype(str).str.strip()
    cleaned = cleaned.where(~cleaned.isin(["", MISSING_MARK]))
    stamps = pd.to_datetime(cleaned, format=SOURCE_TIME_FORMAT, errors="coerce", utc=True)
    return stamps.astype("datetime64[ns, UTC]")


def map_state(states: pd.Series) -> pd.Series:
    """ServiceNow ``incident_state`` text to contract status; unknown (``-100``, ``?``) -> NA."""
    states = states.astype(str).str.strip()
    status = states.map(STATE_TO_STATUS)
    awaiting_other = status.isna() & states.str.startswith(AWAITING_PREFIX)
    return status.where(~awaiting_other, "hold").astype(object)


def _missing_to_na(values: pd.Series) -> pd.Series:
    values = values.astype(str).str.strip()
    return values.where(~values.isin(["", MISSING_MARK])).astype(object)


def _ordered_rows(log: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Usable rows sorted per incident by (clamped time, sys_mod_count, line), with flags.

    Adds ``_at`` (UTC, clamped to the incident's ``opened_at``), ``_created_at``,
    ``_clamped``, ``_out_of_order``, ``_first_row``, ``_row_in_incident`` and the
    mapped ``_status``/``_priority``. Returns the rows and the drop counts.
    """
    number = _missing_to_na(log["number"])
    updated_at = parse_servicenow_times(log["sys_updated_at"])
    no_incident = number.isna()
    bad_time = ~no_incident & updated_at.isna()
    keep = ~(no_incident | bad_time)
    rows = log[keep.to_numpy()].copy()
    rows["_number"] = number[keep]
    rows["_updated_at"] = updated_at[keep]
    rows["_mod"] = pd.to_numeric(rows["sys_mod_count"], errors="coerce")

    # opened_at is constant per incident in the source; take the earliest parse to be safe,
    # and fall back to the first update when an incident has no usable opened_at.
    opened_at = parse_servicenow_times(rows["opened_at"])
    by_incident = rows["_number"]
    created_at = opened_at.groupby(by_incident).transform("min")
    rows["_opened_missing"] = created_at.isna()
    created_at = created_at.fillna(rows["_updated_at"].groupby(by_incident).transform("min"))
    rows["_created_at"] = created_at
    rows["_clamped"] = rows["_updated_at"] < created_at
    rows["_at"] = rows["_updated_at"].where(~rows["_clamped"], created_at)

    rows = rows.sort_values(
        ["_number", "_at", "_mod", "_line"], kind="stable", na_position="last"
    ).reset_index(drop=True)
    groups = rows.groupby("_number", sort=False)
    rows["_row_in_incident"] = groups.cumcount()
    rows["_first_row"] = rows["_row_in_incident"] == 0
    earlier_max_mod = groups["_mod"].cummax().groupby(rows["_number"], sort=False).shift()
    rows["_out_of_order"] = (rows["_mod"] < earlier_max_mod).fillna(False).astype(bool)
    rows["_status"] = map_state(rows["incident_state"])
    rows["_priority"] = rows["priority"].astype(str).str.strip().map(PRIORITY_TO_CONTRACT).astype(object)
    return rows, {"no_incident": int(no_incident.sum()), "bad_time": int(bad_time.sum())}


def _field_values(rows: pd.DataFrame, kind: str, column: str) -> tuple[pd.Series, pd.Series]:
    """(contract value per row, raw source value per row) for one field; NA = no information."""
    raw = _missing_to_na(rows[column])
    if kind == "status":
        return rows["_status"], raw
    if kind == "priority":
        return rows["_priority"], raw
    # Group / assignee: "?" is a real state of the field (unassigned), not missing data.
    return raw.fillna(CLEARED_VALUE), raw


def _change_mask(rows: pd.DataFrame, kind: str, value: pd.Series, raw: pd.Series) -> pd.Series:
    """True on rows where ``kind`` gets an event: first known value, then each raw change."""
    incident = rows["_number"]
    if kind in ("group", "assignee"):
        key = value
    else:
        # Unknown states / priorities carry the previous known value (no event).
        key = raw.where(value.notna()).groupby(incident, sort=False).ffill()
    previous = key.groupby(incident, sort=False).shift()
    first_known = key.notna() & previous.isna()
    return (first_known | (key.notna() & previous.notna() & (key != previous))).astype(bool)


def _attribute_mask(rows: pd.DataFrame, raw: pd.Series) -> pd.Series:
    """True where an attribute gets an event: a present value on the first row, then each change.

    ``raw`` is the attribute's text per row with ``?`` as ``""`` (cleared), so a change to or
    from ``?`` is an event too.
    """
    # Rows are sorted by incident, so the row before is the same incident's except on a
    # first row, which is judged on its own.
    values = raw.to_numpy(dtype=object)
    changed = np.empty(len(values), dtype=bool)
    changed[1:] = values[1:] != values[:-1]
    first = rows["_first_row"].to_numpy()
    return pd.Series(np.where(first, values != "", changed), index=rows.index)


def _event_frame(rows: pd.DataFrame, changed: pd.Series, kind: str, field: str, value: pd.Series,
                 raw: pd.Series, kind_order: int) -> pd.DataFrame:
    # Only the four columns an event needs: selecting rows of the whole audit frame once per
    # kind and attribute would copy its ~40 text columns each time.
    picked = rows[["_number", "_at", "_first_row", "_line"]][changed.to_numpy()]
    return pd.DataFrame(
        {
            "ticket_id": picked["_number"].astype(str),
            "at": picked["_at"],
            "actor": np.where(picked["_first_row"], "system", "agent"),
            "kind": kind,
            "value": value[changed].astype(str),
            "body": "",
            "field": field,
            "source_line": picked["_line"].astype("int64"),
            "source_value": raw[changed].fillna(""),
            "_row": picked.index.to_numpy(),
            "_kind_order": kind_order,
        }
    )


def _build_events(rows: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Contract events from ordered audit rows; returns (events, number of rows with an event)."""
    frames = []
    rows_with_event = pd.Series(False, index=rows.index)
    for kind_order, kind in enumerate(contract.FIELD_CHANGE_KINDS):
        column = SOURCE_COLUMN_BY_KIND[kind]
        value, raw = _field_values(rows, kind, column)
        changed = _change_mask(rows, kind, value, raw)
        rows_with_event |= changed
        frames.append(_event_frame(rows, changed, kind, "", value, raw, kind_order))
    present = [c for c in ATTRIBUTE_COLUMNS if c in rows.columns]
    for offset, column in enumerate(present, start=len(contract.FIELD_CHANGE_KINDS)):
        raw = _missing_to_na(rows[column]).fillna("")
        changed = _attribute_mask(rows, raw)
        rows_with_event |= changed
        frames.append(_event_frame(rows, changed, contract.FIELD_EVENT, column, raw, raw, offset))
    events = pd.concat(frames, ignore_index=True)
    # Rows are already in incident/time order, so the row position orders the events.
    events = events.sort_values(["_row", "_kind_order"], kind="stable", ignore_index=True)
    events = events.drop(columns=["_row", "_kind_order"])
    return events, int(rows_with_event.sum())


def _build_tickets(rows: pd.DataFrame) -> pd.DataFrame:
    """One ticket per incident from its last audit row (final values).

    Status is the last *known* state; an incident with none gets ``open`` and the
    helper column ``_no_known_state`` (dropped by the caller after counting).
    """
    last_known_status = rows["_status"].groupby(rows["_number"], sort=False).ffill()
    last_known_priority = rows["_priority"].groupby(rows["_number"], sort=False).ffill()
    is_last = ~rows["_number"].duplicated(keep="last")
    last = rows[is_last.to_numpy()]
    status = last_known_status[is_last]
    made_sla = last["made_sla"].astype(str).str.strip().str.lower()
    tickets = pd.DataFrame(
        {
            "ticket_id": last["_number"].astype(str),
            "created_at": last["_created_at"],
            "channel": _missing_to_na(last["contact_type"]).str.lower(),
            "status": status.fillna("open"),
            "priority": last_known_priority[is_last],
            "requester_id": _missing_to_na(last["caller_id"]),
            "group": _missing_to_na(last["assignment_group"]),
            "assignee": _missing_to_na(last["assigned_to"]),
            "subject": "",
            "satisfaction": "",
            "satisfaction_at": pd.Series(pd.NaT, index=last.index, dtype="datetime64[ns, UTC]"),
            "sla_missed": made_sla.map({"false": "true", "true": "false"}),
            "log_reopen_count": _missing_to_na(last["reopen_count"]),
            "log_reassignment_count": _missing_to_na(last["reassignment_count"]),
            "_no_known_state": status.isna(),
        }
    )
    for column in EXTRA_TICKET_COLUMNS:
        if column in last.columns:
            tickets[column] = _missing_to_na(last[column])
    return tickets.reset_index(drop=True)
