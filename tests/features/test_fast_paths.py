"""The shortcuts the fast featurize path takes, each checked against the plain definition it replaces.

- Text signals count ASCII letters, capitals and marks on bytes instead of one regex match
  per character; Arrow text is taken chunk by chunk.
- Event ticket ids are looked up once per run of equal ids.
- Daily snapshot moments look up the status on integer keys (ticket, second), then settle
  same-second events to the nanosecond, as ``merge_asof`` on the timestamps did.
- Snapshot moments are sorted and de-duplicated on integer keys in ``ticket_id`` order.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features.conversation import ticket_codes
from features.snapshots import daily_moments, snapshot_moments
from features.text import TEXT_SIGNAL_COLUMNS, take_text, text_signals

TEXTS = [
    "", "Any news?", "STILL WRONG!!", "WHY IS THIS BROKEN AGAIN", "ÀÉÎÔÛ abcdefgh", "Straße ÄÖÜ äöü",
    "긴급! 접속이 안 돼요", "환불 요청？？ 지금！", "[brackets] @at `tick` {curly}", "zzZZ" * 10, None,
]


def test_text_signals_count_letters_and_marks_like_the_regex_definition():
    got = text_signals(pd.Series(TEXTS, dtype=object))
    texts = pa.array([t or "" for t in TEXTS], type=pa.large_string())

    def regex(pattern: str) -> np.ndarray:
        return pc.count_substring_regex(texts, pattern).to_numpy(zero_copy_only=False)

    letters, capitals = regex("[A-Za-z]"), regex("[A-Z]")
    np.testing.assert_array_equal(got["question_marks"], regex("[?？]"))
    np.testing.assert_array_equal(got["exclamations"], regex("[!！]"))
    np.testing.assert_array_equal(got["shouting"], ((letters >= 8) & (capitals >= 0.7 * np.maximum(letters, 1))))
    # Hand-checked: accented capitals are not Latin A-Z; ASCII shouting is.
    assert got["shouting"].tolist()[2:6] == [1.0, 1.0, 0.0, 0.0]
    assert got["question_marks"].tolist()[7] == 2.0 and got["exclamations"].tolist()[7] == 1.0


def test_text_signals_of_arrow_text_equal_those_of_python_strings():
    chunked = pa.chunked_array([pa.array(TEXTS[:4]), pa.array(TEXTS[4:])])
    pd.testing.assert_frame_equal(text_signals(chunked), text_signals(pd.Series(TEXTS, dtype=object)))
    assert list(text_signals(chunked).columns) == list(TEXT_SIGNAL_COLUMNS)


def test_take_text_on_a_chunked_column_in_and_out_of_order():
    column = pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array([pa.array(["a", "b", None]), pa.array(["d", "e"])])))
    assert take_text(column, np.array([0, 2, 3, 4])).to_pylist() == ["a", None, "d", "e"]
    assert take_text(column, np.array([4, 0, 3])).to_pylist() == ["e", "a", "d"]
    assert take_text(pd.Series(["a"], dtype=object), np.array([0])) is None  # not Arrow: the caller stays in pandas


def test_ticket_codes_with_runs_unknown_ids_and_missing_ids():
    tickets = pd.Series(["T1", "T2", "T3"], dtype="str")
    events = pd.Series(["T2", "T2", "T9", "T1", "T1", None, "T2"], dtype="str")
    assert ticket_codes(tickets, events).tolist() == [1, 1, -1, 0, 0, -1, 1]


def _status_export(status_at: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    tickets = pd.DataFrame({
        "ticket_id": pd.Series(["B", "A"], dtype="str"),
        "created_at": pd.to_datetime(["2026-03-02T08:00:00Z", "2026-03-02T08:00:00Z"]),
        "satisfaction_at": pd.to_datetime([pd.NaT, pd.NaT], utc=True),
    })
    events = pd.DataFrame({
        "ticket_id": pd.Series(["A", "A", "B"], dtype="str"),
        "at": pd.to_datetime(["2026-03-02T08:30:00Z", status_at, "2026-03-05T08:00:00Z"], format="ISO8601").as_unit("ns"),
        "kind": pd.Categorical(["message", "status", "status"]),
        "actor": pd.Categorical(["customer", "agent", "agent"]),
        "value": pd.Series([None, "solved", "open"], dtype="str"),
        "body": pd.Series(["help", None, None], dtype="str"),
    })
    return tickets, events


def test_daily_moment_settles_same_second_status_events_to_the_nanosecond():
    export_at = pd.Timestamp("2026-03-05T12:00:00Z")
    day = [pd.Timestamp(f"2026-03-0{d}T09:00:00Z") for d in (2, 3, 4, 5)]
    # Solved half a second after 09:00 on 03-03: at 09:00:00 the ticket is still open.
    tickets, events = _status_export("2026-03-03T09:00:00.500Z")
    late = daily_moments(tickets, events, export_at, "09:00", "UTC", 10)
    assert late[late["ticket_id"] == "A"]["as_of"].tolist() == day[:2]
    # Solved exactly at 09:00:00: solved then, so no moment that day.
    tickets, events = _status_export("2026-03-03T09:00:00Z")
    exact = daily_moments(tickets, events, export_at, "09:00", "UTC", 10)
    assert exact[exact["ticket_id"] == "A"]["as_of"].tolist() == day[:1]
    # B is open from 08:00 on 03-02 to the export; moments come in time order, ties in table order.
    assert exact[exact["ticket_id"] == "B"]["as_of"].tolist() == day
    assert exact["ticket_id"].tolist() == ["B", "A", "B", "B", "B"]


def test_snapshot_moments_come_sorted_by_ticket_id_then_time_one_per_second():
    tickets, events = _status_export("2026-03-03T09:00:00.500Z")
    snaps = snapshot_moments(tickets, events, moments=("opening", "customer_message", "daily"), max_per_ticket=20,
                             opening_window_minutes=30, daily_local_time="08:30", timezone="UTC")
    # The customer message at 08:30:00 and the opening at 08:00 + 30 min share a second: the opening,
    # listed first, is kept.
    a = snaps[snaps["ticket_id"] == "A"]
    assert a["moment"].tolist()[0] == "opening" and (a["as_of"].diff().dropna() > pd.Timedelta(0)).all()
    assert snaps["ticket_id"].tolist() == sorted(snaps["ticket_id"].tolist())  # "A" before "B", not table order
    assert str(snaps["as_of"].dtype) == "datetime64[ns, UTC]"
