"""Seeded, vectorised support-desk simulator: the public entry points and the export assembly.

The package is split by job: ``behaviour`` (the numbers that shape the world),
``phrases`` (text pools), ``arrivals`` (creation times, customers, organisations),
``engine`` (world, ticket profiles, conversations), ``attributes`` (field events),
``survey`` (ratings) and this module (entry points, turning buffers into contract tables).

The simulator (this package) owns the project's embedded demo data (``dvc repro`` starts here), the
data the tests build on and the benchmark inputs at 10k / 100k / 1M tickets. One
seed gives identical frames and byte-identical files.

What is simulated, in order (every step is vectorised over tickets; the only Python
loops run over agent turns (at most ~10), groups, issue types or text pools):

1. **Arrivals** over ``days`` days from ``start`` (UTC), weighted by hour of day and
   day of week (quiet nights and weekends), a mild upward trend, and a few incident
   bursts of "service down" tickets.
2. **Customers**: a requester pool with heavy-tailed (Pareto) ticket counts, a
   per-customer temperament and language (about 20 % write Korean); many write for
   an organisation (the ``organization`` ticket column), whose size sets its plan.
3. **Ticket profile**: channel, issue type, true urgency (from the issue type),
   urgent wording (correlated with urgency, not equal to it), routing (sometimes to
   the wrong group), the priority the agent sets (right about 75 % of the time,
   sometimes corrected later), rounds of conversation and reopens.
4. **Conversations**, turn by turn: the customer writes (or the ticket is on hold),
   the agent answers after a delay in *business time* (UTC 08:00-18:00 Mon-Fri at
   full speed, thin night/weekend cover) that depends on channel, group, agent speed,
   priority and queue load. Transfers, reassignments, internal notes, customer
   follow-ups while waiting, pending/hold/solved status changes, reopens, automatic
   solve of silent pending tickets, closing four days after solve.
5. **Attributes** as ``field`` events: form, product area (re-categorised with the
   first reply), customer plan (upgrades), order value; see ``attributes``.
6. **Survey**: offered a day after the final solve, answered by a minority; unhappy
   customers answer less often (missing not at random). The bad probability comes
   from waits, back-and-forth, transfers, reopens, wording, channel, agent skill, a
   wrong priority, the attributes and the customer's earlier unhappy tickets, plus
   unobserved noise.
7. **Export cut**: only tickets created before ``export_at`` (= start + days) and
   events up to it are kept, and the ticket columns (status, priority, group,
   assignee, satisfaction) are their values as of that moment, so the last days form
   an open queue to score. The desk itself may run ``later_days`` longer: the same
   timeline cut later is the later export (:func:`simulate_later`).

Times are handled as float seconds since ``start`` and floored to whole seconds
when written, the resolution of the export format.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.core import contract
from pipeline.core.errors import ExportError
from pipeline.core.io import write_export, write_table
from pipeline.sources.simulator.arrivals import _Customers, _draw_arrivals, _draw_customers
from pipeline.sources.simulator.attributes import FIELDS, _attribute_logit, _draw_attributes
from pipeline.sources.simulator.behaviour import _ANGRY, _EN, CHANNELS, DAY_S, _rng
from pipeline.sources.simulator.engine import (
    _KIND,
    _draw_profiles,
    _EventBuffer,
    _play_conversations,
    _Profile,
    _value_vocabulary,
    _World,
)
from pipeline.sources.simulator.phrases import _POOLS, _VOCAB_ARROW, _VOCAB_CHARS
from pipeline.sources.simulator.survey import _rate, _Rating


# --- public API --------------------------------------------------------------------
@dataclass(frozen=True)
class Simulation:
    """A simulated export (as of ``export_at``) and the ground truth behind it."""

    tickets: pd.DataFrame  # contract columns + organization; created_at/satisfaction_at tz-aware UTC
    events: pd.DataFrame  # contract columns, sorted by (ticket_id, at), ties in file order
    truth: pd.DataFrame  # ticket_id, p_bad_true (0-1), urgency_true (low/normal/high/urgent)
    export_at: pd.Timestamp  # the export moment (UTC)


def simulate(n_tickets: int, seed: int, start: str = "2026-01-05", days: int = 120,
             later_days: int = 0) -> Simulation:
    """Simulate ``n_tickets`` tickets created over ``days`` days from ``start`` (UTC).

    Deterministic for a given (n_tickets, seed, start, days, later_days). The export
    moment is ``start + days``; tickets and events are cut there. With ``later_days``
    the desk goes on running that much longer (see :func:`simulate_later`), which
    this export does not show but which makes it the same world as the later one.
    """
    return _Desk.run(n_tickets, seed, start, days, later_days).export(days)


def simulate_later(n_tickets: int, seed: int, start: str = "2026-01-05", days: int = 120,
                   later_days: int = 14) -> tuple[Simulation, Simulation]:
    """One desk exported twice: at ``start + days`` (as :func:`simulate`) and ``later_days`` after.

    The later export holds the tickets created in between and the outcomes that
    arrived since: what a nightly run scored on the first export has turned out by
    the second (``monitor``).
    """
    if later_days == 0:
        raise ExportError("later_days must be at least 1 for a later export")
    desk = _Desk.run(n_tickets, seed, start, days, later_days)
    return desk.export(days), desk.export(days + int(later_days))


def simulate_export(
    out_dir: str | os.PathLike,
    n_tickets: int,
    seed: int,
    start: str = "2026-01-05",
    days: int = 120,
    fmt: str = "csv",
    later_days: int = 0,
    later_out: str | os.PathLike | None = None,
) -> Simulation:
    """Simulate, then write ``tickets.<fmt>``, ``events.<fmt>`` and ``truth.csv`` into ``out_dir``.

    With ``later_out``, the same desk's export ``later_days`` later goes there too.
    Tickets and events go through :func:`pipeline.core.io.write_export`; the truth table
    through :func:`pipeline.core.io.write_table` (atomic). Returns the (first) simulation.
    """
    if fmt not in ("csv", "parquet"):
        raise ExportError(f"unknown export format {fmt!r}; use csv or parquet")
    if later_out is None:
        simulations = [(out_dir, simulate(n_tickets, seed, start=start, days=days, later_days=later_days))]
    else:
        simulations = list(zip((out_dir, later_out),
                               simulate_later(n_tickets, seed, start=start, days=days, later_days=later_days)))
    for directory, simulation in simulations:
        write_export(directory, simulation.tickets, simulation.events, fmt)
        write_table(simulation.truth, Path(directory) / "truth.csv")
    return simulations[0][1]


@dataclass(frozen=True)
class _Desk:
    """The whole simulated timeline of a desk, before any export cut."""

    start: pd.Timestamp
    world: _World
    profile: _Profile
    customers: _Customers
    rating: _Rating
    events: tuple[np.ndarray, ...]  # ticket, t_s, key, actor, kind, value, body, field
    value_vocab: pa.Array
    openings: pa.Array
    subjects: pa.Array

    @classmethod
    def run(cls, n_tickets: int, seed: int, start: str, days: int, later_days: int) -> _Desk:
        start_ts, n_tickets, seed, days = _validate(n_tickets, seed, start, days)
        if isinstance(later_days, bool) or not isinstance(later_days, (int, np.integer)) or later_days < 0:
            raise ExportError(f"later_days must be a whole number >= 0, got {later_days!r}")
        total_days = days + int(later_days)
        world = _World.build(start_ts, total_days, seed, n_tickets * total_days // days)
        created_s, incident = _draw_arrivals(_rng(seed, "arrivals"), n_tickets, world.hour, world.weekday, days,
                                             int(later_days))
        n_all = len(created_s)
        customers = _draw_customers(_rng(seed, "customers"), n_all, _rng(seed, "organizations"))
        profile = _draw_profiles(_rng(seed, "profiles"), created_s, incident, customers, world.staff)
        world = world.with_load(created_s, profile.initial_group, total_days)
        buffer = _EventBuffer()
        conversation = _play_conversations(_rng(seed, "conversations"), profile, world, buffer)
        attributes = _draw_attributes(_rng(seed, "attributes"), profile.issue, profile.channel, profile.home_group,
                                      profile.t0, conversation.first_reply_s, conversation.solved_s, customers)
        attribute_logit = _attribute_logit(attributes, conversation.first_reply_s, customers.org_bad_logit)
        rating = _rate(_rng(seed, "rating"), profile, conversation, customers.requester, world.staff,
                       attribute_logit)
        value_vocab_list, _ = _value_vocabulary(world.staff)
        ticket, t_s, key, actor, kind, value, body = buffer.take_arrays()
        a_ticket, a_t_s, a_key, a_actor, a_value, a_field = attributes.events
        events = (
            np.concatenate([ticket, a_ticket]), np.concatenate([t_s, a_t_s]), np.concatenate([key, a_key]),
            np.concatenate([actor, a_actor]),
            np.concatenate([kind, np.full(len(a_ticket), _KIND[contract.FIELD_EVENT], np.int8)]),
            np.concatenate([value, len(value_vocab_list) + a_value]),
            np.concatenate([body, np.zeros(len(a_ticket), np.int32)]),
            np.concatenate([np.zeros(len(ticket), np.int8), a_field]),
        )
        del ticket, t_s, key, actor, kind, value, body
        value_vocab = pa.concat_arrays([pa.array(value_vocab_list, type=pa.string()), attributes.values])
        return cls(start_ts, world, profile, customers, rating, events, value_vocab,
                   _opening_messages(_rng(seed, "openings"), profile), _subjects(_rng(seed, "subjects"), profile))

    def export(self, days: int) -> Simulation:
        """The export at ``start + days``: tickets created before it, events up to it, fields as of it."""
        export_s = days * DAY_S
        n_kept = int(np.searchsorted(self.profile.t0, export_s, side="left"))
        ids = _ticket_ids(len(self.profile.t0)).slice(0, n_kept)
        events, state = _assemble_events(self.events, self.value_vocab, self.openings, ids, self.start, export_s)
        tickets = _assemble_tickets(self.subjects, self.profile, self.customers, state, self.rating, ids,
                                    self.start, export_s)
        truth = pd.DataFrame(
            {
                "ticket_id": tickets["ticket_id"],
                "p_bad_true": self.rating.p_bad[:n_kept],
                "urgency_true": pd.Series(
                    np.asarray(contract.PRIORITIES, dtype=object)[self.profile.urgency[:n_kept]], dtype="str"
                ),
            }
        )
        return Simulation(tickets, events, truth, self.start + pd.Timedelta(seconds=export_s))


def _validate(n_tickets: int, seed: int, start: str, days: int) -> tuple[pd.Timestamp, int, int, int]:
    """Check the arguments; one-line :class:`ExportError` for anything a user can get wrong."""
    if isinstance(n_tickets, bool) or not isinstance(n_tickets, (int, np.integer)) or n_tickets < 1:
        raise ExportError(f"--tickets must be a positive whole number, got {n_tickets!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ExportError(f"--seed must be a whole number >= 0, got {seed!r}")
    if isinstance(days, bool) or not isinstance(days, (int, np.integer)) or days < 1:
        raise ExportError(f"--days must be a positive whole number, got {days!r}")
    try:
        start_ts = pd.Timestamp(start)
    except (ValueError, TypeError):
        raise ExportError(f"--start must be a date like 2026-01-05, got {start!r}") from None
    if start_ts is pd.NaT:
        raise ExportError(f"--start must be a date like 2026-01-05, got {start!r}")
    start_ts = start_ts.tz_localize("UTC") if start_ts.tzinfo is None else start_ts.tz_convert("UTC")
    return start_ts.as_unit("us"), int(n_tickets), int(seed), int(days)

# --- assembling the export ---------------------------------------------------------------
def _to_utc(start: pd.Timestamp, t_s: np.ndarray) -> pd.DatetimeIndex:
    """Seconds since ``start`` (float, NaN allowed) -> UTC timestamps floored to the second (us unit)."""
    whole = np.floor(t_s)
    nat = np.isnan(whole)
    epoch_s = start.floor("s").value // 10**9 + np.where(nat, 0, whole).astype(np.int64)
    stamps = epoch_s.astype("datetime64[s]").astype("datetime64[us]")
    stamps[nat] = np.datetime64("NaT")
    return pd.DatetimeIndex(stamps).tz_localize("UTC")


def _strings(values: pa.Array | np.ndarray | list) -> pd.Series:
    """A pandas default-string Series backed by Arrow."""
    return pd.Series(values if isinstance(values, pa.Array) else pa.array(values, type=pa.string()),
                     dtype="str")


@dataclass(frozen=True)
class _ExportState:
    """Per ticket, value codes of status/group/assignee/priority as of export (0 = empty)."""

    status: np.ndarray
    group: np.ndarray
    assignee: np.ndarray
    priority: np.ndarray
    value_vocab: pa.Array


def _assemble_events(arrays: tuple[np.ndarray, ...], value_vocab: pa.Array, openings: pa.Array, ids: pa.Array,
                     start: pd.Timestamp, export_s: float) -> tuple[pd.DataFrame, _ExportState]:
    """Cut events at the export (and to the tickets in ``ids``), sort by (ticket, second, turn order), decode."""
    ticket, t_s, key, actor, kind, value, body, field = arrays
    n_tickets = len(ids)
    whole_s = np.floor(t_s)
    keep = np.flatnonzero((whole_s <= export_s) & (ticket < n_tickets))
    order = keep[_event_order(ticket[keep], whole_s[keep].astype(np.int64), key[keep])]
    del keep
    ticket, whole_s, actor, kind, value, body, field = (
        a[order] for a in (ticket, whole_s, actor, kind, value, body, field))
    del order
    state = _ExportState(
        *(_last_value(ticket, kind, value, _KIND[name], n_tickets) for name in ("status", "group",
                                                                                  "assignee", "priority")),
        value_vocab=value_vocab,
    )
    body_vocab = pa.concat_arrays([_VOCAB_ARROW, openings])
    events = pd.DataFrame(
        {
            "ticket_id": _strings(ids.take(pa.array(ticket))),
            "at": _to_utc(start, whole_s),
            "actor": _strings(pa.array(contract.ACTORS).take(pa.array(actor))),
            "kind": _strings(pa.array(contract.EVENT_KINDS).take(pa.array(kind))),
            "value": _strings(value_vocab.take(pa.array(value))),
            "body": _strings(body_vocab.take(pa.array(body))),
            "field": _strings(pa.array(FIELDS).take(pa.array(field))),
        }
    )
    return events, state


def _event_order(ticket: np.ndarray, whole_s: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Permutation sorting events by (ticket, second, key): one int64 sort key when the bits fit."""
    bits_key = 8
    bits_s = max(int(whole_s.max(initial=0)).bit_length(), 1)
    bits_ticket = max(int(ticket.max(initial=0)).bit_length(), 1)
    if bits_key + bits_s + bits_ticket > 63 or int(key.max(initial=0)) >= 1 << bits_key:
        return np.lexsort((key, whole_s, ticket))
    packed = (ticket.astype(np.int64) << (bits_s + bits_key)) | (whole_s << bits_key) | key.astype(np.int64)
    return np.argsort(packed, kind="stable")


