"""One small local Dask cluster (2 workers on loopback) and one small validated export for the engine's tests."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from pipeline.core.params import Params
from pipeline.sources.simulator import simulate_export
from pipeline.stages.validate import validate_export

# LightGBM's OpenMP threads spin while idle by default: on 2 shared cores that made each fit here
# several times slower (FIELD-NOTES). Read when LightGBM's library loads, so only where it loads later.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture(scope="package")
def client():
    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, memory_limit="2GB", host="127.0.0.1",
                      dashboard_address="127.0.0.1:0", processes=True) as cluster, Client(cluster) as client:
        yield client


def _simulated_and_validated(tmp_path_factory, name: str, tickets: int, seed: int, days: int) -> Path:
    root = tmp_path_factory.mktemp(name)
    simulate_export(root / "raw", tickets, seed=seed, days=days)
    validate_export(root / "raw", root / "interim", Params().ingest)
    return root / "interim"


@pytest.fixture(scope="package")
def validated_export(tmp_path_factory) -> Path:
    """1500 simulated tickets over 30 days (organizations, field events, ratings), validated."""
    return _simulated_and_validated(tmp_path_factory, "dask_export", 1500, seed=3, days=30)


@pytest.fixture(scope="package")
def training_export(tmp_path_factory) -> Path:
    """5000 simulated tickets over 60 days: enough labelled tickets for a test-period AUC (about 250 bad)."""
    return _simulated_and_validated(tmp_path_factory, "dask_training_export", 5000, seed=5, days=60)


@pytest.fixture
def engine_params() -> Params:
    """Three pieces (more than workers, so pieces really are spread), and the ticket-row organization
    as a static attribute, so the organization history (a cross-ticket feature) has values."""
    params = Params()
    return params.model_copy(update={"engine": params.engine.model_copy(update={"partitions": 3}),
                                     "attributes": params.attributes.model_copy(update={"static": ("organization",)})})


def comparable(features: pd.DataFrame) -> pd.DataFrame:
    """Rows in (ticket_id, as_of) order, categoricals as their values (levels may be listed in another order)."""
    features = features.sort_values(["ticket_id", "as_of"]).reset_index(drop=True)
    for name in features.columns:
        if isinstance(features[name].dtype, pd.CategoricalDtype):
            features[name] = features[name].astype(object)
    return features
