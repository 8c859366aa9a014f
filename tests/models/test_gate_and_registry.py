"""The champion gate: its rules by hand, and end to end with a temporary MLflow store."""

from __future__ import annotations

import json
import math

import pytest

from models.gate import HIGHER_IS_BETTER, auc_lower_bound, decide
from models.store import copy_model_dir
from pipeline.core.errors import UserError
from pipeline.tracking.registry import resolve_model_uri, tracking_uri
from tests.conftest import override

GATE = dict(tolerance=0.005, min_lift=0.005)


def test_auc_lower_bound_by_hand():
    # Hanley-McNeil with AUC 0.8, 50 bad, 100 good:
    # Q1 = 0.8 / 1.2, Q2 = 2 * 0.64 / 1.8,
    # var = (0.8 * 0.2 + 49 * (Q1 - 0.64) + 99 * (Q2 - 0.64)) / (50 * 100) = 8.50667 / 5000
    q1, q2 = 0.8 / 1.2, 2 * 0.64 / 1.8
    variance = (0.16 + 49 * (q1 - 0.64) + 99 * (q2 - 0.64)) / 5000
    assert variance == pytest.approx(0.00170133, abs=1e-8)
    assert auc_lower_bound(0.8, 50, 100) == pytest.approx(0.8 - 1.96 * math.sqrt(variance))
    assert auc_lower_bound(0.8, 50, 100) == pytest.approx(0.71916, abs=1e-5)


def test_auc_lower_bound_shrinks_with_fewer_tickets_and_needs_both_classes():
    assert auc_lower_bound(0.7, 10, 20) < auc_lower_bound(0.7, 100, 200) < 0.7
    assert auc_lower_bound(0.5, 1000, 1000) < 0.5
    assert math.isnan(auc_lower_bound(0.8, 0, 100))
    assert math.isnan(auc_lower_bound(0.8, 100, 0))
    assert math.isnan(auc_lower_bound(float("nan"), 10, 10))


def test_no_credible_skill_is_refused_first():
    decision = decide("roc_auc", 0.56, 0.49, {"longest_wait": 0.5}, None, None, **GATE)
    assert not decision.promoted
    assert decision.reason == "no credible skill: ROC AUC 95% lower bound 0.490 <= 0.5"
    nan_bound = decide("roc_auc", 0.9, float("nan"), {}, None, None, **GATE)
    assert not nan_bound.promoted and nan_bound.reason.startswith("no credible skill")


def test_a_model_that_stopped_after_one_round_learned_nothing():
    # Negative control (random labels): one tree, test AUC 0.555 by chance, lower bound 0.506.
    decision = decide("roc_auc", 0.555, 0.506, {"longest_wait": 0.501}, None, None, **GATE, boosting_rounds=1)
    assert not decision.promoted and "learned nothing" in decision.reason
    assert decide("roc_auc", 0.555, 0.506, {"longest_wait": 0.501}, None, None, **GATE, boosting_rounds=2).promoted


def test_must_beat_the_best_baseline_by_the_lift():
    baselines = {"longest_wait": 0.60, "logistic_regression": 0.698}
    decision = decide("roc_auc", 0.70, 0.62, baselines, None, None, **GATE)
    assert not decision.promoted
    assert decision.reason.startswith("does not beat baseline logistic_regression by 0.005")
    assert (decision.best_baseline, decision.best_baseline_value) == ("logistic_regression", 0.698)
    # 0.01 above the best baseline is enough.
    assert decide("roc_auc", 0.708, 0.62, baselines, None, None, **GATE).promoted


def test_first_model_with_skill_becomes_champion():
    decision = decide("roc_auc", 0.75, 0.68, {"longest_wait": 0.6}, None, None, **GATE)
    assert decision.promoted and decision.reason == "no champion yet"


def test_slightly_worse_than_champion_within_tolerance_is_promoted():
    decision = decide("roc_auc", 0.750, 0.68, {"longest_wait": 0.6}, 0.753, "3", **GATE)
    assert decision.promoted
    assert decision.reason == "not worse than champion v3: roc_auc 0.7500 vs 0.7530"


def test_worse_than_champion_outside_tolerance_keeps_the_champion():
    decision = decide("roc_auc", 0.750, 0.68, {"longest_wait": 0.6}, 0.760, "3", **GATE)
    assert not decision.promoted
    assert decision.reason == "worse than champion v3: roc_auc 0.7500 vs 0.7600 (tolerance 0.005)"
    assert decision.champion_version == "3" and decision.champion_value == 0.760


def test_lower_is_better_metrics_flip_the_comparisons():
    assert HIGHER_IS_BETTER["brier"] is False
    # Brier 0.20 beats a 0.22 baseline; the champion's 0.19 is better by 0.01 > tolerance.
    worse = decide("brier", 0.20, 0.7, {"logistic_regression": 0.22, "other": 0.25}, 0.19, "2", **GATE)
    assert worse.best_baseline == "logistic_regression"
    assert not worse.promoted and worse.reason.startswith("worse than champion v2")
    better = decide("brier", 0.18, 0.7, {"logistic_regression": 0.22}, 0.19, "2", **GATE)
    assert better.promoted


def test_no_baselines_skips_the_baseline_rule():
    decision = decide("roc_auc", 0.6, 0.55, {}, None, None, **GATE)
    assert decision.promoted and decision.best_baseline == "none"


