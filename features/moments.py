"""Evaluation moments: fixed points in each ticket's life at which a model is judged.

``opening`` (``created_at`` + the opening window, capped at the export time),
``first_reassignment`` (the first group event that moves the ticket to a different
group after its first group was set; only tickets that have one) and ``halfway``
(``created_at`` + half the ticket's life, life = last event time - ``created_at``;
a ticket without events has life 0) and ``daily`` (the daily local time on each day the
ticket is open: the population a nightly run scores, see
:func:`features.snapshots.daily_moments`). Each builder returns an as-of frame
(``ticket_id``, ``as_of``, ``moment``) for :func:`features.build.build_features`.
"""

from __future__ import annotations

import pandas as pd

from features.build import latest_timestamp
from features.snapshots import daily_moments, opening_moments

EVALUATION_MOMENTS = ("opening", "first_reassignment", "halfway", "daily")
# ``daily`` judges a ticket on at most this many open days (spread evenly over its open life):
# four weeks of nightly queues, so a ticket open for months does not outweigh the rest.
DAILY_EVALUATION_DAYS = 28

def first_reassignment_moments(events: pd.DataFrame) -> pd.DataFrame:
    """The first group change after the first group per ticket (tickets without one are absent).

    A change is a group event whose value differs from the ticket's previous group
    event (order: ``at``, then file order), the same rule as the ``group_hops``
    feature. Columns ``ticket_id``, ``as_of`` (the change's time), ``moment``.
    """
    groups = events[events["kind"].astype(str) == "group"].sort_values(["ticket_id", "at"], kind="stable")
    value = groups["value"].astype(object)
    previous = value.groupby(groups["ticket_id"].to_numpy(dtype=object), sort=False).shift()
    hops = groups[(previous.notna() & (value != previous)).to_numpy()]
    first = hops.drop_duplicates("ticket_id", keep="first")
    return pd.DataFrame(
        {"ticket_id": first["ticket_id"].to_numpy(dtype=object), "as_of": first["at"].to_numpy(),
         "moment": "first_reassignment"}
    ).astype({"as_of": "datetime64[ns, UTC]"})


def halfway_moments(tickets: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """``created_at`` + half of (last event time - ``created_at``), floored to the second.

    One row per ticket; a ticket without events (or whose events all precede its
    creation) is taken at ``created_at``. Columns ``ticket_id``, ``as_of``, ``moment``.
    """
    last_event = events.groupby(events["ticket_id"].to_numpy(dtype=object))["at"].max()
    created = tickets["created_at"]
    last = tickets["ticket_id"].map(last_event)
    life = (last - created).where(lambda span: span > pd.Timedelta(0), pd.Timedelta(0)).fillna(pd.Timedelta(0))
    return pd.DataFrame(
        {"ticket_id": tickets["ticket_id"].to_numpy(dtype=object), "as_of": (created + life / 2).dt.floor("s").to_numpy(),
         "moment": "halfway"}
    ).astype({"as_of": "datetime64[ns, UTC]"})


def moment_frames(
    tickets: pd.DataFrame, events: pd.DataFrame, opening_window_minutes: float,
    daily_local_time: str, timezone: str,
) -> pd.DataFrame:
    """All :data:`EVALUATION_MOMENTS` of ``tickets`` as one as-of frame (``ticket_id``, ``as_of``, ``moment``).

    ``events`` may hold other tickets' events; only ``tickets``' moments are returned.
    ``daily_local_time`` (``HH:MM``) in ``timezone``: the nightly run's moment.
    """
    export_at = latest_timestamp(tickets, events)
    reassigned = first_reassignment_moments(events)
    reassigned = reassigned[reassigned["ticket_id"].isin(tickets["ticket_id"])]
    frames = [
        opening_moments(tickets, export_at, opening_window_minutes),
        reassigned,
        halfway_moments(tickets, events),
        daily_moments(tickets, events, export_at, daily_local_time, timezone, DAILY_EVALUATION_DAYS),
    ]
    return pd.concat(frames, ignore_index=True)
