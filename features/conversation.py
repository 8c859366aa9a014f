"""Conversation state along each ticket's event timeline, and point-in-time queries on it.

The events of all tickets are sorted once by (ticket, time, file order). For every
event we compute the ticket's state *after* that event (message counts, ping-pong,
status, waits accrued so far, ...) with vectorised segment operations. A query
"ticket T as of time t" then finds the last event of T at or before t with one
``searchsorted`` and adds the time that passed since that event. Scoring one
moment and building many training snapshots are the same operation.

Times are compared at one-second resolution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features.calendar import BusinessHours, business_clock_minutes
from features.text import TEXT_SIGNAL_COLUMNS, text_signals
from pipeline import contract

TIME_KEY_SHIFT = np.int64(2**34)  # seconds since 1970 stay below 2**34 until the year 2514
_NO_SPEAKER, _CUSTOMER, _AGENT = 0, 1, 2
_ACTOR_CODE = {name: i for i, name in enumerate(contract.ACTORS)}
_KIND_CODE = {name: i for i, name in enumerate(contract.EVENT_KINDS)}
_STATUS_CODE = {name: i for i, name in enumerate(contract.STATUSES)}
_NEW_STATUS = _STATUS_CODE["new"]
_DONE_CODES = np.array([_STATUS_CODE[s] for s in contract.DONE_STATUSES])


def to_epoch_seconds(stamps: pd.Series | pd.DatetimeIndex | pd.Timestamp) -> np.ndarray:
    """UTC timestamps to int64 seconds since 1970 (floored); NaT becomes the int64 minimum."""
    if isinstance(stamps, pd.Timestamp):
        stamps = stamps if stamps.tzinfo else stamps.tz_localize("UTC")
        return np.array([stamps.as_unit("ns").value // 1_000_000_000], dtype="int64")
    index = pd.DatetimeIndex(stamps)
    if index.tz is None:
        index = index.tz_localize("UTC")
    values = index.as_unit("ns").asi8
    nat = values == np.iinfo("int64").min
    seconds = np.floor_divide(values, 1_000_000_000)
    return np.where(nat, np.iinfo("int64").min, seconds).astype("int64")


@dataclass(frozen=True)
class Timeline:
    """All events sorted by (ticket, time, file order) with the state after each event.

    Arrays named per event have length ``n_events``; per ticket, ``n_tickets`` (in the
    order of the tickets table the timeline was built from).
    """

    ticket_ids: np.ndarray  # per ticket: ticket_id
    created_s: np.ndarray  # per ticket: created_at, epoch seconds
    ticket: np.ndarray  # per event: ticket code (position in ticket_ids)
    at_s: np.ndarray  # per event: epoch seconds
    keys: np.ndarray  # per event: ticket * 2**34 + at_s, sorted ascending
    state: dict[str, np.ndarray]  # per event: state after the event
    group_values: np.ndarray  # group names; state["group_code"] indexes into it (-1: none)
    priority_values: np.ndarray  # priority names; state["priority_code"] indexes into it
    first_agent_reply_s: np.ndarray  # per ticket: first public agent message, or int64 min
    first_customer_message_s: np.ndarray  # per ticket: first public customer message, or int64 min
    first_customer_body: np.ndarray  # per ticket: its text ("" when none)
    hours: BusinessHours


def _segment_starts(ticket: np.ndarray) -> np.ndarray:
    """True at the first event of each ticket (events sorted by ticket)."""
    starts = np.ones(len(ticket), dtype=bool)
    starts[1:] = ticket[1:] != ticket[:-1]
    return starts


def _segment_cumsum(values: np.ndarray, starts: np.ndarray, segment_id: np.ndarray) -> np.ndarray:
    """Running sum of ``values`` restarting at each ticket (inclusive of the current event).

    Integer and boolean inputs give int32 (counts: half the memory of floats on
    millions of events); float inputs give float64. ``segment_id``: ticket run number
    of each event (``np.cumsum(starts) - 1``).
    """
    counting = values.dtype.kind in "biu"
    total = np.cumsum(values, dtype="int64" if counting else "float64")
    offset = (total - values)[starts]
    return (total - offset[segment_id]).astype("int32" if counting else "float64", copy=False)


def _last_index_where(mask: np.ndarray, ticket: np.ndarray) -> np.ndarray:
    """Index of the latest event at or before each event, in the same ticket, where ``mask``; -1 if none."""
    positions = np.where(mask, np.arange(len(mask)), -1)
    latest = np.maximum.accumulate(positions) if len(positions) else positions
    same_ticket = latest >= 0
    same_ticket[same_ticket] = ticket[latest[same_ticket]] == ticket[same_ticket]
    return np.where(same_ticket, latest, -1)


def _previous_in_ticket(values: np.ndarray, starts: np.ndarray, default) -> np.ndarray:
    """Value after the previous event of the same ticket; ``default`` at each ticket's first event."""
    previous = np.empty_like(values)
    previous[1:] = values[:-1]
    previous[starts] = default
    return previous


