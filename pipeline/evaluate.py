"""Stage `evaluate`: how the models do on the newest period, against the baselines.

Writes a DVC metrics file (scalars only, so `dvc metrics diff` works) and DVC plot
files (ROC, precision-recall, calibration, feature importance, urgency confusion).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_curve, roc_curve

from features.build import CATEGORICAL_FEATURES
from models import baselines
from models.dataset import TrainingData, build_training_data
from models.metrics import ordinal_metrics, probability_metrics, ranking_metrics
from models.store import URGENCY_LEVELS, TriageModel
from models.target import Target
from pipeline.ingest import load_export
from pipeline.io import ExportError, write_json, write_table

DEFAULT_TARGET_NAME = "satisfaction=bad"


def risk_section(model: TriageModel) -> str:
    """Metrics section name: ``bad_csat`` for the CSAT target, else ``risk``."""
    return "bad_csat" if model.target == DEFAULT_TARGET_NAME else "risk"


def load_evaluation_data(
    model: TriageModel, export_dir: str | Path | None, snapshots_file: str | Path | None, params: dict
) -> tuple[TrainingData, pd.DataFrame]:
    """Rebuild the rows the model was trained on, with the model's own period boundaries.

    Returns the rows and the export's events (for the agents' first-priority baseline).
    """
    recorded = model.meta.get("training_data", {})
    export_dir = export_dir or recorded.get("export")
    snapshots_file = snapshots_file or recorded.get("snapshots")
    if not export_dir:
        raise ExportError("no export to evaluate on: pass --export DIR")
    export = load_export(export_dir)
    snapshots = pd.read_parquet(snapshots_file) if snapshots_file and Path(snapshots_file).is_file() else None
    target = Target.from_spec(model.meta["target_spec"])
    boundaries = {k: pd.Timestamp(v) for k, v in model.meta["period_starts"].items()}
    data = build_training_data(export.tickets, export.events, target, params, snapshots, boundaries)
    return data, export.events


def risk_test_metrics(model: TriageModel, test: pd.DataFrame) -> dict[str, float]:
    """Probability metrics of ``model`` on test rows (columns: features, label, weight)."""
    return probability_metrics(model.predict_risk(test), test["label"].to_numpy(), test["weight"].to_numpy())


def evaluate(
    model_dir: str | Path,
    out_file: str | Path,
    export_dir: str | Path | None = None,
    snapshots_file: str | Path | None = None,
    plots_dir: str | Path | None = None,
    truth_file: str | Path | None = None,
    params: dict | None = None,
) -> dict:
    """Evaluate ``model_dir`` on its test period; write metrics (and plots) and return the metrics."""
    params = params or {}
    model = TriageModel.load(model_dir)
    data, events = load_evaluation_data(model, export_dir, snapshots_file, params)
    risk, urgency = data.risk, data.urgency
    test = risk[risk["period"] == "test"].reset_index(drop=True)
    train = risk[risk["period"] == "train"]
    if test["label"].nunique() < 2:
        raise ExportError("the test period has only one class of label; nothing to evaluate")
    y, w = test["label"].to_numpy(), test["weight"].to_numpy()
    p_bad = model.predict_risk(test)

    section = probability_metrics(p_bad, y, w)
    categorical = [c for c in CATEGORICAL_FEATURES if c in model.meta["risk_features"]]
    logistic = baselines.fit_logistic_regression(
        model.risk_matrix(train), train["label"].to_numpy(), train["weight"].to_numpy(), categorical
    )
    section["baselines"] = {
        "longest_wait": ranking_metrics(baselines.longest_wait(test), y, w),
        "wait_reopen_transfer_rule": ranking_metrics(baselines.wait_reopen_transfer_rule(test), y, w),
        "logistic_regression": probability_metrics(
            baselines.predict_logistic_regression(logistic, model.risk_matrix(test), categorical), y, w
        ),
    }
    section["by_channel"] = _breakdown(test, p_bad, "channel")
    section["by_moment"] = _breakdown(test, p_bad, "moment") if "moment" in test else {}
    truth = None
    if truth_file and Path(truth_file).is_file():
        truth = pd.read_csv(truth_file, dtype={"ticket_id": str}).set_index("ticket_id")
        oracle = test["ticket_id"].map(truth["p_bad_true"]).to_numpy(dtype="float64")
        known = ~np.isnan(oracle)
        section["oracle_roc_auc"] = ranking_metrics(oracle[known], y[known], w[known])["roc_auc"]

    metrics = {
        "target": model.target,
        "model_version": model.version,
        "test_period": {
            "starts": model.meta["period_starts"]["test"],
            "tickets": int(test["ticket_id"].nunique()),
            "bad_tickets": int(test.loc[test["label"] == 1, "ticket_id"].nunique()),
            "rows": int(len(test)),
        },
        risk_section(model): section,
    }
    urgency_test = urgency[urgency["period"] == "test"].reset_index(drop=True)
    confusion = None
    if model.urgency_booster is not None and len(urgency_test):
        metrics["urgency"], confusion = urgency_metrics(
            model, urgency_test, urgency[urgency["period"] == "train"], first_priority(events)
        )
        if truth is not None and "urgency_true" in truth.columns:
            metrics["urgency"]["vs_true_urgency"] = _against_true_urgency(confusion, urgency_test, truth)

    write_json(metrics, out_file)
    if plots_dir is not None:
        _write_plots(Path(plots_dir), model, test, p_bad, confusion)
    return metrics


def _breakdown(test: pd.DataFrame, p_bad: np.ndarray, column: str) -> dict:
    out = {}
    for value, rows in test.groupby(test[column].astype(str), observed=True).groups.items():
        index = np.asarray(rows)
        y, w = test["label"].to_numpy()[index], test["weight"].to_numpy()[index]
        out[str(value)] = {
            "tickets": int(test["ticket_id"].iloc[index].nunique()),
            "bad_rate": float(np.average(y, weights=w)),
            "roc_auc": ranking_metrics(p_bad[index], y, w)["roc_auc"] if len(np.unique(y)) > 1 else None,
        }
    return out


def first_priority(events: pd.DataFrame) -> pd.Series:
    """The first priority an agent (or the system) set on each ticket, indexed by ticket_id."""
    priority_events = events[events["kind"].astype(str) == "priority"].sort_values("at", kind="stable")
    return priority_events.groupby("ticket_id")["value"].first()


def urgency_metrics(
    model: TriageModel, test: pd.DataFrame, train: pd.DataFrame, initial_priority: pd.Series
) -> tuple[dict, pd.DataFrame]:
    probabilities = model.predict_urgency(test)
    predicted = np.asarray(URGENCY_LEVELS, dtype=object)[probabilities.to_numpy().argmax(axis=1)]
    actual = test["urgency"].to_numpy(dtype=object)
    # Tickets the agent never prioritised count as "normal", the helpdesk default.
    agent_initial = test["ticket_id"].map(initial_priority).where(lambda v: v.isin(URGENCY_LEVELS), "normal")
    agent_initial = agent_initial.to_numpy(dtype=object)
    most_frequent = train["urgency"].mode().iloc[0]
    section = {k: v for k, v in ordinal_metrics(predicted, actual, URGENCY_LEVELS).items() if k != "confusion_matrix"}
    section["baselines"] = {
        "agent_initial_priority": {k: v for k, v in ordinal_metrics(agent_initial, actual, URGENCY_LEVELS).items()
                                   if k != "confusion_matrix"},
        "most_frequent_class": {k: v for k, v in ordinal_metrics(
            np.full(len(actual), most_frequent, dtype=object), actual, URGENCY_LEVELS).items()
            if k != "confusion_matrix"},
    }
    section["tickets"] = int(len(test))
    confusion = pd.DataFrame({"actual": actual, "predicted": predicted, "agent_initial": agent_initial})
    return section, confusion


def _against_true_urgency(confusion: pd.DataFrame, test: pd.DataFrame, truth: pd.DataFrame) -> dict:
    """Simulator only: the model's, the agent's first and the agent's final priority against the true urgency.

    The agents' final priority is what the model learns from, so it is only a proxy
    for the urgency a ticket deserves; the simulator knows the real one.
    """
    true = test["ticket_id"].map(truth["urgency_true"]).to_numpy(dtype=object)
    known = pd.Series(true).isin(URGENCY_LEVELS).to_numpy()
    scores = {}
    for name, predicted in (("model", confusion["predicted"].to_numpy(dtype=object)),
                            ("agent_initial_priority", confusion["agent_initial"].to_numpy(dtype=object)),
                            ("agent_final_priority", confusion["actual"].to_numpy(dtype=object))):
        result = ordinal_metrics(predicted[known], true[known], URGENCY_LEVELS)
        scores[name] = {k: v for k, v in result.items() if k != "confusion_matrix"}
    return scores


def _write_plots(plots_dir: Path, model: TriageModel, test: pd.DataFrame, p_bad: np.ndarray, confusion) -> None:
    y, w = test["label"].to_numpy(), test["weight"].to_numpy()
    fpr, tpr, _ = roc_curve(y, p_bad, sample_weight=w)
    write_table(_thin(pd.DataFrame({"fpr": fpr, "tpr": tpr})), plots_dir / "roc.csv")
    precision, recall, _ = precision_recall_curve(y, p_bad, sample_weight=w)
    write_table(_thin(pd.DataFrame({"recall": recall, "precision": precision})), plots_dir / "precision_recall.csv")
    bins = np.clip((p_bad * 10).astype(int), 0, 9)
    calibration = pd.DataFrame({"bin": bins, "p": p_bad * w, "y": y * w, "w": w}).groupby("bin").sum()
    write_table(
        pd.DataFrame({"predicted": (calibration["p"] / calibration["w"]).round(4),
                      "observed": (calibration["y"] / calibration["w"]).round(4),
                      "tickets": calibration["w"].round(1)}),
        plots_dir / "calibration.csv",
    )
    gain = model.risk_booster.feature_importance(importance_type="gain")
    importance = pd.DataFrame({"feature": model.risk_booster.feature_name(), "gain": np.round(gain, 2)})
    write_table(importance.sort_values("gain", ascending=False), plots_dir / "feature_importance.csv")
    if confusion is not None:
        write_table(confusion[["actual", "predicted"]], plots_dir / "urgency_confusion.csv")


def _thin(curve: pd.DataFrame, points: int = 200) -> pd.DataFrame:
    """At most ``points`` rows of a curve (files DVC renders and diffs stay small)."""
    if len(curve) <= points:
        return curve.round(5)
    keep = np.unique(np.linspace(0, len(curve) - 1, points).astype(int))
    return curve.iloc[keep].round(5)
