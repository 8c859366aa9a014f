"""What real exports throw at ingestion: each case is a counted reject or a one-line error, never a traceback.

The table test runs `csat-triage validate EXPORT --out OUT` on a small hand-written
export per case and checks the exit code (0 clean, 1 rejects over the limit, 2 a
one-line error naming the file), and that exit 2 writes nothing to ``--out``.
The other tests call :func:`load_export` with a fixed wall clock.
"""

from __future__ import annotations

import logging

import pandas as pd
import pytest
from typer.testing import CliRunner

from features.build import latest_timestamp
from pipeline.cli import app
from pipeline.core.errors import ExportError
from pipeline.core.params import IngestParams
from pipeline.sources.ingest import load_export

TICKETS_HEADER = "ticket_id,created_at,status,assignee,subject\n"
EVENTS_HEADER = "ticket_id,at,actor,kind,value,body\n"
TICKET_A = "A,2026-03-02T09:00:00Z,open,,Refund\n"
TICKET_B = "B,2026-03-02T10:00:00Z,open,,Login\n"
EVENT_A = "A,2026-03-02T09:00:00Z,customer,message,,Charged twice\n"
EVENT_B = "B,2026-03-02T10:00:00Z,customer,message,,Locked out\n"
NOW = pd.Timestamp("2026-03-03T00:00:00Z")


def csv_export(tickets: str | bytes = TICKETS_HEADER + TICKET_A + TICKET_B,
               events: str | bytes = EVENTS_HEADER + EVENT_A + EVENT_B) -> dict:
    return {"tickets.csv": tickets, "events.csv": events}


def parquet_export(**ticket_columns) -> dict:
    tickets = {"ticket_id": ["1", "2"], "created_at": ["2026-03-02T09:00:00Z", "2026-03-02T10:00:00Z"],
               "status": ["open", "open"], **ticket_columns}
    events = {"ticket_id": ["1", "2"], "at": ["2026-03-02T09:00:00Z", "2026-03-02T10:00:00Z"],
              "actor": ["customer", "customer"], "kind": ["message", "message"]}
    if isinstance(ticket_columns.get("ticket_id"), list) and not isinstance(ticket_columns["ticket_id"][0], str):
        events["ticket_id"] = ticket_columns["ticket_id"]
    return {"tickets.parquet": pd.DataFrame(tickets), "events.parquet": pd.DataFrame(events)}


def write_export(directory, files: dict) -> None:
    directory.mkdir()
    for name, content in files.items():
        path = directory / name
        if content is None:  # a directory where the file should be
            path.mkdir()
        elif isinstance(content, pd.DataFrame):
            content.to_parquet(path, index=False)
        else:
            path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))


