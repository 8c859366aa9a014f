"""The demo DVC pipeline end to end in a throw-away git repo: code dependencies and one champion.

Slow (three small `dvc repro` runs, about a minute): it replays what users do with
DVC, which no unit test can: edit code, run experiments, check params out again.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow

# Small and quick, and a gate that promotes any new model: the replay needs a promotion.
SMALL = {
    "simulate": {"tickets": 3000, "days": 60},
    "train": {"min_labelled_tickets": 50, "min_bad_tickets": 10},
    "risk_model": {"max_rounds": 40},
    "urgency_model": {"max_rounds": 10},
    "text_model": {"enabled": False},  # the text model is not what this replays; it costs time
    "champion": {"tolerance": 1.0, "min_lift_over_baselines": -1.0},
}


def run(repo: Path, *args: str) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "MLFLOW_TRACKING_URI": f"sqlite:///{repo / 'mlflow.db'}", "GIT_AUTHOR_NAME": "t",
           "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    env.pop("DVC_ROOT", None)
    # mlflow.set_registry_uri() (called by other tests in this process) exports MLFLOW_REGISTRY_URI;
    # inherited, it would send this repo's registrations to another test's registry.
    env["MLFLOW_REGISTRY_URI"] = env["MLFLOW_TRACKING_URI"]
    result = subprocess.run(args, cwd=repo, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(args)}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """A git repo holding the project's files (as in this checkout) with small params, after one `dvc repro`."""
    repo = tmp_path_factory.mktemp("project")
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO_ROOT,
                            capture_output=True, text=True, check=True).stdout.splitlines()
    for relative in listed:
        source = REPO_ROOT / relative
        # Only the demo pipeline: the real-data ones need ../shared and are not what this replays.
        if source.is_file() and not relative.startswith(("reports/", "benchmarks/", "realdata/")) \
                and relative != "dvc.lock":
            (repo / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, repo / relative)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for section, values in SMALL.items():
        params[section].update(values)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(repo, "git", "init", "-q", ".")
    run(repo, "git", "add", "-A")
    run(repo, "git", "commit", "-qm", "project")
    run(repo, "dvc", "repro", "-q")
    run(repo, "git", "add", "-A")
    run(repo, "git", "commit", "-qm", "first repro")
    return repo


def stale_stages(repo: Path) -> set[str]:
    return set(json.loads(run(repo, "dvc", "status", "--json") or "{}"))


def test_a_change_in_features_marks_every_stage_that_runs_it_stale(repo):
    assert stale_stages(repo) == set()
    build = repo / "features" / "build.py"
    original = build.read_text()
    build.write_text(original + "\n# a change\n")
    try:
        assert stale_stages(repo) == {"featurize", "train", "evaluate", "register", "score", "monitor"}
    finally:
        build.write_text(original)
    assert stale_stages(repo) == set()


def champion_dir_version(repo: Path) -> str:
    return json.loads((repo / "data" / "models" / "champion" / "model.json").read_text())["model_version"]


def alias_version(repo: Path) -> str:
    """The model version (content hash) of the registered model MLflow's `champion` alias points to."""
    code = ("import mlflow; c = mlflow.MlflowClient(); "
            "print(c.get_model_version_by_alias('csat-triage-risk', 'champion').tags['model_version'])")
    return run(repo, sys.executable, "-c", code).strip()


def test_experiment_then_checkout_then_repro_leaves_one_champion(repo):
    first = champion_dir_version(repo)
    assert alias_version(repo) == first

    run(repo, "dvc", "exp", "run", "-q", "-S", "risk_model.seed=43")
    promoted = champion_dir_version(repo)
    assert promoted != first, "the experiment's model should have been promoted (the test's gate promotes any)"
    assert alias_version(repo) == promoted

    run(repo, "git", "checkout", "params.yaml")
    run(repo, "dvc", "repro", "-q")
    # The directory and the alias agree, whichever model the gate kept.
    assert champion_dir_version(repo) == alias_version(repo)
    assert champion_dir_version(repo) == first  # the gate here promotes any model: the old one is back
