"""Conversation state along each ticket's event timeline, and point-in-time queries on it.

The events of all tickets are sorted once by (ticket, time, file order). A query
"ticket T as of time t" finds the last event of T at or before t with one
``searchsorted`` (:func:`locate`) and asks for the ticket's state *after* that event
(message counts, ping-pong, status, waits accrued so far, ...), then adds the time
that passed since. Scoring one moment and building many training snapshots are the
same operation.

The state is never materialised per event. Each quantity changes only at events of one
kind (public messages, status changes, group changes, ...), so each kind is kept as a
*stream*: its event positions in timeline order plus running totals along the stream.
A query then needs two ``searchsorted`` per stream (stream events before its ticket,
and at or before its event) and a few gathers: the work grows with the number of
queries and of events of that kind, not with every event times every quantity.

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
from features.text import TEXT_SIGNAL_COLUMNS, take_text, text_signals
from pipeline.core import contract
from pipeline.core.params import TeamRecordParams

_NO_SPEAKER, _CUSTOMER, _AGENT = 0, 1, 2
_ACTOR_CODE = {name: i for i, name in enumerate(contract.ACTORS)}
_KIND_CODE = {name: i for i, name in enumerate(contract.EVENT_KINDS)}
_STATUS_CODE = {name: i for i, name in enumerate(contract.STATUSES)}
_NEW_STATUS = _STATUS_CODE["new"]
_DONE_CODES = np.array([_STATUS_CODE[s] for s in contract.DONE_STATUSES])
_NO_TIME = np.iinfo("int64").min


def to_epoch_seconds(stamps: pd.Series | pd.DatetimeIndex | pd.Timestamp) -> np.ndarray:
    """UTC timestamps to int64 seconds since 1970 (floored); NaT becomes the int64 minimum."""
    if isinstance(stamps, pd.Timestamp):
        stamps = stamps if stamps.tzinfo else stamps.tz_localize("UTC")
        return np.array([stamps.as_unit("ns").value // 1_000_000_000], dtype="int64")
    index = pd.DatetimeIndex(stamps)
    if index.tz is None:
        index = index.tz_localize("UTC")
    values = index.as_unit("ns").asi8
    seconds = values // 1_000_000_000  # floors, like the timestamps before 1970 need
    nat = values == _NO_TIME
    if nat.any():
        seconds[nat] = _NO_TIME
    return seconds.astype("int64", copy=False)


def _running(values: np.ndarray, dtype: str) -> np.ndarray:
    """Exclusive running totals: ``out[k]`` is the sum of ``values[:k]`` (length ``len(values) + 1``)."""
    out = np.zeros(len(values) + 1, dtype=dtype)
    np.cumsum(values, dtype=dtype, out=out[1:])
    return out


def _after_previous(values: np.ndarray, first_of_ticket: np.ndarray, default) -> np.ndarray:
    """``values`` shifted one element along a stream; ``default`` at each ticket's first element."""
    previous = np.empty_like(values)
    previous[1:] = values[:-1]
    previous[first_of_ticket] = default
    return previous


def _forward_fill(values: np.ndarray, has_value: np.ndarray, first_of_ticket: np.ndarray, default) -> np.ndarray:
    """Per element: ``values`` at the latest element at or before it (same ticket) where ``has_value``, else ``default``."""
    positions = np.arange(len(values), dtype="int32" if len(values) < 2**31 else "int64")
    # A ticket's first element is a barrier even without a value: the running maximum
    # never reaches back into the previous ticket.
    positions[~has_value & ~first_of_ticket] = -1
    if len(positions):
        np.maximum.accumulate(positions, out=positions)
    return np.where(has_value[positions], values[positions], default)


