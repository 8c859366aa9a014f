"""Tests for the Zendesk modules (pipeline.sources.zendesk_*, pipeline.sinks.zendesk_payload): reading API dumps, writing them, payloads.

Expected values come from the hand-written dumps under tests/fixtures/zendesk/
(incremental/: ticket events export with duplicates, a deleted ticket, unknown
users, comments with and without text; audits/: the ticket audits shape). The
pusher is tested in tests/pipeline/sinks/test_zendesk_push.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from pipeline.core import contract
from pipeline.core.errors import ExportError
from pipeline.core.params import ZendeskParams
from pipeline.sinks import zendesk_payload
from pipeline.sources import ingest, zendesk_fields, zendesk_read, zendesk_shapes, zendesk_write
from tests.conftest import scored_frame

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "zendesk"
INCREMENTAL = FIXTURES / "incremental"
AUDITS = FIXTURES / "audits"
ATTRIBUTES = FIXTURES / "attributes"


# ===================================================================== reader

def rows(frame: pd.DataFrame, columns) -> list[tuple]:
    return [tuple(r) for r in frame[list(columns)].itertuples(index=False)]


def test_is_zendesk_export_only_for_json_tickets(tmp_path):
    assert zendesk_read.is_zendesk_export(INCREMENTAL)
    assert zendesk_read.is_zendesk_export(AUDITS)  # tickets.jsonl
    (tmp_path / "tickets.csv").write_text("ticket_id\n1\n")
    assert not zendesk_read.is_zendesk_export(tmp_path)
    assert not zendesk_read.is_zendesk_export(tmp_path / "missing")


def test_tickets_keep_latest_record_drop_deleted_and_take_timed_ratings():
    tickets, _ = zendesk_read.read_zendesk_export(INCREMENTAL)
    assert list(tickets.columns) == list(contract.TICKET_COLUMNS)
    assert rows(tickets, contract.TICKET_COLUMNS) == [
        # 101: second page's record (updated later) wins: solved, group 33, assignee 44;
        # the ratings file's latest rating (bad, updated 03-04) beats the embedded "offered".
        ("101", "2026-03-02T09:00:00Z", "email", "solved", "normal", "501", "33", "44",
         "Refund please", "bad", "2026-03-04T09:00:00Z"),
        # 102: voice -> phone; embedded rating has no time.
        ("102", "2026-03-02T11:00:00Z", "phone", "solved", "high", "502", "32", "42",
         "전화 연결이 안 돼요", "good", ""),
        # 103 is deleted in its latest record; 104: native_messaging -> chat, nulls -> "".
        ("104", "2026-03-05T10:00:00Z", "chat", "new", "", "504", "", "", "Hi", "", ""),
    ]


def test_ticket_events_become_contract_events():
    _, events = zendesk_read.read_zendesk_export(INCREMENTAL)
    assert list(events.columns) == list(contract.EVENT_COLUMNS)
    assert set(events["field"]) == {""}  # this dump has no attributes
    assert rows(events, contract.EVENT_COLUMNS[:6]) == [
        # Creation update by the requester: the opening message and the initial values.
        # The bare comment_present flag for the same comment is not counted again,
        # and assignee_id null at creation is skipped.
        ("101", "2026-03-02T09:00:00Z", "customer", "message", "", "I was charged twice, please refund"),
        ("101", "2026-03-02T09:00:00Z", "customer", "status", "new", ""),
        ("101", "2026-03-02T09:00:00Z", "customer", "priority", "normal", ""),
        ("101", "2026-03-02T09:00:00Z", "customer", "group", "31", ""),
        # updater_id -1 via Rule: a trigger.
        ("101", "2026-03-02T09:01:00Z", "system", "status", "open", ""),
        ("101", "2026-03-02T09:01:00Z", "system", "assignee", "41", ""),
        ("101", "2026-03-02T09:30:00Z", "agent", "message", "", "Sorry about that, refunding now."),
        ("101", "2026-03-02T09:30:00Z", "agent", "status", "pending", ""),
        ("101", "2026-03-02T09:40:00Z", "agent", "note", "", "Refund issued in billing tool"),
        ("101", "2026-03-03T10:00:00Z", "customer", "message", "", "Still not refunded!"),
        ("101", "2026-03-03T10:00:00Z", "customer", "status", "open", ""),
        # User 43 is not in users.json, not the requester, never an assignee: agent (fallback).
        ("101", "2026-03-03T10:30:00Z", "agent", "group", "33", ""),
        ("101", "2026-03-03T10:30:00Z", "agent", "message", "", "Moving you to the payments team"),
        # User 44 is unknown but is an assignee: agent. This update is repeated on a later page.
        ("101", "2026-03-03T11:00:00Z", "agent", "assignee", "44", ""),
        ("101", "2026-03-03T11:00:00Z", "agent", "status", "solved", ""),
        # 102 was exported without comment_events: comments have no text; the first
        # update only has a Unix timestamp; priority null at creation is skipped.
        ("102", "2026-03-02T11:00:00Z", "customer", "message", "", ""),
        ("102", "2026-03-02T11:00:00Z", "customer", "status", "new", ""),
        ("102", "2026-03-02T11:20:00Z", "agent", "note", "", ""),
        ("102", "2026-03-02T11:20:00Z", "agent", "status", "solved", ""),
        # 103 is deleted: its events are gone. 504 is unknown but is 104's requester.
        ("104", "2026-03-05T10:00:00Z", "customer", "message", "", "안녕하세요, 주문이 아직 안 왔어요"),
        ("104", "2026-03-05T10:00:00Z", "customer", "status", "new", ""),
    ]


def test_audits_become_contract_events():
    tickets, events = zendesk_read.read_zendesk_export(AUDITS)
    assert rows(tickets, ("ticket_id", "status", "priority", "group", "assignee", "satisfaction")) == [
        ("201", "open", "urgent", "71", "81", "unoffered")
    ]
    assert rows(events, ("at", "actor", "kind", "value", "body")) == [
        ("2026-04-01T08:00:00Z", "customer", "message", "", "I cannot log in"),
        ("2026-04-01T08:00:00Z", "customer", "status", "new", ""),
        ("2026-04-01T08:00:00Z", "customer", "group", "71", ""),
        ("2026-04-01T08:00:00Z", "customer", "priority", "urgent", ""),
        # The agent's update set status via a trigger (child via rule): system.
        ("2026-04-01T08:05:00Z", "system", "status", "open", ""),
        ("2026-04-01T08:05:00Z", "agent", "note", "", "checking SSO logs"),
        ("2026-04-01T08:05:00Z", "agent", "assignee", "81", ""),
        ("2026-04-01T08:30:00Z", "agent", "message", "", "Reset your password with the link we sent."),
        ("2026-04-01T08:30:00Z", "agent", "status", "pending", ""),
        ("2026-04-01T09:00:00Z", "customer", "message", "", "감사합니다, 이제 됩니다"),
        ("2026-04-01T09:00:00Z", "customer", "status", "open", ""),
    ]


def test_import_writes_contract_export_and_counts_what_it_left_out(tmp_path):
    summary = zendesk_read.import_zendesk(INCREMENTAL, tmp_path / "export")
    assert (summary.tickets, summary.events) == (3, 21)
    assert summary.event_source == "ticket_events"
    assert summary.ticket_records_read == 6
    assert summary.duplicate_ticket_records == 2      # older 101 and 103 records
    assert summary.deleted_tickets == 1               # 103
    assert summary.events_of_deleted_tickets == 2
    assert summary.duplicate_events == 2              # update 1007 seen twice
    assert summary.comments_without_body == 2         # ticket 102
    assert summary.empty_field_changes_skipped == 2   # assignee null, priority null
    assert summary.unknown_authors == 3               # 43, 44, 504
    assert summary.unknown_author_events == {"assignee": 2, "fallback": 2, "requester": 2}
    assert summary.ratings_from_ratings_file == 1
    assert any("include=comment_events" in line for line in summary.lines())

    written = pd.read_csv(tmp_path / "export" / "tickets.csv", dtype=str, keep_default_na=False)
    assert written["ticket_id"].tolist() == ["101", "102", "104"]
    events = pd.read_csv(tmp_path / "export" / "events.csv", dtype=str, keep_default_na=False)
    assert events["actor"].value_counts().to_dict() == {"customer": 10, "agent": 9, "system": 2}


def test_ingest_reads_a_zendesk_dump_without_rejects():
    result = ingest.load_export(INCREMENTAL)
    assert result.rejected_rows == 0
    assert (len(result.tickets), len(result.events)) == (3, 21)
    ticket_101 = result.tickets.set_index("ticket_id").loc["101"]
    assert ticket_101["satisfaction_at"] == pd.Timestamp("2026-03-04T09:00:00Z")


def test_audits_are_ignored_when_ticket_events_exist(tmp_path):
    shutil.copytree(INCREMENTAL, tmp_path / "dump")
    shutil.copy(AUDITS / "audits.json", tmp_path / "dump" / "audits.json")
    summary = zendesk_read.import_zendesk(tmp_path / "dump", tmp_path / "out")
    assert summary.events == 21  # not 21 + the audits' 11
    assert summary.ignored_files == ("audits.json",)


def test_users_sideloaded_with_tickets_decide_the_actor(tmp_path):
    ticket = {"id": 5, "created_at": "2026-03-01T00:00:00Z", "status": "open", "requester_id": 1}
    (tmp_path / "tickets.json").write_text(json.dumps(
        {"tickets": [ticket], "users": [{"id": 9, "role": "end-user"}, {"id": 1, "role": "end-user"}]}
    ))
    update = {"ticket_id": 5, "created_at": "2026-03-01T01:00:00Z", "updater_id": 9, "via": "Mail",
              "child_events": [{"id": 1, "event_type": "Comment", "author_id": 9, "body": "cc here", "public": True}]}
    (tmp_path / "ticket_events.jsonl").write_text(json.dumps(update) + "\n")  # one record per line
    _, events = zendesk_read.read_zendesk_export(tmp_path)
    # 9 is a CC'd end user: not the requester, yet a customer because the sideload says so.
    assert rows(events, ("actor", "kind", "body")) == [("customer", "message", "cc here")]


def test_reader_errors_are_one_line_and_say_what_to_do(tmp_path):
    with pytest.raises(ExportError, match="tickets.json or tickets.jsonl"):
        zendesk_read.read_zendesk_export(tmp_path)

    (tmp_path / "tickets.json").write_text('{"tickets": [{"id": 1, "status": "open"}]}')
    with pytest.raises(ExportError, match="include=comment_events") as missing:
        zendesk_read.read_zendesk_export(tmp_path)
    assert "\n" not in str(missing.value)

    (tmp_path / "ticket_events.jsonl").write_text('{"ticket_events": []}\n{"ticket_events": [\n')
    with pytest.raises(ExportError, match="line 2 is not valid JSON"):
        zendesk_read.read_zendesk_export(tmp_path)


# ================================================================= attributes

@pytest.fixture
def two_tickets_make_a_tag_frequent(monkeypatch):
    """The attributes fixture has 3 tickets; the real threshold is tested on generated tickets."""
    monkeypatch.setattr(zendesk_fields, "MIN_TICKETS_PER_TAG", 2)


def attribute_rows(events: pd.DataFrame) -> list[tuple]:
    return rows(events[events["kind"] == "field"], ("ticket_id", "at", "actor", "field", "value"))


def test_attributes_come_from_create_and_change_children(two_tickets_make_a_tag_frequent):
    _, events = zendesk_read.read_zendesk_export(ATTRIBUTES)
    C, A, S = "customer", "agent", "system"
    assert attribute_rows(events) == [
        # 301, created by the requester through the form: the Create children. Order number is
        # a text field (left out); organization is null at creation (nothing to set).
        ("301", "2026-05-01T08:00:00Z", C, "form", "Billing form"),  # named by ticket_forms.json
        ("301", "2026-05-01T08:00:00Z", C, "brand", "21"),
        ("301", "2026-05-01T08:00:00Z", C, "product_area", "billing"),  # named by ticket_fields.json
        ("301", "2026-05-01T08:00:00Z", C, "customer_plan", "pro"),
        ("301", "2026-05-01T08:00:00Z", C, "seats", "5"),
        ("301", "2026-05-01T08:00:00Z", C, "tag_refund", "1"),
        ("301", "2026-05-01T08:00:00Z", C, "tag_vip", "1"),
        ("301", "2026-05-01T09:30:00Z", A, "product_area", "payments"),
        ("301", "2026-05-01T09:30:00Z", A, "tag_vip", ""),  # removed
        ("301", "2026-05-01T09:30:00Z", A, "organization", "31"),
        ("301", "2026-05-01T09:30:00Z", A, "customer_plan", ""),  # set to null: cleared
        # 10:00: our own risk field and csat_risk_high / csat_p1 tags are not read back.
        # 302's dump starts after its creation: each first Change's previous value holds
        # from the creation (form, seats, the refund tag); brand and organization have no
        # event, so the ticket row gives them.
        ("302", "2026-05-01T09:00:00Z", S, "form", "Billing form"),
        ("302", "2026-05-01T09:00:00Z", S, "seats", "3"),
        ("302", "2026-05-01T09:00:00Z", S, "brand", "22"),
        ("302", "2026-05-01T09:00:00Z", S, "organization", "32"),
        ("302", "2026-05-01T09:00:00Z", S, "tag_refund", "1"),
        ("302", "2026-05-02T08:00:00Z", A, "form", "Tech form"),
        ("302", "2026-05-02T08:00:00Z", A, "tag_vip", "1"),
        ("302", "2026-05-02T08:00:00Z", A, "custom_360005", "x"),  # not in ticket_fields.json
        ("302", "2026-05-02T08:00:00Z", A, "seats", "7"),  # 7.0 in the dump
        # 303: form only on the ticket row; the tag `once` is on one ticket (rare).
        ("303", "2026-05-03T10:00:00Z", S, "form", "Billing form"),
        ("303", "2026-05-03T10:00:00Z", C, "product_area", "billing"),
        ("303", "2026-05-03T10:00:00Z", C, "tag_vip", "1"),
    ]
    assert set(events.loc[events["kind"] != "field", "field"]) == {""}


def test_ticket_row_custom_fields_and_tags_are_never_attributes(two_tickets_make_a_tag_frequent):
    _, events = zendesk_read.read_zendesk_export(ATTRIBUTES)
    # 303's row says plan "enterprise" and tag resolved_by_refund: values as of the export.
    assert "enterprise" not in set(events["value"])
    assert not events["field"].str.contains("resolved|once|csat|risk|order").any()


def test_import_summary_counts_attributes_and_what_was_left_out(tmp_path, two_tickets_make_a_tag_frequent):
    summary = zendesk_read.import_zendesk(ATTRIBUTES, tmp_path / "export")
    assert summary.attribute_events == 23
    assert summary.attributes == ("brand", "custom_360005", "customer_plan", "form", "organization",
                                  "product_area", "seats", "tag_refund", "tag_vip")
    assert summary.attribute_values_before_first_change == 3  # 302: form, seats, refund
    assert summary.attribute_values_from_ticket_rows == 3     # 302: brand, organization; 303: form
    assert summary.empty_attributes_at_creation == 1          # 301: organization null
    assert summary.skipped_field_values == 1                  # 301: order number (text)
    assert summary.own_output_values_skipped == 3             # risk field; csat_risk_high, csat_p1
    assert summary.rare_tags_left_out == 1                    # once
    assert any(line.startswith("attribute names: brand") for line in summary.lines())
    written = pd.read_csv(tmp_path / "export" / "events.csv", dtype=str, keep_default_na=False)
    assert (written["kind"] == "field").sum() == 23


def test_ingest_reads_attributes_without_rejects(two_tickets_make_a_tag_frequent):
    result = ingest.load_export(ATTRIBUTES)
    assert result.rejected_rows == 0
    fields = result.events[result.events["kind"] == "field"]
    seats = fields[(fields["ticket_id"] == "302") & (fields["field"] == "seats")]
    assert seats["value"].tolist() == ["3", "7"]
    cleared = fields[(fields["ticket_id"] == "301") & (fields["field"] == "customer_plan")]
    assert cleared["value"].fillna("").tolist() == ["pro", ""]


def test_without_field_and_form_lists_custom_fields_are_named_by_id(tmp_path, two_tickets_make_a_tag_frequent):
    shutil.copytree(ATTRIBUTES, tmp_path / "dump")
    (tmp_path / "dump" / "ticket_fields.json").unlink()
    (tmp_path / "dump" / "ticket_forms.json").unlink()
    _, events = zendesk_read.read_zendesk_export(tmp_path / "dump")
    fields = events[events["kind"] == "field"]
    assert {"custom_360001", "custom_360002", "custom_360003", "custom_360004"} <= set(fields["field"])
    assert "custom_360000000001" not in set(fields["field"])  # the risk field, by params id
    assert fields.loc[fields["field"] == "form", "value"].tolist() == ["11", "11", "12", "11"]


def test_our_own_field_and_tags_follow_the_zendesk_params(tmp_path, two_tickets_make_a_tag_frequent):
    own = ZendeskParams(risk_field_id=360001, tag_prefix="ref")  # pretend these are ours
    _, events = zendesk_read.read_zendesk_export(ATTRIBUTES, own)
    fields = set(events.loc[events["kind"] == "field", "field"])
    assert "product_area" not in fields
    assert "tag_refund" in fields  # `ref` + `und` is not risk_* or p<n>
    _, events = zendesk_read.read_zendesk_export(ATTRIBUTES, ZendeskParams(tag_prefix="ref"))
    assert "tag_csat_risk_high" not in set(events["field"])  # rare (one ticket) anyway


def test_audit_shape_attributes(tmp_path, two_tickets_make_a_tag_frequent):
    tickets = [{"id": i, "created_at": "2026-04-01T08:00:00Z", "status": "open", "requester_id": 9} for i in (1, 2)]
    (tmp_path / "tickets.json").write_text(json.dumps({"tickets": tickets}))
    (tmp_path / "ticket_fields.json").write_text(json.dumps(
        {"ticket_fields": [{"id": 77, "title": "Plan / Tier", "type": "tagger"},
                           {"id": 78, "title": "Notes", "type": "textarea"}]}))

    def audit(ticket, at, *events):
        return {"ticket_id": ticket, "created_at": at, "author_id": 9, "via": {"channel": "web"}, "events": list(events)}

    audits = [
        audit(1, "2026-04-01T08:00:00Z",
              {"type": "Create", "field_name": "77", "value": "gold"},
              {"type": "Create", "field_name": "78", "value": "call me at 555"},
              {"type": "Create", "field_name": "tags", "value": ["alpha", "beta"]},
              {"type": "Create", "field_name": "ticket_form_id", "value": "5"}),
        audit(1, "2026-04-01T09:00:00Z",
              {"type": "Change", "field_name": "tags", "value": ["beta"], "previous_value": ["alpha", "beta"]},
              {"type": "Change", "field_name": "77", "value": "silver", "previous_value": "gold"}),
        audit(2, "2026-04-01T10:00:00Z",
              {"type": "Change", "field_name": "tags", "value": ["alpha"], "previous_value": ["beta"]}),
    ]
    (tmp_path / "audits.json").write_text(json.dumps({"audits": audits}))
    _, events = zendesk_read.read_zendesk_export(tmp_path)
    C, S = "customer", "system"
    assert attribute_rows(events) == [
        ("1", "2026-04-01T08:00:00Z", C, "plan_tier", "gold"),
        ("1", "2026-04-01T08:00:00Z", C, "tag_alpha", "1"),
        ("1", "2026-04-01T08:00:00Z", C, "tag_beta", "1"),
        ("1", "2026-04-01T08:00:00Z", C, "form", "5"),
        ("1", "2026-04-01T09:00:00Z", C, "tag_alpha", ""),
        ("1", "2026-04-01T09:00:00Z", C, "plan_tier", "silver"),
        ("2", "2026-04-01T08:00:00Z", S, "tag_beta", "1"),  # held before the first change
        ("2", "2026-04-01T10:00:00Z", C, "tag_alpha", "1"),
        ("2", "2026-04-01T10:00:00Z", C, "tag_beta", ""),
    ]


def test_tag_children_with_only_added_and_removed_lists(tmp_path, two_tickets_make_a_tag_frequent):
    tickets = [{"id": i, "created_at": "2026-04-01T08:00:00Z", "status": "open"} for i in (1, 2)]
    (tmp_path / "tickets.json").write_text(json.dumps({"tickets": tickets}))
    updates = [
        {"ticket_id": i, "created_at": at, "updater_id": 5, "via": "Web form",
         "child_events": [{"added_tags": added, "removed_tags": removed, "event_type": "Change"}]}
        for i, at, added, removed in ((1, "2026-04-01T09:00:00Z", ["x"], []), (1, "2026-04-01T10:00:00Z", [], ["x"]),
                                      (2, "2026-04-01T09:00:00Z", ["x", "y"], []))
    ]
    (tmp_path / "ticket_events.json").write_text(json.dumps({"ticket_events": updates}))
    _, events = zendesk_read.read_zendesk_export(tmp_path)
    assert rows(events, ("ticket_id", "at", "field", "value")) == [
        ("1", "2026-04-01T09:00:00Z", "tag_x", "1"),
        ("1", "2026-04-01T10:00:00Z", "tag_x", ""),
        ("2", "2026-04-01T09:00:00Z", "tag_x", "1"),  # y is on one ticket only
    ]


def test_only_tags_on_enough_tickets_become_attributes_most_frequent_first(tmp_path, monkeypatch):
    n = zendesk_fields.MIN_TICKETS_PER_TAG
    tickets = [{"id": i, "created_at": "2026-04-01T08:00:00Z", "status": "open"} for i in range(1, n + 2)]
    (tmp_path / "tickets.json").write_text(json.dumps({"tickets": tickets}))

    def tags(i):  # common on n + 1 tickets, usual on n, scarce on n - 1
        return ["common"] + (["usual"] if i <= n else []) + (["scarce"] if i < n else [])

    updates = [{"ticket_id": i, "created_at": "2026-04-01T08:00:00Z", "updater_id": 5, "via": "Web form",
                "child_events": [{"tags": tags(i), "event_type": "Create"}]} for i in range(1, n + 2)]
    (tmp_path / "ticket_events.json").write_text(json.dumps({"ticket_events": updates}))
    summary = zendesk_read.import_zendesk(tmp_path, tmp_path / "out")
    assert summary.attributes == ("tag_common", "tag_usual") and summary.rare_tags_left_out == 1
    monkeypatch.setattr(zendesk_fields, "MAX_TAG_ATTRIBUTES", 1)
    summary = zendesk_read.import_zendesk(tmp_path, tmp_path / "out")
    assert summary.attributes == ("tag_common",) and summary.rare_tags_left_out == 2


def test_attributes_written_with_the_writer_helpers_read_back_by_name(tmp_path):
    names = pd.Series(["product_area", "form", "order_value_usd", "product_area"])
    ids = zendesk_fields.field_ids(names, zendesk_shapes.FIELD_ID_BASE)
    base = zendesk_shapes.FIELD_ID_BASE
    assert ids == {"order_value_usd": base + 1, "product_area": base + 2}  # form is a Zendesk key
    (tmp_path / "tickets.json").write_text(json.dumps({"tickets": [
        {"id": 1, "created_at": "2026-04-01T08:00:00Z", "status": "open"}]}))
    (tmp_path / "ticket_fields.json").write_text(json.dumps(zendesk_fields.ticket_fields_page(ids)))
    children = [
        {**zendesk_fields.attribute_child("form", "general", ids), "event_type": "Create"},
        {**zendesk_fields.attribute_child("product_area", "billing", ids), "event_type": "Create"},
        {**zendesk_fields.attribute_child("order_value_usd", "12.5", ids), "event_type": "Create"},
    ]
    change = [{**zendesk_fields.attribute_child("product_area", "", ids), "previous_value": "billing",
               "event_type": "Change"}]
    updates = [{"ticket_id": 1, "created_at": at, "updater_id": -1, "via": "Rule", "child_events": c}
               for at, c in (("2026-04-01T08:00:00Z", children), ("2026-04-01T09:00:00Z", change))]
    (tmp_path / "ticket_events.json").write_text(json.dumps({"ticket_events": updates}))
    _, events = zendesk_read.read_zendesk_export(tmp_path)
    assert rows(events, ("at", "field", "value")) == [
        ("2026-04-01T08:00:00Z", "form", "general"),
        ("2026-04-01T08:00:00Z", "product_area", "billing"),
        ("2026-04-01T08:00:00Z", "order_value_usd", "12.5"),
        ("2026-04-01T09:00:00Z", "product_area", ""),
    ]


def test_attribute_values_as_text():
    text = zendesk_fields.value_text
    assert [text(True), text(False), text(3.0), text(2.5), text(None), text(["b", "a"]), text(" x ")] == [
        "1", "0", "3", "2.5", "", "a,b", "x"]


# ===================================================================== writer

def simulator_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Contract frames shaped like the simulator's: numeric ids, agent_NNN, named groups."""
    t = pd.Timestamp
    tickets = pd.DataFrame(
        {
            "ticket_id": ["1", "2", "3"],
            "created_at": [t("2026-01-05T08:00:00Z"), t("2026-01-05T09:00:00Z"), t("2026-01-06T10:00:00Z")],
            "channel": ["email", "phone", "social"],
            "status": ["solved", "open", "new"],
            "priority": ["high", None, "low"],
            "requester_id": ["7001", "7002", "7001"],
            "group": ["tier2", "billing", None],
            "assignee": ["agent_017", "agent_003", None],
            "subject": ["Can't pay", "환불 요청", "Hello"],
            "satisfaction": ["bad", "offered", None],
            "satisfaction_at": [t("2026-01-07T12:00:00Z"), pd.NaT, pd.NaT],
        }
    )
    ev = [
        ("1", "2026-01-05T08:00:00Z", "customer", "message", None, "My card was declined"),
        ("1", "2026-01-05T08:00:00Z", "customer", "status", "new", ""),
        ("1", "2026-01-05T08:00:00Z", "customer", "group", "billing", ""),
        ("1", "2026-01-05T08:01:00Z", "system", "status", "open", ""),
        ("1", "2026-01-05T08:01:00Z", "system", "assignee", "agent_003", ""),
        ("1", "2026-01-05T09:00:00Z", "agent", "message", None, "Please try again"),
        ("1", "2026-01-05T09:00:00Z", "agent", "status", "pending", ""),
        ("1", "2026-01-05T09:05:00Z", "agent", "note", None, "escalating to tier2"),
        ("1", "2026-01-05T09:05:00Z", "agent", "group", "tier2", ""),
        ("1", "2026-01-05T09:05:00Z", "agent", "assignee", "agent_017", ""),
        ("1", "2026-01-06T07:00:00Z", "customer", "message", None, "Still broken"),
        ("1", "2026-01-06T07:00:00Z", "customer", "status", "open", ""),
        ("1", "2026-01-06T08:00:00Z", "agent", "message", None, "Fixed now"),
        ("1", "2026-01-06T08:00:00Z", "agent", "status", "solved", ""),
        ("1", "2026-01-06T09:00:00Z", "customer", "status", "open", ""),   # reopen
        ("1", "2026-01-06T09:30:00Z", "agent", "priority", "high", ""),
        ("1", "2026-01-06T10:00:00Z", "agent", "status", "solved", ""),
        ("2", "2026-01-05T09:00:00Z", "customer", "message", None, "환불해 주세요"),
        ("2", "2026-01-05T09:00:00Z", "customer", "status", "new", ""),
        ("2", "2026-01-05T09:00:00Z", "customer", "group", "billing", ""),
        ("2", "2026-01-05T09:10:00Z", "agent", "assignee", "agent_003", ""),
        ("2", "2026-01-05T09:10:00Z", "agent", "message", None, ""),
        ("2", "2026-01-05T09:10:00Z", "agent", "status", "open", ""),
        ("3", "2026-01-06T10:00:00Z", "customer", "message", None, "Hello?"),
        ("3", "2026-01-06T10:00:00Z", "customer", "status", "new", ""),
        ("3", "2026-01-06T10:00:00Z", "customer", "priority", "low", ""),
    ]
    events = pd.DataFrame(ev, columns=["ticket_id", "at", "actor", "kind", "value", "body"]).assign(field="")
    events["at"] = pd.to_datetime(events["at"], utc=True)
    return tickets, events


