"""The ticket-export contract: table names, columns, allowed values.

An export is a directory holding two tables, ``tickets`` and ``events``, each as
``.csv`` or ``.parquet``. Every reader (CSV, Zendesk, ServiceNow, Kaggle) produces
these tables and every stage consumes them, so this module is the one place the
names and vocabularies are defined.
"""

from __future__ import annotations

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

EVENT_COLUMNS = ("ticket_id", "at", "actor", "kind", "value", "body")
EVENT_REQUIRED = ("ticket_id", "at", "actor", "kind")

ACTORS = ("customer", "agent", "system")
EVENT_KINDS = ("message", "note", "status", "group", "assignee", "priority")
# Event kinds whose `value` carries the new value of a ticket field.
FIELD_CHANGE_KINDS = ("status", "group", "assignee", "priority")

STATUSES = ("new", "open", "pending", "hold", "solved", "closed")
DONE_STATUSES = ("solved", "closed")
PRIORITIES = ("low", "normal", "high", "urgent")
SATISFACTION_VALUES = ("good", "bad", "offered", "unoffered")
SATISFACTION_LABELS = ("good", "bad")
