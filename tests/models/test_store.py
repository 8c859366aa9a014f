"""The model directory: bit-identical reload, no pickle, deterministic version, feature checks."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from features.build import build_features
from features.calendar import BusinessHours
from models.store import (
    ModelMismatchError,
    TriageModel,
    categorical_levels_of,
    data_fingerprint,
    model_version,
    prepare_matrix,
)
from pipeline.core.errors import ExportError
from pipeline.sources.ingest import load_export
from pipeline.stages.train import train

PICKLE_PROTOCOL_2_PLUS = b"\x80"  # every pickle protocol >= 2 starts with this opcode


@pytest.fixture(scope="module")
def export(demo):
    return load_export(demo.export_dir)


@pytest.fixture(scope="module")
def features_now(demo, export):
    """400 tickets' features as of the export time: every open ticket, then the newest closed ones."""
    hours = BusinessHours.from_params(demo.params.business_hours)
    features = build_features(export.tickets, export.events, None, hours)
    is_open = features["status_now"].astype(str).isin(["new", "open", "pending", "hold"]).to_numpy()
    rows = np.concatenate([np.flatnonzero(is_open), np.flatnonzero(~is_open)[::-1]])[:400]
    return features.iloc[np.sort(rows)].reset_index(drop=True)


def test_reloaded_model_predicts_identically(demo, features_now, tmp_path):
    original = TriageModel.load(demo.model_dir)
    original.save(tmp_path / "copy")
    again = TriageModel.load(tmp_path / "copy")
    assert np.array_equal(again.predict_risk(features_now), original.predict_risk(features_now))
    assert np.array_equal(again.raw_risk(features_now), original.raw_risk(features_now))
    assert again.predict_urgency(features_now).equals(original.predict_urgency(features_now))
    assert again.risk_contributions(features_now).equals(original.risk_contributions(features_now))
    assert again.meta == original.meta
    # Saving the reloaded model writes the same bytes.
    for path in (tmp_path / "copy").iterdir():
        assert path.read_bytes() == (demo.model_dir / path.name).read_bytes(), path.name


@pytest.mark.slow  # a second full training (6-25 s depending on the machine's load)
def test_trained_in_memory_model_equals_its_files(demo, features_now, tmp_path):
    result = train(demo.export_dir, tmp_path / "model", params=demo.params)
    reloaded = TriageModel.load(tmp_path / "model")
    assert np.array_equal(result.model.predict_risk(features_now), reloaded.predict_risk(features_now))
    assert result.model.predict_urgency(features_now).equals(reloaded.predict_urgency(features_now))
    assert result.model.risk_contributions(features_now).equals(reloaded.risk_contributions(features_now))
    # Training again on the same data with the same parameters gives the same version.
    assert result.model.version == TriageModel.load(demo.model_dir).version
    assert (tmp_path / "model" / "risk_model.txt").read_bytes() == (demo.model_dir / "risk_model.txt").read_bytes()


def test_version_changes_with_every_part_of_the_model(demo):
    """The version is a content hash: each model part moves it; the metadata does not."""
    model = TriageModel.load(demo.model_dir)
    assert len(model.version) == 12 and all(c in "0123456789abcdef" for c in model.version)
    base = (model.risk_booster, model.urgency_booster, model.calibrator, model.text_model)
    versions = {model_version(*base)}
    versions.add(model_version(model.urgency_booster, model.urgency_booster, model.calibrator, model.text_model))
    versions.add(model_version(model.risk_booster, None, model.calibrator, model.text_model))
    shifted = dataclasses.replace(model.calibrator, slope=model.calibrator.slope + 0.5)
    versions.add(model_version(model.risk_booster, model.urgency_booster, shifted, model.text_model))
    text = model.text_model
    other_text = dataclasses.replace(text, risk_coef=text.risk_coef + 1)
    versions.add(model_version(model.risk_booster, model.urgency_booster, model.calibrator, other_text))
    assert len(versions) == 5


def test_model_directory_holds_no_pickle(demo):
    files = sorted(demo.model_dir.iterdir())
    assert {"model.json", "calibration.json", "risk_model.txt", "urgency_model.txt"} <= {f.name for f in files}
    for path in files:
        # Plain text/JSON, or NumPy arrays that load without pickle.
        assert path.suffix in (".txt", ".json", ".npy"), path.name
        assert not path.read_bytes().startswith(PICKLE_PROTOCOL_2_PLUS), path.name
        if path.suffix == ".json":
            json.loads(path.read_text())
        if path.suffix == ".npy":
            array = np.load(path, allow_pickle=False)
            assert array.dtype.kind == "f", path.name
    assert (demo.model_dir / "risk_model.txt").read_text().startswith("tree\n")


def test_loading_a_directory_without_model_json_is_one_line(tmp_path):
    with pytest.raises(ExportError) as caught:
        TriageModel.load(tmp_path)
    assert "not a model directory" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_model_needing_a_missing_feature_fails_clearly(demo, features_now, tmp_path):
    model_dir = tmp_path / "model"
    shutil.copytree(demo.model_dir, model_dir)
    meta = json.loads((model_dir / "model.json").read_text())
    meta["risk_features"] = meta["risk_features"] + ["no_such_feature"]
    (model_dir / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelMismatchError, match="no_such_feature"):
        TriageModel.load(model_dir).predict_risk(features_now)


def test_prepare_matrix_orders_columns_and_maps_unseen_levels_to_missing():
    features = pd.DataFrame({
        "channel": pd.Categorical(["email", "fax", "chat"]),
        "reopens": ["1", "x", "3"],
        "ignored": [1, 2, 3],
    })
    matrix = prepare_matrix(features, ["reopens", "channel"], {"channel": ["chat", "email"]})
    assert list(matrix.columns) == ["reopens", "channel"]
    assert list(matrix["channel"].cat.categories) == ["chat", "email"]
    assert matrix["channel"].astype(object).tolist()[0] == "email"
    assert pd.isna(matrix["channel"].iloc[1])  # "fax" was never seen in training
    assert matrix["reopens"].tolist()[0] == 1.0 and np.isnan(matrix["reopens"].iloc[1])
    with pytest.raises(ModelMismatchError, match="group_hops"):
        prepare_matrix(features, ["group_hops"], {})


def test_categorical_levels_are_sorted_text():
    frame = pd.DataFrame({"channel": ["web", "chat", None, "web"]})
    assert categorical_levels_of(frame, ["channel"]) == {"channel": ["chat", "web"]}


def test_data_fingerprint_changes_with_labels_only_where_it_should(export):
    tickets, events = export.tickets, export.events
    base = data_fingerprint(tickets, events)
    assert base == data_fingerprint(tickets.copy(), events.copy())
    relabelled = tickets.copy()
    relabelled.loc[relabelled.index[0], "satisfaction"] = "bad" if relabelled["satisfaction"].iloc[0] != "bad" else "good"
    assert data_fingerprint(relabelled, events) != base
    resubjected = tickets.copy()
    resubjected.loc[resubjected.index[0], "subject"] = "something else"  # not a training-relevant column
    assert data_fingerprint(resubjected, events) == base