def as_text(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[column]):
            out[column] = out[column].dt.strftime("%Y-%m-%dT%H:%M:%SZ").where(out[column].notna(), "")
        else:
            out[column] = out[column].astype(object).where(out[column].notna(), "").astype(str)
    return out.reset_index(drop=True)


def names_back(frame: pd.DataFrame, id_map: dict, columns: dict[str, str]) -> pd.DataFrame:
    """Replace generated numeric ids with the simulator's names (inverse of id_map.json)."""
    inverse = {kind: {str(v): k for k, v in id_map[kind].items()} for kind in ("agents", "groups")}
    out = frame.copy()
    for column, kind in columns.items():
        out[column] = out[column].map(lambda v, kind=kind: inverse[kind].get(v, v))
    return out


def test_round_trip_is_exact_modulo_agent_and_group_ids(tmp_path):
    tickets, events = simulator_frames()
    zendesk_write.write_zendesk_export(tmp_path, tickets, events)
    back_tickets, back_events = zendesk_read.read_zendesk_export(tmp_path)
    id_map = json.loads((tmp_path / "id_map.json").read_text())

    back_tickets = names_back(back_tickets, id_map, {"group": "groups", "assignee": "agents"})
    pd.testing.assert_frame_equal(back_tickets, as_text(tickets), check_dtype=False)

    group_or_assignee = back_events["kind"].isin(["group", "assignee"])
    back_events.loc[back_events["kind"] == "group", "value"] = back_events.loc[
        back_events["kind"] == "group", "value"].map({str(v): k for k, v in id_map["groups"].items()})
    back_events.loc[back_events["kind"] == "assignee", "value"] = back_events.loc[
        back_events["kind"] == "assignee", "value"].map({str(v): k for k, v in id_map["agents"].items()})
    assert group_or_assignee.sum() == 6
    pd.testing.assert_frame_equal(back_events, as_text(events), check_dtype=False)


