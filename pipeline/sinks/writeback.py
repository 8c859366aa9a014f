"""Writing the scored queue where agents work: a database table (any SQLAlchemy URL).

``ticket_priorities`` holds one row per ticket in the latest queue (upserted by
``ticket_id``; tickets no longer in the queue are removed in the same transaction).
``scoring_runs`` gets one row per run and ``ticket_score_history`` every scored row of
every run (the runs older than the last ``history_runs`` are deleted by the run that
writes a new one). Everything happens in one transaction, so a failed run leaves all
tables as they were. Re-running the same export leaves ``ticket_priorities`` identical.

``feedback`` holds the agents' verdicts on a ranking (agree, disagree, handled), each
tied to the model version and run that ranked the ticket; :class:`QueueStore` is the
queue page's reader and feedback writer.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from pipeline.core.errors import UserError

FEEDBACK_VERDICTS = ("agree", "disagree", "handled")
HISTORY_COLUMNS = ("p_bad", "risk", "urgency", "p_urgent", "priority_score", "rank", "tier", "model_version",
                   "scored_at")

metadata = sa.MetaData()
ticket_priorities = sa.Table(
    "ticket_priorities", metadata,
    sa.Column("ticket_id", sa.String(64), primary_key=True),
    sa.Column("p_bad", sa.Float, nullable=False),
    sa.Column("risk", sa.Integer, nullable=False),
    sa.Column("urgency", sa.String(16)),  # NULL for a model trained without an urgency model
    sa.Column("p_urgent", sa.Float),
    sa.Column("priority_score", sa.Float, nullable=False),
    sa.Column("rank", sa.Integer, nullable=False, index=True),
    sa.Column("tier", sa.String(4), nullable=False),
    sa.Column("reasons", sa.Text, nullable=False),
    sa.Column("model_version", sa.String(64), nullable=False),
    sa.Column("scored_at", sa.String(32), nullable=False),
    sa.Column("group", sa.String(255)),
    sa.Column("assignee", sa.String(255)),
    sa.Column("current_wait_minutes", sa.Float),
    sa.Column("target", sa.String(128)),
)
scoring_runs = sa.Table(
    "scoring_runs", metadata,
    sa.Column("run_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("started_at", sa.String(32), nullable=False),
    sa.Column("scored_at", sa.String(32), nullable=False),
    sa.Column("model_version", sa.String(64), nullable=False),
    sa.Column("target", sa.String(128), nullable=False),
    sa.Column("export_fingerprint", sa.String(64), nullable=False),
    sa.Column("tickets_scored", sa.Integer, nullable=False),
    sa.Column("p1_tickets", sa.Integer, nullable=False),
    sa.Column("rejected_rows", sa.Integer, nullable=False),
)
ticket_score_history = sa.Table(
    "ticket_score_history", metadata,
    sa.Column("run_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("ticket_id", sa.String(64), primary_key=True),
    sa.Column("p_bad", sa.Float, nullable=False),
    sa.Column("risk", sa.Integer, nullable=False),
    sa.Column("urgency", sa.String(16)),  # NULL for a model trained without an urgency model
    sa.Column("p_urgent", sa.Float),
    sa.Column("priority_score", sa.Float, nullable=False),
    sa.Column("rank", sa.Integer, nullable=False),
    sa.Column("tier", sa.String(4), nullable=False),
    sa.Column("model_version", sa.String(64), nullable=False),
    sa.Column("scored_at", sa.String(32), nullable=False),
    # one ticket's scores over the runs: the ticket page's query
    sa.Index("ix_ticket_score_history_ticket", "ticket_id", "run_id"),
)
feedback = sa.Table(
    "feedback", metadata,
    sa.Column("feedback_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ticket_id", sa.String(64), nullable=False, index=True),
    sa.Column("verdict", sa.String(16), nullable=False),
    sa.Column("agent", sa.String(255), nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("model_version", sa.String(64)),
    sa.Column("run_id", sa.Integer),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.CheckConstraint("verdict IN ('agree', 'disagree', 'handled')", name="ck_feedback_verdict"),
)


def default_database_url(out_file: str | Path) -> str:
    """An embedded SQLite file beside the scored file: ``<dir>/priorities.sqlite``."""
    return f"sqlite:///{Path(out_file).resolve().parent / 'priorities.sqlite'}"


def check_database_url(url: str) -> tuple[sa.URL, str]:
    """The parsed URL and its printable form (password hidden); a malformed URL or a missing
    driver is a one-line :class:`UserError`. Connects to nothing and creates nothing."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        raise UserError(f"--db {url!r}: not a database URL; e.g. sqlite:///data/scored/priorities.sqlite "
                        "or postgresql+psycopg://user@host/db") from None
    shown = parsed.render_as_string(hide_password=True)
    try:
        parsed.get_dialect().import_dbapi()
    except (sa.exc.NoSuchModuleError, ImportError) as exc:
        raise UserError(f"{shown}: no database driver for this URL ({exc}); for PostgreSQL install "
                        "csat-triage[postgres]") from None
    return parsed, shown


