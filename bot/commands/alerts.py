"""``leadtrail alerts check``: every alert rule evaluated at one moment, printed, nothing sent.

Operators see what the scheduler would send; tests replay a history at any ``--now``.
"""

from __future__ import annotations

import argparse
import html
from datetime import UTC, datetime

from bot.settings import Settings
from reports.texts.numbers import format_local


def _moment(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"bad moment {text!r}: expected ISO 8601 like 2025-03-15T14:00 or 2025-03-15T14:00+03:00"
        ) from None


def add_alerts_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``check`` action. Its ``--config`` has no default of its own, so a ``--config`` given before
    ``check`` (on the parent parser, which carries the default) is not overwritten."""
    actions = parser.add_subparsers(dest="alerts_action", required=True, metavar="ACTION")
    check = actions.add_parser("check", help="evaluate every rule without sending; print what would fire")
    check.add_argument(
        "--now",
        type=_moment,
        metavar="ISO",
        help="the moment to evaluate at (default: now; naive = timezone)",
    )
    check.add_argument("--json", action="store_true", help="print JSON instead of text")
    check.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS, help="config file")


async def run_alerts_command(settings: Settings, args: argparse.Namespace) -> int:
    """``alerts check``: the firing verdicts as JSON, or their texts (plain, unescaped) for a terminal."""
    # Imported here: the CLI imports this module to build its parser, and every other command must start
    # without loading SQLAlchemy.
    from bot.alert_engine import AlertEngine
    from bot.commands.common import opened_database, print_json
    from reports.texts.alerts import check_summary

    zone = settings.tz
    now: datetime = args.now or datetime.now(UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=zone)
    async with opened_database(settings) as db:
        verdicts = await AlertEngine(db, settings, on_enqueued=lambda: None).verdicts(now)
    firing = [verdict for verdict in verdicts if verdict.firing]
    if args.json:
        print_json(
            [
                {
                    "rule": verdict.rule,
                    "scope": verdict.scope,
                    "value": verdict.value,
                    "baseline": verdict.baseline,
                    "p_value": verdict.p_value,
                    "text": verdict.text,
                }
                for verdict in firing
            ],
            zone,
        )
        return 0
    print(check_summary(len(firing), format_local(now, zone)))
    for verdict in firing:
        print(f"\n{html.unescape(verdict.text)}")
    return 0
