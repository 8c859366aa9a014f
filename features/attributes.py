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
import pyarrow.compute as pc

from features.text import take_text
from pipeline.core import contract

# Sort keys ticket * 2**34 + epoch second (here and in features.conversation, history, workload):
# seconds since 1970 stay below 2**34 until the year 2514.
TIME_KEY_SHIFT = np.int64(2**34)


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
    parts = [_static_events(tickets, created_s, static)]  # static first: on the same second a recorded event wins
    if "field" in events.columns:
        is_field = (events["kind"] == contract.FIELD_EVENT).to_numpy(dtype=bool, na_value=False) & (ticket_code >= 0)
        positions = np.flatnonzero(is_field)
        # Millions of field events name a handful of attributes and repeat their values:
        # clean each distinct name and value once, then work on integer codes.
        name_code, raw_names = _factorize(events["field"], positions, missing="")
        value_code, raw_values = _factorize(events["value"], positions, missing=None)
        parts.append(_Part(ticket_code[positions].astype("int64"), event_s[positions].astype("int64"),
                           name_code, contract.attribute_names(pd.Series(raw_names, dtype=object)).to_numpy(dtype=object),
                           value_code, _text(raw_values).to_numpy(dtype=object)))
    every = _Part.concat(parts)
    names, keys, value_codes, levels = [], [], [], []
    for name_index in np.argsort(every.names.astype(str), kind="stable"):
        name = every.names[name_index]
        if name == "":
            continue  # an unnamed field event (validation rejects those) or no name at all
        rows = np.flatnonzero(every.name_code == name_index)
        if not len(rows):
            continue  # a static column with no value on any ticket: no attribute, as without the column
        key = every.ticket[rows] * TIME_KEY_SHIFT + every.at_s[rows]
        order = np.argsort(key, kind="stable")
        text_code = every.value_code[rows[order]]
        # Levels in order of first appearance along the sorted events, -1 for cleared.
        codes = np.full(len(rows), -1, dtype="int32")
        set_here = text_code >= 0
        local, used = pd.factorize(text_code[set_here])
        codes[set_here] = local
        names.append(str(name))
        keys.append(key[order])
        value_codes.append(codes)
        levels.append(np.asarray(every.values[used], dtype=object))
    return AttributeHistory(tuple(names), tuple(keys), tuple(value_codes), tuple(levels))


@dataclass(frozen=True)
class _Part:
    """Attribute events as codes: ``name_code`` into ``names``, ``value_code`` into ``values`` (-1: none)."""

    ticket: np.ndarray
    at_s: np.ndarray
    name_code: np.ndarray
    names: np.ndarray  # cleaned names ("" for none)
    value_code: np.ndarray
    values: np.ndarray  # cleaned text (None for cleared)

    @classmethod
    def concat(cls, parts: list[_Part]) -> _Part:
        """One part whose names and values are each distinct (two spellings of one name are one attribute)."""
        name_code, names = pd.factorize(np.concatenate([p.names for p in parts] + [np.array([""], dtype=object)]))
        value_code, values = pd.factorize(np.concatenate([p.values for p in parts] + [np.array([None], dtype=object)]),
                                          use_na_sentinel=True)
        name_offsets = np.cumsum([0] + [len(p.names) for p in parts])
        value_offsets = np.cumsum([0] + [len(p.values) for p in parts])
        no_name = name_code[-1]

        def remap(codes: np.ndarray, table: np.ndarray, offset: int, missing: int) -> np.ndarray:
            return np.where(codes >= 0, table[offset + np.maximum(codes, 0)], missing)

        return cls(
            ticket=np.concatenate([p.ticket for p in parts]),
            at_s=np.concatenate([p.at_s for p in parts]),
            name_code=np.concatenate([remap(p.name_code, name_code, o, no_name) for p, o in zip(parts, name_offsets)]),
            names=np.asarray(names, dtype=object),
            value_code=np.concatenate([remap(p.value_code, value_code, o, -1) for p, o in zip(parts, value_offsets)]),
            values=np.asarray(values, dtype=object),
        )


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


def _static_events(tickets: pd.DataFrame, created_s: np.ndarray, static: tuple[str, ...]) -> _Part:
    tickets_, seconds, name_codes, names, value_codes, values = [], [], [], [], [], []
    for column in static:
        if column not in tickets.columns:
            continue  # a scoring export without the column: the feature is missing, not an error
        text = _text(tickets[column])
        keep = np.flatnonzero(text.notna().to_numpy())
        codes, uniques = pd.factorize(text.to_numpy(dtype=object)[keep])
        tickets_.append(keep.astype("int64"))
        seconds.append(created_s[keep].astype("int64"))
        name_codes.append(np.full(len(keep), len(names), dtype="int64"))
        names.append(contract.attribute_names(pd.Series([column])).iloc[0])
        value_codes.append(codes + sum(len(v) for v in values))
        values.append(np.asarray(uniques, dtype=object))
    def joined(arrays: list[np.ndarray], dtype: str) -> np.ndarray:
        return np.concatenate(arrays) if arrays else np.array([], dtype=dtype)
    return _Part(joined(tickets_, "int64"), joined(seconds, "int64"), joined(name_codes, "int64"),
                 np.asarray(names, dtype=object), joined(value_codes, "int64"), joined(values, "object"))


def _factorize(values: pd.Series, rows: np.ndarray, missing: str | None) -> tuple[np.ndarray, pd.Series]:
    """Codes of ``values`` at ``rows`` and the distinct values (order of first appearance).

    Missing values become ``missing``, or code -1 when ``missing`` is None. Arrow text is
    taken and hashed in Arrow (no Python string per row)."""
    taken = take_text(values, rows)
    if taken is None:
        picked = values.iloc[rows]
        codes, uniques = pd.factorize(picked if missing is None else picked.fillna(missing))
        return codes, pd.Series(uniques)
    encoded = pc.dictionary_encode(taken if missing is None else pc.fill_null(taken, missing))
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype("int64")
    return codes, pd.Series(encoded.dictionary.to_numpy(zero_copy_only=False), dtype=object)


def _text(values: pd.Series) -> pd.Series:
    """Values as stripped text (object, None where missing or empty: a cleared attribute)."""
    text = values.reset_index(drop=True).astype("string").str.strip()
    if pd.api.types.is_float_dtype(values):
        # 12.0 from a Parquet float column is the 12 a CSV export would spell "12".
        text = text.str.replace(r"\.0$", "", regex=True)
    text = text.where(text != "")
    return pd.Series(text.to_numpy(dtype=object, na_value=None), dtype=object)
