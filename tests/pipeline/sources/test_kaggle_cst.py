"""Tests for pipeline.sources.kaggle_cst: exact output on four hand-written tickets, and the real file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pipeline.core.errors import ExportError
from pipeline.sources import kaggle_cst
from pipeline.sources.kaggle_cst import ImportSummary, import_kaggle_cst
from tests.conftest import shared_dataset

REPO_ROOT = Path(__file__).resolve().parents[3]
FIXTURE = REPO_ROOT / "tests" / "fixtures" / "kaggle_cst" / "customer_support_tickets.csv"
REAL_FILE = (
    REPO_ROOT / ".." / "shared" / "datasets" / "negative-control-kaggle-cst"
    / "customer_support_tickets.csv.gz"
)


def _read_text(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


@pytest.fixture(scope="module")
def fixture_export(tmp_path_factory):
    out = tmp_path_factory.mktemp("kcst_export")
    summary = import_kaggle_cst(FIXTURE, out)
    return summary, _read_text(out / "tickets.csv"), _read_text(out / "events.csv"), out


def test_fixture_summary(fixture_export):
    summary, _, _, _ = fixture_export
    assert summary == ImportSummary(
        rows_read=4, tickets=4, events_written=10,
        customer_messages=4, agent_replies=3, status_events=3,
        good_ratings=1, bad_ratings=1, unrated=2, ratings_unusable=0,
        created_at_before_first_response=3, created_at_spread=1,
        resolutions_moved_to_first_response=1, unparseable_times=0, rows_dropped_no_ticket_id=0,
    )
    assert summary.bad_share == 0.5


def test_fixture_tickets(fixture_export):
    _, tickets, _, _ = fixture_export
    columns = ["ticket_id", "channel", "status", "priority", "subject", "satisfaction",
               "satisfaction_at", "group", "ticket_type", "product_purchased"]
    assert tickets[columns].values.tolist() == [
        ["1", "email", "open", "high", "Product setup", "", "", "", "Technical issue", "GoPro Hero"],
        ["2", "chat", "pending", "urgent", "Refund request", "", "", "", "Billing inquiry", "Dell XPS"],
        # rating 4 -> good, rated one minute after the 18:05 closing
        ["3", "social", "closed", "low", "Network problem", "good", "2023-06-01T18:06:00Z", "",
         "Technical issue", "LG Smart TV"],
        # rating 2 -> bad; resolution 08:30 precedes the 10:00 first response: closed at 10:00
        ["4", "phone", "closed", "normal", "Battery life", "bad", "2023-06-01T10:01:00Z", "",
         "Refund request", "GoPro Hero"],
    ]
    assert "Customer Email" not in tickets.columns and "Customer Name" not in tickets.columns


def test_fixture_created_at_rule(fixture_export):
    _, tickets, _, _ = fixture_export
    created = tickets.set_index("ticket_id")["created_at"].map(_utc)
    first_response = {"2": _utc("2023-06-01 12:15"), "3": _utc("2023-06-01 11:14"),
                      "4": _utc("2023-06-01 10:00")}
    for ticket, responded in first_response.items():
        offset_minutes = (responded - created[ticket]) / pd.Timedelta(minutes=1)
        assert offset_minutes == int(offset_minutes) and 1 <= offset_minutes <= 240
    # Open ticket: inside [earliest file time 08:30 - 240 min, latest 18:05].
    assert _utc("2023-06-01 04:30") <= created["1"] <= _utc("2023-06-01 18:05")
    # Pinned values (hash of the ticket id), so any change to the rule is noticed.
    assert created.dt.strftime("%H:%M").tolist() == ["13:30", "08:53", "08:41", "08:07"]


def test_fixture_events(fixture_export):
    _, tickets, events, _ = fixture_export
    created = tickets.set_index("ticket_id")["created_at"]
    got = events[["ticket_id", "at", "actor", "kind", "value", "body"]].values.tolist()
    assert got == [
        ["1", created["1"], "customer", "message", "",
         "My {product_purchased} will not start.\n\nPlease help."],
        ["2", created["2"], "customer", "message", "", "I was charged twice."],
        ["2", "2023-06-01T12:15:00Z", "agent", "message", "", ""],
        ["2", "2023-06-01T12:15:00Z", "agent", "status", "pending", ""],
        ["3", created["3"], "customer", "message", "", "The TV drops Wi-Fi."],
        ["3", "2023-06-01T11:14:00Z", "agent", "message", "", "Replaced the router."],
        ["3", "2023-06-01T18:05:00Z", "agent", "status", "closed", ""],
        ["4", created["4"], "customer", "message", "", "Battery dies in an hour."],
        ["4", "2023-06-01T10:00:00Z", "agent", "message", "", "Sent a new battery."],
        ["4", "2023-06-01T10:00:00Z", "agent", "status", "closed", ""],
    ]


def test_requester_is_a_pseudonym_of_the_normalised_email(fixture_export):
    _, tickets, _, out = fixture_export
    ids = tickets["requester_id"].tolist()
    assert ids[0] == ids[3]  # Ann@Example.com and ann@example.com
    assert len(set(ids)) == 3
    assert all(i.startswith("cust-") and len(i) == 21 for i in ids)
    written = (out / "tickets.csv").read_text() + (out / "events.csv").read_text()
    assert "example." not in written and "Ann Example" not in written


def test_import_is_deterministic(tmp_path, fixture_export):
    _, _, _, first = fixture_export
    import_kaggle_cst(FIXTURE, tmp_path)
    for name in ("tickets.csv", "events.csv"):
        assert (tmp_path / name).read_bytes() == (first / name).read_bytes()


def test_rating_mapping():
    ratings = pd.Series(["1.0", "2", "3", "4.0", "5.0", "", "6", "x", "2.5"])
    satisfaction, unusable = kaggle_cst.rating_to_satisfaction(ratings)
    assert satisfaction.tolist() == ["bad", "bad", "good", "good", "good", "", "", "", ""]
    assert unusable.tolist() == [False] * 6 + [True] * 3


def test_fixture_export_passes_validation(fixture_export):
    ingest = pytest.importorskip("pipeline.sources.ingest")
    _, _, _, out = fixture_export
    result = ingest.load_export(out)
    assert result.rejected_rows == 0
    assert result.tickets["satisfaction"].tolist()[2:] == ["good", "bad"]


def test_missing_column_is_a_one_line_export_error(tmp_path):
    bad = tmp_path / "tickets.csv"
    bad.write_text("Ticket ID,Customer Email\n1,a@example.com\n")
    with pytest.raises(ExportError, match="missing column 'Ticket Subject'") as info:
        import_kaggle_cst(bad, tmp_path / "out")
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------------------
# The real Kaggle file (skipped when ../shared/datasets is absent)
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def real_export(tmp_path_factory):
    shared_dataset("negative-control-kaggle-cst/customer_support_tickets.csv.gz")  # skips, saying what is missing, when ../shared is absent
    out = tmp_path_factory.mktemp("kcst_real")
    summary = import_kaggle_cst(REAL_FILE, out)
    return summary, out


@pytest.mark.shared_data
def test_real_file_counts_and_label_share(real_export):
    summary, _ = real_export
    assert summary.rows_read == summary.tickets == 8_469
    assert summary.customer_messages == 8_469
    assert summary.agent_replies == 5_650  # pending + closed tickets have a first response
    assert (summary.good_ratings, summary.bad_ratings, summary.unrated) == (1_667, 1_102, 5_700)
    assert summary.bad_share == pytest.approx(0.398, abs=0.001)
    assert summary.resolutions_moved_to_first_response == 1_365  # 49.3% of 2,769 closed
    assert summary.unparseable_times == summary.ratings_unusable == 0


@pytest.mark.shared_data
def test_real_file_created_at_spreads_every_status_over_time(real_export):
    _, out = real_export
    tickets = _read_text(out / "tickets.csv")
    created = tickets["created_at"].map(_utc)
    later_half = created > created.median()
    shares = pd.crosstab(tickets["status"], later_half, normalize="index")
    # Each status has between 40% and 60% of its tickets in each half of the time range.
    assert ((shares > 0.4) & (shares < 0.6)).all().all()


@pytest.mark.shared_data
def test_real_export_passes_validation(real_export):
    ingest = pytest.importorskip("pipeline.sources.ingest")
    _, out = real_export
    result = ingest.load_export(out)
    assert result.rejected_rows == 0
    assert len(result.tickets) == 8_469
    events = result.events
    created = result.tickets.set_index("ticket_id")["created_at"]
    assert (events["at"] >= events["ticket_id"].map(created)).all()
