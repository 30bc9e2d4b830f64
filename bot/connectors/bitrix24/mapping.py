"""Pure translations between Bitrix24 entities and LeadTrail events (no I/O, so tests read like a table);
what LeadTrail writes into the CRM in words is in ``reports.texts.crm``.

CRM ids on LeadTrail's side keep the seed's form: a lead is ``BX_<id>`` (``"crm_id":"BX_67890"``),
a contact ``BX_C<id>``, a deal ``BX_D<id>``; ``leadtrail client BX_…`` finds the client by any of them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from storage.event_types import EventType

ORIGINATOR_ID = "leadtrail"
ENTITY_PREFIX = {"lead": "BX_", "contact": "BX_C", "deal": "BX_D"}
SHORT_LIMIT = 256


def crm_id(entity: str, entity_id: int | str) -> str:
    return f"{ENTITY_PREFIX[entity]}{entity_id}"


def origin_id(client_id: int) -> str:
    """ORIGIN_ID of the lead LeadTrail makes for a client: stable, so a retry finds the lead it made."""
    return f"client-{client_id}"


def _short(value: Any) -> str | None:
    if value is None or value == "":
        return None
    text = str(value).strip()
    return text[:SHORT_LIMIT] or None


def _amount(value: Any) -> float | None:
    try:
        amount = float(value)
    except (TypeError, ValueError):
        return None
    return amount if abs(amount) <= 1e12 else None


def _base(kind: str, entity_id: int, event: str, user_id: str, channel: str, suffix: str) -> dict[str, Any]:
    return {
        "timestamp": datetime.now(UTC).isoformat(),
        "event": event,
        "user_id": user_id,
        "channel": channel,
        "actor": "system",
        "crm_id": crm_id(kind, entity_id),
        "event_id": f"bitrix24:{kind}:{entity_id}:{suffix}"[:128],
        "source": "bitrix24",
    }


def lead_event(fields: dict[str, Any], user_id: str, channel: str) -> dict[str, Any]:
    """A lead as Bitrix24 shows it now: lost (JUNK / semantic F) → ``refusal`` with the CRM's reason."""
    entity_id = int(fields["ID"])
    status = _short(fields.get("STATUS_ID")) or "UNKNOWN"
    if fields.get("STATUS_SEMANTIC_ID") == "F" or status == "JUNK":
        event = _base("lead", entity_id, EventType.REFUSAL, user_id, channel, "lost")
        event["reason"] = _short(fields.get("STATUS_DESCRIPTION")) or _short(fields.get("COMMENTS")) or status
        event["status"] = status
        return event
    event = _base("lead", entity_id, EventType.CRM_LEAD_UPDATED, user_id, channel, f"status:{status}")
    event["status"] = status
    return event


def deal_event(fields: dict[str, Any], user_id: str, channel: str) -> dict[str, Any]:
    """A deal: won (semantic S / WON) → ``payment_status`` paid with the amount; lost → ``refusal``."""
    entity_id = int(fields["ID"])
    stage = _short(fields.get("STAGE_ID")) or "UNKNOWN"
    semantic = fields.get("STAGE_SEMANTIC_ID")
    if semantic == "S" or stage == "WON" or stage.endswith(":WON"):
        event = _base("deal", entity_id, EventType.PAYMENT_STATUS, user_id, channel, "won")
        event["status"] = "paid"
        event["amount"] = _amount(fields.get("OPPORTUNITY"))
        event["currency"] = _short(fields.get("CURRENCY_ID"))
        return event
    if semantic == "F" or stage == "LOSE" or stage.endswith(":LOSE"):
        event = _base("deal", entity_id, EventType.REFUSAL, user_id, channel, "lost")
        event["reason"] = _short(fields.get("COMMENTS")) or stage
        event["status"] = stage
        return event
    event = _base("deal", entity_id, EventType.CRM_DEAL_UPDATED, user_id, channel, f"stage:{stage}")
    event["status"] = stage
    return event


def deal_owner_ids(fields: dict[str, Any]) -> list[str]:
    """CRM ids that may name the deal's client, most specific first."""
    ids = [crm_id("deal", int(fields["ID"]))]
    for key, entity in (("LEAD_ID", "lead"), ("CONTACT_ID", "contact")):
        value = str(fields.get(key) or "")
        if value.isdigit() and value != "0":
            ids.append(crm_id(entity, value))
    return ids
