"""What the queue page shows, computed from the database's frames: human waits, reasons as
lists, readable times and the score-history chart's coordinates. No I/O here."""

from __future__ import annotations

import math

import pandas as pd

from models.reasons import duration
from pipeline.sinks.writeback import HISTORY_COLUMNS as STORED_HISTORY_COLUMNS
from pipeline.sinks.writeback import ticket_priorities

# The queue table's columns, which are models.scoring's SCORE_COLUMNS + QUEUE_EXTRA_COLUMNS (tested):
# importing models.scoring would load LightGBM and add seconds to every `serve` start.
API_COLUMNS = tuple(column.name for column in ticket_priorities.columns)
HISTORY_COLUMNS = ("run_id", *STORED_HISTORY_COLUMNS)
REASON_SEPARATOR = "; "  # models.reasons.top_reasons joins a ticket's reasons with it
TIER_NOTES = {"P1": "work on first", "P2": "today", "P3": "when P1-P2 are clear", "P4": "low priority"}
TIERS = tuple(TIER_NOTES)


def records(frame: pd.DataFrame, columns=API_COLUMNS) -> list[dict]:
    """Rows as JSON-ready dicts (missing values as None), in the frame's order."""
    present = [c for c in columns if c in frame.columns]
    return frame[present].astype(object).where(frame[present].notna(), None).to_dict(orient="records")


def waits(minutes: pd.Series) -> pd.Series:
    """"26 h" for a customer waiting, "-" for nobody waiting."""
    waiting = pd.to_numeric(minutes, errors="coerce").fillna(0) > 0
    return duration(minutes).where(waiting, "-")


def when(stamp: object) -> str:
    """An ISO time as "2026-05-04 23:59 UTC" ("-" when absent or unreadable)."""
    moment = pd.to_datetime(stamp, utc=True, errors="coerce") if stamp else pd.NaT
    return "-" if pd.isna(moment) else moment.strftime("%Y-%m-%d %H:%M UTC")


def number(value: float | None, digits: int = 3) -> str:
    """0.812 for a metric; "-" when the monitor could not compute it (no outcomes, one class)."""
    return "-" if value is None else f"{value:.{digits}f}"


def percent(value: float | None) -> str:
    """A rate as "38 %" ("-" when unknown)."""
    return "-" if value is None else f"{100 * value:.0f} %"


def queue_rows(queue: pd.DataFrame) -> list[dict]:
    """The queue table's rows: the stored values plus the wait in words and the reasons as a list."""
    if queue.empty:
        return []
    shown = queue.assign(
        wait=waits(queue["current_wait_minutes"]),
        reason_list=queue["reasons"].fillna("").str.split(REASON_SEPARATOR).map(lambda parts: [p for p in parts if p]),
    )
    return records(shown, (*API_COLUMNS, "wait", "reason_list"))


def ticket_record(row: dict) -> dict:
    """One queue row (from the database) with the API's columns."""
    return records(pd.DataFrame([row]))[0]


def ticket_view(row: dict) -> dict:
    """One queue row for the ticket page."""
    return {**queue_rows(pd.DataFrame([row]))[0], "scored": when(row.get("scored_at"))}


def chart_top(values: pd.Series) -> int:
    """The chart's upper bound: 100, or the largest value rounded up to a multiple of 50 (the priority
    score of a long-overdue ticket exceeds 100, and a clipped line would hide how far)."""
    largest = pd.to_numeric(values, errors="coerce").max()
    return 100 if pd.isna(largest) or largest <= 100 else int(math.ceil(largest / 50) * 50)


def history_chart(history: pd.DataFrame, width: int = 640, height: int = 160, pad: int = 24) -> dict | None:
    """SVG coordinates of the priority score and risk over the ticket's runs, oldest left; the axis
    runs from 0 to 100 or higher when a priority score is above 100."""
    if history.empty:
        return None
    n = len(history)
    step = (width - 2 * pad) / max(n - 1, 1)
    x = [round(pad + i * step, 1) if n > 1 else width / 2 for i in range(n)]
    top = chart_top(pd.concat([history["priority_score"], history["risk"]]))

    def y(values: pd.Series) -> list[float]:
        scaled = pd.to_numeric(values, errors="coerce").fillna(0).clip(0, top)
        return [round(height - pad - v / top * (height - 2 * pad), 1) for v in scaled]

    score_y, risk_y = y(history["priority_score"]), y(history["risk"])
    dots = [{"x": xi, "y": yi, "tier": tier, "label": f"{when(at)}: priority {score:.0f}, {tier}"}
            for xi, yi, tier, at, score in zip(x, score_y, history["tier"], history["scored_at"],
                                               history["priority_score"])]
    return {
        "width": width, "height": height,
        "score": " ".join(f"{a},{b}" for a, b in zip(x, score_y)),
        "risk": " ".join(f"{a},{b}" for a, b in zip(x, risk_y)),
        "dots": dots,
        "grid": [{"y": round(height - pad - v / top * (height - 2 * pad), 1), "label": v}
                 for v in range(0, top + 1, 50 if top <= 200 else 100)],
        "first": when(history["scored_at"].iloc[0]), "last": when(history["scored_at"].iloc[-1]),
    }


def history_rows(history: pd.DataFrame) -> list[dict]:
    """The history table, newest run first."""
    rows = records(history, HISTORY_COLUMNS)
    for row in rows:
        row["scored"] = when(row["scored_at"])
    return rows[::-1]


def feedback_rows(feedback: pd.DataFrame) -> list[dict]:
    rows = records(feedback, ("feedback_id", "verdict", "agent", "note", "model_version", "run_id", "created_at"))
    for row in rows:
        row["created"] = when(row["created_at"])
    return rows
