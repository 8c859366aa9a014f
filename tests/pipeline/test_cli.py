"""The command line: subcommands, one-line errors with exit code 2, and the agents' queue view."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from models.scoring import SCORE_COLUMNS
from pipeline.cli import app
from pipeline.sinks.writeback import write_queue
from tests.models.conftest import demo_model

SUBCOMMANDS = ("simulate", "validate", "featurize", "train", "evaluate", "evaluate-moments", "register", "score",
               "queue", "serve", "import-servicenow", "import-kaggle-cst", "import-zendesk", "push-zendesk")


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    return demo_model(tmp_path_factory)


@pytest.fixture
def params_file(demo, tmp_path) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(demo.params.model_dump(mode="json")))
    return path


def invoke(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


PROGRESS_LINE = re.compile(r"^  [a-z ]+: \d+\.\d s$")  # `score` reports each step's time on stderr


def assert_one_line_error(result, *fragments: str, progress_allowed: bool = False) -> str:
    """Exit code 2, one stderr line starting with ``error:`` (the last), no traceback anywhere.

    ``progress_allowed``: `score`'s step timings may come before the error line.
    """
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = result.stderr.rstrip("\n").splitlines()
    assert lines and lines[-1].startswith("error: "), result.stderr
    others = lines[:-1]
    if progress_allowed:
        assert all(PROGRESS_LINE.match(line) for line in others), result.stderr
    else:
        assert not others, result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[-1]
    return lines[-1]


def test_help_lists_every_subcommand():
    result = invoke("--help")
    assert result.exit_code == 0
    listed = set(re.findall(r"^[│ ]*([a-z][a-z-]+)\s{2,}", result.stdout, flags=re.MULTILINE))
    assert set(SUBCOMMANDS) <= listed, set(SUBCOMMANDS) - listed


def test_installed_console_script_runs():
    script = Path(sys.executable).with_name("csat-triage")
    if not script.is_file():
        pytest.skip(f"{script} not installed (pip install -e .)")
    completed = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0
    assert "score" in completed.stdout and "push-zendesk" in completed.stdout


@pytest.mark.parametrize("args", [
    ("validate", "{missing}"),
    ("featurize", "{missing}", "--out", "{tmp}/features.parquet"),
    ("train", "{missing}", "--out", "{tmp}/model"),
    ("score", "{missing}", "--out", "{tmp}/priorities.csv", "--model", "{tmp}/model"),
])
def test_missing_export_directory_is_one_line(args, tmp_path):
    missing = tmp_path / "no-such-export"
    result = invoke(*(a.format(missing=missing, tmp=tmp_path) for a in args))
    assert_one_line_error(result, f"{missing}: export directory not found")


def test_bad_as_of_is_one_line(demo, tmp_path, params_file):
    featurize = invoke("featurize", demo.export_dir, "--out", tmp_path / "f.parquet", "--as-of", "not-a-time",
                       "--params", params_file)
    assert_one_line_error(featurize)
    assert not (tmp_path / "f.parquet").exists()
    score = invoke("score", demo.export_dir, "--out", tmp_path / "p.csv", "--model", demo.model_dir,
                   "--as-of", "not-a-time", "--db", "", "--params", params_file)
    assert_one_line_error(score, "--as-of 'not-a-time' is not an ISO-8601 timestamp", progress_allowed=True)
    assert not (tmp_path / "p.csv").exists()


def test_bad_as_of_is_refused_before_any_work(demo, tmp_path, params_file):
    score = invoke("score", demo.export_dir, "--out", tmp_path / "p.csv", "--model", demo.model_dir,
                   "--as-of", "not-a-time", "--db", "", "--params", params_file)
    assert_one_line_error(score, "--as-of 'not-a-time' is not an ISO-8601 timestamp")


def test_training_on_too_few_labels_is_one_line(demo, tmp_path, params_file):
    export = tmp_path / "export"
    shutil.copytree(demo.export_dir, export)
    tickets = pd.read_csv(export / "tickets.csv", dtype=str, keep_default_na=False)
    tickets.loc[tickets["satisfaction"] == "bad", "satisfaction"] = "good"
    tickets.to_csv(export / "tickets.csv", index=False)
    result = invoke("train", export, "--out", tmp_path / "model", "--params", params_file)
    assert_one_line_error(result, "not enough labels to train", "(0 bad,")
    assert not (tmp_path / "model").exists()


def test_score_over_the_reject_limit_exits_1_with_one_line_and_writes_nothing(demo, tmp_path, params_file):
    export = tmp_path / "export"
    shutil.copytree(demo.export_dir, export)
    with open(export / "events.csv", "a") as handle:
        handle.write("no-such-ticket,2026-03-01T10:00:00Z,customer,message,,hello\n")
    out = tmp_path / "out" / "p.csv"
    result = invoke("score", export, "--out", out, "--model", demo.model_dir, "--params", params_file,
                    "--max-reject-rate", "0")
    assert result.exit_code == 1, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "rows rejected" in errors[0] and "nothing written" in errors[0]
    assert "Traceback" not in result.output
    assert not out.exists()


def test_queue_without_a_database_is_one_line(tmp_path):
    result = invoke("queue", "--db", f"sqlite:///{tmp_path / 'none.sqlite'}")
    assert_one_line_error(result, "run `csat-triage score` first")


def hand_queue() -> pd.DataFrame:
    rows = [("T-low", 3, "P3", 25, "billing", "agent_002", 45.0),
            ("T-top", 1, "P1", 81, "technical", "agent_001", 1560.0),
            ("T-mid", 2, "P2", 55, "billing", None, 0.0)]
    frame = pd.DataFrame(rows, columns=["ticket_id", "rank", "tier", "risk", "group", "assignee",
                                        "current_wait_minutes"])
    frame = frame.assign(p_bad=frame["risk"] / 100, urgency="normal", p_urgent=0.3, priority_score=100 - frame["rank"],
                         reasons="reopened twice", model_version="abc123def456",
                         scored_at="2026-03-02T10:00:00+00:00", target="satisfaction=bad")
    return frame[list(SCORE_COLUMNS) + ["group", "assignee", "current_wait_minutes", "target"]]


def test_queue_prints_tickets_in_rank_order(tmp_path):
    url = f"sqlite:///{tmp_path / 'queue.sqlite'}"
    write_queue(url, hand_queue(), {"scored_at": "2026-03-02T10:00:00+00:00", "model_version": "abc123def456",
                                    "target": "satisfaction=bad", "export_fingerprint": "f", "tickets_scored": 3,
                                    "p1_tickets": 1, "rejected_rows": 0})
    result = invoke("queue", "--db", url)
    assert result.exit_code == 0, result.output
    out = result.stdout
    positions = [out.index(ticket) for ticket in ("T-top", "T-mid", "T-low")]
    assert positions == sorted(positions)
    assert "Queue (3 tickets)" in out
    top_line = next(line for line in out.splitlines() if "T-top" in line)
    assert "26 h" in top_line and "P1" in top_line and "81" in top_line and "technical" in top_line
    # Filters: one group, and a limit.
    billing = invoke("queue", "--db", url, "--group", "billing").stdout
    assert "T-top" not in billing and billing.index("T-mid") < billing.index("T-low")
    limited = invoke("queue", "--db", url, "--limit", "1").stdout
    assert "T-top" in limited and "T-mid" not in limited
    assert "queue is empty" in invoke("queue", "--db", url, "--group", "nobody").stdout


@pytest.mark.slow
def test_score_then_queue_end_to_end(demo, tmp_path, params_file):
    out = tmp_path / "scored" / "priorities.csv"
    result = invoke("score", demo.export_dir, "--out", out, "--model", demo.model_dir, "--params", params_file)
    assert result.exit_code == 0, result.output
    assert re.search(r"scored \d+ tickets: \d+ P1; 0 rejected rows; model [0-9a-f]{12}", result.stdout)
    scored = pd.read_csv(out, dtype={"ticket_id": str})
    queue = invoke("queue", "--db", f"sqlite:///{out.parent / 'priorities.sqlite'}", "--limit", "5")
    assert queue.exit_code == 0
    positions = [queue.stdout.index(ticket) for ticket in scored["ticket_id"].head(5)]
    assert positions == sorted(positions)
    assert str(scored["ticket_id"].iloc[5]) not in queue.stdout


@pytest.mark.parametrize("snapshots", ["missing.parquet", "not-parquet.parquet"])
def test_train_with_unreadable_snapshots_is_one_line_and_writes_no_model(demo, tmp_path, params_file, snapshots):
    (tmp_path / "not-parquet.parquet").write_text("ticket_id,as_of\n")
    out = tmp_path / "model"
    result = invoke("train", demo.export_dir, "--snapshots", tmp_path / snapshots, "--out", out, "--params", params_file)
    assert_one_line_error(result, f"--snapshots {tmp_path / snapshots}")
    assert not out.exists()


def test_score_with_a_missing_model_creates_no_output_folder(demo, tmp_path, params_file):
    out = tmp_path / "tonight" / "priorities.csv"
    result = invoke("score", demo.export_dir, "--out", out, "--model", tmp_path / "no-model", "--params", params_file)
    assert_one_line_error(result, "no-model: not a model directory", progress_allowed=True)
    assert not (tmp_path / "tonight").exists()  # not even the lock file's folder