def take(values: np.ndarray, index: np.ndarray, default) -> np.ndarray:
    """``values[index]`` with ``default`` where ``index`` is -1."""
    out = values[np.clip(index, 0, None)] if len(values) else np.full(len(index), default)
    return np.where(index >= 0, out, default)


def build_timeline(
    tickets: pd.DataFrame, events: pd.DataFrame, hours: BusinessHours | None = None
) -> Timeline:
    """Sort the events and compute the conversation state after each one.

    ``tickets``/``events`` are canonical tables from :mod:`pipeline.ingest`. Events
    whose ticket is not in ``tickets`` are ignored (ingestion has already rejected them).
    """
    hours = hours or BusinessHours()
    ticket_ids = tickets["ticket_id"].to_numpy(dtype=object)
    created_s = to_epoch_seconds(tickets["created_at"])
    code = ticket_codes(tickets["ticket_id"], events["ticket_id"])
    known = code >= 0
    at_all = to_epoch_seconds(events["at"])
    keys_unsorted = code.astype("int64") * TIME_KEY_SHIFT + at_all
    order = np.flatnonzero(known)[np.argsort(keys_unsorted[known], kind="stable")]

    ticket = code[order].astype("int64")
    at_s = at_all[order]
    keys = keys_unsorted[order]
    actor = _codes(events["actor"], _ACTOR_CODE)[order]
    kind = _codes(events["kind"], _KIND_CODE)[order]
    # Text columns are converted only where needed: most events have no value, few have bodies.
    value = _text_at(events, "value", order, np.isin(kind, [_KIND_CODE[k] for k in contract.FIELD_CHANGE_KINDS]))
    starts = _segment_starts(ticket)
    segment_id = np.cumsum(starts) - 1

    is_message = kind == _KIND_CODE["message"]
    customer_message = is_message & (actor == _ACTOR_CODE["customer"])
    agent_message = is_message & (actor == _ACTOR_CODE["agent"])
    public = customer_message | agent_message
    speaker = np.where(customer_message, _CUSTOMER, np.where(agent_message, _AGENT, _NO_SPEAKER))

    last_public = _last_index_where(public, ticket)
    last_speaker = take(speaker, last_public, _NO_SPEAKER)
    previous_speaker = _previous_in_ticket(last_speaker, starts, _NO_SPEAKER)
    speaker_change = public & (previous_speaker != _NO_SPEAKER) & (speaker != previous_speaker)

    status_event = kind == _KIND_CODE["status"]
    status_value = pd.Series(value).map(_STATUS_CODE).fillna(-1).to_numpy(dtype="int64")
    status_now = take(status_value, _last_index_where(status_event, ticket), _NEW_STATUS)
    done = np.isin(status_now, _DONE_CODES)
    previous_done = _previous_in_ticket(done, starts, False)
    reopen = status_event & previous_done & ~done

    group_code, group_values = _field_codes(kind, value, "group")
    assignee_code, _ = _field_codes(kind, value, "assignee")
    priority_code, priority_values = _field_codes(kind, value, "priority")
    group_hop = _hops(kind == _KIND_CODE["group"], group_code, ticket, starts)
    assignee_hop = _hops(kind == _KIND_CODE["assignee"], assignee_code, ticket, starts)

    # A customer waits while their latest public message is unanswered and the ticket is not solved/closed.
    waiting = (last_speaker == _CUSTOMER) & ~done
    stretch_begins = customer_message & (previous_speaker != _CUSTOMER)
    stretch_start_s = take(at_s, _last_index_where(stretch_begins, ticket), np.iinfo("int64").min)

    business_minutes = business_clock_minutes(at_s, hours)
    next_in_ticket = np.zeros(len(ticket), dtype=bool)
    next_in_ticket[:-1] = ~starts[1:]
    gap_minutes = np.where(next_in_ticket, (np.roll(at_s, -1) - at_s) / 60.0, 0.0)
    gap_business = np.where(next_in_ticket, np.roll(business_minutes, -1) - business_minutes, 0.0)
    waited = _segment_cumsum(np.where(waiting, gap_minutes, 0.0), starts, segment_id)
    waited_business = _segment_cumsum(np.where(waiting, gap_business, 0.0), starts, segment_id)

    last_customer_message = _last_index_where(customer_message, ticket)
    signals = text_signals(_texts(events, "body", order[customer_message]))
    state: dict[str, np.ndarray] = {
        "customer_messages": _segment_cumsum(customer_message, starts, segment_id),
        "agent_replies": _segment_cumsum(agent_message, starts, segment_id),
        "ping_pong_count": _segment_cumsum(speaker_change, starts, segment_id),
        "notes": _segment_cumsum(kind == _KIND_CODE["note"], starts, segment_id),
        "reopens": _segment_cumsum(reopen, starts, segment_id),
        "reopen_event": reopen,
        "times_solved": _segment_cumsum(status_event & done & ~previous_done, starts, segment_id),
        "group_hops": _segment_cumsum(group_hop, starts, segment_id),
        "assignee_hops": _segment_cumsum(assignee_hop, starts, segment_id),
        "status_code": status_now,
        "waiting": waiting,
        "stretch_start_s": stretch_start_s,
        # Waits accrued strictly before this event; the gap after it is added at query time.
        "waited_minutes_before": waited - np.where(waiting, gap_minutes, 0.0),
        "waited_business_before": waited_business - np.where(waiting, gap_business, 0.0),
        "business_minutes": business_minutes,
        "group_code": take(group_code, _last_index_where(group_code >= 0, ticket), -1),
        "priority_code": take(priority_code, _last_index_where(priority_code >= 0, ticket), -1),
        "has_assignee": _last_index_where(assignee_code >= 0, ticket) >= 0,
        "last_agent_reply_s": take(at_s, _last_index_where(agent_message, ticket), np.iinfo("int64").min),
        "last_customer_message": last_customer_message,
    }
    _add_text_state(state, signals, customer_message, last_customer_message, starts, segment_id)

    first_agent, _ = _first_per_ticket(agent_message, ticket, at_s, len(ticket_ids))
    first_customer, first_customer_position = _first_per_ticket(customer_message, ticket, at_s, len(ticket_ids))
    first_customer_body = np.full(len(ticket_ids), "", dtype=object)
    has_message = first_customer_position >= 0
    first_customer_body[has_message] = _texts(
        events, "body", order[first_customer_position[has_message]]).to_numpy(dtype=object)

    return Timeline(
        ticket_ids=ticket_ids, created_s=created_s, ticket=ticket, at_s=at_s, keys=keys,
        state=state, group_values=group_values, priority_values=priority_values,
        first_agent_reply_s=first_agent, first_customer_message_s=first_customer,
        first_customer_body=first_customer_body, hours=hours,
    )