# (case, files, extra options, exit code, text expected in the error line / first reject / stderr)
CASES = [
    ("clean", csv_export(), (), 0, ""),
    ("helpdesk status name", csv_export(tickets=TICKETS_HEADER + TICKET_A + "B,2026-03-02T10:00:00Z,In Progress,,x\n"),
     (), 1, "tickets.csv line 3: unknown status 'In Progress'"),
    ("every ticket rejected", csv_export(tickets=TICKETS_HEADER + "A,2026-03-02T09:00:00Z,In Progress,,x\n"
                                         "B,2026-03-02T10:00:00Z,Waiting on customer,,x\n"),
     (), 1, "tickets.csv line 2: unknown status 'In Progress'"),
    ("epoch seconds in created_at", csv_export(tickets=TICKETS_HEADER + "A,1772442000,open,,x\n" + TICKET_B),
     (), 1, "tickets.csv line 2: created_at '1772442000' is not an ISO-8601 timestamp (a bare number: epoch time?"),
    ("header-only tickets", csv_export(tickets=TICKETS_HEADER), (), 1,
     "events.csv line 2: event for unknown ticket_id 'A'"),
    ("header-only tables", csv_export(tickets=TICKETS_HEADER, events=EVENTS_HEADER), (), 0, "no tickets rows"),
    ("blank line keeps physical line numbers", csv_export(
        tickets=TICKETS_HEADER + TICKET_A + "\n" + "B,2026-03-02T10:00:00Z,bogus,,x\n"),
     (), 1, "tickets.csv line 4: unknown status 'bogus'"),
    ("unquoted comma in the first data row", csv_export(
        events=EVENTS_HEADER + "A,2026-03-02T09:00:00Z,customer,message,,Hello, I was charged twice\n" + EVENT_B),
     (), 2, "events.csv: line 2 has 7 fields, the header has 6"),
    ("unquoted comma further down", csv_export(
        events=EVENTS_HEADER + EVENT_A + '"B",2026-03-02T10:00:00Z,customer,message,,"two\nlines"\n'
        + "B,2026-03-02T10:05:00Z,customer,message,,Hello, still locked out\n"),
     (), 2, "events.csv: line 5 has 7 fields, the header has 6"),
    ("fewer fields than the header", csv_export(tickets=TICKETS_HEADER + TICKET_A + "B,2026-03-02T10:00:00Z\n"),
     (), 1, "tickets.csv line 3: unknown status ''"),
    ("unclosed quote", csv_export(events=EVENTS_HEADER + EVENT_A + 'B,2026-03-02T10:00:00Z,customer,message,,"oops\n'),
     (), 2, "events.csv: line 3: a quoted field is never closed"),
    ("cp1252 text read as utf-8", csv_export(tickets=(TICKETS_HEADER + TICKET_A + "B,2026-03-02T10:00:00Z,open,,Café €5\n")
                                             .encode("cp1252")),
     (), 2, "tickets.csv: line 3: byte 0xe9 is not valid utf-8 text; if it was saved by Excel"),
    ("cp1252 with --encoding cp1252", csv_export(
        tickets=(TICKETS_HEADER + TICKET_A + "B,2026-03-02T10:00:00Z,open,,Café €5\n").encode("cp1252")),
     ("--encoding", "cp1252"), 0, ""),
    ("latin-1 with --encoding latin-1", csv_export(
        tickets=(TICKETS_HEADER + TICKET_A + "B,2026-03-02T10:00:00Z,open,,Señor\n").encode("latin-1")),
     ("--encoding", "latin-1"), 0, ""),
    ("utf-16 from Excel", csv_export(tickets=(TICKETS_HEADER + TICKET_A + TICKET_B).encode("utf-16")),
     (), 2, "pass --encoding utf-16"),
    ("semicolon-separated", csv_export(tickets=(TICKETS_HEADER + TICKET_A + TICKET_B).replace(",", ";")),
     (), 0, "tickets.csv: fields separated by semicolon"),
    ("tab-separated", csv_export(events=(EVENTS_HEADER + EVENT_A + EVENT_B).replace(",", "\t")),
     (), 0, "events.csv: fields separated by tab"),
    ("semicolons with --delimiter", csv_export(tickets=(TICKETS_HEADER + TICKET_A + TICKET_B).replace(",", ";"),
                                               events=(EVENTS_HEADER + EVENT_A + EVENT_B).replace(",", ";")),
     ("--delimiter", ";"), 0, "events.csv: fields separated by semicolon (--delimiter"),
    ("stamped in the future", csv_export(tickets=TICKETS_HEADER + TICKET_A + "B,2030-01-01T00:00:00Z,open,,x\n"),
     (), 1, "tickets.csv line 3: created_at stamped in the future: 2030-01-01T00:00:00Z"),
    ("duplicated event rows are kept", csv_export(events=EVENTS_HEADER + EVENT_A + EVENT_A + EVENT_B), (), 0, ""),
    ("unsorted events", csv_export(events=EVENTS_HEADER + EVENT_B + "A,2026-03-02T09:30:00Z,agent,message,,Sorry\n"
                                   + EVENT_A), (), 0, ""),
    ("whitespace around ids", csv_export(tickets=TICKETS_HEADER + " A ,2026-03-02T09:00:00Z, open ,,x\n" + TICKET_B,
                                         events=EVENTS_HEADER + "A  ,2026-03-02T09:00:00Z,customer,message,,x\n"
                                         + EVENT_B), (), 0, ""),
    ("NUL bytes in text", csv_export(events=EVENTS_HEADER + "A,2026-03-02T09:00:00Z,customer,message,,nul\x00byte\n"
                                     + EVENT_B), (), 0, ""),
    ("emoji and right-to-left text", csv_export(
        events=EVENTS_HEADER + "A,2026-03-02T09:00:00Z,customer,message,,شكرا 👍🏽 שלום\n" + EVENT_B), (), 0, ""),
    ("Excel-style date", csv_export(tickets=TICKETS_HEADER + "A,3/2/2026 09:00,open,,x\n" + TICKET_B),
     (), 1, "tickets.csv line 2: created_at '3/2/2026 09:00' is not an ISO-8601 timestamp (day/month order is ambiguous"),
    ("offsets mixed with naive timestamps", csv_export(
        tickets=TICKETS_HEADER + "A,2026-03-02T10:00:00+01:00,open,,x\n" + "B,2026-03-02 10:00,open,,y\n"), (), 0, ""),
    ("0-byte file", csv_export(tickets=b""), (), 2, "tickets.csv: empty file (0 bytes)"),
    ("directory where a file should be", {"tickets.csv": None, "events.csv": EVENTS_HEADER + EVENT_A}, (), 2,
     "tickets.csv: is a directory, not a file"),
    ("0-byte parquet", {"tickets.parquet": b"", "events.csv": EVENTS_HEADER}, (), 2, "tickets.parquet: empty file"),
    ("not a parquet file", {"tickets.parquet": TICKETS_HEADER + TICKET_A, "events.csv": EVENTS_HEADER}, (), 2,
     "tickets.parquet: cannot read table"),
    ("parquet created_at as int64", parquet_export(created_at=[1772442000, 1772445600]), (), 1,
     "tickets.parquet line 2: created_at '1772442000' is not an ISO-8601 timestamp"),
    ("parquet created_at as float", parquet_export(created_at=[1772442000.5, None]), (), 1,
     "tickets.parquet line 2: created_at '1772442000.5' is not an ISO-8601 timestamp"),
    ("parquet ticket_id as int", parquet_export(ticket_id=[1, 2]), (), 0, ""),
    ("parquet ticket_id as float with a gap", parquet_export(ticket_id=[1.0, None]), (), 1,
     "tickets.parquet line 3: empty ticket_id"),
]


