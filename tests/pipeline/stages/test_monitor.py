"""Stage `monitor` and `csat-triage monitor`: a hand-made history and export, then the demo end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from models.scoring import SCORE_COLUMNS
from pipeline.cli import app
from pipeline.sinks.writeback import QueueStore, write_queue
from pipeline.stages.monitor import PLOT_FILE
from tests.models.conftest import demo_model

RUN_AT = "2026-03-02T00:00:00+00:00"
P_BAD = {"t1": 0.9, "t2": 0.8, "t3": 0.6, "t4": 0.4, "t5": 0.2, "t6": 0.1}
TIERS = {"t1": "P1", "t2": "P1", "t3": "P2", "t4": "P3", "t5": "P4", "t6": "P4"}


def strict_json(path: Path) -> dict:
    def refuse(constant):
        raise AssertionError(f"{path} holds {constant}")
    return json.loads(path.read_text(), parse_constant=refuse)


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return demo_model(tmp_path_factory)


@pytest.fixture
def history_db(tmp_path) -> str:
    """One scoring run of six open tickets, and two verdicts of agents on it."""
    url = f"sqlite:///{tmp_path / 'queue.sqlite'}"
    frame = pd.DataFrame({"ticket_id": list(P_BAD), "p_bad": list(P_BAD.values()), "tier": list(TIERS.values())})
    frame = frame.assign(risk=(frame["p_bad"] * 100).astype(int), urgency="normal", p_urgent=0.2,
                         priority_score=frame["p_bad"] * 100, rank=range(1, 7), reasons="", model_version="abc",
                         scored_at=RUN_AT, group="billing", assignee=None, current_wait_minutes=0.0,
                         target="satisfaction=bad")
    write_queue(url, frame[list(SCORE_COLUMNS) + ["group", "assignee", "current_wait_minutes", "target"]],
                {"scored_at": RUN_AT, "model_version": "abc", "target": "satisfaction=bad",
                 "export_fingerprint": "f", "tickets_scored": 6, "p1_tickets": 2, "rejected_rows": 0})
    store = QueueStore.open(url)
    store.add_feedback("t1", "agree", "ana")
    store.add_feedback("t2", "disagree", "bo")
    store.close()
    return url


@pytest.fixture
def later_export(tmp_path) -> Path:
    """The six tickets a day later: t1..t5 rated after the run, t6 rated before it."""
    export = tmp_path / "later"
    export.mkdir()
    rated = {"t1": "bad", "t2": "good", "t3": "bad", "t4": "good", "t5": "good", "t6": "bad"}
    at = {t: "2026-03-01T06:00:00Z" if t == "t6" else "2026-03-02T18:00:00Z" for t in rated}
    pd.DataFrame({"ticket_id": list(rated), "created_at": "2026-02-27T09:00:00Z", "status": "solved",
                  "channel": "email", "satisfaction": list(rated.values()),
                  "satisfaction_at": [at[t] for t in rated]}).to_csv(export / "tickets.csv", index=False)
    pd.DataFrame({"ticket_id": list(rated), "at": "2026-02-27T09:00:00Z", "actor": "customer", "kind": "message",
                  "value": "", "body": "hello"}).to_csv(export / "events.csv", index=False)
    return export


def test_monitor_reports_runs_and_plots(history_db, later_export, tmp_path):
    out, plots = tmp_path / "reports" / "monitoring.json", tmp_path / "plots"
    result = invoke("monitor", later_export, "--db", history_db, "--out", out, "--plots", plots)
    assert result.exit_code == 0, result.output
    report = strict_json(out)
    (run,) = report["runs"]
    assert (run["run_id"], run["tickets_scored"], run["outcomes_known"]) == (1, 6, 5)
    assert run["roc_auc"] == pytest.approx(5 / 6) and run["ece"] == pytest.approx(1.9 / 5)
    assert run["feedback"]["disagree_share"] == pytest.approx(0.5)
    assert report["weeks"][0]["week"] == "2026-W10"
    assert report["drift"]["features"] is None and "--model" in report["drift"]["note"]
    assert report["drift"]["score"]["psi"] is None  # one run: nothing to compare with
    assert report["alerts"] == []  # 5 outcomes < monitor.min_outcomes (50): not judged yet
    table = pd.read_csv(plots / PLOT_FILE)
    assert list(table["run_id"]) == [1] and table["roc_auc"].iloc[0] == pytest.approx(5 / 6)


def test_fail_on_alert_exits_1(history_db, later_export, tmp_path):
    params = tmp_path / "params.yaml"
    text = (Path(__file__).resolve().parents[3] / "params.yaml").read_text()
    params.write_text(text.replace("min_outcomes: 50", "min_outcomes: 5").replace("auc_floor: 0.6", "auc_floor: 0.9"))
    out = tmp_path / "monitoring.json"
    result = invoke("monitor", later_export, "--db", history_db, "--out", out, "--params", params, "--fail-on-alert")
    assert result.exit_code == 1, result.output
    alerts = strict_json(out)["alerts"]
    assert any("ROC AUC 0.833" in a for a in alerts) and any("ECE 0.380" in a for a in alerts)
    # Without the flag the same alerts are reported, exit 0.
    assert invoke("monitor", later_export, "--db", history_db, "--out", out, "--params", params).exit_code == 0


def test_user_errors_exit_2_and_write_nothing(later_export, tmp_path):
    out = tmp_path / "monitoring.json"
    result = invoke("monitor", later_export, "--db", f"sqlite:///{tmp_path / 'missing.sqlite'}", "--out", out)
    assert result.exit_code == 2 and "no such SQLite file" in result.output
    assert not out.exists() and not (tmp_path / "missing.sqlite").exists()


def test_demo_end_to_end(demo, tmp_path):
    """Score the demo export as of two earlier mornings, then monitor against the full export."""
    from pipeline.stages.score import score

    url = f"sqlite:///{tmp_path / 'history.sqlite'}"
    for as_of in ("2026-04-20T05:30:00Z", "2026-04-27T05:30:00Z"):
        score(demo.export_dir, tmp_path / "scored.csv", model_dir=demo.model_dir, db_url=url, as_of=as_of,
              params=demo.params, echo=lambda line: None)
    out, plots = tmp_path / "monitoring.json", tmp_path / "plots"
    result = invoke("monitor", demo.export_dir, "--db", url, "--out", out, "--model", demo.model_dir,
                    "--plots", plots)
    assert result.exit_code == 0, result.output
    report = strict_json(out)
    assert [r["run_id"] for r in report["runs"]] == [1, 2]
    for run in report["runs"]:
        assert 0 < run["outcomes_known"] < run["tickets_scored"]
        assert 0.5 < run["roc_auc"] <= 1 and 0 <= run["ece"] < 0.5
    assert [w["week"] for w in report["weeks"]] == ["2026-W17", "2026-W18"]
    drift = report["drift"]
    assert drift["score"]["psi"] is not None and drift["score"]["psi"] >= 0
    # Training side: the training export's open tickets at the nightly moment, on the runs' weekday.
    assert "open tickets of" in drift["note"] and "(Monday)" in drift["note"]
    assert drift["as_of"] == "2026-04-27T05:30:00+00:00" and drift["tonight_rows"] == report["runs"][1]["tickets_scored"]
    assert {"channel", "age_minutes"} <= set(drift["features"]) and len(drift["top_movers"]) == 5
    assert len(pd.read_csv(plots / PLOT_FILE)) == 2
