"""Evaluation at fixed moments: which moment each ticket gets, and the shape of the report."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from features.moments import EVALUATION_MOMENTS, first_reassignment_moments, halfway_moments, moment_frames
from models.moment_evaluation import LOGISTIC_BASELINE
from pipeline.sources.ingest import load_export
from pipeline.stages.evaluate_moments import evaluate_moments
from tests.models.conftest import demo_model


@pytest.fixture
def tiny(tiny_export):
    return load_export(tiny_export)


def test_first_reassignment_is_the_first_change_of_group(tiny):
    moments = first_reassignment_moments(tiny.events)
    # T1: billing (2 March) -> tech (3 March 09:20) -> tech again (no change).
    # T2: accounts set twice (no change). T3: no group at all.
    assert moments["ticket_id"].tolist() == ["T1"]
    assert moments["as_of"].tolist() == [pd.Timestamp("2026-03-03T09:20:00Z")]
    assert moments["moment"].tolist() == ["first_reassignment"]


def test_halfway_is_half_of_the_life_to_the_last_event(tiny):
    moments = halfway_moments(tiny.tickets, tiny.events).set_index("ticket_id")["as_of"]
    # T1: 2 March 09:00 -> last event 3 March 09:45 = 24 h 45 min; half = 12 h 22 min 30 s.
    assert moments["T1"] == pd.Timestamp("2026-03-02T21:22:30Z")
    # T2 and T3: last event at creation, life 0.
    assert moments["T2"] == pd.Timestamp("2026-03-02T20:00:00Z")
    assert moments["T3"] == pd.Timestamp("2026-03-04T08:00:00Z")


def test_moment_frames_combine_the_four_moments(tiny):
    frames = moment_frames(tiny.tickets, tiny.events, opening_window_minutes=5, daily_local_time="05:30",
                           timezone="UTC")
    counts = frames["moment"].value_counts().to_dict()
    # daily: T1 is solved by Tuesday 05:30 (Monday 11:05), T3 arrives after Wednesday's;
    # T2 (no status event: open) is in Tuesday's and Wednesday's queue.
    assert counts == {"opening": 3, "halfway": 3, "first_reassignment": 1, "daily": 2}
    daily = frames[frames["moment"] == "daily"]
    assert set(daily["ticket_id"]) == {"T2"}
    assert sorted(daily["as_of"]) == [pd.Timestamp("2026-03-03T05:30:00Z"), pd.Timestamp("2026-03-04T05:30:00Z")]
    opening = frames[frames["moment"] == "opening"].set_index("ticket_id")["as_of"]
    assert opening["T1"] == pd.Timestamp("2026-03-02T09:05:00Z")
    # T3 is created at the export's last moment: its opening is capped there.
    assert opening["T3"] == pd.Timestamp("2026-03-04T08:00:00Z")


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    """The session's demo export and model (shared with the other slow tests), evaluated per moment."""
    demo = demo_model(tmp_path_factory)
    root = tmp_path_factory.mktemp("moments")
    metrics = evaluate_moments(demo.model_dir, root / "moments.json", demo.params)
    return root, demo.export_dir, metrics


def _reference_first_reassignment(events: pd.DataFrame) -> dict[str, pd.Timestamp]:
    """Per ticket, slowly: the time of the first group event whose value differs from the one before."""
    out = {}
    groups = events[events["kind"] == "group"].sort_values(["ticket_id", "at"], kind="stable")
    for ticket_id, rows in groups.groupby("ticket_id"):
        values, times = rows["value"].tolist(), rows["at"].tolist()
        for i in range(1, len(values)):
            if values[i] != values[i - 1]:
                out[ticket_id] = times[i]
                break
    return out


@pytest.mark.slow  # uses the session's demo model
def test_first_reassignment_matches_a_slow_reference_on_a_simulated_export(simulated):
    _, export_dir, _ = simulated
    export = load_export(export_dir)
    fast = first_reassignment_moments(export.events).set_index("ticket_id")["as_of"].to_dict()
    slow = _reference_first_reassignment(export.events)
    assert len(slow) > 50  # the simulator does reassign tickets
    assert fast == slow


@pytest.mark.slow
def test_report_shape_and_hand_checkable_values(simulated):
    root, _, metrics = simulated
    on_disk = json.loads((root / "moments.json").read_text())
    assert on_disk == metrics
    text = (root / "moments.json").read_text()
    assert "NaN" not in text
    assert list(on_disk) == sorted(on_disk)  # sorted keys

    moments = metrics["moments"]
    assert set(moments) == set(EVALUATION_MOMENTS)
    n_test = metrics["test_period"]["tickets"]
    # Every labelled test ticket has an opening and a halfway row; only some were reassigned.
    assert moments["opening"]["tickets"] == moments["halfway"]["tickets"] == n_test
    # The nightly queue's population: open tickets, several days each, a ticket weighing 1.
    assert 0 < moments["daily"]["tickets"] <= n_test < moments["daily"]["rows"]
    assert moments["daily"]["already_solved_share"] == 0.0
    assert set(moments["daily"]["baselines"]) == {"oldest_first", "longest_wait", LOGISTIC_BASELINE}
    assert 0 < moments["first_reassignment"]["tickets"] < n_test
    assert moments["opening"]["bad_tickets"] == metrics["test_period"]["bad_tickets"]
    assert moments["opening"]["bad_rate"] == pytest.approx(moments["opening"]["bad_tickets"] / n_test)
    assert moments["opening"]["median_age_minutes"] == pytest.approx(5.0)

    opening = moments["opening"]
    for name in ("roc_auc", "pr_auc", "recall_top10"):
        assert 0.0 <= opening["model"][name] <= 1.0
    assert set(opening["baselines"]) == {"oldest_first", "longest_wait", LOGISTIC_BASELINE}
    # At the opening every ticket is 5 minutes old: age cannot rank them.
    assert opening["baselines"]["oldest_first"]["roc_auc"] == pytest.approx(0.5)
    # The opening-fields baseline scores each ticket's opening row at every moment, so on the
    # same tickets (opening and halfway) it ranks identically.
    assert opening["baselines"][LOGISTIC_BASELINE]["roc_auc"] == pytest.approx(
        moments["halfway"]["baselines"][LOGISTIC_BASELINE]["roc_auc"]
    )
    urgency = metrics["urgency"]
    assert set(urgency["baselines"]) == {"agent_initial_priority", "most_frequent_class"}
    assert urgency["baselines"]["most_frequent_class"]["quadratic_kappa"] == pytest.approx(0.0)
    assert np.isfinite(urgency["macro_f1"]) and urgency["tickets"] > 0
