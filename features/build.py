"""The feature table: one row per (ticket, as-of moment), defined once for training and scoring.

:func:`build_features` is the only way features are made. Training snapshots and the
nightly scoring run call it with different as-of moments; nothing else computes a
feature. :data:`FEATURES` documents each column (name, unit, definition); the README
table is generated from it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.attributes import attribute_features
from features.calendar import (
    BusinessHours,
    business_clock_minutes,
    is_business_time,
    local_wall_clock,
)
from features.conversation import (
    Timeline,
    build_timeline,
    locate,
    take,
    ticket_codes,
    to_epoch_seconds,
)
from features.history import requester_history
from features.organization import ORGANIZATION_FEATURES, organization_features
from features.text import text_signals
from features.workload import TEAM_FEATURES, Ratings, team_features
from pipeline.core import contract
from pipeline.core.errors import UserError

_NO_TIME = np.iinfo("int64").min
NONE_LEVEL = "(none)"


@dataclass(frozen=True)
class Feature:
    name: str
    unit: str
    definition: str
    categorical: bool = False


FEATURES: tuple[Feature, ...] = (
    Feature("customer_messages", "count", "Public messages by the customer."),
    Feature("agent_replies", "count", "Public messages by an agent."),
    Feature("ping_pong_count", "count", "Times the speaker changes between customer and agent along the public messages (customer, customer, agent, customer, agent -> 3)."),
    Feature("first_reply_minutes", "minutes", "From `created_at` to the first public agent message; empty while there is none."),
    Feature("first_reply_business_minutes", "business minutes", "`first_reply_minutes` counted in business hours only."),
    Feature("requester_wait_minutes", "minutes", "Total time the customer's latest public message was unanswered by an agent while the ticket was not solved or closed (stretches end at the next agent message, at solve/close, or at as-of)."),
    Feature("requester_wait_business_minutes", "business minutes", "`requester_wait_minutes` counted in business hours only."),
    Feature("current_wait_minutes", "minutes", "If at as-of the ticket is not solved/closed and the last public message is the customer's: minutes since the first customer message not yet answered; else 0."),
    Feature("current_wait_business_minutes", "business minutes", "`current_wait_minutes` counted in business hours only."),
    Feature("minutes_since_last_agent_reply", "minutes", "Since the latest public agent message; empty when there is none."),
    Feature("reopens", "count", "Status changes from solved or closed to any other status."),
    Feature("times_solved", "count", "Status changes into solved or closed from another status."),
    Feature("group_hops", "count", "Changes of group after the first group was set (setting the same group again is no change)."),
    Feature("assignee_hops", "count", "Changes of assignee after the first assignee was set."),
    Feature("notes", "count", "Internal notes."),
    Feature("has_assignee", "0/1", "An assignee has been set."),
    Feature("age_minutes", "minutes", "From `created_at` to as-of."),
    Feature("created_hour", "hour 0-23", "Local hour of creation in the business-hours time zone."),
    Feature("created_weekday", "0=Mon..6=Sun", "Local weekday of creation."),
    Feature("created_on_weekend", "0/1", "Created on a day outside the business weekdays."),
    Feature("created_after_hours", "0/1", "Created outside business hours."),
    Feature("channel", "category", "Ticket channel (email, chat, phone, web, social, ...).", True),
    Feature("current_priority", "category", "Latest priority set by a priority event up to as-of; (none) if never set.", True),
    Feature("current_group", "category", "Latest group set by a group event up to as-of; (none) if never set.", True),
    Feature("status_now", "category", "Latest status from status events up to as-of (new before any).", True),
    Feature("last_message_chars", "characters", "Length of the latest customer message."),
    Feature("last_message_question_marks", "count", "Question marks in the latest customer message."),
    Feature("last_message_exclamations", "count", "Exclamation marks in the latest customer message."),
    Feature("last_message_shouting", "0/1", "Latest customer message mostly in capitals (>= 8 Latin letters, >= 70 % capitals)."),
    Feature("last_message_negative_words", "count", "Negative or frustrated wording (English and Korean word list) in the latest customer message."),
    Feature("last_message_urgent_words", "count", "Urgent wording (English and Korean word list) in the latest customer message."),
    Feature("customer_text_chars", "characters", "Total length of all customer messages."),
    Feature("customer_negative_words", "count", "Negative wording over all customer messages."),
    Feature("customer_urgent_words", "count", "Urgent wording over all customer messages."),
    Feature("customer_exclamations", "count", "Exclamation marks over all customer messages."),
    Feature("customer_shouting_messages", "count", "Customer messages mostly in capitals."),
    Feature("customer_writes_korean", "0/1", "Some customer message contains Hangul."),
    Feature("subject_urgent_words", "count", "Urgent wording in the ticket subject."),
    Feature("subject_negative_words", "count", "Negative wording in the ticket subject."),
    Feature("requester_previous_tickets", "count", "The requester's tickets created strictly before this one."),
    Feature("requester_previous_bad_ratings", "count", "Bad ratings the requester gave strictly before this ticket was created."),
    Feature("requester_previous_reopens", "count", "Reopens on the requester's tickets strictly before this ticket was created."),
    *(Feature(name, unit, definition) for name, unit, definition in TEAM_FEATURES + ORGANIZATION_FEATURES),
)
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
CATEGORICAL_FEATURES: tuple[str, ...] = tuple(f.name for f in FEATURES if f.categorical)
# Features that read other tickets than the query's own and its requester's (team load and
# record, organization history): an engine that splits the export by requester computes
# these in a separate step over every ticket (features_from_timeline(cross_ticket=False)
# leaves them empty; cross_ticket_features fills them).
CROSS_TICKET_FEATURES: tuple[str, ...] = tuple(name for name, _, _ in TEAM_FEATURES + ORGANIZATION_FEATURES)
KEY_COLUMNS = ("ticket_id", "as_of")
# Raw text carried beside the features for the models' learned text scores (models/text_model.py):
# the subject and the customer's first message, if it was written at or before as-of.
OPENING_TEXT = "opening_text"


def latest_timestamp(tickets: pd.DataFrame, events: pd.DataFrame) -> pd.Timestamp:
    """The export's latest known moment: the default as-of for scoring."""
    candidates = [tickets["created_at"].max()]
    if len(events):
        candidates.append(events["at"].max())
    known = [c for c in candidates if pd.notna(c)]
    if not known:
        raise UserError("the export has no clean ticket or event (every row rejected?): nothing to work on")
    return max(known)


