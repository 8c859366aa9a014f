"""The Dask engine's queue equals the one-machine queue; a run without --engine never imports Dask."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from pipeline.distributed.partition import read_export
from pipeline.distributed.score import score_dask
from pipeline.stages.score import load_model, score
from pipeline.stages.train import train


@pytest.fixture(scope="module")
def model_dir(training_export, tmp_path_factory):
    """A model with every part (risk, urgency, text scores), trained on one machine with few rounds."""
    from pipeline.core.params import Params

    params = Params()
    params = params.model_copy(update={
        "risk_model": params.risk_model.model_copy(update={"max_rounds": 60, "early_stopping_rounds": 10}),
        "urgency_model": params.urgency_model.model_copy(update={"max_rounds": 30, "early_stopping_rounds": 10}),
        # The held-out model alone (no refit and its out-of-fold fits): scoring reads it the same way.
        "train": params.train.model_copy(update={"refit_on_all_labels": False}),
    })
    out = tmp_path_factory.mktemp("dask_model") / "model"
    result = train(training_export, out, params=params)
    assert result.model.urgency_booster is not None and result.model.text_model is not None
    return out


def test_dask_scored_queue_equals_the_pandas_queue(client, training_export, engine_params, model_dir, tmp_path):
    as_of = pd.Timestamp("2026-02-20T06:00:00Z")  # mid-export: many tickets open
    expected = score(training_export, tmp_path / "queue.csv", model_dir, db_url="", as_of=as_of.isoformat(),
                     params=engine_params, echo=lambda line: None).scored
    export = read_export(client, str(training_export), engine_params.engine, as_of=as_of)
    got = score_dask(client, export, load_model(model_dir, None), engine_params, as_of)
    assert len(expected) > 100 and (expected["reasons"] != "").sum() > 20
    assert list(got.columns) == list(expected.columns)
    assert got["ticket_id"].tolist() == expected["ticket_id"].tolist()  # same ranks (rows sorted by rank)
    np.testing.assert_array_equal(got["rank"].to_numpy(), expected["rank"].to_numpy())
    np.testing.assert_allclose(got["p_bad"].to_numpy(), expected["p_bad"].to_numpy(), rtol=0, atol=1e-9)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)


def test_the_pandas_engine_never_imports_dask(validated_export, tmp_path):
    code = (
        "import sys\n"
        "from pipeline.core.params import Params\n"
        "from pipeline.stages.featurize import featurize\n"
        f"featurize({str(validated_export)!r}, {str(tmp_path / 'f.parquet')!r}, Params())\n"
        "import pipeline.cli\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
