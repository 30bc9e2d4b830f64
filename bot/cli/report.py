"""``leadtrail report``: the owner's numbers for a period, as the Telegram text or as JSON."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from sqlalchemy.exc import SQLAlchemyError

from bot.cli.common import opened_database, print_json
from bot.cli.errors import EXIT_USAGE, CommandFailed
from bot.settings import Settings
from reports.owner_report import build_report
from reports.periods import Period, default_period, parse_period, period_between
from reports.texts.html import plain_text


def chosen_period(args: argparse.Namespace, now: datetime, settings: Settings) -> Period:
    """The period the arguments name; ValueError with the reason for a wrong combination or value."""
    has_range = args.date_from is not None or args.date_to is not None
    if has_range and args.period is not None:
        raise ValueError("use either --from/--to or --period, not both")
    if has_range:
        if args.date_from is None or args.date_to is None:
            raise ValueError("--from and --to go together")
        return period_between(args.date_from, args.date_to)
    if args.period is not None:
        return parse_period(args.period, now, settings.tz)
    return default_period(now, settings.tz)


def check_location(args: argparse.Namespace) -> None:
    """ValueError for an empty --location (it would silently match nothing)."""
    if args.location is not None and not args.location.strip():
        raise ValueError("--location must name a location")


async def show_report(settings: Settings, args: argparse.Namespace) -> int:
    """Print the report (text or JSON); 2 for a wrong period or option, CommandFailed when storage fails."""
    try:
        period = chosen_period(args, datetime.now(UTC), settings)
        check_location(args)
    except ValueError as exc:
        print(f"leadtrail: {exc}", file=sys.stderr)
        return EXIT_USAGE
    async with opened_database(settings) as db:
        try:
            built = await build_report(db.sessions, settings.report_scope(period, args.location))
        except SQLAlchemyError as exc:
            raise CommandFailed(f"cannot read the report from the database: {type(exc).__name__}") from None
    if args.json:
        print_json(built.report.as_json(), settings.tz)
    else:
        print(plain_text(built.text))
    return 0
