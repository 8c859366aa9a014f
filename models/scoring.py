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
from models.reasons import TIER_ORDER, reason_catalogue, tier_rank, top_reasons
from models.store import URGENCY_LEVELS, TriageModel
from models.tree_shap import parse_trees, tree_contributions
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
    logged = pd.Index(pd.unique(events.loc[(events["kind"] == "status").to_numpy(), "ticket_id"]))
    has_status_events = logged.get_indexer(created["ticket_id"]) >= 0  # a hash lookup: isin on text ids is slow
    status = np.where(has_status_events, now["status_now"].astype(str), created["status"].astype(str))
    keep = np.ones(len(created), dtype=bool) if all_tickets else ~np.isin(status, contract.DONE_STATUSES)
    chosen, now = created[keep].reset_index(drop=True), now[keep].reset_index(drop=True)
    if chosen.empty:
        return empty_queue()
    opening = None
    if model.urgency_booster is not None:
        # Urgency is judged from what was known as the ticket arrived, exactly as it was trained.
        opening = features_from_timeline(
            tickets, timeline, opening_moments(chosen, as_of, params.snapshots.opening_window_minutes)
        )
    if model.text_model is not None:  # the reasons quote the text scores like any feature
        # Tonight's and the opening texts are mostly the same: hashed once for both.
        now, opening = (model.text_model.add_scores_to([now, opening]) if opening is not None
                        else (model.text_model.add_scores(now), None))
    # One risk matrix for the predictions and the reasons' contributions.
    risk_matrix = model.risk_matrix(now)
    p_bad = model.calibrator.predict(model.risk_booster.predict(risk_matrix, raw_score=True))  # = predict_risk
    urgency, p_urgent = predicted_urgency(model, opening)
    target_urgency = sla_urgency(urgency, chosen["priority"].to_numpy(dtype=object))
    wait = now["current_wait_minutes"].to_numpy()
    sla_pressure = policy.sla_pressure(wait, target_urgency)
    priority_score = np.round(policy.priority_score(p_bad, p_urgent, sla_pressure), 2)
    rank = rank_queue(priority_score, chosen["created_at"], chosen["ticket_id"])
    tier = policy.tier(priority_score, rank, policy.wait_multiple(wait, target_urgency))
    # Contributions only for the tickets that show reasons (TreeSHAP is most of scoring's time);
    # the others keep zeros, which top_reasons never reads for a row below the lowest tier.
    shown = tier_rank(tier) <= TIER_ORDER.index(params.reasons.lowest_tier)
    contributions = np.zeros((len(now), len(risk_matrix.columns)))
    if shown.any():
        contributions[shown] = risk_contributions(model, now[shown], risk_matrix[shown]).to_numpy()
    contributions = pd.DataFrame(contributions, index=now.index, columns=risk_matrix.columns)
    return queue_table(
        model, params, as_of, now, contributions, ticket_id=chosen["ticket_id"].to_numpy(dtype=object), p_bad=p_bad,
        urgency=urgency, p_urgent=p_urgent, priority_score=priority_score, rank=rank, tier=tier,
        group=chosen["group"].to_numpy(dtype=object), assignee=chosen["assignee"].to_numpy(dtype=object),
        current_wait_minutes=now["current_wait_minutes"].to_numpy(),
    )


