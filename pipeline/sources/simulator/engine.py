"""The simulation engine: the world (clocks, staff, load), ticket profiles, conversations turn by turn.

Everything is vectorised over tickets; the only Python loops run over agent turns
(at most ~10), groups, issue types or text pools. Times are float seconds since the
start of the period.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.core import contract
from pipeline.sources.simulator.arrivals import _Customers
from pipeline.sources.simulator.behaviour import (
    _ANGRY,
    _EN,
    _ESCALATIONS,
    _IMPATIENT,
    _ISSUE_ESCALATES,
    _ISSUE_EXTRA_ROUNDS,
    _ISSUE_HOME,
    _ISSUE_REOPEN_P,
    _ISSUE_SHARE,
    _ISSUE_URGENCY_CUM,
    _OUTAGE,
    _TECHNICAL,
    AGENT_REPLY_MEDIAN_MINUTES,
    CHANNEL_SHARE,
    CUSTOMER_REPLY_MEDIAN_MINUTES,
    FOLLOW_UP_AFTER_MINUTES,
    GROUP_HOLD_P,
    GROUP_SKILL,
    GROUP_SLOWNESS,
    GROUPS,
    HOUR_S,
    ISSUES,
    MINUTE_S,
    PRIORITY_SLOWNESS,
    ROUNDS_FACTOR,
    TICKETS_PER_AGENT_DAY,
    UNSET_PRIORITY_SLOWNESS,
    URGENT_WORDING_P,
    _agent_rate_table,
    _customer_rate_table,
    _rng,
)
from pipeline.sources.simulator.phrases import _KO, _POOLS, _VOCAB


# --- the world: calendar clocks, staff, queue load -----------------------------------
@dataclass(frozen=True)
class _Clock:
    """Turns wall-clock seconds into 'effective hours' of work and back.

    ``rate`` per hour since start is piecewise constant (> 0), so the cumulative
    clock is strictly increasing and both directions are linear interpolations.
    """

    grid_h: np.ndarray  # hour boundaries since start, shape (H + 1,)
    cum_h: np.ndarray  # effective hours accumulated at each boundary, shape (H + 1,)

    rate: np.ndarray  # effective hours per wall hour, shape (H,)

    @classmethod
    def from_rates(cls, rate_per_hour: np.ndarray) -> _Clock:
        grid = np.arange(len(rate_per_hour) + 1, dtype=np.float64)
        return cls(grid, np.concatenate([[0.0], np.cumsum(rate_per_hour)]), rate_per_hour)

    def forward(self, t_s: np.ndarray) -> np.ndarray:
        """Effective hours reached at wall time ``t_s`` (seconds since start, clipped to the grid)."""
        hours = np.clip(t_s / HOUR_S, 0.0, len(self.rate) - 1e-6)
        whole = hours.astype(np.int64)
        return self.cum_h[whole] + self.rate[whole] * (hours - whole)

    def later(self, t_s: np.ndarray, effective_h: np.ndarray) -> np.ndarray:
        """Wall time (seconds since start) once ``effective_h`` hours of work are done after ``t_s``."""
        return self.inverse(self.forward(t_s) + effective_h)

    def inverse(self, cum: np.ndarray) -> np.ndarray:
        return np.interp(cum, self.cum_h, self.grid_h) * HOUR_S


@dataclass(frozen=True)
class _Staff:
    """Agents: id, group, speed (multiplies delays) and skill (lowers reopen and bad odds)."""

    ids: tuple[str, ...]
    group: np.ndarray  # int, per agent
    slowness: np.ndarray  # float, per agent
    skill: np.ndarray  # float, per agent
    members: tuple[np.ndarray, ...]  # agent indices per group
    member_p: tuple[np.ndarray, ...]  # how much of the group's work each member takes

    @classmethod
    def hire(cls, rng: np.random.Generator, n_tickets: int, days: int) -> _Staff:
        """Size teams to about 25 tickets per agent per day, at least 2 agents per group."""
        home_share = np.bincount(_ISSUE_HOME, weights=_ISSUE_SHARE, minlength=len(GROUPS))
        home_share[_ESCALATIONS] = 0.06
        total = n_tickets / days / TICKETS_PER_AGENT_DAY
        per_group = np.maximum(2, np.round(total * home_share)).astype(int)
        group = np.repeat(np.arange(len(GROUPS)), per_group)
        n_agents = len(group)
        width = max(3, len(str(n_agents)))
        ids = tuple(f"agent_{i + 1:0{width}d}" for i in range(n_agents))
        slowness = np.exp(rng.normal(0.0, 0.3, n_agents))
        skill = rng.normal(0.0, 0.5, n_agents) + GROUP_SKILL[group]
        members = tuple(np.flatnonzero(group == g) for g in range(len(GROUPS)))
        member_p = []
        for m in members:
            w = rng.uniform(0.5, 1.5, len(m))
            member_p.append(w / w.sum())
        return cls(ids, group, slowness, skill, members, tuple(member_p))

    def pick(self, rng: np.random.Generator, group: np.ndarray) -> np.ndarray:
        """One agent index per entry of ``group`` (int array), drawn from that group's members."""
        agent = np.empty(len(group), dtype=np.int64)
        for g, (m, p) in enumerate(zip(self.members, self.member_p)):
            rows = np.flatnonzero(group == g)
            agent[rows] = m[rng.choice(len(m), size=len(rows), p=p)]
        return agent


