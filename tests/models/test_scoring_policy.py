"""score_tickets wires the policy and the reasons together: capacity, overdue floor, tail, language, no reasons at P4."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.build import latest_timestamp
from models.policy import PriorityPolicy, sla_urgency
from models.scoring import score_tickets
from models.store import TriageModel
from pipeline.sources.ingest import load_export
from tests.conftest import override


@pytest.fixture(scope="module")
def scoring(demo):
    export = load_export(demo.export_dir)
    model = TriageModel.load(demo.model_dir)
    as_of = latest_timestamp(export.tickets, export.events)
    return lambda params: score_tickets(model, export.tickets, export.events, as_of, params)


@pytest.fixture(scope="module")
def default_queue(scoring, demo):
    return scoring(demo.params)


def wait_multiple(queue: pd.DataFrame, demo) -> np.ndarray:
    """Wait / the reply target that applies (the more urgent of prediction and agent priority)."""
    tickets = load_export(demo.export_dir).tickets.set_index("ticket_id")
    agent = queue["ticket_id"].map(tickets["priority"]).to_numpy(dtype=object)
    policy = PriorityPolicy.from_params(demo.params.policy)
    urgency = sla_urgency(queue["urgency"].to_numpy(dtype=object), agent)
    return policy.wait_multiple(queue["current_wait_minutes"].to_numpy(), urgency)


def test_capacity_makes_p1_the_first_n_of_the_queue(scoring, demo, default_queue):
    capacity = 5
    queue = scoring(override(demo.params, {"policy": {"capacity": capacity}}))
    assert queue["ticket_id"].tolist() == default_queue["ticket_id"].tolist()  # tiers change, not the order
    assert queue.loc[queue["tier"] == "P1", "rank"].tolist() == list(range(1, capacity + 1))
    # Outside the first N, a ticket keeps its cut-off tier, except that P1 becomes P2.
    rest = queue["rank"] > capacity
    expected = default_queue.loc[rest, "tier"].replace("P1", "P2")
    assert queue.loc[rest, "tier"].tolist() == expected.tolist()


def test_overdue_tickets_are_at_least_p2(scoring, demo, default_queue):
    queue = scoring(override(demo.params, {"policy": {"overdue_multiple": 1.0}}))
    assert queue["ticket_id"].tolist() == default_queue["ticket_id"].tolist()  # the order stays the score's
    lifted = (queue["tier"] != default_queue["tier"]).to_numpy()
    assert set(default_queue.loc[lifted, "tier"]) <= {"P3", "P4"} and set(queue.loc[lifted, "tier"]) == {"P2"}
    # Exactly the tickets waiting longer than their reply target (wait rounded to 0.1 min in the file).
    multiple = wait_multiple(queue, demo)
    assert lifted.any() and (multiple[lifted] > 1.0 - 1e-3).all()
    assert (multiple[queue["tier"].isin(["P3", "P4"]).to_numpy()] <= 1.0 + 1e-3).all()


def test_without_the_tail_long_waits_score_lower(scoring, demo, default_queue):
    flat = scoring(override(demo.params, {"policy": {"sla_tail_per_doubling": 0}}))
    by_id = flat.set_index("ticket_id")["priority_score"]
    gain = default_queue["priority_score"].to_numpy() - by_id.loc[default_queue["ticket_id"]].to_numpy()
    assert (gain >= -0.01).all() and (gain > 1).any()
    # Only waits past sla_cap (2) x their reply target gain, and they all do.
    multiple = wait_multiple(default_queue, demo)
    assert (np.abs(gain[multiple < 2 - 1e-3]) <= 0.01).all()
    assert (gain[multiple > 2.1] > 0).all()


def test_reasons_stop_below_p3_and_speak_korean(scoring, demo, default_queue):
    assert (default_queue["tier"] == "P4").any()
    assert (default_queue.loc[default_queue["tier"] == "P4", "reasons"] == "").all()
    assert (default_queue.loc[default_queue["tier"] != "P4", "reasons"] != "").any()
    korean = scoring(override(demo.params, {"reasons": {"language": "ko"}}))
    said = korean.loc[korean["reasons"] != "", "reasons"]
    assert len(said) > 0 and said.str.contains("오늘").all() and not said.str.contains("tonight").any()
    assert ((korean["reasons"] != "") == (default_queue["reasons"] != "")).all()  # the same reasons, in Korean
