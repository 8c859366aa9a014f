"""Six more ticket attributes for the benchmark exports, so featurize pays for ten.

The simulator emits four attributes as ``field`` events (form, product_area,
customer_plan, order_value_usd). Issue 15's performance criterion is featurize at 1 M
tickets with *ten*, so every benchmark export also carries the six below. They have
no effect on ratings: they exist to be costed, and cover the shapes a real helpdesk
export has (set once, changed later, set then cleared, numeric, high cardinality).

| attribute | kind | timeline |
| --- | --- | --- |
| ``organization`` | categorical, one level per simulated organisation (about 14.6 k at 1 M tickets) | set at creation from the ticket row, on tickets that have one |
| ``brand`` | categorical, 3 levels | set at creation on every ticket |
| ``category`` | categorical, 30 levels (Zipf) | set at creation on 70 %; an agent re-categorises 35 % later |
| ``escalation_tier`` | numeric 0-2 | 0 at creation; 15 % go to 1 later, a third of those then to 2 |
| ``account_value_usd`` | numeric, one value per requester (log-normal, cents) | set at creation on 80 % |
| ``pending_reason`` | categorical, 5 levels | an agent sets it on 25 % later; 70 % of those clear it again (empty value) |

Later changes happen at one of the ticket's own event seconds (an agent's update
saves the fields), so they never fall after the export or before creation. About 4.9
extra events per ticket; the merged events stay sorted by (ticket, second), the new
events after the simulator's on a tie. Vectorised over tickets; untimed (export
generation).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# Bump when the attributes or the way exports are written change (2: Parquet timestamps typed):
# cached exports made by another version are regenerated.
VERSION = 2
NAMES = ("organization", "brand", "category", "escalation_tier", "account_value_usd", "pending_reason")

BRANDS = ("main", "outlet", "pro")
BRAND_P = (0.7, 0.2, 0.1)
CATEGORIES = tuple(f"category_{i:02d}" for i in range(30))
CATEGORY_AT_CREATION_P = 0.7
CATEGORY_CHANGED_P = 0.35
ESCALATED_P = 0.15
ESCALATED_TWICE_P = 1 / 3
ACCOUNT_VALUE_SET_P = 0.8
ACCOUNT_VALUE_MEDIAN_USD = 1200.0
PENDING_REASONS = ("awaiting_customer", "awaiting_vendor", "awaiting_engineering", "refund_in_progress", "on_hold")
PENDING_SET_P = 0.25
PENDING_CLEARED_P = 0.7


def with_benchmark_attributes(tickets: pd.DataFrame, events: pd.DataFrame, seed: int) -> pd.DataFrame:
    """``events`` plus the six attributes' ``field`` events, sorted by (ticket, second), same columns."""
    rng = np.random.default_rng([seed, 0xA77])
    n = len(tickets)
    ticket_of_event = pd.Index(tickets["ticket_id"]).get_indexer(events["ticket_id"]).astype(np.int64)
    created_s = _epoch_seconds(tickets["created_at"])
    event_s = _epoch_seconds(events["at"])
    later = _LaterMoments(rng, ticket_of_event, event_s, created_s)
    blocks: list[tuple[np.ndarray, np.ndarray, str, str, np.ndarray]] = []

    def add(rows: np.ndarray, at_s: np.ndarray, actor: str, name: str, values: np.ndarray) -> None:
        blocks.append((rows, at_s, actor, name, np.asarray(values, dtype=object)))

    everyone = np.arange(n)
    if "organization" in tickets.columns:
        organization = tickets["organization"].fillna("").astype(str).to_numpy(dtype=object)
        rows = np.flatnonzero(organization != "")
        add(rows, created_s[rows], "system", "organization", organization[rows])
    add(everyone, created_s, "system", "brand", np.asarray(BRANDS, dtype=object)[rng.choice(3, n, p=BRAND_P)])

    category_p = 1.0 / np.arange(1, len(CATEGORIES) + 1)
    category_p /= category_p.sum()
    categories = np.asarray(CATEGORIES, dtype=object)
    rows = np.flatnonzero(rng.random(n) < CATEGORY_AT_CREATION_P)
    add(rows, created_s[rows], "system", "category",
        categories[rng.choice(len(CATEGORIES), len(rows), p=category_p)])
    rows = np.flatnonzero(rng.random(n) < CATEGORY_CHANGED_P)
    add(rows, later.one(rows), "agent", "category", categories[rng.choice(len(CATEGORIES), len(rows), p=category_p)])

    add(everyone, created_s, "system", "escalation_tier", np.full(n, "0", dtype=object))
    rows = np.flatnonzero(rng.random(n) < ESCALATED_P)
    first, second = later.two(rows)
    add(rows, first, "agent", "escalation_tier", np.full(len(rows), "1", dtype=object))
    twice = rng.random(len(rows)) < ESCALATED_TWICE_P
    add(rows[twice], second[twice], "agent", "escalation_tier", np.full(int(twice.sum()), "2", dtype=object))

    requester = pd.factorize(tickets["requester_id"].astype(str))[0]
    per_requester = np.round(ACCOUNT_VALUE_MEDIAN_USD * np.exp(rng.normal(0.0, 1.2, requester.max(initial=0) + 1)), 2)
    rows = np.flatnonzero(rng.random(n) < ACCOUNT_VALUE_SET_P)
    add(rows, created_s[rows], "system", "account_value_usd", per_requester[requester[rows]].astype(str))

    rows = np.flatnonzero(rng.random(n) < PENDING_SET_P)
    set_s, cleared_s = later.two(rows)
    add(rows, set_s, "agent", "pending_reason",
        np.asarray(PENDING_REASONS, dtype=object)[rng.integers(0, len(PENDING_REASONS), len(rows))])
    cleared = rng.random(len(rows)) < PENDING_CLEARED_P
    add(rows[cleared], cleared_s[cleared], "agent", "pending_reason", np.full(int(cleared.sum()), "", dtype=object))

    return _merge(events, ticket_of_event, event_s, tickets["ticket_id"], blocks)


