"""Importer for the Kaggle "Customer Support Ticket Dataset" — the negative control.

This module owns the translation of that file (one row per ticket; CC0 as
published) into the export contract. Its ratings are random, so a pipeline that
shows skill on the import is leaking or over-fitting; the import itself must
therefore add no signal: every synthetic choice below depends only on the ticket
id or on the file's own timestamps, never on the rating.

Mapping and decisions (deterministic; counts in :class:`ImportSummary`):

* ``ticket_id`` = ``Ticket ID``; ``requester_id`` = ``cust-`` + 16 hex digits of a
  keyed SipHash (:func:`pandas.util.hash_pandas_object`) of the lower-cased
  ``Customer Email``. The e-mail itself, the name, age and gender are not kept.
  This is pseudonymisation (the key is in the source), fine for this synthetic file.
* ``channel``: Email/Phone/Chat/Social media -> email/phone/chat/social.
  ``priority``: Low/Medium/High/Critical -> low/normal/high/urgent.
  ``status``: Open/Pending Customer Response/Closed -> open/pending/closed.
  ``subject`` = ``Ticket Subject``; ``Ticket Type`` and ``Product Purchased`` are
  kept as extra columns ``ticket_type`` and ``product_purchased``.
* ``satisfaction`` from ``Customer Satisfaction Rating``: 1-2 -> ``bad``, 3-5 ->
  ``good``, empty -> empty (only closed tickets are rated in this file); any other
  value -> empty and counted as unusable.
* ``created_at``: the file has none. A ticket with a ``First Response Time`` is
  created 1-240 whole minutes before it (offset from a hash of the ticket id). A
  ticket without one (all ``Open`` tickets) is created at a hash-chosen minute
  spread uniformly over the file's time range (earliest timestamp minus 240 minutes
  to the latest timestamp), so a time-based split has tickets of every status on
  both sides.
* Events: the customer's opening message at ``created_at`` (body = ``Ticket
  Description``, placeholders such as ``{product_purchased}`` left as published);
  an agent reply at ``First Response Time`` (body = ``Resolution`` text, which only
  closed tickets have, else empty); for pending tickets a ``pending`` status event
  at the first response; for closed tickets a ``closed`` status event at ``Time to
  Resolution``. In 49% of closed tickets that time is *before* the first response;
  a ticket cannot be closed before its first reply, so the closing is moved to the
  first response time (counted as ``resolutions_moved_to_first_response``).
* ``satisfaction_at`` = closing time + 1 minute (a rating follows the closure, so
  a snapshot taken at the closure does not see it).
* Timestamps are ``month/day/year hour:minute`` without zone, read as UTC.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.core.errors import ExportError
from pipeline.core.io import read_source_table, write_export

# The public copy of the Kaggle file, next to (never inside) the project repository.
DEFAULT_SOURCE_PATH = (
    Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets"
    / "negative-control-kaggle-cst" / "customer_support_tickets.csv.gz"
)
SOURCE_TIME_FORMAT = "%m/%d/%Y %H:%M"
MAX_CREATION_OFFSET_MINUTES = 240
RATING_DELAY_MINUTES = 1
BAD_RATINGS = (1, 2)
GOOD_RATINGS = (3, 4, 5)
# Fixed 16-byte SipHash keys: one per purpose so the derived values are independent.
_REQUESTER_HASH_KEY = "csat-triage-kcst"
_OFFSET_HASH_KEY = "csat-triage-ofst"
_SPREAD_HASH_KEY = "csat-triage-sprd"

CHANNEL_TO_CONTRACT = {"email": "email", "phone": "phone", "chat": "chat", "social media": "social"}
PRIORITY_TO_CONTRACT = {"low": "low", "medium": "normal", "high": "high", "critical": "urgent"}
STATUS_TO_CONTRACT = {"open": "open", "pending customer response": "pending", "closed": "closed"}

REQUIRED_SOURCE_COLUMNS = (
    "Ticket ID",
    "Customer Email",
    "Ticket Subject",
    "Ticket Description",
    "Ticket Status",
    "Resolution",
    "Ticket Priority",
    "Ticket Channel",
    "First Response Time",
    "Time to Resolution",
    "Customer Satisfaction Rating",
)
EXTRA_TICKET_COLUMNS = {"Ticket Type": "ticket_type", "Product Purchased": "product_purchased"}


@dataclass(frozen=True)
class ImportSummary:
    """Counts from one Kaggle import; every source row becomes exactly one ticket.

    ``rows_read = tickets + rows_dropped_no_ticket_id``;
    ``tickets = created_at_before_first_response + created_at_spread``;
    ``tickets = good_ratings + bad_ratings + unrated + ratings_unusable``.
    """

    rows_read: int
    tickets: int
    events_written: int
    customer_messages: int
    agent_replies: int
    status_events: int
    good_ratings: int
    bad_ratings: int
    unrated: int
    ratings_unusable: int
    created_at_before_first_response: int
    created_at_spread: int
    resolutions_moved_to_first_response: int
    unparseable_times: int
    rows_dropped_no_ticket_id: int

    def as_dict(self) -> dict[str, int]:
        """The counts as a plain dict (for JSON reports)."""
        return asdict(self)

    @property
    def bad_share(self) -> float:
        """Share of labelled tickets rated bad, 0..1 (0 when nothing is labelled)."""
        labelled = self.good_ratings + self.bad_ratings
        return self.bad_ratings / labelled if labelled else 0.0


def import_kaggle_cst(
    src: str | os.PathLike, out_dir: str | os.PathLike, fmt: str = "csv"
) -> ImportSummary:
    """Convert the Kaggle ticket CSV (plain or ``.gz``) into an export directory.

    Writes ``tickets.<fmt>`` and ``events.<fmt>`` into ``out_dir`` atomically and
    returns the counts. Raises :class:`ExportError` (one line) when the file cannot
    be read or lacks a required column.
    """
    raw = read_kaggle_cst(src)
    tickets, events, summary = convert_kaggle_cst(raw)
    write_export(out_dir, tickets, events, fmt)
    return summary


def read_kaggle_cst(src: str | os.PathLike) -> pd.DataFrame:
    """Read the Kaggle file with every column as text; check the required columns."""
    return read_source_table(src, REQUIRED_SOURCE_COLUMNS, "Kaggle customer support ticket file")


def convert_kaggle_cst(raw: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, ImportSummary]:
    """Turn the raw Kaggle rows into contract ``(tickets, events, summary)``.

    ``raw`` is the all-text frame from :func:`read_kaggle_cst`. ``tickets`` has one
    row per kept source row in file order; ``events`` is ordered by ticket (file
    order), then time; timestamps are ``datetime64[ns, UTC]``.
    """
    raw = raw.reset_index(drop=True)
    ticket_id = raw["Ticket ID"].astype(str).str.strip()
    has_id = ticket_id != ""
    rows = raw[has_id.to_numpy()].reset_index(drop=True)
    ticket_id = ticket_id[has_id].reset_index(drop=True)

    first_response_text = rows["First Response Time"].astype(str).str.strip()
    resolution_text = rows["Time to Resolution"].astype(str).str.strip()
    first_response_at = parse_kaggle_times(first_response_text)
    resolved_at = parse_kaggle_times(resolution_text)
    unparseable = int(
        ((first_response_text != "") & first_response_at.isna()).sum()
        + ((resolution_text != "") & resolved_at.isna()).sum()
    )
    created_at = synthetic_created_at(ticket_id, first_response_at, resolved_at)
    status = _map_text(rows["Ticket Status"], STATUS_TO_CONTRACT, keep_unknown=True)
    closed_at = resolved_at.where(
        first_response_at.isna() | (resolved_at >= first_response_at), first_response_at
    ).where(status == "closed")
    satisfaction, rating_unusable = rating_to_satisfaction(rows["Customer Satisfaction Rating"])
    satisfaction_at = (closed_at + pd.Timedelta(minutes=RATING_DELAY_MINUTES)).where(satisfaction != "")

    tickets = pd.DataFrame(
        {
            "ticket_id": ticket_id,
            "created_at": created_at,
            "channel": _map_text(rows["Ticket Channel"], CHANNEL_TO_CONTRACT, keep_unknown=True),
            "status": status,
            "priority": _map_text(rows["Ticket Priority"], PRIORITY_TO_CONTRACT, keep_unknown=False),
            "requester_id": requester_ids(rows["Customer Email"]),
            "group": "",
            "assignee": "",
            "subject": rows["Ticket Subject"].astype(str),
            "satisfaction": satisfaction,
            "satisfaction_at": satisfaction_at,
        }
    )
    for source, column in EXTRA_TICKET_COLUMNS.items():
        if source in rows.columns:
            tickets[column] = rows[source].astype(str)

    events = _build_events(ticket_id, created_at, first_response_at, closed_at, status, rows)
    kinds = events["kind"].to_numpy()
    summary = ImportSummary(
        rows_read=len(raw),
        tickets=len(tickets),
        events_written=len(events),
        customer_messages=int(((kinds == "message") & (events["actor"] == "customer")).sum()),
        agent_replies=int(((kinds == "message") & (events["actor"] == "agent")).sum()),
        status_events=int((kinds == "status").sum()),
        good_ratings=int((satisfaction == "good").sum()),
        bad_ratings=int((satisfaction == "bad").sum()),
        unrated=int(((satisfaction == "") & ~rating_unusable).sum()),
        ratings_unusable=int(rating_unusable.sum()),
        created_at_before_first_response=int(first_response_at.notna().sum()),
        created_at_spread=int(first_response_at.isna().sum()),
        resolutions_moved_to_first_response=int(
            ((status == "closed") & (resolved_at < first_response_at)).sum()
        ),
        unparseable_times=unparseable,
        rows_dropped_no_ticket_id=int((~has_id).sum()),
    )
    return tickets, events, summary


def parse_kaggle_times(text: pd.Series) -> pd.Series:
    """``6/1/2023 19:31`` (month/day/year) to ``datetime64[ns, UTC]``; empty or bad -> NaT."""
    text = text.astype(str).str.strip()
    stamps = pd.to_datetime(text.where(text != ""), format=SOURCE_TIME_FORMAT, errors="coerce", utc=True)
    return stamps.astype("datetime64[ns, UTC]")


def unit_hash(values: pd.Series, key: str) -> np.ndarray:
    """Deterministic keyed 64-bit hash of each value's text, as a float in [0, 1)."""
    hashed = pd.util.hash_pandas_object(values.astype(str), index=False, hash_key=key).to_numpy()
    # The top 53 bits fit a float64 mantissa exactly.
    return (hashed >> np.uint64(11)).astype(np.float64) / float(2**53)


