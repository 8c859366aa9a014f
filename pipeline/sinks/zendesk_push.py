"""Sending ``update_many`` batches to Zendesk, with bounded retries and a resumable state file.

HTTP goes through a ``requests.Session`` retrying with urllib3's ``Retry``; a subclass adds a
refusal of long Retry-After waits, a line per retry, and the counts for the summary.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import re
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import InvalidHeader
from urllib3.util.retry import Retry

from pipeline.core.errors import ExportError
from pipeline.core.io import write_json
from pipeline.sinks.zendesk_payload import UPDATE_MANY_MAX_TICKETS, payload_warning

if TYPE_CHECKING:
    from urllib3.response import BaseHTTPResponse

JOB_DONE = "completed"
JOB_FAILED = ("failed", "killed")
MAX_JOB_POLLS = 600
BACKOFF_FACTOR = 1.0  # urllib3: no wait before the first retry, then 2, 4, 8 ... s
MAX_BACKOFF_SECONDS = 60.0
MAX_RETRY_AFTER_SECONDS = 900.0
HTTP_TIMEOUT_SECONDS = 30.0
# 409: Zendesk's answer when another update of the same tickets is in progress; try again.
RETRY_STATUSES = (409, 429, 500, 502, 503, 504)
ENV_EMAIL = "ZENDESK_EMAIL"
ENV_TOKEN = "ZENDESK_API_TOKEN"


@dataclass
class PushSummary:
    """Outcome of a push: counts of batches and tickets, retries, and per-ticket failures."""

    payload_path: str
    state_path: str
    batches_total: int
    batches_sent: int = 0
    batches_skipped: int = 0
    tickets_sent: int = 0
    ticket_errors: int = 0
    failed_ticket_ids: list[int] = field(default_factory=list)
    jobs_resumed: int = 0
    retries: int = 0
    rate_limited: int = 0
    dry_run: bool = False


def push_update_many(
    payload_path: str | os.PathLike,
    subdomain: str,
    base_url: str | None = None,
    dry_run: bool = False,
    max_retries: int = 5,
    poll_interval_s: float = 1.0,
    state_path: str | os.PathLike | None = None,
    sleep: Callable[[float], None] = time.sleep,
    echo: Callable[[str], None] = print,
) -> PushSummary:
    """Send each payload batch with ``PUT /api/v2/tickets/update_many.json`` and wait for its job.

    Credentials come only from ``ZENDESK_EMAIL`` and ``ZENDESK_API_TOKEN`` (API-token
    Basic auth), go only to the configured host (redirects are never followed) and are
    never printed. 429 and 503 answers wait ``Retry-After`` seconds (a wait longer than
    ``MAX_RETRY_AFTER_SECONDS`` stops the push, saying when to re-run); 5xx, 409 and
    dropped connections back off 0, 2, 4 ... s (max 60); each request is tried at most
    ``max_retries`` + 1 times. Progress goes to a state file beside the payload
    (``<payload>.push-state.json``: payload hash, finished batches, submitted job ids), so
    a re-run skips finished batches and re-polls a submitted job rather than sending it
    again. ``dry_run`` prints what would change and makes no call.
    """
    payload_path = Path(payload_path)
    batches = _load_payload(payload_path)
    if (warning := payload_warning(batches)) is not None:  # a dry run must warn too
        echo(warning)
    state_path = Path(state_path) if state_path else payload_path.with_name(payload_path.name + ".push-state.json")
    summary = PushSummary(str(payload_path), str(state_path), batches_total=len(batches), dry_run=dry_run)
    if dry_run:
        _echo_dry_run(batches, echo)
        return summary

    with closing(_ZendeskClient(_base_url(subdomain, base_url), _auth_header(), max_retries, sleep, echo)) as client:
        state = _load_state(state_path, _payload_hash(batches), echo)
        for number, batch in enumerate(batches):
            label = f"batch {number + 1}/{len(batches)}"
            if str(number) in state["completed"]:
                summary.batches_skipped += 1
                continue
            job = _submitted_job(client, state, number, label, echo)
            if job is not None:
                summary.jobs_resumed += 1
            else:
                answer = client.request("PUT", "/api/v2/tickets/update_many.json", batch, label)
                job = answer.get("job_status") if isinstance(answer.get("job_status"), dict) else {}
                state["submitted"][str(number)] = _job_id(job)
                write_json(state, state_path)
                summary.tickets_sent += len(batch["tickets"])
                summary.batches_sent += 1
            job_id = _job_id(job)
            job = _wait_for_job(client, job, poll_interval_s, sleep, label)
            state["submitted"].pop(str(number), None)
            if _text(job.get("status")).lower() in JOB_FAILED:
                write_json(state, state_path)  # forget the dead job: a re-run sends this batch again
                message = " ".join(_text(job.get("message")).split())[:200]
                raise ExportError(f"{label}: Zendesk job {job_id} {job.get('status')} ({message}); "
                                  "check the payload, then re-run the push")
            failed = _failed_ticket_ids(job)
            summary.ticket_errors += len(failed)
            summary.failed_ticket_ids.extend(failed[: max(0, 20 - len(summary.failed_ticket_ids))])
            state["completed"][str(number)] = {"job_id": job_id, "ticket_errors": len(failed)}
            write_json(state, state_path)
            echo(f"{label}: {len(batch['tickets'])} tickets, job {job.get('status')}, {len(failed)} ticket errors")
        summary.retries, summary.rate_limited = client.retries, client.rate_limited
    return summary


def _load_payload(path: Path) -> list[dict]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ExportError(f"{path}: payload not found; build it with the scoring stage first") from None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ExportError(f"{path}: not a readable JSON payload ({type(exc).__name__})") from None
    batches = document.get("batches") if isinstance(document, dict) else None
    if not isinstance(batches, list) or not all(
        isinstance(b, dict) and isinstance(b.get("tickets"), list)
        and 0 < len(b["tickets"]) <= UPDATE_MANY_MAX_TICKETS
        and all(isinstance(t, dict) and isinstance(t.get("id"), int) for t in b["tickets"])
        for b in batches
    ):
        raise ExportError(
            f"{path}: expected {{\"batches\": [{{\"tickets\": [{{\"id\": <int>, ...}}]}}]}} "
            f"with 1-{UPDATE_MANY_MAX_TICKETS} tickets per batch; rebuild the payload"
        )
    return batches


def _payload_hash(batches: list[dict]) -> str:
    canonical = json.dumps(batches, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _echo_dry_run(batches: list[dict], echo: Callable[[str], None]) -> None:
    totals: Counter[str] = Counter()
    for number, batch in enumerate(batches, start=1):
        counts: Counter[str] = Counter()
        for ticket in batch["tickets"]:
            counts.update(f"+{tag}" for tag in ticket.get("additional_tags", []))
        totals.update(counts)
        fields = Counter(f["id"] for t in batch["tickets"] for f in t.get("custom_fields", []))
        field_text = ", ".join(f"field {fid} on {n}" for fid, n in sorted(fields.items()))
        tag_text = ", ".join(f"{tag} {n}" for tag, n in sorted(counts.items()))
        echo(f"batch {number}/{len(batches)}: {len(batch['tickets'])} tickets; {tag_text}; {field_text}")
    tickets = sum(len(b["tickets"]) for b in batches)
    tag_text = ", ".join(f"{tag} {n}" for tag, n in sorted(totals.items()))
    echo(f"dry run: would update {tickets} tickets in {len(batches)} batches; {tag_text}; "
         "each also loses its other csat band/tier tags; nothing was sent")


def _base_url(subdomain: str, base_url: str | None) -> str:
    if base_url is None:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]*", subdomain or ""):
            raise ExportError(f"subdomain {subdomain!r} is not a Zendesk subdomain (the NAME in NAME.zendesk.com)")
        return f"https://{subdomain}.zendesk.com"
    parsed = urllib.parse.urlsplit(base_url)
    if parsed.scheme != "https" and not (parsed.scheme == "http" and _is_loopback(parsed.hostname)):
        # The API token travels in every request: never over plain HTTP off this machine.
        raise ExportError(f"base URL must use https (plain http only for 127.0.0.1/localhost): {base_url}")
    return base_url.rstrip("/")


def _is_loopback(host: str | None) -> bool:
    return host in ("127.0.0.1", "localhost", "::1")


def _auth_header() -> str:
    """``Basic base64({email}/token:{token})`` from the environment; the value is never shown."""
    email_address = os.environ.get(ENV_EMAIL, "")
    token = os.environ.get(ENV_TOKEN, "")
    missing = [name for name, value in ((ENV_EMAIL, email_address), (ENV_TOKEN, token)) if not value]
    if missing:
        raise ExportError(
            f"set {' and '.join(missing)} in the environment (Zendesk API token auth); "
            "credentials are never read from files"
        )
    credentials = f"{email_address}/token:{token}".encode()
    return "Basic " + base64.b64encode(credentials).decode("ascii")


def _host(url: str) -> tuple[str | None, int | None]:
    parsed = urllib.parse.urlsplit(url)
    return parsed.hostname, parsed.port


class _TokenAuth(requests.auth.AuthBase):
    """The Authorization header, for the configured host only (a guard behind ``allow_redirects=False``).

    As ``session.auth`` it also keeps requests from putting ``~/.netrc`` credentials in its place.
    """

    def __init__(self, header: str, base_url: str) -> None:
        self._header = header
        self._host = _host(base_url)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if _host(request.url or "") == self._host:
            request.headers["Authorization"] = self._header
        return request


class _Retry(Retry):
    """urllib3's ``Retry`` that refuses long Retry-After waits, reports each retry and counts them.

    urllib3 copies a Retry on every attempt through :meth:`new`; ``client`` rides along.
    """

    def __init__(self, *args: Any, client: _ZendeskClient, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.client = client
        # urllib3 >= 2.6.3 clamps Retry-After to retry_after_max (6 h) without telling us;
        # read the server's real value: sleep() refuses anything over our own cap.
        self.retry_after_max = math.inf

    def new(self, **kw: Any) -> Self:
        kw.setdefault("client", self.client)
        return super().new(**kw)

    def increment(self, method: str | None = None, url: str | None = None,
                  response: BaseHTTPResponse | None = None, *args: Any, **kwargs: Any) -> Self:
        # Called for every retryable answer, the last (not retried) one included.
        if response is not None and response.status == 429:
            self.client.rate_limited += 1
        return super().increment(method, url, response, *args, **kwargs)

    def sleep(self, response: BaseHTTPResponse | None = None) -> None:
        """Wait as ``Retry.sleep`` does (Retry-After if sent, else backoff), through the client's clock.

        urllib3 calls this once before each retry, so it is also where retries are counted.
        """
        wait = None
        if self.respect_retry_after_header and response is not None:
            try:
                wait = self.get_retry_after(response)
            except InvalidHeader:  # unparsable Retry-After: back off instead
                pass
        client = self.client
        problem = _problem(self.history[-1]) if self.history else "retry"
        if wait is not None and wait > MAX_RETRY_AFTER_SECONDS:
            # Blocking for hours helps nobody; the state file lets a later run resume.
            resume = datetime.now(UTC) + timedelta(seconds=wait)
            raise ExportError(
                f"{client.label}: {problem}, Zendesk asks to wait {wait:.0f}s (over {MAX_RETRY_AFTER_SECONDS:.0f}s); "
                f"re-run the push after {resume:%Y-%m-%d %H:%M} UTC: finished batches are skipped"
            )
        if not wait:
            wait = self.get_backoff_time()
        client.retries += 1
        client.request_retries += 1
        client.echo(f"{client.label}: {problem}; retry {client.request_retries}/{client.max_retries} in {wait:g}s")
        if wait > 0:
            client.sleep(wait)


def _problem(entry: Any) -> str:
    """One history entry of a Retry as text: the status or the error's class, never its message."""
    return f"connection failed ({_cause(entry.error)})" if entry.error is not None else _status_text(entry.status)


