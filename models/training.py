"""Fitting the two LightGBM models on time-split training rows.

- risk: binary classifier on snapshot rows of labelled tickets, early-stopped on the
  ``valid`` period, calibrated on the ``calibrate`` period;
- urgency: 4-class classifier (low, normal, high, urgent) on each ticket's opening
  snapshot, learned from the priority agents finally set on solved tickets. The
  priority field itself is never one of its features.

These are the held-out models: the test period is unseen, so every reported number
and the champion gate describe them. The production refit (:func:`refit_risk`,
:func:`refit_urgency`) then learns from every period, the newest weeks included, with
the round counts the held-out fits chose out of time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import lightgbm as lgb
import numpy as np
import pandas as pd

from models.calibration import Calibrator, fit_calibrator
from models.split import PERIODS
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


class BoosterFitter(Protocol):
    """How a booster is fitted on prepared rows: on this machine (:data:`LOCAL`) or elsewhere
    (``pipeline.distributed.train.DaskFitter``: lightgbm.dask on a cluster), same trees' meaning."""

    def train_rounds(self, x: pd.DataFrame, y: np.ndarray, weight: np.ndarray, lgb_params: dict,
                     rounds: int) -> lgb.Booster: ...

    def train_early_stopped(self, train: tuple, valid: tuple, lgb_params: dict, rounds: int,
                            patience: int) -> lgb.Booster: ...


class LocalFitter:
    """``lgb.train`` in this process."""

    def train_rounds(self, x, y, weight, lgb_params, rounds) -> lgb.Booster:
        return lgb.train(lgb_params, lgb.Dataset(x, y, weight=weight), num_boost_round=max(int(rounds), 1))

    def train_early_stopped(self, train, valid, lgb_params, rounds, patience) -> lgb.Booster:
        train_set = lgb.Dataset(*train[:2], weight=train[2], free_raw_data=False)
        valid_set = lgb.Dataset(*valid[:2], weight=valid[2], reference=train_set)
        return lgb.train(
            lgb_params, train_set, num_boost_round=rounds, valid_sets=[valid_set], valid_names=["valid"],
            callbacks=[lgb.early_stopping(patience, verbose=False)],
        )


LOCAL = LocalFitter()


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
    params: RiskModelParams, fitter: BoosterFitter = LOCAL,
) -> RiskFit:
    """Fit the bad-outcome model: rows ``period == 'train'``, early stopping on 'valid', calibration on 'calibrate'."""
    lgb_params, rounds, patience = _lgbm_params(params, _BINARY)
    fit_weight = _balanced(y, weight, period == "train", params.balance_classes)
    booster = _train(x, y, fit_weight, period, lgb_params, rounds, patience, fitter)
    calibrate = period == "calibrate"
    if len(np.unique(y[calibrate])) < 2:
        raise EligibilityError("the calibration period has only one class of label; it needs both good and bad outcomes")
    raw = booster.predict(x[calibrate], raw_score=True)
    calibrator = fit_calibrator(raw, y[calibrate], weight[calibrate], ticket_ids[calibrate])
    return RiskFit(booster, calibrator, best_iteration(booster))


