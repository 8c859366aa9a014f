"""Training and evaluation rows: features joined with labels, time periods and weights.

Both `train` and `evaluate` build their rows here, so the test period `evaluate`
reports on is exactly the one `train` held out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.build import (
    FEATURE_NAMES,
    OPENING_TEXT,
    features_from_timeline,
    latest_timestamp,
)
from features.calendar import BusinessHours
from features.conversation import build_timeline
from features.snapshots import opening_moments, snapshot_features
from models.split import assign_periods, period_boundaries
from models.store import URGENCY_LEVELS
from models.target import Target
from pipeline.core import contract
from pipeline.core.errors import ExportError
from pipeline.core.params import Params


@dataclass(frozen=True)
class TrainingData:
    """``risk``: snapshot rows of labelled tickets with ``label`` (0/1), ``weight``
    (1 / snapshots of the ticket) and ``period``. ``urgency``: one opening row per
    solved ticket with a final priority, with ``urgency`` and ``period``."""

    risk: pd.DataFrame
    urgency: pd.DataFrame
    boundaries: dict[str, pd.Timestamp]


def build_training_data(
    tickets: pd.DataFrame,
    events: pd.DataFrame,
    target: Target,
    params: Params,
    snapshots: pd.DataFrame | None = None,
    boundaries: dict[str, pd.Timestamp] | None = None,
) -> TrainingData:
    """Join features with labels and periods.

    ``snapshots``: precomputed snapshot features (`featurize --snapshots`), else built
    here. ``boundaries``: period starts from a trained model (evaluate), else computed
    from the labelled tickets' creation times and ``params.split``.
    """
    hours = BusinessHours.from_params(params.business_hours)
    timeline = build_timeline(tickets, events, hours, params.attributes.static, params.team_record.prior_ratings)
    if snapshots is None:
        snapshots = snapshot_features(tickets, events, params.snapshots, hours, timeline,
                                      outcome_is_rating=target.outcome_is_rating)
    opening = opening_moments(urgency_tickets(tickets), latest_timestamp(tickets, events),
                              params.snapshots.opening_window_minutes)
    return label_training_rows(tickets, target, params, snapshots, features_from_timeline(tickets, timeline, opening),
                               boundaries)


def urgency_tickets(tickets: pd.DataFrame) -> pd.DataFrame:
    """The tickets the urgency model learns from: solved, with a final priority of :data:`URGENCY_LEVELS`."""
    has_urgency = tickets["status"].isin(contract.DONE_STATUSES) & tickets["priority"].astype(object).isin(URGENCY_LEVELS)
    return tickets[has_urgency.to_numpy()]


def label_training_rows(
    tickets: pd.DataFrame,
    target: Target,
    params: Params,
    snapshots: pd.DataFrame,
    opening: pd.DataFrame,
    boundaries: dict[str, pd.Timestamp] | None = None,
) -> TrainingData:
    """Join already computed features with labels, periods and weights (no event is read).

    ``snapshots``: snapshot features (rows of unlabelled tickets are dropped); ``opening``:
    the features of :func:`urgency_tickets` at their opening moment. What
    :func:`build_training_data` does once it has the features, and what an engine that
    computes the features elsewhere (``--engine dask``) calls with them.
    """
    missing = [c for c in (*FEATURE_NAMES, OPENING_TEXT) if c not in snapshots.columns]
    if missing:
        raise ExportError(
            f"the snapshot features lack {', '.join(missing[:3])}: they were made by another version; "
            "run `csat-triage featurize --snapshots` again (dvc repro does)"
        )

    labels = target.labels(tickets)
    by_ticket = pd.DataFrame(
        {"label": labels.to_numpy(), "created_at": tickets["created_at"].to_numpy(),
         "priority": tickets["priority"].to_numpy(dtype=object)},
        index=pd.Index(tickets["ticket_id"].to_numpy(dtype=object), name="ticket_id"),
    )
    if boundaries is None:
        boundaries = period_boundaries(by_ticket.loc[by_ticket["label"].notna(), "created_at"], params.split)
    by_ticket["period"] = assign_periods(by_ticket["created_at"], boundaries).to_numpy()

    risk = snapshots.join(by_ticket[["label", "period"]], on="ticket_id")
    risk = risk[risk["label"].notna()].reset_index(drop=True)
    risk["weight"] = per_ticket_weights(risk["ticket_id"])

    urgency = opening.reset_index(drop=True)
    final = by_ticket.loc[urgency["ticket_id"].to_numpy(dtype=object)]
    urgency["urgency"] = final["priority"].to_numpy(dtype=object)
    urgency["period"] = final["period"].to_numpy()
    return TrainingData(risk=risk, urgency=urgency, boundaries=boundaries)


def per_ticket_weights(ticket_ids: pd.Series) -> np.ndarray:
    """1 / number of rows of the row's ticket: every ticket weighs 1 in total."""
    return 1.0 / ticket_ids.groupby(ticket_ids).transform("size").to_numpy()