def build_features(
    tickets: pd.DataFrame,
    events: pd.DataFrame,
    as_of: pd.Timestamp | str | pd.DataFrame | None = None,
    business_hours: BusinessHours | None = None,
    static_attributes: tuple[str, ...] = (),
    prior_ratings: float | None = None,
) -> pd.DataFrame:
    """Features of tickets as of a moment, from events at or before that moment only.

    Parameters
    ----------
    tickets, events : canonical tables from :func:`pipeline.sources.ingest.load_export`.
    as_of : a single moment (default: the export's latest timestamp) - one row per
        ticket created at or before it; or a frame with columns ``ticket_id`` and
        ``as_of`` (UTC timestamps) - one row per frame row, extra columns kept.
    business_hours : opening hours for the business-minute features.
    static_attributes : ticket-row columns known at creation (params ``attributes.static``).
    prior_ratings : params ``team_record.prior_ratings`` (None: its default).

    Returns
    -------
    DataFrame with ``ticket_id``, ``as_of``, any extra query columns, then
    :data:`FEATURE_NAMES` in order, then one ``attr_<name>`` column per attribute of the
    export (sorted by name; text as ``category``), then ``opening_text``; durations in
    minutes (float), categoricals as pandas ``category``.
    """
    timeline = build_timeline(tickets, events, business_hours, static_attributes, prior_ratings)
    return features_from_timeline(tickets, timeline, as_of, events)


