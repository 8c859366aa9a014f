"""Training: the eligibility gate, the target definition, and what the trained model directory records."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.build import FEATURE_NAMES
from models.store import TriageModel
from models.target import Target
from models.text_model import TEXT_SCORE_COLUMNS
from models.training import EligibilityError, check_eligibility, fit_risk
from pipeline.core.errors import ExportError
from pipeline.core.params import RiskModelParams
from pipeline.stages.train import train
from tests.conftest import override


def test_eligibility_counts_tickets_not_snapshots():
    # Three tickets, five snapshot rows: T1 bad (3 rows), T2 good, T3 good.
    y = np.array([1.0, 1.0, 1.0, 0.0, 0.0])
    ids = np.array(["T1", "T1", "T1", "T2", "T3"])
    check_eligibility(y, ids, min_labelled=3, min_bad=1, target="satisfaction=bad")  # passes
    with pytest.raises(EligibilityError) as caught:
        check_eligibility(y, ids, min_labelled=4, min_bad=1, target="satisfaction=bad")
    message = str(caught.value)
    assert "3 labelled tickets (1 bad, 2 good)" in message
    assert "need at least 4 labelled and 1 bad" in message
    assert "train.min_labelled_tickets" in message and "--target" in message
    assert "\n" not in message


def test_eligibility_needs_enough_bad_and_at_least_one_good():
    ids = np.array(["T1", "T2", "T3"])
    with pytest.raises(EligibilityError, match=r"\(1 bad, 2 good\)"):
        check_eligibility(np.array([1.0, 0.0, 0.0]), ids, min_labelled=1, min_bad=2, target="t")
    with pytest.raises(EligibilityError, match=r"\(3 bad, 0 good\)"):
        check_eligibility(np.array([1.0, 1.0, 1.0]), ids, min_labelled=1, min_bad=1, target="t")


def edited_export(demo, tmp_path, edit) -> Path:
    """A copy of the demo export with ``edit(tickets)`` applied to its tickets table (all text)."""
    export = tmp_path / "export"
    shutil.copytree(demo.export_dir, export)
    tickets = pd.read_csv(export / "tickets.csv", dtype=str, keep_default_na=False)
    edit(tickets)
    tickets.to_csv(export / "tickets.csv", index=False)
    return export


def test_training_refuses_an_export_where_every_rating_is_good(demo, tmp_path):
    def all_good(tickets):
        tickets.loc[tickets["satisfaction"] == "bad", "satisfaction"] = "good"

    export = edited_export(demo, tmp_path, all_good)
    with pytest.raises(EligibilityError) as caught:
        train(export, tmp_path / "model", params=demo.params)
    message = str(caught.value)
    assert re.search(r"training period has \d+ labelled tickets \(0 bad, \d+ good\)", message)
    assert "\n" not in message
    assert not (tmp_path / "model").exists()  # nothing written


def test_training_refuses_twenty_labelled_tickets(demo, tmp_path):
    def keep_twenty_labels(tickets):
        labelled = tickets.index[tickets["satisfaction"].isin(["good", "bad"])]
        tickets.loc[labelled[20:], "satisfaction"] = "offered"

    export = edited_export(demo, tmp_path, keep_twenty_labels)
    with pytest.raises(EligibilityError) as caught:
        train(export, tmp_path / "model", params=demo.params)
    labelled = int(re.search(r"has (\d+) labelled tickets", str(caught.value)).group(1))
    # 55 % of 20 labelled tickets are in the training period.
    assert labelled == 11
    assert "need at least 200 labelled and 30 bad" in str(caught.value)


def test_calibration_period_with_one_class_is_refused():
    rng = np.random.default_rng(0)
    n = 800
    x = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    y = (rng.random(n) < 1 / (1 + np.exp(-2 * x["a"].to_numpy()))).astype("float64")
    period = np.array(["train"] * 500 + ["valid"] * 150 + ["calibrate"] * 100 + ["test"] * 50, dtype=object)
    y[period == "calibrate"] = 0.0
    with pytest.raises(EligibilityError, match="calibration period has only one class"):
        fit_risk(x, y, np.ones(n), period, np.arange(n).astype(str),
                 RiskModelParams(max_rounds=20, early_stopping_rounds=5, min_data_in_leaf=20))


def test_target_parse():
    assert Target.parse(None) == Target()
    assert Target.parse("satisfaction") == Target()
    custom = Target.parse("sla_missed=TRUE, yes")
    assert custom == Target(column="sla_missed", bad=("true", "yes"), good=())
    assert custom.name == "sla_missed=true,yes"
    assert Target().name == "satisfaction=bad"
    with pytest.raises(ExportError, match="use COLUMN=BAD_VALUE"):
        Target.parse("sla_missed=")


def test_target_labels():
    tickets = pd.DataFrame({
        "satisfaction": ["bad", "good", "offered", "", None, " Bad "],
        "sla_missed": ["true", "false", "", "TRUE", None, "no"],
    })
    assert Target().labels(tickets).tolist() == pytest.approx([1.0, 0.0, np.nan, np.nan, np.nan, 1.0], nan_ok=True)
    # No good values given: every other non-empty value is good.
    assert Target.parse("sla_missed=true").labels(tickets).tolist() == pytest.approx(
        [1.0, 0.0, np.nan, 1.0, np.nan, 0.0], nan_ok=True)
    with pytest.raises(ExportError, match="'plan' is not in the tickets table"):
        Target.parse("plan=gold").labels(tickets)


def test_model_records_features_periods_and_counts(demo):
    meta = TriageModel.load(demo.model_dir).meta
    # Every point-in-time feature, the simulated desk's attributes, then the learned text scores.
    assert meta["risk_features"][: len(FEATURE_NAMES)] == list(FEATURE_NAMES)
    rest = meta["risk_features"][len(FEATURE_NAMES):]
    attributes = [f for f in rest if f.startswith("attr_")]
    assert attributes == sorted(meta["attributes"]) and "attr_product_area" in attributes
    assert set(rest) - set(attributes) <= set(TEXT_SCORE_COLUMNS)
    # The urgency model never sees the priority field it predicts.
    assert "current_priority" not in meta["urgency_features"]
    assert meta["urgency_features"] == [f for f in meta["risk_features"] if f != "current_priority"]
    starts = [pd.Timestamp(meta["period_starts"][p]) for p in ("valid", "calibrate", "test")]
    assert starts == sorted(starts)
    labelled = meta["counts"]["labelled_tickets"]
    bad = meta["counts"]["bad_tickets"]
    assert all(bad[p] < labelled[p] for p in labelled)
    assert labelled["train"] >= 200 and bad["train"] >= 30
    assert meta["target"] == "satisfaction=bad"
    assert meta["calibration"]["method"] in ("platt", "isotonic")


@pytest.mark.slow  # a full (if short) training
def test_exclude_features_removes_them_from_both_models(demo, tmp_path):
    params = override(demo.params, {"train": {"exclude_features": ["channel", "reopens"]},
                                    "risk_model": {"max_rounds": 5}, "urgency_model": {"max_rounds": 5}})
    # Cheap models: this test is about the feature lists only.
    result = train(demo.export_dir, tmp_path / "model", params=params)
    for key in ("risk_features", "urgency_features"):
        assert "channel" not in result.model.meta[key] and "reopens" not in result.model.meta[key]
    assert "channel" not in result.model.meta["categorical_levels"]
    assert result.model.risk_booster.feature_name() == result.model.meta["risk_features"]
