"""Reading and writing tables on disk: CSV or Parquet by extension, atomic writes.

Every output the tool writes goes through :func:`write_table` so that a failing
run never leaves a half-written file in place of yesterday's good one.
"""

from __future__ import annotations

import codecs
import gzip
import json
import os
import re
import tempfile
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.core import contract
from pipeline.core.errors import ExportError, UserError, one_line


def find_table(export_dir: str | os.PathLike, name: str) -> Path:
    """Return the path of table ``name`` (``tickets`` or ``events``) in an export directory.

    Parquet wins over CSV when both exist. Raises :class:`ExportError` naming the
    expected file names when neither is there, or when one is a directory.
    """
    export_dir = Path(export_dir)
    if not export_dir.is_dir():
        raise ExportError(f"{export_dir}: export directory not found")
    for suffix in contract.TABLE_SUFFIXES:
        for candidate in (export_dir / f"{name}{suffix}", export_dir / f"{name}{suffix}.gz"):
            if candidate.is_file():
                return candidate
            if candidate.exists():
                raise ExportError(f"{candidate}: is a directory, not a file; put the {name} table there as a file")
    raise ExportError(
        f"{export_dir}: no {name}.csv or {name}.parquet in the export directory"
    )


# Separators recognised in a header line that has no comma, and their names for messages.
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
_FIELD_COUNT_ERROR = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
_UNCLOSED_QUOTE_ERROR = re.compile(r"EOF inside string starting at row (\d+)")


