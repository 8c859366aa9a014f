"""Stage `evaluate`: how the models do on the newest period, against the baselines.

Writes a DVC metrics file (scalars only, so `dvc metrics diff` works) and DVC plot
files (ROC, precision-recall, calibration, feature importance, urgency confusion).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from models.evaluation import evaluate_model
from models.store import TriageModel
from pipeline.core.io import write_json, write_table
from pipeline.core.params import Params
from pipeline.sources.training_export import load_evaluation_data


def evaluate(
    model_dir: str | Path,
    out_file: str | Path,
    params: Params,
    export_dir: str | Path | None = None,
    snapshots_file: str | Path | None = None,
    plots_dir: str | Path | None = None,
    truth_file: str | Path | None = None,
) -> dict:
    """Evaluate ``model_dir`` on its test period; write metrics (and plots) and return the metrics."""
    model = TriageModel.load(model_dir)
    data, events = load_evaluation_data(model, export_dir, snapshots_file, params)
    truth = None
    if truth_file and Path(truth_file).is_file():
        truth = pd.read_csv(truth_file, dtype={"ticket_id": str}).set_index("ticket_id")
    metrics, plots = evaluate_model(model, data, events, truth)
    write_json(metrics, out_file)
    if plots_dir is not None:
        for name, table in plots.items():
            write_table(table, Path(plots_dir) / name)
    return metrics
