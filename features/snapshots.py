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

import numpy as np
import pandas as pd

from features.build import features_from_timeline, latest_timestamp
from features.calendar import BusinessHours
from features.conversation import Timeline, build_timeline
from pipeline.core import contract
from pipeline.core.params import SnapshotsParams

MOMENTS = ("opening", "customer_message", "solved")
# Moment kinds that are not in the default policy (MOMENTS stays the default argument).
# ``field_change``: after each status/group/assignee/priority event that leaves the
# ticket open (not solved/closed) - for event logs that carry no messages.
EXTRA_MOMENTS = ("field_change",)
KNOWN_MOMENTS = MOMENTS + EXTRA_MOMENTS


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


def snapshot_moments(
    tickets: pd.DataFrame,
    events: pd.DataFrame,
    moments: tuple[str, ...] | list[str],
    max_per_ticket: int,
    opening_window_minutes: float,
) -> pd.DataFrame:
    """Snapshot moments for training; columns ``ticket_id``, ``as_of``, ``moment``.

    ``moments`` picks from :data:`KNOWN_MOMENTS` (default :data:`MOMENTS`). Moments at or after ``satisfaction_at`` are
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
) -> pd.DataFrame:
    """Training snapshot features (the `featurize --snapshots` table): one row per (ticket, moment)."""
    moments = snapshot_moments(
        tickets, events, moments=snapshots.moments, max_per_ticket=snapshots.max_per_ticket,
        opening_window_minutes=snapshots.opening_window_minutes,
    )
    timeline = timeline or build_timeline(tickets, events, hours)
    return features_from_timeline(tickets, timeline, moments)