def features_from_timeline(
    tickets: pd.DataFrame,
    timeline: Timeline,
    as_of: pd.Timestamp | str | pd.DataFrame | None,
    events: pd.DataFrame | None = None,
    cross_ticket: bool = True,
) -> pd.DataFrame:
    """:func:`build_features` on a prepared :class:`Timeline` (to query it several times).

    ``cross_ticket=False``: the :data:`CROSS_TICKET_FEATURES` columns are left empty (NaN),
    for an engine that computes them over the whole export with :func:`cross_ticket_features`.
    """
    queries = _queries(tickets, timeline, as_of, events)
    # Hashed in Arrow, each run of one ticket's rows once (millions of snapshot rows come grouped by ticket).
    code = ticket_codes(tickets["ticket_id"], queries["ticket_id"])
    if (code < 0).any():
        missing = queries["ticket_id"][code < 0].iloc[0]
        raise ValueError(f"as-of rows name ticket {missing!r}, which is not in the tickets table")
    as_of_s = to_epoch_seconds(queries["as_of"])
    out = pd.concat(
        [
            queries.reset_index(drop=True),
            _conversation_features(timeline, code, as_of_s),
            _ticket_features(tickets, timeline, code),
            (_cross_ticket_columns(tickets, timeline, code, as_of_s) if cross_ticket
             else pd.DataFrame(np.nan, index=range(len(code)), columns=list(CROSS_TICKET_FEATURES))),
            attribute_features(timeline.attributes, code, as_of_s),
        ],
        axis=1,
    )
    for name in CATEGORICAL_FEATURES:
        out[name] = out[name].astype("category")
    out[OPENING_TEXT] = _opening_text(tickets, timeline, code, as_of_s)
    return out[list(queries.columns) + list(FEATURE_NAMES) + list(timeline.attributes.feature_names) + [OPENING_TEXT]]


def status_at(tickets: pd.DataFrame, timeline: Timeline, queries: pd.DataFrame) -> pd.Categorical:
    """The ``status_now`` feature of each query (``ticket_id``, ``as_of``) alone, the same values as
    :func:`features_from_timeline` gives: what a nightly run needs to find the open tickets before
    it computes the other features of those only (at 1M tickets, 15k are open)."""
    code = ticket_codes(tickets["ticket_id"], queries["ticket_id"])
    if (code < 0).any():
        raise ValueError(f"as-of rows name ticket {queries['ticket_id'][code < 0].iloc[0]!r}, not in the tickets table")
    state = timeline.state_at(locate(timeline, code, to_epoch_seconds(queries["as_of"])))
    return _categorical(np.asarray(contract.STATUSES, dtype=object), state["status_code"].astype("int64"))


def cross_ticket_features(tickets: pd.DataFrame, timeline: Timeline, queries: pd.DataFrame) -> pd.DataFrame:
    """The :data:`CROSS_TICKET_FEATURES` of ``queries`` (``ticket_id``, ``as_of``), in query order.

    ``timeline`` must be built from every ticket of the export (the team and organization
    piles count them all). Its events may be reduced to what these features read - status,
    group and assignee events and the organization's field events, no text - which is how
    an engine that partitions the export gathers this step onto one machine.
    """
    code = pd.Index(timeline.ticket_ids).get_indexer(queries["ticket_id"].to_numpy(dtype=object))
    if (code < 0).any():
        raise ValueError(f"as-of rows name ticket {queries['ticket_id'][code < 0].iloc[0]!r}, not in the tickets table")
    as_of_s = to_epoch_seconds(pd.to_datetime(queries["as_of"], utc=True))
    return _cross_ticket_columns(tickets, timeline, code, as_of_s)


def _cross_ticket_columns(tickets: pd.DataFrame, timeline: Timeline, code: np.ndarray, as_of_s: np.ndarray) -> pd.DataFrame:
    ratings = Ratings.of(tickets, as_of_s)  # read by both records: taken once
    team = team_features(tickets, timeline, code, as_of_s, timeline.prior_ratings, ratings)
    organization = organization_features(tickets, timeline.attributes, timeline.created_s, code, as_of_s,
                                         timeline.prior_ratings, ratings)
    return pd.concat([team, organization], axis=1)[list(CROSS_TICKET_FEATURES)]


