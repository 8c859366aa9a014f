"""Typed Parquet ingest: a Parquet export is validated without a round trip through text.

Whatever the file type (CSV, Parquet holding text, Parquet holding typed timestamps),
the same export gives the same canonical tables, and the same bad values the same
reasons on the same lines.
"""

from __future__ import annotations

import shutil

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.core.io import iso_utc, read_export_table, write_export
from pipeline.core.params import IngestParams
from pipeline.sources import ingest_columns
from pipeline.sources.ingest import load_export
from pipeline.sources.simulator import simulate
from pipeline.stages.validate import validate_export

NOW = pd.Timestamp("2026-12-01T00:00:00Z")


def canonical(out) -> dict[str, pd.DataFrame]:
    """What validate wrote, read back as a later stage reads it."""
    return {
        "tickets": pd.read_parquet(out / "tickets.parquet"),
        "events": pd.read_parquet(out / "events.parquet"),
        "rejects": pd.read_csv(out / "rejects.csv", keep_default_na=False),
    }


# The default slice, and slices that cut the events table (and a ticket's events) in several places.
BATCH_ROWS = [IngestParams().events_per_slice, 97]


@pytest.mark.parametrize("batch_rows", BATCH_ROWS)
def test_csv_text_parquet_and_typed_parquet_give_identical_canonical_tables(tmp_path, batch_rows):
    simulation = simulate(300, 3)
    tickets, events = simulation.tickets, simulation.events
    write_export(tmp_path / "csv", tickets, events, "csv")
    write_export(tmp_path / "export_parquet", tickets, events, "parquet")  # typed timestamps, as users' exports
    assert pa.types.is_timestamp(pq.read_schema(tmp_path / "export_parquet" / "events.parquet").field("at").type)
    (tmp_path / "text_parquet").mkdir()
    for name, frame in (("tickets", tickets), ("events", events)):
        stamps = {c: iso_utc(frame[c]) for c in frame.columns if pd.api.types.is_datetime64_any_dtype(frame[c])}
        frame.assign(**stamps).to_parquet(tmp_path / "text_parquet" / f"{name}.parquet", index=False)
    typed = tmp_path / "typed_parquet"
    typed.mkdir()
    tickets.to_parquet(typed / "tickets.parquet", index=False)  # timestamp[us, UTC]
    # Events with zone-less timestamps (UTC wall time, as the contract reads them) and a pandas index.
    naive = events.assign(at=events["at"].dt.tz_localize(None))
    naive.set_axis(range(10, 10 + len(naive))).to_parquet(typed / "events.parquet")

    outputs = {}
    for name in ("csv", "text_parquet", "typed_parquet", "export_parquet"):
        validate_export(tmp_path / name, tmp_path / f"out_{name}", IngestParams(events_per_slice=batch_rows))
        outputs[name] = canonical(tmp_path / f"out_{name}")
    reference = outputs["csv"]
    assert len(reference["tickets"]) == len(tickets) and len(reference["events"]) == len(events)
    assert str(reference["events"]["at"].dtype) == "datetime64[ns, UTC]"
    assert list(reference["events"]["kind"].cat.categories) == ["message", "note", "status", "group",
                                                                "assignee", "priority", "field"]
    if batch_rows < len(events):  # written slice by slice: one row group per slice
        assert pq.ParquetFile(tmp_path / "out_typed_parquet" / "events.parquet").metadata.num_row_groups > 1
    for name in ("text_parquet", "typed_parquet", "export_parquet"):
        for table in ("tickets", "events", "rejects"):
            pd.testing.assert_frame_equal(outputs[name][table], reference[table], obj=f"{name} {table}")


def bad_rows() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Text tables with one bad value per reason, as a helpdesk's Parquet export could hold them."""
    tickets = pd.DataFrame({
        "ticket_id": ["T1", "T2", " T3 ", "T1", "T4", "", "T6", "T7"],
        "created_at": ["2026-03-02T09:00:00Z", "2026-03-02 10:00", "2026-03-02T11:00:00+01:00",
                       "2026-03-02T11:00:00Z", "3/2/2026 09:00", "2026-03-02T09:00:00Z", "1772442000",
                       "2026-03-02T09:00:00Z"],
        "status": ["solved", "Open", "pending", "open", "open", "open", "open", "open"],
        "satisfaction": ["bad", "", "", "", "", "", "", "meh"],
        "satisfaction_at": ["2026-03-03T10:00:00Z", "", "", "", "", "", "", ""],
    })
    events = pd.DataFrame({
        "ticket_id": ["T1", "T1", "T1", "T2", "T9", "T2", "T1", "T1", "T1", " T3", "T1", "T2"],
        "at": ["2026-03-02T09:00:00Z", "2026-03-02T09:30:00Z", "2026-03-02T09:31:00Z", "not a time",
               "2026-03-02T10:00:00Z", "2026-03-02T08:00:00Z", "2026-03-02T10:00:00Z", "2026-03-02T10:00:00Z",
               "2026-03-02T10:01:00Z", "2026-03-02T10:02:00Z", "2026-03-02T10:03:00Z", "2030-01-01T00:00:00Z"],
        "actor": ["customer", "Agent", "bot", "customer", "customer", "customer", "agent", "agent", "agent",
                  "system", "system", "customer"],
        "kind": ["message", "message", "message", "message", "message", "message", "status", "status", "Status",
                 "field", " field", "message"],
        "value": ["", "", "", "", "", "", "", "done", " Solved ", "x", "y", ""],
        "body": ["Charged twice", "Sorry", "Who", "Help", "Nobody", "Early", "", "", "", "", "", "Later"],
        "field": ["", "", "", "", "", "", "", "", "", "Product Area", "  ", ""],
    })
    return tickets, events


