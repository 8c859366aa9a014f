"""Tests of the support-desk simulator: contract shape, invariants, determinism, realism bands."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.core import contract
from pipeline.core.errors import ExportError
from pipeline.core.io import read_raw_table
from pipeline.sources.ingest import load_export
from pipeline.sources.simulator import Simulation, simulate, simulate_export, simulate_later
from pipeline.sources.simulator.assembly import _event_order, _ticket_ids
from pipeline.sources.simulator.behaviour import HOUR_S
from pipeline.sources.simulator.engine import _Clock

N_TICKETS = 8000
DAYS = 60
ATTRIBUTES = {"form", "product_area", "customer_plan", "order_value_usd"}


@pytest.fixture(scope="module")
def sim() -> Simulation:
    return simulate(N_TICKETS, seed=11, days=DAYS)


@pytest.fixture(scope="module")
def status_events(sim: Simulation) -> pd.DataFrame:
    return sim.events[sim.events["kind"] == "status"]


# --- shape of the export ---------------------------------------------------------------
def test_tables_have_contract_columns_and_types(sim: Simulation) -> None:
    assert tuple(sim.tickets.columns) == (*contract.TICKET_COLUMNS, "organization")
    assert tuple(sim.events.columns) == contract.EVENT_COLUMNS
    assert list(sim.truth.columns) == ["ticket_id", "p_bad_true", "urgency_true"]
    for frame, column in ((sim.tickets, "created_at"), (sim.tickets, "satisfaction_at"), (sim.events, "at")):
        assert str(frame[column].dtype) == "datetime64[us, UTC]"
    assert sim.export_at == pd.Timestamp("2026-01-05", tz="UTC") + pd.Timedelta(days=DAYS)
    assert len(sim.tickets) == len(sim.truth) == N_TICKETS


def test_ids_are_numeric_strings_of_one_width(sim: Simulation) -> None:
    ids = sim.tickets["ticket_id"]
    assert ids.is_unique
    assert ids.iloc[0] == "100001" and ids.iloc[-1] == str(100000 + N_TICKETS)
    assert ids.str.fullmatch(r"\d{6}").all()
    assert sim.tickets["requester_id"].str.fullmatch(r"5\d{6}").all()
    assert (sim.truth["ticket_id"] == ids).all()


def test_ticket_id_width_grows_for_a_million_tickets() -> None:
    assert _ticket_ids(3).to_pylist() == ["100001", "100002", "100003"]
    big = _ticket_ids(1_000_000)
    assert big[0].as_py() == "10000001" and big[len(big) - 1].as_py() == "11000000"


def test_values_are_in_contract_vocabularies(sim: Simulation) -> None:
    events, tickets = sim.events, sim.tickets
    assert set(events["actor"]) <= set(contract.ACTORS)
    assert set(events["kind"]) == set(contract.EVENT_KINDS)
    for kind, allowed in (("status", contract.STATUSES), ("priority", contract.PRIORITIES)):
        assert set(events.loc[events["kind"] == kind, "value"]) <= set(allowed)
    assert (events.loc[events["kind"].isin(["message", "note"]), "value"] == "").all()
    is_field = events["kind"] == contract.FIELD_EVENT
    assert set(events.loc[is_field, "field"]) == ATTRIBUTES
    assert (events.loc[~is_field, "field"] == "").all()
    # Names are already in the one spelling ingest gives them (the features are attr_<name>).
    assert (contract.attribute_names(events.loc[is_field, "field"]) == events.loc[is_field, "field"]).all()
    assert (events.loc[events["kind"] == "message", "body"] != "").all()
    assert set(tickets["status"]) <= set(contract.STATUSES)
    assert set(tickets["priority"]) <= set(contract.PRIORITIES) | {""}
    assert set(tickets["satisfaction"]) <= set(contract.SATISFACTION_VALUES)
    assert set(tickets["channel"]) == {"email", "web", "chat", "phone", "social"}
    assert set(sim.truth["urgency_true"]) == set(contract.PRIORITIES)
    assert sim.truth["p_bad_true"].between(0, 1).all()


# --- invariants -----------------------------------------------------------------------------
def test_events_belong_to_tickets_and_lie_between_creation_and_export(sim: Simulation) -> None:
    created = sim.tickets.set_index("ticket_id")["created_at"]
    assert sim.events["ticket_id"].isin(created.index).all()
    assert (sim.events["at"] >= created.reindex(sim.events["ticket_id"]).to_numpy()).all()
    assert (sim.events["at"] <= sim.export_at).all()
    assert (sim.tickets["created_at"] < sim.export_at).all()


def test_events_are_sorted_by_ticket_then_time(sim: Simulation) -> None:
    resorted = sim.events.sort_values(["ticket_id", "at"], kind="stable")
    assert (resorted.index == sim.events.index).all()


def test_every_ticket_opens_with_customer_message_then_new_status_and_routing(sim: Simulation) -> None:
    events = sim.events
    first_three = events.groupby("ticket_id", sort=False).head(3)
    position = first_three.groupby("ticket_id", sort=False).cumcount()
    assert (first_three.loc[position == 0, ["actor", "kind"]].to_numpy() == ["customer", "message"]).all()
    assert (first_three.loc[position == 1, ["actor", "kind", "value"]].to_numpy() == ["system", "status", "new"]).all()
    assert (first_three.loc[position == 2, ["actor", "kind"]].to_numpy() == ["system", "group"]).all()
    opening_at = first_three.loc[position == 0].set_index("ticket_id")["at"]
    assert (opening_at == sim.tickets.set_index("ticket_id")["created_at"]).all()


def test_ticket_fields_are_the_last_event_values_at_export(sim: Simulation) -> None:
    tickets = sim.tickets.set_index("ticket_id")
    for kind, column in (("status", "status"), ("group", "group"), ("assignee", "assignee"),
                         ("priority", "priority")):
        last = sim.events[sim.events["kind"] == kind].groupby("ticket_id")["value"].last()
        expected = last.reindex(tickets.index).fillna("")
        assert (tickets[column] == expected).all(), column


def test_ratings_only_on_solved_tickets_after_the_solve(sim: Simulation, status_events: pd.DataFrame) -> None:
    tickets = sim.tickets.set_index("ticket_id")
    rated = tickets["satisfaction"].isin(contract.SATISFACTION_LABELS)
    assert tickets.loc[rated, "status"].isin(contract.DONE_STATUSES).all()
    assert tickets.loc[rated, "satisfaction_at"].notna().all()
    assert tickets.loc[~rated, "satisfaction_at"].isna().all()
    last_solve = status_events[status_events["value"] == "solved"].groupby("ticket_id")["at"].max()
    assert (tickets.loc[rated, "satisfaction_at"] > last_solve.reindex(tickets.index[rated])).all()
    assert (tickets.loc[rated, "satisfaction_at"] <= sim.export_at).all()
    # Surveys go out a day after the solve, so nothing unsolved is offered either.
    offered = tickets["satisfaction"] == "offered"
    assert tickets.loc[offered, "status"].isin(contract.DONE_STATUSES).all()


def test_reopens_are_visible_in_status_events(sim: Simulation, status_events: pd.DataFrame) -> None:
    previous = status_events.groupby("ticket_id")["value"].shift()
    reopened = previous.isin(contract.DONE_STATUSES) & ~status_events["value"].isin(contract.DONE_STATUSES)
    reopened_tickets = status_events.loc[reopened, "ticket_id"].unique()
    assert 0.03 < len(reopened_tickets) / N_TICKETS < 0.2
    # A reopen is the customer writing again: a customer message in the same second.
    reopen_rows = status_events.loc[reopened, ["ticket_id", "at"]]
    customer = sim.events[(sim.events["actor"] == "customer") & (sim.events["kind"] == "message")]
    joined = reopen_rows.merge(customer[["ticket_id", "at"]], on=["ticket_id", "at"], how="left", indicator=True)
    assert (joined["_merge"] == "both").all()
    # Closed tickets never reopen.
    assert not (previous == "closed").any()


def test_group_hops_and_reassignments_happen_some_tickets_bounce(sim: Simulation) -> None:
    group_changes = sim.events[sim.events["kind"] == "group"].groupby("ticket_id").size() - 1
    assert 0.08 < (group_changes >= 1).mean() < 0.35
    assert (group_changes >= 2).sum() >= 20
    assert group_changes.max() <= 4


# --- attributes (field events) ---------------------------------------------------------------
@pytest.fixture(scope="module")
def field_events(sim: Simulation) -> pd.DataFrame:
    return sim.events[sim.events["kind"] == contract.FIELD_EVENT]


def test_every_ticket_has_its_form_and_plan_set_by_the_system_at_creation(sim: Simulation,
                                                                          field_events: pd.DataFrame) -> None:
    created = sim.tickets.set_index("ticket_id")["created_at"]
    for name in ("form", "customer_plan"):
        first = field_events[field_events["field"] == name].groupby("ticket_id").head(1).set_index("ticket_id")
        assert len(first) == N_TICKETS, name
        assert (first["at"] == created.reindex(first.index)).all(), name
        assert (first["actor"] == "system").all(), name
        assert (first["value"] != "").all(), name
    assert set(field_events.loc[field_events["field"] == "customer_plan", "value"]) == {"free", "pro", "enterprise"}


def test_product_area_is_picked_on_specific_forms_and_recategorised_by_the_agent(
        sim: Simulation, field_events: pd.DataFrame) -> None:
    created = sim.tickets.set_index("ticket_id")["created_at"]
    form = field_events[field_events["field"] == "form"].groupby("ticket_id")["value"].first()
    area = field_events[field_events["field"] == "product_area"]
    at_creation = (area["at"] == created.reindex(area["ticket_id"]).set_axis(area.index)).to_numpy()
    # Only a specific form asks for the area; the default form leaves it to the agent.
    assert (form.reindex(area.loc[at_creation, "ticket_id"]) != "general").all()
    assert (area.loc[at_creation, "actor"] == "system").all()
    later = area[~at_creation]
    assert (later["actor"] == "agent").all() and len(later) > 0.3 * N_TICKETS
    # The agent fixes the area when answering: in the same update as the first agent reply.
    messages = sim.events[(sim.events["actor"] == "agent") & (sim.events["kind"] == "message")]
    first_reply = messages.groupby("ticket_id")["at"].min()
    after_reply = (later["at"] - first_reply.reindex(later["ticket_id"]).set_axis(later.index)).dt.total_seconds()
    assert (after_reply == 0).all()
    changed = area.groupby("ticket_id")["value"].agg(["size", "nunique"])
    assert ((changed["size"] >= 2) & (changed["nunique"] == 2)).sum() > 0.03 * N_TICKETS


def test_plans_upgrade_during_some_tickets_and_stay_upgraded(sim: Simulation, field_events: pd.DataFrame) -> None:
    plan = field_events[field_events["field"] == "customer_plan"]
    changes = plan.groupby("ticket_id").filter(lambda rows: len(rows) >= 2)
    assert changes["ticket_id"].nunique() >= 3
    assert (changes.groupby("ticket_id")["value"].agg(tuple) == ("free", "pro")).all()
    assert (changes.groupby("ticket_id")["actor"].last() == "system").all()


def test_order_value_is_numeric_and_set_at_creation_or_added_later(field_events: pd.DataFrame) -> None:
    value = field_events.loc[field_events["field"] == "order_value_usd"]
    assert pd.to_numeric(value["value"], errors="coerce").gt(0).all()
    assert set(value["actor"]) == {"system", "agent"}


def test_organization_is_one_per_requester_and_shared_by_its_plan(sim: Simulation,
                                                                   field_events: pd.DataFrame) -> None:
    tickets = sim.tickets
    assert (tickets.groupby("requester_id")["organization"].nunique() == 1).all()
    with_org = tickets["organization"] != ""
    assert 0.25 < with_org.mean() < 0.6
    per_org = tickets.loc[with_org, "organization"].value_counts()
    assert per_org.max() < 0.1 * N_TICKETS and (per_org >= 20).sum() >= 20
    first_plan = field_events[field_events["field"] == "customer_plan"].groupby("ticket_id")["value"].first()
    plans = first_plan.reindex(tickets["ticket_id"]).to_numpy()
    # Before any upgrade, an organisation has one plan; upgrades make at most two.
    assert (pd.Series(plans[with_org]).groupby(tickets.loc[with_org, "organization"].to_numpy()).nunique() <= 2).all()


def test_attributes_move_the_true_bad_probability(sim: Simulation, field_events: pd.DataFrame) -> None:
    p_bad = sim.truth.set_index("ticket_id")["p_bad_true"]
    final_area = field_events[field_events["field"] == "product_area"].groupby("ticket_id")["value"].last()
    by_area = p_bad.groupby(final_area.reindex(p_bad.index)).mean()
    assert by_area[["mobile_app", "returns"]].min() > by_area[["web_app", "delivery"]].max() + 0.05
    # Enterprise customers are harsher on a slow first reply than free ones.
    plan = field_events[field_events["field"] == "customer_plan"].groupby("ticket_id")["value"].first()
    agent = sim.events[(sim.events["actor"] == "agent") & (sim.events["kind"] == "message")]
    created = sim.tickets.set_index("ticket_id")["created_at"]
    hours = np.log1p((agent.groupby("ticket_id")["at"].min() - created.reindex(p_bad.index)).dt.total_seconds()
                     / HOUR_S)
    logit = np.log(p_bad / (1 - p_bad))
    slope = {}
    for name in ("free", "enterprise"):
        rows = (plan.reindex(p_bad.index) == name) & hours.reindex(p_bad.index).notna()
        slope[name] = np.polyfit(hours.reindex(p_bad.index)[rows], logit[rows], 1)[0]
    assert slope["enterprise"] > slope["free"] + 0.15


def test_the_export_validates_without_rejects_or_warnings(tmp_path) -> None:
    simulate_export(tmp_path, 600, seed=9, days=20)
    result = load_export(tmp_path)
    assert result.rejected_rows == 0 and result.warnings == ()
    fields = result.events.loc[result.events["kind"] == contract.FIELD_EVENT, "field"]
    assert set(fields) == ATTRIBUTES
    assert "organization" in result.tickets.columns


# --- the same desk exported twice -------------------------------------------------------------
@pytest.fixture(scope="module")
def exports() -> tuple[Simulation, Simulation]:
    return simulate_later(3000, seed=5, days=30, later_days=10)


def test_the_first_export_is_the_later_one_cut_at_its_moment(exports: tuple[Simulation, Simulation]) -> None:
    first, later = exports
    assert later.export_at - first.export_at == pd.Timedelta(days=10)
    assert len(first.tickets) == 3000 and len(later.tickets) > 3500
    assert (first.tickets["created_at"] < first.export_at).all()
    same = later.tickets.iloc[: len(first.tickets)].reset_index(drop=True)
    for column in ("ticket_id", "created_at", "requester_id", "channel", "subject", "organization"):
        pd.testing.assert_series_equal(first.tickets[column], same[column], obj=column)
    assert (later.tickets["created_at"].iloc[len(first.tickets):] >= first.export_at).all()
    seen = later.events[later.events["ticket_id"].isin(first.tickets["ticket_id"])
                        & (later.events["at"] <= first.export_at)].reset_index(drop=True)
    pd.testing.assert_frame_equal(first.events.reset_index(drop=True), seen)
    pd.testing.assert_series_equal(first.truth["p_bad_true"], later.truth["p_bad_true"].iloc[:3000])


def test_the_first_export_has_an_open_queue_that_the_later_one_resolves(
        exports: tuple[Simulation, Simulation]) -> None:
    first, later = exports
    before = first.tickets.set_index("ticket_id")
    after = later.tickets.set_index("ticket_id").reindex(before.index)
    open_then = ~before["status"].isin(contract.DONE_STATUSES)
    assert open_then.sum() > 30
    assert after.loc[open_then, "status"].isin(contract.DONE_STATUSES).mean() > 0.5
    assert after.loc[open_then, "satisfaction"].isin(contract.SATISFACTION_LABELS).sum() >= 5
    # Ticket rows hold the values as of each export: a rating after the cut is not in the first one.
    rated_later = after["satisfaction_at"] > first.export_at
    assert rated_later.sum() > 0
    assert not before.loc[rated_later, "satisfaction"].isin(contract.SATISFACTION_LABELS).any()


def test_both_exports_are_written_and_validate_cleanly(tmp_path) -> None:
    simulate_export(tmp_path / "now", 500, seed=3, days=15, later_days=5, later_out=tmp_path / "later")
    alone = simulate_export(tmp_path / "alone", 500, seed=3, days=15, later_days=5)
    assert (tmp_path / "now" / "events.csv").read_bytes() == (tmp_path / "alone" / "events.csv").read_bytes()
    assert len(alone.tickets) == 500
    for name in ("now", "later"):
        result = load_export(tmp_path / name)
        assert result.rejected_rows == 0 and result.warnings == (), name
    assert len(pd.read_csv(tmp_path / "later" / "truth.csv")) > 500


# --- determinism -----------------------------------------------------------------------------
def test_same_seed_gives_identical_frames_and_other_seed_differs() -> None:
    first, again, other = simulate(500, 3, days=20), simulate(500, 3, days=20), simulate(500, 4, days=20)
    for name in ("tickets", "events", "truth"):
        pd.testing.assert_frame_equal(getattr(first, name), getattr(again, name))
    assert not first.events["at"].equals(other.events["at"])
    assert not first.truth["p_bad_true"].equals(other.truth["p_bad_true"])


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_files_are_byte_identical_for_the_same_seed(tmp_path, fmt: str) -> None:
    for run in ("a", "b"):
        simulate_export(tmp_path / run, 400, seed=5, days=15, fmt=fmt)
    for name in (f"tickets.{fmt}", f"events.{fmt}", "truth.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_export_round_trips_through_the_reader(tmp_path) -> None:
    simulation = simulate_export(tmp_path, 300, seed=2, days=10, fmt="csv")
    tickets = read_raw_table(tmp_path / "tickets.csv")
    events = read_raw_table(tmp_path / "events.csv")
    truth = pd.read_csv(tmp_path / "truth.csv", dtype={"ticket_id": str})
    assert len(tickets) == 300 and len(events) == len(simulation.events)
    assert tickets["ticket_id"].tolist() == simulation.tickets["ticket_id"].tolist()
    assert events["body"].tolist() == simulation.events["body"].tolist()  # newlines survive quoting
    assert events["at"].str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ").all()
    assert (pd.to_datetime(events["at"], utc=True) == simulation.events["at"].reset_index(drop=True)).all()
    assert truth["ticket_id"].tolist() == simulation.tickets["ticket_id"].tolist()


# --- realism bands -----------------------------------------------------------------------------
def test_label_share_and_bad_share_are_plausible(sim: Simulation) -> None:
    tickets = sim.tickets
    solved = tickets["status"].isin(contract.DONE_STATUSES)
    labelled = tickets["satisfaction"].isin(contract.SATISFACTION_LABELS)
    assert 0.15 <= labelled.sum() / solved.sum() <= 0.30
    assert 0.20 <= (tickets["satisfaction"] == "bad").sum() / labelled.sum() <= 0.35


def test_unhappy_customers_answer_the_survey_less_often(sim: Simulation) -> None:
    offered = sim.tickets["satisfaction"].isin(["good", "bad", "offered"])
    answered = sim.tickets["satisfaction"].isin(contract.SATISFACTION_LABELS)
    leaning_bad = sim.truth["p_bad_true"] > 0.5
    assert answered[offered & leaning_bad].mean() < answered[offered & ~leaning_bad].mean() - 0.03


def test_bad_ratings_had_slower_first_replies(sim: Simulation) -> None:
    events = sim.events
    agent_messages = events[(events["actor"] == "agent") & (events["kind"] == "message")]
    first_reply = agent_messages.groupby("ticket_id")["at"].min()
    tickets = sim.tickets.set_index("ticket_id")
    hours = (first_reply.reindex(tickets.index) - tickets["created_at"]).dt.total_seconds() / HOUR_S
    bad, good = hours[tickets["satisfaction"] == "bad"], hours[tickets["satisfaction"] == "good"]
    assert bad.mean() > 1.5 * good.mean()


def test_bad_probability_rises_with_an_earlier_bad_rating(sim: Simulation) -> None:
    tickets = sim.tickets.merge(sim.truth, on="ticket_id").sort_values(["requester_id", "created_at"])
    bad = (tickets["satisfaction"] == "bad").astype(int)
    earlier_bad = bad.groupby(tickets["requester_id"]).cumsum() - bad
    assert tickets.loc[earlier_bad > 0, "p_bad_true"].mean() > tickets.loc[earlier_bad == 0, "p_bad_true"].mean() + 0.1


def test_customers_come_back_with_a_heavy_tail(sim: Simulation) -> None:
    per_requester = sim.tickets["requester_id"].value_counts()
    repeat_share = per_requester[per_requester > 1].sum() / N_TICKETS
    assert 0.4 < repeat_share < 0.75
    assert per_requester.max() >= 15
    assert (per_requester == 1).mean() > 0.5


def test_fewer_arrivals_at_night_and_at_weekends(sim: Simulation) -> None:
    created = sim.tickets["created_at"]
    per_hour = created.dt.hour.value_counts()
    assert per_hour.loc[range(1, 5)].mean() < 0.2 * per_hour.loc[range(9, 16)].mean()
    per_day = created.dt.floor("D").value_counts()
    weekend = per_day.index.day_of_week >= 5
    assert per_day[weekend].mean() < 0.6 * per_day[~weekend].mean()


def test_chat_is_answered_faster_than_email(sim: Simulation) -> None:
    events = sim.events
    first_reply = events[(events["actor"] == "agent") & (events["kind"] == "message")].groupby("ticket_id")["at"].min()
    tickets = sim.tickets.set_index("ticket_id")
    minutes = (first_reply.reindex(tickets.index) - tickets["created_at"]).dt.total_seconds() / 60
    median = minutes.groupby(tickets["channel"]).median()
    assert median["chat"] < 30 < 4 * 60 < median["email"]


def test_urgent_wording_follows_true_urgency_but_not_perfectly(sim: Simulation) -> None:
    opening = sim.events.groupby("ticket_id", sort=False)["body"].first().reindex(sim.truth["ticket_id"])
    urgent_words = opening.str.contains("urgent|asap|immediately|emergency|긴급|급합|지금 바로", case=False)
    urgency = sim.truth["urgency_true"].to_numpy()
    assert urgent_words.to_numpy()[urgency == "urgent"].mean() > 0.4
    assert urgent_words.to_numpy()[urgency == "low"].mean() < 0.1


def test_agents_set_priority_mostly_but_not_always_right(sim: Simulation) -> None:
    first_priority = sim.events[sim.events["kind"] == "priority"].groupby("ticket_id")["value"].first()
    truth = sim.truth.set_index("ticket_id")["urgency_true"].reindex(first_priority.index)
    assert 0.70 <= (first_priority == truth).mean() <= 0.85


def test_a_share_of_customers_write_korean_and_get_korean_replies(sim: Simulation) -> None:
    messages = sim.events[sim.events["kind"] == "message"]
    hangul = messages["body"].str.contains("[가-힣]")
    opening_korean = hangul.groupby(messages["ticket_id"]).first()
    assert 0.12 < opening_korean.mean() < 0.30
    agent_korean = hangul[messages["actor"] == "agent"].groupby(messages["ticket_id"]).mean()
    assert (agent_korean == opening_korean.reindex(agent_korean.index).astype(float)).all()


def test_the_last_day_is_mostly_an_open_queue(sim: Simulation) -> None:
    tickets = sim.tickets
    last_day = tickets["created_at"] >= sim.export_at - pd.Timedelta(days=1)
    assert (~tickets.loc[last_day, "status"].isin(contract.DONE_STATUSES)).mean() > 0.5
    early = tickets["created_at"] < sim.export_at - pd.Timedelta(days=30)
    assert (tickets.loc[early, "status"] == "closed").mean() > 0.95


# --- helpers with hand-checked values ---------------------------------------------------------------
def test_business_clock_skips_thin_evening_cover() -> None:
    # Hours 0-1 at full speed, 2-5 at quarter speed: 2 effective hours after 1:00 end at 1 + 1 + 4 = 6:00.
    clock = _Clock.from_rates(np.array([1.0, 1.0, 0.25, 0.25, 0.25, 0.25, 1.0, 1.0]))
    assert clock.forward(np.array([1.5 * HOUR_S]))[0] == pytest.approx(1.5)
    assert clock.later(np.array([1.0 * HOUR_S]), np.array([2.0]))[0] == pytest.approx(6.0 * HOUR_S)


def test_event_order_breaks_same_second_ties_by_turn_position() -> None:
    ticket = np.array([1, 0, 0, 0, 1])
    second = np.array([5, 9, 9, 3, 5])
    key = np.array([2, 11, 0, 7, 1])
    assert _event_order(ticket, second, key).tolist() == [3, 2, 1, 4, 0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_tickets": 0, "seed": 1}, "--tickets"),
        ({"n_tickets": 10, "seed": -1}, "--seed"),
        ({"n_tickets": 10, "seed": 1, "days": 0}, "--days"),
        ({"n_tickets": 10, "seed": 1, "start": "not a date"}, "--start"),
        ({"n_tickets": 10, "seed": 1, "later_days": -1}, "later_days"),
    ],
)
def test_bad_arguments_raise_one_line_export_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ExportError, match=message) as error:
        simulate(**kwargs)
    assert "\n" not in str(error.value)


def test_the_stage_writes_both_exports_and_refuses_one_directory_for_both(tmp_path) -> None:
    from pipeline.core.errors import UserError
    from pipeline.core.params import SimulateParams
    from pipeline.stages.simulate import simulate_demo

    settings = SimulateParams(tickets=200, seed=1, days=10, later_days=3)
    with pytest.raises(UserError, match="--later-out"):
        simulate_demo(tmp_path / "x", settings, later_out=tmp_path / "x")
    first = simulate_demo(tmp_path / "demo", settings, "parquet", later_out=tmp_path / "demo_later")
    later = read_raw_table(tmp_path / "demo_later" / "tickets.parquet")
    assert len(first.tickets) == 200 and len(later) > 200
    assert (tmp_path / "demo_later" / "truth.csv").is_file()


def test_unknown_format_is_refused_before_simulating(tmp_path) -> None:
    with pytest.raises(ExportError, match="csv or parquet"):
        simulate_export(tmp_path, 10, seed=1, fmt="xlsx")
    assert not any(tmp_path.iterdir())


def test_tiny_runs_still_work() -> None:
    small = simulate(1, seed=0, days=1)
    assert len(small.tickets) == 1
    assert small.events["ticket_id"].eq("100001").all()