def synthetic_created_at(
    ticket_id: pd.Series, first_response_at: pd.Series, resolved_at: pd.Series
) -> pd.Series:
    """Creation time per ticket (UTC, whole minutes); see the module docstring for the rule.

    ``first_response_at`` minus 1..240 minutes when present, else a minute spread
    uniformly over [earliest file timestamp - 240 min, latest file timestamp].
    """
    offset_minutes = 1 + np.floor(
        unit_hash(ticket_id, _OFFSET_HASH_KEY) * MAX_CREATION_OFFSET_MINUTES
    )
    before_response = first_response_at - pd.to_timedelta(offset_minutes, unit="min")

    all_times = pd.concat([first_response_at, resolved_at]).dropna()
    if all_times.empty:
        raise ExportError(
            "Kaggle ticket file has no First Response Time or Time to Resolution; "
            "cannot place tickets in time"
        )
    range_start = all_times.min() - pd.Timedelta(minutes=MAX_CREATION_OFFSET_MINUTES)
    span_minutes = (all_times.max() - range_start) / pd.Timedelta(minutes=1)
    spread_minutes = np.floor(unit_hash(ticket_id, _SPREAD_HASH_KEY) * (span_minutes + 1))
    spread = range_start + pd.to_timedelta(spread_minutes, unit="min")
    return before_response.where(first_response_at.notna(), spread).astype("datetime64[ns, UTC]")