def _first_per_ticket(mask: np.ndarray, ticket: np.ndarray, at_s: np.ndarray, n_tickets: int):
    """Per ticket, the time and event position of its first event where ``mask`` (int64 min / -1 if none)."""
    times = np.full(n_tickets, np.iinfo("int64").min, dtype="int64")
    positions = np.full(n_tickets, -1, dtype="int64")
    candidates = np.flatnonzero(mask)
    tickets_with, first = np.unique(ticket[candidates], return_index=True)
    times[tickets_with] = at_s[candidates[first]]
    positions[tickets_with] = candidates[first]
    return times, positions


def ticket_codes(ticket_ids: pd.Series, event_ticket_ids: pd.Series) -> np.ndarray:
    """Position of each event's ticket in ``ticket_ids`` (-1 when absent), hashed in Arrow."""
    found = pc.index_in(pa.array(event_ticket_ids.astype(str)), value_set=pa.array(ticket_ids.astype(str)))
    return found.fill_null(-1).to_numpy(zero_copy_only=False).astype("int64")


def _codes(values: pd.Series, mapping: dict[str, int]) -> np.ndarray:
    """Integer codes of a vocabulary column (-1 for anything else); categoricals are mapped by category."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        lookup = np.array([mapping.get(str(c), -1) for c in values.cat.categories] + [-1], dtype="int64")
        return lookup[values.cat.codes.to_numpy()]  # code -1 (missing) picks the trailing -1
    return pd.Series(values, dtype=object).map(mapping).fillna(-1).to_numpy(dtype="int64")


def _texts(events: pd.DataFrame, column: str, positions: np.ndarray) -> pd.Series:
    """Text of ``column`` at the given row positions ("" where missing or no such column)."""
    if column not in events.columns:
        return pd.Series([""] * len(positions), dtype=object)
    return events[column].iloc[positions].fillna("").reset_index(drop=True)


def _text_at(events: pd.DataFrame, column: str, order: np.ndarray, needed: np.ndarray) -> np.ndarray:
    """``column`` in timeline order as objects, filled only where ``needed`` (None elsewhere)."""
    out = np.full(len(order), None, dtype=object)
    if column in events.columns and needed.any():
        out[needed] = events[column].iloc[order[needed]].to_numpy(dtype=object)
    return out


def _field_codes(kind: np.ndarray, value: np.ndarray, field: str) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes of the new values of ``field`` change events (-1 on other events)."""
    is_field = kind == _KIND_CODE[field]
    codes = np.full(len(kind), -1, dtype="int64")
    if is_field.any():
        field_codes, uniques = pd.factorize(pd.Series(value[is_field], dtype=object))
        codes[is_field] = field_codes
        return codes, np.asarray(uniques, dtype=object)
    return codes, np.array([], dtype=object)