@pytest.mark.parametrize("batch_rows", [IngestParams().events_per_slice, 5, 1])
def test_bad_values_in_parquet_text_columns_get_the_csv_reasons_on_the_same_lines(tmp_path, batch_rows):
    tickets, events = bad_rows()
    for fmt in ("csv", "parquet"):
        (tmp_path / fmt).mkdir()
        tickets.to_csv(tmp_path / fmt / "tickets.csv", index=False) if fmt == "csv" else tickets.to_parquet(
            tmp_path / fmt / "tickets.parquet", index=False)
        events.to_csv(tmp_path / fmt / "events.csv", index=False) if fmt == "csv" else events.to_parquet(
            tmp_path / fmt / "events.parquet", index=False)
    from_csv = load_export(tmp_path / "csv", now=NOW)
    from_parquet = load_export(tmp_path / "parquet", IngestParams(events_per_slice=batch_rows), now=NOW)
    reasons = from_parquet.rejects.drop(columns="file")
    pd.testing.assert_frame_equal(reasons, from_csv.rejects.drop(columns="file"))
    assert set(from_parquet.rejects["file"]) == {"tickets.parquet", "events.parquet"}
    by_line = dict(zip(zip(reasons["table"], reasons["line"]), reasons["reason"], strict=True))
    assert by_line["tickets", 6] == ("created_at '3/2/2026 09:00' is not an ISO-8601 timestamp "
                                     "(day/month order is ambiguous: write ISO-8601 such as 2026-03-01T14:05:00Z)")
    assert by_line["tickets", 8].startswith("created_at '1772442000' is not an ISO-8601 timestamp (a bare number")
    assert by_line["tickets", 5] == "duplicate ticket_id 'T1' (first seen on line 2)"
    assert by_line["tickets", 7] == "empty ticket_id"
    assert by_line["tickets", 9] == "unknown satisfaction 'meh' (expected one of: good, bad, offered, unoffered)"
    assert by_line["events", 4] == "unknown actor 'bot' (expected one of: customer, agent, system)"
    assert by_line["events", 5] == "at 'not a time' is not an ISO-8601 timestamp"
    assert by_line["events", 6] == "event for unknown ticket_id 'T9'"
    assert by_line["events", 7].startswith("event at 2026-03-02T08:00:00Z is 120.0 minutes before its ticket")
    assert by_line["events", 8] == "status event without a value"
    assert by_line["events", 9].startswith("unknown status value 'done'")
    assert by_line["events", 12] == "field event without a field name (column `field`)"
    assert by_line["events", 13].startswith("at stamped in the future: 2030-01-01T00:00:00Z")
    assert len(reasons) == 13
    for table in ("tickets", "events"):
        pd.testing.assert_frame_equal(getattr(from_parquet, table), getattr(from_csv, table))
    events_out = from_parquet.events
    assert events_out["actor"].tolist() == ["customer", "agent", "agent", "system"]
    assert events_out.loc[events_out["kind"] == "field", "field"].tolist() == ["product_area"]
    assert events_out.loc[events_out["kind"] == "status", "value"].tolist() == ["solved"]
    assert events_out["ticket_id"].tolist().count("T3") == 1  # stripped, and found among the tickets


