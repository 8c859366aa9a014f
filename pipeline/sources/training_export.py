"""The data a model was trained on, read again: its export (and snapshot file) rebuilt into rows.

`evaluate` and `register` judge a model on exactly the rows `train` held out: the
same export, the same snapshots and the model's own period boundaries.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from models.dataset import TrainingData, build_training_data
from models.store import TriageModel
from models.target import Target
from pipeline.core.errors import UserError
from pipeline.core.params import Params
from pipeline.sources.ingest import load_export


def load_evaluation_data(
    model: TriageModel, export_dir: str | Path | None, snapshots_file: str | Path | None, params: Params
) -> tuple[TrainingData, pd.DataFrame]:
    """Rebuild the rows the model was trained on, with the model's own period boundaries.

    ``export_dir`` / ``snapshots_file`` default to the ones recorded in the model.
    Returns the rows and the export's events (for the agents' first-priority baseline).
    """
    recorded = model.meta.get("training_data", {})
    export_dir = export_dir or recorded.get("export")
    snapshots_file = snapshots_file or recorded.get("snapshots")
    if not export_dir:
        raise UserError("no export to evaluate on: pass --export DIR")
    export = load_export(export_dir, params.ingest.early_event_tolerance_minutes)
    snapshots = pd.read_parquet(snapshots_file) if snapshots_file and Path(snapshots_file).is_file() else None
    target = Target.from_spec(model.meta["target_spec"])
    boundaries = {k: pd.Timestamp(v) for k, v in model.meta["period_starts"].items()}
    data = build_training_data(export.tickets, export.events, target, params, snapshots, boundaries)
    return data, export.events
