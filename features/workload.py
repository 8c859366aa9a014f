"""Cross-ticket features at a moment: the load and the rating record of a ticket's current team.

For each (ticket, as-of) query: how many tickets are open in the ticket's current
group and on its current assignee, and how those teams' tickets were rated before
as-of. Only what is known at as-of counts: events at or before the as-of second,
ratings strictly before it (``satisfaction_at``).

How (no Python loop per ticket, event or query): a ticket sits in a *pile* (group or
assignee value, "none yet" being a pile of its own) while it is created and not
solved/closed. Each ticket's entries into and exits from piles are listed once as
int64 keys ``pile * 2**34 + second`` and sorted; the open count of a pile at a second
is then (entries - exits) up to that key, two ``searchsorted`` per query - the same
sorted-key search as :mod:`features.history`. Ratings are keys of the pile the rated
ticket was in at its rating time, counted the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.conversation import TIME_KEY_SHIFT, Timeline, locate, take, to_epoch_seconds
from pipeline.core import contract

# (name, unit, definition): copied into features.build.FEATURES.
TEAM_FEATURES: tuple[tuple[str, str, str], ...] = (
    ("group_open_tickets", "count",
     "Tickets open at as-of (created at or before as-of, status as of as-of not solved/closed) whose "
     "group as of as-of is this ticket's group as of as-of, this ticket included when open; tickets "
     "with no group event yet form one pile of their own, (none)."),
    ("assignee_open_tickets", "count",
     "`group_open_tickets` for the assignee: open tickets on this ticket's assignee as of as-of; "
     "tickets with no assignee event yet form one unassigned pile."),
    ("group_bad_rating_share", "share 0-1",
     "Among good/bad ratings given strictly before as-of (`satisfaction_at`) on tickets whose group "
     "at their rating time was this ticket's group as of as-of ((none) included): (bad + p x overall) / "
     "(rated + p), where overall is the bad share of all ratings before as-of and p is "
     "`team_record.prior_ratings`; empty when no rating was given before as-of (or p is 0 and the "
     "group has none)."),
    ("assignee_bad_rating_share", "share 0-1",
     "`group_bad_rating_share` for the assignee: ratings of tickets on this ticket's assignee as of "
     "as-of at their rating time (unassigned included), shrunk the same way."),
)
TEAM_FEATURE_NAMES: tuple[str, ...] = tuple(name for name, _, _ in TEAM_FEATURES)

_DONE_CODES = np.array([contract.STATUSES.index(s) for s in contract.DONE_STATUSES], dtype="int8")
_NO_TIME = np.iinfo("int64").min
# Pile numbers: value code + 1, so 0 is "no value set yet" and -1 "not in any pile" (solved/closed).
_NO_VALUE_PILE = 0
_OUT = -1


@dataclass(frozen=True)
class Ratings:
    """The rated tickets (:func:`rated_tickets`) and the overall bad share before each query
    (:func:`overall_bad_share`): what the team and the organization records both read."""

    rated: np.ndarray
    rated_s: np.ndarray
    bad: np.ndarray
    overall: np.ndarray

    @classmethod
    def of(cls, tickets: pd.DataFrame, as_of_s: np.ndarray) -> Ratings:
        rated, rated_s, bad = rated_tickets(tickets)
        return cls(rated, rated_s, bad, overall_bad_share(rated_s, bad, np.asarray(as_of_s, dtype="int64")))


def team_features(
    tickets: pd.DataFrame, timeline: Timeline, code: np.ndarray, as_of_s: np.ndarray, prior_ratings: float,
    ratings: Ratings | None = None,
) -> pd.DataFrame:
    """One row per query (:data:`TEAM_FEATURE_NAMES`, float64), in query order.

    ``tickets``: the table ``timeline`` was built from (same rows, same order);
    ``code``: each query's ticket position in ``timeline.ticket_ids``; ``as_of_s``: int64
    epoch seconds; ``prior_ratings``: ``team_record.prior_ratings``; ``ratings``:
    ``Ratings.of(tickets, as_of_s)`` when the caller has it already.
    """
    if len(tickets) != len(timeline.ticket_ids):
        raise ValueError("team_features needs the tickets table the timeline was built from")
    code = np.asarray(code, dtype="int64")
    as_of_s = np.asarray(as_of_s, dtype="int64")
    query_event = _locate_sorted(timeline, code, as_of_s)
    ratings = ratings or Ratings.of(tickets, as_of_s)
    rated, rated_s, rated_bad, overall = ratings.rated, ratings.rated_s, ratings.bad, ratings.overall
    rated_event = locate(timeline, rated, rated_s)  # rated codes ascend: already sorted
    done = np.isin(timeline.status_now, _DONE_CODES)
    out: dict[str, np.ndarray] = {}
    for team, value_codes in (("group", timeline.group_code), ("assignee", timeline.assignee_code)):
        current = _current_value(value_codes, timeline.starts)
        queries = Needles.of(take(current, query_event, -1).astype("int64") + 1, as_of_s)
        rated_pile = take(current, rated_event, -1).astype("int64") + 1
        out[f"{team}_open_tickets"] = _open_tickets(timeline, current, done, queries)
        del current  # overwritten by _open_tickets
        out[f"{team}_bad_rating_share"] = pile_bad_share(rated_pile, rated_s, rated_bad, queries, overall, prior_ratings)
    return pd.DataFrame({name: out[name].astype("float64") for name in TEAM_FEATURE_NAMES})


def _current_value(value_codes: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Per event: the ticket's value after it (latest change at or before it), -1 before any (int32)."""
    positions = np.arange(len(value_codes), dtype="int32" if len(value_codes) < 2**31 else "int64")
    # A ticket's first event is a barrier even without a value (its code, -1, is what is then
    # found): the running maximum never reaches back into the previous ticket.
    positions[(value_codes < 0) & ~starts] = -1
    if len(positions):
        np.maximum.accumulate(positions, out=positions)
    return value_codes[positions].astype("int32", copy=False)


