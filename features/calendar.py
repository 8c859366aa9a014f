"""Business-hours clock: turns timestamps into business minutes since an epoch.

A duration in business minutes is ``business_clock(t2) - business_clock(t1)``, so
every wait feature gets its business-hours twin from the same arithmetic that gives
its calendar value. Holidays are not modelled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.core.params import BusinessHoursParams

_EPOCH_DAY = np.datetime64("1970-01-01", "D")
_WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True)
class BusinessHours:
    """Opening hours of the support team in its own time zone.

    ``start_hour``/``end_hour`` are local wall-clock hours (0-24); ``weekdays`` are
    0=Monday .. 6=Sunday.
    """

    timezone: str
    start_hour: float
    end_hour: float
    weekdays: tuple[int, ...]

    @classmethod
    def from_params(cls, params: BusinessHoursParams | None = None) -> BusinessHours:
        """From the ``business_hours`` params section (default: its defaults)."""
        params = params or BusinessHoursParams()
        return cls(timezone=params.timezone, start_hour=params.start_hour, end_hour=params.end_hour,
                   weekdays=tuple(params.weekdays))

    @property
    def minutes_per_day(self) -> float:
        return (self.end_hour - self.start_hour) * 60.0

    @property
    def weekmask(self) -> str:
        return " ".join(name for i, name in enumerate(_WEEKDAY_NAMES) if i in self.weekdays)


def local_wall_clock(utc_seconds: np.ndarray, timezone: str) -> np.ndarray:
    """Seconds since the epoch on the local wall clock of ``timezone`` (int64, same shape)."""
    utc_seconds = np.asarray(utc_seconds, dtype="int64")
    if timezone in ("UTC", "Etc/UTC"):
        return utc_seconds
    stamps = pd.to_datetime(utc_seconds, unit="s", utc=True).tz_convert(timezone).tz_localize(None)
    return stamps.as_unit("s").asi8


def business_clock_minutes(utc_seconds: np.ndarray, hours: BusinessHours) -> np.ndarray:
    """Business minutes elapsed from the epoch to each timestamp (float64, same shape).

    ``utc_seconds``: int64 seconds since 1970-01-01 UTC.
    """
    local = local_wall_clock(np.asarray(utc_seconds, dtype="int64"), hours.timezone)
    days = (local // 86_400).astype("int64")
    minute_of_day = (local - days * 86_400) / 60.0
    full_days_before, is_business_day = _business_days(days, hours.weekmask)
    within_day = np.clip(minute_of_day - hours.start_hour * 60.0, 0.0, hours.minutes_per_day)
    return full_days_before * hours.minutes_per_day + np.where(is_business_day, within_day, 0.0)


def is_business_time(utc_seconds: np.ndarray, hours: BusinessHours) -> np.ndarray:
    """True where the timestamp falls inside opening hours (bool, same shape)."""
    local = local_wall_clock(np.asarray(utc_seconds, dtype="int64"), hours.timezone)
    days = (local // 86_400).astype("int64")
    hour = (local - days * 86_400) / 3600.0
    _, is_business_day = _business_days(days, hours.weekmask)
    return is_business_day & (hour >= hours.start_hour) & (hour < hours.end_hour)


def _business_days(days: np.ndarray, weekmask: str) -> tuple[np.ndarray, np.ndarray]:
    """Per day number (days since 1970): business days before it since 1970, and whether it is one.

    Millions of timestamps fall on a few hundred distinct days: numpy's business-day
    functions run once per day of the covered range, then each timestamp looks its day up.
    """
    if not len(days):
        return np.zeros(0, dtype="int64"), np.zeros(0, dtype=bool)
    first, last = int(days.min()), int(days.max())
    if last - first >= len(days):  # a range wider than the data (a stray far date): per timestamp
        dates = _EPOCH_DAY + days.astype("timedelta64[D]")
        return np.busday_count(_EPOCH_DAY, dates, weekmask=weekmask), np.is_busday(dates, weekmask=weekmask)
    dates = _EPOCH_DAY + np.arange(first, last + 1).astype("timedelta64[D]")
    offset = days - first
    return (np.busday_count(_EPOCH_DAY, dates, weekmask=weekmask)[offset],
            np.is_busday(dates, weekmask=weekmask)[offset])
