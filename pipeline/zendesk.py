"""Zendesk in and out: API dumps -> export contract, contract -> Zendesk-shaped dumps,
scores -> ``update_many`` payloads, payloads -> Zendesk with retry and resume.

This module owns every Zendesk JSON shape and every Zendesk HTTP call in the tool.
Nothing else in the pipeline knows Zendesk exists: the reader turns a directory of
API responses into the two contract tables (``pipeline.contract``), and the payload
builder / pusher turn a scored table back into ticket updates.

Shapes used here, from Zendesk's Support API reference (developer.zendesk.com):

* Incremental ticket export ``GET /api/v2/incremental/tickets/cursor`` -> page
  ``{"tickets": [...], "after_cursor", "end_of_stream"}``; a ticket has ``id``,
  ``created_at``, ``updated_at``, ``status``, ``priority``, ``via.channel``,
  ``requester_id``, ``group_id``, ``assignee_id``, ``subject`` and
  ``satisfaction_rating.score``. Deleted tickets stay in the stream with status
  ``deleted`` unless ``exclude_deleted=true``; updated tickets repeat across pages.
  ``include=metric_sets`` sideloads end-of-life metrics, which are never read here.
* Incremental ticket event export ``GET /api/v2/incremental/ticket_events``
  (``include=comment_events``) -> ``{"ticket_events": [{"id", "ticket_id",
  "timestamp", "created_at", "updater_id", "via", "event_type": "Audit",
  "child_events": [...]}]}``. A comment child is ``{"event_type": "Comment",
  "author_id", "body", "public", "created_at"}``; without the sideload only the
  booleans ``comment_present`` / ``comment_public`` are there (no text). A field
  child carries the new value under the field's own name, e.g. ``{"status":
  "solved", "previous_value": "open", "event_type": "Change"}`` (``Create`` for the
  ticket's initial values). The reference page's own example response for this
  endpoint shows ticket *metric* events by mistake; the parent shape above matches
  Airbyte's source-zendesk-support test fixture and the child shape the one quoted
  in a zendesk-java-client model (``{"id", "via": "Web form", "status": "solved",
  "event_type": "Change", "previous_value": "open"}``).
* Ticket audits ``GET /api/v2/ticket_audits`` -> ``{"audits": [{"ticket_id",
  "created_at", "author_id", "via", "events": [{"type": "Comment", "body",
  "public"}, {"type": "Change"|"Create", "field_name", "value",
  "previous_value"}]}]}``.
* Users ``GET /api/v2/incremental/users/cursor`` -> ``{"users": [{"id", "role"}]}``
  with role ``end-user``, ``agent`` or ``admin``.
* Satisfaction ratings ``GET /api/v2/satisfaction_ratings`` ->
  ``{"satisfaction_ratings": [{"ticket_id", "score", "created_at", "updated_at"}]}``.
* ``PUT /api/v2/tickets/update_many.json`` with ``{"tickets": [{"id", ...}]}``: at
  most 100 tickets, each with its own values; ``additional_tags`` / ``remove_tags``
  are honoured by this endpoint only. The answer is ``{"job_status": {"id",
  "status": queued|working|completed|failed|killed, "results": [...]}}``, polled
  at ``GET /api/v2/job_statuses/{id}.json``.
* Audit metadata: a ticket update may carry ``"metadata": {...}`` (up to 1 KB) in
  the ticket object; Zendesk stores it as the audit's ``metadata.custom`` (it is
  only saved when the update changes the ticket).
* Rate limits: HTTP 429 with a ``Retry-After`` header in seconds.
* API-token auth: HTTP Basic with ``{email}/token:{api_token}``.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import http.client
import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd

from pipeline import contract
from pipeline.io import ExportError, atomic_path, write_export, write_json

# --------------------------------------------------------------------------- names

ENDPOINT_TICKETS = "tickets"
ENDPOINT_TICKET_EVENTS = "ticket_events"
ENDPOINT_AUDITS = "audits"
ENDPOINT_USERS = "users"
ENDPOINT_RATINGS = "satisfaction_ratings"
JSON_SUFFIXES = (".json", ".jsonl")

# Zendesk's own user id for changes made by the system (triggers, automations).
SYSTEM_USER_ID = "-1"
# Via channels / sources that mean "a business rule did this", not a person.
SYSTEM_VIA = frozenset({"rule", "automation", "trigger", "system"})
AGENT_ROLES = frozenset({"agent", "admin"})
CUSTOMER_ROLES = frozenset({"end-user", "end_user", "enduser"})

# Zendesk field names (as in audits' field_name / ticket events' keys) -> contract kinds.
FIELD_KINDS = {"status": "status", "group_id": "group", "assignee_id": "assignee", "priority": "priority"}
KIND_FIELDS = {kind: name for name, kind in FIELD_KINDS.items()}

# via.channel -> contract channel. Anything else passes through lower-cased.
CHANNEL_FROM_ZENDESK = {
    "voice": "phone",
    "twitter": "social",
    "facebook": "social",
    "instagram_dm": "social",
    "whatsapp": "social",
    "native_messaging": "chat",
}
# Contract channel -> a via.channel the reader maps back to the same contract channel.
CHANNEL_TO_ZENDESK = {"phone": "voice", "social": "twitter"}

# Deterministic id ranges for names the simulator uses (agents, groups) and for the
# audit / child-event ids the writer invents. Far above realistic requester ids.
AGENT_ID_BASE = 9_000_000_000
GROUP_ID_BASE = 8_000_000_000
AUDIT_ID_BASE = 7_000_000_000_000
CHILD_ID_BASE = 7_500_000_000_000
RATING_ID_BASE = 6_000_000_000
FALLBACK_AGENT_NAME = "agent_unattributed"
TIMESTAMP_COLUMNS = ("created_at", "satisfaction_at", "at")

UPDATE_MANY_MAX_TICKETS = 100
DEFAULT_RISK_BANDS = {"high": 60, "medium": 30, "low": 0}
TIERS = ("P1", "P2", "P3", "P4")
PAYLOAD_FORMAT = "csat-triage.zendesk-update-many.v1"

JOB_DONE = "completed"
JOB_FAILED = ("failed", "killed")
MAX_JOB_POLLS = 600
MAX_BACKOFF_SECONDS = 60.0
MAX_RETRY_AFTER_SECONDS = 900.0
HTTP_TIMEOUT_SECONDS = 30.0
ENV_EMAIL = "ZENDESK_EMAIL"
ENV_TOKEN = "ZENDESK_API_TOKEN"


# ===================================================================== reading

@dataclass(frozen=True)
class ImportSummary:
    """What an import read, kept and left out; every count is a number of records.

    ``unknown_author_events`` counts events whose author is not in the users file,
    by the rule that decided their actor: ``requester`` (the ticket's requester ->
    customer), ``assignee`` (someone who is an assignee somewhere -> agent),
    ``note`` (internal notes are agent-only -> agent) and ``fallback`` (-> agent).
    """

    out_dir: str
    event_source: str
    tickets: int
    events: int
    ticket_records_read: int
    duplicate_ticket_records: int
    deleted_tickets: int
    events_of_deleted_tickets: int
    duplicate_events: int
    comments_without_body: int
    empty_field_changes_skipped: int
    unknown_authors: int
    unknown_author_events: dict[str, int] = field(default_factory=dict)
    ratings_from_ratings_file: int = 0
    ignored_files: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        """Human-readable summary, one fact per line, no ticket text."""
        out = [
            f"tickets: {self.tickets} kept of {self.ticket_records_read} records "
            f"({self.duplicate_ticket_records} older duplicates, {self.deleted_tickets} deleted)",
            f"events: {self.events} from {self.event_source} "
            f"({self.duplicate_events} duplicates, {self.events_of_deleted_tickets} of deleted tickets, "
            f"{self.empty_field_changes_skipped} changes to an empty value skipped)",
        ]
        if self.comments_without_body:
            out.append(
                f"{self.comments_without_body} comments have no text: export ticket events "
                "with include=comment_events to get text signals"
            )
        if self.unknown_authors:
            rules = ", ".join(f"{k} {v}" for k, v in sorted(self.unknown_author_events.items()))
            out.append(f"{self.unknown_authors} authors not in users file ({rules} events)")
        out.append(f"ratings from satisfaction_ratings file: {self.ratings_from_ratings_file}")
        for name in self.ignored_files:
            out.append(f"ignored {name}: ticket_events takes precedence over audits")
        return out


def is_zendesk_export(src: str | os.PathLike) -> bool:
    """True when ``src`` is a directory holding ``tickets.json`` or ``tickets.jsonl``."""
    src = Path(src)
    return src.is_dir() and any((src / f"{ENDPOINT_TICKETS}{s}").is_file() for s in JSON_SUFFIXES)


def source_files(src: str | os.PathLike) -> tuple[Path, Path]:
    """The files that rows of (tickets, events) come from, for messages that name a file."""
    src = Path(src)
    events = _endpoint_file(src, ENDPOINT_TICKET_EVENTS) or _endpoint_file(src, ENDPOINT_AUDITS)
    return (_endpoint_file(src, "tickets") or src / "tickets.json",
            events or src / f"{ENDPOINT_TICKET_EVENTS}.json")


def read_zendesk_export(src: str | os.PathLike) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read a Zendesk API dump into contract tables ``(tickets, events)``.

    Every value is text (``""`` when absent), like a CSV export read as strings:
    timestamps are Zendesk's ISO-8601 text (``...Z``), group and assignee are Zendesk
    ids. ``tickets`` has one row per live ticket (latest record wins, deleted ones
    left out); ``events`` is ordered by ticket, then ``at``, ties in source order.
    """
    tickets, events, _ = _read_export(Path(src))
    return tickets, events


