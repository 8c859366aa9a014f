"""The priority policy: how risk, urgency and SLA pressure combine into the agents' queue order.

    priority_score = 100 * (w_risk * p_bad + w_urgency * p_urgent + w_sla * sla_pressure)

- ``p_bad``: calibrated probability of the bad outcome;
- ``p_urgent``: probability the ticket deserves high or urgent;
- ``sla_pressure``: with ``m`` = the customer's current wait / the reply target for the
  ticket's urgency, ``min(m, sla_cap) / sla_cap + sla_tail_per_doubling * log2(max(m, sla_cap) / sla_cap)``:
  0..1 up to ``sla_cap`` x target, then a log tail that keeps growing (each doubling of
  the wait adds the same amount), so a customer waiting a week outranks one a few hours
  past the target. The urgency used for the target is the more urgent of the predicted
  one and the priority an agent set, so the model never relaxes an agent's call.

Weights are normalised to sum to 1, so ``priority_score`` is 0..100 for tickets within
``sla_cap`` x their reply target (the tail can lift an overdue ticket above 100). A model without an
urgency part (the team never varies priority) has no ``p_urgent``: the urgency weight
then leaves both the sum and the divisor, so risk and SLA pressure share the whole
scale in their configured proportion, and the reply target is the agent's priority,
else ``normal``. Tiers cut the score: P1 >= ``tiers.P1``, P2 >= ``tiers.P2``,
P3 >= ``tiers.P3``, else P4; then two optional overrides: ``capacity`` N makes P1 exactly
the top N of the queue (by rank), and ``overdue_multiple`` lifts a ticket waiting longer
than that multiple of its reply target to at least P2.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.store import URGENCY_LEVELS
from pipeline.core.errors import UserError
from pipeline.core.params import PolicyParams


@dataclass(frozen=True)
class PriorityPolicy:
    """The ``policy`` params section, applied: scores, SLA pressure and tiers."""

    params: PolicyParams = PolicyParams()

    @classmethod
    def from_params(cls, params: PolicyParams | None = None) -> PriorityPolicy:
        return cls(params or PolicyParams())

    @property
    def sla_target_minutes(self) -> dict[str, float]:
        return self.params.sla_target_minutes.model_dump()

    @property
    def sla_cap(self) -> float:
        return self.params.sla_cap

    def wait_multiple(self, current_wait_minutes: np.ndarray, urgency: np.ndarray) -> np.ndarray:
        """Current wait / reply target for the urgency (an unknown urgency uses the normal target)."""
        target = pd.Series(urgency, dtype=object).map(self.sla_target_minutes).fillna(
            self.sla_target_minutes["normal"]).to_numpy(dtype="float64")
        return np.asarray(current_wait_minutes, dtype="float64") / target

    def sla_pressure(self, current_wait_minutes: np.ndarray, urgency: np.ndarray) -> np.ndarray:
        """0..1 up to ``sla_cap`` x the reply target, then + ``sla_tail_per_doubling`` per doubling."""
        multiple = self.wait_multiple(current_wait_minutes, urgency)
        cap = self.sla_cap
        # The log tail keeps very long waits rising without letting them swamp risk: a week
        # past an 8 h target (about 3.4 doublings past 2x) adds 0.85 at the default 0.25.
        tail = self.params.sla_tail_per_doubling * np.log2(np.maximum(multiple, cap) / cap)
        return np.minimum(multiple, cap) / cap + tail

    def priority_score(
        self, p_bad: np.ndarray, p_urgent: np.ndarray | None, sla_pressure: np.ndarray
    ) -> np.ndarray:
        """0..100 per ticket. ``p_urgent`` None (or NaN for a row): no urgency estimate, so the
        urgency weight is dropped from numerator and denominator for that row."""
        w = self.params.weights
        p_bad = np.asarray(p_bad, dtype="float64")
        sla_pressure = np.asarray(sla_pressure, dtype="float64")
        p_urgent = np.full(p_bad.shape, np.nan) if p_urgent is None else np.asarray(p_urgent, dtype="float64")
        known = ~np.isnan(p_urgent)
        if not known.all() and w.risk + w.sla <= 0:
            raise UserError(
                "policy.weights: only urgency has a weight, but this model has no urgency estimate "
                "(it was trained without an urgency model); give risk or sla a weight in params.yaml"
            )
        urgency_weight = np.where(known, w.urgency, 0.0)
        urgency_term = urgency_weight * np.where(known, p_urgent, 0.0)
        return 100.0 * (w.risk * p_bad + urgency_term + w.sla * sla_pressure) / (w.risk + urgency_weight + w.sla)

    def tier(
        self, priority_score: np.ndarray, rank: np.ndarray | None = None, wait_multiple: np.ndarray | None = None
    ) -> np.ndarray:
        """P1..P4 by the score cut-offs, then the ``capacity`` and ``overdue_multiple`` overrides.

        ``rank`` (1 = first, :func:`rank_queue`) is needed when ``capacity`` is set, and
        ``wait_multiple`` (:meth:`wait_multiple`) when ``overdue_multiple`` is set.
        """
        tiers, p = self.params.tiers, self.params
        priority_score = np.asarray(priority_score, dtype="float64")
        tier = np.select(
            [priority_score >= tiers.P1, priority_score >= tiers.P2, priority_score >= tiers.P3],
            ["P1", "P2", "P3"], default="P4",
        ).astype(object)
        if p.capacity is not None:
            if rank is None:
                raise ValueError("policy.capacity is set: tier() needs the queue rank")
            # Exactly the first N of the queue are P1; a high score outside them waits as P2.
            first = np.asarray(rank) <= p.capacity
            tier = np.where(first, "P1", np.where(tier == "P1", "P2", tier)).astype(object)
        if p.overdue_multiple is not None:
            if wait_multiple is None:
                raise ValueError("policy.overdue_multiple is set: tier() needs the wait multiple")
            overdue = np.asarray(wait_multiple, dtype="float64") > p.overdue_multiple
            tier = np.where(overdue & np.isin(tier, ["P3", "P4"]), "P2", tier).astype(object)
        return tier


def sla_urgency(predicted: np.ndarray | None, agent_priority: np.ndarray) -> np.ndarray:
    """The urgency whose reply target applies: :func:`more_urgent` of the prediction and the
    agent's priority, or without a prediction the agent's priority (``normal`` when unset)."""
    if predicted is None:
        agent = pd.Series(agent_priority, dtype=object)
        return agent.where(agent.isin(URGENCY_LEVELS), "normal").to_numpy(dtype=object)
    return more_urgent(predicted, agent_priority)


def more_urgent(predicted: np.ndarray, agent_priority: np.ndarray) -> np.ndarray:
    """Per ticket, the more urgent of two levels; an empty or unknown agent priority is ignored."""
    order = {level: i for i, level in enumerate(URGENCY_LEVELS)}
    predicted_rank = pd.Series(predicted, dtype=object).map(order).fillna(1).to_numpy()
    agent_rank = pd.Series(agent_priority, dtype=object).map(order).fillna(-1).to_numpy()
    return np.asarray(URGENCY_LEVELS, dtype=object)[np.maximum(predicted_rank, agent_rank).astype(int)]


def rank_queue(priority_score: np.ndarray, created_at: pd.Series, ticket_id: pd.Series) -> np.ndarray:
    """Queue positions (1 = work on first): by score, then the older ticket, then ticket id."""
    order = np.lexsort((ticket_id.astype(str).to_numpy(), created_at.to_numpy(), -np.asarray(priority_score)))
    rank = np.empty(len(order), dtype="int64")
    rank[order] = np.arange(1, len(order) + 1)
    return rank
