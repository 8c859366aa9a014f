"""Negative control: on the Kaggle ticket file, whose ratings are random, the pipeline must
show no skill and the champion gate must refuse the model.

Runs the stage entry functions (not DVC) in a temporary directory with a temporary MLflow
store, using the parameters of ``realdata/negative_control/params.yaml``.
"""

from __future__ import annotations

import math

import pytest

from pipeline.core.params import load_params
from pipeline.sources.kaggle_cst import import_kaggle_cst
from pipeline.stages.evaluate import evaluate
from pipeline.stages.featurize import featurize
from pipeline.stages.register import register
from pipeline.stages.train import train
from pipeline.stages.validate import validate_export
from tests.conftest import REPO_ROOT, shared_dataset

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]

PARAMS_FILE = REPO_ROOT / "realdata" / "negative_control" / "params.yaml"
# How many null standard errors the AUC may stray from 0.5 (two-sided ~1.2 % false alarm).
NULL_BAND_STANDARD_ERRORS = 2.5


def null_auc_standard_error(n_bad: int, n_good: int) -> float:
    """Standard error of ROC AUC when scores carry no information (Mann-Whitney U under H0).

    Var(AUC) = (n_bad + n_good + 1) / (12 n_bad n_good); Hanley-McNeil's formula at AUC = 0.5
    gives the same value up to O(1/n).
    """
    return math.sqrt((n_bad + n_good + 1) / (12.0 * n_bad * n_good))


def test_null_standard_error_by_hand():
    # 10 bad, 10 good: sqrt(21 / 1200) = 0.1323
    assert null_auc_standard_error(10, 10) == pytest.approx(0.13229, abs=1e-5)


def test_no_skill_and_the_gate_refuses(tmp_path, monkeypatch):
    source = shared_dataset("negative-control-kaggle-cst/customer_support_tickets.csv.gz")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.delenv("DVC_ROOT", raising=False)
    monkeypatch.chdir(tmp_path)  # MLflow writes run artifacts under ./mlruns
    params = load_params(PARAMS_FILE)

    summary = import_kaggle_cst(source, tmp_path / "raw", "parquet")
    assert summary.tickets == 8469
    validated = validate_export(tmp_path / "raw", tmp_path / "interim", params.ingest)
    assert validated.rejected_rows == 0
    snapshots = tmp_path / "snapshots.parquet"
    featurize(tmp_path / "interim", snapshots, snapshots=True, params=params)
    train(tmp_path / "interim", tmp_path / "candidate", snapshots_file=snapshots, params=params)
    metrics = evaluate(tmp_path / "candidate", tmp_path / "metrics.json", params=params)

    test_period = metrics["test_period"]
    n_bad = test_period["bad_tickets"]
    n_good = test_period["tickets"] - n_bad
    band = NULL_BAND_STANDARD_ERRORS * null_auc_standard_error(n_bad, n_good)
    # ~560 test tickets: band about +-0.065; a band this wide would hide nothing, so check it.
    assert band < 0.08
    auc = metrics["bad_csat"]["roc_auc"]
    assert abs(auc - 0.5) <= band, f"ROC AUC {auc:.3f} outside 0.5 +- {band:.3f}: something leaks"

    decision = register(
        tmp_path / "candidate", tmp_path / "metrics.json", tmp_path / "champion", tmp_path / "champion.json",
        name="csat-triage-negative-control", params=params, echo=lambda line: None,
    )
    assert decision.promoted is False
    assert "no credible skill" in decision.reason or "baseline" in decision.reason
    assert (tmp_path / "champion" / "NO_CHAMPION.json").is_file()
