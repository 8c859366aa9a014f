"""A trained model directory: what is in it, how to write it, how to load and apply it.

Files (no pickle anywhere, so loading a model cannot run code):

- ``risk_model.txt`` / ``urgency_model.txt``: LightGBM boosters in LightGBM's text format;
- ``calibration.json``: the risk calibrator as plain numbers;
- ``risk_model.heldout.txt``, ``calibration.heldout.json``, ``urgency_model.heldout.txt``:
  the held-out models, trained without the test period, when the files above are the
  production refit on every labelled ticket (see :meth:`TriageModel.heldout`);
- ``text_model.json`` + ``text_*_coef.npy``: the learned text scores (plain arrays);
- ``model.json``: feature lists, categorical levels, target, training periods, data
  fingerprint, parameters, library versions, the model version, and ``checksums``: the
  sha256 of every other file. :meth:`TriageModel.load` verifies each file against it
  before any byte reaches LightGBM or NumPy (a truncated booster text crashes LightGBM's
  native parser with a segmentation fault, no Python error), and the checksums decide
  which parts exist, so a stale file left by an older training is never picked up.
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

from features.build import FEATURE_NAMES
from models.calibration import Calibrator
from models.text_model import TEXT_MODEL_FILES, TEXT_SCORE_COLUMNS, TextModel
from pipeline.core import contract
from pipeline.core.errors import ExportError, UserError
from pipeline.core.io import atomic_path, write_json

URGENCY_LEVELS = ("low", "normal", "high", "urgent")
RISK_FILE, URGENCY_FILE, CALIBRATION_FILE, META_FILE = (
    "risk_model.txt", "urgency_model.txt", "calibration.json", "model.json",
)
# The held-out models beside the production refit: absent when the production model is the held-out one.
HELD_OUT_RISK_FILE, HELD_OUT_URGENCY_FILE, HELD_OUT_CALIBRATION_FILE = (
    "risk_model.heldout.txt", "urgency_model.heldout.txt", "calibration.heldout.json",
)
# The level rare (and unseen) values of a categorical attribute share.
OTHER_LEVEL = "(other)"
# Written instead of a model when the champion gate has never promoted one.
NO_CHAMPION_FILE = "NO_CHAMPION.json"


class ModelMismatchError(ExportError):
    """The features given to a model are not the ones it was trained on."""


class ModelIntegrityError(ExportError):
    """A model directory's file is missing, changed or truncated since training."""


CHECKSUMS_KEY = "checksums"
_RETRAIN = "copy the whole model directory again or re-train it (csat-triage train / dvc repro)"


def prepare_matrix(
    features: pd.DataFrame, feature_names: list[str], categorical_levels: dict[str, list[str]]
) -> pd.DataFrame:
    """Select the model's columns in training order, categoricals on the training levels.

    Unseen categorical values become missing (LightGBM sends them down its default
    branch) rather than a new level the model never saw - except where the levels hold
    :data:`OTHER_LEVEL` (attributes with rare levels pooled): there an unseen value is
    one more rare value. An attribute the export lacks is all missing (an export need
    not carry every attribute of the training one). Raises :class:`ModelMismatchError`
    naming any other missing column.
    """
    missing = [name for name in feature_names if name not in features.columns and not is_attribute(name)]
    if missing:
        raise ModelMismatchError(
            f"the model needs feature(s) {', '.join(missing[:5])}{'...' if len(missing) > 5 else ''} "
            "that the feature table lacks; retrain the model with this version (dvc repro)"
        )
    matrix = features.reindex(columns=feature_names)
    for name, levels in categorical_levels.items():
        column = matrix[name]
        if isinstance(column.dtype, pd.CategoricalDtype) and len(column.cat.categories):
            # The same mapping, made once per category rather than once per row.
            per_category = _on_levels(pd.Series(column.cat.categories), levels)
            codes = column.cat.codes.to_numpy()
            matrix[name] = pd.Categorical.from_codes(
                np.where(codes >= 0, per_category.codes[np.clip(codes, 0, None)], -1), dtype=per_category.dtype)
        else:
            matrix[name] = _on_levels(column, levels)
    for name in feature_names:
        if name not in categorical_levels:
            matrix[name] = _as_numbers(matrix[name])
    return matrix


def _on_levels(values: pd.Series, levels: list[str]) -> pd.Categorical:
    """``values`` as a categorical on the training ``levels`` (see :func:`prepare_matrix`)."""
    values = values.astype(object)
    if OTHER_LEVEL in levels:
        values = values.where(values.isna() | values.isin(levels), OTHER_LEVEL)
    return pd.Categorical(values.where(values.isin(levels)), categories=levels)


