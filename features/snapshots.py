"""Training snapshots: the moments in each ticket's life at which a training row is taken.

A model scored on open tickets must learn from tickets seen the same way: part-way
through. Each ticket contributes rows at several moments (its opening, after each
customer message, at each solve, or - for logs without messages such as ServiceNow
audit logs - after each field change while the ticket is open), each later turned
into features as of that moment.
No moment is at or after the ticket's ``satisfaction_at``, so the rating itself (and
anything that happened once it was given) never reaches a training row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import get_args

import numpy as np
import pandas as pd

from features.build import features_from_timeline, latest_timestamp
from features.calendar import BusinessHours
from features.conversation import TIME_KEY_SHIFT, Timeline, build_timeline, take, ticket_codes
from pipeline.core import contract
from pipeline.core.params import SnapshotMoment, SnapshotsParams

# The moment kinds, named once in the params model (``snapshots.moments``):
# ``opening``, ``customer_message``, ``solved``; ``field_change``: after each
# status/group/assignee/priority event that leaves the ticket open - for event logs that
# carry no messages; ``daily``: a fixed local time on each day the ticket is open - the
# moments a nightly run scores, where tickets that sit quietly for days count as often
# as they appear.
KNOWN_MOMENTS = get_args(SnapshotMoment)


def opening_moments(
    tickets: pd.DataFrame, export_at: pd.Timestamp, opening_window_minutes: float
) -> pd.DataFrame:
    """One row per ticket at ``created_at + opening_window_minutes`` (capped at ``export_at``).

    This is what is known about a ticket as it arrives: the urgency model is trained
    and applied at this moment. Columns: ``ticket_id``, ``as_of``, ``moment``.
    """
    as_of = tickets["created_at"] + pd.Timedelta(minutes=opening_window_minutes)
    as_of = as_of.where(as_of <= export_at, export_at)
    return pd.DataFrame(
        {"ticket_id": tickets["ticket_id"].to_numpy(dtype=object), "as_of": as_of.array,
         "moment": "opening"}
    ).astype({"as_of": "datetime64[ns, UTC]"})


def resolve_moments(
    moments: str | tuple[str, ...] | list[str], events: pd.DataFrame, outcome_is_rating: bool
) -> tuple[str, ...]:
    """The moments ``auto`` stands for on this log (an explicit list is returned as is).

    Every log gets ``opening`` and ``daily`` (the moment a nightly run scores); a log with
    customer messages adds ``customer_message``, one without (an audit log of field changes)
    ``field_change``. ``solved`` only when the outcome is a rating given after the solve: for
    a target the solve decides (an SLA, a resolution time) the solve moment already knows it.
    """
    if moments != "auto":
        return tuple(moments)
    has_messages = bool((_is(events["kind"], "message") & _is(events["actor"], "customer")).any())
    chosen = ["opening", "customer_message" if has_messages else "field_change", "daily"]
    if outcome_is_rating and has_messages:
        chosen.append("solved")
    return tuple(chosen)


def snapshot_moments(
    tickets: pd.DataFrame,
    events: pd.DataFrame,
    moments: tuple[str, ...] | list[str],
    max_per_ticket: int,
    opening_window_minutes: float,
    daily_local_time: str = "",
    timezone: str = "",
    export_at: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Snapshot moments for training; columns ``ticket_id``, ``as_of``, ``moment``.

    ``daily_local_time`` (``HH:MM``) and ``timezone`` are needed for the ``daily`` moment only.
    ``export_at``: the export's latest moment (default: from these tables); an engine that
    works on a part of the export passes the whole export's, so a part's moments do not change.

    ``moments`` picks from :data:`KNOWN_MOMENTS`. Moments at or after ``satisfaction_at`` are
    dropped, duplicates (same ticket and second) are merged, and a ticket with more
    than ``max_per_ticket`` moments keeps an evenly spaced subset that always includes
    its first and last.
    """
    unknown = sorted(set(moments) - set(KNOWN_MOMENTS))
    if unknown:
        raise ValueError(f"unknown snapshot moment(s) {unknown}; choose from {list(KNOWN_MOMENTS)}")
    if max_per_ticket < 1:
        raise ValueError("snapshots.max_per_ticket must be at least 1")
    export_at = latest_timestamp(tickets, events) if export_at is None else export_at
    parts = []
    if "opening" in moments:
        parts.append(opening_moments(tickets, export_at, opening_window_minutes))
    if "customer_message" in moments:
        is_customer_message = _is(events["kind"], "message") & _is(events["actor"], "customer")
        parts.append(_event_moments(events, is_customer_message, "customer_message"))
    if "solved" in moments:
        is_solve = _is(events["kind"], "status") & _is(events["value"], "solved")
        parts.append(_event_moments(events, is_solve, "solved"))
    if "field_change" in moments:
        parts.append(field_change_moments(events))
    if "daily" in moments:
        if not (daily_local_time and timezone):
            raise ValueError("the daily moment needs daily_local_time and timezone")
        # Each ticket keeps at most max_per_ticket moments in the end; twice that many candidate
        # days leaves room for the ones the status filter drops.
        parts.append(daily_moments(tickets, events, export_at, daily_local_time, timezone, 2 * max_per_ticket))
    return _merged(tickets, pd.concat(parts, ignore_index=True), max_per_ticket)


