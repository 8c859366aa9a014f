"""The queue page (FastAPI TestClient): pages, filters, API shape and order, feedback, access, logs, startup errors.

The database holds a hand-written queue written by two scoring runs, so each ticket's
history, rank and feedback are known in advance:

- run 1: B (P1, rank 1), A (P1, rank 2), C (P4, rank 3)
- run 2: A (P1, rank 1), D (P2, rank 2), B (P3, rank 3); C was solved and left the queue
"""

from __future__ import annotations

import logging
import re
import subprocess
import sys

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from pipeline.cli import app as cli
from pipeline.core.errors import UserError
from pipeline.sinks.web import create_app
from pipeline.sinks.web import server as web_server
from pipeline.sinks.web.app import COOKIE, session_value
from pipeline.sinks.web.present import API_COLUMNS, history_chart
from pipeline.sinks.web.server import listen
from pipeline.sinks.writeback import QueueStore, feedback, metadata, scoring_runs, ticket_priorities, write_queue
from tests.pipeline.sinks.test_writeback import queue_frame, run_for

TOKEN = "s3cret-token-for-tests"
RUN_1 = queue_frame(
    {"ticket_id": "B", "rank": 1, "tier": "P1", "risk": 72, "priority_score": 70.0, "group": "technical",
     "assignee": "agent_002", "scored_at": "2026-03-01T10:00:00+00:00"},
    {"ticket_id": "A", "rank": 2, "tier": "P1", "risk": 61, "priority_score": 62.0,
     "scored_at": "2026-03-01T10:00:00+00:00"},
    {"ticket_id": "C", "rank": 3, "tier": "P4", "risk": 10, "priority_score": 9.0, "assignee": None, "reasons": "",
     "scored_at": "2026-03-01T10:00:00+00:00"},
)
RUN_2 = queue_frame(
    {"ticket_id": "A", "rank": 1, "tier": "P1", "risk": 90, "p_bad": 0.9, "priority_score": 81.0,
     "reasons": "고객이 화가 났어요; reopened twice", "current_wait_minutes": 1560.0, "model_version": "fedcba987654"},
    {"ticket_id": "D", "rank": 2, "tier": "P2", "risk": 55, "priority_score": 50.0, "group": "technical",
     "assignee": None, "current_wait_minutes": 45.0, "model_version": "fedcba987654"},
    {"ticket_id": "B", "rank": 3, "tier": "P3", "risk": 30, "priority_score": 25.0, "group": "technical",
     "assignee": "agent_002", "current_wait_minutes": 0.0, "model_version": "fedcba987654"},
)


@pytest.fixture
def db(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'queue.sqlite'}"
    write_queue(url, RUN_1, run_for(RUN_1))
    write_queue(url, RUN_2, {**run_for(RUN_2), "model_version": "fedcba987654",
                             "scored_at": "2026-03-02T10:00:00+00:00"})
    return url


@pytest.fixture
def store(db):
    store = QueueStore.open(db)
    yield store
    store.close()


@pytest.fixture
def client(store):
    with TestClient(create_app(store)) as client:
        yield client


def ticket_order(html: str) -> list[str]:
    """Ticket ids in the order the queue table links them."""
    return re.findall(r'<td class="ticket"><a href="/tickets/([^"]+)">', html)


def feedback_rows(url: str) -> list[dict]:
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        rows = [dict(r) for r in connection.execute(sa.select(feedback).order_by(feedback.c.feedback_id)).mappings()]
    engine.dispose()
    return rows


# ---------------------------------------------------------------- the queue page


def test_queue_page_shows_the_queue_in_rank_order(client):
    response = client.get("/")
    assert response.status_code == 200
    html = response.text
    assert ticket_order(html) == ["A", "D", "B"]
    first = html[html.index('href="/tickets/A"'):html.index('href="/tickets/D"')]
    for value in ('class="pill p1">P1', ">90<", "26 h", "billing", "agent_001", "<li>고객이 화가 났어요</li>",
                  "<li>reopened twice</li>"):
        assert value in first, value
    row_d = html[html.index('href="/tickets/D"'):html.index('href="/tickets/B"')]
    assert "45 min" in row_d and "unassigned" in row_d
    assert "3 tickets · scored as of 2026-03-02 10:00 UTC" in html  # the latest run


