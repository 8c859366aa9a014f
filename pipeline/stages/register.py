"""Stage `register`: log the run to MLflow, register the models, apply the champion gate.

Writes the current champion's model directory to ``champion_dir`` (the model the
nightly scoring uses) and the gate's decision to a metrics file.

One champion: the directory and MLflow's ``champion`` alias are set by this command
together, every time it runs, and the directory always holds the model the alias
points to (a refused model leaves the alias and copies the alias's model in). DVC
declares the directory ``cache: false, persist: true``: it is never restored from
DVC's cache or run cache, so it cannot come back without this command re-running
and the alias following it.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from models.evaluation import held_out_rows, risk_section, risk_test_metrics
from models.gate import GateDecision, auc_lower_bound, decide, flatten
from models.store import (
    NO_CHAMPION_FILE,
    ModelMismatchError,
    TriageModel,
    copy_model_dir,
)
from pipeline.core.io import write_json
from pipeline.core.params import Params
from pipeline.sources.training_export import load_evaluation_data
from pipeline.tracking.registry import Registry


def register(
    model_dir: str | Path,
    metrics_file: str | Path,
    champion_dir: str | Path,
    decision_file: str | Path,
    params: Params,
    name: str = "csat-triage",
    echo: Callable[[str], None] = print,
) -> GateDecision:
    """Log + register ``model_dir`` and decide whether it becomes the champion."""
    gate = params.champion
    model_dir, champion_dir = Path(model_dir), Path(champion_dir)
    model = TriageModel.load(model_dir)
    metrics = json.loads(Path(metrics_file).read_text())
    section = metrics[risk_section(model)]
    tickets, bad = metrics["test_period"]["tickets"], metrics["test_period"]["bad_tickets"]
    lower = auc_lower_bound(section["roc_auc"], bad, tickets - bad)
    baseline_values = {k: v[gate.metric] for k, v in section["baselines"].items() if gate.metric in v}

    # The champion is judged on this model's test rows: the same tickets, the same features.
    data, _ = load_evaluation_data(model, None, None, params)
    test = held_out_rows(data)
    registry = Registry(name)
    champion_version = registry.champion_version()
    champion_value = None
    with tempfile.TemporaryDirectory(prefix="csat-triage-champion-") as scratch:
        champion_path = None
        if champion_version is not None:
            champion_path = registry.download_model_dir(champion_version, scratch)
            try:
                champion_value = risk_test_metrics(TriageModel.load(champion_path), test)[gate.metric]
            except ModelMismatchError:
                echo(f"champion v{champion_version} cannot read this version's features; comparing with baselines only")
        decision = decide(gate.metric, float(section[gate.metric]), lower, baseline_values,
                          champion_value, champion_version, gate.tolerance, gate.min_lift_over_baselines,
                          model.meta.get("risk_best_iteration"))

        risk_version, urgency_version, run_id = registry.log_and_register(
            model, model_dir, _scalar_metrics(metrics), test.head(50)
        )
        registry.log_decision(run_id, decision)
        if decision.promoted:
            registry.promote(risk_version, urgency_version)
            copy_model_dir(model_dir, champion_dir)
        elif champion_path is not None:
            copy_model_dir(champion_path, champion_dir)
        else:
            champion_dir.mkdir(parents=True, exist_ok=True)
            for stale in champion_dir.iterdir():
                stale.unlink()
            write_json({"reason": decision.reason, "model_version": model.version},
                       champion_dir / NO_CHAMPION_FILE)

    outcome = {**decision.as_dict(), "new_registered_version": risk_version, "new_model_version": model.version,
               "champion_version": risk_version if decision.promoted else champion_version}
    write_json(outcome, decision_file)
    verdict = "PROMOTED to champion" if decision.promoted else "NOT promoted"
    echo(f"champion gate: model {model.version} (registered v{risk_version}) {verdict}: {decision.reason}")
    return decision


def _scalar_metrics(metrics: dict) -> dict[str, float]:
    """The finite numbers of a metrics tree, with dotted names (MLflow metrics are scalars)."""
    return {
        name: float(value) for name, value in flatten(metrics).items()
        if isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)
    }
