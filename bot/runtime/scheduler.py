"""The scheduler inside ``leadtrail run``: the morning report, the alert check (and with it the notice of
ids shared too widely) and the nightly retention.

APScheduler only says when; whether a run already happened is kept in the database (see
``bot.runtime.jobs.daily_report``), so restarts and late starts neither repeat nor skip the morning report.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.runtime.jobs.daily_report import DailyReportJob
from bot.settings import Settings

logger = logging.getLogger(__name__)

TimedJob = Callable[[datetime], Awaitable[object]]


def _guarded(name: str, job: TimedJob) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        try:
            await job(datetime.now(UTC))
        except Exception:
            # One failed run must not stop the scheduler; the next run tries again.
            logger.exception("scheduled job %s failed", name)

    return run


def build_scheduler(
    settings: Settings,
    daily_report: DailyReportJob,
    *,
    alerts: TimedJob | None = None,
    retention: TimedJob | None = None,
    identities: TimedJob | None = None,
) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone=settings.tz)
    hour, minute = map(int, settings.reports.daily_at.split(":"))
    scheduler.add_job(
        _guarded("daily-report", daily_report.run_if_due),
        CronTrigger(hour=hour, minute=minute, timezone=settings.tz),
        id="daily-report",
        misfire_grace_time=int(settings.reports.daily_grace_hours * 3600) or None,
        coalesce=True,
    )
    # A process started after daily_at (within the grace window) sends the missed report now.
    scheduler.add_job(_guarded("daily-report-catch-up", daily_report.run_if_due), id="daily-report-catch-up")
    # The alert check, and with it the notice of ids shared too widely, every alerts.check_minutes.
    for name, job in (("alerts", alerts), ("identities", identities)):
        if job is not None:
            scheduler.add_job(
                _guarded(name, job),
                IntervalTrigger(minutes=settings.alerts.check_minutes, timezone=settings.tz),
                id=name,
                coalesce=True,
                max_instances=1,
            )
    if retention is not None:
        scheduler.add_job(
            _guarded("retention", retention),
            CronTrigger(hour=3, minute=30, timezone=settings.tz),
            id="retention",
            coalesce=True,
            max_instances=1,
        )
    return scheduler