def _merged(tickets: pd.DataFrame, snapshots: pd.DataFrame, max_per_ticket: int) -> pd.DataFrame:
    """Moments before the rating, floored to the second, sorted by (``ticket_id``, ``as_of``), one
    per ticket and second (the first listed wins), at most ``max_per_ticket`` per ticket.

    On millions of moments, sorting and de-duplicating text ids dominated: the same steps run
    on integer keys (each ticket's rank in ``ticket_id`` order, then the second).
    """
    code = ticket_codes(tickets["ticket_id"], snapshots["ticket_id"])
    as_of_ns = _epoch_ns(snapshots["as_of"])
    rated_ns = _epoch_ns(tickets["satisfaction_at"])
    rated = take(rated_ns, code, _NAT)
    kept = np.flatnonzero((rated == _NAT) | (as_of_ns < rated))
    second = as_of_ns[kept] // 1_000_000_000
    if (code >= 0).all():
        rank = pd.factorize(tickets["ticket_id"], sort=True)[0][code[kept]]
    else:  # a moment of a ticket missing from the tickets table (features_from_timeline refuses it)
        rank = pd.factorize(snapshots["ticket_id"].iloc[kept], sort=True)[0]
    key = rank.astype("int64") * TIME_KEY_SHIFT + second
    order = np.argsort(key, kind="stable")
    key, kept, rank, second = key[order], kept[order], rank[order], second[order]
    first_of_second = np.ones(len(key), dtype=bool)
    first_of_second[1:] = key[1:] != key[:-1]
    kept, rank, second = kept[first_of_second], rank[first_of_second], second[first_of_second]
    spaced = _evenly_spaced(rank, max_per_ticket)
    out = snapshots.iloc[kept[spaced]].reset_index(drop=True)
    out["as_of"] = _utc(second[spaced] * 1_000_000_000)
    return out


def field_change_moments(events: pd.DataFrame) -> pd.DataFrame:
    """A moment at each field-change event after which the ticket is still open.

    Field changes are the ``status``/``group``/``assignee``/``priority`` events. The
    status after an event is the latest status event at or before it (file order on
    equal times; ``new`` before any); a change that leaves the ticket solved or closed
    gives no moment, because once solved the outcome of an SLA-style target is
    already decided (a solve snapshot would teach the model the resolution time).
    Columns: ``ticket_id``, ``as_of`` (the event time), ``moment`` = ``field_change``.
    """
    ordered = events.sort_values(["ticket_id", "at"], kind="stable")
    kind = ordered["kind"].astype(str).to_numpy()
    status_value = ordered["value"].astype(object).where(kind == "status")
    status_after = status_value.groupby(ordered["ticket_id"].to_numpy(dtype=object), sort=False).ffill()
    still_open = ~status_after.isin(contract.DONE_STATUSES).to_numpy()
    is_change = np.isin(kind, contract.FIELD_CHANGE_KINDS) & still_open
    return _event_moments(ordered, is_change, "field_change")