def _epoch_seconds(values: pd.Series) -> np.ndarray:
    return pd.to_datetime(values, utc=True).dt.tz_localize(None).to_numpy(dtype="datetime64[s]").astype(np.int64)


class _LaterMoments:
    """Seconds of a ticket's own events, drawn at random (its creation when it has none)."""

    def __init__(self, rng: np.random.Generator, ticket_of_event: np.ndarray, event_s: np.ndarray,
                 created_s: np.ndarray) -> None:
        self.rng = rng
        order = np.argsort(ticket_of_event, kind="stable")  # the simulator's order already: a cheap sort
        self.sorted_ticket = ticket_of_event[order]
        self.sorted_s = event_s[order]
        self.created_s = created_s

    def one(self, rows: np.ndarray) -> np.ndarray:
        start = np.searchsorted(self.sorted_ticket, rows, side="left")
        count = np.searchsorted(self.sorted_ticket, rows, side="right") - start
        position = start + (self.rng.random(len(rows)) * count).astype(np.int64)
        at_s = self.sorted_s[np.minimum(position, max(len(self.sorted_s) - 1, 0))] if len(self.sorted_s) else 0
        return np.where(count > 0, np.maximum(at_s, self.created_s[rows]), self.created_s[rows])

    def two(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Two moments per ticket, the first at or before the second."""
        a, b = self.one(rows), self.one(rows)
        return np.minimum(a, b), np.maximum(a, b)


def _merge(events: pd.DataFrame, ticket_of_event: np.ndarray, event_s: np.ndarray, ticket_ids: pd.Series,
           blocks: list[tuple[np.ndarray, np.ndarray, str, str, np.ndarray]]) -> pd.DataFrame:
    rows = np.concatenate([b[0] for b in blocks])
    at_s = np.concatenate([b[1] for b in blocks]).astype(np.int64)
    added = pd.DataFrame({
        "ticket_id": ticket_ids.to_numpy(dtype=object)[rows],
        "at": pd.to_datetime(at_s, unit="s", utc=True),
        "actor": np.concatenate([np.full(len(b[0]), b[2], dtype=object) for b in blocks]),
        "kind": "field",
        "value": np.concatenate([b[4] for b in blocks]),
        "body": "",
        "field": np.concatenate([np.full(len(b[0]), b[3], dtype=object) for b in blocks]),
    })
    for column in events.columns:
        if column in added.columns:
            added[column] = added[column].astype(events[column].dtype)
        else:
            added[column] = pd.Series(pd.NA, index=added.index).astype(events[column].dtype)
    merged = pd.concat([events.reset_index(drop=True), added[list(events.columns)]], ignore_index=True)
    ticket = np.concatenate([ticket_of_event, rows.astype(np.int64)])
    seconds = np.concatenate([event_s, at_s])
    seconds -= seconds.min(initial=0)
    # One stable int64 key: the simulator's events keep their order and come first on a tie.
    order = np.argsort((ticket << 36) | seconds, kind="stable")
    return merged.take(order).reset_index(drop=True)
