"""Training snapshot moments: which moments, never at or after the rating, evenly capped."""

from __future__ import annotations

import pandas as pd
import pytest

from features.snapshots import snapshot_moments
from pipeline.core.params import SnapshotsParams
from pipeline.sources.ingest import load_export


def moments_of(tickets, events, **settings):
    """:func:`snapshot_moments` with the params model's defaults for what a test does not set."""
    defaults = SnapshotsParams()
    return snapshot_moments(tickets, events, **{
        "moments": defaults.moments, "max_per_ticket": defaults.max_per_ticket,
        "opening_window_minutes": defaults.opening_window_minutes, **settings})


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
