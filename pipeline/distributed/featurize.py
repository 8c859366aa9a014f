"""`featurize --engine dask`: the feature table of a partitioned export, piece by piece.

Three steps, each with the one feature definition of :mod:`features.build`:

1. on each piece (a set of requesters with all their tickets and events): the query rows
   (the as-of rows, or the training snapshot moments) and every feature except the
   cross-ticket ones (``features_from_timeline(cross_ticket=False)``); kept on the workers;
2. the cross-ticket features (team load and record, organization history) need every
   ticket of the export: their slim inputs - ticket ids, creation and rating times, the
   status/group/assignee events and the organization's field events, no text - and the
   query keys are gathered to the client, which computes them with
   :func:`features.build.cross_ticket_features` and sends each piece its rows;
3. on each piece: the cross-ticket columns filled in, categorical levels set to the whole
   export's (so every part file has the same schema), and the piece written as one part
   file of the output Parquet directory.
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.build import CROSS_TICKET_FEATURES, OPENING_TEXT, cross_ticket_features, features_from_timeline
from features.calendar import BusinessHours
from features.conversation import build_timeline
from features.snapshots import opening_moments, resolve_moments, snapshot_moments
from models.dataset import FitSample, urgency_tickets
from pipeline.core import contract
from pipeline.core.params import Params, SnapshotsParams
from pipeline.distributed.partition import PartitionedExport, piece_tables

PART_FILE = "part-{:05d}.parquet"
# The events the cross-ticket features read (team piles: status, group, assignee; the
# organization: its field events). Messages and notes, with their text, stay on the workers.
_CROSS_TICKET_KINDS = ("status", "group", "assignee")
_CROSS_TICKET_TICKET_COLUMNS = ("ticket_id", "created_at", "requester_id", "satisfaction", "satisfaction_at")


@dataclass(frozen=True)
class DaskFeatures:
    """What ``featurize --engine dask`` wrote: ``rows`` feature rows in ``parts`` files under ``out_dir``."""

    out_dir: Path
    rows: int
    parts: int
    columns: tuple[str, ...]


def featurize_dask(
    client, export: PartitionedExport, params: Params, out_dir: str | Path,
    as_of: pd.Timestamp | None = None, snapshots: bool = False,
) -> DaskFeatures:
    """Write the feature table of ``export`` as a Parquet directory ``out_dir`` (one part per piece).

    The rows and values are those of the one-machine ``featurize`` on the same export.
    """
    import dask

    pieces = feature_pieces(client, export, params, as_of, "snapshots" if snapshots else "as_of")
    out_dir = Path(out_dir)
    staging = out_dir.with_name(f".{out_dir.name}.{uuid.uuid4().hex[:8]}.tmp")
    staging.mkdir(parents=True)
    try:
        written = client.compute([dask.delayed(_write_piece)(p, str(staging / PART_FILE.format(i)))
                                  for i, p in enumerate(pieces)], sync=True)
        _replace(staging, out_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    columns = next((tuple(c) for n, c in written if n), tuple(written[0][1]))
    return DaskFeatures(out_dir=out_dir, rows=sum(n for n, _ in written), parts=len(written), columns=columns)


def feature_pieces(client, export: PartitionedExport, params: Params, as_of: pd.Timestamp | None = None,
                   queries: str = "as_of", sample: FitSample | None = None) -> list:
    """Per piece, a delayed feature frame, or None for a piece without query rows.

    Not persisted: a caller computes its own step on each (write it, keep some rows), so a
    piece's finished frame lives only until that step has run, not all pieces' at once.

    ``queries``: ``as_of`` (every ticket at ``as_of``, default the export's end), ``snapshots``
    (the training snapshot moments) or ``opening`` (the urgency model's rows: each solved
    ticket with a final priority at its opening moment, as ``models.dataset`` picks them, only
    those in ``sample`` when given).
    Every frame has the whole export's categorical levels and columns.
    """
    import dask

    hours = BusinessHours.from_params(params.business_hours)
    settings = _PieceSettings(
        hours=hours, static=tuple(params.attributes.static), prior=params.team_record.prior_ratings,
        as_of=as_of if as_of is not None else export.export_at, export_at=export.export_at,
        moments=_global_moments(params, export) if queries == "snapshots" else None, snapshots=params.snapshots,
        opening=queries == "opening", sample=sample,
    )
    tickets = export.tickets.to_delayed()
    events = export.events.to_delayed()
    # Step 1: per piece, every feature but the cross-ticket ones (kept on the workers).
    partial = [dask.delayed(_piece_features)(t, e, settings) for t, e in zip(tickets, events)]
    partial = client.persist(partial)
    # Step 2: the cross-ticket features over the whole export, on the client.
    blocks = cross_ticket_blocks(client, export, partial, params)
    # The whole export's levels of each categorical column, and its attribute columns.
    schemas = client.compute([dask.delayed(_levels)(p) for p in partial], sync=True)
    levels = _union_levels(schemas)
    # Step 3: fill in, fix the levels.
    return [dask.delayed(_finish_piece)(p, b, levels) for p, b in zip(partial, blocks)]


def cross_ticket_blocks(client, export: PartitionedExport, partial: list, params: Params) -> list:
    """The cross-ticket features of every piece's query rows, computed over the whole export.

    ``partial``: per piece, a persisted feature frame (or None) whose ``ticket_id``/``as_of``
    rows are the queries. Returns per piece a future of a frame of :data:`CROSS_TICKET_FEATURES`
    in that piece's row order. The slim inputs (no text) and the query keys come to the client.
    """
    import dask

    static = tuple(params.attributes.static)
    keys = client.compute([dask.delayed(_query_keys)(p) for p in partial], sync=True)
    slim = client.compute([dask.delayed(_slim)(t, e, static)
                           for t, e in zip(export.tickets.to_delayed(), export.events.to_delayed())], sync=True)
    slim_tickets = pd.concat([s[0] for s in slim], ignore_index=True)
    slim_events = pd.concat([s[1] for s in slim], ignore_index=True)
    del slim
    queries = pd.concat(keys, ignore_index=True)
    timeline = build_timeline(slim_tickets, slim_events, BusinessHours.from_params(params.business_hours), static,
                              params.team_record.prior_ratings)
    cross = cross_ticket_features(slim_tickets, timeline, queries)
    del timeline, slim_tickets, slim_events
    bounds = np.cumsum([0] + [len(k) for k in keys])
    return client.scatter([cross.iloc[bounds[i]:bounds[i + 1]].reset_index(drop=True) for i in range(len(keys))])


def with_cross_ticket(features: pd.DataFrame, cross: pd.DataFrame) -> pd.DataFrame:
    """``features`` (made with ``cross_ticket=False``) with the gathered cross-ticket columns filled in."""
    features = features.copy()
    for name in CROSS_TICKET_FEATURES:
        features[name] = cross[name].to_numpy()
    return features


@dataclass(frozen=True)
class _PieceSettings:
    hours: BusinessHours
    static: tuple[str, ...]
    prior: float
    as_of: pd.Timestamp  # as-of mode: the moment (the export's latest without --as-of)
    export_at: pd.Timestamp
    moments: tuple[str, ...] | None  # snapshot mode: the moments, resolved on the whole export
    snapshots: SnapshotsParams
    opening: bool = False  # opening mode: the urgency model's rows
    sample: FitSample | None = None  # opening mode: the tickets the urgency model fits on


def _global_moments(params: Params, export: PartitionedExport) -> tuple[str, ...]:
    """``snapshots.moments`` resolved on the whole export (``auto`` depends on whether it has customer messages)."""
    from models.target import Target

    # resolve_moments reads only whether some event is a customer message.
    witness = pd.DataFrame({"kind": ["message"] if export.has_customer_messages else [],
                            "actor": ["customer"] if export.has_customer_messages else []}, dtype=object)
    return resolve_moments(params.snapshots.moments, witness, Target.from_params(params.target).outcome_is_rating)


def _piece_features(tickets: pd.DataFrame, events: pd.DataFrame, settings: _PieceSettings) -> pd.DataFrame | None:
    """Every feature but the cross-ticket ones, for one piece (None: a piece without tickets)."""
    tickets, events = piece_tables(tickets, events)
    if not len(tickets):
        return None
    timeline = build_timeline(tickets, events, settings.hours, settings.static, settings.prior)
    if settings.opening:
        queries = opening_moments(urgency_tickets(tickets, settings.sample), settings.export_at,
                                  settings.snapshots.opening_window_minutes)
        if not len(queries):
            return None
    elif settings.moments is None:
        queries = settings.as_of
    else:
        snapshots = settings.snapshots
        # As features.snapshots.snapshot_features, with the whole export's moments and end.
        queries = snapshot_moments(
            tickets, events, settings.moments, max_per_ticket=snapshots.max_per_ticket,
            opening_window_minutes=snapshots.opening_window_minutes, daily_local_time=snapshots.daily_local_time,
            timezone=settings.hours.timezone, export_at=settings.export_at,
        )
    return features_from_timeline(tickets, timeline, queries, cross_ticket=False)


def _query_keys(features: pd.DataFrame | None) -> pd.DataFrame:
    if features is None:
        return pd.DataFrame({"ticket_id": pd.Series([], dtype=object), "as_of": pd.Series([], dtype="datetime64[ns, UTC]")})
    return features[["ticket_id", "as_of"]]


def _slim(tickets: pd.DataFrame, events: pd.DataFrame, static: tuple[str, ...]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The cross-ticket features' inputs of one piece: no text, no message or note events."""
    tickets, events = piece_tables(tickets, events)
    organization_static = [c for c in static if c in tickets.columns
                           and contract.attribute_names(pd.Series([c])).iloc[0] == contract.ORGANIZATION_ATTRIBUTE]
    ticket_columns = [c for c in _CROSS_TICKET_TICKET_COLUMNS if c in tickets.columns] + organization_static
    kind = events["kind"].astype(str)
    keep = kind.isin(_CROSS_TICKET_KINDS).to_numpy()
    if "field" in events.columns:
        is_field = (kind == contract.FIELD_EVENT).to_numpy()
        names = contract.attribute_names(events["field"].astype(object).where(is_field, "").fillna(""))
        keep = keep | (is_field & (names == contract.ORGANIZATION_ATTRIBUTE).to_numpy())
    event_columns = [c for c in ("ticket_id", "at", "actor", "kind", "value", "field") if c in events.columns]
    slim_events = events.loc[keep, event_columns].reset_index(drop=True)
    slim_events["body"] = pd.Series([None] * len(slim_events), dtype=object)
    return tickets[ticket_columns], slim_events


def _levels(features: pd.DataFrame | None) -> dict[str, list]:
    """A piece's categorical columns and their levels (attribute columns included)."""
    if features is None:
        return {}
    return {name: list(features[name].cat.categories) for name in features.columns
            if isinstance(features[name].dtype, pd.CategoricalDtype)}


def _union_levels(schemas: list[dict[str, list]]) -> dict[str, list]:
    """Per categorical column, the sorted union of the pieces' levels: what ``astype("category")``
    gives on the whole table on one machine."""
    names = sorted({name for schema in schemas for name in schema})
    return {name: sorted({level for schema in schemas for level in schema.get(name, ())}) for name in names}


def _finish_piece(features: pd.DataFrame | None, cross: pd.DataFrame, levels: dict[str, list]) -> pd.DataFrame | None:
    """Fill in the cross-ticket columns and set the export's levels and attribute columns."""
    if features is None:
        return None
    features = with_cross_ticket(features, cross)
    attributes = [n for n in levels if n.startswith(contract.ATTRIBUTE_PREFIX)]
    for name, names in levels.items():
        values = features[name] if name in features.columns else pd.Series(np.nan, index=features.index, dtype=object)
        features[name] = pd.Categorical(values.astype(object), categories=names)
    # The attribute columns of the whole export, in its (sorted) order, before the opening text.
    leading = [c for c in features.columns if not c.startswith(contract.ATTRIBUTE_PREFIX) and c != OPENING_TEXT]
    return features[leading + sorted(attributes) + [OPENING_TEXT]]


def _write_piece(features: pd.DataFrame | None, path: str):
    """One part file; (rows, columns)."""
    if features is None:
        return 0, []
    features.to_parquet(path, index=False)
    return len(features), list(features.columns)


def _replace(staging: Path, out_dir: Path) -> None:
    """Put the finished directory where the output goes (a previous file or directory is replaced)."""
    if out_dir.is_dir():
        shutil.rmtree(out_dir)
    elif out_dir.exists():
        out_dir.unlink()
    staging.rename(out_dir)
