"""Finding clients for the owner and assembling what their card and timeline pages show."""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from bot.telegram.views.clients import PAGE_SIZE
from reports.client_status import ClientStatus, client_status
from reports.metrics import AiCost, ai_cost
from storage.models import StoredEvent
from storage.timeline import (
    ClientCard,
    client_channels,
    client_model_usage,
    client_outcomes,
    find_client_ids,
    find_clients_by_name,
    load_card,
    load_events,
)

MAX_MATCHES = 10


@dataclass(frozen=True, slots=True)
class ClientMatch:
    client_id: int
    title: str


@dataclass(frozen=True, slots=True)
class ClientView:
    card: ClientCard
    channels: list[str]
    status: ClientStatus

    @property
    def pages(self) -> int:
        return max(math.ceil(self.card.event_count / PAGE_SIZE), 1)


async def lookup_clients(session: AsyncSession, query: str, region: str) -> list[ClientMatch]:
    """By any id first (exact; a phone without a country code read in ``region``), then by part of the
    name."""
    matches: list[ClientMatch] = []
    for client_id in (await find_client_ids(session, query, region))[:MAX_MATCHES]:
        card = await load_card(session, client_id)
        if card is not None:
            first_id = next(iter(card.identities.get("user", [])), "")
            matches.append(ClientMatch(client_id, " · ".join(part for part in (card.name, first_id) if part)))
    if matches:
        return matches
    return [
        ClientMatch(client_id, name)
        for client_id, name in await find_clients_by_name(session, query, MAX_MATCHES)
    ]


async def client_view(session: AsyncSession, client_id: int) -> ClientView | None:
    card = await load_card(session, client_id)
    if card is None:
        return None
    status = client_status(await client_outcomes(session, client_id))
    return ClientView(card, await client_channels(session, client_id), status)


async def client_ai_cost(session: AsyncSession, client_id: int, currency: str) -> AiCost:
    """What the client's model calls cost, for the card."""
    return ai_cost(await client_model_usage(session, client_id), currency)


async def timeline_page(session: AsyncSession, client_id: int, page: int) -> list[StoredEvent]:
    return await load_events(session, client_id, offset=max(page, 0) * PAGE_SIZE, limit=PAGE_SIZE)