def test_round_trip_keeps_the_semantics_features_need(tmp_path):
    tickets, events = simulator_frames()
    zendesk_write.write_zendesk_export(tmp_path, tickets, events)
    _, back = zendesk_read.read_zendesk_export(tmp_path)
    messages = back[back["kind"] == "message"].groupby(["ticket_id", "actor"]).size().to_dict()
    assert messages == {("1", "agent"): 2, ("1", "customer"): 2, ("2", "agent"): 1,
                        ("2", "customer"): 1, ("3", "customer"): 1}
    statuses = back[(back["ticket_id"] == "1") & (back["kind"] == "status")]["value"].tolist()
    assert statuses == ["new", "open", "pending", "open", "solved", "open", "solved"]
    group_values = back[(back["ticket_id"] == "1") & (back["kind"] == "group")]["value"]
    assert group_values.nunique() == 2  # billing then tier2: one hop
    assert back.loc[back["kind"] == "note", "actor"].tolist() == ["agent"]


def test_writer_assigns_ids_deterministically_and_writes_zendesk_shapes(tmp_path):
    tickets, events = simulator_frames()
    zendesk_write.write_zendesk_export(tmp_path, tickets, events)
    id_map = json.loads((tmp_path / "id_map.json").read_text())
    base = zendesk_shapes.AGENT_ID_BASE
    # Sorted names: agent_003, agent_017, agent_unattributed.
    assert id_map["agents"] == {"agent_003": base + 1, "agent_017": base + 2, "agent_unattributed": base + 3}
    assert id_map["groups"] == {"billing": zendesk_shapes.GROUP_ID_BASE + 1, "tier2": zendesk_shapes.GROUP_ID_BASE + 2}

    users = json.loads((tmp_path / "users.json").read_text())["users"]
    assert {(u["id"], u["role"]) for u in users} >= {(7001, "end-user"), (7002, "end-user"), (base + 1, "agent")}

    first = json.loads((tmp_path / "tickets.jsonl").read_text().splitlines()[0])
    assert first["id"] == 1 and first["via"] == {"channel": "email"}
    assert first["assignee_id"] == base + 2 and first["updated_at"] == "2026-01-06T10:00:00Z"

    updates = [json.loads(line) for line in (tmp_path / "ticket_events.jsonl").read_text().splitlines()]
    creation = updates[0]
    assert creation["updater_id"] == 7001 and creation["event_type"] == "Audit"
    assert [c["event_type"] for c in creation["child_events"]] == ["Comment", "Create", "Create"]
    trigger = updates[1]
    assert trigger["updater_id"] == -1 and trigger["via"] == "Rule"
    assert trigger["child_events"][0] == {
        "id": trigger["child_events"][0]["id"], "via": "Rule", "via_reference_id": None,
        "status": "open", "previous_value": "new", "event_type": "Change",
    }
    ratings = json.loads((tmp_path / "satisfaction_ratings.json").read_text())["satisfaction_ratings"]
    assert [(r["ticket_id"], r["score"], r["updated_at"]) for r in ratings] == [(1, "bad", "2026-01-07T12:00:00Z")]

    # Same input, same bytes.
    zendesk_write.write_zendesk_export(tmp_path / "again", tickets, events)
    for name in ("tickets.jsonl", "ticket_events.jsonl", "users.json", "id_map.json"):
        assert (tmp_path / name).read_bytes() == (tmp_path / "again" / name).read_bytes()