@pytest.mark.parametrize(("files", "options", "code", "expected"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_validate_never_crashes_and_exits_as_documented(tmp_path, files, options, code, expected):
    export, out = tmp_path / "export", tmp_path / "out"
    write_export(export, files)
    result = CliRunner().invoke(app, ["validate", str(export), "--out", str(out), *options])
    assert "Traceback" not in result.output and result.exception is None or isinstance(
        result.exception, SystemExit), result.output
    assert result.exit_code == code, result.output
    stderr = result.stderr.splitlines()
    if code == 2:
        assert len(stderr) == 1 and stderr[0].startswith("error: "), result.stderr
        assert expected in stderr[0]
        assert str(export) in stderr[0]  # names the file
        assert not out.exists()
        return
    assert out.is_dir() and (out / "rejects.csv").is_file()
    rejects = pd.read_csv(out / "rejects.csv", keep_default_na=False)
    summary = result.stdout.splitlines()[0]
    rows = [int(n) for n in summary.replace(";", " ").split() if n.isdigit()]
    # input = clean + rejected, per table
    assert rows[0] == rows[1] + rows[2] and rows[3] == rows[4] + rows[5], summary
    if code == 1:
        assert len(rejects) > 0
        assert f"first: {expected}" in stderr[-1], result.stderr
    else:
        assert rejects.empty, rejects
        assert expected in result.stderr


def test_a_failed_validate_leaves_the_previous_output_byte_identical(tmp_path):
    export, out = tmp_path / "export", tmp_path / "out"
    write_export(export, csv_export())
    assert CliRunner().invoke(app, ["validate", str(export), "--out", str(out)]).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    (export / "events.csv").write_text(EVENTS_HEADER + "A,2026-03-02T09:00:00Z,customer,message,,Hi, there\n")
    assert CliRunner().invoke(app, ["validate", str(export), "--out", str(out)]).exit_code == 2
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_every_rejected_ticket_leaves_typed_empty_tables(tmp_path):
    write_export(tmp_path / "e", csv_export(tickets=TICKETS_HEADER + "A,2026-03-02T09:00:00Z,In Progress,,x\n"))
    result = load_export(tmp_path / "e", now=NOW)
    assert result.tickets.empty and result.events.empty
    assert str(result.tickets["created_at"].dtype) == "datetime64[ns, UTC]"
    assert str(result.events["at"].dtype) == "datetime64[ns, UTC]"
    assert result.summary() == "tickets: 1 rows = 0 clean + 1 rejected; events: 2 rows = 0 clean + 2 rejected"
    assert result.rejects["table"].tolist() == ["tickets", "events", "events"]  # the cause first


def test_line_numbers_are_physical_with_blank_lines_and_multiline_fields(tmp_path):
    events = (EVENTS_HEADER + "\n" + 'A,2026-03-02T09:00:00Z,customer,message,,"line one\nline two"\n'
              + ",,,,,\n\n" + "A,2026-03-02T09:05:00Z,bot,message,,x\n")
    write_export(tmp_path / "e", csv_export(events=events))
    result = load_export(tmp_path / "e", now=NOW)
    assert result.rejects[["file", "line"]].values.tolist() == [["events.csv", 7]]
    # Blank lines and all-empty rows (Excel leaves them) are neither rows nor rejects.
    assert result.input_rows["events"] == 2


def test_header_names_are_stripped_and_a_bom_removed(tmp_path):
    tickets = "\ufeff ticket_id , created_at ,status\n" + "A,2026-03-02T09:00:00Z,open\n"
    write_export(tmp_path / "e", csv_export(tickets=tickets.encode("utf-8"), events=EVENTS_HEADER + EVENT_A))
    assert load_export(tmp_path / "e", now=NOW).tickets["ticket_id"].tolist() == ["A"]


def test_future_stamps_are_rejected_and_the_default_as_of_ignores_them(tmp_path):
    tickets = TICKETS_HEADER + TICKET_A + TICKET_B + "C,2030-01-01T00:00:00Z,open,,typo\n"
    events = EVENTS_HEADER + EVENT_A + EVENT_B + "B,2030-01-01T00:00:00Z,customer,message,,later\n"
    write_export(tmp_path / "e", csv_export(tickets=tickets, events=events))
    result = load_export(tmp_path / "e", now=NOW)
    rejects = result.rejects.set_index(["table", "line"])["reason"]
    assert rejects["tickets", 4] == "created_at stamped in the future: 2030-01-01T00:00:00Z (clock 2026-03-03T00:00:00Z, " \
        "tolerance 60 minutes; a time-zone mistake? back-tests pass --as-of)"
    assert rejects["events", 4].startswith("at stamped in the future: 2030-01-01T00:00:00Z")
    assert latest_timestamp(result.tickets, result.events) == pd.Timestamp("2026-03-02T10:00:00Z")


def test_stamps_within_the_tolerance_are_kept(tmp_path):
    write_export(tmp_path / "e", csv_export())
    now = pd.Timestamp("2026-03-02T09:30:00Z")  # B is 30 minutes ahead of this clock
    assert load_export(tmp_path / "e", now=now).rejected_rows == 0
    strict = IngestParams(future_tolerance_minutes=10)
    result = load_export(tmp_path / "e", strict, now=now)
    assert result.rejects["reason"].str.contains("tolerance 10 minutes").sum() == 2  # ticket B and its event


def test_as_of_leaves_later_rows_unseen_without_rejecting_them(tmp_path):
    tickets = TICKETS_HEADER + TICKET_A + TICKET_B + "C,2030-01-01T00:00:00Z,open,,later\n"
    events = EVENTS_HEADER + EVENT_A + EVENT_B + "A,2030-01-01T00:00:00Z,agent,message,,later\n"
    write_export(tmp_path / "e", csv_export(tickets=tickets, events=events))
    result = load_export(tmp_path / "e", as_of="2026-03-02T09:30:00Z", now=NOW)
    assert result.rejected_rows == 0
    assert result.tickets["ticket_id"].tolist() == ["A"]
    assert result.events["at"].max() == pd.Timestamp("2026-03-02T09:00:00Z")
    assert result.after_as_of == {"tickets": 2, "events": 2}
    assert result.summary() == ("tickets: 3 rows = 1 clean + 0 rejected + 2 after as-of; "
                                "events: 3 rows = 1 clean + 0 rejected + 2 after as-of")


def test_many_stamps_after_the_clock_give_a_warning(tmp_path, caplog):
    write_export(tmp_path / "e", csv_export())
    with caplog.at_level(logging.WARNING, logger="pipeline"):
        result = load_export(tmp_path / "e", now=pd.Timestamp("2026-03-02T09:30:00Z"))
    assert result.rejected_rows == 0  # 30 minutes ahead: within the tolerance, kept
    warning = "2 of 4 timestamps (50.0%) are later than the clock (2026-03-02 09:30 UTC): a time-zone mistake?"
    assert any(w.startswith(warning) for w in result.warnings), result.warnings
    assert warning in caplog.text
    assert not any("later than the clock" in w for w in load_export(tmp_path / "e", now=NOW).warnings)


def test_long_texts_are_cut_and_counted(tmp_path):
    long_body = "é" * 50 + "\n" + "x" * 49  # 100 characters, one newline inside the quoted field
    events = EVENTS_HEADER + f'A,2026-03-02T09:00:00Z,customer,message,,"{long_body}"\n' + EVENT_B
    tickets = TICKETS_HEADER + "A,2026-03-02T09:00:00Z,open,," + "s" * 40 + "\n" + TICKET_B
    write_export(tmp_path / "e", csv_export(tickets=tickets, events=events))
    result = load_export(tmp_path / "e", IngestParams(max_text_chars=30), now=NOW)
    assert result.events["body"].tolist() == ["é" * 30, "Locked out"]
    assert result.tickets["subject"].tolist() == ["s" * 30, "Login"]
    assert result.texts_cut == 2
    assert result.summary().endswith("; 2 long texts cut to ingest.max_text_chars")
    assert any(w.startswith("2 texts (subjects or message bodies) longer than 30 characters were cut")
               for w in result.warnings), result.warnings


def test_emoji_rtl_and_nul_text_is_kept_intact(tmp_path):
    body = "שלום مرحبا 👍🏽 nul\x00byte"
    write_export(tmp_path / "e", csv_export(events=EVENTS_HEADER + f"A,2026-03-02T09:00:00Z,customer,message,,{body}\n"))
    assert load_export(tmp_path / "e", now=NOW).events["body"].tolist() == [body]


def test_ticket_row_values_that_no_event_carries_are_named_in_a_warning(tmp_path):
    tickets = TICKETS_HEADER + "A,2026-03-02T09:00:00Z,open,alice,x\n" + TICKET_B
    events = EVENTS_HEADER + EVENT_A + EVENT_B + "A,2026-03-02T09:01:00Z,system,status,open,\n"
    write_export(tmp_path / "e", csv_export(tickets=tickets, events=events))
    warnings = load_export(tmp_path / "e", now=NOW).warnings
    assert warnings == (
        "tickets.csv: 1 ticket rows have assignee set but events.csv has no assignee events, so has_assignee, "
        "assignee_hops will be empty: a ticket row holds only the end-of-export value; the history comes from "
        "assignee events",
    )
    with_event = events + "A,2026-03-02T09:02:00Z,system,assignee,alice,\n"
    (tmp_path / "e" / "events.csv").write_text(with_event)
    assert load_export(tmp_path / "e", now=NOW).warnings == ()


def test_mixed_offsets_and_naive_timestamps_are_utc(tmp_path):
    tickets = TICKETS_HEADER + "A,2026-03-02T10:00:00+01:00,open,,x\n" + "B,2026-03-02 10:00,open,,y\n"
    write_export(tmp_path / "e", csv_export(tickets=tickets))
    created = load_export(tmp_path / "e", now=NOW).tickets["created_at"].tolist()
    assert created == [pd.Timestamp("2026-03-02T09:00:00Z"), pd.Timestamp("2026-03-02T10:00:00Z")]


def test_integer_ids_in_parquet_match_whether_stored_as_int_or_float(tmp_path):
    files = parquet_export(ticket_id=[1, 2])
    files["events.parquet"]["ticket_id"] = [1.0, 2.0]
    write_export(tmp_path / "e", files)
    result = load_export(tmp_path / "e", now=NOW)
    assert result.rejected_rows == 0 and result.tickets["ticket_id"].tolist() == ["1", "2"]


def test_bad_encoding_or_delimiter_options_are_one_line_errors(tmp_path):
    write_export(tmp_path / "e", csv_export())
    for option, value in (("--encoding", "klingon"), ("--delimiter", "ab")):
        result = CliRunner().invoke(app, ["validate", str(tmp_path / "e"), option, value])
        assert result.exit_code == 2 and result.stderr.startswith(f"error: {option}: "), result.output


def test_a_decode_error_names_the_physical_line_far_into_the_file(tmp_path):
    rows = "".join(f"T{i},2026-03-02T09:00:00Z,open,,fine\n" for i in range(3000))
    tickets = (TICKETS_HEADER + rows).encode() + b"X,2026-03-02T09:00:00Z,open,,caf\xe9\n"
    write_export(tmp_path / "e", csv_export(tickets=tickets))
    with pytest.raises(ExportError, match=r"tickets\.csv: line 3002: byte 0xe9 is not valid utf-8 text"):
        load_export(tmp_path / "e", now=NOW)
