"""The chunked benchmark export (3M+ tickets): ids unique across chunks, customers whole, tables validated."""

from __future__ import annotations

import json

import pandas as pd

from benchmarks import chunked
from benchmarks.targets import evaluate_targets
from benchmarks.workdir import Paths


def test_chunk_sizes_cover_the_export():
    assert chunked.chunk_sizes(3_000_000) == [500_000] * 6
    assert chunked.chunk_sizes(1_200_000) == [500_000, 500_000, 200_000]
    assert chunked.is_chunked(3_000_000) and not chunked.is_chunked(1_000_000)


def test_a_chunked_export_is_validated_part_by_part_with_unique_ids(tmp_path, monkeypatch):
    monkeypatch.setattr(chunked, "CHUNK_TICKETS", 700)
    paths = Paths(tmp_path, 1_600, 3)
    counts = chunked.generate_chunked(paths, 3, echo=lambda *a, **k: None)
    chunked.install_canonical(paths)

    assert counts["chunks"] == 3 and counts["tickets"] == 1_600
    parts = sorted(p.name for p in (paths.canonical / "tickets.parquet").iterdir())
    assert parts == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    tickets = pd.read_parquet(paths.canonical / "tickets.parquet")
    events = pd.read_parquet(paths.canonical / "events.parquet")
    raw_events = pd.read_parquet(paths.export_tmp / "events.parquet")
    assert len(tickets) == 1_600 and tickets["ticket_id"].is_unique
    assert len(events) == len(raw_events) == counts["events"]
    assert events["ticket_id"].isin(tickets["ticket_id"]).all()
    # Each chunk is its own desk: without the chunk prefix the simulator's ids would repeat.
    assert tickets["ticket_id"].str[0].value_counts().sort_index().tolist() == [700, 700, 200]
    # A customer's tickets all come from one chunk, so their history is whole.
    chunks_per_requester = tickets.groupby("requester_id")["ticket_id"].agg(lambda ids: ids.str[0].nunique())
    assert (chunks_per_requester == 1).all()
    organizations = tickets["organization"].dropna()
    organizations = organizations[organizations != ""]
    assert len(organizations) and organizations.str.match(r"^[1-3]-").all()
    marker = json.loads(paths.output_of("validate").read_text())
    assert marker["input_rows"] == {"tickets": 1_600, "events": counts["events"]} and marker["rejected_rows"] == 0
    assert paths.output_of("validate").stat().st_mtime >= (paths.canonical / "tickets.parquet").stat().st_mtime


def test_a_target_without_a_time_limit_is_met_when_the_stage_ran():
    ran = {"stage": "featurize_dask", "tickets": 3_000_000, "seconds": 900.0, "peak_mb": 9000.0, "events": 66_000_000}
    failed = {**ran, "seconds": None}
    judged = {t["name"]: t["met"] for t in evaluate_targets([ran], None)}
    assert judged["featurize_dask_3m"] is True and judged["train_dask_3m"] is None
    assert {t["name"]: t["met"] for t in evaluate_targets([failed], None)}["featurize_dask_3m"] is None
