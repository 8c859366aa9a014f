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
from pipeline.sinks import zendesk_payload
from pipeline.sources import ingest, zendesk_read, zendesk_shapes, zendesk_write
from tests.conftest import scored_frame

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "zendesk"
INCREMENTAL = FIXTURES / "incremental"
AUDITS = FIXTURES / "audits"


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
    assert rows(events, contract.EVENT_COLUMNS) == [
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
    events = pd.DataFrame(ev, columns=list(contract.EVENT_COLUMNS))
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

