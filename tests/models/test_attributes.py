"""Attributes as features end to end: a per-ticket table whose only signal is its attributes.

The generated desk has no text and no priorities: tickets open, get one agent reply and
are solved; the bad-rating probability depends on the product area (one area is broken),
on a numeric ``seats`` attribute and on whether the customer is re-categorised to
``billing`` during the ticket's life (a later field event). Out of time, the model with
attributes must rank clearly better than the same data without them, and scoring an export
that lacks an attribute must give missing values, not an error.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from features.build import build_features
from models.metrics import ranking_metrics
from models.scoring import score_tickets
from models.store import OTHER_LEVEL, TriageModel
from pipeline.core.io import write_export
from pipeline.core.params import load_params
from pipeline.sources.ingest import load_export
from pipeline.stages.train import train
from tests.conftest import override
from tests.models.conftest import REPO_ROOT

PRODUCTS = np.array(["billing", "shipping", "account", "broken_checkout", "rare_product"])


def attribute_desk(n: int = 3000, seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2026-01-05T08:00:00Z")
    created = start + pd.to_timedelta(np.sort(rng.uniform(0, 90 * 86400, n)), unit="s")
    ids = np.array([f"A{i}" for i in range(n)], dtype=object)
    product = PRODUCTS[rng.choice(5, n, p=[0.3, 0.3, 0.255, 0.14, 0.005])]
    seats = rng.integers(1, 200, n)
    moved = rng.random(n) < 0.3  # re-categorised to billing a few hours in
    reply = created + pd.to_timedelta(rng.uniform(600, 7200, n), unit="s")
    solved = reply + pd.to_timedelta(rng.uniform(3600, 86400, n), unit="s")
    logit = -1.6 + 2.2 * (product == "broken_checkout") + 0.012 * (seats - 100) + 1.0 * moved
    bad = rng.random(n) < 1 / (1 + np.exp(-logit))
    rated = solved + pd.Timedelta(hours=2)
    tickets = pd.DataFrame({
        "ticket_id": ids, "created_at": created, "channel": "email", "status": "solved",
        "requester_id": [f"R{i}" for i in range(n)], "satisfaction": np.where(bad, "bad", "good"),
        "satisfaction_at": rated,
    })
    def events_of(at, actor, kind, value, field=None):
        return pd.DataFrame({"ticket_id": ids, "at": at, "actor": actor, "kind": kind, "value": value,
                             "body": "", "field": field})
    move_at = created + pd.Timedelta(hours=1)
    events = pd.concat([
        events_of(created, "system", "status", "open"),
        events_of(created, "system", "field", product, "Product Area"),
        events_of(created, "system", "field", seats.astype(str), "seats"),
        events_of(reply, "agent", "message", None),
        events_of(move_at, "agent", "field", "billing", "product area")[moved & (move_at < solved)],
        events_of(solved, "agent", "status", "solved"),
    ], ignore_index=True)
    return tickets, events.sort_values("at", kind="stable", ignore_index=True)


@pytest.fixture(scope="module")
def desk(tmp_path_factory):
    root = tmp_path_factory.mktemp("attribute_desk")
    tickets, events = attribute_desk()
    write_export(root / "export", tickets, events)
    return root


def _params(**attributes):
    params = load_params(REPO_ROOT / "params.yaml")
    return override(params, {
        "risk_model": {"learning_rate": 0.1, "early_stopping_rounds": 20, "max_rounds": 200},
        "attributes": attributes,
    })


def _test_auc(model_dir, export_dir) -> float:
    model = TriageModel.load(model_dir).heldout()
    export = load_export(export_dir)
    test_start = pd.Timestamp(model.meta["period_starts"]["test"])
    tickets = export.tickets
    test = tickets[tickets["created_at"] >= test_start]
    # Each test ticket half an hour after its creation: only the opening attributes are known.
    queries = pd.DataFrame({"ticket_id": test["ticket_id"], "as_of": test["created_at"] + pd.Timedelta(minutes=30)})
    features = build_features(tickets, export.events, queries, static_attributes=model.static_attributes)
    y = (test["satisfaction"] == "bad").to_numpy(dtype=float)
    return ranking_metrics(model.predict_risk(features), y, np.ones(len(y)))["roc_auc"]


def test_attributes_raise_the_out_of_time_auc(desk, tmp_path):
    export = desk / "export"
    train(export, tmp_path / "with", params=_params(), echo=lambda _: None)
    train(export, tmp_path / "without", params=_params(exclude=["product_area", "seats"]), echo=lambda _: None)
    meta = json.loads((tmp_path / "with" / "model.json").read_text())
    assert meta["attributes"] == {"attr_product_area": "category", "attr_seats": "number"}
    levels = meta["categorical_levels"]["attr_product_area"]
    # rare_product (0.5 % of tickets, ~8 in training) is below min_level_count (20 tickets): pooled.
    assert "rare_product" not in levels and levels[-1] == OTHER_LEVEL and "broken_checkout" in levels
    without = json.loads((tmp_path / "without" / "model.json").read_text())
    assert not [f for f in without["risk_features"] if f.startswith("attr_")]
    with_auc, without_auc = _test_auc(tmp_path / "with", export), _test_auc(tmp_path / "without", export)
    assert with_auc > without_auc + 0.1, (with_auc, without_auc)


def test_scoring_an_export_without_an_attribute_gives_missing_values(desk, tmp_path):
    train(desk / "export", tmp_path / "model", params=_params(), echo=lambda _: None)
    model = TriageModel.load(tmp_path / "model")
    tickets, events = attribute_desk(n=300, seed=9)
    tickets["status"] = "open"
    events = events[~((events["kind"] == "field") & (events["field"] == "seats"))]
    events = events[events["kind"].isin(["status", "field"]) & (events["value"] != "solved")]
    write_export(tmp_path / "tonight", tickets.assign(satisfaction=None, satisfaction_at=pd.NaT), events)
    tonight = load_export(tmp_path / "tonight")
    queue = score_tickets(model, tonight.tickets, tonight.events, tonight.events["at"].max(), _params())
    assert len(queue) == 300
    assert queue["p_bad"].between(0, 1).all()
    matrix = model.risk_matrix(build_features(tonight.tickets, tonight.events))
    assert matrix["attr_seats"].isna().all()
    assert matrix["attr_product_area"].notna().all()


def test_a_static_attribute_is_read_from_the_ticket_row_only_when_listed(desk, tmp_path):
    tickets, events = attribute_desk(n=1500, seed=4)
    tickets["plan"] = np.where(np.arange(len(tickets)) % 2 == 0, "free", "enterprise")
    write_export(tmp_path / "export", tickets, events)
    train(tmp_path / "export", tmp_path / "plain", params=_params(), echo=lambda _: None)
    train(tmp_path / "export", tmp_path / "static", params=_params(static=["plan"]), echo=lambda _: None)
    assert "attr_plan" not in json.loads((tmp_path / "plain" / "model.json").read_text())["risk_features"]
    meta = json.loads((tmp_path / "static" / "model.json").read_text())
    assert "attr_plan" in meta["risk_features"] and meta["static_attributes"] == ["plan"]


def test_attributes_the_priority_is_computed_from_stay_out_of_the_urgency_model(desk, tmp_path):
    train(desk / "export", tmp_path / "model", params=_params(exclude_from_urgency=["seats"]), echo=lambda _: None)
    meta = json.loads((tmp_path / "model" / "model.json").read_text())
    assert "attr_seats" in meta["risk_features"]
    assert "attr_seats" not in meta["urgency_features"] and "attr_product_area" in meta["urgency_features"]
    assert "attr_product_area" in meta["risk_features"]