def detect_delimiter(path: str | os.PathLike, encoding: str = "utf-8") -> str:
    """The field separator of a CSV file, judged from its header line.

    A comma when the header has one (or has nothing else); otherwise ``;`` or a tab,
    whichever the header holds more of. Column names never contain these characters,
    so the header alone decides without guessing from the data.
    """
    path = Path(path)
    try:
        with _open_binary(path) as handle:
            first = handle.readline(1 << 20)
    except OSError as exc:
        raise ExportError(f"{path}: cannot read table ({one_line(exc)})") from None
    header = first.decode(encoding, errors="replace")
    if "," in header:
        return ","
    counts = {sep: header.count(sep) for sep in (";", "\t")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def read_raw_table(
    path: str | os.PathLike, encoding: str = "utf-8", delimiter: str | None = None
) -> pd.DataFrame:
    """Read a CSV or Parquet table with every column as text, nothing coerced.

    Empty cells become ``""`` so that validation, not the reader, decides what
    counts as missing. Returns a frame with a ``_line`` column: the physical line in
    the source file where the row starts (header = line 1; blank lines and quoted
    fields spanning lines are counted). Blank lines and rows whose every field is
    empty (Excel leaves such rows) are skipped. For Parquet, ``_line`` is the row
    number + 1, as if the table were a CSV with a header.

    ``encoding`` and ``delimiter`` apply to CSV (``delimiter=None``: see
    :func:`detect_delimiter`). A row with more fields than the header, an unclosed
    quote or text that is not valid in ``encoding`` is an :class:`ExportError`
    naming the file and the physical line.
    """
    path = Path(path)
    name = path.name.lower()
    if path.is_file() and path.stat().st_size == 0:
        raise ExportError(f"{path}: empty file (0 bytes); expected a header line naming the columns")
    if name.endswith(".parquet"):
        return _read_parquet_table(path, (), ())
    if delimiter is None:
        delimiter = detect_delimiter(path, encoding)
    options = {"sep": delimiter, "encoding": encoding}
    try:
        frame = _read_csv_rows(path, options)
    except UnicodeDecodeError as exc:
        raise _decode_error(path, encoding, exc) from None
    except pd.errors.ParserError as exc:
        raise _parser_error(path, exc, options) from None
    except (OSError, ValueError) as exc:
        raise ExportError(f"{path}: cannot read table ({one_line(exc)})") from None
    frame.columns = _header_names(frame.columns)
    start_lines = _physical_start_lines(frame)
    keep = ~_all_empty(frame)
    if not keep.all():  # copy only when there are blank rows to drop
        frame = frame[keep].reset_index(drop=True)
        start_lines = start_lines[keep].reset_index(drop=True)
    frame["_line"] = start_lines
    return frame


def read_export_table(
    path: str | os.PathLike, encoding: str = "utf-8", delimiter: str | None = None, *,
    timestamp_columns: tuple[str, ...] = (), coded_columns: tuple[str, ...] = (),
) -> pd.DataFrame:
    """An export table for validation: CSV as :func:`read_raw_table` reads it, Parquet keeping its types.

    For Parquet, a column named in ``timestamp_columns`` that is stored as a timestamp
    comes back as ``datetime64[ns, UTC]`` (a timestamp without zone is UTC, as the
    contract says; missing -> NaT), and a text column named in ``coded_columns`` comes
    back categorical (read from the file's dictionary pages), so that validation works
    once per distinct value instead of once per row. Missing text is ``""`` (a
    categorical's missing value stays NaN). Every other column is text as in
    :func:`read_raw_table`, so values are judged the same whatever the file type.
    """
    path = Path(path)
    if path.name.lower().endswith(".parquet"):
        if path.is_file() and path.stat().st_size == 0:
            raise ExportError(f"{path}: empty file (0 bytes); expected a header line naming the columns")
        return _read_parquet_table(path, timestamp_columns, coded_columns)
    return read_raw_table(path, encoding=encoding, delimiter=delimiter)


def read_export_batches(
    path: str | os.PathLike, batch_rows: int, encoding: str = "utf-8", delimiter: str | None = None, *,
    timestamp_columns: tuple[str, ...] = (), coded_columns: tuple[str, ...] = (),
) -> Iterator[pd.DataFrame]:
    """:func:`read_export_table` in consecutive slices of at most ``batch_rows`` rows (Parquet; CSV: one slice).

    Each slice is typed as :func:`read_export_table` types the whole table and keeps
    the ``_line`` of its rows in the file, so validating slice by slice finds the same
    rows on the same lines while only one slice of the raw table is in memory. A table
    without rows gives one empty slice with its columns.
    """
    path = Path(path)
    if not path.name.lower().endswith(".parquet"):
        yield read_raw_table(path, encoding=encoding, delimiter=delimiter)
        return
    import pyarrow as pa

    if path.is_file() and path.stat().st_size == 0:
        raise ExportError(f"{path}: empty file (0 bytes); expected a header line naming the columns")
    parquet, names, coded = _open_parquet(path, coded_columns)
    if not parquet.metadata.num_rows:
        yield _read_parquet_table(path, timestamp_columns, coded_columns)
        return
    first_line = 2
    try:
        for batch in parquet.iter_batches(batch_size=batch_rows, columns=names):
            frame = pd.DataFrame(
                {name: _arrow_column(pa.chunked_array([batch.column(name)]), name in timestamp_columns,
                                     name in coded) for name in names},
                index=pd.RangeIndex(batch.num_rows), copy=False,  # a dict of columns is copied by default
            )
            frame["_line"] = np.arange(first_line, first_line + len(frame))
            first_line += len(frame)
            yield frame
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise ExportError(f"{path}: cannot read table ({one_line(exc)})") from None


def _open_parquet(path: Path, coded_columns: tuple[str, ...]):
    """(file, its export columns, those read from dictionary pages) of a Parquet table."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise ExportError(f"{path}: cannot read table ({one_line(exc)})") from None
    coded = [c for c in coded_columns if c in schema.names
             and (pa.types.is_string(schema.field(c).type) or pa.types.is_large_string(schema.field(c).type))]
    # A pandas index saved in the file is not a column of the export (pd.read_parquet restores it as the index).
    index_columns = {c for c in (schema.pandas_metadata or {}).get("index_columns", []) if isinstance(c, str)}
    names = [c for c in schema.names if c not in index_columns]
    try:
        return pq.ParquetFile(path, read_dictionary=coded), names, coded
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise ExportError(f"{path}: cannot read table ({one_line(exc)})") from None


def _read_parquet_table(path: Path, timestamp_columns: tuple[str, ...], coded_columns: tuple[str, ...]) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet, names, coded = _open_parquet(path, coded_columns)
    columns = {}
    # One column at a time: the Arrow copy of the whole table never sits beside the frame (GBs at 20 M rows).
    for name in names:
        try:
            values = pq.read_table(path, columns=[name], read_dictionary=[name] if name in coded else None)[0]
        except (OSError, ValueError, pa.ArrowException) as exc:
            raise ExportError(f"{path}: cannot read table ({one_line(exc)})") from None
        columns[name] = _arrow_column(values, name in timestamp_columns, name in coded)
        del values
    frame = pd.DataFrame(columns, index=pd.RangeIndex(parquet.metadata.num_rows))
    frame["_line"] = np.arange(2, len(frame) + 2)
    return frame


def _arrow_column(values, keep_timestamp: bool, coded: bool) -> pd.Series:
    """One Parquet column as validation reads it (see :func:`read_export_table`)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = values.type
    if coded:
        return _dictionary_to_categorical(values)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        # Filled in Arrow: converting text to Python objects to fill it costs seconds at 10 M rows.
        return pc.fill_null(values, "").to_pandas()
    if keep_timestamp and pa.types.is_timestamp(kind):
        try:  # Arrow stores UTC instants; a zone-less column is read as UTC, as the contract says
            return values.cast(pa.timestamp("ns", "UTC")).to_pandas()
        except pa.ArrowInvalid:
            pass  # beyond the nanosecond range: judged as text, like a CSV value
    return _column_to_text(values.to_pandas())


def _dictionary_to_categorical(values) -> pd.Categorical:
    """A column read from Parquet dictionary pages (one dictionary per page) as one categorical.

    The page dictionaries are factorized together and each page's indices remapped in
    numpy: Arrow's own unification through pandas costs several times as much at 20 M rows.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    chunks = [chunk for chunk in values.chunks if len(chunk)]
    if not chunks:
        return pd.Categorical(pd.Series([], dtype="str"))
    if len(chunks) == 1:  # one slice of one row group: its dictionary page is the categories
        try:
            return pd.Categorical.from_codes(pc.fill_null(chunks[0].indices, -1).to_numpy(),
                                             categories=pd.Index(chunks[0].dictionary.to_pandas(), dtype="str"))
        except ValueError:
            pass  # a writer that repeats dictionary values: factorized below
    # Arrow hands out a row group's dictionary with each of its batches: factorize each dictionary once.
    distinct, chunk_dictionary = [], []
    for chunk in chunks:
        if not distinct or not chunk.dictionary.equals(distinct[-1]):
            distinct.append(chunk.dictionary)
        chunk_dictionary.append(len(distinct) - 1)
    codes, categories = pd.factorize(pa.chunked_array(distinct, type=distinct[0].type).to_pandas())
    starts = np.cumsum([0] + [len(d) for d in distinct])
    # -1 (a missing value) picks the -1 appended to each dictionary's mapping.
    mappings = [np.append(codes[a:b], -1).astype(np.int32) for a, b in zip(starts[:-1], starts[1:], strict=True)]
    row_codes = [mappings[k][pc.fill_null(chunk.indices, -1).to_numpy()]
                 for k, chunk in zip(chunk_dictionary, chunks, strict=True)]
    return pd.Categorical.from_codes(np.concatenate(row_codes), categories=pd.Index(categories, dtype="str"))


def _read_csv_rows(path: Path, options: dict) -> pd.DataFrame:
    """The data rows as text. Blank lines are kept as rows, so that line numbers stay physical.

    A first data row with more fields than the header would become the index (or,
    with ``index_col=False``, lose its extra fields with only a warning); that warning
    is turned into the same "Expected N fields" error as a long row further down, by
    reading again with the header as a plain record.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="Length of header or names", category=pd.errors.ParserWarning)
        try:
            return pd.read_csv(
                path, dtype=str, keep_default_na=False, na_values=[], skip_blank_lines=False,
                index_col=False, **options,
            )
        except pd.errors.ParserWarning:
            _read_csv_records(path, **options)  # raises ParserError naming the record
            raise  # not expected: the warning itself is the next best message


