"""The nightly scoring run on a simulated export: ranking, columns, reasons, idempotence, failures, lock, payload."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.build import build_features, latest_timestamp
from features.calendar import BusinessHours
from models.reasons import CONTEXT_FEATURES, reason_catalogue, reason_phrases
from models.store import URGENCY_LEVELS, TriageModel
from pipeline.core import contract
from pipeline.core.errors import ExportError
from pipeline.sinks.writeback import read_queue, read_runs
from pipeline.sources.ingest import load_export
from pipeline.stages.score import ScoringLockedError, score, scoring_lock
from tests.conftest import override
from tests.models.conftest import demo_model

FIXED_COLUMNS = [
    "ticket_id", "p_bad", "risk", "urgency", "p_urgent", "priority_score", "rank", "tier", "reasons",
    "model_version", "scored_at",
]


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    return demo_model(tmp_path_factory)


def run(demo, out, **kwargs):
    """``score`` on the demo export and model, quietly."""
    kwargs.setdefault("params", demo.params)
    kwargs.setdefault("model_dir", demo.model_dir)
    return score(demo.export_dir, out, echo=lambda line: None, **kwargs)


def read_scored(path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"ticket_id": str}, keep_default_na=False, na_values=[""])


@pytest.fixture(scope="module")
def export(demo):
    return load_export(demo.export_dir)


@pytest.fixture(scope="module")
def scored(demo, tmp_path_factory):
    """One scoring run: (result, file contents, database URL)."""
    out = tmp_path_factory.mktemp("scored") / "priorities.csv"
    db = f"sqlite:///{out.parent / 'queue.sqlite'}"
    result = run(demo, out, db_url=db)
    return result, read_scored(out), db


@pytest.fixture
def last_night(scored, tmp_path):
    """``tmp_path`` holding a finished run's ``priorities.csv`` and ``queue.sqlite`` (copied, not re-scored)."""
    _, _, db = scored
    source = Path(db.removeprefix("sqlite:///")).parent
    for name in ("priorities.csv", "queue.sqlite"):
        shutil.copy2(source / name, tmp_path / name)
    return tmp_path / "priorities.csv", f"sqlite:///{tmp_path / 'queue.sqlite'}"


@pytest.fixture(scope="module")
def features_at_export_time(demo, export):
    hours = BusinessHours.from_params(demo.params.business_hours)
    return build_features(export.tickets, export.events, None, hours).set_index("ticket_id")


def test_columns_start_with_the_fixed_names(scored):
    _, table, _ = scored
    assert list(table.columns[: len(FIXED_COLUMNS)]) == FIXED_COLUMNS


def test_file_is_sorted_by_rank_and_rank_follows_priority_score(scored, export):
    _, table, _ = scored
    assert table["rank"].tolist() == list(range(1, len(table) + 1))
    assert table.loc[0, "priority_score"] == table["priority_score"].max()
    assert (np.diff(table["priority_score"].to_numpy()) <= 0).all()
    # Equal scores: the older ticket first, then the smaller ticket id.
    created = table["ticket_id"].map(export.tickets.set_index("ticket_id")["created_at"])
    for _, tied in table.assign(created=created).groupby("priority_score"):
        if len(tied) > 1:
            keys = list(zip(tied["created"], tied["ticket_id"]))
            assert keys == sorted(keys)


def test_values_are_consistent(scored, demo):
    result, table, _ = scored
    # risk is the rounded percentage of the (unrounded) p_bad the file shows to 4 decimals.
    assert (np.abs(table["risk"] - 100 * table["p_bad"]) <= 0.5 + 0.005).all()
    assert table["p_bad"].between(0, 1).all() and table["p_urgent"].between(0, 1).all()
    # 0-100 within sla_cap x the reply target; the SLA tail lifts long-overdue tickets above 100.
    assert (table["priority_score"] >= 0).all()
    assert table["urgency"].isin(URGENCY_LEVELS).all()
    tiers = demo.params.policy.tiers.model_dump()
    expected_tier = np.select(
        [table["priority_score"] >= tiers["P1"], table["priority_score"] >= tiers["P2"],
         table["priority_score"] >= tiers["P3"]], ["P1", "P2", "P3"], default="P4")
    assert table["tier"].tolist() == expected_tier.tolist()
    assert set(table["model_version"]) == {TriageModel.load(demo.model_dir).version}
    assert result.scored["ticket_id"].tolist() == table["ticket_id"].tolist()