def _status_text(status: int | None) -> str:
    return "HTTP 429 rate limited" if status == 429 else f"HTTP {status}"


def _cause(exc: BaseException) -> str:
    """Class name of the innermost wrapped error (requests -> urllib3 -> http.client / socket)."""
    for _ in range(5):
        inner = getattr(exc, "reason", None)
        if not isinstance(inner, BaseException) and exc.args and isinstance(exc.args[-1], BaseException):
            inner = exc.args[-1]
        if not isinstance(inner, BaseException):
            break
        exc = inner
    return type(exc).__name__


class _ZendeskClient:
    """JSON over HTTPS through a requests Session with urllib3 retries; counts retries and 429s."""

    def __init__(
        self, base_url: str, auth: str, max_retries: int,
        sleep: Callable[[float], None], echo: Callable[[str], None],
    ) -> None:
        self._base_url = base_url
        self.max_retries = max(0, int(max_retries))
        self.sleep, self.echo, self.label = sleep, echo, ""
        self.retries = self.rate_limited = self.request_retries = 0
        retry = _Retry(
            total=self.max_retries, connect=self.max_retries, read=self.max_retries, status=self.max_retries,
            other=0,  # TLS and proxy errors: retrying will not fix them
            redirect=False,  # never followed: see request()
            status_forcelist=RETRY_STATUSES,
            # update_many is a PUT, retried even after a read error, when Zendesk may already
            # have queued a job: safe, because the same batch re-sent sets the same field value
            # and tags, so a second identical job changes nothing more. The state file records
            # the job id of each answered PUT, so a re-run re-polls it instead of re-sending.
            allowed_methods=frozenset({"GET", "PUT"}),
            respect_retry_after_header=True, backoff_factor=BACKOFF_FACTOR, backoff_max=MAX_BACKOFF_SECONDS,
            raise_on_status=False,  # hand back the last answer: request() turns it into one line
            client=self,
        )
        self._session = requests.Session()
        self._session.auth = _TokenAuth(auth, base_url)
        if _is_loopback(urllib.parse.urlsplit(base_url).hostname):
            self._session.trust_env = False  # a proxy from the environment must not see loopback traffic
        self._session.mount("https://", HTTPAdapter(max_retries=retry))
        self._session.mount("http://", HTTPAdapter(max_retries=retry))

    def close(self) -> None:
        self._session.close()

    def request(self, method: str, path: str, body: Any, label: str, allow_missing: bool = False) -> dict | None:
        """Send one request (urllib3 retries 409 / 429 / 5xx / dropped connections); return the JSON body.

        Returns None for 404 when ``allow_missing``; any other answer but 2xx is a one-line error.
        """
        self.label, self.request_retries = label, 0
        headers = {"Accept": "application/json"} | ({} if body is None else {"Content-Type": "application/json"})
        data = None if body is None else json.dumps(body).encode("utf-8")
        try:
            with self._session.request(
                method, self._base_url + path, data=data, headers=headers,
                timeout=HTTP_TIMEOUT_SECONDS, allow_redirects=False,
            ) as response:
                status, content = response.status_code, response.content
                location = response.headers.get("Location", "")
        except requests.RequestException as exc:
            # Only the error's class: its text carries URLs and, for some errors, headers.
            raise ExportError(self._gave_up(label, f"connection failed ({_cause(exc)})")) from None
        if 200 <= status < 300:
            return _json_body(content, label)
        if status == 404 and allow_missing:
            return None
        if 300 <= status < 400:
            target = urllib.parse.urljoin(self._base_url + path, location)
            host, port = _host(target)
            where = f"{host}:{port}" if port else (host or "?")
            raise ExportError(f"{label}: Zendesk answered HTTP {status} redirecting to {where}; not followed, "
                              "the API token goes only to the configured host; check the subdomain or base URL")
        if status in RETRY_STATUSES:
            raise ExportError(self._gave_up(label, _status_text(status)))
        raise ExportError(_client_error(status, label))

    def _gave_up(self, label: str, problem: str) -> str:
        return (f"{label}: gave up after {self.request_retries + 1} attempts ({problem}); "
                "re-run the push later: finished batches are skipped")