def predicted_urgency(model: TriageModel, opening: pd.DataFrame | None) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The urgency level and P(high or urgent) per ticket from its opening features.

    (None, None) for a model trained without an urgency model (priorities never varied): the
    policy then ranks on risk and SLA pressure alone (models/policy.py).
    """
    if opening is None:
        return None, None
    probability = model.predict_urgency(opening).to_numpy()
    urgency = np.asarray(URGENCY_LEVELS, dtype=object)[probability.argmax(axis=1)]
    return urgency, probability[:, URGENCY_LEVELS.index("high"):].sum(axis=1)


def queue_table(
    model: TriageModel, params: Params, scored_at: pd.Timestamp, now: pd.DataFrame, contributions: pd.DataFrame, *,
    ticket_id: np.ndarray, p_bad: np.ndarray, urgency: np.ndarray | None, p_urgent: np.ndarray | None,
    priority_score: np.ndarray, rank: np.ndarray, tier: np.ndarray, group: np.ndarray, assignee: np.ndarray,
    current_wait_minutes: np.ndarray,
) -> pd.DataFrame:
    """The reasons and the queue (:data:`SCORE_COLUMNS` + extras) sorted by rank, whichever engine scored.

    ``now``/``contributions``: tonight's feature rows and risk contributions, one per ticket in
    the order of the other arrays (contributions may be zero below ``reasons.lowest_tier``);
    ``urgency``/``p_urgent``: None for a model trained without an urgency model.
    """
    # The reasons compare each ticket with all of tonight's scored tickets (the rows of `now`).
    reasons = top_reasons(
        contributions, now, params.reasons.max_reasons, params.reasons.min_contribution,
        tier=tier, lowest_tier=params.reasons.lowest_tier, language=params.reasons.language,
        catalogue=reason_catalogue(model.meta.get("attributes", {})),
    )
    n = len(ticket_id)
    scored = pd.DataFrame(
        {
            "ticket_id": np.asarray(ticket_id, dtype=object),
            "p_bad": np.round(p_bad, 4),
            "risk": np.rint(100 * p_bad).astype("int64"),
            "urgency": urgency if urgency is not None else np.full(n, None, dtype=object),
            "p_urgent": np.round(p_urgent, 4) if p_urgent is not None else np.full(n, np.nan),
            "priority_score": priority_score,
            "rank": rank,
            "tier": tier,
            "reasons": reasons.to_numpy(dtype=object),
            "model_version": model.version,
            "scored_at": scored_at.isoformat(),
            "group": group,
            "assignee": assignee,
            "current_wait_minutes": np.round(current_wait_minutes, 1),
            "target": model.target,
        }
    )
    return scored.sort_values("rank", kind="stable").reset_index(drop=True)


def empty_queue() -> pd.DataFrame:
    """The scored table with no rows (every ticket solved, or nothing created yet)."""
    return pd.DataFrame({c: pd.Series(dtype="float64" if c in _FLOAT_COLUMNS else object)
                         for c in (*SCORE_COLUMNS, *QUEUE_EXTRA_COLUMNS)})


def risk_contributions(model: TriageModel, features: pd.DataFrame, matrix: pd.DataFrame | None = None) -> pd.DataFrame:
    """:meth:`TriageModel.risk_contributions`, computed by :mod:`models.tree_shap` with numpy.

    ``matrix``: ``model.risk_matrix(features)`` when the caller has it already.

    Equal to LightGBM's full pred_contrib up to the order of the floating-point sums
    (~1e-15); models it cannot read that way (several trees per iteration, other categorical
    levels than the booster's, paths too long for its tables) take LightGBM's path.
    """
    booster = model.risk_booster
    matrix = model.risk_matrix(features) if matrix is None else matrix
    categorical = [c for c in matrix.columns if isinstance(matrix[c].dtype, pd.CategoricalDtype)]
    trees = None
    if (booster.num_model_per_iteration() == 1
            and [list(matrix[c].cat.categories) for c in categorical] == list(booster.pandas_categorical or [])):
        trees = parse_trees(booster.model_to_string())
    if trees is None:
        return model.risk_contributions(features)
    # What LightGBM itself reads: category codes as numbers, a missing category as NaN.
    values = np.empty(matrix.shape, dtype="float64")
    for k, c in enumerate(matrix.columns):  # a loop over the model's ~60 features
        if c in categorical:
            codes = matrix[c].cat.codes.to_numpy()
            values[:, k] = np.where(codes < 0, np.nan, codes)
        else:
            values[:, k] = matrix[c].to_numpy(dtype="float64")
    return pd.DataFrame(tree_contributions(trees, values).T, columns=matrix.columns, index=features.index)
