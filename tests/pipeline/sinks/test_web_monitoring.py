"""The monitoring page (`serve --monitoring`): the real `monitor` report rendered, and every way the
report can be missing or broken shown as one line, never a traceback.

Two scoring runs of six tickets, all rated after both runs:

- run 1 p_bad: t1 .9, t2 .8, t3 .6, t4 .4, t5 .2, t6 .1  -> ROC AUC 5/9 (0.556)
- run 2 p_bad: t1 .7, t3 .65, t6 .5, t2 .3, t4 .2, t5 .1 -> ROC AUC 1.000; P1 = t1, t3 (both bad)
- bad: t1, t3, t6; good: t2, t4, t5. Agents: agree on t1, disagree on t2 (run 2).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from pipeline.cli import app as cli
from pipeline.core.params import Params
from pipeline.sinks.web import create_app
from pipeline.sinks.web import server as web_server
from pipeline.sinks.web.monitoring import RunEntry, trend_chart
from pipeline.sinks.writeback import QueueStore, write_queue
from pipeline.stages.monitor import monitor
from tests.conftest import override
from tests.pipeline.sinks.test_writeback import queue_frame, run_for

TOKEN = "s3cret-token-for-tests"
RUN_1 = (("t1", 0.9, "P1"), ("t2", 0.8, "P1"), ("t3", 0.6, "P2"), ("t4", 0.4, "P3"), ("t5", 0.2, "P4"),
         ("t6", 0.1, "P4"))
RUN_2 = (("t1", 0.7, "P1"), ("t3", 0.65, "P1"), ("t6", 0.5, "P2"), ("t2", 0.3, "P3"), ("t4", 0.2, "P4"),
         ("t5", 0.1, "P4"))
RATED = {"t1": "bad", "t2": "good", "t3": "bad", "t4": "good", "t5": "good", "t6": "bad"}


def scored(rows, scored_at: str, model_version: str):
    return queue_frame(*[{"ticket_id": t, "rank": i + 1, "p_bad": p, "risk": int(p * 100), "tier": tier,
                          "scored_at": scored_at, "model_version": model_version}
                         for i, (t, p, tier) in enumerate(rows)])


@pytest.fixture
def db(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'queue.sqlite'}"
    for rows, at, version in ((RUN_1, "2026-03-01T10:00:00+00:00", "abc123def456"),
                              (RUN_2, "2026-03-02T10:00:00+00:00", "fedcba987654")):
        frame = scored(rows, at, version)
        write_queue(url, frame, {**run_for(frame), "scored_at": at, "model_version": version})
    store = QueueStore.open(url)
    store.add_feedback("t1", "agree", "ana")
    store.add_feedback("t2", "disagree", "bo")
    store.close()
    return url


@pytest.fixture
def report(db, tmp_path) -> Path:
    """The real `monitor` on a later export, with thresholds that raise an ECE and a score-drift alert."""
    export = tmp_path / "later"
    export.mkdir()
    pd.DataFrame({"ticket_id": list(RATED), "created_at": "2026-02-27T09:00:00Z", "status": "solved",
                  "channel": "email", "satisfaction": list(RATED.values()),
                  "satisfaction_at": "2026-03-03T09:00:00Z"}).to_csv(export / "tickets.csv", index=False)
    pd.DataFrame({"ticket_id": list(RATED), "at": "2026-02-27T09:00:00Z", "actor": "customer", "kind": "message",
                  "value": "", "body": "hello"}).to_csv(export / "events.csv", index=False)
    params = override(Params(), {"monitor": {"min_outcomes": 3, "ece_ceiling": 0.05, "psi_ceiling": 0.25}})
    out = tmp_path / "reports" / "monitoring.json"
    monitor(export, db, out, params, echo=lambda line: None)
    return out


def client_for(db: str, monitoring: Path | None, token: str | None = None) -> TestClient:
    return TestClient(create_app(QueueStore.open(db), token, monitoring))


def section(html: str, start: str, end: str) -> str:
    return html[html.index(start):html.index(end, html.index(start))]


def test_monitoring_page_shows_the_real_report(db, report):
    with client_for(db, report) as client:
        response = client.get("/monitoring")
    assert response.status_code == 200
    html = response.text
    # Alerts first, in the monitor's words.
    alerts = section(html, 'aria-label="Alerts"', "</section>")
    assert "2 alerts" in alerts
    assert "ECE 0.292 of run 2" in alerts and "above monitor.ece_ceiling 0.05" in alerts
    assert "The score p_bad drifted between runs" in alerts
    assert html.index('aria-label="Alerts"') < html.index('<table class="runs">')
    # One row per run, newest first: model, time, counts, AUCs, ECE, P1 precision, feedback.
    rows = re.findall(r"<tr>\s*(.*?)</tr>", section(html, '<table class="runs">', "</table>"), re.S)[1:]
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", row, re.S) for row in rows]
    assert [c[0] for c in cells] == ["2", "1"]
    assert cells[0][1:] == ["<code>fedcba987654</code>", "2026-03-02 10:00 UTC", "6", "6", "1.000", "1.000", "0.292",
                            "100 %", "50 % of 2"]
    assert cells[1][1:9] == ["<code>abc123def456</code>", "2026-03-01 10:00 UTC", "6", "6", "0.556", "0.722",
                             "0.467", "50 %"]
    assert "no verdicts" in cells[1][9]
    # Bad rate by tier of the latest run with outcomes (run 2).
    tiers = section(html, '<table class="tier-rates">', "</table>")
    assert re.findall(r'pill (p\d)">P\d</span></td><td class="num">(\d+)</td>\s*<td class="num">([^<]+)</td>',
                      tiers) == [("p1", "2", "100 %"), ("p2", "1", "100 %"), ("p3", "1", "0 %"), ("p4", "2", "0 %")]
    # Score drift between the runs; no --model, so the report says why there are no feature movers.
    drift = json.loads(report.read_text())["drift"]
    assert f"PSI {drift['score']['psi']:.3f}" in html and 'class="psi shifted"' in html
    assert "give --model" in html and '<table class="movers">' not in html


def test_trend_chart_plots_auc_and_ece_per_run(db, report):
    with client_for(db, report) as client:
        html = client.get("/monitoring").text
    chart = section(html, '<svg class="chart trend"', "</svg>")
    auc = re.findall(r'class="dot auc" cx="([\d.]+)" cy="([\d.]+)"', chart)
    ece = re.findall(r'class="dot ece" cx="([\d.]+)" cy="([\d.]+)"', chart)
    assert len(auc) == len(ece) == 2
    assert float(auc[0][0]) < float(auc[1][0])  # oldest run left
    grid = {label: float(y) for y, label in
            re.findall(r'class="grid"[^\n]*y1="([\d.]+)"[^\n]*\s*<text class="axis"[^>]*>([^<]+)</text>', chart)}
    assert list(grid) == ["0", "0.25", "0.5", "0.75", "1"]
    assert float(auc[1][1]) == grid["1"]  # run 2's AUC 1.0 sits on the 1 line
    assert grid["0.5"] > float(auc[0][1]) > grid["0.75"]  # 0.556 (SVG y grows downwards)
    assert float(ece[1][1]) > float(ece[0][1])  # ECE fell from 0.467 to 0.292: lower down
    assert "ROC AUC, run 1 (2026-03-01): 0.556" in chart and "ECE, run 2 (2026-03-02): 0.292" in chart
    assert "<script" not in html and "http" not in chart  # server-rendered, nothing fetched


def test_trend_chart_leaves_a_gap_for_a_run_without_outcomes():
    def run(run_id, auc):
        return RunEntry.model_validate({
            "run_id": run_id, "model_version": "m", "scored_at": f"2026-03-0{run_id}T10:00:00+00:00",
            "tickets_scored": 5, "outcomes_known": 5 if auc is not None else 0, "bad_rate": None, "roc_auc": auc,
            "pr_auc": None, "ece": None if auc is None else 0.1, "p1_precision": None, "bad_rate_by_tier": {},
            "feedback": {"verdicts": 0, "disagree_share": None}})

    chart = trend_chart([run(1, 0.7), run(2, None), run(3, 0.8), run(4, 0.75)])
    assert [len(s.split()) for s in chart["auc"]["segments"]] == [1, 2]
    assert len(chart["auc"]["dots"]) == 3
    assert trend_chart([run(1, None)]) is None


def test_api_monitoring_returns_the_report_as_written(db, report):
    with client_for(db, report) as client:
        response = client.get("/api/monitoring")
    assert response.status_code == 200
    assert response.json() == json.loads(report.read_text())


def test_the_report_is_read_at_every_request(db, report):
    with client_for(db, report) as client:
        assert "2 alerts" in client.get("/monitoring").text
        body = json.loads(report.read_text())
        body["alerts"] = []
        report.write_text(json.dumps(body))
        assert "No alerts" in client.get("/monitoring").text
        assert client.get("/api/monitoring").json()["alerts"] == []


def test_without_monitoring_the_page_says_how_to_make_the_report(db):
    with client_for(db, None) as client:
        page = client.get("/monitoring")
        api = client.get("/api/monitoring")
        queue = client.get("/")
    assert page.status_code == 200
    assert "serve was started without --monitoring" in page.text
    assert "csat-triage serve --monitoring reports/monitoring.json" in page.text
    expected = f"csat-triage monitor LATER_EXPORT --db {db} --model data/models/champion --out reports/monitoring.json"
    assert expected in page.text
    assert api.status_code == 404 and "--monitoring" in api.json()["detail"]
    assert 'href="/monitoring"' in queue.text  # linked from the queue page's header


def test_a_report_not_written_yet_is_one_line_with_the_command(db, tmp_path):
    path = tmp_path / "reports" / "monitoring.json"
    with client_for(db, path) as client:
        page = client.get("/monitoring")
        api = client.get("/api/monitoring")
    assert page.status_code == 404
    assert f"{path}: no monitoring report there yet" in page.text
    assert f"--out {path}" in page.text
    assert api.status_code == 404 and api.json()["detail"] == f"{path}: no monitoring report there yet"


@pytest.mark.parametrize(("content", "message"), [
    (b"{not json", "not valid JSON"),
    (b'{"runs": [], "alerts": [], "drift": {"score": {"psi": NaN}}}', "not valid JSON (holds NaN"),
    (b"[]", "not a monitoring report (top level"),
    (b'{"target": "t", "export": "e", "runs": "x", "drift": {}, "alerts": []}', "not a monitoring report (runs:"),
    (b"\xff\xfe\x00garbage", "cannot read the monitoring report"),
])
def test_a_broken_report_is_one_line_and_the_server_keeps_going(db, tmp_path, content, message):
    path = tmp_path / "monitoring.json"
    path.write_bytes(content)
    with client_for(db, path) as client:
        page = client.get("/monitoring")
        api = client.get("/api/monitoring")
        assert client.get("/").status_code == 200  # the queue still works
    assert page.status_code == 503
    shown = re.search(r'<p class="alert" role="alert">(.*?)</p>', page.text, re.S).group(1)
    assert message in shown and "\n" not in shown and "Traceback" not in page.text
    assert api.status_code == 503 and message in api.json()["detail"]


@pytest.mark.parametrize("path", ["/monitoring", "/api/monitoring"])
def test_monitoring_needs_the_token(db, report, path):
    with client_for(db, report, TOKEN) as client:
        denied = client.get(path)
        allowed = client.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
    assert denied.status_code == 401 and "0.292" not in denied.text
    assert allowed.status_code == 200 and "0.292" in allowed.text


def test_serve_passes_monitoring_to_the_app(db, report, monkeypatch):
    """`csat-triage serve --monitoring FILE`, except the network loop."""
    served = {}

    class NoLoop:
        def __init__(self, app) -> None:
            served["app"] = app

        def run(self, sockets) -> None:
            sockets[0].close()

    monkeypatch.setattr(web_server, "uvicorn_server", NoLoop)
    monkeypatch.delenv(web_server.TOKEN_ENV, raising=False)
    result = CliRunner().invoke(cli, ["serve", "--db", db, "--port", "0", "--monitoring", str(report)])
    assert result.exit_code == 0, result.output
    with TestClient(served["app"]) as client:
        assert client.get("/api/monitoring").json()["runs"][1]["roc_auc"] == 1.0
    missing = report.parent / "later.json"
    result = CliRunner().invoke(cli, ["serve", "--db", db, "--port", "0", "--monitoring", str(missing)])
    assert result.exit_code == 0 and f"no monitoring report at {missing} yet" in result.stderr
