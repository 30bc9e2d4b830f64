"""The morning report: claimed once per local day in the database, so restarts never send it twice
and a process that was down at the set time still sends it once within the grace window.

It is yesterday's report with one more line, today's follow-up lists (the four counts), and a button
under it that opens them (/followup); e-mail gets the same text without the button.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from bot.runtime.owner_outbox import enqueue_for_owners
from bot.settings import Settings
from bot.telegram.views.followup import LISTS_KEYBOARD
from reports.followup_check import followup_at
from reports.owner_report import build_report
from reports.periods import Period
from reports.texts import followup as followup_texts
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


@dataclass(frozen=True, slots=True)
class MorningReport:
    text: str
    subject: str
    charts: tuple[Attachment, ...]


async def morning_report(db: Database, settings: Settings, period: Period) -> MorningReport:
    """The report of ``period`` with its charts, and the line with the follow-up lists as they are now."""
    report = await build_report(db.sessions, settings.report_scope(period), with_charts=True)
    lists = await followup_at(db.sessions, datetime.now(UTC), settings.followup)
    text = f"{report.text}\n\n{followup_texts.report_line(lists)}"
    return MorningReport(text, report.subject, report.charts)


async def queue_morning_report(session: AsyncSession, settings: Settings, report: ReportMessage) -> int:
    """Queue the report for every owner in the caller's transaction, with the button to the lists."""
    return await enqueue_for_owners(
        session,
        settings,
        kind=KIND,
        text=report.text,
        subject=report.subject,
        attachments=report.charts,
        keyboard=LISTS_KEYBOARD,
    )


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
            await queue_morning_report(session, self._settings, report)
            await finish_run(session, JOB, today.isoformat())
        logger.info("daily report for %s queued for delivery", today - timedelta(days=1))
        self._on_enqueued()
        return True