@pytest.mark.parametrize(("query", "expected"), [
    ("group=technical", ["D", "B"]),
    ("assignee=agent_002", ["B"]),
    ("tier=P1", ["A"]),
    ("group=technical&tier=P3", ["B"]),
    ("ticket=d", ["D"]),  # any part of the id, in any case
    ("ticket=x", []),
    ("ticket=%25", []),  # a literal %, not a wildcard
    ("group=&assignee=&tier=&ticket=", ["A", "D", "B"]),  # the form's "All" choices
    ("group=nobody", []),
])
def test_queue_page_filters(client, query, expected):
    html = client.get(f"/?{query}").text
    assert ticket_order(html) == expected
    if not expected:
        assert "No tickets match these filters." in html


def test_queue_page_counts_tiers_and_limits_rows(client):
    html = client.get("/?limit=1").text
    assert ticket_order(html) == ["A"]
    assert "Showing 1 of 3 tickets" in html and "Show 100 more" in html
    counts = dict(re.findall(r'<span class="tier-name">(P\d)</span>\s*<span class="tier-count">(\d+)</span>', html))
    assert counts == {"P1": "1", "P2": "1", "P3": "1", "P4": "0"}
    assert client.get("/?limit=0").status_code == 422


def test_a_new_scoring_run_shows_at_the_next_request(client, db):
    assert ticket_order(client.get("/").text) == ["A", "D", "B"]
    tonight = queue_frame({"ticket_id": "E", "rank": 1, "tier": "P1"}, {"ticket_id": "A", "rank": 2})
    write_queue(db, tonight, run_for(tonight))
    assert ticket_order(client.get("/").text) == ["E", "A"]


def test_api_columns_are_the_scored_queues_columns():
    """present takes them from the database table so that `serve` need not import models.scoring."""
    from models.scoring import QUEUE_EXTRA_COLUMNS, SCORE_COLUMNS

    assert API_COLUMNS == (*SCORE_COLUMNS, *QUEUE_EXTRA_COLUMNS)


# ---------------------------------------------------------------- the API


def test_api_queue_returns_the_output_columns_in_rank_order(client):
    rows = client.get("/api/queue").json()
    assert [r["ticket_id"] for r in rows] == ["A", "D", "B"]
    assert all(list(r) == list(API_COLUMNS) for r in rows)
    a = rows[0]
    assert (a["rank"], a["tier"], a["risk"], a["p_bad"], a["priority_score"]) == (1, "P1", 90, 0.9, 81.0)
    assert a["reasons"] == "고객이 화가 났어요; reopened twice" and a["current_wait_minutes"] == 1560.0
    assert rows[1]["assignee"] is None  # NULL, not "None" or NaN
    assert [r["ticket_id"] for r in client.get("/api/queue?limit=2").json()] == ["A", "D"]
    assert [r["ticket_id"] for r in client.get("/api/queue?group=technical").json()] == ["D", "B"]
    assert [r["ticket_id"] for r in client.get("/api/queue?assignee=agent_002").json()] == ["B"]
    assert [r["ticket_id"] for r in client.get("/api/queue?tier=P2").json()] == ["D"]
    assert client.get("/api/queue?group=nobody").json() == []
    assert client.get("/api/queue?limit=0").status_code == 422


def test_api_ticket_returns_values_history_and_feedback(client):
    body = client.get("/api/tickets/A").json()
    assert body["ticket"]["rank"] == 1
    assert [(h["run_id"], h["rank"], h["tier"]) for h in body["history"]] == [(1, 2, "P1"), (2, 1, "P1")]
    assert body["feedback"] == []
    assert client.get("/api/tickets/nope").status_code == 404


# ---------------------------------------------------------------- one ticket


def test_ticket_page_shows_values_reasons_history_and_feedback(client):
    client.post("/api/tickets/A/feedback", json={"verdict": "disagree", "agent": "mina", "note": "already refunded"})
    response = client.get("/tickets/A")
    assert response.status_code == 200
    html = response.text
    assert "Ticket A" in html and "rank 1 of 3" in html
    for value in (">81<", ">90<", "p_bad 0.90", "26 h", "billing", "agent_001",  # the current values
                  "<li>고객이 화가 났어요</li>", "<li>reopened twice</li>",  # the reasons
                  "2026-03-01 10:00 UTC", "2026-03-02 10:00 UTC", "All 2 runs",  # both runs in the history
                  "<polyline", "mina", "already refunded", "fedcba987654"):  # chart, feedback
        assert value in html, value
    history = html[html.index('<table class="history">'):]
    assert history.index("2026-03-02") < history.index("2026-03-01")  # newest run first


