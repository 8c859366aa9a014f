"""Property tests: the vectorised features equal the plain per-ticket reference.

Hypothesis generates small canonical exports (the dtypes ``load_export`` produces)
on a coarse time grid from Friday 2026-03-06 00:00 UTC over about four days, so
nights, a weekend, same-time ties, same-second ties with sub-second parts, events
just before their ticket's creation and (in New York) a DST change all occur. For
each, :func:`features.build.build_features` must equal
:func:`tests.features.reference.reference_features` on every feature (NaN equals
NaN; floats within 1e-6 minutes: the fast business clock counts minutes since 1970,
which costs about 1e-9 of float precision).

The reference itself is checked against hand-computed values first, so "both agree"
cannot mean "both are wrong the same way" for the cases worked out by hand.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.build import CATEGORICAL_FEATURES, FEATURE_NAMES, build_features
from features.calendar import BusinessHours
from pipeline.core import contract
from pipeline.sources.ingest import load_export
from tests.conftest import FIXTURES
from tests.features.reference import business_minutes_between, epoch_seconds, reference_features

GRID_START = pd.Timestamp("2026-03-06T00:00:00Z")  # a Friday
SLOT_SECONDS = 1800
CREATED_SLOTS = 150  # tickets are created within ~3 days of GRID_START
EVENT_SLOTS = 48  # a ticket's events fall within a day of its creation
AS_OF_SLOTS = 220
# Half the events crowd into the ticket's first two hours: more ties and early replies.
EVENT_OFFSET_SLOTS = st.one_of(st.integers(0, 3), st.integers(0, EVENT_SLOTS))
# Seconds added to grid times. Sub-second parts make ties at one-second resolution
# whose true order differs from file order; -120 puts an event just before its
# ticket's creation (ingestion keeps events up to 5 minutes early).
EVENT_JITTER_SECONDS = (0, 0, 0, 0, 0, 0.25, 0.75, 30, -120)
CREATED_JITTER_SECONDS = (0, 0, 0, 0.5, 59)
AS_OF_JITTER_SECONDS = (0, 0, 0.5, 1, 60, 900)

KINDS = ("message",) * 6 + ("note", "status", "status", "status", "group", "assignee", "priority", "field", "field")
# Spellings of two attributes (ingest normalises them; build_features must too) and a blank name.
FIELD_NAMES = ("Product Area", "product-area", "plan", "plan", "Organization", "")
FIELD_VALUES = ("billing", "shipping", "42", " 7 ", "", None)
ORGANIZATIONS = ("acme", "globex", "", None)
ACTORS = ("customer", "customer", "agent", "agent", "system")
GROUPS = ("billing", "tech", "accounts")
ASSIGNEES = ("ann", "bob")
BODIES = (
    "", "Any news?", "STILL WRONG!!", "This is unacceptable", "urgent: cannot log in",
    "thanks", "아직도 답이 없네요 최악", "긴급! 접속이 안 돼요", "Refund now? WHY??", "ok",
)
SUBJECTS = ("", "Invoice wrong", "URGENT outage", "Locked out", "환불 요청")

UTC_HOURS = BusinessHours.from_params()  # 08:00-18:00 Mon-Fri UTC
SEOUL_HOURS = BusinessHours(timezone="Asia/Seoul", start_hour=9.0, end_hour=18.0, weekdays=(0, 1, 2, 3, 4))

FLOAT_TOLERANCE = 1e-6


# ------------------------------------------------------------------ generation


def _moment(slot: int, jitter_seconds: float, start: pd.Timestamp = GRID_START) -> pd.Timestamp:
    return start + pd.Timedelta(seconds=slot * SLOT_SECONDS + jitter_seconds)


def _timestamps(values: list) -> pd.Series:
    return pd.Series(values, dtype=object).astype("datetime64[ns, UTC]")


def _text_column(values: list) -> pd.Series:
    return pd.Series(values, dtype="str")


@st.composite
def ticket_rows(draw, ticket_id: str) -> tuple[dict, list[dict]]:
    """One ticket and its 0-25 events (events not yet in file order)."""
    created = _moment(draw(st.integers(0, CREATED_SLOTS)), draw(st.sampled_from(CREATED_JITTER_SECONDS)))
    satisfaction = draw(st.sampled_from(("good", "bad", "bad", "offered", None)))
    rated = None
    if satisfaction in ("good", "bad") and draw(st.booleans()):
        rated = _moment(draw(st.integers(0, AS_OF_SLOTS)), 0)
    ticket = {
        "ticket_id": ticket_id,
        "created_at": created,
        "channel": draw(st.sampled_from(("email", "chat", "web", "unknown"))),
        "status": draw(st.sampled_from(contract.STATUSES)),
        "priority": draw(st.sampled_from(contract.PRIORITIES + (None,))),
        "requester_id": draw(st.sampled_from(("R1", "R1", "R2", None))),
        "group": draw(st.sampled_from(GROUPS + (None,))),
        "assignee": draw(st.sampled_from(ASSIGNEES + (None,))),
        "subject": draw(st.sampled_from(SUBJECTS)),
        "satisfaction": satisfaction,
        "satisfaction_at": rated,
        "organization": draw(st.sampled_from(ORGANIZATIONS)),
    }
    events = []
    for _ in range(draw(st.integers(0, 25))):
        kind = draw(st.sampled_from(KINDS))
        value = {
            "status": lambda: draw(st.sampled_from(("open", "pending", "solved", "solved", "closed", "hold", "new"))),
            "group": lambda: draw(st.sampled_from(GROUPS)),
            "assignee": lambda: draw(st.sampled_from(ASSIGNEES)),
            "priority": lambda: draw(st.sampled_from(contract.PRIORITIES)),
            "field": lambda: draw(st.sampled_from(FIELD_VALUES)),
        }.get(kind, lambda: None)()
        events.append({
            "ticket_id": ticket_id,
            "at": _moment(draw(EVENT_OFFSET_SLOTS), draw(st.sampled_from(EVENT_JITTER_SECONDS)), created),
            "actor": draw(st.sampled_from(ACTORS)),
            "kind": kind,
            "value": value,
            "body": draw(st.sampled_from(BODIES)) if kind in ("message", "note") else "",
            "field": draw(st.sampled_from(FIELD_NAMES)) if kind == "field" else None,
        })
    return ticket, events


@st.composite
def exports(draw) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(tickets, events) in canonical form, 1-6 tickets, events interleaved in a random file order."""
    n_tickets = draw(st.integers(1, 6))
    tickets, events = [], []
    for i in range(n_tickets):
        ticket, ticket_events = draw(ticket_rows(f"T{i}"))
        tickets.append(ticket)
        events.extend(ticket_events)
    order = draw(st.permutations(range(len(events))))
    events = [events[i] for i in order]
    return canonical_tickets(tickets), canonical_events(events)


