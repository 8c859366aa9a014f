"""The queue page in a real headless Chromium (Playwright) against uvicorn on a free loopback port.

The queue is realistic: the demo export scored three times (as of two days before the
export, one day before, and the export time) into a temporary SQLite file, so each ticket
has a three-run history. The browser loads the queue, filters it, checks the phone layout,
opens a ticket and clicks "Disagree"; the feedback must then be in the database. The
monitoring page shows ``monitor``'s report on the same export scored 4, 3, 2 and 1 weeks
before its end (a database of its own: the queue's runs are too recent for outcomes).

The browser is the system's Chromium (Debian package ``chromium``, which ``.ci/run``
installs); Playwright's own browser download is never used. The test skips only when no
``chromium``/``chromium-headless-shell`` binary is on PATH. The queue screenshot goes to
the test's temporary directory; with ``CSAT_TRIAGE_SCREENSHOT=1`` it also replaces
``docs/queue.png`` and ``docs/monitoring.png`` (the README's pictures).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import threading
import time

import pytest
from playwright.sync_api import sync_playwright

from features.build import latest_timestamp
from pipeline.sinks.web import create_app
from pipeline.sinks.web.server import listen, uvicorn_server
from pipeline.sinks.writeback import QueueStore, read_history
from pipeline.sources.ingest import load_export
from pipeline.stages.monitor import monitor
from pipeline.stages.score import score
from tests.conftest import REPO_ROOT
from tests.models.conftest import demo_model

BROWSER = shutil.which("chromium") or shutil.which("chromium-headless-shell")
SCREENSHOT = REPO_ROOT / "docs" / "queue.png"
MONITORING_SCREENSHOT = REPO_ROOT / "docs" / "monitoring.png"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(BROWSER is None, reason="no chromium or chromium-headless-shell on PATH: "
                                               "`apt-get install chromium` (as .ci/run does) to run the browser test"),
]


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> str:
    demo = demo_model(tmp_path_factory)
    export = load_export(demo.export_dir)
    latest = latest_timestamp(export.tickets, export.events)
    root = tmp_path_factory.mktemp("queue_page")
    url = f"sqlite:///{root / 'queue.sqlite'}"
    for days_before in (2, 1, 0):
        moment = (latest - dt.timedelta(days=days_before)).isoformat()
        score(demo.export_dir, root / "priorities.csv", model_dir=demo.model_dir, db_url=url, as_of=moment,
              params=demo.params, echo=lambda line: None)
    return url


@pytest.fixture(scope="module")
def monitoring_report(tmp_path_factory):
    """``monitor`` on the demo export against runs 28, 21, 14 and 7 days before its end."""
    demo = demo_model(tmp_path_factory)
    export = load_export(demo.export_dir)
    latest = latest_timestamp(export.tickets, export.events)
    root = tmp_path_factory.mktemp("monitoring")
    url = f"sqlite:///{root / 'history.sqlite'}"
    for days_before in (28, 21, 14, 7):
        moment = (latest - dt.timedelta(days=days_before)).isoformat()
        score(demo.export_dir, root / "priorities.csv", model_dir=demo.model_dir, db_url=url, as_of=moment,
              params=demo.params, echo=lambda line: None)
    out = root / "monitoring.json"
    monitor(demo.export_dir, url, out, demo.params, model_dir=demo.model_dir, echo=lambda line: None)
    return out


@pytest.fixture(scope="module")
def store(db):
    store = QueueStore.open(db)
    yield store
    store.close()


@pytest.fixture(scope="module")
def base_url(store, monitoring_report):
    """uvicorn serving the app in a thread, on 127.0.0.1 and a port the system picks."""
    sock = listen("127.0.0.1", 0)
    server = uvicorn_server(create_app(store, monitoring=monitoring_report), log_config=None)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=BROWSER,
                                             args=["--no-sandbox", "--disable-gpu", "--headless"])
        yield browser
        browser.close()


def test_queue_filter_ticket_and_feedback_in_a_real_browser(browser, base_url, store, db, tmp_path):
    expected = store.queue(limit=100)
    assert len(expected) > 20 and expected["tier"].eq("P1").any()
    page = browser.new_page(viewport={"width": 1280, "height": 860})

    # The queue, in rank order, as the database has it.
    page.goto(base_url + "/")
    assert page.locator("td.ticket a").all_inner_texts() == expected["ticket_id"].tolist()
    assert page.locator("td.rank").all_inner_texts()[:3] == ["1", "2", "3"]
    page.screenshot(path=tmp_path / "queue.png")
    assert (tmp_path / "queue.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("CSAT_TRIAGE_SCREENSHOT") == "1":
        SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(tmp_path / "queue.png", SCREENSHOT)

    # Filter by one group with the form.
    group = expected["group"].iloc[0]
    page.select_option("select[name=group]", group)
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(f"**/?*group={group}*")
    shown = page.locator("td.group").all_inner_texts()
    assert shown and set(shown) == {group}
    assert len(shown) == min(len(store.queue(group=group)), 100)
    shown_ids = page.locator("td.ticket a").all_inner_texts()

    # At phone width the rows become cards: nothing wider than the screen.
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert not page.locator("table.queue thead").is_visible()
    page.set_viewport_size({"width": 1280, "height": 860})

    # One ticket open since the first run: its values, reasons and three runs of history.
    runs_per_ticket = read_history(db)["ticket_id"].value_counts()
    ticket = next(t for t in shown_ids if runs_per_ticket.get(t) == 3)
    page.locator(f'td.ticket a[href="/tickets/{ticket}"]').click()
    page.wait_for_url(f"**/tickets/{ticket}")
    assert page.locator("h1").inner_text() == f"Ticket {ticket}"
    assert page.locator("svg.chart circle").count() == 3

    # Feedback: the "Disagree" button posts it, the page reloads and lists it, the database has it.
    page.fill("input[name=agent]", "Mina Park")
    page.fill("textarea[name=note]", "Customer already got a refund by phone")
    page.get_by_role("button", name="Disagree").click()
    page.locator(".feedback-list .verdict.disagree").wait_for()
    assert "Customer already got a refund by phone" in page.locator(".feedback-list").inner_text()
    stored = store.feedback_for(ticket)
    latest_run = int(store.runs()["run_id"].max())
    assert stored[["verdict", "agent", "run_id"]].values.tolist() == [["disagree", "Mina Park", latest_run]]
    page.close()


def test_monitoring_page_in_a_real_browser(browser, base_url, monitoring_report, tmp_path):
    report = json.loads(monitoring_report.read_text())
    judged = [r for r in report["runs"] if r["roc_auc"] is not None]
    assert len(judged) >= 2  # else the chart has no trend to show
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    page.goto(base_url + "/")
    page.get_by_role("link", name="Monitoring").click()  # the header link
    page.wait_for_url("**/monitoring")
    chart = page.locator("svg.chart.trend")
    assert chart.is_visible() and chart.bounding_box()["height"] > 100
    assert page.locator("svg.chart.trend circle.dot.auc").count() == len(judged)
    latest = judged[-1]
    assert page.locator("table.runs tbody tr").count() == len(report["runs"])
    first_row = page.locator("table.runs tbody tr").first.inner_text()
    assert str(report["runs"][-1]["run_id"]) in first_row  # newest first
    assert f"{latest['roc_auc']:.3f}" in page.locator("table.runs").inner_text()
    page.screenshot(path=tmp_path / "monitoring.png", full_page=True)
    assert (tmp_path / "monitoring.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("CSAT_TRIAGE_SCREENSHOT") == "1":
        shutil.copyfile(tmp_path / "monitoring.png", MONITORING_SCREENSHOT)
    # At phone width the wide runs table scrolls inside its card; the page itself does not.
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.close()
