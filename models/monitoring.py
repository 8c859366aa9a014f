"""How the predictions turned out: past scoring runs joined with the outcomes known now.

Pure functions of DataFrames (the `monitor` stage reads the database and the export):

- :func:`outcomes` — per ticket of a later export, its label (1 bad, 0 good) and when it
  became known (``satisfaction_at`` for CSAT; for other targets the label counts once the
  ticket is solved or closed, with no time of its own);
- :func:`join_outcomes` — each history row gets the label only when it became known AFTER
  the run's ``scored_at``: a rating given before the run is not an outcome of that prediction;
- :func:`run_report` / :func:`week_report` — per run and per ISO week: counts, ROC/PR AUC,
  ECE, precision of P1, bad rate by tier, agreement with the agents' feedback;
- :func:`psi` / :func:`feature_drift` — population stability index per feature and of the score;
- :func:`alerts` — the thresholds of the ``monitor`` params, as plain sentences.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from models.metrics import expected_calibration_error
from models.target import Target
from pipeline.core.params import MonitorParams

TIERS = ("P1", "P2", "P3", "P4")
DONE_STATUSES = ("solved", "closed")
# A bin empty on one side would make the PSI infinite; the usual floor on its share.
PSI_FLOOR = 1e-4
MISSING = "(missing)"


def outcomes(tickets: pd.DataFrame, target: Target) -> pd.DataFrame:
    """``ticket_id``, ``label`` (1.0/0.0, NaN while unknown) and ``known_at`` (UTC; NaT = no time).

    CSAT: the rating is known at ``satisfaction_at`` (a rating without that time cannot be placed
    after a run and is left out). Other targets: the label is taken as known when the ticket is
    solved or closed in the export; its time is unknown (NaT), so it counts for every run.
    """
    labels = target.labels(tickets)
    if target.column == "satisfaction":
        known_at = pd.to_datetime(tickets.get("satisfaction_at"), utc=True) if "satisfaction_at" in tickets \
            else pd.Series(pd.NaT, index=tickets.index, dtype="datetime64[us, UTC]")
        labels = labels.where(known_at.notna())
    else:
        done = tickets["status"].astype(str).str.lower().isin(DONE_STATUSES)
        labels = labels.where(done)
        known_at = pd.Series(pd.NaT, index=tickets.index, dtype="datetime64[us, UTC]")
    return pd.DataFrame({"ticket_id": tickets["ticket_id"].astype(str).to_numpy(), "label": labels.to_numpy(),
                         "known_at": known_at.to_numpy()})


def join_outcomes(history: pd.DataFrame, known: pd.DataFrame) -> pd.DataFrame:
    """``history`` plus ``label``: the outcome when it became known after the row's ``scored_at``."""
    joined = history.copy()
    joined["ticket_id"] = joined["ticket_id"].astype(str)
    joined["scored_at"] = pd.to_datetime(joined["scored_at"], utc=True, format="ISO8601")
    joined = joined.merge(known, on="ticket_id", how="left", validate="many_to_one")
    after = joined["known_at"].isna() | (joined["known_at"] > joined["scored_at"])
    joined["label"] = joined["label"].where(after)
    return joined.drop(columns="known_at")


def _rate(values: pd.Series, weights: pd.Series) -> float | None:
    return float(np.average(values, weights=weights)) if len(values) and weights.sum() > 0 else None


