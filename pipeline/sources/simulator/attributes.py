"""Ticket attributes as point-in-time facts (``field`` events) and how they move the rating.

Four attributes, each set at creation by the system (the help-centre form, the
customer's account) and some changed later:

- ``form``: the ticket form; a specific form on web (and email sent to a team's
  address), else ``general``.
- ``product_area``: picked by the customer on a specific form (right 75 % of the
  time), empty on ``general``; the agent re-categorises a wrong or missing area when
  first answering.
- ``customer_plan``: free / pro / enterprise, from the account; accounts upgrade from
  free to pro at random moments, which is a field event on the account's open tickets.
- ``order_value_usd`` (numeric): on order-issue forms; agents add it later on some
  delivery and returns tickets.

Vectorised over tickets and accounts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from pipeline.core import contract
from pipeline.sources.simulator.arrivals import _Customers
from pipeline.sources.simulator.behaviour import (
    AREA_BAD_LOGIT,
    AREA_BY_ISSUE,
    AREA_FIXED_AT_FIRST_REPLY_P,
    AREA_PICKED_RIGHT_P,
    DAY_S,
    FORM_CHOSEN_P,
    FORMS,
    HOUR_S,
    ISSUES,
    ORDER_VALUE_ADDED_P,
    ORDER_VALUE_BAD_LOGIT,
    ORDER_VALUE_MEDIAN_USD,
    PLAN_BAD_LOGIT,
    PLAN_SLOW_REPLY_LOGIT,
    PLAN_UPGRADE_PER_DAY,
    PLANS,
    PRODUCT_AREAS,
    UPGRADED_DURING_TICKET_LOGIT,
)

FIELDS = ("", "form", "product_area", "customer_plan", "order_value_usd")  # code 0: not a field event
_FORM, _AREA, _PLAN, _ORDER_VALUE = 1, 2, 3, 4
_GENERAL = FORMS.index("general")
_PRO = PLANS.index("pro")
_AREA_P = np.array([[AREA_BY_ISSUE[i.name].get(a, 0.0) for a in PRODUCT_AREAS] for i in ISSUES])
_DELIVERY_OR_RETURNS = np.isin(PRODUCT_AREAS, ("delivery", "returns"))
# Categorical values first (code = position), then one numeric string per ticket with an order value.
_CATEGORIES = (*FORMS, *PRODUCT_AREAS, *PLANS)
_FORM_CODE, _AREA_CODE, _PLAN_CODE = 0, len(FORMS), len(FORMS) + len(PRODUCT_AREAS)
# Same-second order: creation values right after the routing group (engine key 3), a
# re-categorisation after the first reply's status (turn 0 keys end at 12).
_KEY_CREATION, _KEY_FIRST_REPLY, _KEY_ACCOUNT = 3, 13, 15


@dataclass(frozen=True)
class _Attributes:
    """Per ticket: the attribute truth behind the rating, and the ``field`` events.

    Event arrays (``ticket, t_s, key, actor, value, field``) hold codes: ``value``
    into ``values`` (Arrow strings), ``field`` into ``FIELDS``; ``actor`` into
    ``contract.ACTORS``.
    """

    true_area: np.ndarray
    plan_at_creation: np.ndarray
    upgraded_during: np.ndarray  # bool
    order_value_usd: np.ndarray  # NaN where none is ever set
    events: tuple[np.ndarray, ...]
    values: pa.Array


def _draw_attributes(rng: np.random.Generator, issue: np.ndarray, channel: np.ndarray, home_group: np.ndarray,
                     t0: np.ndarray, first_reply_s: np.ndarray, solved_s: np.ndarray,
                     customers: _Customers) -> _Attributes:
    """Draw every ticket's attributes and their timeline (creation, first reply, account upgrades)."""
    n = len(t0)
    u = rng.random((6, n))
    true_area = (u[0][:, None] >= np.cumsum(_AREA_P, axis=1)[issue][:, :-1]).sum(axis=1)
    form = np.where(u[1] < FORM_CHOSEN_P[channel], home_group, _GENERAL)
    specific = form != _GENERAL
    other_area = (true_area + 1 + (u[2] * (len(PRODUCT_AREAS) - 1)).astype(np.int64)) % len(PRODUCT_AREAS)
    picked = np.where(specific, np.where(u[3] < AREA_PICKED_RIGHT_P, true_area, other_area), -1)
    fixed = (picked != true_area) & (u[4] < AREA_FIXED_AT_FIRST_REPLY_P)
    answered_s = t0 + first_reply_s  # fields are saved with the reply (one update)
    order_value = np.round(ORDER_VALUE_MEDIAN_USD * np.exp(rng.normal(0.0, 0.9, n)), 2)
    value_at_creation = form == FORMS.index("order_issue")
    value_added = ~value_at_creation & _DELIVERY_OR_RETURNS[true_area] & (u[5] < ORDER_VALUE_ADDED_P)
    order_value = np.where(value_at_creation | value_added, order_value, np.nan)
    plan, upgrade_s = _plans(rng, t0, customers)
    upgraded_during = (upgrade_s > t0) & (upgrade_s < solved_s)

    events = _Events()
    everyone = np.arange(n)
    events.add(everyone, t0, _KEY_CREATION, "system", _FORM, _FORM_CODE + form)
    has_area = np.flatnonzero(specific)
    events.add(has_area, t0[has_area], _KEY_CREATION, "system", _AREA, _AREA_CODE + picked[has_area])
    events.add(everyone, t0, _KEY_CREATION, "system", _PLAN, _PLAN_CODE + plan)
    at_creation = np.flatnonzero(value_at_creation)
    number = len(_CATEGORIES) + np.cumsum(~np.isnan(order_value)) - 1
    events.add(at_creation, t0[at_creation], _KEY_CREATION, "system", _ORDER_VALUE, number[at_creation])
    rows = np.flatnonzero(fixed)
    events.add(rows, answered_s[rows], _KEY_FIRST_REPLY, "agent", _AREA, _AREA_CODE + true_area[rows])
    rows = np.flatnonzero(value_added)
    events.add(rows, answered_s[rows], _KEY_FIRST_REPLY, "agent", _ORDER_VALUE, number[rows])
    rows = np.flatnonzero(upgraded_during)
    events.add(rows, upgrade_s[rows], _KEY_ACCOUNT, "system", _PLAN, np.full(len(rows), _PLAN_CODE + _PRO))
    numbers = pa.array(order_value[~np.isnan(order_value)]).cast(pa.string())
    values = pa.concat_arrays([pa.array(_CATEGORIES, type=pa.string()), numbers])
    return _Attributes(true_area, plan, upgraded_during, order_value, events.arrays(), values)


