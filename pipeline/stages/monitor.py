"""Stage `monitor`: how the earlier scoring runs' predictions turned out, and whether the data drifted.

Reads the scoring history (``--db``) and a later export, joins each run's scores with the
outcomes that arrived after the run (see :mod:`models.monitoring`), measures drift of the
features (tonight's vs the model's training snapshots) and of the score (first run vs latest),
and writes one JSON report (plus CSV files for DVC plots). Read-only on the database.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from features.build import CROSS_TICKET_FEATURES, build_features
from features.calendar import BusinessHours
from features.snapshots import snapshot_features
from models.metrics import without_nan
from models.monitoring import (
    DONE_STATUSES,
    alerts,
    feature_drift,
    join_outcomes,
    outcomes,
    psi,
    run_report,
    week_report,
)
from models.store import TriageModel
from models.target import Target
from pipeline.core.errors import UserError
from pipeline.core.io import write_json, write_table
from pipeline.core.params import Params
from pipeline.sinks.writeback import read_outcome_inputs
from pipeline.sources.ingest import load_export

PLOT_FILE = "monitoring_runs.csv"
RUN_SUMMARY = ("run_id", "model_version", "scored_at", "tickets_scored", "outcomes_known", "roc_auc", "pr_auc",
               "ece", "p1_precision", "bad_rate")


def monitor(
    export_dir: str | Path,
    db_url: str,
    out_file: str | Path,
    params: Params,
    model_dir: str | Path | None = None,
    plots_dir: str | Path | None = None,
    echo: Callable[[str], None] = print,
) -> dict:
    """Write the monitoring report to ``out_file`` (and ``plots_dir``) and return it."""
    if not Path(export_dir).is_dir():
        raise UserError(f"{export_dir}: export directory not found")
    model = TriageModel.load(model_dir) if model_dir is not None else None
    runs, history, verdicts = read_outcome_inputs(db_url)
    if history.empty:
        raise UserError(f"{db_url}: no scored rows in ticket_score_history; run `csat-triage score --db` first")
    export = load_export(export_dir, params.ingest)
    target = _target(model, runs, params)
    joined = join_outcomes(history, outcomes(export.tickets, target))
    per_run = run_report(joined, verdicts)
    drift = _drift(joined, export, model, params)
    report = {
        "target": target.name,
        "export": str(export_dir),
        "runs": per_run,
        "weeks": week_report(joined, verdicts),
        "drift": drift,
    }
    report["alerts"] = alerts(per_run, drift, params.monitor)
    report = without_nan(report)
    write_json(report, out_file)
    if plots_dir is not None:
        table = pd.DataFrame([{k: r[k] for k in RUN_SUMMARY} for r in report["runs"]], columns=list(RUN_SUMMARY))
        write_table(table, Path(plots_dir) / PLOT_FILE)
    for line in _summary(report):
        echo(line)
    return report


def _target(model: TriageModel | None, runs: pd.DataFrame, params: Params) -> Target:
    """The model's own target; else the one the latest run recorded; else ``params.target``."""
    if model is not None and "target_spec" in model.meta:
        return Target.from_spec(model.meta["target_spec"])
    if len(runs) and str(runs["target"].iloc[-1]).strip():
        name = str(runs["target"].iloc[-1])
        return Target() if name == Target().name else Target.parse(name)
    return Target.from_params(params.target).with_unlabel(
        [w.model_dump(mode="json") for w in params.target.unlabel])