def canonical_tickets(rows: list[dict]) -> pd.DataFrame:
    """Ticket rows with the dtypes ``load_export`` produces."""
    column = {c: [r[c] for r in rows] for c in contract.TICKET_COLUMNS}
    frame = pd.DataFrame({c: _text_column(column[c]) for c in contract.TICKET_COLUMNS})
    for name in contract.TICKET_TIMESTAMPS:
        frame[name] = _timestamps(column[name])
    # An extra ticket-row column (kept by ingest, used only when listed as a static attribute).
    frame["organization"] = _text_column([r.get("organization") for r in rows])
    return frame


def canonical_events(rows: list[dict]) -> pd.DataFrame:
    """Event rows (in file order) with the dtypes ``load_export`` produces."""
    column = {c: [r.get(c) for r in rows] for c in contract.EVENT_COLUMNS}
    return pd.DataFrame({
        "ticket_id": _text_column(column["ticket_id"]),
        "at": _timestamps(column["at"]),
        "actor": pd.Categorical(column["actor"], categories=contract.ACTORS),
        "kind": pd.Categorical(column["kind"], categories=contract.EVENT_KINDS),
        "value": _text_column(column["value"]),
        "body": _text_column(column["body"]),
        "field": _text_column(column["field"]),
    })


def scalar_as_of():
    """None (the export's latest moment) or a moment on the grid (sub-seconds included)."""
    on_grid = st.builds(
        _moment, st.integers(0, AS_OF_SLOTS), st.sampled_from(AS_OF_JITTER_SECONDS)
    )
    return st.one_of(st.none(), on_grid)


@st.composite
def query_frames(draw, tickets: pd.DataFrame) -> pd.DataFrame:
    """1-8 (ticket_id, as_of) queries in random order, repeats allowed.

    Moments are mostly during the ticket's first day, sometimes up to 3 hours before
    its creation (a frame may ask that) or long after; sub-second moments included.
    """
    n = draw(st.integers(1, 8))
    created = dict(zip(tickets["ticket_id"], tickets["created_at"]))
    ids, moments = [], []
    for _ in range(n):
        ticket_id = draw(st.sampled_from(list(created)))
        ids.append(ticket_id)
        offset_slots = draw(st.integers(-6, EVENT_SLOTS + 48))
        moments.append(_moment(offset_slots, draw(st.sampled_from(AS_OF_JITTER_SECONDS)), created[ticket_id]))
    return pd.DataFrame({"ticket_id": ids, "as_of": _timestamps(moments), "snapshot": np.arange(n)})


