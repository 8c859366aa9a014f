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

from typing import get_args

import numpy as np
import pandas as pd

from features.build import features_from_timeline, latest_timestamp
from features.calendar import BusinessHours
from features.conversation import Timeline, build_timeline
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
        {"ticket_id": tickets["ticket_id"].to_numpy(dtype=object), "as_of": as_of.to_numpy(),
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
    kind = events["kind"].astype(str).to_numpy()
    has_messages = bool(((kind == "message") & (events["actor"].astype(str).to_numpy() == "customer")).any())
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
) -> pd.DataFrame:
    """Snapshot moments for training; columns ``ticket_id``, ``as_of``, ``moment``.

    ``daily_local_time`` (``HH:MM``) and ``timezone`` are needed for the ``daily`` moment only.

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
    export_at = latest_timestamp(tickets, events)
    parts = []
    if "opening" in moments:
        parts.append(opening_moments(tickets, export_at, opening_window_minutes))
    kind = events["kind"].astype(str).to_numpy()
    if "customer_message" in moments:
        is_customer_message = (kind == "message") & (events["actor"].astype(str).to_numpy() == "customer")
        parts.append(_event_moments(events, is_customer_message, "customer_message"))
    if "solved" in moments:
        is_solve = (kind == "status") & (events["value"].to_numpy(dtype=object) == "solved")
        parts.append(_event_moments(events, is_solve, "solved"))
    if "field_change" in moments:
        parts.append(field_change_moments(events))
    if "daily" in moments:
        if not (daily_local_time and timezone):
            raise ValueError("the daily moment needs daily_local_time and timezone")
        # Each ticket keeps at most max_per_ticket moments in the end; twice that many candidate
        # days leaves room for the ones the status filter drops.
        parts.append(daily_moments(tickets, events, export_at, daily_local_time, timezone, 2 * max_per_ticket))
    snapshots = pd.concat(parts, ignore_index=True)

    # `.array` keeps the UTC dtype: `.to_numpy()` of an all-NaT column (an export without
    # ratings, e.g. ServiceNow) came back tz-naive and the comparison below raised.
    rated_at = snapshots["ticket_id"].map(
        pd.Series(tickets["satisfaction_at"].array, index=tickets["ticket_id"].to_numpy())
    )
    before_rating = rated_at.isna() | (snapshots["as_of"] < rated_at)
    snapshots = snapshots[before_rating.to_numpy()]
    snapshots["as_of"] = snapshots["as_of"].dt.floor("s")
    snapshots = snapshots.sort_values(["ticket_id", "as_of"], kind="stable")
    snapshots = snapshots.drop_duplicates(["ticket_id", "as_of"], keep="first")
    return _evenly_spaced(snapshots, max_per_ticket).reset_index(drop=True)


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
    status = events[events["kind"].astype(str).to_numpy() == "status"].sort_values(["ticket_id", "at"], kind="stable")
    last = status.drop_duplicates("ticket_id", keep="last").set_index("ticket_id")
    ends_done = last["value"].astype(object).isin(contract.DONE_STATUSES)
    end_of = last.loc[ends_done.to_numpy(), "at"]
    ticket_ids = tickets["ticket_id"].to_numpy(dtype=object)
    created = pd.DatetimeIndex(tickets["created_at"]).tz_convert("UTC").as_unit("ns")
    end = pd.DatetimeIndex(pd.Series(end_of.reindex(ticket_ids).array).fillna(export_at)).tz_convert("UTC").as_unit("ns")

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
    inside = (as_of > created[row]) & (as_of <= end[row])
    candidates = pd.DataFrame({"ticket_id": ticket_ids[row][inside], "as_of": as_of[inside]})

    # The status at each candidate moment: the latest status event at or before it.
    candidates = candidates.sort_values("as_of", kind="stable")
    lookup = pd.DataFrame({"ticket_id": status["ticket_id"].to_numpy(dtype=object),
                           "as_of": pd.DatetimeIndex(status["at"]).tz_convert("UTC").as_unit("ns"),
                           "status": status["value"].astype(object).to_numpy()}).sort_values("as_of", kind="stable")
    # One key dtype on both sides (pandas infers str for text, object for an empty column).
    candidates["ticket_id"] = candidates["ticket_id"].astype(object)
    lookup["ticket_id"] = lookup["ticket_id"].astype(object)
    joined = pd.merge_asof(candidates, lookup, on="as_of", by="ticket_id", direction="backward")
    open_then = ~joined["status"].isin(contract.DONE_STATUSES).to_numpy()
    return pd.DataFrame(
        {"ticket_id": joined["ticket_id"].to_numpy(dtype=object)[open_then],
         "as_of": joined["as_of"].to_numpy()[open_then], "moment": "daily"}
    ).astype({"as_of": "datetime64[ns, UTC]"})


def _event_moments(events: pd.DataFrame, mask: np.ndarray, moment: str) -> pd.DataFrame:
    return pd.DataFrame(
        {"ticket_id": events["ticket_id"].to_numpy(dtype=object)[mask],
         "as_of": events["at"].to_numpy()[mask], "moment": moment}
    ).astype({"as_of": "datetime64[ns, UTC]"})


def _evenly_spaced(snapshots: pd.DataFrame, max_per_ticket: int) -> pd.DataFrame:
    """Keep at most ``max_per_ticket`` rows per ticket, spread evenly from first to last."""
    position = snapshots.groupby("ticket_id", sort=False).cumcount().to_numpy()
    count = snapshots.groupby("ticket_id", sort=False)["as_of"].transform("size").to_numpy()
    if max_per_ticket == 1:
        return snapshots[position == count - 1]
    step = np.maximum(count - 1, 1) / (max_per_ticket - 1)
    # Row p is kept when it is the row nearest to one of the evenly spaced targets k * step.
    nearest_target = np.rint(np.rint(position / step) * step)
    keep = (count <= max_per_ticket) | (nearest_target == position)
    return snapshots[keep]


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