def test_written_dump_passes_ingest(tmp_path):
    tickets, events = simulator_frames()
    zendesk_write.write_zendesk_export(tmp_path, tickets, events)
    result = ingest.load_export(tmp_path)
    assert result.rejected_rows == 0
    assert (len(result.tickets), len(result.events)) == (3, len(events))


def test_writer_rejects_non_numeric_ids_and_unknown_vocabulary(tmp_path):
    tickets, events = simulator_frames()
    tickets.loc[0, "ticket_id"] = "T1"
    with pytest.raises(ExportError, match="'T1' is not numeric"):
        zendesk_write.write_zendesk_export(tmp_path, tickets, events)
    tickets, events = simulator_frames()
    events.loc[3, "actor"] = "bot"
    with pytest.raises(ExportError, match="events.actor 'bot' is not one of"):
        zendesk_write.write_zendesk_export(tmp_path, tickets, events)


# ==================================================================== payload



def test_payload_tickets_carry_risk_field_tags_and_audit_metadata():
    batches = zendesk_payload.build_update_many_payload(scored_frame(4), risk_field_id=360012, model_version="m-7")
    assert len(batches) == 1
    tickets = batches[0]["tickets"]
    assert [t["id"] for t in tickets] == [1003, 1002, 1001, 1000]  # rank order
    assert tickets[0] == {
        "id": 1003,
        "custom_fields": [{"id": 360012, "value": 29}],
        "additional_tags": ["csat_risk_low", "csat_p4"],
        "remove_tags": ["csat_risk_high", "csat_risk_medium", "csat_p1", "csat_p2", "csat_p3"],
        "metadata": {"csat_triage": {"model_version": "m-7"}},
    }
    bands = {t["id"]: t["additional_tags"][0] for t in tickets}
    assert bands == {1000: "csat_risk_high", 1001: "csat_risk_medium", 1002: "csat_risk_medium",
                     1003: "csat_risk_low"}


