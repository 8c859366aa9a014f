"""Scoring open tickets as of a moment: features -> risk, urgency, priority, rank, tier, reasons.

Pure: frames in, the scored queue out. The nightly `score` stage reads the export
and writes the result; training and scoring share the one feature implementation
(:mod:`features.build`).
"""

from __future__ import annotations

import os
import weakref

import lightgbm as lgb
import numpy as np
import pandas as pd

from features.build import features_from_timeline, status_at
from features.calendar import BusinessHours
from features.conversation import Timeline, build_timeline
from features.snapshots import opening_moments
from models.policy import PriorityPolicy, rank_queue, sla_urgency
from models.reasons import TIER_ORDER, ReasonMeasures, measure_reasons, reason_catalogue, tier_rank, top_reasons
from models.store import URGENCY_LEVELS, TriageModel
from models.tree_predict import Forest, predict_in_parts, read_forest
from models.tree_shap import Tree, parse_trees, tree_contributions
from pipeline.core import contract
from pipeline.core.params import Params

# The scored queue's columns, in order: the file, the database table and the API share them.
SCORE_COLUMNS = (
    "ticket_id", "p_bad", "risk", "urgency", "p_urgent", "priority_score", "rank", "tier", "reasons",
    "model_version", "scored_at",
)
QUEUE_EXTRA_COLUMNS = ("group", "assignee", "current_wait_minutes", "target")
_FLOAT_COLUMNS = ("p_bad", "p_urgent", "priority_score", "current_wait_minutes")
# Predictions and the reasons' contributions on up to two threads (numpy lets go of the GIL): the
# same values whatever the number. Two threads cost about 40 % more CPU and only pay while a core
# is idle; on a machine busy with other work (load 4 on 2 cores) they were slower than one.
_MAX_THREADS = 2
# Below this many rows LightGBM's walk per row costs less than numpy's fixed cost per split
# (measured: equal at about 12k rows for a 268-tree model, 10k for a 147-tree one).
_NUMPY_PREDICT_ROWS = 20_000


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
    chosen = open_tickets(tickets, events, timeline, as_of, all_tickets)
    if chosen.empty:
        return empty_queue()
    now = features_from_timeline(tickets, timeline, pd.DataFrame({"ticket_id": chosen["ticket_id"], "as_of": as_of}))
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
    # One risk matrix for the predictions and the reasons' contributions, as the array LightGBM reads.
    risk_matrix = model.risk_matrix(now)
    risk_values = lightgbm_values(risk_matrix, model.risk_booster)
    urgency_matrix = urgency_values = None
    if opening is not None:
        urgency_matrix = model.urgency_matrix(opening)
        urgency_values = lightgbm_values(urgency_matrix, model.urgency_booster)
    raw_risk = model_predict(model.risk_booster, risk_matrix, risk_values, raw_score=True)
    p_bad = model.calibrator.predict(raw_risk)  # = predict_risk
    urgency, p_urgent = (urgency_levels(model_predict(model.urgency_booster, urgency_matrix, urgency_values))
                         if opening is not None else (None, None))
    del opening, urgency_matrix, urgency_values  # done with: the reasons and the queue need tonight's rows only
    measures = reason_measures(model, params, now, risk_matrix.columns)
    target_urgency = sla_urgency(urgency, chosen["priority"].to_numpy(dtype=object))
    wait = now["current_wait_minutes"].to_numpy()
    sla_pressure = policy.sla_pressure(wait, target_urgency)
    priority_score = np.round(policy.priority_score(p_bad, p_urgent, sla_pressure), 2)
    created_at = chosen["created_at"]
    if isinstance(created_at.dtype, pd.DatetimeTZDtype):  # the same order, without a Timestamp object per ticket
        created_at = created_at.dt.tz_convert(None)
    rank = rank_queue(priority_score, created_at, chosen["ticket_id"])
    tier = policy.tier(priority_score, rank, policy.wait_multiple(wait, target_urgency))
    # Contributions only for the tickets that show reasons (TreeSHAP is most of scoring's time);
    # the others keep zeros, which top_reasons never reads for a row below the lowest tier.
    shown = tier_rank(tier) <= TIER_ORDER.index(params.reasons.lowest_tier)
    contributions = np.zeros((len(now), len(risk_matrix.columns)))
    if shown.any():
        contributions[shown] = risk_contributions(model, now[shown], risk_matrix[shown], _threads()).to_numpy()
    contributions = pd.DataFrame(contributions, index=now.index, columns=risk_matrix.columns)
    return queue_table(
        model, params, as_of, now, contributions, ticket_id=chosen["ticket_id"].to_numpy(dtype=object), p_bad=p_bad,
        urgency=urgency, p_urgent=p_urgent, priority_score=priority_score, rank=rank, tier=tier,
        group=chosen["group"].to_numpy(dtype=object), assignee=chosen["assignee"].to_numpy(dtype=object),
        current_wait_minutes=now["current_wait_minutes"].to_numpy(), measures=measures,
    )


