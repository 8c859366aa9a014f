"""Running the queue page: open the database (a problem is one line, exit 2), listen, serve with uvicorn."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path

import uvicorn

from pipeline.core.errors import UserError
from pipeline.sinks.web.app import create_app
from pipeline.sinks.writeback import QueueStore

TOKEN_ENV = "CSAT_TRIAGE_TOKEN"
LOOPBACK = ("127.0.0.1", "localhost", "::1")

# uvicorn's access log is off (it prints query strings); the app's own access log prints
# method, path and status only. Server messages (start, stop, errors) go to stderr as usual.
LOG_CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"}},
    "loggers": {
        "uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        "csat_triage.web": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
    },
}


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0 = any free port); a taken port is one line."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UserError(f"--host {host} --port {port}: cannot listen there ({exc.strerror}); "
                        "pick another --port or --host") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def uvicorn_server(app, log_config: dict | None = LOG_CONFIG) -> uvicorn.Server:
    """A uvicorn server for ``app`` with our logging (``log_config=None`` leaves logging alone, for tests)."""
    return uvicorn.Server(uvicorn.Config(app, access_log=False, log_config=log_config, server_header=False,
                                         proxy_headers=False))


def serve(db_url: str, host: str = "127.0.0.1", port: int = 8000,
          echo: Callable[[str], None] = print, monitoring: Path | None = None) -> None:
    """Serve the queue page until interrupted; the token comes from the environment only.
    ``monitoring``: ``csat-triage monitor``'s report for the monitoring page (read at every request,
    so it may appear later)."""
    token = (os.environ.get(TOKEN_ENV) or "").strip() or None  # a stray newline must not lock everyone out
    store = QueueStore.open(db_url)
    try:
        sock = listen(host, port)
        bound = sock.getsockname()[1]
        shown_host = f"[{host}]" if ":" in host else host
        access = f"{TOKEN_ENV} set: token required" if token else "no token: anyone who can reach it can read it"
        echo(f"queue page for {store.shown_url} on http://{shown_host}:{bound}/ ({access}); Ctrl-C stops it")
        if token is None and host not in LOOPBACK:
            echo(f"warning: listening on {host} without a token; set {TOKEN_ENV} to require one")
        if monitoring is not None and not monitoring.is_file():
            echo(f"note: no monitoring report at {monitoring} yet; /monitoring shows it once "
                 "`csat-triage monitor` writes it")
        uvicorn_server(create_app(store, token, monitoring)).run(sockets=[sock])
    finally:
        store.close()
