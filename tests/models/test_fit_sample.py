"""train.max_tickets_per_model: big exports fit on a fixed sample of whole tickets; evaluate sees them all."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from models.dataset import FitSample, build_training_data
from models.target import Target
from pipeline.sources.ingest import load_export
from pipeline.stages.train import train
from tests.conftest import override


def _ids(n: int) -> np.ndarray:
    return np.array([f"T{i}" for i in range(n)], dtype=object)


def test_every_ticket_is_kept_within_the_cap_or_without_one():
    ids = _ids(50)
    assert FitSample(50, {"risk_model": 50}).keeps("risk_model", ids).all()
    assert FitSample(None, {"risk_model": 10**9}).keeps("risk_model", ids).all()


def test_about_the_cap_is_kept_the_same_tickets_whatever_their_order_and_more_with_a_larger_cap():
    ids = _ids(20000)
    small, large = FitSample(4000, {"risk_model": 20000}), FitSample(10000, {"risk_model": 20000})
    kept = small.keeps("risk_model", ids)
    assert abs(kept.sum() - 4000) < 4 * np.sqrt(20000 * 0.2 * 0.8)  # binomial: 4 sd
    order = np.random.default_rng(3).permutation(len(ids))
    assert (small.keeps("risk_model", ids[order]) == kept[order]).all()
    assert not (kept & ~large.keeps("risk_model", ids)).any()  # a larger cap keeps a superset
    # Any piece of a partitioned export decides alone, the same way as the whole export.
    assert (np.concatenate([small.keeps("risk_model", ids[:7000]), small.keeps("risk_model", ids[7000:])]) == kept).all()


def test_the_sample_ignores_time_so_every_period_keeps_its_share():
    ids = _ids(20000)
    kept = FitSample(4000, {"risk_model": 20000}).keeps("risk_model", ids)
    oldest = np.arange(len(ids)) < 11000  # tickets numbered in creation order: 55 % are the oldest
    assert abs(kept[oldest].mean() / kept.mean() - 1) < 0.05


@pytest.fixture(scope="module")
def loaded(demo):
    export = load_export(demo.export_dir, demo.params.ingest)
    return export, Target.from_params(demo.params.target)


def test_a_sampled_ticket_keeps_every_snapshot_row_and_the_periods_stay_those_of_every_label(loaded, demo):
    export, target = loaded
    full = build_training_data(export.tickets, export.events, target, demo.params)
    labelled = int(target.labels(export.tickets).notna().sum())
    sample = FitSample.of(export.tickets, target, labelled // 2)
    part = build_training_data(export.tickets, export.events, target, demo.params, sample=sample)
    assert full.sampled == {}
    assert part.boundaries == full.boundaries  # periods from every labelled ticket, not from the sample
    kept = set(part.risk["ticket_id"])
    assert set(full.risk["ticket_id"]) > kept
    assert part.sampled["risk_model"] == {"tickets": len(kept), "of_tickets": full.risk["ticket_id"].nunique()}
    in_full = full.risk[full.risk["ticket_id"].isin(kept)].reset_index(drop=True)
    pd.testing.assert_frame_equal(part.risk, in_full)  # same rows, features, weights, periods
    assert set(part.urgency["ticket_id"]) < set(full.urgency["ticket_id"])
    expected = len(full.urgency) * (labelled // 2) / sample.tickets["urgency_model"]
    assert abs(len(part.urgency) - expected) < 4 * np.sqrt(expected)


def test_train_records_and_reports_the_sample(demo, tmp_path):
    params = override(demo.params, {"train": {"max_tickets_per_model": 1000}})
    lines: list[str] = []
    result = train(demo.export_dir, tmp_path / "m", params=params, echo=lines.append)
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    full = json.loads((demo.model_dir / "model.json").read_text())

    urgency = meta["fit_sample"]["sampled"]["urgency_model"]
    assert urgency["of_tickets"] == full["counts"]["urgency_rows"] > urgency["tickets"] == result.urgency_rows
    assert any(f"urgency model fitted on {urgency['tickets']:,} of" in line for line in lines)
    assert full["fit_sample"] == {"max_tickets_per_model": 100_000, "sampled": {}}
