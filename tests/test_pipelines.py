"""The DVC pipelines: rendered from one definition, each declaring the params sections it reads."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from pipeline.core.params import Params
from tests.conftest import REPO_ROOT

RENDERER = REPO_ROOT / "tools" / "render_dvc.py"
PIPELINE_FILES = ("dvc.yaml", "realdata/servicenow/dvc.yaml", "realdata/negative_control/dvc.yaml")


def test_committed_dvc_yaml_files_are_what_the_definition_renders():
    result = subprocess.run([sys.executable, str(RENDERER), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("relative", PIPELINE_FILES)
def test_declared_params_sections_exist_in_that_pipelines_params_file(relative):
    dvc = yaml.safe_load((REPO_ROOT / relative).read_text())
    params = yaml.safe_load(((REPO_ROOT / relative).parent / "params.yaml").read_text())
    for name, stage in dvc["stages"].items():
        for section in stage.get("params", []):
            assert section in Params.model_fields, (name, section)
            assert section in params, f"{relative}: stage {name} reads {section}, which params.yaml lacks"


@pytest.mark.parametrize("relative", PIPELINE_FILES)
def test_every_stage_depends_on_the_code_it_runs(relative):
    dvc = yaml.safe_load((REPO_ROOT / relative).read_text())
    prefix = "../" * relative.count("/")
    for name, stage in dvc["stages"].items():
        module = {"import": "import_export"}.get(name, name)
        deps = stage["deps"]
        assert f"{prefix}pipeline/stages/{module}.py" in deps, name
        assert f"{prefix}pipeline/core" in deps, name
        if name not in ("simulate", "import", "validate"):
            assert f"{prefix}features" in deps, name
