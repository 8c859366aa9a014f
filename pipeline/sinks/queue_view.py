"""The agents' view of the scored queue: a readable terminal table in rank order."""

from __future__ import annotations

import pandas as pd
from rich.console import Console
from rich.table import Table

from models.reasons import duration
from pipeline.sinks.writeback import read_queue

TIER_STYLE = {"P1": "bold red", "P2": "yellow", "P3": "cyan", "P4": "dim"}


def queue_table(queue: pd.DataFrame) -> Table:
    """A rich table with one row per ticket: rank, ticket, tier, risk, urgency, wait, group, assignee, reasons."""
    table = Table(title=f"Queue ({len(queue)} tickets)", show_lines=False)
    for column, kwargs in (("#", {"justify": "right"}), ("ticket", {}), ("tier", {}), ("risk", {"justify": "right"}),
                           ("urgency", {}), ("waiting", {"justify": "right"}), ("group", {}), ("assignee", {})):
        table.add_column(column, no_wrap=True, **kwargs)
    table.add_column("reasons", ratio=1, min_width=40)
    waits = duration(queue["current_wait_minutes"].fillna(0)) if len(queue) else pd.Series(dtype=str)
    waits = waits.where(queue["current_wait_minutes"].fillna(0) > 0, "-") if len(queue) else waits
    for row, wait in zip(queue.itertuples(index=False), waits):
        style = TIER_STYLE.get(row.tier, "")
        table.add_row(
            str(row.rank), str(row.ticket_id), f"[{style}]{row.tier}[/]", str(row.risk), _text(row.urgency), wait,
            _text(row.group), _text(row.assignee), _text(row.reasons),
        )
    return table


def _text(value) -> str:
    return "-" if value is None or (isinstance(value, float) and pd.isna(value)) or value == "" else str(value)


def show_queue(db_url: str, group: str | None = None, assignee: str | None = None, limit: int | None = 20,
               console: Console | None = None) -> pd.DataFrame:
    """Print the queue and return the rows shown."""
    queue = read_queue(db_url, group, assignee, limit)
    console = console or Console()
    if not console.is_terminal:
        console.width = max(console.width, 160)  # files and pipes: keep one line per ticket
    if queue.empty:
        console.print("queue is empty" + (f" for group {group!r}" if group else "") + (f" for {assignee!r}" if assignee else ""))
        return queue
    console.print(queue_table(queue))
    return queue