def _json_body(payload: bytes, label: str) -> dict:
    try:
        document = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ExportError(f"{label}: Zendesk answered with something that is not JSON") from None
    if not isinstance(document, dict):
        raise ExportError(f"{label}: unexpected answer from Zendesk (not a JSON object)")
    return document


def _client_error(status: int, label: str) -> str:
    if status in (401, 403):
        return (f"{label}: Zendesk refused the credentials (HTTP {status}); check {ENV_EMAIL}, "
                f"{ENV_TOKEN} and that the user may edit tickets")
    if status == 422:
        return f"{label}: Zendesk rejected the update (HTTP 422); check the risk field id and tags"
    return f"{label}: Zendesk answered HTTP {status}; check the subdomain and payload"


def _job_id(job: Any) -> str:
    job_id = _text(job.get("id")) if isinstance(job, dict) else ""
    if not re.fullmatch(r"[A-Za-z0-9_-]+", job_id):
        raise ExportError("Zendesk did not return a job status id for the update; re-run the push")
    return job_id


def _submitted_job(
    client: _ZendeskClient, state: dict, number: int, label: str, echo: Callable[[str], None]
) -> dict | None:
    """The job of a batch sent before an interruption, or None when it must be sent (again)."""
    job_id = state["submitted"].get(str(number))
    if not job_id:
        return None
    answer = client.request("GET", f"/api/v2/job_statuses/{job_id}.json", None, label, allow_missing=True)
    if answer is None or not isinstance(answer.get("job_status"), dict):
        echo(f"{label}: earlier job {job_id} is gone; sending the batch again")
        return None
    echo(f"{label}: resuming earlier job {job_id} instead of sending again")
    return answer["job_status"]


