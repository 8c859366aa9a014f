"""How a trained model does on its test period, against the baselines (pure: frames in, numbers out).

The `evaluate`, `register` and `evaluate-moments` stages all judge a model with the
functions here, so the gate and the reports can never measure different things. They
judge the model's held-out view (:meth:`TriageModel.heldout`): the production refit
has trained on the test period, so its numbers there would flatter it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_curve, roc_curve

from models import baselines
from models.dataset import TrainingData
from models.metrics import ordinal_metrics, probability_metrics, ranking_metrics
from models.store import URGENCY_LEVELS, TriageModel
from pipeline.core.errors import UserError

DEFAULT_TARGET_NAME = "satisfaction=bad"


def risk_section(model: TriageModel) -> str:
    """Metrics section name: ``bad_csat`` for the CSAT target, else ``risk``."""
    return "bad_csat" if model.target == DEFAULT_TARGET_NAME else "risk"


def risk_test_metrics(model: TriageModel, test: pd.DataFrame) -> dict[str, float]:
    """Probability metrics of ``model``'s held-out view on test rows (columns: features, label, weight)."""
    return probability_metrics(model.heldout().predict_risk(test), test["label"].to_numpy(), test["weight"].to_numpy())


def held_out_rows(data: TrainingData) -> pd.DataFrame:
    """The risk rows of the test period (the rows every reported number and the gate use)."""
    return data.risk[data.risk["period"] == "test"].reset_index(drop=True)


def evaluate_model(
    model: TriageModel, data: TrainingData, events: pd.DataFrame, truth: pd.DataFrame | None = None
) -> tuple[dict, dict[str, pd.DataFrame]]:
    """Metrics of both held-out models on the test period and the plot tables (name -> frame).

    ``truth``: the simulator's truth table (index ``ticket_id``), adding the oracle ceiling.
    """
    model = model.heldout()
    risk, urgency = data.risk, data.urgency
    test = held_out_rows(data)
    train = risk[risk["period"] == "train"]
    if test["label"].nunique() < 2:
        raise UserError("the test period has only one class of label; nothing to evaluate")
    y, w = test["label"].to_numpy(), test["weight"].to_numpy()
    p_bad = model.predict_risk(test)

    section = probability_metrics(p_bad, y, w)
    categorical = model.categorical_features
    logistic = baselines.fit_logistic_regression(
        model.risk_matrix(train), train["label"].to_numpy(), train["weight"].to_numpy(), categorical
    )
    # Every baseline is scored on the same rows; the gate compares the model with the best of them.
    section["baselines"] = {
        "oldest_first": ranking_metrics(baselines.oldest_first(test), y, w),
        "longest_wait": ranking_metrics(baselines.longest_wait(test), y, w),
        "wait_reopen_transfer_rule": ranking_metrics(baselines.wait_reopen_transfer_rule(test), y, w),
        "logistic_regression": probability_metrics(
            baselines.predict_logistic_regression(logistic, model.risk_matrix(test), categorical), y, w
        ),
    }
    section["by_channel"] = _breakdown(test, p_bad, "channel")
    section["by_moment"] = _breakdown(test, p_bad, "moment") if "moment" in test else {}
    if truth is not None:
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
    return metrics, plot_tables(model, test, p_bad, confusion)


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
    section = _without_confusion(ordinal_metrics(predicted, actual, URGENCY_LEVELS))
    section["baselines"] = {
        "agent_initial_priority": _without_confusion(ordinal_metrics(agent_initial, actual, URGENCY_LEVELS)),
        "most_frequent_class": _without_confusion(ordinal_metrics(
            np.full(len(actual), most_frequent, dtype=object), actual, URGENCY_LEVELS)),
    }
    section["tickets"] = int(len(test))
    confusion = pd.DataFrame({"actual": actual, "predicted": predicted, "agent_initial": agent_initial})
    return section, confusion


def _without_confusion(result: dict) -> dict:
    return {k: v for k, v in result.items() if k != "confusion_matrix"}


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
        scores[name] = _without_confusion(ordinal_metrics(predicted[known], true[known], URGENCY_LEVELS))
    return scores


def plot_tables(
    model: TriageModel, test: pd.DataFrame, p_bad: np.ndarray, confusion: pd.DataFrame | None
) -> dict[str, pd.DataFrame]:
    """The DVC plot tables by file name: ROC, precision-recall, calibration, importance, urgency confusion."""
    y, w = test["label"].to_numpy(), test["weight"].to_numpy()
    fpr, tpr, _ = roc_curve(y, p_bad, sample_weight=w)
    precision, recall, _ = precision_recall_curve(y, p_bad, sample_weight=w)
    bins = np.clip((p_bad * 10).astype(int), 0, 9)
    calibration = pd.DataFrame({"bin": bins, "p": p_bad * w, "y": y * w, "w": w}).groupby("bin").sum()
    gain = model.risk_booster.feature_importance(importance_type="gain")
    importance = pd.DataFrame({"feature": model.risk_booster.feature_name(), "gain": np.round(gain, 2)})
    tables = {
        "roc.csv": _thin(pd.DataFrame({"fpr": fpr, "tpr": tpr})),
        "precision_recall.csv": _thin(pd.DataFrame({"recall": recall, "precision": precision})),
        "calibration.csv": pd.DataFrame({"predicted": (calibration["p"] / calibration["w"]).round(4),
                                         "observed": (calibration["y"] / calibration["w"]).round(4),
                                         "tickets": calibration["w"].round(1)}),
        "feature_importance.csv": importance.sort_values("gain", ascending=False),
    }
    if confusion is not None:
        tables["urgency_confusion.csv"] = confusion[["actual", "predicted"]]
    return tables


def _thin(curve: pd.DataFrame, points: int = 200) -> pd.DataFrame:
    """At most ``points`` rows of a curve (files DVC renders and diffs stay small)."""
    if len(curve) <= points:
        return curve.round(5)
    keep = np.unique(np.linspace(0, len(curve) - 1, points).astype(int))
    return curve.iloc[keep].round(5)
