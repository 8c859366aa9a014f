"""The README's generated parts match the code (run `make docs` to refresh them)."""

from __future__ import annotations

import importlib.util

from tests.conftest import REPO_ROOT


def test_feature_table_in_readme_is_current():
    spec = importlib.util.spec_from_file_location("update_readme", REPO_ROOT / "tools" / "update_readme.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = (REPO_ROOT / "README.md").read_text()
    assert module.render(text) == text, "README feature table is stale: run `make docs`"


def test_readme_shows_the_two_commands_first():
    text = (REPO_ROOT / "README.md").read_text()
    assert text.index("make repro") < text.index("## ")
    assert text.index("make test") < text.index("## ")
