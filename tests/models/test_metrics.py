"""Evaluation metrics on examples small enough to work out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.metrics import (
    expected_calibration_error,
    ordinal_metrics,
    probability_metrics,
    ranking_metrics,
    top_share,
)
from models.store import URGENCY_LEVELS

SCORES = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0])
LABELS = np.array([1, 0, 1, 0, 0, 1, 0, 0, 0, 0], dtype=float)  # 3 bad, at queue positions 1, 3 and 6
ONES = np.ones(10)


@pytest.mark.parametrize("share, recall, precision", [
    (0.1, 1 / 3, 1.0),    # top 1 ticket: the first bad one
    (0.2, 1 / 3, 1 / 2),  # top 2: one bad of two
    (0.3, 2 / 3, 2 / 3),  # top 3: two bad of three
    (0.6, 1.0, 1 / 2),    # top 6: all three bad
])
def test_top_share_recall_and_precision(share, recall, precision):
    top = top_share(SCORES, LABELS, ONES, share)
    assert top["recall"] == pytest.approx(recall)
    assert top["precision"] == pytest.approx(precision)


def test_top_share_counts_tickets_not_snapshots():
    # Ticket A (bad) has two snapshots of weight 0.5; B and C one each. Total 3 tickets;
    # the top half is 1.5 tickets: A's first snapshot (0.5) + B (1.0).
    score = np.array([0.9, 0.8, 0.7, 0.1])
    y = np.array([1.0, 0.0, 1.0, 0.0])
    w = np.array([0.5, 1.0, 0.5, 1.0])
    top = top_share(score, y, w, 0.5)
    assert top["recall"] == pytest.approx(0.5)       # half of ticket A's weight is in the top
    assert top["precision"] == pytest.approx(1 / 3)  # 0.5 bad of 1.5


def test_top_share_ties_follow_row_order():
    tied = np.full(4, 0.5)
    assert top_share(tied, np.array([1.0, 0, 0, 0]), np.ones(4), 0.25)["recall"] == 1.0
    assert top_share(tied, np.array([0, 0, 0, 1.0]), np.ones(4), 0.25)["recall"] == 0.0


def test_top_share_without_bad_outcomes_is_nan():
    assert math.isnan(top_share(SCORES, np.zeros(10), ONES, 0.2)["recall"])


def test_expected_calibration_error_by_hand():
    p = np.array([0.15, 0.15, 0.85, 0.85])
    y = np.array([0.0, 1.0, 1.0, 1.0])
    # Bin 0.1-0.2: |0.15 - 0.5| * 2/4 = 0.175; bin 0.8-0.9: |0.85 - 1| * 2/4 = 0.075.
    assert expected_calibration_error(p, y, np.ones(4)) == pytest.approx(0.25)
    # Weights 3, 1, 1, 1: bin 0.1-0.2 observes 1/4 bad -> |0.15 - 0.25| * 4/6; the other |0.15| * 2/6.
    assert expected_calibration_error(p, y, np.array([3.0, 1, 1, 1])) == pytest.approx(0.1 * 4 / 6 + 0.15 * 2 / 6)


def test_perfectly_calibrated_bin_has_zero_error():
    assert expected_calibration_error(np.full(4, 0.25), np.array([1.0, 0, 0, 0]), np.ones(4)) == pytest.approx(0.0)


def test_ranking_metrics_by_hand():
    # Bad at 0.9 and 0.7, good at 0.8 and 0.6: 3 of the 4 (bad, good) pairs are ordered right.
    metrics = ranking_metrics(np.array([0.9, 0.8, 0.7, 0.6]), np.array([1.0, 0, 1, 0]), np.ones(4))
    assert metrics["roc_auc"] == pytest.approx(0.75)
    # Average precision: precision 1 at recall 0.5, 2/3 at recall 1.
    assert metrics["pr_auc"] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert set(metrics) == {"roc_auc", "pr_auc", "recall_top10", "precision_top10", "recall_top20", "precision_top20"}


def test_ranking_metrics_with_one_class_are_nan():
    metrics = ranking_metrics(np.array([0.9, 0.1]), np.zeros(2), np.ones(2))
    assert math.isnan(metrics["roc_auc"]) and math.isnan(metrics["pr_auc"])


def test_probability_metrics_by_hand():
    metrics = probability_metrics(np.array([0.8, 0.4]), np.array([1.0, 0.0]), np.ones(2))
    assert metrics["brier"] == pytest.approx((0.2**2 + 0.4**2) / 2)
    assert metrics["log_loss"] == pytest.approx(-(math.log(0.8) + math.log(0.6)) / 2)
    assert metrics["mean_predicted"] == pytest.approx(0.6)
    assert metrics["observed_rate"] == pytest.approx(0.5)
    assert metrics["roc_auc"] == 1.0


def test_probability_metrics_clip_certain_predictions():
    metrics = probability_metrics(np.array([0.0, 1.0]), np.array([1.0, 0.0]), np.ones(2))
    assert math.isfinite(metrics["log_loss"])
    assert metrics["log_loss"] == pytest.approx(-math.log(1e-6))


def test_ordinal_metrics_perfect_prediction():
    actual = np.array(["low", "normal", "normal", "high", "urgent"], dtype=object)
    metrics = ordinal_metrics(actual, actual, URGENCY_LEVELS)
    assert metrics["quadratic_kappa"] == pytest.approx(1.0)
    assert metrics["macro_f1"] == pytest.approx(1.0)
    assert metrics["accuracy"] == 1.0
    assert metrics["confusion_matrix"] == [[1, 0, 0, 0], [0, 2, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]


def test_ordinal_metrics_by_hand():
    actual = np.array(["low", "normal", "high", "urgent"], dtype=object)
    predicted = np.array(["low", "normal", "urgent", "urgent"], dtype=object)
    metrics = ordinal_metrics(predicted, actual, URGENCY_LEVELS)
    assert metrics["accuracy"] == 0.75
    # Rows actual, columns predicted: the "high" ticket was called "urgent".
    assert metrics["confusion_matrix"] == [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 0, 1]]
    # Quadratic weights (i - j)^2: observed disagreement 1; expected (row sums 1,1,1,1,
    # column sums 1,1,0,2, N 4) = (14 * 1 + 6 * 1 + 14 * 2) / 4 = 12 -> kappa 1 - 1/12.
    assert metrics["quadratic_kappa"] == pytest.approx(11 / 12)
    # F1 per level: 1, 1, 0 (never predicted), 2/3 (precision 1/2, recall 1).
    assert metrics["macro_f1"] == pytest.approx((1 + 1 + 0 + 2 / 3) / 4)


def test_ordinal_metrics_constant_prediction_has_zero_kappa():
    actual = np.array(["low", "normal", "high", "urgent"], dtype=object)
    metrics = ordinal_metrics(np.full(4, "normal", dtype=object), actual, URGENCY_LEVELS)
    assert metrics["quadratic_kappa"] == pytest.approx(0.0)
