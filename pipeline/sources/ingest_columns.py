"""Validation's view of an export column: text stripped, ids and vocabularies coded, timestamps parsed.

A typed Parquet timestamp is used as it is; ISO-8601 text is parsed by Arrow where it
can and by pandas where it cannot, with the same result. Columns whose values repeat
(ids, actors, kinds, attribute names) are worked on once per distinct value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.core.io import iso_utc

# Rows per block of the Arrow timestamp cast: a block holding a value Arrow refuses is read by pandas.
_STAMP_BLOCK_ROWS = 1 << 18


def stripped_text(frame: pd.DataFrame, column: str) -> pd.Series:
    """The column stripped of surrounding blanks, or an all-empty column when absent."""
    if column not in frame.columns:
        return pd.Series("", index=frame.index, dtype=object)
    if isinstance(frame[column].dtype, pd.CategoricalDtype):
        return CodedText.of(frame, column).full()
    return frame[column].astype(str).str.strip()


@dataclass(frozen=True)
class CodedText:
    """A text column as positions into its distinct values, stripped of surrounding blanks.

    Lower-casing, vocabulary checks and lookups run on the distinct values (a few, or
    one per ticket for ids) and reach the rows through ``codes``, so a 20 M-row events
    column costs one integer gather instead of several passes over its text.
    """

    codes: np.ndarray  # one per row, into ``values``
    values: pd.Series  # text, indexed 0..n-1; may repeat after normalising

    @classmethod
    def of(cls, frame: pd.DataFrame, column: str) -> CodedText:
        if column not in frame.columns:
            return cls(np.zeros(len(frame), dtype=np.int32), pd.Series([""], dtype="str"))
        raw = frame[column]
        if isinstance(raw.dtype, pd.CategoricalDtype):
            codes, distinct = raw.cat.codes.to_numpy(), raw.cat.categories
        else:
            codes, distinct = pd.factorize(raw)
        # A missing value (code -1) reads as an empty cell, as in a CSV.
        values = pd.Series(np.append(np.asarray(distinct, dtype=object), ""), dtype="str")
        codes = codes.astype(np.int32)
        codes[codes < 0] = len(values) - 1
        return cls(codes, values.str.strip())

    def map(self, normalise: Callable[[pd.Series], pd.Series]) -> CodedText:
        """The same rows with every distinct value normalised by ``normalise`` (vectorised over them)."""
        return CodedText(self.codes, normalise(self.values).reset_index(drop=True))

    def where(self, flags: pd.Series | np.ndarray) -> np.ndarray:
        """A per-row boolean mask from a mask over the distinct values."""
        flags = np.asarray(flags, dtype=bool)
        if not flags.any():  # the usual answer of a check on a clean export: no gather over the rows
            return np.zeros(len(self.codes), dtype=bool)
        return flags[self.codes]

    def at(self, rows: pd.Series) -> pd.Series:
        """The text of the ``rows`` (a row mask), for reject messages."""
        mask = np.asarray(rows, dtype=bool)
        return pd.Series(self.values.to_numpy(dtype=object)[self.codes[mask]], index=rows.index[mask])

    def full(self) -> pd.Series:
        """Every row's text as a column."""
        return pd.Series(self.values.array.take(self.codes))

    def rows(self, kept: np.ndarray, empty_as_missing: bool = False) -> pd.Series:
        """The text of the ``kept`` rows as a column (``""`` -> missing with ``empty_as_missing``)."""
        values = self.values.replace("", None) if empty_as_missing else self.values
        return pd.Series(values.array.take(_kept(self.codes, kept)))

    def categorical(self, kept: np.ndarray, categories: tuple[str, ...]) -> pd.Categorical:
        """The ``kept`` rows as a categorical of the contract's ``categories`` (values outside them: missing)."""
        category = pd.Index(categories).get_indexer(self.values).astype(np.int8 if len(categories) < 127 else np.int32)
        return pd.Categorical.from_codes(category[_kept(self.codes, kept)], categories=categories)


