"""Training and evaluation rows: features joined with labels, time periods and weights.

Both `train` and `evaluate` build their rows here, so the test period `evaluate`
reports on is exactly the one `train` held out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
    sampled: dict[str, dict[str, int]] = field(default_factory=dict)  # model part -> kept and all tickets


# A key of its own (16 bytes), so the sample is unrelated to the text model's folds (hashed without one).
_SAMPLE_HASH_KEY = "csat-fit-sample1"


@dataclass(frozen=True)
class FitSample:
    """Which tickets each model fits on when an export has more than ``train.max_tickets_per_model``.

    A ticket is kept when its id hashes below the model's share of the hash range: the
    same tickets on every run, on any machine and in any piece of a partitioned export,
    unrelated to time and label (every period keeps its share in expectation, a ticket
    keeps all its rows) and about ``max_tickets`` of them. A larger cap keeps a superset.
    """

    max_tickets: int | None
    tickets: dict[str, int]  # model part ("risk_model", "urgency_model") -> its tickets in the export

    @classmethod
    def of(cls, tickets: pd.DataFrame, target: Target, max_tickets: int | None) -> FitSample:
        return cls(max_tickets, {"risk_model": int(target.labels(tickets).notna().sum()),
                                 "urgency_model": int(_has_urgency(tickets).sum())})

    def share(self, part: str) -> float:
        n = self.tickets[part]
        return 1.0 if self.max_tickets is None or n <= self.max_tickets else self.max_tickets / n

    def labelled_ids(self, tickets: pd.DataFrame, target: Target) -> np.ndarray:
        """The ids of the labelled tickets the risk model fits on: the only ones whose snapshot rows are read."""
        ids = tickets.loc[target.labels(tickets).notna().to_numpy(), "ticket_id"].to_numpy(dtype=object)
        return ids[self.keeps("risk_model", ids)]

    def keeps(self, part: str, ticket_ids) -> np.ndarray:
        """Per ticket id (array or Series), whether ``part`` fits on it."""
        share = self.share(part)
        if share >= 1.0:
            return np.ones(len(ticket_ids), dtype=bool)
        hashed = pd.util.hash_array(np.asarray(ticket_ids, dtype=object).astype(str), hash_key=_SAMPLE_HASH_KEY)
        return hashed < np.uint64(share * 2.0**64)


def build_training_data(
    tickets: pd.DataFrame,
    events: pd.DataFrame,
    target: Target,
    params: Params,
    snapshots: pd.DataFrame | None = None,
    boundaries: dict[str, pd.Timestamp] | None = None,
    sample: FitSample | None = None,
) -> TrainingData:
    """Join features with labels and periods.

    ``snapshots``: precomputed snapshot features (`featurize --snapshots`), else built
    here. ``boundaries``: period starts from a trained model (evaluate), else computed
    from the labelled tickets' creation times and ``params.split``. ``sample``: the
    tickets each model fits on (train); None: every ticket (evaluate).
    """
    hours = BusinessHours.from_params(params.business_hours)
    timeline = build_timeline(tickets, events, hours, params.attributes.static, params.team_record.prior_ratings)
    if snapshots is None:
        snapshots = snapshot_features(tickets, events, params.snapshots, hours, timeline,
                                      outcome_is_rating=target.outcome_is_rating)
    opening = opening_moments(urgency_tickets(tickets, sample), latest_timestamp(tickets, events),
                              params.snapshots.opening_window_minutes)
    return label_training_rows(tickets, target, params, snapshots, features_from_timeline(tickets, timeline, opening),
                               boundaries, sample)


def urgency_tickets(tickets: pd.DataFrame, sample: FitSample | None = None) -> pd.DataFrame:
    """The tickets the urgency model learns from: solved, with a final priority of :data:`URGENCY_LEVELS`
    (and in ``sample``, when given)."""
    keep = _has_urgency(tickets).to_numpy(copy=True)
    if sample is not None:
        keep[keep] = sample.keeps("urgency_model", tickets["ticket_id"].to_numpy(dtype=object)[keep])
    return tickets[keep]


def _has_urgency(tickets: pd.DataFrame) -> pd.Series:
    return tickets["status"].isin(contract.DONE_STATUSES) & tickets["priority"].isin(URGENCY_LEVELS)


def label_training_rows(
    tickets: pd.DataFrame,
    target: Target,
    params: Params,
    snapshots: pd.DataFrame,
    opening: pd.DataFrame,
    boundaries: dict[str, pd.Timestamp] | None = None,
    sample: FitSample | None = None,
) -> TrainingData:
    """Join already computed features with labels, periods and weights (no event is read).

    ``snapshots``: snapshot features (rows of unlabelled tickets are dropped); ``opening``:
    the features of :func:`urgency_tickets` at their opening moment. ``sample``: only its
    tickets are kept (rows already left out are fine), and ``sampled`` counts them. What
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
        # .array keeps the time zone: to_numpy() would make a Timestamp object per ticket (3.5 s at 1M).
        {"label": labels.to_numpy(), "created_at": tickets["created_at"].array,
         "priority": tickets["priority"].to_numpy(dtype=object)},
        index=pd.Index(tickets["ticket_id"].to_numpy(dtype=object), name="ticket_id"),
    )
    if boundaries is None:
        boundaries = period_boundaries(by_ticket.loc[by_ticket["label"].notna(), "created_at"], params.split)
    by_ticket["period"] = assign_periods(by_ticket["created_at"], boundaries).to_numpy()

    risk = snapshots.join(by_ticket[["label", "period"]], on="ticket_id")
    keep = risk["label"].notna().to_numpy(copy=True)
    urgency = opening
    if sample is not None:
        keep[keep] = sample.keeps("risk_model", risk["ticket_id"].to_numpy(dtype=object)[keep])
        urgency = opening[sample.keeps("urgency_model", opening["ticket_id"].to_numpy(dtype=object))]
    risk = risk[keep].reset_index(drop=True)
    risk["weight"] = per_ticket_weights(risk["ticket_id"])

    urgency = urgency.reset_index(drop=True)
    final = by_ticket.loc[urgency["ticket_id"].to_numpy(dtype=object)]
    urgency["urgency"] = final["priority"].to_numpy(dtype=object)
    urgency["period"] = final["period"].to_numpy()
    sampled = {} if sample is None else {
        part: {"tickets": int(rows["ticket_id"].nunique()), "of_tickets": sample.tickets[part]}
        for part, rows in (("risk_model", risk), ("urgency_model", urgency)) if sample.share(part) < 1.0}
    return TrainingData(risk=risk, urgency=urgency, boundaries=boundaries, sampled=sampled)


def per_ticket_weights(ticket_ids: pd.Series) -> np.ndarray:
    """1 / number of rows of the row's ticket: every ticket weighs 1 in total."""
    return 1.0 / ticket_ids.groupby(ticket_ids).transform("size").to_numpy()
