"""The production refit: the model that scores has learned every period; every reported number stays held-out."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from models.calibration import fit_calibrator
from models.evaluation import evaluate_model, held_out_rows, risk_test_metrics
from models.metrics import probability_metrics
from models.store import (
    HELD_OUT_CALIBRATION_FILE,
    HELD_OUT_RISK_FILE,
    HELD_OUT_URGENCY_FILE,
    ModelIntegrityError,
    TriageModel,
)
from models.training import fit_risk, refit_risk
from pipeline.core.params import RiskModelParams
from pipeline.sources.training_export import load_evaluation_data
from pipeline.stages.train import train
from tests.conftest import override

PERIODS = np.array(["train"] * 550 + ["valid"] * 150 + ["calibrate"] * 100 + ["test"] * 200, dtype=object)
SMALL = RiskModelParams(learning_rate=0.1, max_rounds=60, early_stopping_rounds=10, min_data_in_leaf=20)


def test_a_pattern_only_in_the_newest_tickets_is_learned_by_production_not_by_held_out():
    rng = np.random.default_rng(3)
    n = len(PERIODS)
    a = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-1.5 * a))).astype("float64")
    # `new_form` only exists in the test period (the newest weeks), and there it always ends badly.
    new_form = np.where((PERIODS == "test") & (rng.random(n) < 0.5), 1.0, 0.0)
    y[new_form == 1] = 1.0
    x = pd.DataFrame({"a": a, "new_form": new_form})
    ids = np.arange(n).astype(str)
    held_out = fit_risk(x, y, np.ones(n), PERIODS, ids, SMALL)
    production = refit_risk(x, y, np.ones(n), PERIODS, ids, SMALL, held_out.best_iteration)

    pair = pd.DataFrame({"a": [0.0, 0.0], "new_form": [0.0, 1.0]})
    held_out_p = held_out.calibrator.predict(held_out.booster.predict(pair, raw_score=True))
    production_p = production.calibrator.predict(production.booster.predict(pair, raw_score=True))
    assert held_out_p[1] == held_out_p[0]  # never saw the pattern
    assert production_p[1] - production_p[0] > 0.2
    # The count of rounds is the one chosen out of time, not early-stopped again on seen rows.
    assert production.best_iteration == held_out.best_iteration == production.booster.current_iteration()


def test_the_refit_calibrator_is_fitted_out_of_fold():
    """On pure-noise labels an overgrown booster's own training scores look confident; scores
    of rows it never saw do not. Fitted out of fold, the calibrator maps every score near the base rate."""
    rng = np.random.default_rng(11)
    n = len(PERIODS)
    x = pd.DataFrame(rng.normal(size=(n, 5)), columns=[f"f{i}" for i in range(5)])
    y = (rng.random(n) < 0.3).astype("float64")
    ids = np.arange(n).astype(str)
    overgrown = RiskModelParams(learning_rate=0.3, num_leaves=31, min_data_in_leaf=3, lambda_l2=0.0,
                                bagging_fraction=1.0, feature_fraction=1.0, max_rounds=200)
    production = refit_risk(x, y, np.ones(n), PERIODS, ids, overgrown, rounds=200)
    fresh = pd.DataFrame(rng.normal(size=(2000, 5)), columns=x.columns)
    p = production.calibrator.predict(production.booster.predict(fresh, raw_score=True))
    assert abs(p.mean() - y.mean()) < 0.06 and p.std() < 0.06
    # The contrast: calibrated on its own training rows, the same booster spreads fresh rows widely.
    in_sample = fit_calibrator(production.booster.predict(x, raw_score=True), y)
    assert in_sample.predict(production.booster.predict(fresh, raw_score=True)).std() > 2 * p.std()


def test_model_json_records_the_held_out_and_the_production_model(demo):
    model = TriageModel.load(demo.model_dir)
    meta = model.meta
    held_out, production = meta["held_out_model"], meta["production_model"]
    assert held_out["risk_model"] == HELD_OUT_RISK_FILE and production["risk_model"] == "risk_model.txt"
    assert held_out["calibration"] == HELD_OUT_CALIBRATION_FILE and production["calibration"] == "calibration.json"
    assert held_out["urgency_model"] == HELD_OUT_URGENCY_FILE and production["urgency_model"] == "urgency_model.txt"
    assert held_out["trained_on_periods"] == ["train"]
    assert production["trained_on_periods"] == ["train", "valid", "calibrate", "test"]
    counts = meta["counts"]["labelled_tickets"]
    assert held_out["labelled_tickets"] == counts["train"]
    assert production["labelled_tickets"] == sum(counts.values())
    assert production["risk_rows"] == meta["counts"]["risk_rows"] > held_out["risk_rows"]
    assert production["risk_iterations"] == held_out["risk_iterations"] == meta["risk_best_iteration"]
    assert model.risk_booster.current_iteration() == production["risk_iterations"]
    assert model.urgency_booster.current_iteration() == production["urgency_iterations"]
    # Every file of both models is checksummed.
    assert {HELD_OUT_RISK_FILE, HELD_OUT_CALIBRATION_FILE, HELD_OUT_URGENCY_FILE, "risk_model.txt",
            "calibration.json", "urgency_model.txt"} <= set(meta["checksums"])


def test_heldout_view_uses_the_held_out_files(demo):
    model = TriageModel.load(demo.model_dir)
    view = model.heldout()
    assert view.risk_booster.model_to_string() == (demo.model_dir / HELD_OUT_RISK_FILE).read_text()
    assert view.urgency_booster.model_to_string() == (demo.model_dir / HELD_OUT_URGENCY_FILE).read_text()
    assert view.calibrator.to_dict() == json.loads((demo.model_dir / HELD_OUT_CALIBRATION_FILE).read_text())
    assert model.risk_booster.model_to_string() != view.risk_booster.model_to_string()
    assert view.version == model.version and view.heldout() is view
    with pytest.raises(ValueError, match="held-out view"):
        view.save(demo.model_dir.parent / "never")


def test_the_gate_measures_the_held_out_model_on_the_test_rows(demo):
    model = TriageModel.load(demo.model_dir)
    data, events = load_evaluation_data(model, None, None, demo.params)
    test = held_out_rows(data)
    y, w = test["label"].to_numpy(), test["weight"].to_numpy()
    gate_numbers = risk_test_metrics(model, test)
    assert gate_numbers == probability_metrics(model.heldout().predict_risk(test), y, w)
    # The production model trained on these rows: its numbers here would flatter it.
    production = probability_metrics(model.predict_risk(test), y, w)
    assert production["roc_auc"] > gate_numbers["roc_auc"]
    metrics, _ = evaluate_model(model, data, events)
    assert metrics["bad_csat"]["roc_auc"] == gate_numbers["roc_auc"]


def test_a_model_directory_without_held_out_files_loads_as_its_own_held_out(demo, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(demo.model_dir, old)
    for name in (HELD_OUT_RISK_FILE, HELD_OUT_CALIBRATION_FILE, HELD_OUT_URGENCY_FILE):
        (old / name).unlink()
    meta = json.loads((old / "model.json").read_text())
    for key in ("held_out_model", "production_model", "checksums"):  # as written before the refit and checksums
        meta.pop(key)
    (old / "model.json").write_text(json.dumps(meta))
    model = TriageModel.load(old)
    assert model.held_out is None and model.heldout() is model
    assert model.risk_booster.model_to_string() == (demo.model_dir / "risk_model.txt").read_text()


def test_a_changed_held_out_file_is_refused(demo, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(demo.model_dir, copy)
    text = (copy / HELD_OUT_RISK_FILE).read_text()
    (copy / HELD_OUT_RISK_FILE).write_text(text[: len(text) // 2])
    with pytest.raises(ModelIntegrityError, match="risk_model.heldout.txt: checksum does not match"):
        TriageModel.load(copy)


@pytest.mark.slow  # a second full (short) training
def test_refit_off_gives_the_same_metrics_and_one_model(demo, tmp_path):
    refit_on = TriageModel.load(demo.model_dir)
    result = train(demo.export_dir, tmp_path / "model", params=override(
        demo.params, {"train": {"refit_on_all_labels": False}}))
    refit_off = TriageModel.load(tmp_path / "model")
    assert refit_off.held_out is None and refit_off.heldout() is refit_off
    assert not (tmp_path / "model" / HELD_OUT_RISK_FILE).exists()
    assert refit_off.meta["production_model"]["risk_model"] == refit_off.meta["held_out_model"]["risk_model"]
    # The held-out model is the same either way, so is every reported number.
    assert refit_off.risk_booster.model_to_string() == refit_on.heldout().risk_booster.model_to_string()
    assert result.model.version != refit_on.version
    numbers = []
    for model in (refit_on, refit_off):
        data, events = load_evaluation_data(model, None, None, demo.params)
        metrics, _ = evaluate_model(model, data, events)
        numbers.append({k: v for k, v in metrics.items() if k != "model_version"})
    assert numbers[0] == numbers[1]