def _group_metrics(rows: pd.DataFrame, feedback: pd.DataFrame, weights: pd.Series) -> dict:
    """The numbers of one run or week; ``weights`` make a ticket count once in the group."""
    has = rows["label"].notna()
    y = rows.loc[has, "label"].to_numpy(dtype="float64")
    p = rows.loc[has, "p_bad"].to_numpy(dtype="float64")
    w = weights[has].to_numpy(dtype="float64")
    two_classes = len(np.unique(y)) > 1
    out = {
        "tickets_scored": int(rows["ticket_id"].nunique()),
        "outcomes_known": int(rows.loc[has, "ticket_id"].nunique()),
        "bad_rate": _rate(rows.loc[has, "label"], weights[has]),
        "mean_p_bad": _rate(rows.loc[has, "p_bad"], weights[has]),
        "roc_auc": None, "pr_auc": None, "ece": None,
    }
    if two_classes:
        out["roc_auc"] = float(roc_auc_score(y, p, sample_weight=w))
        out["pr_auc"] = float(average_precision_score(y, p, sample_weight=w))
        out["ece"] = expected_calibration_error(np.clip(p, 0.0, 1.0), y, w)
    by_tier = {}
    for tier in TIERS:
        in_tier = has & (rows["tier"] == tier)
        by_tier[tier] = {"outcomes": int(rows.loc[in_tier, "ticket_id"].nunique()),
                         "bad_rate": _rate(rows.loc[in_tier, "label"], weights[in_tier])}
    out["bad_rate_by_tier"] = by_tier
    out["p1_precision"] = by_tier["P1"]["bad_rate"]  # share of P1 tickets that did end badly
    out["feedback"] = _feedback_metrics(rows, feedback)
    return out


def _feedback_metrics(rows: pd.DataFrame, feedback: pd.DataFrame) -> dict:
    """Share of ``disagree`` among the verdicts on these rows, and the bad rate by verdict."""
    given = feedback.merge(rows[["run_id", "ticket_id", "label"]], on=["run_id", "ticket_id"], how="inner")
    out = {"verdicts": int(len(given)),
           "disagree_share": float((given["verdict"] == "disagree").mean()) if len(given) else None}
    for verdict in ("agree", "disagree"):
        labelled = given.loc[(given["verdict"] == verdict) & given["label"].notna()]
        out[f"bad_rate_{verdict}d"] = float(labelled["label"].mean()) if len(labelled) else None
        out[f"outcomes_{verdict}d"] = int(len(labelled))
    return out


def _prepare_feedback(feedback: pd.DataFrame | None) -> pd.DataFrame:
    if feedback is None or feedback.empty:
        return pd.DataFrame({"run_id": pd.Series(dtype="int64"), "ticket_id": pd.Series(dtype=str),
                             "verdict": pd.Series(dtype=str)})
    # Verdicts given before the history table existed have no run: they cannot be tied to a prediction.
    tied = feedback.loc[feedback["run_id"].notna(), ["run_id", "ticket_id", "verdict"]].copy()
    tied["run_id"] = tied["run_id"].astype("int64")
    tied["ticket_id"] = tied["ticket_id"].astype(str)
    return tied


def run_report(joined: pd.DataFrame, feedback: pd.DataFrame | None = None) -> list[dict]:
    """One entry per run, oldest first: ``run_id``, ``model_version``, ``scored_at`` and the metrics."""
    feedback = _prepare_feedback(feedback)
    report = []
    for run_id, rows in joined.groupby("run_id", sort=True):
        entry = {"run_id": int(run_id), "model_version": str(rows["model_version"].iloc[0]),
                 "scored_at": rows["scored_at"].iloc[0].isoformat()}
        entry.update(_group_metrics(rows, feedback, pd.Series(1.0, index=rows.index)))
        report.append(entry)
    return report


def week_report(joined: pd.DataFrame, feedback: pd.DataFrame | None = None) -> list[dict]:
    """One entry per ISO week of ``scored_at`` (``2026-W18``); a ticket scored by several runs of
    the week weighs 1 in total, so a ticket that sits in the queue all week is not counted 7 times."""
    feedback = _prepare_feedback(feedback)
    iso = joined["scored_at"].dt.isocalendar()
    week = iso["year"].astype(str) + "-W" + iso["week"].astype(str).str.zfill(2)
    report = []
    for name, rows in joined.groupby(week, sort=True):
        weights = 1.0 / rows.groupby("ticket_id")["ticket_id"].transform("size").astype("float64")
        entry = {"week": str(name), "runs": int(rows["run_id"].nunique())}
        entry.update(_group_metrics(rows, feedback, weights))
        report.append(entry)
    return report