def _opening_text(tickets: pd.DataFrame, timeline: Timeline, code: np.ndarray, as_of_s: np.ndarray) -> np.ndarray:
    subject = (tickets["subject"].fillna("").astype(str).to_numpy(dtype=object) if "subject" in tickets
               else np.full(len(tickets), "", dtype=object))[code]
    first_s = timeline.first_customer_message_s[code]
    written = (first_s != _NO_TIME) & (first_s <= as_of_s)
    first_message = np.where(written, timeline.first_customer_body[code], "")
    return (pd.Series(subject, dtype=object) + "\n" + pd.Series(first_message, dtype=object)).to_numpy(dtype=object)


def _queries(tickets, timeline, as_of, events) -> pd.DataFrame:
    if isinstance(as_of, pd.DataFrame):
        missing = [c for c in KEY_COLUMNS if c not in as_of.columns]
        if missing:
            raise ValueError(f"as-of frame needs columns {KEY_COLUMNS}; missing {missing}")
        queries = as_of.copy()
        queries["as_of"] = pd.to_datetime(queries["as_of"], utc=True)
        return queries[list(KEY_COLUMNS) + [c for c in queries.columns if c not in KEY_COLUMNS]]
    if as_of is None:
        if events is None:
            raise ValueError("as_of is required when the events table is not given")
        moment = latest_timestamp(tickets, events)
    else:
        moment = pd.Timestamp(as_of)
        moment = moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")
    # One-second resolution, like every other time comparison in the features.
    eligible = to_epoch_seconds(tickets["created_at"]) <= to_epoch_seconds(moment)[0]
    return pd.DataFrame(
        {"ticket_id": tickets["ticket_id"].to_numpy(dtype=object)[eligible],
         "as_of": pd.Series(moment, index=range(int(eligible.sum()))).astype("datetime64[ns, UTC]")}
    )


def _minutes(later_s: np.ndarray, earlier_s: np.ndarray) -> np.ndarray:
    valid = (later_s != _NO_TIME) & (earlier_s != _NO_TIME)
    return np.where(valid, (later_s - earlier_s) / 60.0, np.nan)


def _conversation_features(timeline: Timeline, code: np.ndarray, as_of_s: np.ndarray) -> pd.DataFrame:
    index = locate(timeline, code, as_of_s)
    state = timeline.state_at(index)

    def at(name: str) -> np.ndarray:
        values = state[name]
        # Counts and codes come as small integers; features are float64 (times stay int64 seconds).
        return values.astype("float64") if values.dtype.kind in "iu" and values.dtype.itemsize <= 4 else values

    waiting = at("waiting").astype(bool)
    event_s = take(timeline.at_s, index, _NO_TIME)
    hours = timeline.hours
    as_of_business = business_clock_minutes(as_of_s, hours)
    since_event = np.where(waiting, (as_of_s - event_s) / 60.0, 0.0)
    since_event_business = np.where(waiting, as_of_business - at("business_minutes"), 0.0)
    stretch_start_s = np.where(waiting, at("stretch_start_s"), as_of_s)
    agent_replies = at("agent_replies")
    created_s = timeline.created_s[code]
    first_agent_s = np.where(agent_replies > 0, timeline.first_agent_reply_s[code], _NO_TIME)
    first_reply_business = np.where(
        first_agent_s != _NO_TIME,
        business_clock_minutes(np.where(first_agent_s != _NO_TIME, first_agent_s, created_s), hours)
        - business_clock_minutes(created_s, hours),
        np.nan,
    )
    status_code = at("status_code").astype("int64")
    group_code = at("group_code").astype("int64")
    priority_code = at("priority_code").astype("int64")
    frame = pd.DataFrame(
        {
            "customer_messages": at("customer_messages"),
            "agent_replies": agent_replies,
            "ping_pong_count": at("ping_pong_count"),
            "first_reply_minutes": _minutes(first_agent_s, created_s),
            "first_reply_business_minutes": first_reply_business,
            "requester_wait_minutes": at("waited_minutes_before") + since_event,
            "requester_wait_business_minutes": at("waited_business_before") + since_event_business,
            "current_wait_minutes": np.where(waiting, (as_of_s - stretch_start_s) / 60.0, 0.0),
            "current_wait_business_minutes": np.where(
                waiting, as_of_business - business_clock_minutes(stretch_start_s, hours), 0.0
            ),
            "minutes_since_last_agent_reply": _minutes(
                np.where(at("last_agent_reply_s") != _NO_TIME, as_of_s, _NO_TIME),
                at("last_agent_reply_s"),
            ),
            "reopens": at("reopens"),
            "times_solved": at("times_solved"),
            "group_hops": at("group_hops"),
            "assignee_hops": at("assignee_hops"),
            "notes": at("notes"),
            "has_assignee": at("has_assignee").astype("float64"),
            "age_minutes": (as_of_s - created_s) / 60.0,
            "current_priority": _levels(timeline.priority_values, priority_code),
            "current_group": _levels(timeline.group_values, group_code),
            "status_now": _categorical(np.asarray(contract.STATUSES, dtype=object), status_code),
            "last_message_chars": at("last_chars"),
            "last_message_question_marks": at("last_question_marks"),
            "last_message_exclamations": at("last_exclamations"),
            "last_message_shouting": at("last_shouting"),
            "last_message_negative_words": at("last_negative_words"),
            "last_message_urgent_words": at("last_urgent_words"),
            "customer_text_chars": at("total_chars"),
            "customer_negative_words": at("total_negative_words"),
            "customer_urgent_words": at("total_urgent_words"),
            "customer_exclamations": at("total_exclamations"),
            "customer_shouting_messages": at("total_shouting"),
            "customer_writes_korean": (at("total_korean") > 0).astype("float64"),
        }
    )
    return frame