def _as_numbers(values: pd.Series) -> pd.Series:
    """float64; an attribute's text levels ("12", "7.5") parsed once per level, not per row."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        numbers = pd.to_numeric(pd.Series(values.cat.categories.astype(str)), errors="coerce").to_numpy("float64")
        codes = values.cat.codes.to_numpy()
        return pd.Series(np.where(codes >= 0, numbers[np.clip(codes, 0, None)] if len(numbers) else np.nan, np.nan),
                         index=values.index, dtype="float64")
    return pd.to_numeric(values, errors="coerce").astype("float64")


def categorical_levels_of(features: pd.DataFrame, names: list[str]) -> dict[str, list[str]]:
    """Sorted levels of each categorical feature as seen in training."""
    return {name: sorted(map(str, features[name].astype(object).dropna().unique())) for name in names}


def is_attribute(name: str) -> bool:
    return str(name).startswith(contract.ATTRIBUTE_PREFIX)


@dataclass(frozen=True)
class HeldOutModels:
    """The out-of-time risk booster, its calibrator and the urgency booster: fitted on the
    training period only, so the test period is unseen by them."""

    risk_booster: lgb.Booster
    calibrator: Calibrator
    urgency_booster: lgb.Booster | None


@dataclass
class TriageModel:
    """The risk model (booster + calibrator) and the urgency model, with their metadata.

    The boosters here are the ones that score (the production refit when there is one);
    :meth:`heldout` gives the model every reported number describes.
    """

    risk_booster: lgb.Booster
    calibrator: Calibrator
    urgency_booster: lgb.Booster | None
    meta: dict = field(default_factory=dict)
    text_model: TextModel | None = None
    held_out: HeldOutModels | None = None
    is_held_out_view: bool = False

    def heldout(self) -> TriageModel:
        """The held-out model: trained on the training period only, the test period unseen.

        Evaluation, per-moment evaluation and the champion gate judge this one; scoring
        uses the model itself, refit on every labelled ticket. Without a separate held-out
        model (``train.refit_on_all_labels: false``, or a model directory from before the
        refit) the model is its own held-out model. The view shares ``meta`` (and so the
        version) and cannot be saved.
        """
        if self.held_out is None:
            return self
        return TriageModel(self.held_out.risk_booster, self.held_out.calibrator, self.held_out.urgency_booster,
                           self.meta, self.text_model, None, is_held_out_view=True)

    @property
    def version(self) -> str:
        return str(self.meta.get("model_version", "unknown"))

    @property
    def static_attributes(self) -> tuple[str, ...]:
        """Ticket-row columns the model was trained to read as attributes known at creation."""
        return tuple(self.meta.get("static_attributes", ()))

    @property
    def prior_ratings(self) -> float | None:
        """``team_record.prior_ratings`` the model was trained with (None: a model from before it)."""
        return (self.meta.get("params", {}).get("team_record") or {}).get("prior_ratings")

    @property
    def categorical_features(self) -> list[str]:
        return list(self.meta.get("categorical_levels", {}))

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
        """Write the model directory; each file atomically, model.json last with their checksums.

        Part files of an older model that this one lacks (say ``urgency_model.txt``) are
        removed once model.json is written; ``self.meta`` gets the new ``checksums``.
        """
        if self.is_held_out_view:
            raise ValueError("a held-out view is part of a model directory; save the model it came from")
        model_dir = Path(model_dir)
        try:
            model_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a read-only place, or a file where the folder should be
            raise UserError(f"{model_dir}: cannot write here ({exc.strerror}); choose a writable output path") from None
        parts = [RISK_FILE, CALIBRATION_FILE]
        _write_booster(self.risk_booster, model_dir / RISK_FILE)
        if self.urgency_booster is not None:
            _write_booster(self.urgency_booster, model_dir / URGENCY_FILE)
            parts.append(URGENCY_FILE)
        write_json(self.calibrator.to_dict(), model_dir / CALIBRATION_FILE)
        if self.held_out is not None:
            _write_booster(self.held_out.risk_booster, model_dir / HELD_OUT_RISK_FILE)
            write_json(self.held_out.calibrator.to_dict(), model_dir / HELD_OUT_CALIBRATION_FILE)
            parts += [HELD_OUT_RISK_FILE, HELD_OUT_CALIBRATION_FILE]
            if self.held_out.urgency_booster is not None:
                _write_booster(self.held_out.urgency_booster, model_dir / HELD_OUT_URGENCY_FILE)
                parts.append(HELD_OUT_URGENCY_FILE)
        if self.text_model is not None:
            self.text_model.save(model_dir)
            parts.extend(TEXT_MODEL_FILES)
        # Hash what is on disk, so the checksum is exactly what load will read back.
        checksums = {name: _sha256((model_dir / name).read_bytes()) for name in sorted(parts)}
        self.meta = {**self.meta, CHECKSUMS_KEY: checksums}
        write_json(self.meta, model_dir / META_FILE)
        for stale in sorted(set(_PART_FILES) - set(parts)):
            (model_dir / stale).unlink(missing_ok=True)
        return model_dir

    @classmethod
    def load(cls, model_dir: str | Path) -> TriageModel:
        """Read a model directory, every file verified before it is parsed (see the module docstring).

        Raises :class:`ModelIntegrityError` naming the file when one is missing, changed or
        truncated, and :class:`ModelMismatchError` when model.json lists a feature this
        version does not compute; both are one line.
        """
        model_dir = Path(model_dir)
        meta_file = model_dir / META_FILE
        if not meta_file.is_file():
            raise ExportError(f"{model_dir}: not a model directory (no {META_FILE}); train one with `csat-triage train`")
        try:
            meta = json.loads(meta_file.read_bytes())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ModelIntegrityError(f"{meta_file}: not valid JSON (damaged or truncated); {_RETRAIN}") from None
        if not isinstance(meta, dict) or not isinstance(meta.get("risk_features"), list):
            raise ModelIntegrityError(f"{meta_file}: not a csat-triage model description; {_RETRAIN}")
        files = _VerifiedFiles(model_dir, meta.get(CHECKSUMS_KEY))
        has_urgency, has_text = files.has(URGENCY_FILE), files.has(TEXT_MODEL_FILES[0])
        has_held_out = files.has(HELD_OUT_RISK_FILE)
        check_feature_lists(meta, has_text, meta_file)
        try:
            text_model = TextModel.load(model_dir, files.read) if has_text else None
            calibrator = Calibrator.from_dict(json.loads(files.read(CALIBRATION_FILE)))
            held_out_calibrator = (Calibrator.from_dict(json.loads(files.read(HELD_OUT_CALIBRATION_FILE)))
                                   if has_held_out else None)
        except (ValueError, KeyError, TypeError, EOFError) as exc:
            if files.checksums is not None:
                raise  # verified bytes that do not parse: a bug in the writer, keep the traceback
            raise ModelIntegrityError(f"{model_dir}: a model file cannot be read ({type(exc).__name__}); "
                                      f"{_RETRAIN}") from None
        risk_booster = files.booster(RISK_FILE)
        urgency_booster = files.booster(URGENCY_FILE) if has_urgency else None
        held_out = None
        if has_held_out:
            held_out = HeldOutModels(
                files.booster(HELD_OUT_RISK_FILE), held_out_calibrator,
                files.booster(HELD_OUT_URGENCY_FILE) if files.has(HELD_OUT_URGENCY_FILE) else None,
            )
        # The boosters read columns by position: the lists in model.json must be exactly theirs,
        # or features would be fed in the wrong order and scores silently wrong.
        for name, booster, key in (
            (RISK_FILE, risk_booster, "risk_features"),
            (URGENCY_FILE, urgency_booster, "urgency_features"),
            (HELD_OUT_RISK_FILE, held_out and held_out.risk_booster, "risk_features"),
            (HELD_OUT_URGENCY_FILE, held_out and held_out.urgency_booster, "urgency_features"),
        ):
            if booster is not None and booster.feature_name() != list(meta.get(key, [])):
                raise ModelMismatchError(
                    f"{model_dir / name}: its features differ from {key} in {META_FILE} (order or names); "
                    f"{_RETRAIN}")
        return cls(
            risk_booster=risk_booster,
            calibrator=calibrator,
            urgency_booster=urgency_booster,
            meta=meta,
            text_model=text_model,
            held_out=held_out,
        )


_PART_FILES = (RISK_FILE, URGENCY_FILE, CALIBRATION_FILE, *TEXT_MODEL_FILES,
               HELD_OUT_RISK_FILE, HELD_OUT_URGENCY_FILE, HELD_OUT_CALIBRATION_FILE)


def check_feature_lists(meta: dict, has_text_model: bool, where: Path | str = META_FILE) -> None:
    """Refuse a model whose feature lists name a column this version never computes.

    Such a model was trained by another version (or its model.json was edited); checking at
    load time fails before the export is read, with one line naming the features.
    """
    known = set(FEATURE_NAMES) | (set(TEXT_SCORE_COLUMNS) if has_text_model else set())
    listed = [*meta.get("risk_features", []), *meta.get("urgency_features", [])]
    unknown = list(dict.fromkeys(name for name in listed if name not in known and not is_attribute(name)))
    if unknown:
        raise ModelMismatchError(
            f"{where}: the model needs feature(s) {', '.join(map(str, unknown[:5]))}"
            f"{'...' if len(unknown) > 5 else ''} that this version does not compute; "
            "retrain the model with this version (dvc repro)"
        )


class _VerifiedFiles:
    """Reads a model directory's part files, each checked before anything parses it.

    With ``checksums`` (model.json since checksums exist): a file must be listed, present
    and match its sha256; the listing says which parts the model has. Without (a model
    directory written by the previous version): such directories still load, because a
    nightly run or a registered champion should not stop working on an upgrade, and
    re-training may not pass the champion gate; instead each booster text must be
    complete (LightGBM's text format ends with its parameters block and the
    ``pandas_categorical`` line, which truncation cuts off), which catches the
    truncated copy that crashes LightGBM, though not a same-length change.
    Re-saving or re-training writes the checksums.
    """

    def __init__(self, model_dir: Path, checksums: object) -> None:
        if checksums is not None and not (
            isinstance(checksums, dict) and all(isinstance(v, str) for v in checksums.values())
        ):
            raise ModelIntegrityError(f"{model_dir / META_FILE}: `{CHECKSUMS_KEY}` is damaged; {_RETRAIN}")
        self.model_dir, self.checksums = model_dir, checksums

    def has(self, name: str) -> bool:
        return name in self.checksums if self.checksums is not None else (self.model_dir / name).is_file()

    def read(self, name: str) -> bytes:
        path = self.model_dir / name
        if self.checksums is not None and name not in self.checksums:
            raise ModelIntegrityError(f"{path}: not listed in {META_FILE} `{CHECKSUMS_KEY}`; {_RETRAIN}")
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ModelIntegrityError(f"{path}: missing from the model directory; {_RETRAIN}") from None
        if self.checksums is not None and _sha256(data) != self.checksums[name]:
            raise ModelIntegrityError(
                f"{path}: checksum does not match {META_FILE} (changed or truncated since training); {_RETRAIN}"
            )
        return data

    def booster(self, name: str) -> lgb.Booster:
        """The booster of a verified file, parsed from the same bytes that were checked."""
        data = self.read(name)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = ""
        if self.checksums is None and not _complete_booster_text(text):
            raise ModelIntegrityError(f"{self.model_dir / name}: incomplete LightGBM model (truncated?); {_RETRAIN}")
        return lgb.Booster(model_str=text)


def _complete_booster_text(text: str) -> bool:
    """Whether a LightGBM text model has its closing sections (written last, so truncation drops them)."""
    if not text.startswith("tree\n") or "\nend of trees\n" not in text or "\nend of parameters\n" not in text:
        return False
    last = text.rstrip("\n").rsplit("\n", 1)[-1]
    if not last.startswith("pandas_categorical:"):
        return False
    try:
        json.loads(last.removeprefix("pandas_categorical:"))
    except json.JSONDecodeError:
        return False
    return True


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_booster(booster: lgb.Booster, path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(booster.model_to_string())


def model_version(
    risk_booster: lgb.Booster, urgency_booster: lgb.Booster | None, calibrator: Calibrator,
    text_model: TextModel | None = None, held_out: HeldOutModels | None = None,
) -> str:
    """Content hash of the models: the same training gives the same version, on any machine.

    The held-out models count too: the metrics a version reports are theirs.
    """
    digest = hashlib.sha256(risk_booster.model_to_string().encode())
    if urgency_booster is not None:
        digest.update(urgency_booster.model_to_string().encode())
    digest.update(json.dumps(calibrator.to_dict(), sort_keys=True).encode())
    if text_model is not None:
        digest.update(text_model.risk_coef.tobytes() + text_model.urgency_coef.tobytes())
    if held_out is not None:
        digest.update(held_out.risk_booster.model_to_string().encode())
        if held_out.urgency_booster is not None:
            digest.update(held_out.urgency_booster.model_to_string().encode())
        digest.update(json.dumps(held_out.calibrator.to_dict(), sort_keys=True).encode())
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
