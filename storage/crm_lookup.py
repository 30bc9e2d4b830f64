"""What the CRM worker reads about clients: who a new lead is, their recent dialog, who owns a CRM id."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Client, ClientIdentity, StoredEvent


@dataclass(frozen=True, slots=True)
class LeadContext:
    """The client behind a lead event, as the CRM lead needs it."""

    client_id: int
    user_id: str
    channel: str
    name: str | None
    phone: str | None  # E.164, as phone identities are kept
    crm_ids: list[str]


@dataclass(frozen=True, slots=True)
class CrmOwner:
    """The client a CRM id belongs to, and a user id/channel to write their CRM events under."""

    client_id: int
    user_id: str
    channel: str


async def lead_context(session: AsyncSession, event_row_id: int) -> LeadContext | None:
    """``None`` when the event is gone (the client was erased)."""
    event = await session.get(StoredEvent, event_row_id)
    if event is None:
        return None
    client = await session.get(Client, event.client_id)
    identities = await session.execute(
        select(ClientIdentity.kind, ClientIdentity.value)
        .where(ClientIdentity.client_id == event.client_id, ClientIdentity.kind.in_(("crm", "phone")))
        .order_by(ClientIdentity.first_seen_at.desc(), ClientIdentity.id.desc())
    )
    crm_ids: list[str] = []
    phones: list[str] = []
    for kind, value in identities:
        (crm_ids if kind == "crm" else phones).append(value)
    return LeadContext(
        client_id=event.client_id,
        user_id=event.user_id,
        channel=event.channel,
        name=(client.name if client else None) or event.name,
        phone=phones[0] if phones else None,
        crm_ids=crm_ids,
    )


async def recent_dialog(session: AsyncSession, client_id: int, limit: int = 12) -> list[tuple[str, str]]:
    """The latest texts of the dialog, oldest first: (who, text); LeadTrail's own notes are left out."""
    result = await session.execute(
        select(StoredEvent.actor, StoredEvent.message, StoredEvent.assistant_response)
        .where(
            StoredEvent.client_id == client_id,
            ~StoredEvent.event_id.startswith("bitrix24:"),
            or_(StoredEvent.message.is_not(None), StoredEvent.assistant_response.is_not(None)),
        )
        .order_by(StoredEvent.ts.desc(), StoredEvent.id.desc())
        .limit(limit)
    )
    lines: list[tuple[str, str]] = []
    for actor, message, answer in reversed(list(result)):
        # A message is the client's unless a manager or the assistant is the actor.
        who = actor if actor in ("manager", "assistant") else "client"
        if message:
            lines.append((who, message))
        if answer:
            lines.append(("assistant", answer))
    return lines


async def owner_of_crm_ids(session: AsyncSession, crm_ids: list[str]) -> CrmOwner | None:
    """The client known by the first of these CRM ids that LeadTrail knows, with their latest channel."""
    for crm_id in crm_ids:
        client_id = (
            await session.execute(
                select(ClientIdentity.client_id).where(
                    ClientIdentity.kind == "crm", ClientIdentity.value == crm_id
                )
            )
        ).scalar_one_or_none()
        if client_id is None:
            continue
        latest = (
            await session.execute(
                select(StoredEvent.user_id, StoredEvent.channel)
                .where(StoredEvent.client_id == client_id)
                .order_by(StoredEvent.ts.desc(), StoredEvent.id.desc())
                .limit(1)
            )
        ).first()
        if latest is not None:
            return CrmOwner(client_id, latest.user_id, latest.channel)
    return None
