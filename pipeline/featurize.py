"""Stage `featurize`: features as of one moment, or training snapshots, to a file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from features.build import build_features
from features.calendar import BusinessHours
from models.dataset import snapshot_features
from pipeline.ingest import load_export
from pipeline.io import write_table


def featurize(
    export_dir: str | Path,
    out_file: str | Path,
    as_of: str | None = None,
    snapshots: bool = False,
    params: dict | None = None,
) -> pd.DataFrame:
    """Write the feature table of an export and return it.

    ``snapshots=False``: one row per ticket as of ``as_of`` (default: the export's
    latest timestamp). ``snapshots=True``: the training snapshots of
    ``params['snapshots']``, one row per (ticket, moment).
    """
    params = params or {}
    export = load_export(export_dir, params.get("ingest", {}).get("early_event_tolerance_minutes", 5.0))
    if snapshots:
        table = snapshot_features(export.tickets, export.events, params)
    else:
        table = build_features(export.tickets, export.events, as_of, BusinessHours.from_params(params.get("business_hours")))
    write_table(table, out_file)
    return table
