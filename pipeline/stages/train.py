"""Stage `train`: fit the risk and urgency models on the oldest tickets, refit them on all, write a model directory.

The held-out fit (training period only) is what every reported number describes; the
production refit on every labelled ticket (``train.refit_on_all_labels``) is what scores.

The urgency model and the text scores are optional parts: an export whose team never
varies ticket priority, or that has no text at all (no subjects, no message bodies),
still trains a risk model. model.json then says ``"urgency_model": null`` /
``"text_model": null`` and ``skipped`` gives the reason; the run prints it too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import lightgbm
import numpy as np
import pandas as pd
import sklearn

from features.build import CATEGORICAL_FEATURES, FEATURE_NAMES, OPENING_TEXT
from models.attributes import plan_attributes
from models.dataset import FitSample, build_training_data
from models.split import PERIODS
from models.store import (
    CALIBRATION_FILE,
    HELD_OUT_CALIBRATION_FILE,
    HELD_OUT_RISK_FILE,
    HELD_OUT_URGENCY_FILE,
    RISK_FILE,
    URGENCY_FILE,
    URGENCY_LEVELS,
    HeldOutModels,
    TriageModel,
    categorical_levels_of,
    data_fingerprint,
    model_version,
    prepare_matrix,
)
from models.target import Target
from models.text_model import TEXT_MODEL_FILES, TEXT_SCORE_COLUMNS, fit_text_scores, has_text
from models.training import (
    LOCAL,
    URGENCY_EXCLUDED,
    BoosterFitter,
    RiskFit,
    best_iteration,
    check_eligibility,
    fit_risk,
    fit_urgency,
    refit_risk,
    refit_urgency,
    urgency_skip_reason,
)
from pipeline import __version__
from pipeline.core import contract
from pipeline.core.errors import UserError, one_line
from pipeline.core.params import Params
from pipeline.sources.ingest import load_export


@dataclass(frozen=True)
class TrainResult:
    model: TriageModel
    risk_rows: int
    urgency_rows: int
    skipped: dict[str, str] = field(default_factory=dict)  # model part -> why it was not trained


def train(
    export_dir: str | Path,
    model_dir: str | Path,
    snapshots_file: str | Path | None = None,
    target: str | None = None,
    params: Params | None = None,
    echo: Callable[[str], None] = print,
    engine: str = "pandas",
    scheduler: str | None = None,
) -> TrainResult:
    """Train both models on ``export_dir`` and save them to ``model_dir``.

    ``snapshots_file``: the `featurize --snapshots` output to reuse (else built here).
    ``target``: ``COLUMN=BAD_VALUE`` overriding ``params.target``. ``echo`` gets one line
    per optional part not trained (urgency model, text scores) and why. ``engine="dask"``:
    the risk boosters are grown by lightgbm.dask on the cluster at ``scheduler`` (default:
    a local one); the model directory is the same.
    """
    params = params or Params()
    if engine == "dask":
        from pipeline.distributed.cluster import dask_client

        with dask_client(params.engine, scheduler) as client:
            return train_on_cluster(client, export_dir, model_dir, snapshots_file, target, params, echo)
    chosen = _target(target, params)
    export = load_export(export_dir, params.ingest)
    # Big exports fit on a fixed sample of tickets: beyond it more rows cost time, not accuracy.
    sample = FitSample.of(export.tickets, chosen, params.train.max_tickets_per_model)
    snapshots = _labelled_snapshots(snapshots_file, export.tickets, chosen, sample) if snapshots_file else None
    data = build_training_data(export.tickets, export.events, chosen, params, snapshots, sample=sample)
    record = _training_data_record(export.tickets["created_at"], export_dir, snapshots_file,
                                   data_fingerprint(export.tickets, export.events))
    del export, snapshots  # free the events and the unlabelled snapshot rows before the boosters grow
    return _fit_and_save(data, chosen, params, echo, LOCAL, record, model_dir)


def train_on_cluster(client, export_dir, model_dir, snapshots_file=None, target: str | None = None,
                     params: Params | None = None, echo: Callable[[str], None] = print) -> TrainResult:
    """``train --engine dask`` on the cluster of ``client``: features on the workers, risk boosters by lightgbm.dask."""
    from pipeline.distributed.train import DaskFitter, training_rows

    params = params or Params()
    chosen = _target(target, params)
    tickets, data, fingerprint = training_rows(client, str(export_dir), snapshots_file, chosen, params)
    record = _training_data_record(tickets["created_at"], export_dir, snapshots_file, fingerprint)
    del tickets
    return _fit_and_save(data, chosen, params, echo, DaskFitter(client), record, model_dir)


def _labelled_snapshots(path, tickets: pd.DataFrame, target: Target, sample: FitSample) -> pd.DataFrame:
    """The snapshot rows of labelled tickets the risk model fits on only (the others are dropped by the
    join with labels anyway): at 1M tickets 0.5 M of 5 M rows, so the rest is never held in memory."""
    import pyarrow as pa

    labelled = sample.labelled_ids(tickets, target).astype(str).tolist()
    if not Path(path).exists():
        raise UserError(f"--snapshots {path}: no such file; make it with `csat-triage featurize --snapshots` "
                        "(dvc repro does)")
    try:
        if not labelled:  # nothing to keep (and Arrow refuses an empty set); training then says there are no labels
            return pd.read_parquet(path).iloc[:0]
        return pd.read_parquet(path, filters=[("ticket_id", "in", labelled)])
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise UserError(f"--snapshots {path}: cannot read the snapshot features ({one_line(exc, 200)}); "
                        "make them again with `csat-triage featurize --snapshots`") from None


def _target(target: str | None, params: Params) -> Target:
    chosen = Target.parse(target) if target else Target.from_params(params.target)
    return chosen.with_unlabel([window.model_dump() for window in params.target.unlabel])


def _training_data_record(created: pd.Series, export_dir, snapshots_file, fingerprint: str) -> dict:
    return {
        "training_period": {"first_ticket_created": created.min().isoformat(),
                            "last_ticket_created": created.max().isoformat()},
        "training_data": {"export": str(export_dir), "snapshots": str(snapshots_file) if snapshots_file else None,
                          "fingerprint": fingerprint},
    }


def _fit_and_save(data, chosen: Target, params: Params, echo, fitter: BoosterFitter, record: dict,
                  model_dir) -> TrainResult:
    risk, urgency, sampled = data.risk, data.urgency, data.sampled
    exclude = set(params.train.exclude_features)
    train_rows = risk[risk["period"] == "train"]
    # Levels (and the attribute plan) from every labelled row, not the training period only: the
    # production refit learns from the newest weeks, and a group or product first seen there
    # would otherwise be "missing" to it. Only the levels' names and counts are read, no label;
    # each booster maps levels it never trained on to its default branch.
    attributes = plan_attributes(risk, params.attributes)
    risk_features = [f for f in (*FEATURE_NAMES, *attributes.features) if f not in exclude]
    categorical = [f for f in CATEGORICAL_FEATURES if f in risk_features]
    check_eligibility(
        train_rows["label"].to_numpy(), train_rows["ticket_id"].to_numpy(),
        params.train.min_labelled_tickets, params.train.min_bad_tickets,
        chosen.name,
    )
    skipped: dict[str, str] = {}
    text_model = None
    if not params.text_model.enabled:
        skipped["text_model"] = "disabled (params text_model.enabled)"
    elif not has_text(train_rows[OPENING_TEXT].to_numpy(dtype=object)):
        # Constant text scores would teach the trees nothing; leave the part out instead.
        skipped["text_model"] = "the training period has no ticket text (no subjects, no customer messages)"
    else:
        urgency_code = pd.Categorical(urgency["urgency"], categories=URGENCY_LEVELS).codes
        text_model, risk, urgency = fit_text_scores(risk, urgency, urgency_code, params.text_model)
        risk_features += [c for c in TEXT_SCORE_COLUMNS if c not in exclude]
    from_priority = {contract.ATTRIBUTE_PREFIX + name for name in params.attributes.exclude_from_urgency}
    urgency_features = [f for f in risk_features if f not in URGENCY_EXCLUDED and f not in from_priority]
    levels = {**categorical_levels_of(risk, categorical),
              **{k: v for k, v in attributes.categorical_levels.items() if k in risk_features}}
    risk_matrix = prepare_matrix(risk, risk_features, levels)
    risk_columns = (risk["label"].to_numpy(), risk["weight"].to_numpy(), risk["period"].to_numpy(),
                    risk["ticket_id"].to_numpy())
    held_out_fit = fit_risk(risk_matrix, *risk_columns, params.risk_model, fitter)

    held_out_urgency = urgency_matrix = None
    no_urgency = urgency_skip_reason(urgency)
    if no_urgency is not None:
        skipped["urgency_model"] = no_urgency
    else:
        urgency_levels = {k: v for k, v in levels.items() if k in urgency_features}
        urgency_matrix = prepare_matrix(urgency, urgency_features, urgency_levels)
        held_out_urgency = fit_urgency(
            urgency_matrix, urgency["urgency"].to_numpy(), urgency["period"].to_numpy(), params.urgency_model,
        )

    # The held-out models (test period unseen) give every reported number and face the gate;
    # the production refit scores, having learned the newest weeks too.
    refit = params.train.refit_on_all_labels
    risk_fit, urgency_booster, held_out = held_out_fit, held_out_urgency, None
    if refit:
        risk_fit = refit_risk(risk_matrix, *risk_columns, params.risk_model, held_out_fit.best_iteration, fitter)
        if held_out_urgency is not None:
            urgency_booster = refit_urgency(urgency_matrix, urgency["urgency"].to_numpy(), params.urgency_model,
                                            best_iteration(held_out_urgency))
        held_out = HeldOutModels(held_out_fit.booster, held_out_fit.calibrator, held_out_urgency)

    labelled = risk.drop_duplicates("ticket_id")
    meta = {
        "model_version": model_version(risk_fit.booster, urgency_booster, risk_fit.calibrator, text_model, held_out),
        "target": chosen.name,
        "target_spec": chosen.to_spec(),
        "risk_features": risk_features,
        "urgency_features": urgency_features,
        "categorical_levels": levels,
        "static_attributes": list(params.attributes.static),
        "attributes": {k: v for k, v in attributes.kinds.items() if k in risk_features},
        "period_starts": {k: v.isoformat() for k, v in data.boundaries.items()},
        **record,
        "counts": {
            "labelled_tickets": {p: int((labelled["period"] == p).sum()) for p in ("train", "valid", "calibrate", "test")},
            "bad_tickets": {p: int(((labelled["period"] == p) & (labelled["label"] == 1)).sum())
                            for p in ("train", "valid", "calibrate", "test")},
            "risk_rows": len(risk), "urgency_rows": len(urgency),
        },
        "fit_sample": {"max_tickets_per_model": params.train.max_tickets_per_model, "sampled": sampled},
        "risk_best_iteration": int(held_out_fit.best_iteration),
        "urgency_best_iteration": best_iteration(held_out_urgency) if held_out_urgency else None,
        "urgency_model": URGENCY_FILE if urgency_booster is not None else None,
        "text_model": TEXT_MODEL_FILES[0] if text_model is not None else None,
        "skipped": skipped,
        "calibration": {"method": risk_fit.calibrator.method,
                        "brier_platt": risk_fit.calibrator.brier_platt,
                        "brier_isotonic": risk_fit.calibrator.brier_isotonic},
        **_model_records(risk, urgency, held_out_fit, held_out_urgency, risk_fit, urgency_booster, refit),
        "params": params.sections("attributes", "team_record", "target", "train", "split", "risk_model", "urgency_model", "text_model",
                                  "snapshots", "business_hours"),
        "versions": {"csat_triage": __version__, "lightgbm": lightgbm.__version__,
                     "scikit_learn": sklearn.__version__, "pandas": pd.__version__, "numpy": np.__version__},
    }
    model = TriageModel(risk_fit.booster, risk_fit.calibrator, urgency_booster, meta, text_model, held_out)
    model.save(model_dir)
    for part, counts in sampled.items():
        echo(f"note: the {part.replace('_', ' ')} fitted on {counts['tickets']:,} of {counts['of_tickets']:,} tickets "
             "(a fixed sample; params train.max_tickets_per_model)")
    for part, reason in skipped.items():
        if part != "text_model" or params.text_model.enabled:
            echo(f"note: trained without the {part.replace('_', ' ')}: {reason}")
    return TrainResult(model=model, risk_rows=len(risk), urgency_rows=len(urgency), skipped=skipped)


def _model_records(
    risk: pd.DataFrame, urgency: pd.DataFrame, held_out_fit: RiskFit, held_out_urgency: lightgbm.Booster | None,
    risk_fit: RiskFit, urgency_booster: lightgbm.Booster | None, refit: bool,
) -> dict:
    """model.json's account of the two models: which one the metrics describe, which one scores."""
    in_train = risk["period"] == "train"
    held_out = {
        "describes": "every reported metric (evaluate, evaluate-moments) and the champion gate",
        "risk_model": HELD_OUT_RISK_FILE if refit else RISK_FILE,
        "calibration": HELD_OUT_CALIBRATION_FILE if refit else CALIBRATION_FILE,
        "urgency_model": (HELD_OUT_URGENCY_FILE if refit else URGENCY_FILE) if held_out_urgency else None,
        "trained_on_periods": ["train"], "early_stopping_period": "valid", "calibration_period": "calibrate",
        "risk_iterations": int(held_out_fit.best_iteration),
        "urgency_iterations": best_iteration(held_out_urgency) if held_out_urgency else None,
        "risk_rows": int(in_train.sum()), "labelled_tickets": int(risk.loc[in_train, "ticket_id"].nunique()),
        "urgency_rows": int((urgency["period"] == "train").sum()),
        "calibration_method": held_out_fit.calibrator.method,
    }
    if not refit:
        production = {**held_out, "describes": "scoring (score, monitor): the held-out model itself "
                                               "(train.refit_on_all_labels: false)"}
    else:
        production = {
            "describes": "scoring (score, monitor)",
            "risk_model": RISK_FILE, "calibration": CALIBRATION_FILE,
            "urgency_model": URGENCY_FILE if urgency_booster is not None else None,
            "trained_on_periods": list(PERIODS),
            "risk_iterations": int(risk_fit.best_iteration),
            "urgency_iterations": best_iteration(held_out_urgency) if held_out_urgency else None,
            "risk_rows": len(risk), "labelled_tickets": int(risk["ticket_id"].nunique()),
            "urgency_rows": len(urgency),
            "calibration_method": risk_fit.calibrator.method,
            "calibrated_on": "out-of-fold raw scores of the periods valid, calibrate and test, each scored "
                             "by a model fitted the same way on all older periods",
        }
    return {"held_out_model": held_out, "production_model": production}
