"""``leadtrail followup``: who to answer and who to call, at a moment, as text or JSON; nothing is marked."""

from __future__ import annotations

import argparse
import sys

from sqlalchemy.exc import SQLAlchemyError

from bot.cli.common import chosen_moment, opened_database, print_json
from bot.cli.errors import EXIT_USAGE, CommandFailed
from bot.cli.report import check_location
from bot.settings import Settings
from reports.followup_check import followup_at
from reports.texts import followup as texts


async def show_followup(settings: Settings, args: argparse.Namespace) -> int:
    """Print the four lists at ``--now``; 2 for an empty --location, CommandFailed when storage fails."""
    try:
        check_location(args)
    except ValueError as exc:
        print(f"leadtrail: {exc}", file=sys.stderr)
        return EXIT_USAGE
    zone = settings.tz
    now = chosen_moment(args.now, zone)
    async with opened_database(settings) as db:
        try:
            lists = await followup_at(db.sessions, now, settings.followup, args.location)
        except SQLAlchemyError as exc:
            raise CommandFailed(f"cannot read the follow-up lists: {type(exc).__name__}") from None
    if args.json:
        print_json(texts.as_json(lists, zone), zone)
    else:
        print(texts.terminal(lists, zone))
    return 0
