"""Baselines the risk model must beat: the rules a team lead would use without it.

- ``oldest_first``: "oldest ticket first" (``age_minutes``): the order a queue has without any tool;
- ``longest_wait``: "longest current wait first" (``current_wait_minutes``);
- ``wait_reopen_transfer_rule``: hours waited + 2 per reopen + 1 per group or assignee hop;
- ``logistic_regression``: a linear model on the same features (median-imputed,
  standardised, categoricals one-hot), fitted on the training period.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler


def oldest_first(features: pd.DataFrame) -> np.ndarray:
    return features["age_minutes"].to_numpy(dtype="float64")


def longest_wait(features: pd.DataFrame) -> np.ndarray:
    return features["current_wait_minutes"].to_numpy(dtype="float64")


def wait_reopen_transfer_rule(features: pd.DataFrame) -> np.ndarray:
    return (
        features["requester_wait_minutes"].to_numpy(dtype="float64") / 60.0
        + 2.0 * features["reopens"].to_numpy(dtype="float64")
        + features["group_hops"].to_numpy(dtype="float64")
        + features["assignee_hops"].to_numpy(dtype="float64")
    )


def fit_logistic_regression(
    x: pd.DataFrame, y: np.ndarray, weight: np.ndarray, categorical: list[str]
):
    """A calibrated-by-construction linear baseline; returns a fitted scikit-learn pipeline."""
    numeric = [c for c in x.columns if c not in categorical]
    prepare = ColumnTransformer(
        [
            ("numeric", make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler()), numeric),
            ("categorical", OneHotEncoder(handle_unknown="ignore", min_frequency=20), categorical),
        ]
    )
    model = make_pipeline(prepare, LogisticRegression(max_iter=2000, C=0.5))
    x = x.copy()
    for column in categorical:
        x[column] = x[column].astype(object).fillna("(missing)")
    model.fit(x, y, logisticregression__sample_weight=weight)
    return model


def predict_logistic_regression(model, x: pd.DataFrame, categorical: list[str]) -> np.ndarray:
    x = x.copy()
    for column in categorical:
        x[column] = x[column].astype(object).fillna("(missing)")
    return model.predict_proba(x)[:, 1]