def engine_for(url: str) -> sa.Engine:
    """An engine for writing: a SQLite file's directory is created."""
    parsed, _ = check_database_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    return sa.create_engine(parsed, hide_parameters=True)  # ticket text stays out of error messages


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _records(scored: pd.DataFrame) -> list[dict]:
    # The table's own columns (= models.scoring's SCORE_COLUMNS + QUEUE_EXTRA_COLUMNS, tested), not an
    # import of models.scoring: that loads LightGBM, seconds that `serve` would wait for at every start.
    columns = [c.name for c in ticket_priorities.columns if c.name in scored.columns]
    frame = scored[columns].astype(object).where(scored[columns].notna(), None)
    frame["scored_at"] = scored["scored_at"].astype(str)
    return frame.to_dict(orient="records")


def write_queue(url: str, scored: pd.DataFrame, run: dict, batch_size: int = 5000,
                history_runs: int | None = None) -> None:
    """Upsert ``scored`` into ``ticket_priorities``, append ``run`` to ``scoring_runs`` and the rows to
    ``ticket_score_history``, atomically. ``history_runs``: keep the history of only the last N runs
    (None keeps all)."""
    engine = engine_for(url)
    try:
        _write(engine, scored, run, batch_size, history_runs)
    except sa.exc.OperationalError as exc:
        # Unreachable server, dropped connection, locked file: the transaction rolled back.
        reason = " ".join(str(exc.orig).split())[:200]
        shown = engine.url.render_as_string(hide_password=True)
        raise UserError(f"{shown}: database write failed, nothing changed there ({reason})") from None
    finally:
        engine.dispose()


def _write(engine: sa.Engine, scored: pd.DataFrame, run: dict, batch_size: int, history_runs: int | None) -> None:
    metadata.create_all(engine)  # also adds the newer tables (history, feedback) to an older database
    records = _records(scored)
    dialect = engine.dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        insert = None
    with engine.begin() as connection:
        keep = {r["ticket_id"] for r in records}
        existing = {row[0] for row in connection.execute(sa.select(ticket_priorities.c.ticket_id))}
        gone = sorted(existing - keep)
        for start in range(0, len(gone), batch_size):
            connection.execute(ticket_priorities.delete().where(ticket_priorities.c.ticket_id.in_(gone[start:start + batch_size])))
        for start in range(0, len(records), batch_size):
            chunk = records[start:start + batch_size]
            if insert is not None:
                statement = insert(ticket_priorities)
                update = {c.name: statement.excluded[c.name] for c in ticket_priorities.columns if c.name != "ticket_id"}
                connection.execute(statement.on_conflict_do_update(index_elements=["ticket_id"], set_=update), chunk)
            else:  # other databases: replace rows one chunk at a time inside the same transaction
                ids = [r["ticket_id"] for r in chunk]
                connection.execute(ticket_priorities.delete().where(ticket_priorities.c.ticket_id.in_(ids)))
                connection.execute(ticket_priorities.insert(), chunk)
        run_id = connection.execute(scoring_runs.insert().values(**run, started_at=_now())).inserted_primary_key[0]
        _append_history(connection, run_id, history_runs)


def _append_history(connection: sa.Connection, run_id: int, history_runs: int | None) -> None:
    """This run's rows into ``ticket_score_history``; the runs before the last ``history_runs`` out of it."""
    # ticket_priorities now holds exactly this run's rows: copy them inside the database. Sending
    # the rows a second time doubled write_queue's time on 100k tickets; this one statement adds little.
    columns = ["ticket_id", *HISTORY_COLUMNS]
    rows = sa.select(sa.literal(run_id, sa.Integer), *(ticket_priorities.c[c] for c in columns))
    connection.execute(ticket_score_history.insert().from_select(["run_id", *columns], rows))
    if history_runs is None:
        return
    # Run ids only grow (PostgreSQL's sequences may skip some), so "the last N runs" is a run id cut-off.
    kept = sa.select(scoring_runs.c.run_id).order_by(scoring_runs.c.run_id.desc()).limit(history_runs).subquery()
    oldest_kept = connection.execute(sa.select(sa.func.min(kept.c.run_id))).scalar_one()
    connection.execute(ticket_score_history.delete().where(ticket_score_history.c.run_id < oldest_kept))


