"""Fitting the two LightGBM models on time-split training rows.

- risk: binary classifier on snapshot rows of labelled tickets, early-stopped on the
  ``valid`` period, calibrated on the ``calibrate`` period;
- urgency: 4-class classifier (low, normal, high, urgent) on each ticket's opening
  snapshot, learned from the priority agents finally set on solved tickets. The
  priority field itself is never one of its features.
"""

from __future__ import annotations

from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd

from models.calibration import Calibrator, fit_calibrator
from models.store import URGENCY_LEVELS
from pipeline.core.errors import UserError
from pipeline.core.params import LightGBMParams, RiskModelParams, UrgencyModelParams

# Features the urgency model must never see: the field it predicts, and what agents do
# because of it.
URGENCY_EXCLUDED = ("current_priority",)


class EligibilityError(UserError):
    """Too little labelled data to train a model worth shipping."""


@dataclass(frozen=True)
class RiskFit:
    booster: lgb.Booster
    calibrator: Calibrator
    best_iteration: int


def _lgbm_params(params: LightGBMParams, objective: dict) -> tuple[dict, int, int]:
    # deterministic + force_row_wise: the same data and params give the same trees on every run.
    lgb_params = {**params.booster_params(), **objective, "verbosity": -1, "deterministic": True,
                  "force_row_wise": True}
    return lgb_params, params.max_rounds, params.early_stopping_rounds


def check_eligibility(y_train: np.ndarray, ticket_ids: np.ndarray, min_labelled: int, min_bad: int, target: str) -> None:
    """Refuse to train when the training period has too few labelled tickets or bad outcomes."""
    per_ticket = pd.Series(y_train).groupby(ticket_ids).max()
    labelled, bad = len(per_ticket), int((per_ticket == 1).sum())
    good = labelled - bad
    if labelled < min_labelled or bad < min_bad or good < 1:
        raise EligibilityError(
            f"not enough labels to train ({target}): the training period has {labelled} labelled tickets "
            f"({bad} bad, {good} good); need at least {min_labelled} labelled and {min_bad} bad "
            "(params: train.min_labelled_tickets, train.min_bad_tickets). Export a longer period, "
            "or train on another bad outcome with --target COLUMN=VALUE"
        )


def fit_risk(
    x: pd.DataFrame, y: np.ndarray, weight: np.ndarray, period: np.ndarray, ticket_ids: np.ndarray,
    params: RiskModelParams,
) -> RiskFit:
    """Fit the bad-outcome model: rows ``period == 'train'``, early stopping on 'valid', calibration on 'calibrate'."""
    lgb_params, rounds, patience = _lgbm_params(params, {"objective": "binary", "metric": "binary_logloss"})
    fit_weight = weight.copy()
    if params.balance_classes:
        # Up-weighting bad outcomes helps the trees find them; the calibrator undoes the shift.
        train = period == "train"
        ratio = (y[train] == 0).sum() / max((y[train] == 1).sum(), 1)
        fit_weight = np.where(y == 1, weight * ratio, weight)
    booster = _train(x, y, fit_weight, period, lgb_params, rounds, patience)
    calibrate = period == "calibrate"
    if len(np.unique(y[calibrate])) < 2:
        raise EligibilityError("the calibration period has only one class of label; it needs both good and bad outcomes")
    raw = booster.predict(x[calibrate], raw_score=True)
    calibrator = fit_calibrator(raw, y[calibrate], weight[calibrate], ticket_ids[calibrate])
    return RiskFit(booster, calibrator, booster.best_iteration or booster.current_iteration())


def urgency_skip_reason(urgency: pd.DataFrame) -> str | None:
    """Why no urgency model can be learned from these opening rows, or None when one can.

    ``urgency`` holds one row per solved ticket with a final priority, with ``urgency``
    and ``period``. A team that never sets priorities has none; one that always leaves
    the default has a single level: neither teaches a classifier anything, so the model
    ships without urgency (scoring then ranks on risk and SLA pressure alone).
    """
    levels = "/".join(URGENCY_LEVELS)
    if urgency.empty:
        return f"no solved ticket has a final priority ({levels})"
    in_train = urgency.loc[urgency["period"] == "train", "urgency"]
    if in_train.empty:
        return f"no solved ticket of the training period has a final priority ({levels})"
    if in_train.nunique() < 2:
        return f"every solved ticket of the training period has priority {in_train.iloc[0]!r}: nothing to learn"
    if not (urgency["period"] == "valid").any():
        return "no solved ticket of the valid period has a final priority (needed for early stopping)"
    return None


def fit_urgency(
    x: pd.DataFrame, urgency: np.ndarray, period: np.ndarray, params: UrgencyModelParams
) -> lgb.Booster:
    """Fit the urgency classifier; ``urgency`` holds level names from :data:`URGENCY_LEVELS`."""
    code = pd.Categorical(urgency, categories=URGENCY_LEVELS).codes.astype("float64")
    lgb_params, rounds, patience = _lgbm_params(
        params, {"objective": "multiclass", "num_class": len(URGENCY_LEVELS), "metric": "multi_logloss"}
    )
    return _train(x, code, np.ones(len(code)), period, lgb_params, rounds, patience)


def _train(x, y, weight, period, lgb_params, rounds, patience) -> lgb.Booster:
    train, valid = period == "train", period == "valid"
    train_set = lgb.Dataset(x[train], y[train], weight=weight[train], free_raw_data=False)
    valid_set = lgb.Dataset(x[valid], y[valid], weight=weight[valid], reference=train_set)
    return lgb.train(
        lgb_params, train_set, num_boost_round=rounds, valid_sets=[valid_set], valid_names=["valid"],
        callbacks=[lgb.early_stopping(patience, verbose=False)],
    )
