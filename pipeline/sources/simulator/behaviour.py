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

# --- customers' organisations and plans -----------------------------------------------
PLANS = ("free", "pro", "enterprise")
ORG_MEMBER_P = (0.55, 0.20)  # share of regular / one-off customers who write for an organisation
UNAFFILIATED_PLAN_P = (0.80, 0.20, 0.0)  # plans of customers without an organisation
ORG_BAD_LOGIT_SD = 0.2  # an organisation's own pull toward bad ratings (small: its plan matters more)
ORG_NAME_WORDS = (
    ("Blue", "North", "Bright", "Pine", "Silver", "Red", "Green", "Stone", "River", "Sun", "Oak", "Harbor"),
    ("Labs", "Retail", "Logistics", "Health", "Media", "Foods", "Systems", "Studio", "Bank", "Travel",
     "Works", "Energy"),
)
PLAN_UPGRADE_PER_DAY = 0.001  # chance per day that a free account moves to pro (the field event: system)
# Enterprise customers expect fast answers: a slow first reply costs more with them
# (log-odds per log(1 + first-reply hours)); a free customer expects little.
PLAN_BAD_LOGIT = np.array([-0.35, -0.15, -1.0])
PLAN_SLOW_REPLY_LOGIT = np.array([0.0, 0.2, 0.7])
UPGRADED_DURING_TICKET_LOGIT = -0.3  # the customer got what they came for

# --- product areas and ticket forms ---------------------------------------------------
# The product area is finer than the group: within one issue type, some areas go worse
# (a buggy mobile release, a broken returns process); only the attribute tells them apart.
PRODUCT_AREAS = ("payments", "subscriptions", "web_app", "mobile_app", "integrations", "account", "security",
                 "delivery", "returns")
AREA_BAD_LOGIT = np.array([-0.2, 0.4, -0.2, 1.3, -0.7, -0.2, 0.3, -0.2, 1.3])
AREA_BY_ISSUE = {  # P(true product area | issue type); missing areas 0
    "outage": {"web_app": 0.5, "mobile_app": 0.3, "integrations": 0.2},
    "bug_report": {"web_app": 0.4, "mobile_app": 0.4, "integrations": 0.2},
    "how_to": {"web_app": 0.5, "mobile_app": 0.25, "integrations": 0.25},
    "feature_request": {"web_app": 0.4, "mobile_app": 0.3, "integrations": 0.3},
    "payment_failed": {"payments": 0.7, "subscriptions": 0.3},
    "refund_request": {"payments": 0.6, "subscriptions": 0.4},
    "invoice_question": {"payments": 0.5, "subscriptions": 0.5},
    "login_problem": {"account": 0.7, "security": 0.3},
    "account_hacked": {"security": 1.0},
    "cancel_subscription": {"account": 0.5, "subscriptions": 0.5},
    "shipping_delay": {"delivery": 0.85, "returns": 0.15},
    "damaged_item": {"delivery": 0.3, "returns": 0.7},
    "address_change": {"delivery": 1.0},
}
# Ticket forms: "general" is the default form; the others match a group (aligned with GROUPS[:4]).
FORMS = ("billing", "technical_support", "account_help", "order_issue", "general")
FORM_CHOSEN_P = np.array([0.4, 0.75, 0.0, 0.0, 0.0])  # per channel: the customer picks the matching form
AREA_PICKED_RIGHT_P = 0.75  # on a specific form the customer picks the right product area
AREA_FIXED_AT_FIRST_REPLY_P = 0.9  # the agent re-categorises a wrong or missing area when answering
ORDER_VALUE_MEDIAN_USD = 60.0
ORDER_VALUE_BAD_LOGIT = 0.2  # per log-unit of order value above the median (clipped to -1..2)
ORDER_VALUE_ADDED_P = 0.5  # an agent fills in a missing order value on delivery/returns tickets

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
