"""Plain reference implementation of the point-in-time features, one ticket at a time.

This module owns the *obviously correct* version of :func:`features.build.build_features`:
for every (ticket, as-of) query it walks that ticket's events in order with ordinary
Python loops and applies the written definitions literally. It exists so property
tests can check the vectorised implementation against it, and so benchmarks can
measure the speed-up. It is deliberately slow; never use it on a hot path.

It is written from the definitions, not from ``features/``: it does not reuse the
timeline, the history search or the business clock of the fast implementation. The
only shared pieces are :class:`features.calendar.BusinessHours` (a plain dataclass of
opening hours), :func:`features.text.text_signals` (per-text signals; the reference's
job there is to pick the right messages) and the column names ``FEATURE_NAMES`` /
``OPENING_TEXT``.

Conventions (the same definitions the fast version documents):
- timestamps are compared at one-second resolution: every timestamp is floored to
  whole seconds since 1970 (UTC) before anything else;
- a ticket's events are ordered by ``at`` (floored), ties in file order;
- only events with ``at <= as_of`` count;
- public messages are kind ``message`` by ``customer`` or ``agent`` (system messages
  are neither);
- business minutes between two moments are measured on the business-hours time
  zone's wall clock, day by day (holidays are not modelled).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from features.build import CATEGORICAL_FEATURES, CROSS_TICKET_FEATURES, FEATURE_NAMES, OPENING_TEXT
from features.calendar import BusinessHours
from features.text import TEXT_SIGNAL_COLUMNS, text_signals
from pipeline.core.params import TeamRecordParams

DONE = ("solved", "closed")
NONE_LEVEL = "(none)"
KEY_COLUMNS = ("ticket_id", "as_of")


# --------------------------------------------------------------------------- time


def epoch_seconds(stamp) -> int | None:
    """A timestamp as whole seconds since 1970-01-01 UTC, floored; ``None`` for NaT/None.

    Naive timestamps are taken as UTC.
    """
    if stamp is None or pd.isna(stamp):
        return None
    stamp = pd.Timestamp(stamp)
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return stamp.value // 1_000_000_000  # Python's // floors, also before 1970


def local_datetime(seconds: int, timezone: str) -> datetime:
    """Naive wall-clock datetime of ``seconds`` (epoch, UTC) in ``timezone``."""
    return datetime.fromtimestamp(seconds, ZoneInfo(timezone)).replace(tzinfo=None)


def business_minutes_between(start_s: int, end_s: int, hours: BusinessHours) -> float:
    """Business minutes from ``start_s`` to ``end_s`` (epoch seconds); negative if end < start.

    Walks the local calendar days from the start's day to the end's day and adds,
    for each business weekday, the overlap of [start, end] with that day's opening
    hours [start_hour, end_hour) on the local wall clock.
    """
    if end_s < start_s:
        return -business_minutes_between(end_s, start_s, hours)
    start = local_datetime(start_s, hours.timezone)
    end = local_datetime(end_s, hours.timezone)
    total_minutes = 0.0
    day: date = start.date()
    while day <= end.date():
        if day.weekday() in hours.weekdays:
            midnight = datetime.combine(day, time())
            opens = midnight + timedelta(hours=hours.start_hour)
            closes = midnight + timedelta(hours=hours.end_hour)
            overlap_seconds = (min(end, closes) - max(start, opens)).total_seconds()
            if overlap_seconds > 0:
                total_minutes += overlap_seconds / 60.0
        day += timedelta(days=1)
    return total_minutes


# --------------------------------------------------------------------- conversation


@dataclass
class Event:
    """One event of a ticket, with its time floored to seconds and its file position."""

    at_s: int
    position: int
    actor: str
    kind: str
    value: str | None
    body: str
    field: str = ""  # attribute name of a `field` event (as written in the export)


@dataclass
class Walk:
    """A ticket's state while walking its events (everything the features need)."""

    customer_messages: int = 0
    agent_replies: int = 0
    ping_pong_count: int = 0
    last_speaker: str | None = None  # "customer" / "agent" of the latest public message
    run_start_s: int | None = None  # first customer message of the current customer run
    first_agent_reply_s: int | None = None
    last_agent_reply_s: int | None = None
    status: str = "new"
    reopens: int = 0
    times_solved: int = 0
    group: str | None = None
    group_hops: int = 0
    assignee: str | None = None
    assignee_hops: int = 0
    priority: str | None = None
    notes: int = 0
    wait_minutes: float = 0.0
    wait_business_minutes: float = 0.0
    customer_bodies: list[str] = field(default_factory=list)

    @property
    def waiting(self) -> bool:
        """The customer spoke last (publicly) and the ticket is not solved/closed."""
        return self.last_speaker == "customer" and self.status not in DONE


