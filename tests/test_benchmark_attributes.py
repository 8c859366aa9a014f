"""The benchmark exports' extra attributes (run: .venv/bin/pytest -q benchmarks/test_attributes.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmarks.attributes import NAMES, with_benchmark_attributes
from features.build import build_features
from pipeline.core import contract
from pipeline.sources.simulator import simulate

SIMULATOR_ATTRIBUTES = {"form", "product_area", "customer_plan", "order_value_usd"}


@pytest.fixture(scope="module")
def export() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    simulation = simulate(400, 3)
    return simulation.tickets, simulation.events, with_benchmark_attributes(simulation.tickets, simulation.events, 3)


def test_ten_attributes_and_the_original_events_untouched(export):
    tickets, before, after = export
    fields = set(after.loc[after["kind"] == contract.FIELD_EVENT, "field"])
    assert fields == SIMULATOR_ATTRIBUTES | set(NAMES)
    added = after["kind"].eq(contract.FIELD_EVENT) & after["field"].isin(NAMES)
    kept = after[~added].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, before.reset_index(drop=True), check_dtype=True)
    assert list(after.columns) == list(before.columns)


def test_sorted_by_ticket_and_second_and_inside_each_tickets_life(export):
    tickets, before, after = export
    code = pd.Index(tickets["ticket_id"]).get_indexer(after["ticket_id"])
    seconds = after["at"].astype("int64").to_numpy()
    assert (code >= 0).all()
    same_ticket = code[1:] == code[:-1]
    assert (np.diff(code) >= 0).all() and (np.diff(seconds)[same_ticket] >= 0).all()
    created = tickets["created_at"].astype("int64").to_numpy()[code]
    last = before.groupby("ticket_id", sort=False)["at"].max().reindex(after["ticket_id"]).astype("int64").to_numpy()
    assert (seconds >= created).all() and (seconds <= last).all()


def test_changes_clears_and_numbers(export):
    _, _, after = export
    field = after[after["kind"] == contract.FIELD_EVENT]
    per_ticket = field.groupby(["ticket_id", "field"]).size()
    assert per_ticket.xs("category", level="field").max() >= 2  # re-categorised
    assert per_ticket.xs("escalation_tier", level="field").max() == 3  # 0, then 1, then 2
    pending = field[field["field"] == "pending_reason"]
    assert (pending["value"] == "").any() and (pending["value"] != "").any()
    assert (pending.groupby("ticket_id")["value"].first() != "").all()  # set before it is cleared
    for numeric in ("escalation_tier", "account_value_usd"):
        assert pd.to_numeric(field.loc[field["field"] == numeric, "value"], errors="coerce").notna().all()


def test_featurize_sees_ten_attribute_columns(export):
    tickets, _, after = export
    table = build_features(tickets, after)
    attributes = [c for c in table.columns if c.startswith(contract.ATTRIBUTE_PREFIX)]
    assert len(attributes) == 10
    # Cleared at the export for most tickets that had a pending reason: missing, not "".
    assert table["attr_pending_reason"].isna().mean() > 0.5
    assert "" not in set(table["attr_pending_reason"].dropna())