def _kept(codes: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """``codes`` of the kept rows; no copy when every row is kept (a clean export)."""
    return codes if kept.all() else codes[kept]


@dataclass(frozen=True)
class Stamps:
    """A timestamp column: ISO-8601 text parsed, or a typed Parquet column used as it is."""

    stamps: pd.Series  # datetime64[ns, UTC], NaT where missing or unreadable
    given: Callable[[], pd.Series]  # () -> the cells that were not empty
    text: Callable[[pd.Series], pd.Series]  # rows -> their text as the export wrote it (typed: ISO-8601)

    @classmethod
    def of(cls, frame: pd.DataFrame, column: str) -> Stamps:
        if column in frame.columns and isinstance(frame[column].dtype, pd.DatetimeTZDtype):
            stamps = frame[column]
            return cls(stamps, stamps.notna, lambda rows: iso_utc(stamps[rows]))
        if column not in frame.columns or isinstance(frame[column].dtype, pd.CategoricalDtype):
            text = stripped_text(frame, column)
            return cls(parse_timestamps(text), lambda: text != "", lambda rows: text[rows])
        # Stripped only where needed: a copy of a 20 M-row text column costs about 1 GB.
        raw = frame[column]
        return cls(parse_timestamps(raw), lambda: raw.str.strip() != "", lambda rows: raw[rows].str.strip())


def parse_timestamps(text: pd.Series) -> pd.Series:
    """ISO-8601 text to UTC timestamps, surrounding blanks ignored; a value without offset is UTC.

    Empty or bad text -> NaT. Arrow's ISO-8601 cast reads the usual shapes (``...Z``,
    ``+01:00``, or all without an offset) in C and refuses a whole block for one value
    it cannot read; such a block is stripped and tried again, then read by pandas.
    Arrow accepts only values pandas reads to the same instant, so the result is
    pandas' whatever the reader of a block.
    """
    if len(text) == 0 or text.dtype == object:
        return _parse_with_pandas(text.astype(str).str.strip())
    values = _arrow_text(text)
    parsed = []
    for start in range(0, len(values), _STAMP_BLOCK_ROWS):
        block = values.slice(start, _STAMP_BLOCK_ROWS)
        stamps = _cast(block)
        if stamps is None:  # blanks around values, empty cells: Arrow again on the stripped text
            block = pc.utf8_trim_whitespace(block)
            block = pc.if_else(pc.equal(block, ""), pa.scalar(None, block.type), block)
            stamps = _cast(block)
        if stamps is None:
            read = _parse_with_pandas(pd.Series(block.to_pandas(), dtype="str"))
            stamps = pa.chunked_array([pa.array(read, type=pa.timestamp("ns", "UTC"))])
        parsed.extend(stamps.chunks)
    stamps = pa.chunked_array(parsed, type=pa.timestamp("ns", "UTC")).to_pandas()
    return stamps.set_axis(text.index).astype("datetime64[ns, UTC]")


def _arrow_text(text: pd.Series) -> pa.ChunkedArray:
    """The column as Arrow strings, without a copy when pandas already holds it in Arrow."""
    array = text.array
    values = array.__arrow_array__() if hasattr(array, "__arrow_array__") else pa.array(text, from_pandas=True)
    return values if isinstance(values, pa.ChunkedArray) else pa.chunked_array([values])


def _cast(block: pa.ChunkedArray) -> pa.ChunkedArray | None:
    """The block as UTC timestamps if Arrow reads every value (all with offsets, or all without), else None."""
    try:
        return block.cast(pa.timestamp("ns", "UTC"))
    except pa.ArrowInvalid:
        pass
    try:
        return block.cast(pa.timestamp("ns")).cast(pa.timestamp("ns", "UTC"))
    except pa.ArrowInvalid:
        return None


def _parse_with_pandas(text: pd.Series) -> pd.Series:
    stamps = pd.to_datetime(text.where(text != ""), utc=True, format="ISO8601", errors="coerce")
    return stamps.astype("datetime64[ns, UTC]")