def apply_event(walk: Walk, event: Event) -> None:
    """Update ``walk`` with one event (the state *after* the event)."""
    if event.kind == "message" and event.actor in ("customer", "agent"):
        if walk.last_speaker is not None and walk.last_speaker != event.actor:
            walk.ping_pong_count += 1
        if event.actor == "customer":
            walk.customer_messages += 1
            walk.customer_bodies.append(event.body)
            if walk.last_speaker != "customer":
                walk.run_start_s = event.at_s
        else:
            walk.agent_replies += 1
            if walk.first_agent_reply_s is None:
                walk.first_agent_reply_s = event.at_s
            walk.last_agent_reply_s = event.at_s
        walk.last_speaker = event.actor
    elif event.kind == "note":
        walk.notes += 1
    elif event.kind == "status":
        was_done = walk.status in DONE
        walk.status = event.value
        is_done = walk.status in DONE
        walk.reopens += was_done and not is_done
        walk.times_solved += is_done and not was_done
    elif event.kind == "group":
        walk.group_hops += walk.group is not None and event.value != walk.group
        walk.group = event.value
    elif event.kind == "assignee":
        walk.assignee_hops += walk.assignee is not None and event.value != walk.assignee
        walk.assignee = event.value
    elif event.kind == "priority":
        walk.priority = event.value


def walk_ticket(events: list[Event], as_of_s: int, hours: BusinessHours) -> Walk:
    """Walk a ticket's events (already in order) up to ``as_of_s`` and accumulate waits.

    After each event, if the customer is waiting, the time until the next counted
    event (or until as-of after the last one) is added to the wait.
    """
    counted = [e for e in events if e.at_s <= as_of_s]
    walk = Walk()
    for i, event in enumerate(counted):
        apply_event(walk, event)
        until_s = counted[i + 1].at_s if i + 1 < len(counted) else as_of_s
        if walk.waiting:
            walk.wait_minutes += (until_s - event.at_s) / 60.0
            walk.wait_business_minutes += business_minutes_between(event.at_s, until_s, hours)
    return walk


TextLookup = dict[str, dict[str, float]]


def signals_by_text(texts: list[str]) -> TextLookup:
    """:func:`features.text.text_signals` of each distinct text (and of ""), keyed by the text.

    Computed once for the whole export: one Arrow call per text would dominate the
    reference's run time and make the benchmark measure call overhead.
    """
    distinct = sorted(set(texts) | {""})
    frame = text_signals(pd.Series(distinct, dtype=object))
    return {text: {c: float(frame[c].iloc[i]) for c in TEXT_SIGNAL_COLUMNS} for i, text in enumerate(distinct)}


def text_features(customer_bodies: list[str], signals: TextLookup) -> dict[str, float]:
    """Signals of the latest customer message and totals over all customer messages so far."""
    last = signals[customer_bodies[-1] if customer_bodies else ""]  # "" has all signals 0
    totals = {c: sum(signals[body][c] for body in customer_bodies) for c in TEXT_SIGNAL_COLUMNS}
    return {
        "last_message_chars": float(last["chars"]),
        "last_message_question_marks": float(last["question_marks"]),
        "last_message_exclamations": float(last["exclamations"]),
        "last_message_shouting": float(last["shouting"]),
        "last_message_negative_words": float(last["negative_words"]),
        "last_message_urgent_words": float(last["urgent_words"]),
        "customer_text_chars": float(totals["chars"]),
        "customer_negative_words": float(totals["negative_words"]),
        "customer_urgent_words": float(totals["urgent_words"]),
        "customer_exclamations": float(totals["exclamations"]),
        "customer_shouting_messages": float(totals["shouting"]),
        "customer_writes_korean": float(totals["korean"] > 0),
    }


