"""What the queue page shows, computed from the database's frames: human waits, reasons as
lists, readable times and the score-history chart's coordinates. No I/O here."""

from __future__ import annotations

import pandas as pd

from models.reasons import duration
from models.scoring import QUEUE_EXTRA_COLUMNS, SCORE_COLUMNS
from pipeline.sinks.writeback import HISTORY_COLUMNS as STORED_HISTORY_COLUMNS

API_COLUMNS = (*SCORE_COLUMNS, *QUEUE_EXTRA_COLUMNS)
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


def history_chart(history: pd.DataFrame, width: int = 640, height: int = 160, pad: int = 24) -> dict | None:
    """SVG coordinates of the priority score and risk (both 0-100) over the ticket's runs, oldest left."""
    if history.empty:
        return None
    n = len(history)
    step = (width - 2 * pad) / max(n - 1, 1)
    x = [round(pad + i * step, 1) if n > 1 else width / 2 for i in range(n)]

    def y(values: pd.Series) -> list[float]:
        scaled = pd.to_numeric(values, errors="coerce").fillna(0).clip(0, 100)
        return [round(height - pad - v / 100 * (height - 2 * pad), 1) for v in scaled]

    score_y, risk_y = y(history["priority_score"]), y(history["risk"])
    dots = [{"x": xi, "y": yi, "tier": tier, "label": f"{when(at)}: priority {score:.0f}, {tier}"}
            for xi, yi, tier, at, score in zip(x, score_y, history["tier"], history["scored_at"],
                                               history["priority_score"])]
    return {
        "width": width, "height": height,
        "score": " ".join(f"{a},{b}" for a, b in zip(x, score_y)),
        "risk": " ".join(f"{a},{b}" for a, b in zip(x, risk_y)),
        "dots": dots,
        "grid": [{"y": round(height - pad - v / 100 * (height - 2 * pad), 1), "label": v} for v in (0, 50, 100)],
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
