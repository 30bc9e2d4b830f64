"""``leadtrail report``: the owner's numbers for a period, as the Telegram text or as JSON."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from bot.cli import EXIT_USAGE, CommandFailed
from bot.settings import Settings
from reports.periods import Period, default_period, parse_period, period_between


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    """The report's options, kept beside the command so the CLI module only wires it."""
    add_period_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def add_period_arguments(parser: argparse.ArgumentParser) -> None:
    """--from/--to, --period and --location, shared by the commands that read a period (report, export)."""
    parser.add_argument("--from", dest="date_from", metavar="YYYY-MM-DD", help="first day (with --to)")
    parser.add_argument("--to", dest="date_to", metavar="YYYY-MM-DD", help="last day, included")
    parser.add_argument(
        "--period",
        metavar="P",
        help="today | yesterday | 7d | 30d | month (7d, 30d and month include today); "
        "default: yesterday and the 7 days before",
    )
    parser.add_argument("--location", metavar="NAME", help="only events of this location")


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
    # Imported here: the parser imports this module for every command, and they must start fast.
    from sqlalchemy.exc import SQLAlchemyError

    from bot.commands.common import opened_database, print_json
    from bot.report_request import report_scope
    from reports.owner_report import build_report
    from reports.texts.html import plain_text

    try:
        period = chosen_period(args, datetime.now(UTC), settings)
        check_location(args)
    except ValueError as exc:
        print(f"leadtrail: {exc}", file=sys.stderr)
        return EXIT_USAGE
    async with opened_database(settings) as db:
        try:
            built = await build_report(db.sessions, report_scope(settings, period, args.location))
        except SQLAlchemyError as exc:
            raise CommandFailed(f"cannot read the report from the database: {type(exc).__name__}") from None
    if args.json:
        print_json(built.report.as_json(), settings.tz)
    else:
        print(plain_text(built.text))
    return 0