def test_scored_at_is_the_export_time(scored, export):
    _, table, _ = scored
    assert set(table["scored_at"]) == {latest_timestamp(export.tickets, export.events).isoformat()}


def test_only_open_tickets(scored, export):
    _, table, _ = scored
    is_open = ~export.tickets["status"].isin(contract.DONE_STATUSES)
    assert sorted(table["ticket_id"]) == sorted(export.tickets.loc[is_open, "ticket_id"])
    assert len(table) > 20


def test_reasons_quote_the_tickets_own_values(scored, features_at_export_time, demo):
    _, table, _ = scored
    model = TriageModel.load(demo.model_dir)
    features = features_at_export_time.loc[table["ticket_id"]].reset_index()
    if getattr(model, "text_model", None) is not None:  # learned text scores are model inputs too
        features = model.text_model.add_scores(features)
    # Every reason is the phrase of one of the model's reason features for this very ticket,
    # compared with the same population: tonight's scored tickets.
    phrases = reason_phrases(features, demo.params.reasons.language,
                             reason_catalogue(model.meta.get("attributes", {})))
    reason_features = [name for name in model.meta["risk_features"] if name in phrases]
    assert not set(reason_features) & CONTEXT_FEATURES
    with_reasons = 0
    for row, reasons in enumerate(table["reasons"].fillna("")):
        parts = [p for p in reasons.split("; ") if p]
        assert len(parts) <= demo.params.reasons.max_reasons
        options = {phrases.loc[row, name] for name in reason_features} - {""}
        assert set(parts) <= options, (table["ticket_id"].iloc[row], parts)
        assert all(" — " in part for part in parts)  # a value and a comparison
        with_reasons += bool(parts)
    assert with_reasons > len(table[table["tier"] != "P4"]) // 2
    assert (table.loc[table["tier"] == "P4", "reasons"].fillna("") == "").all()


def test_no_reason_is_context(scored):
    _, table, _ = scored
    reasons = table["reasons"].fillna("")
    for context in ("came in by", "created at", "created on", "characters", "in group", "open for"):
        assert not reasons.str.contains(context).any(), context


def expected_duration_matches(number: int, unit: str, minutes: float) -> bool:
    """"45 min" under 90 minutes, "26 h" under 48 hours, else "3 days" (worked out independently)."""
    if unit == "min":
        return minutes < 90 and number == round(minutes)
    if unit == "h":
        return 90 <= minutes < 48 * 60 and number == round(minutes / 60)
    return minutes >= 48 * 60 and number == round(minutes / 1440)


@pytest.mark.parametrize("pattern, feature", [
    (r"customer waiting (\d+) (min|h|days) for a reply", "current_wait_minutes"),
    (r"customer has waited (\d+) (min|h|days) in total", "requester_wait_minutes"),
])
def test_waiting_reasons_show_the_tickets_wait(scored, features_at_export_time, pattern, feature):
    _, table, _ = scored
    minutes = features_at_export_time.loc[table["ticket_id"], feature].to_numpy()
    mentions = table["reasons"].fillna("").str.extract(pattern).dropna()
    for row in mentions.index:
        number, unit = int(mentions.loc[row, 0]), mentions.loc[row, 1]
        assert expected_duration_matches(number, unit, minutes[row]), (table["ticket_id"].iloc[row], minutes[row])


def test_some_reasons_talk_about_waiting(scored, features_at_export_time):
    _, table, _ = scored
    assert table["reasons"].fillna("").str.contains("waiting|waited").sum() >= 3
    wait = features_at_export_time.loc[table["ticket_id"], "current_wait_minutes"].to_numpy()
    assert np.allclose(table["current_wait_minutes"], np.round(wait, 1))


def test_same_export_twice_gives_identical_outputs(demo, last_night):
    out, db = last_night
    first_bytes, first_queue = out.read_bytes(), read_queue(db)
    run(demo, out, db_url=db)
    assert out.read_bytes() == first_bytes
    assert read_queue(db).equals(first_queue)
    runs = read_runs(db)
    assert len(runs) == 2
    assert runs["tickets_scored"].tolist() == [len(first_queue)] * 2
    assert runs["export_fingerprint"].nunique() == 1 and runs["model_version"].nunique() == 1


