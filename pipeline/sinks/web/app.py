"""The queue page: a small FastAPI app over the write-back database (server-rendered, no build step).

Pages: ``/`` the queue in rank order with filters; ``/tickets/{id}`` one ticket's values,
reasons, score over past runs and feedback; ``/monitoring`` how past predictions turned out
(``csat-triage monitor``'s report). API: ``GET /api/queue``, ``GET /api/tickets/{id}``,
``POST /api/tickets/{id}/feedback``, ``GET /api/monitoring``. The database and the report are
read on every request, so a new scoring run or report shows at the next page load. Every GET
answers HEAD too.

Access: with a token, every request needs ``Authorization: Bearer <token>`` or the
HttpOnly session cookie that the login form sets (an HMAC of the token, so the cookie
never holds the token itself); everything else gets 401. Feedback is JSON only, so a
cross-site HTML form cannot post it (and the cookie is SameSite=Strict). The access log
holds method, path and status: never query strings, bodies or ticket text.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import quote, urlencode

from fastapi import FastAPI, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from pipeline.sinks.web import monitoring as monitoring_report
from pipeline.sinks.web import present
from pipeline.sinks.writeback import QueueStore

HERE = Path(__file__).parent
COOKIE = "csat_triage_session"
ACCESS_LOG = logging.getLogger("csat_triage.web.access")
PAGE_LIMIT, MAX_LIMIT = 100, 1000  # rows on the page by default / at most (a page, not an export)
OPEN_PATHS = ("/login", "/static/")
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",  # ticket data: never kept by a shared cache
}


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    verdict: Literal["agree", "disagree", "handled"]
    agent: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
    note: str = Field("", max_length=4000)


class AccessLog:
    """ASGI middleware: one line per request, ``METHOD /path STATUS`` (uvicorn's own access log is off)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_and_note(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            ACCESS_LOG.info("%s %s %d", scope["method"], scope["path"], status)


class HeadAsGet:
    """ASGI middleware: HEAD is answered as GET without the body, so every page answers HEAD
    (uptime checks and link checkers send it) with the same status and headers as GET."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_headers_only(message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, send_headers_only)


def session_value(token: str) -> str:
    """The cookie's value: derived from the token, so the cookie never carries the token itself."""
    return hmac.new(token.encode(), b"csat-triage queue page session", hashlib.sha256).hexdigest()


def _safe_next(target: str | None) -> str:
    """Only a path on this site (no scheme, no //host): the login form must not redirect elsewhere."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def create_app(store: QueueStore, token: str | None = None, monitoring: Path | None = None) -> FastAPI:
    """The app over an open :class:`QueueStore`; ``token`` (None = no login) guards every request;
    ``monitoring`` is the path of ``csat-triage monitor``'s report (None: the page says how to make one)."""
    app = FastAPI(title="csat-triage queue", docs_url=None, redoc_url=None, openapi_url=None)
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.filters["quote"] = lambda value: quote(str(value), safe="")
    templates.env.filters["number"] = present.number
    templates.env.filters["percent"] = present.percent
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    token_bytes = token.encode() if token else None
    session_bytes = session_value(token).encode() if token else None

    def authorized(request: Request) -> bool:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token_bytes):
            return True
        cookie = request.cookies.get(COOKIE)
        return cookie is not None and hmac.compare_digest(cookie.encode(), session_bytes)

    def page(request: Request, name: str, context: dict, status_code: int = 200) -> HTMLResponse:
        return templates.TemplateResponse(request, name, {"login": token is not None, **context},
                                          status_code=status_code)

    @app.middleware("http")
    async def guard(request: Request, call_next) -> Response:
        path = request.url.path
        if token is not None and not path.startswith(OPEN_PATHS) and not authorized(request):
            if path.startswith("/api/"):
                response = JSONResponse({"detail": "missing or wrong token (Authorization: Bearer <token>)"},
                                        status_code=401, headers={"WWW-Authenticate": "Bearer"})
            else:
                target = path + (f"?{request.url.query}" if request.url.query else "")
                response = page(request, "login.html", {"next": target, "failed": False}, 401)
        else:
            response = await call_next(request)
        for header, value in SECURITY_HEADERS.items():
            response.headers.setdefault(header, value)
        return response

    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str = "/") -> Response:
        if token is None:
            return RedirectResponse("/", status_code=303)
        return page(request, "login.html", {"next": _safe_next(next), "failed": False})

    @app.post("/login")
    def login(request: Request, token_given: Annotated[str, Form(alias="token")] = "",
              next: Annotated[str, Form()] = "/") -> Response:
        if token is None:
            return RedirectResponse("/", status_code=303)
        if not hmac.compare_digest(token_given.strip().encode(), token_bytes):
            return page(request, "login.html", {"next": _safe_next(next), "failed": True}, 401)
        response = RedirectResponse(_safe_next(next), status_code=303)
        response.set_cookie(COOKIE, session_value(token), httponly=True, samesite="strict",
                            secure=request.url.scheme == "https", path="/")
        return response

    @app.post("/logout")
    def logout() -> Response:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    @app.get("/", response_class=HTMLResponse)
    def queue_page(request: Request, group: str | None = None, assignee: str | None = None,
                   tier: str | None = None, ticket: str | None = None,
                   limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = PAGE_LIMIT) -> Response:
        filters = {"group": group or None, "assignee": assignee or None, "tier": tier or None,
                   "ticket": (ticket or "").strip() or None}
        queue = store.queue(**filters, limit=limit)
        counts = store.tier_counts(filters["group"], filters["assignee"], filters["ticket"])
        matching = counts.get(filters["tier"], 0) if filters["tier"] else sum(counts.values())
        run = store.latest_run()

        def link(**changes) -> str:
            """This page's URL with some filters changed (None drops one)."""
            query = {k: v for k, v in {**filters, "limit": limit if limit != PAGE_LIMIT else None,
                                       **changes}.items() if v is not None}
            return "/?" + urlencode(query) if query else "/"

        return page(request, "queue.html", {
            "link": link,
            "rows": present.queue_rows(queue), "filters": filters, "limit": limit, "matching": matching,
            "counts": counts, "tiers": present.TIERS, "tier_notes": present.TIER_NOTES,
            "choices": store.choices(), "run": run, "scored": present.when(run and run["scored_at"]),
            "filtered": any(filters.values()),
        })

    @app.get("/tickets/{ticket_id}", response_class=HTMLResponse)
    def ticket_page(request: Request, ticket_id: str) -> Response:
        row, history = store.ticket(ticket_id), store.history(ticket_id)
        if row is None and history.empty:
            return page(request, "error.html", {"title": "Unknown ticket",
                                                "message": f"Ticket {ticket_id} is in no scored queue."}, 404)
        run = store.latest_run()
        return page(request, "ticket.html", {
            "ticket_id": ticket_id, "ticket": present.ticket_view(row) if row else None,
            "chart": present.history_chart(history), "history": present.history_rows(history),
            "feedback": present.feedback_rows(store.feedback_for(ticket_id)),
            "queue_size": run["tickets_scored"] if run else None, "verdicts": ("agree", "disagree", "handled"),
        })

    @app.get("/monitoring", response_class=HTMLResponse)
    def monitoring_page(request: Request) -> Response:
        context = {"command": monitoring_report.monitor_command(store.shown_url, monitoring),
                   "path": monitoring, "problem": None}
        try:
            _, report = monitoring_report.read_report(monitoring)
        except monitoring_report.ReportProblem as problem:
            # Not configured is a how-to, not an error; a missing or broken file is one line and its status.
            status = 200 if monitoring is None else problem.status
            return page(request, "monitoring.html", {**context, "problem": str(problem)}, status)
        return page(request, "monitoring.html", {
            **context, **monitoring_report.page_context(report), "written": monitoring_report.modified(monitoring),
            "when": present.when, "psi_moving": monitoring_report.PSI_MOVING,
            "psi_shifted": monitoring_report.PSI_SHIFTED,
        })

    @app.get("/api/monitoring")
    def api_monitoring() -> Response:
        """The monitoring report as ``csat-triage monitor`` wrote it."""
        try:
            raw, _ = monitoring_report.read_report(monitoring)
        except monitoring_report.ReportProblem as problem:
            return JSONResponse({"detail": str(problem)}, status_code=problem.status)
        return JSONResponse(raw)

    @app.get("/api/queue")
    def api_queue(limit: Annotated[int | None, Query(ge=1)] = None, group: str | None = None,
                  assignee: str | None = None, tier: str | None = None) -> list[dict]:
        """The output columns of the queue, in rank order."""
        return present.records(store.queue(group or None, assignee or None, tier or None, limit=limit))

    @app.get("/api/tickets/{ticket_id}")
    def api_ticket(ticket_id: str) -> Response:
        row, history = store.ticket(ticket_id), store.history(ticket_id)
        if row is None and history.empty:
            return JSONResponse({"detail": f"unknown ticket {ticket_id}"}, status_code=404)
        return JSONResponse({
            "ticket": present.ticket_record(row) if row else None,
            "history": present.records(history, present.HISTORY_COLUMNS),
            "feedback": present.feedback_rows(store.feedback_for(ticket_id)),
        })

    @app.post("/api/tickets/{ticket_id}/feedback", status_code=201)
    def api_feedback(ticket_id: str, given: FeedbackIn) -> Response:
        stored = store.add_feedback(ticket_id, given.verdict, given.agent, given.note)
        if stored is None:
            return JSONResponse({"detail": f"unknown ticket {ticket_id}"}, status_code=404)
        return JSONResponse(stored, status_code=201)

    app.add_middleware(HeadAsGet)  # outside the guard: a HEAD needs the token like its GET
    app.add_middleware(AccessLog)  # added last, so outermost: 401s are logged too, HEAD as HEAD
    return app
