"""Zendesk ticket attributes -> contract ``field`` events.

The attributes a Zendesk desk keeps beside status, group, assignee and priority:

* custom ticket fields, named by their title in ``ticket_fields.json`` (the Ticket
  Fields API list ``{"ticket_fields": [{"id", "title", "type"}]}``) when the dump has
  it, else ``custom_<id>``. Free-text and credit-card fields (types in
  :data:`SKIPPED_FIELD_TYPES`) are never attributes: their values are text, not
  categories. The risk field this project writes back (``zendesk.risk_field_id``) is
  never read back either: the model would learn from its own scores;
* ``form`` (``ticket_form_id``, the form's name from ``ticket_forms.json`` when
  present), ``brand`` (``brand_id``) and ``organization`` (``organization_id``);
* frequent tags as present/absent attributes ``tag_<tag>`` = ``"1"`` / ``""``: tags on
  at least :data:`MIN_TICKETS_PER_TAG` tickets, at most :data:`MAX_TAG_ATTRIBUTES` of
  them (the most frequent). The tags this project's payload sets (``csat_risk_*``,
  ``csat_p1``.., prefix ``zendesk.tag_prefix``) are left out, as the risk field.

Where a value comes from, first that applies (per ticket and attribute):

1. ``Create`` child events (the values set when the ticket was created) and ``Change``
   child events (every later change; an empty value clears the attribute), at the
   update's time. Shapes: in ticket events a child carries the value under the
   field's own name (``{"ticket_form_id": 5, "previous_value": 4, "event_type":
   "Change"}``), custom fields under ``custom_ticket_fields`` (``{"custom_ticket_fields":
   {"360041597112": "set_up_app"}, "event_type": "Change", "previous_value": null}``)
   and tags as the full new list ``tags`` (with ``added_tags`` / ``removed_tags``); in
   audits ``{"type": "Change", "field_name": "<field id or name>", "value",
   "previous_value"}`` (tags: the full lists).
2. When the earliest event of an attribute is a ``Change`` whose ``previous_value`` is
   not empty (the dump starts after the ticket was created), that previous value is
   the ticket's value from its creation.
3. Last resort, only for ``form``, ``brand`` and ``organization``: the ticket row's
   ``ticket_form_id`` / ``brand_id`` / ``organization_id``, from the ticket's creation.
   These are normally chosen when the ticket is created; custom fields and tags on
   the ticket row are values as of the export and are never used.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from pipeline.core import contract
from pipeline.core.params import ZendeskParams

ENDPOINT_TICKET_FIELDS = "ticket_fields"
ENDPOINT_TICKET_FORMS = "ticket_forms"
# Zendesk field name (ticket key, audit field_name) -> attribute name.
SYSTEM_ATTRIBUTES = {"ticket_form_id": "form", "brand_id": "brand", "organization_id": "organization"}
TAGS_FIELD = "tags"
CUSTOM_FIELDS_KEY = "custom_ticket_fields"
CUSTOM_KEY_PREFIX = "custom:"  # raw key of a custom field before it is named
CUSTOM_NAME_PREFIX = "custom_"
TAG_PREFIX = "tag_"
# A tag becomes an attribute when it is on at least this many tickets: rarer tags cannot
# reach attributes.min_level_count (20) training rows as a level of their own anyway.
MIN_TICKETS_PER_TAG = 20
# At most this many tag attributes (the most frequent): each is a model feature, and a
# large desk has thousands of tags used by a few dozen tickets each.
MAX_TAG_ATTRIBUTES = 50
# Ticket field types whose values are free text or card digits, never categories.
SKIPPED_FIELD_TYPES = frozenset({"text", "textarea", "partialcreditcard"})
PRESENT, ABSENT = "1", ""
# Raw-row columns holding a tags child's lists (None on other rows).
TAG_COLUMNS = ("tags_full", "tags_previous", "tags_added", "tags_removed")


class ChildAttribute(NamedTuple):
    """One attribute value carried by a Create/Change child (names not resolved yet)."""

    key: str                      # "custom:<id>", "form", "brand", "organization" or "tags"
    value: str                    # new value as text ("" = cleared); "" for tags
    previous: str | None          # previous value when the child says (None: not said)
    # Tags only (each a list, or None when the child does not say): the full new list,
    # the full previous list, the tags added, the tags removed.
    tags: tuple[list[str] | None, list[str] | None, list[str] | None, list[str] | None] | None = None


# ------------------------------------------------------------------ JSON -> rows

def child_attributes(child: dict) -> Iterator[ChildAttribute]:
    """The attribute values in one ``Create``/``Change`` child, in either dump shape."""
    if "field_name" in child:  # audits shape
        name = _text(child.get("field_name"))
        value, previous = child.get("value"), child.get("previous_value")
        if name == TAGS_FIELD:
            yield ChildAttribute(TAGS_FIELD, "", None, (_tag_list(value), _tag_list(previous), None, None))
        elif name in SYSTEM_ATTRIBUTES:
            yield ChildAttribute(SYSTEM_ATTRIBUTES[name], value_text(value), _previous(child))
        elif name.isdigit():  # custom fields are named by their numeric id
            yield ChildAttribute(CUSTOM_KEY_PREFIX + name, value_text(value), _previous(child))
        return
    for name, attribute in SYSTEM_ATTRIBUTES.items():  # ticket events shape
        if name in child:
            yield ChildAttribute(attribute, value_text(child.get(name)), _previous(child))
    custom = child.get(CUSTOM_FIELDS_KEY)
    if isinstance(custom, dict):
        # previous_value belongs to the child: it can only be read when one field changed.
        previous = _previous(child) if len(custom) == 1 else None
        for field_id, value in custom.items():
            yield ChildAttribute(CUSTOM_KEY_PREFIX + _text(field_id), value_text(value), previous)
    if TAGS_FIELD in child or "added_tags" in child or "removed_tags" in child:
        tags = (_tag_list(child.get(TAGS_FIELD)), _tag_list(child.get("previous_value")),
                _tag_list(child.get("added_tags")), _tag_list(child.get("removed_tags")))
        yield ChildAttribute(TAGS_FIELD, "", None, tags)


def value_text(value: Any) -> str:
    """An attribute value as text: checkbox 1/0, whole numbers without ``.0``, multi-select sorted."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return ",".join(sorted(value_text(v) for v in value if v is not None))
    if isinstance(value, dict):
        return ""
    return str(value).strip()