@dataclass(frozen=True)
class _World:
    """Everything shared by all tickets: start, clocks, arrival weights, staff, queue load."""

    start: pd.Timestamp
    weekday: np.ndarray  # per hour since start, 0 = Monday
    hour: np.ndarray  # per hour since start, 0..23 (UTC)
    agent_clock: _Clock
    customer_clock: _Clock
    staff: _Staff
    load: np.ndarray | None  # (n_groups, n_hours) reply-delay multiplier

    @classmethod
    def build(cls, start: pd.Timestamp, days: int, seed: int, n_tickets: int) -> _World:
        # Conversations of late tickets run past the export; the clocks cover 400 days more.
        n_hours = (days + 400) * 24
        stamps = np.datetime64(start.tz_convert(None).floor("h").as_unit("s").to_datetime64(), "h")
        hours = stamps + np.arange(n_hours)
        weekday = (hours.astype("datetime64[D]").astype(np.int64) + 3) % 7
        hour = hours.astype(np.int64) % 24
        return cls(
            start=start,
            weekday=weekday,
            hour=hour,
            agent_clock=_Clock.from_rates(_agent_rate_table()[weekday, hour]),
            customer_clock=_Clock.from_rates(_customer_rate_table()[weekday, hour]),
            staff=_Staff.hire(_rng(seed, "staff"), n_tickets, days),
            load=None,
        )

    def with_load(self, created_s: np.ndarray, group: np.ndarray, days: int) -> _World:
        """Add the queue-load table: expected open tickets per group relative to the group's average.

        Open tickets at hour h are estimated as arrivals convolved with an exponential
        survival (mean 30 h), half global, half per group. Outside the window the load
        is average (1.0). The first days are warmed up with a copy of the first ten days,
        as if the desk had been running before.
        """
        n_hours = days * 24
        hour_idx = np.minimum((created_s // HOUR_S).astype(np.int64), n_hours - 1)
        arrivals = np.zeros((len(GROUPS) + 1, n_hours))
        arrivals[:-1] = np.bincount(group * n_hours + hour_idx, minlength=len(GROUPS) * n_hours).reshape(
            len(GROUPS), n_hours)
        arrivals[-1] = arrivals[:-1].sum(axis=0)
        kernel = np.exp(-np.arange(240) / 30.0)
        warm = min(n_hours, 240)
        relative = np.ones((len(GROUPS) + 1, n_hours))
        for g in range(len(GROUPS) + 1):
            padded = np.concatenate([arrivals[g, :warm], arrivals[g]])
            open_now = np.convolve(padded, kernel)[warm: warm + n_hours]
            mean = open_now.mean()
            if mean > 0:
                relative[g] = open_now / mean
        relative[_ESCALATIONS] = relative[-1]  # escalations get no direct routing
        blended = np.sqrt(relative[:-1] * relative[-1])
        load = np.ones((len(GROUPS), len(self.hour)))
        load[:, :n_hours] = np.clip(blended, 0.3, 4.0) ** 0.7
        return _World(self.start, self.weekday, self.hour, self.agent_clock, self.customer_clock,
                      self.staff, load)

    def load_at(self, group: np.ndarray, t_s: np.ndarray) -> np.ndarray:
        hour_idx = np.clip((t_s // HOUR_S).astype(np.int64), 0, self.load.shape[1] - 1)
        return self.load[group, hour_idx]


# --- ticket profiles ------------------------------------------
@dataclass(frozen=True)
class _Profile:
    """Per-ticket plan drawn before the conversation is played (all arrays shape (n,))."""

    t0: np.ndarray  # created, float seconds since start
    language: np.ndarray
    temperament: np.ndarray
    channel: np.ndarray
    issue: np.ndarray
    urgency: np.ndarray  # true urgency 0..3 (contract.PRIORITIES)
    urgent_wording: np.ndarray  # bool
    opening_tone: np.ndarray  # 0..2 (TONES)
    home_group: np.ndarray
    initial_group: np.ndarray
    misrouted: np.ndarray  # bool
    bouncy: np.ndarray  # bool: this ticket tends to be passed around
    primary_agent: np.ndarray
    initial_priority: np.ndarray  # 0..3, -1 = never set
    correction_turn: np.ndarray  # turn at which a wrong priority is corrected, -1 = never
    segment_end: np.ndarray  # (n, 3) turn index ending each solve segment, -1 = no segment
    n_turns: np.ndarray
    auto_solve: np.ndarray  # bool: last reply is a question nobody answers; the system solves


def _draw_profiles(rng: np.random.Generator, created_s: np.ndarray, incident: np.ndarray,
                   customers: _Customers, staff: _Staff) -> _Profile:
    """Draw each ticket's plan: channel, issue, true urgency, wording, routing, priority, turns.

    Incident tickets are outages of at least high urgency. 10 % are routed to the
    wrong group, 6 % are "bouncy" (passed around a lot).
    """
    n = len(created_s)
    language = customers.language
    channel = _draw_channel(rng, language)
    issue = np.where(incident, _OUTAGE, rng.choice(len(ISSUES), size=n, p=_ISSUE_SHARE))
    urgency = (rng.random(n)[:, None] >= _ISSUE_URGENCY_CUM[issue][:, :-1]).sum(axis=1)
    urgency = np.where(incident, np.maximum(urgency, 2), urgency)
    urgent_wording = rng.random(n) < URGENT_WORDING_P[urgency]
    # Opening tone: temperament and urgency make a first message sharper.
    opening_mood = 0.7 * customers.temperament + 0.3 * urgency + rng.normal(0, 0.5, n)
    opening_tone = np.digitize(opening_mood, [1.0, 1.8])
    home = _ISSUE_HOME[issue]
    misrouted = rng.random(n) < 0.10
    initial_group = np.where(misrouted, _other_group(rng, home), home)
    primary_agent = staff.pick(rng, home)
    initial_priority, correction_wanted = _draw_priority(rng, urgency, urgent_wording)
    segment_end, n_turns, auto_solve = _draw_rounds(rng, issue, channel, staff.skill[primary_agent])
    correction_turn = np.where(
        correction_wanted & (n_turns >= 2),
        1 + (rng.random(n) * np.maximum(n_turns - 1, 1)).astype(np.int64),
        -1,
    )
    return _Profile(
        t0=created_s, language=language, temperament=customers.temperament, channel=channel,
        issue=issue, urgency=urgency, urgent_wording=urgent_wording, opening_tone=opening_tone,
        home_group=home, initial_group=initial_group, misrouted=misrouted,
        bouncy=rng.random(n) < 0.06, primary_agent=primary_agent,
        initial_priority=initial_priority, correction_turn=correction_turn,
        segment_end=segment_end, n_turns=n_turns, auto_solve=auto_solve,
    )


def _draw_channel(rng: np.random.Generator, language: np.ndarray) -> np.ndarray:
    cum = np.cumsum(np.array([CHANNEL_SHARE[_EN], CHANNEL_SHARE[_KO]]), axis=1)
    cum /= cum[:, -1:]
    return (rng.random(len(language))[:, None] >= cum[language][:, :-1]).sum(axis=1)


def _other_group(rng: np.random.Generator, current: np.ndarray) -> np.ndarray:
    """A uniformly drawn group different from ``current``, never escalations; shape like ``current``."""
    routable = [g for g in range(len(GROUPS)) if g != _ESCALATIONS]
    candidates = np.zeros((len(GROUPS), len(routable)), dtype=np.int64)
    n_candidates = np.zeros(len(GROUPS), dtype=np.int64)
    for c in range(len(GROUPS)):
        others = [g for g in routable if g != c]
        candidates[c, : len(others)] = others
        n_candidates[c] = len(others)
    pick = (rng.random(len(current)) * n_candidates[current]).astype(np.int64)
    return candidates[current, pick]


def _draw_priority(rng: np.random.Generator, urgency: np.ndarray,
                   urgent_wording: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The priority the agent sets at pickup (-1 = never set) and whether a wrong one gets corrected.

    Agents read the wording: when it matches the true urgency they are right 85 % of
    the time, otherwise 60 %; a miss is one level off in the direction the wording
    suggests (urgent words: too high, calm words: too low).
    """
    n = len(urgency)
    wording_matches = urgent_wording == (urgency >= 2)
    right = rng.random(n) < np.where(wording_matches, 0.85, 0.60)
    direction = np.where(urgent_wording, 1, -1)
    shifted = urgency + direction
    shifted = np.where((shifted < 0) | (shifted > 3), urgency - direction, shifted)
    priority = np.where(right, urgency, shifted)
    never_set = rng.random(n) < 0.04
    priority = np.where(never_set, -1, priority)
    correction_wanted = (~right) & (~never_set) & (rng.random(n) < 0.45)
    return priority, correction_wanted


def _draw_rounds(rng: np.random.Generator, issue: np.ndarray, channel: np.ndarray,
                 primary_skill: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Plan the turns: rounds until the first solve, up to two reopens with 1-2 rounds each.

    Returns ``segment_end`` (n, 3) (turn index of each solve, -1 if the segment does
    not exist), ``n_turns`` (n,) and ``auto_solve`` (n,).
    """
    n = len(issue)
    first = 1 + np.minimum(rng.poisson(_ISSUE_EXTRA_ROUNDS[issue] * ROUNDS_FACTOR[channel]), 6)
    reopen_p = _ISSUE_REOPEN_P[issue] + 0.08 * (primary_skill < -0.3) - 0.03 * (primary_skill > 0.5)
    reopen_1 = rng.random(n) < reopen_p
    reopen_2 = reopen_1 & (rng.random(n) < 0.25)
    second = np.where(reopen_1, 1 + (rng.random(n) < 0.35), 0)
    third = np.where(reopen_2, 1, 0)
    end_1 = first - 1
    end_2 = np.where(reopen_1, end_1 + second, -1)
    end_3 = np.where(reopen_2, end_2 + third, -1)
    n_turns = first + second + third
    auto_solve = (~reopen_1) & (rng.random(n) < 0.20)
    return np.stack([end_1, end_2, end_3], axis=1), n_turns, auto_solve


# --- conversations -----------------------------------------------------------------
_ACTOR = {name: i for i, name in enumerate(contract.ACTORS)}
_KIND = {name: i for i, name in enumerate(contract.EVENT_KINDS)}
_STATUS = {name: i for i, name in enumerate(contract.STATUSES)}
_NONE = -1
# Order of events inside one turn; it only breaks ties between events in the same second.
_SUB_CUSTOMER, _SUB_REOPEN_STATUS, _SUB_NEW_STATUS, _SUB_ROUTING = 0, 1, 2, 3
_SUB_FOLLOW_UP, _SUB_TRANSFER_NOTE, _SUB_GROUP, _SUB_ASSIGNEE = 4, 5, 6, 7
_SUB_PICKUP_STATUS, _SUB_PRIORITY, _SUB_NOTE, _SUB_AGENT, _SUB_AFTER = 8, 9, 10, 11, 12
_SUBS_PER_TURN = 16


class _EventBuffer:
    """Collects event blocks as parallel arrays; values are codes into :func:`_value_vocabulary`.

    ``body`` codes below ``len(_VOCAB)`` are phrase-pool entries; larger codes are the
    ticket's opening message (``len(_VOCAB) + ticket``). ``key`` orders events of one
    ticket that fall in the same second (turn * 16 + position in the turn).
    """

    def __init__(self) -> None:
        self.blocks: list[tuple[np.ndarray, ...]] = []

    def add(self, rows: np.ndarray, t_s, key, actor: str, kind: str, value=0, body=0) -> None:
        """Add one event per ticket in ``rows`` (int array) at ``t_s`` seconds; scalars broadcast."""
        m = len(rows)
        if m == 0:
            return
        self.blocks.append((
            rows.astype(np.int32),
            np.broadcast_to(np.asarray(t_s, dtype=np.float64), (m,)).copy(),
            np.full(m, key, dtype=np.int16),
            np.full(m, _ACTOR[actor], dtype=np.int8),
            np.full(m, _KIND[kind], dtype=np.int8),
            np.broadcast_to(np.asarray(value, dtype=np.int32), (m,)).copy(),
            np.broadcast_to(np.asarray(body, dtype=np.int32), (m,)).copy(),
        ))

    def take_arrays(self) -> tuple[np.ndarray, ...]:
        """Concatenate the blocks (ticket, t_s, key, actor, kind, value, body) and empty the buffer."""
        columns = zip(*self.blocks)
        self.blocks = []
        return tuple(np.concatenate(column) for column in columns)


@dataclass(frozen=True)
class _ValueCodes:
    """Offsets of each field's values in the event ``value`` vocabulary (code 0 = empty)."""

    status: int
    group: int
    agent: int
    priority: int


def _value_vocabulary(staff: _Staff) -> tuple[list[str], _ValueCodes]:
    vocab = [""] + list(contract.STATUSES) + list(GROUPS) + list(staff.ids) + list(contract.PRIORITIES)
    status = 1
    group = status + len(contract.STATUSES)
    agent = group + len(GROUPS)
    priority = agent + len(staff.ids)
    return vocab, _ValueCodes(status, group, agent, priority)


@dataclass
class _State:
    """Mutable per-ticket state carried from turn to turn (arrays of shape (n,))."""

    group: np.ndarray
    agent: np.ndarray  # -1 before the first pickup
    priority: np.ndarray  # -1 = not set
    prev_after: np.ndarray  # status the agent left after the previous turn, -1 before turn 0
    last_reply_s: np.ndarray  # time of the previous agent reply (created_at before turn 0)
    first_reply_s: np.ndarray
    wait_s: np.ndarray  # customer's total wait for agent replies so far
    hops: np.ndarray
    reopens: np.ndarray
    follow_ups: np.ndarray

    @classmethod
    def start(cls, p: _Profile) -> _State:
        n = len(p.t0)
        zeros = np.zeros(n, dtype=np.int64)
        return cls(p.initial_group.copy(), np.full(n, -1), p.initial_priority.copy(), np.full(n, _NONE),
                   p.t0.copy(), np.zeros(n), np.zeros(n), zeros.copy(), zeros.copy(), zeros.copy())


@dataclass(frozen=True)
class _Conversation:
    """Per-ticket results of the played conversation (full timeline, before the export cut)."""

    first_reply_s: np.ndarray  # created -> first agent public reply, wall seconds
    customer_wait_s: np.ndarray  # total time the customer waited for agent replies, wall seconds
    n_hops: np.ndarray  # group changes after the routing group
    n_reopens: np.ndarray
    n_turns: np.ndarray
    n_follow_ups: np.ndarray  # customer messages sent while waiting
    final_agent: np.ndarray
    solved_s: np.ndarray  # final solve, seconds since start


def _play_conversations(rng: np.random.Generator, p: _Profile, world: _World,
                        buffer: _EventBuffer) -> _Conversation:
    """Play every ticket's conversation into ``buffer``: one loop step per turn, vectorised over tickets."""
    _, codes = _value_vocabulary(world.staff)
    n = len(p.t0)
    everyone = np.arange(n)
    # Opening: the customer's message (the ticket description), "new" status, routing group.
    buffer.add(everyone, p.t0, _SUB_CUSTOMER, "customer", "message", body=len(_VOCAB) + everyone)
    buffer.add(everyone, p.t0, _SUB_NEW_STATUS, "system", "status", value=codes.status + _STATUS["new"])
    buffer.add(everyone, p.t0, _SUB_ROUTING, "system", "group", value=codes.group + p.initial_group)
    state = _State.start(p)
    for k in range(int(p.n_turns.max())):
        _play_turn(rng, k, np.flatnonzero(k < p.n_turns), p, world, codes, state, buffer)
    solved_s = _finish(rng, p, codes, state.last_reply_s, buffer)
    return _Conversation(state.first_reply_s, state.wait_s, state.hops, state.reopens, p.n_turns,
                         state.follow_ups, state.agent, solved_s)


def _play_turn(rng: np.random.Generator, k: int, rows: np.ndarray, p: _Profile, world: _World,
               codes: _ValueCodes, s: _State, buffer: _EventBuffer) -> None:
    """Turn ``k`` for the tickets ``rows`` that still have one: customer writes, agent answers."""
    m = len(rows)
    u = rng.random((16, m))
    z = rng.standard_normal((3, m))
    key = k * _SUBS_PER_TURN
    channel, language = p.channel[rows], p.language[rows]
    prev_after = s.prev_after[rows]
    on_hold = prev_after == _STATUS["hold"]

    # 1. The customer writes (not while on hold); a reply after a solve reopens the ticket.
    wait_from, tone = _customer_writes(k, rows, p, world, codes, s, buffer, u, z)

    # 2. Who handles the turn: the first pickup, a transfer to another group, a reassignment.
    group, agent = s.group[rows], s.agent[rows]
    hop, new_group, new_agent, reassign = _handler(rng, k, rows, p, world.staff, s, u)
    pickup = (k == 0) | hop | reassign

    # 3. Reply delay in business hours; a transfer first costs part of the old queue's delay.
    staff = world.staff
    priority = s.priority[rows]
    base_h = (AGENT_REPLY_MEDIAN_MINUTES[channel] / 60.0 * np.exp(0.75 * z[2])
              * (1.0 if k == 0 else 0.8) * np.where(on_hold, 6.0, 1.0)
              * np.where(priority >= 0, PRIORITY_SLOWNESS[np.maximum(priority, 0)], UNSET_PRIORITY_SLOWNESS))
    old_slowness = np.where(agent >= 0, staff.slowness[np.maximum(agent, 0)], 1.0)
    old_h = (base_h * GROUP_SLOWNESS[group] * old_slowness * world.load_at(group, wait_from)
             * (0.2 + 0.4 * u[4]))
    new_h = (base_h * GROUP_SLOWNESS[new_group] * staff.slowness[new_agent]
             * world.load_at(new_group, wait_from))
    clock = world.agent_clock
    b_transfer = clock.forward(wait_from) + np.where(hop, old_h, 0.0)
    reply_at = np.maximum(clock.inverse(b_transfer + new_h), wait_from + 30.0)
    pickup_at = np.minimum(clock.inverse(b_transfer + (0.5 + 0.45 * u[5]) * new_h), reply_at)
    transfer_at = np.minimum(clock.inverse(b_transfer), pickup_at)

    # 4. Handover events: transfer note and group change, assignee, first open status and priority.
    hopped = np.flatnonzero(hop)
    noted = hopped[u[6, hopped] < 0.5]
    buffer.add(rows[noted], transfer_at[noted], key + _SUB_TRANSFER_NOTE, "agent", "note",
               body=_POOLS["note"].pick(language[noted], 1, u[7, noted]))
    buffer.add(rows[hopped], transfer_at[hopped], key + _SUB_GROUP, "agent", "group",
               value=codes.group + new_group[hopped])
    picked = np.flatnonzero(pickup)
    buffer.add(rows[picked], pickup_at[picked], key + _SUB_ASSIGNEE, "agent", "assignee",
               value=codes.agent + new_agent[picked])
    if k == 0:
        buffer.add(rows, pickup_at, key + _SUB_PICKUP_STATUS, "agent", "status",
                   value=codes.status + _STATUS["open"])
        set_now = np.flatnonzero(priority >= 0)
        buffer.add(rows[set_now], pickup_at[set_now], key + _SUB_PRIORITY, "agent", "priority",
                   value=codes.priority + priority[set_now])
    corrected = np.flatnonzero(p.correction_turn[rows] == k)
    buffer.add(rows[corrected], pickup_at[corrected], key + _SUB_PRIORITY, "agent", "priority",
               value=codes.priority + p.urgency[rows[corrected]])
    s.priority[rows[corrected]] = p.urgency[rows[corrected]]
    s.hops[rows] += hop
    s.group[rows], s.agent[rows] = new_group, new_agent

    # 5. While the customer waits: internal notes, and follow-ups once the wait gets long.
    note_p = 0.10 + 0.10 * ((new_group == _TECHNICAL) | (new_group == _ESCALATIONS))
    noted = np.flatnonzero(u[8] < note_p)
    buffer.add(rows[noted], pickup_at[noted] + u[9, noted] * (reply_at[noted] - pickup_at[noted]),
               key + _SUB_NOTE, "agent", "note", body=_POOLS["note"].pick(language[noted], 0, u[10, noted]))
    waited_s = reply_at - wait_from
    follow_after_s = FOLLOW_UP_AFTER_MINUTES[channel] * MINUTE_S
    excess = waited_s / follow_after_s
    # The longer past the channel's patience threshold, the likelier a follow-up.
    follow_p = np.clip(0.55 * (1.0 - 1.0 / np.maximum(excess, 1.0)) * (1.0 + 0.25 * p.temperament[rows]),
                       0.0, 0.8)
    nag = np.flatnonzero((excess > 1.0) & (u[11] < follow_p))
    follow_at = (wait_from[nag] + follow_after_s[nag]
                 + 0.9 * u[12, nag] * (waited_s[nag] - follow_after_s[nag]))
    buffer.add(rows[nag], follow_at, key + _SUB_FOLLOW_UP, "customer", "message",
               body=_POOLS["follow_up"].pick(language[nag], np.minimum(tone[nag] + 1, _ANGRY), u[13, nag]))
    s.follow_ups[rows[nag]] += 1

    # 6. The agent answers and leaves a status (events only when the status changes).
    after = _after_status(k, rows, p, new_group, u[14])
    upset = (tone >= _IMPATIENT) | (excess > 1.0)
    buffer.add(rows, reply_at, key + _SUB_AGENT, "agent", "message",
               body=_agent_body(k, after, language, upset, u[15]))
    changed = np.flatnonzero(after != np.where(on_hold, _STATUS["hold"], _STATUS["open"]))
    buffer.add(rows[changed], reply_at[changed], key + _SUB_AFTER, "agent", "status",
               value=codes.status + after[changed])
    if k == 0:
        s.first_reply_s[rows] = reply_at - p.t0[rows]
    s.wait_s[rows] += waited_s
    s.prev_after[rows] = after
    s.last_reply_s[rows] = reply_at


def _customer_writes(k: int, rows: np.ndarray, p: _Profile, world: _World, codes: _ValueCodes, s: _State,
                     buffer: _EventBuffer, u: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The customer's side of turn ``k``: when the wait for the agent starts (s) and the tone (0-2).

    Turn 0 starts at creation with the opening message. Later turns start when the
    customer answers (customer-active time after the last reply), reopens a solved
    ticket (hours to ~4 days later, before the automatic close), or, on hold, when
    the agent last wrote. The tone grows with the wait so far, reopens and turns.
    """
    if k == 0:
        return p.t0[rows].copy(), p.opening_tone[rows].copy()
    key = k * _SUBS_PER_TURN
    prev_after, last_reply = s.prev_after[rows], s.last_reply_s[rows]
    reopen = prev_after == _STATUS["solved"]
    on_hold = prev_after == _STATUS["hold"]
    channel, language, temperament = p.channel[rows], p.language[rows], p.temperament[rows]
    gap_h = (CUSTOMER_REPLY_MEDIAN_MINUTES[channel] / 60.0 * np.exp(z[0])
             * np.where(temperament > 1.0, 0.7, 1.0))  # short-tempered customers answer faster
    reply_at = world.customer_clock.later(last_reply, gap_h)
    reopen_at = last_reply + np.clip(20.0 * np.exp(0.9 * z[0]), 0.3, 90.0) * HOUR_S
    wait_from = np.where(reopen, reopen_at, np.where(on_hold, last_reply, reply_at))
    s.reopens[rows] += reopen
    mood = (0.6 * temperament + 0.5 * np.log1p(s.wait_s[rows] / HOUR_S) + 0.8 * s.reopens[rows] + 0.12 * k
            + 0.5 * z[1])
    tone = np.digitize(mood, [1.5, 2.4])
    writes = np.flatnonzero(~on_hold)
    body = np.where(reopen[writes], _POOLS["reopen"].pick(language[writes], tone[writes], u[0, writes]),
                    _POOLS["reply"].pick(language[writes], tone[writes], u[0, writes]))
    buffer.add(rows[writes], wait_from[writes], key + _SUB_CUSTOMER, "customer", "message", body=body)
    reopened = np.flatnonzero((prev_after == _STATUS["pending"]) | reopen)
    buffer.add(rows[reopened], wait_from[reopened], key + _SUB_REOPEN_STATUS, "system", "status",
               value=codes.status + _STATUS["open"])
    return wait_from, tone


def _handler(rng: np.random.Generator, k: int, rows: np.ndarray, p: _Profile, staff: _Staff, s: _State,
             u: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Who answers turn ``k``: (hop, new_group, new_agent, reassign), each shape (len(rows),).

    Turn 0: misrouted tickets are transferred to their home group; the home group's
    agent picks the ticket up. Later turns: transfers (often for "bouncy" tickets and
    issues that escalate), and occasional reassignments inside the group (more after
    a reopen, when the first agent may be busy).
    """
    group, agent = s.group[rows], s.agent[rows]
    if k == 0:
        return (p.misrouted[rows].copy(), p.home_group[rows].copy(), p.primary_agent[rows].copy(),
                np.zeros(len(rows), bool))
    hop_p = np.where(p.bouncy[rows], 0.6, 0.03 + 0.05 * _ISSUE_ESCALATES[p.issue[rows]])
    hop = (u[1] < hop_p) & (s.hops[rows] < 4)
    new_group, new_agent = group.copy(), agent.copy()
    hopped = np.flatnonzero(hop)
    new_group[hopped] = _hop_target(rng, group[hopped], p.home_group[rows[hopped]], u[2, hopped])
    new_agent[hopped] = staff.pick(rng, new_group[hopped])
    reopened = s.prev_after[rows] == _STATUS["solved"]
    maybe = np.flatnonzero(~hop & (u[3] < np.where(reopened, 0.3, 0.05)))
    candidate = staff.pick(rng, group[maybe])
    moved = maybe[candidate != agent[maybe]]
    new_agent[moved] = candidate[candidate != agent[maybe]]
    reassign = np.zeros(len(rows), bool)
    reassign[moved] = True
    return hop, new_group, new_agent, reassign


def _hop_target(rng: np.random.Generator, group: np.ndarray, home: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Where a transfer goes: from home, to escalations (50 %) or elsewhere; off home, back (60 %)."""
    other = _other_group(rng, group)
    to_escalations = np.where(group == _ESCALATIONS, other, _ESCALATIONS)
    return np.where(group == home, np.where(u < 0.5, to_escalations, other),
                    np.where(u < 0.6, home, np.where(u < 0.8, to_escalations, other)))


def _after_status(k: int, rows: np.ndarray, p: _Profile, group: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Status the agent leaves after turn ``k``: solved at a segment end, else hold/open/pending."""
    segment_end = (p.segment_end[rows] == k).any(axis=1)
    hold_p = GROUP_HOLD_P[group]
    during = np.where(u < hold_p, _STATUS["hold"],
                      np.where(u < hold_p + 0.18, _STATUS["open"], _STATUS["pending"]))
    after = np.where(segment_end, _STATUS["solved"], during)
    # A silent customer: the last reply asks something nobody answers; the system solves later.
    silent = (k == p.n_turns[rows] - 1) & p.auto_solve[rows]
    return np.where(silent, _STATUS["pending"], after)


def _agent_body(k: int, after: np.ndarray, language: np.ndarray, upset: np.ndarray,
                u: np.ndarray) -> np.ndarray:
    """Body codes for the agent replies of turn ``k``; the apologetic register when the customer is upset."""
    register = upset.astype(np.int64)
    body = _POOLS["agent_first" if k == 0 else "agent_follow_up"].pick(language, register, u)
    body = np.where(after == _STATUS["hold"], _POOLS["agent_hold"].pick(language, register, u), body)
    return np.where(after == _STATUS["solved"], _POOLS["agent_solve"].pick(language, register, u), body)


def _finish(rng: np.random.Generator, p: _Profile, codes: _ValueCodes, last_reply_s: np.ndarray,
            buffer: _EventBuffer) -> np.ndarray:
    """Automatic solve of silent pending tickets (after 72 h) and closing 4 days after the solve.

    Returns the final solve time per ticket (seconds since start). Automations run
    hourly, hence a jitter of up to an hour.
    """
    n = len(p.t0)
    key = int(p.n_turns.max()) * _SUBS_PER_TURN
    jitter = rng.random((2, n)) * HOUR_S
    solved = np.where(p.auto_solve, last_reply_s + 72 * HOUR_S + jitter[0], last_reply_s)
    silent = np.flatnonzero(p.auto_solve)
    buffer.add(silent, solved[silent], key, "system", "status", value=codes.status + _STATUS["solved"])
    buffer.add(np.arange(n), solved + 96 * HOUR_S + jitter[1], key + 1, "system", "status",
               value=codes.status + _STATUS["closed"])
    return solved