@dataclass(frozen=True)
class _Stream:
    """The timeline events of one kind: positions ascending, and their tickets' boundaries."""

    positions: np.ndarray  # int64, into the timeline's per-event arrays
    first_of_ticket: np.ndarray  # bool: the first element of its ticket in this stream
    before_ticket: np.ndarray  # per ticket: elements of earlier tickets (where its own begin)

    @classmethod
    def of(cls, mask: np.ndarray, ticket: np.ndarray, ticket_first: np.ndarray) -> _Stream:
        return cls.at(np.flatnonzero(mask), ticket, ticket_first)

    @classmethod
    def at(cls, positions: np.ndarray, ticket: np.ndarray, ticket_first: np.ndarray) -> _Stream:
        """``ticket``: per event; ``ticket_first``: per ticket, the position of its first event."""
        tickets = ticket[positions]
        first = np.ones(len(positions), dtype=bool)
        first[1:] = tickets[1:] != tickets[:-1]
        return cls(positions, first, np.searchsorted(positions, ticket_first, side="left"))

    def ranks(self, index: np.ndarray, query_ticket: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per query: stream elements before its ticket's, and at or before its event.

        ``index``: the queried event (-1: none); ``query_ticket``: its ticket (0 where
        ``index`` is -1). The ticket's elements at or before the event are
        ``[before, upto)``, its latest is ``upto - 1`` when ``upto > before``.
        """
        upto = np.searchsorted(self.positions, index, side="right")
        return np.where(index >= 0, take(self.before_ticket, query_ticket, 0), upto), upto


@dataclass(frozen=True)
class _Counted:
    """A stream with running counts of events that matter along it (exclusive, per stream element)."""

    stream: _Stream
    running: dict[str, np.ndarray]  # name -> int32 totals before each element (length n + 1)
    value: np.ndarray | None = None  # per element: the code it sets (status, group, priority), if any


@dataclass(frozen=True)
class ConversationStreams:
    """What :meth:`Timeline.state_at` reads: one stream per kind of state change.

    ``public``: public customer and agent messages (customer messages, ping-pong flips and
    wait stretches counted along it); ``customer``/``agent``: the
    positions of each speaker's messages, in the order of ``public``; ``status``: status
    events with a known status; ``group``/``assignee``/``priority``: change events;
    ``notes``: internal notes; ``waits``: public messages and status events, the only
    events that start or end a customer's wait, with the waited seconds and business
    minutes accrued before each.
    """

    public: _Counted
    customer_positions: np.ndarray  # int64: the customer messages among ``public``
    agent_positions: np.ndarray
    stretch_positions: np.ndarray  # int64: customer messages that start a wait (previous speaker not the customer)
    signals_running: dict[str, np.ndarray]  # per signal: int64 totals before each customer message
    status: _Counted
    group: _Counted
    assignee: _Counted
    priority: _Counted
    notes: _Counted
    waits: _Stream
    waiting: np.ndarray  # per waits element: the customer waits after it (bool)
    at_s: np.ndarray  # per waits element: epoch seconds
    business_minutes: np.ndarray  # per waits element: business clock (float64)
    waited_s_running: np.ndarray  # int64 seconds waited before each waits element (exclusive totals)
    waited_business_running: np.ndarray  # float64 business minutes, likewise


@dataclass(frozen=True)
class Timeline:
    """All events sorted by (ticket, time, file order), in compact arrays.

    Arrays named per event have length ``n_events``; per ticket, ``n_tickets`` (in the
    order of the tickets table the timeline was built from). The conversation state
    after each event is not stored: :meth:`state_at` computes it for the queried
    events only, from :class:`ConversationStreams`.
    """

    ticket_ids: np.ndarray  # per ticket: ticket_id
    created_s: np.ndarray  # per ticket: created_at, epoch seconds
    ticket_first: np.ndarray  # per ticket: position of its first event (the next ticket's when it has none)
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
    customer_signals: pd.DataFrame  # per customer message, in timeline order: text signals (int32)
    group_values: np.ndarray
    priority_values: np.ndarray
    first_agent_reply_s: np.ndarray  # per ticket: first public agent message, or int64 min
    first_customer_message_s: np.ndarray  # per ticket: first public customer message, or int64 min
    first_customer_body: np.ndarray  # per ticket: its text ("" when none)
    hours: BusinessHours
    attributes: AttributeHistory  # field events and static ticket-row columns, per attribute
    prior_ratings: float  # team_record.prior_ratings: shrinkage of the teams' bad-rating shares
    streams: ConversationStreams

    def state_at(self, index: np.ndarray) -> dict[str, np.ndarray]:
        """The state after each event in ``index`` (-1: before any event), one array per quantity."""
        return _state_at(self, np.asarray(index, dtype="int64"))


def _segment_starts(ticket: np.ndarray) -> np.ndarray:
    """True at the first event of each ticket (events sorted by ticket)."""
    starts = np.ones(len(ticket), dtype=bool)
    starts[1:] = ticket[1:] != ticket[:-1]
    return starts


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
    kind_all = _codes(events["kind"], _KIND_CODE).astype("int8")
    # Field events change no conversation, status or team state: leaving them out of the
    # timeline keeps every per-event array (and the queries on it) as small as without attributes.
    candidates = np.flatnonzero((code >= 0) & (kind_all != _KIND_CODE[contract.FIELD_EVENT]))
    keys_unsorted = code.astype("int64") * TIME_KEY_SHIFT + at_all
    keys = keys_unsorted[candidates]
    # Exports usually list each ticket's events in time order already: then the file order is the order.
    in_order = bool(np.all(keys[1:] >= keys[:-1])) if len(keys) else True
    order = candidates if in_order else candidates[np.argsort(keys, kind="stable")]
    keys = keys if in_order else keys_unsorted[order]
    del candidates
    attributes = attribute_history(tickets, events, code, at_all, created_s, tuple(static_attributes))

    ticket = code[order].astype("int64")
    at_s = at_all[order]
    del code, at_all, keys_unsorted
    actor = _codes(events["actor"], _ACTOR_CODE)[order].astype("int8")
    kind = kind_all[order]
    del kind_all
    starts = _segment_starts(ticket)
    n_tickets = len(ticket_ids)

    ticket_first = np.searchsorted(ticket, np.arange(n_tickets), side="left")
    status, status_now, reopen_event = _status_stream(events, order, kind, ticket, ticket_first, starts)
    group, group_code, group_values = _change_stream(events, order, kind, ticket, ticket_first, "group")
    assignee, assignee_code, _ = _change_stream(events, order, kind, ticket, ticket_first, "assignee")
    priority, priority_code, priority_values = _change_stream(events, order, kind, ticket, ticket_first, "priority")

    is_message = kind == _KIND_CODE["message"]
    customer_message = is_message & (actor == _ACTOR_CODE["customer"])
    agent_message = is_message & (actor == _ACTOR_CODE["agent"])
    del is_message
    public = _Stream.of(customer_message | agent_message, ticket, ticket_first)
    speaker = np.where(customer_message[public.positions], _CUSTOMER, _AGENT).astype("int8")
    previous_speaker = _after_previous(speaker, public.first_of_ticket, _NO_SPEAKER)
    flips = (previous_speaker != _NO_SPEAKER) & (speaker != previous_speaker)
    stretch_begins = (speaker == _CUSTOMER) & (previous_speaker != _CUSTOMER)
    del previous_speaker
    customer_positions = public.positions[speaker == _CUSTOMER]
    agent_positions = public.positions[speaker == _AGENT]
    signals = text_signals(_arrow_texts(events, "body", order[customer_positions])).astype("int32")

    streams = ConversationStreams(
        public=_Counted(public, {"customer": _running(speaker == _CUSTOMER, "int32"),
                                 "flips": _running(flips, "int32"),
                                 "stretches": _running(stretch_begins, "int32")}),
        customer_positions=customer_positions, agent_positions=agent_positions,
        stretch_positions=public.positions[stretch_begins],
        signals_running={column: _running(signals[column].to_numpy(), "int64") for column in TEXT_SIGNAL_COLUMNS},
        status=status, group=group, assignee=assignee, priority=priority,
        notes=_Counted(_Stream.of(kind == _KIND_CODE["note"], ticket, ticket_first), {}),
        **_waits(public, speaker, status, ticket, ticket_first, at_s, hours),
    )
    del customer_message, agent_message, flips, stretch_begins

    first_agent, _ = _first_per_ticket(agent_positions, ticket, at_s, n_tickets)
    first_customer, first_customer_position = _first_per_ticket(customer_positions, ticket, at_s, n_tickets)
    first_customer_body = np.full(n_tickets, "", dtype=object)
    has_message = first_customer_position >= 0
    first_customer_body[has_message] = _arrow_texts(
        events, "body", order[first_customer_position[has_message]]).to_numpy(zero_copy_only=False)

    return Timeline(
        ticket_ids=ticket_ids, created_s=created_s,
        ticket_first=ticket_first,
        ticket=ticket, at_s=at_s, keys=keys, starts=starts,
        actor=actor, kind=kind, status_now=status_now, reopen_event=reopen_event,
        group_code=group_code, assignee_code=assignee_code, priority_code=priority_code,
        customer_signals=signals, group_values=group_values, priority_values=priority_values,
        first_agent_reply_s=first_agent, first_customer_message_s=first_customer,
        first_customer_body=first_customer_body, hours=hours, attributes=attributes,
        prior_ratings=TeamRecordParams().prior_ratings if prior_ratings is None else float(prior_ratings),
        streams=streams,
    )


def _status_stream(events, order, kind, ticket, ticket_first, starts) -> tuple[_Counted, np.ndarray, np.ndarray]:
    """Status events with a known status; per event, the status after it and whether it reopened the ticket."""
    positions = np.flatnonzero(kind == _KIND_CODE["status"])
    codes = _vocabulary_codes(_arrow_texts(events, "value", order[positions]), contract.STATUSES)
    # An unknown status changes nothing: the ticket keeps the status it had.
    known = codes >= 0
    stream = _Stream.at(positions[known], ticket, ticket_first)
    value = codes[known]
    done = np.isin(value, _DONE_CODES)
    was_done = _after_previous(done, stream.first_of_ticket, False)  # before the first status event: new
    solved, reopened = done & ~was_done, was_done & ~done
    per_event = np.full(len(kind), -1, dtype="int8")
    per_event[stream.positions] = value
    status_now = _forward_fill(per_event, per_event >= 0, starts, _NEW_STATUS).astype("int8")
    reopen_event = np.zeros(len(kind), dtype=bool)
    reopen_event[stream.positions] = reopened
    counted = _Counted(stream, {"solved": _running(solved, "int32"), "reopened": _running(reopened, "int32")}, value)
    return counted, status_now, reopen_event


def _change_stream(events, order, kind, ticket, ticket_first, field: str) -> tuple[_Counted, np.ndarray, np.ndarray]:
    """``field`` change events: codes of their new values (per event, -1 elsewhere), hops counted.

    A hop is a change to a different value after the field was first set (setting the
    same value again is no change)."""
    stream = _Stream.of(kind == _KIND_CODE[field], ticket, ticket_first)
    encoded = pc.dictionary_encode(_arrow_texts(events, "value", order[stream.positions]))
    value = encoded.indices.to_numpy(zero_copy_only=False).astype("int32")
    previous = _after_previous(value, stream.first_of_ticket, -1)
    hops = (previous >= 0) & (value != previous)
    per_event = np.full(len(kind), -1, dtype="int32")
    per_event[stream.positions] = value
    levels = np.asarray(encoded.dictionary.to_numpy(zero_copy_only=False), dtype=object)
    return _Counted(stream, {"hops": _running(hops, "int32")}, value), per_event, levels


def _waits(public: _Stream, speaker: np.ndarray, status: _Counted, ticket: np.ndarray, ticket_first: np.ndarray,
           at_s: np.ndarray, hours: BusinessHours) -> dict[str, np.ndarray | _Stream]:
    """The ``waits`` stream of :class:`ConversationStreams`: public messages and known status events.

    A customer waits while their latest public message is unanswered and the ticket is
    not solved/closed; only these events change that, so between two of them the wait
    state holds, and the time waited is a running total along this stream.
    """
    n_events = len(ticket)
    speaker_per_event = np.zeros(n_events, dtype="int8")
    speaker_per_event[public.positions] = speaker
    status_per_event = np.full(n_events, -1, dtype="int8")
    status_per_event[status.stream.positions] = status.value
    waits = _Stream.of((speaker_per_event != _NO_SPEAKER) | (status_per_event >= 0), ticket, ticket_first)
    said, set_status = speaker_per_event[waits.positions], status_per_event[waits.positions]
    del speaker_per_event, status_per_event
    last_speaker = _forward_fill(said, said != _NO_SPEAKER, waits.first_of_ticket, _NO_SPEAKER)
    done = _forward_fill(np.isin(set_status, _DONE_CODES), set_status >= 0, waits.first_of_ticket, False)
    waiting = (last_speaker == _CUSTOMER) & ~done
    at_w = at_s[waits.positions]
    # Until the next element of the same ticket, the wait state after this one holds.
    counts = waiting[:-1] & ~waits.first_of_ticket[1:]
    # The business clock is read only where a wait starts, goes on or ends (NaN elsewhere, never used).
    needed = waiting.copy()
    needed[1:] |= counts
    business = np.full(len(at_w), np.nan)
    business[needed] = business_clock_minutes(at_w[needed], hours)
    waited_s = np.zeros(len(at_w), dtype="int64")
    waited_s[:-1] = np.where(counts, np.diff(at_w), 0)
    waited_business = np.zeros(len(at_w), dtype="float64")
    waited_business[:-1] = np.where(counts, np.diff(business), 0.0)
    return {"waits": waits, "waiting": waiting, "at_s": at_w, "business_minutes": business,
            "waited_s_running": _running(waited_s, "int64"),
            "waited_business_running": _running(waited_business, "float64")}


def _state_at(tl: Timeline, index: np.ndarray) -> dict[str, np.ndarray]:
    """Per queried event: stream ranks, then differences of running totals and gathers."""
    s = tl.streams
    found = index >= 0
    query_ticket = take(tl.ticket, index, 0)  # 0 where the query has no event yet (then unused)
    out: dict[str, np.ndarray] = {}

    def since_first(counted: _Counted, name: str, before: np.ndarray, upto: np.ndarray) -> np.ndarray:
        running = counted.running[name]
        return (running[upto] - running[before]).astype("int32", copy=False)

    def latest(values: np.ndarray, rank: np.ndarray, count: np.ndarray, default) -> np.ndarray:
        """``values`` of the latest stream element (``rank - 1``) where the ticket has any."""
        return take(values, np.where(count > 0, rank - 1, -1), default)

    before, upto = s.public.stream.ranks(index, query_ticket)
    customer_before, customer_upto = s.public.running["customer"][before], s.public.running["customer"][upto]
    customers = (customer_upto - customer_before).astype("int32")
    agents = ((upto - before) - customers).astype("int32")
    out["customer_messages"] = customers
    out["agent_replies"] = agents
    out["ping_pong_count"] = since_first(s.public, "flips", before, upto)
    out["last_agent_reply_s"] = take(tl.at_s, latest(s.agent_positions, upto - customer_upto, agents, -1), _NO_TIME)
    stretches_upto = s.public.running["stretches"][upto]
    out["stretch_start_s"] = take(
        tl.at_s, latest(s.stretch_positions, stretches_upto, stretches_upto - s.public.running["stretches"][before], -1),
        _NO_TIME)
    for column in TEXT_SIGNAL_COLUMNS:
        running = s.signals_running[column]
        out[f"total_{column}"] = (running[customer_upto] - running[customer_before]).astype("int32")
        out[f"last_{column}"] = latest(tl.customer_signals[column].to_numpy(), customer_upto, customers, 0).astype("int32")

    before, upto = s.notes.stream.ranks(index, query_ticket)
    out["notes"] = (upto - before).astype("int32")
    before, upto = s.status.stream.ranks(index, query_ticket)
    out["reopens"] = since_first(s.status, "reopened", before, upto)
    out["times_solved"] = since_first(s.status, "solved", before, upto)
    out["status_code"] = latest(s.status.value, upto, upto - before, _NEW_STATUS).astype("int8")
    before, upto = s.group.stream.ranks(index, query_ticket)
    out["group_hops"] = since_first(s.group, "hops", before, upto)
    out["group_code"] = latest(s.group.value, upto, upto - before, -1).astype("int32")
    before, upto = s.assignee.stream.ranks(index, query_ticket)
    out["assignee_hops"] = since_first(s.assignee, "hops", before, upto)
    out["has_assignee"] = upto > before
    before, upto = s.priority.stream.ranks(index, query_ticket)
    out["priority_code"] = latest(s.priority.value, upto, upto - before, -1).astype("int32")

    # Waits accrued strictly before the queried event; the time after it is added at query time.
    before, upto = s.waits.ranks(index, query_ticket)
    last = np.where(upto > before, upto - 1, -1)
    waiting = take(s.waiting, last, False)
    event_s = take(tl.at_s, index, _NO_TIME)
    business = np.zeros(len(index), dtype="float64")
    business[found] = business_clock_minutes(event_s[found], tl.hours)
    accrued_s = s.waited_s_running[np.maximum(last, 0)] - s.waited_s_running[before]
    out["waiting"] = waiting
    out["waited_minutes_before"] = np.where(
        last >= 0, (accrued_s + np.where(waiting, event_s - take(s.at_s, last, 0), 0)) / 60.0, 0.0)
    accrued_business = s.waited_business_running[np.maximum(last, 0)] - s.waited_business_running[before]
    out["waited_business_before"] = np.where(
        last >= 0, accrued_business + np.where(waiting, business - take(s.business_minutes, last, 0.0), 0.0), 0.0)
    out["business_minutes"] = business
    return out


def _first_per_ticket(positions: np.ndarray, ticket: np.ndarray, at_s: np.ndarray, n_tickets: int):
    """Per ticket, the time and event position of its first event among ``positions`` (int64 min / -1 if none)."""
    times = np.full(n_tickets, _NO_TIME, dtype="int64")
    first = np.full(n_tickets, -1, dtype="int64")
    tickets = ticket[positions]
    heads = np.ones(len(positions), dtype=bool)
    heads[1:] = tickets[1:] != tickets[:-1]
    times[tickets[heads]] = at_s[positions[heads]]
    first[tickets[heads]] = positions[heads]
    return times, first


def ticket_codes(ticket_ids: pd.Series, event_ticket_ids: pd.Series) -> np.ndarray:
    """Position of each event's ticket in ``ticket_ids`` (-1 when absent), hashed in Arrow.

    Exports list a ticket's events together, so each run of equal ids is looked up once."""
    ids = pa.array(event_ticket_ids.astype(str))
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    heads = np.ones(len(ids), dtype=bool)
    if len(ids) > 1:
        heads[1:] = pc.fill_null(pc.not_equal(ids[1:], ids[:-1]), True).to_numpy(zero_copy_only=False)
    heads = np.flatnonzero(heads)
    found = pc.index_in(ids.take(pa.array(heads)), value_set=pa.array(ticket_ids.astype(str)))
    codes = found.fill_null(-1).to_numpy(zero_copy_only=False).astype("int64")
    return np.repeat(codes, np.diff(np.append(heads, len(ids))))


def _codes(values: pd.Series, mapping: dict[str, int]) -> np.ndarray:
    """Integer codes of a vocabulary column (-1 for anything else); categoricals are mapped by category."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        lookup = np.array([mapping.get(str(c), -1) for c in values.cat.categories] + [-1], dtype="int64")
        return lookup[values.cat.codes.to_numpy()]  # code -1 (missing) picks the trailing -1
    return pd.Series(values, dtype=object).map(mapping).fillna(-1).to_numpy(dtype="int64")


def _vocabulary_codes(texts: pa.Array, vocabulary: tuple[str, ...]) -> np.ndarray:
    """Position of each text in ``vocabulary`` (-1 for anything else), int8."""
    found = pc.index_in(texts, value_set=pa.array(vocabulary, type=texts.type))
    return found.fill_null(-1).to_numpy(zero_copy_only=False).astype("int8")


def _arrow_texts(events: pd.DataFrame, column: str, rows: np.ndarray) -> pa.Array:
    """Text of ``column`` at the given event rows, as Arrow strings ("" where missing or no such column)."""
    if column not in events.columns:
        return pa.array([""] * len(rows), type=pa.string())
    taken = take_text(events[column], rows)
    if taken is None:
        taken = pa.array(events[column].iloc[rows].fillna("").astype(str).to_numpy(dtype=object), type=pa.string())
    return pc.fill_null(taken, "")


def locate(timeline: Timeline, ticket_codes: np.ndarray, as_of_s: np.ndarray) -> np.ndarray:
    """Index of the last event of each queried ticket at or before its as-of second; -1 if none."""
    query = ticket_codes.astype("int64") * TIME_KEY_SHIFT + as_of_s.astype("int64")
    index = np.searchsorted(timeline.keys, query, side="right") - 1
    found = index >= 0
    found[found] = timeline.ticket[index[found]] == ticket_codes[found]
    return np.where(found, index, -1)
