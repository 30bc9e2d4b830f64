"""Finding a client by any of their ids and reading their whole timeline."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.aggregates import ModelUsage
from storage.bookings import counted_booking
from storage.event_types import EventType
from storage.identity_policy import USER
from storage.models import RECEIVED_EVENT_COLUMNS, Client, ClientIdentity, IdentityLink, StoredEvent
from storage.phones import DEFAULT_REGION, normalize_phone
from storage.report_queries import load_model_usage

EVENT_FIELDS = tuple(name for name in RECEIVED_EVENT_COLUMNS if name != "client_id")


@dataclass(frozen=True, slots=True)
class JoinedBy:
    """A value that joins several user ids of one client: why they are one person."""

    kind: str  # crm, lead, phone
    value: str
    user_ids: list[str]


@dataclass(slots=True)
class ClientCard:
    id: int
    name: str | None
    identities: dict[str, list[str]] = field(default_factory=dict)
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    event_count: int = 0
    joined_by: list[JoinedBy] = field(default_factory=list)


_EVENTS = StoredEvent.__table__
_PHONE_LIKE = re.compile(r"^\+?[\d\s()\-]{5,}$")


async def find_client_ids(session: AsyncSession, query: str, region: str = DEFAULT_REGION) -> list[int]:
    """Clients known by this user id, CRM id, lead id or phone (exact match; a phone however written,
    read in ``region`` without a country code), oldest first."""
    values = {query.strip()}
    if _PHONE_LIKE.match(query.strip()) and (phone := normalize_phone(query, region)):
        values.add(phone)
    result = await session.execute(
        select(ClientIdentity.client_id)
        .where(ClientIdentity.value.in_(values))
        .distinct()
        .order_by(ClientIdentity.client_id)
    )
    return list(result.scalars())


async def load_card(session: AsyncSession, client_id: int) -> ClientCard | None:
    client = await session.get(Client, client_id)
    if client is None:
        return None
    card = ClientCard(id=client.id, name=client.name)
    identities = await session.execute(
        select(ClientIdentity.kind, ClientIdentity.value)
        .where(ClientIdentity.client_id == client_id)
        .order_by(ClientIdentity.kind, ClientIdentity.first_seen_at, ClientIdentity.id)
    )
    for kind, value in identities:
        card.identities.setdefault(kind, []).append(value)
    stats = await session.execute(
        select(func.min(StoredEvent.ts), func.max(StoredEvent.ts), func.count()).where(
            StoredEvent.client_id == client_id, counted_booking(_EVENTS)
        )
    )
    first, last, count = stats.one()
    card.first_seen, card.last_seen, card.event_count = first, last, count
    card.joined_by = await _joined_by(session, client_id)
    return card


async def _joined_by(session: AsyncSession, client_id: int) -> list[JoinedBy]:
    """The client's values that join two or more of its user ids, with those ids."""
    mine = select(ClientIdentity.value).where(
        ClientIdentity.client_id == client_id, ClientIdentity.kind == USER
    )
    value = ClientIdentity.__table__.alias("joining")
    rows = await session.execute(
        select(IdentityLink.kind, IdentityLink.value, IdentityLink.user_id)
        .join(
            value,
            (value.c.kind == IdentityLink.kind)
            & (value.c.value == IdentityLink.value)
            & (value.c.client_id == client_id),
        )
        .where(IdentityLink.linking, IdentityLink.user_id.in_(mine))
        .order_by(IdentityLink.kind, IdentityLink.value, IdentityLink.first_seen_at, IdentityLink.id)
    )
    users: dict[tuple[str, str], list[str]] = {}
    for kind, shared, user_id in rows:
        users.setdefault((kind, shared), []).append(user_id)
    return [JoinedBy(kind, shared, ids) for (kind, shared), ids in users.items() if len(ids) > 1]


async def load_events(
    session: AsyncSession, client_id: int, offset: int = 0, limit: int | None = None
) -> list[StoredEvent]:
    """The client's events, oldest first (ties in arrival order); an appointment booked twice (by the
    assistant and by the booking system) is one entry, its earliest report."""
    statement = (
        select(StoredEvent)
        .where(StoredEvent.client_id == client_id, counted_booking(_EVENTS))
        .order_by(StoredEvent.ts, StoredEvent.id)
        .offset(offset)
    )
    if limit is not None:
        statement = statement.limit(limit)
    return list((await session.execute(statement)).scalars())


def event_fields(event: StoredEvent) -> dict[str, Any]:
    """Every field the event carries (set known fields, then extras), as it was received."""
    fields = {
        "timestamp" if name == "ts" else name: getattr(event, name)
        for name in EVENT_FIELDS
        if name != "extra"
    }
    fields = {name: value for name, value in fields.items() if value is not None}
    if event.extra:
        fields.update({key: value for key, value in event.extra.items() if key not in fields})
    return fields


OUTCOME_EVENTS = (
    EventType.LEAD_CREATED,
    EventType.APPOINTMENT_BOOKED,
    EventType.PAYMENT_STATUS,
    EventType.NO_SHOW,
    EventType.REFUSAL,
    EventType.APPOINTMENT_CANCELLED,
    EventType.APPOINTMENT_CONFIRMED,
    EventType.APPOINTMENT_RESCHEDULED,
    EventType.VISIT,
)


async def client_channels(session: AsyncSession, client_id: int) -> list[str]:
    result = await session.execute(
        select(StoredEvent.channel)
        .where(StoredEvent.client_id == client_id)
        .distinct()
        .order_by(StoredEvent.channel)
    )
    return list(result.scalars())


async def client_outcomes(session: AsyncSession, client_id: int) -> list[StoredEvent]:
    """The client's business events (lead, booking, payment, no-show, refusal), oldest first."""
    result = await session.execute(
        select(StoredEvent)
        .where(StoredEvent.client_id == client_id, StoredEvent.event.in_(OUTCOME_EVENTS))
        .order_by(StoredEvent.ts, StoredEvent.id)
    )
    return list(result.scalars())


async def client_model_usage(session: AsyncSession, client_id: int) -> tuple[ModelUsage, ...]:
    """The client's model calls over their whole history, per model and cost currency."""
    return await load_model_usage(session, StoredEvent.client_id == client_id)


def _like_pattern(fragment: str) -> str:
    # The owner's text is plain text: LIKE's wildcards in it match themselves.
    escaped = fragment.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def find_clients_by_name(
    session: AsyncSession, fragment: str, limit: int = 10
) -> list[tuple[int, str]]:
    """Clients whose name contains the fragment, whatever the case (Cyrillic included)."""
    folded = " ".join(fragment.split()).casefold()
    if not folded:
        return []
    result = await session.execute(
        select(Client.id, Client.name)
        .where(Client.search_name.like(_like_pattern(folded), escape="\\"))
        .order_by(Client.id.desc())
        .limit(limit)
    )
    return [(client_id, name or "") for client_id, name in result.all()]
