"""The Zendesk pusher (pipeline.sinks.zendesk_push) against a scripted HTTP server on 127.0.0.1.

Nothing in requests or urllib3 is mocked: the pusher's Session talks to a real local
server that imitates update_many -> job_status and job polling, and is scripted per PUT
to answer 429 with Retry-After, 5xx, redirects, dropped or hung connections. Most tests
pass a fake sleep, which records the waits urllib3's Retry asks for without waiting;
the Retry-After test sleeps for real and lets the server measure the gap.
"""

from __future__ import annotations

import base64
import email.utils
import json
import logging
import re
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from pipeline.core.errors import ExportError
from pipeline.sinks import zendesk_payload, zendesk_push
from tests.conftest import scored_frame

EMAIL = "ops@example.com"
TOKEN = "zd-TEST-token-8f3a91c2"
ENCODED = base64.b64encode(f"{EMAIL}/token:{TOKEN}".encode()).decode()
GAVE_UP_TAIL = "re-run the push later: finished batches are skipped"


class FakeZendesk:
    """update_many + job_statuses on 127.0.0.1, scripted per PUT; shuts itself down.

    ``put_script`` holds one action per PUT, in order (later PUTs succeed):
    ``("status", code, headers)`` answers with that status, ``("drop",)`` closes the
    connection without answering, ``("hang", seconds)`` waits, then drops. A job is
    ``working`` on its first poll and ``completed`` on the second; tickets in ``fail_ids``
    come back with an error. Every request is recorded with its arrival time.
    """

    def __init__(self, put_script=(), fail_ids=(), always_fail=None, failed_jobs=()):
        self.put_script = list(put_script)
        self.failed_jobs = set(failed_jobs)
        self.always_fail = always_fail
        self.fail_ids = set(fail_ids)
        self.requests: list[dict] = []
        self.jobs: dict[str, dict] = {}
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self._watchdog = threading.Timer(30.0, self.server.shutdown)  # never outlive a hung test

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def puts(self) -> list[dict]:
        return [r for r in self.requests if r["method"] == "PUT"]

    def __enter__(self):
        self._thread.start()
        self._watchdog.daemon = True
        self._watchdog.start()
        return self

    def __exit__(self, *exc):
        self._watchdog.cancel()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

    def _record(self, method, path, body, headers):
        self.requests.append({"method": method, "path": path, "body": body, "at": time.monotonic(),
                              "auth": headers.get("Authorization")})

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def _reply(self, code, document, headers=None):
                body = json.dumps(document).encode()
                self.send_response(code)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_PUT(self):
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                with fake._lock:
                    fake._record("PUT", self.path, body, self.headers)
                    action = fake.put_script.pop(0) if fake.put_script else fake.always_fail
                    if action is None:
                        job_id = f"job{len(fake.jobs) + 1}"
                        fake.jobs[job_id] = {"polls": 0, "ids": [t["id"] for t in body["tickets"]]}
                if action is not None and action[0] == "hang":
                    time.sleep(action[1])
                if action is not None and action[0] in ("drop", "hang"):
                    self.close_connection = True
                    return
                if action is not None:
                    self._reply(action[1], {"error": "scripted"}, action[2] if len(action) > 2 else None)
                    return
                self._reply(200, {"job_status": {"id": job_id, "status": "queued", "total": len(body["tickets"])}})

            def do_GET(self):
                with fake._lock:
                    fake._record("GET", self.path, None, self.headers)
                    job_id = self.path.rsplit("/", 1)[-1].removesuffix(".json")
                    job = fake.jobs.get(job_id)
                    if job is not None:
                        job["polls"] += 1
                if job is None:
                    self._reply(404, {"error": "RecordNotFound"})
                    return
                if job["polls"] < 2:
                    self._reply(200, {"job_status": {"id": job_id, "status": "working"}})
                    return
                if job_id in fake.failed_jobs:
                    self._reply(200, {"job_status": {"id": job_id, "status": "failed",
                                                     "message": "Invalid custom field id"}})
                    return
                results = [
                    {"id": i, "error": "TicketUpdateFailed", "details": "closed"} if i in fake.fail_ids
                    else {"id": i, "action": "update", "success": True, "status": "Updated"}
                    for i in job["ids"]
                ]
                self._reply(200, {"job_status": {"id": job_id, "status": "completed", "results": results}})

        return Handler


