"""``leadtrail client ID``: the whole timeline of one client, found by any of their ids; and
``leadtrail client unlink USER_ID``: a wrong link undone by hand."""

from __future__ import annotations

import argparse
import sys
from datetime import tzinfo
from functools import partial
from typing import Any

from bot.cli.common import opened_database, print_json
from bot.cli.errors import EXIT_USAGE, CommandFailed
from bot.privacy import CLI_OWNER_ID
from bot.settings import Settings
from reports.metrics import ai_cost
from reports.texts import identities as identity_texts
from reports.texts.client import terminal_timeline
from storage.audit import record_action
from storage.identity_groups import unlink
from storage.timeline import (
    ClientCard,
    client_model_usage,
    event_fields,
    find_client_ids,
    load_card,
    load_events,
)

UNLINK = "unlink"


def _card_json(card: ClientCard) -> dict[str, Any]:
    return {
        "id": card.id,
        "name": card.name,
        "user_ids": card.identities.get("user", []),
        "crm_ids": card.identities.get("crm", []),
        "lead_ids": card.identities.get("lead", []),
        "phones": card.identities.get("phone", []),
        "joined_by": [
            {
                "field": identity_texts.field_of(joined.kind),
                "value": joined.value,
                "user_ids": joined.user_ids,
            }
            for joined in card.joined_by
        ],
        "first_seen": card.first_seen,
        "last_seen": card.last_seen,
        "events": card.event_count,
    }


async def client_command(settings: Settings, args: argparse.Namespace) -> int:
    if args.user_id is None:
        return await show_client(settings, args.id, args.json)
    if args.id != UNLINK:
        print(
            f"leadtrail: client takes one id; did you mean 'client {UNLINK} {args.user_id}'?", file=sys.stderr
        )
        return EXIT_USAGE
    return await unlink_user(settings, args.user_id.strip())


async def show_client(settings: Settings, query: str, as_json: bool) -> int:
    zone: tzinfo = settings.tz
    async with opened_database(settings) as db, db.sessions() as session:
        client_ids = await find_client_ids(session, query, settings.identity.default_region)
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


async def unlink_user(settings: Settings, user_id: str) -> int:
    """Move the user id (with its events) into a client of its own; the audit log says which and where."""
    async with opened_database(settings) as db:
        done = await db.writes.run(partial(unlink, user_id=user_id, policy=settings.identity.policy()))
        if done is None:
            raise CommandFailed(f"no client has the user_id {user_id!r}")
        if done.to_client == done.from_client:
            raise CommandFailed(f"nothing to unlink: {user_id} is the only id of client #{done.from_client}")
        details = identity_texts.AUDIT_UNLINK.format(
            user_id=user_id, old=done.from_client, new=done.to_client
        )
        await record_action(db.sessions, CLI_OWNER_ID, UNLINK, details)
    print(identity_texts.unlinked(user_id, done.from_client, done.to_client, done.undone))
    return 0