business_hours_choices = st.builds(
    BusinessHours,
    timezone=st.sampled_from(("UTC", "Asia/Seoul", "America/New_York")),
    start_hour=st.sampled_from((0.0, 8.0, 9.0, 8.5)),
    end_hour=st.sampled_from((17.0, 18.0, 24.0)),
    weekdays=st.sampled_from(((0, 1, 2, 3, 4), (0, 1, 2, 3, 4, 5), (6,), (0, 1, 2, 3, 4, 5, 6))),
)


# ------------------------------------------------------------------ comparison


def assert_same_features(fast: pd.DataFrame, reference: pd.DataFrame) -> None:
    """Same rows, same keys and extra columns, and every feature equal (NaN == NaN)."""
    assert list(fast.columns) == list(reference.columns)
    assert len(fast) == len(reference)
    assert fast["ticket_id"].astype(object).tolist() == reference["ticket_id"].astype(object).tolist()
    assert [epoch_seconds(t) for t in fast["as_of"]] == [epoch_seconds(t) for t in reference["as_of"]]
    for name in fast.columns:
        if name in ("ticket_id", "as_of"):
            continue
        if name in CATEGORICAL_FEATURES or name not in FEATURE_NAMES:
            a, b = fast[name].astype(object), reference[name].astype(object)
            same = np.asarray((a == b) | (a.isna() & b.isna()))
        else:
            same = np.isclose(
                fast[name].to_numpy(dtype="float64"), reference[name].to_numpy(dtype="float64"),
                rtol=0.0, atol=FLOAT_TOLERANCE, equal_nan=True,
            )
        if not same.all():
            row = int(np.flatnonzero(~same)[0])
            raise AssertionError(
                f"{name} differs for ticket {fast['ticket_id'].iloc[row]} as of {fast['as_of'].iloc[row]}: "
                f"fast {fast[name].iloc[row]!r}, reference {reference[name].iloc[row]!r}"
            )


def check(tickets, events, as_of, hours=None, static_attributes=()) -> None:
    fast = build_features(tickets, events, as_of, hours, static_attributes=static_attributes)
    reference = reference_features(tickets, events, as_of, hours, static_attributes=static_attributes)
    assert_same_features(fast, reference)


# ------------------------------------------------------------------ the reference by hand


def _utc_seconds(text: str) -> int:
    return epoch_seconds(pd.Timestamp(text))


def test_business_minutes_by_hand():
    # Fri 17:00 -> Mon 09:00 UTC with 08:00-18:00 Mon-Fri: 60 on Friday + 60 on Monday.
    assert business_minutes_between(_utc_seconds("2026-03-06T17:00Z"), _utc_seconds("2026-03-09T09:00Z"), UTC_HOURS) == 120
    assert business_minutes_between(_utc_seconds("2026-03-09T09:00Z"), _utc_seconds("2026-03-06T17:00Z"), UTC_HOURS) == -120
    # Seoul 09-18: Fri 08:30 UTC = 17:30 KST (30 left), Mon 01:00 UTC = 10:00 KST (60).
    assert business_minutes_between(_utc_seconds("2026-03-06T08:30Z"), _utc_seconds("2026-03-09T01:00Z"), SEOUL_HOURS) == 90
    # A night inside one day counts nothing.
    assert business_minutes_between(_utc_seconds("2026-03-09T19:00Z"), _utc_seconds("2026-03-09T23:00Z"), UTC_HOURS) == 0


def test_reference_reproduces_the_hand_computed_tiny_export(tiny_export):
    export = load_export(tiny_export)
    late = reference_features(export.tickets, export.events, "2026-03-03T12:00:00Z").set_index("ticket_id")
    t1, t2 = late.loc["T1"], late.loc["T2"]
    assert (t1["ping_pong_count"], t1["requester_wait_minutes"], t1["reopens"], t1["times_solved"]) == (5, 130, 1, 2)
    assert (t1["group_hops"], t1["notes"], t1["status_now"], t1["current_group"]) == (1, 1, "solved", "tech")
    assert t2["requester_wait_business_minutes"] == 240 and t2["current_wait_minutes"] == 16 * 60
    assert math.isnan(t2["first_reply_minutes"]) and t2["group_hops"] == 0
    mid = reference_features(export.tickets, export.events, "2026-03-03T09:10:00Z").set_index("ticket_id")
    assert (mid.loc["T1", "requester_wait_minutes"], mid.loc["T1", "current_wait_minutes"]) == (100, 10)
    t3 = reference_features(export.tickets, export.events, None).set_index("ticket_id").loc["T3"]
    assert (t3["requester_previous_tickets"], t3["requester_previous_bad_ratings"], t3["requester_previous_reopens"]) == (1, 1, 1)