def _read_csv_records(path: Path, nrows: int | None = None, **options) -> pd.DataFrame:
    """Every record including the header as rows (error path: finding a record's line)."""
    return pd.read_csv(
        path, dtype=str, header=None, keep_default_na=False, na_values=[],
        skip_blank_lines=False, nrows=nrows, **options,
    )


def _open_binary(path: Path):
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")


def _header_names(header) -> list[str]:
    """Column names from the header: stripped, a BOM removed, blanks and repeats named like pandas."""
    names: list[str] = []
    seen: dict[str, int] = {}
    for position, value in enumerate(list(header)):  # once per column, not per row
        text = str(value).strip().lstrip("\ufeff").strip()
        text = text or f"Unnamed: {position}"
        if text in seen:
            seen[text] += 1
            text = f"{text}.{seen[text]}"
        else:
            seen[text] = 0
        names.append(text)
    return names


def _all_empty(frame: pd.DataFrame) -> pd.Series:
    empty = pd.Series(True, index=frame.index)
    for column in frame.columns:
        empty &= frame[column].eq("").to_numpy()
    return empty


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
        return iso_utc(values)
    if pd.api.types.is_float_dtype(values):
        # Integer ids stored as float (pandas does this when a column has a gap) read
        # "123", not "123.0", so they still match the same id written as an integer.
        finite = values.dropna()
        if len(finite) and bool((finite == np.floor(finite)).all()) and float(finite.abs().max()) < 2**53:
            values = values.astype("Int64")
    text = values.astype(object).where(values.notna(), "")
    if not (pd.api.types.is_string_dtype(values) or values.dtype == object):
        text = text.astype(str).where(values.notna(), "")
    return text.astype(str)


