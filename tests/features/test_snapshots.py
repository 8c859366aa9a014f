"""Training snapshot moments: which moments, never at or after the rating, evenly capped."""

from __future__ import annotations

import pandas as pd
import pytest

from features.snapshots import resolve_moments, snapshot_moments
from pipeline.core.params import SnapshotsParams
from pipeline.sources.ingest import load_export


def moments_of(tickets, events, **settings):
    """:func:`snapshot_moments` with the params model's defaults for what a test does not set."""
    defaults = SnapshotsParams()
    return snapshot_moments(tickets, events, **{
        "moments": resolve_moments(defaults.moments, events, outcome_is_rating=True), "max_per_ticket": defaults.max_per_ticket,
        "opening_window_minutes": defaults.opening_window_minutes, "daily_local_time": defaults.daily_local_time,
        "timezone": "UTC", **settings})


@pytest.fixture
def export(tiny_export):
    return load_export(tiny_export)


def test_moments_of_a_rated_ticket_stop_before_the_rating(export):
    snaps = moments_of(export.tickets, export.events, max_per_ticket=20)
    t1 = snaps[snaps["ticket_id"] == "T1"]
    assert t1["moment"].tolist() == [
        "customer_message",  # 09:00 (the opening at 09:05 is later)
        "opening", "customer_message", "customer_message", "solved", "customer_message", "solved",
    ]
    assert (t1["as_of"] < pd.Timestamp("2026-03-03T12:00:00Z")).all()


def test_no_snapshot_at_or_after_satisfaction(export):
    tickets = export.tickets.copy()
    tickets.loc[tickets["ticket_id"] == "T1", "satisfaction_at"] = pd.Timestamp("2026-03-02T11:05:00Z")
    snaps = moments_of(tickets, export.events, max_per_ticket=20)
    t1 = snaps[snaps["ticket_id"] == "T1"]
    # The solve at exactly 11:05 is the rating moment: excluded.
    assert t1["as_of"].max() == pd.Timestamp("2026-03-02T10:10:00Z")


def test_cap_keeps_first_and_last_evenly(export):
    snaps = moments_of(export.tickets, export.events, max_per_ticket=3)
    t1 = snaps[snaps["ticket_id"] == "T1"]
    assert len(t1) == 3
    full = moments_of(export.tickets, export.events, max_per_ticket=20)
    full_t1 = full[full["ticket_id"] == "T1"]["as_of"].tolist()
    assert t1["as_of"].tolist() == [full_t1[0], full_t1[3], full_t1[6]]


def test_unknown_moment_is_rejected(export):
    with pytest.raises(ValueError, match="unknown snapshot moment"):
        moments_of(export.tickets, export.events, moments=["whenever"])


# --- field_change moments (logs without messages, e.g. ServiceNow) -------------------------


def test_field_change_moments_follow_each_change_while_open(export):
    snaps = moments_of(export.tickets, export.events, moments=["field_change"], max_per_ticket=20)
    assert set(snaps["moment"]) == {"field_change"}
    t1 = snaps[snaps["ticket_id"] == "T1"]["as_of"].tolist()
    # The two solves (11:05 on 2 March, 09:45 on 3 March) leave T1 solved: no moment there.
    # The reopen (status open) and both `tech` group events keep it open: moments.
    assert t1 == [pd.Timestamp(s) for s in (
        "2026-03-02T09:00:00Z", "2026-03-02T09:05:00Z",
        "2026-03-03T09:00:00Z", "2026-03-03T09:20:00Z", "2026-03-03T09:25:00Z",
    )]
    # T2's two group events share a second: one moment. T3 has no field change.
    assert snaps[snaps["ticket_id"] == "T2"]["as_of"].tolist() == [pd.Timestamp("2026-03-02T20:00:00Z")]
    assert "T3" not in set(snaps["ticket_id"])


def test_field_change_is_not_in_the_default_policy(export):
    default = moments_of(export.tickets, export.events, max_per_ticket=20)
    assert "field_change" not in set(default["moment"])
    combined = moments_of(
        export.tickets, export.events, moments=["opening", "field_change"], max_per_ticket=20
    )
    # T1 opening at 09:05 coincides with the priority change: merged, the first kind listed wins.
    t1 = combined[combined["ticket_id"] == "T1"]
    assert t1["moment"].tolist() == ["field_change", "opening", "field_change", "field_change", "field_change"]


def test_snapshots_of_an_export_without_any_rating():
    """An export with no satisfaction_at at all (ServiceNow) used to fail comparing tz-naive NaT."""
    tickets = pd.DataFrame({
        "ticket_id": ["A", "B"],
        "created_at": pd.to_datetime(["2026-03-02T09:00:00Z", "2026-03-02T10:00:00Z"], utc=True),
        "satisfaction_at": pd.Series([pd.NaT, pd.NaT], dtype="datetime64[ns, UTC]"),
    })
    events = pd.DataFrame({
        "ticket_id": ["A", "A", "B"],
        "at": pd.to_datetime(["2026-03-02T09:00:00Z", "2026-03-02T09:30:00Z", "2026-03-02T10:00:00Z"], utc=True),
        "actor": ["system", "agent", "system"],
        "kind": ["group", "status", "group"],
        "value": ["desk", "solved", "desk"],
    })
    snaps = moments_of(tickets, events, moments=["opening", "field_change", "solved"], max_per_ticket=20)
    assert snaps[snaps["ticket_id"] == "A"]["moment"].tolist() == ["field_change", "opening", "solved"]
    # B's opening (10:05) is capped at the export's last moment, 10:00, the time of its group
    # event: the two merge and the first kind listed (opening) is kept.
    assert snaps[snaps["ticket_id"] == "B"]["moment"].tolist() == ["opening"]


