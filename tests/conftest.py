"""Shared fixtures: paths to the hand-written exports and the shared real datasets."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pipeline.core.params import Params, parse_params

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = REPO_ROOT / "tests" / "fixtures"
SHARED_DATASETS = REPO_ROOT.parent / "shared" / "datasets"


@pytest.fixture
def tiny_export() -> Path:
    """Three tickets whose features are worked out by hand in tests/features/test_build.py."""
    return FIXTURES / "tiny_export"


@pytest.fixture
def bad_export() -> Path:
    """An export with one row for each rejection reason."""
    return FIXTURES / "bad_export"


def shared_dataset(relative: str) -> Path:
    """Path of a file under ../shared/datasets, or skip the test saying what is missing."""
    path = SHARED_DATASETS / relative
    if not path.is_file():
        pytest.skip(f"{path} not found: the real-data tests need ../shared/datasets beside the repo")
    return path


def override(params: Params, updates: dict) -> Params:
    """``params`` with some keys replaced, validated like params.yaml: ``{"risk_model": {"max_rounds": 5}}``."""
    merged = params.model_dump(mode="json")
    for section, values in updates.items():
        if isinstance(values, dict) and isinstance(merged.get(section), dict):
            merged[section] = {**merged[section], **values}
        else:
            merged[section] = values
    return parse_params(merged, "test params")


def scored_frame(n: int = 4) -> pd.DataFrame:
    """A scored queue as the scoring stage writes it, for the Zendesk payload and push tests."""
    risks = [60, 59, 30, 29] * (n // 4 + 1)
    return pd.DataFrame(
        {
            "ticket_id": [str(1000 + i) for i in range(n)],
            "risk": risks[:n],
            "tier": (["P1", "P2", "P3", "P4"] * (n // 4 + 1))[:n],
            "urgency": [0.5] * n,
            "rank": list(range(n, 0, -1)),   # last row is rank 1
            "model_version": ["m-7"] * n,
        }
    )