def daily_moments(
    tickets: pd.DataFrame, events: pd.DataFrame, export_at: pd.Timestamp, local_time: str, timezone: str,
    max_days: int,
) -> pd.DataFrame:
    """The ``daily`` moment: ``local_time`` in ``timezone`` on each day a ticket is open.

    A day counts when its local time falls after ``created_at``, at or before the
    ticket's end (its last solve/close if it ends solved or closed, else the export
    time), and the ticket is not solved or closed then (the latest status event at or
    before that moment; ``new`` before any). A ticket open for more than ``max_days``
    days gets ``max_days`` days spread evenly from its first to its last. Columns:
    ``ticket_id``, ``as_of``, ``moment`` = ``daily``.
    """
    hour, minute = (int(part) for part in local_time.split(":"))
    status = _StatusEvents.of(tickets, events)
    ticket_ids = tickets["ticket_id"].to_numpy(dtype=object)
    created = pd.DatetimeIndex(tickets["created_at"]).tz_convert("UTC").as_unit("ns")
    # A ticket ends at its last status event if that solves or closes it, else at the export time.
    end_ns = np.full(len(tickets), pd.Timestamp(export_at).as_unit("ns").value, dtype="int64")
    last = np.flatnonzero(status.last_of_ticket & status.done)
    end_ns[status.ticket[last]] = status.at_ns[last]
    end = _utc(end_ns)

    # Local calendar days from the day of creation to the day of the end, as naive dates.
    clock = pd.Timedelta(hours=hour, minutes=minute)
    created_local = created.tz_convert(timezone).tz_localize(None)
    end_local = end.tz_convert(timezone).tz_localize(None)
    # The first day whose local time comes after the creation, the last at or before the end.
    first_day = created_local.normalize() + pd.to_timedelta(
        (created_local >= created_local.normalize() + clock).astype("int64"), unit="D")
    last_day = end_local.normalize() - pd.to_timedelta(
        (end_local < end_local.normalize() + clock).astype("int64"), unit="D")
    span = np.maximum(((last_day - first_day) // pd.Timedelta(days=1)).to_numpy(dtype="int64") + 1, 0)
    count = np.minimum(span, max_days)
    row = np.repeat(np.arange(len(tickets)), count)
    k = np.arange(len(row)) - np.repeat(np.cumsum(count) - count, count)  # 0..count-1 within a ticket
    spread = np.where(count[row] > 1, np.rint(k * (span[row] - 1) / np.maximum(count[row] - 1, 1)), 0)
    local = first_day[row] + pd.to_timedelta(spread, unit="D") + clock
    # A local time that does not exist (spring forward) moves on; an ambiguous one takes the first.
    as_of = local.tz_localize(timezone, nonexistent="shift_forward", ambiguous=np.ones(len(local), dtype=bool))
    as_of = as_of.tz_convert("UTC").as_unit("ns")
    inside = np.flatnonzero((as_of > created[row]) & (as_of <= end[row]))
    # In time order (ties in ticket order), each while the latest status event at or before it leaves it open.
    moment_ns = as_of.asi8[inside]
    order = np.argsort(moment_ns, kind="stable")
    ticket, moment_ns = row[inside][order], moment_ns[order]
    open_then = ~status.done_at(ticket, moment_ns)
    return pd.DataFrame(
        {"ticket_id": ticket_ids[ticket[open_then]],
         "as_of": _utc(moment_ns[open_then]), "moment": "daily"}
    ).astype({"as_of": "datetime64[ns, UTC]"})


@dataclass(frozen=True)
class _StatusEvents:
    """The status events of known tickets sorted by (ticket, time, file order), in arrays."""

    ticket: np.ndarray  # ticket code (position in the tickets table)
    at_ns: np.ndarray  # epoch nanoseconds
    done: np.ndarray  # the event sets a solved/closed status
    last_of_ticket: np.ndarray  # the ticket's last status event

    @classmethod
    def of(cls, tickets: pd.DataFrame, events: pd.DataFrame) -> _StatusEvents:
        rows = np.flatnonzero(_is(events["kind"], "status"))
        ticket = ticket_codes(tickets["ticket_id"], events["ticket_id"].iloc[rows])
        known = ticket >= 0  # events of other tickets end no ticket and open none
        rows, ticket = rows[known], ticket[known]
        at_ns = _epoch_ns(events["at"].iloc[rows])
        done = events["value"].iloc[rows].isin(contract.DONE_STATUSES).to_numpy(dtype=bool, na_value=False)
        in_order = bool(np.all((ticket[1:] > ticket[:-1]) | ((ticket[1:] == ticket[:-1]) & (at_ns[1:] >= at_ns[:-1]))))
        if not in_order:
            order = np.lexsort((at_ns, ticket))  # stable: file order on equal times
            ticket, at_ns, done = ticket[order], at_ns[order], done[order]
        last = np.ones(len(ticket), dtype=bool)
        last[:-1] = ticket[1:] != ticket[:-1]
        return cls(ticket, at_ns, done, last)

    def done_at(self, ticket: np.ndarray, moment_ns: np.ndarray) -> np.ndarray:
        """Whether the latest status event of ``ticket`` at or before ``moment_ns`` solved or closed it
        (False before any): the sorted-key search on (ticket, second), then the same second's events
        compared to the nanosecond."""
        event_key = self.ticket * TIME_KEY_SHIFT + self.at_ns // 1_000_000_000
        moment_key = ticket.astype("int64") * TIME_KEY_SHIFT + moment_ns // 1_000_000_000
        event_sub, moment_sub = self.at_ns % 1_000_000_000, moment_ns % 1_000_000_000
        after = np.searchsorted(event_key, moment_key, side="left")  # events of earlier seconds
        pending = np.flatnonzero(after < len(event_key))
        while len(pending):  # the same second's events, one at a time (rarely more than one)
            at = after[pending]
            same = (event_key[at] == moment_key[pending]) & (event_sub[at] <= moment_sub[pending])
            pending = pending[same]
            after[pending] += 1
            pending = pending[after[pending] < len(event_key)]
        latest = after - 1
        return take(self.done, np.where((latest >= 0) & (take(self.ticket, latest, -1) == ticket), latest, -1), False)


def _event_moments(events: pd.DataFrame, mask: np.ndarray, moment: str) -> pd.DataFrame:
    # Select first, convert after, and keep times as a datetime array: `.to_numpy()` of a
    # UTC column makes one Python Timestamp per event (most of the snapshot time at 1M tickets).
    return pd.DataFrame(
        {"ticket_id": events["ticket_id"].array[mask].to_numpy(dtype=object),
         "as_of": events["at"].array[mask], "moment": moment}
    ).astype({"as_of": "datetime64[ns, UTC]"})


def _is(values: pd.Series, text: str) -> np.ndarray:
    """``values == text`` as a bool array (missing is False), compared on categories and Arrow text
    directly rather than through one Python string per row."""
    return (values == text).to_numpy(dtype=bool, na_value=False)


def _evenly_spaced(ticket: np.ndarray, max_per_ticket: int) -> np.ndarray:
    """Which rows to keep, at most ``max_per_ticket`` per ticket spread evenly from first to last
    (rows sorted by ticket; ``ticket`` identifies each row's ticket)."""
    first = np.ones(len(ticket), dtype=bool)
    first[1:] = ticket[1:] != ticket[:-1]
    run_start = np.flatnonzero(first)
    run = np.cumsum(first) - 1
    position = np.arange(len(ticket)) - run_start[run]
    count = np.diff(np.append(run_start, len(ticket)))[run]
    if max_per_ticket == 1:
        return position == count - 1
    step = np.maximum(count - 1, 1) / (max_per_ticket - 1)
    # Row p is kept when it is the row nearest to one of the evenly spaced targets k * step.
    nearest_target = np.rint(np.rint(position / step) * step)
    return (count <= max_per_ticket) | (nearest_target == position)


_NAT = np.iinfo("int64").min


def _utc(epoch_ns: np.ndarray) -> pd.DatetimeIndex:
    """Int64 nanoseconds since 1970 as UTC timestamps (through datetime64: ``to_datetime`` of
    integers went through Python objects)."""
    return pd.DatetimeIndex(np.asarray(epoch_ns, dtype="int64").view("datetime64[ns]")).tz_localize("UTC")


def _epoch_ns(stamps: pd.Series) -> np.ndarray:
    """UTC timestamps as int64 nanoseconds since 1970 (NaT: the int64 minimum)."""
    index = pd.DatetimeIndex(stamps)
    return (index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")).as_unit("ns").asi8


def snapshot_features(
    tickets: pd.DataFrame,
    events: pd.DataFrame,
    snapshots: SnapshotsParams,
    hours: BusinessHours,
    timeline: Timeline | None = None,
    static_attributes: tuple[str, ...] = (),
    outcome_is_rating: bool = True,
    prior_ratings: float | None = None,
) -> pd.DataFrame:
    """Training snapshot features (the `featurize --snapshots` table): one row per (ticket, moment).

    ``static_attributes`` (params ``attributes.static``) and ``prior_ratings`` (``team_record``)
    are used when no ``timeline`` is given;
    ``outcome_is_rating`` decides what ``moments: auto`` takes (:func:`resolve_moments`)."""
    moments = snapshot_moments(
        tickets, events, moments=resolve_moments(snapshots.moments, events, outcome_is_rating), max_per_ticket=snapshots.max_per_ticket,
        opening_window_minutes=snapshots.opening_window_minutes, daily_local_time=snapshots.daily_local_time,
        timezone=hours.timezone,
    )
    timeline = timeline or build_timeline(tickets, events, hours, static_attributes, prior_ratings)
    return features_from_timeline(tickets, timeline, moments)