def open_tickets(tickets: pd.DataFrame, events: pd.DataFrame, timeline: Timeline, moment: pd.Timestamp,
                 all_tickets: bool = False) -> pd.DataFrame:
    """The ticket rows created by ``moment`` and open then (every created one with ``all_tickets``).

    Open as of the moment scored: the status the events give then, or the export's status for
    tickets whose log has no status events at all. Only the status is computed here, so the
    other features are computed for the open tickets alone.
    """
    created = tickets[(tickets["created_at"] <= moment).to_numpy()].reset_index(drop=True)
    if all_tickets or created.empty:
        return created
    status_now = status_at(tickets, timeline, pd.DataFrame({"ticket_id": created["ticket_id"], "as_of": moment}))
    logged = pd.Index(pd.unique(events.loc[(events["kind"] == "status").to_numpy(), "ticket_id"]))
    has_status_events = logged.get_indexer(created["ticket_id"]) >= 0  # a hash lookup: isin on text ids is slow
    status = np.where(has_status_events, pd.Series(status_now).astype(str), created["status"].astype(str))
    return created[~np.isin(status, contract.DONE_STATUSES)].reset_index(drop=True)


def predicted_urgency(model: TriageModel, opening: pd.DataFrame | None) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The urgency level and P(high or urgent) per ticket from its opening features.

    (None, None) for a model trained without an urgency model (priorities never varied): the
    policy then ranks on risk and SLA pressure alone (models/policy.py).
    """
    if opening is None:
        return None, None
    return urgency_levels(model.predict_urgency(opening).to_numpy())


def urgency_levels(probability: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The most likely urgency level and P(high or urgent) per row of the urgency model's
    probabilities (n_rows, len(URGENCY_LEVELS))."""
    urgency = np.asarray(URGENCY_LEVELS, dtype=object)[probability.argmax(axis=1)]
    return urgency, probability[:, URGENCY_LEVELS.index("high"):].sum(axis=1)


def queue_table(
    model: TriageModel, params: Params, scored_at: pd.Timestamp, now: pd.DataFrame, contributions: pd.DataFrame, *,
    ticket_id: np.ndarray, p_bad: np.ndarray, urgency: np.ndarray | None, p_urgent: np.ndarray | None,
    priority_score: np.ndarray, rank: np.ndarray, tier: np.ndarray, group: np.ndarray, assignee: np.ndarray,
    current_wait_minutes: np.ndarray, measures: ReasonMeasures | None = None,
) -> pd.DataFrame:
    """The reasons and the queue (:data:`SCORE_COLUMNS` + extras) sorted by rank, whichever engine scored.

    ``now``/``contributions``: tonight's feature rows and risk contributions, one per ticket in
    the order of the other arrays (contributions may be zero below ``reasons.lowest_tier``);
    ``urgency``/``p_urgent``: None for a model trained without an urgency model; ``measures``:
    :func:`reason_measures` of ``now`` when the caller took them already.
    """
    # The reasons compare each ticket with all of tonight's scored tickets (the rows of `now`).
    reasons = top_reasons(
        contributions, now, params.reasons.max_reasons, params.reasons.min_contribution,
        tier=tier, lowest_tier=params.reasons.lowest_tier, language=params.reasons.language,
        catalogue=reason_catalogue(model.meta.get("attributes", {})), measures=measures,
    )
    n = len(ticket_id)
    # Each column taken in rank order before the table is made: one take per column, not a sort of the table.
    order = np.argsort(np.asarray(rank), kind="stable")
    return pd.DataFrame(
        {
            "ticket_id": np.asarray(ticket_id, dtype=object)[order],
            "p_bad": np.round(np.asarray(p_bad), 4)[order],
            "risk": np.rint(100 * np.asarray(p_bad)).astype("int64")[order],
            "urgency": np.asarray(urgency)[order] if urgency is not None else np.full(n, None, dtype=object),
            "p_urgent": np.round(np.asarray(p_urgent), 4)[order] if p_urgent is not None else np.full(n, np.nan),
            "priority_score": np.asarray(priority_score)[order],
            "rank": np.asarray(rank)[order],
            "tier": np.asarray(tier)[order],
            "reasons": reasons.to_numpy(dtype=object)[order],
            "model_version": model.version,
            "scored_at": scored_at.isoformat(),
            "group": np.asarray(group)[order],
            "assignee": np.asarray(assignee)[order],
            "current_wait_minutes": np.round(np.asarray(current_wait_minutes), 1)[order],
            "target": model.target,
        }
    )