def test_payload_batches_hold_at_most_100_tickets():
    batches = zendesk_payload.build_update_many_payload(scored_frame(250), 1, "m-7")
    assert [len(b["tickets"]) for b in batches] == [100, 100, 50]
    assert batches[0]["tickets"][0]["id"] == 1249  # rank 1 first
    with pytest.raises(ExportError, match="1..100"):
        zendesk_payload.build_update_many_payload(scored_frame(4), 1, "m-7", batch_size=101)


def test_payload_custom_bands_and_prefix():
    batches = zendesk_payload.build_update_many_payload(
        scored_frame(4), 1, "m-7", tag_prefix="ct_", risk_bands={"hot": 50, "cold": 0}
    )
    tags = {t["id"]: t["additional_tags"] for t in batches[0]["tickets"]}
    assert tags[1000] == ["ct_risk_hot", "ct_p1"] and tags[1002] == ["ct_risk_cold", "ct_p3"]
    assert batches[0]["tickets"][0]["remove_tags"] == ["ct_risk_hot", "ct_p1", "ct_p2", "ct_p3"]


def test_payload_refuses_non_numeric_ids_and_mismatched_model():
    scored = scored_frame(4)
    scored.loc[2, "ticket_id"] = "T-9"
    with pytest.raises(ExportError, match="Zendesk needs numeric ticket ids; 1 scored tickets") as err:
        zendesk_payload.build_update_many_payload(scored, 1, "m-7")
    assert "'T-9'" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ExportError, match="not 'm-8'"):
        zendesk_payload.build_update_many_payload(scored_frame(4), 1, "m-8")


def test_payload_file_is_one_json_document(tmp_path):
    batches = zendesk_payload.build_update_many_payload(scored_frame(4), 1, "m-7")
    path = zendesk_payload.write_update_many_payload(batches, tmp_path / "push" / "payload.json", created_from="scores.csv")
    document = json.loads(path.read_text())
    assert document["format"] == zendesk_payload.PAYLOAD_FORMAT
    assert (document["model_version"], document["created_from"]) == ("m-7", "scores.csv")
    assert (document["ticket_count"], document["batch_count"]) == (4, 1)
    assert document["batches"] == batches
    assert [p.name for p in path.parent.iterdir()] == ["payload.json"]  # no temp file left

