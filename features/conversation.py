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

from features.attributes import TIME_KEY_SHIFT, AttributeHistory, attribute_history
from features.calendar import BusinessHours, business_clock_minutes
from features.text import TEXT_SIGNAL_COLUMNS, text_signals
from pipeline.core import contract
from pipeline.core.params import TeamRecordParams

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
    """All events sorted by (ticket, time, file order), in compact arrays.

    Arrays named per event have length ``n_events``; per ticket, ``n_tickets`` (in the
    order of the tickets table the timeline was built from). The conversation state
    after each event is not stored: :meth:`state_at` computes it for the queried
    events only, one quantity at a time, so memory stays a few bytes per event.
    """

    ticket_ids: np.ndarray  # per ticket: ticket_id
    created_s: np.ndarray  # per ticket: created_at, epoch seconds
    ticket: np.ndarray  # per event: ticket code (position in ticket_ids)
    at_s: np.ndarray  # per event: epoch seconds
    keys: np.ndarray  # per event: ticket * 2**34 + at_s, sorted ascending
    starts: np.ndarray  # per event: first event of its ticket
    actor: np.ndarray  # per event: index in contract.ACTORS (int8)
    kind: np.ndarray  # per event: index in contract.EVENT_KINDS (int8)
    status_now: np.ndarray  # per event: status after the event, index in contract.STATUSES (int8)
    reopen_event: np.ndarray  # per event: this status event reopened the ticket
    group_code: np.ndarray  # per event: new group of a group event, index in group_values, else -1
    assignee_code: np.ndarray  # per event: new assignee of an assignee event, else -1
    priority_code: np.ndarray  # per event: new priority of a priority event, index in priority_values, else -1
    business_minutes: np.ndarray  # per event: business clock at the event (float64)
    customer_signals: pd.DataFrame  # per customer message, in timeline order: text signals (int32)
    group_values: np.ndarray
    priority_values: np.ndarray
    first_agent_reply_s: np.ndarray  # per ticket: first public agent message, or int64 min
    first_customer_message_s: np.ndarray  # per ticket: first public customer message, or int64 min
    first_customer_body: np.ndarray  # per ticket: its text ("" when none)
    hours: BusinessHours
    attributes: AttributeHistory  # field events and static ticket-row columns, per attribute
    prior_ratings: float  # team_record.prior_ratings: shrinkage of the teams' bad-rating shares

    def state_at(self, index: np.ndarray) -> dict[str, np.ndarray]:
        """The state after each event in ``index`` (-1: before any event), one array per quantity."""
        return _state_at(self, np.asarray(index, dtype="int64"))


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
    tickets: pd.DataFrame, events: pd.DataFrame, hours: BusinessHours | None = None,
    static_attributes: tuple[str, ...] = (),
    prior_ratings: float | None = None,
) -> Timeline:
    """Sort the events once and keep what every later query needs, in compact arrays.

    ``tickets``/``events`` are canonical tables from :mod:`pipeline.sources.ingest`. Events
    whose ticket is not in ``tickets`` are ignored (ingestion has already rejected them).
    ``static_attributes``: ticket-row columns known at creation (params ``attributes.static``);
    ``prior_ratings``: params ``team_record.prior_ratings`` (None: its default).
    """
    hours = hours or BusinessHours.from_params()
    ticket_ids = tickets["ticket_id"].to_numpy(dtype=object)
    created_s = to_epoch_seconds(tickets["created_at"])
    code = ticket_codes(tickets["ticket_id"], events["ticket_id"])
    at_all = to_epoch_seconds(events["at"])
    # Field events change no conversation, status or team state: leaving them out of the
    # timeline keeps every per-event array (and the queries on it) as small as without attributes.
    known = (code >= 0) & ~(events["kind"] == contract.FIELD_EVENT).to_numpy(dtype=bool, na_value=False)
    keys_unsorted = code.astype("int64") * TIME_KEY_SHIFT + at_all
    order = np.flatnonzero(known)[np.argsort(keys_unsorted[known], kind="stable")]
    del known
    attributes = attribute_history(tickets, events, code, at_all, created_s, tuple(static_attributes))

    ticket = code[order].astype("int64")
    at_s = at_all[order]
    keys = keys_unsorted[order]
    del code, at_all, keys_unsorted
    actor = _codes(events["actor"], _ACTOR_CODE)[order].astype("int8")
    kind = _codes(events["kind"], _KIND_CODE)[order].astype("int8")
    starts = _segment_starts(ticket)

    status_positions = np.flatnonzero(kind == _KIND_CODE["status"])
    status_value = np.full(len(order), -1, dtype="int8")
    status_value[status_positions] = _vocabulary_codes(_texts(events, "value", order[status_positions]), _STATUS_CODE)
    status_now = take(status_value, _last_index_where(status_value >= 0, ticket), _NEW_STATUS).astype("int8")
    done = np.isin(status_now, _DONE_CODES)
    reopen_event = (status_value >= 0) & _previous_in_ticket(done, starts, False) & ~done
    del status_value, done

    group_code, group_values = _field_codes(events, order, kind, "group")
    assignee_code, _ = _field_codes(events, order, kind, "assignee")
    priority_code, priority_values = _field_codes(events, order, kind, "priority")

    is_message = kind == _KIND_CODE["message"]
    customer_message = is_message & (actor == _ACTOR_CODE["customer"])
    agent_message = is_message & (actor == _ACTOR_CODE["agent"])
    del is_message
    signals = text_signals(_texts(events, "body", order[customer_message])).astype("int32")
    first_agent, _ = _first_per_ticket(agent_message, ticket, at_s, len(ticket_ids))
    first_customer, first_customer_position = _first_per_ticket(customer_message, ticket, at_s, len(ticket_ids))
    first_customer_body = np.full(len(ticket_ids), "", dtype=object)
    has_message = first_customer_position >= 0
    first_customer_body[has_message] = _texts(
        events, "body", order[first_customer_position[has_message]]).to_numpy(dtype=object)

    return Timeline(
        ticket_ids=ticket_ids, created_s=created_s, ticket=ticket, at_s=at_s, keys=keys, starts=starts,
        actor=actor, kind=kind, status_now=status_now, reopen_event=reopen_event,
        group_code=group_code, assignee_code=assignee_code, priority_code=priority_code,
        business_minutes=business_clock_minutes(at_s, hours), customer_signals=signals,
        group_values=group_values, priority_values=priority_values,
        first_agent_reply_s=first_agent, first_customer_message_s=first_customer,
        first_customer_body=first_customer_body, hours=hours, attributes=attributes,
        prior_ratings=TeamRecordParams().prior_ratings if prior_ratings is None else float(prior_ratings),
    )


