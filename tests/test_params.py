"""The typed parameters model: the one home of every default; unknown keys and missing files are errors."""

from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.core.errors import UserError
from pipeline.core.params import Params, load_params, parse_params
from tests.conftest import REPO_ROOT

PARAMS_FILES = ("params.yaml", "realdata/servicenow/params.yaml", "realdata/negative_control/params.yaml")


@pytest.mark.parametrize("relative", PARAMS_FILES)
def test_every_committed_params_file_is_valid(relative):
    assert isinstance(load_params(REPO_ROOT / relative), Params)


def test_root_params_yaml_states_every_default():
    """params.yaml spells out every value the code would default to, so nothing is hidden in code."""
    assert load_params(REPO_ROOT / "params.yaml") == Params()
    raw = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    defaults = Params().model_dump(mode="json")

    def keys(tree, prefix=""):
        for key, value in tree.items():
            if isinstance(value, dict) and key not in ("risk_bands",):
                yield from keys(value, f"{prefix}{key}.")
            else:
                yield f"{prefix}{key}"

    assert sorted(keys(raw)) == sorted(keys(defaults))


def test_misspelt_key_names_the_key_and_the_file(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("risk_model:\n  num_leafs: 7\n")
    with pytest.raises(UserError) as caught:
        load_params(path)
    message = str(caught.value)
    assert str(path) in message and "risk_model.num_leafs" in message and "unknown key" in message
    assert "\n" not in message


def test_misspelt_key_makes_train_exit_2_with_one_line(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("risk_model:\n  num_leafs: 7\n")
    result = CliRunner().invoke(app, ["train", str(tmp_path), "--out", str(tmp_path / "m"), "--params", str(path)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "risk_model.num_leafs: unknown key" in lines[0]
    assert not (tmp_path / "m").exists()


def test_missing_params_file_is_an_error_naming_the_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["featurize", str(tmp_path), "--out", str(tmp_path / "f.parquet")])
    assert result.exit_code == 2
    assert str(tmp_path / "params.yaml") in result.output and "not found" in result.output


@pytest.mark.parametrize("data, message", [
    ({"split": {"train": 0}}, "split.train: Input should be greater than 0"),
    ({"business_hours": {"timezone": "Mars/Olympus"}}, "business_hours.timezone: unknown time zone"),
    ({"snapshots": {"moments": ["opening", "lunch"]}}, "snapshots.moments: unknown moment 'lunch'"),
    ({"champion": {"metric": "accuracy"}}, "champion.metric"),
    ({"risk_model": {"learning_rate": "fast"}}, "risk_model.learning_rate"),
    ({"polcy": {}}, "polcy: unknown key"),
    (["not", "a", "mapping"], "expected a mapping"),
])
def test_bad_values_are_one_line_errors(data, message):
    with pytest.raises(UserError, match=message.replace(".", r"\.")) as caught:
        parse_params(data, "params.yaml")
    assert "\n" not in str(caught.value)


def test_lightgbm_settings_come_only_from_params():
    """The booster gets exactly the params section (plus fixed determinism flags): no hidden code defaults."""
    from models.training import _lgbm_params

    section = parse_params({"urgency_model": {"num_leaves": 9, "num_threads": 1}}).urgency_model
    booster, rounds, patience = _lgbm_params(section, {"objective": "multiclass"})
    assert booster["num_leaves"] == 9 and booster["num_threads"] == 1
    assert booster["bagging_fraction"] == section.bagging_fraction
    assert (rounds, patience) == (section.max_rounds, section.early_stopping_rounds)
    assert "max_rounds" not in booster and "balance_classes" not in booster


def test_target_good_values_default_by_column():
    assert parse_params({}).target.good == ("good",)
    assert parse_params({"target": {"column": "sla_missed", "bad": [True]}}).target.good == ()
    assert parse_params({"target": {"column": "sla_missed", "bad": True}}).target.bad == ("true",)