def reason_measures(model: TriageModel, params: Params, now: pd.DataFrame, columns) -> ReasonMeasures:
    """:func:`models.reasons.measure_reasons` of tonight's rows ``now`` for the risk matrix's ``columns``."""
    return measure_reasons(columns, now, params.reasons.language, reason_catalogue(model.meta.get("attributes", {})))


def empty_queue() -> pd.DataFrame:
    """The scored table with no rows (every ticket solved, or nothing created yet)."""
    return pd.DataFrame({c: pd.Series(dtype="float64" if c in _FLOAT_COLUMNS else object)
                         for c in (*SCORE_COLUMNS, *QUEUE_EXTRA_COLUMNS)})


def _threads() -> int:
    """:data:`_MAX_THREADS` while the machine has a core to spare (load average below the cores
    minus a half), else 1 (also where there is no load average, e.g. Windows). The numbers are
    the same either way; a second thread on a busy machine only costs CPU."""
    cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return 1
    return min(_MAX_THREADS, cores) if load < cores - 0.5 else 1


def model_predict(booster: lgb.Booster, matrix: pd.DataFrame, values: np.ndarray | None,
                  raw_score: bool = False) -> np.ndarray:
    """``booster.predict(matrix, raw_score=raw_score)``; ``values``: :func:`lightgbm_values` of ``matrix``.

    A model :mod:`models.tree_predict` reads is predicted by it (the same numbers, bit for bit),
    on :func:`_threads`, from :data:`_NUMPY_PREDICT_ROWS` rows; anything else by LightGBM.
    """
    forest = _forest(booster) if values is not None and len(values) >= _NUMPY_PREDICT_ROWS else None
    if forest is not None and (raw_score or forest.multiclass):
        return predict_in_parts(forest, values, _threads())
    return booster.predict(matrix if values is None else values, raw_score=raw_score)


def _forest(booster: lgb.Booster) -> Forest | None:
    if booster not in _FORESTS:
        _FORESTS[booster] = read_forest(booster)
    return _FORESTS[booster]


def lightgbm_values(matrix: pd.DataFrame, booster: lgb.Booster) -> np.ndarray | None:
    """``matrix`` as the float64 array LightGBM makes of a frame (category codes as numbers, a
    missing category as NaN): the same predictions without LightGBM converting the frame per call.

    None when the matrix's categories are not the booster's levels (LightGBM would remap them):
    the caller then passes the frame itself.
    """
    categorical = [c for c in matrix.columns if isinstance(matrix[c].dtype, pd.CategoricalDtype)]
    if [list(matrix[c].cat.categories) for c in categorical] != list(booster.pandas_categorical or []):
        return None
    values = np.empty(matrix.shape, dtype="float64", order="F")  # column by column; LightGBM reads either order
    for k, c in enumerate(matrix.columns):  # a loop over the model's ~60 features
        if c in categorical:
            codes = matrix[c].cat.codes.to_numpy()
            values[:, k] = np.where(codes < 0, np.nan, codes)
        else:
            values[:, k] = matrix[c].to_numpy(dtype="float64")
    return values


# Booster -> its parsed trees (None: not readable by models.tree_shap / tree_predict), once per loaded model.
_TREES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_FORESTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def booster_trees(booster: lgb.Booster, matrix: pd.DataFrame) -> list[Tree] | None:
    """The trees :func:`models.tree_shap.tree_contributions` explains ``matrix`` with, or None when
    the model is not read that way (several trees per iteration, other categorical levels than
    the booster's, paths too long for its tables)."""
    categorical = [c for c in matrix.columns if isinstance(matrix[c].dtype, pd.CategoricalDtype)]
    if (booster.num_model_per_iteration() != 1
            or [list(matrix[c].cat.categories) for c in categorical] != list(booster.pandas_categorical or [])):
        return None
    if booster not in _TREES:
        _TREES[booster] = parse_trees(booster.model_to_string())
    return _TREES[booster]


def risk_contributions(model: TriageModel, features: pd.DataFrame, matrix: pd.DataFrame | None = None,
                       threads: int = 1) -> pd.DataFrame:
    """:meth:`TriageModel.risk_contributions`, computed by :mod:`models.tree_shap` with numpy.

    ``matrix``: ``model.risk_matrix(features)`` when the caller has it already; ``threads``: for
    :func:`models.tree_shap.tree_contributions` (the same values whatever the number).

    Equal to LightGBM's full pred_contrib up to the order of the floating-point sums
    (~1e-15); models it cannot read that way (see :func:`booster_trees`) take LightGBM's path.
    """
    matrix = model.risk_matrix(features) if matrix is None else matrix
    trees = booster_trees(model.risk_booster, matrix)
    if trees is None:
        return model.risk_contributions(features)
    values = lightgbm_values(matrix, model.risk_booster)
    if values is None:
        return model.risk_contributions(features)
    return pd.DataFrame(tree_contributions(trees, values, threads).T, columns=matrix.columns, index=features.index)
