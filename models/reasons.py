"""Plain-language reasons: why a ticket's risk is high, in words an agent reads at a glance.

The reasons are the features that push this ticket's risk up the most, taken from
LightGBM's per-row contributions (SHAP values on the log-odds), each phrased with
the ticket's own value ("customer waiting 26 h for a reply"). At most
``max_reasons``, and only contributions above ``min_contribution`` log-odds.
Phrases are built one feature at a time over all rows, never one row at a time.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

Phrase = Callable[[pd.Series], pd.Series]


def duration(minutes: pd.Series) -> pd.Series:
    """Minutes as a short human duration: "45 min", "26 h", "3 days"."""
    m = pd.to_numeric(minutes, errors="coerce").fillna(0.0).clip(lower=0)
    minutes_text = m.round().astype("int64").astype(str) + " min"
    hours_text = (m / 60).round().astype("int64").astype(str) + " h"
    days_text = (m / 1440).round().astype("int64").astype(str) + " days"
    return minutes_text.where(m < 90, hours_text.where(m < 48 * 60, days_text))


def _count(value: pd.Series) -> pd.Series:
    return pd.to_numeric(value, errors="coerce").fillna(0).round().astype("int64")


def times(value: pd.Series) -> pd.Series:
    """1 -> "once", 2 -> "twice", n -> "n times"."""
    n = _count(value)
    return n.map({1: "once", 2: "twice"}).fillna(n.astype(str) + " times")


def plural(value: pd.Series, word: str, words: str | None = None) -> pd.Series:
    """"1 message", "3 messages" (``words`` for irregular plurals)."""
    n = _count(value)
    return n.astype(str) + " " + np.where(n == 1, word, words or word + "s")


def _text(value: pd.Series) -> pd.Series:
    return value.astype(object).astype(str)


PHRASES: dict[str, Phrase] = {
    "current_wait_minutes": lambda v: "customer waiting " + duration(v) + " for a reply",
    "current_wait_business_minutes": lambda v: "customer waiting " + duration(v) + " of business hours for a reply",
    "requester_wait_minutes": lambda v: "customer has waited " + duration(v) + " in total",
    "requester_wait_business_minutes": lambda v: "customer has waited " + duration(v) + " of business hours in total",
    "first_reply_minutes": lambda v: pd.Series(
        np.where(v.isna(), "no agent reply yet", "first reply took " + duration(v)), index=v.index),
    "first_reply_business_minutes": lambda v: pd.Series(
        np.where(v.isna(), "no agent reply yet", "first reply took " + duration(v) + " of business hours"), index=v.index),
    "minutes_since_last_agent_reply": lambda v: pd.Series(
        np.where(v.isna(), "no agent reply yet", "last agent reply " + duration(v) + " ago"), index=v.index),
    "ping_pong_count": lambda v: plural(v, "back-and-forth exchange"),
    "customer_messages": lambda v: "customer wrote " + plural(v, "message"),
    "agent_replies": lambda v: plural(v, "agent reply", "agent replies"),
    "reopens": lambda v: "reopened " + times(v),
    "times_solved": lambda v: "marked solved " + times(v),
    "group_hops": lambda v: "passed between " + (_count(v) + 1).astype(str) + " groups",
    "assignee_hops": lambda v: "reassigned " + times(v),
    "notes": lambda v: plural(v, "internal note"),
    "has_assignee": lambda v: pd.Series(np.where(_count(v) > 0, "assigned", "nobody assigned yet"), index=v.index),
    "age_minutes": lambda v: "open for " + duration(v),
    "created_hour": lambda v: "created at " + _count(v).astype(str) + ":00",
    "created_weekday": lambda v: "created on " + _count(v).map(dict(enumerate(
        ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]))).fillna("?"),
    "created_on_weekend": lambda v: pd.Series(np.where(_count(v) > 0, "created on a weekend", "created on a weekday"), index=v.index),
    "created_after_hours": lambda v: pd.Series(np.where(_count(v) > 0, "created after hours", "created in business hours"), index=v.index),
    "channel": lambda v: "came in by " + _text(v),
    "current_priority": lambda v: "priority " + _text(v),
    "current_group": lambda v: "in group " + _text(v),
    "status_now": lambda v: "status " + _text(v),
    "last_message_chars": lambda v: "last message " + _count(v).astype(str) + " characters long",
    "last_message_question_marks": lambda v: plural(v, "question mark") + " in last message",
    "last_message_exclamations": lambda v: plural(v, "exclamation mark") + " in last message",
    "last_message_shouting": lambda v: pd.Series(np.where(_count(v) > 0, "last message in capitals", "calm capitalisation"), index=v.index),
    "last_message_negative_words": lambda v: pd.Series(np.where(_count(v) > 0, "angry wording in last message", "no angry wording in last message"), index=v.index),
    "last_message_urgent_words": lambda v: pd.Series(np.where(_count(v) > 0, "urgent wording in last message", "no urgent wording in last message"), index=v.index),
    "customer_text_chars": lambda v: "customer wrote " + _count(v).astype(str) + " characters",
    "customer_negative_words": lambda v: plural(v, "angry word") + " from the customer",
    "customer_urgent_words": lambda v: plural(v, "urgent word") + " from the customer",
    "customer_exclamations": lambda v: plural(v, "exclamation mark") + " from the customer",
    "customer_shouting_messages": lambda v: plural(v, "message") + " in capitals",
    "customer_writes_korean": lambda v: pd.Series(np.where(_count(v) > 0, "customer writes Korean", "customer writes English"), index=v.index),
    "subject_urgent_words": lambda v: pd.Series(np.where(_count(v) > 0, "urgent wording in subject", "calm subject"), index=v.index),
    "subject_negative_words": lambda v: pd.Series(np.where(_count(v) > 0, "angry wording in subject", "calm subject"), index=v.index),
    "requester_previous_tickets": lambda v: "customer has " + plural(v, "earlier ticket"),
    "requester_previous_bad_ratings": lambda v: "customer rated " + plural(v, "earlier ticket") + " bad",
    "requester_previous_reopens": lambda v: "customer had " + plural(v, "earlier reopen"),
    "text_risk_score": lambda v: pd.Series("opening message worded like past unhappy customers", index=v.index),
    "text_urgency_score": lambda v: pd.Series("opening message worded like urgent tickets", index=v.index),
}


def phrase(feature: str, values: pd.Series) -> pd.Series:
    """The reason text of ``feature`` for each value (falls back to "feature = value")."""
    if feature in PHRASES:
        return PHRASES[feature](values.reset_index(drop=True)).astype(str)
    return (feature.replace("_", " ") + " = " + values.astype(str)).reset_index(drop=True)


def top_reasons(
    contributions: pd.DataFrame, features: pd.DataFrame, max_reasons: int, min_contribution: float,
    separator: str = "; ",
) -> pd.Series:
    """Per row, the phrases of the features pushing risk up the most, joined by ``separator``.

    ``contributions``: (n_rows, n_features) log-odds contributions; ``features``: the same
    rows' feature values. Rows with no contribution above ``min_contribution`` get "".
    """
    values = contributions.to_numpy(dtype="float64")
    n_rows, n_features = values.shape
    k = min(max_reasons, n_features)
    if n_rows == 0 or k == 0:
        return pd.Series([""] * n_rows, dtype=object)
    top = np.argsort(-values, axis=1, kind="stable")[:, :k]
    top_values = np.take_along_axis(values, top, axis=1)
    names = contributions.columns.to_numpy()
    columns = []
    for slot in range(k):
        slot_text = np.full(n_rows, "", dtype=object)
        for feature_index in np.unique(top[:, slot]):
            rows = np.flatnonzero((top[:, slot] == feature_index) & (top_values[:, slot] > min_contribution))
            if len(rows):
                name = names[feature_index]
                slot_text[rows] = phrase(name, features[name].iloc[rows]).to_numpy(dtype=object)
        columns.append(slot_text)
    joined = pd.Series(columns[0], dtype=object)
    for slot_text in columns[1:]:
        extra = pd.Series(slot_text, dtype=object)
        joined = joined.where(extra == "", joined + separator + extra)
    return joined
