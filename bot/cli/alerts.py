"""``leadtrail alerts check``: every alert rule evaluated at one moment, printed, nothing sent.

Operators see what the scheduler would send; tests replay a history at any ``--now``.
"""

from __future__ import annotations

import argparse
import html

from bot.alert_verdicts import configured_verdicts
from bot.cli.common import chosen_moment, opened_database, print_json
from bot.settings import Settings
from reports.texts.alerts import check_summary
from reports.texts.numbers import format_local


async def run_alerts_command(settings: Settings, args: argparse.Namespace) -> int:
    """``alerts check``: the firing verdicts as JSON, or their texts (plain, unescaped) for a terminal."""
    zone = settings.tz
    now = chosen_moment(args.now, zone)
    async with opened_database(settings) as db:
        verdicts = await configured_verdicts(db, settings, now)
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