def conversation_features(
    events: list[Event], created_s: int, as_of_s: int, hours: BusinessHours, signals: TextLookup
) -> dict[str, object]:
    """Features that depend on the ticket's events up to ``as_of_s``; durations in minutes.

    ``signals`` must hold the text signals of every body in ``events`` (:func:`signals_by_text`).
    """
    walk = walk_ticket(events, as_of_s, hours)
    waiting_now = walk.waiting
    first_reply = walk.first_agent_reply_s
    last_reply = walk.last_agent_reply_s
    features: dict[str, object] = {
        "customer_messages": walk.customer_messages,
        "agent_replies": walk.agent_replies,
        "ping_pong_count": walk.ping_pong_count,
        "first_reply_minutes": np.nan if first_reply is None else (first_reply - created_s) / 60.0,
        "first_reply_business_minutes": np.nan if first_reply is None
        else business_minutes_between(created_s, first_reply, hours),
        "requester_wait_minutes": walk.wait_minutes,
        "requester_wait_business_minutes": walk.wait_business_minutes,
        "current_wait_minutes": (as_of_s - walk.run_start_s) / 60.0 if waiting_now else 0.0,
        "current_wait_business_minutes": business_minutes_between(walk.run_start_s, as_of_s, hours)
        if waiting_now else 0.0,
        "minutes_since_last_agent_reply": np.nan if last_reply is None else (as_of_s - last_reply) / 60.0,
        "reopens": walk.reopens,
        "times_solved": walk.times_solved,
        "group_hops": walk.group_hops,
        "assignee_hops": walk.assignee_hops,
        "notes": walk.notes,
        "has_assignee": int(walk.assignee is not None),
        "age_minutes": (as_of_s - created_s) / 60.0,
        "current_priority": NONE_LEVEL if walk.priority is None else walk.priority,
        "current_group": NONE_LEVEL if walk.group is None else walk.group,
        "status_now": walk.status,
    }
    features.update(text_features(walk.customer_bodies, signals))
    # Carried beside the features for the text model: the first customer message once written.
    features["first_customer_body"] = walk.customer_bodies[0] if walk.customer_bodies else ""
    return features


# ---------------------------------------------------------------- attributes


def attribute_name(raw) -> str:
    """Lower case, runs of non-word characters -> one underscore, no leading/trailing underscore."""
    if raw is None or (isinstance(raw, float) and math.isnan(raw)):
        return ""
    return re.sub(r"[^\w]+", "_", str(raw).strip().lower()).strip("_")


def attribute_text(raw) -> str | None:
    """A value as text; missing or blank -> None (cleared)."""
    if raw is None or pd.isna(raw):
        return None
    text = str(raw).strip()
    return text or None


def attribute_values(
    events: list[Event], created_s: int, static_values: dict[str, str | None], as_of_s: int
) -> dict[str, str | None]:
    """Each attribute's value as of ``as_of_s``: walk the ticket's events in order, the static
    ticket-row values counting as set at creation (before the ticket's own events of that second)."""
    values: dict[str, str | None] = {}
    timeline = [(created_s, -1, name, value) for name, value in static_values.items()]
    timeline += [(e.at_s, e.position, attribute_name(e.field), e.value) for e in events if e.kind == "field"]
    for at_s, _, name, value in sorted(timeline, key=lambda item: (item[0], item[1])):
        if at_s <= as_of_s and name:
            values[name] = attribute_text(value)
    return values


# ---------------------------------------------------------------- ticket-level parts


def creation_features(
    created_s: int, channel, subject: str, hours: BusinessHours, signals: TextLookup
) -> dict[str, object]:
    """Calendar of creation (local to the business-hours zone), channel and subject signals."""
    local = local_datetime(created_s, hours.timezone)
    hour_fraction = local.hour + local.minute / 60.0 + local.second / 3600.0
    business_day = local.weekday() in hours.weekdays
    subject_signals = signals[subject]
    return {
        "created_hour": local.hour,
        "created_weekday": local.weekday(),
        "created_on_weekend": int(not business_day),
        "created_after_hours": int(not (business_day and hours.start_hour <= hour_fraction < hours.end_hour)),
        "channel": "unknown" if pd.isna(channel) else channel,
        "subject_urgent_words": float(subject_signals["urgent_words"]),
        "subject_negative_words": float(subject_signals["negative_words"]),
    }


def reopen_times(events: list[Event]) -> list[int]:
    """Times (epoch seconds) of the reopen events among a ticket's ordered events, all of them."""
    times, status = [], "new"
    for event in events:
        if event.kind == "status":
            if status in DONE and event.value not in DONE:
                times.append(event.at_s)
            status = event.value
    return times


