"""Calibration: hand formulas, JSON round trip, and the Platt-vs-isotonic chooser on known curves."""

from __future__ import annotations

import json

import numpy as np
import pytest

from models.calibration import Calibrator, fit_calibrator
from models.metrics import expected_calibration_error

N_ROWS = 4000


def logistic_data(seed: int = 0, slope: float = 1.5, intercept: float = -0.5):
    """Raw log-odds ~ N(0, 1.5); true P(bad) = sigmoid(slope * raw + intercept)."""
    rng = np.random.default_rng(seed)
    raw = rng.normal(0.0, 1.5, N_ROWS)
    p_true = 1.0 / (1.0 + np.exp(-(slope * raw + intercept)))
    return raw, p_true, (rng.random(N_ROWS) < p_true).astype("float64")


def step_data(seed: int = 1, low: float = 0.3, high: float = 0.7):
    """True P(bad) jumps from ``low`` to ``high`` at raw = 0 and is flat on both sides:
    no logistic curve fits both the jump and the plateaus."""
    rng = np.random.default_rng(seed)
    raw = rng.uniform(-3.0, 3.0, N_ROWS)
    p_true = np.where(raw < 0.0, low, high)
    return raw, p_true, (rng.random(N_ROWS) < p_true).astype("float64")


def test_platt_formula_by_hand():
    calibrator = Calibrator("platt", slope=2.0, intercept=-1.0)
    # sigmoid(2 * 0.5 - 1) = sigmoid(0) = 0.5; sigmoid(2 * 1 - 1) = 1 / (1 + e^-1)
    assert calibrator.predict(np.array([0.5, 1.0])) == pytest.approx([0.5, 1 / (1 + np.exp(-1))])


def test_isotonic_interpolates_and_clips():
    calibrator = Calibrator("isotonic", x=(-1.0, 0.0, 2.0), y=(0.1, 0.2, 0.6))
    assert calibrator.predict(np.array([-5.0, -0.5, 1.0, 9.0])) == pytest.approx([0.1, 0.15, 0.4, 0.6], abs=1e-6)


def test_unknown_method_fails():
    with pytest.raises(ValueError, match="unknown calibration method"):
        Calibrator("beta").predict(np.zeros(2))


@pytest.mark.parametrize("calibrator", [
    Calibrator("platt", slope=1.3999, intercept=-0.0477, brier_platt=0.1378, brier_isotonic=0.1709),
    Calibrator("isotonic", slope=1.0, intercept=0.0, x=(-2.0, 0.25, 3.5), y=(0.0, 0.3, 1.0),
               brier_platt=0.21, brier_isotonic=0.2),
])
def test_round_trip_through_json(calibrator):
    data = json.loads(json.dumps(calibrator.to_dict()))
    again = Calibrator.from_dict(data)
    assert again == calibrator
    raw = np.linspace(-4, 4, 33)
    assert np.array_equal(again.predict(raw), calibrator.predict(raw))


def test_fitted_calibrator_round_trips_bit_for_bit():
    raw, _, y = step_data()
    calibrator = fit_calibrator(raw, y)
    again = Calibrator.from_dict(json.loads(json.dumps(calibrator.to_dict())))
    assert np.array_equal(again.predict(raw), calibrator.predict(raw))


def test_logistic_relationship_picks_platt_and_recovers_the_curve():
    raw, p_true, y = logistic_data()
    calibrator = fit_calibrator(raw, y)
    assert calibrator.method == "platt"
    assert calibrator.brier_platt < calibrator.brier_isotonic
    assert calibrator.slope == pytest.approx(1.5, abs=0.1)
    assert calibrator.intercept == pytest.approx(-0.5, abs=0.1)
    p = calibrator.predict(raw)
    weights = np.ones(N_ROWS)
    # Against the true probabilities the error is tiny; against sampled labels, sampling noise.
    assert expected_calibration_error(p, p_true, weights) < 0.01
    assert expected_calibration_error(p, y, weights) < 0.03


def test_step_relationship_picks_isotonic():
    raw, p_true, y = step_data()
    calibrator = fit_calibrator(raw, y)
    assert calibrator.method == "isotonic"
    assert calibrator.brier_isotonic < calibrator.brier_platt
    p = calibrator.predict(raw)
    # The plateaus are found: mean |p - truth| well under the 0.4 jump.
    assert np.abs(p - p_true).mean() < 0.05
    assert np.all(np.diff(p[np.argsort(raw)]) >= 0)  # monotone in the raw score


def test_groups_keep_a_ticket_in_one_fold():
    # Each ticket appears twice with the same raw score and label. With row folds the
    # isotonic fit would see each held-out row's twin; with ticket groups it cannot.
    raw, _, y = step_data()
    doubled_raw, doubled_y = np.repeat(raw, 2), np.repeat(y, 2)
    tickets = np.repeat(np.arange(N_ROWS), 2)
    by_ticket = fit_calibrator(doubled_raw, doubled_y, groups=tickets)
    by_row = fit_calibrator(doubled_raw, doubled_y)
    assert by_ticket.brier_isotonic > by_row.brier_isotonic


def test_one_class_is_refused():
    with pytest.raises(ValueError, match="only one class"):
        fit_calibrator(np.linspace(-1, 1, 10), np.zeros(10))


def test_isotonic_keeps_the_models_order_inside_a_step():
    """Flat isotonic steps must not tie tickets the model ranks differently (the queue sorts by p)."""
    calibrator = Calibrator("isotonic", x=(-2.0, 0.0, 2.0), y=(0.1, 0.3, 0.3))
    raw = np.array([0.5, 1.0, 1.5])  # all on the flat step at 0.3
    p = calibrator.predict(raw)
    assert np.all(np.diff(p) > 0)
    assert np.allclose(p, 0.3, atol=1e-6)
