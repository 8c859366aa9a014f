"""The priority policy: score formula, SLA pressure, tiers, urgency merge and queue ranking, by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.policy import PriorityPolicy, more_urgent, rank_queue, sla_urgency
from pipeline.core.errors import UserError
from pipeline.core.params import PolicyParams, load_params, parse_params
from tests.models.conftest import REPO_ROOT


def test_priority_score_by_hand():
    policy = PriorityPolicy()  # weights 0.5 / 0.3 / 0.2
    # 100 * (0.5 * 0.6 + 0.3 * 0.5 + 0.2 * 0.25) = 100 * (0.30 + 0.15 + 0.05)
    score = policy.priority_score(np.array([0.6, 0.0, 1.0]), np.array([0.5, 0.0, 1.0]), np.array([0.25, 0.0, 1.0]))
    assert score == pytest.approx([50.0, 0.0, 100.0])


def test_weights_are_normalised():
    policy = PriorityPolicy.from_params(PolicyParams(weights={"risk": 2, "urgency": 1, "sla": 1}))
    # 100 * (2 * 0.6 + 1 * 0.5 + 1 * 0.25) / 4
    assert policy.priority_score(np.array([0.6]), np.array([0.5]), np.array([0.25])) == pytest.approx([48.75])


def test_without_urgency_the_weight_leaves_numerator_and_denominator():
    policy = PriorityPolicy()  # weights 0.5 / 0.3 / 0.2
    # 100 * (0.5 * 0.6 + 0.2 * 0.25) / (0.5 + 0.2) = 100 * 0.35 / 0.7
    score = policy.priority_score(np.array([0.6, 0.0, 1.0]), None, np.array([0.25, 0.0, 1.0]))
    assert score == pytest.approx([50.0, 0.0, 100.0])
    # Per row: a NaN p_urgent drops the weight for that row only.
    mixed = policy.priority_score(np.array([0.6, 0.6]), np.array([0.5, np.nan]), np.array([0.25, 0.25]))
    assert mixed == pytest.approx([50.0, 50.0])
    mixed = policy.priority_score(np.array([0.6, 0.6]), np.array([1.0, np.nan]), np.array([0.25, 0.25]))
    assert mixed == pytest.approx([65.0, 50.0])  # 100 * (0.30 + 0.30 + 0.05)


def test_urgency_only_weights_without_urgency_are_a_user_error():
    policy = PriorityPolicy.from_params(PolicyParams(weights={"risk": 0, "urgency": 1, "sla": 0}))
    assert policy.priority_score(np.array([0.6]), np.array([0.5]), np.array([0.25])) == pytest.approx([50.0])
    with pytest.raises(UserError, match="policy.weights: only urgency has a weight"):
        policy.priority_score(np.array([0.6]), None, np.array([0.25]))


def test_sla_urgency_without_a_prediction_is_the_agents_priority_else_normal():
    agent = np.array(["low", "urgent", None, "bogus", "", "high"], dtype=object)
    # Unlike more_urgent, an agent's "low" is kept: there is no prediction to be more urgent.
    assert sla_urgency(None, agent).tolist() == ["low", "urgent", "normal", "normal", "normal", "high"]
    predicted = np.array(["high", "low", "low", "urgent", "normal", "low"], dtype=object)
    assert sla_urgency(predicted, agent).tolist() == more_urgent(predicted, agent).tolist()


def test_sla_pressure_by_hand():
    policy = PriorityPolicy()  # targets low 1440, normal 480, high 120, urgent 30; cap 2; tail 0.25
    wait = np.array([240.0, 240.0, 0.0, 1440.0, 240.0, 960.0])
    urgency = np.array(["normal", "urgent", "high", "low", None, "normal"], dtype=object)
    # 240/480 = 0.5 -> /2 = 0.25; 240/30 = 8 = 2 doublings past 2 -> 1 + 0.25 * 2 = 1.5; 0;
    # 1440/1440 = 1 -> 0.5; unknown urgency uses the normal target; 960/480 = 2, the cap: 1.0.
    assert policy.sla_pressure(wait, urgency) == pytest.approx([0.25, 1.5, 0.0, 0.5, 0.25, 1.0])
    assert policy.wait_multiple(wait, urgency) == pytest.approx([0.5, 8.0, 0.0, 1.0, 0.5, 2.0])


def test_sla_pressure_keeps_rising_past_the_cap():
    policy = PriorityPolicy()
    hours = np.array([8, 16, 24, 48, 96, 168, 336], dtype="float64")
    pressure = policy.sla_pressure(hours * 60, np.full(len(hours), "normal", dtype=object))
    assert (np.diff(pressure) > 0).all()
    # 1 at 2 x 8 h, then each doubling adds the same 0.25: 48 h -> 96 h, 168 h -> 336 h.
    assert pressure[1] == pytest.approx(1.0)
    assert pressure[4] - pressure[3] == pytest.approx(0.25)
    assert pressure[6] - pressure[5] == pytest.approx(0.25)
    flat = PriorityPolicy.from_params(PolicyParams(sla_tail_per_doubling=0))
    assert flat.sla_pressure(hours * 60, np.full(len(hours), "normal", dtype=object)).tolist() == [
        0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]


def test_a_week_long_wait_outranks_ten_hours_at_similar_risk():
    policy = PriorityPolicy()
    # Even against a 10 h wait on a high-urgency ticket (5 x its 2 h target), at slightly lower risk.
    pressure = policy.sla_pressure(np.array([7 * 1440.0, 600.0]), np.array(["normal", "high"], dtype=object))
    score = policy.priority_score(np.array([0.49, 0.52]), np.array([0.2, 0.2]), pressure)
    assert score[0] > score[1]


@pytest.mark.parametrize("score, tier", [
    (100.0, "P1"), (60.0, "P1"), (59.99, "P2"), (40.0, "P2"), (39.99, "P3"), (20.0, "P3"), (19.99, "P4"), (0.0, "P4"),
])
def test_tier_cut_offs(score, tier):
    assert PriorityPolicy().tier(np.array([score])).tolist() == [tier]


def test_custom_tiers():
    policy = PriorityPolicy.from_params(PolicyParams(tiers={"P1": 80, "P2": 50, "P3": 10}))
    assert policy.tier(np.array([85.0, 79.0, 50.0, 9.0])).tolist() == ["P1", "P2", "P2", "P4"]


def test_capacity_makes_p1_exactly_the_top_n_of_the_queue():
    policy = PriorityPolicy.from_params(PolicyParams(capacity=2))
    score = np.array([70.0, 65.0, 61.0, 30.0, 30.0])
    rank = np.array([1, 2, 3, 5, 4])  # the tie at 30: the fifth row is first in rank order
    assert policy.tier(score, rank).tolist() == ["P1", "P1", "P2", "P3", "P3"]
    low = PriorityPolicy.from_params(PolicyParams(capacity=4))
    assert low.tier(score, rank).tolist() == ["P1", "P1", "P1", "P3", "P1"]
    with pytest.raises(ValueError, match="needs the queue rank"):
        policy.tier(score)


def test_overdue_tickets_are_at_least_p2():
    policy = PriorityPolicy.from_params(PolicyParams(overdue_multiple=3))
    score = np.array([5.0, 25.0, 45.0, 70.0, 5.0])
    multiple = np.array([3.5, 10.0, 4.0, 8.0, 3.0])  # exactly 3 is not longer than 3 x the target
    assert policy.tier(score, wait_multiple=multiple).tolist() == ["P2", "P2", "P2", "P1", "P4"]
    with pytest.raises(ValueError, match="needs the wait multiple"):
        policy.tier(score)


def test_readme_worked_example():
    # README "The priority policy": tickets A..E with the defaults, then capacity 2 and overdue 3.
    policy = PriorityPolicy()
    wait = np.array([300.0, 7 * 1440.0, 600.0, 5 * 1440.0, 60.0])
    urgency = np.array(["high", "normal", "normal", "low", "high"], dtype=object)
    pressure = policy.sla_pressure(wait, urgency)
    assert pressure == pytest.approx([1.0805, 1.8481, 0.625, 1.3305, 0.25], abs=5e-5)
    score = np.round(policy.priority_score(
        np.array([0.62, 0.49, 0.52, 0.10, 0.76]), np.array([0.40, 0.20, 0.20, 0.05, 0.60]), pressure), 2)
    assert score.tolist() == [64.61, 67.46, 44.5, 33.11, 61.0]
    rank = rank_queue(score, pd.Series(pd.Timestamp("2026-03-01", tz="UTC"), index=range(5)),
                      pd.Series(list("ABCDE")))
    assert rank.tolist() == [2, 1, 4, 5, 3]
    assert policy.tier(score).tolist() == ["P1", "P1", "P2", "P3", "P1"]
    tuned = PriorityPolicy.from_params(PolicyParams(capacity=2, overdue_multiple=3))
    assert tuned.tier(score, rank, tuned.wait_multiple(wait, urgency)).tolist() == ["P1", "P1", "P2", "P2", "P2"]
    # A without an urgency model (agent priority high): 100 * (0.5 * 0.62 + 0.2 * 1.0805) / 0.7.
    assert round(float(policy.priority_score(np.array([0.62]), None, pressure[:1])[0]), 2) == 75.16
    # Without the tail (the old formula) B's week-long wait scored 50.5, below A and E.
    flat = PriorityPolicy.from_params(PolicyParams(sla_tail_per_doubling=0))
    assert flat.priority_score(np.array([0.49]), np.array([0.20]),
                               flat.sla_pressure(np.array([7 * 1440.0]), np.array(["normal"], dtype=object))
                               ) == pytest.approx([50.5])


def test_more_urgent_never_relaxes_the_agents_call():
    predicted = np.array(["low", "high", "normal", "urgent", "normal", None], dtype=object)
    agent = np.array(["urgent", "low", None, "bogus", "", "low"], dtype=object)
    # An empty or unknown agent priority is ignored; an unknown prediction counts as normal.
    assert more_urgent(predicted, agent).tolist() == ["urgent", "high", "normal", "urgent", "normal", "normal"]


def test_rank_queue_follows_score_then_older_ticket_then_id():
    t0 = pd.Timestamp("2026-03-01T08:00Z")
    created = pd.Series([t0 + pd.Timedelta(hours=2), t0 + pd.Timedelta(hours=1), t0 + pd.Timedelta(hours=1),
                         t0 + pd.Timedelta(hours=1), t0])
    ids = pd.Series(["B", "A", "D", "C", "E"])
    score = np.array([50.0, 70.0, 50.0, 50.0, 10.0])
    # A (70) first; the three 50s: C and D are older than B, C before D by id; E last.
    assert rank_queue(score, created, ids).tolist() == [4, 1, 3, 2, 5]


def test_rank_queue_is_a_permutation_starting_at_one():
    rng = np.random.default_rng(3)
    score = np.round(rng.uniform(0, 100, 50), 0)  # many ties
    created = pd.Series(pd.Timestamp("2026-03-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 5, 50), unit="h"))
    ids = pd.Series([f"T{i}" for i in range(50)])
    rank = rank_queue(score, created, ids)
    assert sorted(rank.tolist()) == list(range(1, 51))
    in_order = np.argsort(rank)
    assert np.all(np.diff(score[in_order]) <= 0)


def test_from_params_merges_with_defaults():
    policy = PriorityPolicy.from_params(parse_params({"policy": {"sla_target_minutes": {"urgent": 15}, "sla_cap": 3}}).policy)
    assert policy.sla_target_minutes == {"low": 1440.0, "normal": 480.0, "high": 120.0, "urgent": 15.0}
    assert policy.sla_cap == 3.0
    weights = policy.params.weights
    assert (weights.risk, weights.urgency, weights.sla) == (0.5, 0.3, 0.2)
    assert PriorityPolicy.from_params(None) == PriorityPolicy()


def test_project_params_are_the_documented_defaults():
    assert PriorityPolicy.from_params(load_params(REPO_ROOT / "params.yaml").policy) == PriorityPolicy()


@pytest.mark.parametrize("params, message", [
    ({"weights": {"risk": -0.1}}, "policy.weights.risk: Input should be greater than or equal to 0"),
    ({"weights": {"risk": 0, "urgency": 0, "sla": 0}}, "policy.weights: policy weights must have a positive sum"),
    ({"tiers": {"P1": 30, "P2": 40}}, "policy.tiers: tiers must satisfy P1 >= P2 >= P3"),
    ({"tiers": {"P3": 50}}, "P1 >= P2 >= P3"),
    ({"weight": {"risk": 1}}, "policy.weight: unknown key"),
    ({"capacity": 0}, "policy.capacity: Input should be greater than or equal to 1"),
    ({"overdue_multiple": 0}, "policy.overdue_multiple: Input should be greater than 0"),
    ({"sla_tail_per_doubling": -1}, "policy.sla_tail_per_doubling: Input should be greater than or equal to 0"),
])
def test_bad_policy_settings_are_one_line_errors(params, message):
    with pytest.raises(UserError, match=message):
        parse_params({"policy": params}, "params.yaml")