def reader_engine(url: str) -> tuple[sa.Engine, str]:
    """An engine on an existing database, and its URL fit to print (password hidden).

    Reading never creates anything: a missing SQLite file, a malformed URL or a missing
    driver is a one-line :class:`UserError`.
    """
    parsed, shown = check_database_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database or ""
        if path in ("", ":memory:") or not Path(path).is_file():
            raise UserError(f"{shown}: no such SQLite file; run `csat-triage score` first (it writes the queue "
                            "there) or check --db")
    return sa.create_engine(parsed, hide_parameters=True), shown  # no ticket text or notes in error messages


def _has_queue(engine: sa.Engine, shown: str) -> None:
    try:
        with engine.connect() as connection:
            present = sa.inspect(connection).has_table(ticket_priorities.name)
    except sa.exc.DBAPIError as exc:  # unreachable server, refused login, a file that is not a database
        engine.dispose()
        reason = " ".join(str(exc.orig).split()) or type(exc.orig).__name__
        raise UserError(f"{shown}: cannot read the database ({reason}); check --db") from None
    if not present:
        engine.dispose()
        raise UserError(f"no scored queue in {shown}: run `csat-triage score` first")


def _queue_filters(group: str | None = None, assignee: str | None = None, tier: str | None = None,
                   ticket: str | None = None) -> list:
    c = ticket_priorities.c
    conditions = []
    if group:
        conditions.append(c.group == group)
    if assignee:
        conditions.append(c.assignee == assignee)
    if tier:
        conditions.append(c.tier == tier)
    if ticket:
        conditions.append(c.ticket_id.icontains(ticket, autoescape=True))
    return conditions


class QueueStore:
    """The queue, its history and the feedback in one database; the web app keeps one per process."""

    def __init__(self, engine: sa.Engine, shown_url: str) -> None:
        self.engine = engine
        self.shown_url = shown_url

    @classmethod
    def open(cls, url: str) -> QueueStore:
        """An existing queue database (see :func:`reader_engine`); adds the feedback and history tables
        to a database written before they existed."""
        engine, shown = reader_engine(url)
        _has_queue(engine, shown)
        try:
            metadata.create_all(engine, tables=[ticket_score_history, feedback])
        except sa.exc.DBAPIError as exc:  # e.g. a read-only file or role
            engine.dispose()
            reason = " ".join(str(exc.orig).split()) or type(exc.orig).__name__
            raise UserError(f"{shown}: cannot add the feedback table ({reason}); the page needs write access") from None
        return cls(engine, shown)

    def close(self) -> None:
        self.engine.dispose()

    def _frame(self, query) -> pd.DataFrame:
        with self.engine.connect() as connection:
            return pd.read_sql(query, connection)

    def queue(self, group: str | None = None, assignee: str | None = None, tier: str | None = None,
              ticket: str | None = None, limit: int | None = None) -> pd.DataFrame:
        """The queue in rank order; ``ticket`` matches any part of the ticket id, in any case."""
        query = (sa.select(ticket_priorities).where(*_queue_filters(group, assignee, tier, ticket))
                 .order_by(ticket_priorities.c.rank))  # ranks are unique: the index gives the order
        return self._frame(query.limit(limit) if limit else query)

    def tier_counts(self, group: str | None = None, assignee: str | None = None,
                    ticket: str | None = None) -> dict[str, int]:
        """Tickets per tier under the other filters."""
        c = ticket_priorities.c
        query = (sa.select(c.tier, sa.func.count()).where(*_queue_filters(group, assignee, None, ticket))
                 .group_by(c.tier))
        with self.engine.connect() as connection:
            return {tier: int(n) for tier, n in connection.execute(query)}

    def choices(self) -> dict[str, list[str]]:
        """The groups and assignees present in the queue, for the page's filters."""
        with self.engine.connect() as connection:
            return {name: [v for v in connection.execute(
                        sa.select(column).distinct().where(column.is_not(None)).order_by(column)).scalars()]
                    for name, column in (("groups", ticket_priorities.c.group),
                                         ("assignees", ticket_priorities.c.assignee))}

    def latest_run(self) -> dict | None:
        query = sa.select(scoring_runs).order_by(scoring_runs.c.run_id.desc()).limit(1)
        with self.engine.connect() as connection:
            row = connection.execute(query).mappings().first()
        return dict(row) if row else None

    def runs(self) -> pd.DataFrame:
        return self._frame(sa.select(scoring_runs).order_by(scoring_runs.c.run_id))

    def ticket(self, ticket_id: str) -> dict | None:
        """The ticket's row in the current queue, or None when it is not in it."""
        query = sa.select(ticket_priorities).where(ticket_priorities.c.ticket_id == ticket_id)
        with self.engine.connect() as connection:
            row = connection.execute(query).mappings().first()
        return dict(row) if row else None

    def history(self, ticket_id: str) -> pd.DataFrame:
        """The ticket's scores in each kept run, oldest first."""
        h = ticket_score_history
        return self._frame(sa.select(h).where(h.c.ticket_id == ticket_id).order_by(h.c.run_id))

    def feedback_for(self, ticket_id: str) -> pd.DataFrame:
        """The feedback given on the ticket, newest first."""
        f = feedback
        return self._frame(sa.select(f).where(f.c.ticket_id == ticket_id).order_by(f.c.feedback_id.desc()))

    def add_feedback(self, ticket_id: str, verdict: str, agent: str, note: str = "") -> dict | None:
        """Store one verdict on the ticket's latest scoring; None when the ticket was never scored."""
        if verdict not in FEEDBACK_VERDICTS:
            raise ValueError(f"verdict must be one of {FEEDBACK_VERDICTS}, not {verdict!r}")
        h, q = ticket_score_history, ticket_priorities
        with self.engine.begin() as connection:
            latest = connection.execute(
                sa.select(h.c.model_version, h.c.run_id).where(h.c.ticket_id == ticket_id)
                .order_by(h.c.run_id.desc()).limit(1)).mappings().first()
            if latest is None:  # a queue written before the history table: the queue is the latest run's
                version = connection.execute(sa.select(q.c.model_version).where(q.c.ticket_id == ticket_id)).scalar()
                if version is None:
                    return None
                run_id = connection.execute(sa.select(sa.func.max(scoring_runs.c.run_id))).scalar()
                latest = {"model_version": version, "run_id": run_id}
            row = {"ticket_id": ticket_id, "verdict": verdict, "agent": agent, "note": note,
                   "model_version": latest["model_version"], "run_id": latest["run_id"], "created_at": _now()}
            feedback_id = connection.execute(feedback.insert().values(**row)).inserted_primary_key[0]
        return {"feedback_id": feedback_id, **row}


