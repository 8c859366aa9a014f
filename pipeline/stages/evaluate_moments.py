"""Stage `evaluate-moments`: risk metrics at fixed moments of each test ticket's life.

See :mod:`models.moment_evaluation` for the moments and baselines. The business hours
and opening window come from ``params`` (the `business_hours` and `snapshots` sections).
"""

from __future__ import annotations

from pathlib import Path

from features.calendar import BusinessHours
from models.moment_evaluation import evaluate_moments as moment_metrics
from models.store import TriageModel
from pipeline.core.errors import UserError
from pipeline.core.io import write_json
from pipeline.core.params import Params
from pipeline.sources.ingest import load_export


def evaluate_moments(
    model_dir: str | Path, out_file: str | Path, params: Params, export_dir: str | Path | None = None
) -> dict:
    """Evaluate ``model_dir`` per moment on its test period; write the metrics JSON and return it.

    ``export_dir``: the export to read (default: the one the model was trained on).
    """
    model = TriageModel.load(model_dir)
    export_dir = export_dir or model.meta.get("training_data", {}).get("export")
    if not export_dir:
        raise UserError("no export to evaluate on: pass --export DIR")
    export = load_export(export_dir, params.ingest.early_event_tolerance_minutes)
    result = moment_metrics(
        model, export.tickets, export.events, params.snapshots.opening_window_minutes,
        BusinessHours.from_params(params.business_hours), params.snapshots.daily_local_time,
    )
    write_json(result, out_file)
    return result
