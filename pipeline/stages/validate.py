"""Stage `validate`: check an export against the contract and write the canonical tables.

Writes ``tickets.parquet``, ``events.parquet``, ``rejects.csv`` and the canonical
marker into ``out_dir`` (each atomically) when ``out_dir`` is given.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.core.io import write_json, write_table
from pipeline.core.params import IngestParams
from pipeline.sources.ingest import (
    CANONICAL_FORMAT,
    CANONICAL_MARKER,
    ValidationResult,
    load_export,
)


def validate_export(export_dir: str | Path, out_dir: str | Path | None, ingest: IngestParams) -> ValidationResult:
    """Validate ``export_dir``; with ``out_dir``, write the canonical tables and the rejects there."""
    result = load_export(export_dir, ingest)
    if out_dir is not None:
        out_dir = Path(out_dir)
        write_table(result.tickets, out_dir / "tickets.parquet")
        write_table(result.events, out_dir / "events.parquet")
        write_table(result.rejects, out_dir / "rejects.csv")
        write_json(
            {"format": CANONICAL_FORMAT, "input_rows": result.input_rows, "rejected_rows": result.rejected_rows},
            out_dir / CANONICAL_MARKER,
        )
    return result
