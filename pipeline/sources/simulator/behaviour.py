"""How the simulated desk behaves: channels, groups, priorities, issue types, calendar shapes.

Every number that shapes the demo data lives here, named and commented, so a reader
can change the world without reading the engine.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

HOUR_S = 3600.0
DAY_S = 86400.0
MINUTE_S = 60.0

CHANNELS = ("email", "web", "chat", "phone", "social")
GROUPS = ("billing", "technical", "accounts", "shipping", "escalations")
LANGUAGES = ("en", "ko")
TONES = ("calm", "impatient", "angry")
_EN, _KO = 0, 1
_IMPATIENT, _ANGRY = 1, 2  # indices into TONES
_ESCALATIONS = GROUPS.index("escalations")
_TECHNICAL = GROUPS.index("technical")

# --- channel dynamics (aligned with CHANNELS) -------------------------------------
CHANNEL_SHARE = {  # per customer language
    _EN: (0.36, 0.24, 0.21, 0.10, 0.09),
    _KO: (0.30, 0.22, 0.32, 0.06, 0.10),
}
AGENT_REPLY_MEDIAN_MINUTES = np.array([240.0, 180.0, 3.0, 12.0, 60.0])  # business minutes
CUSTOMER_REPLY_MEDIAN_MINUTES = np.array([360.0, 300.0, 1.5, 180.0, 60.0])  # customer-active minutes
FOLLOW_UP_AFTER_MINUTES = np.array([1440.0, 1080.0, 6.0, 720.0, 240.0])  # wall clock: customer nags after
ROUNDS_FACTOR = np.array([1.0, 1.0, 1.25, 0.6, 0.9])  # scales the extra rounds of an issue
CHANNEL_BAD_LOGIT = np.array([0.0, 0.05, -0.25, -0.35, 0.35])
SURVEY_ANSWER_P = np.array([0.27, 0.25, 0.34, 0.20, 0.0])  # happy customers; social: no survey

# --- groups (aligned with GROUPS) --------------------------------------------------
GROUP_SLOWNESS = np.array([1.0, 1.3, 0.9, 0.85, 1.6])  # multiplies reply delays
GROUP_SKILL = np.array([0.0, -0.1, 0.1, 0.0, 0.6])
GROUP_HOLD_P = np.array([0.06, 0.12, 0.05, 0.14, 0.15])  # share of non-final turns put on hold
TICKETS_PER_AGENT_DAY = 25.0

# --- priorities (aligned with contract.PRIORITIES) ---------------------------------
PRIORITY_SLOWNESS = np.array([1.5, 1.0, 0.6, 0.35])
UNSET_PRIORITY_SLOWNESS = 1.1
URGENT_WORDING_P = np.array([0.04, 0.10, 0.35, 0.70])  # by true urgency


@dataclass(frozen=True)
class _Issue:
    """An issue type: its home group, how urgent it tends to be, how hard it is."""

    name: str
    group: str
    share: float
    urgency_p: tuple[float, float, float, float]  # P(low, normal, high, urgent)
    extra_rounds: float  # mean of the Poisson number of agent rounds after the first
    reopen_p: float
    bad_logit: float  # push toward a bad rating from the issue alone


ISSUES = (
    _Issue("outage", "technical", 0.05, (0.0, 0.05, 0.25, 0.70), 1.5, 0.10, 0.35),
    _Issue("bug_report", "technical", 0.10, (0.10, 0.55, 0.30, 0.05), 1.6, 0.12, 0.15),
    _Issue("how_to", "technical", 0.14, (0.70, 0.28, 0.02, 0.0), 0.6, 0.04, -0.50),
    _Issue("feature_request", "technical", 0.04, (0.85, 0.15, 0.0, 0.0), 0.5, 0.02, 0.10),
    _Issue("payment_failed", "billing", 0.07, (0.0, 0.15, 0.45, 0.40), 1.2, 0.08, 0.30),
    _Issue("refund_request", "billing", 0.09, (0.05, 0.55, 0.35, 0.05), 1.3, 0.08, 0.35),
    _Issue("invoice_question", "billing", 0.08, (0.55, 0.40, 0.05, 0.0), 0.8, 0.04, -0.30),
    _Issue("login_problem", "accounts", 0.09, (0.05, 0.40, 0.40, 0.15), 0.9, 0.08, 0.0),
    _Issue("account_hacked", "accounts", 0.025, (0.0, 0.0, 0.20, 0.80), 1.4, 0.08, 0.20),
    _Issue("cancel_subscription", "accounts", 0.06, (0.35, 0.55, 0.10, 0.0), 0.7, 0.04, 0.25),
    _Issue("shipping_delay", "shipping", 0.10, (0.05, 0.55, 0.35, 0.05), 1.0, 0.10, 0.30),
    _Issue("damaged_item", "shipping", 0.05, (0.0, 0.35, 0.55, 0.10), 1.1, 0.06, 0.20),
    _Issue("address_change", "shipping", 0.05, (0.45, 0.45, 0.10, 0.0), 0.5, 0.03, -0.30),
)
_OUTAGE = 0
_ISSUE_HOME = np.array([GROUPS.index(i.group) for i in ISSUES])
_ISSUE_SHARE = np.array([i.share for i in ISSUES]) / sum(i.share for i in ISSUES)
_ISSUE_URGENCY_CUM = np.cumsum(np.array([i.urgency_p for i in ISSUES]), axis=1)
_ISSUE_EXTRA_ROUNDS = np.array([i.extra_rounds for i in ISSUES])
_ISSUE_REOPEN_P = np.array([i.reopen_p for i in ISSUES])
_ISSUE_BAD_LOGIT = np.array([i.bad_logit for i in ISSUES])
_ISSUE_ESCALATES = np.isin([i.name for i in ISSUES], ("outage", "account_hacked", "payment_failed"))

# --- calendar shapes (UTC; rows Monday..Sunday, columns hour 0..23) ----------------
_ARRIVAL_BY_HOUR = np.array(
    [0.12, 0.08, 0.06, 0.06, 0.08, 0.15, 0.30, 0.55, 0.85, 1.0, 1.05, 1.0,
     0.95, 1.0, 1.0, 0.95, 0.85, 0.70, 0.55, 0.45, 0.38, 0.30, 0.22, 0.16]
)
_ARRIVAL_BY_WEEKDAY = np.array([1.15, 1.05, 1.0, 1.0, 0.9, 0.45, 0.40])


def _agent_rate_table() -> np.ndarray:
    """Agent working capacity per (weekday, hour): 1.0 in business hours, thin cover otherwise."""
    rate = np.full((7, 24), 0.06)
    rate[:5, 6:8] = 0.25
    rate[:5, 8:18] = 1.0
    rate[:5, 18:22] = 0.25
    rate[5:, :] = 0.04
    rate[5:, 9:17] = 0.15
    return rate


def _customer_rate_table() -> np.ndarray:
    """How active customers are per (weekday, hour); they answer less at night."""
    rate = np.full((7, 24), 0.1)
    rate[:, 6:8] = 0.4
    rate[:, 8:22] = 1.0
    rate[:, 22:24] = 0.4
    rate[5:, :] *= 0.75
    return rate

def _rng(seed: int, stream: str) -> np.random.Generator:
    """An independent random stream per simulation step, so changing one step leaves the others alone."""
    return np.random.default_rng([seed, zlib.crc32(stream.encode())])
