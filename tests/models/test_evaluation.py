"""The evaluation every report and the gate share: baselines on the same rows as the model."""

from __future__ import annotations

import pytest
from sklearn.metrics import roc_auc_score

from models.evaluation import evaluate_model, held_out_rows
from models.store import TriageModel
from pipeline.sources.training_export import load_evaluation_data


@pytest.fixture(scope="module")
def evaluated(demo):
    model = TriageModel.load(demo.model_dir)
    data, events = load_evaluation_data(model, None, None, demo.params)
    metrics, plots = evaluate_model(model, data, events)
    return model, data, metrics, plots


def test_oldest_first_and_longest_wait_are_scored_on_the_test_rows(evaluated):
    _, data, metrics, _ = evaluated
    test = held_out_rows(data)
    baselines = metrics["bad_csat"]["baselines"]
    assert {"oldest_first", "longest_wait", "wait_reopen_transfer_rule", "logistic_regression"} <= set(baselines)
    y, w = test["label"].to_numpy(), test["weight"].to_numpy()
    assert baselines["oldest_first"]["roc_auc"] == pytest.approx(roc_auc_score(y, test["age_minutes"], sample_weight=w))
    assert baselines["longest_wait"]["roc_auc"] == pytest.approx(
        roc_auc_score(y, test["current_wait_minutes"], sample_weight=w))
    assert metrics["test_period"]["rows"] == len(test)


def test_plot_tables_describe_the_same_test_rows(evaluated):
    model, _, metrics, plots = evaluated
    assert set(plots) >= {"roc.csv", "precision_recall.csv", "calibration.csv", "feature_importance.csv"}
    assert plots["calibration.csv"]["tickets"].sum() == pytest.approx(metrics["test_period"]["tickets"], abs=1)
    assert set(plots["feature_importance.csv"]["feature"]) == set(model.meta["risk_features"])
