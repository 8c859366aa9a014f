"""`train --engine dask`: the risk model's boosters fitted by ``lightgbm.dask`` on the cluster's workers.

:class:`DaskFitter` plugs into :mod:`models.training` (``fit_risk``/``refit_risk``): the
same rows, weights, LightGBM parameters, time split and calibration as on one machine;
only where the trees are grown changes. The rows are split across the workers, each
builds histograms on its share, and LightGBM's own network joins them. The booster it
returns is a plain ``lightgbm.Booster`` (``booster_``): the model directory is the same
and loads and scores without Dask.

The features are computed on the workers (:func:`training_rows`): the snapshot rows of
labelled tickets and the urgency model's opening rows are the only feature rows that
come to the client, with the tickets table (labels, periods, final priorities); the
events never do. What stays on the client (documented in the README): the training rows
are assembled there (labels, periods, weights, the attribute plan, the text scores),
the calibrator is fitted there on the predictions, and the urgency model (4 classes,
one opening row per solved ticket) is fitted there with ``lgb.train``.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from models.dataset import FitSample, TrainingData, label_training_rows
from models.store import data_fingerprint
from models.target import Target
from pipeline.core.errors import UserError, one_line
from pipeline.core.params import Params
from pipeline.distributed.featurize import feature_pieces
from pipeline.distributed.partition import ROW, PartitionedExport, piece_tables, read_export

# Parameters the Dask estimator owns or that make no sense across workers.
_ESTIMATOR_OWNED = ("objective", "num_class", "verbosity", "num_threads", "n_jobs")


def training_rows(client, export_dir: str, snapshots: str | Path | None, target: Target,
                  params: Params) -> tuple[pd.DataFrame, TrainingData, str]:
    """(tickets, training rows, data fingerprint) of a validated export, its features made on the workers.

    ``snapshots``: a `featurize --snapshots` output (a Parquet file or a directory of parts,
    e.g. written by ``--engine dask``), read on the workers; else the snapshot rows are
    computed there. Either way only the rows of labelled tickets (of ``train.max_tickets_per_model``'s
    sample) are gathered. The rows are
    put in the export's ticket order (then moment), so a run does not depend on which
    piece finished first. The fingerprint is ``dask:`` and a hash of the pieces' own
    fingerprints (it depends on the number of pieces, unlike the one-machine one).
    """
    import dask

    export = read_export(client, export_dir, params.engine)
    tickets = export.tickets.compute().sort_values(ROW, kind="stable").drop(columns=[ROW]).reset_index(drop=True)
    sample = FitSample.of(tickets, target, params.train.max_tickets_per_model)
    keep = client.scatter(pd.Index(sample.labelled_ids(tickets, target)), broadcast=True)  # once per worker, not in every task
    if snapshots is not None:
        pieces = _read_snapshots(snapshots).to_delayed()
    else:
        pieces = feature_pieces(client, export, params, queries="snapshots")
    risk_parts = client.compute([dask.delayed(_labelled_rows)(p, keep) for p in pieces], sync=True)
    opening_parts = client.compute(feature_pieces(client, export, params, queries="opening", sample=sample),
                                   sync=True)
    fingerprint = _fingerprint(client, export)
    del export, pieces  # the pieces leave the workers' memory before the boosters are grown
    order = pd.Series(np.arange(len(tickets)), index=pd.Index(tickets["ticket_id"].to_numpy(dtype=object)))
    risk = _in_ticket_order(risk_parts, order, ["as_of"])
    opening = _in_ticket_order(opening_parts, order, [])
    return tickets, label_training_rows(tickets, target, params, risk, opening, sample=sample), fingerprint


def _read_snapshots(path: str | Path):
    import dask.dataframe as dd

    try:
        return dd.read_parquet(str(path))
    except (FileNotFoundError, OSError, ValueError) as exc:
        raise UserError(f"--snapshots {path}: cannot read the snapshot features ({one_line(exc, 200)}); "
                        "run `csat-triage featurize --snapshots` again") from None


def _labelled_rows(features: pd.DataFrame | None, labelled: pd.Index) -> pd.DataFrame | None:
    if features is None:
        return None
    return features[features["ticket_id"].isin(labelled).to_numpy()]


def _in_ticket_order(parts: list, order: pd.Series, then: list[str]) -> pd.DataFrame:
    """The pieces' rows as one frame, in the export's ticket order (then by ``then``)."""
    frames = [p for p in parts if p is not None and len(p)]
    if not frames:
        return next((p.iloc[:0] for p in parts if p is not None), pd.DataFrame())
    # Categoricals of the pieces share their levels (set from the whole export), so concat keeps them.
    rows = pd.concat(frames, ignore_index=True)
    keys = pd.DataFrame({"_ticket": order.reindex(rows["ticket_id"].to_numpy(dtype=object)).to_numpy(),
                         **{c: rows[c].to_numpy() for c in then}})
    return rows.iloc[np.lexsort([keys[c].to_numpy() for c in reversed(["_ticket", *then])])].reset_index(drop=True)


def _fingerprint(client, export: PartitionedExport) -> str:
    import dask

    digests = client.compute([dask.delayed(_piece_fingerprint)(t, e)
                              for t, e in zip(export.tickets.to_delayed(), export.events.to_delayed())], sync=True)
    return "dask:" + hashlib.sha256("".join(digests).encode()).hexdigest()[:16]


def _piece_fingerprint(tickets: pd.DataFrame, events: pd.DataFrame) -> str:
    return data_fingerprint(*piece_tables(tickets, events))


class DaskFitter:
    """``models.training.BoosterFitter`` on a Dask cluster (``client``)."""

    def __init__(self, client) -> None:
        self.client = client

    def train_rounds(self, x: pd.DataFrame, y: np.ndarray, weight: np.ndarray, lgb_params: dict,
                     rounds: int) -> lgb.Booster:
        """Exactly ``rounds`` rounds on every row given."""
        return self._grow(self._scatter(x, y, weight), lgb_params, rounds)

    def train_early_stopped(self, train: tuple, valid: tuple, lgb_params: dict, rounds: int,
                            patience: int) -> lgb.Booster:
        """Grow ``patience`` rounds at a time until LightGBM's early stopping would have stopped.

        lightgbm.dask evaluates a validation set per worker, on the share each holds, so its
        early stopping is not the one of one machine. Instead, after each block of rounds,
        the valid period's loss is computed for every round count from the grown booster
        (:func:`early_stopping_round`), with the same rule: stop once ``patience`` rounds
        have passed without a new best, keep the best round. Each block continues the last
        one (``init_model``), so the held-out fit costs about best + 2 x ``patience`` rounds,
        not ``rounds`` (2000 by default).
        """
        parts = self._scatter(*train)
        booster, grown, best = None, 0, 0
        while grown < rounds:
            step = min(max(patience, 1), rounds - grown)
            booster = self._grow(parts, lgb_params, step, init_model=booster)
            grown = booster.current_iteration()
            best = early_stopping_round(booster, *valid, patience)
            if grown - best >= patience:
                break
        truncated = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
        truncated.best_iteration = best
        return truncated

    def _grow(self, parts: tuple, lgb_params: dict, rounds: int, init_model: lgb.Booster | None = None) -> lgb.Booster:
        """``rounds`` more rounds on the scattered rows (after ``init_model``'s trees, when given)."""
        from lightgbm.dask import DaskLGBMClassifier

        if lgb_params.get("objective") != "binary":
            raise ValueError("the Dask fitter grows binary (risk) boosters only")
        xs, ys, ws = parts
        extra = {k: v for k, v in lgb_params.items() if k not in _ESTIMATOR_OWNED}
        model = DaskLGBMClassifier(client=self.client, objective="binary", n_estimators=max(int(rounds), 1),
                                   verbosity=-1, **extra)
        with warnings.catch_warnings():
            # Each worker uses its own threads; the estimator says so for n_jobs on every fit.
            warnings.filterwarnings("ignore", message="Parameter n_jobs will be ignored")
            # init_model goes to each worker's LGBMClassifier.fit, which continues its trees.
            model.fit(xs, ys, sample_weight=ws, **({"init_model": init_model} if init_model is not None else {}))
        return model.booster_

    def _scatter(self, x: pd.DataFrame, y: np.ndarray, weight: np.ndarray):
        """The rows as one Dask partition per worker: rows ``i``, ``i + n``, ... on the ``i``-th worker.

        Each worker finds the histogram bins of some features from the rows it holds (which
        features is decided by LightGBM's machine ranks, which follow its random ports): with
        the rows in contiguous time blocks the fit changed from run to run (test AUC 0.80 or
        0.81 on 5000 tickets); rows dealt out in turn give every worker the same mix.
        Slices of one pandas frame keep one categorical dtype (same levels, same order) in
        every partition: the scrambled-levels trap of FIELD-NOTES does not arise.
        """
        import dask.dataframe as dd

        workers = sorted(self.client.scheduler_info()["workers"])
        frame = x.reset_index(drop=True).assign(_y=np.asarray(y, dtype="float64"),
                                                _w=np.asarray(weight, dtype="float64"))
        # Every n-th row to the same worker, not contiguous blocks: the rows come in time order,
        # and a worker holding only the oldest tickets found other bins than one holding all periods.
        share = np.arange(len(frame)) % len(workers)
        futures = [self.client.scatter(frame[share == i], workers=[address], direct=True)
                   for i, address in enumerate(workers) if (share == i).any()]
        parts = dd.from_delayed(futures, meta=frame.iloc[:0], verify_meta=False)
        return parts[list(x.columns)], parts["_y"], parts["_w"]


def early_stopping_round(booster: lgb.Booster, x: pd.DataFrame, y: np.ndarray, weight: np.ndarray,
                         patience: int) -> int:
    """The round count ``lgb.early_stopping(patience)`` keeps, for a binary log-loss on (x, y, weight).

    Each round's trees are added to the raw score one round at a time (one pass over the
    trees in all), and the weighted log-loss after each round is compared as LightGBM does:
    a new best must be strictly lower; training stops ``patience`` rounds after the last best.
    """
    rounds = booster.current_iteration()
    if not len(y):
        return rounds
    raw = np.zeros(len(y))
    best_loss, best_round = np.inf, rounds
    y = np.asarray(y, dtype="float64")
    weight = np.asarray(weight, dtype="float64")
    for k in range(rounds):  # a loop over rounds, each a vectorised pass over the rows
        raw += booster.predict(x, raw_score=True, start_iteration=k, num_iteration=1)
        p = np.clip(1.0 / (1.0 + np.exp(-raw)), 1e-15, 1 - 1e-15)
        loss = -np.sum(weight * (y * np.log(p) + (1 - y) * np.log(1 - p))) / np.sum(weight)
        if loss < best_loss:
            best_loss, best_round = loss, k + 1
        elif k + 1 - best_round >= patience:
            break
    return best_round
