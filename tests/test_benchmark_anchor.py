"""The Polars anchor of the benchmarks computes the project's values, so timing the two side by side is fair."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmarks import attributes
from benchmarks.anchor_polars import ANCHOR_FEATURES, anchor_features
from features.build import build_features
from features.calendar import BusinessHours
from pipeline.core.io import write_export
from pipeline.core.params import IngestParams
from pipeline.sources.ingest import load_export
from pipeline.sources.simulator import simulate


@pytest.fixture(scope="module")
def raw_export(tmp_path_factory):
    """A small benchmark export: the simulator's tables plus the benchmark's attributes, as raw Parquet."""
    simulation = simulate(400, 11)
    events = attributes.with_benchmark_attributes(simulation.tickets, simulation.events, 11)
    # Two hand-made tickets for what the simulation rarely shows: no agent reply yet, events listed
    # out of time order, an agent and a customer message in the same second (file order decides),
    # a reopen, a group set twice to the same value.
    extra_tickets = pd.DataFrame({
        "ticket_id": ["X1", "X2"], "created_at": pd.to_datetime(["2026-05-04T10:00:00Z", "2026-05-04T09:00:00Z"]),
        "status": ["open", "open"], "channel": ["email", "chat"]})
    extra_events = pd.DataFrame([
        ("X1", "2026-05-04T10:00:00Z", "customer", "message", "", "HELP!! where is my order?"),
        ("X1", "2026-05-04T10:05:00Z", "customer", "message", "", "hello？"),
        ("X1", "2026-05-04T10:06:00Z", "system", "status", "open", ""),
        ("X2", "2026-05-04T09:30:00Z", "agent", "message", "", "On it!"),
        ("X2", "2026-05-04T09:00:00Z", "customer", "message", "", "hi!"),
        ("X2", "2026-05-04T09:30:00Z", "customer", "message", "", "still broken?!"),
        ("X2", "2026-05-04T09:40:00Z", "agent", "status", "solved", ""),
        ("X2", "2026-05-04T09:50:00Z", "system", "status", "open", ""),
        ("X2", "2026-05-04T09:10:00Z", "system", "group", "billing", ""),
        ("X2", "2026-05-04T09:11:00Z", "system", "group", "billing", ""),
        ("X2", "2026-05-04T09:12:00Z", "system", "group", "technical", ""),
        ("X2", "2026-05-04T09:13:00Z", "agent", "note", "", "internal"),
    ], columns=["ticket_id", "at", "actor", "kind", "value", "body"]).assign(at=lambda f: pd.to_datetime(f["at"]))
    tickets = pd.concat([simulation.tickets, extra_tickets], ignore_index=True)
    events = pd.concat([events, extra_events], ignore_index=True)
    export = tmp_path_factory.mktemp("anchor") / "export"
    write_export(export, tickets, events, "parquet")
    return export


def project_features(export, ingest: IngestParams) -> pd.DataFrame:
    validated = load_export(export, ingest)
    return build_features(validated.tickets, validated.events, None, BusinessHours.from_params())


@pytest.mark.parametrize("max_text_chars", [IngestParams().max_text_chars, 40])
def test_the_polars_anchor_equals_the_project_on_every_row_and_column(raw_export, max_text_chars):
    ingest = IngestParams(max_text_chars=max_text_chars)  # 40: texts cut, as validation cuts them
    project = project_features(raw_export, ingest)
    anchor = anchor_features(raw_export, ingest.max_text_chars).to_pandas()
    assert anchor["ticket_id"].tolist() == project["ticket_id"].tolist()
    assert len(anchor) == 402 and len(ANCHOR_FEATURES) == 17
    for name in ANCHOR_FEATURES:
        ours, theirs = project[name].to_numpy(dtype="float64"), anchor[name].to_numpy(dtype="float64")
        assert np.array_equal(np.isnan(ours), np.isnan(theirs)), name
        assert np.allclose(ours, theirs, rtol=0, atol=1e-9, equal_nan=True), (
            name, int((~np.isclose(ours, theirs, equal_nan=True)).sum()))
    # The comparison has teeth: the export exercises every feature.
    for name in ANCHOR_FEATURES:
        assert anchor[name].fillna(0).astype(bool).any(), f"{name} is zero for every ticket"
    hand_made = anchor.set_index("ticket_id").loc[["X1", "X2"]]
    assert hand_made["first_reply_minutes"].isna().tolist() == [True, False]
    assert hand_made["ping_pong_count"].tolist() == [0, 2] and hand_made["reopens"].tolist() == [0, 1]
    assert hand_made["group_hops"].tolist() == [0, 1] and (hand_made["current_wait_minutes"] > 0).all()
    assert hand_made["last_message_question_marks"].tolist() == [1, 1]
    assert hand_made["customer_exclamations"].tolist() == [2, 2]


def test_the_streaming_engine_gives_the_in_memory_result(raw_export):
    streamed = anchor_features(raw_export, 4000)
    in_memory = anchor_features(raw_export, 4000, streaming=False)
    assert streamed.equals(in_memory)