def _physical_start_lines(frame: pd.DataFrame, first_line: int = 2) -> pd.Series:
    """Line on which each CSV record starts, counting newlines inside quoted fields.

    ``first_line``: where the first row starts (2 after a one-line header, 1 when the
    header is itself a row). Blank lines are rows of one line, so they are counted too.
    """
    extra = pd.Series(0, index=frame.index, dtype="int64")
    for column in frame.columns:
        values = frame[column]
        if values.dtype == object or pd.api.types.is_string_dtype(values):
            extra += values.str.count("\n").fillna(0).astype("int64")
    # Record k starts after the header line and all earlier records' lines.
    lines_per_record = 1 + extra
    return (first_line + lines_per_record.cumsum() - lines_per_record).astype("int64")


def _line_of_record(path: Path, record: int, options: dict) -> int | None:
    """Physical line where 0-based ``record`` starts, reading only the records before it (error path)."""
    if record <= 0:
        return 1
    try:
        before = _read_csv_records(path, nrows=record, **options)
    except (OSError, ValueError):
        return None
    lines = _physical_start_lines(before, first_line=1)
    return int(lines.iloc[-1] + (1 + before.iloc[-1].astype(str).str.count("\n").sum()))


def _parser_error(path: Path, exc: pd.errors.ParserError, options: dict) -> ExportError:
    """A pandas tokenizer error as one line naming the physical line and what to fix."""
    message = one_line(exc)
    fields = _FIELD_COUNT_ERROR.search(message)
    if fields:
        expected, record, found = (int(g) for g in fields.groups())
        line = _line_of_record(path, record - 1, options)  # pandas counts records from 1
        where = f"line {line}" if line else f"record {record}"
        name = DELIMITER_NAMES.get(options["sep"], repr(options["sep"]))
        return ExportError(
            f"{path}: {where} has {found} fields, the header has {expected}; "
            f"quote values that contain a {name} (\"...\") or fix the line"
        )
    quote = _UNCLOSED_QUOTE_ERROR.search(message)
    if quote:
        line = _line_of_record(path, int(quote.group(1)), options)
        where = f"line {line}" if line else f"record {quote.group(1)}"
        return ExportError(f"{path}: {where}: a quoted field is never closed (a stray double quote?)")
    return ExportError(f"{path}: cannot read table ({message})")


def _decode_error(path: Path, encoding: str, exc: UnicodeDecodeError) -> ExportError:
    """Find the physical line of the first byte that is not ``encoding`` text (error path only)."""
    decoder = codecs.getincrementaldecoder(encoding)()
    line, bad = None, None
    newlines = 0
    with _open_binary(path) as handle:
        head = handle.peek(2)[:2] if hasattr(handle, "peek") else b""
        while chunk := handle.read(1 << 20):
            pending = len(decoder.getstate()[0])
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as err:
                at = max(err.start - pending, 0)
                line = newlines + chunk.count(b"\n", 0, at) + 1
                bad = err.object[err.start:err.start + 1].hex()
                break
            newlines += chunk.count(b"\n")
    if head in (b"\xff\xfe", b"\xfe\xff"):
        hint = "the file starts like UTF-16 text: pass --encoding utf-16"
    elif codecs.lookup(encoding).name == "cp1252":
        hint = "pass --encoding latin-1 (or the encoding the file was saved in)"
    else:
        hint = "if it was saved by Excel or another Windows program, pass --encoding cp1252 (or latin-1)"
    if line is None:
        return ExportError(f"{path}: not valid {encoding} text ({one_line(exc)}); {hint}")
    return ExportError(f"{path}: line {line}: byte 0x{bad} is not valid {encoding} text; {hint}")


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
            import pyarrow.parquet as pq

            table = _arrow_table(frame)
            pq.write_table(table, tmp, **_parquet_options(table.schema))
        else:
            frame.to_csv(tmp, index=False)
    return path


