"""Stage `featurize`: features as of one moment, or training snapshots, to a file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from features.build import build_features
from features.calendar import BusinessHours
from features.snapshots import snapshot_features
from models.target import Target
from pipeline.core.io import parse_as_of, write_table
from pipeline.core.params import Params
from pipeline.sources.ingest import load_export


def featurize(
    export_dir: str | Path,
    out_file: str | Path,
    params: Params,
    as_of: str | None = None,
    snapshots: bool = False,
) -> pd.DataFrame:
    """Write the feature table of an export and return it.

    ``snapshots=False``: one row per ticket as of ``as_of`` (default: the export's
    latest timestamp). ``snapshots=True``: the training snapshots of
    ``params.snapshots``, one row per (ticket, moment).
    """
    moment = parse_as_of(as_of)  # a wrong --as-of fails before the export is read
    return _featurize(export_dir, out_file, params, moment, snapshots)


def featurize_on_dask(
    export_dir: str | Path,
    out_dir: str | Path,
    params: Params,
    as_of: str | None = None,
    snapshots: bool = False,
    scheduler: str | None = None,
):
    """:func:`featurize` by the Dask engine: the same rows and values, written as a Parquet
    directory ``out_dir`` (one part file per piece of the export); returns what was written."""
    from pipeline.distributed.cluster import dask_client
    from pipeline.distributed.featurize import featurize_dask
    from pipeline.distributed.partition import read_export

    moment = parse_as_of(as_of)
    with dask_client(params.engine, scheduler) as client:
        export = read_export(client, str(export_dir), params.engine, as_of=moment)
        return featurize_dask(client, export, params, out_dir, as_of=moment, snapshots=snapshots)


def _featurize(export_dir, out_file, params: Params, moment: pd.Timestamp | None, snapshots: bool) -> pd.DataFrame:
    export = load_export(export_dir, params.ingest, as_of=moment)
    hours = BusinessHours.from_params(params.business_hours)
    if snapshots:
        table = snapshot_features(export.tickets, export.events, params.snapshots, hours,
                                  static_attributes=params.attributes.static,
                                  outcome_is_rating=Target.from_params(params.target).outcome_is_rating,
                                  prior_ratings=params.team_record.prior_ratings)
    else:
        table = build_features(export.tickets, export.events, moment, hours, params.attributes.static,
                               params.team_record.prior_ratings)
    write_table(table, out_file)
    return table