def _last_value(ticket: np.ndarray, kind: np.ndarray, value: np.ndarray, kind_code: int,
                n: int) -> np.ndarray:
    """Value code of the last event of ``kind_code`` per ticket (events sorted); 0 where none."""
    rows = np.flatnonzero(kind == kind_code)
    tk = ticket[rows]
    last = np.r_[tk[1:] != tk[:-1], True] if len(tk) else np.zeros(0, bool)
    out = np.zeros(n, dtype=np.int64)
    out[tk[last]] = value[rows[last]]
    return out


def _ticket_ids(n: int) -> pa.Array:
    """Zendesk-like numeric ids "100001", ... all of one width, so text order = numeric order."""
    width = 6 if n <= 899_999 else len(str(n)) + 1
    base = 10 ** (width - 1)
    return pa.array(np.arange(base + 1, base + 1 + n, dtype=np.int64)).cast(pa.string())


def _phrases(codes: np.ndarray) -> pa.Array:
    """Phrase-pool codes -> Arrow strings."""
    return _VOCAB_ARROW.take(pa.array(codes))


def _spaces(present: np.ndarray, separator: str = " ") -> pa.Array:
    """``separator`` where ``present``, else the empty string (Arrow strings)."""
    return pa.array(["", separator], type=pa.string()).take(pa.array(present.astype(np.int8)))


