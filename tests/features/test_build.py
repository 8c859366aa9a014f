"""Hand-computed features on tests/fixtures/tiny_export.

T1 (email, Monday 2026-03-02 09:00 UTC, requester R1), public messages:
  09:00 customer, 09:30 agent, 10:00 customer, 10:10 customer ("STILL WRONG!!"),
  11:00 agent, 11:05 solved; Tue 09:00 customer + status open (reopen),
  group billing -> tech -> tech (one hop), 09:30 note, 09:40 agent, 09:45 solved.
T2 (chat, Monday 20:00, after hours): one customer message, no reply; group set
  twice to the same value.
T3 (web, Wednesday 08:00, requester R1 again).
Business hours: 08:00-18:00 Mon-Fri UTC.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from features.build import FEATURE_NAMES, build_features
from pipeline.sources.ingest import load_export


@pytest.fixture
def export(tiny_export):
    return load_export(tiny_export)


def features_at(export, as_of):
    return build_features(export.tickets, export.events, as_of).set_index("ticket_id")


def test_completed_ticket_with_reopen(export):
    t1 = features_at(export, "2026-03-03T12:00:00Z").loc["T1"]
    assert t1["customer_messages"] == 4
    assert t1["agent_replies"] == 3
    # c, a, c, c, a, c, a -> 5 speaker changes
    assert t1["ping_pong_count"] == 5
    assert t1["first_reply_minutes"] == 30
    # 09:00-09:30 (30) + 10:00-11:00 (60) + Tue 09:00 reopen-09:40 (40)
    assert t1["requester_wait_minutes"] == 130
    assert t1["current_wait_minutes"] == 0
    assert t1["reopens"] == 1
    assert t1["times_solved"] == 2
    assert t1["group_hops"] == 1
    assert t1["assignee_hops"] == 0
    assert t1["notes"] == 1
    assert t1["status_now"] == "solved"
    assert t1["current_group"] == "tech"
    assert t1["current_priority"] == "normal"
    assert t1["age_minutes"] == 27 * 60


def test_mid_conversation_unanswered_customer(export):
    t1 = features_at(export, "2026-03-02T10:30:00Z").loc["T1"]
    assert t1["customer_messages"] == 3
    assert t1["agent_replies"] == 1
    assert t1["ping_pong_count"] == 2
    # 30 min before the first reply + 30 min since 10:00, still unanswered
    assert t1["requester_wait_minutes"] == 60
    # The stretch began at 10:00 (the 10:10 message continues it).
    assert t1["current_wait_minutes"] == 30
    assert t1["last_message_shouting"] == 1
    assert t1["last_message_exclamations"] == 2
    assert t1["current_group"] == "billing"
    assert t1["status_now"] == "new"


def test_wait_stops_at_solve_and_resumes_after_reopen(export):
    # Solved at 11:05 after the agent replied; nothing waits overnight.
    t1 = features_at(export, "2026-03-03T08:59:00Z").loc["T1"]
    assert t1["requester_wait_minutes"] == 90
    assert t1["current_wait_minutes"] == 0
    t1 = features_at(export, "2026-03-03T09:10:00Z").loc["T1"]
    assert t1["requester_wait_minutes"] == 100
    assert t1["current_wait_minutes"] == 10
    assert t1["reopens"] == 1


def test_ticket_with_no_agent_reply_yet(export):
    t2 = features_at(export, "2026-03-03T12:00:00Z").loc["T2"]
    assert t2["agent_replies"] == 0
    assert math.isnan(t2["first_reply_minutes"])
    assert math.isnan(t2["minutes_since_last_agent_reply"])
    assert t2["requester_wait_minutes"] == 16 * 60
    assert t2["current_wait_minutes"] == 16 * 60
    # Business hours: only Tue 08:00-12:00 count.
    assert t2["requester_wait_business_minutes"] == 240
    assert t2["current_wait_business_minutes"] == 240
    assert t2["created_after_hours"] == 1
    assert t2["group_hops"] == 0  # the same group set twice is no change
    assert t2["current_priority"] == "(none)"
    assert t2["last_message_urgent_words"] == 2  # "urgent", "cannot log"


def test_events_after_as_of_are_ignored(export):
    before = features_at(export, "2026-03-02T09:29:59Z").loc["T1"]
    assert before["agent_replies"] == 0
    assert math.isnan(before["first_reply_minutes"])
    assert before["current_priority"] == "normal"
    assert before["requester_wait_minutes"] == pytest.approx(29 + 59 / 60)


def test_tickets_created_after_as_of_are_not_rows(export):
    early = features_at(export, "2026-03-03T12:00:00Z")
    assert list(early.index) == ["T1", "T2"]
    assert "T3" in features_at(export, None).index


def test_customer_history_is_strictly_before_creation(export):
    t3 = features_at(export, None).loc["T3"]
    assert t3["requester_previous_tickets"] == 1
    assert t3["requester_previous_bad_ratings"] == 1  # T1 rated bad on Tue 12:00, T3 created Wed
    assert t3["requester_previous_reopens"] == 1
    t1 = features_at(export, None).loc["T1"]
    assert t1[["requester_previous_tickets", "requester_previous_bad_ratings"]].sum() == 0


def test_snapshot_frame_gives_one_row_per_query_in_order(export):
    queries = pd.DataFrame(
        {"ticket_id": ["T2", "T1", "T1"],
         "as_of": pd.to_datetime(["2026-03-02T21:00Z", "2026-03-02T10:30Z", "2026-03-03T12:00Z"], utc=True),
         "moment": ["a", "b", "c"]}
    )
    table = build_features(export.tickets, export.events, queries)
    assert list(table.columns[:3]) == ["ticket_id", "as_of", "moment"]
    assert list(table.columns[3:-1]) == list(FEATURE_NAMES)
    # Beside the features: the subject and the first customer message, once it was written.
    assert table["opening_text"].tolist() == [
        "Locked out\nurgent: cannot log in", "Invoice wrong\nMy invoice is wrong", "Invoice wrong\nMy invoice is wrong",
    ]
    assert table["current_wait_minutes"].tolist() == [60, 30, 0]
    assert table["ping_pong_count"].tolist() == [0, 2, 5]


def test_opening_text_waits_for_the_first_customer_message(export):
    before = features_at(export, "2026-03-02T08:59:59Z")
    assert before.empty  # T1 not created yet
    queries = pd.DataFrame({"ticket_id": ["T1"], "as_of": pd.to_datetime(["2026-03-02T09:00:00Z"], utc=True)})
    assert build_features(export.tickets, export.events, queries)["opening_text"].tolist() == [
        "Invoice wrong\nMy invoice is wrong"
    ]


def test_unknown_ticket_in_queries_is_an_error(export):
    queries = pd.DataFrame({"ticket_id": ["nope"], "as_of": pd.to_datetime(["2026-03-03"], utc=True)})
    with pytest.raises(ValueError, match="'nope'"):
        build_features(export.tickets, export.events, queries)


def _with_attribute_events(export, rows):
    """The tiny export plus `field` events (ticket, at, field, value) and an organization column."""
    extra = pd.DataFrame(
        [{"ticket_id": t, "at": pd.Timestamp(at), "actor": "agent", "kind": "field", "value": v, "body": "",
          "field": f} for t, at, f, v in rows]
    )
    events = pd.concat([export.events, extra], ignore_index=True)
    events["kind"] = pd.Categorical(events["kind"].astype(str), categories=export.events["kind"].cat.categories)
    events["actor"] = pd.Categorical(events["actor"].astype(str), categories=export.events["actor"].cat.categories)
    tickets = export.tickets.assign(organization=["acme", None, "globex"])
    return tickets, events


def test_attributes_take_their_value_as_of_the_moment(export):
    tickets, events = _with_attribute_events(export, [
        ("T1", "2026-03-02T09:00:00Z", "Product Area", "billing"),
        ("T1", "2026-03-02T10:00:00Z", "product-area", "shipping"),  # the same attribute, spelt differently
        ("T1", "2026-03-03T09:00:00Z", "product area", ""),  # cleared
        ("T2", "2026-03-02T20:00:00Z", "seats", "12"),
    ])
    def at(moment):
        return build_features(tickets, events, moment, static_attributes=("organization",)).set_index("ticket_id")

    early = at("2026-03-02T09:59:59Z")
    assert [c for c in early.columns if c.startswith("attr_")] == ["attr_organization", "attr_product_area", "attr_seats"]
    assert early.loc["T1", "attr_product_area"] == "billing"
    assert early.loc["T1", "attr_organization"] == "acme"  # static: known from creation
    evening = at("2026-03-02T21:00:00Z")
    assert pd.isna(evening.loc["T2", "attr_organization"])  # empty on the ticket row
    assert at("2026-03-02T10:00:00Z").loc["T1", "attr_product_area"] == "shipping"  # at the event's second
    assert pd.isna(at("2026-03-03T09:00:00Z").loc["T1", "attr_product_area"])  # cleared
    assert at("2026-03-03T09:00:00Z").loc["T2", "attr_seats"] == "12"
    assert pd.isna(evening.loc["T2", "attr_product_area"])  # never set on T2
    # Not listed as static: the ticket-row column is no feature (it holds the value as of the export).
    plain = build_features(tickets, events, "2026-03-02T09:59:59Z")
    assert "attr_organization" not in plain.columns


def test_an_export_without_attributes_has_no_attribute_columns(export):
    table = build_features(export.tickets, export.events, "2026-03-04T00:00:00Z", static_attributes=("organization",))
    assert not [c for c in table.columns if c.startswith("attr_")]
