"""MLflow tracking, model registry and the champion gate.

Tracking works with no server: ``MLFLOW_TRACKING_URI`` if set, else
``sqlite:///<repo>/mlflow.db`` where <repo> is ``DVC_ROOT`` (set by DVC when it runs
a stage, also in a temporary experiment copy) or the current directory.

The gate: a new model takes the ``champion`` alias only if, on the *same* test rows,

1. its ROC AUC is credibly above chance (95 % Hanley-McNeil lower bound > 0.5),
2. it beats the best baseline by at least ``min_lift_over_baselines``, and
3. its gate metric is not worse than the current champion's by more than ``tolerance``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from models.store import TriageModel

CHAMPION_ALIAS = "champion"
HIGHER_IS_BETTER = {"roc_auc": True, "pr_auc": True, "recall_top10": True, "recall_top20": True,
                    "brier": False, "log_loss": False, "ece": False}


def tracking_uri() -> str:
    """The MLflow tracking URI to use (see module docstring); never logged with secrets."""
    configured = os.environ.get("MLFLOW_TRACKING_URI")
    if configured:
        return configured
    root = Path(os.environ.get("DVC_ROOT") or os.getcwd()).resolve()
    return f"sqlite:///{root / 'mlflow.db'}"


def auc_lower_bound(auc: float, n_bad: int, n_good: int, z: float = 1.96) -> float:
    """Lower end of the Hanley-McNeil (1982) confidence interval of a ROC AUC."""
    if n_bad == 0 or n_good == 0 or not np.isfinite(auc):
        return float("nan")
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    variance = (auc * (1 - auc) + (n_bad - 1) * (q1 - auc**2) + (n_good - 1) * (q2 - auc**2)) / (n_bad * n_good)
    return float(auc - z * np.sqrt(max(variance, 0.0)))


@dataclass(frozen=True)
class GateDecision:
    promoted: bool
    reason: str
    metric: str
    new_value: float
    new_lower_bound: float
    best_baseline: str
    best_baseline_value: float
    champion_version: str | None
    champion_value: float | None
    tolerance: float
    min_lift_over_baselines: float

    def as_dict(self) -> dict:
        return asdict(self)


def decide(
    metric: str, new_value: float, new_lower_bound: float, baselines: dict[str, float],
    champion_value: float | None, champion_version: str | None, tolerance: float, min_lift: float,
) -> GateDecision:
    """Apply the three gate rules; the reason names the rule that decided."""
    higher = HIGHER_IS_BETTER.get(metric, True)
    sign = 1.0 if higher else -1.0
    best_name, best_value = max(baselines.items(), key=lambda kv: sign * kv[1]) if baselines else ("none", float("nan"))
    common = dict(metric=metric, new_value=new_value, new_lower_bound=new_lower_bound, best_baseline=best_name,
                  best_baseline_value=best_value, champion_version=champion_version,
                  champion_value=champion_value, tolerance=tolerance, min_lift_over_baselines=min_lift)
    if not new_lower_bound > 0.5:
        return GateDecision(False, f"no credible skill: ROC AUC 95% lower bound {new_lower_bound:.3f} <= 0.5", **common)
    if baselines and not sign * (new_value - best_value) >= min_lift:
        return GateDecision(
            False, f"does not beat baseline {best_name} by {min_lift}: {metric} {new_value:.4f} vs {best_value:.4f}", **common
        )
    if champion_value is not None and sign * (new_value - champion_value) < -tolerance:
        return GateDecision(
            False, f"worse than champion v{champion_version}: {metric} {new_value:.4f} vs {champion_value:.4f} "
            f"(tolerance {tolerance})", **common,
        )
    if champion_value is None:
        return GateDecision(True, "no champion yet", **common)
    return GateDecision(
        True, f"not worse than champion v{champion_version}: {metric} {new_value:.4f} vs {champion_value:.4f}", **common
    )


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
        from mlflow.models import infer_signature

        import lightgbm

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
            return str(risk_info.registered_model_version), urgency_version, run.info.run_id

    def promote(self, risk_version: str, urgency_version: str | None) -> None:
        self.client.set_registered_model_alias(self.risk_name, CHAMPION_ALIAS, risk_version)
        if urgency_version is not None:
            self.client.set_registered_model_alias(self.urgency_name, CHAMPION_ALIAS, urgency_version)

    def log_decision(self, run_id: str, decision: GateDecision) -> None:
        self.client.set_tag(run_id, "champion_gate", "promoted" if decision.promoted else "kept champion")
        self.client.set_tag(run_id, "champion_gate_reason", decision.reason)


def resolve_model_uri(uri: str, dst: str | Path | None = None) -> Path:
    """``models:/<name>-risk@<alias>`` or ``models:/<name>-risk/<version>`` to a local model directory."""
    if not uri.startswith("models:/"):
        raise ValueError(f"model URI {uri!r} must look like models:/NAME@champion or models:/NAME/VERSION")
    spec = uri[len("models:/"):]
    name, _, alias = spec.partition("@")
    version = None
    if not alias:
        name, _, version = spec.partition("/")
    registry = Registry(name.removesuffix("-risk"))
    if version is None:
        from mlflow.exceptions import MlflowException

        try:
            version = str(registry.client.get_model_version_by_alias(registry.risk_name, alias).version)
        except MlflowException:
            raise ValueError(f"{uri}: no model has alias {alias!r} in {registry.uri}; run `dvc repro` first") from None
    target = Path(dst) if dst else Path(tempfile.mkdtemp(prefix="csat-triage-model-"))
    return registry.download_model_dir(version, target)


def _signature_frame(matrix: pd.DataFrame) -> pd.DataFrame:
    """MLflow schemas have no categorical type: describe categoricals as strings."""
    frame = matrix.copy()
    for column in frame.columns:
        if isinstance(frame[column].dtype, pd.CategoricalDtype):
            frame[column] = frame[column].astype(object).astype(str)
    return frame


def flatten(tree: dict, prefix: str = "") -> dict[str, object]:
    """Nested dicts to one level with dotted keys: {"a": {"b": 1}} -> {"a.b": 1}."""
    flat: dict[str, object] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


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
