"""`score --engine dask`: tonight's queue from a partitioned export, the model applied piece by piece.

The steps of :func:`models.scoring.score_tickets`, split where they need the whole export:

1. per piece: features as of the moment for the tickets created by then, the open ones
   kept (status from the events, else the export's), and their opening features when the
   model has an urgency part - all but the cross-ticket features;
2. the cross-ticket features of those rows over the whole export, gathered (as ``featurize``);
3. per piece, with the model sent once to every worker: text scores, risk, urgency, SLA
   pressure and the priority score;
4. on the client: the rank and the tiers over every open ticket (a sort of one number per
   ticket); then per piece the risk contributions of the tickets that show reasons; then on
   the client the reasons, which compare each ticket with all of tonight's tickets.

The queue equals the one-machine queue (same ranks and tiers, risk to 1e-9); the stage writes
it with the same sinks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.build import features_from_timeline
from features.calendar import BusinessHours
from features.conversation import build_timeline
from features.snapshots import opening_moments
from models.policy import PriorityPolicy, rank_queue, sla_urgency
from models.reasons import TIER_ORDER, tier_rank
from models.scoring import empty_queue, open_tickets, predicted_urgency, queue_table, risk_contributions
from models.store import TriageModel
from pipeline.core.params import Params
from pipeline.distributed.featurize import cross_ticket_blocks, with_cross_ticket
from pipeline.distributed.partition import PartitionedExport, piece_tables


@dataclass(frozen=True)
class _Settings:
    hours: BusinessHours
    static: tuple[str, ...]
    prior: float | None
    moment: pd.Timestamp
    opening_window_minutes: float
    urgency: bool
    all_tickets: bool


@dataclass(frozen=True)
class _Piece:
    """One piece's open tickets: their ticket rows, features now, and features at opening (or None)."""

    chosen: pd.DataFrame
    now: pd.DataFrame
    opening: pd.DataFrame | None

    @property
    def queries(self) -> pd.DataFrame:
        frames = [self.now[["ticket_id", "as_of"]]]
        if self.opening is not None:
            frames.append(self.opening[["ticket_id", "as_of"]])
        return pd.concat(frames, ignore_index=True)


def score_dask(client, export: PartitionedExport, model: TriageModel, params: Params,
               moment: pd.Timestamp, all_tickets: bool = False) -> pd.DataFrame:
    """The scored queue (columns and order of :func:`models.scoring.score_tickets`).

    ``model`` (loaded on the client) is sent once to every worker; each piece is scored with it.
    """
    import dask

    shipped = client.scatter(model, broadcast=True)
    settings = _Settings(
        hours=BusinessHours.from_params(params.business_hours), static=tuple(model.static_attributes),
        prior=model.prior_ratings, moment=moment, opening_window_minutes=params.snapshots.opening_window_minutes,
        urgency=model.urgency_booster is not None, all_tickets=all_tickets,
    )
    pieces = client.persist([dask.delayed(_open_tickets)(t, e, settings)
                             for t, e in zip(export.tickets.to_delayed(), export.events.to_delayed())])
    # The model's own feature settings, as one machine's scoring builds its timeline with.
    cross_params = params.model_copy(update={
        "attributes": params.attributes.model_copy(update={"static": settings.static}),
        "team_record": (params.team_record if settings.prior is None
                        else params.team_record.model_copy(update={"prior_ratings": settings.prior})),
    })
    queries = client.persist([dask.delayed(_queries)(p) for p in pieces])
    blocks = cross_ticket_blocks(client, export, queries, cross_params)
    predicted = client.persist([dask.delayed(_predict)(p, b, shipped, params)
                                for p, b in zip(pieces, blocks)])

    summaries = [s for s in client.compute([dask.delayed(_summary)(p) for p in predicted], sync=True)]
    if not any(len(s) for s in summaries):
        return empty_queue()
    summary = pd.concat(summaries, ignore_index=True)
    policy = PriorityPolicy.from_params(params.policy)
    rank = rank_queue(summary["priority_score"].to_numpy(), summary["created_at"], summary["ticket_id"])
    tier = policy.tier(summary["priority_score"].to_numpy(), rank, summary["wait_multiple"].to_numpy())
    shown = tier_rank(tier) <= TIER_ORDER.index(params.reasons.lowest_tier)
    bounds = np.cumsum([0] + [len(s) for s in summaries])
    parts = client.compute([dask.delayed(_explained)(p, shown[bounds[i]:bounds[i + 1]], shipped)
                            for i, p in enumerate(predicted)], sync=True)
    now = pd.concat([p[0] for p in parts if p is not None], ignore_index=True)
    contributions = pd.concat([p[1] for p in parts if p is not None], ignore_index=True)
    return queue_table(
        model, params, moment, now, contributions, ticket_id=summary["ticket_id"].to_numpy(dtype=object),
        p_bad=summary["p_bad"].to_numpy(), urgency=summary["urgency"].to_numpy(dtype=object),
        p_urgent=summary["p_urgent"].to_numpy(dtype="float64"), priority_score=summary["priority_score"].to_numpy(),
        rank=rank, tier=tier, group=summary["group"].to_numpy(dtype=object),
        assignee=summary["assignee"].to_numpy(dtype=object),
        current_wait_minutes=summary["current_wait_minutes"].to_numpy(),
    )


