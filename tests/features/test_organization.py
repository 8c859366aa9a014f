"""Organization history (features/organization.py): by hand, then against the plain reference.

The hand-computed export (Monday 2026-03-02, UTC; p = prior_ratings = 2; `organization` is a
static ticket-row column unless said otherwise):
  A 09:00 acme; rated bad at 10:00.
  B 09:30 no row value; field event organization = acme at 11:00; rated good at 10:30 (before
    its organization was known).
  C 12:00 acme; rated good at 12:30.
  D 12:10 globex; rated bad at 12:20.
  E 13:00 acme; field event organization = globex at 13:10 (a later change: E stays acme).
  F 14:00 no organization ever.
  G 10:00 acme; not rated.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.build import build_features
from features.conversation import build_timeline, to_epoch_seconds
from features.organization import ORGANIZATION_FEATURE_NAMES, ORGANIZATION_FEATURES, organization_features
from tests.features.reference_organization import reference_organization_features
from tests.features.test_reference import canonical_events, canonical_tickets, ticket_rows
from tests.features.test_workload import PRIORS, _stamp, queries_of, team_queries

STATIC = ("organization",)
TICKETS = [  # ticket_id, created, organization (row), satisfaction, satisfaction_at
    ("A", "09:00", "acme", "bad", "10:00"),
    ("B", "09:30", None, "good", "10:30"),
    ("C", "12:00", "acme", "good", "12:30"),
    ("D", "12:10", "globex", "bad", "12:20"),
    ("E", "13:00", "acme", None, None),
    ("F", "14:00", None, None, None),
    ("G", "10:00", "acme", None, None),
]
EVENTS = [("B", "11:00", "acme"), ("E", "13:10", "globex")]  # field `organization`


def hand_export() -> tuple[pd.DataFrame, pd.DataFrame]:
    tickets = [
        {"ticket_id": t, "created_at": _stamp(created), "channel": "email", "status": "open", "priority": None,
         "requester_id": None, "group": None, "assignee": None, "subject": "", "satisfaction": rating,
         "satisfaction_at": _stamp(rated), "organization": organization}
        for t, created, organization, rating, rated in TICKETS
    ]
    events = [{"ticket_id": t, "at": _stamp(at), "actor": "agent", "kind": "field", "value": value, "body": "",
               "field": "organization"} for t, at, value in EVENTS]
    return canonical_tickets(tickets), canonical_events(events)


def fast(tickets, events, queries, prior_ratings, static=STATIC) -> pd.DataFrame:
    timeline = build_timeline(tickets, events, static_attributes=static)
    code = pd.Index(timeline.ticket_ids).get_indexer(queries["ticket_id"].to_numpy(dtype=object))
    return organization_features(tickets, timeline.attributes, timeline.created_s, code,
                                 to_epoch_seconds(queries["as_of"]), prior_ratings)


NAN = math.nan
# (ticket, as-of) -> organization_previous_tickets, organization_bad_rating_share (p = 2)
HAND = [
    # acme's first ticket; no rating anywhere yet.
    (("A", "09:30:00"), (0, NAN)),
    # B's organization is set at 11:00: unknown before.
    (("B", "10:45:00"), (NAN, NAN)),
    # From 11:00: A was acme before B was created. Ratings before 11:00: A bad, B good (overall
    # 1/2); B's own good rating counts for acme only from 11:00, not strictly before:
    # (1 + 2 x 1/2) / (1 + 2).
    (("B", "11:00:00"), (1, 2 / 3)),
    # One second later it does: (1 + 1) / (2 + 2).
    (("B", "11:00:01"), (1, 0.5)),
    # B was created before G but its organization was set after G's creation: only A.
    (("G", "10:00:00"), (1, NAN)),
    # A (09:00), G (10:00) and B (known 11:00) before C's creation; same two acme ratings.
    (("C", "12:00:00"), (3, 0.5)),
    # E stays acme (its 13:10 change is ignored): A, B, C, G before it. Ratings A bad, B good, D bad,
    # C good: overall 1/2; acme A bad, B good, C good: (1 + 1) / (3 + 2).
    (("E", "13:30:00"), (4, 0.4)),
    # globex: nobody before D; D's own bad rating at 12:20: (1 + 1) / (1 + 2).
    (("D", "13:30:00"), (0, 2 / 3)),
    # No organization, ever.
    (("F", "14:30:00"), (NAN, NAN)),
]


def test_feature_definitions_are_listed_once_in_order():
    assert ORGANIZATION_FEATURE_NAMES == ("organization_previous_tickets", "organization_bad_rating_share")
    assert all(unit and len(definition) > 40 for _, unit, definition in ORGANIZATION_FEATURES)


@pytest.mark.parametrize("implementation", ["fast", "reference"])
def test_hand_computed_export(implementation):
    tickets, events = hand_export()
    queries = queries_of([q for q, _ in HAND])
    if implementation == "fast":
        got = fast(tickets, events, queries, 2.0)
    else:
        got = reference_organization_features(tickets, events, queries, 2.0, STATIC)
    assert list(got.columns) == list(ORGANIZATION_FEATURE_NAMES)
    for row, ((ticket, clock), want) in enumerate(HAND):
        assert np.allclose(got.iloc[row].to_numpy(), np.array(want, dtype="float64"), equal_nan=True, atol=1e-12), (
            f"{implementation}: {ticket} at {clock}: got {got.iloc[row].tolist()}, want {want}")


def test_the_ticket_row_counts_only_when_declared_static():
    tickets, events = hand_export()
    got = fast(tickets, events, queries_of([("A", "09:30:00"), ("B", "11:00:01"), ("E", "13:30:00")]), 2.0,
               static=())
    # Without the row values only B (acme from 11:00) and E (globex from 13:10) have one.
    assert math.isnan(got["organization_previous_tickets"].iloc[0])
    assert got["organization_previous_tickets"].iloc[1] == 0
    assert got["organization_previous_tickets"].iloc[2] == 0  # E is globex now: D is not (no row value)


def test_an_export_without_organizations_gives_empty_columns_through_build_features():
    tickets, events = hand_export()
    table = build_features(tickets, events.iloc[:0], "2026-03-02T15:00:00Z")
    assert table[list(ORGANIZATION_FEATURE_NAMES)].isna().all(axis=None)
    table = build_features(tickets, events, "2026-03-02T15:00:00Z", static_attributes=STATIC).set_index("ticket_id")
    assert table.loc["E", "organization_previous_tickets"] == 4


# ------------------------------------------------------------------ properties

ORGANIZATION_NAMES = ("Organization", "organization", " ORGANIZATION ")
ORGANIZATION_VALUES = ("acme", "globex", " acme ", "", None)


@st.composite
def organization_exports(draw) -> tuple[pd.DataFrame, pd.DataFrame, tuple[str, ...]]:
    """1-9 tickets with row organizations and organization field events (set, changed, cleared,
    spelt three ways), more rated tickets than the shared generator; events in random file order."""
    tickets, events = [], []
    for i in range(draw(st.integers(1, 9))):
        ticket, ticket_events = draw(ticket_rows(f"T{i}"))
        if ticket["satisfaction"] in ("good", "bad") and ticket["satisfaction_at"] is None and draw(st.booleans()):
            ticket["satisfaction_at"] = _stamp("09:00") + pd.Timedelta(minutes=30 * draw(st.integers(0, 40)))
        for event in ticket_events:
            if event["kind"] == "field" and draw(st.booleans()):
                event["field"] = draw(st.sampled_from(ORGANIZATION_NAMES))
                event["value"] = draw(st.sampled_from(ORGANIZATION_VALUES))
        tickets.append(ticket)
        events.extend(ticket_events)
    order = draw(st.permutations(range(len(events))))
    static = draw(st.sampled_from(((), STATIC)))
    return canonical_tickets(tickets), canonical_events([events[i] for i in order]), static


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), export=organization_exports(), prior_ratings=PRIORS)
def test_fast_equals_reference(data, export, prior_ratings):
    tickets, events, static = export
    queries = data.draw(team_queries(tickets, events, before_creation=data.draw(st.booleans())))
    got = fast(tickets, events, queries, prior_ratings, static)
    want = reference_organization_features(tickets, events, queries, prior_ratings, static)
    for name in ORGANIZATION_FEATURE_NAMES:
        same = np.isclose(got[name].to_numpy(), want[name].to_numpy(), rtol=0.0, atol=1e-12, equal_nan=True)
        if not same.all():
            row = int(np.flatnonzero(~same)[0])
            raise AssertionError(f"{name} differs for {queries['ticket_id'].iloc[row]} as of "
                                 f"{queries['as_of'].iloc[row]}: fast {got[name].iloc[row]!r}, "
                                 f"reference {want[name].iloc[row]!r}")
