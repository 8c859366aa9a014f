"""The Dask engine's features equal the one-machine features, row for row and column for column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.build import CROSS_TICKET_FEATURES
from pipeline.distributed.featurize import featurize_dask
from pipeline.distributed.partition import PIECE, read_export
from pipeline.stages.featurize import featurize
from tests.pipeline.distributed.conftest import comparable


def test_pieces_keep_each_requester_and_its_events_together(client, validated_export, engine_params):
    export = read_export(client, str(validated_export), engine_params.engine)
    tickets = export.tickets.compute().reset_index()
    events = export.events.compute().reset_index()
    assert export.pieces == 3 and export.tickets.npartitions == 3 and tickets[PIECE].nunique() == 3
    assert tickets.dropna(subset=["requester_id"]).groupby("requester_id")[PIECE].nunique().max() == 1
    piece_of = tickets.set_index("ticket_id")[PIECE]
    assert (events[PIECE].to_numpy() == piece_of.reindex(events["ticket_id"]).to_numpy()).all()
    assert len(tickets) == len(pd.read_parquet(validated_export / "tickets.parquet"))
    assert len(events) == len(pd.read_parquet(validated_export / "events.parquet"))


@pytest.mark.parametrize("snapshots", [False, True], ids=["as_of", "snapshots"])
def test_dask_features_equal_pandas_features(client, validated_export, engine_params, tmp_path, snapshots):
    # As-of mode at a moment inside the export: the back-test cut happens on the pieces too.
    as_of = None if snapshots else pd.Timestamp("2026-01-25T12:00:00Z")
    expected = featurize(validated_export, tmp_path / "pandas.parquet", engine_params,
                         as_of=None if as_of is None else as_of.isoformat(), snapshots=snapshots)
    export = read_export(client, str(validated_export), engine_params.engine, as_of=as_of)
    written = featurize_dask(client, export, engine_params, tmp_path / "dask.parquet", as_of=as_of,
                             snapshots=snapshots)
    got = pd.read_parquet(tmp_path / "dask.parquet")
    assert written.parts == 3 and written.rows == len(expected) > 500
    assert list(got.columns) == list(expected.columns)
    # The cross-ticket features are really computed over the whole export (not left empty).
    assert got[list(CROSS_TICKET_FEATURES)].notna().any().all()
    pd.testing.assert_frame_equal(comparable(got), comparable(expected))


def test_cross_ticket_features_differ_when_computed_per_piece(client, validated_export, engine_params):
    """The guard the gathered step exists for: team load counted within one piece is wrong."""
    from features.build import build_features

    export = read_export(client, str(validated_export), engine_params.engine)
    tickets = export.tickets.partitions[0].compute().reset_index(drop=True).drop(columns=["_row"])
    events = export.events.partitions[0].compute().reset_index(drop=True).drop(columns=["_row"])
    whole = pd.read_parquet(validated_export / "tickets.parquet")
    alone = build_features(tickets, events, export.export_at)
    full = build_features(whole, pd.read_parquet(validated_export / "events.parquet"), export.export_at)
    full = full.set_index("ticket_id").loc[alone["ticket_id"]]
    assert not np.allclose(alone["group_open_tickets"].to_numpy(), full["group_open_tickets"].to_numpy())


def test_stage_uses_the_cluster_at_scheduler_and_writes_a_parquet_directory(client, validated_export, engine_params,
                                                                            tmp_path):
    from pipeline.stages.featurize import featurize_on_dask

    out = tmp_path / "features.parquet"
    out.write_text("an older file where the directory goes")
    written = featurize_on_dask(validated_export, out, engine_params, scheduler=client.scheduler.address)
    assert out.is_dir() and len(list(out.glob("part-*.parquet"))) == written.parts == 3
    table = pd.read_parquet(out)
    assert len(table) == written.rows == len(pd.read_parquet(validated_export / "tickets.parquet"))
    assert not list(tmp_path.glob(".*tmp"))  # no staging directory left behind


def test_each_piece_takes_its_snapshot_moments_up_to_the_whole_exports_end(client, tmp_path):
    """A quiet ticket alone in its piece still gets the daily moments up to the export's end.

    Ticket A (requester R1) is created on Monday and sits open with no later event; the
    export ends on Wednesday with an event of ticket B (requester R2, the other piece). On
    its piece alone A's export would end on Monday, and it would get no daily moment.
    """
    from pipeline.core.params import Params
    from pipeline.stages.validate import validate_export

    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "tickets.csv").write_text(
        "ticket_id,created_at,channel,status,requester_id,subject,satisfaction,satisfaction_at\n"
        "A,2026-03-02T09:00:00Z,email,open,R1,Help,,\n"
        "B,2026-03-02T10:00:00Z,email,open,R2,Other,,\n")
    (raw / "events.csv").write_text(
        "ticket_id,at,actor,kind,value,body\n"
        "A,2026-03-02T09:00:00Z,customer,message,,Please help\n"
        "B,2026-03-02T10:00:00Z,customer,message,,Hello\n"
        "B,2026-03-04T12:00:00Z,customer,message,,Still waiting\n")
    params = Params()
    params = params.model_copy(update={"engine": params.engine.model_copy(update={"partitions": 2})})
    validate_export(raw, tmp_path / "interim", params.ingest)
    featurize(tmp_path / "interim", tmp_path / "pandas.parquet", params, snapshots=True)
    expected = pd.read_parquet(tmp_path / "pandas.parquet")  # both as written (ids: text read back)
    export = read_export(client, str(tmp_path / "interim"), params.engine)
    tickets = export.tickets.compute().reset_index()
    assert tickets.set_index("ticket_id")[PIECE]["A"] != tickets.set_index("ticket_id")[PIECE]["B"]
    featurize_dask(client, export, params, tmp_path / "dask.parquet", snapshots=True)
    got = pd.read_parquet(tmp_path / "dask.parquet")
    assert (expected.query("ticket_id == 'A'")["moment"] == "daily").sum() == 2  # Tuesday and Wednesday 05:30
    pd.testing.assert_frame_equal(comparable(got), comparable(expected))
