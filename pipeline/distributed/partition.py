"""A validated export as Dask dataframes, split into pieces by requester.

Every ticket of a requester, and every event of those tickets, land in the same piece, so
the per-ticket and per-requester features (a customer's history) are exact when each piece
is featurized on its own. Piece ``i`` of the tickets and piece ``i`` of the events are
partition ``i`` of each dataframe. Each row keeps its position in the export (``_row``):
the events of one ticket at the same second resolve in file order, as on one machine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.core.errors import UserError, one_line
from pipeline.core.params import EngineParams

PIECE = "_piece"
ROW = "_row"
# Row positions are partition number * 2**40 + position in the partition: file order, no counting pass.
_ROW_SHIFT = np.int64(2**40)


@dataclass(frozen=True)
class PartitionedExport:
    """The export's tables split into ``pieces`` co-partitioned pieces (persisted on the workers)."""

    tickets: object  # dask DataFrame, index PIECE, column ROW
    events: object  # dask DataFrame, index PIECE, column ROW
    pieces: int
    export_at: pd.Timestamp  # the whole export's latest moment (after the as-of cut)
    has_customer_messages: bool  # in the whole export


def table_path(export_dir: str, name: str) -> str:
    """``<export_dir>/<name>.parquet``: a file or a directory of Parquet files, local or ``s3://...``."""
    return f"{str(export_dir).rstrip('/')}/{name}.parquet"


def piece_count(engine: EngineParams, tickets: int, threads: int) -> int:
    """params ``engine.partitions``, or one piece per ``tickets_per_partition``, at least two per thread."""
    if engine.partitions:
        return engine.partitions
    return max(2 * threads, -(-tickets // engine.tickets_per_partition))


def read_export(client, export_dir: str, engine: EngineParams, as_of: pd.Timestamp | None = None) -> PartitionedExport:
    """The validated export in ``export_dir`` (``csat-triage validate --out``), split by requester.

    ``as_of``: leave out tickets created and events stamped after it, and the events of
    tickets left out (what ``load_export(as_of=...)`` does on one machine).
    """
    import dask

    # Strings as pandas reads them (missing = NaN), not dask's pd.NA strings: the feature
    # functions compare values with ==, which pd.NA refuses to answer. The task-based shuffle:
    # with tens of input partitions and a few pieces it took half the time of the p2p one
    # (100k tickets, 2 workers: 15 s against 33 s).
    with dask.config.set({"dataframe.convert-string": False, "dataframe.shuffle.method": "tasks"}):
        return _read_export(client, export_dir, engine, as_of)


def _read_export(client, export_dir: str, engine: EngineParams, as_of: pd.Timestamp | None) -> PartitionedExport:
    import dask.dataframe as dd

    try:
        tickets = dd.read_parquet(table_path(export_dir, "tickets"))
        events = dd.read_parquet(table_path(export_dir, "events"))
    except (FileNotFoundError, OSError, ValueError) as exc:
        raise UserError(
            f"{export_dir}: the dask engine reads a validated export (tickets.parquet and events.parquet, "
            f"written by `csat-triage validate EXPORT --out DIR`): {one_line(exc, 200)}"
        ) from None
    if as_of is not None:
        tickets = tickets[tickets["created_at"] <= as_of]
        events = events[events["at"] <= as_of]
    tickets = tickets.map_partitions(_with_row, meta=_row_meta(tickets._meta))
    events = events.map_partitions(_with_row, meta=_row_meta(events._meta))
    pieces = piece_count(engine, int(tickets.shape[0].compute()), max(sum(client.nthreads().values()), 1))
    tickets = tickets.map_partitions(_with_piece, pieces, meta=tickets._meta.assign(**{PIECE: np.int64(0)}))
    # Events take their ticket's piece from a ticket -> piece table sent to every worker (8 bytes
    # and an id per ticket): no join, so the events are shuffled once, into their pieces.
    # An event whose ticket was left out (as-of) leaves with it.
    pieces_of = tickets[["ticket_id", PIECE]].compute()
    # Sent to every worker once (a future), not embedded in the task graph (at 3M tickets a 109 MB graph).
    lookup = client.scatter(pd.Series(pieces_of[PIECE].to_numpy(),
                                      index=pd.Index(pieces_of["ticket_id"].to_numpy(dtype=object))), broadcast=True)
    del pieces_of
    events = events.map_partitions(_events_piece, lookup, meta=events._meta.assign(**{PIECE: np.int64(0)}))
    divisions = tuple(range(pieces)) + (pieces,)
    tickets = tickets.set_index(PIECE, divisions=divisions, sort=True)
    events = events.set_index(PIECE, divisions=divisions, sort=True)
    tickets, events = client.persist([tickets, events])
    stamps = dd.compute(tickets["created_at"].max(), events["at"].max(),
                        ((events["kind"] == "message") & (events["actor"] == "customer")).any())
    known = [s for s in stamps[:2] if pd.notna(s)]
    if not known:
        raise UserError(f"{export_dir}: the export has no ticket or event (as of {as_of}): nothing to work on")
    return PartitionedExport(tickets=tickets, events=events, pieces=pieces, export_at=max(known),
                             has_customer_messages=bool(stamps[2]))


def piece_tables(tickets: pd.DataFrame, events: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One piece as the canonical tables the features read: export file order, no helper columns."""
    def ordered(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.sort_values(ROW, kind="stable").drop(columns=[ROW]).reset_index(drop=True)

    return ordered(tickets), ordered(events)


def _with_row(frame: pd.DataFrame, partition_info=None) -> pd.DataFrame:
    number = partition_info["number"] if partition_info else 0
    return frame.assign(**{ROW: np.int64(number) * _ROW_SHIFT + np.arange(len(frame), dtype="int64")})


def _row_meta(meta: pd.DataFrame) -> pd.DataFrame:
    return meta.assign(**{ROW: np.array([], dtype="int64")})


def _events_piece(events: pd.DataFrame, piece_of: pd.Series) -> pd.DataFrame:
    piece = piece_of.reindex(events["ticket_id"].to_numpy(dtype=object)).to_numpy()
    known = ~np.isnan(piece)
    return events[known].assign(**{PIECE: piece[known].astype("int64")})


def _with_piece(tickets: pd.DataFrame, pieces: int) -> pd.DataFrame:
    # A ticket without a requester has no history to keep together: it goes by its own id.
    requester = tickets["requester_id"].astype(object)
    key = requester.where(requester.notna(), "ticket:" + tickets["ticket_id"].astype(str)).astype(str)
    piece = pd.util.hash_pandas_object(key, index=False).to_numpy() % np.uint64(pieces)
    return tickets.assign(**{PIECE: piece.astype("int64")})