def test_typed_parquet_timestamps_are_used_as_they_are(tmp_path):
    export = tmp_path / "e"
    export.mkdir()
    created = pd.to_datetime(["2026-03-02T09:00:00.250Z", "2026-03-02T10:00:00Z", None, "2030-01-01T00:00:00Z"], format="ISO8601",
                             utc=True)
    pd.DataFrame({
        "ticket_id": [1, 2, 3, 4], "status": ["open"] * 4,
        "created_at": created.tz_convert("Europe/Paris"),  # another zone: the same instants
        "satisfaction_at": pd.Series([None] * 4, dtype="datetime64[ms]"),  # zone-less: read as UTC
    }).to_parquet(export / "tickets.parquet", index=False)
    pd.DataFrame({
        "ticket_id": [1, 2], "at": created[:2].tz_localize(None).astype("datetime64[us]"),
        "actor": ["customer", "customer"], "kind": ["message", "message"],
    }).to_parquet(export / "events.parquet", index=False)

    result = load_export(export, now=NOW)
    # Kept to the nanosecond: no text round trip cutting them to the second.
    assert result.tickets["created_at"].tolist() == list(created[:2])
    assert result.events["at"].tolist() == list(created[:2])
    assert str(result.tickets["created_at"].dtype) == str(result.events["at"].dtype) == "datetime64[ns, UTC]"
    assert result.tickets["satisfaction_at"].isna().all()
    reasons = dict(zip(result.rejects["line"], result.rejects["reason"], strict=True))
    assert reasons[4] == "created_at '' is not an ISO-8601 timestamp"  # a missing typed value, as an empty cell
    assert reasons[5].startswith("created_at stamped in the future: 2030-01-01T00:00:00Z (clock")


def test_read_export_table_keeps_parquet_types_and_reads_csv_as_text(tmp_path):
    frame = pd.DataFrame({"at": pd.to_datetime(["2026-03-02T09:00:00Z", None], utc=True),
                          "kind": ["message", None], "body": ["hi", None], "n": [1, None]})
    frame.to_parquet(tmp_path / "events.parquet", index=False)
    typed = read_export_table(tmp_path / "events.parquet", timestamp_columns=("at",), coded_columns=("kind",))
    assert str(typed["at"].dtype) == "datetime64[ns, UTC]"
    assert isinstance(typed["kind"].dtype, pd.CategoricalDtype) and typed["kind"].isna().tolist() == [False, True]
    assert typed["body"].tolist() == ["hi", ""] and typed["n"].tolist() == ["1", ""]
    assert typed["_line"].tolist() == [2, 3]
    text = read_export_table(tmp_path / "events.parquet")  # nothing asked to stay typed: all text
    assert text["at"].tolist() == ["2026-03-02T09:00:00Z", ""]
    frame.assign(body=["hi", "yo"]).to_csv(tmp_path / "events.csv", index=False)
    csv = read_export_table(tmp_path / "events.csv", timestamp_columns=("at",), coded_columns=("kind",))
    assert csv["kind"].tolist() == ["message", ""] and pd.api.types.is_string_dtype(csv["at"])


STAMPS = ["2026-03-01T14:05:00Z", "2026-03-01T14:05:00+01:00", "2026-03-01T14:05:00-0230", "2026-03-01 14:05:00Z",
          "2026-03-01T14:05:00.123456789Z", "2026-03-01T14:05:00", "2026-03-01", "2026-03-01T14:05", "2026-03",
          "", "2026-02-30T00:00:00Z", "2026-03-01T24:00:00Z", "2026-03-01T23:59:60Z", "2026-3-1T14:05:00Z",
          "20260301T140500Z", "1772442000", "3/2/2026", "not a time", "2026-03-01T14:05:00z", "1900-01-01T00:00:00Z",
          " 2026-03-01T14:05:00Z ", "\t2026-03-01T14:05:00", "  "]


@pytest.mark.parametrize("block_rows", [1, 3, 7, 1 << 18])
def test_timestamp_text_reads_as_pandas_reads_it_whichever_reader_takes_a_block(monkeypatch, block_rows):
    monkeypatch.setattr(ingest_columns, "_STAMP_BLOCK_ROWS", block_rows)
    text = pd.Series(STAMPS + STAMPS[::-1], dtype="str")
    stripped = text.str.strip()
    expected = pd.to_datetime(stripped.where(stripped != ""), utc=True, format="ISO8601", errors="coerce")
    pd.testing.assert_series_equal(ingest_columns.parse_timestamps(text), expected.astype("datetime64[ns, UTC]"))


def test_a_canonical_export_reloads_unchanged_after_typed_validation(tmp_path, tiny_export):
    shutil.copytree(tiny_export, tmp_path / "e")
    frames = {name: pd.read_csv(tmp_path / "e" / f"{name}.csv", dtype=str, keep_default_na=False)
              for name in ("tickets", "events")}
    for name, frame in frames.items():
        (tmp_path / "e" / f"{name}.csv").unlink()
        frame.to_parquet(tmp_path / "e" / f"{name}.parquet", index=False)
    first = validate_export(tmp_path / "e", tmp_path / "out", IngestParams())
    again = load_export(tmp_path / "out")
    pd.testing.assert_frame_equal(again.tickets, first.tickets)
    pd.testing.assert_frame_equal(again.events, load_export(tmp_path / "e").events)
    assert first.events is None
