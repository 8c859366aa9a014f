"""A trained model directory: what is in it, how to write it, how to load and apply it.

Files (no pickle anywhere, so loading a model cannot run code):

- ``risk_model.txt`` / ``urgency_model.txt``: LightGBM boosters in LightGBM's text format;
- ``calibration.json``: the risk calibrator as plain numbers;
- ``text_model.json`` + ``text_*_coef.npy``: the learned text scores (plain arrays);
- ``model.json``: feature lists, categorical levels, target, training periods, data
  fingerprint, parameters, library versions and the model version.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from models.calibration import Calibrator
from models.text_model import TextModel
from pipeline.core.errors import ExportError
from pipeline.core.io import atomic_path, write_json

URGENCY_LEVELS = ("low", "normal", "high", "urgent")
RISK_FILE, URGENCY_FILE, CALIBRATION_FILE, META_FILE = (
    "risk_model.txt", "urgency_model.txt", "calibration.json", "model.json",
)
# Written instead of a model when the champion gate has never promoted one.
NO_CHAMPION_FILE = "NO_CHAMPION.json"


class ModelMismatchError(ExportError):
    """The features given to a model are not the ones it was trained on."""


def prepare_matrix(
    features: pd.DataFrame, feature_names: list[str], categorical_levels: dict[str, list[str]]
) -> pd.DataFrame:
    """Select the model's columns in training order, categoricals on the training levels.

    Unseen categorical values become missing (LightGBM sends them down its default
    branch) rather than a new level the model never saw. Raises
    :class:`ModelMismatchError` naming the missing columns.
    """
    missing = [name for name in feature_names if name not in features.columns]
    if missing:
        raise ModelMismatchError(
            f"the model needs feature(s) {', '.join(missing[:5])}{'...' if len(missing) > 5 else ''} "
            "that the feature table lacks; retrain the model with this version (dvc repro)"
        )
    matrix = features[feature_names].copy()
    for name, levels in categorical_levels.items():
        values = matrix[name].astype(object)
        matrix[name] = pd.Categorical(values.where(values.isin(levels)), categories=levels)
    for name in feature_names:
        if name not in categorical_levels:
            matrix[name] = pd.to_numeric(matrix[name], errors="coerce").astype("float64")
    return matrix


def categorical_levels_of(features: pd.DataFrame, names: list[str]) -> dict[str, list[str]]:
    """Sorted levels of each categorical feature as seen in training."""
    return {name: sorted(map(str, features[name].astype(object).dropna().unique())) for name in names}


@dataclass
class TriageModel:
    """The risk model (booster + calibrator) and the urgency model, with their metadata."""

    risk_booster: lgb.Booster
    calibrator: Calibrator
    urgency_booster: lgb.Booster | None
    meta: dict = field(default_factory=dict)
    text_model: TextModel | None = None

    @property
    def version(self) -> str:
        return str(self.meta.get("model_version", "unknown"))

    @property
    def target(self) -> str:
        return str(self.meta.get("target", "satisfaction=bad"))

    def with_text_scores(self, features: pd.DataFrame) -> pd.DataFrame:
        """``features`` plus the learned text scores (from ``opening_text``) when the model uses them."""
        return self.text_model.add_scores(features) if self.text_model is not None else features

    def risk_matrix(self, features: pd.DataFrame) -> pd.DataFrame:
        return prepare_matrix(
            self.with_text_scores(features), self.meta["risk_features"], self.meta["categorical_levels"]
        )

    def urgency_matrix(self, features: pd.DataFrame) -> pd.DataFrame:
        levels = {k: v for k, v in self.meta["categorical_levels"].items() if k in self.meta["urgency_features"]}
        return prepare_matrix(self.with_text_scores(features), self.meta["urgency_features"], levels)

    def raw_risk(self, features: pd.DataFrame) -> np.ndarray:
        """Uncalibrated log-odds of a bad outcome, shape (n_rows,)."""
        return self.risk_booster.predict(self.risk_matrix(features), raw_score=True)

    def predict_risk(self, features: pd.DataFrame) -> np.ndarray:
        """Calibrated probability of a bad outcome, shape (n_rows,)."""
        return self.calibrator.predict(self.raw_risk(features))

    def risk_contributions(self, features: pd.DataFrame) -> pd.DataFrame:
        """Per-row contribution of each feature to the raw log-odds (LightGBM SHAP values).

        Shape (n_rows, n_features); the bias column is dropped.
        """
        matrix = self.risk_matrix(features)
        contributions = self.risk_booster.predict(matrix, pred_contrib=True)
        return pd.DataFrame(contributions[:, :-1], columns=matrix.columns, index=features.index)

    def predict_urgency(self, features: pd.DataFrame) -> pd.DataFrame:
        """Probability of each urgency level, shape (n_rows, 4), columns :data:`URGENCY_LEVELS`."""
        if self.urgency_booster is None:
            raise ModelMismatchError("this model directory has no urgency model")
        probabilities = self.urgency_booster.predict(self.urgency_matrix(features))
        return pd.DataFrame(probabilities, columns=list(URGENCY_LEVELS), index=features.index)

    def save(self, model_dir: str | Path) -> Path:
        """Write the model directory; each file atomically, model.json last."""
        model_dir = Path(model_dir)
        model_dir.mkdir(parents=True, exist_ok=True)
        _write_booster(self.risk_booster, model_dir / RISK_FILE)
        if self.urgency_booster is not None:
            _write_booster(self.urgency_booster, model_dir / URGENCY_FILE)
        write_json(self.calibrator.to_dict(), model_dir / CALIBRATION_FILE)
        if self.text_model is not None:
            self.text_model.save(model_dir)
        write_json(self.meta, model_dir / META_FILE)
        return model_dir

    @classmethod
    def load(cls, model_dir: str | Path) -> TriageModel:
        model_dir = Path(model_dir)
        meta_file = model_dir / META_FILE
        if not meta_file.is_file():
            raise ExportError(f"{model_dir}: not a model directory (no {META_FILE}); train one with `csat-triage train`")
        meta = json.loads(meta_file.read_text())
        urgency_file = model_dir / URGENCY_FILE
        return cls(
            risk_booster=lgb.Booster(model_file=str(model_dir / RISK_FILE)),
            calibrator=Calibrator.from_dict(json.loads((model_dir / CALIBRATION_FILE).read_text())),
            urgency_booster=lgb.Booster(model_file=str(urgency_file)) if urgency_file.is_file() else None,
            meta=meta,
            text_model=TextModel.load(model_dir),
        )


def _write_booster(booster: lgb.Booster, path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(booster.model_to_string())


def model_version(
    risk_booster: lgb.Booster, urgency_booster: lgb.Booster | None, calibrator: Calibrator,
    text_model: TextModel | None = None,
) -> str:
    """Content hash of the models: the same training gives the same version, on any machine."""
    digest = hashlib.sha256(risk_booster.model_to_string().encode())
    if urgency_booster is not None:
        digest.update(urgency_booster.model_to_string().encode())
    digest.update(json.dumps(calibrator.to_dict(), sort_keys=True).encode())
    if text_model is not None:
        digest.update(text_model.risk_coef.tobytes() + text_model.urgency_coef.tobytes())
    return digest.hexdigest()[:12]


def data_fingerprint(tickets: pd.DataFrame, events: pd.DataFrame) -> str:
    """Hash of the rows that matter for training (ids, times, statuses, labels, event kinds)."""
    digest = hashlib.sha256()
    ticket_cols = [c for c in ("ticket_id", "created_at", "status", "satisfaction", "satisfaction_at") if c in tickets]
    event_cols = [c for c in ("ticket_id", "at", "actor", "kind", "value") if c in events]
    for frame in (tickets[ticket_cols], events[event_cols]):
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def copy_model_dir(src: Path, dst: Path) -> Path:
    """Replace ``dst`` with a copy of ``src`` (copied beside it first, then swapped in)."""
    dst = Path(dst)
    staging = dst.with_name(f".{dst.name}.incoming")
    if staging.exists():
        shutil.rmtree(staging)
    shutil.copytree(src, staging)
    if dst.exists():
        old = dst.with_name(f".{dst.name}.old")
        if old.exists():
            shutil.rmtree(old)
        dst.rename(old)
        staging.rename(dst)
        shutil.rmtree(old)
    else:
        staging.rename(dst)
    return dst
