"""Training snapshot moments: which moments, never at or after the rating, evenly capped."""

from __future__ import annotations

import pandas as pd
import pytest

from features.snapshots import snapshot_moments
from pipeline.ingest import load_export


@pytest.fixture
def export(tiny_export):
    return load_export(tiny_export)


def test_moments_of_a_rated_ticket_stop_before_the_rating(export):
    snaps = snapshot_moments(export.tickets, export.events, max_per_ticket=20)
    t1 = snaps[snaps["ticket_id"] == "T1"]
    assert t1["moment"].tolist() == [
        "customer_message",  # 09:00 (the opening at 09:05 is later)
        "opening", "customer_message", "customer_message", "solved", "customer_message", "solved",
    ]
    assert (t1["as_of"] < pd.Timestamp("2026-03-03T12:00:00Z")).all()


def test_no_snapshot_at_or_after_satisfaction(export):
    tickets = export.tickets.copy()
    tickets.loc[tickets["ticket_id"] == "T1", "satisfaction_at"] = pd.Timestamp("2026-03-02T11:05:00Z")
    snaps = snapshot_moments(tickets, export.events, max_per_ticket=20)
    t1 = snaps[snaps["ticket_id"] == "T1"]
    # The solve at exactly 11:05 is the rating moment: excluded.
    assert t1["as_of"].max() == pd.Timestamp("2026-03-02T10:10:00Z")


def test_cap_keeps_first_and_last_evenly(export):
    snaps = snapshot_moments(export.tickets, export.events, max_per_ticket=3)
    t1 = snaps[snaps["ticket_id"] == "T1"]
    assert len(t1) == 3
    full = snapshot_moments(export.tickets, export.events, max_per_ticket=20)
    full_t1 = full[full["ticket_id"] == "T1"]["as_of"].tolist()
    assert t1["as_of"].tolist() == [full_t1[0], full_t1[3], full_t1[6]]


def test_unknown_moment_is_rejected(export):
    with pytest.raises(ValueError, match="unknown snapshot moment"):
        snapshot_moments(export.tickets, export.events, moments=["whenever"])