@pytest.fixture
def credentials(monkeypatch):
    monkeypatch.setenv(zendesk_push.ENV_EMAIL, EMAIL)
    monkeypatch.setenv(zendesk_push.ENV_TOKEN, TOKEN)




def payload_file(tmp_path: Path, tickets: int, batch_size: int) -> Path:
    batches = zendesk_payload.build_update_many_payload(scored_frame(tickets), 360012, "m-7", batch_size=batch_size)
    return zendesk_payload.write_update_many_payload(batches, tmp_path / "payload.json")


def state_of(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "payload.json.push-state.json").read_text())


class Recorder:
    """Fake sleep + echo: remembers delays and lines; can raise after N sleeps (a 'kill')."""

    def __init__(self, kill_on_sleep: int | None = None):
        self.sleeps: list[float] = []
        self.lines: list[str] = []
        self.kill_on_sleep = kill_on_sleep

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self.kill_on_sleep is not None and len(self.sleeps) == self.kill_on_sleep:
            raise KeyboardInterrupt

    def echo(self, line: str) -> None:
        self.lines.append(line)


def push(path, server, recorder, **kwargs):
    return zendesk_push.push_update_many(
        path, "example", base_url=server.base_url, poll_interval_s=0.5,
        sleep=recorder.sleep, echo=recorder.echo, **kwargs,
    )


def test_push_sends_every_batch_with_token_auth_and_waits_for_jobs(tmp_path, credentials):
    path = payload_file(tmp_path, 6, batch_size=4)
    recorder = Recorder()
    with FakeZendesk(fail_ids={1001}) as server:
        summary = push(path, server, recorder)
    batches = json.loads(path.read_text())["batches"]
    assert [r["body"] for r in server.puts] == batches
    assert {r["path"] for r in server.puts} == {"/api/v2/tickets/update_many.json"}
    assert {r["auth"] for r in server.requests} == {"Basic " + ENCODED}
    assert (summary.batches_total, summary.batches_sent, summary.tickets_sent) == (2, 2, 6)
    assert (summary.ticket_errors, summary.failed_ticket_ids) == (1, [1001])
    assert (summary.retries, summary.rate_limited) == (0, 0)
    assert recorder.sleeps == [0.5] * 4  # two waits per job: queued -> working -> completed
    state = state_of(tmp_path)
    assert sorted(state["completed"]) == ["0", "1"] and state["submitted"] == {}


def test_push_honours_retry_after_and_backs_off_on_5xx_and_dropped_connections(tmp_path, credentials):
    path = payload_file(tmp_path, 2, batch_size=100)
    recorder = Recorder()
    script = [("status", 429, {"Retry-After": "7"}), ("status", 500), ("drop",)]
    with FakeZendesk(put_script=script) as server:
        summary = push(path, server, recorder)
    assert len(server.puts) == 4
    # 429 -> Retry-After 7 s; 500 -> 2 s (urllib3: factor 1 * 2**1); dropped -> 4 s; then two job polls.
    assert recorder.sleeps == [7.0, 2.0, 4.0, 0.5, 0.5]
    assert (summary.retries, summary.rate_limited, summary.batches_sent) == (3, 1, 1)
    assert "batch 1/1: HTTP 429 rate limited; retry 1/5 in 7s" in recorder.lines
    assert "batch 1/1: HTTP 500; retry 2/5 in 2s" in recorder.lines
    assert "batch 1/1: connection failed (RemoteDisconnected); retry 3/5 in 4s" in recorder.lines


def test_retry_after_is_waited_for_before_the_retry(tmp_path, credentials):
    path = payload_file(tmp_path, 2, batch_size=100)
    recorder = Recorder()
    with FakeZendesk(put_script=[("status", 429, {"Retry-After": "1"})]) as server:
        summary = zendesk_push.push_update_many(  # the real time.sleep
            path, "example", base_url=server.base_url, poll_interval_s=0.01, echo=recorder.echo)
    first, second = server.puts
    assert 1.0 <= second["at"] - first["at"] < 5.0
    assert (summary.retries, summary.rate_limited, summary.batches_sent) == (1, 1, 1)


@pytest.mark.parametrize(("max_retries", "sleeps"), [(0, []), (2, [2.0]), (3, [2.0, 4.0])],
                         ids=["0-retries", "2-retries", "3-retries"])
