"""The morning report: claimed once per local day in the database, so restarts never send it twice
and a process that was down at the set time still sends it once within the grace window."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import date, datetime, time, timedelta
from typing import Protocol

from bot.runtime.owner_outbox import enqueue_for_owners
from bot.settings import Settings
from reports.periods import Period
from storage.database import Database
from storage.job_runs import claim_run, finish_run, run_exists
from storage.outbox import Attachment

logger = logging.getLogger(__name__)

JOB = "daily-report"
KIND = "daily_report"  # the outbox messages it queues


class ReportMessage(Protocol):
    """What the morning report sends: ``reports.owner_report.OwnerReport`` with its charts."""

    @property
    def text(self) -> str: ...
    @property
    def subject(self) -> str: ...
    @property
    def charts(self) -> tuple[Attachment, ...]: ...


ReportBuilder = Callable[[Period], Awaitable[ReportMessage]]


class DailyReportJob:
    def __init__(
        self, db: Database, settings: Settings, build: ReportBuilder, on_enqueued: Callable[[], None]
    ) -> None:
        self._db = db
        self._settings = settings
        self._build = build
        self._on_enqueued = on_enqueued

    def due_at(self, day: date) -> datetime:
        hour, minute = map(int, self._settings.reports.daily_at.split(":"))
        return datetime.combine(day, time(hour, minute), tzinfo=self._settings.tz)

    async def run_if_due(self, now: datetime) -> bool:
        """Send today's report if its time has come, it is within the grace window, and nobody sent it yet."""
        today = now.astimezone(self._settings.tz).date()
        due = self.due_at(today)
        grace = timedelta(hours=self._settings.reports.daily_grace_hours)
        if not due <= now < due + grace:
            return False
        async with self._db.sessions() as session:
            if await run_exists(session, JOB, today.isoformat()):
                return False
        yesterday = today - timedelta(days=1)
        report = await self._build(Period(yesterday, yesterday))
        async with self._db.sessions() as session, session.begin():
            if not await claim_run(session, JOB, today.isoformat()):
                return False
            await enqueue_for_owners(
                session,
                self._settings,
                kind=KIND,
                text=report.text,
                subject=report.subject,
                attachments=report.charts,
            )
            await finish_run(session, JOB, today.isoformat())
        logger.info("daily report for %s queued for delivery", today - timedelta(days=1))
        self._on_enqueued()
        return True
