"""Scoring open tickets as of a moment: features -> risk, urgency, priority, rank, tier, reasons.

Pure: frames in, the scored queue out. The nightly `score` stage reads the export
and writes the result; training and scoring share the one feature implementation
(:mod:`features.build`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.build import features_from_timeline
from features.calendar import BusinessHours
from features.conversation import build_timeline
from features.snapshots import opening_moments
from models.policy import PriorityPolicy, rank_queue, sla_urgency
from models.reasons import reason_catalogue, top_reasons
from models.store import URGENCY_LEVELS, TriageModel
from pipeline.core import contract
from pipeline.core.params import Params

# The scored queue's columns, in order: the file, the database table and the API share them.
SCORE_COLUMNS = (
    "ticket_id", "p_bad", "risk", "urgency", "p_urgent", "priority_score", "rank", "tier", "reasons",
    "model_version", "scored_at",
)
QUEUE_EXTRA_COLUMNS = ("group", "assignee", "current_wait_minutes", "target")
_FLOAT_COLUMNS = ("p_bad", "p_urgent", "priority_score", "current_wait_minutes")


def score_tickets(
    model: TriageModel,
    tickets: pd.DataFrame,
    events: pd.DataFrame,
    as_of: pd.Timestamp,
    params: Params,
    all_tickets: bool = False,
) -> pd.DataFrame:
    """Score tickets as of ``as_of``; returns the queue sorted by rank (columns :data:`SCORE_COLUMNS` + extras)."""
    hours = BusinessHours.from_params(params.business_hours)
    policy = PriorityPolicy.from_params(params.policy)
    timeline = build_timeline(tickets, events, hours, model.static_attributes, model.prior_ratings)
    created = tickets[(tickets["created_at"] <= as_of).to_numpy()].reset_index(drop=True)
    now = features_from_timeline(
        tickets, timeline, pd.DataFrame({"ticket_id": created["ticket_id"], "as_of": as_of})
    )
    # Open as of the moment scored: the status the events give then, or the export's status
    # for tickets whose log has no status events at all.
    logged = events.loc[events["kind"].astype(str) == "status", "ticket_id"].unique()
    has_status_events = created["ticket_id"].isin(logged).to_numpy()
    status = np.where(has_status_events, now["status_now"].astype(str), created["status"].astype(str))
    keep = np.ones(len(created), dtype=bool) if all_tickets else ~np.isin(status, contract.DONE_STATUSES)
    chosen, now = created[keep].reset_index(drop=True), now[keep].reset_index(drop=True)
    if chosen.empty:
        return empty_queue()
    now = model.with_text_scores(now)  # the reasons quote the text scores like any feature
    p_bad = model.predict_risk(now)
    contributions = model.risk_contributions(now)
    if model.urgency_booster is not None:
        # Urgency is judged from what was known as the ticket arrived, exactly as it was trained.
        opening = features_from_timeline(
            tickets, timeline, opening_moments(chosen, as_of, params.snapshots.opening_window_minutes)
        )
        urgency_probability = model.predict_urgency(opening).to_numpy()
        urgency = np.asarray(URGENCY_LEVELS, dtype=object)[urgency_probability.argmax(axis=1)]
        p_urgent = urgency_probability[:, URGENCY_LEVELS.index("high"):].sum(axis=1)
    else:
        # Trained without an urgency model (priorities never varied): no prediction, and the
        # policy ranks on risk and SLA pressure alone (models/policy.py).
        urgency, p_urgent = None, None
    target_urgency = sla_urgency(urgency, chosen["priority"].to_numpy(dtype=object))
    wait = now["current_wait_minutes"].to_numpy()
    sla_pressure = policy.sla_pressure(wait, target_urgency)
    priority_score = np.round(policy.priority_score(p_bad, p_urgent, sla_pressure), 2)
    rank = rank_queue(priority_score, chosen["created_at"], chosen["ticket_id"])
    tier = policy.tier(priority_score, rank, policy.wait_multiple(wait, target_urgency))
    # The reasons compare each ticket with all of tonight's scored tickets (the rows of `now`).
    reasons = top_reasons(
        contributions, now, params.reasons.max_reasons, params.reasons.min_contribution,
        tier=tier, lowest_tier=params.reasons.lowest_tier, language=params.reasons.language,
        catalogue=reason_catalogue(model.meta.get("attributes", {})),
    )

    scored = pd.DataFrame(
        {
            "ticket_id": chosen["ticket_id"].to_numpy(dtype=object),
            "p_bad": np.round(p_bad, 4),
            "risk": np.rint(100 * p_bad).astype("int64"),
            "urgency": urgency if urgency is not None else np.full(len(chosen), None, dtype=object),
            "p_urgent": np.round(p_urgent, 4) if p_urgent is not None else np.full(len(chosen), np.nan),
            "priority_score": priority_score,
            "rank": rank,
            "tier": tier,
            "reasons": reasons.to_numpy(dtype=object),
            "model_version": model.version,
            "scored_at": as_of.isoformat(),
            "group": chosen["group"].to_numpy(dtype=object),
            "assignee": chosen["assignee"].to_numpy(dtype=object),
            "current_wait_minutes": np.round(now["current_wait_minutes"].to_numpy(), 1),
            "target": model.target,
        }
    )
    return scored.sort_values("rank", kind="stable").reset_index(drop=True)


def empty_queue() -> pd.DataFrame:
    """The scored table with no rows (every ticket solved, or nothing created yet)."""
    return pd.DataFrame({c: pd.Series(dtype="float64" if c in _FLOAT_COLUMNS else object)
                         for c in (*SCORE_COLUMNS, *QUEUE_EXTRA_COLUMNS)})
