"""MLflow tracking and the model registry: log runs, register models, move the ``champion`` alias.

Tracking works with no server: ``MLFLOW_TRACKING_URI`` if set, else
``sqlite:///<repo>/mlflow.db`` where <repo> is ``DVC_ROOT`` (set by DVC when it runs
a stage, also in a temporary experiment copy) or the current directory.

The gate's rules live in :mod:`models.gate`; this module only records their outcome.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from models.gate import GateDecision, flatten
from models.store import TriageModel
from pipeline.core.errors import UserError

CHAMPION_ALIAS = "champion"

def tracking_uri() -> str:
    """The MLflow tracking URI to use (see module docstring); never logged with secrets."""
    configured = os.environ.get("MLFLOW_TRACKING_URI")
    if configured:
        return configured
    root = Path(os.environ.get("DVC_ROOT") or os.getcwd()).resolve()
    return f"sqlite:///{root / 'mlflow.db'}"

class Registry:
    """The MLflow model registry for one model family (``<name>-risk`` and ``<name>-urgency``)."""

    def __init__(self, name: str, uri: str | None = None) -> None:
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        import logging

        import mlflow

        logging.getLogger("mlflow").setLevel(logging.WARNING)
        logging.getLogger("alembic").setLevel(logging.WARNING)

        self.mlflow = mlflow
        self.uri = uri or tracking_uri()
        mlflow.set_tracking_uri(self.uri)
        mlflow.set_registry_uri(self.uri)
        self.client = mlflow.MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
        self.risk_name, self.urgency_name = f"{name}-risk", f"{name}-urgency"
        self.experiment = name

    def champion_version(self) -> str | None:
        from mlflow.exceptions import MlflowException

        try:
            return str(self.client.get_model_version_by_alias(self.risk_name, CHAMPION_ALIAS).version)
        except MlflowException:
            return None

    def download_model_dir(self, version: str, dst: str | Path) -> Path:
        """The full model directory logged with registered risk model ``version``."""
        run_id = self.client.get_model_version(self.risk_name, version).run_id
        path = self.mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="model_dir", dst_path=str(dst))
        return Path(path)

    def log_and_register(self, model: TriageModel, model_dir: Path, metrics: dict[str, float],
                         sample: pd.DataFrame) -> tuple[str, str | None, str]:
        """Log one run (params, metrics, fingerprint, both models) and register the models.

        Returns (risk version, urgency version or None, run id).
        """
        import lightgbm
        from mlflow.models import infer_signature

        mlflow = self.mlflow
        # Stated, not inferred: inference imports the model in a subprocess and takes ~10 s.
        requirements = [f"lightgbm=={lightgbm.__version__}"]
        mlflow.set_experiment(self.experiment)
        with mlflow.start_run(run_name=f"train-{model.version}") as run:
            mlflow.set_tags({"model_version": model.version, "target": model.target,
                             "data_fingerprint": model.meta["training_data"]["fingerprint"]})
            params = flatten({"params": model.meta.get("params", {}),
                              "data": {"fingerprint": model.meta["training_data"]["fingerprint"],
                                       "export": model.meta["training_data"]["export"]},
                              "target": model.target})
            mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
            mlflow.log_metrics({k: v for k, v in metrics.items() if np.isfinite(v)})
            risk_input = _signature_frame(model.risk_matrix(sample))
            risk_info = mlflow.lightgbm.log_model(
                model.risk_booster, name="risk_model", registered_model_name=self.risk_name,
                signature=infer_signature(risk_input, model.raw_risk(sample)),
                pip_requirements=requirements,
            )
            urgency_version = None
            if model.urgency_booster is not None:
                urgency_input = _signature_frame(model.urgency_matrix(sample))
                urgency_info = mlflow.lightgbm.log_model(
                    model.urgency_booster, name="urgency_model", registered_model_name=self.urgency_name,
                    signature=infer_signature(urgency_input, model.predict_urgency(sample).to_numpy()),
                    pip_requirements=requirements,
                )
                urgency_version = str(urgency_info.registered_model_version)
            mlflow.log_artifacts(str(model_dir), artifact_path="model_dir")
        risk_version = str(risk_info.registered_model_version)
        # The content hash on the version itself: which model an alias points to, without its run.
        self.client.set_model_version_tag(self.risk_name, risk_version, "model_version", model.version)
        if urgency_version is not None:
            self.client.set_model_version_tag(self.urgency_name, urgency_version, "model_version", model.version)
        return risk_version, urgency_version, run.info.run_id

    def promote(self, risk_version: str, urgency_version: str | None) -> None:
        self.client.set_registered_model_alias(self.risk_name, CHAMPION_ALIAS, risk_version)
        if urgency_version is not None:
            self.client.set_registered_model_alias(self.urgency_name, CHAMPION_ALIAS, urgency_version)

    def log_decision(self, run_id: str, decision: GateDecision) -> None:
        self.client.set_tag(run_id, "champion_gate", "promoted" if decision.promoted else "kept champion")
        self.client.set_tag(run_id, "champion_gate_reason", decision.reason)


def resolve_model_uri(uri: str, dst: str | Path | None = None) -> Path:
    """``models:/<name>-risk@<alias>`` or ``models:/<name>-risk/<version>`` downloaded into ``dst``.

    ``dst`` is required (None only checks the URI): scoring uses :func:`downloaded_model_dir`,
    which removes the download afterwards, rather than a temporary directory nobody deletes.
    """
    if not uri.startswith("models:/"):
        raise UserError(f"model URI {uri!r} must look like models:/NAME@champion or models:/NAME/VERSION")
    spec = uri[len("models:/"):]
    name, _, alias = spec.partition("@")
    version = None
    if not alias:
        name, _, version = spec.partition("/")
    if dst is None:
        raise TypeError("resolve_model_uri needs dst; use downloaded_model_dir for a temporary download")
    registry = Registry(name.removesuffix("-risk"))
    if version is None:
        from mlflow.exceptions import MlflowException

        try:
            version = str(registry.client.get_model_version_by_alias(registry.risk_name, alias).version)
        except MlflowException:
            raise UserError(f"{uri}: no model has alias {alias!r} in {registry.uri}; run `dvc repro` first") from None
    return registry.download_model_dir(version, dst)


@contextmanager
def downloaded_model_dir(uri: str) -> Iterator[Path]:
    """The model directory of ``uri`` (see :func:`resolve_model_uri`) in a temporary directory
    that is removed when the block ends: load the model inside the block."""
    with tempfile.TemporaryDirectory(prefix="csat-triage-model-") as tmp:
        yield resolve_model_uri(uri, tmp)


def _signature_frame(matrix: pd.DataFrame) -> pd.DataFrame:
    """MLflow schemas have no categorical type: describe categoricals as strings."""
    frame = matrix.copy()
    for column in frame.columns:
        if isinstance(frame[column].dtype, pd.CategoricalDtype):
            frame[column] = frame[column].astype(object).astype(str)
    return frame
