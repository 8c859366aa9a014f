"""Reading and writing tables on disk: CSV or Parquet by extension, atomic writes.

Every output the tool writes goes through :func:`write_table` so that a failing
run never leaves a half-written file in place of yesterday's good one.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.core import contract
from pipeline.core.errors import ExportError, UserError


def find_table(export_dir: str | os.PathLike, name: str) -> Path:
    """Return the path of table ``name`` (``tickets`` or ``events``) in an export directory.

    Parquet wins over CSV when both exist. Raises :class:`ExportError` naming the
    expected file names when neither is there.
    """
    export_dir = Path(export_dir)
    if not export_dir.is_dir():
        raise ExportError(f"{export_dir}: export directory not found")
    for suffix in contract.TABLE_SUFFIXES:
        for candidate in (export_dir / f"{name}{suffix}", export_dir / f"{name}{suffix}.gz"):
            if candidate.is_file():
                return candidate
    raise ExportError(
        f"{export_dir}: no {name}.csv or {name}.parquet in the export directory"
    )


def read_raw_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a CSV or Parquet table with every column as text, nothing coerced.

    Empty cells become ``""`` so that validation, not the reader, decides what
    counts as missing. Returns a frame with a ``_line`` column: the line in the
    source file where the row starts (header = line 1). For Parquet, ``_line`` is
    the row number + 1, as if the table were a CSV with a header.
    """
    path = Path(path)
    name = path.name.lower()
    try:
        if name.endswith(".parquet"):
            frame = pd.read_parquet(path)
            for column in frame.columns:
                frame[column] = _column_to_text(frame[column])
            frame["_line"] = np.arange(2, len(frame) + 2)
            return frame
        frame = pd.read_csv(
            path, dtype=str, keep_default_na=False, na_values=[], encoding="utf-8"
        )
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise ExportError(f"{path}: cannot read table ({_one_line(exc)})") from None
    frame["_line"] = _physical_start_lines(frame)
    return frame


def read_source_table(path: str | os.PathLike, required: tuple[str, ...], what: str) -> pd.DataFrame:
    """Read a third-party source file as text, checking it has the ``required`` columns.

    ``what`` names the source in messages ("ServiceNow incident log").
    """
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"{path}: {what} not found")
    frame = read_raw_table(path)
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ExportError(
            f"{path}: missing column {missing[0]!r}; expected the {what} columns ({', '.join(required)})"
        )
    return frame


def _column_to_text(values: pd.Series) -> pd.Series:
    """A typed Parquet column as the text a CSV would hold ("" for missing), one column at a time."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return _iso_utc(values)
    text = values.astype(object).where(values.notna(), "")
    if not (pd.api.types.is_string_dtype(values) or values.dtype == object):
        text = text.astype(str).where(values.notna(), "")
    return text.astype(str)


def _physical_start_lines(frame: pd.DataFrame) -> pd.Series:
    """Line on which each CSV record starts, counting newlines embedded in quoted fields."""
    extra = pd.Series(0, index=frame.index, dtype="int64")
    for column in frame.columns:
        values = frame[column]
        if values.dtype == object or pd.api.types.is_string_dtype(values):
            extra += values.str.count("\n").fillna(0).astype("int64")
    # Record k starts after the header line and all earlier records' lines.
    lines_per_record = 1 + extra
    return (1 + lines_per_record.cumsum() - lines_per_record + 1).astype("int64")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def write_table(frame: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write ``frame`` to ``path`` (Parquet or CSV by extension) atomically.

    The data goes to a temporary file in the same directory, then replaces
    ``path`` in one rename, so readers see either the old or the new file.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in contract.TABLE_SUFFIXES:
        raise ExportError(f"{path}: output must end in .csv or .parquet")
    with atomic_path(path) as tmp:
        if suffix == ".parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False)
    return path


def write_json(payload: object, path: str | os.PathLike) -> Path:
    """Write JSON atomically with sorted keys, so DVC sees identical bytes for identical content."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")
    return path


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` only if the block succeeds."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:  # a read-only or missing folder is the user's to fix, not a bug
        raise UserError(f"{path}: cannot write here ({exc.strerror}); choose a writable output path") from None
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp creates 0600; outputs should get the usual permissions (0644 under umask 022).
    os.chmod(tmp, 0o666 & ~_current_umask())
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_export(
    out_dir: str | os.PathLike,
    tickets: pd.DataFrame,
    events: pd.DataFrame,
    fmt: str = "csv",
) -> Path:
    """Write an export in the contract format: ``tickets.<fmt>`` and ``events.<fmt>``.

    Timestamps are written as ISO-8601 with an explicit UTC offset. Columns not in
    the contract are kept (the contract says extra columns are ignored).
    """
    if fmt not in ("csv", "parquet"):
        raise ExportError(f"unknown export format {fmt!r}; use csv or parquet")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, frame in ((contract.TICKETS, tickets), (contract.EVENTS, events)):
        frame = frame.copy()
        for column in frame.columns:
            if isinstance(frame[column].dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(
                frame[column]
            ):
                frame[column] = _iso_utc(frame[column])
        write_table(frame, out_dir / f"{name}.{fmt}")
    return out_dir


def _iso_utc(values: pd.Series) -> pd.Series:
    """ISO-8601 UTC text with a Z, to the second ("" for missing); vectorised in numpy."""
    stamps = pd.to_datetime(values, utc=True)
    seconds = stamps.dt.tz_localize(None).to_numpy(dtype="datetime64[s]")
    text = np.char.add(np.datetime_as_string(seconds, unit="s"), "Z")
    return pd.Series(np.where(stamps.notna().to_numpy(), text, ""), index=values.index, dtype=object)


def parse_as_of(as_of: str | None) -> pd.Timestamp | None:
    """``--as-of`` as a UTC timestamp, checked before any work; None means the export time (``None``)."""
    if as_of is None:
        return None
    try:
        moment = pd.Timestamp(as_of)
    except ValueError:
        raise ExportError(f"--as-of {as_of!r} is not an ISO-8601 timestamp") from None
    return moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")
