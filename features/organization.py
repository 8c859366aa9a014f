"""Organization history: how the customer's organization fared on its earlier tickets.

A requester's own history (:mod:`features.history`) is empty for most tickets (most
requesters write once or twice); their organization's is not. The organization comes
from the attribute named :data:`pipeline.core.contract.ORGANIZATION_ATTRIBUTE` (a
``field`` event, or a static ticket-row column): a ticket's organization is the *first*
value it was given, known from the second it was set (a static column: from
``created_at``). A later change of organization on a ticket is rare and ignored here, so
that each ticket counts for one organization only.

Only what is known at as-of counts. Another ticket counts toward an organization from
``max(its created_at, the second its organization was set)``; a rating from
``max(satisfaction_at, that second)``. Same sorted-key search as :mod:`features.workload`
(keys ``organization * 2**34 + second``), no Python loop per ticket or query.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.attributes import TIME_KEY_SHIFT, AttributeHistory
from features.workload import Needles, Ratings, pile_bad_share
from pipeline.core import contract

# (name, unit, definition): copied into features.build.FEATURES.
ORGANIZATION_FEATURES: tuple[tuple[str, str, str], ...] = (
    ("organization_previous_tickets", "count",
     "Tickets of this ticket's organization (attribute `organization`: each ticket's first value) that "
     "were created, and had that organization set, strictly before this ticket was created; empty "
     "when this ticket has no organization set at or before as-of."),
    ("organization_bad_rating_share", "share 0-1",
     "Among good/bad ratings given strictly before as-of on tickets of this ticket's organization "
     "(counted once the rated ticket's organization was set): (bad + p x overall) / (rated + p), as "
     "`group_bad_rating_share`, p = `team_record.prior_ratings`; empty when this ticket has no "
     "organization at as-of or no rating was given before as-of."),
)
ORGANIZATION_FEATURE_NAMES: tuple[str, ...] = tuple(name for name, _, _ in ORGANIZATION_FEATURES)


def organization_features(
    tickets: pd.DataFrame,
    attributes: AttributeHistory,
    created_s: np.ndarray,
    code: np.ndarray,
    as_of_s: np.ndarray,
    prior_ratings: float,
    ratings: Ratings | None = None,
) -> pd.DataFrame:
    """One row per query (:data:`ORGANIZATION_FEATURE_NAMES`, float64), in query order.

    ``attributes``/``created_s``: from the timeline of ``tickets`` (same ticket order);
    ``code``: each query's ticket position; ``as_of_s``: int64 epoch seconds; ``ratings``:
    ``Ratings.of(tickets, as_of_s)`` when the caller has it already.
    """
    code = np.asarray(code, dtype="int64")
    as_of_s = np.asarray(as_of_s, dtype="int64")
    organization, set_s = first_organization(attributes, len(created_s))
    known_s = np.maximum(created_s, set_s)  # counts for its organization from this second
    has = organization >= 0
    mine = organization[code]
    known_now = (mine >= 0) & (set_s[code] <= as_of_s)

    keys = np.sort(organization[has] * TIME_KEY_SHIFT + known_s[has])
    pile = np.maximum(organization, 0)
    before_creation = (np.searchsorted(keys, pile * TIME_KEY_SHIFT + created_s, side="left")
                       - np.searchsorted(keys, pile * TIME_KEY_SHIFT, side="left"))
    previous = np.where(known_now, before_creation[code], np.nan)

    ratings = ratings or Ratings.of(tickets, as_of_s)
    rated, rated_s, rated_bad, overall = ratings.rated, ratings.rated_s, ratings.bad, ratings.overall
    with_organization = organization[rated] >= 0
    rated = rated[with_organization]
    share = pile_bad_share(
        organization[rated], np.maximum(rated_s[with_organization], set_s[rated]), rated_bad[with_organization],
        Needles.of(np.maximum(mine, 0), as_of_s), overall, prior_ratings,
    )
    return pd.DataFrame({
        "organization_previous_tickets": previous.astype("float64"),
        "organization_bad_rating_share": np.where(known_now, share, np.nan),
    })


def first_organization(attributes: AttributeHistory, n_tickets: int) -> tuple[np.ndarray, np.ndarray]:
    """Per ticket: code of the first organization value it was given (-1: none) and its epoch second."""
    organization = np.full(n_tickets, -1, dtype="int64")
    set_s = np.full(n_tickets, np.iinfo("int64").max, dtype="int64")
    if contract.ORGANIZATION_ATTRIBUTE not in attributes.names:
        return organization, set_s
    at = attributes.names.index(contract.ORGANIZATION_ATTRIBUTE)
    values = attributes.value_codes[at]
    keys = attributes.keys[at][values >= 0]  # sorted by (ticket, second, file order)
    ticket = keys // TIME_KEY_SHIFT
    first = np.ones(len(keys), dtype=bool)
    np.not_equal(ticket[1:], ticket[:-1], out=first[1:])
    organization[ticket[first]] = values[values >= 0][first]
    set_s[ticket[first]] = keys[first] - ticket[first] * TIME_KEY_SHIFT
    return organization, set_s