def _wait_for_job(
    client: _ZendeskClient, job: dict, poll_interval_s: float, sleep: Callable[[float], None], label: str
) -> dict:
    """Poll ``job_statuses/{id}`` every ``poll_interval_s`` seconds until completed / failed / killed.

    Bounded by ``MAX_JOB_POLLS``; returns the last job status object.
    """
    job_id = _job_id(job)
    for _ in range(MAX_JOB_POLLS):
        if _text(job.get("status")).lower() in (JOB_DONE, *JOB_FAILED):
            return job
        sleep(poll_interval_s)
        answer = client.request("GET", f"/api/v2/job_statuses/{job_id}.json", None, label)
        job = answer.get("job_status") if isinstance(answer.get("job_status"), dict) else {}
    raise ExportError(f"{label}: job {job_id} not finished after {MAX_JOB_POLLS} polls; re-run the push later")


def _failed_ticket_ids(job: dict) -> list[int]:
    """Ticket ids the finished job reports as not updated (e.g. closed tickets)."""
    results = job.get("results")
    if not isinstance(results, list):
        return []
    return [
        r.get("id") for r in results
        if isinstance(r, dict) and (r.get("success") is False or "error" in r or "errors" in r)
    ]


def _load_state(path: Path, payload_hash: str, echo: Callable[[str], None]) -> dict:
    fresh = {"payload_sha256": payload_hash, "completed": {}, "submitted": {}}
    if not path.is_file():
        return fresh
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        echo(f"{path.name}: unreadable push state, starting from the first batch")
        return fresh
    if not isinstance(state, dict) or state.get("payload_sha256") != payload_hash:
        echo(f"{path.name}: state belongs to another payload, starting from the first batch")
        return fresh
    state.setdefault("completed", {})
    state.setdefault("submitted", {})
    done = len(state["completed"])
    if done:
        echo(f"resuming: {done} batches already done")
    return state


def _text(value: Any) -> str:
    return "" if value is None else str(value)