def test_a_ticket_that_left_the_queue_still_shows_its_history(client):
    html = client.get("/tickets/C").text
    assert "not in the current queue" in html and "2026-03-01 10:00 UTC" in html


def test_score_chart_is_not_clipped_above_100():
    """An overdue ticket's priority score can pass 100 (the SLA tail): the axis grows to show it."""
    history = RUN_1.head(3).assign(run_id=[1, 2, 3], priority_score=[60.0, 100.0, 180.0], risk=[50, 70, 90])
    chart = history_chart(history)
    ys = [d["y"] for d in chart["dots"]]
    assert ys[0] > ys[1] > ys[2]  # 100 and 180 are at different heights (SVG y grows downwards)
    assert [g["label"] for g in chart["grid"]] == [0, 50, 100, 150, 200]
    inside = (24, chart["height"] - 24)
    assert all(inside[0] <= y <= inside[1] for y in ys)
    assert ys[2] == pytest.approx(inside[1] - 180 / 200 * (inside[1] - inside[0]), abs=0.1)
    # Scores within 0-100 keep the 0-100 axis.
    assert [g["label"] for g in history_chart(history.head(2))["grid"]] == [0, 50, 100]


def test_unknown_ticket_page_is_404(client):
    response = client.get("/tickets/nope")
    assert response.status_code == 404 and "in no scored queue" in response.text


# ---------------------------------------------------------------- feedback


def test_feedback_is_stored_with_the_tickets_latest_scoring(client, db):
    response = client.post("/api/tickets/A/feedback", json={"verdict": "agree", "agent": " mina ", "note": "fine"})
    assert response.status_code == 201
    assert response.json()["feedback_id"] == 1
    response = client.post("/api/tickets/C/feedback", json={"verdict": "handled", "agent": "jun"})
    assert response.status_code == 201
    rows = feedback_rows(db)
    assert [(r["ticket_id"], r["verdict"], r["agent"], r["note"], r["model_version"], r["run_id"]) for r in rows] == [
        ("A", "agree", "mina", "fine", "fedcba987654", 2),
        ("C", "handled", "jun", "", "abc123def456", 1),  # C was last scored by run 1
    ]
    assert all(r["created_at"] for r in rows)


@pytest.mark.parametrize("body", [
    {"verdict": "maybe", "agent": "mina"},
    {"verdict": "agree"},
    {"verdict": "agree", "agent": "   "},
    {"verdict": "agree", "agent": "mina", "extra": 1},
])
def test_bad_feedback_is_422_and_stores_nothing(client, db, body):
    assert client.post("/api/tickets/A/feedback", json=body).status_code == 422
    assert feedback_rows(db) == []


def test_feedback_must_be_json_so_no_cross_site_form_can_post_it(client, db):
    response = client.post("/api/tickets/A/feedback", data={"verdict": "agree", "agent": "mina"})
    assert response.status_code == 422
    assert feedback_rows(db) == []


def test_feedback_on_an_unknown_ticket_is_404(client, db):
    assert client.post("/api/tickets/nope/feedback", json={"verdict": "agree", "agent": "mina"}).status_code == 404
    assert feedback_rows(db) == []


def test_feedback_works_on_a_database_from_before_history_and_feedback(tmp_path):
    """An older database: only ticket_priorities and scoring_runs. Opening it adds the new tables."""
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    engine = sa.create_engine(url)
    metadata.create_all(engine, tables=[ticket_priorities, scoring_runs])
    with engine.begin() as connection:
        connection.execute(ticket_priorities.insert(), RUN_1.astype(object).where(RUN_1.notna(), None)
                           .to_dict(orient="records"))
        for run in (1, 2):
            connection.execute(scoring_runs.insert().values(**run_for(RUN_1), started_at=f"2026-03-0{run}"))
    engine.dispose()
    store = QueueStore.open(url)
    with TestClient(create_app(store)) as client:
        assert ticket_order(client.get("/").text) == ["B", "A", "C"]
        assert "No history yet" in client.get("/tickets/A").text
        assert client.post("/api/tickets/A/feedback", json={"verdict": "agree", "agent": "mina"}).status_code == 201
    store.close()
    row = feedback_rows(url)[0]
    assert (row["model_version"], row["run_id"]) == ("abc123def456", 2)  # the queue is the latest run's


