"""Evaluation metrics, each stated in terms of an agent's queue.

All functions take per-row scores, 0/1 labels and row weights (a ticket with n
snapshots gives each 1/n, so every ticket counts once).
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    cohen_kappa_score,
    confusion_matrix,
    f1_score,
    roc_auc_score,
)


def top_share(score: np.ndarray, y: np.ndarray, w: np.ndarray, share: float) -> dict[str, float]:
    """Recall and precision of bad outcomes among the top ``share`` of the queue by score.

    The top share is measured in weight (tickets), ties broken by row order.
    """
    order = np.argsort(-np.asarray(score, dtype="float64"), kind="stable")
    w_sorted = w[order]
    in_top = np.cumsum(w_sorted) <= share * w_sorted.sum() + 1e-9
    bad_in_top = float((w_sorted * y[order])[in_top].sum())
    total_bad = float((w * y).sum())
    top_weight = float(w_sorted[in_top].sum())
    return {
        "recall": bad_in_top / total_bad if total_bad else float("nan"),
        "precision": bad_in_top / top_weight if top_weight else float("nan"),
    }


def expected_calibration_error(p: np.ndarray, y: np.ndarray, w: np.ndarray, bins: int = 10) -> float:
    """Weighted mean |predicted - observed| over equal-width probability bins."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    total = w.sum()
    error = 0.0
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            weight = w[in_bin].sum()
            error += weight / total * abs(
                np.average(p[in_bin], weights=w[in_bin]) - np.average(y[in_bin], weights=w[in_bin])
            )
    return float(error)


def ranking_metrics(score: np.ndarray, y: np.ndarray, w: np.ndarray) -> dict[str, float]:
    """ROC AUC, PR AUC and top-10 % / top-20 % recall and precision for any score."""
    score = np.asarray(score, dtype="float64")
    out = {
        "roc_auc": float(roc_auc_score(y, score, sample_weight=w)) if len(np.unique(y)) > 1 else float("nan"),
        "pr_auc": float(average_precision_score(y, score, sample_weight=w)) if len(np.unique(y)) > 1 else float("nan"),
    }
    for share in (0.10, 0.20):
        top = top_share(score, y, w, share)
        pct = int(share * 100)
        out[f"recall_top{pct}"] = top["recall"]
        out[f"precision_top{pct}"] = top["precision"]
    return out


def probability_metrics(p: np.ndarray, y: np.ndarray, w: np.ndarray) -> dict[str, float]:
    """Ranking metrics plus Brier score, log loss and expected calibration error."""
    p = np.clip(np.asarray(p, dtype="float64"), 1e-6, 1 - 1e-6)
    out = ranking_metrics(p, y, w)
    out["brier"] = float(np.average((p - y) ** 2, weights=w))
    out["log_loss"] = float(-np.average(y * np.log(p) + (1 - y) * np.log(1 - p), weights=w))
    out["ece"] = expected_calibration_error(p, y, w)
    out["mean_predicted"] = float(np.average(p, weights=w))
    out["observed_rate"] = float(np.average(y, weights=w))
    return out


def ordinal_metrics(predicted: np.ndarray, actual: np.ndarray, levels: tuple[str, ...]) -> dict:
    """Macro F1, quadratic weighted kappa and the confusion matrix (rows: actual, columns: predicted)."""
    code = {level: i for i, level in enumerate(levels)}
    pred = np.array([code[v] for v in predicted]) if len(predicted) else np.array([], dtype=int)
    act = np.array([code[v] for v in actual]) if len(actual) else np.array([], dtype=int)
    labels = list(range(len(levels)))
    return {
        "macro_f1": float(f1_score(act, pred, labels=labels, average="macro", zero_division=0)),
        "quadratic_kappa": float(cohen_kappa_score(act, pred, labels=labels, weights="quadratic")),
        "accuracy": float((act == pred).mean()) if len(act) else float("nan"),
        "confusion_matrix": confusion_matrix(act, pred, labels=labels).tolist(),
    }


def without_nan(value: object) -> object:
    """``value`` with every NaN or infinite float replaced by None, for strict JSON (keys as text)."""
    if isinstance(value, dict):
        return {str(k): without_nan(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [without_nan(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value