def _hops(is_field: np.ndarray, codes: np.ndarray, ticket: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """True at change events that move the field to a different value after it was first set."""
    previous_value = _previous_in_ticket(take(codes, _last_index_where(is_field, ticket), -1), starts, -1)
    return is_field & (previous_value >= 0) & (codes != previous_value)


def _add_text_state(
    state: dict[str, np.ndarray], signals: pd.DataFrame | None, customer_message: np.ndarray,
    last_customer_message: np.ndarray, starts: np.ndarray, segment_id: np.ndarray,
) -> None:
    """Text signals of the latest customer message and running totals over all of them."""
    for column in TEXT_SIGNAL_COLUMNS:
        per_event = np.zeros(len(customer_message), dtype="int32")  # every signal is a whole count
        if signals is not None and len(signals):
            per_event[customer_message] = signals[column].to_numpy().astype("int32")
        state[f"total_{column}"] = _segment_cumsum(per_event, starts, segment_id)
        state[f"last_{column}"] = take(per_event, last_customer_message, 0.0)


def locate(timeline: Timeline, ticket_codes: np.ndarray, as_of_s: np.ndarray) -> np.ndarray:
    """Index of the last event of each queried ticket at or before its as-of second; -1 if none."""
    query = ticket_codes.astype("int64") * TIME_KEY_SHIFT + as_of_s.astype("int64")
    index = np.searchsorted(timeline.keys, query, side="right") - 1
    found = index >= 0
    found[found] = timeline.ticket[index[found]] == ticket_codes[found]
    return np.where(found, index, -1)