# ---------------------------------------------------------------- access


@pytest.fixture
def guarded(store):
    with TestClient(create_app(store, token=TOKEN)) as client:
        yield client


@pytest.mark.parametrize("path", ["/", "/tickets/A", "/api/queue", "/api/tickets/A", "/nowhere", "/monitoring",
                                  "/api/monitoring"])
def test_without_the_token_every_request_is_401(guarded, path):
    response = guarded.get(path)
    assert response.status_code == 401
    assert "고객" not in response.text and "agent_001" not in response.text  # nothing of the queue leaks
    wrong = guarded.get(path, headers={"Authorization": "Bearer not-the-token"})
    assert wrong.status_code == 401
    assert guarded.get(path, headers={"Authorization": TOKEN}).status_code == 401  # no scheme


def test_html_401_offers_the_login_form_and_api_401_says_bearer(guarded):
    page = guarded.get("/tickets/A?x=1")
    assert '<form method="post" action="/login"' in page.text and 'value="/tickets/A?x=1"' in page.text
    api = guarded.get("/api/queue")
    assert api.headers["www-authenticate"] == "Bearer" and "token" in api.json()["detail"]


def test_the_right_bearer_token_is_200(guarded, db):
    headers = {"Authorization": f"Bearer {TOKEN}"}
    assert guarded.get("/", headers=headers).status_code == 200
    assert [r["ticket_id"] for r in guarded.get("/api/queue", headers=headers).json()] == ["A", "D", "B"]
    response = guarded.post("/api/tickets/A/feedback", json={"verdict": "agree", "agent": "mina"}, headers=headers)
    assert response.status_code == 201
    assert len(feedback_rows(db)) == 1


