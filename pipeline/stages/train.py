"""Stage `train`: fit the risk and urgency models on the oldest tickets, write a model directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import lightgbm
import numpy as np
import pandas as pd
import sklearn

from features.build import CATEGORICAL_FEATURES, FEATURE_NAMES
from models.dataset import build_training_data
from models.store import (
    URGENCY_LEVELS,
    TriageModel,
    categorical_levels_of,
    data_fingerprint,
    model_version,
    prepare_matrix,
)
from models.target import Target
from models.text_model import TEXT_SCORE_COLUMNS, fit_text_scores
from models.training import URGENCY_EXCLUDED, check_eligibility, fit_risk, fit_urgency
from pipeline import __version__
from pipeline.core.params import Params
from pipeline.sources.ingest import load_export


@dataclass(frozen=True)
class TrainResult:
    model: TriageModel
    risk_rows: int
    urgency_rows: int


def train(
    export_dir: str | Path,
    model_dir: str | Path,
    snapshots_file: str | Path | None = None,
    target: str | None = None,
    params: Params | None = None,
) -> TrainResult:
    """Train both models on ``export_dir`` and save them to ``model_dir``.

    ``snapshots_file``: the `featurize --snapshots` output to reuse (else built here).
    ``target``: ``COLUMN=BAD_VALUE`` overriding ``params.target``.
    """
    params = params or Params()
    chosen = Target.parse(target) if target else Target.from_params(params.target)
    chosen = chosen.with_unlabel([window.model_dump() for window in params.target.unlabel])
    export = load_export(export_dir, params.ingest.early_event_tolerance_minutes)
    snapshots = pd.read_parquet(snapshots_file) if snapshots_file else None
    data = build_training_data(export.tickets, export.events, chosen, params, snapshots)

    risk, urgency = data.risk, data.urgency
    exclude = set(params.train.exclude_features)
    risk_features = [f for f in FEATURE_NAMES if f not in exclude]
    categorical = [f for f in CATEGORICAL_FEATURES if f in risk_features]
    train_rows = risk[risk["period"] == "train"]
    check_eligibility(
        train_rows["label"].to_numpy(), train_rows["ticket_id"].to_numpy(),
        params.train.min_labelled_tickets, params.train.min_bad_tickets,
        chosen.name,
    )
    text_model = None
    if params.text_model.enabled:
        urgency_code = pd.Categorical(urgency["urgency"], categories=URGENCY_LEVELS).codes
        text_model, risk, urgency = fit_text_scores(risk, urgency, urgency_code, params.text_model)
        risk_features += [c for c in TEXT_SCORE_COLUMNS if c not in exclude]
    urgency_features = [f for f in risk_features if f not in URGENCY_EXCLUDED]
    levels = categorical_levels_of(train_rows, categorical)
    risk_fit = fit_risk(
        prepare_matrix(risk, risk_features, levels), risk["label"].to_numpy(), risk["weight"].to_numpy(),
        risk["period"].to_numpy(), risk["ticket_id"].to_numpy(), params.risk_model,
    )

    urgency_booster = None
    urgency_train = urgency[urgency["period"] == "train"]
    if urgency_train["urgency"].nunique() >= 2 and (urgency["period"] == "valid").any():
        urgency_levels = {k: v for k, v in levels.items() if k in urgency_features}
        urgency_booster = fit_urgency(
            prepare_matrix(urgency, urgency_features, urgency_levels), urgency["urgency"].to_numpy(),
            urgency["period"].to_numpy(), params.urgency_model,
        )

    labelled = risk.drop_duplicates("ticket_id")
    meta = {
        "model_version": model_version(risk_fit.booster, urgency_booster, risk_fit.calibrator, text_model),
        "target": chosen.name,
        "target_spec": chosen.to_spec(),
        "risk_features": risk_features,
        "urgency_features": urgency_features,
        "categorical_levels": levels,
        "period_starts": {k: v.isoformat() for k, v in data.boundaries.items()},
        "training_period": {
            "first_ticket_created": export.tickets["created_at"].min().isoformat(),
            "last_ticket_created": export.tickets["created_at"].max().isoformat(),
        },
        "training_data": {
            "export": str(export_dir), "snapshots": str(snapshots_file) if snapshots_file else None,
            "fingerprint": data_fingerprint(export.tickets, export.events),
        },
        "counts": {
            "labelled_tickets": {p: int((labelled["period"] == p).sum()) for p in ("train", "valid", "calibrate", "test")},
            "bad_tickets": {p: int(((labelled["period"] == p) & (labelled["label"] == 1)).sum())
                            for p in ("train", "valid", "calibrate", "test")},
            "risk_rows": len(risk), "urgency_rows": len(urgency),
        },
        "risk_best_iteration": int(risk_fit.best_iteration),
        "urgency_best_iteration": int(urgency_booster.best_iteration) if urgency_booster else None,
        "calibration": {"method": risk_fit.calibrator.method,
                        "brier_platt": risk_fit.calibrator.brier_platt,
                        "brier_isotonic": risk_fit.calibrator.brier_isotonic},
        "params": params.sections("target", "train", "split", "risk_model", "urgency_model", "text_model",
                                  "snapshots", "business_hours"),
        "versions": {"csat_triage": __version__, "lightgbm": lightgbm.__version__,
                     "scikit_learn": sklearn.__version__, "pandas": pd.__version__, "numpy": np.__version__},
    }
    model = TriageModel(risk_fit.booster, risk_fit.calibrator, urgency_booster, meta, text_model)
    model.save(model_dir)
    return TrainResult(model=model, risk_rows=len(risk), urgency_rows=len(urgency))