def _previous(child: dict) -> str | None:
    return value_text(child["previous_value"]) if "previous_value" in child else None


def _tag_list(value: Any) -> list[str] | None:
    """Zendesk tags (a list, or space-separated text in some audits) as a list; None if absent."""
    if value is None:
        return None
    if isinstance(value, str):
        return [tag.lower() for tag in value.split()]
    if isinstance(value, list):
        return value  # cleaned (text, lower case, no blanks) after the lists are exploded
    return None


def _text(value: Any) -> str:
    return "" if value is None else str(value)


# ------------------------------------------------------------------ names

class AttributeNames(NamedTuple):
    """How raw keys become attribute names, read once from the dump's metadata files."""

    custom: dict[str, str]      # custom field id -> attribute name (when ticket_fields.json names it)
    skipped: frozenset[str]     # custom field ids never used (free text, card digits, our risk field)
    forms: dict[str, str]       # form id -> form name (ticket_forms.json)


def read_names(src: Path, read_records, own: ZendeskParams) -> AttributeNames:
    """Names of custom fields and forms from ``ticket_fields.json`` / ``ticket_forms.json`` if present.

    ``read_records(path, key)`` yields the records of a dump file (the reader's JSON walker).
    Two fields with one title, or a title that is another attribute's name, get ``_<id>``.
    """
    skipped = {str(own.risk_field_id)}
    titles: dict[str, str] = {}
    path = _dump_file(src, ENDPOINT_TICKET_FIELDS)
    for record in read_records(path, ENDPOINT_TICKET_FIELDS) if path else ():
        field_id = value_text(record.get("id"))
        if _text(record.get("type")).lower() in SKIPPED_FIELD_TYPES:
            skipped.add(field_id)
        elif field_id and _text(record.get("title")).strip():
            titles[field_id] = _text(record.get("title"))
    names = dict(zip(titles, contract.attribute_names(pd.Series(list(titles.values()), dtype=object))))
    names = {field_id: name for field_id, name in names.items() if name}  # no letter or digit: custom_<id>
    counts = Counter(names.values())
    reserved = set(SYSTEM_ATTRIBUTES.values())
    custom = {
        field_id: f"{name}_{field_id}" if counts[name] > 1 or name in reserved or name.startswith(TAG_PREFIX)
        or name.startswith(CUSTOM_NAME_PREFIX) else name
        for field_id, name in names.items()
    }
    forms: dict[str, str] = {}
    path = _dump_file(src, ENDPOINT_TICKET_FORMS)
    for record in read_records(path, ENDPOINT_TICKET_FORMS) if path else ():
        if value_text(record.get("id")) and _text(record.get("name")).strip():
            forms[value_text(record.get("id"))] = _text(record.get("name")).strip()
    return AttributeNames(custom, frozenset(skipped), forms)


