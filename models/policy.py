"""The priority policy: how risk, urgency and SLA pressure combine into the agents' queue order.

    priority_score = 100 * (w_risk * p_bad + w_urgency * p_urgent + w_sla * sla_pressure)

- ``p_bad``: calibrated probability of the bad outcome;
- ``p_urgent``: probability the ticket deserves high or urgent;
- ``sla_pressure``: the customer's current wait as a share of the reply target for the
  ticket's urgency, capped at ``sla_cap`` and scaled to 0..1. The urgency used for the
  target is the more urgent of the predicted one and the priority an agent set, so the
  model never relaxes an agent's call.

Weights are normalised to sum to 1, so ``priority_score`` is 0..100. Tiers cut it:
P1 >= ``tiers.P1``, P2 >= ``tiers.P2``, P3 >= ``tiers.P3``, else P4.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.store import URGENCY_LEVELS
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

    def sla_pressure(self, current_wait_minutes: np.ndarray, urgency: np.ndarray) -> np.ndarray:
        """Current wait / reply target for the urgency, capped at ``sla_cap``, scaled to 0..1."""
        target = pd.Series(urgency, dtype=object).map(self.sla_target_minutes).fillna(
            self.sla_target_minutes["normal"]).to_numpy(dtype="float64")
        return np.minimum(np.asarray(current_wait_minutes, dtype="float64") / target, self.sla_cap) / self.sla_cap

    def priority_score(self, p_bad: np.ndarray, p_urgent: np.ndarray, sla_pressure: np.ndarray) -> np.ndarray:
        w = self.params.weights
        return 100.0 * (w.risk * p_bad + w.urgency * p_urgent + w.sla * sla_pressure) / (w.risk + w.urgency + w.sla)

    def tier(self, priority_score: np.ndarray) -> np.ndarray:
        tiers = self.params.tiers
        return np.select(
            [priority_score >= tiers.P1, priority_score >= tiers.P2, priority_score >= tiers.P3],
            ["P1", "P2", "P3"], default="P4",
        ).astype(object)


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