def _queries(piece: _Piece | None) -> pd.DataFrame | None:
    return None if piece is None else piece.queries


def _open_tickets(tickets: pd.DataFrame, events: pd.DataFrame, settings: _Settings) -> _Piece | None:
    """Step 1 (as score_tickets): the tickets open at the moment, with features but the cross-ticket ones."""
    tickets, events = piece_tables(tickets, events)
    if not (tickets["created_at"] <= settings.moment).any():
        return None
    timeline = build_timeline(tickets, events, settings.hours, settings.static, settings.prior)
    chosen = open_tickets(tickets, events, timeline, settings.moment, settings.all_tickets)
    if chosen.empty:
        return None
    now = features_from_timeline(tickets, timeline, pd.DataFrame({"ticket_id": chosen["ticket_id"],
                                                                  "as_of": settings.moment}), cross_ticket=False)
    opening = None
    if settings.urgency:
        opening = features_from_timeline(
            tickets, timeline, opening_moments(chosen, settings.moment, settings.opening_window_minutes),
            cross_ticket=False)
    return _Piece(chosen=chosen, now=now, opening=opening)


def _predict(piece: _Piece | None, cross: pd.DataFrame, model: TriageModel, params: Params) -> dict | None:
    """Step 3 (as score_tickets): risk, urgency and the priority score of one piece's open tickets."""
    if piece is None:
        return None
    n = len(piece.now)
    now = with_cross_ticket(piece.now, cross.iloc[:n])
    opening = None if piece.opening is None else with_cross_ticket(piece.opening, cross.iloc[n:])
    if model.text_model is not None:
        now, opening = (model.text_model.add_scores_to([now, opening]) if opening is not None
                        else (model.text_model.add_scores(now), None))
    p_bad = model.predict_risk(now)
    urgency, p_urgent = predicted_urgency(model, opening)
    chosen = piece.chosen
    policy = PriorityPolicy.from_params(params.policy)
    target_urgency = sla_urgency(urgency, chosen["priority"].to_numpy(dtype=object))
    wait = now["current_wait_minutes"].to_numpy()
    summary = pd.DataFrame({
        "ticket_id": chosen["ticket_id"].to_numpy(dtype=object),
        "created_at": chosen["created_at"].to_numpy(),
        "p_bad": p_bad,
        "urgency": urgency if urgency is not None else np.full(n, None, dtype=object),
        "p_urgent": p_urgent if p_urgent is not None else np.full(n, np.nan),
        "priority_score": np.round(policy.priority_score(p_bad, p_urgent, policy.sla_pressure(wait, target_urgency)), 2),
        "wait_multiple": policy.wait_multiple(wait, target_urgency),
        "group": chosen["group"].to_numpy(dtype=object),
        "assignee": chosen["assignee"].to_numpy(dtype=object),
        "current_wait_minutes": wait,
    })
    return {"now": now, "summary": summary}


def _summary(predicted: dict | None) -> pd.DataFrame:
    return pd.DataFrame() if predicted is None else predicted["summary"]


def _explained(predicted: dict | None, shown: np.ndarray, model: TriageModel) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """Step 4: the piece's features and risk contributions (zeros for tickets that show no reasons)."""
    if predicted is None:
        return None
    now = predicted["now"]
    contributions = pd.DataFrame(0.0, index=now.index, columns=model.meta["risk_features"])
    if shown.any():
        contributions.loc[shown] = risk_contributions(model, now[shown]).to_numpy()
    return now, contributions
