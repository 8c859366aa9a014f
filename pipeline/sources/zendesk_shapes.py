"""Zendesk JSON shapes and the names shared by the dump reader and writer.

Zendesk is known only to the modules named ``zendesk_*``: the reader and writer of
API dumps (``pipeline.sources``) and the payload builder and pusher
(``pipeline.sinks``).

Shapes used here, from Zendesk's Support API reference (developer.zendesk.com):

* Incremental ticket export ``GET /api/v2/incremental/tickets/cursor`` -> page
  ``{"tickets": [...], "after_cursor", "end_of_stream"}``; a ticket has ``id``,
  ``created_at``, ``updated_at``, ``status``, ``priority``, ``via.channel``,
  ``requester_id``, ``group_id``, ``assignee_id``, ``subject`` and
  ``satisfaction_rating.score``. Deleted tickets stay in the stream with status
  ``deleted`` unless ``exclude_deleted=true``; updated tickets repeat across pages.
  ``include=metric_sets`` sideloads end-of-life metrics, which are never read here.
* Incremental ticket event export ``GET /api/v2/incremental/ticket_events``
  (``include=comment_events``) -> ``{"ticket_events": [{"id", "ticket_id",
  "timestamp", "created_at", "updater_id", "via", "event_type": "Audit",
  "child_events": [...]}]}``. A comment child is ``{"event_type": "Comment",
  "author_id", "body", "public", "created_at"}``; without the sideload only the
  booleans ``comment_present`` / ``comment_public`` are there (no text). A field
  child carries the new value under the field's own name, e.g. ``{"status":
  "solved", "previous_value": "open", "event_type": "Change"}`` (``Create`` for the
  ticket's initial values). The reference page's own example response for this
  endpoint shows ticket *metric* events by mistake; the parent shape above matches
  Airbyte's source-zendesk-support test fixture and the child shape the one quoted
  in a zendesk-java-client model (``{"id", "via": "Web form", "status": "solved",
  "event_type": "Change", "previous_value": "open"}``).
* Ticket audits ``GET /api/v2/ticket_audits`` -> ``{"audits": [{"ticket_id",
  "created_at", "author_id", "via", "events": [{"type": "Comment", "body",
  "public"}, {"type": "Change"|"Create", "field_name", "value",
  "previous_value"}]}]}``.
* Users ``GET /api/v2/incremental/users/cursor`` -> ``{"users": [{"id", "role"}]}``
  with role ``end-user``, ``agent`` or ``admin``.
* Satisfaction ratings ``GET /api/v2/satisfaction_ratings`` ->
  ``{"satisfaction_ratings": [{"ticket_id", "score", "created_at", "updated_at"}]}``.
* ``PUT /api/v2/tickets/update_many.json`` with ``{"tickets": [{"id", ...}]}``: at
  most 100 tickets, each with its own values; ``additional_tags`` / ``remove_tags``
  are honoured by this endpoint only. The answer is ``{"job_status": {"id",
  "status": queued|working|completed|failed|killed, "results": [...]}}``, polled
  at ``GET /api/v2/job_statuses/{id}.json``.
* Audit metadata: a ticket update may carry ``"metadata": {...}`` (up to 1 KB) in
  the ticket object; Zendesk stores it as the audit's ``metadata.custom`` (it is
  only saved when the update changes the ticket).
* Rate limits: HTTP 429 with a ``Retry-After`` header in seconds.
* API-token auth: HTTP Basic with ``{email}/token:{api_token}``.
"""

from __future__ import annotations

# --------------------------------------------------------------------------- names

ENDPOINT_TICKETS = "tickets"
ENDPOINT_TICKET_EVENTS = "ticket_events"
ENDPOINT_AUDITS = "audits"
ENDPOINT_USERS = "users"
ENDPOINT_RATINGS = "satisfaction_ratings"
JSON_SUFFIXES = (".json", ".jsonl")

# Zendesk's own user id for changes made by the system (triggers, automations).
SYSTEM_USER_ID = "-1"
# Via channels / sources that mean "a business rule did this", not a person.
SYSTEM_VIA = frozenset({"rule", "automation", "trigger", "system"})
AGENT_ROLES = frozenset({"agent", "admin"})
CUSTOMER_ROLES = frozenset({"end-user", "end_user", "enduser"})

# Zendesk field names (as in audits' field_name / ticket events' keys) -> contract kinds.
FIELD_KINDS = {"status": "status", "group_id": "group", "assignee_id": "assignee", "priority": "priority"}
KIND_FIELDS = {kind: name for name, kind in FIELD_KINDS.items()}

# via.channel -> contract channel. Anything else passes through lower-cased.
CHANNEL_FROM_ZENDESK = {
    "voice": "phone",
    "twitter": "social",
    "facebook": "social",
    "instagram_dm": "social",
    "whatsapp": "social",
    "native_messaging": "chat",
}
# Contract channel -> a via.channel the reader maps back to the same contract channel.
CHANNEL_TO_ZENDESK = {"phone": "voice", "social": "twitter"}

# Deterministic id ranges for names the simulator uses (agents, groups) and for the
# audit / child-event ids the writer invents. Far above realistic requester ids.
AGENT_ID_BASE = 9_000_000_000
GROUP_ID_BASE = 8_000_000_000
AUDIT_ID_BASE = 7_000_000_000_000
CHILD_ID_BASE = 7_500_000_000_000
RATING_ID_BASE = 6_000_000_000
# Custom ticket field ids the writer gives the contract's attribute names (ticket_fields.json).
FIELD_ID_BASE = 5_000_000_000
FALLBACK_AGENT_NAME = "agent_unattributed"
TIMESTAMP_COLUMNS = ("created_at", "satisfaction_at", "at")