def _hand_export(rows_tickets, rows_events):
    tickets = pd.DataFrame(rows_tickets, columns=["ticket_id", "created_at", "satisfaction_at"])
    for column in ("created_at", "satisfaction_at"):
        tickets[column] = pd.to_datetime(tickets[column], utc=True)
    events = pd.DataFrame(rows_events, columns=["ticket_id", "at", "actor", "kind", "value"])
    events["at"] = pd.to_datetime(events["at"], utc=True)
    return tickets, events


def test_daily_moments_by_hand():
    # Export ends Fri 2026-03-06 12:00 UTC. Nightly run at 05:30 UTC.
    tickets, events = _hand_export(
        [("A", "2026-03-02T10:00Z", None),   # Mon 10:00, solved Wed 12:00
         ("B", "2026-03-02T04:00Z", None),   # Mon 04:00, solved Tue 03:00, reopened Thu 09:00, open at export
         ("C", "2026-03-05T06:00Z", "2026-03-06T05:00Z")],  # rated Fri 05:00: no moment at/after the rating
        [("A", "2026-03-04T12:00Z", "agent", "status", "solved"),
         ("B", "2026-03-03T03:00Z", "agent", "status", "solved"),
         ("B", "2026-03-05T09:00Z", "customer", "status", "open"),
         ("C", "2026-03-05T06:00Z", "customer", "message", ""),
         ("C", "2026-03-06T12:00Z", "agent", "note", "")],
    )
    moments = moments_of(tickets, events, moments=["daily"], max_per_ticket=10)
    got = {t: sorted(str(x) for x in g["as_of"]) for t, g in moments.groupby("ticket_id")}
    assert got == {
        "A": ["2026-03-03 05:30:00+00:00", "2026-03-04 05:30:00+00:00"],
        # Mon 05:30 (open, after creation at 04:00); Tue-Thu 05:30 solved; Fri 05:30 open again.
        "B": ["2026-03-02 05:30:00+00:00", "2026-03-06 05:30:00+00:00"],
    }
    assert set(moments["moment"]) == {"daily"}


def test_daily_moments_follow_the_local_clock_and_cap_per_ticket():
    # Created 2026-01-01 00:00 UTC, never solved, export 2026-03-01: 59 candidate days in Seoul (UTC+9).
    tickets, events = _hand_export(
        [("L", "2026-01-01T00:00Z", None)],
        [("L", "2026-03-01T00:00Z", "agent", "note", "")],
    )
    moments = moments_of(tickets, events, moments=["daily"], max_per_ticket=4, timezone="Asia/Seoul")
    local = pd.DatetimeIndex(moments["as_of"]).tz_convert("Asia/Seoul")
    assert len(moments) == 4  # evenly spaced, first and last kept
    assert set(local.strftime("%H:%M")) == {"05:30"}
    assert local[0].strftime("%Y-%m-%d") == "2026-01-02" and local[-1].strftime("%Y-%m-%d") == "2026-03-01"


def _reference_daily(tickets, events, export_at, timezone):
    """Per ticket, slowly: every local 05:30 after creation, up to the end, when the latest status is open."""
    out = set()
    for ticket in tickets.itertuples():
        status = events[(events["ticket_id"] == ticket.ticket_id) & (events["kind"] == "status")].sort_values(
            "at", kind="stable")
        end = export_at
        if len(status) and status["value"].iloc[-1] in ("solved", "closed"):
            end = status["at"].iloc[-1]
        day = ticket.created_at.tz_convert(timezone).normalize().tz_localize(None)
        while True:
            moment = (day + pd.Timedelta(hours=5, minutes=30)).tz_localize(timezone).tz_convert("UTC")
            if moment > end:
                break
            before = status[status["at"] <= moment]
            if moment > ticket.created_at and (before.empty or before["value"].iloc[-1] not in ("solved", "closed")):
                out.add((ticket.ticket_id, moment))
            day += pd.Timedelta(days=1)
    return out


def test_daily_moments_equal_a_plain_reference_on_a_simulated_export():
    from pipeline.sources.simulator import simulate

    sim = simulate(250, seed=4, days=15)
    export_at = sim.export_at
    tickets = sim.tickets.assign(satisfaction_at=pd.Series(pd.NaT, index=sim.tickets.index, dtype="datetime64[ns, UTC]"))  # rating cut: tested above
    fast = moments_of(tickets, sim.events, moments=["daily"], max_per_ticket=1000, timezone="Europe/Berlin")
    got = set(zip(fast["ticket_id"], fast["as_of"]))
    expected = _reference_daily(tickets, sim.events, export_at, "Europe/Berlin")
    assert len(expected) > 100
    assert got == expected


def test_auto_moments_follow_the_log_and_the_target(export):
    events = export.events
    assert resolve_moments("auto", events, outcome_is_rating=True) == (
        "opening", "customer_message", "daily", "solved")
    # A time-based target (an SLA) is decided at the solve: no solved moment.
    assert resolve_moments("auto", events, outcome_is_rating=False) == ("opening", "customer_message", "daily")
    # An audit log without messages (ServiceNow): rows after field changes instead.
    audit = events[events["kind"].astype(str) != "message"]
    assert resolve_moments("auto", audit, outcome_is_rating=True) == ("opening", "field_change", "daily")
    assert resolve_moments(("opening", "solved"), audit, outcome_is_rating=False) == ("opening", "solved")
