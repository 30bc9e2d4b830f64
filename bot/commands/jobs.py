"""``leadtrail jobs run daily-report|alerts|retention``: one scheduled job now, for operators and tests.

Messages are queued in the outbox; a running ``leadtrail run`` delivers them within seconds.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

from bot.alert_engine import AlertEngine
from bot.commands.common import opened_database
from bot.daily_report import JOB as DAILY_REPORT_JOB
from bot.report_request import report_scope
from bot.retention_job import RetentionJob
from bot.settings import Settings
from reports.owner_report import build_report
from reports.periods import Period
from reports.texts import cli as texts
from storage.outbox import enqueue

JOBS = ("daily-report", "alerts", "retention")


def add_jobs_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="jobs_action", required=True, metavar="ACTION")
    run = actions.add_parser("run", help="run one scheduled job now")
    run.add_argument("job", choices=JOBS)
    run.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS, help="config file")


async def run_job(settings: Settings, args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    async with opened_database(settings) as db:
        if args.job == "daily-report":
            yesterday = now.astimezone(settings.tz).date() - timedelta(days=1)
            scope = report_scope(settings, Period(yesterday, yesterday))
            report = await build_report(db.sessions, scope, with_charts=True)
            recipients = [("telegram", str(owner)) for owner in settings.telegram.owners]
            recipients += [("email", address) for address in settings.email.owners]
            async with db.sessions() as session, session.begin():
                for channel, recipient in recipients:
                    await enqueue(
                        session,
                        kind=DAILY_REPORT_JOB,
                        channel=channel,
                        recipient=recipient,
                        text=report.text,
                        subject=report.subject,
                        attachments=report.charts,
                    )
            print(texts.JOB_REPORT_QUEUED.format(day=yesterday, recipients=len(recipients)))
        elif args.job == "alerts":
            queued = await AlertEngine(db, settings, lambda: None).check(now)
            print(texts.JOB_ALERTS_QUEUED.format(count=len(queued)))
        else:
            result = await RetentionJob(db, settings).run(now)
            if result is None:
                print(texts.JOB_NO_SECRET)
                return 1
            print(texts.JOB_ANONYMIZED.format(events=result.events, clients=result.clients))
    return 0