def _opening_messages(rng: np.random.Generator, p: _Profile) -> pa.Array:
    """The customer's first message per ticket (Arrow strings, length n).

    Greeting + issue sentence + urgent phrase (when the wording is urgent) + tone
    phrase; angry English openings are sometimes written in capitals; about two in
    five puts the greeting on its own line.
    """
    n = len(p.t0)
    u = rng.random((6, n))
    urgent = np.where(p.urgent_wording, _POOLS["urgent"].pick(p.language, 0, u[2]), 0)
    tone = _POOLS["opening_tone"].pick(p.language, p.opening_tone, u[3])
    text = pc.binary_join_element_wise(
        _phrases(_POOLS["greeting"].pick(p.language, 0, u[0])),
        pa.array([" ", "\n"]).take(pa.array((u[4] < 0.4).astype(np.int8))),
        _phrases(_POOLS["issue"].pick(p.language, p.issue, u[1])),
        _spaces(_VOCAB_CHARS[urgent] > 0), _phrases(urgent),
        _spaces(_VOCAB_CHARS[tone] > 0), _phrases(tone),
        "",
    )
    shout = (p.opening_tone == _ANGRY) & (p.language == _EN) & (u[5] < 0.35)
    return pc.if_else(pa.array(shout), pc.utf8_upper(text), text)


