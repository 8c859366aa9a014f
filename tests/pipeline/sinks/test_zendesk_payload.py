"""The Zendesk payload file records its risk field, and the placeholder field id is warned about."""

from __future__ import annotations

import json

import pandas as pd
import yaml

from pipeline.core.params import Params
from pipeline.sinks.zendesk_payload import (
    PLACEHOLDER_RISK_FIELD_ID,
    build_update_many_payload,
    payload_warning,
    risk_field_warning,
    write_update_many_payload,
)
from tests.conftest import REPO_ROOT

REAL_FIELD_ID = 360012345678


def scored(n: int) -> pd.DataFrame:
    return pd.DataFrame({
        "ticket_id": [str(1000 + i) for i in range(n)],
        "risk": [[80, 40, 10, 65][i % 4] for i in range(n)],
        "tier": [["P1", "P2", "P4", "P1"][i % 4] for i in range(n)],
        "rank": list(range(1, n + 1)),
        "model_version": "m-7",
    })


def test_the_placeholder_is_the_params_default_stated_in_params_yaml():
    assert PLACEHOLDER_RISK_FIELD_ID == Params().zendesk.risk_field_id == 360000000001
    stated = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())["zendesk"]["risk_field_id"]
    assert stated == PLACEHOLDER_RISK_FIELD_ID


def test_the_placeholder_field_id_gives_one_warning_line():
    warning = risk_field_warning(360000000001)
    assert warning is not None and warning.startswith("warning: zendesk.risk_field_id")
    assert "360000000001" in warning and "params.yaml" in warning and "\n" not in warning
    assert risk_field_warning(REAL_FIELD_ID) is None
    assert risk_field_warning(None) is None


def test_the_payload_file_records_the_risk_field_id(tmp_path):
    path = write_update_many_payload(build_update_many_payload(scored(6), REAL_FIELD_ID, "m-7"), tmp_path / "p.json")
    document = json.loads(path.read_text())
    assert document["risk_field_id"] == REAL_FIELD_ID
    assert payload_warning(document) is None and payload_warning(document["batches"]) is None
    assert json.loads(write_update_many_payload([], tmp_path / "empty.json").read_text())["risk_field_id"] is None


def test_a_payload_built_with_the_placeholder_is_warned_about(tmp_path):
    batches = build_update_many_payload(scored(6), 360000000001, "m-7")
    document = json.loads(write_update_many_payload(batches, tmp_path / "p.json").read_text())
    assert document["risk_field_id"] == 360000000001
    assert payload_warning(document) == risk_field_warning(360000000001)
    # What push-zendesk has after reading a file: the batches (or a file written before the id was recorded).
    del document["risk_field_id"]
    assert payload_warning(document) == risk_field_warning(360000000001)
    assert payload_warning(document["batches"]) == risk_field_warning(360000000001)