@contextmanager
def parquet_batches(path: str | os.PathLike) -> Iterator[Callable[[pd.DataFrame], None]]:
    """Yield ``write(frame)``, which appends ``frame`` to the Parquet file ``path`` as the next row group(s).

    The file reads back (``pd.read_parquet``) as the concatenation of the frames, which
    must have the same columns and dtypes. Frames are converted and written on a second
    thread while the caller prepares the next one (Arrow releases the GIL); at most one
    frame waits. ``path`` is replaced atomically when the block ends without error
    (at least one frame, possibly empty, must have been written).
    """
    import pyarrow.parquet as pq

    path = Path(path)
    if path.suffix.lower() != ".parquet":
        raise ExportError(f"{path}: output must end in .parquet")
    state: dict = {}

    def write(table) -> None:
        if "writer" not in state:
            state["writer"] = pq.ParquetWriter(tmp, table.schema, **_parquet_options(table.schema))
        if table.num_rows:  # an empty slice would leave an empty row group behind
            state["writer"].write_table(table, row_group_size=_ROW_GROUP_ROWS)

    with atomic_path(path) as tmp, ThreadPoolExecutor(max_workers=1) as pool:
        pending: list[Future] = []

        def submit(frame: pd.DataFrame) -> None:
            # Converted here: the warning filter around it is process-wide, not safe from another thread.
            table = _arrow_table(frame, state.get("schema"))
            state.setdefault("schema", table.schema)
            if pending:
                pending.pop().result()  # one frame in flight: memory stays bounded by two frames
            pending.append(pool.submit(write, table))

        try:
            yield submit
            if pending:
                pending.pop().result()
            if "writer" not in state:
                raise ValueError(f"{path}: no frame written")
        finally:
            for future in pending:
                future.cancel()
                wait([future])
            if "writer" in state:
                state["writer"].close()


# pyarrow's default: readers get row groups of about 1 M rows whichever way a table was written.
_ROW_GROUP_ROWS = 1 << 20


def _arrow_table(frame: pd.DataFrame, schema=None):
    """``frame`` as ``DataFrame.to_parquet(index=False)`` converts it (same schema and pandas metadata)."""
    import pyarrow as pa

    if not all(isinstance(name, str) for name in frame.columns):
        raise ValueError("parquet must have string column names")
    with warnings.catch_warnings():  # pyarrow < 26 reads tz-aware `.values` (pandas' own to_parquet hides it)
        warnings.filterwarnings("ignore", r"(Series|DatetimeIndex)\.values returning", pd.errors.Pandas4Warning)
        return pa.Table.from_pandas(frame, schema=schema, preserve_index=False)


def _parquet_options(schema) -> dict:
    """Dictionary pages for every column except timestamps: they rarely repeat, and trying costs ~1 s per 20 M."""
    import pyarrow as pa

    return {"use_dictionary": [field.name for field in schema if not pa.types.is_timestamp(field.type)]}


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

    In CSV, timestamps are written as ISO-8601 with an explicit UTC offset; Parquet
    keeps them as UTC timestamps, as a helpdesk's own Parquet export holds them (and
    validation then has no text to parse). Columns not in the contract are kept (the
    contract says extra columns are ignored).
    """
    if fmt not in ("csv", "parquet"):
        raise ExportError(f"unknown export format {fmt!r}; use csv or parquet")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, frame in ((contract.TICKETS, tickets), (contract.EVENTS, events)):
        stamps = {
            column: iso_utc(frame[column]) if fmt == "csv" else pd.to_datetime(frame[column], utc=True)
            for column in frame.columns if pd.api.types.is_datetime64_any_dtype(frame[column])
        }
        write_table(frame.assign(**stamps) if stamps else frame, out_dir / f"{name}.{fmt}")
    return out_dir


def iso_utc(values: pd.Series) -> pd.Series:
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