def rating_to_satisfaction(ratings: pd.Series) -> tuple[pd.Series, pd.Series]:
    """1-2 -> ``bad``, 3-5 -> ``good``, empty -> ``""``; returns (satisfaction, unusable mask).

    ``unusable`` marks non-empty ratings that are not a whole number 1-5 (they
    become ``""`` too, and are counted separately from genuinely unrated tickets).
    """
    text = ratings.astype(str).str.strip()
    number = pd.to_numeric(text.where(text != ""), errors="coerce")
    satisfaction = pd.Series("", index=ratings.index, dtype=object)
    satisfaction[number.isin(BAD_RATINGS)] = "bad"
    satisfaction[number.isin(GOOD_RATINGS)] = "good"
    unusable = (text != "") & (satisfaction == "")
    return satisfaction, unusable


def requester_ids(emails: pd.Series) -> pd.Series:
    """Pseudonymous requester id per e-mail (``cust-`` + 16 hex digits); empty stays empty."""
    normalised = emails.astype(str).str.strip().str.lower()
    hashed = pd.util.hash_pandas_object(
        normalised, index=False, hash_key=_REQUESTER_HASH_KEY
    ).to_numpy()
    ids = pd.Series(np.char.mod("cust-%016x", hashed), index=emails.index, dtype=object)
    return ids.where(normalised != "", "")