def test_login_form_sets_an_httponly_cookie_that_is_not_the_token(guarded):
    wrong = guarded.post("/login", data={"token": "nope", "next": "/"}, follow_redirects=False)
    assert wrong.status_code == 401 and "not right" in wrong.text
    assert COOKIE not in guarded.cookies
    response = guarded.post("/login", data={"token": TOKEN, "next": "/tickets/A"}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/tickets/A"
    cookie = response.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    assert TOKEN not in cookie and session_value(TOKEN) in cookie
    assert guarded.get("/").status_code == 200  # the client now sends the cookie
    assert guarded.post("/api/tickets/A/feedback", json={"verdict": "handled", "agent": "mina"}).status_code == 201
    guarded.post("/logout")
    assert guarded.get("/").status_code == 401


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "/\\evil.example"])
def test_login_never_redirects_off_site(guarded, target):
    response = guarded.post("/login", data={"token": TOKEN, "next": target}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/"


def test_without_a_token_there_is_no_login(client):
    assert client.get("/").status_code == 200
    assert client.get("/login", follow_redirects=False).headers["location"] == "/"


def test_pages_carry_security_headers(client):
    headers = client.get("/").headers
    assert "default-src 'self'" in headers["content-security-policy"]
    assert headers["cache-control"] == "no-store" and headers["x-content-type-options"] == "nosniff"


# ---------------------------------------------------------------- logs


def test_access_log_has_method_path_status_and_no_ticket_text(client, caplog):
    note = "customer threatened to cancel, see call"
    with caplog.at_level(logging.DEBUG):
        client.get("/?group=technical&ticket=A")
        client.get("/tickets/A")
        client.post("/api/tickets/A/feedback", json={"verdict": "disagree", "agent": "mina", "note": note})
        client.post("/api/tickets/A/feedback", json={"verdict": "nope", "agent": "mina", "note": note})
    lines = [r.getMessage() for r in caplog.records if r.name == "csat_triage.web.access"]
    assert lines == ["GET / 200", "GET /tickets/A 200", "POST /api/tickets/A/feedback 201",
                     "POST /api/tickets/A/feedback 422"]
    # Everything the server side logged (the test client's own request log is not the server's).
    server_side = "\n".join(logging.Formatter("%(name)s %(message)s").format(r) for r in caplog.records
                            if not r.name.startswith(("httpx", "httpcore")))
    for secret in (note, "cancel", "reopened twice", "고객", "mina", "group=technical"):
        assert secret not in server_side, secret


# ---------------------------------------------------------------- startup


def test_serve_on_a_missing_sqlite_file_is_one_line_and_creates_nothing(tmp_path):
    path = tmp_path / "nowhere" / "queue.sqlite"
    result = CliRunner().invoke(cli, ["serve", "--db", f"sqlite:///{path}"])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "no such SQLite file" in result.stderr and "Traceback" not in result.output
    assert not path.exists() and not path.parent.exists()


@pytest.mark.parametrize(("url", "message"), [
    ("not a url", "not a database URL"),
    ("nosuchdb://host/x", "no database driver"),
    ("postgresql+psycopg://reader:hunter2@127.0.0.1:1/queue", "cannot read the database"),
])
def test_serve_on_a_bad_url_is_one_line_and_hides_the_password(url, message):
    result = CliRunner().invoke(cli, ["serve", "--db", url])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and result.stderr.count("\n") == 1
    assert "hunter2" not in result.stderr


def test_serve_on_a_database_without_a_queue_says_to_score_first(tmp_path):
    path = tmp_path / "empty.sqlite"
    sa.create_engine(f"sqlite:///{path}").connect().close()  # an empty database file
    with pytest.raises(UserError, match="run `csat-triage score` first"):
        QueueStore.open(f"sqlite:///{path}")


def test_a_taken_port_is_one_line(tmp_path):
    taken = listen("127.0.0.1", 0)
    try:
        with pytest.raises(UserError, match="cannot listen there"):
            listen("127.0.0.1", taken.getsockname()[1])
    finally:
        taken.close()


def test_serve_takes_the_token_from_the_environment(db, monkeypatch):
    """`serve` end to end except the network loop: the app it would run requires the env token."""
    served = {}

    class NoLoop:
        def __init__(self, app) -> None:
            served["app"] = app

        def run(self, sockets) -> None:
            served["port"] = sockets[0].getsockname()[1]
            sockets[0].close()

    monkeypatch.setattr(web_server, "uvicorn_server", NoLoop)
    monkeypatch.setenv("CSAT_TRIAGE_TOKEN", f" {TOKEN}\n")  # stray spaces and newline from a secrets file
    lines = []
    web_server.serve(db, "127.0.0.1", 0, echo=lines.append)
    assert served["port"] > 0 and f"http://127.0.0.1:{served['port']}/" in lines[0]
    assert "token required" in lines[0] and TOKEN not in lines[0]
    with TestClient(served["app"]) as client:
        assert client.get("/api/queue").status_code == 401
        assert client.get("/api/queue", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


# ---------------------------------------------------------------- HEAD


@pytest.mark.parametrize(("path", "status"), [("/", 200), ("/?tier=P1", 200), ("/tickets/A", 200), ("/monitoring", 200),
                                              ("/api/queue", 200), ("/static/style.css", 200), ("/tickets/nope", 404)])
def test_head_answers_like_get_without_a_body(client, path, status):
    get, head = client.get(path), client.head(path)
    assert head.status_code == get.status_code == status
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]
    assert head.headers["content-length"] == str(len(get.content))


def test_head_needs_the_token_and_is_logged_as_head(guarded, caplog):
    with caplog.at_level(logging.INFO):
        assert guarded.head("/").status_code == 401
        assert guarded.head("/", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    lines = [r.getMessage() for r in caplog.records if r.name == "csat_triage.web.access"]
    assert lines == ["HEAD / 401", "HEAD / 200"]


def test_head_on_a_post_only_path_is_405(client):
    assert client.head("/logout").status_code == 405


# ---------------------------------------------------------------- start-up weight


def test_serve_does_not_import_lightgbm():
    """`serve` imports the CLI and the web package only; LightGBM (and scikit-learn) would add seconds."""
    code = ("import sys, pipeline.cli, pipeline.sinks.web, pipeline.sinks.web.server; "
            "print(sorted(m for m in ('lightgbm', 'sklearn', 'models.scoring') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