def test_default_database_is_beside_the_file(demo, tmp_path):
    result = run(demo, tmp_path / "out" / "priorities.parquet")
    assert result.database_url == f"sqlite:///{(tmp_path / 'out' / 'priorities.sqlite').resolve()}"
    queue = read_queue(result.database_url)
    table = pd.read_parquet(tmp_path / "out" / "priorities.parquet")
    assert queue["ticket_id"].tolist() == table["ticket_id"].tolist()


def corrupt_events_missing_column(demo, export_dir, model_dir, options):
    events = pd.read_csv(export_dir / "events.csv", dtype=str, keep_default_na=False)
    events.drop(columns=["actor"]).to_csv(export_dir / "events.csv", index=False)
    return "missing required column 'actor'"


def corrupt_events_reject_rate(demo, export_dir, model_dir, options):
    with open(export_dir / "events.csv", "a") as handle:
        handle.write(f"{pd.read_csv(export_dir / 'tickets.csv', dtype=str)['ticket_id'].iloc[0]},"
                     "2026-03-01T10:00:00Z,robot,message,,hello\n")
    return "rows rejected"


def mismatched_model(demo, export_dir, model_dir, options):
    meta = json.loads((model_dir / "model.json").read_text())
    meta["risk_features"] = meta["risk_features"] + ["no_such_feature"]
    (model_dir / "model.json").write_text(json.dumps(meta))
    return "no_such_feature"


def bad_as_of(demo, export_dir, model_dir, options):
    options["as_of"] = "not a time"
    return "--as-of 'not a time' is not an ISO-8601 timestamp"


@pytest.mark.parametrize("spoil", [corrupt_events_missing_column, corrupt_events_reject_rate, mismatched_model,
                                   bad_as_of])
def test_failed_run_leaves_file_and_database_untouched(demo, tmp_path, last_night, spoil):
    export_dir, model_dir = tmp_path / "export", tmp_path / "model"
    shutil.copytree(demo.export_dir, export_dir)
    shutil.copytree(demo.model_dir, model_dir)
    out, db = last_night
    before = out.read_bytes(), read_queue(db), read_runs(db)
    assert len(before[1]) > 20 and len(before[2]) == 1

    options = {}
    expected = spoil(demo, export_dir, model_dir, options)
    with pytest.raises(ExportError) as caught:
        score(export_dir, out, model_dir=model_dir, db_url=db, params=demo.params, as_of=options.get("as_of"),
              echo=lambda line: None)
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)
    assert out.read_bytes() == before[0]
    assert read_queue(db).equals(before[1])
    assert read_runs(db).equals(before[2])
    # No temporary file left behind (the lock file stays, empty, by design).
    left = sorted(p.name for p in tmp_path.iterdir() if p.name != ".priorities.csv.lock")
    assert left == ["export", "model", "priorities.csv", "queue.sqlite"]


def test_failed_zendesk_payload_leaves_the_database_untouched(demo, tmp_path, last_night):
    out, db = last_night
    before = out.read_bytes(), read_queue(db), read_runs(db)
    params = override(demo.params, {"zendesk": {"risk_bands": {}}})
    with pytest.raises(ExportError, match="risk_bands is empty"):
        run(demo, out, db_url=db, params=params, zendesk_payload=tmp_path / "zendesk.json")
    assert out.read_bytes() == before[0]
    assert read_queue(db).equals(before[1])
    assert read_runs(db).equals(before[2])
    assert not (tmp_path / "zendesk.json").exists()