def test_push_gives_up_after_bounded_retries_with_a_clear_error(tmp_path, credentials, max_retries, sleeps):
    path = payload_file(tmp_path, 2, batch_size=100)
    recorder = Recorder()
    with FakeZendesk(always_fail=("status", 503)) as server, pytest.raises(ExportError) as err:
        push(path, server, recorder, max_retries=max_retries)
    assert len(server.puts) == max_retries + 1
    assert recorder.sleeps == sleeps  # urllib3 retries once at once, then backs off 2, 4 ... s
    assert str(err.value) == f"batch 1/1: gave up after {max_retries + 1} attempts (HTTP 503); {GAVE_UP_TAIL}"


def test_dropped_connections_are_retried_a_bounded_number_of_times(tmp_path, credentials):
    path = payload_file(tmp_path, 2, batch_size=100)
    with FakeZendesk(always_fail=("drop",)) as server, pytest.raises(ExportError) as err:
        push(path, server, Recorder(), max_retries=2)
    assert len(server.puts) == 3
    assert str(err.value) == f"batch 1/1: gave up after 3 attempts (connection failed (RemoteDisconnected)); {GAVE_UP_TAIL}"


def test_every_request_has_a_timeout(tmp_path, credentials, monkeypatch):
    monkeypatch.setattr(zendesk_push, "HTTP_TIMEOUT_SECONDS", 0.2)
    path = payload_file(tmp_path, 2, batch_size=100)
    started = time.monotonic()
    with FakeZendesk(always_fail=("hang", 1.0)) as server:
        with pytest.raises(ExportError) as err:
            push(path, server, Recorder(), max_retries=1)
        waited = time.monotonic() - started
    assert len(server.puts) == 2 and waited < 1.0 + 0.5  # did not wait for the hung answers
    assert str(err.value) == f"batch 1/1: gave up after 2 attempts (connection failed (ReadTimeoutError)); {GAVE_UP_TAIL}"


