"""Zendesk API dumps -> the export contract (tickets + events).

A directory of incremental-export responses (tickets, ticket_events or audits, users,
satisfaction_ratings, and optionally ticket_fields and ticket_forms) becomes the two
contract tables; every record that cannot be used is counted, never silently dropped.
The JSON shapes are described in :mod:`pipeline.sources.zendesk_shapes`; ticket
attributes (custom fields, form, brand, organization, tags) in
:mod:`pipeline.sources.zendesk_fields`.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.core import contract
from pipeline.core.errors import ExportError
from pipeline.core.io import write_export
from pipeline.core.params import ZendeskParams
from pipeline.sources import zendesk_fields
from pipeline.sources.zendesk_shapes import (
    AGENT_ROLES,
    CHANNEL_FROM_ZENDESK,
    CUSTOMER_ROLES,
    ENDPOINT_AUDITS,
    ENDPOINT_RATINGS,
    ENDPOINT_TICKET_EVENTS,
    ENDPOINT_TICKETS,
    ENDPOINT_USERS,
    FIELD_KINDS,
    JSON_SUFFIXES,
    SYSTEM_USER_ID,
    SYSTEM_VIA,
)


@dataclass(frozen=True)
class ImportSummary:
    """What an import read, kept and left out; every count is a number of records.

    ``unknown_author_events`` counts events whose author is not in the users file,
    by the rule that decided their actor: ``requester`` (the ticket's requester ->
    customer), ``assignee`` (someone who is an assignee somewhere -> agent),
    ``note`` (internal notes are agent-only -> agent) and ``fallback`` (-> agent).

    Attributes (kind ``field``): ``attribute_events`` in all, named ``attributes``; of
    them ``attribute_values_before_first_change`` (a first Change's previous value, at
    the ticket's creation) and ``attribute_values_from_ticket_rows`` (form, brand,
    organization with no event). Left out: ``empty_attributes_at_creation`` (Create
    children without a value), ``skipped_field_values`` (free-text and card fields),
    ``own_output_values_skipped`` (this project's risk field and tags) and
    ``rare_tags_left_out`` (distinct tags on too few tickets, or beyond the most frequent).
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
    attribute_events: int = 0
    attributes: tuple[str, ...] = ()
    attribute_values_before_first_change: int = 0
    attribute_values_from_ticket_rows: int = 0
    empty_attributes_at_creation: int = 0
    skipped_field_values: int = 0
    own_output_values_skipped: int = 0
    rare_tags_left_out: int = 0

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
        out.append(
            f"attributes: {self.attribute_events} events for {len(self.attributes)} attributes "
            f"({self.attribute_values_before_first_change} from a first change's previous value, "
            f"{self.attribute_values_from_ticket_rows} from ticket rows; left out: "
            f"{self.skipped_field_values} free-text or card values, {self.own_output_values_skipped} "
            f"of this project's own risk field and tags, {self.rare_tags_left_out} rare tags)"
        )
        if self.attributes:
            out.append("attribute names: " + ", ".join(self.attributes))
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


def read_zendesk_export(
    src: str | os.PathLike, own: ZendeskParams | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read a Zendesk API dump into contract tables ``(tickets, events)``.

    Every value is text (``""`` when absent), like a CSV export read as strings:
    timestamps are Zendesk's ISO-8601 text (``...Z``), group and assignee are Zendesk
    ids. ``tickets`` has one row per live ticket (latest record wins, deleted ones
    left out); ``events`` is ordered by ticket, then ``at``, ties in source order.
    ``own`` names this project's write-back field and tags (never read back as
    attributes); default: the ``zendesk`` params defaults.
    """
    tickets, events, _ = _read_export(Path(src), own or ZendeskParams())
    return tickets, events


def import_zendesk(
    src: str | os.PathLike, out_dir: str | os.PathLike, fmt: str = "csv", own: ZendeskParams | None = None
) -> ImportSummary:
    """Read a Zendesk dump and write it as a contract export (``tickets.<fmt>``, ``events.<fmt>``)."""
    tickets, events, stats = _read_export(Path(src), own or ZendeskParams())
    write_export(out_dir, tickets, events, fmt)
    return ImportSummary(out_dir=str(out_dir), tickets=len(tickets), events=len(events), **stats)


def _read_export(src: Path, own: ZendeskParams) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
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
    names = zendesk_fields.read_names(src, _iter_records, own)
    raw_events, attribute_stats = zendesk_fields.attribute_events(raw_events, tickets, names, own)
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
        **attribute_stats,
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
            # Creation-time attributes, used only for tickets with no event of them.
            **{f"_{attribute}": [zendesk_fields.value_text(r.get(name)) for r in records]
               for name, attribute in zendesk_fields.SYSTEM_ATTRIBUTES.items()},
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
    attribute_key: list[str] = field(default_factory=list)
    previous: list[str | None] = field(default_factory=list)
    created: list[bool] = field(default_factory=list)
    tags_full: list[list[str] | None] = field(default_factory=list)
    tags_previous: list[list[str] | None] = field(default_factory=list)
    tags_added: list[list[str] | None] = field(default_factory=list)
    tags_removed: list[list[str] | None] = field(default_factory=list)
    comments_without_body: int = 0
    empty_changes: int = 0

    def add(self, parent: dict, child: dict, kind: str, value: str, body: str, key: str,
            attribute: zendesk_fields.ChildAttribute | None = None, created: bool = False) -> None:
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
        self.created.append(created)
        self.attribute_key.append(attribute.key if attribute else "")
        self.previous.append(attribute.previous if attribute else None)
        full, previous, added, removed = attribute.tags if attribute and attribute.tags else _NO_TAGS
        self.tags_full.append(full)
        self.tags_previous.append(previous)
        self.tags_added.append(added)
        self.tags_removed.append(removed)


_NO_TAGS = (None, None, None, None)


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
            "field": cols.attribute_key, "previous": cols.previous, "created": cols.created,
            **{name: getattr(cols, name) for name in zendesk_fields.TAG_COLUMNS},
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
            cols.add(parent, child, FIELD_KINDS[name], value, "", f"{key}:{name}" if key else "")
        created = event_type == "Create"
        for attribute in zendesk_fields.child_attributes(child):
            cols.add(parent, child, contract.FIELD_EVENT, attribute.value, "",
                     f"{key}:{attribute.key}" if key else "", attribute, created)


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
    role = author.map(users).astype(object)  # float NaN when no users file names anyone
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
            "field": raw["field"].to_numpy(),
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
