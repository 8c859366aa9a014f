"""The inputs a stage needs, produced (untimed) when missing or stale.

Each (size, seed) has one cached simulator export; every other input is the output
of an earlier stage. An output is fresh when it is at least as new as the input it
was made from, so regenerating the export (or re-running ``validate``) makes every
later output stale without any bookkeeping besides file times.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from benchmarks.attributes import VERSION as ATTRIBUTES_VERSION
from benchmarks.chunked import install_canonical
from benchmarks.measure import run_child
from benchmarks.workdir import Paths

# Inputs each stage needs besides the export, produced by an earlier stage, in the
# order they are made: each one is judged fresh against the one before it.
PREREQUISITES = {
    "validate": (),
    "featurize": ("validate",),
    "featurize_raw": (),  # reads the raw export, like the anchor beside it
    "anchor_polars": (),
    "featurize_dask": ("validate",),
    "snapshots": ("validate",),
    "snapshots_dask": ("validate",),
    "train": ("validate", "snapshots"),
    "train_dask": ("validate", "snapshots_dask"),  # the Dask engine end to end (3M+ has no one-machine snapshots)
    "score": ("validate", "train"),
    "score_all": ("validate", "train"),
}


def ensure_export(paths: Paths, options: argparse.Namespace) -> dict:
    """The cached simulator export for (size, seed); generated (in a child) when missing or
    made by another version of the benchmark's extra attributes."""
    if paths.export_marker.is_file():
        cached = json.loads(paths.export_marker.read_text())
        if cached.get("attributes_version") == ATTRIBUTES_VERSION:
            return {**cached, "cached": True}
    print(f"generating the {paths.size}-ticket export (seed {paths.seed}) ...", flush=True)
    run = run_child("generate", paths, options)
    if not run.ok:
        raise SystemExit(f"generating the {paths.size}-ticket export failed: {run.error}")
    if paths.export.exists():
        shutil.rmtree(paths.export)
    paths.export_tmp.rename(paths.export)
    info = {"tickets": run.measured["tickets"], "events": run.measured["events"],
            "export_at": run.measured["export_at"], "seed": paths.seed, "format": "parquet",
            "attributes": run.measured["attributes"], "field_events": run.measured["field_events"],
            "attributes_version": run.measured["attributes_version"],
            **{k: run.measured[k] for k in ("chunks", "chunk_tickets") if k in run.measured},
            "generate_seconds": round(run.measured["seconds"], 2), "generate_peak_mb": round(run.peak_mb, 1)}
    paths.export_marker.write_text(json.dumps(info, indent=2) + "\n")  # written last: marks the cache complete
    install_canonical(paths)  # a chunked export's canonical tables, validated chunk by chunk with it
    return {**info, "cached": False}


def is_fresh(output: Path, source: Path) -> bool:
    """``output`` (a file, or a Parquet directory renamed into place when complete) is newer than ``source``."""
    return output.exists() and output.stat().st_mtime >= source.stat().st_mtime


def ensure_prerequisites(stage: str, paths: Paths, options: argparse.Namespace,
                         failed: set[str] | None = None) -> str | None:
    """Produce (untimed) any missing or stale input of ``stage``; returns an error message or None.

    ``failed``: stages that already failed at this size; their dependents are skipped
    rather than retried (a failing 1M-ticket train would otherwise run twice more).
    """
    failed = set() if failed is None else failed
    source = paths.export_marker
    for needed in PREREQUISITES[stage]:
        if needed in failed:
            return f"skipped: prerequisite {needed} failed"
        output = paths.output_of(needed)
        if not is_fresh(output, source):
            print(f"  (preparing {needed} for {stage}, not recorded)", flush=True)
            run = run_child(needed, paths, options)
            if not run.ok:
                failed.add(needed)
                return f"prerequisite {needed} failed: {run.error}"
        source = output
    return None
