"""Who writes in and when: creation times, requesters, their organisations and plans.

Vectorised over tickets and requesters. Times are float seconds since the start of
the simulated period.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.sources.simulator.behaviour import (
    _ARRIVAL_BY_HOUR,
    _ARRIVAL_BY_WEEKDAY,
    DAY_S,
    HOUR_S,
    ORG_BAD_LOGIT_SD,
    ORG_MEMBER_P,
    ORG_NAME_WORDS,
    PLANS,
    UNAFFILIATED_PLAN_P,
)


def _draw_arrivals(rng: np.random.Generator, n: int, hour: np.ndarray, weekday: np.ndarray, days: int,
                   later_days: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Creation times (float seconds since start, sorted) and an incident flag.

    ``n`` tickets arrive in the first ``days`` days; when ``later_days`` > 0 the desk
    keeps running that many days more at the same rates (hour, weekday, the upward
    trend), so ``n`` plus about ``n * later/first`` tickets in all. ``hour`` and
    ``weekday`` are per hour since start. About 4 % of tickets belong to incident
    bursts: one incident per ~20 days, tickets arriving with an exponential tail
    (mean 3 h) after the incident starts.
    """
    first_h, all_h = days * 24, (days + later_days) * 24
    weight = (_ARRIVAL_BY_HOUR[hour[:all_h]] * _ARRIVAL_BY_WEEKDAY[weekday[:all_h]]
              * (1.0 + 0.2 * np.arange(all_h) / first_h))
    periods = [(0, days, n)]
    if later_days:
        periods.append((days, later_days, int(round(n * weight[first_h:].sum() / weight[:first_h].sum()))))
    created, incident = [], []
    for from_day, length, count in periods:
        regular, burst = _period_arrivals(rng, count, weight[from_day * 24: (from_day + length) * 24], length)
        created += [regular + from_day * DAY_S, burst + from_day * DAY_S]
        incident += [np.zeros(len(regular), bool), np.ones(len(burst), bool)]
    created_s, is_incident = np.concatenate(created), np.concatenate(incident)
    order = np.argsort(created_s, kind="stable")
    return created_s[order], is_incident[order]


def _period_arrivals(rng: np.random.Generator, n: int, weight: np.ndarray,
                     days: int) -> tuple[np.ndarray, np.ndarray]:
    """Regular and incident-burst creation times (s since the period's start) of ``n`` tickets."""
    n_hours = len(weight)
    n_incident = int(rng.binomial(n, 0.04)) if days >= 7 and n >= 200 else 0
    n_regular = n - n_incident
    hours = rng.choice(n_hours, size=n_regular, p=weight / weight.sum())
    regular = (hours + rng.random(n_regular)) * HOUR_S
    n_incidents = max(1, days // 20)
    incident_start = rng.uniform(0, max(n_hours - 12, 1), n_incidents) * HOUR_S
    burst = incident_start[rng.integers(0, n_incidents, n_incident)] + rng.exponential(3 * HOUR_S, n_incident)
    return regular, np.minimum(burst, days * DAY_S - 1.0)


@dataclass(frozen=True)
class _Customers:
    """Per ticket: requester, language (0 en, 1 ko), temperament (standard normal), organisation, plan.

    ``organization`` is -1 for customers without one; ``plan`` is each requester's
    plan when the period starts (index into ``PLANS``; upgrades come later, see
    ``attributes``); ``org_bad_logit`` is how much harder the organisation's people are
    to please (per ticket, 0 without an organisation).
    """

    requester: np.ndarray
    language: np.ndarray
    temperament: np.ndarray
    organization: np.ndarray
    plan: np.ndarray
    org_bad_logit: np.ndarray
    org_names: tuple[str, ...]


def _draw_customers(rng: np.random.Generator, n: int, org_rng: np.random.Generator) -> _Customers:
    """Assign tickets to requesters: 40 % one-off customers, 60 % from a pool of regulars.

    Regulars (12 % of ``n``) have Pareto-distributed activity (capped), so a few write
    dozens of tickets. Requester numbers are shuffled so that the id says nothing
    about the kind of customer. Organisations and plans come from ``org_rng``.
    """
    n_regulars = max(1, int(round(0.12 * n)))
    one_off = rng.random(n) < 0.4
    activity = np.minimum(rng.pareto(1.3, n_regulars) + 1.0, 50.0)
    requester = rng.choice(n_regulars, size=n, p=activity / activity.sum())
    requester[one_off] = n_regulars + np.arange(int(one_off.sum()))
    n_requesters = n_regulars + int(one_off.sum())
    shuffle = rng.permutation(n_requesters)
    requester = shuffle[requester]
    korean = (rng.random(n_requesters) < 0.2).astype(np.int64)
    temperament = rng.standard_normal(n_requesters)
    regular = np.zeros(n_requesters, bool)
    regular[shuffle[:n_regulars]] = True
    org, plan, org_logit, names = _draw_organizations(org_rng, regular)
    return _Customers(requester, korean[requester], temperament[requester], org[requester], plan[requester],
                      np.where(org[requester] >= 0, org_logit[np.maximum(org[requester], 0)], 0.0), names)


def _draw_organizations(rng: np.random.Generator, regular: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]:
    """Per requester: organisation (-1 = none) and plan; per organisation: bad log-odds; names.

    Regular customers more often write for a company than one-off ones. Organisation
    sizes are heavy-tailed; the biggest 12 % are on enterprise, the smallest
    30 % on free, the rest on pro; everybody in an organisation shares its plan.
    The organisation's own effect on ratings is small next to its plan's, so the
    organisation name is a weak signal, not a proxy for the outcome.
    """
    n_requesters = len(regular)
    member = rng.random(n_requesters) < np.where(regular, ORG_MEMBER_P[0], ORG_MEMBER_P[1])
    n_orgs = max(1, int(round(member.sum() / 10)))
    size = np.minimum(rng.pareto(1.2, n_orgs) + 1.0, 60.0)
    org = np.where(member, rng.choice(n_orgs, size=n_requesters, p=size / size.sum()), -1)
    rank = np.argsort(np.argsort(-size, kind="stable"), kind="stable") / n_orgs
    org_plan = np.where(rank < 0.12, PLANS.index("enterprise"), np.where(rank < 0.7, PLANS.index("pro"),
                                                                          PLANS.index("free")))
    unaffiliated = (rng.random(n_requesters)[:, None] >= np.cumsum(UNAFFILIATED_PLAN_P)[:-1]).sum(axis=1)
    plan = np.where(member, org_plan[np.maximum(org, 0)], unaffiliated)
    org_logit = rng.normal(0.0, ORG_BAD_LOGIT_SD, n_orgs)
    first, second = ORG_NAME_WORDS
    index = np.arange(n_orgs)
    names = tuple(f"{first[i % len(first)]} {second[(i // len(first)) % len(second)]}"
                  + (f" {i // (len(first) * len(second)) + 1}" if i >= len(first) * len(second) else "")
                  for i in rng.permutation(index))
    return org, plan, org_logit, names
