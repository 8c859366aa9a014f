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

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from models.store import URGENCY_LEVELS

DEFAULT_SLA_TARGET_MINUTES = {"low": 1440.0, "normal": 480.0, "high": 120.0, "urgent": 30.0}


@dataclass(frozen=True)
class PriorityPolicy:
    weight_risk: float = 0.5
    weight_urgency: float = 0.3
    weight_sla: float = 0.2
    sla_cap: float = 2.0
    sla_target_minutes: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_SLA_TARGET_MINUTES))
    tiers: dict[str, float] = field(default_factory=lambda: {"P1": 60.0, "P2": 40.0, "P3": 20.0})

    @classmethod
    def from_params(cls, params: dict | None) -> "PriorityPolicy":
        params = params or {}
        _check_keys(params, {"weights", "sla_target_minutes", "sla_cap", "tiers"}, "policy")
        _check_keys(params.get("weights", {}), {"risk", "urgency", "sla"}, "policy.weights")
        _check_keys(params.get("sla_target_minutes", {}), set(URGENCY_LEVELS), "policy.sla_target_minutes")
        _check_keys(params.get("tiers", {}), {"P1", "P2", "P3"}, "policy.tiers")
        weights = params.get("weights", {})
        policy = cls(
            weight_risk=float(weights.get("risk", cls.weight_risk)),
            weight_urgency=float(weights.get("urgency", cls.weight_urgency)),
            weight_sla=float(weights.get("sla", cls.weight_sla)),
            sla_cap=float(params.get("sla_cap", cls.sla_cap)),
            sla_target_minutes={**DEFAULT_SLA_TARGET_MINUTES,
                                **{k: float(v) for k, v in params.get("sla_target_minutes", {}).items()}},
            tiers={**{"P1": 60.0, "P2": 40.0, "P3": 20.0}, **{k: float(v) for k, v in params.get("tiers", {}).items()}},
        )
        if min(policy.weight_risk, policy.weight_urgency, policy.weight_sla) < 0 or (
            policy.weight_risk + policy.weight_urgency + policy.weight_sla
        ) <= 0:
            raise ValueError("policy weights must be >= 0 with a positive sum")
        if not policy.tiers["P1"] >= policy.tiers["P2"] >= policy.tiers["P3"]:
            raise ValueError("policy tiers must satisfy P1 >= P2 >= P3")
        return policy

    def sla_pressure(self, current_wait_minutes: np.ndarray, urgency: np.ndarray) -> np.ndarray:
        """Current wait / reply target for the urgency, capped at ``sla_cap``, scaled to 0..1."""
        target = pd.Series(urgency, dtype=object).map(self.sla_target_minutes).fillna(
            self.sla_target_minutes["normal"]).to_numpy(dtype="float64")
        return np.minimum(np.asarray(current_wait_minutes, dtype="float64") / target, self.sla_cap) / self.sla_cap

    def priority_score(self, p_bad: np.ndarray, p_urgent: np.ndarray, sla_pressure: np.ndarray) -> np.ndarray:
        total = self.weight_risk + self.weight_urgency + self.weight_sla
        return 100.0 * (self.weight_risk * p_bad + self.weight_urgency * p_urgent + self.weight_sla * sla_pressure) / total

    def tier(self, priority_score: np.ndarray) -> np.ndarray:
        return np.select(
            [priority_score >= self.tiers["P1"], priority_score >= self.tiers["P2"], priority_score >= self.tiers["P3"]],
            ["P1", "P2", "P3"], default="P4",
        ).astype(object)


def _check_keys(section: dict, known: set[str], name: str) -> None:
    """A misspelled key would silently fall back to a default: refuse it instead."""
    unknown = sorted(set(section) - known)
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r} in params {name}; expected: {', '.join(sorted(known))}")


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
