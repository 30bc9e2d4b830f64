"""What works for the owners in the background of ``leadtrail run``: delivery of the outbox and the
scheduler (morning report, alerts). Wired here, started and stopped with the bot."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial

from aiogram import Bot
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.ingestion.http_app import ServiceState
from bot.runtime.delivery import DeliveryWorker
from bot.runtime.email_delivery import EmailSender
from bot.runtime.jobs.alerts import AlertEngine
from bot.runtime.jobs.daily_report import DailyReportJob, morning_report
from bot.runtime.jobs.identities import SharedValuesNotice
from bot.runtime.jobs.retention import RetentionJob
from bot.runtime.scheduler import build_scheduler
from bot.runtime.storage_alarm import StorageAlarm
from bot.runtime.telegram_link import TelegramLink
from bot.settings import Settings
from storage.database import Database
from storage.writer import EventWriter

logger = logging.getLogger(__name__)


@dataclass
class OwnerServices:
    delivery: DeliveryWorker
    scheduler: AsyncIOScheduler
    alerts: AlertEngine
    storage_alarm: StorageAlarm | None = None

    async def stop(self) -> None:
        self.scheduler.shutdown(wait=False)
        await self.delivery.stop()
        if self.storage_alarm is not None:
            await self.storage_alarm.stop()


def start_owner_services(
    settings: Settings, db: Database, writer: EventWriter, link: TelegramLink | None, state: ServiceState
) -> OwnerServices:
    def connected_bot() -> Bot | None:
        return link.bot if link is not None and state.telegram == "up" else None

    send_email = EmailSender(settings.email) if settings.email.smtp_host else None
    delivery = DeliveryWorker(db, connected_bot, send_email=send_email)
    delivery.start()

    daily = DailyReportJob(db, settings, partial(morning_report, db, settings), delivery.wake)
    alerts = AlertEngine(db, settings, delivery.wake)
    retention = RetentionJob(db, settings)
    notice = SharedValuesNotice(db, settings, delivery.wake)
    scheduler = build_scheduler(
        settings, daily, alerts=alerts.check, retention=retention.run, identities=notice.run
    )
    scheduler.start()
    logger.info(
        "scheduler: daily report at %s (%s), alert check every %s min",
        settings.reports.daily_at,
        settings.timezone,
        settings.alerts.check_minutes,
    )
    storage_alarm = StorageAlarm(
        writer,
        settings.telegram.owners,
        connected_bot,
        after_seconds=settings.ingest.storage_alarm_after_seconds,
        repeat_seconds=settings.telegram.notice_interval_minutes * 60,
    )
    storage_alarm.start()
    return OwnerServices(delivery, scheduler, alerts, storage_alarm)