def import_zendesk(
    src: str | os.PathLike, out_dir: str | os.PathLike, fmt: str = "csv"
) -> ImportSummary:
    """Read a Zendesk dump and write it as a contract export (``tickets.<fmt>``, ``events.<fmt>``)."""
    tickets, events, stats = _read_export(Path(src))
    write_export(out_dir, tickets, events, fmt)
    return ImportSummary(out_dir=str(out_dir), tickets=len(tickets), events=len(events), **stats)


def _read_export(src: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    if not is_zendesk_export(src):
        raise ExportError(
            f"{src}: no tickets.json or tickets.jsonl; save the incremental ticket export "
            "(/api/v2/incremental/tickets/cursor) there"
        )
    tickets, ticket_stats, deleted_ids, sideloaded_users = _read_tickets(src)
    users = _user_actors(src, sideloaded_users)
    event_source, ignored = _event_source(src)
    raw_events, event_stats = _read_raw_events(src, event_source)

    in_deleted = raw_events["ticket_id"].isin(deleted_ids)
    raw_events = raw_events[~in_deleted.to_numpy()]
    events, actor_stats = _resolve_actors(raw_events, tickets, users)

    ratings = _read_ratings(src)
    tickets = _apply_ratings(tickets, ratings)
    stats = {
        "event_source": event_source,
        **ticket_stats,
        "events_of_deleted_tickets": int(in_deleted.sum()),
        **event_stats,
        **actor_stats,
        "ratings_from_ratings_file": int(tickets["ticket_id"].isin(ratings["ticket_id"]).sum()),
        "ignored_files": ignored,
    }
    return tickets[list(contract.TICKET_COLUMNS)], events, stats


# ------------------------------------------------------------------- JSON files

def _endpoint_file(src: Path, name: str) -> Path | None:
    """The file holding endpoint ``name``'s responses (``.json`` or ``.jsonl``), if any."""
    for suffix in JSON_SUFFIXES:
        path = src / f"{name}{suffix}"
        if path.is_file():
            return path
    return None


def _iter_records(path: Path, key: str, sideloads: dict[str, list] | None = None) -> Iterator[dict]:
    """Yield the ``key`` records of an endpoint file.

    ``.json``: one response page ``{key: [...]}``, a list of such pages, or a bare
    list of records. ``.jsonl``: each line is a page or a single record. Lists a
    page sideloads under the names in ``sideloads`` (e.g. ``users``) are appended there.
    """
    try:
        with path.open(encoding="utf-8") as handle:
            if path.suffix == ".jsonl":
                for line_no, line in enumerate(handle, start=1):
                    if line.strip():
                        yield from _records_of(_loads(line, path, line_no), key, path, sideloads)
            else:
                yield from _records_of(_loads(handle.read(), path, None), key, path, sideloads)
    except OSError as exc:
        raise ExportError(f"{path}: cannot read ({exc.strerror})") from None


def _loads(text: str, path: Path, line_no: int | None) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {line_no}" if line_no else f"line {exc.lineno}"
        raise ExportError(f"{path}: {where} is not valid JSON ({exc.msg}); save the API response as is") from None


def _records_of(document: Any, key: str, path: Path, sideloads: dict[str, list] | None) -> Iterator[dict]:
    pages = document if isinstance(document, list) else [document]
    if not isinstance(document, (list, dict)):
        raise ExportError(f"{path}: expected a JSON object or list of {key}")
    for item in pages:
        if not isinstance(item, dict):
            continue
        if key not in item:
            yield item  # a bare record (one per .jsonl line, or a list of records)
            continue
        page = item[key]
        if not isinstance(page, list):
            raise ExportError(f"{path}: {key!r} is not a list; expected a Zendesk {key} response page")
        for name, sink in (sideloads or {}).items():
            if isinstance(item.get(name), list):
                sink.extend(r for r in item[name] if isinstance(r, dict))
        yield from (r for r in page if isinstance(r, dict))


def _text_id(value: Any) -> str:
    """A Zendesk id (int, numeric text or null) as text; ``""`` when absent."""
    if value is None or isinstance(value, bool):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


# ----------------------------------------------------------------------- users

def _user_actors(src: Path, sideloaded: list[dict]) -> dict[str, str]:
    """User id -> ``customer`` / ``agent`` from the users file and users sideloaded with tickets."""
    path = _endpoint_file(src, ENDPOINT_USERS)
    records = list(sideloaded) + (list(_iter_records(path, ENDPOINT_USERS)) if path is not None else [])
    actors: dict[str, str] = {}
    for user in records:
        role = _text(user.get("role")).lower()
        if role in AGENT_ROLES:
            actors[_text_id(user.get("id"))] = "agent"
        elif role in CUSTOMER_ROLES:
            actors[_text_id(user.get("id"))] = "customer"
    return actors


# --------------------------------------------------------------------- tickets

def _read_tickets(src: Path) -> tuple[pd.DataFrame, dict[str, int], set[str], list[dict]]:
    """Latest record per ticket id, deleted ones removed.

    Returns (tickets, counts, deleted ticket ids, users sideloaded with ``include=users``).
    """
    path = _endpoint_file(src, ENDPOINT_TICKETS)
    sideloads: dict[str, list] = {ENDPOINT_USERS: []}
    records = list(_iter_records(path, ENDPOINT_TICKETS, sideloads))
    if not records:
        raise ExportError(f"{path}: no tickets; expected a page like {{\"tickets\": [...]}}")

    def rating(r: dict) -> str:
        sat = r.get("satisfaction_rating")
        return _score(sat.get("score")) if isinstance(sat, dict) else ""

    def channel(r: dict) -> str:
        via = r.get("via")
        return _text(via.get("channel")).lower() if isinstance(via, dict) else _text(via).lower()

    frame = pd.DataFrame(
        {
            "ticket_id": [_text_id(r.get("id")) for r in records],
            "created_at": [_text(r.get("created_at")) for r in records],
            "updated_at": [_text(r.get("updated_at")) for r in records],
            "channel": [channel(r) for r in records],
            "status": [_text(r.get("status")).lower() for r in records],
            "priority": [_text(r.get("priority")).lower() for r in records],
            "requester_id": [_text_id(r.get("requester_id")) for r in records],
            "group": [_text_id(r.get("group_id")) for r in records],
            "assignee": [_text_id(r.get("assignee_id")) for r in records],
            "subject": [_text(r.get("subject")) for r in records],
            "satisfaction": [rating(r) for r in records],
        },
        dtype=object,
    )
    frame["channel"] = frame["channel"].replace(CHANNEL_FROM_ZENDESK)
    frame["satisfaction_at"] = ""

    # Incremental exports repeat a ticket each time it changes: the latest updated_at
    # wins, and among equal updated_at the record later in the files.
    position = np.arange(len(frame))
    updated = pd.to_datetime(frame["updated_at"], utc=True, format="ISO8601", errors="coerce")
    order = pd.DataFrame({"updated": updated, "position": position}).sort_values(
        ["updated", "position"], na_position="first", kind="stable"
    ).index
    latest = frame.loc[order].drop_duplicates("ticket_id", keep="last").sort_index()
    deleted = latest["status"] == "deleted"
    deleted_ids = set(latest.loc[deleted, "ticket_id"])
    tickets = latest[~deleted]
    numeric_id = pd.to_numeric(tickets["ticket_id"], errors="coerce")
    tickets = tickets.assign(_n=numeric_id).sort_values(["_n", "ticket_id"], kind="stable")
    tickets = tickets.drop(columns="_n").reset_index(drop=True)
    counts = {
        "ticket_records_read": len(frame),
        "duplicate_ticket_records": len(frame) - len(latest),
        "deleted_tickets": int(deleted.sum()),
    }
    return tickets, counts, deleted_ids, sideloads[ENDPOINT_USERS]


def _score(value: Any) -> str:
    """A Zendesk rating score as a contract value; legacy ``good_with_comment`` etc. -> good/bad."""
    score = _text(value).lower()
    for label in ("good", "bad"):
        if score.startswith(label):
            return label
    return score


# ---------------------------------------------------------------------- events

def _event_source(src: Path) -> tuple[str, tuple[str, ...]]:
    events_path = _endpoint_file(src, ENDPOINT_TICKET_EVENTS)
    audits_path = _endpoint_file(src, ENDPOINT_AUDITS)
    if events_path is None and audits_path is None:
        raise ExportError(
            f"{src}: no ticket_events.json(l) or audits.json(l); save "
            "/api/v2/incremental/ticket_events?include=comment_events there"
        )
    if events_path is not None:
        # Both describe the same updates; reading both would count every event twice.
        return ENDPOINT_TICKET_EVENTS, (audits_path.name,) if audits_path is not None else ()
    return ENDPOINT_AUDITS, ()


@dataclass
class _EventColumns:
    """Column lists filled while walking the JSON (appends, never DataFrame rows)."""

    ticket_id: list[str] = field(default_factory=list)
    at: list[str] = field(default_factory=list)
    epoch: list[float] = field(default_factory=list)
    author: list[str] = field(default_factory=list)
    system: list[bool] = field(default_factory=list)
    kind: list[str] = field(default_factory=list)
    value: list[str] = field(default_factory=list)
    body: list[str] = field(default_factory=list)
    key: list[str] = field(default_factory=list)
    comments_without_body: int = 0
    empty_changes: int = 0

    def add(self, parent: dict, child: dict, kind: str, value: str, body: str, key: str) -> None:
        self.ticket_id.append(parent["ticket_id"])
        self.at.append(_text(child.get("created_at")) or parent["at"])
        self.epoch.append(parent["epoch"])
        author = child.get("author_id")
        self.author.append(_text_id(author) if author is not None else parent["author"])
        self.system.append(parent["system"] or _is_system_via(child.get("via")))
        self.kind.append(kind)
        self.value.append(value)
        self.body.append(body)
        self.key.append(key)


def _is_system_via(via: Any) -> bool:
    """True for changes made by triggers / automations (via channel ``rule`` etc.)."""
    if isinstance(via, dict):
        source = via.get("source")
        rel = _text(source.get("rel")).lower() if isinstance(source, dict) else ""
        return _text(via.get("channel")).lower() in SYSTEM_VIA or rel in SYSTEM_VIA
    return _text(via).strip().lower() in SYSTEM_VIA


def _read_raw_events(src: Path, source: str) -> tuple[pd.DataFrame, dict[str, int]]:
    """Walk ticket events or audits into contract-like columns (actor not resolved yet)."""
    path = _endpoint_file(src, source)
    cols = _EventColumns()
    children_key = "child_events" if source == ENDPOINT_TICKET_EVENTS else "events"
    author_key = "updater_id" if source == ENDPOINT_TICKET_EVENTS else "author_id"
    for record in _iter_records(path, source):
        epoch = record.get("timestamp")
        parent = {
            "ticket_id": _text_id(record.get("ticket_id")),
            "at": _text(record.get("created_at")),
            "epoch": float(epoch) if isinstance(epoch, (int, float)) else np.nan,
            "author": _text_id(record.get(author_key)),
            "system": _is_system_via(record.get("via")),
            "id": _text_id(record.get("id")),
        }
        children = record.get(children_key)
        if isinstance(children, list):
            _walk_children(parent, [c for c in children if isinstance(c, dict)], cols)

    frame = pd.DataFrame(
        {
            "ticket_id": cols.ticket_id, "at": cols.at, "epoch": cols.epoch,
            "author": cols.author, "system": cols.system, "kind": cols.kind,
            "value": cols.value, "body": cols.body, "key": cols.key,
        }
    )
    frame = _fill_epoch_times(frame)
    # Overlapping incremental runs repeat events; child ids identify them.
    keyed = frame["key"] != ""
    duplicate = keyed & frame["key"].duplicated()
    frame = frame[~duplicate.to_numpy()].drop(columns=["epoch", "key"])
    stats = {
        "duplicate_events": int(duplicate.sum()),
        "comments_without_body": cols.comments_without_body,
        "empty_field_changes_skipped": cols.empty_changes,
    }
    return frame.reset_index(drop=True), stats


def _walk_children(parent: dict, children: list[dict], cols: _EventColumns) -> None:
    """Turn one update's child events into comment and field-change rows."""
    # With include=comment_events the comment itself is a child; the bare
    # comment_present flag then describes the same comment and must not count twice.
    has_full_comment = any(_is_comment(c) and _has_text(c) for c in children)
    for index, child in enumerate(children):
        key = _child_key(parent, child, index)
        if _is_comment(child):
            if not _has_text(child) and has_full_comment:
                continue
            if "comment_present" in child and not child.get("comment_present"):
                continue
            public = child.get("public", child.get("comment_public", True))
            body = _text(child.get("body", child.get("plain_body")))
            cols.comments_without_body += not _has_text(child)
            cols.add(parent, child, "message" if public else "note", "", body, key)
            continue
        event_type = _text(child.get("event_type", child.get("type")))
        if event_type not in ("Create", "Change"):
            continue
        for name, value in _field_values(child):
            if value == "":
                cols.empty_changes += 1  # e.g. priority null at creation, unassignment
                continue
            cols.add(parent, child, FIELD_KINDS[name], value, "", f"{key}:{name}")


def _has_text(child: dict) -> bool:
    """Whether a comment child carries its text (only with the comment_events sideload)."""
    return "body" in child or "plain_body" in child


def _is_comment(child: dict) -> bool:
    kind = child.get("event_type", child.get("type"))
    return kind == "Comment" or (kind is None and "comment_present" in child)


def _child_key(parent: dict, child: dict, index: int) -> str:
    child_id = _text_id(child.get("id"))
    if child_id:
        return child_id
    return f"{parent['id']}/{index}" if parent["id"] else ""


def _field_values(child: dict) -> Iterator[tuple[str, str]]:
    """(zendesk field name, new value as text) for status / group_id / assignee_id / priority."""
    if "field_name" in child:  # audits shape
        name = _text(child.get("field_name"))
        if name in FIELD_KINDS:
            yield name, _field_text(name, child.get("value"))
        return
    for name in FIELD_KINDS:  # ticket events shape: the value sits under the field's name
        if name in child:
            yield name, _field_text(name, child.get(name))


def _field_text(name: str, value: Any) -> str:
    if isinstance(value, list):
        value = value[0] if len(value) == 1 else None
    text = _text_id(value) if name in ("group_id", "assignee_id") else _text(value).lower()
    return text


def _fill_epoch_times(frame: pd.DataFrame) -> pd.DataFrame:
    """Use the parent's Unix ``timestamp`` where no ISO ``created_at`` was given."""
    missing = (frame["at"] == "") & frame["epoch"].notna()
    if missing.any():
        stamps = pd.to_datetime(frame.loc[missing, "epoch"], unit="s", utc=True)
        frame.loc[missing, "at"] = stamps.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return frame


def _resolve_actors(
    raw: pd.DataFrame, tickets: pd.DataFrame, users: dict[str, str]
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Decide customer / agent / system per event, vectorised, and sort into contract order.

    Rules, first match wins: system user -1 or a rule/automation via -> system; the
    users file's role (end-user -> customer, agent/admin -> agent); then for authors
    missing from the users file: the ticket's requester -> customer, anyone who is
    an assignee of some ticket -> agent, an internal note -> agent (end users cannot
    write notes), otherwise agent (a non-requester writing on a ticket is far more
    often a colleague than a CC'd end user).
    """
    author = raw["author"]
    system = raw["system"].to_numpy(dtype=bool) | (author == SYSTEM_USER_ID).to_numpy()
    role = author.map(users)
    requester = raw["ticket_id"].map(dict(zip(tickets["ticket_id"], tickets["requester_id"])))
    assignees = set(tickets["assignee"]) | set(raw.loc[raw["kind"] == "assignee", "value"])
    assignees.discard("")
    unknown = ~system & role.isna().to_numpy()
    is_requester = (author == requester).to_numpy() & (author != "").to_numpy()
    is_assignee = author.isin(assignees).to_numpy()
    is_note = (raw["kind"] == "note").to_numpy()
    rule = np.select(
        [~unknown, is_requester, is_assignee, is_note],
        ["", "requester", "assignee", "note"],
        default="fallback",
    )
    actor = np.select(
        [system, ~unknown, rule == "requester"],
        ["system", role.fillna("").to_numpy(dtype=object), "customer"],
        default="agent",
    )
    events = pd.DataFrame(
        {
            "ticket_id": raw["ticket_id"].to_numpy(),
            "at": raw["at"].to_numpy(),
            "actor": actor,
            "kind": raw["kind"].to_numpy(),
            "value": raw["value"].to_numpy(),
            "body": raw["body"].to_numpy(),
        },
        dtype=object,
    )
    events = _contract_order(events)
    rule_counts = Counter(rule[unknown].tolist())
    stats = {
        "unknown_authors": int(author[unknown].nunique()),
        "unknown_author_events": dict(sorted(rule_counts.items())),
    }
    return events, stats


def _contract_order(events: pd.DataFrame) -> pd.DataFrame:
    """Sort by ticket (numerically when ids are numbers), then ``at``; ties keep source order."""
    numeric_id = pd.to_numeric(events["ticket_id"], errors="coerce")
    at = pd.to_datetime(events["at"], utc=True, format="ISO8601", errors="coerce")
    keys = pd.DataFrame({"n": numeric_id, "t": events["ticket_id"], "at": at})
    order = keys.sort_values(["n", "t", "at"], kind="stable", na_position="last").index
    return events.loc[order].reset_index(drop=True)


# --------------------------------------------------------------------- ratings

def _read_ratings(src: Path) -> pd.DataFrame:
    """Latest rating per ticket: columns ticket_id, satisfaction, satisfaction_at (text)."""
    path = _endpoint_file(src, ENDPOINT_RATINGS)
    empty = pd.DataFrame({"ticket_id": [], "satisfaction": [], "satisfaction_at": []}, dtype=object)
    if path is None:
        return empty
    records = list(_iter_records(path, ENDPOINT_RATINGS))
    if not records:
        return empty
    frame = pd.DataFrame(
        {
            "ticket_id": [_text_id(r.get("ticket_id")) for r in records],
            "satisfaction": [_score(r.get("score")) for r in records],
            # A rating can be changed after it is first given: updated_at is when the
            # current score was set; created_at only when updated_at is missing.
            "satisfaction_at": [_text(r.get("updated_at")) or _text(r.get("created_at")) for r in records],
        },
        dtype=object,
    )
    when = pd.to_datetime(frame["satisfaction_at"], utc=True, format="ISO8601", errors="coerce")
    order = pd.DataFrame({"when": when, "pos": np.arange(len(frame))}).sort_values(
        ["when", "pos"], na_position="first", kind="stable"
    ).index
    frame = frame.loc[order].drop_duplicates("ticket_id", keep="last")
    return frame[frame["ticket_id"] != ""].reset_index(drop=True)


def _apply_ratings(tickets: pd.DataFrame, ratings: pd.DataFrame) -> pd.DataFrame:
    """Ratings from the ratings endpoint replace the ticket's embedded (timeless) rating."""
    if ratings.empty:
        return tickets
    by_ticket = ratings.set_index("ticket_id")
    rated = tickets["ticket_id"].isin(by_ticket.index)
    tickets = tickets.copy()
    ids = tickets.loc[rated, "ticket_id"]
    tickets.loc[rated, "satisfaction"] = ids.map(by_ticket["satisfaction"]).to_numpy()
    tickets.loc[rated, "satisfaction_at"] = ids.map(by_ticket["satisfaction_at"]).to_numpy()
    return tickets


# ===================================================================== writing

def write_zendesk_export(
    out_dir: str | os.PathLike, tickets: pd.DataFrame, events: pd.DataFrame
) -> Path:
    """Write contract frames as a Zendesk API dump that :func:`read_zendesk_export` reads back.

    Files: ``tickets.jsonl`` (one ticket per line), ``ticket_events.jsonl`` (one
    update per line, comments sideloaded), ``users.json``, ``satisfaction_ratings.json``
    (ratings that have a time) and ``id_map.json`` (not a Zendesk file: the agent and
    group names -> the numeric ids given to them). Ticket and requester ids must be
    numeric text. Agents and groups get ids ``AGENT_ID_BASE`` / ``GROUP_ID_BASE`` +
    1-based rank of the sorted name, so the same names always get the same ids.

    Consecutive events of one ticket with the same time, actor and author become one
    update (audit). A customer event is authored by the ticket's requester, a system
    event by user -1 via ``Rule``, an agent event by the ticket's assignee at that
    moment (else its final assignee, else ``agent_unattributed``).
    """
    out_dir = Path(out_dir)
    tickets = _as_text_frame(tickets, contract.TICKET_COLUMNS)
    events = _as_text_frame(events, contract.EVENT_COLUMNS)
    _require_numeric(tickets["ticket_id"], "ticket_id")
    _require_numeric(tickets.loc[tickets["requester_id"] != "", "requester_id"], "requester_id")

    unknown = ~events["ticket_id"].isin(tickets["ticket_id"])
    if unknown.any():
        raise ExportError(f"event for unknown ticket_id {events.loc[unknown, 'ticket_id'].iloc[0]!r}; "
                          "validate the export before writing it as Zendesk files")
    for column, allowed in (("actor", contract.ACTORS), ("kind", contract.EVENT_KINDS)):
        bad = ~events[column].isin(allowed)
        if bad.any():
            raise ExportError(f"events.{column} {events.loc[bad, column].iloc[0]!r} is not one of "
                              f"{', '.join(allowed)}; validate the export before writing it as Zendesk files")
    events = _contract_order(events)
    agent_names = set(tickets["assignee"]) | set(events.loc[events["kind"] == "assignee", "value"])
    agent_ids = _name_ids(agent_names | {FALLBACK_AGENT_NAME}, AGENT_ID_BASE)
    group_names = set(tickets["group"]) | set(events.loc[events["kind"] == "group", "value"])
    group_ids = _name_ids(group_names, GROUP_ID_BASE)
    requester_ids = set(tickets["requester_id"]) - {""}
    clash = requester_ids & {str(v) for v in agent_ids.values()}
    if clash:
        raise ExportError(f"requester id {sorted(clash)[0]} collides with a generated agent id; renumber requesters")

    authors = _event_authors(events, tickets, agent_ids)
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_lines(out_dir / "tickets.jsonl", _ticket_records(tickets, events, agent_ids, group_ids))
    _write_lines(out_dir / "ticket_events.jsonl", _ticket_event_records(events, tickets, authors, agent_ids, group_ids))
    _write_document(out_dir / "users.json", _users_page(tickets, agent_ids))
    _write_document(out_dir / "satisfaction_ratings.json", _ratings_page(tickets))
    _write_document(
        out_dir / "id_map.json",
        {"agents": {k: agent_ids[k] for k in sorted(agent_ids)}, "groups": {k: group_ids[k] for k in sorted(group_ids)}},
    )
    return out_dir


def _as_text_frame(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """Contract columns as text: timestamps -> ISO-8601 UTC ``...Z``, missing -> ``""``."""
    out = pd.DataFrame(index=frame.index)
    for column in columns:
        if column not in frame.columns:
            out[column] = ""
            continue
        values = frame[column]
        is_datetime = isinstance(values.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(values)
        if column in TIMESTAMP_COLUMNS:
            given = values.notna()
            if not is_datetime:
                given &= values.astype(str).str.strip() != ""
            out[column] = _iso_z(values.where(given))
            unparsed = given & (out[column] == "")
            if unparsed.any():
                raise ExportError(f"{column} {values[unparsed].iloc[0]!r} is not a timestamp")
        else:
            out[column] = values.astype(object).where(values.notna(), "").astype(str).astype(object)
    return out.reset_index(drop=True)


def _iso_z(values: pd.Series) -> pd.Series:
    """Timestamps as ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z``; sub-seconds only when present."""
    stamps = pd.to_datetime(values, utc=True, format="ISO8601", errors="coerce")
    has_fraction = bool((stamps.dt.microsecond.fillna(0) != 0).any())
    pattern = "%Y-%m-%dT%H:%M:%S.%fZ" if has_fraction else "%Y-%m-%dT%H:%M:%SZ"
    return stamps.dt.strftime(pattern).where(stamps.notna(), "").astype(object)


def _require_numeric(values: pd.Series, column: str) -> None:
    bad = ~values.str.fullmatch(r"\d+")
    if bad.any():
        raise ExportError(
            f"{column} {values[bad].iloc[0]!r} is not numeric; Zendesk ids are numbers "
            f"({int(bad.sum())} rows affected)"
        )


def _name_ids(names: set[str], base: int) -> dict[str, int]:
    ordered = sorted(n for n in names if n != "")
    return {name: base + rank for rank, name in enumerate(ordered, start=1)}


def _event_authors(events: pd.DataFrame, tickets: pd.DataFrame, agent_ids: dict[str, int]) -> np.ndarray:
    """Author user id (int) per event: requester, -1, or the assignee at that moment."""
    requester = events["ticket_id"].map(dict(zip(tickets["ticket_id"], tickets["requester_id"])))
    current = events["value"].where(events["kind"] == "assignee")
    current = current.groupby(events["ticket_id"]).ffill()
    final = events["ticket_id"].map(dict(zip(tickets["ticket_id"], tickets["assignee"]))).replace("", np.nan)
    agent = current.fillna(final).fillna(FALLBACK_AGENT_NAME).map(agent_ids)
    author = np.select(
        [events["actor"] == "system", events["actor"] == "customer"],
        [int(SYSTEM_USER_ID), pd.to_numeric(requester, errors="coerce").fillna(0).to_numpy()],
        default=agent.to_numpy(),
    )
    return author.astype("int64")


def _ticket_records(
    tickets: pd.DataFrame, events: pd.DataFrame, agent_ids: dict[str, int], group_ids: dict[str, int]
) -> Iterator[dict]:
    # updated_at = the ticket's last event (or creation), as Zendesk sets it.
    event_time = pd.to_datetime(events["at"], utc=True, format="ISO8601")
    last_event = event_time.groupby(events["ticket_id"]).max()
    created = pd.to_datetime(tickets["created_at"], utc=True, format="ISO8601")
    last = tickets["ticket_id"].map(last_event)
    newer = (last > created).to_numpy()
    updated = np.where(newer, _iso_z(last).to_numpy(), tickets["created_at"].to_numpy())
    for row, updated_at in zip(tickets.itertuples(index=False), updated):
        yield {
            "id": int(row.ticket_id),
            "created_at": row.created_at,
            "updated_at": updated_at,
            "status": row.status,
            "priority": row.priority or None,
            "via": {"channel": CHANNEL_TO_ZENDESK.get(row.channel, row.channel)},
            "requester_id": int(row.requester_id) if row.requester_id else None,
            "group_id": group_ids.get(row.group),
            "assignee_id": agent_ids.get(row.assignee),
            "subject": row.subject,
            "satisfaction_rating": {"score": row.satisfaction} if row.satisfaction else None,
        }


def _ticket_event_records(
    events: pd.DataFrame, tickets: pd.DataFrame, authors: np.ndarray,
    agent_ids: dict[str, int], group_ids: dict[str, int],
) -> Iterator[dict]:
    """One incremental ticket event (update) per run of same ticket / time / actor / author."""
    ticket = events["ticket_id"]
    new_update = (
        (ticket != ticket.shift()) | (events["at"] != events["at"].shift())
        | (events["actor"] != events["actor"].shift()) | (pd.Series(authors) != pd.Series(authors).shift())
    )
    update_no = new_update.cumsum().to_numpy()
    first_update = (update_no == pd.Series(update_no).groupby(ticket).transform("min").to_numpy())
    created = ticket.map(dict(zip(tickets["ticket_id"], tickets["created_at"])))
    event_type = np.where(first_update & (events["at"] == created).to_numpy(), "Create", "Change")
    is_field = events["kind"].isin(contract.FIELD_CHANGE_KINDS)
    previous = events["value"].where(is_field).groupby([ticket, events["kind"]]).shift()
    out_value = _zendesk_values(events["kind"], events["value"], agent_ids, group_ids)
    out_previous = _zendesk_values(events["kind"], previous.fillna(""), agent_ids, group_ids)
    stamps = pd.to_datetime(events["at"], utc=True, format="ISO8601")
    epoch = ((stamps - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy()

    current: dict | None = None
    columns = zip(
        update_no, ticket, events["at"], events["actor"], events["kind"], events["body"],
        authors, event_type, out_value, out_previous, epoch,
    )
    for index, (no, tid, at, actor, kind, body, author, etype, value, prev, ts) in enumerate(columns):
        if current is None or current["id"] != AUDIT_ID_BASE + int(no):
            if current is not None:
                yield current
            via = "Rule" if actor == "system" else "Web form"
            current = {
                "id": AUDIT_ID_BASE + int(no), "ticket_id": int(tid), "timestamp": int(ts),
                "created_at": at, "updater_id": int(author), "via": via,
                "event_type": "Audit", "child_events": [],
            }
        child_id = CHILD_ID_BASE + index
        if kind in ("message", "note"):
            child = {
                "id": child_id, "via": current["via"], "via_reference_id": None,
                "type": "Comment", "author_id": int(author), "body": body,
                "public": kind == "message", "attachments": [], "audit_id": current["id"],
                "created_at": at, "event_type": "Comment",
            }
        else:
            child = {
                "id": child_id, "via": current["via"], "via_reference_id": None,
                KIND_FIELDS[kind]: value, "event_type": etype,
            }
            if etype == "Change":
                child["previous_value"] = prev
        current["child_events"].append(child)
    if current is not None:
        yield current


def _zendesk_values(
    kind: pd.Series, value: pd.Series, agent_ids: dict[str, int], group_ids: dict[str, int]
) -> list:
    """Contract values as Zendesk sends them: numeric ids for group/assignee, None when empty."""
    lookup = {"group": group_ids, "assignee": agent_ids}
    return [
        None if v == "" else lookup[k].get(v) if k in lookup else v
        for k, v in zip(kind.tolist(), value.tolist())
    ]


def _users_page(tickets: pd.DataFrame, agent_ids: dict[str, int]) -> dict:
    requesters = sorted({int(r) for r in tickets["requester_id"] if r})
    users = [{"id": r, "role": "end-user", "name": f"requester_{r}"} for r in requesters]
    users += [{"id": i, "role": "agent", "name": name} for name, i in sorted(agent_ids.items(), key=lambda kv: kv[1])]
    return {"users": users, "end_of_stream": True, "after_cursor": None}


def _ratings_page(tickets: pd.DataFrame) -> dict:
    timed = tickets[(tickets["satisfaction"] != "") & (tickets["satisfaction_at"] != "")]
    ratings = [
        {
            "id": RATING_ID_BASE + rank, "ticket_id": int(tid), "score": score,
            "created_at": at, "updated_at": at,
            "requester_id": int(req) if req else None,
        }
        for rank, (tid, score, at, req) in enumerate(
            zip(timed["ticket_id"], timed["satisfaction"], timed["satisfaction_at"], timed["requester_id"]),
            start=1,
        )
    ]
    return {"satisfaction_ratings": ratings, "next_page": None, "count": len(ratings)}


def _write_lines(path: Path, records: Iterator[dict]) -> None:
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")


def _write_document(path: Path, document: dict) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(document, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


# ============================================================ update_many payload

def build_update_many_payload(
    scored: pd.DataFrame,
    risk_field_id: int,
    model_version: str,
    tag_prefix: str = "csat_",
    risk_bands: dict[str, int] | None = None,
    batch_size: int = UPDATE_MANY_MAX_TICKETS,
) -> list[dict]:
    """Turn scored tickets into ``update_many`` request bodies, at most ``batch_size`` tickets each.

    ``scored`` needs ``ticket_id`` (numeric text), ``risk`` (int 0-100) and ``tier``
    (P1..P4); rows go out in ``rank`` order when that column exists (riskiest first).
    Each ticket gets ``custom_fields`` = [{id: risk_field_id, value: risk}], its risk
    band tag (``{prefix}risk_<band>``; default bands high >= 60, medium >= 30, low
    below) and tier tag (``{prefix}p1``..) in ``additional_tags``, the other band and
    tier tags in ``remove_tags``, and ``metadata`` = {"csat_triage": {"model_version"}}
    which Zendesk stores on the update's audit as ``metadata.custom``.
    """
    if not 1 <= batch_size <= UPDATE_MANY_MAX_TICKETS:
        raise ExportError(f"batch_size must be 1..{UPDATE_MANY_MAX_TICKETS} (Zendesk update_many limit)")
    missing = [c for c in ("ticket_id", "risk", "tier") if c not in scored.columns]
    if missing:
        raise ExportError(f"scored table lacks column {missing[0]!r}; pass the scoring stage's output")
    bands = dict(DEFAULT_RISK_BANDS if risk_bands is None else risk_bands)
    if not bands:
        raise ExportError("risk_bands is empty; give at least one band name and minimum risk")

    frame = scored.sort_values("rank", kind="stable") if "rank" in scored.columns else scored
    ticket_id = frame["ticket_id"].astype(str).str.strip()
    _check_ticket_ids(ticket_id)
    _check_model_version(frame, model_version)
    risk = pd.to_numeric(frame["risk"], errors="coerce")
    if risk.isna().any() or ((risk < 0) | (risk > 100)).any():
        raise ExportError("risk must be a number 0-100 for every scored ticket")
    tier = frame["tier"].astype(str).str.strip().str.upper()
    if not tier.isin(TIERS).all():
        raise ExportError(f"unknown tier {tier[~tier.isin(TIERS)].iloc[0]!r}; expected one of {', '.join(TIERS)}")

    band = _risk_band(risk.to_numpy(), bands)
    tag_sets = _tag_sets(tag_prefix, list(bands), band, tier.to_numpy())
    metadata = {"csat_triage": {"model_version": model_version}}
    tickets = [
        {
            "id": int(tid),
            "custom_fields": [{"id": int(risk_field_id), "value": int(round(r))}],
            "additional_tags": tag_sets[(b, t)][0],
            "remove_tags": tag_sets[(b, t)][1],
            "metadata": metadata,
        }
        for tid, r, b, t in zip(ticket_id, risk.to_numpy(), band, tier.to_numpy())
    ]
    return [{"tickets": tickets[i:i + batch_size]} for i in range(0, len(tickets), batch_size)]


def _check_ticket_ids(ticket_id: pd.Series) -> None:
    bad = ~ticket_id.str.fullmatch(r"\d+")
    if bad.any():
        raise ExportError(
            f"Zendesk needs numeric ticket ids; {int(bad.sum())} scored tickets have others "
            f"(first: {ticket_id[bad].iloc[0]!r}); push only tickets imported from Zendesk"
        )
    duplicated = ticket_id.duplicated()
    if duplicated.any():
        raise ExportError(f"ticket {ticket_id[duplicated].iloc[0]} is scored twice; one update per ticket")


def _check_model_version(frame: pd.DataFrame, model_version: str) -> None:
    if "model_version" not in frame.columns:
        return
    other = frame["model_version"].astype(str).unique()
    other = [v for v in other if v not in (model_version, "", "nan")]
    if other:
        raise ExportError(f"scores come from model {other[0]!r}, not {model_version!r}; rescore or pass the right version")


def _risk_band(risk: np.ndarray, bands: dict[str, int]) -> np.ndarray:
    """Band name per risk: the band with the highest minimum <= risk (lowest band below all)."""
    ordered = sorted(bands.items(), key=lambda kv: kv[1], reverse=True)
    conditions = [risk >= minimum for _, minimum in ordered]
    return np.select(conditions, [name for name, _ in ordered], default=ordered[-1][0])


def _tag_sets(prefix: str, band_names: list[str], band: np.ndarray, tier: np.ndarray) -> dict:
    """(band, tier) -> (tags to add, tags to remove); a handful of combinations, built once."""
    band_tags = {b: f"{prefix}risk_{b}" for b in band_names}
    tier_tags = {t: f"{prefix}{t.lower()}" for t in TIERS}
    sets = {}
    for b, t in set(zip(band.tolist(), tier.tolist())):
        add = [band_tags[b], tier_tags[t]]
        remove = [tag for tag in (*band_tags.values(), *tier_tags.values()) if tag not in add]
        sets[(b, t)] = (add, remove)
    return sets


def write_update_many_payload(
    batches: list[dict], path: str | os.PathLike, created_from: str = ""
) -> Path:
    """Write batches as one JSON document, atomically.

    Format: ``{"format": "csat-triage.zendesk-update-many.v1", "model_version",
    "created_from", "ticket_count", "batch_count", "batches": [<update_many body>...]}``.
    ``model_version`` is read from the batches' metadata; ``created_from`` names the
    scores file the batches came from.
    """
    versions = {
        t.get("metadata", {}).get("csat_triage", {}).get("model_version")
        for b in batches for t in b.get("tickets", [])
    }
    versions.discard(None)
    document = {
        "format": PAYLOAD_FORMAT,
        "model_version": sorted(versions)[0] if len(versions) == 1 else sorted(versions),
        "created_from": str(created_from),
        "ticket_count": sum(len(b.get("tickets", [])) for b in batches),
        "batch_count": len(batches),
        "batches": batches,
    }
    return write_json(document, path)


# ====================================================================== pushing

@dataclass
class PushSummary:
    """Outcome of a push: counts of batches and tickets, retries, and per-ticket failures."""

    payload_path: str
    state_path: str
    batches_total: int
    batches_sent: int = 0
    batches_skipped: int = 0
    tickets_sent: int = 0
    ticket_errors: int = 0
    failed_ticket_ids: list[int] = field(default_factory=list)
    jobs_resumed: int = 0
    retries: int = 0
    rate_limited: int = 0
    dry_run: bool = False


def push_update_many(
    payload_path: str | os.PathLike,
    subdomain: str,
    base_url: str | None = None,
    dry_run: bool = False,
    max_retries: int = 5,
    poll_interval_s: float = 1.0,
    state_path: str | os.PathLike | None = None,
    sleep: Callable[[float], None] = time.sleep,
    echo: Callable[[str], None] = print,
) -> PushSummary:
    """Send each payload batch with ``PUT /api/v2/tickets/update_many.json`` and wait for its job.

    Credentials come only from ``ZENDESK_EMAIL`` and ``ZENDESK_API_TOKEN`` (API-token
    Basic auth) and are never printed. 429 answers wait ``Retry-After`` seconds; 5xx,
    409 and dropped connections back off 1, 2, 4 ... s (max 60); each request is tried
    at most ``max_retries`` + 1 times. Progress goes to a state file beside the
    payload (``<payload>.push-state.json``: payload hash, finished batches, submitted
    job ids), so a re-run skips finished batches and re-polls a submitted job rather
    than sending it again. ``dry_run`` prints what would change and makes no call.
    """
    payload_path = Path(payload_path)
    batches = _load_payload(payload_path)
    state_path = Path(state_path) if state_path else payload_path.with_name(payload_path.name + ".push-state.json")
    summary = PushSummary(str(payload_path), str(state_path), batches_total=len(batches), dry_run=dry_run)
    if dry_run:
        _echo_dry_run(batches, echo)
        return summary

    client = _ZendeskClient(_base_url(subdomain, base_url), _auth_header(), max_retries, sleep, echo)
    state = _load_state(state_path, _payload_hash(batches), echo)
    for number, batch in enumerate(batches):
        label = f"batch {number + 1}/{len(batches)}"
        if str(number) in state["completed"]:
            summary.batches_skipped += 1
            continue
        job = _submitted_job(client, state, number, label, echo)
        if job is not None:
            summary.jobs_resumed += 1
        else:
            answer = client.request("PUT", "/api/v2/tickets/update_many.json", batch, label)
            job = answer.get("job_status") if isinstance(answer.get("job_status"), dict) else {}
            state["submitted"][str(number)] = _job_id(job)
            write_json(state, state_path)
            summary.tickets_sent += len(batch["tickets"])
            summary.batches_sent += 1
        job_id = _job_id(job)
        job = _wait_for_job(client, job, poll_interval_s, sleep, label)
        state["submitted"].pop(str(number), None)
        if _text(job.get("status")).lower() in JOB_FAILED:
            write_json(state, state_path)  # forget the dead job: a re-run sends this batch again
            message = " ".join(_text(job.get("message")).split())[:200]
            raise ExportError(f"{label}: Zendesk job {job_id} {job.get('status')} ({message}); "
                              "check the payload, then re-run the push")
        failed = _failed_ticket_ids(job)
        summary.ticket_errors += len(failed)
        summary.failed_ticket_ids.extend(failed[: max(0, 20 - len(summary.failed_ticket_ids))])
        state["completed"][str(number)] = {"job_id": job_id, "ticket_errors": len(failed)}
        write_json(state, state_path)
        echo(f"{label}: {len(batch['tickets'])} tickets, job {job.get('status')}, {len(failed)} ticket errors")
    summary.retries, summary.rate_limited = client.retries, client.rate_limited
    return summary


def _load_payload(path: Path) -> list[dict]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ExportError(f"{path}: payload not found; build it with the scoring stage first") from None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ExportError(f"{path}: not a readable JSON payload ({type(exc).__name__})") from None
    batches = document.get("batches") if isinstance(document, dict) else None
    if not isinstance(batches, list) or not all(
        isinstance(b, dict) and isinstance(b.get("tickets"), list)
        and 0 < len(b["tickets"]) <= UPDATE_MANY_MAX_TICKETS
        and all(isinstance(t, dict) and isinstance(t.get("id"), int) for t in b["tickets"])
        for b in batches
    ):
        raise ExportError(
            f"{path}: expected {{\"batches\": [{{\"tickets\": [{{\"id\": <int>, ...}}]}}]}} "
            f"with 1-{UPDATE_MANY_MAX_TICKETS} tickets per batch; rebuild the payload"
        )
    return batches


def _payload_hash(batches: list[dict]) -> str:
    canonical = json.dumps(batches, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _echo_dry_run(batches: list[dict], echo: Callable[[str], None]) -> None:
    totals: Counter[str] = Counter()
    for number, batch in enumerate(batches, start=1):
        counts: Counter[str] = Counter()
        for ticket in batch["tickets"]:
            counts.update(f"+{tag}" for tag in ticket.get("additional_tags", []))
        totals.update(counts)
        fields = Counter(f["id"] for t in batch["tickets"] for f in t.get("custom_fields", []))
        field_text = ", ".join(f"field {fid} on {n}" for fid, n in sorted(fields.items()))
        tag_text = ", ".join(f"{tag} {n}" for tag, n in sorted(counts.items()))
        echo(f"batch {number}/{len(batches)}: {len(batch['tickets'])} tickets; {tag_text}; {field_text}")
    tickets = sum(len(b["tickets"]) for b in batches)
    tag_text = ", ".join(f"{tag} {n}" for tag, n in sorted(totals.items()))
    echo(f"dry run: would update {tickets} tickets in {len(batches)} batches; {tag_text}; "
         "each also loses its other csat band/tier tags; nothing was sent")


def _base_url(subdomain: str, base_url: str | None) -> str:
    if base_url is None:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]*", subdomain or ""):
            raise ExportError(f"subdomain {subdomain!r} is not a Zendesk subdomain (the NAME in NAME.zendesk.com)")
        return f"https://{subdomain}.zendesk.com"
    parsed = urllib.parse.urlsplit(base_url)
    if parsed.scheme != "https" and not (parsed.scheme == "http" and _is_loopback(parsed.hostname)):
        # The API token travels in every request: never over plain HTTP off this machine.
        raise ExportError(f"base URL must use https (plain http only for 127.0.0.1/localhost): {base_url}")
    return base_url.rstrip("/")


def _is_loopback(host: str | None) -> bool:
    return host in ("127.0.0.1", "localhost", "::1")


def _auth_header() -> str:
    """``Basic base64({email}/token:{token})`` from the environment; the value is never shown."""
    email_address = os.environ.get(ENV_EMAIL, "")
    token = os.environ.get(ENV_TOKEN, "")
    missing = [name for name, value in ((ENV_EMAIL, email_address), (ENV_TOKEN, token)) if not value]
    if missing:
        raise ExportError(
            f"set {' and '.join(missing)} in the environment (Zendesk API token auth); "
            "credentials are never read from files"
        )
    credentials = f"{email_address}/token:{token}".encode("utf-8")
    return "Basic " + base64.b64encode(credentials).decode("ascii")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Refuse redirects: urllib would replay the Authorization header to the new host."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D401 - urllib API
        return None


class _ZendeskClient:
    """JSON over HTTPS with bounded retries; counts retries and 429s for the summary."""

    def __init__(
        self, base_url: str, auth: str, max_retries: int,
        sleep: Callable[[float], None], echo: Callable[[str], None],
    ) -> None:
        self._base_url = base_url
        self._auth = auth
        self._max_retries = max(0, int(max_retries))
        self._sleep = sleep
        self._echo = echo
        handlers: list[urllib.request.BaseHandler] = [_NoRedirect()]
        if _is_loopback(urllib.parse.urlsplit(base_url).hostname):
            handlers.append(urllib.request.ProxyHandler({}))  # a proxy must not see loopback traffic
        self._opener = urllib.request.build_opener(*handlers)
        self.retries = 0
        self.rate_limited = 0

    def request(self, method: str, path: str, body: Any, label: str, allow_missing: bool = False) -> dict | None:
        """Send one request, retrying 429 / 409 / 5xx / dropped connections; return the JSON body.

        Returns None for 404 when ``allow_missing``; any other 4xx is a one-line error.
        """
        data = None if body is None else json.dumps(body).encode("utf-8")
        last_problem = ""
        for attempt in range(self._max_retries + 1):
            status, retry_after, payload = self._send(method, path, data)
            if status is not None and 200 <= status < 300:
                return _json_body(payload, label)
            if status == 404 and allow_missing:
                return None
            if status is None:
                last_problem = payload.decode("utf-8", "replace")
                delay = _backoff(attempt)
            elif status == 429:
                self.rate_limited += 1
                last_problem = "HTTP 429 rate limited"
                delay = retry_after if retry_after is not None else _backoff(attempt)
            elif status >= 500 or status == 409:
                last_problem = f"HTTP {status}"
                delay = _backoff(attempt)
            else:
                raise ExportError(_client_error(status, label))
            if attempt == self._max_retries:
                break
            self.retries += 1
            self._echo(f"{label}: {last_problem}; retry {attempt + 1}/{self._max_retries} in {delay:g}s")
            self._sleep(delay)
        raise ExportError(
            f"{label}: gave up after {self._max_retries + 1} attempts ({last_problem}); "
            "re-run the push later: finished batches are skipped"
        )

    def _send(self, method: str, path: str, data: bytes | None) -> tuple[int | None, float | None, bytes]:
        """(status, Retry-After seconds, body); status None and a short reason when the connection failed."""
        request = urllib.request.Request(self._base_url + path, data=data, method=method)
        request.add_header("Authorization", self._auth)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with self._opener.open(request, timeout=HTTP_TIMEOUT_SECONDS) as response:
                return response.status, None, response.read()
        except urllib.error.HTTPError as exc:
            try:
                body = exc.read()
            finally:
                exc.close()
            return exc.code, _retry_after_seconds(exc.headers.get("Retry-After") if exc.headers else None), body
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            reason = getattr(exc, "reason", None) or exc
            return None, None, f"connection failed ({type(reason).__name__})".encode()


def _json_body(payload: bytes, label: str) -> dict:
    try:
        document = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ExportError(f"{label}: Zendesk answered with something that is not JSON") from None
    if not isinstance(document, dict):
        raise ExportError(f"{label}: unexpected answer from Zendesk (not a JSON object)")
    return document


def _client_error(status: int, label: str) -> str:
    if status in (401, 403):
        return (f"{label}: Zendesk refused the credentials (HTTP {status}); check {ENV_EMAIL}, "
                f"{ENV_TOKEN} and that the user may edit tickets")
    if status == 422:
        return f"{label}: Zendesk rejected the update (HTTP 422); check the risk field id and tags"
    return f"{label}: Zendesk answered HTTP {status}; check the subdomain and payload"


def _backoff(attempt: int) -> float:
    return min(2.0 ** attempt, MAX_BACKOFF_SECONDS)


def _retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds (Zendesk sends seconds; an HTTP date is accepted too)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = (when - datetime.now(timezone.utc)).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def _job_id(job: Any) -> str:
    job_id = _text(job.get("id")) if isinstance(job, dict) else ""
    if not re.fullmatch(r"[A-Za-z0-9_-]+", job_id):
        raise ExportError("Zendesk did not return a job status id for the update; re-run the push")
    return job_id


def _submitted_job(
    client: _ZendeskClient, state: dict, number: int, label: str, echo: Callable[[str], None]
) -> dict | None:
    """The job of a batch sent before an interruption, or None when it must be sent (again)."""
    job_id = state["submitted"].get(str(number))
    if not job_id:
        return None
    answer = client.request("GET", f"/api/v2/job_statuses/{job_id}.json", None, label, allow_missing=True)
    if answer is None or not isinstance(answer.get("job_status"), dict):
        echo(f"{label}: earlier job {job_id} is gone; sending the batch again")
        return None
    echo(f"{label}: resuming earlier job {job_id} instead of sending again")
    return answer["job_status"]


def _wait_for_job(
    client: _ZendeskClient, job: dict, poll_interval_s: float, sleep: Callable[[float], None], label: str
) -> dict:
    """Poll ``job_statuses/{id}`` every ``poll_interval_s`` seconds until completed / failed / killed.

    Bounded by ``MAX_JOB_POLLS``; returns the last job status object.
    """
    job_id = _job_id(job)
    for _ in range(MAX_JOB_POLLS):
        if _text(job.get("status")).lower() in (JOB_DONE, *JOB_FAILED):
            return job
        sleep(poll_interval_s)
        answer = client.request("GET", f"/api/v2/job_statuses/{job_id}.json", None, label)
        job = answer.get("job_status") if isinstance(answer.get("job_status"), dict) else {}
    raise ExportError(f"{label}: job {job_id} not finished after {MAX_JOB_POLLS} polls; re-run the push later")


def _failed_ticket_ids(job: dict) -> list[int]:
    """Ticket ids the finished job reports as not updated (e.g. closed tickets)."""
    results = job.get("results")
    if not isinstance(results, list):
        return []
    return [
        r.get("id") for r in results
        if isinstance(r, dict) and (r.get("success") is False or "error" in r or "errors" in r)
    ]


def _load_state(path: Path, payload_hash: str, echo: Callable[[str], None]) -> dict:
    fresh = {"payload_sha256": payload_hash, "completed": {}, "submitted": {}}
    if not path.is_file():
        return fresh
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        echo(f"{path.name}: unreadable push state, starting from the first batch")
        return fresh
    if not isinstance(state, dict) or state.get("payload_sha256") != payload_hash:
        echo(f"{path.name}: state belongs to another payload, starting from the first batch")
        return fresh
    state.setdefault("completed", {})
    state.setdefault("submitted", {})
    done = len(state["completed"])
    if done:
        echo(f"resuming: {done} batches already done")
    return state
