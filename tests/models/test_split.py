"""Out-of-time split: hand-worked boundaries, and no ticket straddling periods in the training rows."""

from __future__ import annotations

import pandas as pd
import pytest

from models.dataset import build_training_data
from models.split import PERIODS, assign_periods, period_boundaries
from models.target import Target
from pipeline.core.errors import UserError
from pipeline.core.params import SplitParams, parse_params
from pipeline.sources.ingest import load_export


def days(n: int, unit: str = "ns") -> pd.Series:
    """n tickets created at midnight on 2026-01-01, 01-02, ... (UTC)."""
    return pd.Series(pd.date_range("2026-01-01", periods=n, freq="D", tz="UTC", unit=unit))


def test_boundaries_on_ten_daily_tickets():
    # Shares 0.55 / 0.15 / 0.10 / 0.20 -> cumulative 0.55, 0.70, 0.80 of days 0..9;
    # quantile method "higher": positions 4.95 -> day 5, 6.3 -> day 7, 7.2 -> day 8.
    boundaries = period_boundaries(days(10), SplitParams())
    assert boundaries == {
        "valid": pd.Timestamp("2026-01-06", tz="UTC"),
        "calibrate": pd.Timestamp("2026-01-08", tz="UTC"),
        "test": pd.Timestamp("2026-01-09", tz="UTC"),
    }
    period = assign_periods(days(10), boundaries)
    assert period.tolist() == ["train"] * 5 + ["valid"] * 2 + ["calibrate"] + ["test"] * 2


def test_custom_fractions_are_normalised():
    # 1 : 1 : 1 : 1 (not summing to 1) -> quarters; positions 2.25, 4.5, 6.75 -> days 3, 5, 7.
    boundaries = period_boundaries(days(10), SplitParams(train=1, valid=1, calibrate=1, test=1))
    assert [b.day for b in boundaries.values()] == [4, 6, 8]


def test_unlabelled_missing_times_are_ignored_and_empty_input_fails():
    with_gap = pd.concat([days(10), pd.Series([pd.NaT], dtype="datetime64[ns, UTC]")], ignore_index=True)
    assert period_boundaries(with_gap, SplitParams()) == period_boundaries(days(10), SplitParams())
    with pytest.raises(UserError, match="no labelled tickets"):
        period_boundaries(days(0), SplitParams())


def test_zero_fraction_is_refused():
    with pytest.raises(UserError, match="split.calibrate: Input should be greater than 0"):
        parse_params({"split": {"calibrate": 0.0}})


def test_boundaries_do_not_depend_on_the_time_unit():
    # pandas 3's pd.to_datetime on strings gives microseconds; reading those as nanoseconds
    # once put every boundary in January 1970 (every ticket in "test").
    assert period_boundaries(days(10, unit="us"), SplitParams()) == period_boundaries(days(10, unit="ns"), SplitParams())


@pytest.fixture(scope="module")
def training_data(demo):
    export = load_export(demo.export_dir)
    data = build_training_data(export.tickets, export.events, Target(), demo.params)
    created = export.tickets.set_index("ticket_id")["created_at"]
    return data, created


def test_each_ticket_has_exactly_one_period(training_data):
    data, _ = training_data
    for rows in (data.risk, data.urgency):
        periods_per_ticket = rows.groupby("ticket_id")["period"].nunique()
        assert (periods_per_ticket == 1).all()
    # A ticket in both tables is in the same period in both.
    risk = data.risk.drop_duplicates("ticket_id").set_index("ticket_id")["period"]
    urgency = data.urgency.set_index("ticket_id")["period"]
    common = risk.index.intersection(urgency.index)
    assert len(common) > 100
    assert (risk[common] == urgency[common]).all()


def test_periods_are_in_time_order_and_test_holds_the_newest(training_data):
    data, created = training_data
    tickets = data.risk.drop_duplicates("ticket_id")[["ticket_id", "period"]]
    tickets = tickets.assign(created_at=tickets["ticket_id"].map(created))
    spans = tickets.groupby("period")["created_at"].agg(["min", "max"]).loc[list(PERIODS)]
    for earlier, later in zip(PERIODS, PERIODS[1:]):
        assert spans.loc[earlier, "max"] < spans.loc[later, "min"], (earlier, later)
        assert spans.loc[later, "min"] >= data.boundaries[later]
    # The newest labelled ticket is in the test period.
    assert tickets.loc[tickets["created_at"].idxmax(), "period"] == "test"


def test_no_test_snapshot_is_in_training(training_data):
    data, _ = training_data
    test_ids = set(data.risk.loc[data.risk["period"] == "test", "ticket_id"])
    fit_ids = set(data.risk.loc[data.risk["period"] != "test", "ticket_id"])
    assert test_ids and fit_ids
    assert not test_ids & fit_ids


def test_period_shares_follow_the_fractions(training_data):
    data, _ = training_data
    labelled = data.risk.drop_duplicates("ticket_id")["period"].value_counts(normalize=True)
    expected = {"train": 0.55, "valid": 0.15, "calibrate": 0.10, "test": 0.20}
    for period, share in expected.items():
        assert labelled[period] == pytest.approx(share, abs=0.01)


def test_snapshot_weights_sum_to_one_per_ticket(training_data):
    data, _ = training_data
    per_ticket = data.risk.groupby("ticket_id")["weight"].sum()
    assert per_ticket.to_numpy() == pytest.approx(1.0)
    assert data.risk["label"].isin([0.0, 1.0]).all()
