"""Plain reference for :mod:`features.organization`: every query looks at every ticket, one at a time.

Written from the definitions in ``features.organization.ORGANIZATION_FEATURES``, not from
the fast code. Quadratic on purpose; only the property tests use it. Conventions as in
:mod:`tests.features.reference` (whole seconds; a ticket's events by (second, file
position); a static ticket-row value is set at creation, before the ticket's own events).
"""

from __future__ import annotations

import math

import pandas as pd

from tests.features.reference import (
    attribute_name,
    attribute_text,
    epoch_seconds,
    events_by_ticket,
    ticket_records,
)
from tests.features.reference_workload import LABELS, shrunk_share

ORGANIZATION = "organization"


def first_organization(events: list, created_s: int, static_value: str | None) -> tuple[str | None, int | None]:
    """The first non-empty organization a ticket was given, and the second it was set."""
    timeline = [(created_s, -1, static_value)] if static_value is not None else []
    timeline += [(e.at_s, e.position, e.value) for e in events
                 if e.kind == "field" and attribute_name(e.field) == ORGANIZATION]
    for at_s, _, value in sorted(timeline, key=lambda item: (item[0], item[1])):
        if attribute_text(value) is not None:
            return attribute_text(value), at_s
    return None, None


def reference_organization_features(
    tickets: pd.DataFrame, events: pd.DataFrame, queries: pd.DataFrame, prior_ratings: float,
    static_attributes: tuple[str, ...] = (),
) -> pd.DataFrame:
    """One row per query (``ticket_id``, ``as_of``): the two organization features, float64."""
    records = ticket_records(tickets)
    ordered = events_by_ticket(events)
    static_column = next((c for c in static_attributes if c in tickets.columns and attribute_name(c) == ORGANIZATION),
                         None)
    static_values = tickets[static_column].tolist() if static_column else [None] * len(records)
    organization = {
        r["ticket_id"]: first_organization(ordered.get(r["ticket_id"], []), r["created_s"], attribute_text(value))
        for r, value in zip(records, static_values)
    }
    created = {r["ticket_id"]: r["created_s"] for r in records}
    rows = []
    for ticket_id, moment in zip(queries["ticket_id"].tolist(), queries["as_of"].tolist()):
        as_of_s = epoch_seconds(moment)
        mine, set_s = organization[ticket_id]
        if mine is None or set_s > as_of_s:
            rows.append({"organization_previous_tickets": math.nan, "organization_bad_rating_share": math.nan})
            continue
        previous = 0
        all_rated = all_bad = rated = bad = 0
        for other in records:
            theirs, their_set_s = organization[other["ticket_id"]]
            if theirs == mine and max(other["created_s"], their_set_s) < created[ticket_id]:
                previous += 1
            rated_s = other["satisfaction_s"]
            if other["satisfaction"] not in LABELS or rated_s is None or rated_s >= as_of_s:
                continue
            is_bad = other["satisfaction"] == "bad"
            all_rated += 1
            all_bad += is_bad
            if theirs == mine and max(rated_s, their_set_s) < as_of_s:
                rated += 1
                bad += is_bad
        overall = all_bad / all_rated if all_rated else math.nan
        rows.append({"organization_previous_tickets": previous,
                     "organization_bad_rating_share": shrunk_share(bad, rated, overall, prior_ratings)})
    columns = ["organization_previous_tickets", "organization_bad_rating_share"]
    return pd.DataFrame(rows, columns=columns, index=range(len(rows))).astype("float64")
