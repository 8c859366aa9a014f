"""Customer history: what the requester went through strictly before this ticket was created."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.conversation import TIME_KEY_SHIFT, Timeline, to_epoch_seconds

HISTORY_COLUMNS = (
    "requester_previous_tickets",
    "requester_previous_bad_ratings",
    "requester_previous_reopens",
)


def requester_history(tickets: pd.DataFrame, timeline: Timeline) -> pd.DataFrame:
    """Per ticket (rows aligned with ``tickets``), counts over the requester's earlier life.

    - ``requester_previous_tickets``: the requester's tickets created strictly earlier;
    - ``requester_previous_bad_ratings``: bad ratings the requester gave (``satisfaction_at``)
      strictly before this ticket was created;
    - ``requester_previous_reopens``: reopen events on the requester's tickets strictly
      before this ticket was created.
    Tickets without a requester get 0.
    """
    requester, _ = pd.factorize(tickets["requester_id"].to_numpy(dtype=object), use_na_sentinel=True)
    requester = requester.astype("int64")
    has_requester = requester >= 0
    created_s = timeline.created_s
    query = requester * TIME_KEY_SHIFT + created_s

    def count_before(event_requester: np.ndarray, event_s: np.ndarray) -> np.ndarray:
        keys = np.sort(event_requester * TIME_KEY_SHIFT + event_s)
        before = np.searchsorted(keys, query, side="left") - np.searchsorted(
            keys, requester * TIME_KEY_SHIFT, side="left"
        )
        return np.where(has_requester, before, 0).astype("float64")

    valid = has_requester
    previous_tickets = count_before(requester[valid], created_s[valid])

    rated_at = to_epoch_seconds(tickets["satisfaction_at"])
    bad = (tickets["satisfaction"].to_numpy(dtype=object) == "bad") & has_requester & (
        rated_at != np.iinfo("int64").min
    )
    previous_bad = count_before(requester[bad], rated_at[bad])

    reopen_positions = np.flatnonzero(timeline.reopen_event)
    reopen_requester = requester[timeline.ticket[reopen_positions]]
    known = reopen_requester >= 0
    previous_reopens = count_before(reopen_requester[known], timeline.at_s[reopen_positions][known])

    return pd.DataFrame(
        {
            "requester_previous_tickets": previous_tickets,
            "requester_previous_bad_ratings": previous_bad,
            "requester_previous_reopens": previous_reopens,
        }
    )