def refit_risk(
    x: pd.DataFrame, y: np.ndarray, weight: np.ndarray, period: np.ndarray, ticket_ids: np.ndarray,
    params: RiskModelParams, rounds: int, fitter: BoosterFitter = LOCAL,
) -> RiskFit:
    """The production risk model: every labelled row, ``rounds`` boosting rounds, calibrated out of fold.

    ``rounds`` is the held-out fit's best iteration, not scaled up for the extra rows
    (about x1.8 with the default split). Scaling was checked on expanding windows of
    the demo and of the ServiceNow log (fit on train, then train+valid, then
    train+valid+calibrate; loss on the next period): the scaled count changed log-loss
    by -0.0025 to +0.0025, better on one log and worse on the other, and ROC AUC by
    under 0.002. The loss curve is flat near its optimum, and the early-stopped count
    itself jumped about (ServiceNow: 154, 815, 493 rounds as rows grew) rather than
    growing with rows, so nothing supports a rule beyond the count chosen out of time.

    Calibration: each of the periods after ``train`` (valid, calibrate, test, in time
    order) is scored by a model fitted the same way (same rounds, same class weighting)
    on every older period, and :func:`fit_calibrator` maps those raw scores to
    probabilities. Each row is scored by a model that never saw it and knew only its
    past, as the production model will score tonight's queue.
    """
    lgb_params, _, _ = _lgbm_params(params, _BINARY)
    out_of_fold = np.full(len(y), np.nan)
    for k, block in enumerate(PERIODS[1:], start=1):
        older, held = np.isin(period, PERIODS[:k]), period == block
        if not held.any():
            continue
        fold = _train_rounds(x, y, _balanced(y, weight, older, params.balance_classes), older, lgb_params, rounds,
                             fitter)
        out_of_fold[held] = fold.predict(x[held], raw_score=True)
    scored = ~np.isnan(out_of_fold)
    if len(np.unique(y[scored])) < 2:
        raise EligibilityError("the periods after train have only one class of label; "
                               "set train.refit_on_all_labels: false or export a longer period")
    calibrator = fit_calibrator(out_of_fold[scored], y[scored], weight[scored], ticket_ids[scored])
    every_row = np.ones(len(y), dtype=bool)
    booster = _train_rounds(x, y, _balanced(y, weight, every_row, params.balance_classes), every_row,
                            lgb_params, rounds, fitter)
    return RiskFit(booster, calibrator, rounds)


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
    lgb_params, rounds, patience = _lgbm_params(params, _MULTICLASS)
    return _train(x, code, np.ones(len(code)), period, lgb_params, rounds, patience)


def refit_urgency(x: pd.DataFrame, urgency: np.ndarray, params: UrgencyModelParams, rounds: int) -> lgb.Booster:
    """The production urgency classifier: every row (all periods), ``rounds`` rounds chosen out of time.

    No calibration step to redo: its probabilities go into the ranking as they are.
    """
    code = pd.Categorical(urgency, categories=URGENCY_LEVELS).codes.astype("float64")
    lgb_params, _, _ = _lgbm_params(params, _MULTICLASS)
    return _train_rounds(x, code, np.ones(len(code)), np.ones(len(code), dtype=bool), lgb_params, rounds)


def best_iteration(booster: lgb.Booster) -> int:
    """The round count early stopping chose (all rounds when it never stopped)."""
    return int(booster.best_iteration or booster.current_iteration())


_BINARY = {"objective": "binary", "metric": "binary_logloss"}
_MULTICLASS = {"objective": "multiclass", "num_class": len(URGENCY_LEVELS), "metric": "multi_logloss"}


def _balanced(y: np.ndarray, weight: np.ndarray, fit_rows: np.ndarray, balance: bool) -> np.ndarray:
    """Row weights, bad outcomes up-weighted to the good/bad ratio of ``fit_rows`` when ``balance``.

    Up-weighting bad outcomes helps the trees find them; the calibrator undoes the shift.
    """
    if not balance:
        return weight.copy()
    ratio = (y[fit_rows] == 0).sum() / max((y[fit_rows] == 1).sum(), 1)
    return np.where(y == 1, weight * ratio, weight)


def _train_rounds(x, y, weight, rows, lgb_params, rounds, fitter: BoosterFitter = LOCAL) -> lgb.Booster:
    """A booster on ``rows`` with exactly ``rounds`` rounds (no early stopping: the count was chosen out of time)."""
    return fitter.train_rounds(x[rows], y[rows], weight[rows], lgb_params, rounds)


def _train(x, y, weight, period, lgb_params, rounds, patience, fitter: BoosterFitter = LOCAL) -> lgb.Booster:
    train, valid = period == "train", period == "valid"
    return fitter.train_early_stopped((x[train], y[train], weight[train]), (x[valid], y[valid], weight[valid]),
                                      lgb_params, rounds, patience)
