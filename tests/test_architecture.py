"""The floors are enforced, not hoped for: the import contract and the module size limit."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

MAX_MODULE_LINES = 700
PACKAGES = ("pipeline", "features", "models")


def test_import_contract_holds():
    """`lint-imports` checks the layers in pyproject.toml: core < features < models < sources|sinks|tracking < stages < cli."""
    lint_imports = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if lint_imports is None:
        pytest.fail("lint-imports is not installed: `pip install -e .[test]` (make test does)")
    result = subprocess.run([lint_imports, "--no-cache"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_is_over_the_size_limit(package):
    too_long = {
        str(path.relative_to(REPO_ROOT)): n
        for path in (REPO_ROOT / package).rglob("*.py")
        if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not too_long, f"modules over {MAX_MODULE_LINES} lines (split them by job): {too_long}"


def test_core_imports_nothing_else_of_ours():
    for path in (REPO_ROOT / "pipeline" / "core").glob("*.py"):
        text = path.read_text()
        for other in ("features", "models", "pipeline.sources", "pipeline.sinks", "pipeline.stages",
                      "pipeline.tracking", "pipeline.cli"):
            assert f"from {other}" not in text and f"import {other}" not in text, (path.name, other)
