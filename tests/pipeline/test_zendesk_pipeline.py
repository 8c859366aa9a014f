"""A Zendesk-shaped export goes through validate -> featurize -> score like its CSV equivalent."""

from __future__ import annotations

import pandas as pd
import pytest

from features.build import CATEGORICAL_FEATURES, FEATURE_NAMES, build_features
from pipeline.core.io import write_export
from pipeline.sources.ingest import load_export
from pipeline.sources.simulator import simulate
from pipeline.sources.zendesk_read import import_zendesk
from pipeline.sources.zendesk_write import write_zendesk_export

# Zendesk names groups and agents by numeric id; everything else must match exactly.
ID_MAPPED = {"current_group"}


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    root = tmp_path_factory.mktemp("zendesk_pipeline")
    simulation = simulate(1500, seed=11, days=40)
    write_export(root / "csv", simulation.tickets, simulation.events)
    write_zendesk_export(root / "zendesk", simulation.tickets, simulation.events)
    import_zendesk(root / "zendesk", root / "converted")
    return root


def test_zendesk_dump_reads_like_its_converted_csv(exports):
    direct = load_export(exports / "zendesk")
    converted = load_export(exports / "converted")
    assert direct.rejected_rows == converted.rejected_rows == 0
    pd.testing.assert_frame_equal(direct.tickets, converted.tickets, check_dtype=False)
    pd.testing.assert_frame_equal(direct.events, converted.events, check_dtype=False)


def test_features_from_zendesk_equal_the_simulators_csv(exports):
    from_csv = load_export(exports / "csv")
    from_zendesk = load_export(exports / "zendesk")
    as_of = pd.Timestamp("2026-02-10T12:00:00Z")
    a = build_features(from_csv.tickets, from_csv.events, as_of).set_index("ticket_id").sort_index()
    b = build_features(from_zendesk.tickets, from_zendesk.events, as_of).set_index("ticket_id").sort_index()
    assert list(a.index) == list(b.index) and len(a) > 500
    numeric = [f for f in FEATURE_NAMES if f not in CATEGORICAL_FEATURES]
    pd.testing.assert_frame_equal(a[numeric], b[numeric], check_dtype=False)
    for name in set(CATEGORICAL_FEATURES) - ID_MAPPED:
        assert a[name].astype(str).tolist() == b[name].astype(str).tolist(), name
    # Group names became ids, one for one.
    pairs = pd.DataFrame({"name": a["current_group"].astype(str), "id": b["current_group"].astype(str)})
    assert pairs.drop_duplicates().groupby("name")["id"].nunique().max() == 1


@pytest.mark.slow
def test_scoring_a_zendesk_dump_equals_scoring_its_csv(exports, tmp_path):
    from pipeline.core.params import load_params
    from pipeline.stages.score import score
    from pipeline.stages.train import train
    from tests.conftest import REPO_ROOT, override

    params = override(load_params(REPO_ROOT / "params.yaml"),
                      {"train": {"min_labelled_tickets": 50, "min_bad_tickets": 10}})
    train(exports / "converted", tmp_path / "model", params=params)
    direct = score(exports / "zendesk", tmp_path / "direct.csv", model_dir=tmp_path / "model", db_url="",
                   params=params, echo=lambda _: None)
    converted = score(exports / "converted", tmp_path / "converted.csv", model_dir=tmp_path / "model", db_url="",
                      params=params, echo=lambda _: None)
    assert len(direct.scored) > 0
    pd.testing.assert_frame_equal(direct.scored, converted.scored)
    assert (tmp_path / "direct.csv").read_bytes() == (tmp_path / "converted.csv").read_bytes()