def _plans(rng: np.random.Generator, t0: np.ndarray, customers: _Customers) -> tuple[np.ndarray, np.ndarray]:
    """Each ticket's plan at creation and its account's upgrade moment (s; inf = never).

    An account is the organisation, or the customer without one. A free account
    upgrades to pro after an exponential time (``PLAN_UPGRADE_PER_DAY``); tickets
    created after that start on pro.
    """
    org = customers.organization
    account = np.where(org >= 0, org, org.max(initial=-1) + 1 + customers.requester)
    n_accounts = int(account.max(initial=0)) + 1
    upgrade_at = rng.exponential(DAY_S / PLAN_UPGRADE_PER_DAY, n_accounts)
    free = customers.plan == PLANS.index("free")
    upgrade_s = np.where(free, upgrade_at[account], np.inf)
    plan = np.where(upgrade_s <= t0, _PRO, customers.plan)
    return plan, upgrade_s


def _attribute_logit(a: _Attributes, first_reply_s: np.ndarray, org_bad_logit: np.ndarray) -> np.ndarray:
    """Log-odds of a bad rating from the attributes: area, plan (harsher on slow replies), account, order."""
    slow = np.log1p(first_reply_s / HOUR_S)
    order = np.where(np.isnan(a.order_value_usd), 0.0,
                     np.clip(np.log(np.nan_to_num(a.order_value_usd, nan=ORDER_VALUE_MEDIAN_USD)
                                    / ORDER_VALUE_MEDIAN_USD), -1.0, 2.0))
    return (AREA_BAD_LOGIT[a.true_area]
            + PLAN_BAD_LOGIT[a.plan_at_creation] + PLAN_SLOW_REPLY_LOGIT[a.plan_at_creation] * slow
            + UPGRADED_DURING_TICKET_LOGIT * a.upgraded_during
            + ORDER_VALUE_BAD_LOGIT * order
            + org_bad_logit)


class _Events:
    """Field-event blocks as parallel arrays (see :class:`_Attributes`)."""

    def __init__(self) -> None:
        self.blocks: list[tuple[np.ndarray, ...]] = []

    def add(self, rows: np.ndarray, t_s: np.ndarray, key: int, actor: str, field: int, value: np.ndarray) -> None:
        m = len(rows)
        self.blocks.append((rows.astype(np.int32), np.asarray(t_s, dtype=np.float64), np.full(m, key, np.int16),
                            np.full(m, contract.ACTORS.index(actor), np.int8), np.asarray(value, np.int32),
                            np.full(m, field, np.int8)))

    def arrays(self) -> tuple[np.ndarray, ...]:
        """``(ticket, t_s, key, actor, value, field)``, blocks in the order added."""
        return tuple(np.concatenate(column) for column in zip(*self.blocks))
