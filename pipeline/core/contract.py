"""The ticket-export contract: table names, columns, allowed values.

An export is a directory holding two tables, ``tickets`` and ``events``, each as
``.csv`` or ``.parquet``. Every reader (CSV, Zendesk, ServiceNow, Kaggle) produces
these tables and every stage consumes them, so this module is the one place the
names and vocabularies are defined.
"""

from __future__ import annotations

import pandas as pd

TICKETS = "tickets"
EVENTS = "events"
TABLE_SUFFIXES = (".parquet", ".csv")

TICKET_COLUMNS = (
    "ticket_id",
    "created_at",
    "channel",
    "status",
    "priority",
    "requester_id",
    "group",
    "assignee",
    "subject",
    "satisfaction",
    "satisfaction_at",
)
TICKET_REQUIRED = ("ticket_id", "created_at", "status")
TICKET_TIMESTAMPS = ("created_at", "satisfaction_at")

EVENT_COLUMNS = ("ticket_id", "at", "actor", "kind", "value", "body", "field")
EVENT_REQUIRED = ("ticket_id", "at", "actor", "kind")

ACTORS = ("customer", "agent", "system")
EVENT_KINDS = ("message", "note", "status", "group", "assignee", "priority", "field")
# kind `field`: the ticket attribute named in `field` (free text: product, plan, form, a custom
# field, a tag) was set to `value` at `at`; an empty value clears it.
FIELD_EVENT = "field"
# Event kinds whose `value` carries the new value of a ticket field.
FIELD_CHANGE_KINDS = ("status", "group", "assignee", "priority")

STATUSES = ("new", "open", "pending", "hold", "solved", "closed")
DONE_STATUSES = ("solved", "closed")
PRIORITIES = ("low", "normal", "high", "urgent")
SATISFACTION_VALUES = ("good", "bad", "offered", "unoffered")
SATISFACTION_LABELS = ("good", "bad")
ATTRIBUTE_PREFIX = "attr_"
# The attribute that names the customer's organization (company, account): the organization
# history features read it. Importers and users spell it so (`Organization`, `organization_id`
# need renaming or a static column named organization).
ORGANIZATION_ATTRIBUTE = "organization"


def attribute_names(names: pd.Series) -> pd.Series:
    """The one spelling of attribute names: lower case, runs of other characters -> ``_``.

    ``"Product Area"``, ``"product-area"`` and ``" product_area "`` are one attribute
    ``product_area`` (feature ``attr_product_area``); a name with no letter or digit
    becomes ``""`` (rejected by validation). Letters of any script are kept.
    """
    cleaned = names.astype(str).str.strip().str.lower().str.replace(r"[^\w]+", "_", regex=True)
    return cleaned.str.strip("_")
