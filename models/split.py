"""Out-of-time split: each ticket belongs to one period by its creation time.

Periods in time order: ``train`` (fit), ``valid`` (early stopping), ``calibrate``
(probability calibration), ``test`` (the newest tickets; every reported metric).
All snapshots of a ticket follow the ticket, so none straddles a boundary.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.core.errors import UserError
from pipeline.core.params import SplitParams

PERIODS = ("train", "valid", "calibrate", "test")


def period_boundaries(created_at: pd.Series, split: SplitParams) -> dict[str, pd.Timestamp]:
    """Start time of each period after ``train``, from quantiles of ``created_at``.

    ``created_at``: creation times of the tickets that carry labels (so each period
    gets its share of labels). Returns ``{"valid": t1, "calibrate": t2, "test": t3}``.
    """
    shares = np.array([getattr(split, p) for p in PERIODS])
    cumulative = np.cumsum(shares / shares.sum())[:-1]
    # Whatever unit the timestamps carry (pandas 3 often gives microseconds), work in nanoseconds.
    nanoseconds = pd.DatetimeIndex(created_at.dropna()).as_unit("ns").asi8
    if len(nanoseconds) == 0:
        raise UserError("no labelled tickets to split: check the target column and its values (params: target)")
    cuts = np.quantile(nanoseconds, cumulative, method="higher")
    return {
        period: pd.Timestamp(int(cut), tz="UTC")
        for period, cut in zip(PERIODS[1:], cuts)
    }


def assign_periods(created_at: pd.Series, boundaries: dict[str, pd.Timestamp]) -> pd.Series:
    """Period name per ticket (aligned with ``created_at``): the last period whose start it reached."""
    period = pd.Series("train", index=created_at.index, dtype=object)
    for name in PERIODS[1:]:
        period[created_at >= boundaries[name]] = name
    return period