def psi(expected: pd.Series, actual: pd.Series, bins: int = 10, categorical: bool = False) -> float | None:
    """Population stability index of ``actual`` against ``expected``: sum of (a - e) * ln(a / e) over bins.

    Numeric: bins cut at the deciles (``bins`` quantiles) of ``expected``, missing values a bin of
    their own. Categorical: one bin per level. Shares are floored at :data:`PSI_FLOOR`. None when
    either side is empty. Rule of thumb: < 0.1 stable, 0.1-0.25 moving, > 0.25 shifted.
    """
    if len(expected) == 0 or len(actual) == 0:
        return None
    if categorical:
        e_bins = expected.astype(object).where(expected.notna(), MISSING).astype(str)
        a_bins = actual.astype(object).where(actual.notna(), MISSING).astype(str)
    else:
        e_values = pd.to_numeric(expected, errors="coerce").to_numpy(dtype="float64")
        a_values = pd.to_numeric(actual, errors="coerce").to_numpy(dtype="float64")
        finite = e_values[~np.isnan(e_values)]
        edges = np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1])) if len(finite) else np.array([])
        # bin k holds values in [edges[k-1], edges[k]); -1 is the missing bin
        e_bins = pd.Series(np.where(np.isnan(e_values), -1, np.searchsorted(edges, e_values, side="right")))
        a_bins = pd.Series(np.where(np.isnan(a_values), -1, np.searchsorted(edges, a_values, side="right")))
    e_share = e_bins.value_counts(normalize=True)
    a_share = a_bins.value_counts(normalize=True)
    levels = e_share.index.union(a_share.index)
    e = np.maximum(e_share.reindex(levels, fill_value=0.0).to_numpy(), PSI_FLOOR)
    a = np.maximum(a_share.reindex(levels, fill_value=0.0).to_numpy(), PSI_FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def feature_drift(training: pd.DataFrame, tonight: pd.DataFrame, features: list[str], bins: int = 10,
                  top: int = 5) -> dict:
    """PSI of each feature present in both frames, and the ``top`` movers (largest PSI first)."""
    values = {}
    for name in features:
        if name not in training.columns or name not in tonight.columns:
            continue
        categorical = not (pd.api.types.is_numeric_dtype(training[name]) and pd.api.types.is_numeric_dtype(tonight[name]))
        values[name] = psi(training[name], tonight[name], bins, categorical)
    ranked = sorted(((v, k) for k, v in values.items() if v is not None), key=lambda item: (-item[0], item[1]))
    return {"features": values, "top_movers": [{"feature": k, "psi": v} for v, k in ranked[:top]]}


def alerts(runs: list[dict], drift: dict, params: MonitorParams) -> list[str]:
    """Plain sentences for each threshold crossed.

    Performance is judged on the latest run with at least ``min_outcomes`` known outcomes (the
    newest runs wait for their ratings); drift on every feature and on the score.
    """
    out = []
    judged = [r for r in runs if r["outcomes_known"] >= params.min_outcomes]
    if judged:
        run = judged[-1]
        where = f"run {run['run_id']} ({run['scored_at']}, {run['outcomes_known']} outcomes)"
        if run["roc_auc"] is not None and run["roc_auc"] < params.auc_floor:
            out.append(f"ROC AUC {run['roc_auc']:.3f} of {where} is below monitor.auc_floor {params.auc_floor}.")
        if run["ece"] is not None and run["ece"] > params.ece_ceiling:
            out.append(f"ECE {run['ece']:.3f} of {where} is above monitor.ece_ceiling {params.ece_ceiling}.")
    for name, value in sorted((drift.get("features") or {}).items()):
        if value is not None and value > params.psi_ceiling:
            out.append(f"Feature {name} drifted from the training data: PSI {value:.3f} above "
                       f"monitor.psi_ceiling {params.psi_ceiling}.")
    score = (drift.get("score") or {}).get("psi")
    if score is not None and score > params.psi_ceiling:
        out.append(f"The score p_bad drifted between runs: PSI {score:.3f} above monitor.psi_ceiling "
                   f"{params.psi_ceiling}.")
    return out