_NO_TIME = np.iinfo("int64").min


def _state_at(tl: Timeline, index: np.ndarray) -> dict[str, np.ndarray]:
    """Each quantity is computed over all events, gathered at ``index``, and freed."""
    ticket, starts = tl.ticket, tl.starts
    segment_id = np.cumsum(starts) - 1
    out: dict[str, np.ndarray] = {}

    def keep(name: str, values: np.ndarray, default) -> None:
        out[name] = take(values, index, default)

    def running_count(name: str, mask: np.ndarray) -> None:
        keep(name, _segment_cumsum(mask, starts, segment_id), 0)

    is_message = tl.kind == _KIND_CODE["message"]
    customer_message = is_message & (tl.actor == _ACTOR_CODE["customer"])
    agent_message = is_message & (tl.actor == _ACTOR_CODE["agent"])
    del is_message
    running_count("customer_messages", customer_message)
    running_count("agent_replies", agent_message)
    running_count("notes", tl.kind == _KIND_CODE["note"])
    running_count("reopens", tl.reopen_event)

    public = customer_message | agent_message
    speaker = np.where(customer_message, _CUSTOMER, np.where(agent_message, _AGENT, _NO_SPEAKER)).astype("int8")
    last_speaker = take(speaker, _last_index_where(public, ticket), _NO_SPEAKER).astype("int8")
    previous_speaker = _previous_in_ticket(last_speaker, starts, _NO_SPEAKER)
    running_count("ping_pong_count", public & (previous_speaker != _NO_SPEAKER) & (speaker != previous_speaker))
    del public, speaker

    done = np.isin(tl.status_now, _DONE_CODES)
    status_event = tl.kind == _KIND_CODE["status"]
    running_count("times_solved", status_event & done & ~_previous_in_ticket(done, starts, False))
    del status_event
    keep("status_code", tl.status_now, _NEW_STATUS)
    running_count("group_hops", _hops(tl.kind == _KIND_CODE["group"], tl.group_code, ticket, starts))
    running_count("assignee_hops", _hops(tl.kind == _KIND_CODE["assignee"], tl.assignee_code, ticket, starts))
    keep("group_code", take(tl.group_code, _last_index_where(tl.group_code >= 0, ticket), -1), -1)
    keep("priority_code", take(tl.priority_code, _last_index_where(tl.priority_code >= 0, ticket), -1), -1)
    keep("has_assignee", _last_index_where(tl.assignee_code >= 0, ticket) >= 0, False)
    keep("last_agent_reply_s", take(tl.at_s, _last_index_where(agent_message, ticket), _NO_TIME), _NO_TIME)
    del agent_message

    # A customer waits while their latest public message is unanswered and the ticket is not solved/closed.
    waiting = (last_speaker == _CUSTOMER) & ~done
    del done, last_speaker
    stretch_begins = customer_message & (previous_speaker != _CUSTOMER)
    del previous_speaker
    keep("stretch_start_s", take(tl.at_s, _last_index_where(stretch_begins, ticket), _NO_TIME), _NO_TIME)
    del stretch_begins
    keep("waiting", waiting, False)
    next_in_ticket = np.zeros(len(ticket), dtype=bool)
    next_in_ticket[:-1] = ~starts[1:]
    for name, step in (("waited_minutes_before", (np.roll(tl.at_s, -1) - tl.at_s) / 60.0),
                       ("waited_business_before", np.roll(tl.business_minutes, -1) - tl.business_minutes)):
        gap = np.where(next_in_ticket & waiting, step, 0.0)
        del step
        # Waits accrued strictly before this event; the gap after it is added at query time.
        keep(name, _segment_cumsum(gap, starts, segment_id) - gap, 0.0)
        del gap
    keep("business_minutes", tl.business_minutes, 0.0)

    last_customer_message = _last_index_where(customer_message, ticket)
    for column in TEXT_SIGNAL_COLUMNS:
        per_event = np.zeros(len(ticket), dtype="int32")  # every signal is a whole count
        per_event[customer_message] = tl.customer_signals[column].to_numpy()
        running_count(f"total_{column}", per_event)
        keep(f"last_{column}", take(per_event, last_customer_message, 0), 0)
    return out


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