def _levels(values: np.ndarray, codes: np.ndarray) -> pd.Categorical:
    names = np.append(np.asarray(values, dtype=object), NONE_LEVEL)
    return _categorical(names, np.where(codes >= 0, codes, len(names) - 1))


def _categorical(names: np.ndarray, codes: np.ndarray) -> pd.Categorical:
    """``names[codes]`` as a pandas categorical, identical to ``.astype("category")`` of those
    strings, without making one Python string per row first (seconds at millions of snapshot rows)."""
    present = np.unique(codes)
    # The few present names go through the very conversion the rows would have: same categories, same order.
    levels = pd.Series(names[present]).astype("category")
    remap = np.full(len(names), -1, dtype="int64")
    remap[present] = levels.cat.codes.to_numpy()
    return pd.Categorical.from_codes(remap[codes], dtype=levels.dtype)


def _ticket_features(tickets: pd.DataFrame, timeline: Timeline, code: np.ndarray) -> pd.DataFrame:
    """Features fixed at creation (calendar, channel, subject, history), looked up per query row."""
    hours = timeline.hours
    created_s = timeline.created_s
    local = local_wall_clock(created_s, hours.timezone)
    day = local // 86_400
    weekday = (day + 3) % 7  # 1970-01-01 was a Thursday
    subject = text_signals(tickets["subject"] if "subject" in tickets else pd.Series([""] * len(tickets)))
    per_ticket = pd.DataFrame(
        {
            "created_hour": ((local - day * 86_400) // 3600).astype("float64"),
            "created_weekday": weekday.astype("float64"),
            "created_on_weekend": (~np.isin(weekday, hours.weekdays)).astype("float64"),
            "created_after_hours": (~is_business_time(created_s, hours)).astype("float64"),
            # Per ticket here, so that millions of snapshot rows take codes, not strings.
            "channel": pd.Series(tickets["channel"].fillna("unknown").to_numpy(dtype=object)).astype("category"),
            "subject_urgent_words": subject["urgent_words"].to_numpy(),
            "subject_negative_words": subject["negative_words"].to_numpy(),
        }
    )
    per_ticket = pd.concat([per_ticket, requester_history(tickets, timeline)], axis=1)
    rows = per_ticket.iloc[code].reset_index(drop=True)
    rows["channel"] = rows["channel"].cat.remove_unused_categories()  # as if made from the rows' strings
    return rows


def features_markdown_table() -> str:
    """The README's feature table, generated from :data:`FEATURES` so the two never disagree."""
    rows = ["| feature | unit | definition |", "| --- | --- | --- |"]
    rows += [f"| `{f.name}` | {f.unit} | {f.definition} |" for f in FEATURES]
    return "\n".join(rows)