def _dump_file(src: Path, name: str) -> Path | None:
    for suffix in (".json", ".jsonl"):
        if (src / f"{name}{suffix}").is_file():
            return src / f"{name}{suffix}"
    return None


def is_own_tag(tags: pd.Series, own: ZendeskParams) -> pd.Series:
    """True for the tags this project's payload writes: ``<prefix>risk_<band>`` and ``<prefix>p<n>``."""
    prefix = re.escape(own.tag_prefix.lower())
    return tags.str.fullmatch(rf"{prefix}(risk_.+|p\d+)")


# ------------------------------------------------------------------ writing (the inverse)

def field_ids(names: pd.Series, base: int) -> dict[str, int]:
    """Attribute name -> the custom field id a written dump gives it (sorted names, from ``base`` + 1)."""
    reserved = set(SYSTEM_ATTRIBUTES.values())
    ordered = sorted({n for n in names.dropna().astype(str) if n and n not in reserved})
    return {name: base + rank for rank, name in enumerate(ordered, start=1)}


def attribute_child(name: str, value: str, ids: dict[str, int]) -> dict:
    """The part of a ticket-events child that sets attribute ``name`` (``""`` -> null: cleared).

    ``form``, ``brand`` and ``organization`` go under their Zendesk keys, anything else as a
    custom field; reading the dump back gives the same name and value.
    """
    for key, attribute in SYSTEM_ATTRIBUTES.items():
        if name == attribute:
            return {key: value or None}
    return {CUSTOM_FIELDS_KEY: {str(ids[name]): value or None}}


def ticket_fields_page(ids: dict[str, int]) -> dict:
    """``ticket_fields.json`` naming the written custom fields (title = the attribute name)."""
    fields = [{"id": i, "type": "tagger", "title": name, "active": True} for name, i in sorted(ids.items())]
    return {"ticket_fields": fields, "next_page": None, "count": len(fields)}


# ------------------------------------------------------------------ rows -> events

