"""lightgbm.dask grows a risk model as good as one machine's, saved and loaded without Dask."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from features.build import CATEGORICAL_FEATURES, FEATURE_NAMES
from models.dataset import FitSample, build_training_data
from models.store import categorical_levels_of, prepare_matrix
from models.target import Target
from models.training import LOCAL, fit_risk
from pipeline.core.params import Params
from pipeline.distributed.train import DaskFitter, early_stopping_round
from pipeline.sources.simulator import simulate_export
from pipeline.stages.featurize import featurize
from pipeline.stages.validate import validate_export
from tests.conftest import override


@pytest.fixture(scope="module")
def risk_rows(tmp_path_factory):
    """The risk model's training rows (features, label, weight, period) of 12000 simulated tickets.

    Each worker finds the bins of some features from the rows it holds; on 5000 tickets
    (about 1,300 training rows per worker) that alone moved the test AUC by 0.012, on 12000
    by 0.002: the comparison needs rows enough for bins to be a property of the data.
    """
    params = Params()
    root = tmp_path_factory.mktemp("dask_train")
    simulate_export(root / "raw", 12_000, seed=5, days=60)
    validate_export(root / "raw", root / "interim", params.ingest)
    snapshots = featurize(root / "interim", root / "snapshots.parquet", params, snapshots=True)
    tickets = pd.read_parquet(root / "interim" / "tickets.parquet")
    events = pd.read_parquet(root / "interim" / "events.parquet")
    risk = build_training_data(tickets, events, Target.from_params(params.target), params, snapshots).risk
    levels = categorical_levels_of(risk, list(CATEGORICAL_FEATURES))
    return prepare_matrix(risk, list(FEATURE_NAMES), levels), risk


def test_dask_trained_risk_model_scores_as_well_as_the_local_one(client, risk_rows, tmp_path):
    # Fewer rounds than the defaults keep the test short; both fits get the same.
    params = Params()
    params = params.model_copy(update={"risk_model": params.risk_model.model_copy(
        update={"max_rounds": 150, "early_stopping_rounds": 20})})
    matrix, risk = risk_rows
    columns = (risk["label"].to_numpy(), risk["weight"].to_numpy(), risk["period"].to_numpy(),
               risk["ticket_id"].to_numpy())
    local = fit_risk(matrix, *columns, params.risk_model, LOCAL)
    remote = fit_risk(matrix, *columns, params.risk_model, DaskFitter(client))
    test = (risk["period"] == "test").to_numpy()
    y = risk.loc[test, "label"].to_numpy()
    assert y.sum() >= 300 and (1 - y).sum() >= 300
    auc_local = roc_auc_score(y, local.booster.predict(matrix[test]))
    auc_remote = roc_auc_score(y, remote.booster.predict(matrix[test]))
    assert auc_remote > 0.7  # it learned something, so agreeing is not trivial
    assert abs(auc_remote - auc_local) <= 0.01, (auc_local, auc_remote)

    # A plain lightgbm.Booster: saved and loaded without Dask, it predicts the same.
    path = tmp_path / "risk.txt"
    remote.booster.save_model(path)
    import lightgbm as lgb
    loaded = lgb.Booster(model_file=str(path))
    np.testing.assert_allclose(loaded.predict(matrix[test]), remote.booster.predict(matrix[test]), rtol=0, atol=1e-12)


def test_early_stopping_round_matches_lightgbm_early_stopping(risk_rows):
    """The round the Dask fitter keeps is the round lgb.early_stopping keeps on the same trees."""
    import lightgbm as lgb

    matrix, risk = risk_rows
    y, weight, period = risk["label"].to_numpy(), risk["weight"].to_numpy(), risk["period"].to_numpy()
    train, valid = period == "train", period == "valid"
    lgb_params = {"objective": "binary", "metric": "binary_logloss", "verbosity": -1, "deterministic": True,
                  "force_row_wise": True, "learning_rate": 0.3, "num_leaves": 63, "min_data_in_leaf": 2}
    train_set = lgb.Dataset(matrix[train], y[train], weight=weight[train], free_raw_data=False)
    valid_set = lgb.Dataset(matrix[valid], y[valid], weight=weight[valid], reference=train_set)
    stopped = lgb.train(lgb_params, train_set, 300, valid_sets=[valid_set],
                        callbacks=[lgb.early_stopping(5, verbose=False)])
    grown = lgb.train(lgb_params, lgb.Dataset(matrix[train], y[train], weight=weight[train]), 300)
    assert 1 <= stopped.best_iteration < 300  # it really stopped early
    assert early_stopping_round(grown, matrix[valid], y[valid], weight[valid], 5) == stopped.best_iteration


def _sorted(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    from tests.pipeline.distributed.conftest import comparable

    return comparable(frame).sort_values(keys, kind="stable").reset_index(drop=True)


@pytest.mark.parametrize("snapshots_from", ["workers", "dask_directory", "workers_sampled"])
def test_training_rows_made_on_the_workers_equal_the_local_ones(client, validated_export, engine_params,
                                                                snapshots_from, tmp_path):
    """Risk rows (labelled snapshots with label, period, weight) and urgency rows (opening rows with the
    final priority) are the one-machine rows, whether the workers make the snapshots or read a directory,
    and each piece keeps the same tickets of train.max_tickets_per_model's sample as the whole export."""
    from pipeline.distributed.featurize import featurize_dask
    from pipeline.distributed.partition import read_export
    from pipeline.distributed.train import training_rows
    from pipeline.sources.ingest import load_export

    params, target = engine_params, Target.from_params(engine_params.target)
    export = load_export(validated_export)
    sample = None
    if snapshots_from == "workers_sampled":
        params = override(params, {"train": {"max_tickets_per_model": 100}})
        sample = FitSample.of(export.tickets, target, 100)
    local = build_training_data(export.tickets, export.events, target, params, sample=sample)
    assert set(local.sampled) == ({"risk_model", "urgency_model"} if sample else set())
    snapshots = None
    if snapshots_from == "dask_directory":
        snapshots = tmp_path / "snapshots.parquet"
        featurize_dask(client, read_export(client, str(validated_export), params.engine), params, snapshots,
                       snapshots=True)
    tickets, remote, fingerprint = training_rows(client, str(validated_export), snapshots, target, params)
    assert remote.sampled == local.sampled

    assert len(tickets) == len(export.tickets) and fingerprint.startswith("dask:")
    assert remote.boundaries == local.boundaries
    assert len(local.risk) > (400 if sample else 500) and local.risk["label"].sum() > 20  # both classes to compare
    pd.testing.assert_frame_equal(_sorted(remote.risk, ["ticket_id", "as_of"]),
                                  _sorted(local.risk, ["ticket_id", "as_of"])[list(remote.risk.columns)],
                                  check_dtype=False)
    assert set(remote.urgency["urgency"]) >= {"low", "normal", "high"}
    pd.testing.assert_frame_equal(_sorted(remote.urgency, ["ticket_id"]),
                                  _sorted(local.urgency, ["ticket_id"])[list(remote.urgency.columns)],
                                  check_dtype=False)
    # The export's ticket order, then moment: a run does not depend on which piece finished first.
    order = pd.Series(range(len(tickets)), index=tickets["ticket_id"])
    positions = order.loc[remote.risk["ticket_id"]].to_numpy()
    assert (np.diff(positions) >= 0).all()


