"""Ticket attributes (product, plan, form, organization, custom fields) as point-in-time features.

An attribute's history is its ``field`` events: "attribute ``field`` was set to ``value``
at ``at``" (an empty value clears it). Its value as of a moment is the latest such
event of the ticket at or before that second, ties in file order - the same rule as
group, assignee and priority. Ticket-row columns listed as *static* (known at
creation: organization, brand, form) are an event at ``created_at`` placed before the
ticket's own field events, so a recorded change still wins.

Each attribute becomes a feature ``attr_<name>`` holding the value as text (pandas
``category``); whether the model treats it as a number or a category is decided in
training, from the training rows (:func:`numeric_attributes`), and recorded with the
model. An export without some attribute gives an all-missing column, not an error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.core import contract

TIME_KEY_SHIFT = np.int64(2**34)  # as in features.conversation: seconds stay below 2**34


@dataclass(frozen=True)
class AttributeHistory:
    """Per attribute (sorted by name): its events sorted by (ticket, second, order), in arrays."""

    names: tuple[str, ...]
    keys: tuple[np.ndarray, ...]  # per attribute: ticket code * 2**34 + epoch second, ascending
    value_codes: tuple[np.ndarray, ...]  # per attribute event: index in ``levels`` (-1: cleared)
    levels: tuple[np.ndarray, ...]  # per attribute: its distinct values (text)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(contract.ATTRIBUTE_PREFIX + name for name in self.names)


def attribute_history(
    tickets: pd.DataFrame,
    events: pd.DataFrame,
    ticket_code: np.ndarray,
    event_s: np.ndarray,
    created_s: np.ndarray,
    static: tuple[str, ...] = (),
) -> AttributeHistory:
    """Collect the field events (and static ticket-row columns) of an export.

    ``ticket_code``/``event_s``: per event row, its ticket's position in ``tickets``
    (-1: unknown ticket) and its epoch second; ``created_s``: per ticket.
    """
    parts = [_static_events(tickets, created_s, static)]
    if contract.FIELD_EVENT in set(events["kind"].astype(str).unique()) and "field" in events.columns:
        is_field = (events["kind"].astype(str).to_numpy() == contract.FIELD_EVENT) & (ticket_code >= 0)
        positions = np.flatnonzero(is_field)
        parts.append(pd.DataFrame({
            "ticket": ticket_code[positions],
            "at_s": event_s[positions],
            "name": contract.attribute_names(events["field"].iloc[positions].fillna("")).to_numpy(dtype=object),
            "value": _text(events["value"].iloc[positions]),
        }))
    every = pd.concat(parts, ignore_index=True)  # static first: on the same second a recorded event wins
    every = every[every["name"] != ""]
    names, keys, value_codes, levels = [], [], [], []
    for name, one in every.groupby("name", sort=True):
        key = one["ticket"].to_numpy(dtype="int64") * TIME_KEY_SHIFT + one["at_s"].to_numpy(dtype="int64")
        order = np.argsort(key, kind="stable")
        codes, uniques = pd.factorize(one["value"].to_numpy(dtype=object)[order], use_na_sentinel=True)
        names.append(str(name))
        keys.append(key[order])
        value_codes.append(codes.astype("int32"))
        levels.append(np.asarray(uniques, dtype=object))
    return AttributeHistory(tuple(names), tuple(keys), tuple(value_codes), tuple(levels))


def attribute_features(history: AttributeHistory, code: np.ndarray, as_of_s: np.ndarray) -> pd.DataFrame:
    """``attr_<name>`` per query row: the value of the latest field event at or before as-of (text)."""
    columns = {}
    query = code.astype("int64") * TIME_KEY_SHIFT + as_of_s.astype("int64")
    for name, keys, codes, levels in zip(history.feature_names, history.keys, history.value_codes, history.levels):
        index = np.searchsorted(keys, query, side="right") - 1
        found = index >= 0
        found[found] = (keys[index[found]] // TIME_KEY_SHIFT) == code[found]
        value = np.where(found, codes[np.clip(index, 0, None)] if len(codes) else -1, -1)
        columns[name] = pd.Categorical.from_codes(value, categories=pd.Index(levels, dtype=object))
    return pd.DataFrame(columns, index=range(len(code)))


def numeric_attributes(features: pd.DataFrame) -> list[str]:
    """The ``attr_`` columns whose values (ignoring missing) all read as numbers, and that have any."""
    numeric = []
    for name in attribute_columns(features):
        levels = pd.Series(features[name].astype("category").cat.categories.astype(str))
        used = features[name].notna().any()
        if used and len(levels) and pd.to_numeric(levels, errors="coerce").notna().all():
            numeric.append(name)
    return numeric


def attribute_columns(features: pd.DataFrame) -> list[str]:
    return [c for c in features.columns if str(c).startswith(contract.ATTRIBUTE_PREFIX)]


def pooled_levels(values: pd.Series, ticket_ids: pd.Series, min_count: int, max_levels: int) -> list[str]:
    """Levels kept for a categorical attribute: seen on at least ``min_count`` tickets, the
    ``max_levels`` most frequent (ties by name); everything else shares ``(other)``.

    Tickets, not rows: a ticket that sits open for days has many training rows, and one
    customer's long ticket is not a level worth learning."""
    pairs = pd.DataFrame({"ticket": ticket_ids.to_numpy(), "level": values.astype(object).to_numpy()}).dropna()
    counts = pairs.drop_duplicates()["level"].astype(str).value_counts()
    counts = counts[counts >= min_count]
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:max_levels]
    return sorted(level for level, _ in ranked)


def _static_events(tickets: pd.DataFrame, created_s: np.ndarray, static: tuple[str, ...]) -> pd.DataFrame:
    frames = []
    for column in static:
        if column not in tickets.columns:
            continue  # a scoring export without the column: the feature is missing, not an error
        values = _text(tickets[column])
        keep = values.notna().to_numpy()
        frames.append(pd.DataFrame({
            "ticket": np.flatnonzero(keep), "at_s": created_s[keep],
            "name": contract.attribute_names(pd.Series([column])).iloc[0], "value": values[keep].to_numpy(dtype=object),
        }))
    empty = pd.DataFrame({"ticket": np.array([], dtype="int64"), "at_s": np.array([], dtype="int64"),
                          "name": np.array([], dtype=object), "value": np.array([], dtype=object)})
    return pd.concat([empty, *frames], ignore_index=True)


def _text(values: pd.Series) -> pd.Series:
    """Values as stripped text (object, None where missing or empty: a cleared attribute)."""
    text = values.reset_index(drop=True).astype("string").str.strip()
    if pd.api.types.is_float_dtype(values):
        # 12.0 from a Parquet float column is the 12 a CSV export would spell "12".
        text = text.str.replace(r"\.0$", "", regex=True)
    text = text.where(text != "")
    return pd.Series(text.to_numpy(dtype=object, na_value=None), dtype=object)