@pytest.mark.parametrize("form", ["seconds", "http-date"])
def test_a_too_long_retry_after_stops_with_a_resume_time_and_keeps_the_state(tmp_path, credentials, form):
    retry_after = "3600" if form == "seconds" else email.utils.format_datetime(
        datetime.now(UTC) + timedelta(hours=2), usegmt=True)
    path = payload_file(tmp_path, 8, batch_size=4)
    batches = json.loads(path.read_text())["batches"]
    recorder = Recorder()
    script = [None, ("status", 429, {"Retry-After": retry_after})]
    with FakeZendesk(put_script=script) as server, pytest.raises(ExportError) as err:
        push(path, server, recorder)
    assert len(server.puts) == 2        # the 429 was not retried ...
    assert recorder.sleeps == [0.5, 0.5]  # ... nor waited for: only batch 1's job polls
    message = str(err.value)
    found = re.fullmatch(r"batch 2/2: HTTP 429 rate limited, Zendesk asks to wait (\d+)s \(over 900s\); "
                         r"re-run the push after (\d{4}-\d\d-\d\d \d\d:\d\d) UTC: finished batches are skipped",
                         message)
    assert found, message
    resume = datetime.strptime(found[2], "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
    expected = datetime.now(UTC) + timedelta(seconds=int(found[1]))
    assert abs((resume - expected).total_seconds()) <= 120 and int(found[1]) >= 3500
    assert list(state_of(tmp_path)["completed"]) == ["0"]

    with FakeZendesk() as server:
        summary = push(path, server, Recorder())
    assert [r["body"] for r in server.puts] == batches[1:]
    assert (summary.batches_skipped, summary.batches_sent) == (1, 1)


@pytest.mark.parametrize("code", [302, 307])
def test_a_redirect_is_not_followed_and_the_other_host_never_sees_the_token(tmp_path, credentials, code):
    path = payload_file(tmp_path, 2, batch_size=100)
    with FakeZendesk() as elsewhere:
        target = elsewhere.base_url + "/api/v2/tickets/update_many.json"
        with FakeZendesk(put_script=[("status", code, {"Location": target})]) as server, \
                pytest.raises(ExportError) as err:
            push(path, server, Recorder())
    assert elsewhere.requests == []
    assert len(server.puts) == 1
    port = elsewhere.server.server_address[1]
    assert str(err.value) == (
        f"batch 1/1: Zendesk answered HTTP {code} redirecting to 127.0.0.1:{port}; not followed, "
        "the API token goes only to the configured host; check the subdomain or base URL"
    )


def test_the_token_is_attached_only_for_the_configured_host():
    auth = zendesk_push._TokenAuth("Basic " + ENCODED, "https://example.zendesk.com")
    own = auth(requests.Request("GET", "https://example.zendesk.com/api/v2/job_statuses/1.json").prepare())
    other = auth(requests.Request("GET", "https://example.zendesk.com.evil.test/api").prepare())
    assert own.headers["Authorization"] == "Basic " + ENCODED
    assert "Authorization" not in other.headers


def test_push_resumes_after_a_failed_run_without_resending_finished_batches(tmp_path, credentials):
    path = payload_file(tmp_path, 10, batch_size=4)  # batches of 4, 4, 2
    batches = json.loads(path.read_text())["batches"]
    with FakeZendesk(put_script=[None, ("status", 500)]) as server, \
            pytest.raises(ExportError, match="batch 2/3: gave up after 1 attempts"):
        push(path, server, Recorder(), max_retries=0)
    assert len(server.puts) == 2

    recorder = Recorder()
    with FakeZendesk() as server:
        summary = push(path, server, recorder)
    assert [r["body"] for r in server.puts] == batches[1:]
    assert (summary.batches_skipped, summary.batches_sent) == (1, 2)
    assert "resuming: 1 batches already done" in recorder.lines


def test_push_killed_while_polling_resumes_the_job_instead_of_resending(tmp_path, credentials):
    path = payload_file(tmp_path, 10, batch_size=4)
    batches = json.loads(path.read_text())["batches"]
    with FakeZendesk() as server:
        # Sleeps 1-2 wait for batch 1's job; sleep 3 is batch 2's first wait: killed there.
        with pytest.raises(KeyboardInterrupt):
            push(path, server, Recorder(kill_on_sleep=3))
        assert len(server.puts) == 2
        state = state_of(tmp_path)
        assert list(state["completed"]) == ["0"] and state["submitted"] == {"1": "job2"}

        recorder = Recorder()
        summary = push(path, server, recorder)
    assert [r["body"] for r in server.puts] == batches  # batch 2 was not sent twice
    assert (summary.batches_skipped, summary.jobs_resumed, summary.batches_sent) == (1, 1, 1)
    assert any("resuming earlier job job2" in line for line in recorder.lines)


def test_an_expired_job_in_the_state_file_means_the_batch_is_sent_again(tmp_path, credentials):
    path = payload_file(tmp_path, 2, batch_size=100)
    batches = json.loads(path.read_text())["batches"]
    (tmp_path / "payload.json.push-state.json").write_text(json.dumps(
        {"payload_sha256": zendesk_push._payload_hash(batches), "completed": {}, "submitted": {"0": "old7"}}))
    recorder = Recorder()
    with FakeZendesk() as server:
        summary = push(path, server, recorder)
    assert server.requests[0]["path"] == "/api/v2/job_statuses/old7.json"  # 404: Zendesk forgot it
    assert (summary.jobs_resumed, summary.batches_sent) == (0, 1)
    assert "batch 1/1: earlier job old7 is gone; sending the batch again" in recorder.lines


def test_failed_job_is_a_clear_error_and_the_batch_is_sent_again_next_run(tmp_path, credentials):
    path = payload_file(tmp_path, 2, batch_size=100)
    with FakeZendesk(failed_jobs={"job1"}) as server:
        with pytest.raises(ExportError) as err:
            push(path, server, Recorder())
        assert str(err.value) == ("batch 1/1: Zendesk job job1 failed (Invalid custom field id); "
                                  "check the payload, then re-run the push")
        state = state_of(tmp_path)
        assert state["submitted"] == {} and state["completed"] == {}
        summary = push(path, server, Recorder())
    assert len(server.puts) == 2 and summary.batches_sent == 1


def test_push_restarts_when_the_payload_changed(tmp_path, credentials):
    path = payload_file(tmp_path, 4, batch_size=4)
    with FakeZendesk() as server:
        push(path, server, Recorder())
        batches = zendesk_payload.build_update_many_payload(scored_frame(4), 360012, "m-7", risk_bands={"x": 0})
        zendesk_payload.write_update_many_payload(batches, path)
        recorder = Recorder()
        summary = push(path, server, recorder)
    assert summary.batches_sent == 1 and len(server.puts) == 2
    assert any("another payload" in line for line in recorder.lines)


def test_token_never_appears_in_output_errors_or_logs(tmp_path, credentials, caplog):
    caplog.set_level(logging.DEBUG)  # urllib3 and requests log connections and retries
    path = payload_file(tmp_path, 2, batch_size=100)
    recorder = Recorder()
    messages = []
    with FakeZendesk(put_script=[("status", 429, {"Retry-After": "1"}), ("drop",)],
                     always_fail=("status", 401)) as server:
        with pytest.raises(ExportError) as err:
            push(path, server, recorder)
        messages.append(str(err.value))
        with pytest.raises(ExportError) as err:
            push(path, server, recorder, max_retries=0)
        messages.append(str(err.value))
    assert "refused the credentials (HTTP 401)" in messages[0]
    assert len(recorder.lines) >= 2 and "Retrying" in caplog.text  # there was something to leak
    for text in [*recorder.lines, *messages, caplog.text]:
        assert TOKEN not in text and ENCODED not in text


def test_missing_credentials_name_the_variables(tmp_path, monkeypatch):
    monkeypatch.delenv(zendesk_push.ENV_EMAIL, raising=False)
    monkeypatch.delenv(zendesk_push.ENV_TOKEN, raising=False)
    path = payload_file(tmp_path, 2, batch_size=100)
    with pytest.raises(ExportError, match="set ZENDESK_EMAIL and ZENDESK_API_TOKEN in the environment"):
        zendesk_push.push_update_many(path, "example", sleep=Recorder().sleep, echo=Recorder().echo)


def test_dry_run_prints_changes_per_batch_without_network(tmp_path, monkeypatch):
    monkeypatch.delenv(zendesk_push.ENV_TOKEN, raising=False)  # not needed for a dry run
    path = payload_file(tmp_path, 6, batch_size=4)
    recorder = Recorder()
    with FakeZendesk() as server:
        summary = push(path, server, recorder, dry_run=True)
    assert server.requests == []
    assert summary.dry_run and summary.batches_sent == 0
    assert not (tmp_path / "payload.json.push-state.json").exists()
    assert recorder.lines[0] == ("batch 1/2: 4 tickets; +csat_p1 1, +csat_p2 1, +csat_p3 1, +csat_p4 1, "
                                 "+csat_risk_high 1, +csat_risk_low 1, +csat_risk_medium 2; field 360012 on 4")
    assert recorder.lines[-1].startswith("dry run: would update 6 tickets in 2 batches; +csat_p1 2,")


def test_dry_run_warns_when_the_risk_field_is_still_the_placeholder(tmp_path, monkeypatch):
    monkeypatch.delenv(zendesk_push.ENV_TOKEN, raising=False)
    batches = zendesk_payload.build_update_many_payload(
        scored_frame(3), zendesk_payload.PLACEHOLDER_RISK_FIELD_ID, "m-7", batch_size=100)
    path = zendesk_payload.write_update_many_payload(batches, tmp_path / "payload.json")
    recorder = Recorder()
    with FakeZendesk() as server:
        push(path, server, recorder, dry_run=True)
    assert server.requests == []
    warnings = [line for line in recorder.lines if line.startswith("warning:")]
    assert len(warnings) == 1 and "\n" not in warnings[0]
    # A configured field id gives no such line.
    recorder = Recorder()
    with FakeZendesk() as server:
        push(payload_file(tmp_path, 3, batch_size=100), server, recorder, dry_run=True)
    assert not [line for line in recorder.lines if line.startswith("warning:")]


def test_plain_http_is_refused_off_this_machine(tmp_path, credentials):
    path = payload_file(tmp_path, 2, batch_size=100)
    with pytest.raises(ExportError, match="must use https"):
        zendesk_push.push_update_many(path, "example", base_url="http://example.zendesk.com",
                                      sleep=Recorder().sleep, echo=Recorder().echo)
    with pytest.raises(ExportError, match="not a Zendesk subdomain"):
        zendesk_push.push_update_many(path, "evil.com/x?", sleep=Recorder().sleep, echo=Recorder().echo)
