"""``leadtrail client ID``: the whole timeline of one client, found by any of their ids."""

from __future__ import annotations

import argparse
from datetime import tzinfo
from typing import Any

from bot.cli.common import opened_database, print_json
from bot.cli.errors import CommandFailed
from bot.settings import Settings
from reports.metrics import ai_cost
from reports.texts.client import terminal_timeline
from storage.timeline import (
    ClientCard,
    client_model_usage,
    event_fields,
    find_client_ids,
    load_card,
    load_events,
)


def _card_json(card: ClientCard) -> dict[str, Any]:
    return {
        "id": card.id,
        "name": card.name,
        "user_ids": card.identities.get("user", []),
        "crm_ids": card.identities.get("crm", []),
        "lead_ids": card.identities.get("lead", []),
        "phones": card.identities.get("phone", []),
        "first_seen": card.first_seen,
        "last_seen": card.last_seen,
        "events": card.event_count,
    }


async def show_client(settings: Settings, args: argparse.Namespace) -> int:
    query, as_json = args.id, args.json
    zone: tzinfo = settings.tz
    async with opened_database(settings) as db, db.sessions() as session:
        client_ids = await find_client_ids(session, query)
        if not client_ids:
            raise CommandFailed(f"no client with user_id, crm_id, lead_id or phone {query!r}")
        card = await load_card(session, client_ids[0])
        assert card is not None
        events = [event_fields(event) for event in await load_events(session, card.id)]
        cost = ai_cost(await client_model_usage(session, card.id), settings.ai.currency)
    if as_json:
        print_json({"client": {**_card_json(card), "ai_cost": cost.as_json()}, "events": events}, zone)
    else:
        print(terminal_timeline(card, events, zone, cost))
    return 0
