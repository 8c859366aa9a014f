"""Which attributes a model uses, and how: the plan made once from the training rows.

An ``attr_<name>`` column becomes a feature when the training period has a value for it
and ``attributes.exclude`` does not name it. It is numeric when every value read in
training is a number, else categorical: levels seen on at least
``attributes.min_level_count`` training rows (at most ``max_levels``, the most frequent)
are kept, every other value - rare in training or first seen while scoring - shares
:data:`models.store.OTHER_LEVEL`. The plan is recorded in model.json (feature list and
levels), so scoring applies exactly what training decided.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from features.attributes import attribute_columns, numeric_attributes, pooled_levels
from models.store import OTHER_LEVEL
from pipeline.core import contract
from pipeline.core.params import AttributesParams


@dataclass(frozen=True)
class AttributePlan:
    features: list[str]  # attr_ columns the model uses, in table order
    categorical_levels: dict[str, list[str]]  # per categorical attribute: kept levels + OTHER_LEVEL
    kinds: dict[str, str]  # per attribute feature: "number" or "category"


def plan_attributes(train_rows: pd.DataFrame, params: AttributesParams) -> AttributePlan:
    excluded = {contract.ATTRIBUTE_PREFIX + name.removeprefix(contract.ATTRIBUTE_PREFIX) for name in params.exclude}
    present = [c for c in attribute_columns(train_rows) if c not in excluded and train_rows[c].notna().any()]
    numeric = set(numeric_attributes(train_rows[present]))
    levels = {
        name: [*pooled_levels(train_rows[name], train_rows["ticket_id"], params.min_level_count, params.max_levels),
               OTHER_LEVEL]
        for name in present if name not in numeric
    }
    kinds = {name: "number" if name in numeric else "category" for name in present}
    return AttributePlan(present, levels, kinds)