def history_features(ticket: dict, requester_tickets: list[dict], reopens_by_ticket: dict[str, list[int]]) -> dict[str, int]:
    """The requester's tickets, bad ratings and reopens strictly before ``ticket`` was created.

    ``requester_tickets``: all tickets of ``ticket``'s requester (itself included);
    ``reopens_by_ticket``: :func:`reopen_times` per ticket id. No requester: all 0.
    """
    history = {"requester_previous_tickets": 0, "requester_previous_bad_ratings": 0, "requester_previous_reopens": 0}
    if ticket["requester_id"] is None:
        return history
    created_s = ticket["created_s"]
    for other in requester_tickets:
        if other["created_s"] < created_s:
            history["requester_previous_tickets"] += 1
        rated_s = other["satisfaction_s"]
        if other["satisfaction"] == "bad" and rated_s is not None and rated_s < created_s:
            history["requester_previous_bad_ratings"] += 1
        reopened = reopens_by_ticket.get(other["ticket_id"], [])
        history["requester_previous_reopens"] += sum(1 for at_s in reopened if at_s < created_s)
    return history


# ------------------------------------------------------------------------- tables


def _column(frame: pd.DataFrame, name: str, default=None) -> list:
    return frame[name].tolist() if name in frame.columns else [default] * len(frame)


def ticket_records(tickets: pd.DataFrame) -> list[dict]:
    """The tickets table as plain dicts with times in epoch seconds, in table order."""
    records = []
    for ticket_id, created, channel, subject, requester, satisfaction, rated in zip(
        tickets["ticket_id"].tolist(), tickets["created_at"].tolist(), _column(tickets, "channel"),
        _column(tickets, "subject", ""), _column(tickets, "requester_id"),
        _column(tickets, "satisfaction"), _column(tickets, "satisfaction_at"),
    ):
        records.append({
            "ticket_id": ticket_id, "created_s": epoch_seconds(created), "channel": channel,
            "subject": "" if pd.isna(subject) else str(subject), "requester_id": None if pd.isna(requester) or requester == "" else requester,
            "satisfaction": None if pd.isna(satisfaction) else satisfaction,
            "satisfaction_s": epoch_seconds(rated),
        })
    return records


def events_by_ticket(events: pd.DataFrame) -> dict[str, list[Event]]:
    """Each ticket's events ordered by (floored time, file position)."""
    grouped: dict[str, list[Event]] = {}
    rows = zip(
        events["ticket_id"].tolist(), events["at"].tolist(), events["actor"].astype(object).tolist(),
        events["kind"].astype(object).tolist(), _column(events, "value"), _column(events, "body", ""),
        _column(events, "field", ""),
    )
    for position, (ticket_id, at, actor, kind, value, body, name) in enumerate(rows):
        event = Event(
            at_s=epoch_seconds(at), position=position, actor=actor, kind=kind,
            value=None if pd.isna(value) else value, body="" if pd.isna(body) else str(body),
            field="" if pd.isna(name) else str(name),
        )
        grouped.setdefault(ticket_id, []).append(event)
    for ticket_events in grouped.values():
        ticket_events.sort(key=lambda e: (e.at_s, e.position))
    return grouped


def _utc(moment) -> pd.Timestamp:
    moment = pd.Timestamp(moment)
    return moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")


def query_frame(tickets: pd.DataFrame, events: pd.DataFrame, records: list[dict], as_of) -> pd.DataFrame:
    """The (ticket_id, as_of, extra columns) rows to compute, like ``build_features``."""
    if isinstance(as_of, pd.DataFrame):
        queries = as_of.copy()
        queries["as_of"] = pd.to_datetime(queries["as_of"], utc=True)
        extra = [c for c in queries.columns if c not in KEY_COLUMNS]
        return queries[list(KEY_COLUMNS) + extra].reset_index(drop=True)
    if as_of is None:
        moments = [m for m in list(tickets["created_at"]) + list(events["at"]) if pd.notna(m)]
        moment = max(moments)
    else:
        moment = _utc(as_of)
    moment_s = epoch_seconds(moment)
    # "Created at or before as-of", compared at one-second resolution like everything else.
    chosen = [r["ticket_id"] for r in records if r["created_s"] <= moment_s]
    return pd.DataFrame({
        "ticket_id": np.asarray(chosen, dtype=object),
        "as_of": pd.Series([moment] * len(chosen), dtype="datetime64[ns, UTC]"),
    })