def _keys(pile: np.ndarray, seconds: np.ndarray) -> np.ndarray:
    return pile.astype("int64") * TIME_KEY_SHIFT + seconds


@dataclass(frozen=True)
class Needles:
    """Query keys (pile, as-of second), sorted once: ``searchsorted`` on millions of needles
    runs several times faster when they come in order (it reuses the previous bound)."""

    pile: np.ndarray  # per query, int64
    order: np.ndarray  # query positions by key
    sorted_keys: np.ndarray

    @classmethod
    def of(cls, pile: np.ndarray, moment_s: np.ndarray) -> Needles:
        keys = _keys(pile, moment_s)
        order = np.argsort(keys)
        return cls(pile=pile, order=order, sorted_keys=keys[order])

    def up_to(self, sorted_keys: np.ndarray, side: str) -> np.ndarray:
        """Per query: keys of its pile at or before (side="right") or strictly before (side="left") its moment."""
        found = np.empty(len(self.order), dtype="int64")
        found[self.order] = np.searchsorted(sorted_keys, self.sorted_keys, side=side)
        piles = np.arange(int(self.pile.max(initial=0)) + 1, dtype="int64")
        pile_start = np.searchsorted(sorted_keys, piles * TIME_KEY_SHIFT, side="left")
        return found - pile_start[self.pile]


def _locate_sorted(timeline: Timeline, code: np.ndarray, as_of_s: np.ndarray) -> np.ndarray:
    """:func:`features.conversation.locate`, asked in key order (same answers, faster on many queries)."""
    order = np.argsort(_keys(code, as_of_s))
    index = np.empty(len(code), dtype="int64")
    index[order] = locate(timeline, code[order], as_of_s[order])
    return index


def _open_tickets(timeline: Timeline, current: np.ndarray, done: np.ndarray, queries: Needles) -> np.ndarray:
    """Open tickets in each query's pile at its as-of second.

    ``current`` (per event, from :func:`_current_value`) is overwritten with each event's pile,
    to hold only one 4-byte array per event.
    """
    pile = current
    pile += 1
    pile[done] = _OUT
    starts = timeline.starts
    # Before its first event a ticket is new (open) with no value set.
    changed = np.empty(len(pile), dtype=bool)
    np.not_equal(pile[1:], pile[:-1], out=changed[1:])
    changed[starts] = pile[starts] != _NO_VALUE_PILE
    moved = np.flatnonzero(changed)
    del changed
    # A ticket enters its pile at creation, in the state its events up to then (up to a few
    # minutes early) left it; later events move it between piles.
    moved = moved[timeline.at_s[moved] > timeline.created_s[timeline.ticket[moved]]]
    move_s, to_pile = timeline.at_s[moved], pile[moved]
    from_pile = np.where(starts[moved], _NO_VALUE_PILE, pile[np.maximum(moved - 1, 0)])
    n_tickets = len(timeline.created_s)
    creation_pile = take(pile, locate(timeline, np.arange(n_tickets), timeline.created_s), _NO_VALUE_PILE)
    in_pile = creation_pile != _OUT
    entries = np.sort(np.concatenate([
        _keys(creation_pile[in_pile], timeline.created_s[in_pile]),
        _keys(to_pile[to_pile != _OUT], move_s[to_pile != _OUT]),
    ]))
    exits = np.sort(_keys(from_pile[from_pile != _OUT], move_s[from_pile != _OUT]))
    return queries.up_to(entries, "right") - queries.up_to(exits, "right")


def rated_tickets(tickets: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rated tickets (good/bad with a rating time): ticket codes, rating seconds, bad flags."""
    rated_s_all = to_epoch_seconds(tickets["satisfaction_at"])
    labelled = tickets["satisfaction"].isin(contract.SATISFACTION_LABELS).to_numpy() & (rated_s_all != _NO_TIME)
    rated = np.flatnonzero(labelled).astype("int64")
    bad = tickets["satisfaction"].isin(["bad"]).to_numpy()[rated]
    return rated, rated_s_all[rated], bad


def overall_bad_share(rated_s: np.ndarray, rated_bad: np.ndarray, as_of_s: np.ndarray) -> np.ndarray:
    """Bad share of all ratings strictly before each as-of; NaN when there is none."""
    everyone = Needles.of(np.zeros(len(as_of_s), dtype="int64"), as_of_s)  # all ratings: one pile
    rated_before = everyone.up_to(np.sort(rated_s), "left")
    bad_before = everyone.up_to(np.sort(rated_s[rated_bad]), "left")
    return np.divide(bad_before, rated_before, out=np.full(len(as_of_s), np.nan), where=rated_before > 0)


def pile_bad_share(
    rated_pile: np.ndarray, rated_s: np.ndarray, rated_bad: np.ndarray,
    queries: Needles, overall: np.ndarray, prior_ratings: float,
) -> np.ndarray:
    """Each query pile's bad share among ratings strictly before as-of, shrunk toward ``overall``."""
    keys = _keys(rated_pile, rated_s)
    rated_here = queries.up_to(np.sort(keys), "left")
    bad_here = queries.up_to(np.sort(keys[rated_bad]), "left")
    numerator = bad_here + prior_ratings * overall  # NaN wherever overall is (no rating at all yet)
    denominator = rated_here + prior_ratings
    return np.divide(numerator, denominator, out=np.full(len(overall), np.nan), where=denominator > 0)
