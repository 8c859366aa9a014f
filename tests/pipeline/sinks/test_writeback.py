"""Database write-back: upsert, removal, one transaction, filters; on SQLite and (when available) PostgreSQL.

The PostgreSQL runs start a throwaway cluster with the machine's ``initdb``/``pg_ctl``
in a temporary directory, on a free loopback port (as an unprivileged user when the
tests run as root, since PostgreSQL refuses to run as root), and stop it afterwards.
They skip, saying why, when the binaries or a driver (``psycopg[binary]``) are missing.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from models.scoring import SCORE_COLUMNS
from pipeline.core.errors import UserError
from pipeline.sinks.writeback import engine_for, metadata, read_queue, read_runs, write_queue

RUN = {"scored_at": "2026-03-02T10:00:00+00:00", "model_version": "abc123def456", "target": "satisfaction=bad",
       "export_fingerprint": "0123456789abcdef", "tickets_scored": 0, "p1_tickets": 0, "rejected_rows": 0}


def queue_frame(*rows: dict) -> pd.DataFrame:
    """A scored queue like ``score_tickets`` returns; each row gives at least ticket_id and rank."""
    defaults = {"p_bad": 0.5, "risk": 50, "urgency": "normal", "p_urgent": 0.2, "priority_score": 40.0,
                "tier": "P2", "reasons": "customer waiting 26 h for a reply", "model_version": "abc123def456",
                "scored_at": "2026-03-02T10:00:00+00:00", "group": "billing", "assignee": "agent_001",
                "current_wait_minutes": 1560.0, "target": "satisfaction=bad"}
    frame = pd.DataFrame([{**defaults, **row} for row in rows])
    return frame[list(SCORE_COLUMNS) + ["group", "assignee", "current_wait_minutes", "target"]]


def run_for(scored: pd.DataFrame) -> dict:
    return {**RUN, "tickets_scored": len(scored), "p1_tickets": int((scored["tier"] == "P1").sum())}


INITIAL = queue_frame(
    {"ticket_id": "A", "rank": 2, "p_bad": 0.61, "risk": 61, "tier": "P1", "reasons": "고객이 화가 났어요; reopened twice"},
    {"ticket_id": "B", "rank": 1, "p_bad": 0.72, "risk": 72, "tier": "P1", "group": "technical"},
    {"ticket_id": "C", "rank": 3, "p_bad": 0.10, "risk": 10, "tier": "P4", "assignee": None, "reasons": ""},
)


# ---------------------------------------------------------------- databases


def _driver() -> str | None:
    for module in ("psycopg", "psycopg2"):
        if importlib.util.find_spec(module) is not None:
            return module
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _unprivileged_prefix() -> tuple[list[str], pwd.struct_passwd | None]:
    """Command prefix that runs PostgreSQL's tools as a non-root user ([] when not root)."""
    if os.geteuid() != 0:
        return [], None
    runuser = shutil.which("runuser")
    for name in ("postgres", "nobody"):
        try:
            user = pwd.getpwnam(name)
        except KeyError:
            continue
        if runuser:
            return [runuser, "-u", name, "--"], user
    pytest.skip("running as root with no 'postgres'/'nobody' user or no runuser: PostgreSQL refuses to run as root")


