"""What the risk model predicts: a ticket column and the values that count as a bad outcome.

CSAT is the default (``satisfaction``: bad = 1, good = 0, anything else unlabelled).
Teams with few survey answers can point the model at any bad outcome every ticket
has, e.g. ``sla_missed=true``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.core.errors import ExportError
from pipeline.core.params import TargetParams

_CSAT = TargetParams()  # the default target, bad CSAT: its definition has one home, the params model


@dataclass(frozen=True)
class Target:
    """``column``: ticket column; ``bad``: values meaning 1; ``good``: values meaning 0.

    When ``good`` is empty, every non-empty value that is not bad counts as good.
    """

    column: str = _CSAT.column
    bad: tuple[str, ...] = _CSAT.bad
    good: tuple[str, ...] = _CSAT.good
    # Windows whose labels are not trusted (a broken survey week, a labelling anomaly): tickets
    # created in [created_from, created_to) matching ``where`` become unlabelled, never dropped.
    unlabel: tuple[dict, ...] = ()

    @property
    def outcome_is_rating(self) -> bool:
        """A survey rating arrives after the solve; other targets (an SLA) may be decided by it."""
        return self.column == "satisfaction"

    @classmethod
    def parse(cls, spec: str | None) -> Target:
        """``"satisfaction"`` (default) or ``"COLUMN=BAD_VALUE[,BAD_VALUE...]"``."""
        if spec is None or spec.strip() in ("", "satisfaction"):
            return cls()
        column, sep, values = spec.partition("=")
        if not sep or not column.strip() or not values.strip():
            raise ExportError(
                f"target {spec!r}: use COLUMN=BAD_VALUE, e.g. sla_missed=true (or 'satisfaction')"
            )
        bad = tuple(v.strip().lower() for v in values.split(",") if v.strip())
        return cls(column=column.strip(), bad=bad, good=())

    @classmethod
    def from_params(cls, params: TargetParams) -> Target:
        """The ``target`` params section (its ``unlabel`` windows: :meth:`with_unlabel`)."""
        return cls(column=params.column, bad=params.bad, good=params.good)

    def with_unlabel(self, windows: list[dict] | None) -> Target:
        """This target with the ``unlabel`` windows of ``params['target']`` (checked here)."""
        checked = []
        for window in windows or []:
            unknown = sorted(set(window) - {"created_from", "created_to", "where"})
            if unknown or "created_from" not in window or "created_to" not in window:
                raise ExportError(
                    "each target.unlabel window needs created_from and created_to (and optionally where: "
                    f"{{column: [values]}}); got {window}"
                )
            where = {str(k): [str(v).lower() for v in (vs if isinstance(vs, list) else [vs])]
                     for k, vs in (window.get("where") or {}).items()}
            checked.append({"created_from": str(window["created_from"]), "created_to": str(window["created_to"]),
                            "where": where})
        return Target(self.column, self.bad, self.good, tuple(checked))

    def to_spec(self) -> dict:
        """Plain data for a model's metadata; :meth:`from_spec` rebuilds the same target."""
        return {"column": self.column, "bad": list(self.bad), "good": list(self.good), "unlabel": list(self.unlabel)}

    @classmethod
    def from_spec(cls, spec: dict) -> Target:
        return cls(spec["column"], tuple(spec["bad"]), tuple(spec["good"]), tuple(spec.get("unlabel", ())))

    @property
    def name(self) -> str:
        if (self.column, self.bad, self.good) == (Target.column, Target.bad, Target.good):
            return "satisfaction=bad"
        return f"{self.column}={','.join(self.bad)}"

    def labels(self, tickets: pd.DataFrame) -> pd.Series:
        """1.0 (bad outcome), 0.0 (good) or NaN (unlabelled) per ticket, aligned with ``tickets``."""
        if self.column not in tickets.columns:
            raise ExportError(
                f"target column {self.column!r} is not in the tickets table "
                f"(columns: {', '.join(map(str, tickets.columns))})"
            )
        values = tickets[self.column].astype(object).where(tickets[self.column].notna(), "")
        values = values.astype(str).str.strip().str.lower()
        is_bad = values.isin(self.bad)
        is_good = values.isin(self.good) if self.good else (values != "") & ~is_bad
        labels = pd.Series(np.where(is_bad, 1.0, np.where(is_good, 0.0, np.nan)), index=tickets.index)
        for window in self.unlabel:
            created = tickets["created_at"]
            inside = (created >= pd.Timestamp(window["created_from"], tz="UTC")) & (
                created < pd.Timestamp(window["created_to"], tz="UTC"))
            for column, allowed in window["where"].items():
                if column not in tickets.columns:
                    raise ExportError(f"target.unlabel: column {column!r} is not in the tickets table")
                inside &= tickets[column].astype(object).astype(str).str.lower().isin(allowed)
            labels[inside] = np.nan
        return labels
