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
    policy = PriorityPolicy()  # targets low 1440, normal 480, high 120, urgent 30; cap 2
    wait = np.array([240.0, 240.0, 0.0, 1440.0, 240.0])
    urgency = np.array(["normal", "urgent", "high", "low", None], dtype=object)
    # 240/480 = 0.5 -> /2 = 0.25; 240/30 = 8 -> capped at 2 -> 1.0; 0; 1440/1440 = 1 -> 0.5;
    # unknown urgency uses the normal target.
    assert policy.sla_pressure(wait, urgency) == pytest.approx([0.25, 1.0, 0.0, 0.5, 0.25])


@pytest.mark.parametrize("score, tier", [
    (100.0, "P1"), (60.0, "P1"), (59.99, "P2"), (40.0, "P2"), (39.99, "P3"), (20.0, "P3"), (19.99, "P4"), (0.0, "P4"),
])
def test_tier_cut_offs(score, tier):
    assert PriorityPolicy().tier(np.array([score])).tolist() == [tier]


def test_custom_tiers():
    policy = PriorityPolicy.from_params(PolicyParams(tiers={"P1": 80, "P2": 50, "P3": 10}))
    assert policy.tier(np.array([85.0, 79.0, 50.0, 9.0])).tolist() == ["P1", "P2", "P2", "P4"]


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
])
def test_bad_policy_settings_are_one_line_errors(params, message):
    with pytest.raises(UserError, match=message):
        parse_params({"policy": params}, "params.yaml")