def test_export_with_no_open_ticket_gives_an_empty_queue(demo, tmp_path, last_night):
    out, db = last_night
    runs_before = len(read_runs(db))
    export_dir = tmp_path / "export"
    shutil.copytree(demo.export_dir, export_dir)
    tickets = pd.read_csv(export_dir / "tickets.csv", dtype=str, keep_default_na=False)
    events = pd.read_csv(export_dir / "events.csv", dtype=str, keep_default_na=False)
    # Close every ticket at the export's last moment, in the events and in the tickets table.
    last = events["at"].max()
    closing = pd.DataFrame({"ticket_id": tickets["ticket_id"], "at": last, "actor": "system",
                            "kind": "status", "value": "closed", "body": ""})
    pd.concat([events, closing], ignore_index=True).to_csv(export_dir / "events.csv", index=False)
    tickets.assign(status="closed").to_csv(export_dir / "tickets.csv", index=False)

    result = score(export_dir, out, model_dir=demo.model_dir, db_url=db, params=demo.params, echo=lambda _: None)
    assert result.scored.empty
    assert out.read_text().splitlines() == [",".join(FIXED_COLUMNS + ["group", "assignee", "current_wait_minutes",
                                                                      "target"])]
    assert read_queue(db).empty
    assert len(read_runs(db)) == runs_before + 1
    assert read_runs(db)["tickets_scored"].iloc[-1] == 0


def test_a_second_run_waits_for_no_lock(demo, tmp_path):
    out = tmp_path / "priorities.csv"
    with scoring_lock(out):
        with pytest.raises(ScoringLockedError, match="another scoring run is writing it"):
            run(demo, out, db_url="")
    assert not out.exists()
    run(demo, out, db_url="")  # the lock is released with the first run
    assert out.exists()


def test_a_model_directory_without_champion_is_refused(demo, tmp_path):
    marker_dir = tmp_path / "champion"
    marker_dir.mkdir()
    (marker_dir / "NO_CHAMPION.json").write_text('{"reason": "no credible skill"}')
    with pytest.raises(ExportError, match="no champion model to score with"):
        run(demo, tmp_path / "priorities.csv", model_dir=marker_dir, db_url="")
    assert not (tmp_path / "priorities.csv").exists()


def test_scoring_as_of_a_past_moment_judges_open_tickets_then(demo, export, tmp_path):
    as_of = pd.Timestamp(latest_timestamp(export.tickets, export.events)) - pd.Timedelta(days=20)
    result = run(demo, tmp_path / "past.csv", db_url="", as_of=as_of.isoformat())
    at_that_time = build_features(export.tickets, export.events, as_of).set_index("ticket_id")
    statuses = at_that_time.loc[result.scored["ticket_id"], "status_now"].astype(str)
    assert len(result.scored) > 0
    assert not statuses.isin(contract.DONE_STATUSES).any()
    # Tickets solved since then but open at that moment are in the queue.
    assert (export.tickets.set_index("ticket_id").loc[result.scored["ticket_id"], "status"]
            .isin(contract.DONE_STATUSES).any())


def test_zendesk_payload_batches_and_shape(demo, export, tmp_path):
    path = tmp_path / "zendesk.json"
    result = run(demo, tmp_path / "priorities.csv", db_url="", all_tickets=True, zendesk_payload=path)
    payload = json.loads(path.read_text())
    scored = result.scored
    assert len(scored) == len(export.tickets)  # open and closed
    batches = payload["batches"]
    assert payload["format"] == "csat-triage.zendesk-update-many.v1"
    assert payload["ticket_count"] == len(scored) == sum(len(b["tickets"]) for b in batches)
    assert payload["batch_count"] == len(batches) == -(-len(scored) // 100)
    assert all(0 < len(b["tickets"]) <= 100 for b in batches)
    assert payload["model_version"] == scored["model_version"].iloc[0]

    zendesk = demo.params.zendesk
    tickets = [t for b in batches for t in b["tickets"]]
    assert [t["id"] for t in tickets] == [int(i) for i in scored["ticket_id"]]  # rank order
    bands = sorted(zendesk.risk_bands.items(), key=lambda kv: -kv[1])
    for ticket, (_, row) in zip(tickets, scored.iterrows()):
        assert set(ticket) == {"id", "custom_fields", "additional_tags", "remove_tags", "metadata"}
        assert ticket["custom_fields"] == [{"id": zendesk.risk_field_id, "value": int(row["risk"])}]
        band = next(name for name, minimum in bands if row["risk"] >= minimum)
        prefix = zendesk.tag_prefix
        assert ticket["additional_tags"] == [f"{prefix}risk_{band}", f"{prefix}{row['tier'].lower()}"]
        assert not set(ticket["additional_tags"]) & set(ticket["remove_tags"])
        assert len(ticket["remove_tags"]) == len(bands) - 1 + 3
        assert ticket["metadata"] == {"csat_triage": {"model_version": row["model_version"]}}
