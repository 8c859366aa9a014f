"""models.monitoring on hand-built history and tickets whose numbers are worked out below."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from models.metrics import without_nan
from models.monitoring import (
    alerts,
    feature_drift,
    join_outcomes,
    outcomes,
    psi,
    run_report,
    week_report,
)
from models.target import Target
from pipeline.core.params import MonitorParams

RUN1_AT = "2026-03-02T00:00:00+00:00"  # Monday of ISO week 2026-W10
RUN2_AT = "2026-03-02T12:00:00+00:00"


def tickets() -> pd.DataFrame:
    """t1..t5 rated after both runs; t6 rated BEFORE run 1 (not an outcome of either prediction)."""
    rows = [("t1", "bad", "2026-03-03T00:00:00Z"), ("t2", "good", "2026-03-03T00:00:00Z"),
            ("t3", "bad", "2026-03-03T00:00:00Z"), ("t4", "good", "2026-03-03T00:00:00Z"),
            ("t5", "good", "2026-03-03T00:00:00Z"), ("t6", "bad", "2026-03-01T00:00:00Z")]
    frame = pd.DataFrame(rows, columns=["ticket_id", "satisfaction", "satisfaction_at"])
    frame["satisfaction_at"] = pd.to_datetime(frame["satisfaction_at"], utc=True)
    frame["created_at"] = pd.Timestamp("2026-02-20", tz="UTC")
    frame["status"] = "solved"
    return frame


def history() -> pd.DataFrame:
    """Run 1 scores all six; run 2 (same week) scores t3 and t6 again."""
    run1 = pd.DataFrame({"run_id": 1, "ticket_id": ["t1", "t2", "t3", "t4", "t5", "t6"],
                         "p_bad": [0.9, 0.8, 0.6, 0.4, 0.2, 0.1],
                         "tier": ["P1", "P1", "P2", "P3", "P4", "P4"], "scored_at": RUN1_AT})
    run2 = pd.DataFrame({"run_id": 2, "ticket_id": ["t3", "t6"], "p_bad": [0.6, 0.1], "tier": ["P2", "P4"],
                         "scored_at": RUN2_AT})
    frame = pd.concat([run1, run2], ignore_index=True)
    return frame.assign(model_version="abc", rank=frame.groupby("run_id").cumcount() + 1)


def feedback() -> pd.DataFrame:
    return pd.DataFrame({"ticket_id": ["t1", "t2", "t4", "t5", "t3"], "run_id": [1, 1, 1, 1, None],
                         "verdict": ["agree", "disagree", "disagree", "handled", "disagree"]})


def joined() -> pd.DataFrame:
    return join_outcomes(history(), outcomes(tickets(), Target()))


def test_a_rating_given_before_the_run_is_not_an_outcome():
    labels = joined().set_index(["run_id", "ticket_id"])["label"]
    assert labels[(1, "t1")] == 1.0 and labels[(1, "t2")] == 0.0
    assert math.isnan(labels[(1, "t6")]) and math.isnan(labels[(2, "t6")])  # rated 2026-03-01, scored after
    assert labels[(2, "t3")] == 1.0
    # The same rating, had it come after the run, would count.
    later = tickets().assign(satisfaction_at=pd.Timestamp("2026-03-05", tz="UTC"))
    assert join_outcomes(history(), outcomes(later, Target())).query("ticket_id == 't6'")["label"].eq(1.0).all()


def test_other_targets_count_only_done_tickets():
    frame = tickets().assign(sla_missed=["true", "false", "true", "false", "false", "true"],
                             status=["solved", "closed", "open", "solved", "pending", "solved"])
    known = outcomes(frame, Target.parse("sla_missed=true")).set_index("ticket_id")["label"]
    assert known["t1"] == 1.0 and known["t2"] == 0.0 and known["t6"] == 1.0
    assert math.isnan(known["t3"]) and math.isnan(known["t5"])  # still open: the outcome is not known yet


def test_run_metrics_by_hand():
    run1, run2 = run_report(joined(), feedback())
    assert (run1["run_id"], run1["tickets_scored"], run1["outcomes_known"]) == (1, 6, 5)
    assert run1["scored_at"] == RUN1_AT and run1["model_version"] == "abc"
    # Known: p = .9 .8 .6 .4 .2, y = 1 0 1 0 0. Bad tickets beat 3 + 2 of the 6 pairs.
    assert run1["roc_auc"] == pytest.approx(5 / 6)
    # Average precision: recall 1/2 at precision 1 (t1), recall 2/2 at precision 2/3 (t3).
    assert run1["pr_auc"] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    # One ticket per 0.1-wide bin: mean |p - y| = (.1 + .8 + .4 + .4 + .2) / 5.
    assert run1["ece"] == pytest.approx(1.9 / 5)
    assert run1["p1_precision"] == pytest.approx(0.5)  # t1 bad, t2 good
    assert run1["bad_rate"] == pytest.approx(0.4)
    assert run1["bad_rate_by_tier"]["P2"] == {"outcomes": 1, "bad_rate": 1.0}
    assert run1["bad_rate_by_tier"]["P4"] == {"outcomes": 1, "bad_rate": 0.0}  # t6 is not an outcome
    # Feedback on run 1: agree t1, disagree t2 and t4, handled t5 (the verdict without a run is not tied).
    fb = run1["feedback"]
    assert fb["verdicts"] == 4 and fb["disagree_share"] == pytest.approx(0.5)
    assert fb["bad_rate_agreed"] == 1.0 and fb["bad_rate_disagreed"] == 0.0
    # Run 2: one outcome (t3, bad), one class only: no AUC, PR AUC or ECE.
    assert (run2["tickets_scored"], run2["outcomes_known"]) == (2, 1)
    assert run2["roc_auc"] is None and run2["pr_auc"] is None and run2["ece"] is None
    assert run2["feedback"]["verdicts"] == 0 and run2["feedback"]["disagree_share"] is None


def test_week_counts_each_ticket_once():
    (week,) = week_report(joined(), feedback())
    assert week["week"] == "2026-W10" and week["runs"] == 2
    assert (week["tickets_scored"], week["outcomes_known"]) == (6, 5)
    # t3 appears in both runs at weight 1/2 each: the week's numbers equal run 1's.
    assert week["roc_auc"] == pytest.approx(5 / 6)
    assert week["bad_rate"] == pytest.approx(0.4)
    assert week["ece"] == pytest.approx(1.9 / 5)


def test_psi_by_hand():
    # Shares (.5, .5) -> (.75, .25): .25 ln 1.5 + (-.25) ln .5
    expected_psi = 0.25 * np.log(1.5) - 0.25 * np.log(0.5)
    assert psi(pd.Series(["a", "a", "b", "b"]), pd.Series(["a", "a", "a", "b"]), categorical=True) == \
        pytest.approx(expected_psi)
    # Numeric, 2 bins: the training median 2.5 cuts [1, 2 | 3, 4]; tonight [1, 1, 1 | 5].
    assert psi(pd.Series([1.0, 2, 3, 4]), pd.Series([1.0, 1, 1, 5]), bins=2) == pytest.approx(expected_psi)
    assert psi(pd.Series([1.0, 2, 3, 4]), pd.Series([4.0, 3, 2, 1]), bins=2) == pytest.approx(0.0)
    # A missing value is a bin of its own; a level unseen in training is floored, not infinite.
    assert psi(pd.Series([1.0, 2, 3, 4]), pd.Series([1.0, 2, np.nan, np.nan]), bins=2) > 1.0
    assert np.isfinite(psi(pd.Series(["a", "b"]), pd.Series(["c", "c"]), categorical=True))
    assert psi(pd.Series([], dtype=float), pd.Series([1.0])) is None


def test_feature_drift_ranks_the_movers():
    training = pd.DataFrame({"x": [1.0, 2, 3, 4], "c": pd.Categorical(["a", "a", "b", "b"]), "same": [1, 2, 3, 4]})
    tonight = pd.DataFrame({"x": [1.0, 1, 1, 5], "c": pd.Categorical(["b", "b", "b", "b"]), "same": [1, 2, 3, 4]})
    drift = feature_drift(training, tonight, ["x", "c", "same", "absent"], bins=2, top=2)
    assert set(drift["features"]) == {"x", "c", "same"}
    assert [m["feature"] for m in drift["top_movers"]] == ["c", "x"]
    assert drift["features"]["same"] == pytest.approx(0.0)


def test_alerts_follow_the_thresholds():
    runs = run_report(joined(), feedback())
    drift = {"features": {"x": 0.4, "y": 0.1}, "score": {"psi": 0.3}}
    params = MonitorParams(auc_floor=0.9, ece_ceiling=0.1, psi_ceiling=0.25, min_outcomes=5)
    found = alerts(runs, drift, params)
    assert len(found) == 4
    assert "ROC AUC 0.833 of run 1" in found[0] and "ECE 0.380" in found[1]
    assert "Feature x" in found[2] and "score" in found[3]
    # Too few outcomes to judge any run, no drift: nothing to say.
    quiet = alerts(runs, {"features": {"x": 0.1}, "score": {"psi": None}}, MonitorParams(min_outcomes=6))
    assert quiet == []
    # Good enough numbers raise nothing either.
    assert alerts(runs, {}, MonitorParams(auc_floor=0.8, ece_ceiling=0.5, min_outcomes=5)) == []


def test_report_has_no_nan():
    report = without_nan({"runs": run_report(joined(), feedback()), "x": [np.float64("nan"), np.int64(3)],
                          "inf": float("inf")})
    text = json.dumps(report, allow_nan=False)  # raises on NaN or infinity
    assert report["x"] == [None, 3] and report["inf"] is None and "NaN" not in text