def read_queue(url: str, group: str | None = None, assignee: str | None = None, limit: int | None = None,
               tier: str | None = None) -> pd.DataFrame:
    """The queue in rank order, optionally for one group, assignee or tier. Creates nothing."""
    engine, shown = reader_engine(url)
    _has_queue(engine, shown)
    try:
        return QueueStore(engine, shown).queue(group, assignee, tier, limit=limit)
    finally:
        engine.dispose()


def read_runs(url: str) -> pd.DataFrame:
    engine, shown = reader_engine(url)
    try:
        return QueueStore(engine, shown).runs()
    finally:
        engine.dispose()


def read_history(url: str, ticket_id: str | None = None) -> pd.DataFrame:
    """``ticket_score_history`` (one ticket's or all), by run then rank."""
    engine, _ = reader_engine(url)
    h = ticket_score_history
    query = sa.select(h).order_by(h.c.run_id, h.c.rank)
    try:
        with engine.connect() as connection:
            return pd.read_sql(query.where(h.c.ticket_id == ticket_id) if ticket_id else query, connection)
    finally:
        engine.dispose()



def read_outcome_inputs(url: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``scoring_runs``, ``ticket_score_history`` and ``feedback`` (the latter empty when the table is
    not there yet), for `csat-triage monitor`. Creates nothing; no history is a one-line UserError."""
    engine, shown = reader_engine(url)
    try:
        _has_queue(engine, shown)
        with engine.connect() as connection:
            inspector = sa.inspect(connection)
            if not inspector.has_table(ticket_score_history.name):
                raise UserError(f"{shown}: no ticket_score_history table (written by `csat-triage score` since "
                                "the history was added): score with --db first")
            runs = pd.read_sql(sa.select(scoring_runs).order_by(scoring_runs.c.run_id), connection)
            h = ticket_score_history
            history = pd.read_sql(sa.select(h).order_by(h.c.run_id, h.c.rank), connection)
            if inspector.has_table(feedback.name):
                verdicts = pd.read_sql(sa.select(feedback).order_by(feedback.c.feedback_id), connection)
            else:
                verdicts = pd.DataFrame(columns=[c.name for c in feedback.columns])
        return runs, history, verdicts
    finally:
        engine.dispose()
