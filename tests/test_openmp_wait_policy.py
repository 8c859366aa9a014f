"""Importing the package makes LightGBM's OpenMP threads sleep while they wait, unless the user chose."""

from __future__ import annotations

import os
import subprocess
import sys


def _policy_seen_by_lightgbm(env: dict) -> str:
    code = "import pipeline.stages.train, os; print(os.environ.get('OMP_WAIT_POLICY'))"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_passive_by_default_and_the_users_setting_wins():
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    assert _policy_seen_by_lightgbm(env) == "PASSIVE"
    assert _policy_seen_by_lightgbm({**env, "OMP_WAIT_POLICY": "ACTIVE"}) == "ACTIVE"
