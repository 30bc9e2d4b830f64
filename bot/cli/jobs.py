"""``leadtrail jobs run daily-report|alerts|retention|identities``: one scheduled job now, for operators
and tests.

Messages are queued in the outbox; a running ``leadtrail run`` delivers them within seconds.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

from bot.cli.common import opened_database
from bot.runtime.jobs.alerts import AlertEngine
from bot.runtime.jobs.daily_report import morning_report, queue_morning_report
from bot.runtime.jobs.identities import SharedValuesNotice
from bot.runtime.jobs.retention import RetentionJob
from bot.settings import Settings
from reports.periods import Period
from reports.texts import cli as texts


async def run_job(settings: Settings, args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    async with opened_database(settings) as db:
        if args.job == "daily-report":
            yesterday = now.astimezone(settings.tz).date() - timedelta(days=1)
            report = await morning_report(db, settings, Period(yesterday, yesterday))
            async with db.sessions() as session, session.begin():
                recipients = await queue_morning_report(session, settings, report)
            print(texts.JOB_REPORT_QUEUED.format(day=yesterday, recipients=recipients))
        elif args.job == "alerts":
            queued = await AlertEngine(db, settings, lambda: None).check(now)
            print(texts.JOB_ALERTS_QUEUED.format(count=len(queued)))
        elif args.job == "identities":
            named = await SharedValuesNotice(db, settings, lambda: None).run(now)
            print(texts.JOB_IDENTITIES_QUEUED.format(count=named))
        else:
            result = await RetentionJob(db, settings).run(now)
            print(texts.JOB_ANONYMIZED.format(events=result.events, clients=result.clients))
    return 0
