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
from pipeline.sinks.writeback import (
    HISTORY_COLUMNS,
    QueueStore,
    engine_for,
    feedback,
    metadata,
    read_history,
    read_queue,
    read_runs,
    scoring_runs,
    ticket_priorities,
    write_queue,
)

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
    history_before = read_history(url)
    with pytest.raises(sa.exc.IntegrityError):
        write_queue(url, broken, run_for(broken), batch_size=2)
    assert read_queue(url).equals(queue_before)
    assert read_runs(url).equals(runs_before)
    assert read_history(url).equals(history_before)


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


# ---------------------------------------------------------------- score history and feedback


def test_every_run_appends_its_rows_to_the_history(url):
    write_queue(url, INITIAL, run_for(INITIAL))
    tonight = queue_frame({"ticket_id": "A", "rank": 1, "p_bad": 0.9, "risk": 90, "tier": "P1",
                           "scored_at": "2026-03-03T10:00:00+00:00"}, {"ticket_id": "D", "rank": 2})
    write_queue(url, tonight, run_for(tonight))
    runs = read_runs(url)["run_id"].tolist()
    history = read_history(url)
    assert list(history.columns) == ["run_id", "ticket_id", *HISTORY_COLUMNS]
    assert list(zip(history["run_id"], history["ticket_id"])) == [
        (runs[0], "B"), (runs[0], "A"), (runs[0], "C"), (runs[1], "A"), (runs[1], "D")]
    a = read_history(url, "A")
    assert a["rank"].tolist() == [2, 1] and a["risk"].tolist() == [61, 90] and a["p_bad"].tolist() == [0.61, 0.9]
    assert a["scored_at"].tolist() == ["2026-03-02T10:00:00+00:00", "2026-03-03T10:00:00+00:00"]
    assert read_history(url, "B")["run_id"].tolist() == [runs[0]]  # B left the queue; its history stays


def test_history_keeps_only_the_last_runs(url):
    for night in range(4):
        queue = queue_frame({"ticket_id": "A", "rank": 1, "risk": 10 * night}, {"ticket_id": f"N{night}", "rank": 2})
        write_queue(url, queue, run_for(queue), history_runs=2)
    runs = read_runs(url)["run_id"].tolist()
    assert len(runs) == 4  # the run log itself is never trimmed
    history = read_history(url)
    assert sorted(set(history["run_id"])) == runs[2:]
    assert read_history(url, "A")["risk"].tolist() == [20, 30]
    assert set(history["ticket_id"]) == {"A", "N2", "N3"}
    write_queue(url, INITIAL, run_for(INITIAL))  # None keeps everything from now on
    assert sorted(set(read_history(url)["run_id"])) == read_runs(url)["run_id"].tolist()[2:]


def test_an_older_database_gains_the_new_tables(url):
    """A database written before the history and feedback tables: the next run adds them."""
    engine = sa.create_engine(url)
    metadata.create_all(engine, tables=[ticket_priorities, scoring_runs])
    engine.dispose()
    write_queue(url, INITIAL, run_for(INITIAL))
    write_queue(url, INITIAL, run_for(INITIAL))
    assert len(read_history(url)) == 6 and read_queue(url)["ticket_id"].tolist() == ["B", "A", "C"]
    engine = sa.create_engine(url)
    assert {"ticket_score_history", "feedback"} <= set(sa.inspect(engine).get_table_names())
    engine.dispose()


def test_feedback_is_tied_to_the_tickets_latest_scoring(url):
    write_queue(url, INITIAL, run_for(INITIAL))
    tonight = queue_frame({"ticket_id": "A", "rank": 1, "model_version": "0f0f0f0f0f0f"})
    write_queue(url, tonight, {**run_for(tonight), "model_version": "0f0f0f0f0f0f"})
    first, second = read_runs(url)["run_id"].tolist()
    store = QueueStore.open(url)
    try:
        a = store.add_feedback("A", "disagree", "mina", "고객이 화가 났어요")
        b = store.add_feedback("B", "handled", "jun")  # B left the queue after the first run
        assert store.add_feedback("nope", "agree", "mina") is None
        with pytest.raises(ValueError, match="verdict"):
            store.add_feedback("A", "maybe", "mina")
        stored = store.feedback_for("A")
    finally:
        store.close()
    assert (a["model_version"], a["run_id"], b["model_version"], b["run_id"]) == (
        "0f0f0f0f0f0f", second, "abc123def456", first)
    assert stored[["verdict", "agent", "note", "run_id"]].values.tolist() == [
        ["disagree", "mina", "고객이 화가 났어요", second]]


def test_the_database_refuses_an_unknown_verdict(url):
    write_queue(url, INITIAL, run_for(INITIAL))
    engine = sa.create_engine(url)
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
        connection.execute(feedback.insert().values(ticket_id="A", verdict="maybe", agent="x", note="",
                                                    created_at="2026-03-02T10:00:00+00:00"))
    engine.dispose()


def test_reading_a_missing_sqlite_file_creates_nothing(tmp_path):
    path = tmp_path / "nowhere" / "queue.sqlite"
    with pytest.raises(UserError, match="no such SQLite file"):
        read_queue(f"sqlite:///{path}")
    with pytest.raises(UserError, match="no such SQLite file"):
        QueueStore.open(f"sqlite:///{path}")
    assert not path.parent.exists()


def test_database_errors_do_not_carry_ticket_text(url):
    """SQLAlchemy puts statement parameters in its messages, which end up in logs; not here."""
    write_queue(url, INITIAL, run_for(INITIAL))
    store = QueueStore.open(url)
    try:
        engine = sa.create_engine(url)
        feedback.drop(engine)
        engine.dispose()
        with pytest.raises(sa.exc.DBAPIError) as failure:
            store.add_feedback("A", "disagree", "mina", "customer threatened to cancel")
    finally:
        store.close()
    assert "threatened" not in str(failure.value) and "mina" not in str(failure.value)


@pytest.mark.parametrize("url, message", [
    ("notaurl", "not a database URL"),
    ("mysql://user@localhost/db", "no database driver"),
])
def test_a_wrong_database_url_is_one_line_and_creates_nothing(tmp_path, url, message):
    from pipeline.sinks.writeback import check_database_url

    with pytest.raises(UserError, match=message) as caught:
        check_database_url(url)
    assert "\n" not in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_an_unreachable_server_is_one_line_without_the_password(tmp_path):
    scored = pd.DataFrame({c: pd.Series(dtype=object) for c in SCORE_COLUMNS})
    url = "postgresql+psycopg://csat:s3cret@127.0.0.1:1/postgres"
    with pytest.raises(UserError, match="database write failed, nothing changed") as caught:
        write_queue(url, scored, {})
    assert "s3cret" not in str(caught.value) and "\n" not in str(caught.value)