def _vocabulary_codes(values: pd.Series, mapping: dict[str, int]) -> np.ndarray:
    """``mapping[value]`` per value (-1 for anything else), looked up once per distinct value (int8)."""
    codes, uniques = pd.factorize(values)
    lookup = np.array([mapping.get(str(u), -1) for u in uniques] + [-1], dtype="int8")
    return lookup[codes]  # code -1 (missing) picks the trailing -1


def _texts(events: pd.DataFrame, column: str, positions: np.ndarray) -> pd.Series:
    """Text of ``column`` at the given row positions ("" where missing or no such column)."""
    if column not in events.columns:
        return pd.Series([""] * len(positions), dtype=object)
    return events[column].iloc[positions].fillna("").reset_index(drop=True)


def _field_codes(events: pd.DataFrame, order: np.ndarray, kind: np.ndarray, field: str) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes of the new values of ``field`` change events (-1 on other events)."""
    positions = np.flatnonzero(kind == _KIND_CODE[field])
    codes = np.full(len(kind), -1, dtype="int32")
    if len(positions):
        field_codes, uniques = pd.factorize(_texts(events, "value", order[positions]).to_numpy(dtype=object))
        codes[positions] = field_codes
        return codes, np.asarray(uniques, dtype=object)
    return codes, np.array([], dtype=object)


def _hops(is_field: np.ndarray, codes: np.ndarray, ticket: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """True at change events that move the field to a different value after it was first set."""
    previous_value = _previous_in_ticket(take(codes, _last_index_where(is_field, ticket), -1), starts, -1)
    return is_field & (previous_value >= 0) & (codes != previous_value)


def locate(timeline: Timeline, ticket_codes: np.ndarray, as_of_s: np.ndarray) -> np.ndarray:
    """Index of the last event of each queried ticket at or before its as-of second; -1 if none."""
    query = ticket_codes.astype("int64") * TIME_KEY_SHIFT + as_of_s.astype("int64")
    index = np.searchsorted(timeline.keys, query, side="right") - 1
    found = index >= 0
    found[found] = timeline.ticket[index[found]] == ticket_codes[found]
    return np.where(found, index, -1)
