"""The survey: who is offered a rating, who answers, and how likely the answer is bad.

Unhappy customers answer less often (missing not at random). The bad probability
comes from waits, back-and-forth, transfers, reopens, wording, channel, agent skill,
a wrong priority, the ticket's attributes (``attributes``) and the customer's earlier
unhappy tickets, plus unobserved noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.sources.simulator.behaviour import (
    _ANGRY,
    _ISSUE_BAD_LOGIT,
    CHANNEL_BAD_LOGIT,
    HOUR_S,
    SURVEY_ANSWER_P,
)
from pipeline.sources.simulator.engine import _Conversation, _Profile, _Staff
from pipeline.sources.simulator.phrases import _KO


# --- the survey ----------------------------------------------------------------------
@dataclass(frozen=True)
class _Rating:
    """Per ticket: the bad probability used, the survey timeline (seconds since start, NaN = never)."""

    p_bad: np.ndarray
    unhappy: np.ndarray
    offered_s: np.ndarray
    rated_s: np.ndarray


def _bad_logit(p: _Profile, c: _Conversation, staff: _Staff, noise: np.ndarray) -> np.ndarray:
    """Log-odds of a bad rating before customer history; shape (n,)."""
    priority_too_low = (p.initial_priority >= 0) & (p.initial_priority < p.urgency)
    return (
        -2.7
        + 0.45 * np.log1p(c.first_reply_s / HOUR_S)
        + 0.30 * np.log1p(c.customer_wait_s / HOUR_S)
        + 0.12 * (c.n_turns - 1)
        + 0.35 * c.n_hops
        + 0.75 * c.n_reopens
        + 0.20 * c.n_follow_ups
        + 0.40 * p.temperament
        + 0.30 * (p.opening_tone == _ANGRY)
        + CHANNEL_BAD_LOGIT[p.channel]
        + _ISSUE_BAD_LOGIT[p.issue]
        - 0.45 * staff.skill[c.final_agent]
        + 0.35 * priority_too_low
        + 0.10 * p.auto_solve
        + noise
    )


def _with_history(base_logit: np.ndarray, requester: np.ndarray, t0: np.ndarray,
                  u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Add the customer's earlier unhappy tickets (+0.5 log-odds each, up to 3) and draw unhappiness.

    Loops over a customer's k-th ticket (k = 0, 1, ...), vectorised over customers,
    so each draw sees the outcome of that customer's earlier tickets.
    """
    n = len(base_logit)
    order = np.lexsort((t0, requester))
    first_of_requester = np.r_[True, requester[order][1:] != requester[order][:-1]]
    group_start = np.maximum.accumulate(np.where(first_of_requester, np.arange(n), 0))
    nth = np.empty(n, dtype=np.int64)
    nth[order] = np.arange(n) - group_start
    by_nth = np.argsort(nth, kind="stable")
    bounds = np.searchsorted(nth[by_nth], np.arange(nth.max() + 2))
    earlier_unhappy = np.zeros(requester.max() + 1, dtype=np.int64)
    p_bad = np.empty(n)
    unhappy = np.empty(n, dtype=bool)
    for k in range(nth.max() + 1):
        rows = by_nth[bounds[k]: bounds[k + 1]]
        who = requester[rows]
        p_bad[rows] = 1.0 / (1.0 + np.exp(-(base_logit[rows] + 0.5 * np.minimum(earlier_unhappy[who], 3))))
        unhappy[rows] = u[rows] < p_bad[rows]
        earlier_unhappy[who] += unhappy[rows]
    return p_bad, unhappy


def _rate(rng: np.random.Generator, p: _Profile, c: _Conversation, requester: np.ndarray,
          staff: _Staff, attribute_logit: np.ndarray) -> _Rating:
    """Offer the survey a day after the final solve; unhappy customers answer less often.

    ``attribute_logit``: the attributes' pull toward a bad rating (see ``attributes``).
    """
    n = len(p.t0)
    base = _bad_logit(p, c, staff, rng.normal(0.0, 0.5, n)) + attribute_logit
    p_bad, unhappy = _with_history(base, requester, p.t0, rng.random(n))
    offered = (SURVEY_ANSWER_P[p.channel] > 0) & (rng.random(n) > 0.04)
    offered_s = np.where(offered, c.solved_s + 24 * HOUR_S + rng.random(n) * HOUR_S, np.nan)
    answer_p = (SURVEY_ANSWER_P[p.channel] * np.where(unhappy, 0.55, 1.0)
                * np.where(p.language == _KO, 0.85, 1.0))
    answered = offered & (rng.random(n) < answer_p)
    delay_s = np.minimum(np.exp(np.log(5.0) + 1.3 * rng.standard_normal(n)), 20 * 24.0) * HOUR_S
    rated_s = np.where(answered, offered_s + delay_s, np.nan)
    return _Rating(p_bad, unhappy, offered_s, rated_s)