@pytest.fixture(scope="module")
def postgres_server():
    """A throwaway PostgreSQL cluster; yields its SQLAlchemy URL."""
    driver = _driver()
    if driver is None:
        pytest.skip("no PostgreSQL driver: install the test extra (psycopg[binary])")
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("initdb/pg_ctl not on PATH: no PostgreSQL server binaries to start a test cluster")
    prefix, user = _unprivileged_prefix()
    # Not under pytest's tmp dir: that is private to root, and the server runs as another user.
    base = Path(tempfile.mkdtemp(prefix="csat-triage-pg-"))
    if user is not None:
        os.chown(base, user.pw_uid, user.pw_gid)
    data, port = base / "data", _free_port()
    started = False
    try:
        init = subprocess.run([*prefix, initdb, "-D", str(data), "-U", "csat", "--auth=trust", "-E", "UTF8"],
                              capture_output=True, text=True, timeout=120)
        if init.returncode != 0:
            pytest.skip(f"initdb failed: {init.stderr.strip().splitlines()[-1:]}")
        start = subprocess.run(
            [*prefix, pg_ctl, "-D", str(data), "-l", str(base / "server.log"), "-w", "-t", "60",
             "-o", f"-p {port} -k {base} -c listen_addresses=127.0.0.1", "start"],
            capture_output=True, text=True, timeout=90,
        )
        if start.returncode != 0:
            pytest.skip(f"pg_ctl start failed: {start.stderr.strip().splitlines()[-1:]}")
        started = True
        yield f"postgresql+{driver}://csat@127.0.0.1:{port}/postgres"
    finally:
        if started:
            subprocess.run([*prefix, pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"],
                           capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    """An empty database of each kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'queue.sqlite'}"
    server = request.getfixturevalue("postgres_server")
    engine = sa.create_engine(server)
    metadata.drop_all(engine)
    engine.dispose()
    return server


# ---------------------------------------------------------------- tests


def test_first_write_holds_the_queue_in_rank_order(url):
    write_queue(url, INITIAL, run_for(INITIAL))
    queue = read_queue(url)
    assert queue["ticket_id"].tolist() == ["B", "A", "C"]
    a = queue.set_index("ticket_id").loc["A"]
    assert (a["p_bad"], a["risk"], a["tier"], a["rank"]) == (0.61, 61, "P1", 2)
    assert a["reasons"] == "고객이 화가 났어요; reopened twice"  # text goes through unchanged
    assert pd.isna(queue.set_index("ticket_id").loc["C", "assignee"])  # stored as NULL, not "None"
    runs = read_runs(url)
    assert len(runs) == 1
    assert runs.loc[0, "tickets_scored"] == 3 and runs.loc[0, "p1_tickets"] == 2
    assert runs.loc[0, "model_version"] == "abc123def456" and runs.loc[0, "started_at"]


def test_upsert_updates_inserts_and_removes(url):
    write_queue(url, INITIAL, run_for(INITIAL))
    tonight = queue_frame(
        {"ticket_id": "A", "rank": 1, "p_bad": 0.9, "risk": 90, "tier": "P1", "reasons": "reopened 3 times"},
        {"ticket_id": "C", "rank": 3},
        {"ticket_id": "D", "rank": 2, "group": "technical"},
    )
    write_queue(url, tonight, run_for(tonight))
    queue = read_queue(url)
    assert queue["ticket_id"].tolist() == ["A", "D", "C"]  # B was solved: gone from the queue
    a = queue.set_index("ticket_id").loc["A"]
    assert (a["p_bad"], a["risk"], a["reasons"]) == (0.9, 90, "reopened 3 times")
    assert len(read_runs(url)) == 2


def test_same_queue_twice_leaves_the_table_identical(url):
    write_queue(url, INITIAL, run_for(INITIAL))
    first = read_queue(url)
    write_queue(url, INITIAL, run_for(INITIAL))
    assert read_queue(url).equals(first)
    assert len(read_runs(url)) == 2


def test_failure_mid_write_changes_nothing(url):
    write_queue(url, INITIAL, run_for(INITIAL))
    queue_before, runs_before = read_queue(url), read_runs(url)
    # batch_size=2: the first chunk (A, D) is fine; the second holds E with no p_bad (NOT NULL).
    # B and C are removed before the inserts, so a partial commit would show.
    broken = queue_frame({"ticket_id": "A", "rank": 1, "p_bad": 0.99}, {"ticket_id": "D", "rank": 2},
                         {"ticket_id": "E", "rank": 3, "p_bad": None})
    with pytest.raises(sa.exc.IntegrityError):
        write_queue(url, broken, run_for(broken), batch_size=2)
    assert read_queue(url).equals(queue_before)
    assert read_runs(url).equals(runs_before)


def test_many_chunks_are_written_and_removed(url):
    many = queue_frame(*({"ticket_id": f"T{i:02d}", "rank": i + 1} for i in range(12)))
    write_queue(url, many, run_for(many), batch_size=5)
    assert read_queue(url)["ticket_id"].tolist() == [f"T{i:02d}" for i in range(12)]
    fewer = many.iloc[[0, 11]].assign(rank=[1, 2])
    write_queue(url, fewer, run_for(fewer), batch_size=5)  # 10 removals in two chunks
    assert read_queue(url)["ticket_id"].tolist() == ["T00", "T11"]


def test_read_queue_filters(url):
    queue = queue_frame(
        {"ticket_id": "A", "rank": 4, "group": "billing", "assignee": "agent_001"},
        {"ticket_id": "B", "rank": 1, "group": "technical", "assignee": "agent_002"},
        {"ticket_id": "C", "rank": 3, "group": "billing", "assignee": "agent_002"},
        {"ticket_id": "D", "rank": 2, "group": "billing", "assignee": None},
    )
    write_queue(url, queue, run_for(queue))
    assert read_queue(url, group="billing")["ticket_id"].tolist() == ["D", "C", "A"]
    assert read_queue(url, assignee="agent_002")["ticket_id"].tolist() == ["B", "C"]
    assert read_queue(url, group="billing", assignee="agent_002")["ticket_id"].tolist() == ["C"]
    assert read_queue(url, limit=2)["ticket_id"].tolist() == ["B", "D"]
    assert read_queue(url, group="billing", limit=1)["ticket_id"].tolist() == ["D"]
    assert read_queue(url, group="nobody").empty


def test_reading_before_any_run_says_what_to_do(tmp_path):
    with pytest.raises(UserError, match="run `csat-triage score` first"):
        read_queue(f"sqlite:///{tmp_path / 'empty.sqlite'}")


def test_sqlite_parent_directory_is_created(tmp_path):
    url = f"sqlite:///{tmp_path / 'deep' / 'er' / 'queue.sqlite'}"
    engine_for(url).dispose()
    write_queue(url, INITIAL, run_for(INITIAL))
    assert (tmp_path / "deep" / "er" / "queue.sqlite").is_file()