def attribute_events(
    raw: pd.DataFrame, tickets: pd.DataFrame, names: AttributeNames, own: ZendeskParams
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Finish the reader's raw event rows: name attributes, expand tags, add creation values.

    ``raw`` has one row per comment / field change / attribute value in source order
    (columns ``ticket_id``, ``at``, ``author``, ``system``, ``kind``, ``value``, ``body``,
    ``field`` (raw key), ``previous``, ``created`` (a Create child) and the tag lists
    :data:`TAG_COLUMNS`);
    ``tickets`` the ticket rows with ``_form``, ``_brand``, ``_organization`` (raw ids).
    Returns the rows with final ``field`` names (source order kept, added rows placed at
    the ticket's creation) and the counts for the import summary.
    """
    raw = raw.assign(_pos=np.arange(len(raw), dtype=float))
    is_attr = (raw["kind"] == contract.FIELD_EVENT).to_numpy()
    others, attrs = raw[~is_attr], raw[is_attr]
    is_tags = (attrs["field"] == TAGS_FIELD).to_numpy()
    scalars, tag_rows = attrs[~is_tags], attrs[is_tags]

    custom_id = scalars["field"].str.removeprefix(CUSTOM_KEY_PREFIX).where(
        scalars["field"].str.startswith(CUSTOM_KEY_PREFIX))
    is_own = (custom_id == str(own.risk_field_id)).to_numpy()
    skipped = custom_id.isin(names.skipped).to_numpy()  # the risk field included
    empty_at_creation = (scalars["created"] & (scalars["value"] == "")).to_numpy()
    scalars = scalars[~skipped & ~empty_at_creation]
    custom_id = custom_id[~skipped & ~empty_at_creation]
    named = custom_id.map(names.custom).astype(object)
    named = named.where(named.notna(), CUSTOM_NAME_PREFIX + custom_id)
    scalars = scalars.assign(field=named.where(custom_id.notna(), scalars["field"]))
    is_form = scalars["field"] == "form"
    scalars = scalars.assign(
        value=scalars["value"].where(~is_form, scalars["value"].replace(names.forms)),
        previous=scalars["previous"].where(~is_form, scalars["previous"].replace(names.forms)),
    )
    created_at = tickets.set_index("ticket_id")["created_at"]
    seeds = _values_before_first_change(scalars, created_at)
    fallback = _ticket_row_values(pd.concat([scalars, seeds]), tickets, names)
    tag_events, tag_stats = _tag_events(tag_rows, created_at, own)

    events = pd.concat([others, scalars, seeds, fallback, tag_events], ignore_index=True)
    events = events.sort_values("_pos", kind="stable", ignore_index=True)
    fields = events.loc[events["kind"] == contract.FIELD_EVENT, "field"]
    stats = {
        "attribute_events": len(fields),
        "attributes": tuple(sorted(set(fields))),
        "attribute_values_before_first_change": len(seeds) + tag_stats["before_first_change"],
        "attribute_values_from_ticket_rows": len(fallback),
        "empty_attributes_at_creation": int(empty_at_creation.sum()),
        "skipped_field_values": int((skipped & ~is_own).sum()),
        "own_output_values_skipped": int(is_own.sum()) + tag_stats["own"],
        "rare_tags_left_out": tag_stats["rare"],
    }
    return events.drop(columns=["_pos", "previous", "created", *TAG_COLUMNS]), stats


def _first_per_attribute(rows: pd.DataFrame) -> pd.DataFrame:
    """Each (ticket, attribute)'s earliest row (time, then source order)."""
    at = pd.to_datetime(rows["at"], utc=True, format="ISO8601", errors="coerce")
    ordered = rows.assign(_t=at).sort_values(["ticket_id", "field", "_t", "_pos"], kind="stable")
    return ordered.drop_duplicates(["ticket_id", "field"]).drop(columns="_t")


def _at_creation(rows: pd.DataFrame, created_at: pd.Series) -> pd.DataFrame:
    """``rows`` moved to their ticket's creation, by the system, before every other row."""
    return rows.assign(at=rows["ticket_id"].map(created_at).fillna("").to_numpy(), author="", system=True,
                       _pos=-1.0, previous=None, created=True, **dict.fromkeys(TAG_COLUMNS))


def _values_before_first_change(scalars: pd.DataFrame, created_at: pd.Series) -> pd.DataFrame:
    first = _first_per_attribute(scalars)
    known_before = (~first["created"]) & first["previous"].notna() & (first["previous"] != "")
    seeds = first[known_before.to_numpy()]
    return _at_creation(seeds.assign(value=seeds["previous"]), created_at)


def _ticket_row_values(scalars: pd.DataFrame, tickets: pd.DataFrame, names: AttributeNames) -> pd.DataFrame:
    """Form, brand and organization from ticket rows, for tickets with no event of them."""
    frames = []
    for attribute in SYSTEM_ATTRIBUTES.values():
        value = tickets[f"_{attribute}"]
        if attribute == "form":
            value = value.replace(names.forms)
        frames.append(pd.DataFrame({"ticket_id": tickets["ticket_id"], "value": value, "field": attribute}))
    rows = pd.concat(frames, ignore_index=True)
    rows = _anti_join(rows[(rows["value"] != "").to_numpy()], scalars, ["ticket_id", "field"])
    created_at = tickets.set_index("ticket_id")["created_at"]
    return _at_creation(rows.assign(kind=contract.FIELD_EVENT, body=""), created_at)


def _tag_events(rows: pd.DataFrame, created_at: pd.Series, own: ZendeskParams) -> tuple[pd.DataFrame, dict[str, int]]:
    """Tag lists -> ``tag_<tag>`` = 1 when a frequent tag appears on a ticket, "" when it goes.

    A full list (``tags``) is compared with the ticket's previous full list; a child with
    only ``added_tags`` / ``removed_tags`` gives those directly. The earliest list, when
    it is a Change with a previous list, first sets that list at the ticket's creation.
    Vectorised on integer keys: (ticket, list number, tag) -> one int64.
    """
    if rows.empty:
        return rows.iloc[:0], {"own": 0, "rare": 0, "before_first_change": 0}
    full = rows["tags_full"]
    snaps = rows[full.notna().to_numpy()].assign(_list=full[full.notna()])
    at = pd.to_datetime(snaps["at"], utc=True, format="ISO8601", errors="coerce")
    snaps = snaps.assign(_t=at).sort_values(["ticket_id", "_t", "_pos"], kind="stable").drop(columns="_t")
    snaps["_snap"] = snaps.groupby("ticket_id", sort=False).cumcount()
    first = snaps[(snaps["_snap"] == 0) & ~snaps["created"]]
    seed_lists = first["tags_previous"]
    seeds = _at_creation(first[seed_lists.notna().to_numpy()], created_at).assign(
        _list=seed_lists.dropna(), _snap=-1)
    snaps = pd.concat([seeds, snaps], ignore_index=True)
    diffs = rows[full.isna().to_numpy()]
    added = diffs.assign(tag=diffs["tags_added"], value=PRESENT).explode("tag").dropna(subset="tag")
    removed = diffs.assign(tag=diffs["tags_removed"], value=ABSENT).explode("tag").dropna(subset="tag")
    diff_rows = pd.concat([added, removed])
    diff_rows = diff_rows.assign(tag=_clean_tags(diff_rows["tag"]))

    # One slot per list of a ticket: slot 0 = the list held from creation (-1), then 0, 1, ...
    ticket_code, ticket_ids = pd.factorize(pd.concat([snaps["ticket_id"], added["ticket_id"]]))
    width = int(snaps["_snap"].max()) + 2 if len(snaps) else 1
    slot = ticket_code[: len(snaps)] * width + snaps["_snap"].to_numpy() + 1
    exploded = pd.DataFrame({"slot": slot, "tag": snaps["_list"].to_numpy()}).explode("tag").dropna()
    exploded["tag"] = _clean_tags(exploded["tag"])

    # Tickets per tag (distinct), over lists and added tags.
    tag_code, tag_names = pd.factorize(pd.concat([exploded["tag"], _clean_tags(added["tag"])]))
    ticket_of = np.concatenate([exploded["slot"].to_numpy(dtype=np.int64) // width, ticket_code[len(snaps):]])
    pairs = _unique(ticket_of.astype(np.int64) * len(tag_names) + tag_code)
    counts = pd.Series(np.bincount(pairs % len(tag_names), minlength=len(tag_names)), index=tag_names)
    counts = counts.drop("", errors="ignore")  # a blank tag is no tag
    own_tags = is_own_tag(counts.index.to_series(), own).to_numpy()
    frequent = counts[~own_tags & (counts >= MIN_TICKETS_PER_TAG).to_numpy()]
    # Most frequent first, ties by name, so the same dump always keeps the same tags.
    kept = frequent.sort_index().sort_values(ascending=False, kind="stable").index[:MAX_TAG_ATTRIBUTES]

    exploded = exploded[exploded["tag"].isin(kept)].drop_duplicates()
    n_kept = max(len(kept), 1)
    key = exploded["slot"].to_numpy(dtype=np.int64) * n_kept + pd.Index(kept).get_indexer(exploded["tag"])
    keys = _unique(key)
    # A tag appears where the ticket's list before did not hold it; slot 0 (held from the
    # creation) has no list before it (key - n_kept would be the previous ticket's).
    first_slot = exploded["slot"].to_numpy() % width == 0
    appears = first_slot | ~_within(key - n_kept, keys)
    last_slot = pd.Series(slot).groupby(ticket_code[: len(snaps)]).transform("max").to_numpy()
    has_next = exploded["slot"].to_numpy() < last_slot[pd.Index(slot).get_indexer(exploded["slot"])]
    goes = has_next & ~_within(key + n_kept, keys)
    changes = pd.DataFrame({
        "slot": np.concatenate([exploded["slot"].to_numpy()[appears], exploded["slot"].to_numpy()[goes] + 1]),
        "tag": np.concatenate([exploded["tag"].to_numpy()[appears], exploded["tag"].to_numpy()[goes]]),
        "value": np.repeat([PRESENT, ABSENT], [int(appears.sum()), int(goes.sum())]),
    })
    at_list = snaps.drop(columns=["_list", "value", "_snap"]).iloc[pd.Index(slot).get_indexer(changes["slot"])]
    at_list = at_list.assign(tag=changes["tag"].to_numpy(), value=changes["value"].to_numpy())
    stats = {
        # Our own tags count once per ticket that carried them.
        "own": int(np.isin(pairs % len(tag_names), tag_names.get_indexer(counts.index[own_tags])).sum()),
        "rare": int((~own_tags).sum()) - len(kept),
        "before_first_change": int((appears & first_slot).sum()),
    }
    events = pd.concat([at_list, diff_rows[diff_rows["tag"].isin(kept)]], ignore_index=True)
    tag_fields = contract.attribute_names(TAG_PREFIX + events["tag"].astype(str))
    # Within one update the tags' events follow in name order.
    events = events.assign(field=tag_fields).sort_values(["_pos", "field"], kind="stable")
    return events.drop(columns="tag"), stats


def _unique(values: np.ndarray) -> np.ndarray:
    """Sorted distinct int64 values (np.unique's hash path is several times slower here)."""
    ordered = np.sort(values)
    return ordered[np.r_[True, ordered[1:] != ordered[:-1]]] if len(ordered) else ordered


def _within(values: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    """Whether each value is one of ``sorted_keys`` (binary search)."""
    if not len(sorted_keys):
        return np.zeros(len(values), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_keys, values), len(sorted_keys) - 1)
    return sorted_keys[at] == values


def _clean_tags(tags: pd.Series) -> pd.Series:
    """Tags as Zendesk stores them (lower case, no spaces); a blank one is dropped by the caller."""
    return tags.astype(str).str.strip().str.lower()


def _anti_join(left: pd.DataFrame, right: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    """Rows of ``left`` whose ``key`` is not in ``right``."""
    merged = left[key].merge(right[key].drop_duplicates(), on=key, how="left", indicator=True)
    return left[(merged["_merge"] == "left_only").to_numpy()]
