"""Ingestion: every rejection reason, the input = clean + rejected invariant, fatal errors."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from pipeline.core.errors import ExportError
from pipeline.core.params import IngestParams
from pipeline.sources.ingest import load_export
from pipeline.stages.validate import validate_export


def reasons_by_line(result, table):
    rejects = result.rejects[result.rejects["table"] == table]
    return dict(zip(rejects["line"], rejects["reason"]))


def test_each_rejection_reason_names_file_line_and_reason(bad_export):
    result = load_export(bad_export)
    tickets = reasons_by_line(result, "tickets")
    events = reasons_by_line(result, "events")
    assert tickets == {
        4: "created_at 'yesterday' is not an ISO-8601 timestamp",
        5: "duplicate ticket_id 'T1' (first seen on line 2)",
        6: "unknown status 'escalated' (expected one of: new, open, pending, hold, solved, closed)",
        7: "satisfaction_at 'not-a-time' is not an ISO-8601 timestamp",
    }
    # Line 2 holds a quoted body spanning two physical lines, so the next record starts on line 4.
    assert events[5] == "unknown actor 'bot' (expected one of: customer, agent, system)"
    assert events[6].startswith("unknown kind 'call'")
    assert events[7] == "at 'not a time' is not an ISO-8601 timestamp"
    assert events[8] == "event for unknown ticket_id 'T9'"
    assert events[9].startswith("event at 2026-03-02T08:00:00Z is 120.0 minutes before its ticket was created")
    assert events[11] == "status event without a value"
    assert events[12].startswith("unknown status value 'done'")
    assert set(result.rejects["file"]) == {"tickets.csv", "events.csv"}


def test_input_rows_equal_clean_plus_rejected(bad_export):
    result = load_export(bad_export)
    assert result.input_rows == {"tickets": 6, "events": 11}
    assert len(result.tickets) + (result.rejects["table"] == "tickets").sum() == 6
    assert len(result.events) + (result.rejects["table"] == "events").sum() == 11
    assert result.summary() == (
        "tickets: 6 rows = 2 clean + 4 rejected; events: 11 rows = 4 clean + 7 rejected"
    )


def test_clean_rows_are_typed_and_normalised(bad_export):
    result = load_export(bad_export)
    tickets = result.tickets.set_index("ticket_id")
    assert list(tickets.index) == ["T1", "T2"]
    # "2026-03-02 10:00" has no offset: taken as UTC.
    assert tickets.loc["T2", "created_at"] == pd.Timestamp("2026-03-02T10:00:00Z")
    assert tickets.loc["T1", "plan"] == "gold"  # extra columns are kept
    assert pd.isna(tickets.loc["T2", "priority"])
    events = result.events
    # Clock skew within the tolerance is kept; status values are lower-cased.
    assert (events["ticket_id"] == "T2").sum() == 1
    assert events.loc[events["kind"] == "status", "value"].tolist() == ["solved"]
    assert str(events["at"].dtype) == "datetime64[ns, UTC]"


def test_offsets_are_converted_to_utc(tmp_path, tiny_export):
    shutil.copytree(tiny_export, tmp_path / "export")
    tickets = pd.read_csv(tmp_path / "export" / "tickets.csv", dtype=str)
    tickets.loc[0, "created_at"] = "2026-03-02T18:00:00+09:00"
    tickets.to_csv(tmp_path / "export" / "tickets.csv", index=False)
    result = load_export(tmp_path / "export")
    assert result.tickets.loc[0, "created_at"] == pd.Timestamp("2026-03-02T09:00:00Z")


def test_missing_required_column_fails_the_run_naming_column_and_file(tmp_path, tiny_export):
    shutil.copytree(tiny_export, tmp_path / "export")
    events = pd.read_csv(tmp_path / "export" / "events.csv", dtype=str).drop(columns=["actor"])
    events.to_csv(tmp_path / "export" / "events.csv", index=False)
    with pytest.raises(ExportError, match=r"events\.csv: missing required column 'actor'"):
        load_export(tmp_path / "export")


def test_missing_table_is_a_clear_error(tmp_path):
    (tmp_path / "tickets.csv").write_text("ticket_id,created_at,status\n")
    with pytest.raises(ExportError, match="no events.csv or events.parquet"):
        load_export(tmp_path)


def test_optional_columns_may_be_absent(tmp_path):
    (tmp_path / "tickets.csv").write_text("ticket_id,created_at,status\nA,2026-01-01T00:00:00Z,open\n")
    (tmp_path / "events.csv").write_text("ticket_id,at,actor,kind\nA,2026-01-01T00:00:00Z,customer,message\n")
    result = load_export(tmp_path)
    assert result.rejected_rows == 0
    assert result.tickets.loc[0, "channel"] == "unknown"
    assert pd.isna(result.tickets.loc[0, "satisfaction"])


def test_validate_writes_canonical_tables_that_reload_identically(tmp_path, tiny_export):
    first = validate_export(tiny_export, tmp_path / "clean", IngestParams())
    assert {p.name for p in (tmp_path / "clean").iterdir()} == {
        "tickets.parquet", "events.parquet", "rejects.csv", "canonical.json"
    }
    again = load_export(tmp_path / "clean")
    pd.testing.assert_frame_equal(again.tickets, first.tickets)
    pd.testing.assert_frame_equal(again.events, load_export(tiny_export).events)
    assert first.events is None  # written slice by slice, not held
    assert again.input_rows == first.input_rows


def test_parquet_export_gives_the_same_tables_as_csv(tmp_path, tiny_export):
    out = tmp_path / "pq"
    out.mkdir()
    for name in ("tickets", "events"):
        pd.read_csv(tiny_export / f"{name}.csv", dtype=str, keep_default_na=False).to_parquet(out / f"{name}.parquet")
    from_csv = load_export(tiny_export)
    from_parquet = load_export(out)
    pd.testing.assert_frame_equal(from_parquet.tickets, from_csv.tickets)
    pd.testing.assert_frame_equal(from_parquet.events, from_csv.events)