@settings(max_examples=5, deadline=None)
@given(export=exports())
def test_generated_frames_have_the_canonical_dtypes(export):
    tickets, events = export
    loaded = load_export(FIXTURES / "tiny_export")
    contract_columns = list(contract.TICKET_COLUMNS)
    assert tickets[contract_columns].dtypes.astype(str).to_dict() == loaded.tickets.dtypes.astype(str).to_dict()
    assert events.dtypes.astype(str).to_dict() == loaded.events.dtypes.astype(str).to_dict()
    assert list(events["actor"].cat.categories) == list(loaded.events["actor"].cat.categories)
    assert list(events["kind"].cat.categories) == list(loaded.events["kind"].cat.categories)


def _one_ticket(events: list[tuple], created: str = "2026-03-06T09:00:00Z") -> tuple[pd.DataFrame, pd.DataFrame]:
    ticket = {"ticket_id": "T0", "created_at": pd.Timestamp(created), "channel": "email", "status": "open",
              "priority": None, "requester_id": "R1", "group": None, "assignee": None, "subject": "",
              "satisfaction": None, "satisfaction_at": None}
    rows = [{"ticket_id": "T0", "at": pd.Timestamp(at), "actor": actor, "kind": kind, "value": value, "body": body}
            for at, actor, kind, value, body in events]
    return canonical_tickets([ticket]), canonical_events(rows)


def test_reopen_by_status_resumes_the_unanswered_customer_run():
    # c 09:00, solved 09:10, reopened 09:40 (no new message): waiting again since the 09:00 run.
    tickets, events = _one_ticket([
        ("2026-03-06T09:00:00Z", "customer", "message", None, "help"),
        ("2026-03-06T09:10:00Z", "agent", "status", "solved", ""),
        ("2026-03-06T09:40:00Z", "customer", "status", "open", ""),
    ])
    row = reference_features(tickets, events, "2026-03-06T10:00:00Z").iloc[0]
    assert row["requester_wait_minutes"] == 10 + 20
    assert row["current_wait_minutes"] == 60
    assert (row["reopens"], row["times_solved"]) == (1, 1)
    check(tickets, events, "2026-03-06T10:00:00Z")


def test_same_second_ties_follow_file_order_not_sub_seconds():
    # Both messages are at 09:00:00 at one-second resolution, so file order decides:
    # the agent's (file-earlier, 0.9 s) comes first, the customer's (0.1 s) is the latest.
    tickets, events = _one_ticket([
        ("2026-03-06T09:00:00.9Z", "agent", "message", None, "hi"),
        ("2026-03-06T09:00:00.1Z", "customer", "message", None, "STILL WRONG!!"),
    ])
    row = reference_features(tickets, events, "2026-03-06T09:30:00Z").iloc[0]
    assert row["current_wait_minutes"] == 30 and row["last_message_exclamations"] == 2
    check(tickets, events, "2026-03-06T09:30:00Z")


def test_created_in_the_same_second_as_scalar_as_of():
    # 09:00:00.5 and 09:00:00.2 are the same second, so the ticket exists at that as-of
    # (and its 09:00:00.9 message counts).
    tickets, events = _one_ticket([("2026-03-06T09:00:00.9Z", "customer", "message", None, "hello")],
                                  created="2026-03-06T09:00:00.5Z")
    rows = reference_features(tickets, events, "2026-03-06T09:00:00.2Z")
    assert len(rows) == 1 and rows["customer_messages"].iloc[0] == 1
    assert rows["opening_text"].iloc[0] == "\nhello"
    check(tickets, events, "2026-03-06T09:00:00.2Z")


# ------------------------------------------------------------------ properties


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(export=exports(), as_of=scalar_as_of())
def test_fast_equals_reference_at_a_scalar_as_of(export, as_of):
    tickets, events = export
    check(tickets, events, as_of)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), export=exports())
def test_fast_equals_reference_on_query_frames(data, export):
    tickets, events = export
    check(tickets, events, data.draw(query_frames(tickets)))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), export=exports())
def test_fast_equals_reference_with_a_static_attribute(data, export):
    """`organization` from the ticket row, set at creation; field events of the same name win later."""
    tickets, events = export
    check(tickets, events, data.draw(query_frames(tickets)), static_attributes=("organization",))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), export=exports())
def test_fast_equals_reference_in_seoul_business_hours(data, export):
    tickets, events = export
    check(tickets, events, data.draw(query_frames(tickets)), SEOUL_HOURS)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), export=exports(), hours=business_hours_choices)
def test_fast_equals_reference_for_other_business_hours(data, export, hours):
    tickets, events = export
    check(tickets, events, data.draw(query_frames(tickets)), hours)