def _subjects(rng: np.random.Generator, p: _Profile) -> pa.Array:
    """Ticket subject per ticket (Arrow strings): issue subject, urgent prefix, angry "!!!"."""
    n = len(p.t0)
    u = rng.random((3, n))
    prefix = pa.array(["", "URGENT: ", "[긴급] "]).take(
        pa.array(np.where(p.urgent_wording & (u[1] < 0.6), 1 + p.language, 0)))
    suffix = _spaces((p.opening_tone == _ANGRY) & (u[2] < 0.5), "!!!")
    return pc.binary_join_element_wise(prefix, _phrases(_POOLS["subject"].pick(p.language, p.issue, u[0])),
                                       suffix, "")


def _assemble_tickets(subjects: pa.Array, p: _Profile, customers: _Customers, state: _ExportState,
                      rating: _Rating, ids: pa.Array, start: pd.Timestamp, export_s: float) -> pd.DataFrame:
    """One row per ticket in ``ids`` (creation order), with the field values as of the export.

    ``organization`` (beyond the contract) is the requester's company, known at creation.
    """
    n = len(ids)
    rated = rating.rated_s[:n] <= export_s
    offered = rating.offered_s[:n] <= export_s
    satisfaction = np.where(rated, np.where(rating.unhappy[:n], "bad", "good"),
                            np.where(offered, "offered", "unoffered"))
    vocab = state.value_vocab
    org_names = pa.array(("", *customers.org_names), type=pa.string())
    return pd.DataFrame(
        {
            "ticket_id": _strings(ids),
            "created_at": _to_utc(start, p.t0[:n]),
            "channel": _strings(np.asarray(CHANNELS, dtype=object)[p.channel[:n]]),
            "status": _strings(vocab.take(pa.array(state.status))),
            "priority": _strings(vocab.take(pa.array(state.priority))),
            "requester_id": _strings(pa.array(5_000_001 + customers.requester[:n]).cast(pa.string())),
            "group": _strings(vocab.take(pa.array(state.group))),
            "assignee": _strings(vocab.take(pa.array(state.assignee))),
            "subject": _strings(subjects.slice(0, n)),
            "satisfaction": _strings(satisfaction.astype(object)),
            "satisfaction_at": _to_utc(start, np.where(rated, rating.rated_s[:n], np.nan)),
            "organization": _strings(org_names.take(pa.array(1 + customers.organization[:n]))),
        }
    )
