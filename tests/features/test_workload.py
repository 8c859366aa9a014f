"""Team load and rating record (features/workload.py): by hand, then against the plain reference.

The hand-computed export (Monday 2026-03-02, UTC; p = prior_ratings = 2):
  A created 09:00: group billing 09:00, assignee ann 09:10, solved 10:00, reopened (open) 11:00;
    rated bad at 10:30.
  B created 09:05: group billing 09:05, assignee ann 09:20, group tech 09:20, back to billing 09:40;
    rated good at 12:00.
  C created 09:30, no events (no group, unassigned); rated good at 09:45.
  D created 13:00: group tech 13:00; rated bad at 13:30.
  E created 14:00: group tech at 13:58 (an event two minutes before creation).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.conversation import build_timeline, to_epoch_seconds
from features.workload import TEAM_FEATURE_NAMES, TEAM_FEATURES, team_features
from tests.features.reference import epoch_seconds
from tests.features.reference_workload import reference_team_features
from tests.features.test_reference import (
    AS_OF_JITTER_SECONDS,
    AS_OF_SLOTS,
    EVENT_SLOTS,
    _moment,
    _timestamps,
    canonical_events,
    canonical_tickets,
    ticket_rows,
)

DAY = "2026-03-02T"
TICKETS = [  # ticket_id, created, satisfaction, satisfaction_at
    ("A", "09:00", "bad", "10:30"),
    ("B", "09:05", "good", "12:00"),
    ("C", "09:30", "good", "09:45"),
    ("D", "13:00", "bad", "13:30"),
    ("E", "14:00", None, None),
]
EVENTS = [  # ticket_id, at, kind, value (file order)
    ("A", "09:00", "group", "billing"),
    ("B", "09:05", "group", "billing"),
    ("A", "09:10", "assignee", "ann"),
    ("B", "09:20", "assignee", "ann"),
    ("B", "09:20", "group", "tech"),
    ("B", "09:40", "group", "billing"),
    ("A", "10:00", "status", "solved"),
    ("A", "11:00", "status", "open"),
    ("D", "13:00", "group", "tech"),
    ("E", "13:58", "group", "tech"),
]


def _stamp(clock: str | None) -> pd.Timestamp | None:
    return None if clock is None else pd.Timestamp(f"{DAY}{clock}:00Z")


def hand_export() -> tuple[pd.DataFrame, pd.DataFrame]:
    tickets = [
        {"ticket_id": t, "created_at": _stamp(created), "channel": "email", "status": "open", "priority": None,
         "requester_id": None, "group": None, "assignee": None, "subject": "", "satisfaction": rating,
         "satisfaction_at": _stamp(rated)}
        for t, created, rating, rated in TICKETS
    ]
    events = [{"ticket_id": t, "at": _stamp(at), "actor": "agent", "kind": kind, "value": value, "body": "",
               "field": None}
              for t, at, kind, value in EVENTS]
    return canonical_tickets(tickets), canonical_events(events)


def fast(tickets: pd.DataFrame, events: pd.DataFrame, queries: pd.DataFrame, prior_ratings: float) -> pd.DataFrame:
    timeline = build_timeline(tickets, events)
    code = pd.Index(timeline.ticket_ids).get_indexer(queries["ticket_id"].to_numpy(dtype=object))
    return team_features(tickets, timeline, code, to_epoch_seconds(queries["as_of"]), prior_ratings)


def queries_of(pairs: list[tuple[str, str]]) -> pd.DataFrame:
    return pd.DataFrame({"ticket_id": [t for t, _ in pairs],
                         "as_of": _timestamps([pd.Timestamp(f"{DAY}{clock}Z") for _, clock in pairs])})


# (ticket, as-of) -> group_open_tickets, assignee_open_tickets, group share, assignee share (p = 2)
HAND = [
    # A billing/ann; B is in tech since 09:20 but on ann; C (created 09:30) has neither. No rating yet.
    (("A", "09:30:00"), (1, 2, math.nan, math.nan)),
    # Same second as B's move back to billing: it counts. C's 09:45 rating is still ahead.
    (("B", "09:40:00"), (2, 2, math.nan, math.nan)),
    # A was solved this very second: out. C is alone in (none)/unassigned. C's good rating (none
    # pile, unassigned): overall 0/1, shares (0 + 2 x 0) / (1 + 2) = 0.
    (("C", "10:00:00"), (1, 1, 0.0, 0.0)),
    # A solved; ratings: C good (none), A bad at 10:30 in billing on ann. Overall 1/2;
    # billing and ann: (1 + 2 x 1/2) / (1 + 2) = 2/3.
    (("B", "10:45:00"), (1, 1, 2 / 3, 2 / 3)),
    # A reopened this second: back in billing and on ann.
    (("A", "11:00:00"), (2, 2, 2 / 3, 2 / 3)),
    # D's own rating at 13:30 is not strictly before: ratings C good, A bad, B good (billing, ann at
    # 12:00). Overall 1/3. tech has none: (0 + 2/3) / 2 = 1/3. Unassigned C, D open; C's good
    # rating was unassigned: (0 + 2/3) / (1 + 2) = 2/9.
    (("D", "13:30:00"), (1, 2, 1 / 3, 2 / 9)),
    # One second later D's bad rating (tech, unassigned) counts: overall 2/4; tech (1 + 1) / 3;
    # unassigned C good + D bad: (1 + 1) / (2 + 2).
    (("D", "13:30:01"), (1, 2, 2 / 3, 0.5)),
    # E's 13:58 group event does not put it in tech before it is created at 14:00 ...
    (("D", "13:59:00"), (1, 2, 2 / 3, 0.5)),
    # ... from 14:00 it does, and it joins the unassigned pile (C, D, E).
    (("D", "14:00:00"), (2, 3, 2 / 3, 0.5)),
]


def test_feature_definitions_are_listed_once_in_order():
    assert TEAM_FEATURE_NAMES == ("group_open_tickets", "assignee_open_tickets", "group_bad_rating_share",
                                  "assignee_bad_rating_share")
    assert all(unit and len(definition) > 40 for _, unit, definition in TEAM_FEATURES)


@pytest.mark.parametrize("implementation", ["fast", "reference"])
def test_hand_computed_export(implementation):
    tickets, events = hand_export()
    queries = queries_of([q for q, _ in HAND])
    compute = fast if implementation == "fast" else reference_team_features
    got = compute(tickets, events, queries, 2.0)
    assert list(got.columns) == list(TEAM_FEATURE_NAMES)
    expected = np.array([values for _, values in HAND], dtype="float64")
    for row, ((ticket, clock), _) in enumerate(HAND):
        assert np.allclose(got.iloc[row].to_numpy(), expected[row], equal_nan=True, atol=1e-12), (
            f"{implementation}: {ticket} at {clock}: got {got.iloc[row].tolist()}, want {expected[row].tolist()}")


def test_without_prior_the_share_is_the_raw_share_and_empty_without_ratings():
    tickets, events = hand_export()
    got = fast(tickets, events, queries_of([("B", "10:45:00"), ("D", "13:30:00")]), 0.0)
    assert got["group_bad_rating_share"].iloc[0] == 1.0  # billing: A's bad rating only
    assert math.isnan(got["group_bad_rating_share"].iloc[1])  # tech: no rating before 13:30
    assert got["assignee_bad_rating_share"].iloc[1] == 0.0  # unassigned: C's good rating


def test_no_query_no_rows_and_no_ratings_gives_empty_shares():
    tickets, events = hand_export()
    assert len(fast(tickets, events, queries_of([]), 2.0)) == 0
    unrated = tickets.assign(satisfaction="offered")
    got = fast(unrated, events, queries_of([("D", "14:00:00")]), 2.0)
    assert got["group_open_tickets"].iloc[0] == 2
    assert got[["group_bad_rating_share", "assignee_bad_rating_share"]].isna().all(axis=None)


# ------------------------------------------------------------------ properties

# The shared generator's status values include reopens (solved/closed then open), group and
# assignee changes back and forth, tickets without events, events just before creation and
# same-second ties; ratings fall on the same 30-minute grid as events and queries.


@st.composite
def team_exports(draw) -> tuple[pd.DataFrame, pd.DataFrame]:
    """1-9 tickets (more than the shared generator: piles need neighbours), events in random file order."""
    tickets, events = [], []
    for i in range(draw(st.integers(1, 9))):
        ticket, ticket_events = draw(ticket_rows(f"T{i}"))
        if ticket["satisfaction"] in ("good", "bad") and ticket["satisfaction_at"] is None and draw(st.booleans()):
            # More rated tickets than the shared generator makes: the shares need several.
            ticket["satisfaction_at"] = _moment(draw(st.integers(0, AS_OF_SLOTS)), 0)
        tickets.append(ticket)
        events.extend({"field": None, **event} for event in ticket_events)  # no attribute events here
    order = draw(st.permutations(range(len(events))))
    return canonical_tickets(tickets), canonical_events([events[i] for i in order])


@st.composite
def team_queries(draw, tickets: pd.DataFrame, events: pd.DataFrame, before_creation: bool = False) -> pd.DataFrame:
    """1-10 queries at or after their ticket's creation (second resolution), often on another
    ticket's event or rating second so ties are common; ``before_creation`` also allows earlier ones."""
    created = dict(zip(tickets["ticket_id"], tickets["created_at"]))
    seen = {"event": [m for m in events["at"] if pd.notna(m)],
            "rating": [m for m in tickets["satisfaction_at"] if pd.notna(m)]}
    ids, moments = [], []
    for _ in range(draw(st.integers(1, 10))):
        ticket_id = draw(st.sampled_from(list(created)))
        lowest = -6 if before_creation else 0
        moment = _moment(draw(st.integers(lowest, EVENT_SLOTS + 48)), draw(st.sampled_from(AS_OF_JITTER_SECONDS)),
                         created[ticket_id])
        tie_with = draw(st.sampled_from(("grid", "event", "rating")))
        if seen.get(tie_with):
            moment = draw(st.sampled_from(seen[tie_with])) + pd.Timedelta(seconds=draw(st.sampled_from((0, 0.5, 1))))
        if not before_creation and epoch_seconds(moment) < epoch_seconds(created[ticket_id]):
            moment = created[ticket_id]
        ids.append(ticket_id)
        moments.append(moment)
    return pd.DataFrame({"ticket_id": ids, "as_of": _timestamps(moments)})