def reference_features(
    tickets: pd.DataFrame,
    events: pd.DataFrame,
    as_of: pd.Timestamp | str | pd.DataFrame | None = None,
    business_hours: BusinessHours | None = None,
    static_attributes: tuple[str, ...] = (),
    prior_ratings: float | None = None,
    team: bool = True,
) -> pd.DataFrame:
    """Features per (ticket, as-of), computed one ticket and one event at a time.

    Same contract as :func:`features.build.build_features`: ``as_of`` is a single
    moment (default: the export's latest timestamp; one row per ticket created at or
    before it, in tickets-table order) or a frame with ``ticket_id`` and ``as_of``
    (one row per frame row, extra columns kept). Returns ``ticket_id``, ``as_of``,
    extra query columns, ``FEATURE_NAMES``, one ``attr_<name>`` per attribute (names sorted;
    an attribute exists when a field event of a ticket in the table names it, or a static
    column has a value), then ``opening_text`` (the subject, a
    newline, and the first public customer message if written by as-of); durations in
    minutes (float64), counts and flags as float64, categoricals as ``category``.
    """
    hours = business_hours or BusinessHours.from_params()
    records = ticket_records(tickets)
    by_id = {r["ticket_id"]: r for r in records}
    ordered_events = events_by_ticket(events)
    queries = query_frame(tickets, events, records, as_of)
    # Grouped once so history stays linear in the requester's tickets, not the export's.
    tickets_of_requester: dict[str, list[dict]] = {}
    for record in records:
        tickets_of_requester.setdefault(record["requester_id"], []).append(record)
    reopens_by_ticket = {ticket_id: reopen_times(evs) for ticket_id, evs in ordered_events.items()}
    signals = signals_by_text(
        [r["subject"] for r in records] + [e.body for evs in ordered_events.values() for e in evs]
    )

    static = {
        attribute_name(column): [attribute_text(v) for v in tickets[column].tolist()]
        for column in static_attributes if column in tickets.columns
    }
    static_by_ticket = {
        r["ticket_id"]: {name: values[i] for name, values in static.items() if values[i] is not None}
        for i, r in enumerate(records)
    }
    attribute_names = sorted(
        {attribute_name(e.field) for ticket_id, evs in ordered_events.items() if ticket_id in by_id
         for e in evs if e.kind == "field"} - {""}
        | {name for name, values in static.items() if any(v is not None for v in values)}
    )
    fixed: dict[str, dict] = {}  # per ticket: features that do not depend on as-of
    rows = []
    for ticket_id, moment in zip(queries["ticket_id"].tolist(), queries["as_of"].tolist()):
        if ticket_id not in by_id:
            raise ValueError(f"as-of rows name ticket {ticket_id!r}, which is not in the tickets table")
        ticket = by_id[ticket_id]
        if ticket_id not in fixed:
            fixed[ticket_id] = {
                **creation_features(ticket["created_s"], ticket["channel"], ticket["subject"], hours, signals),
                **history_features(ticket, tickets_of_requester[ticket["requester_id"]], reopens_by_ticket),
            }
        row = conversation_features(
            ordered_events.get(ticket_id, []), ticket["created_s"], epoch_seconds(moment), hours, signals
        )
        row.update(fixed[ticket_id])
        values = attribute_values(ordered_events.get(ticket_id, []), ticket["created_s"],
                                  static_by_ticket[ticket_id], epoch_seconds(moment))
        row.update({"attr_" + name: values.get(name) for name in attribute_names})
        row[OPENING_TEXT] = ticket["subject"] + "\n" + row.pop("first_customer_body")
        rows.append(row)

    columns = list(FEATURE_NAMES) + ["attr_" + name for name in attribute_names] + [OPENING_TEXT]
    features = pd.DataFrame(rows, columns=columns, index=range(len(rows)))
    if team:
        # The cross-ticket team features have their own plain reference (it imports this
        # module). It compares every query with every ticket: ``team=False`` leaves its
        # columns out where that is too slow (the benchmark's ratio on thousands of tickets).
        from tests.features.reference_organization import reference_organization_features
        from tests.features.reference_workload import reference_team_features

        prior = TeamRecordParams().prior_ratings if prior_ratings is None else prior_ratings
        for values in (reference_team_features(tickets, events, queries, prior),
                       reference_organization_features(tickets, events, queries, prior, static_attributes)):
            for name in values.columns:
                features[name] = values[name].to_numpy()
    else:
        features = features.drop(columns=[c for c in features.columns if c in CROSS_TICKET_FEATURES])
    for name in attribute_names:
        features["attr_" + name] = features["attr_" + name].astype(object).astype("category")
    for name in (f for f in FEATURE_NAMES if f in features.columns):  # team=False dropped some
        if name in CATEGORICAL_FEATURES:
            features[name] = features[name].astype(object).astype("category")
        else:
            features[name] = features[name].astype("float64")
    features[OPENING_TEXT] = features[OPENING_TEXT].astype(object)
    return pd.concat([queries, features], axis=1)


__all__ = [
    "reference_features",
    "business_minutes_between",
    "conversation_features",
    "history_features",
    "creation_features",
    "signals_by_text",
]