def _drift(joined: pd.DataFrame, export, model: TriageModel | None, params: Params) -> dict:
    """Score drift (first run vs latest) and feature drift (latest run's tickets vs training)."""
    bins = params.monitor.psi_bins
    run_ids = sorted(joined["run_id"].unique())
    first, latest = joined[joined["run_id"] == run_ids[0]], joined[joined["run_id"] == run_ids[-1]]
    drift: dict = {"score": {"first_run": int(run_ids[0]), "latest_run": int(run_ids[-1]),
                             "psi": psi(first["p_bad"], latest["p_bad"], bins) if len(run_ids) > 1 else None},
                   "features": None, "top_movers": [], "note": None}
    if len(run_ids) == 1:
        drift["score"]["note"] = "one run only: nothing to compare the score with"
    training, note = _training_features(model, params)
    if training is None:
        drift["note"] = note
        return drift
    as_of = latest["scored_at"].iloc[0]
    hours = BusinessHours.from_params(params.business_hours)
    training, note = _same_weekday(training, as_of, params.business_hours.timezone, note)
    tonight = build_features(export.tickets, export.events, as_of=as_of, business_hours=hours,
                             static_attributes=model.static_attributes, prior_ratings=model.prior_ratings)
    tonight = tonight[tonight["ticket_id"].astype(str).isin(set(latest["ticket_id"]))]
    # The cross-ticket features are one value per group, assignee or organization at a moment:
    # one night's queue is a handful of points by construction, and any PSI against weeks of
    # moments says "shifted".
    compared = [f for f in model.meta["risk_features"] if f not in CROSS_TICKET_FEATURES]
    moved = feature_drift(training, tonight, compared, bins, params.monitor.top_movers)
    drift.update(features=moved["features"], top_movers=moved["top_movers"],
                 training_rows=len(training), tonight_rows=len(tonight), as_of=as_of.isoformat())
    drift["note"] = note
    return drift


def _training_features(model: TriageModel | None, params: Params) -> tuple[pd.DataFrame | None, str | None]:
    """The training data as a nightly run would have seen it, or a note saying why there is none.

    A nightly run scores open tickets at one moment of the day, so the fair comparison is the
    training export's open tickets at that moment (the ``daily`` snapshot moment): the training
    snapshots also hold solved and just-opened moments, and against those every open queue
    "drifts" in status and age. Without the export, the snapshot file's open-ticket rows stand in.
    """
    if model is None:
        return None, "feature drift skipped: give --model to compare with the model's training data"
    recorded = model.meta.get("training_data") or {}
    snapshots, export_dir = recorded.get("snapshots"), recorded.get("export")
    if export_dir and Path(export_dir).is_dir():
        export = load_export(export_dir, params.ingest)
        hours = BusinessHours.from_params(params.business_hours)
        daily = params.snapshots.model_copy(update={"moments": ("daily",)})
        return (snapshot_features(export.tickets, export.events, daily, hours,
                                  static_attributes=model.static_attributes, prior_ratings=model.prior_ratings),
                f"training distribution: the open tickets of {export_dir} at {daily.daily_local_time} each day")
    if snapshots and Path(snapshots).is_file():
        rows = pd.read_parquet(snapshots)
        open_rows = rows[~rows["status_now"].astype(str).isin(DONE_STATUSES)]
        return open_rows, f"training distribution: the open-ticket rows of {snapshots} (training export not here)"
    return None, ("feature drift skipped: the model's training data "
                  f"({export_dir or snapshots or 'not recorded'}) is not here")


def _same_weekday(training: pd.DataFrame, as_of: pd.Timestamp, timezone: str, note: str) -> tuple[pd.DataFrame, str]:
    """The daily training rows of the run's local weekday: a Monday queue holds the weekend's tickets
    and waits, which a mix of all weekdays would flag as drift every Monday (and the opposite midweek)."""
    if "as_of" not in training.columns or not (training.get("moment") == "daily").all():
        return training, note
    weekday = as_of.tz_convert(timezone).weekday()
    same = training[pd.to_datetime(training["as_of"], utc=True).dt.tz_convert(timezone).dt.day_of_week == weekday]
    if same.empty:
        return training, note
    return same, f"{note}, on the run's weekday ({as_of.tz_convert(timezone):%A})"


def _summary(report: dict) -> list[str]:
    lines = []
    judged = [r for r in report["runs"] if r["outcomes_known"]]
    lines.append(f"{len(report['runs'])} runs, {len(judged)} with known outcomes ({report['target']})")
    if judged:
        last = judged[-1]
        auc = "n/a" if last["roc_auc"] is None else f"{last['roc_auc']:.3f}"
        ece = "n/a" if last["ece"] is None else f"{last['ece']:.3f}"
        lines.append(f"latest run with outcomes: {last['run_id']} ({last['outcomes_known']} outcomes): "
                     f"ROC AUC {auc}, ECE {ece}")
    for alert in report["alerts"]:
        lines.append(f"alert: {alert}")
    return lines
