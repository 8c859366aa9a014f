"""Stage `evaluate-moments`: how the risk model ranks test tickets at fixed moments of their life.

`evaluate` scores the training snapshots of the test period, a mixture of moments.
A team deciding when to act wants the answer per moment, so this module owns:

- the moment definitions, each an as-of frame (``ticket_id``, ``as_of``, ``moment``):
  ``opening`` (``created_at`` + ``snapshots.opening_window_minutes``, capped at the
  export time), ``first_reassignment`` (the first group event that moves the ticket
  to a different group after its first group was set; only tickets that have one)
  and ``halfway`` (``created_at`` + half the ticket's life, life = last event time -
  ``created_at``; a ticket without events has life 0);
- the per-moment comparison of the model's ``predict_risk`` with three baselines:
  ``age_minutes`` (older first), ``longest_wait`` (``current_wait_minutes``) and
  ``opening_fields_logistic_regression`` (a logistic regression on the model's
  features as of the opening, fitted on the training period's opening rows; at
  every moment it scores the ticket's opening row: what was known when it arrived);
- urgency at the opening against the agent's initial priority and the most frequent
  class (the same metrics as :mod:`pipeline.evaluate`).

Features come only from :func:`features.build.build_features` on one as-of frame.
Test and training periods are the model's own (``period_starts`` in its metadata).
The output JSON (sorted keys) has no NaN: undefined metrics are ``null``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from features.build import CATEGORICAL_FEATURES, build_features, latest_timestamp
from features.calendar import BusinessHours
from features.snapshots import opening_moments
from models import baselines
from models.metrics import probability_metrics, ranking_metrics
from models.split import assign_periods
from models.store import URGENCY_LEVELS, TriageModel
from models.target import Target
from pipeline import contract
from pipeline.evaluate import urgency_metrics, first_priority
from pipeline.ingest import load_export
from pipeline.io import ExportError, write_json

EVALUATION_MOMENTS = ("opening", "first_reassignment", "halfway")
LOGISTIC_BASELINE = "opening_fields_logistic_regression"


def evaluate_moments(
    model_dir: str | Path,
    out_file: str | Path,
    export_dir: str | Path | None = None,
    params: dict | None = None,
) -> dict:
    """Evaluate ``model_dir`` at each of :data:`EVALUATION_MOMENTS` on its test period.

    ``export_dir``: the export to read (default: the one the model was trained on).
    ``params``: parameter sections (``business_hours``, ``snapshots``) overriding the
    ones recorded in the model. Writes the metrics to ``out_file`` and returns them:
    ``{"moments": {moment: {"tickets", "bad_tickets", "bad_rate", "already_solved_share",
    "model": {...}, "baselines": {name: {...}}}}, "urgency": {...}, ...}``.
    """
    model = TriageModel.load(model_dir)
    params = {**(model.meta.get("params") or {}), **(params or {})}
    export_dir = export_dir or model.meta.get("training_data", {}).get("export")
    if not export_dir:
        raise ExportError("no export to evaluate on: pass --export DIR")
    export = load_export(export_dir)
    tickets, events = export.tickets, export.events

    ticket_table = _ticket_table(model, tickets)
    window = float((params.get("snapshots") or {}).get("opening_window_minutes", 5.0))
    in_scope = ticket_table[ticket_table["period"].isin(["train", "test"])]
    queries = _moment_queries(tickets[tickets["ticket_id"].isin(in_scope.index)], events, window, ticket_table)
    hours = BusinessHours.from_params(params.get("business_hours"))
    features = build_features(tickets, events, queries, hours)

    opening = features[features["moment"] == "opening"]
    logistic_by_ticket = _opening_logistic_scores(model, opening)
    test = features[(features["period"] == "test") & features["label"].notna()].reset_index(drop=True)
    if test["label"].nunique() < 2:
        raise ExportError("the test period has only one class of label; nothing to evaluate")
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
    result = _without_nan(result)
    write_json(result, out_file)
    return result


def first_reassignment_moments(events: pd.DataFrame) -> pd.DataFrame:
    """The first group change after the first group per ticket (tickets without one are absent).

    A change is a group event whose value differs from the ticket's previous group
    event (order: ``at``, then file order), the same rule as the ``group_hops``
    feature. Columns ``ticket_id``, ``as_of`` (the change's time), ``moment``.
    """
    groups = events[events["kind"].astype(str) == "group"].sort_values(["ticket_id", "at"], kind="stable")
    value = groups["value"].astype(object)
    previous = value.groupby(groups["ticket_id"].to_numpy(dtype=object), sort=False).shift()
    hops = groups[(previous.notna() & (value != previous)).to_numpy()]
    first = hops.drop_duplicates("ticket_id", keep="first")
    return pd.DataFrame(
        {"ticket_id": first["ticket_id"].to_numpy(dtype=object), "as_of": first["at"].to_numpy(),
         "moment": "first_reassignment"}
    ).astype({"as_of": "datetime64[ns, UTC]"})


def halfway_moments(tickets: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """``created_at`` + half of (last event time - ``created_at``), floored to the second.

    One row per ticket; a ticket without events (or whose events all precede its
    creation) is taken at ``created_at``. Columns ``ticket_id``, ``as_of``, ``moment``.
    """
    last_event = events.groupby(events["ticket_id"].to_numpy(dtype=object))["at"].max()
    created = tickets["created_at"]
    last = tickets["ticket_id"].map(last_event)
    life = (last - created).where(lambda span: span > pd.Timedelta(0), pd.Timedelta(0)).fillna(pd.Timedelta(0))
    return pd.DataFrame(
        {"ticket_id": tickets["ticket_id"].to_numpy(dtype=object), "as_of": (created + life / 2).dt.floor("s").to_numpy(),
         "moment": "halfway"}
    ).astype({"as_of": "datetime64[ns, UTC]"})


def moment_frames(
    tickets: pd.DataFrame, events: pd.DataFrame, opening_window_minutes: float = 5.0
) -> pd.DataFrame:
    """All :data:`EVALUATION_MOMENTS` of ``tickets`` as one as-of frame (``ticket_id``, ``as_of``, ``moment``).

    ``events`` may hold other tickets' events; only ``tickets``' moments are returned.
    """
    export_at = latest_timestamp(tickets, events)
    reassigned = first_reassignment_moments(events)
    reassigned = reassigned[reassigned["ticket_id"].isin(tickets["ticket_id"])]
    frames = [
        opening_moments(tickets, export_at, opening_window_minutes),
        reassigned,
        halfway_moments(tickets, events),
    ]
    return pd.concat(frames, ignore_index=True)


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
    tickets: pd.DataFrame, events: pd.DataFrame, window: float, ticket_table: pd.DataFrame
) -> pd.DataFrame:
    """The as-of frame for :func:`build_features`: moments plus the ticket's label and period.

    Training-period tickets only need their opening (the logistic baseline's fit and
    the most frequent urgency class); test tickets get every moment.
    """
    queries = moment_frames(tickets, events, window)
    queries = queries.join(ticket_table, on="ticket_id")
    keep = (queries["period"] == "test") | (queries["moment"] == "opening")
    return queries[keep.to_numpy()].reset_index(drop=True)


def _opening_logistic_scores(model: TriageModel, opening: pd.DataFrame) -> pd.Series:
    """Logistic regression on the model's features as of the opening, fitted on labelled
    training-period openings; its probability per ticket (index ``ticket_id``) for all openings."""
    categorical = [c for c in CATEGORICAL_FEATURES if c in model.meta["risk_features"]]
    train = opening[(opening["period"] == "train") & opening["label"].notna()]
    if train["label"].nunique() < 2:
        return pd.Series(dtype="float64")
    fitted = baselines.fit_logistic_regression(
        model.risk_matrix(train), train["label"].to_numpy(), np.ones(len(train)), categorical
    )
    scores = baselines.predict_logistic_regression(fitted, model.risk_matrix(opening), categorical)
    return pd.Series(scores, index=opening["ticket_id"].to_numpy(dtype=object))


def _moment_metrics(model: TriageModel, rows: pd.DataFrame, logistic_by_ticket: pd.Series) -> dict:
    """Model and baseline metrics on one moment's rows (one row per ticket, weight 1)."""
    y = rows["label"].to_numpy(dtype="float64")
    w = np.ones(len(rows))
    status = rows["status_now"].astype(object)
    section = {
        "tickets": int(len(rows)),
        "bad_tickets": int(y.sum()),
        "bad_rate": float(y.mean()),
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
        "age_minutes": ranking_metrics(rows["age_minutes"].to_numpy(dtype="float64"), y, w),
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


def _without_nan(value):
    """The same structure with NaN / inf floats replaced by None (valid JSON)."""
    if isinstance(value, dict):
        return {str(k): _without_nan(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_without_nan(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value
