"""Exports too big to generate in one piece: simulated, validated and written in chunks.

Generating 1 M tickets at once peaks at about 14 GB (the simulator holds every event,
its text and the attribute events together), so an export of several million tickets
cannot be made that way on a 24 GB machine. Above :data:`CHUNKED_ABOVE_TICKETS` the
benchmark export is made :data:`CHUNK_TICKETS` tickets at a time:

- each chunk is its own simulated desk (seed ``seed * 1000 + chunk``) over the same 120
  days, with the same groups and agents; its ticket, requester and organisation ids get
  the chunk number in front, so ids never collide and every requester's tickets stay in
  one chunk (a customer's history is whole);
- the chunk is written as one part file of the raw export's Parquet directories
  (``tickets.parquet/part-00000.parquet``, ``events.parquet/...``, ``truth.parquet/...``),
  then validated alone (``validate_export``) into one part of the canonical tables'
  directories. A chunk holds all its tickets' events, so validating it alone checks what
  validating the whole export would; the reject counts are summed into ``canonical.json``.

Peak memory is one chunk's, whatever the size. Only the Dask engine's stages read such
an export (they read Parquet directories); the one-machine stages are not run at these
sizes. Generation and chunk validation are untimed preparation, like every export's.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd

from benchmarks.workdir import Paths

CHUNK_TICKETS = 500_000
CHUNKED_ABOVE_TICKETS = 1_000_000
# The stages that read Parquet directories; the others are not run on a chunked export.
CHUNKED_STAGES = ("featurize_dask", "snapshots_dask", "train_dask")
PART_FILE = "part-{:05d}.parquet"


def is_chunked(size: int) -> bool:
    return size > CHUNKED_ABOVE_TICKETS


def chunk_sizes(size: int) -> list[int]:
    """Tickets per chunk: :data:`CHUNK_TICKETS` each, the remainder in the last."""
    full, rest = divmod(size, CHUNK_TICKETS)
    return [CHUNK_TICKETS] * full + ([rest] if rest else [])


def with_chunk_ids(tickets: pd.DataFrame, events: pd.DataFrame, truth: pd.DataFrame,
                   chunk: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The chunk's ids prefixed with its number (1-based): unique across chunks, one width within a size."""
    prefix = str(chunk + 1)

    def prefixed(values: pd.Series, separator: str = "") -> pd.Series:
        # Missing (no organisation) and empty values stay as they are.
        text = values.astype(object)
        known = text.notna() & (text.astype(str) != "")
        return text.where(~known, prefix + separator + text.astype(str))

    tickets = tickets.assign(ticket_id=prefixed(tickets["ticket_id"]), requester_id=prefixed(tickets["requester_id"]))
    if "organization" in tickets.columns:
        tickets["organization"] = prefixed(tickets["organization"], "-")  # names: "2-Red Labs"
    events = events.assign(ticket_id=prefixed(events["ticket_id"]))
    truth = truth.assign(ticket_id=prefixed(truth["ticket_id"]))
    return tickets, events, truth


def generate_chunked(paths: Paths, seed: int, echo=print) -> dict:
    """Write the raw export to ``paths.export_tmp`` and its canonical tables to ``paths.canonical_tmp``, chunk by chunk.

    Returns the counts ``run_generate`` reports.
    """
    from benchmarks import attributes
    from pipeline.core.io import write_export, write_table
    from pipeline.core.params import IngestParams
    from pipeline.sources.ingest import CANONICAL_FORMAT
    from pipeline.sources.simulator import simulate
    from pipeline.stages.validate import validate_export

    for directory in (paths.export_tmp, paths.canonical_tmp):
        if directory.exists():
            shutil.rmtree(directory)
    scratch = paths.export_tmp / ".chunk"
    checked = paths.export_tmp / ".chunk-canonical"
    totals = {"tickets": 0, "events": 0, "field_events": 0, "input_rows": {"tickets": 0, "events": 0},
              "rejected_rows": 0}
    names: set[str] = set()
    export_at = None
    sizes = chunk_sizes(paths.size)
    for chunk, n in enumerate(sizes):
        echo(f"  chunk {chunk + 1}/{len(sizes)}: {n} tickets", flush=True)
        simulation = simulate(n, seed * 1000 + chunk)
        tickets, events, truth = with_chunk_ids(simulation.tickets, simulation.events, simulation.truth, chunk)
        events = attributes.with_benchmark_attributes(tickets, events, seed * 1000 + chunk)
        write_export(scratch, tickets, events, "parquet")
        fields = events["field"].where(events["kind"] == "field").dropna()
        names.update(fields.unique())
        totals["tickets"] += len(tickets)
        totals["events"] += len(events)
        totals["field_events"] += len(fields)
        export_at = simulation.export_at
        del simulation, tickets, events, fields
        validated = validate_export(scratch, checked, IngestParams())
        totals["rejected_rows"] += validated.rejected_rows
        for table, count in validated.input_rows.items():
            totals["input_rows"][table] = totals["input_rows"].get(table, 0) + int(count)
        del validated
        for source, target in ((scratch, paths.export_tmp), (checked, paths.canonical_tmp)):
            for table in ("tickets", "events"):
                _move_part(source / f"{table}.parquet", target / f"{table}.parquet", chunk)
        write_table(truth, paths.export_tmp / "truth.parquet" / PART_FILE.format(chunk))
    shutil.rmtree(scratch)
    shutil.copy(checked / "rejects.csv", paths.canonical_tmp / "rejects.csv")  # header only when nothing was rejected
    shutil.rmtree(checked)
    (paths.canonical_tmp / "canonical.json").write_text(json.dumps(
        {"format": CANONICAL_FORMAT, "input_rows": totals["input_rows"],
         "rejected_rows": totals["rejected_rows"], "chunks": len(sizes)}, indent=2) + "\n")
    return {"tickets": totals["tickets"], "events": totals["events"], "export_at": export_at.isoformat(),
            "attributes": len(names), "field_events": totals["field_events"], "chunks": len(sizes),
            "chunk_tickets": CHUNK_TICKETS}


def install_canonical(paths: Paths) -> None:
    """Put the canonical tables made with the export in place, newer than the export's marker (so fresh)."""
    if not paths.canonical_tmp.exists():
        return
    if paths.canonical.exists():
        shutil.rmtree(paths.canonical)
    paths.canonical.parent.mkdir(parents=True, exist_ok=True)
    paths.canonical_tmp.rename(paths.canonical)
    paths.output_of("validate").touch()


def _move_part(source: Path, target_dir: Path, chunk: int) -> None:
    target_dir.mkdir(parents=True, exist_ok=True)
    source.rename(target_dir / PART_FILE.format(chunk))
