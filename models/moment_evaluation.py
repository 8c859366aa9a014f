"""How the risk model ranks test tickets at fixed moments of their life (the `evaluate-moments` stage).

`evaluate` scores the training snapshots of the test period, a mixture of moments.
A team deciding when to act wants the answer per moment, so this module compares, at each moment of :mod:`features.moments`:

- (moments) each an as-of frame (``ticket_id``, ``as_of``, ``moment``):
  ``opening`` (``created_at`` + ``snapshots.opening_window_minutes``, capped at the
  export time), ``first_reassignment`` (the first group event that moves the ticket
  to a different group after its first group was set; only tickets that have one)
  ``halfway`` (``created_at`` + half the ticket's life, life = last event time -
  ``created_at``; a ticket without events has life 0) and ``daily`` (each day the ticket
  is open, at ``snapshots.daily_local_time``: the queue a nightly run scores; a ticket
  weighs 1 over its days);
- the per-moment comparison of the model's ``predict_risk`` with three baselines:
  ``oldest_first`` (``age_minutes``, older first), ``longest_wait`` (``current_wait_minutes``) and
  ``opening_fields_logistic_regression`` (a logistic regression on the model's
  features as of the opening, fitted on the training period's opening rows; at
  every moment it scores the ticket's opening row: what was known when it arrived);
- urgency at the opening against the agent's initial priority and the most frequent
  class (the same metrics as :mod:`models.evaluation`).

Features come only from :func:`features.build.build_features` on one as-of frame.
Test and training periods are the model's own (``period_starts`` in its metadata), and
the model judged is its held-out view (:meth:`TriageModel.heldout`), which never saw
the test period.
The output JSON (sorted keys) has no NaN: undefined metrics are ``null``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.build import build_features
from features.calendar import BusinessHours
from features.moments import moment_frames
from models import baselines
from models.dataset import per_ticket_weights
from models.evaluation import first_priority, urgency_metrics
from models.metrics import probability_metrics, ranking_metrics, without_nan
from models.split import assign_periods
from models.store import URGENCY_LEVELS, TriageModel
from models.target import Target
from pipeline.core import contract
from pipeline.core.errors import UserError

LOGISTIC_BASELINE = "opening_fields_logistic_regression"

def evaluate_moments(
    model: TriageModel, tickets: pd.DataFrame, events: pd.DataFrame, window: float, hours: BusinessHours,
    daily_local_time: str,
) -> dict:
    """Evaluate ``model`` at each of :data:`EVALUATION_MOMENTS` on its test period.

    ``window``: the opening window in minutes; ``hours``: the business hours. Returns:
    ``{"moments": {moment: {"tickets", "bad_tickets", "bad_rate", "already_solved_share",
    "model": {...}, "baselines": {name: {...}}}}, "urgency": {...}, ...}``.
    """
    model = model.heldout()
    ticket_table = _ticket_table(model, tickets)
    in_scope = ticket_table[ticket_table["period"].isin(["train", "test"])]
    queries = _moment_queries(tickets[tickets["ticket_id"].isin(in_scope.index)], events, window, ticket_table,
                              daily_local_time, hours.timezone)
    features = build_features(tickets, events, queries, hours, static_attributes=model.static_attributes,
                              prior_ratings=model.prior_ratings)

    opening = features[features["moment"] == "opening"]
    logistic_by_ticket = _opening_logistic_scores(model, opening)
    test = features[(features["period"] == "test") & features["label"].notna()].reset_index(drop=True)
    if test["label"].nunique() < 2:
        raise UserError("the test period has only one class of label; nothing to evaluate")
    moments = {
        moment: _moment_metrics(model, rows.reset_index(drop=True), logistic_by_ticket)
        for moment, rows in test.groupby("moment", sort=False)
    }
    test_tickets = test.drop_duplicates("ticket_id")
    result = {
        "target": model.target,
        "model_version": model.version,
        "opening_window_minutes": window,
        "test_period": {
            "starts": model.meta["period_starts"]["test"],
            "tickets": int(len(test_tickets)),
            "bad_tickets": int((test_tickets["label"] == 1).sum()),
        },
        "moments": moments,
    }
    urgency = _urgency_section(model, opening, events)
    if urgency is not None:
        result["urgency"] = urgency
    return without_nan(result)

def _ticket_table(model: TriageModel, tickets: pd.DataFrame) -> pd.DataFrame:
    """Per ticket (index ``ticket_id``): ``label`` (0/1/NaN), ``period``, ``status``, ``priority``."""
    target = Target.from_spec(model.meta["target_spec"])
    boundaries = {k: pd.Timestamp(v) for k, v in model.meta["period_starts"].items()}
    return pd.DataFrame(
        {
            "label": target.labels(tickets).to_numpy(),
            "period": assign_periods(tickets["created_at"], boundaries).to_numpy(),
            "final_status": tickets["status"].astype(object).to_numpy(),
            "final_priority": tickets["priority"].astype(object).to_numpy(),
        },
        index=pd.Index(tickets["ticket_id"].to_numpy(dtype=object), name="ticket_id"),
    )


def _moment_queries(
    tickets: pd.DataFrame, events: pd.DataFrame, window: float, ticket_table: pd.DataFrame,
    daily_local_time: str, timezone: str,
) -> pd.DataFrame:
    """The as-of frame for :func:`build_features`: moments plus the ticket's label and period.

    Training-period tickets only need their opening (the logistic baseline's fit and
    the most frequent urgency class); test tickets get every moment.
    """
    queries = moment_frames(tickets, events, window, daily_local_time, timezone)
    queries = queries.join(ticket_table, on="ticket_id")
    keep = (queries["period"] == "test") | (queries["moment"] == "opening")
    return queries[keep.to_numpy()].reset_index(drop=True)


def _opening_logistic_scores(model: TriageModel, opening: pd.DataFrame) -> pd.Series:
    """Logistic regression on the model's features as of the opening, fitted on labelled
    training-period openings; its probability per ticket (index ``ticket_id``) for all openings."""
    categorical = model.categorical_features
    train = opening[(opening["period"] == "train") & opening["label"].notna()]
    if train["label"].nunique() < 2:
        return pd.Series(dtype="float64")
    fitted = baselines.fit_logistic_regression(
        model.risk_matrix(train), train["label"].to_numpy(), np.ones(len(train)), categorical
    )
    scores = baselines.predict_logistic_regression(fitted, model.risk_matrix(opening), categorical)
    return pd.Series(scores, index=opening["ticket_id"].to_numpy(dtype=object))


def _moment_metrics(model: TriageModel, rows: pd.DataFrame, logistic_by_ticket: pd.Series) -> dict:
    """Model and baseline metrics on one moment's rows; a ticket weighs 1 in total (``daily``
    has a row per open day)."""
    y = rows["label"].to_numpy(dtype="float64")
    w = per_ticket_weights(rows["ticket_id"])
    status = rows["status_now"].astype(object)
    section = {
        "tickets": int(rows["ticket_id"].nunique()),
        "rows": int(len(rows)),
        "bad_tickets": int(rows.loc[y == 1, "ticket_id"].nunique()),
        "bad_rate": float(np.average(y, weights=w)),
        # Share already solved/closed at this moment: there the outcome is largely decided.
        "already_solved_share": float(status.isin(contract.DONE_STATUSES).mean()),
        "median_age_minutes": float(rows["age_minutes"].median()),
    }
    if len(np.unique(y)) < 2:
        section["model"] = None
        section["baselines"] = None
        return section
    section["model"] = probability_metrics(model.predict_risk(rows), y, w)
    logistic = rows["ticket_id"].map(logistic_by_ticket).to_numpy(dtype="float64")
    section["baselines"] = {
        "oldest_first": ranking_metrics(baselines.oldest_first(rows), y, w),
        "longest_wait": ranking_metrics(baselines.longest_wait(rows), y, w),
        LOGISTIC_BASELINE: ranking_metrics(np.nan_to_num(logistic, nan=0.0), y, w)
        if not np.isnan(logistic).all() else None,
    }
    return section


def _urgency_section(model: TriageModel, opening: pd.DataFrame, events: pd.DataFrame) -> dict | None:
    """Urgency at the opening of solved test tickets with a final priority, vs the baselines."""
    if model.urgency_booster is None:
        return None
    has_urgency = (
        opening["final_status"].isin(contract.DONE_STATUSES) & opening["final_priority"].isin(URGENCY_LEVELS)
    )
    rows = opening[has_urgency.to_numpy()].assign(urgency=lambda f: f["final_priority"])
    test = rows[rows["period"] == "test"].reset_index(drop=True)
    train = rows[rows["period"] == "train"]
    if test.empty or train.empty:
        return None
    section, _ = urgency_metrics(model, test, train, first_priority(events))
    return section
