"""The export contract -> Zendesk-shaped API dumps (``simulate --format zendesk``).

The inverse of :mod:`pipeline.sources.zendesk_read`: reading what this writes gives
back the same tables, which is how the reader is tested on realistic volumes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.core import contract
from pipeline.core.errors import ExportError
from pipeline.core.io import atomic_path
from pipeline.sources import zendesk_fields
from pipeline.sources.zendesk_read import _contract_order
from pipeline.sources.zendesk_shapes import (
    AGENT_ID_BASE,
    AUDIT_ID_BASE,
    CHANNEL_TO_ZENDESK,
    CHILD_ID_BASE,
    FALLBACK_AGENT_NAME,
    FIELD_ID_BASE,
    GROUP_ID_BASE,
    KIND_FIELDS,
    RATING_ID_BASE,
    SYSTEM_USER_ID,
    TIMESTAMP_COLUMNS,
)


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
    field_ids = zendesk_fields.field_ids(events.loc[events["kind"] == contract.FIELD_EVENT, "field"], FIELD_ID_BASE)
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_lines(out_dir / "tickets.jsonl", _ticket_records(tickets, events, agent_ids, group_ids))
    _write_lines(out_dir / "ticket_events.jsonl",
                 _ticket_event_records(events, tickets, authors, agent_ids, group_ids, field_ids))
    _write_document(out_dir / "ticket_fields.json", zendesk_fields.ticket_fields_page(field_ids))
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
    agent_ids: dict[str, int], group_ids: dict[str, int], field_ids: dict[str, int],
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
    is_field = events["kind"].isin((*contract.FIELD_CHANGE_KINDS, contract.FIELD_EVENT))
    previous = events["value"].where(is_field).groupby([ticket, events["kind"], events["field"]]).shift()
    out_value = _zendesk_values(events["kind"], events["value"], agent_ids, group_ids)
    out_previous = _zendesk_values(events["kind"], previous.fillna(""), agent_ids, group_ids)
    stamps = pd.to_datetime(events["at"], utc=True, format="ISO8601")
    epoch = ((stamps - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy()

    current: dict | None = None
    columns = zip(
        update_no, ticket, events["at"], events["actor"], events["kind"], events["body"],
        authors, event_type, out_value, out_previous, epoch, events["field"],
    )
    for index, (no, tid, at, actor, kind, body, author, etype, value, prev, ts, name) in enumerate(columns):
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
            values = (zendesk_fields.attribute_child(name, value or "", field_ids) if kind == contract.FIELD_EVENT
                      else {KIND_FIELDS[kind]: value})
            child = {"id": child_id, "via": current["via"], "via_reference_id": None, **values, "event_type": etype}
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