def test_decision_serialises_every_field():
    decision = decide("roc_auc", 0.75, 0.68, {"longest_wait": 0.6}, 0.74, "1", **GATE)
    data = json.loads(json.dumps(decision.as_dict()))
    assert data["promoted"] is True and data["champion_version"] == "1"
    assert set(data) == {"promoted", "reason", "metric", "new_value", "new_lower_bound", "best_baseline",
                         "best_baseline_value", "champion_version", "champion_value", "tolerance",
                         "min_lift_over_baselines"}


def test_tracking_uri_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///elsewhere.db")
    assert tracking_uri() == "sqlite:///elsewhere.db"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.setenv("DVC_ROOT", str(tmp_path / "repo"))
    assert tracking_uri() == f"sqlite:///{(tmp_path / 'repo').resolve() / 'mlflow.db'}"
    monkeypatch.delenv("DVC_ROOT")
    monkeypatch.chdir(tmp_path)
    assert tracking_uri() == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"


def test_copy_model_dir_replaces_the_old_directory(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "champion"
    src.mkdir()
    (src / "model.json").write_text('{"model_version": "new"}')
    dst.mkdir()
    (dst / "model.json").write_text('{"model_version": "old"}')
    (dst / "stale.txt").write_text("from the old champion")
    copy_model_dir(src, dst)
    assert sorted(p.name for p in dst.iterdir()) == ["model.json"]
    assert json.loads((dst / "model.json").read_text()) == {"model_version": "new"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["champion", "src"]  # no staging left behind


def test_model_uri_must_name_the_registry():
    with pytest.raises(UserError, match="models:/NAME@champion"):
        resolve_model_uri("data/models/champion")


@pytest.mark.slow
def test_champion_gate_keeps_the_champion_when_a_worse_model_arrives(demo, tmp_path, monkeypatch):
    from models.store import TriageModel
    from pipeline.stages.evaluate import evaluate
    from pipeline.stages.register import register
    from pipeline.stages.train import train
    from pipeline.tracking.registry import Registry

    monkeypatch.chdir(tmp_path)  # MLflow puts run artifacts under ./mlruns
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.delenv("DVC_ROOT", raising=False)
    params = demo.params
    champion_dir, messages = tmp_path / "champion", []

    # 1. A good model on a fresh registry becomes champion.
    good_metrics = evaluate(demo.model_dir, tmp_path / "good_metrics.json", params=params)
    first = register(demo.model_dir, tmp_path / "good_metrics.json", champion_dir, tmp_path / "decision1.json",
                     params=params, echo=messages.append)
    assert first.promoted and first.reason == "no champion yet"
    decision1 = json.loads((tmp_path / "decision1.json").read_text())
    assert decision1["champion_version"] == decision1["new_registered_version"] == "1"
    good_files = {p.name: p.read_bytes() for p in demo.model_dir.iterdir()}
    assert {p.name: p.read_bytes() for p in champion_dir.iterdir()} == good_files

    # 2. A crippled model (three stumps) on the same export is not promoted. (One round would be
    #    refused earlier: a model that stopped after one round learned nothing.)
    crippled = override(params, {"risk_model": {"max_rounds": 3, "num_leaves": 2},
                                 "urgency_model": {"max_rounds": 1}})
    worse_dir = tmp_path / "worse"
    train(demo.export_dir, worse_dir, params=crippled)
    worse_metrics = evaluate(worse_dir, tmp_path / "worse_metrics.json", params=crippled)
    assert worse_metrics["bad_csat"]["roc_auc"] < good_metrics["bad_csat"]["roc_auc"]
    second = register(worse_dir, tmp_path / "worse_metrics.json", champion_dir, tmp_path / "decision2.json",
                      params=params, echo=messages.append)
    assert not second.promoted

    decision2 = json.loads((tmp_path / "decision2.json").read_text())
    assert decision2["promoted"] is False
    assert decision2["new_registered_version"] == "2"
    assert decision2["champion_version"] == "1"
    assert decision2["new_model_version"] == TriageModel.load(worse_dir).version
    # The champion was measured on the new model's test rows: the same tickets as its own evaluation.
    assert decision2["champion_value"] == pytest.approx(good_metrics["bad_csat"]["roc_auc"], abs=1e-9)
    assert decision2["new_value"] == pytest.approx(worse_metrics["bad_csat"]["roc_auc"])
    # The reason is the rule that decided, as the gate's own numbers show.
    replay = decide(decision2["metric"], decision2["new_value"], decision2["new_lower_bound"],
                    {k: v["roc_auc"] for k, v in worse_metrics["bad_csat"]["baselines"].items()},
                    decision2["champion_value"], decision2["champion_version"],
                    decision2["tolerance"], decision2["min_lift_over_baselines"])
    assert decision2["reason"] == replay.reason
    assert decision2["reason"].startswith(("no credible skill", "does not beat baseline", "worse than champion v1"))
    assert "NOT promoted" in messages[-1] and decision2["reason"] in messages[-1]

    # The champion directory still holds the first model, byte for byte; so does the registry alias.
    assert {p.name: p.read_bytes() for p in champion_dir.iterdir()} == good_files
    registry = Registry("csat-triage")
    assert registry.champion_version() == "1"
    run_id = registry.client.get_model_version(registry.risk_name, "2").run_id
    assert registry.client.get_run(run_id).data.tags["champion_gate"] == "kept champion"
    resolved = resolve_model_uri("models:/csat-triage-risk@champion", tmp_path / "download")
    assert TriageModel.load(resolved).version == TriageModel.load(demo.model_dir).version