def test_train_on_cluster_writes_a_model_that_loads_and_scores_without_dask(client, training_export, tmp_path):
    from models.store import TriageModel
    from pipeline.stages.train import train_on_cluster

    params = Params()
    params = params.model_copy(update={"risk_model": params.risk_model.model_copy(update={"max_rounds": 60})})
    result = train_on_cluster(client, training_export, tmp_path / "model", params=params, echo=lambda _: None)
    meta = result.model.meta
    assert meta["training_data"]["fingerprint"].startswith("dask:")
    assert meta["urgency_model"] is not None and result.urgency_rows > 1000
    loaded = TriageModel.load(tmp_path / "model")
    assert loaded.meta["model_version"] == meta["model_version"]
    assert meta["production_model"]["risk_iterations"] <= 60


def test_the_dask_held_out_fit_stops_growing_once_early_stopping_would(client, risk_rows, monkeypatch):
    """Blocks of `patience` rounds, each continuing the last, until the valid loss has not improved for
    `patience` rounds: the rounds grown are about best + patience, not max_rounds."""
    matrix, risk = risk_rows
    y, weight, period = risk["label"].to_numpy(), risk["weight"].to_numpy(), risk["period"].to_numpy()
    train, valid = period == "train", period == "valid"
    lgb_params = {"objective": "binary", "metric": "binary_logloss", "verbosity": -1, "deterministic": True,
                  "force_row_wise": True, "learning_rate": 0.1, "num_leaves": 31}
    fitter = DaskFitter(client)
    blocks = []
    grow = fitter._grow

    def recorded(parts, params, rounds, init_model=None):
        blocks.append((rounds, 0 if init_model is None else init_model.current_iteration()))
        return grow(parts, params, rounds, init_model)

    monkeypatch.setattr(fitter, "_grow", recorded)
    patience, max_rounds = 10, 1000
    booster = fitter.train_early_stopped((matrix[train], y[train], weight[train]),
                                         (matrix[valid], y[valid], weight[valid]), lgb_params, max_rounds, patience)
    grown = sum(rounds for rounds, _ in blocks)
    assert len(blocks) >= 2 and [start for _, start in blocks] == [patience * i for i in range(len(blocks))]
    assert booster.best_iteration == booster.current_iteration() < grown < max_rounds
    assert patience <= grown - booster.best_iteration < 2 * patience
