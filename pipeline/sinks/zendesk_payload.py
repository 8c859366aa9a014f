"""Scored queue -> Zendesk ``update_many`` batches (``score --zendesk-payload``).

Each batch holds at most 100 tickets (the endpoint's limit) and sets the risk custom
field, the risk-band and tier tags (removing stale ones) and the model version in the
audit metadata. ``push-zendesk`` sends the file (:mod:`pipeline.sinks.zendesk_push`).

``zendesk.risk_field_id`` ships as a placeholder (the params default); a payload built
with it would set a field that does not exist, so :func:`risk_field_warning` (for
``score --zendesk-payload``) and :func:`payload_warning` (for ``push-zendesk``) give a
one-line warning to print.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.core.errors import ExportError
from pipeline.core.io import write_json
from pipeline.core.params import ZendeskParams

UPDATE_MANY_MAX_TICKETS = 100
DEFAULT_RISK_BANDS = {"high": 60, "medium": 30, "low": 0}
TIERS = ("P1", "P2", "P3", "P4")
PAYLOAD_FORMAT = "csat-triage.zendesk-update-many.v1"
# The params default is a placeholder, not a real field: read it from params (its one home).
PLACEHOLDER_RISK_FIELD_ID = int(ZendeskParams.model_fields["risk_field_id"].default)


def risk_field_warning(risk_field_id: int | None) -> str | None:
    """One warning line when ``risk_field_id`` is still the placeholder default, else None."""
    if risk_field_id is None or int(risk_field_id) != PLACEHOLDER_RISK_FIELD_ID:
        return None
    return (
        f"warning: zendesk.risk_field_id is still the placeholder {PLACEHOLDER_RISK_FIELD_ID}, a field your Zendesk "
        "does not have, so the updates would fail; put your numeric \"CSAT risk\" field's id in params.yaml "
        "(README, Zendesk: Writing back)"
    )


def payload_warning(payload: dict | list) -> str | None:
    """:func:`risk_field_warning` for a payload document or its list of batches.

    Uses the document's ``risk_field_id`` when recorded, else the custom field ids its
    tickets set (payload files written before the id was recorded).
    """
    if isinstance(payload, dict) and isinstance(payload.get("risk_field_id"), int):
        field_ids = {payload["risk_field_id"]}
    else:
        batches = payload.get("batches", []) if isinstance(payload, dict) else payload
        field_ids = _field_ids(batches)
    return risk_field_warning(PLACEHOLDER_RISK_FIELD_ID) if PLACEHOLDER_RISK_FIELD_ID in field_ids else None


def _field_ids(batches: list) -> set[int]:
    """The custom field ids the batches' tickets set (malformed entries are left to the push's checks)."""
    return {
        f["id"] for b in batches if isinstance(b, dict) for t in b.get("tickets", []) if isinstance(t, dict)
        for f in t.get("custom_fields", []) if isinstance(f, dict) and isinstance(f.get("id"), int)
    }


def build_update_many_payload(
    scored: pd.DataFrame,
    risk_field_id: int,
    model_version: str,
    tag_prefix: str = "csat_",
    risk_bands: dict[str, int] | None = None,
    batch_size: int = UPDATE_MANY_MAX_TICKETS,
) -> list[dict]:
    """Turn scored tickets into ``update_many`` request bodies, at most ``batch_size`` tickets each.

    ``scored`` needs ``ticket_id`` (numeric text), ``risk`` (int 0-100) and ``tier``
    (P1..P4); rows go out in ``rank`` order when that column exists (riskiest first).
    Each ticket gets ``custom_fields`` = [{id: risk_field_id, value: risk}], its risk
    band tag (``{prefix}risk_<band>``; default bands high >= 60, medium >= 30, low
    below) and tier tag (``{prefix}p1``..) in ``additional_tags``, the other band and
    tier tags in ``remove_tags``, and ``metadata`` = {"csat_triage": {"model_version"}}
    which Zendesk stores on the update's audit as ``metadata.custom``.
    """
    if not 1 <= batch_size <= UPDATE_MANY_MAX_TICKETS:
        raise ExportError(f"batch_size must be 1..{UPDATE_MANY_MAX_TICKETS} (Zendesk update_many limit)")
    missing = [c for c in ("ticket_id", "risk", "tier") if c not in scored.columns]
    if missing:
        raise ExportError(f"scored table lacks column {missing[0]!r}; pass the scoring stage's output")
    bands = dict(DEFAULT_RISK_BANDS if risk_bands is None else risk_bands)
    if not bands:
        raise ExportError("risk_bands is empty; give at least one band name and minimum risk")

    frame = scored.sort_values("rank", kind="stable") if "rank" in scored.columns else scored
    ticket_id = frame["ticket_id"].astype(str).str.strip()
    _check_ticket_ids(ticket_id)
    _check_model_version(frame, model_version)
    risk = pd.to_numeric(frame["risk"], errors="coerce")
    if risk.isna().any() or ((risk < 0) | (risk > 100)).any():
        raise ExportError("risk must be a number 0-100 for every scored ticket")
    tier = frame["tier"].astype(str).str.strip().str.upper()
    if not tier.isin(TIERS).all():
        raise ExportError(f"unknown tier {tier[~tier.isin(TIERS)].iloc[0]!r}; expected one of {', '.join(TIERS)}")

    band = _risk_band(risk.to_numpy(), bands)
    tag_sets = _tag_sets(tag_prefix, list(bands), band, tier.to_numpy())
    metadata = {"csat_triage": {"model_version": model_version}}
    tickets = [
        {
            "id": int(tid),
            "custom_fields": [{"id": int(risk_field_id), "value": int(round(r))}],
            "additional_tags": tag_sets[(b, t)][0],
            "remove_tags": tag_sets[(b, t)][1],
            "metadata": metadata,
        }
        for tid, r, b, t in zip(ticket_id, risk.to_numpy(), band, tier.to_numpy())
    ]
    return [{"tickets": tickets[i:i + batch_size]} for i in range(0, len(tickets), batch_size)]


def _check_ticket_ids(ticket_id: pd.Series) -> None:
    bad = ~ticket_id.str.fullmatch(r"\d+")
    if bad.any():
        raise ExportError(
            f"Zendesk needs numeric ticket ids; {int(bad.sum())} scored tickets have others "
            f"(first: {ticket_id[bad].iloc[0]!r}); push only tickets imported from Zendesk"
        )
    duplicated = ticket_id.duplicated()
    if duplicated.any():
        raise ExportError(f"ticket {ticket_id[duplicated].iloc[0]} is scored twice; one update per ticket")


def _check_model_version(frame: pd.DataFrame, model_version: str) -> None:
    if "model_version" not in frame.columns:
        return
    other = frame["model_version"].astype(str).unique()
    other = [v for v in other if v not in (model_version, "", "nan")]
    if other:
        raise ExportError(f"scores come from model {other[0]!r}, not {model_version!r}; rescore or pass the right version")


def _risk_band(risk: np.ndarray, bands: dict[str, int]) -> np.ndarray:
    """Band name per risk: the band with the highest minimum <= risk (lowest band below all)."""
    ordered = sorted(bands.items(), key=lambda kv: kv[1], reverse=True)
    conditions = [risk >= minimum for _, minimum in ordered]
    return np.select(conditions, [name for name, _ in ordered], default=ordered[-1][0])


def _tag_sets(prefix: str, band_names: list[str], band: np.ndarray, tier: np.ndarray) -> dict:
    """(band, tier) -> (tags to add, tags to remove); a handful of combinations, built once."""
    band_tags = {b: f"{prefix}risk_{b}" for b in band_names}
    tier_tags = {t: f"{prefix}{t.lower()}" for t in TIERS}
    sets = {}
    for b, t in set(zip(band.tolist(), tier.tolist())):
        add = [band_tags[b], tier_tags[t]]
        remove = [tag for tag in (*band_tags.values(), *tier_tags.values()) if tag not in add]
        sets[(b, t)] = (add, remove)
    return sets


def write_update_many_payload(
    batches: list[dict], path: str | os.PathLike, created_from: str = ""
) -> Path:
    """Write batches as one JSON document, atomically.

    Format: ``{"format": "csat-triage.zendesk-update-many.v1", "model_version",
    "risk_field_id", "created_from", "ticket_count", "batch_count", "batches": [<update_many body>...]}``.
    ``model_version`` is read from the batches' metadata and ``risk_field_id`` from their
    custom fields (null when there are no tickets); ``created_from`` names the scores
    file the batches came from.
    """
    versions = {
        t.get("metadata", {}).get("csat_triage", {}).get("model_version")
        for b in batches for t in b.get("tickets", [])
    }
    versions.discard(None)
    field_ids = sorted(_field_ids(batches))
    document = {
        "format": PAYLOAD_FORMAT,
        "model_version": sorted(versions)[0] if len(versions) == 1 else sorted(versions),
        "risk_field_id": field_ids[0] if len(field_ids) == 1 else (field_ids or None),
        "created_from": str(created_from),
        "ticket_count": sum(len(b.get("tickets", [])) for b in batches),
        "batch_count": len(batches),
        "batches": batches,
    }
    return write_json(document, path)
