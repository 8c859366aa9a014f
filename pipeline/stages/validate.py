"""Stage `validate`: check an export against the contract and write the canonical tables.

Writes ``tickets.parquet``, ``events.parquet``, ``rejects.csv`` and the canonical
marker into ``out_dir`` (each atomically) when ``out_dir`` is given.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.core.io import parquet_batches, write_json, write_table
from pipeline.core.params import IngestParams
from pipeline.sources.ingest import (
    CANONICAL_FORMAT,
    CANONICAL_MARKER,
    ValidationResult,
    load_export,
)


def validate_export(export_dir: str | Path, out_dir: str | Path | None, ingest: IngestParams) -> ValidationResult:
    """Validate ``export_dir``; with ``out_dir``, write the canonical tables and the rejects there
    (the result's ``events`` is then None: they are in ``out_dir/events.parquet``)."""
    if out_dir is None:
        return load_export(export_dir, ingest)
    out_dir = Path(out_dir)
    created = not out_dir.exists()
    try:
        # Events are written slice by slice while the next slice is validated, not once at the end.
        with parquet_batches(out_dir / "events.parquet") as write_events:
            # The clean events are written and dropped slice by slice: never the whole table in memory.
            result = load_export(export_dir, ingest, on_events=write_events, keep_events=False)
    except BaseException:
        if created and out_dir.is_dir() and not any(out_dir.iterdir()):
            out_dir.rmdir()  # a run that failed leaves no trace, not even an empty directory
        raise
    write_table(result.tickets, out_dir / "tickets.parquet")
    write_table(result.rejects, out_dir / "rejects.csv")
    write_json(
        {"format": CANONICAL_FORMAT, "input_rows": result.input_rows, "rejected_rows": result.rejected_rows},
        out_dir / CANONICAL_MARKER,
    )
    return result
