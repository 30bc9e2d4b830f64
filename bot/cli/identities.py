"""``leadtrail identities [--json]``: the crm ids, lead ids and phones carried by more user ids than
``identity.max_users_per_value``, which therefore link nobody (shown masked)."""

from __future__ import annotations

import argparse

from bot.cli.common import opened_database, print_json
from bot.settings import Settings
from reports.texts import identities as texts
from storage.shared_identities import shared_values


async def show_shared_values(settings: Settings, args: argparse.Namespace) -> int:
    async with opened_database(settings) as db, db.sessions() as session:
        values = await shared_values(session)
    limit = settings.identity.max_users_per_value
    if args.json:
        print_json(texts.as_json(values, limit), settings.tz)
    else:
        print(texts.terminal_list(values, limit, settings.tz))
    return 0
