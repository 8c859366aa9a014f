"""Writing the scored queue where agents work: a database table (any SQLAlchemy URL).

``ticket_priorities`` holds one row per ticket in the latest queue (upserted by
``ticket_id``; tickets no longer in the queue are removed in the same transaction).
``scoring_runs`` gets one row per run. Everything happens in one transaction, so a
failed run leaves both tables as they were. Re-running the same export leaves
``ticket_priorities`` identical.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from models.scoring import QUEUE_EXTRA_COLUMNS, SCORE_COLUMNS
from pipeline.core.errors import UserError

metadata = sa.MetaData()
ticket_priorities = sa.Table(
    "ticket_priorities", metadata,
    sa.Column("ticket_id", sa.String(64), primary_key=True),
    sa.Column("p_bad", sa.Float, nullable=False),
    sa.Column("risk", sa.Integer, nullable=False),
    sa.Column("urgency", sa.String(16), nullable=False),
    sa.Column("p_urgent", sa.Float, nullable=False),
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


def default_database_url(out_file: str | Path) -> str:
    """An embedded SQLite file beside the scored file: ``<dir>/priorities.sqlite``."""
    return f"sqlite:///{Path(out_file).resolve().parent / 'priorities.sqlite'}"


def engine_for(url: str) -> sa.Engine:
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    return sa.create_engine(url, future=True)


def _records(scored: pd.DataFrame) -> list[dict]:
    columns = [c for c in SCORE_COLUMNS + QUEUE_EXTRA_COLUMNS if c in scored.columns]
    frame = scored[columns].astype(object).where(scored[columns].notna(), None)
    frame["scored_at"] = scored["scored_at"].astype(str)
    return frame.to_dict(orient="records")


def write_queue(url: str, scored: pd.DataFrame, run: dict, batch_size: int = 5000) -> None:
    """Upsert ``scored`` into ``ticket_priorities`` and append ``run`` to ``scoring_runs``, atomically."""
    engine = engine_for(url)
    metadata.create_all(engine)
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
        connection.execute(scoring_runs.insert(), [{
            **run, "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }])
    engine.dispose()


def read_queue(url: str, group: str | None = None, assignee: str | None = None, limit: int | None = None) -> pd.DataFrame:
    """The queue in rank order, optionally for one group or assignee."""
    engine = engine_for(url)
    if not sa.inspect(engine).has_table("ticket_priorities"):
        engine.dispose()
        raise UserError(f"no scored queue in {url}: run `csat-triage score` first")
    query = sa.select(ticket_priorities).order_by(ticket_priorities.c.rank)
    if group:
        query = query.where(ticket_priorities.c.group == group)
    if assignee:
        query = query.where(ticket_priorities.c.assignee == assignee)
    if limit:
        query = query.limit(limit)
    with engine.connect() as connection:
        frame = pd.read_sql(query, connection)
    engine.dispose()
    return frame


def read_runs(url: str) -> pd.DataFrame:
    engine = engine_for(url)
    with engine.connect() as connection:
        frame = pd.read_sql(sa.select(scoring_runs).order_by(scoring_runs.c.run_id), connection)
    engine.dispose()
    return frame
