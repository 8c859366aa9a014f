"""Plain reference for :mod:`features.workload`: every query looks at every ticket, one at a time.

Written from the definitions in ``features.workload.TEAM_FEATURES``, not from the fast
code: for each (ticket, as-of) query it walks each ticket's events up to the moment
asked about and compares values literally. Quadratic and slow on purpose; only the
property tests use it.

Conventions (as in :mod:`tests.features.reference`): times are floored to whole
seconds; a ticket's events are ordered by (second, file position); "as of t" means
after every event at or before t; before any event a ticket is ``new`` with no group
and no assignee.
"""

from __future__ import annotations

import math

import pandas as pd

from tests.features.reference import epoch_seconds, events_by_ticket, ticket_records

DONE = ("solved", "closed")
LABELS = ("good", "bad")


def state_at(events: list, moment_s: int) -> tuple[str, str | None, str | None]:
    """(status, group, assignee) of a ticket after its events at or before ``moment_s``."""
    status, group, assignee = "new", None, None
    for event in events:
        if event.at_s > moment_s:
            break
        if event.kind == "status":
            status = event.value
        elif event.kind == "group":
            group = event.value
        elif event.kind == "assignee":
            assignee = event.value
    return status, group, assignee


def shrunk_share(bad: int, rated: int, overall: float, prior_ratings: float) -> float:
    """(bad + prior x overall) / (rated + prior); NaN without any rating overall or with 0/0."""
    if math.isnan(overall) or rated + prior_ratings == 0:
        return math.nan
    return (bad + prior_ratings * overall) / (rated + prior_ratings)


def reference_team_features(
    tickets: pd.DataFrame, events: pd.DataFrame, queries: pd.DataFrame, prior_ratings: float
) -> pd.DataFrame:
    """One row per query (``ticket_id``, ``as_of``): the four team features, float64."""
    records = ticket_records(tickets)
    ordered = events_by_ticket(events)
    rows = []
    for ticket_id, moment in zip(queries["ticket_id"].tolist(), queries["as_of"].tolist()):
        as_of_s = epoch_seconds(moment)
        _, my_group, my_assignee = state_at(ordered.get(ticket_id, []), as_of_s)

        group_open = assignee_open = 0
        for other in records:
            if other["created_s"] > as_of_s:
                continue
            status, group, assignee = state_at(ordered.get(other["ticket_id"], []), as_of_s)
            if status in DONE:
                continue
            group_open += group == my_group
            assignee_open += assignee == my_assignee

        all_rated = all_bad = group_rated = group_bad = assignee_rated = assignee_bad = 0
        for other in records:
            rated_s = other["satisfaction_s"]
            if other["satisfaction"] not in LABELS or rated_s is None or rated_s >= as_of_s:
                continue
            is_bad = other["satisfaction"] == "bad"
            _, group, assignee = state_at(ordered.get(other["ticket_id"], []), rated_s)
            all_rated += 1
            all_bad += is_bad
            if group == my_group:
                group_rated += 1
                group_bad += is_bad
            if assignee == my_assignee:
                assignee_rated += 1
                assignee_bad += is_bad
        overall = all_bad / all_rated if all_rated else math.nan

        rows.append({
            "group_open_tickets": group_open,
            "assignee_open_tickets": assignee_open,
            "group_bad_rating_share": shrunk_share(group_bad, group_rated, overall, prior_ratings),
            "assignee_bad_rating_share": shrunk_share(assignee_bad, assignee_rated, overall, prior_ratings),
        })
    columns = ["group_open_tickets", "assignee_open_tickets", "group_bad_rating_share", "assignee_bad_rating_share"]
    return pd.DataFrame(rows, columns=columns, index=range(len(rows))).astype("float64")
