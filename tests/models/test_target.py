"""Target labels: untrusted windows become unlabelled, and the spec round-trips through model metadata."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.target import Target
from pipeline.core.errors import ExportError


@pytest.fixture
def tickets():
    return pd.DataFrame({
        "ticket_id": ["a", "b", "c", "d"],
        "created_at": pd.to_datetime(["2016-03-06T23:59:59Z", "2016-03-07T00:00:00Z", "2016-03-20T12:00:00Z",
                                      "2016-03-21T00:00:00Z"], utc=True),
        "priority": ["normal", "normal", "high", "normal"],
        "sla_missed": ["true", "true", "true", "false"],
    })


def test_window_unlabels_only_matching_tickets_inside_it(tickets):
    target = Target.parse("sla_missed=true").with_unlabel(
        [{"created_from": "2016-03-07", "created_to": "2016-03-21", "where": {"priority": "Normal"}}]
    )
    labels = target.labels(tickets)
    # a: before the window; b: inside and normal -> unlabelled; c: inside but high; d: the end is exclusive.
    assert labels.tolist()[0] == 1.0 and np.isnan(labels.tolist()[1])
    assert labels.tolist()[2:] == [1.0, 0.0]


def test_window_without_where_unlabels_every_ticket_inside(tickets):
    target = Target.parse("sla_missed=true").with_unlabel([{"created_from": "2016-03-07", "created_to": "2016-03-21"}])
    assert target.labels(tickets).isna().tolist() == [False, True, True, False]


def test_spec_round_trip_keeps_windows_and_name(tickets):
    target = Target.parse("sla_missed=true").with_unlabel([{"created_from": "2016-03-07", "created_to": "2016-03-21"}])
    again = Target.from_spec(target.to_spec())
    assert again == target
    assert again.name == "sla_missed=true"
    pd.testing.assert_series_equal(again.labels(tickets), target.labels(tickets))
    assert Target().with_unlabel([{"created_from": "2016-01-01", "created_to": "2016-02-01"}]).name == "satisfaction=bad"


def test_malformed_windows_are_refused_with_a_clear_message(tickets):
    with pytest.raises(ExportError, match="needs created_from and created_to"):
        Target().with_unlabel([{"created_from": "2016-03-07"}])
    with pytest.raises(ExportError, match="column 'nope' is not in the tickets table"):
        Target.parse("sla_missed=true").with_unlabel(
            [{"created_from": "2016-03-07", "created_to": "2016-03-21", "where": {"nope": "x"}}]).labels(tickets)