def _map_text(values: pd.Series, mapping: dict[str, str], keep_unknown: bool) -> pd.Series:
    """Case-insensitive mapping; unknown values stay (lower-cased) or become ``""``.

    Kept unknown values reach the validator, which rejects them with a reason.
    """
    lowered = values.astype(str).str.strip().str.lower()
    mapped = lowered.map(mapping)
    return mapped.fillna(lowered if keep_unknown else "").astype(object)


def _build_events(
    ticket_id: pd.Series,
    created_at: pd.Series,
    first_response_at: pd.Series,
    closed_at: pd.Series,
    status: pd.Series,
    rows: pd.DataFrame,
) -> pd.DataFrame:
    """Opening message, agent reply, pending/closed status events; ordered by ticket then time."""
    resolution = rows["Resolution"].astype(str)
    has_reply = first_response_at.notna()
    pending = has_reply & (status == "pending")
    closed = closed_at.notna()
    parts = (
        # (mask, at, actor, kind, value, body)
        (pd.Series(True, index=ticket_id.index), created_at, "customer", "message", "",
         rows["Ticket Description"].astype(str)),
        (has_reply, first_response_at, "agent", "message", "", resolution),
        (pending, first_response_at, "agent", "status", "pending", ""),
        (closed, closed_at, "agent", "status", "closed", ""),
    )
    frames = []
    for part_order, (mask, at, actor, kind, value, body) in enumerate(parts):
        mask = mask.to_numpy()
        body_values = body[mask].to_numpy() if isinstance(body, pd.Series) else body
        frames.append(
            pd.DataFrame(
                {
                    "ticket_id": ticket_id[mask].to_numpy(),
                    "at": at[mask].to_numpy(),
                    "actor": actor,
                    "kind": kind,
                    "value": value,
                    "body": body_values,
                    "_ticket_order": np.flatnonzero(mask),
                    "_part_order": part_order,
                }
            )
        )
    events = pd.concat(frames, ignore_index=True)
    events["at"] = pd.to_datetime(events["at"], utc=True).astype("datetime64[ns, UTC]")
    events = events.sort_values(["_ticket_order", "at", "_part_order"], kind="stable", ignore_index=True)
    return events.drop(columns=["_ticket_order", "_part_order"])