def assert_same(got: pd.DataFrame, want: pd.DataFrame, queries: pd.DataFrame) -> None:
    assert list(got.columns) == list(want.columns) == list(TEAM_FEATURE_NAMES)
    assert len(got) == len(want) == len(queries)
    for name in TEAM_FEATURE_NAMES:
        same = np.isclose(got[name].to_numpy(), want[name].to_numpy(), rtol=0.0, atol=1e-12, equal_nan=True)
        if not same.all():
            row = int(np.flatnonzero(~same)[0])
            raise AssertionError(f"{name} differs for {queries['ticket_id'].iloc[row]} as of "
                                 f"{queries['as_of'].iloc[row]}: fast {got[name].iloc[row]!r}, "
                                 f"reference {want[name].iloc[row]!r}")


PRIORS = st.sampled_from((0.0, 1.0, 2.5, 20.0))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), export=team_exports(), prior_ratings=PRIORS)
def test_fast_equals_reference(data, export, prior_ratings):
    tickets, events = export
    queries = data.draw(team_queries(tickets, events))
    assert_same(fast(tickets, events, queries, prior_ratings),
                reference_team_features(tickets, events, queries, prior_ratings), queries)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), export=team_exports(), prior_ratings=PRIORS)
def test_fast_equals_reference_for_queries_before_creation_too(data, export, prior_ratings):
    # build_features accepts such frames; the ticket then counts in no pile, itself included.
    tickets, events = export
    queries = data.draw(team_queries(tickets, events, before_creation=True))
    assert_same(fast(tickets, events, queries, prior_ratings),
                reference_team_features(tickets, events, queries, prior_ratings), queries)
